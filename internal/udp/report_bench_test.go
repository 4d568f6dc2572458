package udp

import (
	"net"
	"net/netip"
	"testing"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/auth"
	"github.com/hawk-agents/hawk/internal/dedup"
	"github.com/hawk-agents/hawk/internal/ingest"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// syncDest commits each batch inside Submit and keeps nothing.
type syncDest struct{}

func (syncDest) Submit(b *ingest.Batch, w ingest.Waiter) { w.Committed(b.Seqs(), nil) }

// nopObserver counts nothing.
type nopObserver struct{}

func (nopObserver) Read(int)       {}
func (nopObserver) Refused(string) {}
func (nopObserver) Unparsed()      {}
func (nopObserver) Stored(int)     {}
func (nopObserver) Replied()       {}

// BenchmarkReportDatagram is the cost per report datagram, from the datagram read
// to its ACK sent: decode, credential, dedup window, record, and the submitter's
// commit and ACK (run here every 8 datagrams; the ACKs go to a socket nobody reads).
// A new seq each time (stored), and every 8th a retransmit of one already durable.
//
//	go test -run x -bench ReportDatagram -benchmem ./internal/udp/
func BenchmarkReportDatagram(b *testing.B) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	from := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	table, err := dedup.New(dedup.Options{Window: dedup.DefaultWindow, MaxClients: 100})
	if err != nil {
		b.Fatal(err)
	}
	table.SetReady()
	const token = "k3HfW0qPzR8vYt2LmN5bXc7dEa9sUj4gQo1iKw6yTrE" // 43 characters, as base64 of 32 random bytes
	set := auth.MustSet("fleet " + token + " agent-*")
	l := New(Options{Name: "u", Format: FormatReport, Conn: conn, MaxDatagram: 512,
		Settings:    &Settings{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, MaxPending: 1 << 30},
		Destination: syncDest{}, Observer: nopObserver{}, Logger: zap.NewNop(),
		Credentials: func() (*auth.Set, bool) { return set, false }, Dedup: table})
	defer l.Stop()
	const id = "agent-0a1b2c3d4e5f60718293a4b5c6d7e8f9" // longer than 32 bytes
	var d []byte
	stored := uint64(0)
	b.ReportAllocs()
	for i := uint64(1); b.Loop(); i++ {
		var seq uint64
		if i%8 == 0 && stored > 8 {
			seq = stored - 8 // flushed: durable
		} else {
			stored++
			seq = stored
		}
		d = protocol.AppendDatagram(d[:0], id, token, seq, []byte(`{"cpu":0.5,"mem":1234}`))
		l.handle(d, from)
		if i%8 == 0 {
			l.flush() // the submitter's part, in this goroutine
		}
	}
}
