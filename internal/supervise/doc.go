// Package supervise keeps hawk's first process alive across upgrades: it runs the server, reaps, forwards signals.
//
// A container's entrypoint is PID 1 of its PID namespace, and when PID 1 exits the
// kernel kills every other process in it. hawk upgrades in place by starting its
// successor and exiting, so as PID 1 its own upgrade would take the successor down
// with it. Run as `hawk supervise [server flags]`, the supervisor stays PID 1 (or,
// outside a namespace, a child subreaper) and:
//
//   - starts the server (this binary, with the same flags) in a process group of
//     its own, so a terminal's signals reach the server once, through here;
//   - forwards SIGHUP and SIGUSR1 to the main process, the one that serves; a
//     request sent while an upgrade's old process drains reaches that old process
//     and is refused, as under systemd, whose main process it still is;
//   - forwards SIGTERM, SIGINT and SIGQUIT to the whole group (every generation,
//     the draining one included), as systemd's KillMode=control-group does;
//   - reaps every child, its own and the orphans re-parented to it;
//   - when the main process exits and its successor lives (orphaned, so now a
//     child of the supervisor), adopts the successor as the main process;
//     otherwise exits with the main process's status (128+n for a signal n).
//
// Linux only, like the server.
package supervise
