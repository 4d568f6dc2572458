package ticketkeys

import (
	"os"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestPassInherit(t *testing.T) {
	keys := []Key{NewKey(), NewKey(), NewKey()}
	rotated := time.Unix(1_700_000_000, 123)
	r := NewRing(keys, rotated, func([]Key) {})
	var passed *os.File
	err := Pass(r, func(name string, f *os.File) error {
		if name != Name {
			t.Errorf("passed as %q", name)
		}
		fd, err := dupFile(f)
		passed = fd
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got, at, err := Inherit(passed)
	if err != nil || !slices.Equal(got, keys) || !at.Equal(rotated) {
		t.Fatalf("inherited %x at %v (%v), passed %x at %v", got, at, err, keys, rotated)
	}
}

func TestInheritRefuses(t *testing.T) {
	good := encode([]Key{NewKey()}, time.Now())
	for name, msg := range map[string][]byte{
		"empty":     nil,
		"magic":     append([]byte("HWKX"), good[4:]...),
		"version":   append(append(append([]byte{}, good[:4]...), 9), good[5:]...),
		"no keys":   append(append([]byte{}, good[:13]...), 0),
		"too many":  append(append([]byte{}, good[:13]...), MaxKeys+1),
		"truncated": good[:len(good)-1],
	} {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		pw.Write(msg)
		pw.Close()
		if keys, _, err := Inherit(pr); err == nil {
			t.Errorf("%s: inherited %x", name, keys)
		}
	}
}

// dupFile stands for the upgrader's duplicate of a passed file.
func dupFile(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var out *os.File
	var derr error
	rc.Control(func(fd uintptr) {
		var nfd int
		if nfd, derr = syscall.Dup(int(fd)); derr == nil {
			out = os.NewFile(uintptr(nfd), f.Name())
		}
	})
	return out, derr
}
