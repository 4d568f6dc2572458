package e2e

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/testutil"
)

// pythonScript is a Python program of clients/python talking to a server, read
// line by line. The test's cleanup kills it if it still runs.
type pythonScript struct {
	t      *testing.T
	s      *server
	name   string
	stdin  io.WriteCloser
	stderr *testutil.Buffer
	lines  chan string
	done   chan error
	waited bool
	err    error
}

// startPythonScript runs clients/python/<name> against s (env added to pythonEnv).
func startPythonScript(t *testing.T, s *server, name string, env []string) *pythonScript {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	cmd := exec.CommandContext(ctx, python3(t), name)
	cmd.Dir = pythonDir
	cmd.Env = append(pythonEnv(s), env...)
	cmd.WaitDelay = 5 * time.Second
	p := &pythonScript{t: t, s: s, name: name, stderr: &testutil.Buffer{}, lines: make(chan string, 16), done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	// The reader reads stdout to EOF, then waits for the process (Wait must not
	// run before the pipe is drained).
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cancel() // kills the script if it is still running
		p.wait()
	})
	return p
}

// wait waits for the script to exit and returns its error.
func (p *pythonScript) wait() error {
	if !p.waited {
		p.err, p.waited = <-p.done, true
	}
	return p.err
}

// next returns the script's next line, failing the test if it exits or says
// nothing for 30s first.
func (p *pythonScript) next(what string) string {
	p.t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			p.t.Fatalf("%s exited before %s: %v; stderr:\n%s\nserver log:\n%s", p.name, what, p.wait(), p.stderr.String(), p.s.logTextDump())
		}
		return l
	case <-time.After(30 * time.Second):
		p.t.Fatalf("no %s from %s within 30s; stderr:\n%s", what, p.name, p.stderr.String())
	}
	return ""
}

// last reads to the end and returns the last line, failing the test unless the
// script exits 0.
func (p *pythonScript) last(what string) string {
	p.t.Helper()
	l := p.next(what)
	for more := range p.lines {
		l = more
	}
	if err := p.wait(); err != nil {
		p.t.Fatalf("%s failed: %v\nlast line: %s\nstderr:\n%s", p.name, err, l, p.stderr.String())
	}
	return l
}
