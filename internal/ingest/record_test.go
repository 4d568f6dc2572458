package ingest

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// appendLine is appendRecord with the receive time formatted here: one report's
// line, as a Batch of that report alone holds it.
func appendLine(dst []byte, r *Record) []byte {
	var stamp [len(time.RFC3339Nano) + 8]byte
	return appendRecord(dst, r, appendStamp(stamp[:0], r.Received))
}

func decodeLine(t testing.TB, b []byte) line {
	t.Helper()
	if len(b) == 0 || b[len(b)-1] != '\n' || bytes.Count(b, []byte{'\n'}) != 1 || bytes.IndexByte(b, '\r') >= 0 {
		t.Fatalf("not exactly one line: %q", b)
	}
	if !utf8.Valid(b) {
		t.Fatalf("not UTF-8: %q", b)
	}
	var l line
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	return l
}

func TestAppendRecordFormat(t *testing.T) {
	r := &Record{
		ClientID: "a1", Seq: 12, ConnID: 5,
		Received: time.Date(2026, 11, 23, 8, 0, 0, 123456789, time.UTC),
		Payload:  []byte(`{"cpu":0.5}`),
	}
	got := string(appendLine(nil, r))
	want := `{"client_id":"a1","seq":12,"conn_id":5,"received":"2026-11-23T08:00:00.123456789Z","payload":{"cpu":0.5}}` + "\n"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestAppendRecordJSONPayload(t *testing.T) {
	tokyo := time.FixedZone("JST", 9*3600)
	recv := time.Date(2026, 11, 23, 17, 0, 0, 120000000, tokyo)
	payloads := []string{
		`{"host":"web-01","cpu":0.53,"tags":["prod","eu"],"nested":{"x":null,"ok":true,"n":-1.5e3}}`,
		`[1,2,3]`, `"just a string"`, `42`, `null`, `{}`, `[]`,
		` {"padded": "with spaces and\ttabs"} `,
		`{"unicode":"héllo \u2028 wörld 😀","esc":"a\"b\\c\n"}`,
	}
	for _, p := range payloads {
		r := &Record{ClientID: "agent-7", Seq: 1<<64 - 1, ConnID: 99, Received: recv, Payload: []byte(p)}
		l := decodeLine(t, appendLine(nil, r))
		if l.ClientID != "agent-7" || l.Seq != 1<<64-1 || l.ConnID != 99 || !l.Received.Equal(recv) || l.PayloadB64 != nil {
			t.Errorf("%s: decoded %+v", p, l)
		}
		var want, got any
		if err := json.Unmarshal([]byte(p), &want); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(l.Payload, &got); err != nil {
			t.Fatal(err)
		}
		if !jsonEqual(want, got) {
			t.Errorf("payload %s came back as %s", p, l.Payload)
		}
		if strings.TrimSpace(p) == p && string(l.Payload) != p {
			t.Errorf("payload without line breaks must be embedded verbatim: %s became %s", p, l.Payload)
		}
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestAppendRecordReceivedIsUTC(t *testing.T) {
	ny := time.FixedZone("EST", -5*3600)
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2026, 11, 23, 3, 0, 0, 0, ny), `"received":"2026-11-23T08:00:00Z"`},
		{time.Date(2026, 11, 23, 8, 0, 0, 500, time.UTC), `"received":"2026-11-23T08:00:00.0000005Z"`},
		{time.Time{}, `"received":"0001-01-01T00:00:00Z"`},
	} {
		got := appendLine(nil, &Record{Received: tc.t, Payload: []byte("1")})
		if !bytes.Contains(got, []byte(tc.want)) {
			t.Errorf("%v: %s does not contain %s", tc.t, got, tc.want)
		}
	}
}

func TestAppendRecordCompactsLineBreaks(t *testing.T) {
	p := "{\n  \"a\": \"x y\\n\",\r\n  \"b\": [1, 2,\n\t{\"c\" : null}]\n}\n"
	var want bytes.Buffer
	if err := json.Compact(&want, []byte(p)); err != nil {
		t.Fatal(err)
	}
	l := decodeLine(t, appendLine(nil, &Record{ClientID: "c", Payload: []byte(p)}))
	if string(l.Payload) != want.String() {
		t.Errorf("payload %s, want %s", l.Payload, want.String())
	}
}

func TestAppendRecordBinaryPayload(t *testing.T) {
	payloads := [][]byte{
		{0, 1, 2, 0xff, 0xfe, '\n', '\r'},
		[]byte(`{"truncated":`),
		[]byte("not json at all\n"),
		[]byte(`{"a":1} {"b":2}`),           // two values is not one JSON value
		[]byte("\"bad utf-8 \xff inside\""), // valid per json.Valid, but would not survive a JSON reader
		{},
		nil,
	}
	for _, p := range payloads {
		l := decodeLine(t, appendLine(nil, &Record{ClientID: "c", Seq: 3, Payload: p}))
		if l.PayloadB64 == nil || l.Payload != nil {
			t.Errorf("%q: want payload_b64 only, got %+v", p, l)
			continue
		}
		got, err := base64.StdEncoding.DecodeString(*l.PayloadB64)
		if err != nil || !bytes.Equal(got, p) {
			t.Errorf("%q: payload_b64 %q decodes to %q, %v", p, *l.PayloadB64, got, err)
		}
	}
}

func TestAppendRecordClientIDEscaping(t *testing.T) {
	ids := []string{
		"plain",
		`quo"te`,
		`back\slash`,
		"ctl\x00\x01\x1f\x7f\b\f\n\r\t",
		"bad\xffutf8\xc3",
		"\xed\xa0\x80 surrogate half",
		"line\u2028sep\u2029",
		"<html & friends>",
		"ünïcødé 😀",
		"",
	}
	for _, id := range ids {
		got := appendString(nil, id)
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(id); err != nil {
			t.Fatal(err)
		}
		if string(got) != strings.TrimSuffix(want.String(), "\n") {
			t.Errorf("%q: escaped as %s, encoding/json says %s", id, got, want.String())
		}
		var wantID string
		if err := json.Unmarshal(want.Bytes(), &wantID); err != nil {
			t.Fatal(err)
		}
		l := decodeLine(t, appendLine(nil, &Record{ClientID: id, Payload: []byte("{}")}))
		if l.ClientID != wantID {
			t.Errorf("%q came back as %q, want %q", id, l.ClientID, wantID)
		}
	}
	if got := string(appendString(nil, "a\xff\xfeb")); got != `"a\ufffd\ufffdb"` {
		t.Errorf("each invalid byte must become one U+FFFD: %s", got)
	}
}

func TestScanJSON(t *testing.T) {
	for _, tc := range []struct {
		in            string
		ok, lineBreak bool
	}{
		{`{}`, true, false},
		{"{\n}", true, true},
		{"[1,\r2]", true, true},
		{`"a\nb"`, true, false},
		{"\"a\nb\"", false, false}, // a raw newline inside a string is not JSON
		{`-0.5e+10`, true, false},
		{`01`, false, false},
		{`1.`, false, false},
		{`-`, false, false},
		{`tru`, false, false},
		{`truex`, false, false},
		{`{"a" 1}`, false, false},
		{`{"a":1,}`, false, false},
		{`[1,]`, false, false},
		{`{1:2}`, false, false},
		{`"\u12G4"`, false, false},
		{`"\x"`, false, false},
		{``, false, false},
		{` `, false, false},
		{strings.Repeat("[", MaxPayloadDepth) + strings.Repeat("]", MaxPayloadDepth), true, false},
		{strings.Repeat("[", MaxPayloadDepth+1) + strings.Repeat("]", MaxPayloadDepth+1), false, false}, // too deep to embed
		{strings.Repeat("[", 10001) + strings.Repeat("]", 10001), false, false},
		{strings.Repeat(`{"a":`, MaxPayloadDepth) + "\n1" + strings.Repeat("}", MaxPayloadDepth), true, true},
		{strings.Repeat(`{"a":`, 300) + "\n1" + strings.Repeat("}", 300), false, false},
	} {
		ok, lb := scanJSON([]byte(tc.in))
		if ok != tc.ok || ok && lb != tc.lineBreak {
			t.Errorf("scanJSON(%.40q) = %v, %v; want %v, %v", tc.in, ok, lb, tc.ok, tc.lineBreak)
		}
		if want := embeddable([]byte(tc.in)); ok != want {
			t.Errorf("scanJSON(%.40q) = %v, json.Valid and the depth bound say %v", tc.in, ok, want)
		}
	}
}

// embeddable is scanJSON's specification: json.Valid, UTF-8, and nested no deeper
// than MaxPayloadDepth.
func embeddable(p []byte) bool {
	if !json.Valid(p) || !utf8.Valid(p) {
		return false
	}
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case !inString && (c == '[' || c == '{'):
			depth++
			deepest = max(deepest, depth)
		case !inString && (c == ']' || c == '}'):
			depth--
		}
	}
	return deepest <= MaxPayloadDepth
}

// FuzzScanJSON holds scanJSON to json.Valid (plus UTF-8 validity and the depth
// bound), and appendCompact to json.Compact. Run with:
// go test -fuzz FuzzScanJSON ./internal/ingest/
// longStrings are JSON strings of 0 to 70 bytes, about the word boundaries of
// plainRun's word-at-a-time passes and its last word, each with one byte that is not plain (an escape, a quote, a control character,
// UTF-8 good and bad) at every position, and the same without their closing quote.
func longStrings() [][]byte {
	var out [][]byte
	for _, n := range []int{0, 1, 5, 7, 8, 9, 15, 16, 17, 31, 40, 70} {
		for pos := range n {
			for _, odd := range []string{`\"`, `\\`, `\u00e9`, `\q`, `"`, "\x01", "\x7f", "é", "\xff", "\xe2\x82", "€"} {
				s := strings.Repeat("x", pos) + odd + strings.Repeat("y", n-pos)
				out = append(out, []byte(`"`+s+`"`), []byte(`"`+s), []byte(`["`+s+`",1]`))
			}
		}
	}
	return out
}

// TestScanJSONLongStrings holds scanJSON to json.Valid on longStrings.
func TestScanJSONLongStrings(t *testing.T) {
	for _, p := range longStrings() {
		if ok, _ := scanJSON(p); ok != embeddable(p) {
			t.Fatalf("scanJSON(%q) = %v, json.Valid && utf8.Valid = %v", p, ok, !ok)
		}
	}
}

func FuzzScanJSON(f *testing.F) {
	for _, s := range []string{
		`{"a":[1,2.5e-3,true,false,null,"x\u00e9\n"]}`, "[\n1 ,\r\n\t2 ]", `"\ud800"`, "\"\xff\"",
		`{"a":{"b":{"c":[[[]]]}}}`, `-0`, `1E+2`, `{"":""}`, " 0 ", `[01]`, `{"a":}`,
	} {
		f.Add([]byte(s))
	}
	for _, p := range longStrings() {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		ok, lb := scanJSON(p)
		if want := embeddable(p); ok != want {
			t.Fatalf("scanJSON(%q) = %v, json.Valid && utf8.Valid && depth <= %d = %v", p, ok, MaxPayloadDepth, want)
		}
		if !ok {
			return
		}
		if want := bytes.ContainsAny(p, "\r\n"); lb != want {
			t.Fatalf("scanJSON(%q) line break = %v, want %v", p, lb, want)
		}
		var want bytes.Buffer
		if err := json.Compact(&want, p); err != nil {
			t.Fatal(err)
		}
		if got := appendCompact(nil, p); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("appendCompact(%q) = %q, json.Compact = %q", p, got, want.Bytes())
		}
	})
}

// FuzzAppendRecord checks that any client id and payload give one valid line
// that decodes back to them.
func FuzzAppendRecord(f *testing.F) {
	f.Add("a1", uint64(12), []byte(`{"x":1}`))
	f.Add("q\"\\\x00\xff", uint64(0), []byte{0xff, '\n'})
	f.Add("", uint64(1<<63), []byte("{\n\"a\" : [1,\r\n2]}"))
	f.Fuzz(func(t *testing.T, id string, seq uint64, p []byte) {
		recv := time.Unix(0, int64(seq>>1)).UTC()
		b := appendLine(nil, &Record{ClientID: id, Seq: seq, ConnID: seq ^ 1, Received: recv, Payload: p})
		l := decodeLine(t, b)
		wantID, _ := json.Marshal(id)
		var id2 string
		_ = json.Unmarshal(wantID, &id2)
		if l.ClientID != id2 || l.Seq != seq || l.ConnID != seq^1 || !l.Received.Equal(recv) {
			t.Fatalf("%q decoded as %+v", b, l)
		}
		if json.Valid(p) && utf8.Valid(p) {
			var want bytes.Buffer
			_ = json.Compact(&want, p)
			var got bytes.Buffer
			_ = json.Compact(&got, l.Payload)
			if l.PayloadB64 != nil || !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Fatalf("payload %q came back as %q", p, l.Payload)
			}
			return
		}
		if l.PayloadB64 == nil {
			t.Fatalf("payload %q: no payload_b64 in %q", p, b)
		}
		if got, err := base64.StdEncoding.DecodeString(*l.PayloadB64); err != nil || !bytes.Equal(got, p) {
			t.Fatalf("payload %q came back as %q, %v", p, got, err)
		}
	})
}

var (
	benchJSON = []byte(`{"host":"web-01.eu-west-1.prod","cpu":0.53,"load":[1.25,0.98,0.75],"mem":{"used":123456789,"free":987654321},` +
		`"disks":[{"dev":"sda","util":12.5},{"dev":"sdb","util":3.25}],"tags":["prod","eu-west-1","k8s"],"msg":"` +
		strings.Repeat("x", 256-214) + `"}`)
	benchBinary = func() []byte {
		b := make([]byte, 256)
		for i := range b {
			b[i] = byte(i * 7)
		}
		return b
	}()
)

func TestAppendRecordDoesNotAllocate(t *testing.T) {
	if len(benchJSON) != 256 || !json.Valid(benchJSON) {
		t.Fatalf("benchJSON is %d bytes, valid %v; want 256 bytes of JSON", len(benchJSON), json.Valid(benchJSON))
	}
	for name, p := range map[string][]byte{
		"json": benchJSON, "binary": benchBinary, "json with line breaks": []byte("{\n\"a\": 1\n}"),
		"deepest json":  []byte(strings.Repeat("[", MaxPayloadDepth) + strings.Repeat("]", MaxPayloadDepth)),
		"too deep json": []byte(strings.Repeat("[", 300) + strings.Repeat("]", 300)),
	} {
		r := &Record{ClientID: "agent-\"7\"", Seq: 1234567, ConnID: 42, Received: time.Now(), Payload: p}
		buf := make([]byte, 0, 4096)
		if n := testing.AllocsPerRun(100, func() { buf = appendLine(buf[:0], r) }); n != 0 {
			t.Errorf("%s: %v allocations per appendRecord, want 0", name, n)
		}
	}
}

func BenchmarkAppendRecord(b *testing.B) {
	for _, bc := range []struct {
		name    string
		payload []byte
	}{{"json", benchJSON}, {"binary", benchBinary}} {
		b.Run(bc.name, func(b *testing.B) {
			r := &Record{ClientID: "agent-0042", Seq: 1234567, ConnID: 42, Received: time.Now(), Payload: bc.payload}
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.payload)))
			for b.Loop() {
				buf = appendLine(buf[:0], r)
			}
		})
	}
}

func BenchmarkScanJSON(b *testing.B) {
	// "string" is what hawkc load sends: one JSON string of 256 bytes.
	str := []byte(`"` + strings.Repeat("x", 254) + `"`)
	for _, bc := range []struct {
		name    string
		payload []byte
	}{{"object", benchJSON}, {"string", str}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.payload)))
			b.ReportAllocs()
			for b.Loop() {
				if ok, _ := scanJSON(bc.payload); !ok {
					b.Fatal("not valid")
				}
			}
		})
	}
}

// BenchmarkJSONValid is the cost scanJSON saves.
func BenchmarkJSONValid(b *testing.B) {
	b.SetBytes(int64(len(benchJSON)))
	for b.Loop() {
		if !json.Valid(benchJSON) || !utf8.Valid(benchJSON) {
			b.Fatal("not valid")
		}
	}
}

// TestDeepestPayloadReadsInPython: a line embedding the deepest payload hawk embeds
// is read by Python's json module, as log shippers written in Python read spool
// lines; one level deeper is stored as payload_b64 and reads too.
func TestDeepestPayloadReadsInPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed to check that records read in Python (Debian: apt-get install python3)")
	}
	for _, depth := range []int{MaxPayloadDepth, MaxPayloadDepth + 1, 10000} {
		p := []byte(strings.Repeat("[", depth) + strings.Repeat("]", depth))
		line := appendLine(nil, &Record{ClientID: "c", Seq: 1, Payload: p})
		cmd := exec.Command(py, "-c", "import json,sys; r=json.loads(sys.stdin.read()); print('payload' in r)")
		cmd.Stdin = bytes.NewReader(line)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("depth %d: Python cannot read the line: %v\n%s", depth, err, out)
		}
		if embedded := strings.TrimSpace(string(out)) == "True"; embedded != (depth <= MaxPayloadDepth) {
			t.Errorf("depth %d: embedded as JSON = %v", depth, embedded)
		}
		var v map[string]any
		if err := json.Unmarshal(line, &v); err != nil {
			t.Errorf("depth %d: encoding/json cannot read the line: %v", depth, err)
		}
	}
}

// A legacy report's line carries its listener and format after conn_id; a native
// one's is unchanged (TestAppendRecordFormat pins it byte for byte).
func TestAppendRecordLegacyKeys(t *testing.T) {
	r := &Record{
		ClientID: "ffff:10.1.2.3:54321", Seq: 7, ConnID: 6, Listener: "metrics", Format: "ffff",
		Received: time.Date(2026, 11, 23, 8, 0, 0, 300000000, time.UTC),
		Payload:  []byte(`{"content":"x","rand":7,"timestamp":1700000000}`),
	}
	got := string(appendLine(nil, r))
	want := `{"client_id":"ffff:10.1.2.3:54321","seq":7,"conn_id":6,"listener":"metrics","format":"ffff","received":"2026-11-23T08:00:00.3Z","payload":{"content":"x","rand":7,"timestamp":1700000000}}` + "\n"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	var b Batch
	b.Add(r)
	if string(b.Lines()) != want {
		t.Errorf("Batch.Add wrote %s", b.Lines())
	}
}

// A UDP report datagram's line carries its source address after format.
func TestAppendRecordSource(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"10.1.2.3:54321", `"10.1.2.3:54321"`},
		{"[2001:db8::1]:514", `"[2001:db8::1]:514"`},
	} {
		r := &Record{
			ClientID: "a1", Seq: 7, Listener: "dgrams", Format: "report", Source: netip.MustParseAddrPort(c.src),
			Received: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), Payload: []byte(`{}`),
		}
		got := string(appendLine(nil, r))
		want := `{"client_id":"a1","seq":7,"conn_id":0,"listener":"dgrams","format":"report","source":` + c.want + `,"received":"2026-11-23T08:00:00Z","payload":{}}` + "\n"
		if got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
		var v struct{ Source string }
		if err := json.Unmarshal([]byte(got), &v); err != nil || v.Source != c.src {
			t.Errorf("source read back as %q (%v), want %q", v.Source, err, c.src)
		}
	}
}

// TestSpecial holds the word test of plainRun to the bytes that stand for
// themselves in a JSON string: the first byte it finds is the first that does not,
// for every byte value at every position among plain bytes, and with every byte
// value beside it above (a borrow from one byte must not hide or invent another).
func TestSpecial(t *testing.T) {
	plain := func(c byte) bool { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\' }
	first := func(w []byte) int {
		for i, c := range w {
			if !plain(c) {
				return i
			}
		}
		return 8
	}
	got := func(w []byte) int { return bits.TrailingZeros64(special(binary.LittleEndian.Uint64(w))) / 8 }
	for pos := range 8 {
		for c := range 256 {
			w := []byte("aaaaaaaa")
			w[pos] = byte(c)
			if g, want := got(w), first(w); g != want {
				t.Fatalf("special(%q) says byte %d, want %d", w, g, want)
			}
			if pos == 7 {
				continue
			}
			for d := range 256 {
				w[pos+1] = byte(d)
				if g, want := got(w), first(w); g != want {
					t.Fatalf("special(%q) says byte %d, want %d", w, g, want)
				}
			}
		}
	}
}

// TestPlainRun holds plainRun (on amd64 its SSE2 code for 16 bytes and more) and
// plainRunWords to the first byte that is not plain: for every length up to 70,
// every byte value at every position, from the start and from just before and
// after that byte, and some of them from every start.
func TestPlainRun(t *testing.T) {
	plain := func(c byte) bool { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\' }
	for _, run := range []struct {
		name string
		f    func([]byte, int) int
	}{{"plainRun", plainRun}, {"plainRunWords", plainRunWords}} {
		for n := range 71 {
			s := bytes.Repeat([]byte("a"), n)
			for from := range n + 1 {
				if got := run.f(s, from); got != n {
					t.Fatalf("%s(%d plain bytes, %d) = %d, want %d", run.name, n, from, got, n)
				}
			}
			for pos := range n {
				for c := range 256 {
					s[pos] = byte(c)
					froms := []int{0, pos, pos + 1}
					if c == 0 || c == '"' || c == 0x80 {
						froms = froms[:0]
						for from := range n + 1 {
							froms = append(froms, from)
						}
					}
					for _, from := range froms {
						want := n
						if from <= pos && !plain(byte(c)) {
							want = pos
						}
						if got := run.f(s, from); got != want {
							t.Fatalf("%s(%q, %d) = %d, want %d", run.name, s, from, got, want)
						}
					}
				}
				s[pos] = 'a'
			}
		}
	}
}
