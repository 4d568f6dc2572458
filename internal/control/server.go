package control

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/accept"
)

// readTimeout bounds the wait for a request line: a peer that sends nothing is
// not waited for long. The reply may take an upgrade's time (upgrade.timeout).
const readTimeout = 5 * time.Second

// Server serves the control socket until Close.
type Server struct {
	ln    net.Listener
	h     Handler
	log   *zap.Logger
	done  chan struct{}  // closed when the accept loop has returned
	conns sync.WaitGroup // requests being answered; the process waits for them before exit
}

// Serve answers requests on ln with h, on a goroutine of its own. An accept error
// is retried like every listener's (internal/accept): the socket stays answered.
func Serve(ln net.Listener, h Handler, log *zap.Logger) *Server {
	s := &Server{ln: ln, h: h, log: log, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		accept.Loop(ln, log, func(nc net.Conn) { s.conns.Go(func() { s.serve(nc) }) }, zap.String("listener", "control"))
	}()
	return s
}

// Close stops accepting: a successor (if any) answers from now on. Safe on nil.
func (s *Server) Close() {
	if s != nil {
		s.ln.Close()
		<-s.done
	}
}

// Wait waits for the requests being answered, at most d: an upgrade's verdict
// must reach its command before this process exits. Safe on nil.
func (s *Server) Wait(d time.Duration) {
	if s == nil {
		return
	}
	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

func (s *Server) serve(nc net.Conn) {
	keep := false
	defer func() {
		if !keep {
			nc.Close()
		}
	}()
	nc.SetReadDeadline(time.Now().Add(readTimeout))
	line, err := bufio.NewReaderSize(nc, 512).ReadSlice('\n')
	if err != nil {
		return
	}
	nc.SetReadDeadline(time.Time{})
	var req Request
	var rep Reply
	if err := json.Unmarshal(line, &req); err != nil {
		rep = Reply{Message: "bad request: " + err.Error()}
	} else {
		s.log.Info("control request", zap.String("cmd", req.Cmd))
		switch req.Cmd {
		case "status":
			st := s.h.Status()
			rep = Reply{OK: true, Message: "ok", Status: &st}
		case "reload":
			rep = s.h.Reload()
		case "upgrade":
			rep = s.h.Upgrade()
		default:
			rep = Reply{Message: fmt.Sprintf("unknown command %q (upgrade, reload, status)", req.Cmd)}
		}
	}
	out, _ := json.Marshal(rep)
	nc.Write(append(out, '\n'))
	// After a successful upgrade the connection stays open until this process
	// exits (the kernel closes it): hawk upgrade waits for that, so that systemd,
	// which re-reads PIDFile= when ExecReload= ends, reads it only once this
	// process has written the new pid into it and exited (internal/pidfile).
	keep = rep.Upgrade != nil
}
