#!/usr/bin/env bash
# upgrade-cuts.sh: how many client connections a series of upgrades cuts at the
# drain deadline (issue 10, item 3: "over 30 upgrades with 200 clients, 121
# connections were cut at the deadline and resent").
#
#   scripts/upgrade-cuts.sh [-n 30] [-c 200] [-rate 20000] [-gap 0.5] [-client-rev REV] [-server-rev REV]
#
# Builds cmd/server and cmd/client (hawkc) from this tree, or from a git revision
# (-client-rev / -server-rev, e.g. to measure the client before a change against
# the same server), starts the server with the e2e test configuration (drain.timeout
# 5s, drain.spread 200ms, heartbeat 1s), runs `hawkc load -c C -w 4 -rate RATE`,
# upgrades the server N times in a row (SIGHUP, wait for the new process to be ready
# and the old one to exit, then GAP seconds), then stops the load and prints, summed over the
# upgrades, the GOAWAYs sent, the connections closed by their client and those cut
# at the deadline (the old processes' "exiting" log lines), with the load summary.
# Every process it starts it stops.
set -euo pipefail
cd "$(dirname "$0")/.."
n=30 clients=200 rate=20000 gap=0.5 crev="" srev=""
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n=$2; shift 2 ;;
    -c) clients=$2; shift 2 ;;
    -rate) rate=$2; shift 2 ;;
    -gap) gap=$2; shift 2 ;;
    -client-rev) crev=$2; shift 2 ;;
    -server-rev) srev=$2; shift 2 ;;
    *) echo "usage: $0 [-n 30] [-c 200] [-rate 20000] [-gap 0.5] [-client-rev REV] [-server-rev REV]" >&2; exit 2 ;;
  esac
done
W=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$W/hawk.pid" ] && kill "$(cat "$W/hawk.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

build() { # build REV PKG OUT
  local src=$PWD
  if [ -n "$1" ]; then
    src="$W/src-$1"
    mkdir -p "$src" && git archive "$1" | tar -x -C "$src"
  fi
  (cd "$src" && go build -o "$3" "$2")
}
build "$srev" ./cmd/server "$W/hawk"
build "$crev" ./cmd/client "$W/hawkc"

cat >"$W/hawk.yaml" <<EOF
listen: "127.0.0.1:0"
log:
  level: info
  format: json
spool:
  dir: "$W/spool"
drain:
  timeout: 5s
  spread: 200ms
upgrade:
  pid_file: "$W/hawk.pid"
  timeout: 5s
admin:
  addr: "127.0.0.1:0"
heartbeat:
  interval: 1s
EOF

log="$W/server.log"
"$W/hawk" -config "$W/hawk.yaml" 2>"$log" &
pids+=($!)
waitfor() { # waitfor SECONDS JQ-FILTER: until a log line matches
  local end=$((SECONDS + $1))
  until jq -Rc "fromjson? | select($2)" "$log" 2>/dev/null | grep -q .; do
    [ $SECONDS -lt $end ] || { echo "timed out waiting for $2" >&2; tail -20 "$log" >&2; exit 1; }
    sleep 0.1
  done
}
waitfor 10 '.msg == "listening"'
addr=$(jq -Rr 'fromjson? | select(.msg == "listening") | .addr' "$log" | head -1)

"$W/hawkc" load -addr "$addr" -json -c "$clients" -w 4 -s 256 -rate "$rate" -d 1h >"$W/load.json" 2>"$W/load.err" &
load=$!
pids+=($load)
sleep 3
for i in $(seq 1 "$n"); do
  old=$(cat "$W/hawk.pid")
  kill -HUP "$old"
  waitfor 15 ".pid == $old and .msg == \"upgrade succeeded: new process is ready; draining this one\""
  waitfor 15 ".pid == $old and .msg == \"exiting\""
  new=$(cat "$W/hawk.pid")
  waitfor 15 ".pid == $new and .msg == \"upgrade handoff finished: the previous process has exited\""
  sleep "$gap"
done
kill -INT "$load"
wait "$load" || true
echo "upgrades=$n clients=$clients rate=$rate gap=$gap client=${crev:-worktree} server=${srev:-worktree}"
jq -R 'fromjson?' "$log" | jq -s -c '[.[] | select(.msg == "exiting" and .reason == "upgrade")] |
  {drains: length, goaways: (map(.goaways) | add), closed_by_client: (map(.closed_by_client) | add),
   cut_at_deadline: (map(.cut_at_deadline) | add), max_drain_s: (map(.drain) | max)}'
echo "load: $(cat "$W/load.json")"
