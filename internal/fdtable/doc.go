// Package fdtable keeps room in the process's descriptor table ahead of need, so that no accept, adoption or upgrade waits for the kernel to grow it.
//
// Linux grows a process's descriptor table lazily, to the next power of two,
// when a descriptor is wanted past its end. In a process with more than one
// thread, which every Go process is, the growth waits for an RCU grace period
// (expand_fdtable calls synchronize_rcu): 10 to 30 ms on the machines hawk is
// measured on (docs/PERFORMANCE.md), and the thread that wanted the descriptor
// waits with it. In hawk that thread is the accept loop, the handoff's receiver
// adopting a batch (every connection of the batch stops reading meanwhile) or
// the upgrade's own pipes and socket pair between SIGHUP and the new process's
// exec: whichever first crosses a power of two pays it.
//
// Reserve grows the table once, on a goroutine of its own at start, to what the
// configuration allows for (Want), and holds one descriptor at the top of it for
// the process's life. The hold is what carries the room across upgrades: a fork
// gives the child a table as large as its parent's highest open descriptor,
// before the child has a second thread, so the new process starts with the room
// and pays no grace period at all. The held descriptor is close-on-exec: the
// child closes it at its exec and holds its own.
package fdtable
