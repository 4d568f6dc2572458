//go:build unix

package main

import (
	"io"
	"os"
	"syscall"
)

// readLoop reads inside one RawRead, as the client library's reader does
// (client/rawread_unix.go): after a read that did not fill the buffer the socket
// was empty, so it waits for the next bytes without the read that would only say
// EAGAIN. The reference's load tool pays that read; on a connection waiting for
// each commit (fsync always) it is one read in two.
func (c *rawConn) readLoop() {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		c.readLoopPortable()
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		c.end(err)
		return
	}
	if err := rc.Read(c.serve); err != nil {
		c.end(err) // the drain's deadline, or the socket closed
	}
}

// serve is readLoop's callback: it reads and answers until the socket is empty
// (false: wait until it is readable) or the connection is done (true).
func (c *rawConn) serve(fd uintptr) bool {
	for {
		c.makeRoom()
		space := len(c.rbuf) - c.rlen
		n, err := syscall.Read(int(fd), c.rbuf[c.rlen:])
		switch {
		case err == syscall.EAGAIN:
			return false
		case err == syscall.EINTR:
			continue
		case err != nil:
			c.end(os.NewSyscallError("read", err))
			return true
		case n == 0:
			c.end(io.EOF)
			return true
		}
		c.rlen += n
		c.handle()
		if c.ended != nil || c.inflight == 0 {
			return true
		}
		if n < space {
			return false
		}
	}
}
