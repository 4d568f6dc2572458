// Package dedup makes ingest effectively-once: a report resent after a lost ACK is
// ACKed again, not stored again.
//
// It remembers, per client_id, which seqs are durable (and which are on their way to
// the destination).
//
// # The contract
//
// A Table holds one Client per client_id. A connection looks its Client up once, at
// the handshake (Attach), keeps the pointer, and gives it back when it ends
// (Detach). For every REPORT it calls Client.Check, and for every commit of its
// batches Client.Committed; both are a short critical section on that one client's
// state, with no map lookup and no allocation.
//
// Check answers, for one (client_id, seq):
//
//   - Store: the seq is not known to be durable, nor on its way to the destination:
//     store it. It is now pending: a second arrival is not stored until its commit
//     is known. Seqs older than the window are always Store (see below).
//   - Durable: a report with this seq was made durable (by this process, or by a
//     process whose spool lines the table was rebuilt from or followed). ACK it
//     again; do not store it.
//   - Pending: a copy of this seq is in a batch whose commit is not known yet (the
//     same report arrived on two connections: a GOAWAY move, a reconnect after a
//     cut). Store nothing; the Waiter is answered once that commit is known: ACK if
//     it succeeded, a retryable NACK if it failed (the client resends, and the
//     resend is stored).
//
// # The window
//
// Each Client keeps the highest seq it has seen (durable or pending) and two
// bitmaps of the Window seqs below and including it: durable and pending. A seq more
// than Window below the highest is unknown: it is stored (a report is never dropped
// for being old; it may be a duplicate). The Go client keeps its seqs strictly
// increasing and resends only reports still in flight, so a Window of at least
// limits.max_in_flight (the most reports a client may have unacknowledged) covers
// every resend of a well-behaved client; the default, 4096, leaves room for clients
// that keep older reports to resend. A client whose seq jumps forward by more than
// Window (a restarted agent whose clock-based seqs moved on) forgets its past: its
// older seqs are unknown from then on.
//
// The durable bitmap costs Window/8 bytes per remembered client that has sent a seq
// (none for one that only connected); the pending one exists from a client's first
// report until nothing is pending and either its connections are gone or one of them
// is idle (Release, on a heartbeat). The number of
// clients remembered is bounded (Options.MaxClients): past it the least recently
// used clients without a connection and with nothing pending are forgotten, 1/16 of
// the bound at a time. Clients with a live connection are never forgotten, so the
// table may exceed the bound when more clients than that are connected.
//
// # Rebuilding after a restart, following during an upgrade
//
// A new process rebuilds the table from the spool's tail (Rebuild): the newest
// segments, at most RebuildBytes of them, read oldest first, one line at a time,
// with only client_id and seq parsed (ingest.ParseKey). A last line without '\n' is
// ignored (it was never ACKed). Until the rebuild is done, Check waits (SetReady opens the
// gate): no report is checked against an incomplete window. By default readiness of
// the process (the upgrade's "ready") does not wait for it: the listener is handed
// over at once (SIGHUP to ready stays at a few ms), and reports reaching the new
// process during the rebuild wait for it instead (with a 256 MiB tail, about 0.3 s
// on a busy 2-core machine, so the first clients moved by GOAWAY see one slow ACK).
// With dedup.rebuild_before_ready the process declares itself ready only after the
// gate opened: the old process serves everyone meanwhile, no report waits, and SIGHUP
// to ready grows by the rebuild time (internal/daemon).
//
// A process started by an upgrade does not read the spool's tail: its parent passes
// its own table (WriteSnapshot: every client's durable window, relative to its
// highest seq, as a handed-over connection carries its own; a few hundred bytes a
// client) through a pipe, after a Mark of its spool taken between two commits
// (internal/spool's Mark): every line before the mark had its commit recorded in
// the parent's table before the table was copied, every line after it the new
// process reads by following (FollowFrom, then Follow). The new process applies the
// windows (ApplySnapshot) only once the whole snapshot has arrived and its checksum
// matched, and falls back to Rebuild when none comes (a parent without it, a
// JetStream destination, a parent still reading its own parent's spool), or one that
// is short, damaged, late, of another process, or of a smaller window than its own.
// What the table then knows is what the parent knew at the mark plus what the
// follow reads: at least what a rebuild from the spool's tail would know (the
// parent's table was itself rebuilt and then followed every commit since), without
// the rebuild's read of RebuildBytes beside the serving parent.
//
// A process started by an upgrade also follows (Follow) the segments of its parent,
// which keeps writing and ACKing on its old connections for up to drain.timeout:
// it reads their new lines every follow interval (internal/daemon: 2 ms) until the
// parent has exited (then once more, to the end), and marks them durable. Only the
// parent's newest segment can grow, so a pass reads one file.
//
// Residual races (what this package cannot close):
//
//   - A resend the new process checks before it has read the parent's line for the
//     same report is stored again: a duplicate. (The gate opens after the first
//     follow pass whether the windows came from the parent or from the spool, so
//     passing them leaves this window as it was.) That happens when the parent writes
//     the report after the resend was checked (the old connection was cut, at
//     drain.timeout or by the client at its GOAWAY deadline, while the report sat in
//     the parent's commit), or less than one follow interval before. Only a
//     connection that ends with reports unacknowledged leads to a resend: a graceful
//     handoff (the client waits for the ACKs of the reports in flight on the old
//     connection) has none, and so no such duplicate.
//   - If a write of the parent fails after part of it reached the file, and the
//     follower read those lines before the parent truncated them, the follower has
//     marked durable reports the parent NACKs; their resends are ACKed by the new
//     process without being stored. This needs a failed write (disk full, I/O error)
//     during an upgrade. (Lines the parent writes over a truncated part before the
//     follower's next pass are not read: their resends are stored again.)
//   - Reports more than RebuildBytes back in the spool, more than Window seqs below
//     their client's highest seq, or of a client forgotten past MaxClients, are
//     unknown: a resend of one is stored again.
package dedup
