// Package heaptrim owns the runtime's GOGC and memory limit: a quiet process's heap is kept small (a lower GOGC while allocation is quiet, the free heap given back to the OS once allocation goes quiet after the heap grew), and a burst of allocation that stays live, such as a handoff's adoptions, may hold collection off under a memory limit (Hold).
package heaptrim
