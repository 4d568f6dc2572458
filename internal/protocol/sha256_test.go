package protocol

import "testing"

func TestValidSHA256(t *testing.T) {
	good := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	for _, tc := range []struct {
		h    string
		want bool
	}{
		{good, true},
		{"", false},
		{good[:63], false},
		{good + "0", false},
		{"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", false},
		{good[:63] + "g", false},
		{good[:63] + "/", false},
	} {
		if got := ValidSHA256(tc.h); got != tc.want {
			t.Errorf("ValidSHA256(%q) = %v, want %v", tc.h, got, tc.want)
		}
	}
}
