package metrics

import (
	"github.com/hawk-agents/hawk/internal/auth"
	"github.com/hawk-agents/hawk/internal/conn"
)

var _ conn.AuthObserver = connObserver{}

// Authenticated implements conn.AuthObserver.
func (o connObserver) Authenticated(credential string) { o.m.authOK.WithLabelValues(credential).Inc() }

// AuthRefused implements conn.AuthObserver.
func (o connObserver) AuthRefused(credential string, reason auth.Reason) {
	o.m.authRefused.WithLabelValues(credential, string(reason)).Inc()
}

// TokensFileReload counts a read of auth.tokens_file after a change.
func (m *Metrics) TokensFileReload(ok bool) {
	if ok {
		m.authFile.WithLabelValues("success").Inc()
		return
	}
	m.authFile.WithLabelValues("failure").Inc()
}
