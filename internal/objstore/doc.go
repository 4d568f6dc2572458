// Package objstore puts finished uploads into an Object Store bucket, each once, the local files being the queue.
//
// With destination: jetstream, the upload store (internal/upload, Options.Queue)
// publishes a committed file locally as always (checked, atomic, durable under
// the spool's fsync policy) and the commit is answered then: the agent never
// waits for NATS. Run, one actor per uploads directory, takes the store's
// Backlog and, for each file:
//
//  1. puts it into the bucket under Name (derived from the client id and the
//     upload id), unless the bucket holds it already with the same size and
//     digest (a put confirmed before a crash); the bytes are hashed as they are
//     read, and a file that is not what its sha256 says fails its last read, so
//     no wrong object is ever complete in the bucket (reason "digest");
//  2. announces it (upload.Store.Placed): one record in the report stream saying
//     the bucket and the object, with the seq chosen at publish, so an announce
//     repeated after a crash is the same line (JetStream drops it by its
//     Nats-Msg-Id within the stream's duplicate window);
//  3. removes the local copy, which then no longer counts against the uploads
//     quotas.
//
// The record is written once the file is in the bucket, never before: a
// consumer finds the file where the record says. A failure is retried with a
// backoff per file (doubling from MinBackoff to MaxBackoff); while NATS is down
// the files wait in the uploads directory and count against its quotas, and the
// backlog is a metric. The queue is on disk: after a restart or an upgrade, Run
// goes on from the files not yet announced.
//
// One actor per directory: Run holds an exclusive flock on <dir>/bucket.lock
// (internal/dirlock); at an upgrade the new process's Run starts when the old
// one's ends.
package objstore
