package config

// The files generated from the keys table: defaults.yaml, the key table in doc.go and
// the one in docs/CONFIGURATION.md. TestGeneratedFiles fails when a committed file disagrees with
// the table; with -update (go generate ./internal/config) it rewrites them instead.

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"

	"github.com/knadh/koanf/parsers/yaml"
)

var update = flag.Bool("update", false, "rewrite defaults.yaml and the key tables of doc.go and docs/CONFIGURATION.md from the keys table")

const (
	manualPath  = "../../docs/CONFIGURATION.md"
	manualBegin = "<!-- config-table:begin: generated from internal/config/keys.go by go generate ./internal/config -->\n"
	manualEnd   = "<!-- config-table:end -->"
	docBegin    = "// # Keys\n//\n"
	docEnd      = "//\n// # Reload\n"
)

func TestGeneratedFiles(t *testing.T) {
	for _, g := range []struct {
		path   string
		render func(old string) (string, error)
	}{
		{"defaults.yaml", func(string) (string, error) { return renderDefaultsYAML(), nil }},
		{"doc.go", func(old string) (string, error) { return replaceBetween(old, docBegin, docEnd, renderDocKeys()) }},
		{manualPath, func(old string) (string, error) {
			return replaceBetween(old, manualBegin, manualEnd, "\n"+renderManualTable()+"\n")
		}},
	} {
		b, err := os.ReadFile(g.path)
		if err != nil {
			t.Fatal(err)
		}
		old := string(b)
		want, err := g.render(old)
		if err != nil {
			t.Errorf("%s: %v", g.path, err)
			continue
		}
		if want == old {
			continue
		}
		if *update {
			if err := os.WriteFile(g.path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("%s disagrees with the keys table (keys.go); run go generate ./internal/config\n%s", g.path, firstDifference(old, want))
	}
}

// replaceBetween replaces what lies between the begin and end markers of doc.
func replaceBetween(doc, begin, end, body string) (string, error) {
	i := strings.Index(doc, begin)
	if i < 0 {
		return "", fmt.Errorf("no marker %q", begin)
	}
	i += len(begin)
	j := strings.Index(doc[i:], end)
	if j < 0 {
		return "", fmt.Errorf("no marker %q after %q", end, begin)
	}
	return doc[:i] + body + doc[i+j:], nil
}

func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n  have %q\n  want %q", i+1, gl, wl)
		}
	}
	return ""
}

const defaultsHeader = `# hawk configuration: every key, with its default.
#
# Generated from internal/config/keys.go by go generate ./internal/config: edit the
# table there, not this file.
#
# This file is embedded in the binary as the lowest layer of the configuration:
#   defaults (this file) < config file (-config) < HAWK_* environment < flags set on
#   the command line.
# A config file uses the same keys and nesting; any subset of them will do. A key
# left out, or given with no value ("listen:"), takes its value from the layers
# below. Unknown keys are an error, in the file as in the environment.
#
# Environment: HAWK_ + the key in upper case with '.' as '_':
#   limits.max_conns -> HAWK_LIMITS_MAX_CONNS, server_id -> HAWK_SERVER_ID.
# Flags: the key itself: -limits.max_conns=10, -log.level=debug, -admin.pprof.
# Lists (auth.tokens) are comma separated in the environment and in flags.
#
# Durations are Go durations: 300ms, 10s, 1m30s, 2h.
# Sizes are bytes: 1048576, or an integer with a unit: KiB, MiB, GiB (x1024) or
# kB, MB, GB (x1000), e.g. 64MiB.
#
# "live" keys take effect on a reload (the config file changed on disk, or SIGUSR1);
# "restart-only" keys are refused by a reload (nothing is applied, and the error names
# them) and need an upgrade: SIGHUP starts a new process that reads the new values.
`

// renderDefaultsYAML renders defaults.yaml: each key with its doc as a comment, in
// table order, grouped by section.
func renderDefaultsYAML() string {
	var b strings.Builder
	b.WriteString(defaultsHeader)
	section := ""
	for i := range keys {
		k := &keys[i]
		sec, leaf, nested := strings.Cut(k.Name, ".")
		indent := ""
		if nested {
			indent = "  "
			if sec != section {
				fmt.Fprintf(&b, "\n%s:\n", sec)
			}
		} else {
			sec, leaf = "", k.Name
			b.WriteString("\n")
		}
		section = sec
		doc := k.Doc + " " + k.Reload.String() + k.ReloadNote + "."
		for _, line := range wrap(doc, 88-len(indent)-2) {
			fmt.Fprintf(&b, "%s# %s\n", indent, line)
		}
		fmt.Fprintf(&b, "%s%s: %s\n", indent, leaf, yamlValue(k))
	}
	return b.String()
}

// yamlValue is the key's default as YAML: quoted when YAML would read the bare text
// as something else (a number, a boolean, a mapping).
func yamlValue(k *Key) string {
	if k.kind == kindObjects && k.Default == "" {
		return "[]"
	}
	if k.kind == kindList {
		if k.Default == "" {
			return "[]"
		}
		parts := strings.Split(k.Default, ",")
		for i := range parts {
			parts[i] = strconv.Quote(strings.TrimSpace(parts[i]))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	if k.kind == kindString {
		m, err := yaml.Parser().Unmarshal([]byte("v: " + k.Default))
		if err != nil || m["v"] != k.Default || strings.Contains(k.Default, ":") {
			return strconv.Quote(k.Default)
		}
	}
	return k.Default
}

func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}

// displayDefault is the default as the tables show it: "" and [] for the empty string
// and list, so that an empty cell never looks like a missing one.
func displayDefault(k *Key) string {
	switch {
	case k.Default != "":
		return k.Default
	case k.kind == kindList || k.kind == kindObjects:
		return "[]"
	}
	return `""`
}

// renderManualTable renders the key table of docs/CONFIGURATION.md. Its reload column
// says "upgrade" for restart-only keys, as the operator docs do.
func renderManualTable() string {
	var b strings.Builder
	b.WriteString("| key | default | reload |\n|---|---|---|\n")
	for i := range keys {
		k := &keys[i]
		def := "`" + displayDefault(k) + "`"
		if k.DefaultNote != "" {
			def += " " + k.DefaultNote
		}
		reload := "live"
		if k.Reload == RestartOnly {
			reload = "upgrade"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s%s |\n", k.Name, def, reload, k.ReloadNote)
	}
	return b.String()
}

// renderDocKeys renders the "# Keys" section of doc.go, without the heading.
func renderDocKeys() string {
	var tab bytes.Buffer
	tw := tabwriter.NewWriter(&tab, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "key\tdefault\treload")
	for i := range keys {
		k := &keys[i]
		def := displayDefault(k)
		if k.DefaultNote != "" {
			def += " " + strings.ReplaceAll(k.DefaultNote, "`", "")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s%s\n", k.Name, def, k.Reload, k.ReloadNote)
	}
	tw.Flush()
	var b strings.Builder
	b.WriteString("// Keys returns every key with its default, doc and reload class; this table and\n")
	b.WriteString("// defaults.yaml are generated from it (go generate).\n//\n")
	for _, line := range strings.Split(strings.TrimSuffix(tab.String(), "\n"), "\n") {
		b.WriteString("//\t" + line + "\n")
	}
	return b.String()
}
