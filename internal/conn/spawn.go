package conn

import "sync"

// `go c.f()` allocates a closure holding c (16 bytes) at every start, and an
// idle agent's every heartbeat starts a goroutine: the reader's fresh wait
// (plainidle.go, tlsidle.go), and a flusher when the reader leaves its PONG to
// one. That garbage would be all a plaintext heartbeat allocates. spawn starts
// f(c) without it: from a pooled task, whose method value was bound once.

// task is one pooled goroutine start.
type task struct {
	c   *Conn
	f   func(*Conn)
	run func() // t.exec, bound when the task is made
}

var tasks sync.Pool

func init() {
	tasks.New = func() any {
		t := &task{}
		t.run = t.exec
		return t
	}
}

func (t *task) exec() {
	c, f := t.c, t.f
	t.c, t.f = nil, nil
	tasks.Put(t)
	f(c)
}

// spawn runs f(c) on a new goroutine, as `go f(c)` does, allocating nothing
// once the pool holds a task.
func spawn(c *Conn, f func(*Conn)) {
	t := tasks.Get().(*task)
	t.c, t.f = c, f
	go t.run()
}
