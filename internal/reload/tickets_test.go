package reload

import (
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/metrics"
	"github.com/hawk-agents/hawk/internal/ticketkeys"
)

// rotate keeps a key until it has encrypted for the period, counted from when it
// started (passed by an upgrade's parent, say), then puts a new one first.
func TestTicketsRotateOnSchedule(t *testing.T) {
	now := time.Now()
	first := ticketkeys.NewKey()
	for _, tc := range []struct {
		name    string
		rotated time.Time
		keys    int
		next    time.Duration
	}{
		{"half way", now.Add(-30 * time.Minute), 1, 30 * time.Minute},
		{"due", now.Add(-time.Hour), 2, time.Hour},
		{"overdue", now.Add(-5 * time.Hour), 2, time.Hour},
		{"in the future", now.Add(3 * time.Hour), 2, time.Hour},
	} {
		tk := &tickets{rotation: time.Hour, previous: 1, met: metrics.New("test", func() int { return 0 }), log: zap.NewNop()}
		tk.ring = ticketkeys.NewRing([]ticketkeys.Key{first}, tc.rotated, func([]ticketkeys.Key) {})
		next := tk.rotate(now)
		keys, _ := tk.ring.Keys()
		if len(keys) != tc.keys || keys[len(keys)-1] != first || next != tc.next {
			t.Errorf("%s: %d keys, the last first %v, next in %v; want %d keys, next in %v",
				tc.name, len(keys), keys[len(keys)-1] == first, next, tc.keys, tc.next)
		}
	}
}
