//go:build !linux

package spool

// dropPageCache is nil where the spool cannot tell the kernel to drop a file's pages:
// the page cache is left to the kernel.
var dropPageCache func(name string) error
