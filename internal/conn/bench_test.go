package conn

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/client"
	"github.com/hawk-agents/hawk/internal/spool"
)

// BenchmarkEndToEnd pushes reports through a real Manager and a real spool (fsync off,
// then on) on loopback, from client library connections each keeping 8 reports in
// flight: the hot path of the whole server in one process.
//
//	go test -run - -bench EndToEnd -benchtime 200000x ./internal/conn/
func BenchmarkEndToEnd(b *testing.B) {
	for _, fsync := range []bool{false, true} {
		b.Run(fmt.Sprintf("fsync=%v", fsync), func(b *testing.B) { benchEndToEnd(b, 64, 8, 256, fsync, false) })
	}
}

// BenchmarkEndToEndAcks is BenchmarkEndToEnd at 100 connections x 32 in flight x
// 128 B (fsync off) with one ACK per report against range acknowledgements. cpu-us/report
// is the whole process's (server and clients) user+system time per report.
//
//	go test -run - -bench EndToEndAcks -benchtime 300000x -count 5 ./internal/conn/
func BenchmarkEndToEndAcks(b *testing.B) {
	for _, perReport := range []bool{true, false} {
		name := map[bool]string{true: "ack=per-report", false: "ack=range"}[perReport]
		b.Run(name, func(b *testing.B) { benchEndToEnd(b, 100, 32, 128, false, perReport) })
	}
}

func benchEndToEnd(b *testing.B, conns, window, size int, fsync, perReportAcks bool) {
	sp, err := spool.Open(spool.Options{Dir: b.TempDir(), Fsync: fsync, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := testSettings()
	s.MaxConns = conns + 10
	m := New(Options{Settings: s, Destination: sp, Dedup: benchDedup(b)})
	served := make(chan struct{})
	go func() { defer close(served); m.Serve(ln) }()
	defer func() {
		ln.Close()
		<-served
		closeAll(m, "benchmark over")
		m.Close()
	}()

	ctx := context.Background()
	clients := make([]*client.Client, conns)
	for i := range clients {
		c, err := client.Dial(ctx, client.Options{Addr: ln.Addr().String(), ClientID: fmt.Sprintf("bench-%d", i), MaxInFlight: window, PerReportAcks: perReportAcks})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
	}
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	var left atomic.Int64
	left.Store(int64(b.N))
	b.SetBytes(int64(size))
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	var wg sync.WaitGroup
	for _, c := range clients {
		for range window {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for left.Add(-1) >= 0 {
					if _, err := c.Report(ctx, payload); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reports/s")
	b.ReportMetric(float64(processCPU()-cpu0)/1e3/float64(b.N), "cpu-us/report")
}

// processCPU is the process's user+system CPU time so far, in nanoseconds.
func processCPU() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
