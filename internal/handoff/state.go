package handoff

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/hawk-agents/hawk/internal/upload"
)

// StateVersion is the version of the State encoding this build writes, when the
// receiver's ready says it reads it (Ready.StateVersion); to a receiver that does
// not, it writes stateJSON. A change a reader of the previous version would
// misread takes a new version. This build reads both.
//
// Version 2 is a binary layout: every field of State in the order of the struct,
// numbers as uvarints (varints for the signed ones), strings and byte strings as
// a uvarint length and the bytes, flags as a byte 0 or 1, Since (read in UTC) as a flag (set)
// and, when set, its Unix seconds (varint) and nanoseconds; DedupDurable as a
// count and 8 big-endian bytes a word; TLS as a flag (present) and its fields,
// Chain as a count and byte strings; Uploads as a count and, each, UploadID,
// Offset and Hash. Nothing follows the last field.
const StateVersion = 2

// stateJSON is version 1: the version byte, then State as JSON.
const stateJSON = 1

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

// Encode returns st as a message of StateVersion.
func (st *State) Encode() ([]byte, error) { return st.encode(StateVersion) }

// encode returns st as a message of version v (StateVersion or stateJSON).
func (st *State) encode(v byte) ([]byte, error) {
	if v == stateJSON {
		return st.encodeJSON()
	}
	return st.encodeBinary(), nil
}

// The encodings are out of encode, and the binary one's rare parts out of it, each
// in a frame of its own: encode runs on the reader of every connection a handoff
// moves, most of them idle ones whose reader started on the smallest stack (2 KiB),
// and one frame holding them all (848 bytes) would make the runtime grow it, a
// copy of the stack, for every connection moved.

//go:noinline
func (st *State) encodeJSON() ([]byte, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("handoff: encode state of conn %d: %w", st.ConnID, err)
	}
	return append([]byte{stateJSON}, b...), nil
}

//go:noinline
func (st *State) encodeBinary() []byte {
	b := make([]byte, 0, 96+len(st.ClientID)+len(st.Token)+len(st.Partial)+8*len(st.DedupDurable))
	b = append(b, StateVersion)
	b = appendString(b, st.Kind)
	b = binary.AppendUvarint(b, st.ConnID)
	b = appendString(b, st.ClientID)
	b = appendString(b, st.Token)
	b = appendString(b, st.Remote)
	b = appendBool(b, !st.Since.IsZero())
	if !st.Since.IsZero() {
		b = binary.AppendVarint(b, st.Since.Unix())
		b = binary.AppendUvarint(b, uint64(st.Since.Nanosecond()))
	}
	b = binary.AppendVarint(b, int64(st.MaxFrame))
	b = binary.AppendVarint(b, int64(st.MaxInFlight))
	b = appendString(b, st.Ack)
	b = appendString(b, st.Listener)
	b = appendString(b, st.Format)
	b = binary.AppendUvarint(b, st.NextSeq)
	b = appendBool(b, st.InSync)
	b = appendBytes(b, st.Partial)
	b = binary.AppendUvarint(b, st.FramesIn)
	b = binary.AppendUvarint(b, st.FramesOut)
	b = binary.AppendUvarint(b, st.BytesIn)
	b = binary.AppendUvarint(b, st.BytesOut)
	b = appendBool(b, st.DedupHas)
	b = binary.AppendUvarint(b, st.DedupHi)
	b = binary.AppendUvarint(b, uint64(len(st.DedupDurable)))
	for _, w := range st.DedupDurable {
		b = binary.BigEndian.AppendUint64(b, w)
	}
	b = appendBool(b, st.TLS != nil)
	if st.TLS != nil {
		b = st.TLS.appendTo(b)
	}
	b = binary.AppendUvarint(b, uint64(len(st.Uploads)))
	if len(st.Uploads) > 0 {
		b = appendUploads(b, st.Uploads)
	}
	return b
}

//go:noinline
func (t *TLSState) appendTo(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(t.Suite))
	b = appendBytes(b, t.InSecret)
	b = appendBytes(b, t.OutSecret)
	b = binary.AppendUvarint(b, t.InSeq)
	b = binary.AppendUvarint(b, t.OutSeq)
	b = appendBytes(b, t.Input)
	b = binary.AppendUvarint(b, uint64(len(t.Chain)))
	for _, c := range t.Chain {
		b = appendBytes(b, c)
	}
	return b
}

//go:noinline
func appendUploads(b []byte, ups []upload.Handover) []byte {
	for _, u := range ups {
		b = appendString(b, u.UploadID)
		b = binary.AppendVarint(b, u.Offset)
		b = appendBytes(b, u.Hash)
	}
	return b
}

// decodeBinary reads a message of StateVersion (msg[0] is its version byte).
func decodeBinary(msg []byte) (*State, error) {
	r := &wireReader{b: msg[1:]}
	st := &State{
		Kind: r.string(), ConnID: r.uvarint(), ClientID: r.string(), Token: r.string(), Remote: r.string(),
	}
	if r.bool() {
		sec, nsec := r.varint(), r.uvarint()
		if nsec >= 1e9 {
			r.fail(errors.New("since: nanoseconds out of range"))
		}
		st.Since = time.Unix(sec, int64(nsec)).UTC()
	}
	st.MaxFrame, st.MaxInFlight = r.int(), r.int()
	st.Ack, st.Listener, st.Format = r.string(), r.string(), r.string()
	st.NextSeq, st.InSync = r.uvarint(), r.bool()
	st.Partial = r.bytes()
	st.FramesIn, st.FramesOut, st.BytesIn, st.BytesOut = r.uvarint(), r.uvarint(), r.uvarint(), r.uvarint()
	st.DedupHas, st.DedupHi = r.bool(), r.uvarint()
	if n := r.count(8); n > 0 {
		st.DedupDurable = make([]uint64, n)
		for i := range st.DedupDurable {
			st.DedupDurable[i] = r.fixed64()
		}
	}
	if r.bool() {
		t := new(TLSState)
		suite := r.uvarint()
		if suite > 0xffff {
			r.fail(errors.New("TLS suite out of range"))
		}
		t.Suite = uint16(suite)
		t.InSecret, t.OutSecret = r.bytes(), r.bytes()
		t.InSeq, t.OutSeq = r.uvarint(), r.uvarint()
		t.Input = r.bytes()
		if n := r.count(1); n > 0 {
			t.Chain = make([][]byte, n)
			for i := range t.Chain {
				t.Chain[i] = r.bytes()
			}
		}
		st.TLS = t
	}
	if n := r.count(3); n > 0 {
		st.Uploads = make([]upload.Handover, n)
		for i := range st.Uploads {
			st.Uploads[i] = upload.Handover{UploadID: r.string(), Offset: r.varint(), Hash: r.bytes()}
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail(fmt.Errorf("%d bytes after the state", len(r.b)))
	}
	if r.err != nil {
		return nil, fmt.Errorf("handoff state: malformed: %w", r.err)
	}
	return st, nil
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
	var st *State
	switch v := msg[0]; v {
	case StateVersion:
		var err error
		if st, err = decodeBinary(msg); err != nil {
			return nil, err
		}
	case stateJSON:
		d := json.NewDecoder(bytes.NewReader(msg[1:]))
		d.DisallowUnknownFields() // a field this build does not know is a change it would misread
		st = new(State)
		if err := d.Decode(st); err != nil {
			return nil, fmt.Errorf("handoff state: malformed: %w", err)
		}
		if d.More() {
			return nil, errors.New("handoff state: malformed: data after the state")
		}
	default:
		return nil, fmt.Errorf("handoff state: version %d, this server reads versions %d and %d", v, stateJSON, StateVersion)
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
