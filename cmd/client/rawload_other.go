//go:build !unix

package main

func (c *rawConn) readLoop() { c.readLoopPortable() }
