package legacy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/accept"
	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/connset"
	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/mono"
	"github.com/hawk-agents/hawk/internal/reaper"
	"github.com/hawk-agents/hawk/internal/upload"
)

// Settings is what a reload may change on a running listener. It is immutable once
// handed to New or Apply. MaxFrameSize is copied into a connection at accept.
type Settings struct {
	Allow        []netip.Prefix // peers permitted; everyone else is closed at accept
	IdleTimeout  time.Duration  // a connection silent this long is closed (ffff: the heartbeat timeout)
	MaxFrameSize int            // the largest data a frame may carry
}

func (s *Settings) allowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Options configures a Listener.
type Options struct {
	Name        string
	Format      Format
	Settings    *Settings
	Destination ingest.Destination
	Logger      *zap.Logger
	Observer    Observer // nil: NopObserver
	// NewID numbers connections; the daemon passes the native Manager's, so ids are
	// unique across every listener. nil: a counter of the Listener's own.
	NewID func() uint64
	// WriteTimeout is read at every reaper pass (limits.write_timeout, live).
	// nil: 10s.
	WriteTimeout func() time.Duration
	// Uploads stores the files of a listener of format file, which needs it.
	Uploads *upload.Store
}

// Listener serves one legacy listener: its connections, their reaper and their
// drain. Its methods are safe for concurrent use.
type Listener struct {
	name     string
	format   Format
	codec    codec // nil for format file
	uploads  *upload.Store
	settings atomic.Pointer[Settings]
	dest     ingest.Destination
	log      *zap.Logger
	obs      Observer
	newID    func() uint64
	writeTO  func() time.Duration

	conns connset.Set[*lconn]

	live       sync.WaitGroup // accepted connections until their teardown ends
	lastSeq    atomic.Int64   // the last seq base handed out (see nextSeqBase)
	lastRefuse atomic.Int64   // mono.Now() of the last refusal logged

	reaper    *reaper.Reaper
	closeOnce sync.Once
}

// New returns a Listener with its reaper running; call Serve with a listener from
// the upgrader, and Close once its connections are gone (after Drain).
func New(o Options) (*Listener, error) {
	if o.Settings == nil || o.Destination == nil {
		return nil, errors.New("legacy: New needs Settings and a Destination")
	}
	if _, err := ParseFormat(string(o.Format)); err != nil {
		return nil, fmt.Errorf("legacy: listener %s: %w", o.Name, err)
	}
	l := &Listener{name: o.Name, format: o.Format, dest: o.Destination, uploads: o.Uploads,
		log: o.Logger, obs: o.Observer, newID: o.NewID, writeTO: o.WriteTimeout}
	if o.Format == FormatFile {
		if o.Uploads == nil {
			return nil, fmt.Errorf("legacy: listener %s: format file stores uploads: set uploads.enabled", o.Name)
		}
	} else {
		l.codec = codecFor(o.Format)
	}
	if l.log == nil {
		l.log = zap.NewNop()
	}
	if l.obs == nil {
		l.obs = NopObserver{}
	}
	if l.newID == nil {
		var n atomic.Uint64
		l.newID = func() uint64 { return n.Add(1) }
	}
	if l.writeTO == nil {
		l.writeTO = func() time.Duration { return 10 * time.Second }
	}
	l.settings.Store(o.Settings)
	var buf []*lconn
	l.reaper = reaper.Start(l.shortestTimeout, func() { buf = l.reap(buf) })
	return l, nil
}

// Name is the listener's name; Format its wire format.
func (l *Listener) Name() string   { return l.name }
func (l *Listener) Format() Format { return l.format }

// Settings returns the settings in force.
func (l *Listener) Settings() *Settings { return l.settings.Load() }

// Apply swaps in new settings. Connections from peers the new allow list no longer
// permits are closed (as removed tokens close native ones); it returns how many.
func (l *Listener) Apply(s *Settings) int {
	l.settings.Store(s)
	n := 0
	for _, c := range l.conns.Snapshot(nil) {
		if !s.allowed(c.peer) {
			c.closeNow(ReasonNotAllowed)
			n++
		}
	}
	return n
}

// Serve accepts connections on ln until ln is closed, then returns nil.
func (l *Listener) Serve(ln net.Listener) error {
	return accept.Loop(ln, l.log, l.accept, zap.String("listener", l.name))
}

func peerAddr(nc net.Conn) netip.AddrPort {
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(nc.RemoteAddr().String())
	return ap
}

func (l *Listener) accept(nc net.Conn) {
	s := l.Settings()
	peer := peerAddr(nc)
	if !s.allowed(peer.Addr()) {
		// These formats carry no credentials: the source network is the only check.
		// Counted before the close, so whoever sees the close sees the count.
		l.obs.Refused(RefusedNotAllowed)
		nc.Close()
		// A scan must not flood the log: one line a second, the counter has the rest.
		if now := mono.Now(); now-l.lastRefuse.Load() >= int64(time.Second) {
			l.lastRefuse.Store(now)
			l.log.Warn("connection refused", zap.String("listener", l.name), zap.String("remote", nc.RemoteAddr().String()),
				zap.String("reason", "source address not in allow"))
		}
		return
	}
	l.obs.Accepted()
	remote := nc.RemoteAddr().String()
	c := &lconn{
		id:       l.newID(),
		l:        l,
		nc:       nc,
		remote:   remote,
		peer:     peer.Addr(),
		clientID: string(l.format) + ":" + remote,
		since:    time.Now(),
		maxFrame: s.MaxFrameSize,
		nextSeq:  l.nextSeqBase(),
		done:     make(chan struct{}),
	}
	c.lastSeen.Store(mono.Now())
	l.conns.Add(c)
	if ce := l.log.Check(zap.DebugLevel, "legacy connection accepted"); ce != nil {
		ce.Write(zap.String("listener", l.name), zap.Uint64("conn_id", c.id), zap.String("client_id", c.clientID))
	}
	l.live.Add(1)
	if l.format == FormatFile {
		go c.serveFile()
		return
	}
	go c.serve()
}

// nextSeqBase is the first seq of a new connection: the wall clock in nanoseconds
// at accept, kept strictly increasing within the process. A connection's seqs count
// up from it by one per report, so within a client id (one peer ip:port) seqs
// increase across reconnections: a connection cannot have sent more reports than
// nanoseconds have passed before the same port is used again (unless the wall clock
// steps back between processes).
func (l *Listener) nextSeqBase() uint64 {
	now := time.Now().UnixNano()
	for {
		last := l.lastSeq.Load()
		next := max(now, last+1)
		if l.lastSeq.CompareAndSwap(last, next) {
			return uint64(next)
		}
	}
}

// Count is the number of open connections.
func (l *Listener) Count() int { return l.conns.Len() }

// Connections returns the open connections with an id above after, by id (at most
// limit), for /v1/connections.
func (l *Listener) Connections(after uint64, limit int) []conn.Info {
	var out []conn.Info
	for _, c := range l.conns.Snapshot(nil) {
		if c.id > after {
			out = append(out, c.info())
		}
	}
	slices.SortFunc(out, func(a, b conn.Info) int { return cmp.Compare(a.ID, b.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// DrainResult is what a drain did.
type DrainResult struct {
	Closed int // connections that ended by themselves before the deadline
	Cut    int // connections closed at the deadline
}

// Drain waits, after the listener was closed, until every connection has left or
// timeout has passed (or ctx ended), then closes what is left. These formats have
// no GOAWAY, so an agent is not told to move: its connection is served (reports
// stored and receipted) until it leaves or is cut, and a cut ffff agent gives up
// for good. After an upgrade that is what happens to the connections HandOff could
// not move.
func (l *Listener) Drain(ctx context.Context, timeout time.Duration) DrainResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	before := l.Count()
	select {
	case <-l.conns.Emptied():
	case <-ctx.Done():
	}
	left := l.conns.Snapshot(nil)
	for _, c := range left {
		c.closeNow(ReasonDrain)
	}
	for _, c := range left {
		<-c.done
	}
	res := DrainResult{Cut: len(left), Closed: max(before-len(left), 0)}
	l.log.Info("legacy listener drained", zap.String("listener", l.name), zap.Int("closed_by_client", res.Closed), zap.Int("cut_at_deadline", res.Cut))
	return res
}

// Close waits until every connection accepted so far is torn down, then stops the
// reaper. Call it after the listener is closed and Drain has returned.
func (l *Listener) Close() {
	l.closeOnce.Do(func() {
		l.live.Wait()
		l.reaper.Stop()
	})
}
