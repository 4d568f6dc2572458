package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/testutil"
	"github.com/hawk-agents/hawk/internal/testutil/natstest"
)

// natsServer builds nats-server once, from the module go.mod names (a tool of the
// module), for the tests that run it as processes of its own.
var natsServer = sync.OnceValues(func() (string, error) {
	out := filepath.Join(bin.dir, "nats-server")
	cmd := exec.Command("go", "build", "-o", out, "github.com/nats-io/nats-server/v2")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building nats-server: %v\n%s", err, b)
	}
	return out, nil
})

// A real three-node NATS cluster, each node its own nats-server process, and an R3
// stream with the servers' default sync (the production setting). Under load, a
// follower is killed (SIGKILL) and restarted, then the stream's leader, then all
// three are stopped for a while: in both modes, every report hawk ACKed is in the
// stream exactly once.
func TestJetStreamClusterNodeFailures(t *testing.T) {
	natsBin, err := natsServer()
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{config.JetStreamDirect, config.JetStreamSpooled} {
		t.Run(mode, func(t *testing.T) {
			c := natstest.StartClusterProcesses(t, natsBin, 3)
			c.CreateStream(jsStream, "hawk.reports.*")
			flags := append(jsFlagsTo(c.URLs()), "-jetstream.sync_always=false")
			if mode == config.JetStreamSpooled {
				flags = append(spooledFlags(c.URLs()), "-jetstream.sync_always=false")
			}
			s := startServer(t, bin.serverV1, flags...)
			load := startLoad(t, s.addr(), "-c", "50", "-w", "8", "-s", "256", "-rate", "5000", "-d", "10m", "-drain-timeout", "30s")
			waitStreamWithin(t, c, 5000, forwardWait)
			for _, pick := range []struct {
				role string
				node func(string) *natstest.Server
			}{{"follower", c.Follower}, {"leader", c.Leader}} {
				n := pick.node(jsStream)
				n.Kill()
				waitStreamWithin(t, c, 5000, forwardWait) // two of three keep the stream writable
				n.Restart()
				waitStreamWithin(t, c, 5000, forwardWait)
				t.Logf("%s: killed and restarted the stream's %s under load", mode, pick.role)
			}
			// All of NATS down for a while: spooled, the reports wait in the spool (the
			// lag grows); direct, they are NACKed and resent.
			admin := s.adminAddr()
			// Direct, an agent resends a NACKed report with a growing backoff: few
			// publishes fail per second.
			waiting, grow := "hawk_jetstream_publish_errors_total", 100.0
			if mode == config.JetStreamSpooled {
				waiting, grow = "hawk_forward_lag_records", 5000
			}
			before := metric(t, admin, waiting)
			for _, n := range c.Nodes {
				n.Stop()
			}
			testutil.Eventually(t, 30*time.Second, func() bool {
				m, err := scrapeMetrics(admin)
				return err == nil && m[waiting] >= before+grow
			}, "%s to grow by %.0f while NATS is down", waiting, grow)
			for _, n := range c.Nodes {
				n.Restart()
			}
			waitStreamWithin(t, c, 5000, forwardWait)
			t.Logf("%s: all of NATS stopped and restarted under load", mode)
			sum := load.stop()
			if sum.Errors != 0 || sum.ConnectErrs != 0 {
				t.Fatalf("load: %+v; want 0 errors (NACKs while the leader is elected are retried)", sum)
			}
			if mode == config.JetStreamSpooled {
				waitForwarded(t, s.adminAddr())
			}
			checkStreamExactlyOnce(t, c, load)
			t.Logf("%s: load %+v", mode, sum)
		})
	}
}
