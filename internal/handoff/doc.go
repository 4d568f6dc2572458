// Package handoff moves established connections of every kind from an old hawk process to its successor.
//
// The TCP connection lives on and the agent never learns an upgrade happened.
// tableflip passes a child only the files present when it execs it, so the old
// process creates a unix socketpair before each upgrade and passes one end to the
// child by name (Sender.Pass: Name, through internal/upgrade). Once the child is
// ready, the old process moves connections over it with SCM_RIGHTS: each
// descriptor together with a State message, the connection's state at a quiet
// point.
//
// The package owns the handoff end to end. The sending side (Sender) takes every
// kind of connection the process holds as Groups (conn.Manager, each
// legacy.Listener); it decides what cannot move (the reasons in reason.go), moves
// kinds in order (native first, each kind with a deadline of its own) and drives
// each connection to its quiet point (Drive, Point). The receiving side
// (Receiver) hands each connection to the Adopter of its Target. A new kind of
// connection implements Conn, Group and Adopter; nothing else changes.
//
// The contract, in order:
//  1. The old process calls NewPair before Upgrade and passes Pair.Child to the
//     child as the file Name; it closes its copy of that end once Upgrade returned.
//     The child claims the file before Ready (tableflip closes unclaimed ones).
//  2. The receiver calls SignalReady once it can serve what it is sent without
//     delay (in hawk: its dedup windows are rebuilt, so a moved connection's next
//     report does not wait); the sender waits for it (WaitReadyInfo) before it stops
//     any connection, and falls back for all of them if it does not come within
//     upgrade.handoff_timeout. Then the sender (old process) sends batches of at
//     most MaxFDs descriptors, each with its State (Channel.Post). It may keep
//     batches in flight (the driver's window: one) and the receiver acknowledges each, in order
//     (Channel.Ack): an acknowledged batch belongs to the child, whose copies of the
//     descriptors are open and registered; the sender then closes its own copies
//     (close, never shutdown: no FIN).
//  3. A batch sent but not acknowledged (the child died, the channel broke) is lost,
//     as is every batch sent after it: the child may have read from those sockets,
//     so the sender cannot resume them; it closes them, as a crash would. A batch
//     acknowledged before the break still moved. Connections not yet sent are not
//     affected: the sender keeps serving them (GOAWAY drain). A descriptor is never
//     sent twice.
//  4. The receiver (child) acknowledges a batch once every descriptor in it is
//     adopted, or, when its State cannot be used, answered with an ERROR naming the
//     problem and closed: one bad State never costs the batch's others.
//  5. The sender ends with an empty batch (Channel.Done) and closes its end; the
//     receiver's Receive returns on it or on end-of-file.
//  6. State messages are versioned (StateVersion); a receiver refuses a version it
//     does not know, per connection, with that problem named. The receiver's ready
//     says the newest version it reads (Ready.StateVersion) and the sender writes
//     that one, or version 1 (JSON), which every receiver reads: an upgrade and its
//     rollback both move every connection.
//
// A native connection's open uploads travel in its State (upload.Handover: the
// upload id, the durable offset, the sha256 state): the old process closes them at
// the quiet point, releasing their locks, and the new one resumes them with no open;
// a connection that falls back takes them back.
//
// Legacy connections (internal/legacy: ffff, c8c9, headers) travel on the same
// channel, in batches of their own after the native ones, as States of KindLegacy
// (listener, format, next seq, partial frame). A legacy connection must go only to
// a listener of the same name and format, and a sent descriptor cannot come back,
// so the receiver's ready says which it has (SignalReadyWith: "HWKL", a length and
// the JSON of Ready); the sender keeps the others (fallback no_listener, format) and
// serves them until drain.timeout. A plain ready ("HWKR", SignalReady) adopts no
// legacy connection and asks for State version 1; the Receiver always sends
// "HWKL", for the State version it names. A sender of a build from before legacy
// handoff reads "HWKL" as no ready and drains all its connections with GOAWAY:
// safe, for that one upgrade.
package handoff
