package ticketkeys

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
)

// Key is one session ticket key: 32 random bytes, from which crypto/tls derives
// its encryption and MAC keys.
type Key = [32]byte

// MaxKeys bounds the keys of a file, and of a ring.
const MaxKeys = 16

// ConfigKey names the configuration key of the file in errors.
const ConfigKey = "tls.ticket_keys_file"

// The keys file: one key a line, 64 hexadecimal digits (32 random bytes, e.g.
// `openssl rand -hex 32`); blank lines and lines starting with # are ignored, as is
// whitespace around a key. The first key encrypts new tickets; every key, the first
// included, decrypts. 1 to MaxKeys keys.
//
// Parse reads a keys file's contents. Its errors name the line, never a key.
func Parse(data []byte) ([]Key, error) {
	var keys []Key
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if len(keys) == MaxKeys {
			return nil, fmt.Errorf("line %d: more than %d keys", n, MaxKeys)
		}
		var k Key
		if len(line) != 2*len(k) {
			return nil, fmt.Errorf("line %d: a key is %d hexadecimal digits, not %d characters", n, 2*len(k), len(line))
		}
		if _, err := hex.Decode(k[:], line); err != nil {
			return nil, fmt.Errorf("line %d: not hexadecimal", n)
		}
		if k == (Key{}) {
			return nil, fmt.Errorf("line %d: an all-zero key", n)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no key")
	}
	return keys, nil
}

// permMask is what a keys file's mode must not allow: any access by others, or
// writing by the group. A group may read it (instances that share it through a
// group, a secrets agent writing it as another user).
const permMask = 0o027

// maxFileSize bounds a keys file: MaxKeys keys and room for comments.
const maxFileSize = 16 << 10

// ReadFile reads the keys file at path. It refuses a file others may read or the
// group may write. Errors name ConfigKey and the path.
func ReadFile(path string) ([]Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ConfigKey, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ConfigKey, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s: not a regular file", ConfigKey, path)
	}
	if perm := fi.Mode().Perm(); perm&permMask != 0 {
		return nil, fmt.Errorf("%s %s: mode %04o lets others read it or the group write it: chmod 600 (or 640)", ConfigKey, path, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ConfigKey, err)
	}
	if len(data) > maxFileSize {
		clear(data)
		return nil, fmt.Errorf("%s %s: larger than %d bytes", ConfigKey, path, maxFileSize)
	}
	keys, err := Parse(data)
	clear(data)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", ConfigKey, path, err)
	}
	return keys, nil
}
