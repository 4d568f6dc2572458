package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hawk-agents/hawk/client"
)

func cmdSendFile(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("send-file", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", defaultAddr, "server address `host:port`")
	id := fs.String("id", "", "client id (required)")
	token := fs.String("token", "", "auth token")
	uploadID := fs.String("upload-id", "", "upload id; default: one derived from the file's path, size and modification time, so a rerun resumes")
	known := fs.String("sha256", "", "the file's sha256 in hex, when known: the client then reads the file once and does not hash it (the server checks the bytes against it)")
	var tf tlsFlags
	tf.register(fs)
	timeout := fs.Duration("timeout", time.Hour, "overall time limit")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: client send-file -id ID [-addr host:port] [-token T] [-upload-id U] [-sha256 HEX] PATH

Uploads the file at PATH on the agent protocol (PROTOCOL.md 4.3), resuming from
what the server already holds, and waits until the server has published it. Shows
a progress bar on a terminal, one line per second otherwise. Exits 0 once
published, 1 on failure, 2 on bad usage.

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
	path := fs.Arg(0)
	st, err := os.Stat(path)
	if err != nil {
		fmt.Fprintf(stderr, "client: %v\n", err)
		return 1
	}
	if *uploadID == "" {
		abs, _ := filepath.Abs(path)
		h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d", abs, st.Size(), st.ModTime().UnixNano()))
		*uploadID = "f-" + hex.EncodeToString(h[:12])
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	c, code := dialClient(ctx, *addr, *id, *token, &tf, stderr)
	if c == nil {
		return code
	}
	defer c.Close()
	p := newProgress(stdout, isTerminal(stdout))
	u := client.Upload{ID: *uploadID, Progress: p.update, SHA256: strings.ToLower(*known)}
	if err := c.UploadPath(ctx, path, u); err != nil {
		p.end()
		printErr(stderr, err)
		return 1
	}
	p.end()
	fmt.Fprintf(stdout, "published upload_id=%s bytes=%d\n", *uploadID, st.Size())
	return 0
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress shows the durable offset: a redrawn bar on a terminal, otherwise a
// plain line at most once a second.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	start time.Time
	last  time.Time
	drew  bool
}

func newProgress(w io.Writer, tty bool) *progress {
	return &progress{w: w, tty: tty, start: time.Now()}
}

func (p *progress) update(durable, size int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Sub(p.last) < time.Second && durable < size && (!p.tty || now.Sub(p.last) < 100*time.Millisecond) {
		return
	}
	p.last = now
	pct := 100.0
	if size > 0 {
		pct = 100 * float64(durable) / float64(size)
	}
	rate := float64(durable) / max(now.Sub(p.start).Seconds(), 1e-3) / (1 << 20)
	if p.tty {
		const width = 30
		fill := int(pct / 100 * width)
		fmt.Fprintf(p.w, "\r[%s%s] %5.1f%% %d/%d bytes %.1f MiB/s", strings.Repeat("=", fill), strings.Repeat(" ", width-fill), pct, durable, size, rate)
		p.drew = true
		return
	}
	fmt.Fprintf(p.w, "progress %d/%d bytes %.1f%% %.1f MiB/s\n", durable, size, pct, rate)
}

func (p *progress) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drew {
		fmt.Fprintln(p.w)
	}
}
