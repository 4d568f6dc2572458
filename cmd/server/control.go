package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

// The control socket (control.socket) is how hawk upgrade, hawk reload and hawk
// status reach the running server: one JSON request line, one JSON reply line. It
// is a listener from the upgrader like the others, so after an upgrade the new
// process answers on the same path.

// controlRequest is what a command sends.
type controlRequest struct {
	Cmd string `json:"cmd"` // upgrade, reload, status
}

// controlReply is what the server answers: OK and one line for a person, and the
// facts behind it.
type controlReply struct {
	OK      bool          `json:"ok"`
	Message string        `json:"message"`
	Status  *statusReply  `json:"status,omitempty"`
	Upgrade *upgradeReply `json:"upgrade,omitempty"`
	Changes []string      `json:"changes,omitempty"` // reload: "key: old -> new"
}

// statusReply is hawk status.
type statusReply struct {
	PID         int    `json:"pid"`
	Version     string `json:"version"`
	Generation  int    `json:"generation"`
	Ready       bool   `json:"ready"`
	NotReady    string `json:"not_ready,omitempty"`
	Connections int    `json:"connections"`
	LastUpgrade string `json:"last_upgrade,omitempty"`
	LastReload  string `json:"last_reload,omitempty"`
}

// upgradeReply names the process that took over.
type upgradeReply struct {
	PreviousPID int    `json:"previous_pid"` // the process that upgraded, now draining
	PID         int    `json:"pid"`
	Version     string `json:"version"`
	Generation  int    `json:"generation"`
}

// controlServer serves the control socket until its listener is closed.
type controlServer struct {
	ln    net.Listener
	conns sync.WaitGroup // requests being answered; the process waits for them before exit
}

func (s *server) startControl(ln net.Listener) {
	c := &controlServer{ln: ln}
	s.control = c
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					s.log.Error("control socket: accept failed; hawk upgrade/reload/status will not be answered", zap.Error(err))
				}
				return
			}
			c.conns.Go(func() { s.serveControl(nc) })
		}
	}()
}

// closeListener stops accepting: a successor (if any) answers from now on.
func (c *controlServer) closeListener() {
	if c != nil {
		c.ln.Close()
	}
}

// wait waits for the requests being answered, at most d: an upgrade's verdict
// must reach its command before this process exits.
func (c *controlServer) wait(d time.Duration) {
	if c == nil {
		return
	}
	done := make(chan struct{})
	go func() { c.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

func (s *server) serveControl(nc net.Conn) {
	keep := false
	defer func() {
		if !keep {
			nc.Close()
		}
	}()
	// A request is one short line; a peer that sends nothing is not waited for
	// long. The reply may take an upgrade's time (bounded by upgrade.timeout).
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReaderSize(nc, 512).ReadSlice('\n')
	if err != nil {
		return
	}
	nc.SetReadDeadline(time.Time{})
	var req controlRequest
	var rep controlReply
	if err := json.Unmarshal(line, &req); err != nil {
		rep = controlReply{Message: "bad request: " + err.Error()}
	} else {
		s.log.Info("control request", zap.String("cmd", req.Cmd))
		switch req.Cmd {
		case "status":
			st := s.status()
			rep = controlReply{OK: true, Message: "ok", Status: &st}
		case "reload":
			rep = s.controlReload()
		case "upgrade":
			rep = s.controlUpgrade()
		default:
			rep = controlReply{Message: fmt.Sprintf("unknown command %q (upgrade, reload, status)", req.Cmd)}
		}
	}
	out, _ := json.Marshal(rep)
	nc.Write(append(out, '\n'))
	// After a successful upgrade the connection stays open until this process
	// exits (the kernel closes it): hawk upgrade waits for that, so that systemd,
	// which re-reads PIDFile= when ExecReload= ends, reads it only once this
	// process has written the new pid into it and exited (pidfile.go).
	keep = rep.Upgrade != nil
}

func (s *server) status() statusReply {
	ready, why := s.ready.Ready()
	st := statusReply{PID: os.Getpid(), Version: version, Generation: s.generation, Ready: ready, NotReady: why,
		Connections: s.conns.Count()}
	if p := s.lastUpgrade.Load(); p != nil {
		st.LastUpgrade = *p
	}
	if p := s.lastReload.Load(); p != nil {
		st.LastReload = *p
	}
	return st
}

func (s *server) controlReload() controlReply {
	res := s.reload("hawk reload")
	rep := controlReply{OK: res.err == nil, Message: res.summary(), Changes: res.changes}
	return rep
}

// controlUpgrade runs an upgrade as SIGHUP does and waits for its verdict. On
// success the verdict names the new process, which this one asks over the same
// socket once it has closed its own copy of the listener (only the successor
// accepts then).
func (s *server) controlUpgrade() controlReply {
	reply := make(chan error, 1)
	select {
	case s.upgrades <- upgradeRequest{trigger: "hawk upgrade", reply: reply}:
	case <-s.servingDone:
		return controlReply{Message: "upgrade refused: " + errDraining.Error()}
	}
	err := <-reply
	if err != nil {
		return controlReply{Message: upgradeVerdict(err)}
	}
	select {
	case <-s.servingDone:
	case <-time.After(10 * time.Second):
	}
	child, qerr := queryControl(s.cfg.Load().Control.Socket, "status", 5*time.Second)
	if qerr != nil || child.Status == nil {
		msg := fmt.Sprintf("upgrade succeeded: new generation %d (the new process did not answer status: %v)", s.generation+1, qerr)
		return controlReply{OK: true, Message: msg}
	}
	c := child.Status
	msg := fmt.Sprintf("upgrade succeeded: new pid %d, version %s, generation %d", c.PID, c.Version, c.Generation)
	s.log.Info(msg)
	return controlReply{OK: true, Message: msg, Upgrade: &upgradeReply{PreviousPID: os.Getpid(), PID: c.PID, Version: c.Version, Generation: c.Generation}}
}

// queryControl sends one request to the control socket at path and reads the reply.
func queryControl(path, cmd string, timeout time.Duration) (*controlReply, error) {
	rep, nc, err := queryControlConn(path, cmd, timeout)
	if nc != nil {
		nc.Close()
	}
	return rep, err
}

// queryControlConn is queryControl leaving the connection open (nil on error), for
// hawk upgrade to wait on.
func queryControlConn(path, cmd string, timeout time.Duration) (*controlReply, net.Conn, error) {
	if path == "" {
		return nil, nil, errors.New("no control socket: set control.socket in the configuration (or -socket)")
	}
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, nil, fmt.Errorf("control socket %s: %w (is hawk running, and may this user connect?)", path, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	req, _ := json.Marshal(controlRequest{Cmd: cmd})
	if _, err := nc.Write(append(req, '\n')); err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("control socket %s: send: %w", path, err)
	}
	// One byte at a time: nothing past the reply's newline may be consumed, the
	// caller may read on (hawk upgrade waits for EOF).
	line, err := readLine(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("control socket %s: no answer (the server may have exited): %w", path, err)
	}
	var rep controlReply
	if err := json.Unmarshal(line, &rep); err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("control socket %s: bad answer: %w", path, err)
	}
	return &rep, nc, nil
}

func readLine(r io.Reader) ([]byte, error) {
	var line []byte
	b := make([]byte, 1)
	for {
		if _, err := r.Read(b); err != nil {
			return nil, err
		}
		if b[0] == '\n' {
			return line, nil
		}
		line = append(line, b[0])
		if len(line) > 1<<20 {
			return nil, errors.New("reply too long")
		}
	}
}
