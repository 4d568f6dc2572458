package conn

import "github.com/hawk-agents/hawk/internal/protocol"

// Observer receives counts for metrics. Calls come from hot paths, batched per read or
// per write, so implementations must be cheap and must not block.
type Observer interface {
	Accepted()
	Closed(reason CloseReason, handshaken bool)
	FramesIn(t protocol.Type, n int)
	FramesOut(t protocol.Type, n int)
	BytesIn(n int)
	BytesOut(n int)
	Acked(n int)
	Nacked(n int)
	GoawaySent()
}

// NopObserver discards everything.
type NopObserver struct{}

func (NopObserver) Accepted()                    {}
func (NopObserver) Closed(CloseReason, bool)     {}
func (NopObserver) FramesIn(protocol.Type, int)  {}
func (NopObserver) FramesOut(protocol.Type, int) {}
func (NopObserver) BytesIn(int)                  {}
func (NopObserver) BytesOut(int)                 {}
func (NopObserver) Acked(int)                    {}
func (NopObserver) Nacked(int)                   {}
func (NopObserver) GoawaySent()                  {}
