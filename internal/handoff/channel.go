package handoff

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Name is the name of the file that carries the child's end of the channel through
// tableflip.
const Name = "hawk-handoff"

// MaxFDs is the most descriptors one message carries: the kernel's SCM_MAX_FD.
const MaxFDs = 253

// The wire format. Sender to receiver, one message per batch: a 12-byte header
// (batchMagic, count u32, body length u32) sent alone with the batch's descriptors
// as SCM_RIGHTS, then the body: per descriptor, in order, a u32 length and the
// State message. A batch of 0 descriptors ends the handoff. Receiver to sender, per
// batch: ackMagic and the count it took.
const (
	headerSize = 12
	ackSize    = 8
	// maxBody bounds a batch's body, so a corrupt header cannot make the receiver
	// allocate gigabytes.
	maxBody = MaxFDs * maxStateSize
)

var (
	batchMagic = [4]byte{'H', 'W', 'K', 'B'}
	ackMagic   = [4]byte{'H', 'W', 'K', 'A'}
	readyMagic = [4]byte{'H', 'W', 'K', 'R'}
	// readyListenersMagic is a ready followed by a u32 length and the JSON of the
	// receiver's legacy listeners (Ready). A sender of the previous build reads it
	// as no ready and drains everything with GOAWAY: safe, for that one upgrade
	// (a receiver with no legacy listener sends readyMagic, which it understands).
	readyListenersMagic = [4]byte{'H', 'W', 'K', 'L'}
)

// maxReady bounds the ready message's listener list.
const maxReady = 1 << 20

// Ready is what the receiver says with its ready: what it can adopt.
type Ready struct {
	// Legacy is the receiver's legacy listeners, name to format. A legacy
	// connection moves only to a listener of the same name and format: the sender
	// keeps the others (it cannot take a connection back once sent).
	Legacy map[string]string `json:"legacy,omitempty"`
	// StateVersion is the newest State version the receiver reads: the sender
	// writes that one, or stateJSON, which every receiver reads, when it is
	// below StateVersion (a plain ready says nothing: stateJSON).
	StateVersion int `json:"state_version,omitempty"`
}

// stateVersion is the State version to write to the receiver that said r.
func (r *Ready) stateVersion() byte {
	if r.StateVersion >= StateVersion {
		return StateVersion
	}
	return stateJSON
}

// SignalReadyWith is SignalReady that also says what the receiver can adopt.
func (ch *Channel) SignalReadyWith(r *Ready) error {
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("handoff: encode ready: %w", err)
	}
	msg := make([]byte, 0, 8+len(body))
	msg = append(msg, readyListenersMagic[:]...)
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(body)))
	if _, err := ch.uc.Write(append(msg, body...)); err != nil {
		return fmt.Errorf("handoff: signal ready: %w", err)
	}
	return nil
}

// SignalReady tells the sender that the receiver can serve what it is sent at
// once (contract step 2): before it, the sender keeps serving its connections.
func (ch *Channel) SignalReady() error {
	if _, err := ch.uc.Write(readyMagic[:]); err != nil {
		return fmt.Errorf("handoff: signal ready: %w", err)
	}
	return nil
}

// WaitReady waits until deadline for the receiver's SignalReady or
// SignalReadyWith and returns what it said (an empty Ready for SignalReady: a
// receiver that adopts no legacy connection).
func (ch *Channel) WaitReady(deadline time.Time) (*Ready, error) {
	ch.uc.SetReadDeadline(deadline)
	defer ch.uc.SetReadDeadline(time.Time{})
	var b [4]byte
	if _, err := io.ReadFull(ch.uc, b[:]); err != nil {
		return nil, fmt.Errorf("handoff: the new process did not say it was ready: %w", err)
	}
	switch b {
	case readyMagic:
		ch.version = stateJSON
		return &Ready{}, nil
	case readyListenersMagic:
	default:
		return nil, fmt.Errorf("handoff: % x instead of the new process's ready", b)
	}
	var l [4]byte
	if _, err := io.ReadFull(ch.uc, l[:]); err != nil {
		return nil, fmt.Errorf("handoff: the new process's ready: %w", err)
	}
	n := binary.BigEndian.Uint32(l[:])
	if n > maxReady {
		return nil, fmt.Errorf("handoff: ready of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(ch.uc, body); err != nil {
		return nil, fmt.Errorf("handoff: the new process's ready: %w", err)
	}
	r := new(Ready)
	if err := json.Unmarshal(body, r); err != nil {
		return nil, fmt.Errorf("handoff: the new process's ready: %w", err)
	}
	ch.version = r.stateVersion()
	return r, nil
}

// StateVersion is the State version to write to the receiver: the one its ready
// asked for, StateVersion before any.
func (ch *Channel) StateVersion() byte {
	if ch.version == 0 {
		return StateVersion
	}
	return ch.version
}

// Channel is one end of the handoff socketpair. Send, Post, Ack and Done are
// the sender's, Receive the receiver's; neither side is safe for concurrent use,
// except that Post and Ack may run at the same time.
type Channel struct {
	uc      *net.UnixConn
	summary *Summary // what the sender's Done said
	version byte     // the State version the receiver's ready asked for (0: none yet)
	// mu guards posted: the sizes of the batches posted and not yet acknowledged,
	// oldest first (Post and Ack run on different goroutines).
	mu     sync.Mutex
	posted []int
}

// Summary is what a handoff did, as the sender saw it.
type Summary struct {
	Moved    int            `json:"moved"`
	Lost     int            `json:"lost"`
	Fallback map[string]int `json:"fallback,omitempty"`
	Duration time.Duration  `json:"duration_ns"`
	// HeapGoal is the sender's heap goal (bytes; 0: none known, or a sender
	// that predates it): the receiver may hold its collector until its heap
	// reaches it (ReceiverOptions.HeapFloorWait).
	HeapGoal uint64 `json:"heap_goal,omitempty"`
}

// maxSummary bounds the end message's body.
const maxSummary = 64 << 10

// Summary returns what the sender's Done said, once Receive has returned nil; nil
// if the sender ended without one (it died, or closed its end).
func (ch *Channel) Summary() *Summary { return ch.summary }

// Pair is a new channel: Parent stays in the old process, Child goes to the new one.
type Pair struct {
	Parent *Channel
	Child  *os.File
}

// NewPair makes a socketpair. SOCK_STREAM: a batch's body can exceed what one
// datagram holds; the descriptors travel with the header, which is read on its own.
func NewPair() (*Pair, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("handoff: socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "handoff-parent")
	child := os.NewFile(uintptr(fds[1]), Name)
	ch, err := FromFile(parent)
	parent.Close() // FromFile holds a duplicate
	if err != nil {
		child.Close()
		return nil, err
	}
	return &Pair{Parent: ch, Child: child}, nil
}

// FromFile makes a Channel of a socket file (the child's end, inherited). f may be
// closed afterwards: the Channel holds a duplicate.
func FromFile(f *os.File) (*Channel, error) {
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("handoff: channel from %s: %w", f.Name(), err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("handoff: %s is not a unix socket", f.Name())
	}
	return &Channel{uc: uc}, nil
}

// Close closes this end; the other side reads end-of-file.
func (ch *Channel) Close() error { return ch.uc.Close() }

// Send sends one batch and waits for its acknowledgement (Post, then Ack).
func (ch *Channel) Send(fds []int, states [][]byte) error {
	if err := ch.Post(fds, states); err != nil {
		return err
	}
	return ch.Ack()
}

// Post sends one batch (len(fds) == len(states), 1 to MaxFDs) without waiting
// for its acknowledgement; an error means the batch's fate is unknown (contract
// step 3). Post and Ack may run at the same time.
func (ch *Channel) Post(fds []int, states [][]byte) error {
	if len(fds) == 0 || len(fds) > MaxFDs || len(fds) != len(states) {
		return fmt.Errorf("handoff: batch of %d descriptors and %d states", len(fds), len(states))
	}
	body := 0
	for _, s := range states {
		body += 4 + len(s)
	}
	hdr := header(len(fds), body)
	if _, _, err := ch.uc.WriteMsgUnix(hdr[:], syscall.UnixRights(fds...), nil); err != nil {
		return fmt.Errorf("handoff: send batch header: %w", err)
	}
	buf := make([]byte, 0, body)
	for _, s := range states {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
		buf = append(buf, s...)
	}
	ch.mu.Lock()
	ch.posted = append(ch.posted, len(fds)) // before the body: the ack may follow it at once
	ch.mu.Unlock()
	if _, err := ch.uc.Write(buf); err != nil {
		return fmt.Errorf("handoff: send batch body: %w", err)
	}
	return nil
}

// Ack waits for the acknowledgement of the oldest batch posted and not yet
// acknowledged (the receiver acknowledges in order). nil means the receiver owns
// every descriptor of that batch.
func (ch *Channel) Ack() error {
	var ack [ackSize]byte
	if _, err := io.ReadFull(ch.uc, ack[:]); err != nil {
		return fmt.Errorf("handoff: no acknowledgement for a batch: %w", err)
	}
	ch.mu.Lock()
	n := -1
	if len(ch.posted) > 0 {
		n = ch.posted[0]
		ch.posted = ch.posted[1:]
	}
	ch.mu.Unlock()
	if [4]byte(ack[:4]) != ackMagic || int(binary.BigEndian.Uint32(ack[4:])) != n {
		return fmt.Errorf("handoff: bad acknowledgement % x for a batch of %d", ack, n)
	}
	return nil
}

// Done tells the receiver that no batch follows, with what the handoff did: the
// old process exits at once, so the new one reports it (Channel.Summary).
func (ch *Channel) Done(sum *Summary) error {
	body, err := json.Marshal(sum)
	if err != nil {
		return fmt.Errorf("handoff: encode summary: %w", err)
	}
	hdr := header(0, len(body))
	if _, err := ch.uc.Write(append(hdr[:], body...)); err != nil {
		return fmt.Errorf("handoff: send end: %w", err)
	}
	return nil
}

func header(n, body int) [headerSize]byte {
	var h [headerSize]byte
	copy(h[:4], batchMagic[:])
	binary.BigEndian.PutUint32(h[4:], uint32(n))
	binary.BigEndian.PutUint32(h[8:], uint32(body))
	return h
}

// Batch is one received batch: Files[i] is described by States[i] (undecoded).
type Batch struct {
	Files  []*os.File
	States [][]byte
	end    []byte // the end message's summary
}

// newOOB is a buffer for a batch's descriptors.
func newOOB() []byte { return make([]byte, syscall.CmsgSpace(MaxFDs*4)) }

// errEnd is the sender's empty batch.
var errEnd = errors.New("handoff: end")

// recv reads one batch. The descriptors come with the header, which is read with a
// buffer of exactly its size: the kernel keeps a message's descriptors with its
// first byte, and never merges them into a read of another message's bytes.
// oob is the buffer for the descriptors (newOOB).
func (ch *Channel) recv(oob []byte) (*Batch, error) {
	var hdr [headerSize]byte
	n, oobn, flags, _, err := ch.uc.ReadMsgUnix(hdr[:], oob)
	if err != nil {
		return nil, fmt.Errorf("handoff: receive batch header: %w", err)
	}
	if n == 0 {
		return nil, io.EOF
	}
	files, ferr := parseRights(oob[:oobn])
	b := &Batch{Files: files}
	if ferr == nil && flags&syscall.MSG_CTRUNC != 0 {
		ferr = errors.New("handoff: descriptors truncated (MSG_CTRUNC)")
	}
	if ferr == nil && n < headerSize {
		_, ferr = io.ReadFull(ch.uc, hdr[n:])
	}
	if ferr == nil {
		ferr = b.readBody(ch.uc, hdr)
	}
	if ferr != nil {
		b.close()
		return nil, ferr
	}
	if len(b.Files) == 0 {
		if len(b.end) > 0 {
			sum := new(Summary)
			if err := json.Unmarshal(b.end, sum); err != nil {
				return nil, fmt.Errorf("handoff: end summary: %w", err)
			}
			ch.summary = sum
		}
		return nil, errEnd
	}
	return b, nil
}

func (b *Batch) readBody(r io.Reader, hdr [headerSize]byte) error {
	if [4]byte(hdr[:4]) != batchMagic {
		return fmt.Errorf("handoff: bad batch header % x", hdr)
	}
	count, body := int(binary.BigEndian.Uint32(hdr[4:])), int64(binary.BigEndian.Uint32(hdr[8:]))
	if count != len(b.Files) {
		return fmt.Errorf("handoff: header announces %d descriptors, %d came", count, len(b.Files))
	}
	if body > maxBody || (count == 0 && body > maxSummary) {
		return fmt.Errorf("handoff: batch body of %d bytes", body)
	}
	buf := make([]byte, body)
	if _, err := io.ReadFull(r, buf); err != nil {
		return fmt.Errorf("handoff: receive batch body: %w", err)
	}
	if count == 0 {
		b.end = buf // the end: its body is the summary
		return nil
	}
	for range count {
		if len(buf) < 4 {
			return errors.New("handoff: batch body ends before its states")
		}
		l := int(binary.BigEndian.Uint32(buf))
		if l > len(buf)-4 {
			return errors.New("handoff: a state runs past the batch body")
		}
		b.States = append(b.States, buf[4:4+l:4+l])
		buf = buf[4+l:]
	}
	if len(buf) != 0 {
		return fmt.Errorf("handoff: %d bytes after the batch's states", len(buf))
	}
	return nil
}

func (b *Batch) close() {
	for _, f := range b.Files {
		f.Close()
	}
}

func parseRights(oob []byte) ([]*os.File, error) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("handoff: control message: %w", err)
	}
	var files []*os.File
	for _, m := range msgs {
		fds, err := syscall.ParseUnixRights(&m)
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, fmt.Errorf("handoff: control message: %w", err)
		}
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), "handoff-conn"))
		}
	}
	return files, nil
}

// Receive runs the receiver: for each descriptor received, adopt is called with its
// file and its decoded State, or the decode error (then adopt must answer the
// client and close). adopt owns the file. Each batch is acknowledged once adopt has
// returned for all of it. Receive returns nil at the sender's end, or the error
// that broke the channel.
//
// The next batch is read on a goroutine of its own while adopt runs for this one
// (its recvmsg and its descriptors' files overlap the adoptions), one batch ahead
// and no more. This driver posts the next batch only once this one is
// acknowledged, but the sender is the previous release, and earlier ones keep
// three batches in flight. What Receive does and returns is what reading in turn would: a
// batch is adopted and acknowledged in order, an error ends Receive after the
// batches read before it; a batch read ahead of an error of Receive's own (an
// acknowledgement it cannot write) has its descriptors closed, as the sender,
// which lost it, expects.
func (ch *Channel) Receive(adopt func(f *os.File, st *State, err error)) error {
	type result struct {
		b   *Batch
		err error
	}
	next := make(chan result) // unbuffered: one batch read ahead, no more
	stop := make(chan struct{})
	go func() {
		defer close(next)
		oob := newOOB()
		for {
			b, err := ch.recv(oob)
			select {
			case next <- result{b, err}:
			case <-stop:
				if b != nil {
					b.close()
				}
				return
			}
			if err != nil {
				return
			}
		}
	}()
	ended := false // the reader sent its last result and returned
	defer func() {
		if ended {
			return
		}
		// Receive's own error (or adopt's panic): the reader may be waiting in
		// recvmsg or holding a batch; stop it and close what it read.
		close(stop)
		ch.uc.SetReadDeadline(time.Now())
		for r := range next {
			if r.b != nil {
				r.b.close()
			}
		}
		ch.uc.SetReadDeadline(time.Time{})
	}()
	for r := range next {
		switch {
		case errors.Is(r.err, errEnd), errors.Is(r.err, io.EOF):
			ended = true
			return nil
		case r.err != nil:
			ended = true
			return r.err
		}
		b := r.b
		for i, f := range b.Files {
			st, derr := DecodeState(b.States[i])
			adopt(f, st, derr)
		}
		var ack [ackSize]byte
		copy(ack[:4], ackMagic[:])
		binary.BigEndian.PutUint32(ack[4:], uint32(len(b.Files)))
		if _, err := ch.uc.Write(ack[:]); err != nil {
			return fmt.Errorf("handoff: acknowledge a batch of %d: %w", len(b.Files), err)
		}
	}
	ended = true
	return errors.New("handoff: the channel's reader ended without a reason") // unreachable: its last result is an error
}
