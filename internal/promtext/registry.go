// Package promtext keeps metrics and writes them in Prometheus's text format 0.0.4, with no package initialisation.
package promtext

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Registry holds metric families and writes them, sorted by name, on a scrape.
// Registering a family twice with the same name, type, help and label names returns
// the same family; anything else under a used name, or a series registered twice, panics.
type Registry struct {
	mu     sync.RWMutex
	fams   map[string]*family
	before []func()
	write  sync.Mutex // one scrape at a time: OnWrite's snapshots are shared
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{fams: map[string]*family{}} }

type family struct {
	name, help, kind string
	labels           []string // names, in the order values are given
	byName           []int    // indexes of labels sorted by name: the order written
	buckets          []float64
	series           map[string]*series // by the label values joined
}

type series struct {
	key   []string // label values in byName order, to sort series as client_golang does
	pairs string   // `a="x",b="y"`, written between the braces
	m     sample
}

type sample interface {
	write(b []byte, f *family, pairs string) []byte
}

// OnWrite registers fn to run before each scrape writes: a snapshot the function
// metrics then read (one runtime.ReadMemStats for every go_memstats_* metric).
func (r *Registry) OnWrite(fn func()) {
	r.mu.Lock()
	r.before = append(r.before, fn)
	r.mu.Unlock()
}

func (r *Registry) family(name, help, kind string, labels []string, buckets []float64) *family {
	checkName(name, false)
	for _, l := range labels {
		checkName(l, true)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.fams[name]; ok {
		if f.help != help || f.kind != kind || !slices.Equal(f.labels, labels) || !slices.Equal(f.buckets, buckets) {
			panic(fmt.Sprintf("promtext: %s registered again differently", name))
		}
		return f
	}
	f := &family{name: name, help: help, kind: kind, labels: labels, buckets: buckets, series: map[string]*series{}}
	f.byName = make([]int, len(labels))
	for i := range f.byName {
		f.byName[i] = i
	}
	slices.SortFunc(f.byName, func(a, b int) int { return strings.Compare(labels[a], labels[b]) })
	r.fams[name] = f
	return f
}

// child returns f's series for values, made by mk if it has none; with unique, a
// series already there panics.
func (r *Registry) child(f *family, values []string, mk func() sample, unique bool) sample {
	if len(values) != len(f.labels) {
		panic(fmt.Sprintf("promtext: %s has %d labels, given %d values", f.name, len(f.labels), len(values)))
	}
	k := strings.Join(values, "\xff")
	r.mu.RLock()
	s, ok := f.series[k]
	r.mu.RUnlock()
	if ok && !unique {
		return s.m
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := f.series[k]; ok {
		if unique {
			panic(fmt.Sprintf("promtext: %s%v registered twice", f.name, values))
		}
		return s.m
	}
	s = &series{m: mk(), key: make([]string, len(values))}
	var b []byte
	for i, j := range f.byName {
		v := strings.ToValidUTF8(values[j], "\uFFFD")
		s.key[i] = v
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, f.labels[j]...)
		b = append(b, '=', '"')
		b = appendEscaped(b, v, true)
		b = append(b, '"')
	}
	s.pairs = string(b)
	f.series[k] = s
	return s.m
}

// WriteTo writes every family that has a series, in the text format.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.write.Lock()
	defer r.write.Unlock()
	r.mu.RLock()
	before := slices.Clone(r.before)
	fams := make([]*family, 0, len(r.fams))
	sers := map[*family][]*series{}
	for _, f := range r.fams {
		if len(f.series) == 0 {
			continue
		}
		fams = append(fams, f)
		ss := make([]*series, 0, len(f.series))
		for _, s := range f.series {
			ss = append(ss, s)
		}
		sers[f] = ss
	}
	r.mu.RUnlock()
	// The functions run outside the registry's lock: they read other packages' state.
	for _, fn := range before {
		fn()
	}
	slices.SortFunc(fams, func(a, b *family) int { return strings.Compare(a.name, b.name) })
	b := make([]byte, 0, 64<<10)
	for _, f := range fams {
		ss := sers[f]
		slices.SortFunc(ss, func(a, b *series) int { return slices.Compare(a.key, b.key) })
		b = append(b, "# HELP "...)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = appendEscaped(b, f.help, false)
		b = append(b, "\n# TYPE "...)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = append(b, f.kind...)
		b = append(b, '\n')
		for _, s := range ss {
			b = s.m.write(b, f, s.pairs)
		}
	}
	n, err := w.Write(b)
	return int64(n), err
}

// checkName panics on a name Prometheus would refuse: a programming error, caught
// at registration as client_golang does.
func checkName(s string, label bool) {
	ok := s != "" && utf8.ValidString(s) && !(label && strings.HasPrefix(s, "__"))
	for i, c := range s {
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!label && c == ':')
		if !letter && (i == 0 || c < '0' || c > '9') {
			ok = false
		}
	}
	if !ok {
		panic(fmt.Sprintf("promtext: invalid name %q", s))
	}
}
