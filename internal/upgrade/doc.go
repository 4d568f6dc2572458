// Package upgrade opens every listening socket hawk has, so that each can be handed to a new binary on SIGHUP.
//
// It is the only place listening sockets are opened (cloudflare/tableflip).
//
// tableflip owns the state machine (one goroutine of its own decides whether an
// upgrade may start); this package adds hawk's rules on top and nothing else:
// listeners keyed by name and address, refusals mapped to errors the server can
// tell apart, and errors wrapped with what was being done. tableflip sits behind
// the small flipper interface, so those rules are tested against a fake.
//
// The contract, in order:
//  1. New once per process (tableflip allows one Upgrader, and Stop does not free it).
//  2. Listen for every socket the process will serve, before Ready: sockets
//     inherited from a parent and not claimed by then are closed at Ready.
//  3. Ready once everything the process needs is open and served: only then does
//     the parent learn the upgrade succeeded, and the PID file names this process.
//  4. Upgrade execs os.Args[0] with the same arguments and blocks until the child is
//     Ready (nil) or failed (the error says why; this process keeps serving). It
//     refuses at once, never queues:
//     ErrInProgress while another Upgrade runs (its child starting, or its wait
//     for the parent below),
//     ErrParentDraining in a process started by an upgrade until the process it
//     replaced has exited (see WaitForParent); this one refusal waits up to
//     parentExitGrace (500ms) first, so that a SIGHUP sent just as the parent
//     exits, before tableflip has noticed, is an upgrade and not a refusal,
//     ErrNotReady before Ready,
//     ErrUpgraded once this process has been replaced,
//     ErrStopped after Stop.
//     IsRefusal tells these from a failed upgrade.
//  5. After a successful Upgrade, Exit is closed. The caller must close its
//     listeners itself (tableflip only closes its duplicates), drain, and exit:
//     the child refuses its own upgrades until this process has exited.
//  6. Stop when shutting down for good: it kills an upgrade still starting (whose
//     Upgrade then returns ErrStopped) and refuses later ones. Exit is closed by
//     Stop as well, so a caller that watches Exit decides what it means before
//     calling Stop.
//  7. PassFile before Upgrade for any other file the new process needs (the
//     connection handoff channel, internal/handoff): tableflip passes only the files
//     present when it execs the child, and none afterwards. A file passed stays
//     passed to later upgrades until replaced under the same name. The child
//     claims it with InheritedFile before Ready.
package upgrade
