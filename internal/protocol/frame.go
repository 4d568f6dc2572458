// Package protocol is hawk's wire format: length-prefixed, versioned, CRC-checked frames.
//
// A frame is a 16-byte header, the payload and a 4-byte CRC32C trailer; see
// docs/PROTOCOL.md for the byte-by-byte layout and testdata/ for golden frames.
// Decoding never allocates: a decoded Frame's Payload aliases the caller's buffer.
package protocol

import (
	"encoding/binary"
	"hash/crc32"
	"sync/atomic"
)

// Layout constants.
const (
	Magic0  = 'H'
	Magic1  = 'K'
	Version = 1

	HeaderSize  = 16 // magic 2 | version 1 | type 1 | length 4 | seq 8
	TrailerSize = 4  // CRC32C over version..payload
	Overhead    = HeaderSize + TrailerSize

	// MaxPayloadLimit is the largest payload length any peer may ever announce;
	// a configured limit above it is clamped.
	MaxPayloadLimit = 64 << 20
)

// Type is a frame type.
type Type uint8

// Frame types. The numbering is part of the wire format; never reuse a number.
const (
	TypeHello   Type = 1 // client → server, JSON Hello
	TypeWelcome Type = 2 // server → client, JSON Welcome
	TypePing    Type = 3 // either way, empty; seq is echoed in the PONG
	TypePong    Type = 4 // either way, empty
	TypeReport  Type = 5 // client → server, opaque payload, seq chosen by the client
	TypeAck     Type = 6 // server → client, empty, seq of the report
	TypeNack    Type = 7 // server → client, JSON Nack, seq of the report
	TypeGoaway  Type = 8 // server → client, JSON Goaway
	TypeError   Type = 9 // server → client, JSON Error, sent just before the server closes

	TypeUploadOpen   Type = 10 // client → server, JSON UploadOpen
	TypeUploadChunk  Type = 11 // client → server, id length | id | data; seq is the offset
	TypeUploadCommit Type = 12 // client → server, JSON UploadCommit
	TypeUploadState  Type = 13 // server → client, JSON UploadState; seq of the frame it answers
	TypeAckRange     Type = 14 // server → client, ranges of durable seqs (ackrange.go); only when negotiated
	maxType               = TypeAckRange
)

var typeNames = [...]string{
	TypeHello: "HELLO", TypeWelcome: "WELCOME", TypePing: "PING", TypePong: "PONG",
	TypeReport: "REPORT", TypeAck: "ACK", TypeNack: "NACK", TypeGoaway: "GOAWAY", TypeError: "ERROR",
	TypeUploadOpen: "UPLOAD_OPEN", TypeUploadChunk: "UPLOAD_CHUNK", TypeUploadCommit: "UPLOAD_COMMIT", TypeUploadState: "UPLOAD_STATE",
	TypeAckRange: "ACK_RANGE",
}

// Valid reports whether t is a known type.
func (t Type) Valid() bool { return t >= TypeHello && t <= maxType }

func (t Type) String() string {
	if t.Valid() {
		return typeNames[t]
	}
	return "UNKNOWN"
}

// Frame is one decoded frame. Payload aliases the buffer it was decoded from and is
// valid only until that buffer is reused.
type Frame struct {
	Type    Type
	Seq     uint64
	Payload []byte
}

// castagnoliTable is the CRC-32C table, built by the first frame rather than in
// the package's init, which every process pays before main (hawk -version, an
// upgrade's new process before it is ready). nil until then.
var castagnoliTable atomic.Pointer[crc32.Table]

// castagnoli returns the CRC-32C table. It runs for every frame, so its fast path
// is one atomic load inlined where it is called; a sync.OnceValue would be a
// closure call and a sync.Once check per frame (BenchmarkDecodeStream64x256).
func castagnoli() *crc32.Table {
	if t := castagnoliTable.Load(); t != nil {
		return t
	}
	return makeCastagnoli()
}

// makeCastagnoli builds the table once per process: crc32.MakeTable returns the
// same table to every caller, so goroutines racing here store the same pointer.
func makeCastagnoli() *crc32.Table {
	t := crc32.MakeTable(crc32.Castagnoli)
	castagnoliTable.Store(t)
	return t
}

// AppendFrame appends one encoded frame to dst and returns the extended slice.
func AppendFrame(dst []byte, t Type, seq uint64, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, Magic0, Magic1, Version, byte(t), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(dst[start+4:], uint32(len(payload)))
	binary.BigEndian.PutUint64(dst[start+8:], seq)
	dst = append(dst, payload...)
	sum := crc32.Update(0, castagnoli(), dst[start+2:])
	return binary.BigEndian.AppendUint32(dst, sum)
}

// FrameSize is the encoded size of a frame with an n-byte payload.
func FrameSize(n int) int { return Overhead + n }
