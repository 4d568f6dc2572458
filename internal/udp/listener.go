package udp

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/dedup"
	"github.com/hawk-agents/hawk/internal/ingest"
)

// Settings is the part of a listener a reload changes.
type Settings struct {
	Allow      []netip.Prefix
	Reply      bool
	MaxPending int
}

func (s *Settings) allowed(a netip.Addr) bool {
	for _, p := range s.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Observer counts what a listener does (internal/metrics implements it).
type Observer interface {
	Read(bytes int)        // a datagram was read
	Refused(reason string) // and not stored (RefusedReasons)
	Unparsed()             // and stored raw: it did not parse as the format
	Stored(n int)          // n datagrams are durable
	Replied()              // a receipt was sent
}

// Options configure a Listener.
type Options struct {
	Name        string
	Format      string // FormatLines, FormatSyslog or FormatReport
	Conn        *net.UDPConn
	MaxDatagram int
	Settings    *Settings
	Destination ingest.Destination
	Observer    Observer
	Logger      *zap.Logger
	// Credentials and Dedup serve the report format: who may speak for a client
	// id, and the clients' windows. Without Credentials the server is open (only
	// loopback sources are served); without Dedup nothing is deduplicated.
	Credentials Credentials
	Dedup       *dedup.Table
}

// Listener reads one socket (its reader) and hands what it read to the
// destination (its submitter); see the package documentation.
type Listener struct {
	o        Options
	settings atomic.Pointer[Settings]
	parse    parser
	prefix   string // "<format>:" of every client_id

	seq     uint64       // the reader's
	spare   *ackWaiter   // the reader's: handed to a window only when it keeps it
	pending atomic.Int64 // datagrams read and neither durable nor failed

	mu   sync.Mutex
	cur  *batch // the reader fills it; the submitter takes it
	wake chan struct{}

	stopping     atomic.Bool
	stop         chan struct{}
	readerDone   chan struct{}
	submitDone   chan struct{}
	inflight     sync.WaitGroup // Submits whose Committed has not come
	stopOnce     sync.Once
	startedOnce  sync.Once
	readErrorLog time.Time // the reader's: rate-limits the log of read errors
}

// New creates a listener; Start runs it.
func New(o Options) *Listener {
	l := &Listener{o: o, parse: parserFor(o.Format), prefix: o.Format + ":", seq: uint64(time.Now().UnixNano()),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), readerDone: make(chan struct{}), submitDone: make(chan struct{})}
	l.settings.Store(o.Settings)
	l.cur = newBatch(l)
	return l
}

// Apply takes a reload's settings: from the next datagram on.
func (l *Listener) Apply(s *Settings) { l.settings.Store(s) }

// Start starts the reader and the submitter.
func (l *Listener) Start() {
	l.startedOnce.Do(func() {
		go l.read()
		go l.submit()
	})
}

// Stop ends the reads (a read that returned a datagram is handled first), hands
// what was read to the destination and returns once all of it is durable or has
// failed. The socket stays open: Close closes it.
func (l *Listener) Stop() {
	l.stopOnce.Do(func() {
		l.Start() // a listener never started stops the same way
		l.stopping.Store(true)
		l.o.Conn.SetReadDeadline(time.Unix(1, 0))
		<-l.readerDone
		close(l.stop)
		<-l.submitDone
		l.inflight.Wait()
	})
}

// read is the reader goroutine.
func (l *Listener) read() {
	defer close(l.readerDone)
	buf := make([]byte, l.o.MaxDatagram+1) // one more: a datagram that fills it is oversize
	for {
		n, from, err := l.o.Conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if l.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			if !errors.Is(err, os.ErrDeadlineExceeded) && time.Since(l.readErrorLog) > time.Second {
				l.readErrorLog = time.Now()
				l.o.Logger.Warn("udp read failed", zap.String("listener", l.o.Name), zap.Error(err))
			}
			time.Sleep(time.Millisecond) // an error that repeats must not spin a core
			continue
		}
		l.handle(buf[:n], from)
	}
}

// handle takes one datagram: refused, or added to the pending batch.
func (l *Listener) handle(d []byte, from netip.AddrPort) {
	l.o.Observer.Read(len(d))
	s := l.settings.Load()
	ip := from.Addr().Unmap()
	switch {
	case !s.allowed(ip):
		l.o.Observer.Refused(RefusedNotAllowed)
		return
	case len(d) > l.o.MaxDatagram:
		l.o.Observer.Refused(RefusedOversize)
		return
	case l.pending.Load() >= int64(s.MaxPending):
		l.o.Observer.Refused(RefusedPendingFull)
		return
	case l.o.Format == FormatReport:
		l.handleReport(d, from, ip)
		return
	}
	l.mu.Lock()
	b := l.cur
	start := len(b.scratch)
	var ok bool
	b.scratch, ok = l.parse(b.scratch, d)
	payload := b.scratch[start:]
	if len(payload) == 0 {
		b.scratch = b.scratch[:start]
		l.mu.Unlock()
		l.o.Observer.Refused(RefusedEmpty)
		return
	}
	if !ok {
		l.o.Observer.Unparsed()
	}
	l.seq++
	b.id = append(b.id[:0], l.prefix...)
	b.id = ip.AppendTo(b.id)
	b.id = append(b.id, ':')
	b.id = strconv.AppendUint(b.id, uint64(from.Port()), 10)
	b.b.Add(&ingest.Record{ClientID: string(b.id), Seq: l.seq, Received: time.Now(), Payload: payload,
		Listener: l.o.Name, Format: l.o.Format})
	b.scratch = b.scratch[:start]
	if s.Reply {
		b.replies = append(b.replies, reply{to: from, seq: l.seq, size: len(d)})
	}
	l.pending.Add(1)
	l.mu.Unlock()
	l.wakeSubmitter()
}

func (l *Listener) wakeSubmitter() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// submit is the submitter goroutine: it hands each pending batch to the
// destination, one Submit at a time (a blocked Submit lets the batch grow).
func (l *Listener) submit() {
	defer close(l.submitDone)
	for {
		stopping := false
		select {
		case <-l.wake:
		case <-l.stop:
			stopping = true
		}
		l.flush()
		if stopping {
			return
		}
	}
}

// flush hands the pending batch, if it holds anything, to the destination.
func (l *Listener) flush() {
	l.mu.Lock()
	b := l.cur
	full := b.b.Len() > 0
	if full {
		l.cur = newBatch(l)
	}
	l.mu.Unlock()
	if full {
		l.inflight.Add(1)
		l.o.Destination.Submit(&b.b, b)
	}
}
