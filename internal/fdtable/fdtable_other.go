//go:build !linux

package fdtable

func grow(int) (int, Result) { return -1, Result{Err: errUnsupported} }

func closeFD(int) error { return nil }
