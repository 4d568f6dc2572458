package main

import "testing"

func TestTmpBig(t *testing.T) {
	srv := startAckServer(t, "")
	code, out, errOut := runCmd("load", "-addr", srv.ln.Addr().String(), "-c", "1000", "-w", "8", "-s", "256", "-d", "5s")
	t.Logf("exit %d\n%s\n%s", code, out, errOut)
}
