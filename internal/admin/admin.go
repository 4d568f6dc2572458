// Package admin serves hawk's operator HTTP endpoint: metrics, health, readiness,
// connections and configuration.
//
// The views of connections and configuration are read-only. Its listener comes from
// the upgrader like the protocol listener, so it survives a binary upgrade.
package admin

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/pprofhttp"
	"github.com/hawk-agents/hawk/internal/promtext"
)

// Source is what the admin endpoint reads from the running server.
type Source struct {
	Gatherer    *promtext.Registry // served at /metrics
	Connections func(after uint64, limit int) []conn.Info
	// Config returns the effective configuration, secrets redacted.
	Config func() map[string]any
	// Pprof reports whether /debug/pprof/ is enabled now (admin.pprof, live).
	Pprof func() bool
}

// Readiness is the /readyz state: not ready until the server calls SetReady, and
// not ready again from the start of a drain.
type Readiness struct {
	reason atomic.Pointer[string] // nil: ready
	// depend, when set, must also be healthy: a destination's broker, say.
	depend atomic.Pointer[func() (bool, string)]
}

// NewReadiness starts not ready, with reason.
func NewReadiness(reason string) *Readiness {
	r := &Readiness{}
	r.reason.Store(&reason)
	return r
}

// SetReady marks the process ready.
func (r *Readiness) SetReady() { r.reason.Store(nil) }

// SetNotReady marks the process not ready, saying why (e.g. "draining: upgrade").
func (r *Readiness) SetNotReady(reason string) { r.reason.Store(&reason) }

// Depend makes readiness also require f: the process is not ready while f reports
// false (a broker destination that is unreachable), whatever SetReady said.
func (r *Readiness) Depend(f func() (bool, string)) { r.depend.Store(&f) }

// Ready reports whether the process is ready, and why not.
func (r *Readiness) Ready() (bool, string) {
	if p := r.reason.Load(); p != nil {
		return false, *p
	}
	if f := r.depend.Load(); f != nil {
		return (*f)()
	}
	return true, ""
}

const (
	defaultConnLimit = 100
	maxConnLimit     = 10000
)

// Handler returns the admin HTTP handler.
func Handler(src Source, ready *Readiness) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promtext.Handler(src.Gatherer))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "alive"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, why := ready.Ready(); !ok {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "reason": why})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
	})
	mux.HandleFunc("GET /v1/connections", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit, after := defaultConnLimit, uint64(0)
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxConnLimit {
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": "limit must be an integer from 1 to " + strconv.Itoa(maxConnLimit)})
				return
			}
			limit = n
		}
		if v := q.Get("after"); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": "after must be a connection id"})
				return
			}
			after = n
		}
		conns := src.Connections(after, limit+1)
		resp := map[string]any{"connections": conns[:min(limit, len(conns))]}
		if len(conns) > limit {
			// Cursor pagination: ids only grow, so the next page starts after the last id.
			resp["next_after"] = conns[limit-1].ID
		}
		writeJSON(w, http.StatusOK, resp)
	})
	mux.HandleFunc("GET /v1/config", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, src.Config())
	})
	pp := pprofhttp.Handler()
	mux.HandleFunc(pprofhttp.Prefix, func(w http.ResponseWriter, r *http.Request) {
		if src.Pprof == nil || !src.Pprof() {
			http.Error(w, "pprof is disabled (admin.pprof: false)", http.StatusNotFound)
			return
		}
		pp.ServeHTTP(w, r)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
