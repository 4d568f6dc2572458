package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/client"
	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/upload"
)

// gatedFile is a generated file (a random block repeated with a prime period, so
// a byte at the wrong offset shows in the sha256) whose reads wait until the test
// opens the gate past them: the upload is where the test wants it at each event.
type gatedFile struct {
	size  int64
	block []byte
	mu    sync.Mutex
	cond  *sync.Cond
	gate  int64
}

const gatedPeriod = 65521

func newGatedFile(size int64) *gatedFile {
	f := &gatedFile{size: size, block: make([]byte, 2*gatedPeriod)}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range gatedPeriod {
		f.block[i] = byte(r.Uint32())
	}
	copy(f.block[gatedPeriod:], f.block[:gatedPeriod])
	f.cond = sync.NewCond(&f.mu)
	return f
}

func (f *gatedFile) open(to int64) {
	f.mu.Lock()
	f.gate = min(to, f.size)
	f.mu.Unlock()
	f.cond.Broadcast()
}

func (f *gatedFile) ReadAt(p []byte, off int64) (int, error) {
	end := min(off+int64(len(p)), f.size)
	f.mu.Lock()
	for f.gate < end {
		f.cond.Wait()
	}
	f.mu.Unlock()
	n := 0
	for off+int64(n) < end {
		i := (off + int64(n)) % gatedPeriod
		n += copy(p[n:end-off], f.block[i:i+gatedPeriod])
	}
	if end < off+int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

func (f *gatedFile) sha256() string {
	f.open(f.size)
	h := sha256.New()
	io.Copy(h, io.NewSectionReader(f, 0, f.size))
	return hex.EncodeToString(h.Sum(nil))
}

func fileSHA256(t *testing.T, path string) string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// A large file uploaded on an agent's connection while the server is upgraded 10
// times and then SIGKILLed and restarted: the file stored is the file sent
// (sha256), announced by one record; the bytes sent twice are at most the in-flight
// bound per interruption (only the kill interrupts: at an upgrade the upload moves
// with its connection); the reports sent on the same connection throughout are
// all ACKed. 1 GiB; 128 MiB under -race, whose client is many times slower.
func TestUploadSurvivesUpgradesAndSigkill(t *testing.T) {
	size := int64(1 << 30)
	if testutil.RaceEnabled {
		size = 128 << 20
	}
	const upgrades, inFlight = 10, 4 << 20
	flags := []string{"-uploads.enabled=true", fmt.Sprintf("-uploads.max_in_flight=%d", inFlight), "-uploads.max_file_size=0",
		"-uploads.client_quota=0", "-uploads.total_quota=0"}
	s := startServer(t, bin.serverV1, append(slices.Clone(flags), testutil.StableListen(t))...) // started again on addr below
	addr := s.addr()
	c, err := client.Dial(context.Background(), client.Options{Addr: addr, ClientID: "big-upload"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Reports on the same connection, one at a time, their ack latency kept.
	var (
		lmu       sync.Mutex
		latencies []time.Duration
		acked     atomic.Int64
	)
	ctx, stopReports := context.WithCancel(context.Background())
	reportErr := make(chan error, 1)
	go func() {
		defer close(reportErr)
		for i := 0; ctx.Err() == nil; i++ {
			start := time.Now()
			if _, err := c.Report(ctx, []byte(fmt.Sprintf(`{"n":%d}`, i))); err != nil {
				if ctx.Err() == nil {
					reportErr <- err
				}
				return
			}
			lmu.Lock()
			latencies = append(latencies, time.Since(start))
			lmu.Unlock()
			acked.Add(1)
			time.Sleep(5 * time.Millisecond) // a steady trickle, not a load
		}
	}()

	file := newGatedFile(size)
	step := size / (upgrades + 2)
	file.open(step)
	var durable, sent atomic.Int64
	done := make(chan error, 1)
	go func() {
		done <- c.Upload(context.Background(), client.Upload{ID: "big-1", Name: "big.bin", File: file, Size: size,
			Progress: func(d, _ int64) { durable.Store(d) }, Sent: func(_, n int64) { sent.Add(n) }})
	}()
	// Each event comes with the upload half way through its step and its reads
	// allowed to the step's end, so chunks are in flight while it happens.
	reportsSince := func(what string) {
		base := acked.Load()
		testutil.Eventually(t, 20*time.Second, func() bool { return acked.Load() >= base+3 }, "reports ACKed after %s", what)
	}
	cur := s
	for i := range upgrades + 1 {
		testutil.Eventually(t, 60*time.Second, func() bool { return durable.Load() >= int64(i)*step+step/2 },
			"the upload past %d bytes before event %d (durable %d)", int64(i)*step+step/2, i+1, durable.Load())
		file.open(int64(i+2) * step)
		if i < upgrades {
			cur.upgradeTo([]string{bin.serverV2, bin.serverV1}[i%2])
			reportsSince(fmt.Sprintf("upgrade %d", i+1))
			continue
		}
		pid := cur.pid() // a process the upgrades started: not cur.cmd's
		cur.signal(pid, syscall.SIGKILL)
		waitGone(t, pid, 10*time.Second, "the killed server")
		cur = restartServer(t, s, append(slices.Clone(flags), "-listen="+addr)...)
		reportsSince("the restart")
	}
	file.open(size)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Minute):
		t.Fatalf("upload not done after 5 minutes: durable %d of %d", durable.Load(), size)
	}
	reportsSince("the upload")
	stopReports()
	if err := <-reportErr; err != nil {
		t.Fatalf("a report on the uploading connection failed: %v", err)
	}
	if st := c.Stats(); st.Reconnects != 1 || st.Goaways != 0 {
		t.Fatalf("client stats %+v: want one reconnect (the kill) and no GOAWAY (the upgrades move the connection)", st)
	}
	cur.stopAll()

	recs := uploadRecords(t, s.spool, func(id string) bool { return id == "big-upload" })
	want := file.sha256()
	if len(recs) != 1 || recs[0].SHA256 != want || recs[0].Size != size {
		t.Fatalf("file records %+v, want one of %d bytes with sha256 %s", recs, size, want)
	}
	if got := fileSHA256(t, recs[0].Path); got != want {
		t.Fatalf("the stored file's sha256 is %s, want %s", got, want)
	}
	resent := sent.Load() - size
	if resent > inFlight { // one interruption: the kill
		t.Fatalf("%d bytes sent twice over %d upgrades and a kill, want at most %d (the in-flight bound, once)", resent, upgrades, inFlight)
	}
	lmu.Lock()
	slices.Sort(latencies)
	p50, p99 := latencies[len(latencies)/2], latencies[len(latencies)*99/100]
	lmu.Unlock()
	t.Logf("%d MiB through %d upgrades and a SIGKILL: %d bytes sent twice; %d reports on the same connection, ack p50 %v p99 %v (the kill's wait included)",
		size>>20, upgrades, resent, len(latencies), p50.Round(time.Microsecond), p99.Round(time.Microsecond))
}

// uploadRecords returns the file records in the spool of the client id (its
// records' client_id is "upload:<client id>").
func uploadRecords(t *testing.T, spool string, keep func(clientID string) bool) []upload.FileRecord {
	t.Helper()
	var recs []upload.FileRecord
	for _, r := range spoolRecordsWhere(t, spool, func(r *spoolRecord) bool {
		return strings.HasPrefix(r.ClientID, "upload:") && keep(strings.TrimPrefix(r.ClientID, "upload:"))
	}) {
		var p struct{ File upload.FileRecord }
		if err := json.Unmarshal(r.Payload, &p); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, p.File)
	}
	return recs
}

// naiveSend is the naive sender: the name, wait for "ok", the bytes, then close.
func naiveSend(t *testing.T, addr, name string, data []byte) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, name)
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	ok := make([]byte, 2)
	if _, err := io.ReadFull(nc, ok); err != nil || string(ok) != "ok" {
		t.Fatalf("answer to the name %q: %q %v", name, ok, err)
	}
	if _, err := nc.Write(data); err != nil {
		t.Fatal(err)
	}
}

// The naive sender against a file listener: a whole file, and one cut short (its
// sender stopped after a third: the same FIN); both are stored as they came and
// announced once each with "complete": "unknown", never more.
func TestNaiveFileSender(t *testing.T) {
	s := startServer(t, bin.serverV1, "-uploads.enabled=true",
		`-legacy.listeners=[{name: files, address: "127.0.0.1:0", format: file, allow: [127.0.0.0/8]}]`)
	addr := s.waitLog(10*time.Second, func(l logLine) bool { return l.str("msg") == "legacy listening" && l.str("listener") == "files" }).str("addr")
	file := newGatedFile(8 << 20)
	file.open(file.size)
	data := make([]byte, file.size)
	file.ReadAt(data, 0)
	naiveSend(t, addr, "whole.bin\n", data)
	naiveSend(t, addr, "cut.bin", data[:len(data)/3])
	s.waitLogs(func(l logLine) bool { return l.str("msg") == "legacy file published" }, 2)
	s.stopAll()

	recs := uploadRecords(t, s.spool, func(id string) bool { return strings.HasPrefix(id, "file:") })
	sizes := map[string]int64{"whole.bin": int64(len(data)), "cut.bin": int64(len(data) / 3)}
	if len(recs) != 2 {
		t.Fatalf("records %+v, want 2", recs)
	}
	for _, r := range recs {
		want, ok := sizes[r.Name]
		if !ok || r.Size != want || r.Complete != upload.Unknown {
			t.Fatalf("record %+v: want %d bytes and complete unknown", r, want)
		}
		sum := sha256.Sum256(data[:want])
		if got := fileSHA256(t, r.Path); got != hex.EncodeToString(sum[:]) || r.SHA256 != got {
			t.Fatalf("%s: stored sha256 %s, record %s, sent %x", r.Name, got, r.SHA256, sum)
		}
	}
}
