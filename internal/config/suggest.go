package config

import (
	"math"
	"strings"
)

// didYouMean suggests the closest candidate for a probable typo.
func didYouMean(got string, candidates []string) string {
	best, bestD := "", math.MaxInt
	for _, c := range candidates {
		d := editDistance(strings.ToLower(got), strings.ToLower(c))
		if strings.HasSuffix(c, "."+got) || strings.HasSuffix(c, "_"+got) {
			d = 1 // "max_conns" at the top level means limits.max_conns
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" || bestD > 3 || bestD > len(got)/3+1 {
		return ""
	}
	return " (did you mean " + best + "?)"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
