package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// Query sends one request to the control socket at path and reads the reply.
func Query(path, cmd string, timeout time.Duration) (*Reply, error) {
	rep, nc, err := QueryConn(path, cmd, timeout)
	if nc != nil {
		nc.Close()
	}
	return rep, err
}

// QueryConn is Query leaving the connection open (nil on error), for hawk upgrade
// to wait on.
func QueryConn(path, cmd string, timeout time.Duration) (*Reply, net.Conn, error) {
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
	req, _ := json.Marshal(Request{Cmd: cmd})
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
	var rep Reply
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
