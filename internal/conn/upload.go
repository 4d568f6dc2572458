package conn

import (
	"errors"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/upload"
)

// uploads are the uploads a connection has open, by upload id; the reader
// goroutine owns them. The store answers for each one; the connection only
// parses and queues the answer, so an upload interleaves with its reports and
// holds them back by at most one chunk's write.
type uploads struct {
	open map[string]*upload.Upload
	// handed are the uploads the handoff's quiet point let go of, taken back if
	// the connection serves on here after all.
	handed []upload.Handover
}

// upload answers an UPLOAD_OPEN, UPLOAD_CHUNK or UPLOAD_COMMIT. A malformed payload
// ends the connection (bad_payload); anything about the upload itself is answered
// in UPLOAD_STATE and the connection goes on (PROTOCOL.md 4.3).
func (c *Conn) upload(f protocol.Frame) bool {
	var st protocol.UploadState
	switch f.Type {
	case protocol.TypeUploadChunk:
		id, data, err := protocol.ParseChunk(f)
		if err != nil {
			c.fail(ReasonProtocol, protocol.CodeBadPayload, err.Error())
			return false
		}
		if u := c.openUpload(id); u != nil {
			st = u.Write(f.Seq, data)
		} else {
			st = c.unknownUpload(string(id))
		}
	case protocol.TypeUploadOpen:
		var o protocol.UploadOpen
		if err := protocol.ParseJSON(f, &o); err != nil {
			c.fail(ReasonProtocol, protocol.CodeBadPayload, err.Error())
			return false
		}
		st = c.beginUpload(o)
	case protocol.TypeUploadCommit:
		var cm protocol.UploadCommit
		if err := protocol.ParseJSON(f, &cm); err != nil {
			c.fail(ReasonProtocol, protocol.CodeBadPayload, err.Error())
			return false
		}
		if u := c.openUpload([]byte(cm.UploadID)); u != nil {
			st = u.Commit(cm)
		} else {
			st = c.unknownUpload(cm.UploadID)
		}
	}
	c.send(protocol.TypeUploadState, f.Seq, &st)
	return true
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
