package main

import (
	"context"
	"fmt"

	"github.com/hawk-agents/hawk/internal/config"
)

// configWatch is the config file watch, started (and armed) before Ready and run
// until the serving phase ends.
type configWatch struct {
	cancel context.CancelFunc
	done   chan error
}

// startWatch starts the watch and returns once it is in place.
func (s *server) startWatch(file string) (*configWatch, error) {
	ctx, cancel := context.WithCancel(context.Background())
	w := &configWatch{cancel: cancel, done: make(chan error, 1)}
	armed := make(chan struct{})
	go func() {
		w.done <- config.WatchArmed(ctx, file, config.DefaultDebounce, func() { s.reload("file change") }, func() { close(armed) })
	}()
	select {
	case <-armed:
		return w, nil
	case err := <-w.done:
		cancel()
		return nil, fmt.Errorf("config watch: %w", err)
	}
}

func (w *configWatch) stop() { w.cancel() }

// actor runs the watch in the serving phase: an error of the watch ends the phase
// as before.
func (w *configWatch) actor() (func() error, func(error)) {
	return func() error { return <-w.done }, func(error) { w.cancel() }
}
