// Package mono is a process-local monotonic clock as an int64, for deadlines kept in
// atomics.
//
// A wall-clock step (NTP, a VM resumed) must never expire a healthy connection or a
// backoff, and an int64 fits in an atomic where a time.Time does not.
package mono

import "time"

// epoch anchors the clock; time.Since uses the monotonic reading it carries.
var epoch = time.Now()

// Now is nanoseconds since the process started, monotonic.
func Now() int64 { return int64(time.Since(epoch)) }

// Time converts a reading of Now to wall-clock time, for display.
func Time(t int64) time.Time { return epoch.Add(time.Duration(t)) }
