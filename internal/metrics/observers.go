package metrics

import (
	"time"

	"github.com/hawk-agents/hawk/internal/conn"
	"github.com/hawk-agents/hawk/internal/protocol"
)

// Conn returns the conn.Observer that feeds m.
func (m *Metrics) Conn() conn.Observer { return connObserver{m} }

type connObserver struct{ m *Metrics }

var (
	_ conn.Observer          = connObserver{}
	_ conn.AdmissionObserver = connObserver{}
)

func (o connObserver) Accepted() { o.m.accepted.Inc() }

func (o connObserver) Closed(reason conn.CloseReason, _ bool) {
	if c, ok := o.m.closedBy[reason]; ok {
		c.Inc()
		return
	}
	o.m.closed.WithLabelValues(string(reason)).Inc()
}

func (o connObserver) FramesIn(t protocol.Type, n int) {
	if t.Valid() {
		o.m.framesIn[t].Add(float64(n))
	}
}

func (o connObserver) FramesOut(t protocol.Type, n int) {
	if t.Valid() {
		o.m.framesOut[t].Add(float64(n))
	}
}

func (o connObserver) BytesIn(n int)  { o.m.bytesIn.Add(float64(n)) }
func (o connObserver) BytesOut(n int) { o.m.bytesOut.Add(float64(n)) }
func (o connObserver) Acked(n int)    { o.m.acked.Add(float64(n)) }
func (o connObserver) Nacked(n int)   { o.m.nacked.Add(float64(n)) }
func (o connObserver) GoawaySent()    { o.m.goaways.Inc() }

// Refused counts a connection refused at accept with code.
func (o connObserver) Refused(code protocol.Code) {
	if c, ok := o.m.refused[code]; ok {
		c.Inc()
		return
	}
	o.m.refusedVec.WithLabelValues(string(code)).Inc()
}

// RefusedBusy counts a busy refusal by whether its source was over its share.
func (o connObserver) RefusedBusy(overShare bool) {
	if overShare {
		o.m.busyByShare[1].Inc()
		return
	}
	o.m.busyByShare[0].Inc()
}

// Spool returns the spool.Observer that feeds m.
func (m *Metrics) Spool() SpoolObserver { return SpoolObserver{m} }

// SpoolObserver implements spool.Observer.
type SpoolObserver struct{ m *Metrics }

// BatchWritten records one group commit.
func (o SpoolObserver) BatchWritten(records, bytes int, write, fsync time.Duration) {
	o.m.spoolRecords.Add(float64(records))
	o.m.spoolBytes.Add(float64(bytes))
	o.m.spoolWrite.Observe(write.Seconds())
	if fsync > 0 {
		o.m.spoolFsync.Observe(fsync.Seconds())
	}
}

// WriteFailed counts a failed spool write.
func (o SpoolObserver) WriteFailed(error) { o.m.spoolErrors.Inc() }

// SegmentOpened counts a new segment.
func (o SpoolObserver) SegmentOpened(string) { o.m.spoolSegments.Inc() }

// Throttled counts a Submit that waited for the disk to catch up.
func (o SpoolObserver) Throttled() { o.m.spoolThrottled.Inc() }

// AckLatency records the time n reports waited from arrival to ACK.
func (o SpoolObserver) AckLatency(d time.Duration, n int) {
	o.m.ackLatency.ObserveN(d.Seconds(), n)
}
