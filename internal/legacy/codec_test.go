package legacy

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.json from the encoders")

// decodeAll runs c over stream the way a connection does, feeding it in chunks of
// the given size, and returns the frames and drops in order.
func decodeAll(t testing.TB, c codec, stream []byte, chunk, maxData int) (frames []frame, drops []string) {
	t.Helper()
	var buf, scratch []byte
	inSync := false // one sync drop per run of junk, however it is split (as lconn.parse counts)
	for i := 0; i < len(stream); i += chunk {
		buf = append(buf, stream[i:min(i+chunk, len(stream))]...)
		for len(buf) > 0 {
			var d decoded
			d, scratch = c.decode(buf, maxData, scratch)
			if d.N == 0 {
				if d.Need != 0 && d.Need <= len(buf) {
					t.Fatalf("decoder needs %d bytes and has %d", d.Need, len(buf))
				}
				break
			}
			if d.N > len(buf) {
				t.Fatalf("decoder consumed %d of %d bytes", d.N, len(buf))
			}
			switch {
			case d.Drop == DropSync:
				if !inSync {
					drops = append(drops, d.Drop)
				}
				inSync = true
			case d.Drop != "":
				inSync = false
				drops = append(drops, d.Drop)
			default:
				inSync = false
				f := d.Frame
				f.Payload = bytes.Clone(f.Payload)
				frames = append(frames, f)
			}
			buf = buf[d.N:]
		}
	}
	return frames, drops
}

func report(i int) []byte {
	return fmt.Appendf(nil, `{"content":"report %d","rand":%d,"timestamp":1700000000}`, i, i*7)
}

const heartbeatContent = `{"version":"1.0","timestamp":1700000000}`

func TestFFFFRoundTripEveryChunking(t *testing.T) {
	var stream []byte
	stream = AppendFFFFPacket(stream, FFFFHeartbeat, []byte(heartbeatContent))
	for i := range 5 {
		stream = AppendFFFFPacket(stream, FFFFReport, report(i))
	}
	for _, chunk := range []int{1, 2, 3, 7, len(stream)} {
		frames, drops := decodeAll(t, ffffCodec{}, stream, chunk, maxFFFFData)
		if len(drops) != 0 || len(frames) != 6 {
			t.Fatalf("chunk %d: %d frames, drops %v", chunk, len(frames), drops)
		}
		if frames[0].Kind != kindHeartbeat {
			t.Errorf("chunk %d: first frame %+v, want a heartbeat", chunk, frames[0])
		}
		for i, f := range frames[1:] {
			if f.Kind != kindReport || !bytes.Equal(f.Payload, report(i)) {
				t.Errorf("chunk %d: frame %d = %+v %q", chunk, i+1, f.Kind, f.Payload)
			}
		}
	}
}

// Corrupt frames in the middle of a stream are dropped with their reason, and every
// good frame around them is decoded.
func TestFFFFResync(t *testing.T) {
	good := func(i int) []byte { return AppendFFFFPacket(nil, FFFFReport, report(i)) }
	badCRC := good(100)
	badCRC[len(badCRC)-4] ^= 0x55
	badTrailer := good(101)
	badTrailer[len(badTrailer)-1] = 0x00
	badLen := good(102)
	badLen[3]-- // one byte short: the "trailer" is off by one
	tooLarge := []byte{0xff, 0xff, 0xff, 0xf0, 'x'}
	envelope := AppendFFFF(nil, []byte(`{"nope":1}`))
	ptype := AppendFFFFPacket(nil, 7, report(103))
	garbage := []byte("garbage\xff")

	var stream []byte
	stream = append(stream, good(0)...)
	stream = append(stream, badCRC...)
	stream = append(stream, good(1)...)
	stream = append(stream, badTrailer...)
	stream = append(stream, good(2)...)
	stream = append(stream, badLen...)
	stream = append(stream, good(3)...)
	stream = append(stream, garbage...)
	stream = append(stream, good(4)...)
	stream = append(stream, envelope...)
	stream = append(stream, ptype...)
	stream = append(stream, good(5)...)
	stream = append(stream, tooLarge...)
	stream = append(stream, good(6)...)
	for _, chunk := range []int{1, 5, len(stream)} {
		frames, drops := decodeAll(t, ffffCodec{}, stream, chunk, 4096)
		var got []string
		for _, f := range frames {
			got = append(got, string(f.Payload))
		}
		var want []string
		for i := range 7 {
			want = append(want, string(report(i)))
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("chunk %d: frames\n%s\nwant\n%s", chunk, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		for _, r := range []string{DropCRC, DropTrailer, DropSync, DropEnvelope, DropPacketType, DropTooLarge} {
			if !strings.Contains(strings.Join(drops, ","), r) {
				t.Errorf("chunk %d: drops %v, missing %s", chunk, drops, r)
			}
		}
	}
}

// A header announcing 65535 bytes asks for them (Need) but the decoder allocates
// nothing for it: the reader grows its buffer with the bytes that arrive.
func TestFFFFHeaderAllocatesNothing(t *testing.T) {
	hdr := []byte{0xff, 0xff, 0xff, 0xff, '{'}
	var d decoded
	allocs := testing.AllocsPerRun(100, func() { d, _ = ffffCodec{}.decode(hdr, maxFFFFData, nil) })
	if allocs != 0 || d.N != 0 || d.Need != 4+0xffff+4 {
		t.Errorf("decode of a bare header: %+v, %v allocations", d, allocs)
	}
}

func TestC8C9RoundTripAndReply(t *testing.T) {
	req := []byte(`{"data_type":"metric","call_back_key":"k-1","value":42}`)
	var stream []byte
	stream = AppendC8C9(stream, 0x10, req)
	stream = append(stream, 0x00, 0x01) // junk between frames
	stream = AppendC8C9(stream, 0x11, []byte(`[1,2]`))
	bad := AppendC8C9(nil, 0x10, req)
	bad[len(bad)-1] = 0
	stream = append(stream, bad...)
	stream = AppendC8C9(stream, 0x12, []byte(`{}`))
	for _, chunk := range []int{1, 4, len(stream)} {
		frames, drops := decodeAll(t, c8c9Codec{}, stream, chunk, 1<<20)
		if len(frames) != 3 || frames[0].Type != 0x10 || !bytes.Equal(frames[0].Payload, req) || frames[1].Type != 0x11 || frames[2].Type != 0x12 {
			t.Fatalf("chunk %d: frames %+v", chunk, frames)
		}
		if strings.Join(drops, ",") != "sync,trailer" {
			t.Errorf("chunk %d: drops %v", chunk, drops)
		}
	}

	reply := appendC8C9Reply(nil, 0x10, appendC8C9Echo(nil, req), 77, nil)
	frames, drops := decodeAll(t, c8c9Codec{}, reply, len(reply), 1<<20)
	if len(frames) != 1 || len(drops) != 0 || frames[0].Type != 0x10 {
		t.Fatalf("reply %x decodes as %+v %v", reply, frames, drops)
	}
	var res C8C9Result
	if err := json.Unmarshal(frames[0].Payload, &res); err != nil {
		t.Fatal(err)
	}
	if string(res.DataType) != `"metric"` || string(res.CallBackKey) != `"k-1"` || res.Status != C8C9Stored || string(res.Data) != `{"seq":77}` {
		t.Errorf("result %s", frames[0].Payload)
	}
	reply = appendC8C9Reply(nil, 0x11, appendC8C9Echo(nil, []byte(`[1,2]`)), 78, errors.New("disk full"))
	frames, _ = decodeAll(t, c8c9Codec{}, reply, 1, 1<<20)
	if len(frames) != 1 || json.Unmarshal(frames[0].Payload, &res) != nil || res.Status != C8C9NotStored ||
		string(res.DataType) != "null" || string(res.CallBackKey) != "null" || !strings.Contains(res.Message, "disk full") {
		t.Errorf("failure result %s", frames[0].Payload)
	}
}

func TestC8C9Lengths(t *testing.T) {
	for _, hdr := range [][]byte{
		{0xc8, 0, 0, 0, 7, 0, 0x10},          // shorter than an empty frame
		{0xc8, 0xff, 0xff, 0xff, 0xff, 0, 0}, // negative
		{0xc8, 0, 0x10, 0, 9, 0, 0},          // past maxData
	} {
		d, _ := c8c9Codec{}.decode(hdr, 1024, nil)
		if d.Drop != DropTooLarge || d.N != len(hdr) {
			t.Errorf("% x: %+v", hdr, d)
		}
	}
}

// A device that writes 100 messages at once: 100 messages in one write are 100 frames.
func TestHeadersHundredInOneWrite(t *testing.T) {
	var stream []byte
	for i := range 100 {
		stream = AppendHeaders(stream, report(i))
	}
	for _, chunk := range []int{1, 11, len(stream)} {
		frames, drops := decodeAll(t, headersCodec{}, stream, chunk, 1<<20)
		if len(frames) != 100 || len(drops) != 0 {
			t.Fatalf("chunk %d: %d frames, drops %v", chunk, len(frames), drops)
		}
		for i, f := range frames {
			if !bytes.Equal(f.Payload, report(i)) {
				t.Fatalf("chunk %d: frame %d = %q", chunk, i, f.Payload)
			}
		}
	}
	// A negative length and junk: dropped, then the next frame.
	stream = append([]byte("HeadXHeaders\xff\xff\xff\xff"), AppendHeaders(nil, []byte("ok"))...)
	frames, drops := decodeAll(t, headersCodec{}, stream, 1, 1<<20)
	if len(frames) != 1 || string(frames[0].Payload) != "ok" || strings.Join(drops, ",") != "sync,too_large" {
		t.Errorf("frames %+v, drops %v", frames, drops)
	}
}

// golden is one vector of testdata/golden.json: a frame as the agents send it (or
// as hawk replies), byte for byte, and what it means.
type golden struct {
	Name    string `json:"name"`
	Format  Format `json:"format"`
	Hex     string `json:"hex"`               // the frame's bytes
	Type    int16  `json:"type,omitempty"`    // c8c9
	Kind    string `json:"kind"`              // report, heartbeat, or reply
	Payload string `json:"payload,omitempty"` // what a report stores (ffff: the inner JSON)
}

func goldenVectors() []golden {
	hbHex := hex.EncodeToString(AppendFFFFPacket(nil, FFFFHeartbeat, []byte(heartbeatContent)))
	rep := `{"content":"cpu=0.5","rand":123,"timestamp":1700000000}`
	req := `{"data_type":"metric","call_back_key":"cb-1","cpu":0.5}`
	return []golden{
		{Name: "ffff heartbeat", Format: FormatFFFF, Kind: "heartbeat", Hex: hbHex},
		{Name: "ffff report", Format: FormatFFFF, Kind: "report", Payload: rep, Hex: hex.EncodeToString(AppendFFFFPacket(nil, FFFFReport, []byte(rep)))},
		{Name: "ffff heartbeat reply", Format: FormatFFFF, Kind: "reply", Hex: hex.EncodeToString([]byte(FFFFHeartbeatReply))},
		{Name: "ffff report receipt", Format: FormatFFFF, Kind: "reply", Hex: hex.EncodeToString([]byte(FFFFReportReply))},
		{Name: "c8c9 request type 0x10", Format: FormatC8C9, Kind: "report", Type: 0x10, Payload: req, Hex: hex.EncodeToString(AppendC8C9(nil, 0x10, []byte(req)))},
		{Name: "c8c9 result stored, seq 1700000000000000000", Format: FormatC8C9, Kind: "reply", Type: 0x10,
			Payload: `{"data_type":"metric","call_back_key":"cb-1","status":200,"message":"stored","data":{"seq":1700000000000000000}}`,
			Hex:     hex.EncodeToString(appendC8C9Reply(nil, 0x10, appendC8C9Echo(nil, []byte(req)), 1700000000000000000, nil))},
		{Name: "c8c9 result not stored", Format: FormatC8C9, Kind: "reply", Type: 0x10,
			Payload: `{"data_type":"metric","call_back_key":"cb-1","status":503,"message":"not stored: destination closed; send it again","data":null}`,
			Hex:     hex.EncodeToString(appendC8C9Reply(nil, 0x10, appendC8C9Echo(nil, []byte(req)), 0, errors.New("destination closed")))},
		{Name: "headers message", Format: FormatHeaders, Kind: "report", Payload: `{"cpu":0.5}`, Hex: hex.EncodeToString(AppendHeaders(nil, []byte(`{"cpu":0.5}`)))},
	}
}

// TestGoldenVectors holds the encoders and decoders to testdata/golden.json, byte for
// byte (docs/PROTOCOL.md, "Legacy formats", walks through the same frames).
func TestGoldenVectors(t *testing.T) {
	path := filepath.Join("testdata", "golden.json")
	want := goldenVectors()
	if *update {
		b, _ := json.MarshalIndent(want, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file []golden
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	if len(file) != len(want) {
		t.Fatalf("%s has %d vectors, the encoders %d (go test -run TestGoldenVectors -update)", path, len(file), len(want))
	}
	for i, g := range file {
		if g != want[i] {
			t.Errorf("vector %q: file %+v\nencoders give %+v", g.Name, g, want[i])
		}
		raw, err := hex.DecodeString(g.Hex)
		if err != nil {
			t.Fatal(err)
		}
		if g.Kind == "reply" && g.Format == FormatFFFF {
			continue // a text line
		}
		frames, drops := decodeAll(t, codecFor(g.Format), raw, 1, 1<<20)
		if len(frames) != 1 || len(drops) != 0 {
			t.Fatalf("vector %q decodes as %+v %v", g.Name, frames, drops)
		}
		f := frames[0]
		switch {
		case g.Kind == "heartbeat" && f.Kind != kindHeartbeat,
			g.Kind != "heartbeat" && f.Kind != kindReport,
			g.Payload != "" && string(f.Payload) != g.Payload,
			f.Type != g.Type:
			t.Errorf("vector %q decodes as kind %d type %#x payload %s", g.Name, f.Kind, f.Type, f.Payload)
		}
	}
}

// Fuzz targets: whatever the bytes, a decoder never reads past its input, never
// reports a frame larger than maxData, always makes progress or asks for more, and
// gives the same frames however the stream is split.
func fuzzCodec(f *testing.F, c codec, seeds [][]byte) {
	for _, s := range seeds {
		f.Add(s, uint8(1))
	}
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8) {
		const maxData = 512
		whole, wd := decodeAll(t, c, stream, max(len(stream), 1), maxData)
		split, sd := decodeAll(t, c, stream, int(chunk)+1, maxData)
		for _, fr := range whole {
			if len(fr.Payload) > maxData*2 { // ffff: base64 decodes smaller; others equal
				t.Fatalf("a frame of %d bytes past maxData", len(fr.Payload))
			}
		}
		// Split reads may only see fewer frames at the end (a frame still waiting
		// for bytes that a whole read would also wait for): compare the frames.
		if len(whole) != len(split) {
			t.Fatalf("whole: %d frames %v; split by %d: %d frames %v", len(whole), wd, int(chunk)+1, len(split), sd)
		}
		for i := range whole {
			if !bytes.Equal(whole[i].Payload, split[i].Payload) || whole[i].Kind != split[i].Kind || whole[i].Type != split[i].Type {
				t.Fatalf("frame %d differs when split", i)
			}
		}
	})
}

func FuzzFFFF(f *testing.F) {
	fuzzCodec(f, ffffCodec{}, [][]byte{
		AppendFFFFPacket(nil, FFFFReport, report(1)),
		append(AppendFFFFPacket(nil, FFFFHeartbeat, []byte(heartbeatContent)), 0xff, 0xff, 0, 1, 'x', 0, 0, 0xff, 0xfe),
		AppendFFFF(nil, []byte(`{"PacketContent":"e30=","PacketType":1}`)),
	})
}

func FuzzC8C9(f *testing.F) {
	fuzzCodec(f, c8c9Codec{}, [][]byte{AppendC8C9(nil, 0x10, []byte(`{"a":1}`)), {0xc8, 0, 0, 0, 8, 0, 1, 0xc9}})
}

func FuzzHeaders(f *testing.F) {
	fuzzCodec(f, headersCodec{}, [][]byte{AppendHeaders(nil, []byte("hello")), []byte("HeadersHeaders\x00\x00\x00\x00")})
}

// The ffff CRC against a value computed elsewhere: CRC-32 (IEEE) of "123456789" is
// 0xCBF43926, so the frame's CRC is 0xCBF4. (The golden vectors' CRCs, 0x991a and
// 0x169d, were checked the same way with Python's zlib.crc32.)
func TestFFFFCRCCheckValue(t *testing.T) {
	if got := FFFFCRC([]byte("123456789")); got != 0xCBF4 {
		t.Errorf("FFFFCRC(123456789) = %#04x, want 0xcbf4", got)
	}
}

// BenchmarkFFFFDecode is the decoder's cost per report frame (a 256-byte inner JSON).
func BenchmarkFFFFDecode(b *testing.B) {
	content := fmt.Appendf(nil, `{"content":"%s","rand":123,"timestamp":1700000000}`, strings.Repeat("x", 206))
	f := AppendFFFFPacket(nil, FFFFReport, content)
	var scratch []byte
	b.SetBytes(int64(len(f)))
	b.ReportAllocs()
	for b.Loop() {
		var d decoded
		d, scratch = ffffCodec{}.decode(f, maxFFFFData, scratch)
		if d.N != len(f) || d.Frame.Kind != kindReport {
			b.Fatal(d)
		}
	}
}

// Envelopes written by other encoders than Go's (escaped '/', other key order, more
// keys, spaces) read as encoding/json reads them.
func TestFFFFEnvelopeVariants(t *testing.T) {
	for env, want := range map[string]string{
		`{"PacketType":1,"PacketContent":"e30="}`:         "{}",
		`{"PacketType":1,"PacketContent":"\/\/8="}`:       "\xff\xff",
		`{"PacketContent":"e30=","PacketType":1}`:         "{}",
		`{ "PacketType" : 1 , "PacketContent" : "e30=" }`: "{}",
		`{"PacketType":1,"PacketContent":"e30=","x":"y"}`: "{}",
		`{"packettype":1,"packetcontent":"e30="}`:         "{}", // encoding/json matches keys case-insensitively
		`{"PacketType":1,"PacketContent":"e30"}`:          "",   // bad base64: dropped
		`{"PacketType":1}`:                                "",   // a report with no content: stored empty
		`{"PacketType":01,"PacketContent":"e30="}`:        "",   // not JSON
		`{"PacketType":256,"PacketContent":"e30="}`:       "",   // not a byte
	} {
		frames, drops := decodeAll(t, ffffCodec{}, AppendFFFF(nil, []byte(env)), 1, 4096)
		switch {
		case want != "" && (len(frames) != 1 || string(frames[0].Payload) != want):
			t.Errorf("%s: frames %+v drops %v, want payload %q", env, frames, drops, want)
		case want == "" && env == `{"PacketType":1}` && (len(frames) != 1 || len(frames[0].Payload) != 0):
			t.Errorf("%s: frames %+v drops %v, want an empty report", env, frames, drops)
		case want == "" && env != `{"PacketType":1}` && (len(frames) != 0 || len(drops) != 1 || drops[0] != DropEnvelope):
			t.Errorf("%s: frames %+v drops %v, want an envelope drop", env, frames, drops)
		}
	}
}
