package protocol

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseHelloAccepts(t *testing.T) {
	cases := []struct {
		name    string
		payload string
		want    Hello
	}{
		{"all fields", `{"client_id":"agent-42","token":"s3cret","client_version":"1.0.0"}`,
			Hello{ClientID: "agent-42", Token: "s3cret", ClientVersion: "1.0.0"}},
		{"client_id only", `{"client_id":"a"}`, Hello{ClientID: "a"}},
		{"any order, whitespace", " \r\n\t{ \"client_version\" : \"v\" ,\n\"token\":\"t\", \"client_id\" :\"a\" }\n ",
			Hello{ClientID: "a", Token: "t", ClientVersion: "v"}},
		{"empty object", `{}`, Hello{}},
		{"null is absent", `{"client_id":"a","token":null,"client_version":null}`, Hello{ClientID: "a"}},
		{"surrogate pair escape", `{"client_id":"\ud83d\ude00x"}`, Hello{ClientID: "\U0001F600x"}},
		{"upper-case hex pair", `{"client_id":"\uD83D\uDE00"}`, Hello{ClientID: "\U0001F600"}},
		{"raw multi-byte UTF-8", `{"client_id":"agent-ü-😀"}`, Hello{ClientID: "agent-ü-😀"}},
		{"literal U+FFFD is valid", "{\"client_id\":\"a\uFFFDb\"}", Hello{ClientID: "a\uFFFDb"}},
		{"escaped U+FFFD is valid", `{"client_id":"a\ufffdb"}`, Hello{ClientID: "a\uFFFDb"}},
		{"other escapes", `{"client_id":"q\"b\\s\/n\nt\tu\u00e9"}`, Hello{ClientID: "q\"b\\s/n\nt\tué"}},
		{"escaped backslash then ud800 text", `{"client_id":"\\ud800"}`, Hello{ClientID: `\ud800`}},
		{"escaped key is the same key", `{"client\u005fid":"a"}`, Hello{ClientID: "a"}},
		{"unknown keys ignored", `{"client_id":"a","future":{"x":[1,2.5e3,true,null,"s"]},"n":-1,"hostname":"h"}`, Hello{ClientID: "a"}},
		{"unknown key not a case variant", `{"client":"x","client_id":"a","tokens":"y"}`, Hello{ClientID: "a"}},
		{"duplicates inside an unknown value are its business", `{"client_id":"a","x":{"k":1,"k":2}}`, Hello{ClientID: "a"}},
	}
	for _, c := range cases {
		got, err := ParseHello([]byte(c.payload))
		if err != nil {
			t.Errorf("%s: ParseHello(%q): %v", c.name, c.payload, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s: ParseHello(%q) = %+v, want %+v", c.name, c.payload, got, c.want)
		}
	}
}

func TestParseHelloRefuses(t *testing.T) {
	cases := []struct {
		name    string
		payload string
		want    string // the whole error message
	}{
		// Raw bytes are validated before decoding.
		{"0xff in client_id", "{\"client_id\":\"coll\xffX\"}", "HELLO payload is not valid UTF-8 at byte 18"},
		{"0xfe in client_id", "{\"client_id\":\"coll\xfeX\"}", "HELLO payload is not valid UTF-8 at byte 18"},
		{"truncated sequence", "{\"client_id\":\"a\xc3\"}", "HELLO payload is not valid UTF-8 at byte 15"},
		{"overlong encoding", "{\"client_id\":\"\xc0\xafa\"}", "HELLO payload is not valid UTF-8 at byte 14"},
		{"CESU surrogate bytes", "{\"client_id\":\"\xed\xa0\x80\"}", "HELLO payload is not valid UTF-8 at byte 14"},
		{"bad byte in a key", "{\"client_id\":\"a\",\"x\xff\":1}", "HELLO payload is not valid UTF-8 at byte 19"},
		{"bad byte outside JSON", "\xff\xfe", "HELLO payload is not valid UTF-8 at byte 0"},
		{"bad byte in trailing data", "{\"client_id\":\"a\"}\xff", "HELLO payload is not valid UTF-8 at byte 17"},

		// Lone surrogate escapes, anywhere.
		{"lone high", `{"client_id":"\ud800"}`, `HELLO payload: value of "client_id" has a lone surrogate escape \ud800 at byte 14`},
		{"lone high then text", `{"client_id":"a\uDBFFb"}`, `HELLO payload: value of "client_id" has a lone surrogate escape \uDBFF at byte 15`},
		{"lone low", `{"client_id":"\udc00"}`, `HELLO payload: value of "client_id" has a lone surrogate escape \udc00 at byte 14`},
		{"low then high", `{"client_id":"\udc00\ud800"}`, `HELLO payload: value of "client_id" has a lone surrogate escape \udc00 at byte 14`},
		{"high then high", `{"client_id":"\ud800\ud800"}`, `HELLO payload: value of "client_id" has a lone surrogate escape \ud800 at byte 14`},
		{"high then non-surrogate escape", `{"client_id":"\ud800\u0041"}`, `HELLO payload: value of "client_id" has a lone surrogate escape \ud800 at byte 14`},
		{"high at the end of the string", `{"client_id":"a","token":"\ud83d"}`, `HELLO payload: value of "token" has a lone surrogate escape \ud83d at byte 26`},
		{"escaped backslash before lone", `{"client_id":"\\\ud800"}`, `HELLO payload: value of "client_id" has a lone surrogate escape \ud800 at byte 16`},
		{"lone in a key", `{"client_id":"a", "x\ud800":1}`, "HELLO payload: key \"x\uFFFD\" has a lone surrogate escape \\ud800 at byte 20"},
		{"lone in an unknown nested value", `{"client_id":"a","x":{"y":["\udfff"]}}`, `HELLO payload: value of "x" has a lone surrogate escape \udfff at byte 28`},

		// Keys are exact.
		{"Client_ID", `{"Client_ID":"a"}`, `HELLO payload: key "Client_ID" is not a HELLO field (keys are case-sensitive: did you mean "client_id"?)`},
		{"CLIENT_ID", `{"CLIENT_ID":"a"}`, `HELLO payload: key "CLIENT_ID" is not a HELLO field (keys are case-sensitive: did you mean "client_id"?)`},
		{"Token", `{"client_id":"a","Token":"t"}`, `HELLO payload: key "Token" is not a HELLO field (keys are case-sensitive: did you mean "token"?)`},
		{"Client_Version", `{"client_id":"a","Client_Version":"v"}`, `HELLO payload: key "Client_Version" is not a HELLO field (keys are case-sensitive: did you mean "client_version"?)`},
		{"Kelvin sign folds to k", `{"client_id":"a","to\u212aen":"t"}`, "HELLO payload: key \"to\u212aen\" is not a HELLO field (keys are case-sensitive: did you mean \"token\"?)"},
		{"case variant after the real key", `{"client_id":"a","client_ID":"b"}`, `HELLO payload: key "client_ID" is not a HELLO field (keys are case-sensitive: did you mean "client_id"?)`},

		// Duplicates.
		{"client_id twice", `{"client_id":"a","client_id":"b"}`, `HELLO payload: duplicate key "client_id"`},
		{"client_id twice, same value", `{"client_id":"a","client_id":"a"}`, `HELLO payload: duplicate key "client_id"`},
		{"token twice", `{"client_id":"a","token":"t","token":"u"}`, `HELLO payload: duplicate key "token"`},
		{"null then value", `{"client_id":null,"client_id":"b"}`, `HELLO payload: duplicate key "client_id"`},
		{"escaped duplicate", `{"client_id":"a","client\u005fid":"b"}`, `HELLO payload: duplicate key "client_id"`},
		{"unknown key twice", `{"client_id":"a","x":1,"x":2}`, `HELLO payload: duplicate key "x"`},

		// Types of HELLO fields.
		{"number", `{"client_id":42}`, `HELLO payload: value of "client_id" is a number, want a string`},
		{"bool", `{"client_id":"a","token":true}`, `HELLO payload: value of "token" is a boolean, want a string`},
		{"object", `{"client_id":{"id":"a"}}`, `HELLO payload: value of "client_id" is an object, want a string`},
		{"array", `{"client_id":"a","client_version":["1"]}`, `HELLO payload: value of "client_version" is an array, want a string`},

		// Shape and syntax.
		{"empty", ``, `HELLO payload is not valid JSON: unexpected EOF`},
		{"whitespace only", " \n", `HELLO payload is not valid JSON: unexpected EOF`},
		{"array", `["a"]`, `HELLO payload is not a JSON object`},
		{"string", `"client_id"`, `HELLO payload is not a JSON object`},
		{"null", `null`, `HELLO payload is not a JSON object`},
		{"unterminated", `{"client_id":`, `HELLO payload is not valid JSON: unexpected EOF`},
		{"missing brace", `{"client_id":"a"`, `HELLO payload is not valid JSON: unexpected EOF`},
		{"trailing comma", `{"client_id":"a",}`, `HELLO payload is not valid JSON: invalid character '}' looking for beginning of object key string`},
		{"not json", `not json`, `HELLO payload is not valid JSON: invalid character 'o' in literal null (expecting 'u')`},
		{"trailing text", `{"client_id":"a"} trailing`, `HELLO payload has trailing data after the JSON object at byte 18`},
		{"second object", `{"client_id":"a"}{"client_id":"b"}`, `HELLO payload has trailing data after the JSON object at byte 17`},
		{"bad escape", `{"client_id":"\x"}`, `HELLO payload is not valid JSON: invalid character 'x' in string escape code`},
		{"short unicode escape", `{"client_id":"\ud8"}`, `HELLO payload is not valid JSON: invalid character '"' in \u hexadecimal character escape`},
		{"raw control character", "{\"client_id\":\"a\nb\"}", `HELLO payload is not valid JSON: invalid character '\n' in string literal`},
	}
	for _, c := range cases {
		h, err := ParseHello([]byte(c.payload))
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: ParseHello(%q) = %+v, %v; want a *DecodeError", c.name, c.payload, h, err)
			continue
		}
		if de.Code != CodeBadPayload {
			t.Errorf("%s: code %q, want %q", c.name, de.Code, CodeBadPayload)
		}
		if de.Msg != c.want {
			t.Errorf("%s: ParseHello(%q) error\n got %q\nwant %q", c.name, c.payload, de.Msg, c.want)
		}
		if !strings.HasPrefix(err.Error(), "protocol: HELLO payload") {
			t.Errorf("%s: Error() %q", c.name, err.Error())
		}
		if h != (Hello{}) {
			t.Errorf("%s: refused, but returned %+v, want the zero Hello", c.name, h)
		}
	}
}

// Every golden HELLO vector in testdata (the files themselves, read as an implementer
// in another language would), and every HELLO the Go encoder produces, parse to what
// was encoded.
func TestParseHelloGoldenAndEncoder(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.hex"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Hello{}
	for _, g := range goldenFrames {
		if g.typ == TypeHello {
			want[g.name+".hex"] = *g.v.(*Hello)
		}
	}
	n := 0
	for _, path := range files {
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, _, err := Decode(parseHex(t, string(text)), MaxPayloadLimit)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if f.Type != TypeHello {
			continue
		}
		n++
		h, err := ParseHello(f.Payload)
		if err != nil {
			t.Errorf("%s: ParseHello(%s): %v", path, f.Payload, err)
			continue
		}
		if w, ok := want[filepath.Base(path)]; ok && h != w {
			t.Errorf("%s: ParseHello = %+v, want %+v", path, h, w)
		}
		if std := (Hello{}); json.Unmarshal(f.Payload, &std) != nil || std != h {
			t.Errorf("%s: ParseHello = %+v, encoding/json gives %+v", path, h, std)
		}
	}
	if n == 0 || n < len(want) {
		t.Fatalf("%d golden HELLO files, want at least %d (and at least 1)", n, len(want))
	}
	for _, want := range []Hello{
		{}, {ClientID: "a"}, {ClientID: "agent-ü \"quoted\" <&> \u2028", Token: "t\\", ClientVersion: "hawk-go/1.0"},
		{ClientID: "\x00\x1f\x7f\U0001F600\uFFFD"},
	} {
		f, _, err := Decode(AppendJSON(nil, TypeHello, 0, &want), MaxPayloadLimit)
		if err != nil {
			t.Fatal(err)
		}
		if h, err := ParseHello(f.Payload); err != nil || h != want {
			t.Errorf("ParseHello(%s) = %+v, %v; want %+v", f.Payload, h, err, want)
		}
	}
}

func TestParseHelloAllocs(t *testing.T) {
	p := []byte(`{"client_id":"agent-42","token":"s3cret","client_version":"1.0.0"}`)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ParseHello(p); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("ParseHello: %.0f allocations", allocs)
	// HELLO is parsed once per connection: this only guards against a regression
	// (about 45 today, mostly json.Decoder's own buffers and tokens).
	if allocs > 64 {
		t.Errorf("ParseHello allocates %.0f times, want at most 64", allocs)
	}
}

// FuzzParseHello checks that ParseHello never panics, that anything it accepts is
// valid UTF-8 and valid JSON that encoding/json decodes to the same Hello, and that
// the accepted Hello, re-marshalled with encoding/json, parses back to itself. Any
// error must be a bad_payload *DecodeError.
func FuzzParseHello(f *testing.F) {
	for _, s := range []string{
		`{"client_id":"agent-42","token":"s3cret","client_version":"1.0.0"}`,
		"{\"client_id\":\"coll\xffX\"}",
		"{\"client_id\":\"coll\xfeX\"}",
		`{"Client_ID":"a"}`,
		`{"client_id":"a","client_id":"b"}`,
		`{"client_id":"\ud800"}`,
		`{"client_id":"\ud83d\ude00","token":null}`,
		`{"client_id":"\\\udc00"}`,
		`{"client\u005fid":"a","x":{"y":[1,"\u00e9",true]}}`,
		`{"client_id":"a"} trailing`,
		``, `[]`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		h, err := ParseHello(payload)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Code != CodeBadPayload {
				t.Fatalf("ParseHello(%q): error %v (%T), want a bad_payload *DecodeError", payload, err, err)
			}
			if h != (Hello{}) {
				t.Fatalf("ParseHello(%q) refused but returned %+v", payload, h)
			}
			return
		}
		if !utf8.Valid(payload) {
			t.Fatalf("ParseHello accepted invalid UTF-8 %q", payload)
		}
		for _, s := range []string{h.ClientID, h.Token, h.ClientVersion} {
			if !utf8.ValidString(s) {
				t.Fatalf("ParseHello(%q) returned invalid UTF-8 %q", payload, s)
			}
		}
		var std Hello
		if err := json.Unmarshal(payload, &std); err != nil {
			t.Fatalf("ParseHello accepted %q, encoding/json refuses it: %v", payload, err)
		}
		if std != h {
			t.Fatalf("ParseHello(%q) = %+v, encoding/json gives %+v", payload, h, std)
		}
		again, err := json.Marshal(&h)
		if err != nil {
			t.Fatal(err)
		}
		h2, err := ParseHello(again)
		if err != nil {
			t.Fatalf("re-marshalled %+v as %s, ParseHello refuses it: %v", h, again, err)
		}
		if h2 != h {
			t.Fatalf("ParseHello(%s) = %+v, want %+v (from %q)", again, h2, h, payload)
		}
	})
}
