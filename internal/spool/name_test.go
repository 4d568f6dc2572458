package spool

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestSegmentNameRoundTrip(t *testing.T) {
	start := time.Date(2026, 11, 23, 8, 0, 0, 123456789, time.FixedZone("CET", 3600))
	for _, c := range []struct {
		pid int
		n   uint64
	}{{4242, 7}, {1, 0}, {1 << 22, 1234567}} {
		name := SegmentName(start, c.pid, c.n)
		if pid, ok := parseSegmentName(name); !ok || pid != c.pid {
			t.Errorf("parseSegmentName(%s) = %d, %v; want %d", name, pid, ok, c.pid)
		}
	}
	if got, want := SegmentName(start, 4242, 7), "hawk-20261123T070000.123456789Z-4242-000007.jsonl"; got != want {
		t.Errorf("SegmentName = %s, want %s (the package doc's example layout, in UTC)", got, want)
	}
}

func TestParseSegmentNameRejects(t *testing.T) {
	for _, name := range []string{
		"",
		"hawk-20261123T070000.123456789Z-4242-000007.json",
		"hawk-20261123T070000.123456789Z-4242-000007.jsonl.tmp",
		"x-20261123T070000.123456789Z-4242-000007.jsonl",
		"hawk-20261123T070000Z-4242-000007.jsonl",           // start of another width
		"hawk-20261323T070000.123456789Z-4242-000007.jsonl", // month 13
		"hawk-20261123T070000.123456789Z-0-000007.jsonl",    // no pid 0
		"hawk-20261123T070000.123456789Z--1-000007.jsonl",
		"hawk-20261123T070000.123456789Z-4242-7.jsonl", // counter under six digits
		"hawk-20261123T070000.123456789Z-4242-00000x.jsonl",
		"hawk-20261123T070000.123456789Z-4242-000007-1.jsonl",
		"hawk-20261123T070000.123456789Z-4242.jsonl",
	} {
		if pid, ok := parseSegmentName(name); ok {
			t.Errorf("parseSegmentName(%q) = %d, true; want not a segment", name, pid)
		}
	}
}

func TestSegmentsListsOnlySegments(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	want := []Segment{
		{SegmentName(start, 7, 1), 7},
		{SegmentName(start.Add(time.Second), 5, 0), 5},
		{SegmentName(start.Add(time.Second), 7, 2), 7},
	}
	for _, name := range []string{want[2].Name, "notes.txt", want[0].Name, "hawk-x.jsonl", want[1].Name} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, SegmentName(start, 9, 9)), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := Segments(dir)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("Segments = %v, %v; want %v", got, err, want)
	}
	if _, err := Segments(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("Segments of a missing directory: %v, want not-exist", err)
	}
}
