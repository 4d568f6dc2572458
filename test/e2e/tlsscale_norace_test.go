//go:build !race

package e2e

// tlsHandoffScale is TestTLSHandoffUnderLoad's size: the full 1,000 TLS
// connections through 20 upgrades.
func tlsHandoffScale() (conns, upgrades int) { return 1000, 20 }
