package metrics

import "time"

// TLSReload counts a reload of the TLS files; on success notAfter is the server
// certificate's NotAfter now in force.
func (m *Metrics) TLSReload(ok bool, notAfter time.Time) {
	if !ok {
		m.tlsReloads.WithLabelValues("failure").Inc()
		return
	}
	m.tlsReloads.WithLabelValues("success").Inc()
	m.TLSLoaded(notAfter)
}

// TLSLoaded sets hawk_tls_cert_not_after_seconds.
func (m *Metrics) TLSLoaded(notAfter time.Time) { m.tlsNotAfter.Set(float64(notAfter.Unix())) }

// TLSHandshakeFailed implements conn.TLSObserver.
func (o connObserver) TLSHandshakeFailed() { o.m.tlsFailures.Inc() }
