package tlsrecord

import (
	"bytes"
	"testing"
	"time"
)

// TestTransportReadsNoFurtherThanTheRecord: with several records waiting in the
// socket, every Read of the Transport ends at or before the end of the record
// it is in, whatever buffer it is given.
func TestTransportReadsNoFurtherThanTheRecord(t *testing.T) {
	a, b := tcpPair(t)
	var stream []byte
	var ends []int
	for _, n := range []int{0, 1, 300, 17000, 5} {
		stream = append(stream, typeAppData, 3, 3, byte(n>>8), byte(n))
		stream = append(stream, bytes.Repeat([]byte{byte(n)}, n)...)
		ends = append(ends, len(stream))
	}
	if _, err := b.Write(stream); err != nil {
		t.Fatal(err)
	}
	tr := NewTransport(a, &Secrets{})
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	buf := make([]byte, 64<<10)
	for len(got) < len(stream) {
		n, err := tr.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		start := len(got)
		got = append(got, buf[:n]...)
		for _, e := range ends {
			if start < e && len(got) > e {
				t.Fatalf("a read from %d to %d crosses the record end at %d", start, len(got), e)
			}
		}
	}
	if !bytes.Equal(got, stream) {
		t.Fatal("bytes read differ from bytes sent")
	}
	if tr.r.hdrN != 0 || tr.r.rem != 0 {
		t.Fatalf("at the end of the stream the transport is inside a record (%d header bytes, %d left)", tr.r.hdrN, tr.r.rem)
	}
}
