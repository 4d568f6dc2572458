// Package ingest carries reports from connections to a Destination as batches of
// record lines, whose format it owns.
//
// It is the boundary between connections and the destination of their reports. A
// connection knows reports (Record) and batches of them (Batch); a Destination makes
// a batch durable and tells its Waiter, once, whether it is. The connection never
// sees a byte format on disk or on a broker, and a second destination plugs in by
// implementing Destination.
//
// # The record format
//
// A Batch holds its reports already encoded, as JSON Lines, because the encoding runs
// on the connection's reader goroutine (spread over every connection, in parallel)
// rather than on a destination's one committer. The invariant that ties the two
// halves together (the i-th line carries the i-th seq) lives in Batch.Add and
// nowhere else. Every line is one JSON object encoded as UTF-8, ending in '\n', with
// the keys, always in this order:
//
//	client_id    string   the agent's id from its HELLO
//	seq          number   the agent's sequence number of the report (a uint64: it may not fit a float64)
//	conn_id      number   the server's id of the connection the report came in on (a uint64)
//	listener     string   only for a report from a legacy or UDP listener: the listener's name (legacy.listeners, udp.listeners)
//	format       string   only with listener: the wire format, ffff, c8c9 or headers (legacy), lines, syslog or report (UDP)
//	source       string   only for a UDP report datagram (format report): its source address, "ip:port" ("[ip]:port" for IPv6)
//	received     string   when the server read the report: UTC, RFC 3339 with up to nanoseconds
//	payload      any      the report's payload as the agent sent it, when it is valid JSON and UTF-8
//	                      nested at most MaxPayloadDepth (256) levels deep (whitespace removed when it
//	                      contained a line break, so the line stays one line)
//	payload_b64  string   otherwise: the payload's bytes in standard base64 with padding
//
// Exactly one of payload and payload_b64 is present. listener and format are both
// present or both absent: a native report's line carries neither, so a consumer that
// knows only native lines reads it unchanged. A legacy report's client_id, and a UDP
// lines or syslog one's, is "<format>:<peer ip>:<peer port>" and its seq is assigned
// by the server (see internal/legacy, internal/udp), so the pair still identifies the
// report; a UDP report datagram keeps its agent's client_id and seq, and its source
// address is in source. The depth bound keeps
// every line readable by Go's encoding/json and by Python's json module. For example:
//
//	{"client_id":"a1","seq":12,"conn_id":5,"received":"2026-11-23T08:00:00.123456789Z","payload":{"cpu":0.5}}
//	{"client_id":"a1","seq":13,"conn_id":5,"received":"2026-11-23T08:00:00.2Z","payload_b64":"AAEC"}
//	{"client_id":"ffff:10.1.2.3:54321","seq":1763884800000000000,"conn_id":6,"listener":"metrics","format":"ffff","received":"2026-11-23T08:00:00.3Z","payload":{"content":"x","rand":7,"timestamp":1700000000}}
//
// internal/spool writes these lines to its segment files verbatim; internal/jetstream
// publishes each line (without its '\n') as one message. This package alone writes
// the format (Batch.Add) and reads it back: ParseKey gives a line's client_id and seq
// to whoever needs them (internal/dedup, internal/jetstream, the tests).
package ingest
