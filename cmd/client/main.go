// Command client is hawk's command-line client: send sends one report, load
// generates load.
//
// "client send" sends one report and waits for its ACK; "client load" is the load
// generator the tests and benchmarks use.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hawk-agents/hawk/client"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const defaultAddr = "127.0.0.1:7373"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage: client <command> [flags]

commands:
  send   send one report and wait for its ACK
  send-file  upload a file, resumably, and wait until the server publishes it
  load   generate load: many clients, each keeping a window of reports in flight
  idle   hold many authenticated, heartbeating, idle connections (memory measurements)
  legacy-load  generate load on a legacy ffff listener, as the metrics agents send
  version

Run "client <command> -h" for a command's flags.
`

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "send":
		return cmdSend(args[1:], stdin, stdout, stderr)
	case "send-file":
		return cmdSendFile(args[1:], stdout, stderr)
	case "load":
		return cmdLoad(args[1:], stdout, stderr)
	case "idle":
		return cmdIdle(args[1:], stdout, stderr)
	case "legacy-load":
		return cmdLegacyLoad(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "hawk client %s (library %s)\n", version, client.Version)
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "client: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func cmdSend(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", defaultAddr, "server address `host:port`")
	id := fs.String("id", "", "client id (required)")
	token := fs.String("token", "", "auth token")
	var tf tlsFlags
	tf.register(fs)
	timeout := fs.Duration("timeout", 10*time.Second, "overall time limit: connecting (retried until then) and waiting for the ACK")
	udpAddr := fs.String("udp", "", "send the report as a datagram to this report listener `host:port` instead (retransmitted until ACKed)")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: client send -id ID [-addr host:port | -udp host:port] [-token T] [-timeout 10s] PAYLOAD

Sends PAYLOAD ("-" reads it from standard input) as one report and waits for the
server's ACK. Prints "acked seq=N" and exits 0; on a refused handshake, a NACK or
any other failure prints the error on stderr and exits 1. Bad usage exits 2.
With -udp the report is one datagram (PROTOCOL.md 4.4), sent again with backoff
until ACKed; no ACK within -timeout (a refused datagram is never answered) exits 1.

`)
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *id == "" || fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	payload := []byte(fs.Arg(0))
	if fs.Arg(0) == "-" {
		var err error
		if payload, err = io.ReadAll(stdin); err != nil {
			fmt.Fprintf(stderr, "client: reading stdin: %v\n", err)
			return 1
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if *udpAddr != "" {
		return sendUDP(ctx, *udpAddr, *id, *token, payload, stdout, stderr)
	}
	c, code := dialClient(ctx, *addr, *id, *token, &tf, stderr)
	if c == nil {
		return code
	}
	defer c.Close()
	seq, err := c.Report(ctx, payload)
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "acked seq=%d\n", seq)
	return 0
}

// parseFlags parses args into fs; when it returns false the command exits with
// code: 0 after -h (the usage is printed), 2 for bad flags (fs printed why).
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	return 0, true
}

// dialClient connects as id, or prints why not and returns nil with the exit
// code: 2 for bad TLS flags, 1 for a failed connection.
func dialClient(ctx context.Context, addr, id, token string, tf *tlsFlags, stderr io.Writer) (*client.Client, int) {
	tcfg, err := tf.config()
	if err != nil {
		fmt.Fprintf(stderr, "client: %v\n", err)
		return nil, 2
	}
	c, err := client.Dial(ctx, client.Options{Addr: addr, ClientID: id, Token: token, TLS: tcfg, ClientVersion: "hawk-client/" + version})
	if err != nil {
		printErr(stderr, err)
		return nil, 1
	}
	return c, 0
}

// printErr prints err, naming the server's code when the server refused.
func printErr(w io.Writer, err error) {
	var ep *protocol.ErrorPayload
	var ne *client.NackError
	switch {
	case errors.As(err, &ep):
		fmt.Fprintf(w, "client: server refused the connection: %s: %s\n", ep.Code, ep.Message)
	case errors.As(err, &ne):
		fmt.Fprintf(w, "client: server refused report seq %d: %s: %s\n", ne.Seq, ne.Code, ne.Message)
	default:
		fmt.Fprintf(w, "client: %v\n", err)
	}
}
