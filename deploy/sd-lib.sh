# shellcheck shell=bash
# What deploy/test-systemd.sh and deploy/test-deb.sh share: running commands in the
# container of ../shared/systemd (SD), printing them, and counting failed checks.
# Sourced, not run.
SD=$(cd "${HAWK_SYSTEMD_DIR:-../shared/systemd}" && pwd)
fails=0
# sd_up ARGS: boot the container (up.sh ARGS); sd_down halts it only if sd_up
# booted it, so a run refused because another container is up leaves that one be.
sd_booted=0
sd_up() { "$SD/up.sh" "$@" && sd_booted=1; }
sd_down() { if ((sd_booted)); then "$SD/down.sh" >/dev/null 2>&1 || true; fi; }
inc() { "$SD/in.sh" "$@"; }
say() { printf '\n## %s\n' "$*"; }
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
# show: the unit's state on one line.
show() { inc systemctl show -p MainPID,ActiveState,SubState,Result,NRestarts hawk | sort | tr '\n' ' '; echo; }
prop() { inc systemctl show -p "$1" --value hawk; }
# run CMD...: print it, run it in the container, print its output and exit status.
run() {
  echo "\$ $*"
  local rc
  inc "$@" 2>&1 | sed 's/^/  /'
  rc=${PIPESTATUS[0]}
  echo "  (exit $rc)"
  return "$rc"
}
# wait_for SECONDS DESCRIPTION CMD...: poll CMD until it succeeds, with a deadline.
wait_for() {
  local secs=$1 until=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < until)) || { bad "timed out after ${secs}s waiting for: $what"; return 1; }
    sleep 0.1
  done
}
gone() { ! inc kill -0 "$1" 2>/dev/null; }
# idle_clients N: N idle agents (dev-idle-*, token $TOKEN) in the container, which
# move on GOAWAY; idle_stop ends them.
idle_clients() {
  inc sh -c "setsid hawkc idle -addr 127.0.0.1:7373 -n $1 -id-prefix dev-idle -hold 600s -token $TOKEN >/tmp/idle.log 2>&1 & echo \$! >/tmp/idle.pid"
  wait_for 20 "$1 connections" sh -c "'$SD/in.sh' hawk status -config /etc/hawk/hawk.yaml | grep -qx 'connections $1'"
}
idle_stop() { inc sh -c 'kill $(cat /tmp/idle.pid) 2>/dev/null; true'; }
# summary: the last line, and the exit status: 0 when every check passed.
summary() {
  echo
  if ((fails)); then echo "$fails check(s) failed"; exit 1; fi
  echo "all sequences passed"
}
