package client

import (
	"math/rand/v2"
	"time"
)

// backoff returns how long to wait before attempt n (0-based): a uniformly random
// duration in [0, min(max, min·2ⁿ)) — "full jitter", which spreads a fleet of
// agents that lost the same server over the whole window instead of having them
// return in waves.
func backoff(n int, lo, hi time.Duration) time.Duration {
	ceil := hi
	if n < 40 {
		if d := lo << n; d > 0 && d < hi {
			ceil = d
		}
	}
	if ceil <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(ceil)))
}
