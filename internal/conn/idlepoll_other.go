//go:build !linux

package conn

import "errors"

// idlePoller is Linux's (idlepoll_linux.go): elsewhere an idle connection's reader
// waits on a fresh goroutine (serveIdlePlain).
type idlePoller struct{}

func newIdlePoller() (*idlePoller, error) { return nil, errors.New("idle poller: Linux only") }

func (p *idlePoller) park(c *Conn) bool      { return false }
func (p *idlePoller) unpark(id uint64) *Conn { return nil }
func (p *idlePoller) parked() int            { return 0 }
func (p *idlePoller) Close()                 {}
