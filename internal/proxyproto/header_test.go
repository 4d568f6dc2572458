package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"testing"
)

// header builds a v2 header: command (0 LOCAL, 1 PROXY), family byte, addresses.
func header(cmd, fam byte, addrs []byte) []byte {
	b := append([]byte{}, signature...)
	b = append(b, 0x20|cmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(addrs)))
	return append(b, addrs...)
}

func TestRead(t *testing.T) {
	v4 := []byte{192, 0, 2, 7, 10, 0, 0, 1, 0x30, 0x39, 0x1c, 0xcd} // 192.0.2.7:12345 -> 10.0.0.1:7373
	v6 := make([]byte, 36)
	copy(v6, netip.MustParseAddr("2001:db8::9").AsSlice())
	binary.BigEndian.PutUint16(v6[32:], 443)
	tlv := append(append([]byte{}, v4...), 0x04, 0x00, 0x01, 0xff) // a TLV after the addresses
	for _, c := range []struct {
		name string
		in   []byte
		want string // "" for !ok
	}{
		{"tcp4", header(1, 0x11, v4), "192.0.2.7:12345"},
		{"tcp4 with a TLV", header(1, 0x11, tlv), "192.0.2.7:12345"},
		{"tcp6", header(1, 0x21, v6), "[2001:db8::9]:443"},
		{"local", header(0, 0x00, nil), ""},
		{"unspec", header(1, 0x00, nil), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := bytes.NewReader(append(c.in, "HELLO"...))
			src, ok, err := Read(r)
			if err != nil {
				t.Fatal(err)
			}
			if got := map[bool]string{true: src.String()}[ok]; got != c.want {
				t.Errorf("source %q (ok %v), want %q", src, ok, c.want)
			}
			if rest, _ := io.ReadAll(r); string(rest) != "HELLO" {
				t.Errorf("after the header %q, want the peer's first bytes", rest)
			}
		})
	}
}

func TestReadRefuses(t *testing.T) {
	good := header(1, 0x11, []byte{1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2})
	v1 := []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n")
	badVersion := append([]byte{}, good...)
	badVersion[12] = 0x11
	short := header(1, 0x11, []byte{1, 2, 3})
	for name, in := range map[string][]byte{
		"no header":    []byte("\x00\x01hello, a frame, not a header"),
		"v1":           v1,
		"version 1":    badVersion,
		"short ipv4":   short,
		"truncated":    good[:20],
		"only 3 bytes": good[:3],
	} {
		if _, _, err := Read(bytes.NewReader(in)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if name == "no header" && !errors.Is(err, ErrNotProxy) {
			t.Errorf("%s: %v, want ErrNotProxy", name, err)
		}
	}
}
