// Package forward copies the spool's records to a JetStream stream, each once, from a position kept on disk.
//
// With destination: jetstream and jetstream.mode: spooled, reports are ACKed once
// durable in the local spool (internal/spool), and a Forwarder publishes every
// record line of the spool directory's segments to the stream with its
// Nats-Msg-Id (internal/jetstream Publisher), so the stream drops a copy it
// already holds. The agents never wait for NATS: hawk starts, serves and upgrades
// while it is down, and the forwarder catches up when it is back.
//
// # The position (this package alone reads and writes it)
//
// <spool.dir>/forward.position is a JSON object, replaced atomically (written to
// forward.position.tmp, fsynced, renamed, directory fsynced):
//
//	{"version":1,"offsets":{"hawk-...-000007.jsonl":4096},"done":["hawk-...-000006.jsonl"]}
//
// offsets holds, per segment, how many bytes of it are forwarded (whole lines,
// acknowledged by JetStream); done lists the segments forwarded to their end and
// closed (no process will write to them again). A segment in neither is not
// forwarded at all. Names of segments no longer in the directory are dropped. A
// version this package does not know is refused: the forwarder does not start
// (an older binary after a downgrade does not guess) and retention keeps every
// segment.
//
// The position is saved at most every SaveInterval and when the forwarder stops, so
// after a crash up to that much is published again: the stream's duplicate window
// drops those copies.
//
// # One forwarder per directory
//
// A Forwarder holds an exclusive flock on <spool.dir>/forward.lock while it runs.
// During an upgrade the new process waits for the lock, which the old one releases
// when its forwarder stops (at its drain, or its death): the position is handed
// over through the file. Segments of every process in the directory are forwarded,
// whichever process wrote them.
//
// # Retention
//
// Unsent gives the spool's retention the segments it must keep: every segment not
// in done. Without a readable position, every segment is kept.
//
// # What can be published twice or not at all
//
// A record published again after the duplicate window of its first copy is stored
// twice: only after the position file was lost or restored from an old copy. After
// a failed spool write the spool truncates the segment back to the last good batch:
// lines the forwarder had already sent from that write were NACKed to their agents,
// which resend them (the stream drops the copy). A position beyond a segment's end
// is brought back to the end.
//
// A stream slower than a publish is waited for while its acknowledgements keep
// coming; a publish fails when none came for jetstream.publish_timeout, and then
// what was acknowledged stays forwarded and only the rest is published again.
// Publishes are sized to take a quarter to a half of that timeout (slow.go): a
// stream that acknowledges a publish all at once at its end (nats-server with
// sync_interval: always) is not sent more than it stores within the timeout, and
// the position moves often whatever the stream's pace.
package forward
