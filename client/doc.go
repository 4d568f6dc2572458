// Package client is hawk's Go client library: Report returns once the server has
// persisted and acknowledged the report.
//
// An agent holds one Client. A Client keeps one framed TCP connection to the server
// and pipelines reports over it: up to Options.MaxInFlight reports may be
// unacknowledged at once, and Report blocks while that window is full; on each
// connection at most the server's WELCOME max_in_flight are unanswered (the rest
// wait in the client). Each report carries a seq chosen by the client, strictly
// increasing per client (also across reconnects, and across agent restarts when
// FirstSeq is derived from the clock), so the server can tell a resent report from a
// new one.
//
// Failures are handled inside the client and never reach a Report caller as an
// error: a lost connection is replaced with exponential backoff and full jitter
// (never sooner than the retry_after_ms of an ERROR busy), and every
// unacknowledged report is resent, in seq order, before new ones. When a server
// being upgraded sends GOAWAY, the client opens the replacement connection after
// the GOAWAY's reconnect_after_ms, with no backoff and within its deadline, and
// sends new reports there once it has WELCOME, while the old connection stays
// open until the reports in flight on it are acknowledged: a graceful handoff
// loses and duplicates nothing. A GOAWAY shutdown has no successor: no new report
// goes to the old connection, and the client reconnects with backoff. After a
// crash, only reports that were unacknowledged at the crash may be delivered
// twice. Reports wait as long as their context allows.
//
// Errors that do reach the caller: the context's error, *NackError when the server
// refuses a report for good, ErrTooLarge, ErrClosed after Close, and the server's
// *client.ServerError when it sends an ERROR whose code is final (not retryable in
// docs/PROTOCOL.md section 5: unauthorized, token_revoked, a protocol error, …),
// in answer to HELLO or later: the client then stops reconnecting.
//
// Example:
//
//	c, err := client.Dial(ctx, client.Options{Addr: "hawk.internal:7700", ClientID: "agent-42", Token: token})
//	if err != nil {
//		return err // e.g. *client.ServerError with Code client.CodeUnauthorized
//	}
//	defer c.Close()
//	seq, err := c.Report(ctx, []byte(`{"cpu":0.42}`))
//	if err != nil {
//		return err
//	}
//	log.Printf("report %d persisted", seq)
//
// Report blocks its caller until the ACK, so keeping a window of w reports full
// takes w goroutines. Go is the asynchronous form, for high-rate producers (the
// load generator): it queues the report and returns at once (waiting only for a
// window slot), and the outcome goes to a callback, called exactly once from the
// client's reader goroutine as the ACK arrives; that callback may call Go again.
// Same guarantees, no context:
//
//	err := c.Go(payload, func(seq uint64, err error) { /* quick; may call c.Go */ })
//
// Cost per report: no goroutine, no timer, no allocation in steady state (one
// reused record; the payload is copied once into it, for resends, and once into the
// connection's output buffer), one lock (the Client's) per report made by Go and
// one atomic operation for its window slot. A connection has a reader goroutine, which decodes
// in place and handles a whole read's worth of ACKs under one lock, and a writer
// goroutine, which sends everything queued since its last write in one Write (it
// yields once before each write, so reports released by the same burst of ACKs
// share it). The reports that callbacks queue with Go go out in one Write after
// the last callback of a read, made by the reader itself when no other write is
// in progress (no wake-up of the writer per batch); their frames are collected
// under the Client's lock, not the connection's output lock. A manager goroutine per Client
// reconnects, resends after retryable NACKs and checks heartbeats with one ticker
// (a quarter of the heartbeat interval): it, not the writer, watches for dead
// connections, so a write stuck on a hung server cannot hide one.
package client
