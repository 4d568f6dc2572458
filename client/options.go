package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Version is the library version sent in HELLO as client_version when
// Options.ClientVersion is empty.
const Version = "0.1.0"

// Defaults for the zero values of Options.
const (
	DefaultMaxInFlight       = 64
	DefaultDialTimeout       = 5 * time.Second
	DefaultMinBackoff        = 100 * time.Millisecond
	DefaultMaxBackoff        = 10 * time.Second
	DefaultHeartbeatInterval = 30 * time.Second // when neither Options nor WELCOME name one
)

// closeWait bounds how long Close waits for reports in flight (a variable for tests).
var closeWait = 5 * time.Second

// goawayGrace is how long past a GOAWAY deadline the client keeps reading a
// connection the server has not closed yet: the server closes it at the deadline
// (ERROR drain_timeout, after the ACKs queued before it), but checks its deadlines
// only every so often (up to 1 s late) and measures from the sending, we from the
// receipt.
var goawayGrace = time.Second

// Options configures a Client. Addr and ClientID are required; every other field
// has a usable zero value.
type Options struct {
	Addr     string // host:port of the hawk server
	ClientID string // the agent's identity; the server keys reports by (ClientID, seq)
	Token    string // auth token; empty for an open server

	// HeartbeatInterval: when nothing was sent or nothing was received for this
	// long, a PING is sent; when nothing was received for 3× this long, the
	// connection is taken for dead and replaced. 0 uses the interval the server
	// announces in WELCOME.
	HeartbeatInterval time.Duration
	// MaxInFlight is the window: how many reports may be unacknowledged at once
	// (default 64). Report blocks while the window is full. On each connection the
	// client also keeps at most the server's WELCOME max_in_flight unanswered;
	// reports beyond it wait in the client until ACKs make room.
	MaxInFlight int
	// DialTimeout bounds one connection attempt: TCP connect plus HELLO/WELCOME
	// (default 5s).
	DialTimeout time.Duration
	// MinBackoff and MaxBackoff bound the reconnect backoff: attempt n waits a
	// uniformly random time in [0, min(MaxBackoff, MinBackoff·2ⁿ)) ("full jitter").
	// Defaults 100ms and 10s.
	MinBackoff, MaxBackoff time.Duration
	// FirstSeq is the seq of the first report. 0 derives it from
	// time.Now().UnixNano(), so seqs keep increasing across agent restarts too.
	FirstSeq uint64
	// Dialer opens the TCP connection; nil uses a net.Dialer. The context carries
	// the dial timeout.
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
	// TLS, when set, runs every connection over TLS with this configuration:
	// RootCAs verifies the server (nil: the system roots), ServerName is the name
	// its certificate must carry (empty: Addr's host), and Certificates or, for an
	// agent that rotates its own certificate, GetClientCertificate give the client
	// certificate for mutual TLS. GetClientCertificate is called on every
	// connection, so a reconnect (after a GOAWAY credentials, say) presents the
	// certificate in force then. The client uses a clone; nil: plaintext.
	// A nil ClientSessionCache gets a cache of the client's own, so that a
	// reconnect resumes the TLS session (Stats.TLSResumed) instead of a full
	// handshake: the server signs nothing and verifies no client chain. The
	// session is forgotten, and the next handshake is a full one, after GOAWAY
	// credentials and when GetClientCertificate gives another certificate than
	// the one the session was made with.
	TLS *tls.Config
	// ClientVersion is sent in HELLO; empty sends "hawk-go/"+Version.
	ClientVersion string
	// PerReportAcks asks the server for one ACK frame per report instead of the
	// default range acknowledgements (ACK_RANGE, PROTOCOL.md 4.5), which cost the
	// server and the client a frame per write instead of one per report. Either way
	// a report is acknowledged only once durable; a server that does not know
	// ranges answers one ACK per report whatever this says.
	PerReportAcks bool
	// Logger receives connection-level logs (never one per report); nil discards.
	Logger *slog.Logger
	// OnEvent, if set, is called for connection-level events (never per report).
	// It is called synchronously from the client's goroutines: it must be quick and
	// must not call Close.
	OnEvent func(Event)
}

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds.
const (
	EventConnected        EventKind = iota + 1 // a connection completed its handshake
	EventDisconnected                          // a connection ended; Err is nil when the client ended it on purpose
	EventGoaway                                // the server sent GOAWAY; Reason is its reason
	EventReconnectAttempt                      // a new connection attempt starts (not the one inside Dial)
	EventDialFailed                            // a connection attempt failed; Err says why
	EventResend                                // N unacknowledged reports were sent again
)

var eventNames = [...]string{
	EventConnected: "connected", EventDisconnected: "disconnected", EventGoaway: "goaway",
	EventReconnectAttempt: "reconnect_attempt", EventDialFailed: "dial_failed", EventResend: "resend",
}

func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return "unknown"
}

// Event is a connection-level happening, for Options.OnEvent.
type Event struct {
	Kind   EventKind
	ConnID uint64 // the server's conn_id of the connection concerned, when known
	Err    error  // EventDisconnected, EventDialFailed
	N      int    // EventResend: how many reports
	Reason string // EventGoaway: the server's reason
}

func (o *Options) normalize() error {
	if o.Addr == "" {
		return errors.New("hawk: Options.Addr is empty")
	}
	if o.ClientID == "" {
		return errors.New("hawk: Options.ClientID is empty")
	}
	if o.MaxInFlight < 0 || o.DialTimeout < 0 || o.MinBackoff < 0 || o.MaxBackoff < 0 || o.HeartbeatInterval < 0 {
		return errors.New("hawk: negative value in Options")
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.FirstSeq == 0 {
		o.FirstSeq = uint64(time.Now().UnixNano())
	}
	if o.Dialer == nil {
		o.Dialer = func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	if o.TLS != nil {
		o.TLS = o.TLS.Clone()
		if o.TLS.ServerName == "" {
			host, _, err := net.SplitHostPort(o.Addr)
			if err != nil {
				return fmt.Errorf("hawk: TLS server name from Addr %q: %w", o.Addr, err)
			}
			o.TLS.ServerName = host
		}
	}
	if o.ClientVersion == "" {
		o.ClientVersion = "hawk-go/" + Version
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}
