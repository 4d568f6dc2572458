package protocol

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"sync"
	"testing"
)

// allTypes is every frame type of protocol version 1.
var allTypes = []Type{TypeHello, TypeWelcome, TypePing, TypePong, TypeReport, TypeAck, TypeNack, TypeGoaway, TypeError,
	TypeUploadOpen, TypeUploadChunk, TypeUploadCommit, TypeUploadState, TypeAckRange}

// crc32cBitwise is CRC-32C written out from its definition, as docs/PROTOCOL.md
// states it: reflected polynomial 0x82F63B78, initial value 0xFFFFFFFF, final xor
// 0xFFFFFFFF. It checks that the package's table-driven CRC is exactly that.
func crc32cBitwise(data []byte) uint32 {
	crc := ^uint32(0)
	for _, b := range data {
		crc ^= uint32(b)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0x82F63B78
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}

func TestCRC32CIsStandard(t *testing.T) {
	// The CRC-32C check value (the CRC of "123456789"), from the catalogue of
	// parametrised CRC algorithms and RFC 3720 (iSCSI).
	const check uint32 = 0xE3069283
	if got := crc32.Update(0, castagnoli(), []byte("123456789")); got != check {
		t.Fatalf("package CRC of \"123456789\" = %#08x, want %#08x", got, check)
	}
	if got := crc32cBitwise([]byte("123456789")); got != check {
		t.Fatalf("bitwise CRC of \"123456789\" = %#08x, want %#08x", got, check)
	}
	// RFC 3720 B.4: 32 bytes of zeros.
	if got := crc32cBitwise(make([]byte, 32)); got != 0x8A9136AA {
		t.Fatalf("bitwise CRC of 32 zeros = %#08x, want 0x8a9136aa", got)
	}
	if crc32.Castagnoli != 0x82F63B78 {
		t.Fatalf("crc32.Castagnoli = %#08x", uint32(crc32.Castagnoli))
	}
}

func TestAppendFrameLayout(t *testing.T) {
	payload := []byte("hello, hawk")
	frame := AppendFrame(nil, TypeReport, 0x0102030405060708, payload)
	if len(frame) != FrameSize(len(payload)) || len(frame) != HeaderSize+len(payload)+TrailerSize {
		t.Fatalf("frame is %d bytes, want %d", len(frame), FrameSize(len(payload)))
	}
	want := []byte{
		'H', 'K', // magic
		1,           // version
		5,           // type REPORT
		0, 0, 0, 11, // length, big-endian
		1, 2, 3, 4, 5, 6, 7, 8, // seq, big-endian
	}
	if !bytes.Equal(frame[:HeaderSize], want) {
		t.Fatalf("header % x, want % x", frame[:HeaderSize], want)
	}
	if !bytes.Equal(frame[HeaderSize:HeaderSize+len(payload)], payload) {
		t.Fatalf("payload % x", frame[HeaderSize:])
	}
	// The CRC covers version..payload: not the magic, not itself.
	covered := frame[2 : HeaderSize+len(payload)]
	if got, want := binary.BigEndian.Uint32(frame[len(frame)-4:]), crc32cBitwise(covered); got != want {
		t.Fatalf("trailer %#08x, want CRC-32C of version..payload %#08x", got, want)
	}
}

func TestAppendFrameAppends(t *testing.T) {
	prefix := []byte("existing bytes")
	dst := append(make([]byte, 0, 256), prefix...)
	out := AppendFrame(dst, TypeAck, 9, nil)
	if !bytes.Equal(out[:len(prefix)], prefix) {
		t.Fatalf("prefix clobbered: %q", out[:len(prefix)])
	}
	if !bytes.Equal(out[len(prefix):], AppendFrame(nil, TypeAck, 9, nil)) {
		t.Fatal("frame appended after a prefix differs from a frame on its own")
	}
	// Two frames back to back decode as two frames.
	out = AppendFrame(out, TypePing, 10, nil)
	f1, n1, err := Decode(out[len(prefix):], testLimit)
	if err != nil || f1.Type != TypeAck || f1.Seq != 9 {
		t.Fatalf("first frame: %+v, %v", f1, err)
	}
	f2, n2, err := Decode(out[len(prefix)+n1:], testLimit)
	if err != nil || f2.Type != TypePing || f2.Seq != 10 || len(prefix)+n1+n2 != len(out) {
		t.Fatalf("second frame: %+v, %d, %v", f2, n2, err)
	}
}

func TestRoundTripEveryType(t *testing.T) {
	payloads := map[string][]byte{
		"nil":      nil,
		"empty":    {},
		"one byte": {0},
		"text":     []byte(`{"cpu":0.42,"host":"web-1"}`),
		"binary":   {0x00, 'H', 'K', 0x01, 0xFF, 0xFE, 0x00},
		"256":      bytes.Repeat([]byte{0xA5}, 256),
		"at limit": bytes.Repeat([]byte{'z'}, testLimit),
	}
	seqs := []uint64{0, 1, 42, math.MaxUint32, math.MaxUint32 + 1, 1 << 63, math.MaxUint64 - 1, math.MaxUint64}
	for _, typ := range allTypes {
		for name, p := range payloads {
			for _, seq := range seqs {
				frame := AppendFrame(nil, typ, seq, p)
				f, n, err := Decode(frame, testLimit)
				if err != nil {
					t.Fatalf("%s seq %d %s payload: %v", typ, seq, name, err)
				}
				if n != len(frame) || n != FrameSize(len(p)) {
					t.Fatalf("%s seq %d %s payload: n=%d, frame is %d bytes", typ, seq, name, n, len(frame))
				}
				if f.Type != typ || f.Seq != seq || !bytes.Equal(f.Payload, p) {
					t.Fatalf("%s seq %d %s payload: decoded %s seq %d payload % x", typ, seq, name, f.Type, f.Seq, f.Payload)
				}
				if f.Payload == nil {
					t.Fatalf("%s seq %d %s payload: nil Payload, want an empty slice", typ, seq, name)
				}
				if again := AppendFrame(nil, f.Type, f.Seq, f.Payload); !bytes.Equal(again, frame) {
					t.Fatalf("%s seq %d %s payload: re-encoding differs", typ, seq, name)
				}
			}
		}
	}
}

func TestTypeNamesAndValidity(t *testing.T) {
	names := map[Type]string{
		1: "HELLO", 2: "WELCOME", 3: "PING", 4: "PONG", 5: "REPORT",
		6: "ACK", 7: "NACK", 8: "GOAWAY", 9: "ERROR",
		10: "UPLOAD_OPEN", 11: "UPLOAD_CHUNK", 12: "UPLOAD_COMMIT", 13: "UPLOAD_STATE",
		14: "ACK_RANGE",
	}
	if len(allTypes) != len(names) {
		t.Fatalf("allTypes has %d types, want %d", len(allTypes), len(names))
	}
	for i := range 256 {
		typ := Type(i)
		name, known := names[typ]
		if typ.Valid() != known {
			t.Errorf("Type(%d).Valid() = %v, want %v", i, typ.Valid(), known)
		}
		if !known {
			name = "UNKNOWN"
		}
		if typ.String() != name {
			t.Errorf("Type(%d).String() = %q, want %q", i, typ.String(), name)
		}
	}
}

func TestLayoutConstants(t *testing.T) {
	if Magic0 != 0x48 || Magic1 != 0x4B || Version != 1 {
		t.Fatalf("magic %#x %#x version %d", Magic0, Magic1, Version)
	}
	if HeaderSize != 16 || TrailerSize != 4 || Overhead != 20 || MaxPayloadLimit != 64<<20 {
		t.Fatalf("header %d trailer %d overhead %d max payload %d", HeaderSize, TrailerSize, Overhead, MaxPayloadLimit)
	}
	for _, n := range []int{0, 1, 256, MaxPayloadLimit} {
		if FrameSize(n) != n+20 {
			t.Fatalf("FrameSize(%d) = %d", n, FrameSize(n))
		}
	}
}

var sinkBuf []byte

func TestAppendFrameIntoReusedBufferDoesNotAllocate(t *testing.T) {
	payload := bytes.Repeat([]byte{'r'}, 256)
	buf := make([]byte, 0, FrameSize(len(payload)))
	allocs := testing.AllocsPerRun(1000, func() {
		buf = AppendFrame(buf[:0], TypeReport, 42, payload)
		sinkBuf = buf
	})
	if allocs != 0 {
		t.Fatalf("AppendFrame into a reused buffer: %v allocs/op, want 0", allocs)
	}
}

func BenchmarkEncodeReport256(b *testing.B) {
	payload := bytes.Repeat([]byte{'r'}, 256)
	buf := make([]byte, 0, FrameSize(len(payload)))
	b.SetBytes(int64(FrameSize(len(payload))))
	b.ReportAllocs()
	var seq uint64
	for b.Loop() {
		seq++
		buf = AppendFrame(buf[:0], TypeReport, seq, payload)
	}
	if len(buf) != FrameSize(len(payload)) {
		b.Fatal(fmt.Sprint("frame is ", len(buf), " bytes"))
	}
}

// TestCastagnoliFirstUse: the goroutines that build the table at once all get
// crc32's one CRC-32C table, which is the one kept.
func TestCastagnoliFirstUse(t *testing.T) {
	want := crc32.MakeTable(crc32.Castagnoli)
	castagnoliTable.Store(nil)
	got := make([]*crc32.Table, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() { got[i] = castagnoli() })
	}
	wg.Wait()
	for i, tab := range got {
		if tab != want {
			t.Fatalf("goroutine %d got table %p, want crc32's %p", i, tab, want)
		}
	}
	if tab := castagnoliTable.Load(); tab != want {
		t.Fatalf("table kept is %p, want %p", tab, want)
	}
}
