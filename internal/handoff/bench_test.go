package handoff

import (
	"net"
	"os"
	"testing"
	"time"
)

// The receiving side's cost per connection: a batch of established TCP sockets
// posted, each received, made a net.Conn as an adopter does (State.Open) and
// closed (the sockets themselves stay open: the sender holds them), then
// acknowledged. Run it with -benchtime and compare per_conn_ns.
func BenchmarkReceiveTCPBatch(b *testing.B) { benchReceive(b, 1) }

// The same with 3 batches posted and not yet acknowledged, as the releases
// before the driver's window of one send them: the receiver's reading of the
// next batch can overlap its adoption of this one.
func BenchmarkReceiveTCPWindow(b *testing.B) { benchReceive(b, 3) }

func benchReceive(b *testing.B, inFlight int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var fds []int
	var states [][]byte
	for range batchSize {
		_, fd := tcpConn(b, ln)
		fds = append(fds, fd)
		msg, _ := sampleState().Encode()
		states = append(states, msg)
	}
	p, child := channelPair(b)
	done := make(chan error, 1)
	go func() {
		defer child.Close()
		done <- child.Receive(func(f *os.File, st *State, err error) {
			if err != nil {
				b.Error(err)
				f.Close()
				return
			}
			nc, err := st.Open(f)
			if err != nil {
				b.Error(err)
				return
			}
			nc.Close()
		})
	}()
	b.ResetTimer()
	start := time.Now()
	acked := make(chan error, b.N)
	go func() {
		for range b.N {
			acked <- p.Parent.Ack()
		}
	}()
	posted, nacked := 0, 0
	for nacked < b.N {
		if posted < b.N && posted-nacked < inFlight {
			if err := p.Parent.Post(fds, states); err != nil {
				b.Fatal(err)
			}
			posted++
			continue
		}
		if err := <-acked; err != nil {
			b.Fatal(err)
		}
		nacked++
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*batchSize), "per_conn_ns")
	b.StopTimer()
	p.Parent.Done(nil)
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
