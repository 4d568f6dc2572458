package protocol

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/**/*.hex from AppendFrame/AppendJSON")

const goldenDir = "testdata/golden"

// goldenFrame is one valid frame of testdata/golden/<name>.hex.
type goldenFrame struct {
	name string
	typ  Type
	seq  uint64
	v    any    // JSON payload (AppendJSON), or nil
	raw  []byte // opaque payload (AppendFrame) when v is nil
	what string // one line on what the frame is
}

func (g goldenFrame) encode() []byte {
	if g.v != nil {
		return AppendJSON(nil, g.typ, g.seq, g.v)
	}
	return AppendFrame(nil, g.typ, g.seq, g.raw)
}

// goldenFrames are the valid vectors. Changing any of them changes the wire format
// that agents in other languages were written against: don't, unless the version
// byte changes too.
var goldenFrames = []goldenFrame{
	{name: "hello", typ: TypeHello, seq: 0, what: "client -> server, first frame on a connection",
		v: &Hello{ClientID: "agent-42", Token: "s3cret", ClientVersion: "1.0.0"}},
	{name: "welcome", typ: TypeWelcome, seq: 0, what: "server -> client, HELLO accepted",
		v: &Welcome{ServerID: "hawk-1", ServerVersion: "1.0.0", ConnID: 7, HeartbeatIntervalMS: 10000, MaxFrameSize: 1 << 20, MaxInFlight: 1024}},
	{name: "ping_seq1", typ: TypePing, seq: 1, what: "heartbeat, either way; the answer echoes the seq"},
	{name: "pong_seq1", typ: TypePong, seq: 1, what: "answer to PING seq 1"},
	{name: "report_seq42", typ: TypeReport, seq: 42, raw: []byte(`{"cpu":0.42}`),
		what: "client -> server, a 12-byte opaque payload (here text)"},
	{name: "report_empty_seq43", typ: TypeReport, seq: 43, raw: nil, what: "client -> server, empty payload"},
	{name: "report_seqmax", typ: TypeReport, seq: math.MaxUint64, raw: []byte("x"),
		what: "client -> server, seq 2^64-1 (the largest seq)"},
	{name: "ack_seq42", typ: TypeAck, seq: 42, what: "server -> client, REPORT seq 42 is persisted"},
	{name: "nack_seq43", typ: TypeNack, seq: 43, what: "server -> client, REPORT seq 43 refused, may be resent",
		v: &Nack{Code: CodeSpoolWrite, Message: "no space left on device", Retryable: true}},
	{name: "goaway", typ: TypeGoaway, seq: 0, what: "server -> client, move to a new connection 1.234 s from now, within 30 s",
		v: &Goaway{Reason: "upgrade", DeadlineMS: 30000, ReconnectAfterMS: 1234}},
	{name: "error", typ: TypeError, seq: 0, what: "server -> client, sent just before the server closes",
		v: &ErrorPayload{Code: CodeUnauthorized, Message: "unauthorized: unknown token"}},
	{name: "error_busy", typ: TypeError, seq: 0, what: "server -> client, handshake not admitted now; reconnect after 250 ms or later",
		v: &ErrorPayload{Code: CodeBusy, Message: "busy: admitting 2000 handshakes/s", RetryAfterMS: 250}},
	{name: "welcome_uploads", typ: TypeWelcome, seq: 0, what: "server -> client, HELLO accepted by a server that takes uploads, 4 MiB of chunk data in flight",
		v: &Welcome{ServerID: "hawk-1", ServerVersion: "1.0.0", ConnID: 7, HeartbeatIntervalMS: 10000, MaxFrameSize: 1 << 20, MaxInFlight: 1024, MaxUploadInFlight: 4 << 20}},
	{name: "upload_open", typ: TypeUploadOpen, seq: 0, what: "client -> server, open (or resume) upload u-1: a 10-byte file of known sha256",
		v: &UploadOpen{UploadID: "u-1", Name: "crash.dump", Size: 10, SHA256: sha256Hello}},
	{name: "upload_state_open", typ: TypeUploadState, seq: 0, what: "server -> client, upload u-1 is open and 4 bytes of it are durable: resume at 4",
		v: &UploadState{UploadID: "u-1", Offset: 4}},
	{name: "upload_chunk_off4", typ: TypeUploadChunk, seq: 4, raw: AppendChunkPayload(nil, "u-1", []byte("o worl")),
		what: "client -> server, upload u-1, 6 bytes at offset 4 (seq is the offset)"},
	{name: "upload_state_off10", typ: TypeUploadState, seq: 4, what: "server -> client, the chunk at offset 4 is durable: 10 bytes",
		v: &UploadState{UploadID: "u-1", Offset: 10}},
	{name: "upload_state_bad_offset", typ: TypeUploadState, seq: 12, what: "server -> client, a chunk sent at offset 12 is refused: the next chunk must start at 10",
		v: &UploadState{UploadID: "u-1", Offset: 10, Code: CodeUploadOffset, Message: "chunk at offset 12; the durable offset is 10: send from 10"}},
	{name: "upload_commit", typ: TypeUploadCommit, seq: 0, what: "client -> server, every byte of u-1 is sent: check and publish",
		v: &UploadCommit{UploadID: "u-1", Size: 10, SHA256: sha256Hello}},
	{name: "upload_state_done", typ: TypeUploadState, seq: 0, what: "server -> client, u-1 is published (also the answer to a retried commit)",
		v: &UploadState{UploadID: "u-1", Offset: 10, Done: true}},
	{name: "hello_ack_range", typ: TypeHello, seq: 0, what: "client -> server, first frame, asking for range acknowledgements",
		v: &Hello{ClientID: "agent-42", Token: "s3cret", ClientVersion: "1.0.0", Ack: AckModeRange}},
	{name: "welcome_ack_range", typ: TypeWelcome, seq: 0, what: "server -> client, HELLO accepted, range acknowledgements granted",
		v: &Welcome{ServerID: "hawk-1", ServerVersion: "1.0.0", ConnID: 7, HeartbeatIntervalMS: 10000, MaxFrameSize: 1 << 20, MaxInFlight: 1024, Ack: AckModeRange}},
	{name: "ack_range_40_49", typ: TypeAckRange, seq: 0, raw: ackRangePayload(40, 47, 49, 49),
		what: "server -> client, REPORTs 40..47 and 49 are persisted (48, NACKed or not yet durable, is not covered)"},
}

// ackRangePayload is an ACK_RANGE payload of the ranges first0, last0, first1, last1, ...
func ackRangePayload(bounds ...uint64) []byte {
	var p []byte
	for _, b := range bounds {
		p = binary.BigEndian.AppendUint64(p, b)
	}
	return p
}

// sha256Hello is the sha256 of the 10 bytes "hello worl", the file of the upload vectors.
const sha256Hello = "36ec9bdaee807f2ae07f9f43c851ace40bad1e659f04f831704abe9d2efcf2df"

// invalidFrame is one malformed input of testdata/golden/invalid/<name>.hex: a
// decoder with the given payload limit must reject it with the given code.
type invalidFrame struct {
	name  string
	bytes func() []byte
	limit int
	code  Code
	what  string
}

var invalidFrames = []invalidFrame{
	{name: "bad_magic", code: CodeBadMagic, limit: 1 << 20,
		what:  "an HTTP request sent to the hawk port; rejected after 2 bytes",
		bytes: func() []byte { return []byte("GET / HTTP/1.1\r\n") }},
	{name: "unsupported_version", code: CodeUnsupportedVersion, limit: 1 << 20,
		what: "report_seq42 with version 2 (CRC recomputed); rejected after 3 bytes",
		bytes: func() []byte {
			b := AppendFrame(nil, TypeReport, 42, []byte(`{"cpu":0.42}`))
			b[2] = 2
			return fixCRC(b)
		}},
	{name: "unknown_type", code: CodeUnknownType, limit: 1 << 20,
		what:  "type 255 (CRC correct); rejected once the 16-byte header is in",
		bytes: func() []byte { return AppendFrame(nil, Type(255), 42, nil) }},
	{name: "frame_too_large", code: CodeFrameTooLarge, limit: 1 << 20,
		what: "a REPORT header announcing 1 MiB + 1 against a 1 MiB limit; rejected from the header alone, no payload follows",
		bytes: func() []byte {
			b := AppendFrame(nil, TypeReport, 42, nil)[:HeaderSize]
			binary.BigEndian.PutUint32(b[4:8], 1<<20+1)
			return b
		}},
	{name: "bad_crc_payload", code: CodeBadCRC, limit: 1 << 20,
		what: "report_seq42 with one payload bit flipped ('c' -> 'b')",
		bytes: func() []byte {
			b := AppendFrame(nil, TypeReport, 42, []byte(`{"cpu":0.42}`))
			b[HeaderSize+2] ^= 0x01
			return b
		}},
	{name: "bad_crc_seq", code: CodeBadCRC, limit: 1 << 20,
		what: "report_seq42 with the seq changed to 43 and the CRC left alone",
		bytes: func() []byte {
			b := AppendFrame(nil, TypeReport, 42, []byte(`{"cpu":0.42}`))
			b[15] ^= 0x01
			return b
		}},
}

// fixCRC recomputes the trailer of a whole frame.
func fixCRC(b []byte) []byte {
	binary.BigEndian.PutUint32(b[len(b)-TrailerSize:], crc32cBitwise(b[2:len(b)-TrailerSize]))
	return b
}

// formatHex renders b as an annotated hex file: '#' starts a comment, and every other
// whitespace-separated token is one byte as two hex digits. Bytes are grouped by field.
func formatHex(comments []string, b []byte) string {
	var sb strings.Builder
	for _, c := range comments {
		if c == "" {
			sb.WriteString("#\n")
		} else {
			sb.WriteString("# " + c + "\n")
		}
	}
	sb.WriteString("#\n")
	line := func(field []byte, note string) {
		h := make([]string, len(field))
		for i, x := range field {
			h[i] = fmt.Sprintf("%02x", x)
		}
		fmt.Fprintf(&sb, "%-47s  # %s\n", strings.Join(h, " "), note)
	}
	if len(b) < 2 || b[0] != Magic0 || b[1] != Magic1 {
		for len(b) > 0 {
			k := min(16, len(b))
			line(b[:k], "not a hawk frame: "+printable(b[:k]))
			b = b[k:]
		}
		return sb.String()
	}
	line(b[0:2], `magic "HK"`)
	if len(b) > 2 {
		line(b[2:3], fmt.Sprintf("version %d", b[2]))
	}
	if len(b) > 3 {
		line(b[3:4], fmt.Sprintf("type %d = %s", b[3], Type(b[3])))
	}
	if len(b) < HeaderSize {
		return sb.String()
	}
	length := int(binary.BigEndian.Uint32(b[4:8]))
	line(b[4:8], fmt.Sprintf("payload length %d (big-endian uint32)", length))
	line(b[8:16], fmt.Sprintf("seq %d (big-endian uint64)", binary.BigEndian.Uint64(b[8:16])))
	rest := b[HeaderSize:]
	if length+TrailerSize > len(rest) {
		if len(rest) > 0 {
			line(rest, "(truncated)")
		}
		return sb.String()
	}
	p := rest[:length]
	if len(p) == 0 {
		sb.WriteString("                                                 # payload: none (length 0)\n")
	}
	for off := 0; off < len(p); off += 16 {
		chunk := p[off:min(off+16, len(p))]
		line(chunk, fmt.Sprintf("payload %d..%d: %s", off, off+len(chunk)-1, printable(chunk)))
	}
	line(rest[length:length+TrailerSize], fmt.Sprintf("crc32c %#08x (big-endian uint32)", binary.BigEndian.Uint32(rest[length:])))
	return sb.String()
}

func printable(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if c >= 0x20 && c < 0x7f {
			sb.WriteByte(c)
		} else {
			sb.WriteByte('.')
		}
	}
	return sb.String()
}

// parseHex reads an annotated hex file the way an implementer in another language
// would: drop everything from '#' to the end of each line, then read each
// whitespace-separated token as one byte in two hex digits.
func parseHex(t *testing.T, text string) []byte {
	t.Helper()
	var out []byte
	for i, ln := range strings.Split(text, "\n") {
		if k := strings.IndexByte(ln, '#'); k >= 0 {
			ln = ln[:k]
		}
		for _, tok := range strings.Fields(ln) {
			b, err := hex.DecodeString(tok)
			if err != nil || len(b) != 1 {
				t.Fatalf("line %d: %q is not one hex byte", i+1, tok)
			}
			out = append(out, b[0])
		}
	}
	return out
}

// metadata returns the value of a "# key: value" comment line.
func metadata(text, key string) (string, bool) {
	for _, ln := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(ln, "# "+key+": "); ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

func (g goldenFrame) file() string {
	b := g.encode()
	length := len(b) - Overhead
	comments := []string{
		fmt.Sprintf("hawk protocol v%d golden frame: %s", Version, g.name),
		"frame: " + fmt.Sprintf("%s seq=%d length=%d", g.typ, g.seq, length),
		g.what,
	}
	if r, err := ParseAckRanges(b[HeaderSize : HeaderSize+length]); g.typ == TypeAckRange && err == nil {
		ranges := make([]string, r.Len())
		for i := range ranges {
			first, last := r.At(i)
			ranges[i] = fmt.Sprintf("%d..%d", first, last)
		}
		comments = append(comments, "ranges: "+strings.Join(ranges, ", "))
	} else if length > 0 {
		comments = append(comments, "payload: "+string(b[HeaderSize:HeaderSize+length]))
	}
	comments = append(comments,
		fmt.Sprintf("total %d bytes; crc32c over bytes 2..%d (version..payload) = %#08x",
			len(b), len(b)-TrailerSize-1, binary.BigEndian.Uint32(b[len(b)-TrailerSize:])),
		"format: see README.md; '#' starts a comment, other tokens are hex bytes")
	return formatHex(comments, b)
}

func (v invalidFrame) file() string {
	comments := []string{
		fmt.Sprintf("hawk protocol v%d invalid input: %s", Version, v.name),
		v.what,
		"expect: " + string(v.code),
		"limit: " + strconv.Itoa(v.limit),
		"format: see README.md; '#' starts a comment, other tokens are hex bytes",
	}
	return formatHex(comments, v.bytes())
}

// checkGoldenFile compares path with want, or rewrites it under -update.
func checkGoldenFile(t *testing.T, path, want string, wantBytes []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update ./internal/protocol/ to create it)", err)
	}
	if b := parseHex(t, string(got)); !bytes.Equal(b, wantBytes) {
		t.Fatalf("%s holds\n% x\nthe encoder produces\n% x", path, b, wantBytes)
	}
	if string(got) != want {
		t.Fatalf("%s: bytes match but the annotations are stale; run with -update.\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestGoldenFrames(t *testing.T) {
	for _, g := range goldenFrames {
		t.Run(g.name, func(t *testing.T) {
			want := g.encode()
			path := filepath.Join(goldenDir, g.name+".hex")
			checkGoldenFile(t, path, g.file(), want)

			// Decode the bytes as stored in the file, independently of the encoder.
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b := parseHex(t, string(text))
			f, n, err := Decode(b, MaxPayloadLimit)
			if err != nil || n != len(b) {
				t.Fatalf("Decode(%s) = (%d, %v), want (%d, nil)", path, n, err, len(b))
			}
			if f.Type != g.typ || f.Seq != g.seq {
				t.Fatalf("%s decodes as %s seq %d, want %s seq %d", path, f.Type, f.Seq, g.typ, g.seq)
			}
			if got, want := binary.BigEndian.Uint32(b[n-TrailerSize:]), crc32cBitwise(b[2:n-TrailerSize]); got != want {
				t.Fatalf("%s: trailer %#08x, bitwise CRC-32C %#08x", path, got, want)
			}
			if g.v != nil {
				out := reflectNew(g.v)
				if err := ParseJSON(f, out); err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				if again := AppendJSON(nil, f.Type, f.Seq, out); !bytes.Equal(again, b) {
					t.Fatalf("%s: parse and re-encode differs", path)
				}
			} else if !bytes.Equal(f.Payload, g.raw) {
				t.Fatalf("%s: payload %q, want %q", path, f.Payload, g.raw)
			}
		})
	}
}

func TestGoldenInvalid(t *testing.T) {
	for _, v := range invalidFrames {
		t.Run(v.name, func(t *testing.T) {
			path := filepath.Join(goldenDir, "invalid", v.name+".hex")
			checkGoldenFile(t, path, v.file(), v.bytes())

			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			code, ok1 := metadata(string(text), "expect")
			lim, ok2 := metadata(string(text), "limit")
			limit, err := strconv.Atoi(lim)
			if !ok1 || !ok2 || err != nil {
				t.Fatalf("%s: missing or bad expect/limit lines", path)
			}
			de := decodeErr(t, parseHex(t, string(text)), limit)
			if string(de.Code) != code {
				t.Fatalf("%s: Decode gives %q (%v), file expects %q", path, de.Code, de, code)
			}
		})
	}
}

// TestGoldenNoStrayFiles keeps the directory and the tables in step.
func TestGoldenNoStrayFiles(t *testing.T) {
	if *update {
		t.Skip("-update")
	}
	var want []string
	for _, g := range goldenFrames {
		want = append(want, g.name+".hex")
	}
	for _, v := range invalidFrames {
		want = append(want, filepath.Join("invalid", v.name+".hex"))
	}
	var got []string
	for _, pattern := range []string{"*.hex", "invalid/*.hex"} {
		m, err := filepath.Glob(filepath.Join(goldenDir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m {
			rel, _ := filepath.Rel(goldenDir, p)
			got = append(got, rel)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("%s holds %v, the tables name %v", goldenDir, got, want)
	}
}

// The golden frames, concatenated, are a stream any split of which decodes alike.
func TestGoldenStream(t *testing.T) {
	var stream []byte
	var want []decoded
	for _, g := range goldenFrames {
		b := g.encode()
		stream = append(stream, b...)
		f, _, err := Decode(b, MaxPayloadLimit)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, decoded{f.Type, f.Seq, bytes.Clone(f.Payload)})
	}
	res := streamResult{frames: want, consumed: len(stream)}
	sameResult(t, "all at once", decodeAllAtOnce(t, stream, 1<<20), res)
	sameResult(t, "byte by byte", decodeByteByByte(t, stream, 1<<20), res)
}

func reflectNew(v any) any {
	switch v.(type) {
	case *Hello:
		return new(Hello)
	case *Welcome:
		return new(Welcome)
	case *Nack:
		return new(Nack)
	case *Goaway:
		return new(Goaway)
	case *ErrorPayload:
		return new(ErrorPayload)
	case *UploadOpen:
		return new(UploadOpen)
	case *UploadCommit:
		return new(UploadCommit)
	case *UploadState:
		return new(UploadState)
	}
	panic(fmt.Sprintf("no payload type %T", v))
}
