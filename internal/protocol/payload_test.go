package protocol

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestJSONRoundTrip(t *testing.T) {
	cases := []struct {
		typ  Type
		seq  uint64
		in   any
		into func() any
	}{
		{TypeHello, 0, &Hello{ClientID: "agent-42", Token: "s3cret", ClientVersion: "1.2.3"}, func() any { return new(Hello) }},
		{TypeHello, 0, &Hello{ClientID: "agent-ü \"quoted\""}, func() any { return new(Hello) }},
		{TypeWelcome, 0, &Welcome{ServerID: "hawk-1", ServerVersion: "1.0.0", ConnID: 1<<64 - 1, HeartbeatIntervalMS: 10000, MaxFrameSize: 1 << 20}, func() any { return new(Welcome) }},
		{TypeNack, 77, &Nack{Code: CodeSpoolWrite, Message: "write: no space left on device", Retryable: true}, func() any { return new(Nack) }},
		{TypeNack, 78, &Nack{Code: CodeUnavailable, Message: "server is shutting down"}, func() any { return new(Nack) }},
		{TypeGoaway, 0, &Goaway{Reason: "upgrade", DeadlineMS: 30000}, func() any { return new(Goaway) }},
		{TypeError, 0, &ErrorPayload{Code: CodeHeartbeatTimeout, Message: "heartbeat timeout: nothing received for 30s"}, func() any { return new(ErrorPayload) }},
	}
	for _, c := range cases {
		frame := AppendJSON([]byte("prefix"), c.typ, c.seq, c.in)
		f, n, err := Decode(frame[len("prefix"):], testLimit)
		if err != nil || n != len(frame)-len("prefix") {
			t.Fatalf("%s: Decode = (%d, %v)", c.typ, n, err)
		}
		if f.Type != c.typ || f.Seq != c.seq {
			t.Fatalf("%s: decoded %s seq %d", c.typ, f.Type, f.Seq)
		}
		out := c.into()
		if err := ParseJSON(f, out); err != nil {
			t.Fatalf("%s: ParseJSON: %v", c.typ, err)
		}
		if !reflect.DeepEqual(out, c.in) {
			t.Fatalf("%s: round trip gave %+v, want %+v", c.typ, out, c.in)
		}
	}
}

// The JSON field names are the wire schema docs/PROTOCOL.md documents.
func TestJSONFieldNames(t *testing.T) {
	cases := []struct {
		v    any
		want string
	}{
		{&Hello{ClientID: "a"}, `{"client_id":"a"}`},
		{&Hello{ClientID: "a", Token: "t", ClientVersion: "v"}, `{"client_id":"a","token":"t","client_version":"v"}`},
		{&Hello{}, `{"client_id":""}`},
		{&Welcome{}, `{"server_id":"","server_version":"","conn_id":0,"heartbeat_interval_ms":0,"max_frame_size":0,"max_in_flight":0}`},
		{&Nack{}, `{"code":"","message":"","retryable":false}`},
		{&Goaway{}, `{"reason":"","deadline_ms":0,"reconnect_after_ms":0}`},
		{&ErrorPayload{}, `{"code":"","message":""}`},
		{&ErrorPayload{RetryAfterMS: 5}, `{"code":"","message":"","retry_after_ms":5}`},
	}
	for _, c := range cases {
		frame := AppendJSON(nil, TypeError, 0, c.v)
		f, _, err := Decode(frame, testLimit)
		if err != nil {
			t.Fatal(err)
		}
		if string(f.Payload) != c.want {
			t.Errorf("%T payload %s, want %s", c.v, f.Payload, c.want)
		}
	}
}

func TestParseJSONGarbage(t *testing.T) {
	cases := []struct {
		typ     Type
		payload string
		into    any
	}{
		{TypeHello, "", new(Hello)},
		{TypeHello, "not json", new(Hello)},
		{TypeHello, `{"client_id":`, new(Hello)},
		{TypeHello, `{"client_id":"a"} trailing`, new(Hello)},
		{TypeHello, "\xff\xfe", new(Hello)},
		{TypeWelcome, `{"conn_id":"seven"}`, new(Welcome)},
		{TypeWelcome, `{"conn_id":-1}`, new(Welcome)},
		{TypeNack, `{"retryable":"yes"}`, new(Nack)},
		{TypeGoaway, `["upgrade",30000]`, new(Goaway)},
		{TypeError, `{"code":1}`, new(ErrorPayload)},
	}
	for _, c := range cases {
		f, _, err := Decode(AppendFrame(nil, c.typ, 0, []byte(c.payload)), testLimit)
		if err != nil {
			t.Fatal(err)
		}
		err = ParseJSON(f, c.into)
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("%s %q: ParseJSON error %v (%T), want a *DecodeError", c.typ, c.payload, err, err)
		}
		if de.Code != CodeBadPayload {
			t.Errorf("%s %q: code %q, want %q", c.typ, c.payload, de.Code, CodeBadPayload)
		}
		want := c.typ.String() + " payload is not valid JSON"
		if !strings.Contains(de.Error(), want) || !strings.HasPrefix(de.Error(), "protocol: ") {
			t.Errorf("%s %q: error %q does not say %q", c.typ, c.payload, de.Error(), want)
		}
	}
}

func TestAppendJSONPanicsOnUnencodable(t *testing.T) {
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("AppendJSON of a channel did not panic")
		}
		if s, _ := r.(string); !strings.Contains(s, "protocol: encoding ERROR payload") {
			t.Fatalf("panic %v does not name the frame type", r)
		}
	}()
	AppendJSON(nil, TypeError, 0, make(chan int))
}

func TestErrorPayloadError(t *testing.T) {
	e := &ErrorPayload{Code: CodeUnauthorized, Message: "unauthorized: unknown token"}
	if got, want := e.Error(), "hawk: unauthorized: unauthorized: unknown token"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

// The codes are stable strings agents match on; docs/PROTOCOL.md lists each.
func TestCodesAreStable(t *testing.T) {
	want := map[Code]string{
		CodeBadMagic:           "bad_magic",
		CodeUnsupportedVersion: "unsupported_version",
		CodeUnknownType:        "unknown_type",
		CodeFrameTooLarge:      "frame_too_large",
		CodeBadCRC:             "bad_crc",
		CodeBadPayload:         "bad_payload",
		CodeProtocol:           "protocol_violation",
		CodeHandshakeTimeout:   "handshake_timeout",
		CodeUnauthorized:       "unauthorized",
		CodeHeartbeatTimeout:   "heartbeat_timeout",
		CodeTooManyConns:       "too_many_connections",
		CodeReplaced:           "replaced",
		CodeTokenRevoked:       "token_revoked",
		CodeDrainTimeout:       "drain_timeout",
		CodeShutdown:           "shutdown",
		CodeSpoolWrite:         "spool_write_failed",
		CodeUnavailable:        "unavailable",
	}
	if len(want) != 17 {
		t.Fatalf("duplicate code values: %d distinct", len(want))
	}
	for c, s := range want {
		if string(c) != s {
			t.Errorf("code %q, want %q", c, s)
		}
	}
}

// Every ERROR and NACK message is clipped, at a rune boundary, so that no server
// frame exceeds MaxServerPayload whatever a peer made it quote.
func TestMessagesAreClipped(t *testing.T) {
	long := strings.Repeat("é", 4000) // 2 bytes a rune: a cut at 1021 falls inside one
	ep := &ErrorPayload{Code: CodeBadPayload, Message: long, RetryAfterMS: 1 << 62}
	nack := &Nack{Code: CodeSpoolWrite, Message: long, Retryable: true}
	for _, v := range []any{ep, nack} {
		frame := AppendJSON(nil, TypeError, 0, v)
		f, _, err := Decode(frame, MaxServerPayload)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Payload) > MaxServerPayload {
			t.Fatalf("%T payload is %d bytes, more than %d", v, len(f.Payload), MaxServerPayload)
		}
		var got struct{ Message string }
		if err := ParseJSON(f, &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Message) > MaxMessageLen || !utf8.ValidString(got.Message) || !strings.HasSuffix(got.Message, "…") {
			t.Fatalf("%T message: %d bytes, valid UTF-8 %v, %q…", v, len(got.Message), utf8.ValidString(got.Message), got.Message[:20])
		}
	}
	if ep.Message != long || nack.Message != long {
		t.Fatal("AppendJSON changed its argument")
	}
}
