package dirlock

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// A second owner waits until the first lets go, or until its context ends.
func TestWaitOneOwnerAtATime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	first, err := Wait(context.Background(), path, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := Wait(ctx, path, time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Wait while held: %v, want the deadline", err)
	}
	got := make(chan error, 1)
	go func() {
		f, err := Wait(context.Background(), path, time.Millisecond)
		if err == nil {
			f.Close()
		}
		got <- err
	}()
	first.Close()
	if err := <-got; err != nil {
		t.Fatalf("Wait after the first let go: %v", err)
	}
}
