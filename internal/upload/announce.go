package upload

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/hawk-agents/hawk/internal/ingest"
)

// announce makes rec durable in the report stream and then records that it is.
func (s *Store) announce(rec *FileRecord) error {
	if s.opts.Announce != nil {
		out := *rec
		out.Announced = false
		if out.Object != "" {
			out.Path = "" // not here any more
		}
		if err := s.opts.Announce(out); err != nil {
			return err
		}
	}
	rec.Announced = true
	return writeJSON(rec.Path+".json", rec, s.opts.Fsync())
}

// AnnouncePending announces the files a previous process published but did not
// announce; the first failure stops it (they are tried again at the next start,
// or by a commit of the same upload).
func (s *Store) AnnouncePending() error {
	if s.opts.Queue {
		return nil // Placed announces them, once they are in the bucket
	}
	s.mu.Lock()
	pending := s.pending
	s.pending = nil
	s.mu.Unlock()
	for i := range pending {
		if err := s.announce(&pending[i]); err != nil {
			s.mu.Lock()
			s.pending = append(s.pending, pending[i:]...)
			s.mu.Unlock()
			return err
		}
	}
	return nil
}

// Announcer writes file records into the report stream through an
// ingest.Destination, one line each, and waits for each to be durable. The line's
// client_id is "upload:<client id>" and its seq a server-assigned increasing number
// (as legacy records'; FileRecord.Seq, chosen at publish), so that it never enters
// the client's own seq window; its format is "upload" and its payload
// {"file":<FileRecord>}.
type Announcer struct {
	Dest ingest.Destination

	mu   sync.Mutex
	last uint64
}

// Announce implements Options.Announce.
func (a *Announcer) Announce(r FileRecord) error {
	seq := r.Seq
	r.Seq = 0     // the line's seq says it
	if seq == 0 { // a .json written without one
		a.mu.Lock()
		seq = max(uint64(time.Now().UnixNano()), a.last+1)
		a.last = seq
		a.mu.Unlock()
	}
	payload, err := json.Marshal(struct {
		File FileRecord `json:"file"`
	}{r})
	if err != nil {
		return err
	}
	var b ingest.Batch
	b.Add(&ingest.Record{ClientID: "upload:" + r.ClientID, Seq: seq, Received: r.Published,
		Listener: "protocol", Format: "upload", Payload: payload})
	w := make(waiter, 1)
	a.Dest.Submit(&b, w)
	return <-w
}

type waiter chan error

func (w waiter) Committed(_ []uint64, err error) { w <- err }
