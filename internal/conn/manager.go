package conn

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/accept"
	"github.com/hawk-agents/hawk/internal/dedup"
	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/mono"
	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/reaper"
	"github.com/hawk-agents/hawk/internal/tlsconf"
	"github.com/hawk-agents/hawk/internal/upload"
)

// Options configures a Manager.
type Options struct {
	Settings *Settings
	// Destination makes reports durable: the spool, or a broker.
	Destination ingest.Destination
	Logger      *zap.Logger
	Observer    Observer // nil: NopObserver
	// Dedup remembers which reports are durable, so resends are not stored twice;
	// nil: every report is stored (at least once).
	Dedup *dedup.Table
	// ProxyFrom are the load balancers whose connections start with a PROXY
	// protocol v2 header (listen_proxy_from, proxied.go).
	ProxyFrom []netip.Prefix
	// Uploads stores the files agents send (PROTOCOL.md 4.3); nil: uploads are
	// refused with upload_disabled and WELCOME announces none.
	Uploads *upload.Store
	// UploadInFlight is the max_upload_in_flight WELCOME announces with Uploads.
	UploadInFlight int
	// ackWriters is how many ACK writers to run (ackwriters.go), 0: GOMAXPROCS.
	// Tests set it to know when every writer would be taken.
	ackWriters int
}

// Manager owns every connection of the process.
type Manager struct {
	settings atomic.Pointer[Settings]
	dest     ingest.Destination
	dedup    *dedup.Table
	uploads  *upload.Store
	// uploadInFlight is WELCOME's max_upload_in_flight: 0 without uploads.
	uploadInFlight int
	log            *zap.Logger
	obs            Observer
	reg            *registry
	// proxyFrom: connections from these networks carry a PROXY header (proxied.go).
	proxyFrom []netip.Prefix
	nextID    atomic.Uint64
	slots     atomic.Int64 // connections counting against limits.max_conns (see Conn.slot)
	draining  atomic.Bool
	// Set before draining is: a handshake that sees draining reads them.
	drainDeadline atomic.Value // time.Time
	drainReason   atomic.Value // string
	// live counts accepted connections until their teardown has finished, and the
	// goroutines that refuse connections.
	live sync.WaitGroup
	adm  admission // limits.handshake_rate (admission.go)
	// tlsConns maps each TLS connection to its *tlsInfo (tls.go).
	tlsConns sync.Map
	// tlsTrust is the TLS material in force (TrustTLS at start, then each
	// CredentialsChanged): a connection that completes HELLO, or is adopted from
	// the previous process, checks its client certificate against it (tls.go).
	tlsTrust atomic.Pointer[tlsconf.Material]
	dst      drainState // what a drain publishes for late GOAWAYs (admission.go)

	// The reaper is the Manager's own actor: New starts it, Close stops it.
	reaper *reaper.Reaper
	// idle holds idle plaintext connections without a goroutine (plainidle.go);
	// nil where there is none (not Linux, or epoll refused): their readers wait.
	idle *idlePoller
	// acks writes the output commits queue (ackwriters.go): New starts the
	// writers, Close stops them.
	acks      *ackWriters
	closeOnce sync.Once
}

// New returns a Manager with its reaper running; call Serve with a listener, and
// Close once the connections are gone (after Drain).
func New(o Options) *Manager {
	m := &Manager{dest: o.Destination, dedup: o.Dedup, log: o.Logger, obs: o.Observer, reg: newRegistry(), proxyFrom: o.ProxyFrom}
	if o.Uploads != nil {
		m.uploads, m.uploadInFlight = o.Uploads, max(o.UploadInFlight, 1)
	}
	if m.log == nil {
		m.log = zap.NewNop()
	}
	if m.obs == nil {
		m.obs = NopObserver{}
	}
	m.settings.Store(o.Settings)
	var buf []*Conn
	m.reaper = reaper.Start(m.shortestTimeout, func() { buf = m.reap(buf) })
	if p, err := newIdlePoller(); err == nil {
		m.idle = p
	}
	m.acks = startAckWriters(o.ackWriters)
	return m
}

// Close waits until every connection accepted so far is torn down (its reader has
// stopped, its close is logged and counted), then stops the ACK writers and the
// reaper. The registry forgets a connection before its teardown ends, so an empty
// registry does not mean the work is over. Call Close after the listener is closed
// and the connections have been told to go (Drain); later calls return at once.
func (m *Manager) Close() {
	m.closeOnce.Do(func() {
		m.live.Wait()
		m.acks.stop()
		m.reaper.Stop()
		if m.idle != nil {
			m.idle.Close()
		}
	})
}

// NewID returns a connection id no other connection of this Manager has: legacy
// listeners (internal/legacy) number their connections from the same sequence, so
// ids are unique in records, logs and /v1/connections.
func (m *Manager) NewID() uint64 { return m.nextID.Add(1) }

// Settings returns the settings in force.
func (m *Manager) Settings() *Settings { return m.settings.Load() }

// Uploads returns the upload store, nil when uploads are off.
func (m *Manager) Uploads() *upload.Store { return m.uploads }

// Apply swaps in new settings atomically. When the credentials changed, connections
// whose token no longer covers their client id are closed with ERROR token_revoked;
// it returns how many.
func (m *Manager) Apply(s *Settings) int {
	old := m.settings.Swap(s)
	if old.AuthOpen == s.AuthOpen && old.Auth.Equal(s.Auth) {
		return 0
	}
	revoked := 0
	for _, c := range m.reg.Snapshot(nil) {
		if c.state.Load() == stateActive && !c.stillAuthorized(s) {
			revoked++
		}
	}
	return revoked
}

// Count is the number of live connections, handshaking ones included.
func (m *Manager) Count() int { return m.reg.Len() }

// Connections returns up to limit connections, ordered by id, from offset after.
func (m *Manager) Connections(after uint64, limit int) []Info {
	all := m.reg.Snapshot(nil)
	out := make([]Info, 0, min(limit, len(all)))
	for _, c := range all {
		if c.id > after {
			out = append(out, c.Info())
		}
	}
	sortInfos(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Serve accepts connections on ln until ln is closed, then returns nil.
func (m *Manager) Serve(ln net.Listener) error {
	return accept.Loop(ln, m.log, m.accept)
}

func (m *Manager) accept(nc net.Conn) {
	m.obs.Accepted()
	if m.fromBalancer(nc) {
		m.live.Go(func() { m.acceptProxied(nc) })
		return
	}
	m.acceptFrom(nc, nc.RemoteAddr())
}

// acceptFrom admits nc, from the agent at remote, and serves it.
func (m *Manager) acceptFrom(nc net.Conn, remote net.Addr) {
	s := m.Settings()
	if n := m.slots.Load(); n >= int64(s.MaxConns) {
		m.log.Warn("connection refused", zap.String("remote", remote.String()),
			zap.String("reason", "too many connections"), zap.Int("limit", s.MaxConns))
		m.refused(nc, ReasonLimit, protocol.CodeTooManyConns, fmt.Sprintf("too many connections: limit %d reached", s.MaxConns), 0)
		return
	}
	// After the connection limit, so that a connection refused for it takes no token.
	if !m.admit(nc, remote, s) {
		return
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		nc.Close()
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		nc.Close()
		return
	}
	c := &Conn{
		id:          m.nextID.Add(1),
		m:           m,
		nc:          nc,
		rc:          rc,
		remote:      remote.String(),
		since:       time.Now().UnixNano(),
		accepted:    mono.Now(),
		maxFrame:    int32(s.MaxFrameSize),
		maxInFlight: int32(s.MaxInFlight),
	}
	c.lastSeen.Store(c.accepted)
	c.slot.Store(true)
	m.slots.Add(1)
	c.readFn = c.readRaw
	c.writeFn = c.writeRaw
	if s.TLS != nil {
		// rc moves to the transport: a TLS connection reads and writes through
		// crypto/tls (tls.go), and rc == nil is what says so.
		c.nc = newTLSSession(&tlsTransport{Conn: nc, c: c, rc: rc}, s.TLS)
		c.rc = nil
	}
	m.reg.Add(c)
	if ce := m.log.Check(zap.DebugLevel, "connection accepted"); ce != nil {
		ce.Write(zap.Uint64("conn_id", c.id), zap.String("remote", c.remote))
	}
	m.live.Add(1)
	go c.serve(true)
}

// refuse tells a connection we will not serve it why, then closes it. It runs on
// its own goroutine with a short deadline so a dead peer cannot stall accepting.
func refuse(nc net.Conn, ep *protocol.ErrorPayload) {
	defer nc.Close()
	nc.SetWriteDeadline(time.Now().Add(lingerAfterError))
	if _, err := nc.Write(protocol.AppendJSON(nil, protocol.TypeError, 0, ep)); err != nil {
		return
	}
	goodbye(nc)
	io.Copy(io.Discard, nc) // until the peer closes or the linger deadline
}

func (m *Manager) handshakeFailed(c *Conn, reason string, fields ...zap.Field) {
	m.log.Info("handshake failed", append(fields, zap.Uint64("conn_id", c.id), zap.String("remote", c.remote), zap.String("reason", reason))...)
}
