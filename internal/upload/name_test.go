package upload

import (
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidName(t *testing.T) {
	for _, ok := range []string{"a.log", "crash dump 2026-12-05.core", "..hidden", "日本.txt", strings.Repeat("x", 255)} {
		if err := ValidName(ok); err != nil {
			t.Errorf("ValidName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "../etc/passwd", "/etc/passwd", "a/b", `a\b`, "C:\\x", "a\x00b", "a\nb", "a\x7f", "\xff", strings.Repeat("x", 256)} {
		if err := ValidName(bad); err == nil {
			t.Errorf("ValidName(%q) = nil, want an error", bad)
		}
	}
}

// FuzzValidName checks that every accepted name is one plain path element: it
// cleans to itself, joined under a directory it stays directly inside it, and it
// holds no control character or invalid UTF-8.
func FuzzValidName(f *testing.F) {
	for _, s := range []string{"a.log", "..", "../x", "/abs", "a\x00", "\xc0\xaf", "x\\y", "…"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidName(name) != nil {
			return
		}
		if filepath.Base(name) != name || filepath.Clean(name) != name || filepath.IsAbs(name) {
			t.Fatalf("accepted %q, which is not one path element", name)
		}
		if filepath.Dir(filepath.Join("/store", name)) != "/store" {
			t.Fatalf("accepted %q, which leaves the directory", name)
		}
		if !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("accepted %q with a control character or invalid UTF-8", name)
		}
	})
}
