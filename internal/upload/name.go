package upload

import (
	"fmt"
	"unicode/utf8"
)

// MaxNameLen is the longest file name an upload may carry, in bytes.
const MaxNameLen = 255

// ValidName reports why name cannot be an upload's name, or nil. A name is
// metadata, never a path: one plain file name of valid UTF-8, without a path
// separator or a control character, and neither "." nor "..".
func ValidName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("name is empty")
	case len(name) > MaxNameLen:
		return fmt.Errorf("name is %d bytes, the limit is %d", len(name), MaxNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("name %q is not a file name", name)
	case !utf8.ValidString(name):
		return fmt.Errorf("name is not valid UTF-8")
	}
	for i, r := range name {
		switch {
		case r == '/' || r == '\\':
			return fmt.Errorf("name %q has a path separator at byte %d: a name is a file name, not a path", name, i)
		case r < 0x20 || r == 0x7f:
			return fmt.Errorf("name has a control character at byte %d", i)
		}
	}
	return nil
}
