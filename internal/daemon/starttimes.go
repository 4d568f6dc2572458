package daemon

import (
	"os"
	"strconv"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/hawk-agents/hawk/internal/config"
	"github.com/hawk-agents/hawk/internal/upgrade"
)

// startTimes are the "listening" line's account of where a start's time went before
// start began (its own share is "startup"): config_load, from main to the
// configuration loaded; and in a process started by an upgrade, from the parent's
// request (config.UpgradeRequestedEnv): before_main, what the parent did before the
// exec, the exec, the runtime's start and package init; since_upgrade_requested,
// the whole of it to now, the new process's side of the parent's sighup_to_ready.
// mainBegan is zero when main did not say (tests). Then the process's CPU (user and
// system) and minor page faults since its exec: the same work costs the same CPU on a
// machine whose other load stretches every wall-clock figure.
func startTimes(mainBegan, startBegan time.Time, inherited bool) []zap.Field {
	var fields []zap.Field
	if !mainBegan.IsZero() {
		fields = append(fields, zap.Duration("config_load", startBegan.Sub(mainBegan)))
		if requested, err := strconv.ParseInt(os.Getenv(config.UpgradeRequestedEnv), 10, 64); inherited && err == nil && requested > 0 {
			sinceRequest := time.Duration(upgrade.Clock() - requested)
			fields = append(fields, zap.Duration("before_main", sinceRequest-time.Since(mainBegan)),
				zap.Duration("since_upgrade_requested", sinceRequest))
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		fields = append(fields, zap.Duration("cpu", cpu), zap.Int64("page_faults", ru.Minflt))
	}
	return fields
}
