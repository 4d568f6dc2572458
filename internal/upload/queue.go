package upload

import (
	"os"
	"path/filepath"
	"strings"
)

// enqueue adds a file just published to the queue (Options.Queue) and says so.
func (s *Store) enqueue(rec FileRecord) {
	s.mu.Lock()
	s.pending = append(s.pending, rec)
	s.mu.Unlock()
	if s.opts.Queued != nil {
		s.opts.Queued()
	}
}

// Backlog returns the published files not yet announced, oldest first: with
// Options.Queue, the files still to put into the bucket. rescan reads them from
// the directory first, which finds those another process published meanwhile (an
// upgrade's old process, while it drains).
func (s *Store) Backlog(rescan bool) []FileRecord {
	if rescan {
		found := s.readBacklog()
		s.mu.Lock()
		s.pending = found
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := make(map[string]bool, len(s.pending))
	out := make([]FileRecord, 0, len(s.pending))
	for _, r := range s.pending {
		if !seen[r.Path] {
			seen[r.Path] = true
			out = append(out, r)
		}
	}
	return out
}

// readBacklog reads the records of files/ not yet announced.
func (s *Store) readBacklog() []FileRecord {
	var out []FileRecord
	clients, _ := os.ReadDir(s.files)
	for _, c := range clients {
		dir := filepath.Join(s.files, c.Name())
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".json") {
				continue
			}
			rec, err := readJSON[FileRecord](filepath.Join(dir, e.Name()))
			if err == nil && !rec.Announced {
				out = append(out, rec)
			}
		}
	}
	return out
}

// Placed announces rec, a file of the Backlog now in bucket as object, and then
// removes the copy here: it no longer counts against the quotas. An error means
// the record is not durable; the file stays in the Backlog.
func (s *Store) Placed(rec FileRecord, bucket, object string) error {
	rec.Bucket, rec.Object = bucket, object
	if err := s.announce(&rec); err != nil {
		return err
	}
	info, err := os.Stat(rec.Path)
	if err == nil {
		err = os.Remove(rec.Path)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		cdir := clientDir(rec.ClientID)
		s.usage[cdir] -= info.Size()
		s.total -= info.Size()
		s.observeUsage()
	}
	kept := s.pending[:0]
	for _, r := range s.pending {
		if r.Path != rec.Path {
			kept = append(kept, r)
		}
	}
	s.pending = kept
	// A copy that could not be removed now is removed at the next start (scan).
	return nil
}
