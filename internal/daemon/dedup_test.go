package daemon

import (
	"errors"
	"os"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"github.com/hawk-agents/hawk/internal/dedup"
	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/spool"
)

type committed chan error

func (c committed) Committed(_ []uint64, err error) { c <- err }

// snapshotDaemon is the old process of an upgrade as passDedup sees it: a spool
// holding client "a"'s seqs 1 and 2, a table that knows them durable, its own
// dedup work done.
func snapshotDaemon(t *testing.T) (*Daemon, string) {
	t.Helper()
	dir := t.TempDir()
	sp, err := spool.Open(spool.Options{Dir: dir, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	tb, err := dedup.New(dedup.Options{Window: 64})
	if err != nil {
		t.Fatal(err)
	}
	tb.SetReady()
	c := tb.Attach("a")
	var b ingest.Batch
	for s := uint64(1); s <= 2; s++ {
		if c.Check(s, nil) != dedup.Store {
			t.Fatal("a new seq not stored")
		}
		b.Add(&ingest.Record{ClientID: "a", Seq: s, Payload: []byte("1")})
	}
	done := make(committed, 1)
	sp.Submit(&b, done)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.Committed([]uint64{1, 2}, nil)
	d := &Daemon{log: zaptest.NewLogger(t), dedup: tb, dedupDone: make(chan struct{})}
	d.dest.spool = sp
	close(d.dedupDone)
	return d, dir
}

// passed runs passDedup and returns the file the new process would inherit.
func passed(t *testing.T, d *Daemon) *os.File {
	t.Helper()
	var f *os.File
	d.passDedup(func(name string, pr *os.File) error {
		if name != dedupTableName {
			t.Fatalf("passed as %q", name)
		}
		var err error
		f, err = dup(pr)
		return err
	})
	if f == nil {
		t.Fatal("nothing passed")
	}
	return f
}

// dup stands for the descriptor the upgrader keeps for the new process.
func dup(f *os.File) (*os.File, error) {
	raw, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nf *os.File
	cerr := raw.Control(func(fd uintptr) {
		var n int
		if n, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0); err == nil {
			nf = os.NewFile(uintptr(n), "inherited")
		}
	})
	if cerr != nil {
		return nil, cerr
	}
	return nf, err
}

func newTable(t *testing.T, window int) *dedup.Table {
	t.Helper()
	tb, err := dedup.New(dedup.Options{Window: window})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// The new process receives the windows, and follows the old one's segment from
// the mark (its end: everything was committed before it).
func TestDedupPassedAndReceived(t *testing.T) {
	old, dir := snapshotDaemon(t)
	f := passed(t, old)
	d := &Daemon{dedup: newTable(t, 64)}
	segs, ok := d.receiveDedup(f, dir, os.Getpid(), zaptest.NewLogger(t))
	if !ok || len(segs) != 1 {
		t.Fatalf("received %v, %d segments to follow", ok, len(segs))
	}
	d.dedup.SetReady()
	c := d.dedup.Attach("a")
	for s, want := range map[uint64]dedup.Verdict{1: dedup.Durable, 2: dedup.Durable, 3: dedup.Store} {
		if v := c.Check(s, nil); v != want {
			t.Errorf("seq %d: %s, want %s", s, v, want)
		}
	}
}

// Whatever is wrong with what comes, the table is left as it was: the new
// process rebuilds it from the spool.
func TestDedupNotReceived(t *testing.T) {
	log := zaptest.NewLogger(t)
	old, dir := snapshotDaemon(t)

	d := &Daemon{dedup: newTable(t, 128)} // a larger window than the old process's
	if _, ok := d.receiveDedup(passed(t, old), dir, os.Getpid(), log); ok {
		t.Error("a smaller window received")
	}
	d = &Daemon{dedup: newTable(t, 64)}
	if _, ok := d.receiveDedup(passed(t, old), dir, os.Getpid()+1, log); ok {
		t.Error("another process's windows received")
	}
	if _, ok := d.receiveDedup(nil, dir, os.Getpid(), log); ok {
		t.Error("received without a file")
	}
	// The old process could not pass its windows (still reading its own).
	old.dedupDone = make(chan struct{})
	if _, ok := d.receiveDedup(passed(t, old), dir, os.Getpid(), log); ok {
		t.Error("an empty pipe received")
	}
	// Cut short: the old process died while writing.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pw.Write([]byte("HWKD\x01\x00\x00\x00\x40"))
	pw.Close()
	if _, ok := d.receiveDedup(pr, dir, os.Getpid(), log); ok {
		t.Error("a short snapshot received")
	}
	if d.dedup.Len() != 0 {
		t.Fatalf("%d clients in the table after nothing was received", d.dedup.Len())
	}
}

// An inherited descriptor comes blocking; pollable's copy honours a read deadline,
// so a parent that never writes nor closes delays the new process's windows by
// dedupTableTimeout at most.
func TestPollableHonoursADeadline(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	pr.Fd() // as exec passes it: blocking
	f, err := pollable(pr)
	pr.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
		t.Fatalf("no deadline on the copy: %v", err)
	}
	if _, err := f.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read from a silent pipe: %v, want the deadline", err)
	}
}

func TestParentAliveReadsThePidAtMostEveryInterval(t *testing.T) {
	gone := make(chan struct{})
	checks := 0
	check := func(pid int) bool { checks++; return true }

	alive := parentAlive(gone, time.Hour, check)
	for range 5 {
		if !alive(42) {
			t.Fatal("alive = false before the parent is gone")
		}
	}
	if checks != 1 {
		t.Fatalf("the pid was read %d times within the interval, want 1", checks)
	}

	every := parentAlive(gone, 0, check)
	checks = 0
	every(42)
	every(42)
	if checks != 2 {
		t.Fatalf("the pid was read %d times with a zero interval, want 2", checks)
	}

	close(gone)
	checks = 0
	if alive(42) || every(42) {
		t.Fatal("alive = true after tableflip said the parent exited")
	}
	if checks != 0 {
		t.Fatalf("the pid was read %d times after the parent was gone, want 0", checks)
	}
}

func TestParentAliveTakesThePidsWord(t *testing.T) {
	alive := parentAlive(make(chan struct{}), time.Hour, func(int) bool { return false })
	if alive(42) {
		t.Fatal("alive = true when the pid check says the parent is gone")
	}
}
