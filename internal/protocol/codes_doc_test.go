package protocol

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestCodesTableMatchesProtocolDoc parses the codes table of docs/PROTOCOL.md
// section 5 and checks it against Codes and Retryable: every code in one is in
// the other, and the retry column says "yes" exactly for the retryable ones, so
// that the document and the code cannot drift apart.
func TestCodesTableMatchesProtocolDoc(t *testing.T) {
	doc, err := os.ReadFile("../../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start := strings.Index(text, "\n## 5. Codes")
	if start < 0 {
		t.Fatal(`PROTOCOL.md has no "## 5. Codes" section`)
	}
	section := text[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\|([^|]*)\\|([^|]*)\\|([^|]*)\\|\\s*$")
	doc5 := map[Code]bool{}
	for _, line := range strings.Split(section, "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		code := Code(m[1])
		if _, dup := doc5[code]; dup {
			t.Errorf("code %s listed twice in PROTOCOL.md section 5", code)
		}
		retry := strings.TrimSpace(m[4])
		switch {
		case retry == "yes" || strings.HasPrefix(retry, "yes:") || strings.HasPrefix(retry, "yes,") || strings.HasPrefix(retry, "yes "):
			doc5[code] = true
		case retry == "no" || strings.HasPrefix(retry, "no:") || strings.HasPrefix(retry, "no,") || strings.HasPrefix(retry, "no "):
			doc5[code] = false
		default:
			t.Errorf("code %s: retry column %q starts with neither yes nor no", code, retry)
		}
	}
	if len(doc5) == 0 {
		t.Fatal("no code rows found in PROTOCOL.md section 5")
	}
	codes := Codes()
	slices.Sort(codes)
	for _, c := range codes {
		retry, ok := doc5[c]
		switch {
		case !ok:
			t.Errorf("code %s is missing from PROTOCOL.md section 5", c)
		case retry != c.Retryable():
			t.Errorf("code %s: PROTOCOL.md says retry %v, Retryable() says %v", c, retry, c.Retryable())
		}
	}
	for c := range doc5 {
		if !slices.Contains(codes, c) {
			t.Errorf("PROTOCOL.md section 5 lists %s, which protocol.Codes() does not know", c)
		}
	}
}
