package pprofhttp

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	stdpprof "net/http/pprof"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, method, url string, body io.Reader) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func start(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// The index page is net/http/pprof's, but for the counts, which move between two reads.
func TestIndexIsNetHTTPPprofs(t *testing.T) {
	ours := start(t, Handler())
	theirs := start(t, http.HandlerFunc(stdpprof.Index))
	counts := regexp.MustCompile(`<td>\d+</td>`)
	code, h, a := get(t, "GET", ours+Prefix, nil)
	if code != http.StatusOK || h.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("index: status %d, Content-Type %q", code, h.Get("Content-Type"))
	}
	_, _, b := get(t, "GET", theirs+Prefix, nil)
	a, b = counts.ReplaceAll(a, []byte("<td>N</td>")), counts.ReplaceAll(b, []byte("<td>N</td>"))
	if !bytes.Equal(a, b) {
		t.Fatalf("index differs from net/http/pprof's:\n%s\n--- theirs:\n%s", a, b)
	}
	for _, want := range []string{"goroutine?debug=1", "heap?debug=1", ">profile<", ">trace<"} {
		if !bytes.Contains(a, []byte(want)) {
			t.Errorf("index lacks %q", want)
		}
	}
}

func TestNamedProfiles(t *testing.T) {
	url := start(t, Handler())
	code, h, body := get(t, "GET", url+Prefix+"goroutine?debug=1", nil)
	if code != http.StatusOK || h.Get("Content-Type") != "text/plain; charset=utf-8" || !bytes.HasPrefix(body, []byte("goroutine profile: total ")) {
		t.Fatalf("goroutine?debug=1: status %d, %q, %.100s", code, h.Get("Content-Type"), body)
	}
	code, _, body = get(t, "GET", url+Prefix+"heap?gc=1&debug=1", nil)
	if code != http.StatusOK || !bytes.Contains(body, []byte("# HeapAlloc = ")) {
		t.Fatalf("heap?gc=1&debug=1: status %d, %.200s", code, body)
	}
	// debug=0 is the gzipped protocol buffer go tool pprof reads.
	code, h, body = get(t, "GET", url+Prefix+"allocs", nil)
	if code != http.StatusOK || !bytes.HasPrefix(body, []byte{0x1f, 0x8b}) ||
		h.Get("Content-Disposition") != `attachment; filename="allocs"` || h.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("allocs: status %d, headers %v, % x", code, h, body[:min(len(body), 4)])
	}
	if code, _, _ := get(t, "GET", url+Prefix+"nosuch", nil); code != http.StatusNotFound {
		t.Errorf("unknown profile: status %d, want 404", code)
	}
	code, _, body = get(t, "GET", url+Prefix+"heap?seconds=1", nil)
	if code != http.StatusBadRequest || !bytes.Contains(body, []byte("-base")) {
		t.Errorf("heap?seconds=1: status %d, %s; want 400 naming go tool pprof -base", code, body)
	}
}

func TestCmdline(t *testing.T) {
	code, _, body := get(t, "GET", start(t, Handler())+Prefix+"cmdline", nil)
	if want := strings.Join(os.Args, "\x00"); code != http.StatusOK || string(body) != want {
		t.Fatalf("cmdline: status %d, %q, want %q", code, body, want)
	}
}

func TestSymbol(t *testing.T) {
	url := start(t, Handler())
	pc := reflect.ValueOf(TestSymbol).Pointer()
	name := runtime.FuncForPC(pc).Name()
	want := fmt.Sprintf("num_symbols: 1\n%#x %s\n%#x %s\n", pc, name, pc, name)
	_, _, got := get(t, "GET", fmt.Sprintf("%s%ssymbol?%#x+%#x", url, Prefix, pc, pc), nil)
	if string(got) != want {
		t.Errorf("GET symbol: %q, want %q", got, want)
	}
	_, _, got = get(t, "POST", url+Prefix+"symbol", strings.NewReader(fmt.Sprintf("%#x+%#x", pc, pc)))
	if string(got) != want {
		t.Errorf("POST symbol: %q, want %q", got, want)
	}
}

func TestCPUProfileAndTrace(t *testing.T) {
	url := start(t, Handler())
	code, h, body := get(t, "GET", url+Prefix+"profile?seconds=1", nil)
	if code != http.StatusOK || !bytes.HasPrefix(body, []byte{0x1f, 0x8b}) || h.Get("Content-Disposition") != `attachment; filename="profile"` {
		t.Fatalf("profile: status %d, headers %v, %d bytes", code, h, len(body))
	}
	code, h, body = get(t, "GET", url+Prefix+"trace?seconds=0.05", nil)
	if code != http.StatusOK || !bytes.HasPrefix(body, []byte("go 1.")) || h.Get("Content-Disposition") != `attachment; filename="trace"` {
		t.Fatalf("trace: status %d, headers %v, %.10q", code, h, body)
	}
}

func TestOutsidePrefix(t *testing.T) {
	if code, _, _ := get(t, "GET", start(t, Handler())+"/debug/pprofx", nil); code != http.StatusNotFound {
		t.Fatalf("outside %s: status %d, want 404", Prefix, code)
	}
}
