// Package sdnotify speaks systemd's notify protocol (sd_notify(3)) to the socket
// NOTIFY_SOCKET names.
//
// A notification is one datagram of newline-separated VAR=value assignments to that
// unix socket.
//
// It is spoken directly rather than through coreos/go-systemd: the protocol is one
// datagram, and hawk needs the variable left in the environment (so that the
// process an upgrade execs reports MAINPID= and READY=1 itself) and a send error
// told apart from "not under systemd": a few dozen lines, no dependency.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Socket is where notifications go; the zero value (no NOTIFY_SOCKET) sends nothing.
type Socket struct {
	addr *net.UnixAddr
}

// FromEnv returns the socket NOTIFY_SOCKET names. The variable is left in the
// environment on purpose: a process started by an upgrade inherits it.
func FromEnv() Socket {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return Socket{}
	}
	// "@name" is an abstract socket: a leading NUL on the wire.
	if name[0] == '@' {
		name = "\x00" + name[1:]
	}
	return Socket{addr: &net.UnixAddr{Name: name, Net: "unixgram"}}
}

// Enabled reports whether the process runs under a service manager that listens.
func (s Socket) Enabled() bool { return s.addr != nil }

// Send sends one notification: the assignments are joined by newlines, so that
// they are applied together (MAINPID= with READY=1). Without a socket it does
// nothing and returns nil.
func (s Socket) Send(assignments ...string) error {
	if s.addr == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, s.addr)
	if err != nil {
		return fmt.Errorf("sdnotify: dial %s: %w", s.addr.Name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(strings.Join(assignments, "\n") + "\n")); err != nil {
		return fmt.Errorf("sdnotify: send to %s: %w", s.addr.Name, err)
	}
	return nil
}

// The assignments hawk sends.
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
)

// MainPID names the service's main process (the new one, after an upgrade).
func MainPID(pid int) string { return "MAINPID=" + strconv.Itoa(pid) }

// Status is the one-line text systemctl status shows. A newline would end the
// assignment early, so it is replaced.
func Status(text string) string { return "STATUS=" + strings.ReplaceAll(text, "\n", " ") }

// ExtendTimeout asks for d more than now before the current start or stop timeout
// fires (systemd 236+).
func ExtendTimeout(d time.Duration) string {
	return "EXTEND_TIMEOUT_USEC=" + strconv.FormatInt(d.Microseconds(), 10)
}
