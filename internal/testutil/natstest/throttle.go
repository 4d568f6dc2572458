package natstest

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"

	"golang.org/x/time/rate"
)

// Throttle starts a TCP proxy to the server whose client-to-server direction
// carries at most bytesPerSec, shared by all its connections: a broker that takes
// in fewer publishes a second than its clients send, so that acknowledgements wait
// behind a queue which grows with what the clients keep in flight. It returns the
// proxy's client URL; the proxy and its connections are closed at the end of the
// test.
func (s *Server) Throttle(bytesPerSec int) string {
	s.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatal(err)
	}
	p := &throttle{ln: ln, to: fmt.Sprintf("127.0.0.1:%d", s.opts.Port), lim: rate.NewLimiter(rate.Limit(bytesPerSec), throttleChunk),
		conns: map[net.Conn]struct{}{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Go(p.accept)
	s.t.Cleanup(p.close)
	return "nats://" + ln.Addr().String()
}

// throttleChunk is the most one read forwards at once: small, so that the rate is
// even at the scale of a few publishes.
const throttleChunk = 512

type throttle struct {
	ln     net.Listener
	to     string
	lim    *rate.Limiter
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func (p *throttle) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.to)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, up) {
			return
		}
		p.wg.Go(func() { p.pipe(up, c, true) })
		p.wg.Go(func() { p.pipe(c, up, false) })
	}
}

// track registers a connection pair, unless the proxy is closing (then it closes
// them and says so).
func (p *throttle) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		if p.closed {
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
	}
	return !p.closed
}

// pipe copies src to dst, at the shared rate if limited, and closes both when
// either side ends.
func (p *throttle) pipe(dst, src net.Conn, limited bool) {
	defer dst.Close()
	defer src.Close()
	if !limited {
		io.Copy(dst, src)
		return
	}
	buf := make([]byte, throttleChunk)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if p.lim.WaitN(p.ctx, n) != nil {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *throttle) close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.cancel()
	p.ln.Close()
	p.wg.Wait()
}
