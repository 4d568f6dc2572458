package metrics

import (
	"github.com/hawk-agents/hawk/internal/promtext"
	"github.com/hawk-agents/hawk/internal/udp"
)

// udpVecs are the UDP listeners' metrics, labelled by listener name.
type udpVecs struct {
	datagrams *promtext.CounterVec
	bytes     *promtext.CounterVec
	refused   *promtext.CounterVec
	parseErrs *promtext.CounterVec
	stored    *promtext.CounterVec
	replies   *promtext.CounterVec
}

func newUDPVecs(f factory) udpVecs {
	return udpVecs{
		datagrams: f.counterVec("hawk_udp_datagrams_total", "Datagrams read by a UDP listener.", "listener"),
		bytes:     f.counterVec("hawk_udp_bytes_total", "Bytes of the datagrams read by a UDP listener.", "listener"),
		refused:   f.counterVec("hawk_udp_refused_total", "Datagrams a UDP listener read and did not store, by reason (not_allowed, empty, oversize, pending_full, not_stored; report: malformed, bad_crc, unknown_token, not_covered, open_remote).", "listener", "reason"),
		parseErrs: f.counterVec("hawk_udp_parse_errors_total", "Datagrams stored raw because they did not parse as the listener's format, by reason (unparsed).", "listener", "reason"),
		stored:    f.counterVec("hawk_udp_stored_total", "Datagrams from a UDP listener made durable.", "listener"),
		replies:   f.counterVec("hawk_udp_replies_total", "Receipts a UDP listener sent (reply: true).", "listener"),
	}
}

// UDP returns the udp.Observer of the listener called name, its counters
// pre-bound, and registers hawk_udp_kernel_drops_total, read on scrape from drops
// (the socket's own counter in /proc/net/udp).
func (m *Metrics) UDP(name string, drops func() (uint64, error)) udp.Observer {
	v := &m.udp
	o := &udpObserver{datagrams: v.datagrams.WithLabelValues(name), bytes: v.bytes.WithLabelValues(name),
		unparsed: v.parseErrs.WithLabelValues(name, udp.ParseUnparsed), stored: v.stored.WithLabelValues(name),
		replies: v.replies.WithLabelValues(name), refused: map[string]*promtext.Counter{}, bytesIn: m.bytesIn}
	for _, r := range udp.RefusedReasons {
		o.refused[r] = v.refused.WithLabelValues(name, r)
	}
	m.Registry.CounterFunc("hawk_udp_kernel_drops_total",
		"Datagrams the kernel dropped for a UDP listener's socket (receive buffer full), from /proc/net/udp; the socket's counter, shared with the process it came from at an upgrade.",
		func() float64 {
			n, err := drops()
			if err != nil {
				return 0
			}
			return float64(n)
		}, "listener", name)
	return o
}

type udpObserver struct {
	datagrams, bytes, unparsed, stored, replies, bytesIn *promtext.Counter
	refused                                              map[string]*promtext.Counter
}

func (o *udpObserver) Read(n int) {
	o.datagrams.Inc()
	o.bytes.Add(float64(n))
	o.bytesIn.Add(float64(n))
}
func (o *udpObserver) Refused(r string) { o.refused[r].Inc() }
func (o *udpObserver) Unparsed()        { o.unparsed.Inc() }
func (o *udpObserver) Stored(n int)     { o.stored.Add(float64(n)) }
func (o *udpObserver) Replied()         { o.replies.Inc() }
