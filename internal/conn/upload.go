package conn

import (
	"errors"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/upload"
)

// uploads are the uploads a connection has open, by upload id. The reader parses
// upload frames and queues them (uploadpipe.go); the upload writer runs them and
// owns open and handed while it runs, the reader after settling the pipe. The
// store answers for each upload; the connection only parses and queues the
// answer, so an upload interleaves with its reports and holds them back by at
// most the chunk bytes ahead of them on the wire.
type uploads struct {
	open map[string]*upload.Upload
	// handed are the uploads the handoff's quiet point let go of, taken back if
	// the connection serves on here after all.
	handed []upload.Handover
	pipe   uploadPipe
	// direct, owned by the reader: its read buffer is a chunk buffer holding one
	// UPLOAD_CHUNK frame (readChunkDirect).
	direct bool
}

// upload parses an UPLOAD_OPEN, UPLOAD_CHUNK or UPLOAD_COMMIT and queues it for
// the upload writer. A malformed payload ends the connection (bad_payload);
// anything about the upload itself is answered in UPLOAD_STATE and the
// connection goes on (PROTOCOL.md 4.3).
func (c *Conn) upload(f protocol.Frame) bool {
	j := uploadJob{t: f.Type, seq: f.Seq}
	switch f.Type {
	case protocol.TypeUploadChunk:
		id, data, err := protocol.ParseChunk(f)
		if err != nil {
			c.fail(ReasonProtocol, protocol.CodeBadPayload, err.Error())
			return false
		}
		j.id = string(id)
		j.data, j.buf = c.takeChunk(data)
	case protocol.TypeUploadOpen:
		if err := protocol.ParseJSON(f, &j.open); err != nil {
			c.fail(ReasonProtocol, protocol.CodeBadPayload, err.Error())
			return false
		}
	case protocol.TypeUploadCommit:
		if err := protocol.ParseJSON(f, &j.commit); err != nil {
			c.fail(ReasonProtocol, protocol.CodeBadPayload, err.Error())
			return false
		}
	}
	c.uploads().pipe.push(c, j, c.m.uploadInFlight)
	return true
}

// runUpload runs one queued upload frame on the upload writer and returns its answer.
func (c *Conn) runUpload(j uploadJob) protocol.UploadState {
	switch j.t {
	case protocol.TypeUploadChunk:
		if u := c.openUpload([]byte(j.id)); u != nil {
			return u.Write(j.seq, j.data)
		}
		return c.unknownUpload(j.id)
	case protocol.TypeUploadOpen:
		return c.beginUpload(j.open)
	default:
		if u := c.openUpload([]byte(j.commit.UploadID)); u != nil {
			return u.Commit(j.commit)
		}
		return c.unknownUpload(j.commit.UploadID)
	}
}

func (c *Conn) beginUpload(o protocol.UploadOpen) protocol.UploadState {
	store := c.m.uploads
	if store == nil {
		return protocol.UploadState{UploadID: o.UploadID, Code: protocol.CodeUploadDisabled, Message: "this server takes no uploads"}
	}
	if u := c.openUpload([]byte(o.UploadID)); u != nil {
		// Opened again on the same connection (the client lost track): answer anew.
		u.Close()
		delete(c.up.open, o.UploadID)
	}
	u, st := store.Begin(c.clientID, o)
	if u != nil {
		c.uploads().open[o.UploadID] = u
	}
	return st
}

// openUpload returns the upload of this id open on c, or nil; looking a []byte
// up in a map of strings does not allocate.
func (c *Conn) openUpload(id []byte) *upload.Upload {
	if c.up == nil {
		return nil
	}
	return c.up.open[string(id)]
}

// uploads returns c's uploads, made at the first.
func (c *Conn) uploads() *uploads {
	if c.up == nil {
		c.up = &uploads{open: map[string]*upload.Upload{}}
	}
	return c.up
}

func (c *Conn) unknownUpload(id string) protocol.UploadState {
	if c.m.uploads == nil {
		return protocol.UploadState{UploadID: id, Code: protocol.CodeUploadDisabled, Message: "this server takes no uploads"}
	}
	return protocol.UploadState{UploadID: id, Code: protocol.CodeUploadUnknown, Message: "upload " + id + " is not open on this connection: open it first"}
}

// closeUploads lets go of the connection's uploads; they stay on disk, to be
// resumed on another connection.
func (c *Conn) closeUploads() {
	if c.up == nil {
		return
	}
	c.up.pipe.settle()
	for id, u := range c.up.open {
		u.Close()
		delete(c.up.open, id)
	}
}

// handOverUploads, at the handoff's quiet point, lets go of the connection's
// uploads (their locks with them) and describes them for the new process.
func (c *Conn) handOverUploads() []upload.Handover {
	if c.up == nil {
		return nil
	}
	c.up.pipe.settle()
	for id, u := range c.up.open {
		if h, ok := u.Handover(); ok {
			c.up.handed = append(c.up.handed, h)
		}
		delete(c.up.open, id)
	}
	return c.up.handed
}

// resumeUploads opens again the uploads a connection had open, in the process
// it moved to or, when the handoff fell back, in this one. One that cannot be
// resumed is answered upload_unknown at its next frame: the client opens it again.
func (c *Conn) resumeUploads(hs []upload.Handover) {
	if len(hs) > 0 {
		c.uploads().pipe.settle()
	}
	for _, h := range hs {
		var u *upload.Upload
		err := errors.New("this server takes no uploads")
		if c.m.uploads != nil {
			u, err = c.m.uploads.Resume(c.clientID, h)
		}
		if err != nil {
			c.m.log.Warn("handoff: an upload did not move with its connection; the client opens it again",
				zap.Uint64("conn_id", c.id), zap.String("client_id", c.clientID), zap.Error(err))
			continue
		}
		c.uploads().open[h.UploadID] = u
	}
}
