//go:build !unix

package client

import "net"

// rawWriter is unix only: elsewhere every write is the writer goroutine's.
type rawWriter struct{}

func newRawWriter(net.Conn) *rawWriter { return nil }

func (*rawWriter) writeNow([]byte) (int, error) { return 0, nil }
