package tlsrecord

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
)

// memConn is a handshake's connection that, once switched, reads from and writes
// to memory: what a benchmark measures is then the record layer's work, not
// the socket's.
type memConn struct {
	net.Conn
	mem atomic.Bool
	in  bytes.Buffer // read once switched
	out io.Writer    // written once switched
}

func (c *memConn) Read(p []byte) (int, error) {
	if c.mem.Load() {
		return c.in.Read(p)
	}
	return c.Conn.Read(p)
}

func (c *memConn) Write(p []byte) (int, error) {
	if c.mem.Load() {
		return c.out.Write(p)
	}
	return c.Conn.Write(p)
}

// BenchmarkServerReport is the server's record work for one report: open the
// record of a 276-byte REPORT frame (256 bytes of payload) a crypto/tls client
// sealed, and seal and write the 20-byte ACK, in this package's Conn and in
// crypto/tls's (the session they both carry: TLS_AES_128_GCM_SHA256).
func BenchmarkServerReport(b *testing.B) {
	report := make([]byte, 276)
	ack := make([]byte, 20)
	for _, impl := range []string{"tlsrecord", "crypto-tls"} {
		b.Run(impl, func(b *testing.B) {
			a, z := tcpPair(b)
			sc, cc := &memConn{Conn: a, out: io.Discard}, &memConn{Conn: z}
			ctc, stc, tr := handshake(b, sc, cc, tlsCase{noTickets: true})
			var srv io.ReadWriter = stc
			if impl == "tlsrecord" {
				st, err := Switch(stc, tr)
				if err != nil {
					b.Fatal(err)
				}
				rc, err := New(sc, st)
				if err != nil {
					b.Fatal(err)
				}
				srv = rc
			} else {
				tr.Passthrough()
			}
			sc.mem.Store(true)
			cc.out = &sc.in
			cc.mem.Store(true)
			buf := make([]byte, len(report))
			const batch = 1024
			b.SetBytes(int64(len(report)))
			b.ReportAllocs()
			b.ResetTimer()
			var cpu int64 // this process's CPU time in the timed parts: a shared machine's wall time is noise
			for done := 0; done < b.N; done += batch {
				b.StopTimer()
				n := min(batch, b.N-done)
				for range n {
					ctc.Write(report) // one record each
				}
				b.StartTimer()
				cpu -= cpuNanos()
				for range n {
					if _, err := io.ReadFull(srv, buf); err != nil {
						b.Fatal(err)
					}
					if _, err := srv.Write(ack); err != nil {
						b.Fatal(err)
					}
				}
				cpu += cpuNanos()
			}
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuNanos is the CPU time (user and system) this process has used.
func cpuNanos() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkAEADRebuild is what a resting half pays at its next record: building
// its AEAD again from the key (Rest, rest.go).
func BenchmarkAEADRebuild(b *testing.B) {
	for _, id := range allSuites {
		b.Run(tlsSuiteName(id), func(b *testing.B) {
			st, _ := states(b, id)
			var h half
			s, _ := suiteByID(id)
			if err := h.set(s, st.InSecret, 0); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				h.rest()
				if _, err := h.cipher(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
