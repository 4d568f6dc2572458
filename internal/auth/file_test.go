package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseFile(t *testing.T) {
	creds, err := ParseFile([]byte("# hawk tokens\n\n  web tok-web web-*   \nops " + hashOf("tok-ops") + " ops-1 ops-2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(creds) != 2 || creds[0].Name != "web" || creds[1].Name != "ops" || len(creds[1].Patterns) != 2 {
		t.Fatalf("parsed %v", creds)
	}
	_, err = ParseFile([]byte("# c\nweb tok-web web-*\nbroken s3cr3t\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("a bad third line: %v", err)
	}
}

func TestFileReload(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tokens")
	write := func(s string) {
		t.Helper()
		// By rename, as tooling does: a new inode each time, so Changed sees it
		// even within the file system's mtime granularity.
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := OpenFile(p); err == nil {
		t.Fatal("a missing tokens file opened")
	}
	write("a tok-a a-*\n")
	f, err := OpenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if f.Changed() {
		t.Fatal("changed right after reading")
	}
	write("a tok-a a-*\nb tok-b b-*\n")
	if !f.Changed() {
		t.Fatal("a rewritten file is not seen as changed")
	}
	if changed, err := f.Reload(); err != nil || !changed || len(f.Credentials()) != 2 {
		t.Fatalf("reload: changed %v, err %v, %d credentials", changed, err, len(f.Credentials()))
	}
	write("a tok-a a-*\nb tok-a b-*\n") // one secret twice: refused, the last good stays
	if _, err := f.Reload(); err == nil || strings.Contains(err.Error(), "tok-a") {
		t.Fatalf("a file with one secret twice: %v", err)
	}
	if len(f.Credentials()) != 2 || f.Changed() {
		t.Fatal("a bad version replaced the last good one, or is seen again as a change")
	}
	write("a tok-a a-*\n")
	if changed, err := f.Reload(); err != nil || !changed {
		t.Fatalf("revocation: changed %v, err %v", changed, err)
	}
	if changed, _ := f.Reload(); changed {
		t.Error("the same contents read again count as a change")
	}
	os.Remove(p)
	if !f.Changed() {
		t.Error("a deleted file is not a change")
	}
	if _, err := f.Reload(); err == nil || len(f.Credentials()) != 1 {
		t.Errorf("a deleted file: err %v, %d credentials (want the last good one)", err, len(f.Credentials()))
	}
}
