// Package jetstream is the NATS JetStream destination: a report is ACKed once
// JetStream has acknowledged its publish.
//
// With destination: jetstream, an ingest.Destination publishes every report to a
// JetStream stream and lets the connection ACK it only once JetStream has
// acknowledged the publish. Several hawk instances (behind an L4 balancer) write to
// the same stream; the stream, not one machine's disk, is where reports are durable.
//
// # Messages
//
// One message per report. Its body is the report's record line as the spool would
// write it (the JSON object of the internal/ingest record format, without the
// trailing '\n'); its subject is jetstream.subject with <client_id> replaced by the
// client id escaped into one subject token (EscapeToken: bytes outside A-Z a-z 0-9
// '-' '_' become %XX, so "ffff:10.1.2.3:54321" is "ffff%3A10%2E1%2E2%2E3%3A54321");
// its Nats-Msg-Id header is "<client_id>:<seq>" (MsgID), the client id unescaped:
// seq is the digits after the last ':', so a client id containing ':' is no
// ambiguity.
//
// # Exactly once within the duplicate window
//
// JetStream drops a message whose Nats-Msg-Id it has seen within the stream's
// duplicate window and acknowledges it as a duplicate. A resend of a report, whether
// it comes through the same hawk, another instance behind the balancer, a restarted
// process or an upgrade, is therefore stored once, as long as it arrives within
// the window of the first copy. The stream's duplicate_window must cover the longest
// time an agent keeps resending a report (jetstream.retry_horizon, default 2m: the
// JetStream default window); start is refused when it does not (CheckStream). A
// duplicate is ACKed to the agent like a first copy, and counted
// (hawk_jetstream_duplicates_total). The in-process dedup windows (internal/dedup)
// still answer resends on one process without a publish.
//
// # ACK, NACK and back-pressure
//
// Submit publishes a batch's messages asynchronously (pipelined: it does not wait
// for their acknowledgements) and one acker goroutine awaits them in order. The
// batch's Waiter hears once every message was acknowledged (ACK), or once one
// failed: a publish error, NATS disconnected, or no acknowledgement within
// jetstream.publish_timeout. Then the whole batch is NACKed destination_unavailable,
// retryable, with retry_after_ms = jetstream.retry_after; its reports that did reach
// the stream are deduplicated when the agent resends them. At most a window of
// publishes await their acknowledgement; past it Submit blocks, which stops the
// submitting connections' reads, exactly like a slow disk under the spool. The
// window is jetstream.max_pending while JetStream acknowledges within half of
// jetstream.publish_timeout, and shrinks while it does not: a broker slower than the
// agents is met by holding their reports back, not by timeouts whose resends would
// queue behind their own first copies (see window). While NATS is disconnected
// nothing is buffered: publishes fail at once.
//
// # Durability
//
// An ACK is only as durable as the stream. JetStream's file store fsyncs every
// 2 minutes by default (sync_interval), and a Jepsen analysis of NATS 2.12 lost
// acknowledged writes through that window. hawk expects num_replicas 3 (an
// acknowledged write is on a majority of servers) or servers run with
// jetstream { sync_interval: always }, which a client cannot see
// (jetstream.sync_always states it). With jetstream.require_durable (the default)
// start is refused otherwise; without it, hawk warns and starts.
//
// # Readiness
//
// Healthy is false while NATS is disconnected, and while the stream does not answer
// a lookup (probed every second while connected); /readyz answers 503 with the
// reason, so a balancer health-checking it moves new agents to another instance.
//
// A report whose record exceeds the NATS servers' max_payload can never be published
// (NACKed, retryable, every time): Open warns when max_payload is below the largest
// record limits.max_frame_size allows (base64 of the payload plus 2 KiB).
//
// At start, Open connects (within jetstream.connect_timeout) and checks the stream;
// a hawk whose broker is unreachable at start does not start.
//
// # Publisher
//
// With jetstream.mode: spooled, reports are ACKed from the spool and
// internal/forward publishes them through a Publisher: the same messages, but it
// connects in the background (NATS may be down at start), checks the stream at
// its first publish, and waits for the acknowledgements of one batch of lines.
package jetstream
