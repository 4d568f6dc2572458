package reload

import (
	"context"
	"fmt"
	"time"

	"github.com/hawk-agents/hawk/internal/config"
)

// Watch is the config file watch, started (and armed) before Ready and run until
// the serving phase ends.
type Watch struct {
	cancel context.CancelFunc
	done   chan error
}

// StartWatch starts watching the config file, each change a reload, and returns
// once the watch is in place, after one reload that catches a save made between
// loading the file and arming the watch. nil without a config file.
func (r *Reloader) StartWatch() (*Watch, error) {
	file := r.o.Loader.File
	if file == "" {
		return nil, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Watch{cancel: cancel, done: make(chan error, 1)}
	armed := make(chan struct{})
	go func() {
		w.done <- config.WatchArmed(ctx, file, config.DefaultDebounce, func() { r.Reload("file change") }, func() { close(armed) })
	}()
	select {
	case <-armed:
		r.Armed()
		return w, nil
	case err := <-w.done:
		cancel()
		return nil, fmt.Errorf("config watch: %w", err)
	}
}

// Stop stops the watch (the daemon's undo).
func (w *Watch) Stop() { w.cancel() }

// Actor runs the watch in the serving phase: an error of the watch ends the phase.
func (w *Watch) Actor() (func() error, func(error)) {
	return func() error { return <-w.done }, func(error) { w.cancel() }
}

// poll is a serving-phase actor that runs check, under the reload lock, every
// interval until interrupted: the TLS files and the tokens file are polled, not
// watched (internal/filestamp says why).
func (r *Reloader) poll(interval time.Duration, check func()) (func() error, func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	return func() error {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			r.mu.Lock()
			check()
			r.mu.Unlock()
		}
	}, func(error) { cancel() }
}
