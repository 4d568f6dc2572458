package protocol

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestChunkRoundTrip(t *testing.T) {
	data := []byte("some file bytes")
	frame := AppendChunk([]byte("prefix"), "u-1", 1<<40, data)[len("prefix"):]
	f, n, err := Decode(frame, 1<<20)
	if err != nil || n != len(frame) {
		t.Fatalf("Decode = (%d, %v), want (%d, nil)", n, err, len(frame))
	}
	if f.Type != TypeUploadChunk || f.Seq != 1<<40 {
		t.Fatalf("frame %s seq %d, want UPLOAD_CHUNK seq %d", f.Type, f.Seq, uint64(1<<40))
	}
	id, got, err := ParseChunk(f)
	if err != nil || string(id) != "u-1" || !bytes.Equal(got, data) {
		t.Fatalf("ParseChunk = (%q, %q, %v)", id, got, err)
	}
	if !bytes.Equal(frame, AppendFrame(nil, TypeUploadChunk, 1<<40, AppendChunkPayload(nil, "u-1", data))) {
		t.Fatal("AppendChunk and AppendFrame of AppendChunkPayload differ")
	}
	around, at := AppendChunkAround([]byte("before"), "u-1", 1<<40, data)
	if got := slices.Concat(around[:at], data, around[at:]); !bytes.Equal(got, append([]byte("before"), frame...)) {
		t.Fatal("AppendChunkAround with data put at its place differs from AppendChunk")
	}
}

func TestChunkEmptyData(t *testing.T) {
	f, _, err := Decode(AppendChunk(nil, "x", 0, nil), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if id, data, err := ParseChunk(f); err != nil || string(id) != "x" || len(data) != 0 {
		t.Fatalf("ParseChunk = (%q, %q, %v)", id, data, err)
	}
}

func TestParseChunkRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		payload []byte
		want    string
	}{
		"empty":           {nil, "payload is empty"},
		"zero id length":  {[]byte{0, 'a'}, "upload id length 0"},
		"id past payload": {[]byte{5, 'a', 'b'}, "upload id length 5"},
		"id too long":     {append([]byte{65}, bytes.Repeat([]byte("a"), 70)...), "upload id length 65"},
		"slash in id":     {[]byte{3, 'a', '/', 'b'}, "byte 0x2f at 1"},
		"nul in id":       {[]byte{3, 'a', 'b', 0}, "byte 0x00 at 2"},
		"leading dot":     {[]byte{2, '.', '.'}, "starts with a dot"},
	} {
		_, _, err := ParseChunk(Frame{Type: TypeUploadChunk, Payload: tc.payload})
		var de *DecodeError
		if !errors.As(err, &de) || de.Code != CodeBadPayload || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ParseChunk error %v, want bad_payload containing %q", name, err, tc.want)
		}
	}
}

func TestParseChunkDoesNotAllocate(t *testing.T) {
	f, _, _ := Decode(AppendChunk(nil, "upload-0001", 7, make([]byte, 4096)), 1<<20)
	if n := testing.AllocsPerRun(100, func() {
		if _, _, err := ParseChunk(f); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("ParseChunk allocates %v times", n)
	}
}

// FuzzParseChunk checks that any payload either parses into an id that passes
// ValidUploadID and data that, re-encoded, give the payload back, or is refused
// with bad_payload; never a panic.
func FuzzParseChunk(f *testing.F) {
	f.Add(AppendChunkPayload(nil, "u-1", []byte("o worl")))
	f.Add([]byte{0})
	f.Add([]byte{64})
	f.Add([]byte{2, '.', '.'})
	f.Fuzz(func(t *testing.T, p []byte) {
		id, data, err := ParseChunk(Frame{Type: TypeUploadChunk, Payload: p})
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Code != CodeBadPayload {
				t.Fatalf("error %v is not a bad_payload DecodeError", err)
			}
			return
		}
		if ValidUploadID(id) != nil {
			t.Fatalf("accepted invalid id %q", id)
		}
		if !bytes.Equal(AppendChunkPayload(nil, string(id), data), p) {
			t.Fatalf("payload %q does not re-encode from (%q, %q)", p, id, data)
		}
	})
}
