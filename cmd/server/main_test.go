package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVersionFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := runMain([]string{"-version"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "hawk "+version+" (go") {
		t.Fatalf("-version printed %q", out.String())
	}
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("listen: \"127.0.0.1:0\"\nspool:\n  fsync: always\n"), 0o644)
	os.WriteFile(bad, []byte("spool:\n  fsync: sometimes\nlimits:\n  max_conns: -3\n"), 0o644)

	var out, errOut bytes.Buffer
	if code := runMain([]string{"-check-config", "-config", good}, &out, &errOut); code != 0 {
		t.Fatalf("good config: exit %d: %s", code, errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := runMain([]string{"-check-config", "-config", bad}, &out, &errOut); code != 1 {
		t.Fatalf("bad config: exit %d, want 1", code)
	}
	for _, key := range []string{"config: spool.fsync:", "config: limits.max_conns:"} {
		if !strings.Contains(errOut.String(), key) {
			t.Errorf("-check-config output does not name %q:\n%s", key, errOut.String())
		}
	}
	// A flag overrides the file, and is checked the same way.
	errOut.Reset()
	if code := runMain([]string{"-check-config", "-config", good, "-drain.spread=1h"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "drain.spread") {
		t.Fatalf("spread above timeout: exit %d, %s", code, errOut.String())
	}
}
