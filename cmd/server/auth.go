package main

import (
	"context"
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

// openTokensFile reads auth.tokens_file; nil when the key is empty.
func openTokensFile(c *config.Config) (*auth.File, error) {
	if c.Auth.TokensFile == "" {
		return nil, nil
	}
	f, err := auth.OpenFile(c.Auth.TokensFile)
	if err != nil {
		return nil, fmt.Errorf("auth.tokens_file: %w", err)
	}
	return f, nil
}

// authSet is the credentials of c and of the tokens file f (nil: none).
func authSet(c *config.Config, f *auth.File) (*auth.Set, error) {
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

// authMode says which authentication mode c and set put the native listener in,
// as the start log and -check-config state it: a warning for every way an agent
// can speak for another.
func authMode(c *config.Config, set *auth.Set) (zapcore.Level, string) {
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
// last good credentials. Called with reloadMu held.
func (s *server) reloadTokensFile(trigger string) {
	if s.tokens == nil {
		return
	}
	changed, err := s.tokens.Reload()
	s.met.TokensFileReload(err == nil)
	if err != nil {
		s.log.Error("tokens file reload failed; the last good credentials stay in force", zap.String("trigger", trigger),
			zap.String("file", s.tokens.Path()), zap.Error(err))
		return
	}
	if !changed {
		return
	}
	st, err := settingsFrom(s.cfg.Load(), version, s.tokens)
	if err != nil {
		s.log.Error("tokens file not applied; the credentials in force stay", zap.String("trigger", trigger),
			zap.String("file", s.tokens.Path()), zap.Error(err))
		return
	}
	revoked := s.conns.Apply(s.withTLS(st))
	s.log.Info("tokens file reloaded", zap.String("trigger", trigger), zap.String("file", s.tokens.Path()),
		zap.Int("credentials", len(s.tokens.Credentials())), zap.Int("connections_revoked", revoked))
}

// tokensWatch is the serving-phase actor that reloads auth.tokens_file when it changes.
func (s *server) tokensWatch() (func() error, func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	return func() error {
			t := time.NewTicker(tokensPollInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-t.C:
				}
				s.reloadMu.Lock()
				if s.tokens != nil && s.tokens.Changed() {
					s.reloadTokensFile("tokens file changed")
				}
				s.reloadMu.Unlock()
			}
		}, func(error) {
			cancel()
		}
}
