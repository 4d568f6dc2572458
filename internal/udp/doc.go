// Package udp serves datagram listeners: each allowed datagram becomes one record, stored once, bounded when the destination is slow.
//
// One reader goroutine per listener reads the socket, refuses what is not allowed
// (source outside allow, empty, oversize, pending bound reached) and counts it by
// reason, parses the datagram by the listener's format and adds its record to the
// pending batch. One submitter goroutine hands the pending batch to the
// ingest.Destination; while a Submit blocks (a slow disk or broker) the reader goes
// on reading and the batch grows up to max_pending datagrams, past which datagrams
// are dropped and counted: UDP has no back-pressure, and the kernel would drop them
// anyway once the receive buffer is full.
//
// # Upgrades
//
// The socket comes from the upgrader (tableflip), so the new process inherits the
// very same socket: datagrams queued in it are not lost, and while both processes
// read it the kernel gives each datagram to exactly one of them. The old process
// keeps reading through its drain, and Stop ends its reads with a deadline (a read
// that returned a datagram is never abandoned) and waits until what it read is
// durable: a datagram the kernel accepted is stored exactly once, by whichever
// process read it. Closing the old process's copy of the descriptor leaves the
// socket open in the new one.
//
// # Records
//
// A record's client_id is "<format>:<source ip>:<source port>" and its seq is
// assigned here (the process's start time in nanoseconds, plus one per datagram),
// as for legacy listeners; listener and format name the listener. A lines datagram
// is its payload as sent; a syslog datagram's payload is an object of its fields
// (syslog.go), or the raw datagram when it does not parse (counted).
package udp
