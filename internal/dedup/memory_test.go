package dedup

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/spool"
)

// heapPerClient fills a table with n clients, each having had reports committed,
// and returns the heap it holds per client (runtime.MemStats, after GC, before
// and after). attached keeps every client connected (pending bitmap included).
func heapPerClient(t testing.TB, window, n int, attached bool) float64 {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "agent-" + strconv.Itoa(100000+i) // 12 bytes, like a host name
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tb, err := New(Options{Window: window, MaxClients: n})
	if err != nil {
		t.Fatal(err)
	}
	tb.SetReady()
	seqs := make([]uint64, 8)
	for _, id := range ids {
		c := tb.Attach(id)
		base := uint64(time.Now().UnixNano())
		for i := range seqs {
			seqs[i] = base + uint64(i)
			c.Check(seqs[i], nil)
		}
		c.Committed(seqs, nil)
		if !attached {
			tb.Detach(c)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if tb.Len() != n {
		t.Fatalf("table holds %d clients, want %d", tb.Len(), n)
	}
	runtime.KeepAlive(tb)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// TestMemoryAt100kClients measures the table at 100,000 clients with the default
// window and holds it to a bound: the durable bitmap (512 bytes) plus the Client and
// its map entry, and for a connected client the pending bitmap (another 512).
//
//	go test -run MemoryAt100k -v ./internal/dedup/
func TestMemoryAt100kClients(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 100,000 clients")
	}
	const n = 100_000
	idle := heapPerClient(t, DefaultWindow, n, false)
	conn := heapPerClient(t, DefaultWindow, n, true)
	t.Logf("window %d, %d clients: %.0f bytes per client remembered without a connection (%.1f MiB), %.0f with one (%.1f MiB)",
		DefaultWindow, n, idle, idle*n/(1<<20), conn, conn*n/(1<<20))
	if idle > 800 || conn > 1400 {
		t.Fatalf("%.0f / %.0f bytes per client, want at most 800 / 1400", idle, conn)
	}
}

// BenchmarkCheckCommit is a connection's cost per report: 8 Checks and one
// Committed per batch, as the reader and the committer do.
func BenchmarkCheckCommit(b *testing.B) {
	tb := newTable(b, DefaultWindow, 10)
	c := tb.Attach("agent-1")
	defer tb.Detach(c)
	var seqs [8]uint64
	seq := uint64(time.Now().UnixNano())
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		seqs[i%8] = seq
		c.Check(seq, nil)
		seq++
		if i%8 == 7 {
			c.Committed(seqs[:], nil)
		}
	}
}

// writeSpool fills dir with about size bytes of 64 MiB segments from clients
// agents sending 256-byte payloads in turn, as one process (pid 4242) would.
func writeSpool(tb testing.TB, dir string, size int64, clients int) (lines, written int64) {
	payload := `"` + fmt.Sprintf("%0254d", 0) + `"`
	seqs := make([]uint64, clients)
	base := uint64(time.Now().UnixNano())
	var b ingest.Batch
	for n := 0; written < size; n++ {
		f, err := os.Create(filepath.Join(dir, spool.SegmentName(time.Unix(1764000000+int64(n), 0), 4242, uint64(n))))
		if err != nil {
			tb.Fatal(err)
		}
		var seg int64
		for seg < 64<<20 && written+seg < size {
			b.Reset()
			for range 1000 {
				i := int(lines % int64(clients))
				seqs[i]++
				b.Add(&ingest.Record{ClientID: "agent-" + strconv.Itoa(100000+i), Seq: base + seqs[i], ConnID: uint64(i),
					Received: time.Unix(1764000000, int64(lines)), Payload: []byte(payload)})
				lines++
			}
			if _, err := f.Write(b.Lines()); err != nil {
				tb.Fatal(err)
			}
			seg += int64(len(b.Lines()))
		}
		written += seg
		if err := f.Close(); err != nil {
			tb.Fatal(err)
		}
	}
	return lines, written
}

// BenchmarkRebuild1GiB rebuilds the windows of 100,000 clients from a 1 GiB spool
// (read from the page cache: the spool was just written).
//
//	go test -run x -bench Rebuild1GiB -benchtime 3x ./internal/dedup/
func BenchmarkRebuild1GiB(b *testing.B) {
	dir := b.TempDir()
	lines, size := writeSpool(b, dir, 1<<30, 100_000)
	b.SetBytes(size)
	b.ResetTimer()
	var st RebuildStats
	for b.Loop() {
		tb, _ := New(Options{MaxClients: 200_000})
		var err error
		st, _, err = tb.Rebuild(dir, size)
		if err != nil {
			b.Fatal(err)
		}
		if st.Lines != lines || st.Clients != 100_000 {
			b.Fatalf("rebuilt %d records of %d clients, want %d of 100000", st.Lines, st.Clients, lines)
		}
	}
	b.ReportMetric(st.Took.Seconds(), "s/rebuild")
	b.ReportMetric(float64(st.Lines), "records")
}
