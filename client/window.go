package client

import "context"

// window bounds the reports in flight: a report holds one slot from its admission
// (Report or Go) until its outcome. It is a buffered channel rather than a counter
// under the Client's lock so that waiting for a slot costs no lock and ends on
// the caller's context or on Close.
type window struct {
	slots chan struct{} // one token per report in flight
}

func newWindow(size int) window { return window{slots: make(chan struct{}, size)} }

// acquire takes a slot, waiting while the window is full until ctx ends (its
// error) or Close starts (ErrClosed: closing is closed). A slot taken as ctx ends
// is given back: the caller's deadline wins over a report it no longer waits for.
// Go passes context.Background(), whose Done is nil: only Close ends its wait.
func (w window) acquire(ctx context.Context, closing <-chan struct{}) error {
	select {
	case w.slots <- struct{}{}:
	default:
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		case <-closing:
			return ErrClosed
		}
	}
	if err := ctx.Err(); err != nil {
		<-w.slots
		return err
	}
	return nil
}

// release frees the slot of a finished (or refused) report.
func (w window) release() { <-w.slots }

// inFlight is how many slots are taken.
func (w window) inFlight() int { return len(w.slots) }
