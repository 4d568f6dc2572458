package natstest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// A node of a process cluster is a nats-server process of its own (the binary the
// test built from the nats-server module), so that it can be killed with SIGKILL:
// what a crash does to its store (no shutdown, nothing flushed past the servers'
// default sync) is then the real one.

// StartClusterProcesses is StartCluster with every node a process run from bin.
func StartClusterProcesses(t testing.TB, bin string, n int) *Cluster {
	t.Helper()
	return startCluster(t, n, bin)
}

// Kill ends a process node with SIGKILL and waits for it to exit.
func (s *Server) Kill() {
	s.t.Helper()
	if s.bin == "" {
		s.t.Fatal("natstest: Kill needs a process node (StartClusterProcesses)")
	}
	s.endProcess(syscall.SIGKILL)
}

// endProcess sends sig to the node's process, if it runs, and waits for it.
func (s *Server) endProcess(sig syscall.Signal) {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// config is the node's configuration file, in nats-server's format.
func (s *Server) config() string {
	o := s.opts
	var routes []string
	for _, r := range o.Routes {
		routes = append(routes, fmt.Sprintf("%q", r.String()))
	}
	return fmt.Sprintf(`server_name: %q
listen: "127.0.0.1:%d"
max_payload: %d
jetstream { store_dir: %q }
cluster {
  name: %q
  listen: "127.0.0.1:%d"
  routes: [%s]
}
`, o.ServerName, o.Port, o.MaxPayload, o.StoreDir, o.Cluster.Name, o.Cluster.Port, strings.Join(routes, ", "))
}

// startProcess starts the node's process and waits until it accepts connections.
func (s *Server) startProcess() {
	s.t.Helper()
	if s.confDir == "" {
		s.confDir = s.t.TempDir()
		if err := os.WriteFile(filepath.Join(s.confDir, "nats.conf"), []byte(s.config()), 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
	logf, err := os.OpenFile(filepath.Join(s.confDir, "nats.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(s.bin, "-c", filepath.Join(s.confDir, "nats.conf"))
	cmd.Stdout, cmd.Stderr = logf, logf
	// A test process that dies takes its servers with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("nats-server: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			s.cmd = nil
			log, _ := os.ReadFile(filepath.Join(s.confDir, "nats.log"))
			s.t.Fatalf("nats-server %s exited at start:\n%s", s.opts.ServerName, log)
		default:
		}
		if nc, err := nats.Connect(s.URL(), nats.Timeout(time.Second)); err == nil {
			nc.Close()
			return
		}
		if time.Now().After(deadline) {
			s.endProcess(syscall.SIGKILL)
			s.t.Fatalf("nats-server %s not accepting connections within 20s", s.opts.ServerName)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
