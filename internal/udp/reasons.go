package udp

// Why a datagram was not stored (hawk_udp_refused_total's reason label).
const (
	RefusedNotAllowed  = "not_allowed"  // its source is outside allow
	RefusedEmpty       = "empty"        // no bytes (after the format's trimming)
	RefusedOversize    = "oversize"     // larger than max_datagram
	RefusedPendingFull = "pending_full" // max_pending datagrams were already waiting for the destination
	RefusedNotStored   = "not_stored"   // the destination failed the batch
)

// RefusedReasons is every refusal reason.
var RefusedReasons = []string{RefusedNotAllowed, RefusedEmpty, RefusedOversize, RefusedPendingFull, RefusedNotStored}

// ParseUnparsed is hawk_udp_parse_errors_total's reason for a datagram stored raw
// because it did not parse as its format.
const ParseUnparsed = "unparsed"
