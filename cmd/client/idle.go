package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hawk-agents/hawk/client"
)

// cmdIdle holds many authenticated, heartbeating, otherwise idle connections: the
// load the per-connection memory target is measured with.
func cmdIdle(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", defaultAddr, "server address `host:port`")
	n := fs.Int("n", 1000, "number of connections")
	hold := fs.Duration("hold", 30*time.Second, "how long to hold them once all are open")
	prefix := fs.String("id-prefix", "idle", "client ids are `PREFIX`-0 … PREFIX-(n-1)")
	token := fs.String("token", "", "auth token")
	var tf tlsFlags
	tf.register(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: client idle [-addr host:port] [-n 1000] [-hold 30s] [-id-prefix idle] [-token T]\n\n"+
			"Opens n connections (source addresses spread over 127.0.0.x), each says HELLO and then\n"+
			"only heartbeats. Prints \"open N\" once all are up, holds them, closes them, exits 0.\n\n")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	tcfg, err := tf.config()
	if err != nil {
		fmt.Fprintf(stderr, "client: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	clients := make([]*client.Client, *n)
	var failed atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			opts := client.Options{Addr: *addr, ClientID: fmt.Sprintf("%s-%d", *prefix, i), Token: *token, TLS: tcfg}
			if a, ok := loopback4(*addr); ok { // source addresses 127.0.0.x only reach IPv4 loopback
				opts.Addr, opts.Dialer = a, spreadDialer(i)
			}
			c, err := client.Dial(ctx, opts) // waits out ERROR busy itself
			if err != nil {
				if failed.Add(1) == 1 {
					fmt.Fprintf(stderr, "idle: client %d: %v\n", i, err)
				}
				return
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}()
	if f := failed.Load(); f > 0 {
		fmt.Fprintf(stderr, "idle: %d of %d connections failed\n", f, *n)
		return 1
	}
	fmt.Fprintf(stdout, "open %d\n", *n)
	select {
	case <-ctx.Done():
	case <-time.After(*hold):
	}
	return 0
}
