package client

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// fakeServer is a small hawk server for tests: it speaks the real wire format
// (internal/protocol), acks reports by default, and lets a test script what each
// connection does through hooks. It records what it saw so tests can check for
// loss, duplicates and the window.
type fakeServer struct {
	t    testing.TB
	ln   net.Listener
	wg   sync.WaitGroup
	done chan struct{}

	// Hooks and settings; set them before clients connect.
	token       string // required token; "" = open server
	hbMS        int64  // heartbeat_interval_ms in WELCOME
	maxFrame    int
	maxInFlight int // max_in_flight in WELCOME; 0 = not said
	// light: keep no per-report records (benchmarks).
	light bool
	// onHello may refuse a handshake by returning an ERROR payload.
	onHello func(fc *fakeConn, h protocol.Hello) *protocol.ErrorPayload
	// afterWelcome runs right after WELCOME is queued (it may queue more).
	afterWelcome func(fc *fakeConn)
	// onReport decides what to do with a report; nil acks it at once. It runs on
	// the connection's reader goroutine, after the report was recorded.
	onReport func(fc *fakeConn, seq uint64, payload []byte)

	mu             sync.Mutex
	conns          []*fakeConn
	hellos         int
	recv           map[uint64][]int // seq → index of each connection that received it
	acked          map[uint64]int   // seq → ACKs sent
	outstanding    int              // received and not yet acked, nacked or lost with their connection
	maxOutstanding int
	pings          int
}

// fakeConn is one accepted connection.
type fakeConn struct {
	srv      *fakeServer
	idx      int
	nc       net.Conn
	clientID string
	eof      chan struct{} // closed when the reader goroutine is done
	silent   atomic.Bool   // stop reading and answering (a hung server)
	ackq     chan uint64
	ackDelay time.Duration
	ackOnce  sync.Once
	accepted time.Time // when the server accepted it

	mu       sync.Mutex // guards out, received, unacked and writes to nc
	out      []byte
	received []uint64 // seqs in arrival order
	unacked  map[uint64]bool
	// maxUnacked is the most reports this connection held unanswered at once.
	maxUnacked int
	// unackedAtEOF is len(unacked) when the reader saw the connection end.
	unackedAtEOF int
	endErr       error
}

func newFakeServer(t testing.TB) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, done: make(chan struct{}), hbMS: 10_000, maxFrame: 1 << 20,
		recv: make(map[uint64][]int), acked: make(map[uint64]int)}
	t.Cleanup(s.Close)
	return s
}

// start begins accepting; call it after setting hooks.
func (s *fakeServer) start() *fakeServer {
	s.wg.Add(1)
	go s.accept()
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

// Close stops the server and waits for every goroutine it started.
func (s *fakeServer) Close() {
	select {
	case <-s.done:
		return
	default:
	}
	close(s.done)
	s.ln.Close()
	s.mu.Lock()
	for _, fc := range s.conns {
		fc.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *fakeServer) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		fc := &fakeConn{srv: s, idx: len(s.conns), nc: nc, accepted: time.Now(), eof: make(chan struct{}), unacked: make(map[uint64]bool), ackq: make(chan uint64, 4096)}
		s.conns = append(s.conns, fc)
		s.mu.Unlock()
		select {
		case <-s.done:
			nc.Close() // Close may have run before this conn was listed
		default:
		}
		s.wg.Add(1)
		go fc.serve()
	}
}

// conn waits for the i-th accepted connection.
func (s *fakeServer) conn(i int) *fakeConn {
	s.t.Helper()
	var fc *fakeConn
	testutil.Eventually(s.t, 5*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.conns) > i {
			fc = s.conns[i]
			return true
		}
		return false
	}, "connection %d", i)
	return fc
}

func (s *fakeServer) numConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (fc *fakeConn) serve() {
	s := fc.srv
	defer s.wg.Done()
	defer close(fc.eof)
	defer fc.nc.Close()
	var err error
	defer func() {
		fc.mu.Lock()
		fc.unackedAtEOF = len(fc.unacked)
		if fc.endErr == nil {
			fc.endErr = err
		}
		lost := len(fc.unacked)
		fc.mu.Unlock()
		s.mu.Lock()
		s.outstanding -= lost // a lost connection's reports come back as resends
		s.mu.Unlock()
	}()
	buf := make([]byte, 64<<10)
	n := 0
	handshaken := false
	for err == nil {
		var m int
		m, err = fc.nc.Read(buf[n:])
		n += m
		off := 0
		for off < n {
			f, k, derr := protocol.Decode(buf[off:n], s.maxFrame)
			if derr != nil {
				err = derr
				break
			}
			if k == 0 {
				break
			}
			off += k
			if !handshaken {
				if !fc.handshake(f) {
					fc.flush()
					return
				}
				handshaken = true
				continue
			}
			switch f.Type {
			case protocol.TypeReport:
				fc.noteReport(f.Seq)
				if s.onReport != nil {
					s.onReport(fc, f.Seq, f.Payload)
				} else {
					fc.ack(f.Seq)
				}
			case protocol.TypePing:
				s.mu.Lock()
				s.pings++
				s.mu.Unlock()
				fc.queue(protocol.TypePong, f.Seq, nil)
			case protocol.TypePong:
			default:
				err = fmt.Errorf("fake server: unexpected %s from client", f.Type)
			}
			if fc.silent.Load() || fc.closedByUs() {
				break
			}
		}
		fc.flush()
		if fc.silent.Load() {
			<-s.done // hang: read nothing more, answer nothing more
			return
		}
		if fc.closedByUs() {
			return
		}
		n = copy(buf, buf[off:n])
		if need := protocol.Needed(buf[:n]); need > len(buf) {
			buf = append(buf[:n], make([]byte, need-n)...)
		}
	}
}

func (fc *fakeConn) handshake(f protocol.Frame) bool {
	s := fc.srv
	s.mu.Lock()
	s.hellos++
	s.mu.Unlock()
	var h protocol.Hello
	if f.Type != protocol.TypeHello || protocol.ParseJSON(f, &h) != nil {
		fc.queueJSON(protocol.TypeError, &protocol.ErrorPayload{Code: protocol.CodeProtocol, Message: "expected HELLO"})
		return false
	}
	fc.clientID = h.ClientID
	if s.token != "" && h.Token != s.token {
		fc.queueJSON(protocol.TypeError, &protocol.ErrorPayload{Code: protocol.CodeUnauthorized, Message: "unauthorized: unknown token"})
		return false
	}
	if s.onHello != nil {
		if ep := s.onHello(fc, h); ep != nil {
			fc.queueJSON(protocol.TypeError, ep)
			return false
		}
	}
	fc.queueJSON(protocol.TypeWelcome, &protocol.Welcome{ServerID: "fake", ServerVersion: "test", ConnID: uint64(fc.idx + 1),
		HeartbeatIntervalMS: s.hbMS, MaxFrameSize: s.maxFrame, MaxInFlight: s.maxInFlight})
	if s.afterWelcome != nil {
		s.afterWelcome(fc)
	}
	return true
}

var errClosedByServer = errors.New("closed by the fake server")

func (fc *fakeConn) closedByUs() bool {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.endErr == errClosedByServer
}

func (fc *fakeConn) noteReport(seq uint64) {
	s := fc.srv
	if s.light {
		return
	}
	fc.mu.Lock()
	fc.received = append(fc.received, seq)
	fc.unacked[seq] = true
	fc.maxUnacked = max(fc.maxUnacked, len(fc.unacked))
	fc.mu.Unlock()
	s.mu.Lock()
	s.recv[seq] = append(s.recv[seq], fc.idx)
	s.outstanding++
	s.maxOutstanding = max(s.maxOutstanding, s.outstanding)
	s.mu.Unlock()
}

// resolve marks seq as answered (before the answer is written, so the client can
// never observe an ACK the server has not counted).
func (fc *fakeConn) resolve(seq uint64, ack bool) bool {
	fc.mu.Lock()
	was := fc.unacked[seq]
	delete(fc.unacked, seq)
	fc.mu.Unlock()
	if !was {
		return false
	}
	s := fc.srv
	s.mu.Lock()
	s.outstanding--
	if ack {
		s.acked[seq]++
	}
	s.mu.Unlock()
	return true
}

// ack queues an ACK; it goes out at the end of the current read (or by flush).
func (fc *fakeConn) ack(seq uint64) {
	if fc.srv.light || fc.resolve(seq, true) {
		fc.queue(protocol.TypeAck, seq, nil)
	}
}

func (fc *fakeConn) nack(seq uint64, n protocol.Nack) {
	if fc.resolve(seq, false) {
		fc.queueJSONSeq(protocol.TypeNack, seq, &n)
	}
}

// ackLater acks seq after d, in arrival order, from a per-connection goroutine.
func (fc *fakeConn) ackLater(seq uint64, d time.Duration) {
	fc.ackOnce.Do(func() {
		fc.ackDelay = d
		fc.srv.wg.Add(1)
		go fc.acker()
	})
	fc.ackq <- seq
}

func (fc *fakeConn) acker() {
	defer fc.srv.wg.Done()
	for {
		select {
		case seq := <-fc.ackq:
			select {
			case <-time.After(fc.ackDelay):
			case <-fc.eof:
				return
			}
			fc.ack(seq)
			for more := true; more; { // ack whatever else is due in the same write
				select {
				case seq := <-fc.ackq:
					fc.ack(seq)
				default:
					more = false
				}
			}
			fc.flush()
		case <-fc.eof:
			return
		}
	}
}

func (fc *fakeConn) queue(t protocol.Type, seq uint64, payload []byte) {
	fc.mu.Lock()
	fc.out = protocol.AppendFrame(fc.out, t, seq, payload)
	fc.mu.Unlock()
}

func (fc *fakeConn) queueJSON(t protocol.Type, v any) { fc.queueJSONSeq(t, 0, v) }

func (fc *fakeConn) queueJSONSeq(t protocol.Type, seq uint64, v any) {
	fc.mu.Lock()
	fc.out = protocol.AppendJSON(fc.out, t, seq, v)
	fc.mu.Unlock()
}

// flush writes everything queued.
func (fc *fakeConn) flush() {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if len(fc.out) > 0 {
		fc.nc.Write(fc.out)
		fc.out = fc.out[:0]
	}
}

// goaway sends GOAWAY now.
func (fc *fakeConn) goaway(deadline time.Duration) {
	fc.queueGoaway(deadline)
	fc.flush()
}

func (fc *fakeConn) queueGoaway(deadline time.Duration) {
	fc.queueJSON(protocol.TypeGoaway, &protocol.Goaway{Reason: "upgrade", DeadlineMS: deadline.Milliseconds()})
}

// errorClose writes ERROR ep after everything queued and closes the connection.
func (fc *fakeConn) errorClose(ep *protocol.ErrorPayload) {
	fc.queueJSON(protocol.TypeError, ep)
	fc.flush()
	fc.mu.Lock()
	fc.endErr = errClosedByServer
	fc.mu.Unlock()
	fc.nc.Close() // FIN, not RST: the client reads the ERROR
}

// kill closes the connection abruptly (a crash), from the reader goroutine.
func (fc *fakeConn) kill() {
	fc.mu.Lock()
	fc.endErr = errClosedByServer
	fc.mu.Unlock()
	if tc, ok := fc.nc.(*net.TCPConn); ok {
		tc.SetLinger(0) // RST, like a crashed process
	}
	fc.nc.Close()
}

func (fc *fakeConn) receivedSeqs() []uint64 {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return slices.Clone(fc.received)
}

func (fc *fakeConn) unackedSeqs() []uint64 {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	var out []uint64
	for s := range fc.unacked {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// crashWithUnacked makes the server's first connection ack the first acked reports,
// hold the rest, and die when it has received crashAt; the seqs it held unacked
// when it died are stored in *unacked. Later connections ack everything.
func (s *fakeServer) crashWithUnacked(acked, crashAt int, unacked *[]uint64) {
	s.onReport = func(fc *fakeConn, seq uint64, _ []byte) {
		if fc.idx > 0 {
			fc.ack(seq)
			return
		}
		n := len(fc.receivedSeqs())
		switch {
		case n < acked:
			fc.ack(seq)
		case n == crashAt:
			fc.flush()
			*unacked = fc.unackedSeqs()
			fc.kill()
		}
	}
}

// checkResentOnce asserts that every one of seqs was acked exactly once, that
// exactly the reports unacked at the crash reached the server twice, and that the
// second connection received them first, in seq order.
func (s *fakeServer) checkResentOnce(t testing.TB, seqs, unacked []uint64) {
	t.Helper()
	var dups []uint64
	for _, seq := range seqs {
		on, acks := s.seen(seq)
		switch n := len(on); {
		case n == 0:
			t.Errorf("seq %d never reached the server", seq)
		case n > 1:
			dups = append(dups, seq)
		}
		if acks != 1 {
			t.Errorf("seq %d acked %d times", seq, acks)
		}
	}
	slices.Sort(dups)
	if !slices.Equal(dups, unacked) {
		t.Fatalf("reports seen twice: %v, want exactly the unacked ones %v", dups, unacked)
	}
	second := s.conn(1).receivedSeqs()
	if !slices.IsSorted(second) || len(second) < len(unacked) || !slices.Equal(second[:len(unacked)], unacked) {
		t.Fatalf("second connection received %v first, want the resent %v in order", second[:min(len(second), 10)], unacked)
	}
}

// revokeToken makes the server answer the first report with ERROR token_revoked
// (final: the client must not reconnect) and refuse every later HELLO as
// unauthorized, as a server whose token was revoked.
func (s *fakeServer) revokeToken() { s.dropThenRefuse(protocol.CodeTokenRevoked) }

// dropThenRefuse makes the server answer the first report with ERROR code and
// refuse every later HELLO as unauthorized.
func (s *fakeServer) dropThenRefuse(code protocol.Code) {
	s.onHello = func(fc *fakeConn, h protocol.Hello) *protocol.ErrorPayload {
		if fc.idx > 0 {
			return &protocol.ErrorPayload{Code: protocol.CodeUnauthorized, Message: "token revoked"}
		}
		return nil
	}
	s.onReport = func(fc *fakeConn, seq uint64, _ []byte) {
		fc.queueJSON(protocol.TypeError, &protocol.ErrorPayload{Code: code, Message: "dropped"})
		fc.flush()
		fc.kill()
	}
}

// goawayAfter makes the server's first connection say GOAWAY (10 s deadline) after
// n reports and keep acking, slowly, as an old process persisting while it drains;
// later connections ack at once.
func (s *fakeServer) goawayAfter(n int) {
	s.onReport = func(fc *fakeConn, seq uint64, _ []byte) {
		if fc.idx > 0 {
			fc.ack(seq)
			return
		}
		fc.ackLater(seq, 20*time.Millisecond)
		if len(fc.receivedSeqs()) == n {
			fc.goaway(10 * time.Second)
		}
	}
}

// payloadLog is what recordPayloads saw: each report's payload by seq.
type payloadLog struct {
	mu sync.Mutex
	m  map[uint64]string
}

func (l *payloadLog) of(seq uint64) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[seq]
}

// recordPayloads makes the server keep every report's payload and ack it after
// delay (at once when 0).
func (s *fakeServer) recordPayloads(delay time.Duration) *payloadLog {
	l := &payloadLog{m: make(map[uint64]string)}
	s.onReport = func(fc *fakeConn, seq uint64, p []byte) {
		l.mu.Lock()
		l.m[seq] = string(p)
		l.mu.Unlock()
		if delay > 0 {
			fc.ackLater(seq, delay)
		} else {
			fc.ack(seq)
		}
	}
	return l
}

// seen returns the connections (by index) that received seq, and how many ACKs the
// server sent for it.
func (s *fakeServer) seen(seq uint64) (on []int, acks int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.recv[seq]), s.acked[seq]
}

// checkOnceEach asserts that each of seqs reached the server once and was acked once.
func (s *fakeServer) checkOnceEach(t testing.TB, seqs []uint64) {
	t.Helper()
	for _, seq := range seqs {
		on, acks := s.seen(seq)
		if len(on) != 1 {
			t.Errorf("seq %d received %d times", seq, len(on))
		}
		if acks != 1 {
			t.Errorf("seq %d acked %d times", seq, acks)
		}
	}
}
