package reload

import (
	"crypto/tls"
	"fmt"
	"os"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/metrics"
	"github.com/hawk-agents/hawk/internal/tlsconf"
)

// tlsPollInterval is how often the TLS files are checked for a change. Polling,
// not inotify: certificate tooling replaces files by rename, and often replaces the
// directory they are in (Kubernetes secrets), which a watch on the files misses.
const tlsPollInterval = time.Second

// TLS is the protocol listener's TLS files: loaded at start, read again at every
// reload and when one of them changes.
type TLS struct {
	files   *tlsconf.Reloader
	config  *tls.Config // the listener's, reading files's material per handshake
	seen    string      // stamp of the files the last reload read; under the Reloader's mu
	tickets *tickets
	met     *metrics.Metrics
	log     *zap.Logger
}

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

// OpenTLS loads the TLS files when tls.cert_file or tls.key_file is set; nil
// (and no error) without TLS. tickets is the session ticket keys file the previous
// process of an upgrade passed (nil: none); OpenTLS closes it.
func OpenTLS(c *config.Config, tickets *os.File, met *metrics.Metrics, log *zap.Logger) (*TLS, error) {
	if c.TLS.CertFile == "" && c.TLS.KeyFile == "" {
		if tickets != nil {
			tickets.Close()
		}
		return nil, nil
	}
	r, err := tlsconf.New(tlsFiles(&c.TLS))
	if err != nil {
		if tickets != nil {
			tickets.Close()
		}
		return nil, fmt.Errorf("tls: %w", err)
	}
	tk, err := openTickets(&c.TLS, r, tickets, met, log)
	if err != nil {
		return nil, err
	}
	met.TLSLoaded(r.Current().NotAfter)
	log.Info("TLS on the protocol listener", zap.String("cert_file", c.TLS.CertFile), zap.Time("not_after", r.Current().NotAfter),
		zap.String("min_version", c.TLS.MinVersion), zap.String("client_ca_file", c.TLS.ClientCAFile), zap.String("client_auth", c.TLS.ClientAuth))
	return &TLS{files: r, config: r.Config(), tickets: tk, met: met, log: log}, nil
}

// Complete completes connection settings with the TLS configuration in force
// (none on a nil TLS).
func (t *TLS) Complete(st *conn.Settings) *conn.Settings {
	if t != nil {
		st.TLS = t.config
	}
	return st
}

// Trust gives conns the client CA bundle in force, before it adopts the previous
// process's connections: one whose CA this bundle lacks is told GOAWAY
// credentials at adoption. Nothing on a nil TLS or without a client CA bundle.
func (t *TLS) Trust(conns *conn.Manager) {
	if t == nil {
		return
	}
	if mat := t.files.Current(); mat.Pool != nil {
		conns.TrustTLS(mat)
	}
}

// reload reads the TLS files again: new handshakes use them at once; a bad file
// keeps the last good ones. Connections whose client CA left the bundle are told
// GOAWAY credentials. Called with the Reloader's mu held; nothing on a nil TLS.
func (t *TLS) reload(trigger string, conns *conn.Manager) {
	if t == nil {
		return
	}
	t.tickets.reload(trigger)
	// Stamped before reading: a change made while the files are read is seen by the
	// next poll. A reload for a signal stamps too, so the poll does not load the
	// same change again (and count it twice).
	t.seen = tlsStamp(t.files.Files())
	mat, err := t.files.Reload(nil)
	if err != nil {
		t.met.TLSReload(false, time.Time{})
		t.log.Error("TLS reload failed; the last good certificate, key and client CA bundle stay in force",
			zap.String("trigger", trigger), zap.Error(err))
		return
	}
	t.met.TLSReload(true, mat.NotAfter)
	moved := 0
	if mat.Pool != nil {
		moved = conns.CredentialsChanged(mat)
	}
	t.log.Info("TLS files reloaded", zap.String("trigger", trigger), zap.Time("not_after", mat.NotAfter),
		zap.Int("client_cas", len(mat.CAs)), zap.Int("connections_told_goaway_credentials", moved))
}

// TLSWatch is the serving-phase actor that reloads the TLS files when one
// changes; nil without TLS.
func (r *Reloader) TLSWatch() (func() error, func(error)) {
	t := r.o.TLS
	if t == nil {
		return nil, nil
	}
	files := t.files.Files()
	r.mu.Lock()
	t.seen = tlsStamp(files)
	r.mu.Unlock()
	return r.poll(tlsPollInterval, func() {
		if tlsStamp(files) != t.seen {
			t.reload("tls file changed", r.o.Target.Conns)
		}
	})
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
