package main

import (
	"fmt"
	"io"
	"os"

	"github.com/hawk-agents/hawk/internal/supervise"
)

// runSupervise runs this binary as the server (with args, the server's flags)
// under the supervisor, which stays when an upgrade replaces the server.
func runSupervise(args []string, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "hawk supervise: %v\n", err)
		return 1
	}
	return supervise.Run(exe, args, stderr)
}
