// Package accept is the accept loop every listener of hawk runs: native and legacy.
package accept

import (
	"errors"
	"net"
	"time"

	"go.uber.org/zap"
)

// Loop accepts connections on ln and hands each to handle, until ln is closed; then
// it returns nil. An accept error other than a closed listener (out of file
// descriptors and the like) is logged with fields and retried after a backoff that
// doubles from 5 ms to 1 s, as net/http does, rather than spinning: the connections
// already served keep being served meanwhile.
func Loop(ln net.Listener, log *zap.Logger, handle func(net.Conn), fields ...zap.Field) error {
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			log.Error("accept failed", append(fields, zap.Error(err), zap.Duration("retry_in", backoff))...)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		handle(nc)
	}
}
