#!/usr/bin/env bash
# Rolling upgrade of several hawk instances, one at a time: each is upgraded and its
# verdict awaited (new process ready, old process exited) before the next begins, so
# at most one instance is draining while the balancer sends its agents to the others.
# The new binary must already be installed where each instance's process was started
# from (the upgrade re-executes that path).
#
# usage: rolling-upgrade.sh NAME,PID_FILE,ADMIN_ADDR ...
#   e.g. rolling-upgrade.sh hawk1,/run/hawk1/hawk.pid,127.0.0.1:7374 hawk2,/run/hawk2/hawk.pid,127.0.0.1:7384
# environment:
#   TIMEOUT           seconds to wait for each verdict (default 90: above upgrade.timeout + drain.timeout)
#   HAWK_UPGRADE_CMD  a command that upgrades one instance and exits 0 only on success,
#                     given NAME PID_FILE ADMIN_ADDR as arguments (e.g. a wrapper around
#                     `hawk upgrade -socket PATH`, which prints the verdict and exits 0 or 1,
#                     or `ssh host ...` for remote instances). Without it, the script sends
#                     SIGHUP to the PID in PID_FILE and waits: the PID file names a new
#                     process, that process answers 200 on http://ADMIN_ADDR/readyz, and the
#                     old process has exited.
# Exit status: 0 when every instance was upgraded; 1 at the first failure (the rest untouched).
set -euo pipefail

TIMEOUT=${TIMEOUT:-90}

# readyz prints the HTTP status of http://$1/readyz (bash's /dev/tcp: no curl needed).
readyz() {
  local host=${1%:*} port=${1##*:} status
  exec 3<>"/dev/tcp/$host/$port" 2>/dev/null || { echo 000; return; }
  printf 'GET /readyz HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" >&3
  read -r -t 2 _ status _ <&3 || status=000
  exec 3>&- 3<&-
  echo "${status:-000}"
}

alive() { kill -0 "$1" 2>/dev/null; }

upgrade_one() {
  local name=$1 pidfile=$2 admin=$3 old new deadline
  if [ -n "${HAWK_UPGRADE_CMD:-}" ]; then
    $HAWK_UPGRADE_CMD "$name" "$pidfile" "$admin"
    return
  fi
  old=$(cat "$pidfile")
  alive "$old" || { echo "$name: process $old from $pidfile is not running" >&2; return 1; }
  kill -HUP "$old"
  deadline=$((SECONDS + TIMEOUT))
  while :; do
    new=$(cat "$pidfile" 2>/dev/null || true)
    if [ -n "$new" ] && [ "$new" != "$old" ] && alive "$new" && [ "$(readyz "$admin")" = 200 ] && ! alive "$old"; then
      echo "$name: upgraded: pid $old -> $new, ready"
      return 0
    fi
    if [ -n "$new" ] && [ "$new" = "$old" ] && ! alive "$old"; then
      echo "$name: process $old exited without a successor" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      # An abandoned upgrade (the new binary not ready within upgrade.timeout) leaves
      # the old process serving and the PID file unchanged: stop here either way.
      echo "$name: no verdict within ${TIMEOUT}s (pid file: ${new:-none}, old $old alive: $(alive "$old" && echo yes || echo no))" >&2
      return 1
    fi
    sleep 0.2
  done
}

[ $# -gt 0 ] || { sed -n '2,22p' "$0" >&2; exit 2; }
for spec in "$@"; do
  IFS=, read -r name pidfile admin <<<"$spec"
  [ -n "$name" ] && [ -n "$pidfile" ] && [ -n "$admin" ] || { echo "bad instance $spec (want NAME,PID_FILE,ADMIN_ADDR)" >&2; exit 2; }
  echo "$name: upgrading"
  upgrade_one "$name" "$pidfile" "$admin" || { echo "$name: upgrade failed; stopping the rollout" >&2; exit 1; }
done
echo "all ${#} instances upgraded"
