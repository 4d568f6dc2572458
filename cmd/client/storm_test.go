package main

import (
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
)

// startBusyServer is an ackServer whose first busy connections are refused with
// ERROR busy and a retry_after_ms of 20 ms, as a server over its handshake rate does.
func startBusyServer(t *testing.T, busy int) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &ackServer{ln: ln, seen: map[string]int{}, srcs: map[string]bool{}}
	var refusals sync.WaitGroup
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for i := 0; ; i++ {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, nc)
			s.mu.Unlock()
			if i < busy {
				refusals.Go(func() {
					nc.Write(protocol.AppendJSON(nil, protocol.TypeError, 0, &protocol.ErrorPayload{Code: protocol.CodeBusy, Message: "busy: admitting 1 handshakes/s", RetryAfterMS: 20}))
					nc.Close()
				})
				continue
			}
			s.wg.Add(1)
			go s.serve(nc)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
		refusals.Wait()
	})
	return ln.Addr().String()
}

// A first dial refused busy is not a connect error: load waits retry_after_ms and
// dials again, and counts the refusal.
func TestLoadWaitsOutBusy(t *testing.T) {
	addr := startBusyServer(t, 2)
	// Connecting, refusals and their retries included, must fit in -d: 2 s leaves a
	// loaded machine room where 300 ms did not.
	code, out, errOut := runCmd("load", "-addr", addr, "-c", "3", "-w", "1", "-d", "2s", "-json", "-src-spread=false")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	var sum summary
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Busy != 2 || sum.BusyAfterGoaway != 0 || sum.ConnectErrors != 0 || sum.Errors != 0 || sum.Acked == 0 {
		t.Fatalf("summary %+v: want 2 busy, no errors, reports acked", sum)
	}
}

func TestStormResult(t *testing.T) {
	var st stormStats
	if peak, move := st.result(); peak != 0 || move != 0 {
		t.Fatalf("empty: peak %d, move %v", peak, move)
	}
	st.firstGoaway.Store(int64(10*time.Second) + 1)
	// 3 reconnects within [10s, 10.9s], then 2 more a second later.
	for _, ms := range []int{10_000, 10_500, 10_900, 11_950, 12_500} {
		st.reconnects = append(st.reconnects, time.Duration(ms)*time.Millisecond)
	}
	peak, move := st.result()
	if peak != 3 || move != 2500*time.Millisecond {
		t.Fatalf("peak %d, move %v; want 3 in a second, 2.5s from the first GOAWAY to the last reconnect", peak, move)
	}
}
