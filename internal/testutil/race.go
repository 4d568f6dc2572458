//go:build race

package testutil

// RaceEnabled is true in a build with the race detector: tests scale down what
// it makes many times slower.
const RaceEnabled = true
