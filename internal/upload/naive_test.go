package upload

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

// A naive sender's file is published as it came, under a server-chosen id, with
// "complete": "unknown" in its record; a stream cut by an error is not published;
// a name that tries to be a path is refused before any byte is stored.
func TestReceiveNaiveFile(t *testing.T) {
	var rec records
	s := openStore(t, t.TempDir(), &rec, nil)
	file := bytes.Repeat([]byte("naive "), 100000)
	var read int
	r, err := s.Receive("file:127.0.0.1:1", "app.log", bytes.NewReader(file), func(n int) { read += n })
	if err != nil {
		t.Fatal(err)
	}
	if r.Complete != Unknown || r.Size != int64(len(file)) || r.SHA256 != sum(file) || read != len(file) || !strings.HasPrefix(r.UploadID, "naive-") {
		t.Fatalf("record %+v (read %d)", r, read)
	}
	if got, err := os.ReadFile(r.Path); err != nil || !bytes.Equal(got, file) {
		t.Fatalf("published file: %d bytes, %v", len(got), err)
	}
	if rec.len() != 1 {
		t.Fatalf("%d records, want 1", rec.len())
	}
	b, _ := json.Marshal(rec.got[0])
	if !bytes.Contains(b, []byte(`"complete":"unknown"`)) {
		t.Fatalf("record %s does not say complete unknown", b)
	}
	var back FileRecord
	if err := json.Unmarshal(b, &back); err != nil || back.Complete != Unknown {
		t.Fatalf("record read back: %+v %v", back, err)
	}

	cut := io.MultiReader(bytes.NewReader(file[:1000]), iotest.ErrReader(errors.New("connection reset")))
	if _, err := s.Receive("file:127.0.0.1:1", "cut.log", cut, nil); err == nil {
		t.Fatal("a stream cut by an error was published")
	}
	if _, err := s.Receive("file:127.0.0.1:1", "../../etc/passwd", bytes.NewReader(file), nil); err == nil {
		t.Fatal("a name with a path was taken")
	}
	if rec.len() != 1 {
		t.Fatalf("%d records, want still 1", rec.len())
	}
}
