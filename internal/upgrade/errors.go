package upgrade

import (
	"errors"
	"fmt"
)

// Refusals: Upgrade did not start a new binary, and this process serves on as
// before. The server counts them apart from failures.
var (
	// ErrInProgress: another upgrade is running.
	ErrInProgress = errors.New("upgrade: an upgrade is already in progress")
	// ErrParentDraining: this process was started by an upgrade and the process it
	// replaced is still draining; tableflip allows one generation change at a time.
	ErrParentDraining = errors.New("upgrade: the previous process is still draining; try again once it has exited")
	// ErrNotReady: Ready has not been called yet.
	ErrNotReady = errors.New("upgrade: this process is still starting")
	// ErrUpgraded: this process has already been replaced and is draining.
	ErrUpgraded = errors.New("upgrade: this process has already been replaced and is draining")
	// ErrStopped: Stop was called; this process is shutting down.
	ErrStopped = errors.New("upgrade: this process is shutting down")
)

// IsRefusal reports whether err from Upgrade is a refusal (nothing was started, or
// what was started was killed because this process is stopping) rather than a
// failed upgrade.
func IsRefusal(err error) bool {
	for _, r := range []error{ErrInProgress, ErrParentDraining, ErrNotReady, ErrUpgraded, ErrStopped} {
		if errors.Is(err, r) {
			return true
		}
	}
	return false
}

// The texts of tableflip v1.2.3's refusals (upgrader.go). It returns them as
// unexported errors.New values, so the text is all there is to match; the tests
// pin each one against the fake, and a tableflip that changed them would make
// refusals read as failures, not break an upgrade.
const (
	tfInProgress  = "upgrade in progress"
	tfParentAlive = "parent hasn't exited"
	tfNotReady    = "process is not ready yet"
	tfUpgraded    = "already upgraded"
	tfTerminating = "terminating"
)

// upgradeError maps what tableflip's Upgrade returned to hawk's errors; it is the
// one place that knows tableflip's refusals. stopped says whether Stop was called:
// tableflip then answers "terminating" or "already upgraded" at random (both of
// its channels are closed), and both mean ErrStopped.
func upgradeError(err error, stopped bool) error {
	if err == nil {
		return nil
	}
	switch err.Error() {
	case tfInProgress:
		return ErrInProgress
	case tfParentAlive:
		return ErrParentDraining
	case tfNotReady:
		return ErrNotReady
	case tfUpgraded, tfTerminating:
		if stopped {
			return ErrStopped
		}
		return ErrUpgraded
	}
	return fmt.Errorf("upgrade: %w", err)
}
