package legacy

import (
	"fmt"

	"github.com/hawk-agents/hawk/internal/legacy/formats"
)

// Format names a legacy wire format.
type Format string

// The legacy formats hawk serves.
const (
	FormatFFFF    Format = formats.FFFF    // the metrics agent: 0xFFFF framing, JSON envelope, text-line receipts
	FormatC8C9    Format = formats.C8C9    // the long-connection device format: 0xC8 … 0xC9 frames, JSON result frames
	FormatHeaders Format = formats.Headers // "Headers" + length + message; no reply (at most once)
	FormatFile    Format = formats.File    // a name, "ok", a file's bytes until EOF (file.go)
)

// ParseFormat returns the format called s.
func ParseFormat(s string) (Format, error) {
	if _, ok := formats.Lookup(s); !ok {
		return "", fmt.Errorf("unknown legacy format %q (ffff, c8c9, headers, file)", s)
	}
	return Format(s), nil
}

// MaxDataSize is the largest data a frame of the format can carry at all; a
// listener's max_frame_size may only lower it.
func (f Format) MaxDataSize() int {
	s, _ := formats.Lookup(string(f))
	return s.MaxData
}

// Drop reasons: why a frame (or a run of bytes) was dropped without a reply. They
// label hawk_legacy_frames_dropped_total.
const (
	DropSync       = "sync"        // bytes that do not start a frame: skipped up to the next frame start
	DropTooLarge   = "too_large"   // the header announces more data than max_frame_size (or a negative or impossible length)
	DropTrailer    = "trailer"     // the bytes after the data are not the format's trailer
	DropCRC        = "crc"         // ffff: the CRC does not match the data
	DropEnvelope   = "envelope"    // ffff: data is not the JSON envelope {"PacketType":…,"PacketContent":…}
	DropPacketType = "packet_type" // ffff: a PacketType other than 0 (heartbeat) or 1 (report)
)

// DropReasons is every drop reason, for pre-bound metrics.
var DropReasons = []string{DropSync, DropTooLarge, DropTrailer, DropCRC, DropEnvelope, DropPacketType}

// frameKind is what a decoded frame asks of the server.
type frameKind uint8

const (
	kindReport    frameKind = iota + 1 // store Payload, then reply
	kindHeartbeat                      // reply at once (in order)
)

// frame is one decoded frame. Payload and Data alias the read buffer or the
// decoder's scratch space: valid until the next decode.
type frame struct {
	Kind    frameKind
	Payload []byte // the report as stored in the spool record
	Type    int16  // c8c9: the frame's type, echoed in the reply
}

// decoded is a decoder's answer about the bytes at the start of a buffer:
//   - a frame: N > 0, Drop == "";
//   - a drop: N > 0 bytes to skip, Drop the reason;
//   - not enough bytes yet: N == 0, and Need the frame's whole length when the header
//     is in (0 when it is not), so the reader grows its buffer with the bytes that
//     arrive, never to what a header merely announces.
type decoded struct {
	Frame frame
	N     int
	Need  int
	Drop  string
}

// codec is one format's decoder and reply encoder.
type codec interface {
	// decode looks at the start of buf; maxData bounds a frame's data. scratch is
	// the connection's reusable space for a payload that must be transformed
	// (ffff's base64), returned grown.
	decode(buf []byte, maxData int, scratch []byte) (decoded, []byte)
	// replies reports whether the format answers reports at all.
	replies() bool
}

func codecFor(f Format) codec {
	switch f {
	case FormatFFFF:
		return ffffCodec{}
	case FormatC8C9:
		return c8c9Codec{}
	case FormatHeaders:
		return headersCodec{}
	}
	panic("legacy: no codec for format " + string(f))
}

// resync returns how many bytes to skip from the start of buf to reach the next
// possible frame start (magic), searching from buf[1:]. Bytes at the end that could
// be the beginning of magic are kept.
func resync(buf []byte, magic string) int {
	for i := 1; i < len(buf); i++ {
		rest := buf[i:]
		n := min(len(rest), len(magic))
		if string(rest[:n]) == magic[:n] {
			return i
		}
	}
	return len(buf)
}

// startsLike reports whether buf could begin with magic (it is a prefix of magic,
// or starts with it).
func startsLike(buf []byte, magic string) bool {
	n := min(len(buf), len(magic))
	return string(buf[:n]) == magic[:n]
}
