// Package pprofhttp serves the runtime's profiles at /debug/pprof/ as net/http/pprof does, without linking it.
//
// Linking net/http/pprof costs every start of the process its init and its size. The paths, parameters and answers are net/http/pprof's: the index page, every
// runtime/pprof profile by name (debug=N for text, gc=1 on heap), cmdline, profile (CPU,
// seconds=30), symbol and trace (seconds=1). The difference: a named profile does not take
// seconds= (net/http/pprof's delta profile, which needs a profile parser); the answer is
// 400 saying how to take the delta with go tool pprof -base. Nothing is registered on
// http.DefaultServeMux.
package pprofhttp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Prefix is the path every handler here serves under.
const Prefix = "/debug/pprof/"

// Handler serves Prefix and every path under it.
func Handler() http.Handler { return http.HandlerFunc(serve) }

func serve(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	switch name {
	case "":
		index(w)
	case "cmdline":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, strings.Join(os.Args, "\x00"))
	case "profile":
		cpuProfile(w, r)
	case "symbol":
		symbol(w, r)
	case "trace":
		execTrace(w, r)
	default:
		named(w, r, name)
	}
}

// named serves a runtime/pprof profile: heap, goroutine, allocs, block, mutex, ...
func named(w http.ResponseWriter, r *http.Request, name string) {
	p := pprof.Lookup(name)
	if p == nil {
		serveError(w, http.StatusNotFound, "Unknown profile")
		return
	}
	if r.FormValue("seconds") != "" {
		serveError(w, http.StatusBadRequest, `"seconds" (a delta profile) is not served here: take two profiles and compare them with go tool pprof -base FIRST SECOND`)
		return
	}
	if gc, _ := strconv.Atoi(r.FormValue("gc")); name == "heap" && gc > 0 {
		runtime.GC()
	}
	debug, _ := strconv.Atoi(r.FormValue("debug"))
	if debug != 0 {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	}
	p.WriteTo(w, debug)
}

func cpuProfile(w http.ResponseWriter, r *http.Request) {
	sec, err := strconv.ParseInt(r.FormValue("seconds"), 10, 64)
	if sec <= 0 || err != nil {
		sec = 30
	}
	record(w, r, time.Duration(sec)*time.Second, "profile", "CPU profiling", pprof.StartCPUProfile, pprof.StopCPUProfile)
}

func execTrace(w http.ResponseWriter, r *http.Request) {
	sec, err := strconv.ParseFloat(r.FormValue("seconds"), 64)
	if sec <= 0 || err != nil {
		sec = 1
	}
	record(w, r, time.Duration(sec*float64(time.Second)), "trace", "tracing", trace.Start, trace.Stop)
}

// record writes what start records for d, or until the request ends, as the
// attachment file.
func record(w http.ResponseWriter, r *http.Request, d time.Duration, file, what string, start func(io.Writer) error, stop func()) {
	extendWriteDeadline(w, r, d)
	// Set before start: once it works, it starts writing.
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+file+`"`)
	if err := start(w); err != nil {
		serveError(w, http.StatusInternalServerError, "Could not enable "+what+": "+err.Error())
		return
	}
	wait(r, d)
	stop()
}

// symbol maps the program counters of the request (GET query or POST body, joined by
// '+') to function names, as go tool pprof asks.
func symbol(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	// The whole body is read before any output is written.
	var buf bytes.Buffer
	buf.WriteString("num_symbols: 1\n") // pprof only asks whether symbols exist
	var b *bufio.Reader
	if r.Method == http.MethodPost {
		b = bufio.NewReader(r.Body)
	} else {
		b = bufio.NewReader(strings.NewReader(r.URL.RawQuery))
	}
	for {
		word, err := b.ReadSlice('+')
		if err == nil {
			word = word[:len(word)-1]
		}
		if pc, _ := strconv.ParseUint(string(word), 0, 64); pc != 0 {
			if f := runtime.FuncForPC(uintptr(pc)); f != nil {
				fmt.Fprintf(&buf, "%#x %s\n", pc, f.Name())
			}
		}
		// The last word ends at EOF, not at '+'.
		if err != nil {
			if err != io.EOF {
				fmt.Fprintf(&buf, "reading request: %v\n", err)
			}
			break
		}
	}
	w.Write(buf.Bytes())
}

// description is the index's text for a profile; a switch, not a map, so that nothing
// is built at init.
func description(name string) string {
	switch name {
	case "allocs":
		return "A sampling of all past memory allocations"
	case "block":
		return "Stack traces that led to blocking on synchronization primitives"
	case "cmdline":
		return "The command line invocation of the current program"
	case "goroutine":
		return "Stack traces of all current goroutines. Use debug=2 as a query parameter to export in the same format as an unrecovered panic."
	case "heap":
		return "A sampling of memory allocations of live objects. You can specify the gc GET parameter to run GC before taking the heap sample."
	case "mutex":
		return "Stack traces of holders of contended mutexes"
	case "profile":
		return "CPU profile. You can specify the duration in the seconds GET parameter. After you get the profile file, use the go tool pprof command to investigate the profile."
	case "symbol":
		return "Maps given program counters to function names. Counters can be specified in a GET raw query or POST body, multiple counters are separated by '+'."
	case "threadcreate":
		return "Stack traces that led to the creation of new OS threads"
	case "trace":
		return "A trace of execution of the current program. You can specify the duration in the seconds GET parameter. After you get the trace file, use the go tool trace command to investigate the trace."
	}
	return ""
}

type entry struct {
	name  string
	count int
}

// index writes the HTML list of profiles net/http/pprof's index writes.
func index(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// html.EscapeString's replacements, built here rather than at init, and without
	// linking the html package.
	escape := strings.NewReplacer(`&`, "&amp;", `'`, "&#39;", `<`, "&lt;", `>`, "&gt;", `"`, "&#34;")
	var list []entry
	for _, p := range pprof.Profiles() {
		list = append(list, entry{p.Name(), p.Count()})
	}
	for _, n := range []string{"cmdline", "profile", "symbol", "trace"} {
		list = append(list, entry{name: n})
	}
	slices.SortFunc(list, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	var b bytes.Buffer
	b.WriteString(`<html>
<head>
<title>/debug/pprof/</title>
<style>
.profile-name{
	display:inline-block;
	width:6rem;
}
</style>
</head>
<body>
/debug/pprof/
<br>
<p>Set debug=1 as a query parameter to export in legacy text format</p>
<br>
Types of profiles available:
<table>
<thead><td>Count</td><td>Profile</td></thead>
`)
	for _, e := range list {
		link := &url.URL{Path: e.name, RawQuery: "debug=1"}
		fmt.Fprintf(&b, "<tr><td>%d</td><td><a href='%s'>%s</a></td></tr>\n", e.count, escape.Replace(link.String()), escape.Replace(e.name))
	}
	b.WriteString(`</table>
<a href="goroutine?debug=2">full goroutine stack dump</a>
<br>
<p>
Profile Descriptions:
<ul>
`)
	for _, e := range list {
		fmt.Fprintf(&b, "<li><div class=profile-name>%s: </div> %s</li>\n", escape.Replace(e.name), escape.Replace(description(e.name)))
	}
	b.WriteString(`</ul>
</p>
</body>
</html>`)
	w.Write(b.Bytes())
}

// wait returns after d or when the client goes away.
func wait(r *http.Request, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

// extendWriteDeadline gives a response that takes d to produce the server's
// WriteTimeout on top of d.
func extendWriteDeadline(w http.ResponseWriter, r *http.Request, d time.Duration) {
	if srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server); ok && srv.WriteTimeout > 0 {
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(srv.WriteTimeout + d))
	}
}

func serveError(w http.ResponseWriter, status int, txt string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Go-Pprof", "1")
	w.Header().Del("Content-Disposition")
	w.WriteHeader(status)
	io.WriteString(w, txt+"\n")
}
