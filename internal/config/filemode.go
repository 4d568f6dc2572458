package config

import (
	"fmt"
	"io/fs"
	"strconv"
)

// ParseFileMode parses permissions written in octal ("0640", "640"): at most 0777,
// with read and write for the owner, who writes the files and reads them back.
func ParseFileMode(s string) (fs.FileMode, error) {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o777 {
		return 0, fmt.Errorf("must be permissions in octal (0000..0777), not %q", s)
	}
	m := fs.FileMode(v)
	if m&0o600 != 0o600 {
		return 0, fmt.Errorf("must give the owner read and write (0600), not %#o", v)
	}
	return m, nil
}

// SegmentMode is spool.file_mode parsed; Validate has checked it.
func (s Spool) SegmentMode() fs.FileMode {
	m, _ := ParseFileMode(s.FileMode)
	return m
}
