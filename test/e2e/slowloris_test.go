package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// A slowloris agent starts a max-size frame after the handshake and then sends one
// byte at a time. Every byte counts as liveness, so the heartbeat timeout never
// fires; limits.frame_timeout bounds the frame: ERROR frame_timeout, never before
// the timeout, and within it plus the reaper's granularity (a quarter of the
// shortest timeout, at most 1s).
func TestSlowlorisDripGetsFrameTimeout(t *testing.T) {
	const frameTimeout = time.Second // the test config's heartbeat timeout is 3s
	s := startServer(t, bin.serverV1, fmt.Sprintf("-limits.frame_timeout=%s", frameTimeout))
	p := testutil.Dial(t, s.addr())
	w := p.Hello("slowloris", "")
	frame := protocol.AppendFrame(nil, protocol.TypeReport, 1, make([]byte, w.MaxFrameSize))

	start := time.Now()
	p.Write(frame[:protocol.HeaderSize+1])
	stop := make(chan struct{})
	dripped := make(chan struct{})
	go func() {
		defer close(dripped)
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for i := protocol.HeaderSize + 1; i < len(frame)-1; i++ {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			if _, err := p.Conn.Write(frame[i : i+1]); err != nil {
				return // closed by the server
			}
		}
	}()
	e := p.ExpectError(protocol.CodeFrameTimeout)
	took := time.Since(start)
	close(stop)
	<-dripped

	if took < frameTimeout {
		t.Errorf("ERROR frame_timeout %s after the frame started, before limits.frame_timeout (%s)", took, frameTimeout)
	}
	if limit := frameTimeout + time.Second + 2*time.Second; took > limit { // granularity, plus slack for a busy machine
		t.Errorf("ERROR frame_timeout only %s after the frame started, want within %s", took, limit)
	}
	want := fmt.Sprintf("of %d bytes (limits.frame_timeout is %s)", len(frame), frameTimeout)
	if !strings.HasPrefix(e.Message, "frame started ") || !strings.Contains(e.Message, want) {
		t.Errorf("message %q, want it to name the frame's size and the timeout: %q", e.Message, want)
	}
	s.waitLog(5*time.Second, func(l logLine) bool {
		return l.str("msg") == "connection closed" && l.str("client_id") == "slowloris" &&
			l.str("reason") == "frame_timeout" && l.str("code") == string(protocol.CodeFrameTimeout)
	})
}
