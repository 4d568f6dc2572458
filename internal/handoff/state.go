package handoff

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/hawk-agents/hawk/internal/upload"
)

// StateVersion is the version of the State encoding this build writes and reads.
// A change a reader of the previous version would misread takes a new version.
const StateVersion = 1

// Kinds of connection a State describes.
const (
	KindNative = "native" // the hawk protocol (internal/conn)
	KindLegacy = "legacy" // a legacy format (internal/legacy): Listener, Format and NextSeq are set
)

// maxStateSize bounds one encoded State: a partial frame is at most the largest
// frame size (64 MiB) plus its header, and the rest is small.
const maxStateSize = 64<<20 + 1<<20

// State is what the new process needs to resume a connection where the old one
// stopped reading it, at a quiet point: no report in flight, no output pending.
type State struct {
	Kind     string    `json:"kind"`
	ConnID   uint64    `json:"conn_id"` // in the old process; logged, the new one assigns its own
	ClientID string    `json:"client_id"`
	Token    string    `json:"token,omitempty"` // what it authenticated with, so revocation still applies
	Remote   string    `json:"remote"`
	Since    time.Time `json:"since"` // connect time, kept for /v1/connections
	// As announced in WELCOME; the connection keeps them for its life.
	// Legacy: MaxFrame is the listener's max_frame_size at accept; MaxInFlight is 0.
	MaxFrame    int `json:"max_frame"`
	MaxInFlight int `json:"max_in_flight"`
	// Ack is the acknowledgement mode WELCOME granted (protocol.AckModeRange, or
	// empty: one ACK per report); native only. A reader without this field refuses
	// such a state rather than answer the client in a mode it did not ask for.
	Ack string `json:"ack,omitempty"`
	// Legacy only (omitted from a native State): the
	// listener it was accepted on, adopted by the new process's listener of that
	// name and format; the next seq the server assigns (seqs keep increasing within
	// the client id); whether the reader was skipping junk.
	Listener string `json:"listener,omitempty"`
	Format   string `json:"format,omitempty"`
	NextSeq  uint64 `json:"next_seq,omitempty"`
	InSync   bool   `json:"in_sync,omitempty"`
	// Partial holds the bytes of an incomplete frame the old reader had read.
	Partial []byte `json:"partial,omitempty"`
	// Counters worth keeping across the move.
	FramesIn  uint64 `json:"frames_in"`
	FramesOut uint64 `json:"frames_out"`
	BytesIn   uint64 `json:"bytes_in"`
	BytesOut  uint64 `json:"bytes_out"`
	// The client's dedup window (internal/dedup): the highest seq seen and a bitmap
	// of which seqs below it are durable (bit i of word i/64: seq DedupHi-i).
	DedupHas     bool     `json:"dedup_has,omitempty"`
	DedupHi      uint64   `json:"dedup_hi,omitempty"`
	DedupDurable []uint64 `json:"dedup_durable,omitempty"`
	// TLS, for a native connection over TLS 1.3: the session goes on in the new
	// process's record layer. A reader without this field refuses such a state
	// (unknown field) and so closes only the connections it could not serve.
	TLS *TLSState `json:"tls,omitempty"`
	// Uploads open on a native connection (PROTOCOL.md 4.3): each goes on in the
	// new process with no new open. A reader without this field refuses such a
	// state, as for TLS.
	Uploads []upload.Handover `json:"uploads,omitempty"`
}

// maxUploads bounds a State's open uploads.
const maxUploads = 1 << 10

// TLSState is a TLS 1.3 session at the quiet point (internal/tlsrecord.State)
// and the client's verified certificate chain, leaf first, in DER (none without
// a client certificate), so identity, CA removal and the expiry GOAWAY still
// apply in the new process. The secrets travel only over the handoff socketpair.
type TLSState struct {
	Suite     uint16   `json:"suite"`
	InSecret  []byte   `json:"in_secret"`
	OutSecret []byte   `json:"out_secret"`
	InSeq     uint64   `json:"in_seq"`
	OutSeq    uint64   `json:"out_seq"`
	Input     []byte   `json:"input,omitempty"`
	Chain     [][]byte `json:"chain,omitempty"`
}

// Encode returns st as a message: one version byte, then JSON.
func (st *State) Encode() ([]byte, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("handoff: encode state of conn %d: %w", st.ConnID, err)
	}
	return append([]byte{StateVersion}, b...), nil
}

// Open makes the connection st describes of f, the descriptor that came with it:
// f itself, as a net.Conn (socket.go), or, should f not be pollable, a duplicate
// by net.FileConn, and f is closed. The connection's methods are those of a
// *net.TCPConn that adopters use: CloseWrite and SyscallConn, besides net.Conn's.
// An empty Remote is filled in from the socket.
func (st *State) Open(f *os.File) (net.Conn, error) {
	var nc net.Conn
	if s := openSocket(f); s != nil {
		nc = s
	} else {
		var err error
		nc, err = net.FileConn(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("adopt %s conn %d (%s): %w", st.Kind, st.ConnID, st.ClientID, err)
		}
	}
	if st.Remote == "" {
		st.Remote = nc.RemoteAddr().String()
	}
	return nc, nil
}

// DecodeState parses a State message and checks what the receiver relies on. Its
// errors name the problem: the new process sends them to the client in an ERROR.
func DecodeState(msg []byte) (*State, error) {
	if len(msg) == 0 {
		return nil, errors.New("handoff state: empty message")
	}
	if len(msg) > maxStateSize {
		return nil, fmt.Errorf("handoff state: %d bytes, the limit is %d", len(msg), maxStateSize)
	}
	if v := msg[0]; v != StateVersion {
		return nil, fmt.Errorf("handoff state: version %d, this server reads version %d", v, StateVersion)
	}
	d := json.NewDecoder(bytes.NewReader(msg[1:]))
	d.DisallowUnknownFields() // a field this build does not know is a change it would misread
	st := new(State)
	if err := d.Decode(st); err != nil {
		return nil, fmt.Errorf("handoff state: malformed: %w", err)
	}
	if d.More() {
		return nil, errors.New("handoff state: malformed: data after the state")
	}
	if err := st.check(); err != nil {
		return nil, fmt.Errorf("handoff state: %w", err)
	}
	return st, nil
}

// legacyFrameOverhead bounds what a legacy frame adds to its data (header, CRC,
// trailer, base64 growth of ffff's envelope is within the data limit already).
const legacyFrameOverhead = 4 << 10

func (st *State) check() error {
	if st.Kind == KindLegacy {
		switch {
		case st.Listener == "" || st.Format == "":
			return errors.New("legacy state without listener or format")
		case st.ClientID == "":
			return errors.New("no client_id")
		case st.MaxFrame <= 0:
			return fmt.Errorf("max_frame %d is not positive", st.MaxFrame)
		case len(st.Partial) > st.MaxFrame+legacyFrameOverhead:
			return fmt.Errorf("partial frame of %d bytes exceeds max_frame %d", len(st.Partial), st.MaxFrame)
		}
		return nil
	}
	switch {
	case st.Kind != KindNative:
		return fmt.Errorf("kind %q is not one this server resumes", st.Kind)
	case st.ClientID == "":
		return errors.New("no client_id")
	case st.MaxFrame <= 0:
		return fmt.Errorf("max_frame %d is not positive", st.MaxFrame)
	case st.MaxInFlight <= 0:
		return fmt.Errorf("max_in_flight %d is not positive", st.MaxInFlight)
	case len(st.Partial) > st.MaxFrame+64:
		// A partial frame is shorter than the frame it belongs to (header included).
		return fmt.Errorf("partial frame of %d bytes exceeds max_frame %d", len(st.Partial), st.MaxFrame)
	case len(st.DedupDurable) > 1<<16:
		return fmt.Errorf("dedup window of %d words is too large", len(st.DedupDurable))
	case st.TLS != nil && (len(st.TLS.InSecret) == 0 || len(st.TLS.OutSecret) == 0):
		return errors.New("TLS state without traffic secrets")
	case st.TLS != nil && len(st.TLS.Chain) > maxChain:
		return fmt.Errorf("client certificate chain of %d certificates, the limit is %d", len(st.TLS.Chain), maxChain)
	case len(st.Uploads) > maxUploads:
		return fmt.Errorf("%d open uploads, the limit is %d", len(st.Uploads), maxUploads)
	}
	for _, h := range st.Uploads {
		if err := h.Check(); err != nil {
			return err
		}
	}
	return nil
}

// maxChain bounds a TLS state's client certificate chain.
const maxChain = 16
