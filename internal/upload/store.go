package upload

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hawk-agents/hawk/internal/protocol"
)

// Options configure a Store.
type Options struct {
	Dir         string      // the store's directory; partial/ and files/ are made under it
	Fsync       func() bool // whether to fsync chunks, metadata and directories (the spool's policy, live); nil: never
	MaxFileSize int64       // the largest file; 0: no limit
	ClientQuota int64       // bytes one client may hold, partial and published; 0: no limit
	TotalQuota  int64       // bytes every client together may hold; 0: no limit
	Expiry      time.Duration
	// Announce makes a published file's record durable (in the report stream); it
	// blocks until it is, or fails. nil: files are not announced.
	Announce func(FileRecord) error
	// Queue makes the published files a queue for another store (the Object
	// Store bucket of destination: jetstream; internal/objstore takes them): a
	// commit answers done once the file is published here, and the file is
	// announced by Placed, with where it went. Queued, if set, is called after
	// each publish; it must not block.
	Queue    bool
	Queued   func()
	Observer Observer         // nil: none
	Now      func() time.Time // nil: time.Now
}

// Observer is told what the store does, for metrics.
type Observer interface {
	UploadStarted(resumed bool)
	UploadFinished(bytes int64)
	UploadFailed(code protocol.Code)
	UploadBytes(n int)
	// UploadUsage is called whenever the bytes held change: in partial uploads and in all.
	UploadUsage(partial, total int64)
}

// Store holds every client's uploads under one directory.
type Store struct {
	opts    Options
	partial string
	files   string

	mu      sync.Mutex
	entries map[key]*entry
	usage   map[string]int64 // per client dir: bytes held, partial and published
	total   int64
	held    int64        // bytes in partial uploads
	pending []FileRecord // published but not yet announced
	lastSeq uint64       // the last FileRecord.Seq given
}

type key struct{ client, id string }

// Open opens (creating) the store in opts.Dir and takes stock of what it holds.
func Open(opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Fsync == nil {
		opts.Fsync = func() bool { return false }
	}
	s := &Store{opts: opts, partial: filepath.Join(opts.Dir, "partial"), files: filepath.Join(opts.Dir, "files"),
		entries: map[key]*entry{}, usage: map[string]int64{}}
	for _, d := range []string{s.partial, s.files} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("upload: %w", err)
		}
	}
	if err := s.scan(); err != nil {
		return nil, err
	}
	s.observeUsage()
	return s, nil
}

// clientDir is the directory name of a client: a hash, so that no client id
// (any UTF-8 of up to 256 bytes) becomes a path.
func clientDir(client string) string {
	h := sha256.Sum256([]byte(client))
	return hex.EncodeToString(h[:])
}

// scan counts the bytes held and rolls forward a publish a death interrupted.
func (s *Store) scan() error {
	for _, area := range []string{s.partial, s.files} {
		clients, err := os.ReadDir(area)
		if err != nil {
			return fmt.Errorf("upload: %w", err)
		}
		for _, c := range clients {
			if !c.IsDir() {
				continue
			}
			dir := filepath.Join(area, c.Name())
			ents, err := os.ReadDir(dir)
			if err != nil {
				return fmt.Errorf("upload: %w", err)
			}
			for _, e := range ents {
				name := e.Name()
				if strings.HasSuffix(name, ".tmp") {
					os.Remove(filepath.Join(dir, name)) // an interrupted metadata write
					continue
				}
				if area == s.files && strings.HasSuffix(name, ".json") {
					if err := s.recoverFile(c.Name(), strings.TrimSuffix(name, ".json")); err != nil {
						return err
					}
					continue
				}
				if strings.HasSuffix(name, ".json") {
					continue
				}
				info, err := e.Info()
				if err != nil {
					continue // removed meanwhile
				}
				s.usage[c.Name()] += info.Size()
				s.total += info.Size()
				if area == s.partial {
					s.held += info.Size()
				}
			}
		}
	}
	return nil
}

// recoverFile finishes the publish of files/<cdir>/<id>: its record is written
// first, so a record whose data is still in partial/ is a publish to complete.
func (s *Store) recoverFile(cdir, id string) error {
	rec, err := readJSON[FileRecord](filepath.Join(s.files, cdir, id+".json"))
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	if rec.Announced && rec.Object != "" {
		// Placed in a bucket. A copy still here is one the process died before
		// removing; scan counted it already (the file's name sorts before its .json).
		if info, err := os.Stat(rec.Path); err == nil && os.Remove(rec.Path) == nil {
			s.usage[cdir] -= info.Size()
			s.total -= info.Size()
		}
		return nil
	}
	part := filepath.Join(s.partial, cdir, id+".part")
	if _, err := os.Stat(rec.Path); errors.Is(err, os.ErrNotExist) {
		if err := os.Rename(part, rec.Path); err != nil {
			return fmt.Errorf("upload: completing the publish of %s: %w", rec.Path, err)
		}
		os.Remove(filepath.Join(s.partial, cdir, id+".json"))
	}
	if !rec.Announced {
		s.pending = append(s.pending, rec)
	}
	return nil
}

// nextSeq is a FileRecord.Seq: the time in nanoseconds, above every one given
// before, so that a client's file records keep their order in the stream.
func (s *Store) nextSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastSeq = max(uint64(s.opts.Now().UnixNano()), s.lastSeq+1)
	return s.lastSeq
}

func (s *Store) observeUsage() {
	if s.opts.Observer != nil {
		s.opts.Observer.UploadUsage(s.held, s.total)
	}
}

func (s *Store) failed(code protocol.Code) {
	if s.opts.Observer != nil {
		s.opts.Observer.UploadFailed(code)
	}
}

// reserve counts n more bytes for cdir against the quotas, or says which is exceeded.
func (s *Store) reserve(cdir string, n int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.opts.ClientQuota; q > 0 && s.usage[cdir]+n > q {
		return fmt.Errorf("the client holds %d bytes; %d more exceed its quota of %d", s.usage[cdir], n, q)
	}
	if q := s.opts.TotalQuota; q > 0 && s.total+n > q {
		return fmt.Errorf("uploads hold %d bytes; %d more exceed the total quota of %d", s.total, n, q)
	}
	s.usage[cdir] += n
	s.total += n
	s.held += n
	s.observeUsage()
	return nil
}

// release gives back bytes counted by reserve (a failed write, an expired partial).
func (s *Store) release(cdir string, n int64, published bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !published {
		s.usage[cdir] -= n
		s.total -= n
	}
	s.held -= n
	s.observeUsage()
}

// Usage returns the bytes held in partial uploads and in all.
func (s *Store) Usage() (partial, total int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held, s.total
}
