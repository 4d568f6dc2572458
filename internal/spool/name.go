package spool

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// A segment's file name, hawk-<start>-<pid>-<counter>.jsonl (the package doc), is
// written and parsed here only: dedup and the tests that read a spool directory
// list its segments with Segments.
const (
	namePrefix = "hawk-"
	nameSuffix = ".jsonl"
	// nameLayout is the start time in a segment name: fixed width, so that names sort
	// by time, and no ':' (not allowed in file names everywhere shippers run).
	nameLayout = "20060102T150405.000000000Z"
)

// SegmentName is the file name (without directory) of the segment that process pid
// started at start, its n-th.
func SegmentName(start time.Time, pid int, n uint64) string {
	return fmt.Sprintf("%s%s-%d-%06d%s", namePrefix, start.UTC().Format(nameLayout), pid, n, nameSuffix)
}

// Segment is one segment file of a spool directory.
type Segment struct {
	Name string // without the directory
	PID  int    // the process that writes it
}

// parseSegmentName returns the pid in a name SegmentName made; ok is false for any
// other file name.
func parseSegmentName(name string) (pid int, ok bool) {
	rest, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return 0, false
	}
	if rest, ok = strings.CutSuffix(rest, nameSuffix); !ok {
		return 0, false
	}
	start, rest, ok := strings.Cut(rest, "-")
	if !ok || len(start) != len(nameLayout) {
		return 0, false
	}
	if _, err := time.Parse(nameLayout, start); err != nil {
		return 0, false
	}
	p, counter, ok := strings.Cut(rest, "-")
	if !ok || len(counter) < 6 {
		return 0, false
	}
	if _, err := strconv.ParseUint(counter, 10, 64); err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(p)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// Segments returns the segment files in dir, sorted by name, that is by start time
// (exactly within one pid unless the wall clock stepped back). Other files are left
// out.
func Segments(dir string) ([]Segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Segment
	for _, e := range ents {
		if pid, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			out = append(out, Segment{Name: e.Name(), PID: pid})
		}
	}
	return out, nil // os.ReadDir sorts by name
}

// SegmentPID returns the pid in a segment's name (without directory); ok is false
// for a name SegmentName does not make.
func SegmentPID(name string) (pid int, ok bool) { return parseSegmentName(name) }
