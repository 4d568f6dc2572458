package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// testLimit is the payload limit the decode tests run with unless they say otherwise.
const testLimit = 1 << 10

// decoded is a frame copied out of the read buffer: a Frame's Payload aliases the
// buffer, which the stream decoder compacts and reuses.
type decoded struct {
	Type    Type
	Seq     uint64
	Payload []byte
}

func (d decoded) String() string {
	return fmt.Sprintf("%s seq=%d len=%d", d.Type, d.Seq, len(d.Payload))
}

// streamDecoder mimics a server read loop over one reused read buffer: append what
// the socket gave, decode every whole frame in place, compact the partial rest to
// the front of the buffer. The first error stops it for good (the server answers
// ERROR and closes; it never resynchronises).
type streamDecoder struct {
	t        testing.TB
	limit    int
	buf      []byte // unparsed input at buf[0:len(buf)]; the backing array is reused
	frames   []decoded
	consumed int // bytes of input turned into frames
	err      error
}

func newStreamDecoder(t testing.TB, limit int) *streamDecoder {
	return &streamDecoder{t: t, limit: limit, buf: make([]byte, 0, 64)}
}

// feed hands the decoder the next bytes read from the socket.
func (s *streamDecoder) feed(chunk []byte) {
	s.t.Helper()
	if s.err != nil {
		return // the connection is being closed: nothing more is parsed
	}
	s.buf = append(s.buf, chunk...)
	off := 0
	for off < len(s.buf) {
		f, n, err := Decode(s.buf[off:], s.limit)
		if err != nil {
			if n != 0 {
				s.t.Fatalf("Decode returned n=%d with error %v", n, err)
			}
			s.err = err
			break
		}
		if n == 0 {
			break
		}
		if n > len(s.buf)-off {
			s.t.Fatalf("Decode consumed %d bytes of %d", n, len(s.buf)-off)
		}
		if n != FrameSize(len(f.Payload)) {
			s.t.Fatalf("Decode consumed %d bytes for a %d-byte payload, want %d", n, len(f.Payload), FrameSize(len(f.Payload)))
		}
		s.frames = append(s.frames, decoded{f.Type, f.Seq, bytes.Clone(f.Payload)})
		off += n
		s.consumed += n
	}
	// Compact: move the partial frame to the front and keep the backing array.
	s.buf = s.buf[:copy(s.buf, s.buf[off:])]
}

// rest is how many bytes are buffered as an incomplete frame.
func (s *streamDecoder) rest() int { return len(s.buf) }

type streamResult struct {
	frames   []decoded
	consumed int
	rest     int
	err      error
}

func (s *streamDecoder) result() streamResult {
	return streamResult{s.frames, s.consumed, s.rest(), s.err}
}

// decodeChunks feeds data split into chunks of the sizes next returns (at least 1).
func decodeChunks(t testing.TB, data []byte, limit int, next func() int) streamResult {
	t.Helper()
	s := newStreamDecoder(t, limit)
	for len(data) > 0 && s.err == nil {
		k := min(max(next(), 1), len(data))
		s.feed(data[:k])
		data = data[k:]
	}
	return s.result()
}

func decodeAllAtOnce(t testing.TB, data []byte, limit int) streamResult {
	t.Helper()
	return decodeChunks(t, data, limit, func() int { return len(data) })
}

func decodeByteByByte(t testing.TB, data []byte, limit int) streamResult {
	t.Helper()
	return decodeChunks(t, data, limit, func() int { return 1 })
}

func decodeRandomSplits(t testing.TB, data []byte, limit int, rng *rand.Rand, maxChunk int) streamResult {
	t.Helper()
	return decodeChunks(t, data, limit, func() int { return 1 + rng.IntN(maxChunk) })
}

// errCode is the DecodeError code of err, "" for nil; anything else fails the test.
func errCode(t testing.TB, err error) Code {
	t.Helper()
	if err == nil {
		return ""
	}
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
	}
	return de.Code
}

func sameResult(t testing.TB, what string, got, want streamResult) {
	t.Helper()
	if len(got.frames) != len(want.frames) {
		t.Fatalf("%s: %d frames, want %d", what, len(got.frames), len(want.frames))
	}
	for i := range want.frames {
		g, w := got.frames[i], want.frames[i]
		if g.Type != w.Type || g.Seq != w.Seq || !bytes.Equal(g.Payload, w.Payload) {
			t.Fatalf("%s: frame %d is %v, want %v", what, i, g, w)
		}
	}
	if got.consumed != want.consumed {
		t.Fatalf("%s: consumed %d bytes, want %d", what, got.consumed, want.consumed)
	}
	if gc, wc := errCode(t, got.err), errCode(t, want.err); gc != wc {
		t.Fatalf("%s: error code %q (%v), want %q (%v)", what, gc, got.err, wc, want.err)
	}
	if got.err != nil && got.err.Error() != want.err.Error() {
		t.Fatalf("%s: error %q, want %q", what, got.err, want.err)
	}
	if got.err == nil && got.rest != want.rest {
		t.Fatalf("%s: %d bytes left buffered, want %d", what, got.rest, want.rest)
	}
}

// randomStream encodes n frames of random types, seqs and payload sizes (some at
// the limit, some empty).
func randomStream(rng *rand.Rand, n, limit int) ([]byte, []decoded) {
	var stream []byte
	var want []decoded
	for range n {
		t := Type(1 + rng.IntN(int(maxType)))
		var size int
		switch rng.IntN(10) {
		case 0:
			size = 0
		case 1:
			size = limit
		default:
			size = rng.IntN(300)
		}
		p := make([]byte, size)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		var seq uint64
		switch rng.IntN(4) {
		case 0:
			seq = 0
		case 1:
			seq = math.MaxUint64
		default:
			seq = rng.Uint64()
		}
		stream = AppendFrame(stream, t, seq, p)
		want = append(want, decoded{t, seq, p})
	}
	return stream, want
}

func TestStreamSplitsYieldSameFrames(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	stream, frames := randomStream(rng, 500, testLimit)
	want := streamResult{frames: frames, consumed: len(stream)}

	sameResult(t, "all at once", decodeAllAtOnce(t, stream, testLimit), want)
	sameResult(t, "one byte at a time", decodeByteByByte(t, stream, testLimit), want)
	for _, maxChunk := range []int{2, 7, 16, 100, 1500, 8192} {
		for seed := range uint64(5) {
			rng := rand.New(rand.NewPCG(seed, uint64(maxChunk)))
			sameResult(t, fmt.Sprintf("random splits up to %d (seed %d)", maxChunk, seed),
				decodeRandomSplits(t, stream, testLimit, rng, maxChunk), want)
		}
	}
}

func TestStreamTrailingPartialFrameStaysBuffered(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	stream, frames := randomStream(rng, 50, testLimit)
	whole := len(stream)
	stream = AppendFrame(stream, TypeReport, 99, bytes.Repeat([]byte("x"), 100))
	for cut := whole + 1; cut < len(stream); cut += 13 {
		want := streamResult{frames: frames, consumed: whole, rest: cut - whole}
		sameResult(t, fmt.Sprintf("cut at %d, all at once", cut), decodeAllAtOnce(t, stream[:cut], testLimit), want)
		sameResult(t, fmt.Sprintf("cut at %d, byte by byte", cut), decodeByteByByte(t, stream[:cut], testLimit), want)
	}
}

// A malformed frame in the middle of a stream: the frames before it are delivered,
// then the error, whatever the split; nothing after it is parsed.
func TestStreamStopsAtFirstError(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	good, frames := randomStream(rng, 20, testLimit)
	bad := AppendFrame(nil, TypeReport, 7, []byte("payload"))
	bad[HeaderSize] ^= 0x01 // corrupt the payload: bad_crc
	after := AppendFrame(nil, TypeReport, 8, []byte("after"))
	stream := append(append(append([]byte(nil), good...), bad...), after...)

	want := decodeAllAtOnce(t, stream, testLimit)
	if errCode(t, want.err) != CodeBadCRC || len(want.frames) != len(frames) || want.consumed != len(good) {
		t.Fatalf("all at once: %d frames, consumed %d, err %v; want %d frames, %d bytes, bad_crc",
			len(want.frames), want.consumed, want.err, len(frames), len(good))
	}
	sameResult(t, "one byte at a time", decodeByteByByte(t, stream, testLimit), want)
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 77))
		sameResult(t, fmt.Sprintf("random splits (seed %d)", seed), decodeRandomSplits(t, stream, testLimit, rng, 64), want)
	}
}

func TestPartialFrameAtEveryPrefix(t *testing.T) {
	frames := map[string][]byte{
		"empty PING":   AppendFrame(nil, TypePing, 0, nil),
		"REPORT 256":   AppendFrame(nil, TypeReport, math.MaxUint64, bytes.Repeat([]byte{0xA5}, 256)),
		"REPORT limit": AppendFrame(nil, TypeReport, 1, make([]byte, testLimit)),
		"HELLO":        AppendJSON(nil, TypeHello, 0, &Hello{ClientID: "agent-1", Token: "t"}),
	}
	for name, frame := range frames {
		for i := 0; i < len(frame); i++ {
			f, n, err := Decode(frame[:i], testLimit)
			if n != 0 || err != nil || f.Type != 0 || f.Payload != nil {
				t.Fatalf("%s: Decode of a %d-byte prefix of a %d-byte frame = (%+v, %d, %v), want (zero, 0, nil)", name, i, len(frame), f, n, err)
			}
		}
		if _, n, err := Decode(frame, testLimit); n != len(frame) || err != nil {
			t.Fatalf("%s: Decode of the whole frame = (%d, %v), want (%d, nil)", name, n, err, len(frame))
		}
	}
}

func decodeErr(t *testing.T, buf []byte, limit int) *DecodeError {
	t.Helper()
	f, n, err := Decode(buf, limit)
	if err == nil {
		t.Fatalf("Decode(% x) = (%+v, %d, nil), want an error", buf, f, n)
	}
	if n != 0 {
		t.Fatalf("Decode returned n=%d with error %v", n, err)
	}
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
	}
	return de
}

func wantDecodeError(t *testing.T, buf []byte, limit int, code Code, substrs ...string) {
	t.Helper()
	de := decodeErr(t, buf, limit)
	if de.Code != code {
		t.Fatalf("Decode(% x): code %q (%v), want %q", buf, de.Code, de, code)
	}
	msg := de.Error()
	if !strings.HasPrefix(msg, "protocol: ") {
		t.Errorf("error %q does not start with \"protocol: \"", msg)
	}
	for _, s := range substrs {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q does not mention %q", msg, s)
		}
	}
}

func TestDecodeBadMagic(t *testing.T) {
	// One byte cannot be judged yet, even a wrong one.
	for _, b := range [][]byte{{'X'}, {'H'}} {
		if _, n, err := Decode(b, testLimit); n != 0 || err != nil {
			t.Fatalf("Decode(%q) = (%d, %v), want (0, nil)", b, n, err)
		}
	}
	// Two bytes are enough to reject: the rest of the header never has to arrive.
	wantDecodeError(t, []byte("GE"), testLimit, CodeBadMagic, "bad magic", "0x4745", `want 0x484b ("HK")`)
	wantDecodeError(t, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), testLimit, CodeBadMagic, "bad magic 0x4745")
	wantDecodeError(t, []byte{0x16, 0x03, 0x01}, testLimit, CodeBadMagic, "bad magic 0x1603") // TLS ClientHello
	wantDecodeError(t, []byte{'H', 'k'}, testLimit, CodeBadMagic, "0x486b")
	wantDecodeError(t, []byte{0, 0}, testLimit, CodeBadMagic, "bad magic 0x0000")

	frame := AppendFrame(nil, TypeReport, 42, []byte("x"))
	for _, i := range []int{0, 1} {
		bad := bytes.Clone(frame)
		bad[i] ^= 0x20
		wantDecodeError(t, bad, testLimit, CodeBadMagic, "bad magic")
		wantDecodeError(t, bad[:2], testLimit, CodeBadMagic, "bad magic")
	}
}

func TestDecodeUnsupportedVersion(t *testing.T) {
	if _, n, err := Decode([]byte("HK"), testLimit); n != 0 || err != nil {
		t.Fatalf("Decode(\"HK\") = (%d, %v), want (0, nil)", n, err)
	}
	for _, v := range []byte{0, 2, 0xFF} {
		frame := AppendFrame(nil, TypeReport, 42, []byte("x"))
		frame[2] = v
		// Rejected as soon as the third byte is there, and on a whole frame alike.
		for _, l := range []int{3, 4, HeaderSize - 1, HeaderSize, len(frame)} {
			wantDecodeError(t, frame[:l], testLimit, CodeUnsupportedVersion,
				fmt.Sprintf("unsupported protocol version %d", v), "this peer speaks 1")
		}
	}
}

func TestDecodeUnknownType(t *testing.T) {
	for _, typ := range []byte{0, 15, 0xFF} {
		frame := AppendFrame(nil, Type(typ), 42, []byte("x"))
		// The type is judged when the header is complete, before the payload arrives.
		if _, n, err := Decode(frame[:HeaderSize-1], testLimit); n != 0 || err != nil {
			t.Fatalf("type %d: Decode of 15 header bytes = (%d, %v), want (0, nil)", typ, n, err)
		}
		for _, l := range []int{HeaderSize, len(frame)} {
			wantDecodeError(t, frame[:l], testLimit, CodeUnknownType, fmt.Sprintf("unknown frame type %d", typ))
		}
	}
}

func TestDecodeFrameTooLarge(t *testing.T) {
	header := func(length uint32) []byte {
		h := AppendFrame(nil, TypeReport, 42, nil)[:HeaderSize]
		binary.BigEndian.PutUint32(h[4:8], length)
		return h
	}
	// The header alone is enough: no payload byte has arrived.
	wantDecodeError(t, header(testLimit+1), testLimit, CodeFrameTooLarge,
		"REPORT payload length 1025 exceeds limit 1024")
	wantDecodeError(t, header(math.MaxUint32), testLimit, CodeFrameTooLarge, "length 4294967295", "limit 1024")
	wantDecodeError(t, header(1), 0, CodeFrameTooLarge, "payload length 1 exceeds limit 0")

	// A limit above MaxPayloadLimit is clamped to it.
	wantDecodeError(t, header(MaxPayloadLimit+1), math.MaxInt, CodeFrameTooLarge,
		fmt.Sprintf("payload length %d exceeds limit %d", MaxPayloadLimit+1, MaxPayloadLimit))
	wantDecodeError(t, header(math.MaxUint32), math.MaxInt, CodeFrameTooLarge, "exceeds limit 67108864")
	if _, n, err := Decode(header(MaxPayloadLimit), math.MaxInt); n != 0 || err != nil {
		t.Fatalf("a MaxPayloadLimit header: Decode = (%d, %v), want (0, nil): wait for the payload", n, err)
	}

	// Exactly at the limit is accepted; an empty payload passes a zero limit.
	at := AppendFrame(nil, TypeReport, 42, make([]byte, testLimit))
	if _, n, err := Decode(at, testLimit); n != len(at) || err != nil {
		t.Fatalf("payload at the limit: Decode = (%d, %v), want (%d, nil)", n, err, len(at))
	}
	if _, n, err := Decode(at[:HeaderSize], testLimit); n != 0 || err != nil {
		t.Fatalf("header of a frame at the limit: Decode = (%d, %v), want (0, nil)", n, err)
	}
	empty := AppendFrame(nil, TypeAck, 42, nil)
	if _, n, err := Decode(empty, 0); n != len(empty) || err != nil {
		t.Fatalf("empty payload, limit 0: Decode = (%d, %v), want (%d, nil)", n, err, len(empty))
	}
}

func TestDecodeBadCRC(t *testing.T) {
	frame := AppendFrame(nil, TypeReport, 42, []byte(`{"cpu":0.42}`))
	sum := binary.BigEndian.Uint32(frame[len(frame)-TrailerSize:])
	cases := []struct {
		name   string
		byteAt int
		bit    byte
		substr []string
	}{
		{"payload bit", HeaderSize + 3, 0x04, []string{"REPORT seq 42"}},
		{"last payload bit", len(frame) - TrailerSize - 1, 0x80, []string{"REPORT seq 42"}},
		{"seq bit", 15, 0x01, []string{"REPORT seq 43"}},
		{"seq high bit", 8, 0x80, []string{fmt.Sprintf("REPORT seq %d", uint64(1)<<63|42)}},
		{"type bit (still a valid type)", 3, 0x01, []string{"PONG seq 42"}}, // 5 -> 4
		{"crc first byte", len(frame) - TrailerSize, 0x01, []string{fmt.Sprintf("frame says %#08x", sum^0x01000000)}},
		{"crc last byte", len(frame) - 1, 0x80, []string{fmt.Sprintf("frame says %#08x", sum^0x80)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad := bytes.Clone(frame)
			bad[c.byteAt] ^= c.bit
			subs := append([]string{"crc32c mismatch", "computed " + fmt.Sprintf("%#08x", crc32cBitwise(bad[2:len(bad)-TrailerSize]))}, c.substr...)
			wantDecodeError(t, bad, testLimit, CodeBadCRC, subs...)
			// Until the last CRC byte is there, it is just a partial frame.
			if _, n, err := Decode(bad[:len(bad)-1], testLimit); n != 0 || err != nil {
				t.Fatalf("Decode of all but the last byte = (%d, %v), want (0, nil)", n, err)
			}
		})
	}

	// A flipped length bit makes the frame end elsewhere: shorter, it fails the CRC.
	bad := bytes.Clone(frame)
	bad[7] ^= 0x01 // length 12 -> 13: waits for one more byte, then fails the CRC
	if _, n, err := Decode(bad, testLimit); n != 0 || err != nil {
		t.Fatalf("length+1: Decode = (%d, %v), want (0, nil)", n, err)
	}
	wantDecodeError(t, append(bad, 0), testLimit, CodeBadCRC, "crc32c mismatch")
}

// The checks run in header order: magic, version, then type, then length, then CRC.
func TestDecodeErrorPrecedence(t *testing.T) {
	frame := AppendFrame(nil, Type(0), 1, make([]byte, 10))
	binary.BigEndian.PutUint32(frame[4:8], testLimit+1)
	frame[2] = 9
	frame[0] = 'X'
	wantDecodeError(t, frame, testLimit, CodeBadMagic)
	frame[0] = 'H'
	wantDecodeError(t, frame, testLimit, CodeUnsupportedVersion)
	frame[2] = Version
	wantDecodeError(t, frame, testLimit, CodeUnknownType)
	frame[3] = byte(TypeReport)
	wantDecodeError(t, frame, testLimit, CodeFrameTooLarge)
}

func TestDecodeEmptyInput(t *testing.T) {
	for _, b := range [][]byte{nil, {}} {
		if f, n, err := Decode(b, testLimit); n != 0 || err != nil || f.Payload != nil {
			t.Fatalf("Decode(%v) = (%+v, %d, %v), want (zero, 0, nil)", b, f, n, err)
		}
	}
}

// Payload aliases the input and is capped at its end: appending to it must not
// overwrite the CRC or the next frame.
func TestDecodedPayloadAliasesAndIsCapped(t *testing.T) {
	buf := AppendFrame(nil, TypeReport, 1, []byte("abc"))
	buf = AppendFrame(buf, TypeReport, 2, []byte("def"))
	f, n, err := Decode(buf, testLimit)
	if err != nil || n != FrameSize(3) {
		t.Fatalf("Decode = (%d, %v)", n, err)
	}
	if &f.Payload[0] != &buf[HeaderSize] {
		t.Fatal("Payload does not alias the input buffer")
	}
	if cap(f.Payload) != len(f.Payload) {
		t.Fatalf("cap(Payload) = %d, want %d", cap(f.Payload), len(f.Payload))
	}
	before := bytes.Clone(buf)
	_ = append(f.Payload, "XXXXXXXXXXXXXXXX"...)
	if !bytes.Equal(buf, before) {
		t.Fatal("appending to Payload overwrote the buffer")
	}
	if _, m, err := Decode(buf[n:], testLimit); err != nil || m != FrameSize(3) {
		t.Fatalf("second frame: Decode = (%d, %v)", m, err)
	}
}

func TestNeeded(t *testing.T) {
	frame := AppendFrame(nil, TypeReport, 5, make([]byte, 300))
	for i := 0; i < HeaderSize; i++ {
		if got := Needed(frame[:i]); got != 0 {
			t.Fatalf("Needed(%d bytes) = %d, want 0", i, got)
		}
	}
	for _, i := range []int{HeaderSize, HeaderSize + 1, len(frame)} {
		if got := Needed(frame[:i]); got != len(frame) {
			t.Fatalf("Needed(%d bytes) = %d, want %d", i, got, len(frame))
		}
	}
}

func TestDecodeErrorString(t *testing.T) {
	de := &DecodeError{Code: CodeBadCRC, Msg: "x"}
	if de.Error() != "protocol: x" {
		t.Errorf("Error() = %q", de.Error())
	}
}

var sinkFrame Frame
var sinkN int

func TestDecodeReport256DoesNotAllocate(t *testing.T) {
	frame := AppendFrame(nil, TypeReport, 42, bytes.Repeat([]byte{'r'}, 256))
	allocs := testing.AllocsPerRun(1000, func() {
		f, n, err := Decode(frame, MaxPayloadLimit)
		if err != nil || n != len(frame) {
			panic("decode failed")
		}
		sinkFrame, sinkN = f, n
	})
	if allocs != 0 {
		t.Fatalf("Decode of a 256-byte REPORT: %v allocs/op, want 0", allocs)
	}
	// Partial input allocates nothing either.
	allocs = testing.AllocsPerRun(1000, func() {
		sinkFrame, sinkN, _ = Decode(frame[:len(frame)-1], MaxPayloadLimit)
	})
	if allocs != 0 {
		t.Fatalf("Decode of a partial REPORT: %v allocs/op, want 0", allocs)
	}
}

func BenchmarkDecodeReport256(b *testing.B) {
	frame := AppendFrame(nil, TypeReport, 42, bytes.Repeat([]byte{'r'}, 256))
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		f, n, err := Decode(frame, MaxPayloadLimit)
		if err != nil || n != len(frame) || f.Seq != 42 {
			b.Fatal("decode failed")
		}
	}
}

// BenchmarkDecodeStream64x256 decodes a read's worth of 64 pipelined REPORTs.
func BenchmarkDecodeStream64x256(b *testing.B) {
	var stream []byte
	for i := range 64 {
		stream = AppendFrame(stream, TypeReport, uint64(i), bytes.Repeat([]byte{'r'}, 256))
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		off := 0
		for off < len(stream) {
			_, n, err := Decode(stream[off:], MaxPayloadLimit)
			if err != nil || n == 0 {
				b.Fatal("decode failed")
			}
			off += n
		}
	}
}
