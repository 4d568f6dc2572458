package ingest

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func recordLine(id string, seq uint64, payload string) []byte {
	return appendLine(nil, &Record{ClientID: id, Seq: seq, ConnID: 3,
		Received: time.Date(2026, 11, 24, 9, 0, 0, 5, time.UTC), Payload: []byte(payload)})
}

func TestParseKey(t *testing.T) {
	for _, tc := range []struct {
		name   string
		line   []byte
		id     string
		seq    uint64
		wantOK bool
	}{
		{"plain", recordLine("agent-1", 12, `{"cpu":0.5}`), "agent-1", 12, true},
		{"no newline", bytes.TrimSuffix(recordLine("a", 1, `1`), []byte("\n")), "a", 1, true},
		{"quote and backslash", recordLine(`a"b\c`, 7, `1`), `a"b\c`, 7, true},
		{"line separators", recordLine("x\u2028y\u2029z", 8, `1`), "x\u2028y\u2029z", 8, true},
		{"invalid utf8 becomes U+FFFD", recordLine("a\xffb", 9, `1`), "a\ufffdb", 9, true},
		{"control characters", recordLine("a\x01\n\tb", 10, `1`), "a\x01\n\tb", 10, true},
		{"max seq", recordLine("m", ^uint64(0), `1`), "m", ^uint64(0), true},
		{"zero seq", recordLine("z", 0, `1`), "z", 0, true},
		{"surrogate pair", []byte(`{"client_id":"\ud83d\ude00","seq":5,"conn_id":1}`), "😀", 5, true},
		{"lone surrogate", []byte(`{"client_id":"a\ud83dz","seq":5,"conn_id":1}`), "a\ufffdz", 5, true},
		{"escaped slash", []byte(`{"client_id":"a\/b","seq":5}`), "a/b", 5, true},
		{"torn in the id", []byte(`{"client_id":"agen`), "", 0, false},
		{"torn in the seq", []byte(`{"client_id":"a","seq":12`), "", 0, false},
		{"torn after seq key", []byte(`{"client_id":"a","seq":`), "", 0, false},
		{"seq overflows", []byte(`{"client_id":"a","seq":18446744073709551616,"conn_id":1}`), "", 0, false},
		{"leading zero", []byte(`{"client_id":"a","seq":012,"conn_id":1}`), "", 0, false},
		{"negative", []byte(`{"client_id":"a","seq":-1,"conn_id":1}`), "", 0, false},
		{"other key order", []byte(`{"seq":1,"client_id":"a"}`), "", 0, false},
		{"bad escape", []byte(`{"client_id":"a\qb","seq":1,"conn_id":1}`), "", 0, false},
		{"short unicode escape", []byte(`{"client_id":"a\u12","seq":1,"conn_id":1}`), "", 0, false},
		{"empty", nil, "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, seq, ok := ParseKey(tc.line, make([]byte, 0, 16))
			if ok != tc.wantOK || ok && (string(id) != tc.id || seq != tc.seq) {
				t.Fatalf("ParseKey(%q) = %q, %d, %v; want %q, %d, %v", tc.line, id, seq, ok, tc.id, tc.seq, tc.wantOK)
			}
		})
	}
}

// FuzzParseKey holds ParseKey to encoding/json on every line appendRecord writes, and to
// "not ok" on any torn prefix of one.
func FuzzParseKey(f *testing.F) {
	f.Add("agent-1", uint64(1), []byte(`{"a":1}`), 0)
	f.Add(`q"\`, uint64(1<<63), []byte("\xff"), 10)
	f.Add("\u2028\x00é", ^uint64(0), []byte(`[1,2]`), 30)
	f.Fuzz(func(t *testing.T, id string, seq uint64, payload []byte, cut int) {
		line := appendLine(nil, &Record{ClientID: id, Seq: seq, ConnID: 1, Received: time.Unix(0, 0), Payload: payload})
		var want struct {
			ClientID string `json:"client_id"`
			Seq      uint64 `json:"seq"`
		}
		if err := json.Unmarshal(line, &want); err != nil {
			t.Fatalf("encoding/json cannot read %q: %v", line, err)
		}
		got, gotSeq, ok := ParseKey(line, nil)
		if !ok || string(got) != want.ClientID || gotSeq != want.Seq {
			t.Fatalf("ParseKey(%q) = %q, %d, %v; encoding/json says %q, %d", line, got, gotSeq, ok, want.ClientID, want.Seq)
		}
		// A torn line that stops before the seq is complete must not parse.
		end := bytes.Index(line, []byte(`,"conn_id"`))
		if cut < 0 {
			cut = -cut
		}
		if cut %= end + 1; cut < end {
			if id, s, ok := ParseKey(line[:cut], nil); ok {
				t.Fatalf("torn line %q parsed as %q, %d", line[:cut], id, s)
			}
		}
	})
}

func BenchmarkParseKey(b *testing.B) {
	line := recordLine("agent-000042", 1764000000123456789, `{"cpu":0.5,"mem":1234,"disk":[1,2,3]}`)
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := ParseKey(line, buf); !ok {
			b.Fatal("not parsed")
		}
	}
}
