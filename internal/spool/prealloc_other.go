//go:build !linux

package spool

// allocateAhead is nil where the spool has no way to allocate a file's blocks
// without changing its size: segments are written without preallocation.
var allocateAhead func(f File, off, n int64) error
