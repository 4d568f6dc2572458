package conn

import (
	"crypto/tls"
	"time"

	"github.com/hawk-agents/hawk/internal/auth"
)

// Settings is the part of the configuration connections obey. It is immutable once
// handed to Manager.Apply; a reload builds a new one. Values a connection must keep
// for its whole life (the frame limit and max_in_flight, both announced in WELCOME)
// are copied into it at accept, as nats-server copies per-client limits, so a reload
// never changes the rules under a live parser or behind a client's back.
type Settings struct {
	ServerID          string
	Version           string
	HandshakeTimeout  time.Duration
	HeartbeatInterval time.Duration
	HeartbeatTimeout  time.Duration
	// WriteTimeout closes a connection whose writes make no progress for this long.
	WriteTimeout time.Duration
	// FrameTimeout closes a connection whose started frame is not complete this long
	// after its first byte arrived.
	FrameTimeout time.Duration
	MaxConns     int
	MaxFrameSize int
	// MaxInFlight is the most REPORTs a client may have unanswered; announced in
	// WELCOME and copied at accept, like MaxFrameSize.
	MaxInFlight int
	// Auth is the credentials in force; empty (or nil) is an open server, which
	// serves loopback and certificate-verified agents only unless AuthOpen.
	Auth     *auth.Set
	AuthOpen bool
	// DrainTimeout bounds a drain; DrainSpread is the window GOAWAYs are spread over.
	DrainTimeout time.Duration
	DrainSpread  time.Duration
	// HandshakeRate is new connections admitted per second (limits.handshake_rate);
	// 0 admits every connection. It also stretches a drain's spread (admission.go).
	HandshakeRate int

	// TLS, when set, serves the native listener over TLS (its GetConfigForClient
	// gives every handshake the material in force); nil serves plaintext.
	TLS *tls.Config
	// ClientIDFrom names the client certificate field a HELLO's client id must
	// match under mutual TLS (tlsconf.FromURISAN, FromDNSSAN, FromCN).
	ClientIDFrom string
	// ExpiryGoaway is how long before its client certificate's NotAfter a connection
	// is told GOAWAY credentials (plus up to a quarter more, jitter); 0: never.
	ExpiryGoaway time.Duration

	// stallErrorGrace, when set, replaces stallErrorGrace: tests give a slow consumer
	// the time to start reading and see its ERROR.
	stallErrorGrace time.Duration
}

// maxHelloSize is the first frame's limit: nothing is known about the peer before
// HELLO, so it gets what a HELLO can need, and no more. limits.max_frame_size bounds
// the frames after the handshake; a small one must not refuse a valid HELLO.
const maxHelloSize = 16 << 10
