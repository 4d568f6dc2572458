package client

import (
	"sync"
	"testing"

	"github.com/hawk-agents/hawk/internal/protocol"
)

// batchOwner is a sessionOwner that tells the benchmark when a read's events
// are handled.
type batchOwner struct {
	handled chan int
	ended   chan struct{}
}

func (o *batchOwner) sessionEvents(_ *session, evs []sessionEvent) { o.handled <- len(evs) }
func (o *batchOwner) sessionEnded(*session)                        { close(o.ended) }

// BenchmarkSessionRead is the reader's work per ACK over a loopback socket: the
// server's side writes 8 ACK frames at a time, the next 8 once the session has
// handled them (as the server acks a window of 8 reports), and the session reads,
// decodes and hands them on. One op is one ACK; the read path allocates nothing.
func BenchmarkSessionRead(b *testing.B) {
	const perWrite = 8
	cli, srv := tcpPair(b)
	owner := &batchOwner{handled: make(chan int, 1), ended: make(chan struct{})}
	var wg sync.WaitGroup
	s := newSession(owner, &wg, cli)
	wg.Add(1)
	go s.readLoop()
	var batch []byte
	for i := range perWrite {
		batch = protocol.AppendFrame(batch, protocol.TypeAck, uint64(i+1), nil)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; {
		if _, err := srv.Write(batch); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < perWrite; {
			got += <-owner.handled
		}
		n += perWrite
	}
	b.StopTimer()
	s.fail(ErrClosed)
	<-owner.ended
	wg.Wait()
}
