package tlsconf

import (
	"crypto/tls"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/ticketkeys"
)

// ticketServer is a Reloader over fresh files, its ticket keys in a ring.
func ticketServer(t testing.TB, ca *testutil.CA, mtls bool, version uint16) (*Reloader, *ticketkeys.Ring) {
	t.Helper()
	dir := t.TempDir()
	leaf := ca.ServerLeaf(t)
	f := Files{
		CertFile:   testutil.WriteFile(t, dir, "s.crt", leaf.CertPEM),
		KeyFile:    testutil.WriteFile(t, dir, "s.key", leaf.KeyPEM),
		MinVersion: version,
	}
	if mtls {
		f.ClientCAFile = testutil.WriteFile(t, dir, "ca.pem", ca.PEM)
		f.ClientAuth = AuthRequired
	}
	r, err := New(f)
	if err != nil {
		t.Fatal(err)
	}
	ring := ticketkeys.NewRing([]ticketkeys.Key{ticketkeys.NewKey()}, time.Now(), func(k []ticketkeys.Key) { r.SetTicketKeys(k) })
	return r, ring
}

func ticketClient(t testing.TB, ca *testutil.CA, mtls bool, version uint16) *tls.Config {
	c := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: version, MaxVersion: version,
		ClientSessionCache: tls.NewLRUClientSessionCache(1)}
	if mtls {
		c.Certificates = []tls.Certificate{ca.Issue(t, testutil.CertOpts{CN: "agent-1", Client: true}).TLS}
	}
	return c
}

// handshake connects cc to a server on srv's configuration, as the listener would
// (a configuration per connection, the material from GetConfigForClient), and
// reads one byte after it, so that a TLS 1.3 client takes its ticket. It returns
// whether the session resumed and the CPU time the server's thread spent.
func handshake(t testing.TB, srv *tls.Config, cc *tls.Config) (bool, time.Duration) {
	t.Helper()
	a, b := connPair(t)
	type result struct {
		cpu time.Duration
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		before := threadCPU()
		s := tls.Server(a, srv.Clone())
		err := s.Handshake()
		cpu := threadCPU() - before
		if err == nil {
			_, err = s.Write([]byte{1})
		}
		a.Close()
		done <- result{cpu, err}
	}()
	c := tls.Client(b, cc)
	err := c.Handshake()
	if err == nil {
		var one [1]byte
		_, err = c.Read(one[:])
	}
	b.Close()
	r := <-done
	if err != nil || r.err != nil {
		t.Fatalf("client %v, server %v", err, r.err)
	}
	return c.ConnectionState().DidResume, r.cpu
}

// connPair is a connected pair of sockets: buffered, unlike net.Pipe, on which
// both ends of a handshake writing at once would block each other.
func connPair(t testing.TB) (net.Conn, net.Conn) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var c [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "pair")
		c[i], err = net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return c[0], c[1]
}

func threadCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(1, &ru) // RUSAGE_THREAD
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestTicketRotation: a ticket resumes while its key is in force or among the
// previous ones, through one rotation, and no longer once that key is gone.
func TestTicketRotation(t *testing.T) {
	ca := testutil.NewCA(t, "ca")
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, mtls := range []bool{false, true} {
			r, ring := ticketServer(t, ca, mtls, tls.VersionTLS12)
			srv := r.Config()
			kept, dropped := ticketClient(t, ca, mtls, v), ticketClient(t, ca, mtls, v)
			for _, c := range []*tls.Config{kept, dropped} {
				if resumed, _ := handshake(t, srv, c); resumed {
					t.Fatal("a first handshake resumed")
				}
			}
			if resumed, _ := handshake(t, srv, kept); !resumed {
				t.Fatalf("version %x mtls %v: no resumption with the key in force", v, mtls)
			}
			ring.Rotate(time.Now(), 1)
			// kept's ticket, from before the rotation, decrypts with the previous key.
			if resumed, _ := handshake(t, srv, kept); !resumed {
				t.Fatalf("version %x mtls %v: a ticket of the previous key did not resume", v, mtls)
			}
			ring.Rotate(time.Now(), 1)
			if resumed, _ := handshake(t, srv, dropped); resumed {
				t.Fatalf("version %x mtls %v: a ticket of a key rotated out resumed", v, mtls)
			}
			// kept resumed after the first rotation: its ticket is of the previous key.
			if resumed, _ := handshake(t, srv, kept); !resumed {
				t.Fatalf("version %x mtls %v: a ticket of the previous key did not resume", v, mtls)
			}
		}
	}
}

// TestTicketKeysSurviveReload: material loaded by a reload keeps the ticket keys,
// and two Reloaders given the same keys (two instances sharing a keys file)
// resume each other's tickets.
func TestTicketKeysSurviveReload(t *testing.T) {
	ca := testutil.NewCA(t, "ca")
	a, ringA := ticketServer(t, ca, false, tls.VersionTLS12)
	b, _ := ticketServer(t, ca, false, tls.VersionTLS12)
	keys, _ := ringA.Keys()
	b.SetTicketKeys(keys)
	c := ticketClient(t, ca, false, tls.VersionTLS13)
	handshake(t, a.Config(), c)
	if _, err := a.Reload(nil); err != nil {
		t.Fatal(err)
	}
	if resumed, _ := handshake(t, a.Config(), c); !resumed {
		t.Fatal("no resumption after a reload of the files")
	}
	if resumed, _ := handshake(t, b.Config(), c); !resumed {
		t.Fatal("no resumption on another instance with the same keys")
	}
}

// BenchmarkHandshake measures the server's CPU (its thread's, by getrusage) for a
// full and a resumed handshake, TLS 1.2 and 1.3, with and without a client
// certificate. A TLS 1.3 resumption still runs a key exchange (crypto/tls
// resumes with psk_dhe_ke only); a TLS 1.2 one does not.
func BenchmarkHandshake(b *testing.B) {
	ca := testutil.NewCA(b, "ca")
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, mtls := range []bool{false, true} {
			for _, resume := range []bool{false, true} {
				name := map[uint16]string{tls.VersionTLS12: "tls12/", tls.VersionTLS13: "tls13/"}[v] +
					map[bool]string{false: "full", true: "resumed"}[resume] + map[bool]string{false: "", true: "-mtls"}[mtls]
				b.Run(name, func(b *testing.B) {
					r, _ := ticketServer(b, ca, mtls, tls.VersionTLS12)
					srv := r.Config()
					cc := ticketClient(b, ca, mtls, v)
					handshake(b, srv, cc)
					var cpu time.Duration
					for b.Loop() {
						if !resume {
							cc.ClientSessionCache = tls.NewLRUClientSessionCache(1)
						}
						resumed, c := handshake(b, srv, cc)
						if resumed != resume {
							b.Fatalf("resumed %v", resumed)
						}
						cpu += c
					}
					b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "server-cpu-µs/op")
				})
			}
		}
	}
}
