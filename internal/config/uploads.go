package config

import "strings"

// validateUploads checks the uploads.* keys.
func validateUploads(bad func(string, string, ...any), u *Uploads) {
	if strings.ContainsRune(u.Dir, 0) {
		bad("uploads.dir", "must be a directory path")
	}
	for key, n := range map[string]int64{"uploads.max_file_size": u.MaxFileSize, "uploads.client_quota": u.ClientQuota, "uploads.total_quota": u.TotalQuota} {
		if n < 0 {
			bad(key, "must not be negative (0: no limit), not %d", n)
		}
	}
	if u.Expiry < 0 {
		bad("uploads.expiry", "must not be negative (0: never), not %s", u.Expiry)
	}
	if n := u.MaxInFlight; n < 1 || n > 1<<30 {
		bad("uploads.max_in_flight", "must be between 1 and 1GiB, not %d", n)
	}
	for _, c := range u.Bucket {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			bad("uploads.bucket", "must be a bucket name of A-Z a-z 0-9 _ -, not %q", u.Bucket)
			break
		}
	}
	if n := u.BucketReplicas; n < 1 || n > 5 {
		bad("uploads.bucket_replicas", "must be between 1 and 5, not %d", n)
	}
	if u.BucketMaxBytes < 0 {
		bad("uploads.bucket_max_bytes", "must not be negative (0: no limit), not %d", u.BucketMaxBytes)
	}
	if u.BucketTTL < 0 {
		bad("uploads.bucket_ttl", "must not be negative (0: never), not %s", u.BucketTTL)
	}
}
