package legacy

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/upload"
)

// fileRecords returns the file records in the harness's spool.
func (h *harness) fileRecords() []upload.FileRecord {
	var out []upload.FileRecord
	for _, r := range readSpool(h.t, h.spool) {
		if r.Format != "upload" {
			continue
		}
		var p struct{ File upload.FileRecord }
		if err := json.Unmarshal(r.Payload, &p); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, p.File)
	}
	return out
}

// sendName sends the naive sender's name and reads the server's answer.
func sendName(t *testing.T, nc net.Conn, name string) string {
	t.Helper()
	if _, err := io.WriteString(nc, name); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, err := nc.Read(buf)
	if err != nil {
		t.Fatalf("reading the answer to the name: %v", err)
	}
	return string(buf[:n])
}

// The naive sender as it is written in the field (name, wait for "ok", bytes until
// EOF), one cut short (its process killed: the same FIN after fewer bytes), one
// reset, and one whose name tries to be a path: the first two are published with
// "complete": "unknown" (hawk cannot tell them apart), the reset one is not, the
// path is answered with an error and nothing is stored.
func TestFileNaiveSender(t *testing.T) {
	h := newHarness(t, FormatFile, nil, nil)
	file := bytes.Repeat([]byte("a naive sender's bytes\n"), 50000)

	whole := h.dial()
	if got := sendName(t, whole, "app.log"); got != "ok" {
		t.Fatalf("answer to the name: %q, want ok", got)
	}
	whole.Write(file)
	whole.(*net.TCPConn).CloseWrite()

	cut := h.dial()
	if got := sendName(t, cut, "cut.log\r\n"); got != "ok" {
		t.Fatalf("answer to the name: %q, want ok", got)
	}
	cut.Write(file[:1000])
	cut.Close()

	reset := h.dial()
	if got := sendName(t, reset, "reset.log"); got != "ok" {
		t.Fatalf("answer to the name: %q, want ok", got)
	}
	reset.Write(file[:1000])
	reset.(*net.TCPConn).SetLinger(0)
	reset.Close()

	bad := h.dial()
	if got := sendName(t, bad, "../../etc/passwd"); !bytes.HasPrefix([]byte(got), []byte("error: ")) {
		t.Fatalf("answer to a name with a path: %q, want an error", got)
	}

	testutil.Eventually(t, 10*time.Second, func() bool { return h.l.Count() == 0 }, "every file connection to end")
	recs := h.fileRecords()
	byName := map[string]upload.FileRecord{}
	for _, r := range recs {
		byName[r.Name] = r
	}
	if len(recs) != 2 || byName["app.log"].Size != int64(len(file)) || byName["cut.log"].Size != 1000 {
		t.Fatalf("records %+v: want app.log whole and cut.log at 1000 bytes", recs)
	}
	for _, r := range recs {
		if r.Complete != upload.Unknown {
			t.Fatalf("%s: complete %v, want unknown", r.Name, r.Complete)
		}
		got, err := os.ReadFile(r.Path)
		if err != nil || !bytes.Equal(got, file[:r.Size]) {
			t.Fatalf("%s: stored %d bytes, %v", r.Name, len(got), err)
		}
	}
	if n := h.obs.get(func() int { return int(h.obs.closed[ReasonBadName]) }); n != 1 {
		t.Fatalf("%d connections closed for bad_name, want 1", n)
	}
}
