// Package heaptrim keeps a quiet process's heap small: it collects at a lower GOGC while allocation is quiet, and gives the free heap back to the OS once allocation goes quiet after the heap grew.
package heaptrim
