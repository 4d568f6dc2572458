package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// -version alone is answered before the flags are built; among other flags it is
// parsed with them. Both print the same line, and a bad flag beside it still fails.
func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"-version"}, {"--version"}, {"-version=true"}, {"-log.level=debug", "-version"}} {
		var out, errOut bytes.Buffer
		if code := runMain(args, &out, &errOut); code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, errOut.String())
		}
		if want := "hawk " + version + " (" + runtime.Version() + ")\n"; out.String() != want {
			t.Fatalf("%q printed %q, want %q", args, out.String(), want)
		}
	}
	var out, errOut bytes.Buffer
	if code := runMain([]string{"-version", "-heartbeat.interval=ten"}, &out, &errOut); code != 2 || out.Len() != 0 {
		t.Fatalf("-version with a bad flag: exit %d, printed %q", code, out.String())
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

// A word that is not a command is an error (it used to start a server and drop
// every flag after it); -h and help print a usage naming the commands and exit 0.
func TestCommandLineHygiene(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"help"}} {
		var out, errOut bytes.Buffer
		if code := runMain(args, &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut.String())
		}
		for _, w := range []string{"hawk upgrade", "hawk reload", "hawk status", "-check-config", "-limits.max_conns", "-heartbeat.interval duration", "(default 10s)", "restart-only"} {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v: usage does not mention %q", args, w)
			}
		}
	}
	for _, args := range [][]string{{"serve"}, {"-check-config", "stray", "-limits.max_conns=-1"}, {"status", "extra"}} {
		var out, errOut bytes.Buffer
		if code := runMain(args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stdout %q, stderr %q)", args, code, out.String(), errOut.String())
		}
	}
	// -check-config names what it checked.
	dir := t.TempDir()
	f := filepath.Join(dir, "hawk.yaml")
	os.WriteFile(f, []byte("listen: \"127.0.0.1:0\"\n"), 0o644)
	var out, errOut bytes.Buffer
	if code := runMain([]string{"-check-config", "-config", f}, &out, &errOut); code != 0 || !strings.Contains(out.String(), f) {
		t.Fatalf("-check-config: exit %d, %q", code, out.String())
	}
	// A command without a control socket says what to set.
	out.Reset()
	errOut.Reset()
	if code := runMain([]string{"status", "-config", f}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "control.socket") {
		t.Fatalf("status without a socket: exit %d, %q", code, errOut.String())
	}
}
