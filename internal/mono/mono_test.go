package mono

import (
	"testing"
	"time"
)

func TestNowIsMonotonicAndConvertsToWallTime(t *testing.T) {
	a := Now()
	before := time.Now()
	b := Now()
	if b < a {
		t.Fatalf("Now went back: %d then %d", a, b)
	}
	if d := Time(b).Sub(before); d < -time.Second || d > time.Second {
		t.Fatalf("Time(Now()) is %v away from time.Now()", d)
	}
}
