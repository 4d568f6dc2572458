//go:build race

package e2e

// tlsHandoffScale is TestTLSHandoffUnderLoad's size under -race, smaller: its
// mutual-TLS agents run in the test process, which the race detector slows
// several times over, and CI runs the suite under -race on 2 shared cores. The
// full size (1,000 through 20) runs without -race.
func tlsHandoffScale() (conns, upgrades int) { return 200, 5 }
