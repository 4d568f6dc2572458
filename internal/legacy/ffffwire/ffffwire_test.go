package ffffwire

import (
	"bytes"
	"testing"
)

// A heartbeat frame byte for byte: the envelope Go's encoder writes, its length,
// the CRC of a value computed elsewhere (CRC-32 of "123456789" is 0xCBF43926).
func TestAppendPacketLayout(t *testing.T) {
	if got := CRC([]byte("123456789")); got != 0xCBF4 {
		t.Fatalf("CRC(123456789) = %#04x, want 0xcbf4", got)
	}
	data := []byte(`{"PacketType":0,"PacketContent":"e30="}`)
	want := append([]byte{0xff, 0xff, 0, byte(len(data))}, data...)
	c := CRC(data)
	want = append(want, byte(c>>8), byte(c), 0xff, 0xfe)
	if got := AppendPacket(nil, Heartbeat, []byte("{}")); !bytes.Equal(got, want) {
		t.Errorf("AppendPacket(heartbeat, {}) = %q, want %q", got, want)
	}
}
