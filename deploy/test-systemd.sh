#!/usr/bin/env bash
# Runs deploy/hawk.service under real systemd (252, in the throwaway container of
# ../shared/systemd) through the sequences an operator meets, printing each command and
# the lines that matter, and checking the outcome of each:
#
#   start; reload (upgrade); reload during a drain; stop during a drain; stop right
#   after a reload; a failed upgrade (exit 1, missing binary); the main process
#   killed (Restart=); a bad config (ExecStartPre=); no hawk user (217/USER).
#
# Each must end with the right MainPID, a drain rather than a SIGKILL, and the right
# Result. Run as root from anywhere:  deploy/test-systemd.sh   (exit 0: all passed)
# HAWK_SYSTEMD_DIR names the scripts' directory (default ../shared/systemd from the
# repository root). .ci/run runs it (as root) when ../shared/systemd is present.
set -uo pipefail # no -e: every check is counted, and the run goes on to the end
# grep reads to the end after a pipe (never -q): an early exit would leave the writer a SIGPIPE that pipefail counts as a failure.
cd "$(dirname "$0")/.."
. deploy/sd-lib.sh
BIN=${HAWK_SD_DIR:-/var/tmp/hawk-sd}/run/bin
W=$(mktemp -d)
trap 'sd_down; rm -rf "$W"' EXIT
active_with_new_pid() { [[ $(prop ActiveState) == active && $(prop MainPID) != "$1" && $(prop MainPID) != 0 ]]; }
no_sigkill() {
  if inc journalctl -u hawk -o cat --no-pager | grep -E 'SIGKILL|Killing process|Result: (signal|timeout)' ; then
    bad "systemd SIGKILLed or timed out: $1"
  else ok "no SIGKILL, no timeout: $1"; fi
}

set -e
go build -o "$W/hawk" -ldflags "-X main.version=1" ./cmd/server
go build -o "$W/hawk-v2" -ldflags "-X main.version=2" ./cmd/server
go build -o "$W/hawk-v3" -ldflags "-X main.version=3" ./cmd/server
go build -o "$W/hawkc" ./cmd/client
printf '#!/bin/sh\necho "broken build" >&2\nexit 1\n' >"$W/broken"
mkdir "$W/etc"
# The shipped config, on loopback (the container has no other network), with a
# drain short enough to watch: 8s, GOAWAYs spread over 4s.
sed -e 's/^listen: "0.0.0.0:/listen: "127.0.0.1:/' \
  -e '/^drain:/,/^[a-z]/ s/^  timeout: 30s/  timeout: 8s/' -e '/^drain:/,/^[a-z]/ s/^  spread: 10s/  spread: 4s/' \
  deploy/hawk.yaml >"$W/etc/hawk.yaml"
# A syslog listener on port 514: binding it needs CAP_NET_BIND_SERVICE, the one
# capability the unit grants.
printf 'udp:\n  listeners:\n    - {name: syslog, address: "127.0.0.1:514", format: syslog, allow: [127.0.0.0/8]}\n' >>"$W/etc/hawk.yaml"
# One credential for the test agents: dev* ids, its token known to this script only.
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf 'test-agents sha256:%s dev*\n' "$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)" >"$W/etc/tokens"
chmod -R a+rX "$W/etc"
sd_up -unit deploy/hawk.service -bin "$W/hawk" -bin "$W/hawkc" -etc "$W/etc"
set +e

say "0. the sandbox: systemd-analyze security"
inc systemd-analyze security hawk.service 2>&1 | grep -E '✗|Overall' | sed 's/^/  /'
score=$(inc systemd-analyze security hawk.service 2>/dev/null | sed -n 's/.*Overall exposure level for hawk.service: \([0-9.]*\).*/\1/p')
awk -v s="$score" 'BEGIN { exit !(s != "" && s + 0 <= 2.5) }' && ok "exposure $score (at most 2.5)" || bad "exposure '$score', want at most 2.5"

say "1. start"
run systemctl start hawk || bad "systemctl start"
show
P1=$(prop MainPID)
[[ $(prop ActiveState) == active && $P1 != 0 ]] && ok "active, MainPID=$P1" || bad "not active after start"
run hawk status -config /etc/hawk/hawk.yaml | grep -E 'pid|generation|ready'
run hawkc send -id dev1 -token $TOKEN hello >/dev/null || bad "a report was not acked"
inc journalctl -u hawk -o cat --no-pager | grep '"msg":"udp listening".*"addr":"127.0.0.1:514"' >/dev/null &&
  ok "the syslog listener bound port 514 (CAP_NET_BIND_SERVICE)" || bad "no UDP listener on port 514"

say "1b. the spool: hawk's group reads it, nobody else"
run sh -c 'stat -c "%a %U:%G %n" /var/lib/hawk /var/lib/hawk/spool /var/lib/hawk/spool/*.jsonl'
modes=$(inc sh -c 'stat -c "%a %U:%G" /var/lib/hawk/spool /var/lib/hawk/spool/*.jsonl' | sort -u | tr '\n' ' ')
[[ $modes == "640 hawk:hawk 750 hawk:hawk " ]] && ok "segments 0640, spool directory 0750, owned by hawk" || bad "spool modes: $modes"
inc setpriv --reuid=nobody --regid=hawk --clear-groups sh -c 'cat /var/lib/hawk/spool/*.jsonl' | grep '"client_id":"dev1"' >/dev/null &&
  ok "a reader in group hawk reads the spool" || bad "group hawk cannot read the spool"
if inc setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c 'cat /var/lib/hawk/spool/*.jsonl' >/dev/null 2>&1; then
  bad "another user reads the spool"
else ok "another user cannot read the spool"; fi
run systemctl status hawk --no-pager -n0 | grep -E 'Status:|Main PID' || true

# fdsize PID: the size of PID's descriptor table, as the kernel reports it.
fdsize() { inc awk '$1 == "FDSize:" {print $2}' "/proc/$1/status"; }
# The room internal/fdtable reserves: limits.max_conns (100000, the default the
# shipped config keeps) plus 1024, grown on a goroutine at start; at most the
# descriptor limit (LimitNOFILE=200000, or less where the container's own limit is
# lower: then hawk warns).
FDLIMIT=$(inc awk '/^Max open files/ {print $4}' "/proc/$P1/limits")
FDWANT=$((100000 + 1024))
((FDLIMIT < FDWANT)) && FDWANT=$FDLIMIT
say "1c. the descriptor table: room for limits.max_conns reserved at start (limit $FDLIMIT)"
for _ in $(seq 50); do [[ $(fdsize "$P1") -ge $FDWANT ]] && break; sleep 0.1; done
[[ $(fdsize "$P1") -ge $FDWANT ]] && ok "FDSize $(fdsize "$P1") (at least $FDWANT) under the sandbox" || bad "FDSize $(fdsize "$P1"), want at least $FDWANT"
warned=$(inc journalctl -u hawk -o cat --no-pager | grep -c 'the descriptor limit (RLIMIT_NOFILE; systemd LimitNOFILE) is below limits.max_conns')
if ((FDLIMIT < 100000)); then
  ((warned > 0)) && ok "the limit below limits.max_conns was warned about" || bad "no warning about a descriptor limit of $FDLIMIT"
else
  ((warned == 0)) && ok "no warning about the descriptor limit" || bad "a warning about a descriptor limit of $FDLIMIT"
fi

say "2. reload = upgrade to version 2"
install -m755 "$W/hawk-v2" "$BIN/hawk"
run systemctl reload hawk || bad "systemctl reload of a good build failed"
gone "$P1" && ok "old process $P1 had exited when systemctl reload returned" || bad "old process $P1 still runs"
P2=$(inc hawk status -config /etc/hawk/hawk.yaml | awk '$1 == "pid" {print $2}')
[[ $(prop MainPID) == "$P2" ]] && ok "MainPID followed: $P1 -> $P2" || bad "MainPID=$(prop MainPID), serving: $P2"
# The new process starts with its parent's table (the fork copies it up to the
# descriptor held at its top): no growth, nothing to wait for.
[[ $(fdsize "$P2") -ge $FDWANT ]] && ok "the new process's FDSize $(fdsize "$P2"): the room came with the upgrade" || bad "new process's FDSize $(fdsize "$P2"), want at least $FDWANT"
show
run hawk status -config /etc/hawk/hawk.yaml | grep -E 'pid|version|generation'
inc journalctl -u hawk -o cat --no-pager | grep -oE '"msg":"(upgrade[^"]*|exiting|PID file written)"' | sort | uniq -c

# new_pid OLD: the serving process once OLD no longer accepts on the control socket.
new_pid() { inc hawk status -config /etc/hawk/hawk.yaml | awk -v old="$1" '$1 == "pid" && $2 != old {print $2; f=1} END {exit !f}'; }

say "2b. reload with agents connected: their connections are handed over (upgrade.handoff: true)"
idle_clients 5
install -m755 "$W/hawk-v3" "$BIN/hawk"
run systemctl reload hawk || bad "systemctl reload with agents connected failed"
gone "$P2" && ok "old process $P2 had exited when systemctl reload returned" || bad "old process $P2 still runs"
handed=$(inc journalctl -u hawk -o cat --no-pager | grep 'handoff finished' | grep "\"pid\":$P2[,}]")
echo "  $handed"
[[ $handed == *'"moved":5'* ]] && ok "the 5 connections were handed to the new process" || bad "no 'handoff finished' with moved=5 from $P2"
P2=$(inc hawk status -config /etc/hawk/hawk.yaml | awk '$1 == "pid" {print $2}')
run hawk status -config /etc/hawk/hawk.yaml | grep -E 'pid|generation|connections'
inc hawk status -config /etc/hawk/hawk.yaml | grep -x 'connections 5' >/dev/null && ok "the agents stayed connected" || bad "agents not connected after the handoff"
[[ $(prop MainPID) == "$P2" ]] && ok "MainPID followed: $P2" || bad "MainPID=$(prop MainPID), serving: $P2"

# The drain sequences below need a drain: with the handoff the idle agents would
# move in milliseconds, so turn it off (a live key) by a config reload.
sed -i 's/^upgrade:$/upgrade:\n  handoff: false/' "$W/etc/hawk.yaml"
run hawk reload -config /etc/hawk/hawk.yaml || bad "hawk reload of upgrade.handoff: false"

say "3. reload during a drain (5 idle agents hold the old process's drain)"
install -m755 "$W/hawk-v3" "$BIN/hawk"
run systemctl reload --no-block hawk
wait_for 20 "a new process" new_pid "$P2"
P3=$(new_pid "$P2")
inc kill -0 "$P2" && ok "old process $P2 is draining; the new one is $P3" || bad "old process $P2 already gone: no drain to test"
[[ $(prop MainPID) == "$P2" ]] && ok "MainPID is still the draining $P2: no early adoption" || bad "MainPID=$(prop MainPID) while $P2 drains"
run systemctl reload hawk || bad "the second reload failed"
show
gone "$P2" && ok "old process $P2 exited after its drain" || bad "$P2 still runs"
P3b=$(inc hawk status -config /etc/hawk/hawk.yaml | awk '$1 == "pid" {print $2}')
[[ $(prop MainPID) == "$P3b" && $(prop ActiveState) == active ]] && ok "active, MainPID=$P3b (the second reload waited for the first's drain, then upgraded $P3 -> $P3b)" || bad "MainPID=$(prop MainPID), serving $P3b"
run hawk status -config /etc/hawk/hawk.yaml | grep -E 'pid|generation|connections|last upgrade'
if inc journalctl -u hawk --no-pager | grep 'not our child'; then bad "systemd supervised a process not its child"; else ok "no 'Supervising process … not our child'"; fi

say "4. stop during an upgrade's drain"
install -m755 "$W/hawk-v2" "$BIN/hawk"
run systemctl reload --no-block hawk
wait_for 20 "a new process" new_pid "$P3b"
P4=$(new_pid "$P3b")
inc kill -0 "$P3b" && ok "old process $P3b is draining, new $P4" || bad "old process $P3b already gone"
t0=$SECONDS
run systemctl stop hawk || bad "systemctl stop"
echo "  stop took $((SECONDS - t0))s (TimeoutStopSec=45s, drain.timeout=8s)"
show
[[ $(prop ActiveState) == inactive && $(prop Result) == success ]] && ok "inactive, Result=success" || bad "after a stop during a drain"
inc journalctl -u hawk -o cat --no-pager | grep -E "\"pid\":($P3b|$P4),.*\"msg\":\"(exiting|stop signal[^\"]*|second stop[^\"]*)\"" | grep -oE '"msg":"[^"]*","pid":[0-9]+|"reason":"[a-z]+"' | paste - - || true
no_sigkill "stop during a drain"
idle_stop

say "5. stop right after a reload (10 times)"
good=0
for i in 1 2 3 4 5 6 7 8 9 10; do
  inc systemctl start hawk || bad "start #$i"
  install -m755 "$W/hawk-v3" "$BIN/hawk"
  inc systemctl reload hawk || bad "reload #$i"
  inc systemctl stop hawk || bad "stop #$i"
  r="$(prop ActiveState)/$(prop Result)"
  [[ $r == inactive/success ]] && good=$((good + 1)) || { bad "stop #$i right after a reload: $r"; inc systemctl reset-failed hawk; }
  install -m755 "$W/hawk-v2" "$BIN/hawk"
done
echo "  $good of 10 ended inactive/success"
no_sigkill "stop right after a reload"

say "6. failed upgrades"
run systemctl start hawk || bad "start"
P6=$(prop MainPID)
install -m755 "$W/broken" "$BIN/hawk"
if run systemctl reload hawk; then bad "reload of a binary that exits 1 reported success"; else ok "systemctl reload failed"; fi
show
[[ $(prop MainPID) == "$P6" && $(prop ActiveState) == active ]] && ok "MainPID still $P6, active" || bad "state after a failed upgrade"
run systemctl status hawk --no-pager -n0 | grep -E 'Status:' || true
inc journalctl -u hawk -o cat --no-pager | grep -E '^upgrade (failed|refused):' | tail -1
rm -f "$BIN/hawk"
if run systemctl reload hawk; then bad "reload with the binary missing reported success"; else ok "systemctl reload failed (missing binary)"; fi
[[ $(prop MainPID) == "$P6" && $(prop ActiveState) == active ]] && ok "MainPID still $P6, active" || bad "state after a missing binary"
inc journalctl -u hawk -o cat --no-pager | grep -E '^upgrade (failed|refused):' | tail -1
install -m755 "$W/hawk-v3" "$BIN/hawk"
run hawk status -config /etc/hawk/hawk.yaml | grep -E 'pid|last upgrade'

say "7. the main process killed: Restart=on-failure"
run systemctl kill -s KILL --kill-whom=main hawk
wait_for 20 "a restarted hawk" active_with_new_pid "$P6" && ok "restarted"
show
[[ $(prop NRestarts) == 1 ]] && ok "NRestarts=1" || bad "NRestarts=$(prop NRestarts)"
run hawk status -config /etc/hawk/hawk.yaml | grep -E 'pid|generation'

say "8. a bad config: ExecStartPre= refuses it"
cp "$W/etc/hawk.yaml" "$W/hawk.yaml.good"
printf 'limits:\n  max_conns: -1\n' >>"$W/etc/hawk.yaml"
run systemctl stop hawk
if run systemctl start hawk; then bad "start with a bad config succeeded"; else ok "start failed"; fi
inc journalctl -u hawk -o cat --no-pager -n 20 | grep -E 'config: |invalid' || true
cp "$W/hawk.yaml.good" "$W/etc/hawk.yaml"
run systemctl reset-failed hawk || true

say "9. no hawk user: start fails visibly"
mkdir -p "${BIN%/bin}/units/hawk.service.d"
printf '[Service]\nUser=hawk-missing\nGroup=hawk-missing\n' >"${BIN%/bin}/units/hawk.service.d/nouser.conf"
run systemctl daemon-reload
if run systemctl start hawk; then bad "start without the user returned 0"; else ok "systemctl start failed"; fi
run systemctl status hawk --no-pager -n0 | grep -E 'Process|Active' || true
rm -r "${BIN%/bin}/units/hawk.service.d"
run systemctl daemon-reload

summary
