//go:build !unix

package client

// readRaw is unix only (rawWriter is nil elsewhere, and readLoop never calls it).
func (s *session) readRaw() error { return s.readConn() }

func (s *session) serveRaw(uintptr) bool { return true }
