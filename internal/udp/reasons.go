package udp

// Why a datagram was not stored (hawk_udp_refused_total's reason label).
const (
	RefusedNotAllowed  = "not_allowed"  // its source is outside allow
	RefusedEmpty       = "empty"        // no bytes (after the format's trimming)
	RefusedOversize    = "oversize"     // larger than max_datagram
	RefusedPendingFull = "pending_full" // max_pending datagrams were already waiting for the destination
	RefusedNotStored   = "not_stored"   // the destination failed the batch

	// The report format's refusals: a datagram that does not decode, and the
	// credential checks of internal/auth (its Reason strings).
	RefusedMalformed    = "malformed"     // not a report datagram (PROTOCOL.md 4.4)
	RefusedBadCRC       = "bad_crc"       // its REPORT frame's CRC does not check
	RefusedUnknownToken = "unknown_token" // the token matches no credential
	RefusedNotCovered   = "not_covered"   // the credential does not cover the client id
	RefusedOpenRemote   = "open_remote"   // no credentials, auth.open off, source not loopback
)

// RefusedReasons is every refusal reason.
var RefusedReasons = []string{RefusedNotAllowed, RefusedEmpty, RefusedOversize, RefusedPendingFull, RefusedNotStored,
	RefusedMalformed, RefusedBadCRC, RefusedUnknownToken, RefusedNotCovered, RefusedOpenRemote}

// ParseUnparsed is hawk_udp_parse_errors_total's reason for a datagram stored raw
// because it did not parse as its format.
const ParseUnparsed = "unparsed"
