package conn

import (
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// A server that takes no uploads says so per upload, keeps the connection, and
// still acknowledges the reports interleaved with the upload frames.
func TestUploadRefusedWhenDisabled(t *testing.T) {
	ts := startServer(t, testSettings())
	p := testutil.Dial(t, ts.addr)
	if w := p.Hello("up", ""); w.MaxUploadInFlight != 0 {
		t.Fatalf("WELCOME announces max_upload_in_flight %d without an upload store", w.MaxUploadInFlight)
	}
	p.Write(protocol.AppendJSON(nil, protocol.TypeUploadOpen, 0, &protocol.UploadOpen{UploadID: "u-1", Name: "a.log", Size: -1}))
	p.Send(protocol.TypeReport, 1, []byte("x"))
	p.Write(protocol.AppendChunk(nil, "u-1", 0, []byte("data")))
	p.Write(protocol.AppendJSON(nil, protocol.TypeUploadCommit, 0, &protocol.UploadCommit{UploadID: "u-1", Size: 4}))
	var states, acks int
	for states < 3 || acks < 1 {
		f, err := p.Next(5 * time.Second)
		if err != nil {
			t.Fatalf("after %d UPLOAD_STATE and %d ACK: %v", states, acks, err)
		}
		switch f.Type {
		case protocol.TypeAck:
			acks++
		case protocol.TypeUploadState:
			var st protocol.UploadState
			if err := protocol.ParseJSON(f, &st); err != nil {
				t.Fatal(err)
			}
			if st.UploadID != "u-1" || st.Code != protocol.CodeUploadDisabled {
				t.Fatalf("UPLOAD_STATE %+v, want u-1 upload_disabled", st)
			}
			states++
		default:
			t.Fatalf("unexpected %s", f.Type)
		}
	}
}

func TestUploadChunkMalformedIsBadPayload(t *testing.T) {
	ts := startServer(t, testSettings())
	p := testutil.Dial(t, ts.addr)
	p.Hello("up", "")
	p.Send(protocol.TypeUploadChunk, 0, []byte{9, 'a'})
	p.ExpectError(protocol.CodeBadPayload)
}

func TestUploadStateFromClientIsViolation(t *testing.T) {
	ts := startServer(t, testSettings())
	p := testutil.Dial(t, ts.addr)
	p.Hello("up", "")
	p.Write(protocol.AppendJSON(nil, protocol.TypeUploadState, 0, &protocol.UploadState{UploadID: "u"}))
	p.ExpectError(protocol.CodeProtocol)
}
