package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goldenDatagram is one report datagram of testdata/golden/datagram/<name>.hex.
type goldenDatagram struct {
	name, id, token string
	seq             uint64
	payload         []byte
	what            string
}

var goldenDatagrams = []goldenDatagram{
	{name: "report_seq42", id: "agent-42", token: "s3cret", seq: 42, payload: []byte(`{"cpu":0.42}`),
		what: "client -> server, REPORT seq 42 of agent-42 with token s3cret; answered by ack_seq42.hex once durable"},
	{name: "report_no_token_seq1", id: "a", token: "", seq: 1, payload: []byte("x"),
		what: "client -> server, no token (an open server's loopback agent), 1-byte payload"},
}

func (g goldenDatagram) encode() []byte {
	return AppendDatagram(nil, g.id, g.token, g.seq, g.payload)
}

func (g goldenDatagram) file() string {
	b := g.encode()
	var sb strings.Builder
	fmt.Fprintf(&sb, "# hawk protocol v%d golden report datagram: %s\n# %s\n", Version, g.name, g.what)
	fmt.Fprintf(&sb, "# total %d bytes: a %d-byte header naming the client, then one REPORT frame\n", len(b), DatagramHeaderSize+len(g.id)+len(g.token))
	sb.WriteString("# format: see README.md; '#' starts a comment, other tokens are hex bytes\n#\n")
	line := func(field []byte, note string) {
		h := make([]string, len(field))
		for i, x := range field {
			h[i] = fmt.Sprintf("%02x", x)
		}
		fmt.Fprintf(&sb, "%-47s  # %s\n", strings.Join(h, " "), note)
	}
	line(b[0:2], `magic "HD"`)
	line(b[2:3], fmt.Sprintf("version %d", b[2]))
	line(b[3:4], fmt.Sprintf("client id length %d", b[3]))
	line(b[4:5], fmt.Sprintf("token length %d", b[4]))
	off := DatagramHeaderSize
	line(b[off:off+len(g.id)], "client id: "+printable(b[off:off+len(g.id)]))
	off += len(g.id)
	if len(g.token) > 0 {
		line(b[off:off+len(g.token)], "token: "+printable(b[off:off+len(g.token)]))
	} else {
		sb.WriteString("                                                 # token: none (length 0)\n")
	}
	off += len(g.token)
	frame := formatHex(nil, b[off:])
	sb.WriteString(strings.TrimPrefix(frame, "#\n"))
	return sb.String()
}

func TestGoldenDatagrams(t *testing.T) {
	for _, g := range goldenDatagrams {
		t.Run(g.name, func(t *testing.T) {
			path := filepath.Join(goldenDir, "datagram", g.name+".hex")
			checkGoldenFile(t, path, g.file(), g.encode())
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			d, err := DecodeDatagram(parseHex(t, string(text)))
			if err != nil {
				t.Fatalf("DecodeDatagram(%s): %v", path, err)
			}
			if string(d.ClientID) != g.id || string(d.Token) != g.token || d.Report.Seq != g.seq || !bytes.Equal(d.Report.Payload, g.payload) {
				t.Fatalf("%s decodes as id %q token %q seq %d payload %q", path, d.ClientID, d.Token, d.Report.Seq, d.Report.Payload)
			}
		})
	}
}

func TestDecodeDatagramRefuses(t *testing.T) {
	good := AppendDatagram(nil, "agent-42", "s3cret", 42, []byte(`{"cpu":0.42}`))
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name string
		d    []byte
		want error
	}{
		{"empty", nil, ErrDatagramMalformed},
		{"short", good[:4], ErrDatagramMalformed},
		{"bad_magic", mod(func(b []byte) []byte { b[1] = 'K'; return b }), ErrDatagramMalformed},
		{"bad_version", mod(func(b []byte) []byte { b[2] = 2; return b }), ErrDatagramMalformed},
		{"empty_id", mod(func(b []byte) []byte { b[3] = 0; return b }), ErrDatagramMalformed},
		{"id_past_end", mod(func(b []byte) []byte { b[3] = 255; return b }), ErrDatagramMalformed},
		{"truncated_frame", good[:len(good)-1], ErrDatagramMalformed},
		{"trailing_bytes", append(bytes.Clone(good), 0), ErrDatagramMalformed},
		{"not_a_report", AppendFrame([]byte{'H', 'D', 1, 1, 0, 'a'}, TypeAck, 42, nil), ErrDatagramMalformed},
		{"bad_crc", mod(func(b []byte) []byte { b[len(b)-6] ^= 1; return b }), ErrDatagramBadCRC},
		{"seq_changed", mod(func(b []byte) []byte { b[DatagramHeaderSize+14+15] ^= 1; return b }), ErrDatagramBadCRC},
	}
	for _, c := range cases {
		if _, err := DecodeDatagram(c.d); !errors.Is(err, c.want) {
			t.Errorf("%s: DecodeDatagram = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestDecodeDatagramDoesNotAllocate(t *testing.T) {
	d := AppendDatagram(nil, "agent-42", "s3cret", 42, []byte(`{"cpu":0.42}`))
	if n := testing.AllocsPerRun(100, func() { DecodeDatagram(d) }); n != 0 {
		t.Fatalf("DecodeDatagram allocates %.0f times", n)
	}
}

// FuzzDecodeDatagram checks that DecodeDatagram never panics, refuses with one of
// its two errors, and that what it accepts re-encodes to exactly the datagram.
func FuzzDecodeDatagram(f *testing.F) {
	for _, g := range goldenDatagrams {
		f.Add(g.encode())
	}
	f.Add([]byte("HD\x01\x01\x00a"))
	f.Fuzz(func(t *testing.T, d []byte) {
		g, err := DecodeDatagram(d)
		if err != nil {
			if !errors.Is(err, ErrDatagramMalformed) && !errors.Is(err, ErrDatagramBadCRC) {
				t.Fatalf("error %v is neither refusal", err)
			}
			return
		}
		again := AppendDatagram(nil, string(g.ClientID), string(g.Token), g.Report.Seq, g.Report.Payload)
		if !bytes.Equal(again, d) {
			t.Fatalf("re-encoded\n% x\nwant\n% x", again, d)
		}
	})
}

func BenchmarkDecodeDatagram(b *testing.B) {
	d := AppendDatagram(nil, "agent-42", "s3cret", 42, bytes.Repeat([]byte("x"), 200))
	b.SetBytes(int64(len(d)))
	for b.Loop() {
		if _, err := DecodeDatagram(d); err != nil {
			b.Fatal(err)
		}
	}
}
