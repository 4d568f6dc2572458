// Package testutil holds the helpers every test package shares: waits with a
// deadline, a protocol peer, certificates.
//
// A test waits on a condition with a deadline (Eventually), never sleep-and-hope.
package testutil

import (
	"testing"
	"time"
)

// Eventually polls cond until it is true or timeout passes, then fails the test
// with msg. Polling is the right tool for state owned by another process or
// goroutine that offers no channel to wait on.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for d := time.Millisecond; ; d = min(2*d, 50*time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: "+msg, append([]any{timeout}, args...)...)
		}
		time.Sleep(d)
	}
}
