package dedup

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// DefaultWindow is the window used when Options.Window is 0.
const DefaultWindow = 4096

// DefaultMaxClients is the bound used when Options.MaxClients is 0.
const DefaultMaxClients = 1_000_000

// Options configure a Table.
type Options struct {
	// Window is how many seqs below its highest each client's durable seqs are
	// remembered: a power of two, at least 64. 0 means DefaultWindow.
	Window int
	// MaxClients bounds the clients remembered (see the package doc). 0 means
	// DefaultMaxClients.
	MaxClients int
}

// Table is every remembered client's window. Its methods are safe for concurrent use.
type Table struct {
	window uint64

	maxClients atomic.Int64
	mu         sync.Mutex
	clients    map[string]*Client
	clock      int64 // logical time of Attach, Detach and creation, for eviction

	ready   atomic.Bool
	readyCh chan struct{}
	once    sync.Once

	duplicates atomic.Uint64
	evicted    atomic.Uint64
}

// ValidWindow reports why w is not a usable window, or nil.
func ValidWindow(w int) error {
	if w < 64 || w > 1<<24 || w&(w-1) != 0 {
		return fmt.Errorf("must be a power of two between 64 and %d, not %d", 1<<24, w)
	}
	return nil
}

// New returns an empty table that is not ready: Check waits until SetReady (after a
// rebuild, or at once for a table with nothing to rebuild).
func New(o Options) (*Table, error) {
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if err := ValidWindow(o.Window); err != nil {
		return nil, errors.New("dedup: window " + err.Error())
	}
	t := &Table{window: uint64(o.Window), clients: map[string]*Client{}, readyCh: make(chan struct{})}
	t.SetMaxClients(o.MaxClients)
	return t, nil
}

// words is the length of a bitmap of the window, in uint64 words.
func (t *Table) words() int { return int(t.window / 64) }

// Window is the table's window in seqs.
func (t *Table) Window() int { return int(t.window) }

// SetMaxClients changes the bound on remembered clients; it applies from the next
// new client on. n <= 0 means DefaultMaxClients.
func (t *Table) SetMaxClients(n int) {
	if n <= 0 {
		n = DefaultMaxClients
	}
	t.maxClients.Store(int64(n))
}

// MaxClients is the bound on remembered clients in force.
func (t *Table) MaxClients() int { return int(t.maxClients.Load()) }

// SetReady opens the gate Check waits behind. Later calls do nothing.
func (t *Table) SetReady() {
	t.once.Do(func() {
		t.ready.Store(true)
		close(t.readyCh)
	})
}

// Ready is closed once the table is ready.
func (t *Table) Ready() <-chan struct{} { return t.readyCh }

// Attach returns id's Client, creating it if needed, and holds it for a
// connection: it is not forgotten until Detach.
func (t *Table) Attach(id string) *Client {
	t.mu.Lock()
	c := t.getLocked(id)
	t.holdLocked(c)
	t.mu.Unlock()
	return c
}

// AttachKnown is Attach for a client the table already remembers, and nil for one
// it does not: a connection attaches a new client at its first report instead, so
// an agent that only connects and heartbeats costs the table nothing.
func (t *Table) AttachKnown(id string) *Client {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.clients[id]
	if c != nil {
		t.holdLocked(c)
	}
	return c
}

// AttachKnownBytes is AttachKnown for an id held in a byte slice (a datagram's):
// the lookup copies nothing, and the Client's ID is the table's own string.
func (t *Table) AttachKnownBytes(id []byte) *Client {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.clients[string(id)]
	if c != nil {
		t.holdLocked(c)
	}
	return c
}

// Lookup returns id's Client without holding it, nil if the table does not
// remember id.
func (t *Table) Lookup(id string) *Client {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.clients[id]
}

func (t *Table) holdLocked(c *Client) {
	c.refs.Add(1)
	t.clock++
	c.used = t.clock
}

// Detach gives back a Client from Attach.
func (t *Table) Detach(c *Client) {
	t.mu.Lock()
	t.clock++
	c.used = t.clock
	last := c.refs.Add(-1) == 0
	t.mu.Unlock()
	if last {
		c.mu.Lock()
		if c.npending == 0 && c.refs.Load() == 0 {
			c.pending = nil
		}
		c.mu.Unlock()
	}
}

// getLocked returns id's client, creating it (and forgetting old ones past the
// bound) if needed. The map lookup with string(b) does not allocate.
func (t *Table) getLocked(id string) *Client {
	if c := t.clients[id]; c != nil {
		return c
	}
	if int64(len(t.clients)) >= t.maxClients.Load() {
		t.evictLocked()
	}
	c := &Client{t: t, id: id}
	t.clock++
	c.used = t.clock
	t.clients[id] = c
	return c
}

// getBytesLocked is getLocked for an id held in a byte slice (the rebuild's).
func (t *Table) getBytesLocked(id []byte) *Client {
	if c := t.clients[string(id)]; c != nil {
		return c
	}
	return t.getLocked(string(id))
}

// evictLocked forgets the least recently used idle clients: 1/16 of the bound,
// at least one, so that the cost (a sort of the idle clients) is paid once per
// many new clients.
func (t *Table) evictLocked() {
	type cand struct {
		used int64
		id   string
	}
	var cands []cand
	for id, c := range t.clients {
		if c.refs.Load() == 0 {
			cands = append(cands, cand{c.used, id})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int {
		switch {
		case a.used < b.used:
			return -1
		case a.used > b.used:
			return 1
		}
		return 0
	})
	n := max(1, int(t.maxClients.Load()/16))
	for _, cd := range cands {
		if n == 0 {
			break
		}
		if c := t.clients[cd.id]; c.idle() {
			delete(t.clients, cd.id)
			t.evicted.Add(1)
			n--
		}
	}
}

// Len is the number of clients remembered.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.clients)
}

// Duplicates is how many reports Check found Durable or Pending.
func (t *Table) Duplicates() uint64 { return t.duplicates.Load() }

// Evicted is how many clients were forgotten to stay within MaxClients.
func (t *Table) Evicted() uint64 { return t.evicted.Load() }

// MarkDurable records (id, seq) as durable, as found in the spool.
func (t *Table) MarkDurable(id []byte, seq uint64) {
	t.mu.Lock()
	t.getBytesLocked(id).markDurable(seq) // under t.mu: not evicted in between
	t.mu.Unlock()
}
