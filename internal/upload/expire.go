package upload

import (
	"os"
	"path/filepath"
	"strings"
)

// Expire removes the partial uploads nobody has open whose last byte arrived more
// than Options.Expiry ago, and returns how many it removed. Expiry 0 keeps them.
func (s *Store) Expire() int {
	if s.opts.Expiry <= 0 {
		return 0
	}
	cutoff := s.opts.Now().Add(-s.opts.Expiry)
	removed := 0
	clients, _ := os.ReadDir(s.partial)
	for _, c := range clients {
		dir := filepath.Join(s.partial, c.Name())
		ents, _ := os.ReadDir(dir)
		for _, ent := range ents {
			id, ok := strings.CutSuffix(ent.Name(), ".json")
			if !ok {
				continue
			}
			s.mu.Lock()
			_, open := s.entries[key{c.Name(), id}]
			if open {
				s.mu.Unlock()
				continue
			}
			base := filepath.Join(dir, id)
			info, err := os.Stat(base + ".part")
			if err == nil && info.ModTime().After(cutoff) {
				s.mu.Unlock()
				continue
			}
			if meta, merr := os.Stat(base + ".json"); err != nil && (merr != nil || meta.ModTime().After(cutoff)) {
				s.mu.Unlock() // opened, no byte yet: counted from the open
				continue
			}
			// Under s.mu, so that no Begin loads it meanwhile.
			os.Remove(base + ".part")
			os.Remove(base + ".json")
			s.mu.Unlock()
			if err == nil {
				s.release(c.Name(), info.Size(), false)
			}
			removed++
		}
	}
	return removed
}
