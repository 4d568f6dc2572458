package spool

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// Segments get exactly the configured mode, whatever the umask takes away at
// create (0666 loses bits under any usual umask), and a directory Open creates
// gets search where the mode gives read.
func TestSegmentAndDirectoryModes(t *testing.T) {
	for _, tc := range []struct {
		mode, file, dir fs.FileMode
	}{
		{0, 0o640, 0o750}, // the default: owner and group (a log shipper)
		{0o600, 0o600, 0o700},
		{0o666, 0o666, 0o777},
	} {
		dir := filepath.Join(t.TempDir(), "spool")
		s, err := Open(Options{Dir: dir, FileMode: tc.mode})
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != tc.dir {
			t.Errorf("mode %#o: directory %#o, want %#o", tc.mode, got, tc.dir)
		}
		segs, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
		if len(segs) != 1 {
			t.Fatalf("segments %v, want the first one", segs)
		}
		st, err = os.Stat(segs[0])
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != tc.file {
			t.Errorf("mode %#o: segment %#o, want %#o", tc.mode, got, tc.file)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
