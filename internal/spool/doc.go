// Package spool persists reports in append-only JSON Lines segment files and ACKs
// each once its write succeeded.
//
// Writes are group commits: the reports of every connection that arrive while one
// write is in progress go to disk together in the next write, and each report is
// ACKed only after the write holding it succeeded (and was fsynced, in fsync mode
// "always"). The bytes waiting for the next write are bounded (Options.MaxPending):
// past the bound Submit blocks, which stops the submitting connection's reads.
// With fsync "never", a Submit that finds no write in progress does the write
// itself, on its caller's goroutine; with "always", the committer goroutine
// gathers every write (an fsync's cost hardly depends on what it carries).
//
// # Files (the contract with log shippers)
//
// The spool directory holds segment files named
//
//	hawk-<start>-<pid>-<counter>.jsonl
//	hawk-20261123T080000.123456789Z-4242-000007.jsonl
//
// start is the UTC time the segment was created (layout 20060102T150405.000000000Z),
// pid the process that writes it, and counter a number the process increments for
// every segment it creates (at least six digits). Segments are created with O_EXCL,
// so two processes sharing the directory (during a binary upgrade both the old and
// the new server run) never write to the same file. Sorting names sorts segments
// roughly by creation time; within one pid the order is exact unless the wall clock
// stepped back. SegmentName makes these names and Segments lists a directory's
// segments: nothing else in hawk parses them.
//
// Every line is one record, a JSON object ending in '\n', in the format package
// ingest documents (internal/ingest, the package doc): the spool writes the lines of
// an ingest.Batch verbatim.
//
// Delivery is effectively once within a window (internal/dedup): a report whose
// ACK was lost is sent again, and the server ACKs a resend of a report it already
// stored without writing it again, across reconnects, upgrades and restarts. The
// exceptions are bounded (a resend older than dedup.window seqs of its client, a
// report further back than dedup.rebuild_bytes before a restart, a client forgotten
// past dedup.max_clients, and a narrow race during an upgrade; see internal/dedup):
// then the same (client_id, seq) can appear more than once, in the same segment or
// another. A consumer that must never see a duplicate still deduplicates on that pair.
//
// At start, the server reads the newest dedup.rebuild_bytes of these segments to
// learn what is already stored; a process started by an upgrade instead receives
// its parent's dedup windows, taken after a Mark of the parent's spool, and reads
// the parent's segments from the mark on as they grow, until the parent exits.
//
// Lines are only ever appended. A segment receives no more bytes once a segment with
// the same pid and a greater name exists, or once that process has exited; until then
// it may be growing. A segment still empty when the server shuts down is removed
// (a crash can leave an empty one behind).
//
// On Linux the segment being written has its disk blocks allocated up to 4 MiB
// past its end without changing its size (prealloc.go): a file's size is always
// what was written. The surplus is given back when the segment is closed; after a
// crash it stays allocated, past the end, until retention removes the segment.
//
// # Retention
//
// With spool.max_bytes or spool.max_age set, closed segments are removed, oldest
// (by name) first, while the directory's segments of every process hold more than
// max_bytes, and whenever a closed segment's last write is older than max_age. A
// segment is closed once a newer segment of its pid exists or its process has
// exited; the newest segment of a running process is never removed, so the
// directory can exceed max_bytes by the segment being written and, during an
// upgrade, the other process's. A segment the JetStream forwarder has not sent to
// its end (Options.Unsent, internal/forward) is kept too, whatever the limits,
// unless Options.DiscardUnsent lets max_bytes remove it (counted); without that,
// max_bytes is a hard limit that refuses writes (limit.go).
// Retention starts once the dedup rebuild has read the tail; what it removes is
// gone for later rebuilds too, so dedup.rebuild_bytes above max_bytes reads at
// most what is left.
//
// # The page cache
//
// With spool.cache_bytes (Options.CacheBytes), a segment this process closed
// stays in the kernel's page cache until the closed segments newer than it hold
// that many bytes; then it is written back (sync_file_range, waited for) and
// dropped from it (posix_fadvise DONTNEED), on a goroutine of their own, never the
// committer (cache.go). What is read back soon stays cached: the dedup rebuild
// of a restart, a shipper tailing the newest segments. Segments of other
// processes (an upgrade's parent) are left to the kernel.
//
// hawk does not know how far a log shipper (Vector's file source, Filebeat) has
// read: the limits are the contract. A shipper must read a segment within
// max_age of its last write and before max_bytes more have been written after it;
// one that falls further behind loses the oldest data, which it can see in
// hawk_spool_segments_removed_total and its own "file removed before read to the
// end" counts. A shipper holding a removed segment open still reads it to its end
// (the inode lives until the last close), so keep its close-on-removal settings
// (Filebeat close.on_state_change.removed, Vector's ignore_older) loose enough for
// that, and size max_bytes for the longest shipper outage to survive.
//
// A last line without its '\n' means the write of that line did not finish: after a
// crash, or after a failed write (disk full, I/O error) whose rollback also failed.
// Consumers must ignore a last line without '\n'; the reports in it were never
// ACKed, so they arrive again. After a failed write the spool truncates the segment
// back to the end of the last good batch, so a segment can shrink, but only then and
// only back to a line boundary: a reader tailing the file that sees it shrink should
// continue from the new end. Whole lines it had already read from the failed write
// were NACKed and will arrive again, like any duplicate.
//
// With fsync "always", an ACKed report is on stable storage (the segment's data and
// its directory entry are synced before the ACK). With fsync "never", an ACKed
// report is in the kernel's page cache: it survives a crash of the server, not of
// the machine.
package spool
