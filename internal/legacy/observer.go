package legacy

// Observer receives one listener's counts for metrics (internal/metrics binds one
// per listener, so no label lookup happens per frame). Calls come from hot paths,
// batched per read or per commit: implementations must be cheap and not block.
type Observer interface {
	Accepted()
	Refused(reason string) // closed at accept: not in allow (RefusedNotAllowed)
	Closed(reason CloseReason)
	Frames(kind string, n int) // received: FrameReport or FrameHeartbeat
	Receipts(n int)            // replies sent for stored reports (none for headers)
	Stored(n int)              // reports the destination made durable
	NotStored(n int)           // reports whose commit failed
	Dropped(reason string, n int)
	BytesIn(n int)
	BytesOut(n int)
}

// Frame kinds for Observer.Frames.
const (
	FrameReport    = "report"
	FrameHeartbeat = "heartbeat"
)

// RefusedNotAllowed is the refusal of a peer outside the listener's allow list.
const RefusedNotAllowed = "not_allowed"

// CloseReason says why a legacy connection ended.
type CloseReason string

// Close reasons. The formats carry no error message, so every close is a bare close.
const (
	ReasonClient       CloseReason = "client"        // the peer closed or reset
	ReasonIdleTimeout  CloseReason = "idle_timeout"  // nothing received for idle_timeout (ffff: the heartbeat timeout)
	ReasonWriteTimeout CloseReason = "write_timeout" // a write made no progress for limits.write_timeout
	ReasonSlowConsumer CloseReason = "slow_consumer" // more than 1 MiB of replies left unread
	ReasonNotAllowed   CloseReason = "not_allowed"   // a reload removed its network from allow
	ReasonDrain        CloseReason = "drain"         // still open at drain.timeout after an upgrade or a stop
	ReasonHandoff      CloseReason = "handoff"       // moved to the new process after an upgrade: the agent saw nothing
	ReasonHandoffLost  CloseReason = "handoff_lost"  // sent to a new process that died before acknowledging it
	ReasonBadName      CloseReason = "bad_name"      // format file: the name is not a plain file name (answered "error: ...")
)

// CloseReasons is every close reason, for pre-bound metrics.
var CloseReasons = []CloseReason{ReasonClient, ReasonIdleTimeout, ReasonWriteTimeout, ReasonSlowConsumer, ReasonNotAllowed, ReasonDrain, ReasonHandoff, ReasonHandoffLost, ReasonBadName}

// NopObserver discards everything.
type NopObserver struct{}

func (NopObserver) Accepted()           {}
func (NopObserver) Refused(string)      {}
func (NopObserver) Closed(CloseReason)  {}
func (NopObserver) Frames(string, int)  {}
func (NopObserver) Receipts(int)        {}
func (NopObserver) Stored(int)          {}
func (NopObserver) NotStored(int)       {}
func (NopObserver) Dropped(string, int) {}
func (NopObserver) BytesIn(int)         {}
func (NopObserver) BytesOut(int)        {}
