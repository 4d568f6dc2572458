package conn

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/upload"

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

// An upload interleaved with reports: every report is acknowledged, a chunk at the
// wrong offset is refused with the durable one, the upload resumes on a new
// connection after the first is cut, and the published file is the file sent.
func TestUploadResumesOnNewConnection(t *testing.T) {
	var announced atomic.Int32
	store, err := upload.Open(upload.Options{Dir: t.TempDir(), Announce: func(upload.FileRecord) error { announced.Add(1); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, testSettings(), func(o *Options) { o.Uploads, o.UploadInFlight = store, 1<<20 })
	file := bytes.Repeat([]byte("hawk upload "), 10000)
	sum := sha256.Sum256(file)
	open := protocol.UploadOpen{UploadID: "u-1", Name: "big.log", Size: int64(len(file)), SHA256: hex.EncodeToString(sum[:])}

	p := testutil.Dial(t, ts.addr)
	if w := p.Hello("up", ""); w.MaxUploadInFlight != 1<<20 {
		t.Fatalf("WELCOME max_upload_in_flight %d", w.MaxUploadInFlight)
	}
	p.Write(protocol.AppendJSON(nil, protocol.TypeUploadOpen, 0, &open))
	expectState(t, p, 0, "")
	p.Send(protocol.TypeReport, 1, []byte("r1"))
	p.Write(protocol.AppendChunk(nil, "u-1", 0, file[:50000]))
	p.Send(protocol.TypeReport, 2, []byte("r2"))
	p.Write(protocol.AppendChunk(nil, "u-1", 60000, file[60000:70000]))
	var acks int
	for _, want := range []struct {
		off  int64
		code protocol.Code
	}{{50000, ""}, {50000, protocol.CodeUploadOffset}} {
		for {
			f, err := p.Next(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if f.Type == protocol.TypeAck {
				acks++
				continue
			}
			checkState(t, f, want.off, want.code)
			break
		}
	}
	for acks < 2 {
		p.Expect(protocol.TypeAck)
		acks++
	}
	p.Conn.Close()

	q := testutil.Dial(t, ts.addr)
	q.Hello("up", "")
	q.Write(protocol.AppendJSON(nil, protocol.TypeUploadCommit, 0, &protocol.UploadCommit{UploadID: "u-1"}))
	expectState(t, q, 0, protocol.CodeUploadUnknown)
	q.Write(protocol.AppendJSON(nil, protocol.TypeUploadOpen, 0, &open))
	expectState(t, q, 50000, "")
	q.Write(protocol.AppendChunk(nil, "u-1", 50000, file[50000:]))
	expectState(t, q, int64(len(file)), "")
	commit := protocol.UploadCommit{UploadID: "u-1", Size: int64(len(file)), SHA256: open.SHA256}
	for range 2 {
		q.Write(protocol.AppendJSON(nil, protocol.TypeUploadCommit, 0, &commit))
		f := q.Expect(protocol.TypeUploadState)
		var st protocol.UploadState
		if err := protocol.ParseJSON(f, &st); err != nil || !st.Done || st.Code != "" {
			t.Fatalf("commit: %+v %v", st, err)
		}
	}
	if n := announced.Load(); n != 1 {
		t.Fatalf("%d records announced, want 1", n)
	}
}

func expectState(t *testing.T, p *testutil.Peer, offset int64, code protocol.Code) {
	t.Helper()
	checkState(t, p.Expect(protocol.TypeUploadState), offset, code)
}

func checkState(t *testing.T, f protocol.Frame, offset int64, code protocol.Code) {
	t.Helper()
	var st protocol.UploadState
	if err := protocol.ParseJSON(f, &st); err != nil {
		t.Fatal(err)
	}
	if f.Type != protocol.TypeUploadState || st.Offset != offset || st.Code != code {
		t.Fatalf("%s %+v, want UPLOAD_STATE offset %d code %q", f.Type, st, offset, code)
	}
}

// Chunks larger than the read buffer sent back to back, more of them than the
// in-flight bound holds, each followed by a report: the reader hands them to the
// upload writer (waiting at the bound), every chunk is answered in order with its
// durable offset, every report is acknowledged, and the published file is the one sent.
func TestUploadChunksPipelined(t *testing.T) {
	var rec atomic.Pointer[upload.FileRecord]
	store, err := upload.Open(upload.Options{Dir: t.TempDir(), Announce: func(r upload.FileRecord) error { rec.Store(&r); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, testSettings(), func(o *Options) { o.Uploads, o.UploadInFlight = store, 1<<20 })
	const chunk, chunks = 200 << 10, 8
	file := bytes.Repeat([]byte("pipelined chunk "), chunk*chunks/16)
	sum := sha256.Sum256(file)
	p := testutil.Dial(t, ts.addr)
	p.Hello("up", "")
	p.Write(protocol.AppendJSON(nil, protocol.TypeUploadOpen, 0, &protocol.UploadOpen{UploadID: "u-p", Name: "p.log", Size: int64(len(file))}))
	expectState(t, p, 0, "")
	var out []byte
	for i := range chunks {
		out = protocol.AppendChunk(out, "u-p", uint64(i*chunk), file[i*chunk:(i+1)*chunk])
		out = protocol.AppendFrame(out, protocol.TypeReport, uint64(i+1), []byte("r"))
	}
	go p.Conn.Write(out) // the server may stop reading at the bound until it has written
	var acks, states int
	for acks < chunks || states < chunks {
		f, err := p.Next(10 * time.Second)
		if err != nil {
			t.Fatalf("after %d ACKs and %d UPLOAD_STATEs: %v", acks, states, err)
		}
		if f.Type == protocol.TypeAck {
			acks++
			continue
		}
		states++
		checkState(t, f, int64(states*chunk), "")
	}
	p.Write(protocol.AppendJSON(nil, protocol.TypeUploadCommit, 0, &protocol.UploadCommit{UploadID: "u-p", Size: int64(len(file)), SHA256: hex.EncodeToString(sum[:])}))
	f := p.Expect(protocol.TypeUploadState)
	var st protocol.UploadState
	if err := protocol.ParseJSON(f, &st); err != nil || !st.Done || st.Code != "" {
		t.Fatalf("commit: %+v %v", st, err)
	}
	got, err := os.ReadFile(rec.Load().Path)
	if err != nil || !bytes.Equal(got, file) {
		t.Fatalf("published file differs (%d bytes, %v)", len(got), err)
	}
}
