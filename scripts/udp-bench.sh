#!/usr/bin/env bash
# udp-bench.sh: the highest rate with 0 kernel drops for hawk's lines and syslog UDP
# listeners (spool, fsync never), beside a minimal Go reader that stores nothing.
#
#   scripts/udp-bench.sh [-d 3s] [-rates "25000 50000 100000 150000 200000"]
#
# Each target gets each rate for -d, lowest first, with a fresh sender; a line per
# run ({"rate","sent","drops"}) and, per target, the highest rate with 0 drops. The
# receive buffer is 4 MiB everywhere (net.core.rmem_max caps it). Every process it
# starts it stops.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=3s rates="25000 50000 100000 150000 200000 300000"
while [ $# -gt 0 ]; do
  case "$1" in
    -d) dur=$2; shift 2 ;;
    -rates) rates=$2; shift 2 ;;
    *) echo "usage: $0 [-d 3s] [-rates \"25000 50000 ...\"]" >&2; exit 2 ;;
  esac
done
W=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
go build -o "$W/hawk" ./cmd/server
go build -o "$W/udpload" ./scripts/udpload
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_udp() { for _ in $(seq 100); do grep -q ":$(printf %04X "$1") " /proc/net/udp && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

sweep() { # label port format
  best=0
  for r in $rates; do
    line=$("$W/udpload" -addr "127.0.0.1:$2" -rate "$r" -d "$dur" -format "$3")
    echo "$1 $line"
    drops=$(echo "$line" | python3 -c 'import json,sys; print(json.load(sys.stdin)["drops"])')
    [ "$drops" = 0 ] && best=$r
  done
  echo "$1: highest rate with 0 kernel drops: $best/s"
}

port=$(free_port)
"$W/udpload" -sink "127.0.0.1:$port" & pid=$!; pids+=($pid)
wait_udp "$port"
sweep sink "$port" lines
kill "$pid"; wait "$pid" 2>/dev/null || true

for fmt in lines syslog; do
  port=$(free_port)
  mkdir -p "$W/$fmt"
  "$W/hawk" -log.level=warn -spool.dir="$W/$fmt/spool" -upgrade.pid_file="$W/$fmt/hawk.pid" -listen=127.0.0.1:0 \
    "-udp.listeners=[{name: b, address: \"127.0.0.1:$port\", format: $fmt, allow: [127.0.0.0/8]}]" 2>"$W/$fmt/log" & pid=$!; pids+=($pid)
  wait_udp "$port"
  sweep "hawk-$fmt" "$port" "$fmt"
  kill "$pid"; wait "$pid" 2>/dev/null || true # one server at a time (the admin port is the default one)
done
