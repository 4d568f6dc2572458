package forward

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/hawk-agents/hawk/internal/spool"
)

// The position's files in the spool directory (the package doc).
const (
	PositionFile = "forward.position"
	LockFile     = "forward.lock"
	positionTmp  = PositionFile + ".tmp"
	// positionVersion is the format this package writes and the only one it reads.
	positionVersion = 1
)

// position is how far the spool's segments are forwarded.
type position struct {
	Version int              `json:"version"`
	Offsets map[string]int64 `json:"offsets"`
	Done    []string         `json:"done"`
}

func newPosition() *position {
	return &position{Version: positionVersion, Offsets: map[string]int64{}}
}

// loadPosition reads dir's position; a missing file is the empty position.
func loadPosition(dir string) (*position, error) {
	b, err := os.ReadFile(filepath.Join(dir, PositionFile))
	if errors.Is(err, fs.ErrNotExist) {
		return newPosition(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	p := newPosition()
	if err := json.Unmarshal(b, p); err != nil {
		return nil, fmt.Errorf("forward: %s: %w", PositionFile, err)
	}
	if p.Version != positionVersion {
		return nil, fmt.Errorf("forward: %s has version %d, this hawk reads version %d only", PositionFile, p.Version, positionVersion)
	}
	if p.Offsets == nil {
		p.Offsets = map[string]int64{}
	}
	return p, nil
}

// isDone reports whether name is forwarded to its end and closed.
func (p *position) isDone(name string) bool {
	_, found := slices.BinarySearch(p.Done, name)
	return found
}

// markDone records that name is forwarded entirely.
func (p *position) markDone(name string) {
	if i, found := slices.BinarySearch(p.Done, name); !found {
		p.Done = slices.Insert(p.Done, i, name)
	}
	delete(p.Offsets, name)
}

// prune forgets the segments not in segs (removed by retention or by hand).
func (p *position) prune(segs []spool.Segment) {
	present := make(map[string]bool, len(segs))
	for _, g := range segs {
		present[g.Name] = true
	}
	p.Done = slices.DeleteFunc(p.Done, func(n string) bool { return !present[n] })
	for n := range p.Offsets {
		if !present[n] {
			delete(p.Offsets, n)
		}
	}
}

// save replaces dir's position atomically and durably.
func (p *position) save(dir string) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, positionTmp)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("forward: save position: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, PositionFile))
	}
	if err == nil {
		err = spool.SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("forward: save position: %w", err)
	}
	return nil
}

// Unsent returns, for the spool's retention, whether a segment of dir must be kept
// because it is not forwarded to its end, and how many of its bytes are. It reads
// the position once per call; without a readable position every segment is kept
// (and counted unsent from its start).
func Unsent(dir string) func(name string) (unsent bool, sent int64) {
	p, err := loadPosition(dir)
	if err != nil {
		return func(string) (bool, int64) { return true, 0 }
	}
	return func(name string) (bool, int64) { return !p.isDone(name), p.Offsets[name] }
}
