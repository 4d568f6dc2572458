package conn

import (
	"github.com/hawk-agents/hawk/internal/protocol"
)

// upload answers an UPLOAD_OPEN, UPLOAD_CHUNK or UPLOAD_COMMIT. This server does
// not announce max_upload_in_flight in WELCOME, so every upload is refused with
// upload_disabled; the connection and its reports go on (PROTOCOL.md 4.3).
func (c *Conn) upload(f protocol.Frame) bool {
	st := protocol.UploadState{Code: protocol.CodeUploadDisabled, Message: "this server takes no uploads"}
	switch f.Type {
	case protocol.TypeUploadChunk:
		id, _, err := protocol.ParseChunk(f)
		if err != nil {
			c.fail(ReasonProtocol, protocol.CodeBadPayload, err.Error())
			return false
		}
		st.UploadID = string(id)
	case protocol.TypeUploadOpen:
		var o protocol.UploadOpen
		if err := protocol.ParseJSON(f, &o); err != nil {
			c.fail(ReasonProtocol, protocol.CodeBadPayload, err.Error())
			return false
		}
		st.UploadID = o.UploadID
	case protocol.TypeUploadCommit:
		var cm protocol.UploadCommit
		if err := protocol.ParseJSON(f, &cm); err != nil {
			c.fail(ReasonProtocol, protocol.CodeBadPayload, err.Error())
			return false
		}
		st.UploadID = cm.UploadID
	}
	c.send(protocol.TypeUploadState, f.Seq, &st)
	return true
}
