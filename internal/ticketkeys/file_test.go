package ticketkeys

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func hexKey(b byte) string { return strings.Repeat(hex.EncodeToString([]byte{b}), 32) }

func TestParse(t *testing.T) {
	keys, err := Parse([]byte("# shared by edge-1..3\n\n  " + hexKey(0xa1) + "  \n#old\n" + strings.ToUpper(hexKey(0xb2)) + "\r\n" + hexKey(0xc3)))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 || keys[0] != (Key(bytes.Repeat([]byte{0xa1}, 32))) || keys[1][0] != 0xb2 || keys[2][31] != 0xc3 {
		t.Fatalf("keys %x", keys)
	}
	many := strings.Repeat(hexKey(1)+"\n", MaxKeys)
	if keys, err := Parse([]byte(many)); err != nil || len(keys) != MaxKeys {
		t.Fatalf("%d keys: %v", len(keys), err)
	}
	for name, in := range map[string]string{
		"empty":      "",
		"comments":   "# nothing\n\n",
		"short":      hexKey(1)[:62],
		"long":       hexKey(1) + "00",
		"not hex":    "zz" + hexKey(1)[2:],
		"zero":       hexKey(0),
		"base64":     "oaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaE=",
		"too many":   many + hexKey(2),
		"two a line": hexKey(1) + " " + hexKey(2),
	} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), hexKey(1)[:16]) {
			t.Errorf("%s: the error shows the key: %v", name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(hexKey(1) + "\n" + hexKey(2)))
	f.Add([]byte("# c\n\n " + hexKey(3) + "\r\n"))
	f.Add([]byte(hexKey(0)))
	f.Add([]byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := Parse(data)
		if err != nil {
			if keys != nil {
				t.Fatal("keys with an error")
			}
			return
		}
		if len(keys) == 0 || len(keys) > MaxKeys {
			t.Fatalf("%d keys", len(keys))
		}
		// Every key accepted is in the input, in order, as hex, and not zero.
		lower := bytes.ToLower(data)
		at := 0
		for _, k := range keys {
			if k == (Key{}) {
				t.Fatal("zero key")
			}
			i := bytes.Index(lower[at:], []byte(hex.EncodeToString(k[:])))
			if i < 0 {
				t.Fatalf("key %x not in the input after %d", k, at)
			}
			at += i + 64
		}
	})
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ticket.keys")
	if err := os.WriteFile(p, []byte(hexKey(7)+"\n"+hexKey(8)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := ReadFile(p)
	if err != nil || len(keys) != 2 || keys[1][0] != 8 {
		t.Fatalf("%x %v", keys, err)
	}
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(p); err != nil {
		t.Fatalf("mode 640: %v", err)
	}
	for _, mode := range []os.FileMode{0o644, 0o604, 0o660, 0o666} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		_, err := ReadFile(p)
		if err == nil || !strings.Contains(err.Error(), ConfigKey) || !strings.Contains(err.Error(), "mode") {
			t.Errorf("mode %o: %v", mode, err)
		}
	}
	bad := filepath.Join(dir, "bad.keys")
	os.WriteFile(bad, []byte("not a key\n"), 0o600)
	for _, path := range []string{bad, filepath.Join(dir, "missing"), dir} {
		if _, err := ReadFile(path); err == nil || !strings.Contains(err.Error(), ConfigKey) {
			t.Errorf("%s: %v", path, err)
		}
	}
	big := filepath.Join(dir, "big.keys")
	os.WriteFile(big, bytes.Repeat([]byte("#\n"), maxFileSize), 0o600)
	if _, err := ReadFile(big); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Errorf("big file: %v", err)
	}
}
