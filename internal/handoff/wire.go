package handoff

import (
	"encoding/binary"
	"errors"
	"math"
)

// The primitives of the binary State layout (state.go owns the layout): unsigned
// numbers as uvarints, signed ones as varints, strings and byte strings as a
// uvarint length and the bytes.

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// errShort is a message that ends inside a field, or one whose lengths do not fit it.
var errShort = errors.New("truncated")

// wireReader reads a binary State; after the first problem every read returns a
// zero value and err keeps that problem.
type wireReader struct {
	b   []byte
	err error
}

func (r *wireReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

func (r *wireReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errShort)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *wireReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(errShort)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// int reads a varint that must fit an int.
func (r *wireReader) int() int {
	v := r.varint()
	if v > math.MaxInt32 || v < math.MinInt32 {
		r.fail(errors.New("a number out of range"))
		return 0
	}
	return int(v)
}

func (r *wireReader) byte() byte {
	if len(r.b) < 1 {
		r.fail(errShort)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *wireReader) bool() bool {
	switch r.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	r.fail(errors.New("a flag neither 0 nor 1"))
	return false
}

// count reads a number of items, each at least min bytes: one that could not
// fit the rest of the message is refused before anything is allocated for it.
func (r *wireReader) count(min int) int {
	n := r.uvarint()
	if n > uint64(len(r.b)/min) {
		r.fail(errShort)
		return 0
	}
	return int(n)
}

// bytes reads a byte string, nil when empty; it does not alias the message.
func (r *wireReader) bytes() []byte {
	n := r.count(1)
	if n == 0 {
		return nil
	}
	v := append([]byte(nil), r.b[:n]...)
	r.b = r.b[n:]
	return v
}

func (r *wireReader) string() string {
	n := r.count(1)
	v := string(r.b[:n])
	r.b = r.b[n:]
	return v
}

func (r *wireReader) fixed64() uint64 {
	if len(r.b) < 8 {
		r.fail(errShort)
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}
