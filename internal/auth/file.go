package auth

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/hawk-agents/hawk/internal/filestamp"
)

// ParseFile parses a tokens file: one credential a line (NAME SECRET ID-PATTERN...),
// blank lines and lines starting with # ignored. An error names the line, never
// quotes it (it holds a secret).
func ParseFile(b []byte) ([]Credential, error) {
	var out []Credential
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		c, err := ParseLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("after %d lines: %w", len(out), err)
	}
	return out, nil
}

// File is a tokens file (auth.tokens_file) and the credentials last read from it
// without error: a bad version keeps the last good one in force.
type File struct {
	path string

	mu    sync.Mutex
	stamp string
	creds []Credential
}

// OpenFile reads the tokens file at path; an unreadable or bad file is an error.
func OpenFile(path string) (*File, error) {
	f := &File{path: path}
	if _, err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Path is the file's name.
func (f *File) Path() string { return f.path }

// Changed reports whether the file looks different from the version last read
// (good or bad).
func (f *File) Changed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return filestamp.Of(f.path) != f.stamp
}

// Reload reads the file again. On error the last good credentials stay; changed
// says whether the credentials differ from the ones before.
func (f *File) Reload() (changed bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Stamped before reading: a change made while the file is read is seen next time.
	f.stamp = filestamp.Of(f.path)
	b, err := os.ReadFile(f.path)
	if err != nil {
		return false, err
	}
	creds, err := ParseFile(b)
	if err != nil {
		return false, fmt.Errorf("%s: %w", f.path, err)
	}
	if _, err := NewSet(creds); err != nil {
		return false, fmt.Errorf("%s: %w", f.path, err)
	}
	changed = !sameCredentials(f.creds, creds)
	f.creds = creds
	return changed, nil
}

// Credentials are the credentials in force from the file; the caller must not
// modify them.
func (f *File) Credentials() []Credential {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.creds
}

func sameCredentials(a, b []Credential) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].hash != b[i].hash || a[i].String() != b[i].String() {
			return false
		}
	}
	return true
}
