package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
)

// Defaults for the zero values of UDPOptions.
const (
	DefaultUDPFirstRetry  = 200 * time.Millisecond
	DefaultUDPMaxRetry    = 5 * time.Second
	DefaultUDPMaxAttempts = 10
)

// ErrNoAck is returned by UDP.Report when no ACK came after MaxAttempts sends:
// the report may or may not be stored (a retransmit later under the same seq is
// still stored at most once, within the server's dedup window).
var ErrNoAck = errors.New("hawk: report datagram not acknowledged")

// UDPOptions configures a UDP client. Addr and ClientID are required.
type UDPOptions struct {
	Addr     string // host:port of a hawk UDP listener with format report
	ClientID string // 1..255 bytes
	Token    string // 0..255 bytes; empty for an open server
	// FirstSeq is the seq of the first report; 0 derives it from the clock, as
	// Options.FirstSeq. The seq space is the client id's, shared with its
	// connections: do not use the same id on both with overlapping seqs.
	FirstSeq uint64
	// A report is sent again after FirstRetry, then after twice as long each time,
	// up to MaxRetry, until its ACK comes; after MaxAttempts sends without one,
	// Report returns ErrNoAck. Defaults 200ms, 5s, 10.
	FirstRetry, MaxRetry time.Duration
	MaxAttempts          int
}

// UDP sends reports as datagrams (PROTOCOL.md 4.4): each Report returns once the
// server ACKed it, retransmitting until then. Reports may be sent concurrently:
// ACKs are matched by seq. Safe for concurrent use.
type UDP struct {
	o    UDPOptions
	conn *net.UDPConn
	seq  atomic.Uint64 // the last seq given out

	mu      sync.Mutex
	waiting map[uint64]chan struct{}
	closed  chan struct{}
	done    chan struct{} // the reader ended
}

// DialUDP opens the socket and starts the reader of ACKs.
func DialUDP(o UDPOptions) (*UDP, error) {
	if o.Addr == "" || o.ClientID == "" || len(o.ClientID) > protocol.MaxDatagramID || len(o.Token) > protocol.MaxDatagramToken {
		return nil, errors.New("hawk: UDPOptions needs Addr and a ClientID of 1..255 bytes, and a Token of at most 255")
	}
	if o.FirstRetry <= 0 {
		o.FirstRetry = DefaultUDPFirstRetry
	}
	if o.MaxRetry <= 0 {
		o.MaxRetry = DefaultUDPMaxRetry
	}
	o.MaxRetry = max(o.MaxRetry, o.FirstRetry)
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultUDPMaxAttempts
	}
	if o.FirstSeq == 0 {
		o.FirstSeq = uint64(time.Now().UnixNano())
	}
	ra, err := net.ResolveUDPAddr("udp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("hawk: %w", err)
	}
	c, err := net.DialUDP("udp", nil, ra)
	if err != nil {
		return nil, fmt.Errorf("hawk: %w", err)
	}
	u := &UDP{o: o, conn: c, waiting: map[uint64]chan struct{}{}, closed: make(chan struct{}), done: make(chan struct{})}
	u.seq.Store(o.FirstSeq - 1)
	go u.read()
	return u, nil
}

// Report sends payload under the next seq and returns that seq once the server
// ACKed it; ErrNoAck after MaxAttempts sends, the context's error, or ErrClosed.
func (u *UDP) Report(ctx context.Context, payload []byte) (uint64, error) {
	seq := u.seq.Add(1)
	return seq, u.ReportSeq(ctx, seq, payload)
}

// ReportSeq is Report under a seq the caller chose: to send again, later, a
// report that got ErrNoAck.
func (u *UDP) ReportSeq(ctx context.Context, seq uint64, payload []byte) error {
	d := protocol.AppendDatagram(nil, u.o.ClientID, u.o.Token, seq, payload)
	acked := make(chan struct{})
	u.mu.Lock()
	u.waiting[seq] = acked
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		delete(u.waiting, seq)
		u.mu.Unlock()
	}()
	wait := u.o.FirstRetry
	t := time.NewTimer(wait)
	defer t.Stop()
	for attempt := 1; ; attempt++ {
		// A failed write (ECONNREFUSED from an earlier datagram, a full buffer)
		// is one lost datagram: the next attempt sends again.
		u.conn.Write(d)
		t.Reset(wait)
		select {
		case <-acked:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-u.closed:
			return ErrClosed
		case <-t.C:
		}
		if attempt >= u.o.MaxAttempts {
			return ErrNoAck
		}
		wait = min(2*wait, u.o.MaxRetry)
	}
}

// read is the reader goroutine: it matches each ACK to its Report.
func (u *UDP) read() {
	defer close(u.done)
	buf := make([]byte, 64)
	for {
		n, err := u.conn.Read(buf)
		if err != nil {
			select {
			case <-u.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ECONNREFUSED while the port has no listener: retransmits go on
		}
		f, m, err := protocol.Decode(buf[:n], 0)
		if err != nil || m != n || f.Type != protocol.TypeAck {
			continue
		}
		u.mu.Lock()
		if ch, ok := u.waiting[f.Seq]; ok {
			close(ch)
			delete(u.waiting, f.Seq)
		}
		u.mu.Unlock()
	}
}

// Close ends waiting Reports with ErrClosed and closes the socket.
func (u *UDP) Close() error {
	u.mu.Lock()
	select {
	case <-u.closed:
		u.mu.Unlock()
		return nil
	default:
	}
	close(u.closed)
	u.mu.Unlock()
	err := u.conn.Close()
	<-u.done
	return err
}
