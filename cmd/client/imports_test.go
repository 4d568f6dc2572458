package main

import (
	"os/exec"
	"strings"
	"testing"
)

// agentInternals are the only packages of hawk's internal/ the agent side (hawkc and
// client/) may import: none of them is Linux-only or part of the server, so agents
// build for every OS hawk ships them for.
var agentInternals = map[string]bool{
	"github.com/hawk-agents/hawk/internal/protocol":        true,
	"github.com/hawk-agents/hawk/internal/mono":            true,
	"github.com/hawk-agents/hawk/internal/legacy/ffffwire": true,
	"github.com/hawk-agents/hawk/internal/legacy/formats":  true,
}

// TestAgentImportsNoServerInternals fails when hawkc or the client library starts
// depending on the server's internals, on any OS agents run on (.ci/run
// cross-compiles them too; this says which import is the cause).
func TestAgentImportsNoServerInternals(t *testing.T) {
	for _, goos := range []string{"linux", "darwin", "windows"} {
		cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "github.com/hawk-agents/hawk/cmd/client", "github.com/hawk-agents/hawk/client")
		cmd.Env = append(cmd.Environ(), "GOOS="+goos, "GOARCH=arm64")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("GOOS=%s go list: %v", goos, err)
		}
		for _, p := range strings.Fields(string(out)) {
			if strings.HasPrefix(p, "github.com/hawk-agents/hawk/internal/") && !agentInternals[p] {
				t.Errorf("GOOS=%s: the agent side imports %s", goos, p)
			}
		}
	}
}
