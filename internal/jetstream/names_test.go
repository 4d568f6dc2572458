package jetstream

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestEscapeToken(t *testing.T) {
	for id, want := range map[string]string{
		"agent-0042_x":        "agent-0042_x",
		"ffff:10.1.2.3:54321": "ffff%3A10%2E1%2E2%2E3%3A54321",
		"a b*>%":              "a%20b%2A%3E%25",
		"é":                   "%C3%A9",
	} {
		got := EscapeToken(id)
		if got != want {
			t.Errorf("EscapeToken(%q) = %q, want %q", id, got, want)
		}
		back, err := unescapeToken(got)
		if err != nil || back != id {
			t.Errorf("unescapeToken(%q) = %q, %v; want %q", got, back, err, id)
		}
	}
	if _, err := unescapeToken("a%4"); err == nil {
		t.Error("truncated escape accepted")
	}
}

func TestMsgID(t *testing.T) {
	for _, c := range []struct {
		id  string
		seq uint64
	}{{"a1", 12}, {"ffff:10.1.2.3:54321", 1763884800000000000}, {"x:", 0}} {
		got := MsgID(c.id, c.seq)
		id, seq, err := parseMsgID(got)
		if err != nil || id != c.id || seq != c.seq {
			t.Errorf("parseMsgID(%q) = %q, %d, %v; want %q, %d", got, id, seq, err, c.id, c.seq)
		}
	}
	if _, _, err := parseMsgID("nocolon"); err == nil {
		t.Error("id without ':' accepted")
	}
}

func TestSubjectMatches(t *testing.T) {
	for _, c := range []struct {
		p, s string
		ok   bool
	}{
		{"hawk.reports.*", "hawk.reports.a", true},
		{"hawk.reports.>", "hawk.reports.a.b", true},
		{"hawk.>", "hawk", false},
		{"hawk.reports.*", "hawk.reports.a.b", false},
		{"hawk.reports.a", "hawk.reports.a", true},
		{"other.*", "hawk.reports", false},
	} {
		if got := SubjectMatches(c.p, c.s); got != c.ok {
			t.Errorf("SubjectMatches(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

func TestCheckStream(t *testing.T) {
	good := jetstream.StreamConfig{Name: "S", Subjects: []string{"hawk.reports.*"}, Storage: jetstream.FileStorage,
		Replicas: 3, Duplicates: 2 * time.Minute}
	opts := Options{Subject: "hawk.reports.<client_id>", RetryHorizon: 2 * time.Minute, RequireDurable: true}
	if w, err := CheckStream(good, opts); err != nil || len(w) != 0 {
		t.Fatalf("good stream: warnings %v, err %v", w, err)
	}
	bad := good
	bad.Subjects = []string{"other.>"}
	if _, err := CheckStream(bad, opts); err == nil {
		t.Error("stream not covering the subject accepted")
	}
	bad = good
	bad.Duplicates = time.Minute
	if _, err := CheckStream(bad, opts); err == nil {
		t.Error("duplicate window below retry_horizon accepted")
	}
	single := good
	single.Replicas = 1
	if _, err := CheckStream(single, opts); err == nil {
		t.Error("1 replica without sync_always accepted with require_durable")
	}
	lax := opts
	lax.RequireDurable = false
	if w, err := CheckStream(single, lax); err != nil || len(w) != 1 {
		t.Errorf("1 replica without require_durable: want one warning, got %v, %v", w, err)
	}
	synced := opts
	synced.SyncAlways = true
	if w, err := CheckStream(single, synced); err != nil || len(w) != 0 {
		t.Errorf("1 replica with sync_always: warnings %v, err %v", w, err)
	}
	mem := good
	mem.Storage = jetstream.MemoryStorage
	if _, err := CheckStream(mem, synced); err == nil {
		t.Error("memory storage accepted with require_durable")
	}
}

// unescapeToken reverses EscapeToken: the tests hold EscapeToken to being reversible.
func unescapeToken(tok string) (string, error) {
	if !strings.Contains(tok, "%") {
		return tok, nil
	}
	var b strings.Builder
	for i := 0; i < len(tok); i++ {
		if tok[i] != '%' {
			b.WriteByte(tok[i])
			continue
		}
		if i+2 >= len(tok) {
			return "", errors.New("jetstream: truncated escape in subject token " + strconv.Quote(tok))
		}
		v, err := strconv.ParseUint(tok[i+1:i+3], 16, 8)
		if err != nil {
			return "", errors.New("jetstream: bad escape in subject token " + strconv.Quote(tok))
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}

// parseMsgID splits a MsgID at its last ':': the tests hold MsgID to being unambiguous.
func parseMsgID(id string) (clientID string, seq uint64, err error) {
	i := strings.LastIndexByte(id, ':')
	if i < 0 {
		return "", 0, errors.New("jetstream: message id without ':': " + strconv.Quote(id))
	}
	seq, err = strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil {
		return "", 0, errors.New("jetstream: message id with a bad seq: " + strconv.Quote(id))
	}
	return id[:i], seq, nil
}
