package legacy

import (
	"bytes"
	"io"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/mono"
	"github.com/hawk-agents/hawk/internal/upload"
)

// The file format is the naive file sender, as it is:
//
//	sender: the file's name            (what its first write holds; see below)
//	server: "ok"                       (2 bytes, no newline)
//	sender: the file's bytes, then FIN
//
// The name is what the server's first read returns, up to the first newline if
// one comes in it (a "\r" before that newline is dropped); anything after the
// newline is the start of the file. It must be an upload name (upload.ValidName:
// 1..255 bytes of UTF-8, no "/" or "\", no control character, not "." or "..");
// otherwise the server answers "error: <why>\n" and closes. The name is metadata:
// the file lands where the upload store puts it. The bytes go to the store under
// the uploads' limits; at EOF the file is published and announced with
// "complete": "unknown", because a sender killed midway ends with the same FIN.
// A connection cut otherwise (reset, idle_timeout, the drain) publishes nothing.
// The stream stays with the process that accepted it: an upgrade does not move it.

// maxNameRead is the first read's buffer: a name and a newline at most, plus
// whatever of the file came with them.
const maxNameRead = 4 << 10

// serveFile is a file connection's reader: the name, "ok", the file.
func (c *lconn) serveFile() {
	defer c.teardown()
	name, rest, ok := c.readName()
	if !ok {
		return
	}
	if err := upload.ValidName(name); err != nil {
		c.writeReply("error: " + err.Error() + "\n")
		c.closeNow(ReasonBadName)
		return
	}
	if !c.writeReply("ok") {
		return
	}
	body := io.MultiReader(bytes.NewReader(rest), readerFunc(c.nc.Read))
	rec, err := c.l.uploads.Receive(c.clientID, name, body, c.countIn)
	if err != nil {
		c.l.obs.NotStored(1)
		c.l.log.Warn("legacy file not published", zap.String("listener", c.l.name), zap.String("client_id", c.clientID),
			zap.String("name", name), zap.Error(err))
		c.closeNow(ReasonClient)
		return
	}
	c.framesIn.Add(1)
	c.l.obs.Stored(1)
	c.l.log.Info("legacy file published", zap.String("listener", c.l.name), zap.String("client_id", c.clientID),
		zap.String("upload_id", rec.UploadID), zap.String("name", name), zap.Int64("size", rec.Size), zap.String("complete", "unknown"))
	c.closeNow(ReasonClient)
}

// readName reads the name; ok is false when the connection ended first.
func (c *lconn) readName() (name string, rest []byte, ok bool) {
	buf := make([]byte, maxNameRead)
	n, _ := c.nc.Read(buf)
	if n == 0 { // the sender left (or the idle timeout cut it) before a name
		c.closeNow(ReasonClient)
		return "", nil, false
	}
	c.countIn(n)
	line := buf[:n]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line, rest = line[:i], line[i+1:]
		line = bytes.TrimSuffix(line, []byte("\r"))
	}
	return string(line), rest, true
}

func (c *lconn) countIn(n int) {
	c.lastSeen.Store(mono.Now())
	c.bytesIn.Add(uint64(n))
	c.l.obs.BytesIn(n)
}

// writeReply writes s at once (the exchange is strictly one way at a time); the
// reaper cuts a write stuck past the write timeout.
func (c *lconn) writeReply(s string) bool {
	c.writeStart.Store(mono.Now())
	n, err := io.WriteString(c.nc, s)
	c.writeStart.Store(0)
	c.bytesOut.Add(uint64(n))
	c.l.obs.BytesOut(n)
	if err != nil {
		c.closeNow(ReasonClient)
		return false
	}
	return true
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
