package reload

import (
	"fmt"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hawk-agents/hawk/internal/auth"
	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/tlsconf"
)

// tokensPollInterval is how often auth.tokens_file is checked for a change, like
// the TLS files (filestamp says why polling).
const tokensPollInterval = time.Second

// OpenTokensFile reads auth.tokens_file; nil when the key is empty.
func OpenTokensFile(c *config.Config) (*auth.File, error) {
	if c.Auth.TokensFile == "" {
		return nil, nil
	}
	f, err := auth.OpenFile(c.Auth.TokensFile)
	if err != nil {
		return nil, fmt.Errorf("auth.tokens_file: %w", err)
	}
	return f, nil
}

// AuthSet is the credentials of c and of the tokens file f (nil: none).
func AuthSet(c *config.Config, f *auth.File) (*auth.Set, error) {
	creds, err := c.Auth.CredentialList()
	if err != nil {
		return nil, err
	}
	if f != nil {
		creds = append(creds, f.Credentials()...)
	}
	set, err := auth.NewSet(creds)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return set, nil
}

// AuthMode says which authentication mode c and set put the native listener in,
// as the start log and -check-config state it: a warning for every way an agent
// can speak for another.
func AuthMode(c *config.Config, set *auth.Set) (zapcore.Level, string) {
	certs := c.TLS.CertFile != "" && c.TLS.ClientCAFile != "" && c.TLS.ClientAuth == tlsconf.AuthRequired
	switch {
	case set.Unbound() > 0:
		return zapcore.WarnLevel, fmt.Sprintf("auth: %d of %d credentials are unbound auth.tokens, which let an agent speak for "+
			"ANY client id; bind each token to its ids with auth.credentials or auth.tokens_file", set.Unbound(), set.Len())
	case !set.Empty():
		return zapcore.InfoLevel, fmt.Sprintf("auth: %d credentials, each bound to the client ids it covers", set.Len())
	case certs:
		return zapcore.InfoLevel, "auth: client certificates (tls.client_auth required) bind client ids; no tokens"
	case c.Auth.Open:
		return zapcore.WarnLevel, "auth: OPEN server (auth.open: true): any agent from any address may speak for any client id"
	}
	return zapcore.WarnLevel, "auth: open server without credentials: serving agents on loopback addresses only " +
		"(set auth.credentials or auth.tokens_file; auth.open: true serves everyone, unauthenticated)"
}

// reloadTokensFile reads auth.tokens_file again and, when its credentials changed,
// applies them: connections no longer covered are closed. A bad file keeps the
// last good credentials. Called with mu held.
func (r *Reloader) reloadTokensFile(trigger string) {
	if r.tokens == nil {
		return
	}
	changed, err := r.tokens.Reload()
	r.o.Metrics.TokensFileReload(err == nil)
	if err != nil {
		r.o.Log.Error("tokens file reload failed; the last good credentials stay in force", zap.String("trigger", trigger),
			zap.String("file", r.tokens.Path()), zap.Error(err))
		return
	}
	if !changed {
		return
	}
	st, err := r.settings(r.o.Config.Load(), r.tokens)
	if err != nil {
		r.o.Log.Error("tokens file not applied; the credentials in force stay", zap.String("trigger", trigger),
			zap.String("file", r.tokens.Path()), zap.Error(err))
		return
	}
	revoked := r.o.Target.Conns.Apply(st)
	r.o.Log.Info("tokens file reloaded", zap.String("trigger", trigger), zap.String("file", r.tokens.Path()),
		zap.Int("credentials", len(r.tokens.Credentials())), zap.Int("connections_revoked", revoked))
}

// TokensWatch is the serving-phase actor that reloads auth.tokens_file when it changes.
func (r *Reloader) TokensWatch() (func() error, func(error)) {
	return r.poll(tokensPollInterval, func() {
		if r.tokens != nil && r.tokens.Changed() {
			r.reloadTokensFile("tokens file changed")
		}
	})
}
