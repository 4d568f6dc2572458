package protocol

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// DecodeError is a violation of the wire format. TCP does not corrupt bytes, so any
// DecodeError means a broken or hostile peer: answer with an ERROR frame carrying
// Code and Error(), then close. Never try to resynchronise.
type DecodeError struct {
	Code Code
	Msg  string
}

func (e *DecodeError) Error() string { return "protocol: " + e.Msg }

// Decode decodes the frame at the start of buf.
//
// It returns n == 0 and a nil error when buf holds only part of a frame: read more
// and call again with the same bytes at the start. The header is checked as soon as
// it is complete (and the magic as soon as two bytes are there), so an oversized or
// unknown frame is rejected before its payload is read. maxPayload is the largest
// payload accepted; a value above MaxPayloadLimit is clamped to it. Decode does not
// allocate except to build a DecodeError.
func Decode(buf []byte, maxPayload int) (f Frame, n int, err error) {
	maxPayload = min(maxPayload, MaxPayloadLimit)
	if len(buf) >= 2 && (buf[0] != Magic0 || buf[1] != Magic1) {
		return f, 0, magicError(binary.BigEndian.Uint16(buf))
	}
	if len(buf) < HeaderSize {
		if len(buf) >= 3 && buf[2] != Version {
			return f, 0, versionError(buf[2])
		}
		return f, 0, nil
	}
	if buf[2] != Version {
		return f, 0, versionError(buf[2])
	}
	t := Type(buf[3])
	if !t.Valid() {
		return f, 0, typeError(buf[3])
	}
	length := binary.BigEndian.Uint32(buf[4:8])
	if int64(length) > int64(maxPayload) {
		return f, 0, lengthError(t, length, maxPayload)
	}
	total := HeaderSize + int(length) + TrailerSize
	if len(buf) < total {
		return f, 0, nil
	}
	body := buf[2 : HeaderSize+int(length)]
	want := binary.BigEndian.Uint32(buf[total-TrailerSize:])
	if got := crc32.Update(0, castagnoli(), body); got != want {
		return f, 0, crcError(t, binary.BigEndian.Uint64(buf[8:16]), want, got)
	}
	f.Type = t
	f.Seq = binary.BigEndian.Uint64(buf[8:16])
	f.Payload = buf[HeaderSize : HeaderSize+int(length) : HeaderSize+int(length)]
	return f, total, nil
}

// The errors are built out of line: their fmt.Sprintf arguments would otherwise
// sit in Decode's frame, and a heartbeat's reader starts on the smallest stack,
// which a frame that size would make the runtime grow (a copy of the stack) at
// every PING.

//go:noinline
func magicError(got uint16) error {
	return &DecodeError{Code: CodeBadMagic, Msg: fmt.Sprintf("bad magic %#04x, want %#04x (\"HK\")", got, uint16(Magic0)<<8|Magic1)}
}

//go:noinline
func typeError(t byte) error {
	return &DecodeError{Code: CodeUnknownType, Msg: fmt.Sprintf("unknown frame type %d", t)}
}

//go:noinline
func lengthError(t Type, length uint32, maxPayload int) error {
	return &DecodeError{Code: CodeFrameTooLarge, Msg: fmt.Sprintf("%s payload length %d exceeds limit %d", t, length, maxPayload)}
}

//go:noinline
func crcError(t Type, seq uint64, want, got uint32) error {
	return &DecodeError{Code: CodeBadCRC, Msg: fmt.Sprintf("%s seq %d: crc32c mismatch: frame says %#08x, computed %#08x", t, seq, want, got)}
}

//go:noinline
func versionError(v byte) error {
	return &DecodeError{Code: CodeUnsupportedVersion, Msg: fmt.Sprintf("unsupported protocol version %d, this peer speaks %d", v, Version)}
}

// Needed returns how many bytes the frame starting at buf occupies in total, or 0
// when fewer than HeaderSize bytes are there. The caller must have run Decode on buf
// first (Needed does not validate), and uses it to size a buffer for a large frame.
func Needed(buf []byte) int {
	if len(buf) < HeaderSize {
		return 0
	}
	return HeaderSize + int(binary.BigEndian.Uint32(buf[4:8])) + TrailerSize
}
