package conn

import (
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/mono"
)

// BenchmarkReap is one reaper pass over 15,000 live connections that are all within
// their deadlines (the common case: nothing to close). The reaper makes at most one
// pass a second, so ns/op ÷ 1e9 is the fraction of a core it costs.
//
//	go test -run - -bench Reap ./internal/conn/
func BenchmarkReap(b *testing.B) {
	s := testSettings()
	s.HeartbeatTimeout = time.Hour
	s.HandshakeTimeout = time.Hour
	s.WriteTimeout = time.Hour
	m := New(Options{Settings: s})
	defer m.Close() // stops the reaper; goleak checks
	const n = 15000
	for i := range n {
		c := &Conn{id: uint64(i + 1), m: m, accepted: mono.Now(), done: make(chan struct{})}
		c.state.Store(stateActive)
		c.lastSeen.Store(mono.Now())
		m.reg.Add(c)
	}
	var buf []*Conn
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		buf = m.reap(buf)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e9*100, "%core@1pass/s")
}
