package upload

import (
	"errors"
	"testing"

	"github.com/hawk-agents/hawk/internal/protocol"
)

// An upload handed over between two stores on one directory (the old and new
// process of an upgrade) goes on at its durable offset with no open, its lock
// passes with it, and the file published is checked against the hash carried.
func TestHandoverMovesUploadBetweenProcesses(t *testing.T) {
	dir := t.TempDir()
	var rec records
	oldS, newS := openStore(t, dir, &rec, nil), openStore(t, dir, &rec, nil)
	file := []byte("the first half|the second half")
	u, st := oldS.Begin("c", protocol.UploadOpen{UploadID: "u", Name: "f", Size: int64(len(file)), SHA256: sum(file)})
	if st.Code != "" {
		t.Fatal(st)
	}
	if st := u.Write(0, file[:15]); st.Code != "" || st.Offset != 15 {
		t.Fatal(st)
	}
	if _, err := newS.Resume("c", Handover{UploadID: "u", Offset: 15, Hash: []byte("x")}); err == nil {
		t.Fatal("Resume took an upload another store holds, with a bad hash state")
	}
	h, ok := u.Handover()
	if !ok || h.Offset != 15 {
		t.Fatalf("Handover = %+v, %v", h, ok)
	}
	if _, err := newS.Resume("c", Handover{UploadID: "u", Offset: 14, Hash: h.Hash}); err == nil {
		t.Fatal("Resume took a handover whose offset is not the partial file's size")
	}
	nu, err := newS.Resume("c", h)
	if err != nil {
		t.Fatal(err)
	}
	if _, st := oldS.Begin("c", protocol.UploadOpen{UploadID: "u", Name: "f", Size: int64(len(file))}); st.Code != protocol.CodeUploadWriteFailed {
		t.Fatalf("the old store opened an upload the new one holds: %+v", st)
	}
	if st := nu.Write(15, file[15:]); st.Code != "" || st.Offset != int64(len(file)) {
		t.Fatal(st)
	}
	if st := nu.Commit(protocol.UploadCommit{UploadID: "u", Size: int64(len(file)), SHA256: sum(file)}); !st.Done {
		t.Fatal(st)
	}
	if rec.len() != 1 {
		t.Fatalf("%d records, want 1", rec.len())
	}
	if _, ok := nu.Handover(); ok {
		t.Fatal("a published upload was handed over")
	}
}

func TestHandoverCheck(t *testing.T) {
	for _, h := range []Handover{{UploadID: "../x", Hash: []byte{1}}, {UploadID: "u", Offset: -1, Hash: []byte{1}},
		{UploadID: "u"}, {UploadID: "u", Hash: make([]byte, maxHashState+1)}} {
		if err := h.Check(); err == nil {
			t.Errorf("Check(%+v) = nil", h)
		}
	}
	var s Store
	if _, err := s.Resume("c", Handover{UploadID: "u"}); err == nil || errors.Is(err, errBusy) {
		t.Fatalf("Resume of an invalid handover: %v", err)
	}
}
