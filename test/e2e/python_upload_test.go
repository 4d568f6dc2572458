package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPythonUploadThroughUpgrades uploads a file with the Python client while the
// server is upgraded again and again: the connection moves to each new process,
// the upload goes on (opened again only where the new process does not know it),
// and the published file is the file.
func TestPythonUploadThroughUpgrades(t *testing.T) {
	// A small in-flight bound: the upload takes round trips, so it spans upgrades.
	s := startServer(t, bin.serverV1, "-uploads.enabled=true", "-uploads.max_in_flight=65536", "-heartbeat.interval=10s")
	// 12 MiB: about 9 s of pure-Python CRC-32C, long enough for several upgrades.
	data := make([]byte, 12<<20)
	rand.Read(data)
	file := filepath.Join(t.TempDir(), "capture.bin")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	d := startPythonScript(t, s, "upload_driver.py", []string{"HAWK_UPLOAD_FILE=" + file, "HAWK_UPLOAD_ID=cap-1"})

	first := d.next("the first progress")
	if !strings.HasPrefix(first, "progress ") {
		t.Fatalf("driver said %q, want progress", first)
	}
	versions := []string{bin.serverV2, bin.serverV1}
	upgrades, last := 0, first
	for done := false; !done; {
		select {
		case l, ok := <-d.lines:
			if !ok || !strings.HasPrefix(l, "progress ") {
				if ok {
					last = l
				}
				done = true
				continue
			}
		default:
			if upgrades < 10 {
				s.upgradeTo(versions[upgrades%2])
				upgrades++
				continue
			}
			last = d.next("progress or the result")
			done = !strings.HasPrefix(last, "progress ")
		}
	}
	for l := range d.lines {
		last = l
	}
	if err := d.wait(); err != nil {
		t.Fatalf("upload driver: %v\nlast line: %s\nstderr:\n%s\nserver log:\n%s", err, last, d.stderr.String(), s.logTextDump())
	}
	var out struct {
		ClientID string `json:"client_id"`
		Result   struct {
			Size     int64    `json:"size"`
			SHA256   string   `json:"sha256"`
			Attempts int      `json:"attempts"`
			Retries  []string `json:"retries"`
		} `json:"result"`
		Events     map[string]int `json:"events"`
		LocalPorts []int          `json:"local_ports"`
		Errors     []string       `json:"errors"`
	}
	if err := json.Unmarshal([]byte(last), &out); err != nil {
		t.Fatalf("driver result %q: %v", last, err)
	}
	t.Logf("upload of %d bytes through %d upgrades: %+v", len(data), upgrades, out)
	if upgrades < 1 {
		t.Fatal("no upgrade happened during the upload: it proves nothing")
	}
	sum := sha256.Sum256(data)
	if out.Result.SHA256 != hex.EncodeToString(sum[:]) || out.Result.Size != int64(len(data)) {
		t.Fatalf("result %+v, want size %d sha256 %x", out.Result, len(data), sum)
	}
	if len(out.LocalPorts) != 1 || len(out.Errors) != 0 || out.Events["goaways"] != 0 {
		t.Fatalf("the connection did not survive the upgrades: local ports %v, errors %v, events %v", out.LocalPorts, out.Errors, out.Events)
	}
	// PROTOCOL.md 4.3: with the handoff an open upload moves with its connection and
	// needs no new open. Where the new process answers upload_unknown instead, the
	// client opens it again and resumes from the durable offset: at most one new
	// open per upgrade, for that reason only.
	for _, r := range out.Result.Retries {
		if !strings.HasPrefix(r, "upload_unknown: ") {
			t.Fatalf("upload retried for %q: only upload_unknown after a handoff is expected", r)
		}
	}
	if out.Result.Attempts > upgrades+1 {
		t.Fatalf("%d opens for %d upgrades", out.Result.Attempts, upgrades)
	}
	if out.Result.Attempts > 1 {
		t.Logf("the server's handoff did not carry the open upload: %d new opens (upload_unknown) in %d upgrades", out.Result.Attempts-1, upgrades)
	}
	cdir := sha256.Sum256([]byte(out.ClientID))
	stored, err := os.ReadFile(filepath.Join(s.spool, "uploads", "files", hex.EncodeToString(cdir[:]), "cap-1"))
	if err != nil || !bytes.Equal(stored, data) {
		t.Fatalf("published file: %v (%d bytes, want the %d uploaded)", err, len(stored), len(data))
	}
}
