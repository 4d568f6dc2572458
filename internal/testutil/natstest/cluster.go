package natstest

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is n nats-servers with JetStream routed into one cluster, each with its
// own store, stopped at the end of the test. Writes use the servers' default sync
// (the production setting: an acknowledged write is on a majority).
type Cluster struct {
	t     testing.TB
	Nodes []*Server
	js    jetstream.JetStream // connected to every node: it survives a node's stop
}

// StartCluster starts n servers routed to each other and waits until each accepts
// connections.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	return startCluster(t, n, "")
}

// startCluster starts n nodes, in this process, or as processes of bin.
func startCluster(t testing.TB, n int, bin string) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	clusterPorts := make([]int, n)
	for i := range clusterPorts {
		clusterPorts[i] = freePort(t)
	}
	var routes []*url.URL
	for _, p := range clusterPorts {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	for i := range n {
		o := serverOptions(t, freePort(t))
		o.ServerName = fmt.Sprintf("n%d", i+1)
		o.Cluster = server.ClusterOpts{Name: "hawk-test", Host: "127.0.0.1", Port: clusterPorts[i]}
		o.Routes = routes
		c.Nodes = append(c.Nodes, &Server{t: t, opts: o, bin: bin})
	}
	for _, s := range c.Nodes {
		s.Restart()
		t.Cleanup(s.Stop)
	}
	return c
}

// URLs is every node's client URL, comma separated.
func (c *Cluster) URLs() string {
	var u []string
	for _, s := range c.Nodes {
		u = append(u, s.URL())
	}
	return strings.Join(u, ",")
}

// CreateStream creates a file-store stream of as many replicas as nodes.
func (c *Cluster) CreateStream(name string, subjects ...string) {
	c.t.Helper()
	c.up().createStream(name, len(c.Nodes), subjects)
}

// up is a running node.
func (c *Cluster) up() *Server {
	for _, s := range c.Nodes {
		if s.running() {
			return s
		}
	}
	c.t.Fatal("no node of the cluster runs")
	return nil
}

// info is the stream's info as a running node sees it; ok is false while the
// stream does not answer (an election).
func (c *Cluster) info(stream string) (*jetstream.StreamInfo, bool) {
	c.t.Helper()
	if c.js == nil {
		nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
		if err != nil {
			c.t.Fatal(err)
		}
		c.t.Cleanup(nc.Close)
		if c.js, err = jetstream.New(nc); err != nil {
			c.t.Fatal(err)
		}
	}
	js := c.js
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, false
	}
	info, err := st.Info(ctx)
	return info, err == nil
}

// Leader is the node leading the stream, once one is elected (within 30 s).
func (c *Cluster) Leader(stream string) *Server {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if info, ok := c.info(stream); ok && info.Cluster != nil {
			for _, s := range c.Nodes {
				if s.running() && s.opts.ServerName == info.Cluster.Leader {
					return s
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("no leader for stream %s within 30s", stream)
	return nil
}

// Follower is a running node that does not lead the stream.
func (c *Cluster) Follower(stream string) *Server {
	c.t.Helper()
	leader := c.Leader(stream)
	for _, s := range c.Nodes {
		if s != leader && s.running() {
			return s
		}
	}
	c.t.Fatalf("no running follower of stream %s", stream)
	return nil
}

// Count is how many messages the stream holds, once it answers (within 30 s: a
// leader election after a node stopped).
func (c *Cluster) Count(stream string) uint64 {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if info, ok := c.info(stream); ok {
			return info.State.Msgs
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("stream %s does not answer within 30s", stream)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Messages reads the stream through a running node (Server.Messages).
func (c *Cluster) Messages(stream string) (byID map[string]int, total int) {
	c.t.Helper()
	return c.up().Messages(stream)
}
