package connset

import (
	"slices"
	"testing"
)

type elem struct {
	Member
	id int
}

func TestSetAddRemoveSnapshot(t *testing.T) {
	var s Set[*elem]
	es := []*elem{{id: 1}, {id: 2}, {id: 3}}
	for _, e := range es {
		s.Add(e)
	}
	ran := 0
	s.Remove(es[0], func() { ran++ })
	s.Remove(es[0], func() { ran++ }) // no longer a member: then still runs
	if ran != 2 || s.Len() != 2 {
		t.Fatalf("after removing one: len %d, then ran %d times", s.Len(), ran)
	}
	ids := []int{}
	for _, e := range s.Snapshot(nil) {
		ids = append(ids, e.id)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []int{2, 3}) {
		t.Fatalf("members %v, want [2 3]", ids)
	}
	if s.IfMember(es[0], func() { t.Error("f ran for a removed connection") }) {
		t.Error("a removed connection is a member")
	}
	if !s.IfMember(es[2], func() {}) {
		t.Error("a member is not")
	}
	// The moved element keeps a right index: removing it removes it.
	s.Remove(es[2], nil)
	if got := s.Snapshot(nil); len(got) != 1 || got[0] != es[1] {
		t.Fatalf("members %v after removing 3", got)
	}
}

func TestSetEmptied(t *testing.T) {
	var s Set[*elem]
	select {
	case <-s.Emptied():
	default:
		t.Fatal("an empty set is not emptied")
	}
	e := &elem{}
	s.Add(e)
	ch := s.Emptied()
	select {
	case <-ch:
		t.Fatal("emptied with a member")
	default:
	}
	s.Remove(e, nil)
	select {
	case <-ch:
	default:
		t.Fatal("not emptied once the last member left")
	}
}
