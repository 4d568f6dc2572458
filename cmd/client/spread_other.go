//go:build !linux

package main

import "syscall"

// bindNoPort has nothing to set outside Linux (IP_BIND_ADDRESS_NO_PORT is Linux-only).
func bindNoPort(network, address string, c syscall.RawConn) error { return nil }
