package conn

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"testing"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/upload"
)

// startUploadServer runs a Manager with an upload store over dir; two of them
// over one dir are the old and new process of an upgrade.
func startUploadServer(t *testing.T, dir string, published chan<- upload.FileRecord) *testServer {
	store, err := upload.Open(upload.Options{Dir: dir, Announce: func(r upload.FileRecord) error { published <- r; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	return startServer(t, testSettings(), func(o *Options) { o.Uploads, o.UploadInFlight = store, 1<<20 })
}

// An upload in progress moves with its connection, in the middle of a chunk:
// the client finishes the chunk and commits on the new process with no new open,
// and the old process has let go of the upload's lock.
func TestHandoffMovesOpenUpload(t *testing.T) {
	dir := t.TempDir()
	published := make(chan upload.FileRecord, 2)
	old, next := startUploadServer(t, dir, published), startUploadServer(t, dir, published)
	file := bytes.Repeat([]byte("moving upload "), 5000)
	sum := sha256.Sum256(file)
	open := protocol.UploadOpen{UploadID: "u-1", Name: "big.log", Size: int64(len(file)), SHA256: hex.EncodeToString(sum[:])}

	p := testutil.Dial(t, old.addr)
	p.Hello("up", "")
	p.Write(protocol.AppendJSON(nil, protocol.TypeUploadOpen, 0, &open))
	expectState(t, p, 0, "")
	p.Write(protocol.AppendChunk(nil, "u-1", 0, file[:30000]))
	expectState(t, p, 30000, "")
	chunk := protocol.AppendChunk(nil, "u-1", 30000, file[30000:])
	cut := len(chunk) / 2
	p.Write(chunk[:cut])
	waitPartial(t, old, cut)
	moveAll(t, old, next, 1)
	p.Write(chunk[cut:])
	expectState(t, p, int64(len(file)), "")
	p.Write(protocol.AppendJSON(nil, protocol.TypeUploadCommit, 0, &protocol.UploadCommit{UploadID: "u-1", Size: open.Size, SHA256: open.SHA256}))
	f := p.Expect(protocol.TypeUploadState)
	var st protocol.UploadState
	if err := protocol.ParseJSON(f, &st); err != nil || !st.Done || st.Code != "" {
		t.Fatalf("commit on the new process: %+v %v", st, err)
	}
	got, err := os.ReadFile((<-published).Path)
	if err != nil || !bytes.Equal(got, file) {
		t.Fatalf("published file: %d bytes (want %d), %v", len(got), len(file), err)
	}
}
