package e2e

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/client"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// mtlsAgents are Go clients (the client package), each presenting a certificate
// of its own, sending reports one after another until stopped: one certificate
// names one client id, so hawkc load, whose connections share one certificate,
// cannot play them.
type mtlsAgents struct {
	clients []*client.Client
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu    sync.Mutex
	acked map[string]int
	errs  []error
}

// startMTLSAgents connects n agents to s, each with a certificate ca issues for
// spiffe://fleet/mtls-i, and starts their reports.
func startMTLSAgents(t *testing.T, s *server, f *tlsFiles, ca *testutil.CA, n int) *mtlsAgents {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := &mtlsAgents{cancel: cancel, acked: map[string]int{}}
	t.Cleanup(a.stop)
	for i := range n {
		id := fmt.Sprintf("spiffe://fleet/mtls-%d", i)
		leaf := ca.Issue(t, testutil.CertOpts{URIs: []string{id}, Client: true})
		dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
		c, err := client.Dial(dctx, client.Options{Addr: s.addr(), ClientID: id, TLS: mtlsClientConfig(f, leaf)})
		dcancel()
		if err != nil {
			t.Fatalf("mutual-TLS agent %d: %v", i, err)
		}
		a.clients = append(a.clients, c)
		a.wg.Add(1)
		go a.run(ctx, c, id)
	}
	return a
}

func (a *mtlsAgents) run(ctx context.Context, c *client.Client, id string) {
	defer a.wg.Done()
	payload := []byte(`{"mtls":true}`)
	for ctx.Err() == nil {
		seq, err := c.Report(ctx, payload)
		a.mu.Lock()
		switch {
		case err == nil:
			a.acked[id+" "+strconv.FormatUint(seq, 10)]++
		case ctx.Err() == nil:
			a.errs = append(a.errs, fmt.Errorf("%s: %w", id, err))
		}
		a.mu.Unlock()
		if err != nil {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond): // pacing: about 10 reports/s per agent
		}
	}
}

// stop ends the reports (a report in flight at the stop may be stored unacked)
// and closes the clients; their Stats stay readable.
func (a *mtlsAgents) stop() {
	a.cancel()
	a.wg.Wait()
	for _, c := range a.clients {
		c.Close() // once: again at the cleanup is nothing
	}
}

// stats sums the clients' counters.
func (a *mtlsAgents) stats() (st client.Stats) {
	for _, c := range a.clients {
		s := c.Stats()
		st.Sent += s.Sent
		st.Acked += s.Acked
		st.Nacked += s.Nacked
		st.Resent += s.Resent
		st.Reconnects += s.Reconnects
		st.Goaways += s.Goaways
		st.DialFailures += s.DialFailures
	}
	return st
}

// 1,000 TLS 1.3 connections under load, half of them mutual TLS, through
// back-to-back upgrades: every session moves with its connection (no fallback, no
// GOAWAY, no reconnect, no alert: crypto/tls on the agents' side ends a session
// on any alert or bad record, which would be an error or a reconnect), and every
// acked report is in the spool exactly once.
func TestTLSHandoffUnderLoad(t *testing.T) {
	conns, upgrades := tlsHandoffScale()
	f := newTLSFiles(t)
	fleet := testutil.NewCA(t, "fleet CA")
	f.writeClientCAs(t, fleet)
	s := startServer(t, bin.serverV1, append(f.serverFlags(), "-tls.client_ca_file="+f.clientCAs, "-tls.client_auth=optional",
		"-tls.client_id_from=uri_san", "-limits.max_conns=5000", "-limits.handshake_rate=0")...)
	load := startLoad(t, s.addr(), "-tls-ca", f.caFile, "-c", strconv.Itoa(conns/2), "-w", "4", "-s", "128", "-rate", "2000", "-d", "10m")
	agents := startMTLSAgents(t, s, f, fleet, conns/2)
	s.waitConnected(conns)
	s.waitProgress(3000)
	versions := []string{bin.serverV2, bin.serverV1}
	began := time.Now()
	for i := range upgrades {
		old := s.pid()
		install(t, versions[i%2], s.binary)
		s.signal(old, syscall.SIGHUP)
		// Bounds for 2 shared cores under other tests' load, where a move of
		// 1,000 TLS sessions has taken seconds.
		done := s.waitLog(60*time.Second, byPID(old, "handoff finished: connections moved to the new process"))
		if moved := int(done.num("moved")); moved != conns || done.num("fallback") != 0 || done.num("lost") != 0 {
			t.Fatalf("upgrade %d: handoff moved %d of %d TLS connections: %v", i+1, moved, conns, done)
		}
		waitGone(t, old, 60*time.Second, "the old process")
		t.Logf("upgrade %d: %d TLS connections moved in %.1f ms (%.0f/s)", i+1, conns, done.num("duration")*1000, float64(conns)/done.num("duration"))
		s.waitProgress(500)
	}
	t.Logf("%d upgrades in %v", upgrades, time.Since(began).Round(time.Millisecond))
	if n := len(s.findLogs(func(l logLine) bool { return l.str("msg") == "connection closed" })); n != 0 {
		t.Fatalf("%d connections closed during the upgrades\nserver log:\n%s", n, s.logTextDump())
	}
	sum := load.stop()
	agents.stop()
	st := agents.stats()
	t.Logf("hawkc load (TLS): %+v; mutual-TLS agents: %+v", sum, st)
	if sum.Errors != 0 || sum.Reconnects != 0 || sum.Goaways != 0 || sum.DialFailures != 0 || sum.Nacked != 0 || sum.Acked != sum.Sent {
		t.Fatalf("TLS clients noticed the upgrades: %+v\nload stderr:\n%s", sum, load.stderr)
	}
	if len(agents.errs) != 0 || st.Reconnects != 0 || st.Goaways != 0 || st.DialFailures != 0 || st.Nacked != 0 || st.Resent != 0 {
		t.Fatalf("mutual-TLS agents noticed the upgrades: %+v, errors %v", st, agents.errs)
	}
	s.stopAll()
	acked := load.acked()
	for k, n := range agents.acked {
		acked[k] += n
	}
	keys, _ := spoolKeys(t, s.spool)
	inSpool, dups := exactlyOnce(t, keys, acked)
	t.Logf("%d TLS connections, %d upgrades: acked %d, in spool %d, duplicates %d", conns, upgrades, len(acked), inSpool, dups)
}
