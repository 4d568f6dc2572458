package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/control"
	"github.com/hawk-agents/hawk/internal/proc"
)

const commandList = "upgrade, reload, status, supervise, help"

// verdict is set once hawk upgrade has its (successful) verdict.
var verdict atomic.Bool

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, `hawk %s: a TCP server for fleets of long-lived agents

usage:
  hawk [-config FILE] [-<key>=<value> ...]    run the server
  hawk -check-config [-config FILE]           validate the configuration, exit 0 or 1
  hawk -version                               print the version
  hawk upgrade [-config FILE | -socket PATH]  upgrade the running server in place to the binary
                                              at its path; wait and print the outcome (exit 0/1)
  hawk reload  [-config FILE | -socket PATH]  reload its configuration; print the changed keys
                                              or the rejection (exit 0/1)
  hawk status  [-config FILE | -socket PATH]  pid, version, generation, readiness, connections,
                                              last upgrade and reload (-json for JSON)
  hawk supervise [server flags]               run the server under a supervisor that stays PID 1
                                              across upgrades (a container's entrypoint)
  hawk help                                   this text

The commands talk to the server over control.socket (read from -config, HAWK_* or -socket).

server flags:
`, version)
	config.DescribeFlags(fs)
	fs.PrintDefaults()
}

// runCommand runs one of the commands that talk to a running server.
func runCommand(cmd string, args []string, stdout, stderr io.Writer) int {
	switch cmd {
	case "help":
		fs := flag.NewFlagSet("hawk", flag.ContinueOnError)
		fs.String("config", "", "YAML configuration file")
		fs.Bool("check-config", false, "validate the configuration and exit: 0 if valid, 1 naming each bad key")
		fs.Bool("version", false, "print the version and exit")
		config.RegisterFlags(fs)
		fs.SetOutput(stdout)
		usage(stdout, fs)
		return 0
	case "supervise":
		return runSupervise(args, stderr)
	case "upgrade", "reload", "status":
	default:
		fmt.Fprintf(stderr, "hawk: unknown command %q; commands are %s (hawk -h)\n", cmd, commandList)
		return 2
	}
	fs := flag.NewFlagSet("hawk "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "the server's configuration file: control.socket is read from it")
	socket := fs.String("socket", "", "the control socket (overrides control.socket)")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up waiting for the answer after this long")
	asJSON := fs.Bool("json", false, "print the server's answer as JSON")
	wait := fs.Bool("wait", true, "upgrade: after the verdict, wait until the previous process has drained and exited (what systemd's ExecReload= needs)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "hawk %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return 2
	}
	path := *socket
	if path == "" {
		cfg, err := (&config.Loader{File: *file}).Load()
		if err != nil {
			fmt.Fprintf(stderr, "hawk %s: reading control.socket:\n", cmd)
			printConfigError(stderr, err)
			return 1
		}
		path = cfg.Control.Socket
	}
	if cmd == "upgrade" {
		// Under systemd, hawk upgrade is ExecReload='s control process, and a stop
		// during the reload sends it SIGTERM too: a killed control process would make
		// the stop's Result "signal". Once the verdict is in, a stop has nothing to
		// interrupt (exit 0); before it, the stop abandons the upgrade (exit 1).
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(stop)
		go func() {
			sig, ok := <-stop
			if !ok {
				return
			}
			if verdict.Load() {
				fmt.Fprintf(stdout, "%s: the service is stopping; the upgrade had succeeded\n", sig)
				os.Exit(0)
			}
			fmt.Fprintf(stderr, "%s: the service is stopping; the upgrade is abandoned\n", sig)
			os.Exit(1)
		}()
	}
	rep, nc, err := control.QueryConn(path, cmd, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "hawk %s: %v\n", cmd, err)
		return 1
	}
	defer nc.Close()
	if *asJSON {
		out, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(stdout, string(out))
	} else if rep.Status != nil {
		st := rep.Status
		ready := "yes"
		if !st.Ready {
			ready = "no (" + st.NotReady + ")"
		}
		fmt.Fprintf(stdout, "pid %d\nversion %s\ngeneration %d\nready %s\nconnections %d\nlast upgrade %s\nlast reload %s\n",
			st.PID, st.Version, st.Generation, ready, st.Connections, orNone(st.LastUpgrade), orNone(st.LastReload))
	} else {
		w := stdout
		if !rep.OK {
			w = stderr
		}
		fmt.Fprintln(w, rep.Message)
	}
	if !rep.OK {
		return 1
	}
	verdict.Store(true)
	if rep.Upgrade != nil && *wait {
		waitPrevious(nc, rep.Upgrade.PreviousPID, rep.Upgrade.PID, stdout, stderr)
	}
	return 0
}

// waitPrevious waits until the process that upgraded has exited: the server keeps
// the connection open until then. Under systemd this orders ExecReload='s end
// after the old process's exit (internal/pidfile). Its drain is bounded by
// drain.timeout, and the wait by -timeout.
func waitPrevious(nc io.Reader, old, successor int, stdout, stderr io.Writer) {
	start := time.Now()
	fmt.Fprintf(stdout, "waiting for the previous process (pid %d) to drain and exit\n", old)
	io.Copy(io.Discard, nc) // EOF: its files are closed, its exit under way
	// The kernel closes a process's files before it reparents its children, and
	// reparents them to another of its threads while one is left: wait (bounded)
	// until the new process's parent is no longer the old one.
	for deadline := time.Now().Add(5 * time.Second); proc.ParentOf(successor) == old && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if proc.ParentOf(successor) == old {
		fmt.Fprintf(stderr, "the previous process (pid %d) still runs after %s\n", old, time.Since(start).Round(time.Millisecond))
		return
	}
	fmt.Fprintf(stdout, "the previous process (pid %d) exited after %s\n", old, time.Since(start).Round(time.Millisecond))
}

func orNone(s string) string {
	if strings.TrimSpace(s) == "" {
		return "none since this process started"
	}
	return s
}
