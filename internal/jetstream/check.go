package jetstream

import (
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// CheckStream compares the stream's configuration with what hawk needs. It returns
// an error (start is refused) when the stream cannot give what an ACK promises:
//
//   - no stream subject covers the subject template (the publishes would fail);
//   - the duplicate window is shorter than RetryHorizon, the longest an agent keeps
//     resending one report: a resend after the window would be stored twice;
//   - with RequireDurable, the stream is not durable (below).
//
// Durable means file storage and either 3 or more replicas (an acknowledged write is
// on a majority of servers) or SyncAlways (the servers fsync every write; a client
// cannot see that setting, so it is the operator's word). JetStream's file store
// otherwise syncs every 2 minutes by default, and a Jepsen analysis of NATS 2.12 lost
// acknowledged writes through that window when nodes crashed. Without
// RequireDurable, the same findings come back as warnings.
func CheckStream(cfg jetstream.StreamConfig, opts Options) (warnings []string, err error) {
	probe := Subject(opts.Subject, "hawk-probe")
	covered := false
	for _, s := range cfg.Subjects {
		if SubjectMatches(s, probe) {
			covered = true
			break
		}
	}
	if !covered {
		return nil, fmt.Errorf("jetstream: stream %q subjects %v do not cover jetstream.subject %q", cfg.Name, cfg.Subjects, opts.Subject)
	}
	if opts.RetryHorizon > 0 && cfg.Duplicates < opts.RetryHorizon {
		return nil, fmt.Errorf("jetstream: stream %q duplicate window %s is shorter than jetstream.retry_horizon %s: "+
			"a resend after the window would be stored twice (raise the stream's duplicate_window)", cfg.Name, cfg.Duplicates, opts.RetryHorizon)
	}
	warnings = durability(cfg.Storage, cfg.Replicas, opts.SyncAlways, "the stream", "acknowledged reports")
	if len(warnings) > 0 && opts.RequireDurable {
		return nil, fmt.Errorf("jetstream: stream %q is not durable (jetstream.require_durable): %s", cfg.Name, strings.Join(warnings, "; "))
	}
	return warnings, nil
}

// durability says why storage with replicas is not durable (nothing when it is):
// what names the stream or bucket, lost what a machine crash can lose.
func durability(storage jetstream.StorageType, replicas int, syncAlways bool, what, lost string) []string {
	if storage != jetstream.FileStorage {
		return []string{"memory storage: a server restart loses " + what}
	}
	if replicas < 3 && !syncAlways {
		return []string{fmt.Sprintf("%d replica(s) and jetstream.sync_always false: the file store syncs every "+
			"2 minutes by default, so a machine crash can lose %s (use num_replicas 3, or run the servers "+
			"with sync_interval: always and set jetstream.sync_always)", replicas, lost)}
	}
	return nil
}

// SubjectMatches reports whether subject matches pattern, NATS style: '*' matches
// one token, '>' as the last token one or more.
func SubjectMatches(pattern, subject string) bool {
	p := strings.Split(pattern, ".")
	s := strings.Split(subject, ".")
	for i, t := range p {
		if t == ">" {
			return i == len(p)-1 && len(s) > i
		}
		if i >= len(s) || (t != "*" && t != s[i]) {
			return false
		}
	}
	return len(p) == len(s)
}
