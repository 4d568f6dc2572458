// Package reload applies a changed configuration, and changed TLS files, to the running daemon without a restart.
package reload

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/auth"
	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/metrics"
)

// Options configures a Reloader.
type Options struct {
	Loader  *config.Loader
	Config  *config.Holder // the configuration in force; a reload stores the next one
	Version string
	TLS     *TLS       // nil without TLS
	Tokens  *auth.File // auth.tokens_file as opened at start; nil without one
	Metrics *metrics.Metrics
	Log     *zap.Logger
	Target  Target
}

// Reloader runs reloads, one at a time: the file watch, SIGUSR1, hawk reload and
// the TLS poll may coincide.
type Reloader struct {
	o      Options
	mu     sync.Mutex
	tokens *auth.File             // auth.tokens_file in force; under mu
	last   atomic.Pointer[string] // the last reload's time and summary, for hawk status
}

// New returns a Reloader.
func New(o Options) *Reloader { return &Reloader{o: o, tokens: o.Tokens} }

// Result is what a reload did, for hawk reload and hawk status.
type Result struct {
	Err     error    // the rejection; nil when applied (or nothing to apply)
	Changes []string // "key: old -> new", as logged
	None    string   // why nothing was done, when Err is nil and Changes empty
}

// Summary is the line hawk reload prints.
func (r Result) Summary() string {
	switch {
	case r.Err != nil:
		return "config reload rejected; the running configuration is unchanged: " + r.Err.Error()
	case len(r.Changes) == 0:
		return "config reload: " + r.None
	}
	return fmt.Sprintf("config reloaded: %d changed: %s", len(r.Changes), strings.Join(r.Changes, "; "))
}

// Last is the last reload's time and summary ("" before the first).
func (r *Reloader) Last() string {
	if p := r.last.Load(); p != nil {
		return *p
	}
	return ""
}

// settings is what connections obey under c and tokens, with the TLS
// configuration in force.
func (r *Reloader) settings(c *config.Config, tokens *auth.File) (*conn.Settings, error) {
	st, err := SettingsFrom(c, r.o.Version, tokens)
	if err == nil {
		r.o.TLS.Complete(st)
	}
	return st, err
}

// Next loads the configuration from its sources as a reload would, without
// applying it (an upgrade reads where the new process will listen); nil without a
// config file.
func (r *Reloader) Next() (*config.Config, error) {
	if r.o.Loader.File == "" {
		return nil, nil
	}
	r.mu.Lock() // the loader is the reloads' too
	defer r.mu.Unlock()
	return r.o.Loader.Load()
}

// Reload rebuilds the configuration from its sources, validates and diffs it, and
// applies it only if every change can be made in a running process. Nothing is
// touched on failure; one error line names every offending key.
func (r *Reloader) Reload(trigger string) Result {
	res := r.reload(trigger, false)
	sum := time.Now().UTC().Format(time.RFC3339) + " " + res.Summary()
	r.last.Store(&sum)
	return res
}

// Armed is the reload the file watch makes once it is in place: it catches a save
// made between loading the file and arming the watch, and is neither logged nor
// counted when nothing changed.
func (r *Reloader) Armed() { r.reload("watch armed", true) }

func (r *Reloader) reload(trigger string, quiet bool) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	log, met, loader, t := r.o.Log, r.o.Metrics, r.o.Loader, &r.o.Target
	// Every reload (SIGUSR1, hawk reload, a config file change) reads the TLS files
	// again, whatever the configuration says.
	r.o.TLS.reload(trigger, t.Conns)
	r.reloadTokensFile(trigger)
	if loader.File == "" {
		log.Info("config reload: no config file was given (-config); nothing to reload", zap.String("trigger", trigger))
		return Result{None: "no config file was given (-config); nothing to reload"}
	}
	running := r.o.Config.Load()
	next, changes, err := config.Prepare(loader, running)
	rl := &reloading{next: next, tokens: r.tokens}
	if err == nil && next.Auth.TokensFile != running.Auth.TokensFile {
		rl.tokens, err = OpenTokensFile(next)
	}
	if err == nil {
		// Derived before anything is applied: the hostname (an empty server_id) and
		// the tokens file are what Prepare cannot vouch for.
		rl.settings, err = r.settings(next, rl.tokens)
	}
	if err != nil {
		met.Reload(false)
		log.Error("config reload rejected; the running configuration is unchanged", zap.String("trigger", trigger),
			zap.String("file", loader.File), zap.Error(err))
		return Result{Err: err}
	}
	if len(changes) == 0 {
		if !quiet {
			met.Reload(true)
			log.Info("config reload: no changes", zap.String("trigger", trigger))
		}
		return Result{None: "no changes in " + loader.File}
	}
	applied := make(map[liveOption]bool, len(changes))
	for _, c := range changes { // Prepare refused restart-only keys: all of these are live
		opt, ok := liveOptions[c.Key]
		if !ok {
			opt, ok = partlyLiveOptions[c.Key] // legacy.listeners: its live parts
		}
		if !ok {
			log.Error("config reload: live key has no option; its new value is stored but not applied", zap.String("key", c.Key))
			continue
		}
		if !applied[opt] {
			applied[opt] = true
			opt.apply(t, rl)
		}
	}
	r.o.Config.Store(next)
	r.tokens = rl.tokens
	res := Result{}
	for _, c := range changes {
		log.Info("config changed", zap.String("key", c.Key), zap.String("old", c.Old), zap.String("new", c.New))
		res.Changes = append(res.Changes, c.Key+": "+c.Old+" -> "+c.New)
	}
	met.Reload(true)
	log.Info("config reloaded", zap.String("trigger", trigger), zap.Int("changes", len(changes)), zap.Int("connections_revoked", rl.revoked))
	return res
}
