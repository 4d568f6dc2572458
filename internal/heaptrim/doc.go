// Package heaptrim gives the heap's free memory back to the OS once allocation goes quiet after the heap grew.
package heaptrim
