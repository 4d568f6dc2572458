package fdtable

import (
	"errors"
	"time"
)

// headroom is the descriptors Want allows beside the connections: listeners,
// spool segments, uploads, the handoff's and upgrade's own, the log.
const headroom = 1024

// Want is the table's size for a process that may hold maxConns connections.
func Want(maxConns int) int { return max(maxConns, 0) + headroom }

// Result is what a Reserve did.
type Result struct {
	Size   int           // the table holds descriptors 0..Size-1 at least
	Capped bool          // the descriptor limit (RLIMIT_NOFILE) is below what was asked
	Took   time.Duration // growing the table: a grace period, or nothing when it had the room
	Err    error         // why no room was reserved (the table grows as the kernel needs)
}

// Reservation is the room held in the table.
type Reservation struct {
	done chan struct{}
	res  Result
	fd   int // the descriptor held at the top of the table, -1 without one
}

// Reserve starts growing the table to hold n descriptors (fewer if the
// descriptor limit is lower) and returns at once; done (if not nil) is called
// with the result once the table has grown, and Wait returns it.
func Reserve(n int, done func(Result)) *Reservation {
	r := &Reservation{done: make(chan struct{}), fd: -1}
	go func() {
		defer close(r.done)
		began := time.Now()
		r.fd, r.res = grow(n)
		r.res.Took = time.Since(began)
		if done != nil {
			done(r.res)
		}
	}()
	return r
}

// Wait waits for the growth to end and returns its result.
func (r *Reservation) Wait() Result {
	<-r.done
	return r.res
}

// Close waits for the growth and closes the held descriptor; the table keeps
// its size (the kernel never shrinks it), but an upgrade's child no longer
// inherits the room.
func (r *Reservation) Close() error {
	<-r.done
	if r.fd < 0 {
		return nil
	}
	fd := r.fd
	r.fd = -1
	return closeFD(fd)
}

// errUnsupported is Result.Err where the table is not grown ahead (not Linux).
var errUnsupported = errors.New("fdtable: descriptor table not reserved on this system")
