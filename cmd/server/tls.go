package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/tlsconf"
)

// tlsPollInterval is how often the TLS files are checked for a change. Polling,
// not inotify: certificate tooling replaces files by rename, and often replaces the
// directory they are in (Kubernetes secrets), which a watch on the files misses.
const tlsPollInterval = time.Second

// tlsFiles maps the tls.* keys to what tlsconf loads.
func tlsFiles(c *config.TLS) tlsconf.Files {
	f := tlsconf.Files{CertFile: c.CertFile, KeyFile: c.KeyFile, MinVersion: tls.VersionTLS12, ClientAuth: c.ClientAuth}
	if c.MinVersion == "1.3" {
		f.MinVersion = tls.VersionTLS13
	}
	if c.ClientAuth != tlsconf.AuthNone {
		f.ClientCAFile = c.ClientCAFile
	}
	return f
}

// openTLS loads the TLS files when tls.cert_file or tls.key_file is set.
func (s *server) openTLS(c *config.Config) error {
	if c.TLS.CertFile == "" && c.TLS.KeyFile == "" {
		return nil
	}
	r, err := tlsconf.New(tlsFiles(&c.TLS))
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	s.tls, s.tlsConfig = r, r.Config()
	s.met.TLSLoaded(r.Current().NotAfter)
	s.log.Info("TLS on the protocol listener", zap.String("cert_file", c.TLS.CertFile), zap.Time("not_after", r.Current().NotAfter),
		zap.String("min_version", c.TLS.MinVersion), zap.String("client_ca_file", c.TLS.ClientCAFile), zap.String("client_auth", c.TLS.ClientAuth))
	return nil
}

// withTLS completes connection settings with the TLS configuration in force.
func (s *server) withTLS(st *conn.Settings) *conn.Settings {
	st.TLS = s.tlsConfig
	return st
}

// reloadTLS reads the TLS files again: new handshakes use them at once; a bad file
// keeps the last good ones. Connections whose client CA left the bundle are told
// GOAWAY credentials. Called with reloadMu held.
func (s *server) reloadTLS(trigger string) {
	if s.tls == nil {
		return
	}
	// Stamped before reading: a change made while the files are read is seen by the
	// next poll. A reload for a signal stamps too, so the poll does not load the
	// same change again (and count it twice).
	s.tlsSeen = tlsStamp(s.tls.Files())
	mat, err := s.tls.Reload(nil)
	if err != nil {
		s.met.TLSReload(false, time.Time{})
		s.log.Error("TLS reload failed; the last good certificate, key and client CA bundle stay in force",
			zap.String("trigger", trigger), zap.Error(err))
		return
	}
	s.met.TLSReload(true, mat.NotAfter)
	moved := 0
	if mat.Pool != nil {
		moved = s.conns.CredentialsChanged(mat)
	}
	s.log.Info("TLS files reloaded", zap.String("trigger", trigger), zap.Time("not_after", mat.NotAfter),
		zap.Int("client_cas", len(mat.CAs)), zap.Int("connections_told_goaway_credentials", moved))
}

// tlsWatch is the serving-phase actor that reloads the TLS files when one changes.
func (s *server) tlsWatch() (func() error, func(error)) {
	ctx, cancel := context.WithCancel(context.Background())
	return func() error {
			files := s.tls.Files()
			s.reloadMu.Lock()
			s.tlsSeen = tlsStamp(files)
			s.reloadMu.Unlock()
			t := time.NewTicker(tlsPollInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-t.C:
				}
				s.reloadMu.Lock()
				if tlsStamp(files) != s.tlsSeen {
					s.reloadTLS("tls file changed")
				}
				s.reloadMu.Unlock()
			}
		}, func(error) {
			cancel()
		}
}

// tlsStamp identifies the files' versions: size, modification time and inode of each.
func tlsStamp(f tlsconf.Files) string {
	var out string
	for _, p := range []string{f.CertFile, f.KeyFile, f.ClientCAFile} {
		if p == "" {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			out += p + ":missing;"
			continue
		}
		var ino uint64
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			ino = st.Ino
		}
		out += fmt.Sprintf("%s:%d:%d:%d;", p, fi.Size(), fi.ModTime().UnixNano(), ino)
	}
	return out
}
