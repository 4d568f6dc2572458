package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
	"github.com/hawk-agents/hawk/internal/testutil"
)

// OpenSSL as the agent's TLS stack: unlike Go's crypto/tls and Python's ssl, its
// s_client chooses the TLS 1.3 cipher suite (-ciphersuites) and starts a KeyUpdate
// on command (k: update its key; K: and ask the server to update its own), so it
// is the peer that exercises the record layer's suites and KeyUpdate in both
// directions, before and after the session moves to another process.

// sClient is `openssl s_client` speaking hawk: frames written to its stdin go to
// the server as application data, what the server sends comes out on its stdout,
// and -msgfile records every TLS message it sent and received.
type sClient struct {
	t      *testing.T
	suite  string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *os.File
	buf    []byte
	msgs   string
	exited chan error

	mu     sync.Mutex
	stderr strings.Builder
}

// startSClient connects s_client to addr with TLS 1.3 and suite only, verifying
// the server against caFile, and waits until the handshake is done.
func startSClient(t *testing.T, addr, caFile, suite string) *sClient {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatalf("openssl is needed as the TLS peer (.ci/run installs it): %v", err)
	}
	c := &sClient{t: t, suite: suite, msgs: filepath.Join(t.TempDir(), "msgs.txt"), exited: make(chan error, 1)}
	// -brief: only a summary, on stderr, so stdout carries nothing but the
	// server's frames; unlike -quiet it keeps the k and K commands.
	c.cmd = exec.Command("openssl", "s_client", "-connect", addr, "-tls1_3", "-ciphersuites", suite,
		"-CAfile", caFile, "-verify_return_error", "-brief", "-msg", "-msgfile", c.msgs)
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c.stdout = r
	c.cmd.Stdout = w
	er, ew, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c.cmd.Stderr = ew
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	ew.Close()
	go func() {
		sc := bufio.NewScanner(er)
		for sc.Scan() {
			c.mu.Lock()
			c.stderr.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
		}
		er.Close()
	}()
	go func() { c.exited <- c.cmd.Wait() }()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.exited
		r.Close()
	})
	c.waitStderr("Ciphersuite: "+suite, 1)
	return c
}

func (c *sClient) errText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

// waitStderr waits until s_client has written s on stderr n times.
func (c *sClient) waitStderr(s string, n int) {
	c.t.Helper()
	testutil.Eventually(c.t, 10*time.Second, func() bool { return strings.Count(c.errText(), s) >= n },
		"s_client (%s) to write %q %d times; its stderr:\n%s", c.suite, s, n, logFunc(c.errText))
}

// logFunc formats as what f returns when the message is built.
type logFunc func() string

func (f logFunc) String() string { return f() }

// send writes b to s_client's stdin, which it reads as one piece: a command
// letter alone on its line is a command, anything else is sent as it is.
func (c *sClient) send(b []byte) {
	c.t.Helper()
	if _, err := c.stdin.Write(b); err != nil {
		c.t.Fatalf("s_client (%s) stdin: %v; its stderr:\n%s", c.suite, err, c.errText())
	}
}

// next reads the next frame the server sent.
func (c *sClient) next() protocol.Frame {
	c.t.Helper()
	f, err := testutil.NextFrame(c.stdout, &c.buf, 10*time.Second)
	if err != nil {
		c.t.Fatalf("s_client (%s): reading a frame: %v; its stderr:\n%s", c.suite, err, c.errText())
	}
	return f
}

// expect reads the next frame and fails unless it is typ with seq.
func (c *sClient) expect(typ protocol.Type, seq uint64) {
	c.t.Helper()
	if f := c.next(); f.Type != typ || f.Seq != seq {
		c.t.Fatalf("s_client (%s): got %s seq %d %q, want %s seq %d", c.suite, f.Type, f.Seq, f.Payload, typ, seq)
	}
}

// keyUpdate has s_client update its sending key (k), asking the server to update
// its own too (K) when requestPeer is set. s_client announces it on stderr before
// reading stdin again, so the next frame is a read of its own.
func (c *sClient) keyUpdate(requestPeer bool, n int) {
	c.t.Helper()
	cmd := "k\n"
	if requestPeer {
		cmd = "K\n"
	}
	c.send([]byte(cmd))
	c.waitStderr("KEYUPDATE", n)
}

// quit has s_client end the session (close_notify) and waits for it to exit,
// then returns the TLS messages it logged.
func (c *sClient) quit() string {
	c.t.Helper()
	c.send([]byte("Q\n"))
	select {
	case err := <-c.exited:
		c.exited <- err // for the cleanup
		if err != nil {
			c.t.Fatalf("s_client (%s) exited: %v; its stderr:\n%s", c.suite, err, c.errText())
		}
	case <-time.After(10 * time.Second):
		c.t.Fatalf("s_client (%s) did not exit after Q; its stderr:\n%s", c.suite, c.errText())
	}
	b, err := os.ReadFile(c.msgs)
	if err != nil {
		c.t.Fatal(err)
	}
	return string(b)
}

var (
	// s_client -msg lines: ">>>" sent, "<<<" received.
	keyUpdateMsg = regexp.MustCompile(`(?m)^(<<<|>>>) TLS 1\.3, Handshake \[length 0005\], KeyUpdate`)
	alertMsg     = regexp.MustCompile(`(?m)^(<<<|>>>) .*Alert.*$`)
)

// The three TLS 1.3 suites, with KeyUpdates both ways (k, and K which the server
// answers with its own), before and after an upgrade moves the sessions: every
// report is acked on the same TLS session, no alert is sent or received but
// s_client's close_notify at the end, and the spool holds each report once.
func TestOpenSSLPeerSuitesAndKeyUpdatesThroughHandoff(t *testing.T) {
	f := newTLSFiles(t)
	s := startServer(t, bin.serverV1, f.serverFlags()...)
	suites := []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
	clients := make([]*sClient, len(suites))
	acked := map[string]int{}
	for i, suite := range suites {
		c := startSClient(t, s.addr(), f.caFile, suite)
		c.send(protocol.AppendJSON(nil, protocol.TypeHello, 0, &protocol.Hello{ClientID: "openssl-" + suite, ClientVersion: "openssl"}))
		if w := c.next(); w.Type != protocol.TypeWelcome {
			t.Fatalf("s_client (%s): got %s %q, want WELCOME", suite, w.Type, w.Payload)
		}
		clients[i] = c
	}
	seq := uint64(0)
	// round sends a report, then k and a report, then K and a report, on every
	// session: each ACK after K comes under the key the server updated to.
	round := func(n int) {
		t.Helper()
		for step := range 3 {
			seq++
			for _, c := range clients {
				if step > 0 {
					c.keyUpdate(step == 2, 2*(n-1)+step)
				}
				c.send(protocol.AppendFrame(nil, protocol.TypeReport, seq, fmt.Appendf(nil, `{"suite":%q}`, c.suite)))
				c.expect(protocol.TypeAck, seq)
				acked[fmt.Sprintf("openssl-%s %d", c.suite, seq)]++
			}
		}
	}
	round(1)
	s.upgradeTo(bin.serverV2)
	round(2)
	for _, c := range clients {
		c.send(protocol.AppendFrame(nil, protocol.TypePing, 99, nil))
		c.expect(protocol.TypePong, 99)
		msgs := c.quit()
		sent, received := 0, 0
		for _, m := range keyUpdateMsg.FindAllStringSubmatch(msgs, -1) {
			if m[1] == ">>>" {
				sent++
			} else {
				received++
			}
		}
		if sent != 4 || received != 2 {
			t.Errorf("s_client (%s) sent %d KeyUpdates and received %d: want 4 (k, K, twice) and 2 (the server's answers to K)", c.suite, sent, received)
		}
		// The only alert: s_client's own close_notify at Q.
		if a := alertMsg.FindAllString(msgs, -1); len(a) != 1 || !strings.HasPrefix(a[0], ">>> ") || !strings.HasSuffix(a[0], "close_notify") {
			t.Errorf("s_client (%s) logged alerts %q, want only its own close_notify at Q", c.suite, a)
		}
		if strings.Contains(strings.ToLower(c.errText()), "alert") {
			t.Errorf("s_client (%s) reported an alert:\n%s", c.suite, c.errText())
		}
	}
	if t.Failed() {
		t.Logf("server log:\n%s", s.logTextDump())
	}
	s.stopAll()
	checkCleanSpool(t, s.spool, acked, true)
}
