package formats

import "testing"

func TestLookup(t *testing.T) {
	for _, name := range []string{FFFF, C8C9, Headers, File} {
		s, ok := Lookup(name)
		if !ok || s.Name != name {
			t.Fatalf("Lookup(%q) = %+v, %v", name, s, ok)
		}
		if s.DefaultMaxFrameSize < 1 || s.DefaultMaxFrameSize > s.MaxData || s.DefaultIdleTimeout <= 0 {
			t.Errorf("%s: defaults %+v outside its limits", name, s)
		}
	}
	if s, _ := Lookup(FFFF); s.MaxData != 0xFFFF {
		t.Errorf("ffff carries up to %d bytes of data, want 65535 (a 16-bit length)", s.MaxData)
	}
	for _, name := range []string{"", "FFFF", "json"} {
		if s, ok := Lookup(name); ok {
			t.Errorf("Lookup(%q) = %+v, true", name, s)
		}
	}
}
