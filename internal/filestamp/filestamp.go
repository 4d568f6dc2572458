// Package filestamp tells whether files changed since they were last read, by size, mtime and inode.
//
// Polling a stamp, not watching with inotify: tooling replaces such files by rename,
// and often replaces the directory they are in (Kubernetes secrets and ConfigMaps),
// which a watch on the files misses.
package filestamp

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// Of identifies the versions of the named files ("" names are skipped); a missing
// file has a stamp of its own, so its return is a change too.
func Of(paths ...string) string {
	var b strings.Builder
	for _, p := range paths {
		if p == "" {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			fmt.Fprintf(&b, "%s:missing;", p)
			continue
		}
		var ino uint64
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			ino = st.Ino
		}
		fmt.Fprintf(&b, "%s:%d:%d:%d;", p, fi.Size(), fi.ModTime().UnixNano(), ino)
	}
	return b.String()
}
