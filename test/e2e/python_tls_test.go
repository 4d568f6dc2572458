package e2e

import (
	"slices"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
)

// The Python client over TLS and mutual TLS (clients/python/hawk_tls.py), against
// the binary.

// pythonTLS is a TLS 1.3 server taking optional client certificates (the id from
// the common name) and the environment test_hawk_client_tls.py and
// upgrade_driver.py read.
type pythonTLS struct {
	files *tlsFiles
	flags []string
	env   []string
}

const pythonTLSClientID = "py-mtls-agent"

func newPythonTLS(t *testing.T) *pythonTLS {
	t.Helper()
	f := newTLSFiles(t)
	clientCA := testutil.NewCA(t, "e2e python client CA")
	f.writeClientCAs(t, clientCA)
	leaf := clientCA.Issue(t, testutil.CertOpts{CN: pythonTLSClientID, Client: true})
	other := testutil.NewCA(t, "e2e CA the server does not chain to")
	return &pythonTLS{
		files: f,
		flags: append(f.serverFlags(), "-tls.client_ca_file="+f.clientCAs, "-tls.client_auth=optional", "-tls.client_id_from=cn"),
		env: []string{
			"HAWK_TLS_CA=" + f.caFile,
			"HAWK_TLS_CERT=" + testutil.WriteFile(t, f.dir, "agent.crt", leaf.CertPEM),
			"HAWK_TLS_KEY=" + testutil.WriteFile(t, f.dir, "agent.key", leaf.KeyPEM),
			"HAWK_TLS_CLIENT_ID=" + pythonTLSClientID,
			"HAWK_TLS_OTHER_CA=" + testutil.WriteFile(t, f.dir, "other-ca.pem", other.PEM),
		},
	}
}

// TestPythonClientTLS runs the Python client's TLS tests: TLS 1.3, mutual TLS
// naming the client, refusals of a wrong id, another CA, a wrong server name.
func TestPythonClientTLS(t *testing.T) {
	p := newPythonTLS(t)
	s := startServer(t, bin.serverV1, p.flags...)
	runPythonTests(t, s, append(p.env, "HAWK_TLS_ADDR="+s.addr()), "test_hawk_client_tls")
}

// TestPythonClientTLSUpgrades streams reports from the Python client over mutual
// TLS through 10 upgrades: its one connection moves with its TLS session each
// time (same local port, no GOAWAY, no reconnect), and every report is acked and
// stored exactly once.
func TestPythonClientTLSUpgrades(t *testing.T) {
	p := newPythonTLS(t)
	// A heartbeat of 10s: on 2 shared cores a process can be starved for longer than
	// the harness's 1s x 3, and this test is about the handoff, not heartbeats.
	s := startServer(t, bin.serverV1, append(p.flags, "-heartbeat.interval=10s")...)
	// 1,000 reports/s: enough to have reports in flight at every upgrade, a spool
	// small enough to count quickly under -race.
	env := append(p.env, "HAWK_CLIENT_ID="+pythonTLSClientID, "HAWK_RATE=1000")
	const upgrades = 10
	sum := runUpgradeDriver(t, s, env, func() {
		versions := []string{bin.serverV2, bin.serverV1}
		for i := range upgrades {
			t0 := time.Now()
			_, ready := s.upgradeTo(versions[i%2])
			t1 := time.Now()
			s.waitProgress(200)
			t.Logf("upgrade %d: SIGHUP to ready %v, to the old process's exit %v, 200 more records %v",
				i+1, ready.Round(time.Millisecond), t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
		}
	})
	if sum.TLSVersion != "TLSv1.3" {
		t.Fatalf("TLS version %q, want TLSv1.3", sum.TLSVersion)
	}
	if len(sum.LocalPorts) != 1 || sum.Events["connects"] != 1 || sum.Events["reconnects"] != 0 || sum.Events["goaways"] != 0 {
		t.Fatalf("through %d upgrades the client used local ports %v (connects %d, reconnects %d, GOAWAYs %d; errors %v): want one connection",
			upgrades, sum.LocalPorts, sum.Events["connects"], sum.Events["reconnects"], sum.Events["goaways"], sum.Errors)
	}
	if len(sum.Errors) != 0 || sum.Events["connection_errors"] != 0 {
		t.Fatalf("the client saw errors: %v", sum.Errors)
	}
	t.Logf("%d upgrades: %d reports acked on one TLS connection, local port %v", upgrades, len(sum.Acked), sum.LocalPorts)
	// One WELCOME, from the first process: the moved connection is never greeted again.
	if !slices.Equal(sum.ServerVersions, []string{"v1"}) {
		t.Fatalf("WELCOME versions %v, want [v1]", sum.ServerVersions)
	}
	s.stopAll()
	checkSpool(t, spoolRecords(t, s.spool), sum.ackedKeys(t), true)
}
