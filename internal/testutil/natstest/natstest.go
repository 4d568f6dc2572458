// Package natstest runs a real nats-server with JetStream inside a test process and
// reads a stream back.
//
// The server has its file store in a temp dir and listens on 127.0.0.1 and a free
// port; it can be restarted on the same port and store.
package natstest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is one nats-server with JetStream, stopped at the end of the test.
type Server struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server // in this process

	// A process node (process.go): its binary, running process and files.
	bin     string
	cmd     *exec.Cmd
	exited  chan struct{}
	confDir string
}

// running reports whether the server runs, in this process or as its own.
func (s *Server) running() bool { return s.srv != nil || s.cmd != nil }

// Start starts a server on a free port with its store in a temp dir. Writes are
// synced always (sync_interval: always), as hawk expects of a single server.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, opts: serverOptions(t, freePort(t))}
	s.opts.SyncAlways = true
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// serverOptions are a test server's: JetStream with its store in a temp dir,
// listening on 127.0.0.1:port.
func serverOptions(t testing.TB, port int) server.Options {
	return server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true, MaxPayload: 8 << 20,
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// URL is the client URL.
func (s *Server) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.opts.Port) }

// Stop shuts the server down cleanly and waits for it; safe to call twice.
func (s *Server) Stop() {
	s.endProcess(syscall.SIGTERM)
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

// Restart starts the server (again), on the same port and store, and waits until
// it accepts connections.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if s.bin != "" {
		s.startProcess()
		return
	}
	o := s.opts
	srv, err := server.NewServer(&o)
	if err != nil {
		s.t.Fatalf("nats-server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		s.t.Fatal("nats-server not ready within 10s")
	}
	s.srv = srv
}

// Connect returns a client connection closed at the end of the test.
func (s *Server) Connect() (*nats.Conn, jetstream.JetStream) {
	s.t.Helper()
	nc, err := nats.Connect(s.URL())
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		s.t.Fatal(err)
	}
	return nc, js
}

// CreateStream creates a file-store stream on subjects, with a 2-minute duplicate
// window and one replica.
func (s *Server) CreateStream(name string, subjects ...string) {
	s.t.Helper()
	s.createStream(name, 1, subjects)
}

// createStream creates a file-store stream with a 2-minute duplicate window,
// retrying for 30 s (a new cluster elects its meta leader first).
func (s *Server) createStream(name string, replicas int, subjects []string) {
	s.t.Helper()
	_, js := s.Connect()
	s.retry(30*time.Second, "create stream "+name, func(ctx context.Context) error {
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: subjects, Storage: jetstream.FileStorage,
			Replicas: replicas, Duplicates: 2 * time.Minute})
		return err
	})
}

// retry runs step, each try with 10 s to answer, until it succeeds or total has
// passed: a cluster just started or restarted leaves requests unanswered while it
// elects its leaders.
func (s *Server) retry(total time.Duration, what string, step func(ctx context.Context) error) {
	s.t.Helper()
	deadline := time.Now().Add(total)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := step(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Messages reads every message of the stream and returns how many times each
// Nats-Msg-Id occurs, and the messages' total.
func (s *Server) Messages(stream string) (byID map[string]int, total int) {
	s.t.Helper()
	_, js := s.Connect()
	var (
		info *jetstream.StreamInfo
		c    jetstream.Consumer
	)
	s.retry(2*time.Minute, "stream "+stream, func(ctx context.Context) error {
		st, err := js.Stream(ctx, stream)
		if err == nil {
			info, err = st.Info(ctx)
		}
		if err == nil && info.State.Msgs > 0 {
			c, err = st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
		}
		return err
	})
	byID = map[string]int{}
	n := info.State.Msgs
	if n == 0 {
		return byID, 0
	}
	// A cluster just restarted may answer "no responders" while its stream and
	// consumer leaders settle: such a fetch is tried again, for up to a minute
	// without progress.
	stuck := time.Now()
	for total < int(n) {
		batch, err := c.Fetch(4096, jetstream.FetchMaxWait(5*time.Second))
		got := 0
		if err == nil {
			for m := range batch.Messages() {
				byID[m.Headers().Get(jetstream.MsgIDHeader)]++
				total++
				got++
			}
			err = batch.Error()
		}
		if got > 0 {
			stuck = time.Now()
		} else if err != nil {
			if time.Since(stuck) > time.Minute {
				s.t.Fatalf("reading stream %s: %v (%d of %d read)", stream, err, total, n)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return byID, total
}

// Count is how many messages the stream holds.
func (s *Server) Count(stream string) uint64 {
	s.t.Helper()
	_, js := s.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		s.t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	return info.State.Msgs
}
