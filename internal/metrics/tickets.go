package metrics

import (
	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/promtext"
)

var _ conn.ResumeObserver = connObserver{}

// ticketVecs are the session resumption counters: handshakes by whether they
// resumed a session, and changes of the session ticket keys.
type ticketVecs struct {
	handshakes *promtext.CounterVec
	keys       *promtext.CounterVec
}

func newTicketVecs(f factory) ticketVecs {
	v := ticketVecs{
		handshakes: f.counterVec("hawk_tls_handshakes_total", "TLS handshakes completed, by session: resumed (a session ticket was accepted: no signature, no client chain to verify) or full.", "session"),
		keys: f.counterVec("hawk_tls_ticket_key_changes_total", "Changes of the session ticket keys, by result: rotated (hawk's own keys, every tls.ticket_key_rotation), "+
			"reloaded (tls.ticket_keys_file changed), failure (a bad keys file: the keys in force stay).", "result"),
	}
	for _, s := range []string{"resumed", "full"} {
		v.handshakes.WithLabelValues(s)
	}
	for _, r := range []string{"rotated", "reloaded", "failure"} {
		v.keys.WithLabelValues(r)
	}
	return v
}

// TicketKeys counts a change of the session ticket keys, or a failed one:
// result is rotated, reloaded or failure.
func (m *Metrics) TicketKeys(result string) { m.tickets.keys.WithLabelValues(result).Inc() }

// TLSHandshake implements conn.ResumeObserver.
func (o connObserver) TLSHandshake(resumed bool) {
	s := "full"
	if resumed {
		s = "resumed"
	}
	o.m.tickets.handshakes.WithLabelValues(s).Inc()
}
