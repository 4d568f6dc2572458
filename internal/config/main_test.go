package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// writeFile writes content to path (in place, truncating).
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tempConfig writes content to a fresh hawk.yaml and returns its path.
func tempConfig(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hawk.yaml")
	writeFile(t, p, content)
	return p
}

// flags returns a FlagSet with the config flags (and an unrelated -config flag, as the
// server has) parsed from args.
func flags(t *testing.T, args ...string) *flag.FlagSet {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(discard{})
	fs.String("config", "", "config file")
	RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return fs
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// mustLoad loads with an explicit (never the process's) environment.
func mustLoad(t *testing.T, l *Loader) *Config {
	t.Helper()
	if l.Env == nil {
		l.Env = []string{}
	}
	c, err := l.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

// loadErr loads and returns the *ValidationError, failing if there is none.
func loadErr(t *testing.T, l *Loader) *ValidationError {
	t.Helper()
	if l.Env == nil {
		l.Env = []string{}
	}
	c, err := l.Load()
	if err == nil {
		t.Fatalf("Load succeeded (%+v), want an error", c)
	}
	if c != nil {
		t.Errorf("Load returned a config with its error")
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Load error %v (%T) is not a *ValidationError", err, err)
	}
	return ve
}

// hasKey reports whether ve names key, and returns that entry.
func hasKey(ve *ValidationError, key string) (FieldError, bool) {
	for _, e := range ve.Errors {
		if e.Key == key {
			return e, true
		}
	}
	return FieldError{}, false
}

func wantKeys(t *testing.T, err error, keys ...string) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	for _, k := range keys {
		if _, ok := hasKey(ve, k); !ok {
			t.Errorf("error does not name %s: %v", k, err)
		}
		if !strings.Contains(err.Error(), k+": ") {
			t.Errorf("Error() does not name %s: %v", k, err)
		}
	}
}
