package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
)

// Mutual TLS connections that moved to the new process with their sessions keep
// their credentials checked there, from the chain (DER) the handoff carries: the
// new process's bundle is checked at adoption, a later reload still reaches
// them, and the expiry GOAWAY still fires.

// TestMTLSCredentialsAfterHandoff: an upgrade whose configuration names a
// bundle without CA-old tells the moved CA-old connection GOAWAY credentials at
// adoption; a reload that then removes CA-mid tells the moved CA-mid connection;
// a connection whose certificate expires after the upgrade is told its expiry
// GOAWAY by the new process; the CA-new connection is left alone throughout.
//
// The bundle is named in the configuration file, not by a flag: the old process
// refuses the changed file (tls.client_ca_file is restart-only), so only the new
// process reads the new bundle, and the test does not race the old one's poll.
func TestMTLSCredentialsAfterHandoff(t *testing.T) {
	const (
		drain  = 3 * time.Second
		before = 3 * time.Second // tls.expiry_goaway
	)
	f := newTLSFiles(t)
	caOld, caMid, caNew := testutil.NewCA(t, "CA-old"), testutil.NewCA(t, "CA-mid"), testutil.NewCA(t, "CA-new")
	all := writeBundle(t, f.dir, "clients-all.pem", caOld, caMid, caNew)
	s := newServer(t, bin.serverV1)
	s.writeConfig(s.baseConfig() + fmt.Sprintf("tls:\n  client_ca_file: %q\n", all))
	s.launch(append(f.serverFlags(), "-tls.client_auth=required", "-tls.client_id_from=uri_san",
		"-drain.timeout="+drain.String(), "-tls.expiry_goaway="+before.String(), mtlsQuiet))

	oldA := dialAgent(t, s, f, agentLeaf(t, caOld, "old", "spiffe://fleet/old"), "spiffe://fleet/old")
	midA := dialAgent(t, s, f, agentLeaf(t, caMid, "mid", "spiffe://fleet/mid"), "spiffe://fleet/mid")
	newA := dialAgent(t, s, f, agentLeaf(t, caNew, "new", "spiffe://fleet/new"), "spiffe://fleet/new")
	// Its expiry GOAWAY is due after the upgrade: at NotAfter less 3 to 3.75 s.
	expLeaf := caNew.Issue(t, testutil.CertOpts{URIs: []string{"spiffe://fleet/exp"}, Client: true, NotAfter: time.Now().Add(20 * time.Second)})
	notAfter := expLeaf.Cert.NotAfter
	expA := dialAgent(t, s, f, expLeaf, "spiffe://fleet/exp")
	for i, p := range []*testutil.Peer{oldA, midA, newA, expA} {
		expectPong(t, p, uint64(i+1))
	}

	// CA-old leaves the bundle the configuration names; only an upgrade reads it.
	fresh := writeBundle(t, f.dir, "clients-fresh.pem", caMid, caNew)
	s.writeConfig(s.baseConfig() + fmt.Sprintf("tls:\n  client_ca_file: %q\n", fresh))
	oldPID := s.pid()
	newPID, _ := s.upgradeTo(bin.serverV2)
	if left := time.Until(notAfter); left <= before*5/4 {
		t.Fatalf("the upgrade ended %s before NotAfter, inside the expiry window: the test needs it earlier", left)
	}
	if n := len(s.findLogs(func(l logLine) bool { return l.str("msg") == "GOAWAY credentials" })); n != 1 {
		t.Fatalf("%d GOAWAY credentials by the upgrade, want 1 (the CA-old connection's, at adoption)\nserver log:\n%s", n, s.logTextDump())
	}

	g := expectGoawayCredentials(t, oldA, 10*time.Second, drain)
	told := s.waitLog(10*time.Second, func(l logLine) bool {
		return byPID(newPID, "GOAWAY credentials")(l) && l.str("client_id") == "spiffe://fleet/old"
	})
	if why := told.str("why"); why != "the CA that issued the client certificate was removed from tls.client_ca_file" {
		t.Fatalf("GOAWAY credentials for %q, want the CA removed", why)
	}
	t.Logf("at adoption: %+v", g)
	// The others moved untouched: their very next frame answers their PING.
	expectPong(t, midA, 10)
	expectPong(t, newA, 10)
	expectPong(t, expA, 10)
	if n := len(s.findLogs(byPID(oldPID, "GOAWAY credentials"))); n != 0 {
		t.Fatalf("the old process told %d connections GOAWAY credentials: they must have moved first", n)
	}

	// A reload in the new process reaches the moved connections it did not admit.
	testutil.WriteFile(t, f.dir, filepath.Base(fresh), caNew.PEM)
	expectGoawayCredentials(t, midA, 15*time.Second, drain)
	s.waitLog(10*time.Second, func(l logLine) bool {
		return byPID(newPID, "TLS files reloaded")(l) && l.num("connections_told_goaway_credentials") == 1
	})
	expectPong(t, newA, 11)

	// The expiry GOAWAY, armed again at adoption, fires in the new process.
	expectGoawayCredentials(t, expA, time.Until(notAfter)+5*time.Second, before*5/4+time.Second)
	if at := time.Now(); !at.Before(notAfter) || at.Before(notAfter.Add(-before*5/4).Add(-500*time.Millisecond)) {
		t.Fatalf("expiry GOAWAY at %s, want within expiry_goaway and its jitter before NotAfter %s",
			at.Format(time.StampMilli), notAfter.Format(time.StampMilli))
	}
	s.waitLog(5*time.Second, func(l logLine) bool {
		return byPID(newPID, "GOAWAY credentials")(l) && l.str("client_id") == "spiffe://fleet/exp" && l.str("why") == "client certificate expires soon"
	})
	expectPong(t, newA, 12)
}

// writeBundle writes a client CA bundle holding cas as dir/name and returns its path.
func writeBundle(t *testing.T, dir, name string, cas ...*testutil.CA) string {
	t.Helper()
	var b []byte
	for _, ca := range cas {
		b = append(b, ca.PEM...)
	}
	return testutil.WriteFile(t, dir, name, b)
}
