package main

import (
	"os/exec"
	"strings"
	"testing"
)

// notLinked are packages whose init or size every start of hawk (-version, and the new
// process of each upgrade) would pay for: net/http/pprof's handlers are served by
// internal/pprofhttp, metrics are written by internal/promtext.
var notLinked = []string{
	"net/http/pprof",
	"internal/profile",
	"html",
	"html/template",
	"text/template",
	"expvar",
	"github.com/prometheus/client_golang/prometheus",
	"google.golang.org/protobuf/proto",
}

func TestServerDoesNotLink(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "github.com/hawk-agents/hawk/cmd/server").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		deps[p] = true
	}
	if !deps["github.com/hawk-agents/hawk/internal/pprofhttp"] {
		t.Fatalf("go list -deps lacks internal/pprofhttp: the list is not the server's")
	}
	for _, p := range notLinked {
		if deps[p] {
			t.Errorf("the server links %s", p)
		}
	}
}
