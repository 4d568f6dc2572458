package daemon

import (
	"os"
	"strconv"
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
// mainBegan is zero when main did not say (tests).
func startTimes(mainBegan, startBegan time.Time, inherited bool) []zap.Field {
	if mainBegan.IsZero() {
		return nil
	}
	fields := []zap.Field{zap.Duration("config_load", startBegan.Sub(mainBegan))}
	requested, err := strconv.ParseInt(os.Getenv(config.UpgradeRequestedEnv), 10, 64)
	if !inherited || err != nil {
		return fields
	}
	sinceRequest := time.Duration(upgrade.Clock() - requested)
	return append(fields, zap.Duration("before_main", sinceRequest-time.Since(mainBegan)),
		zap.Duration("since_upgrade_requested", sinceRequest))
}
