#!/usr/bin/env bash
# bench-compare.sh: hawk beside the limit reference (../shared/bench), in one series.
#
#   scripts/bench-compare.sh [-runs N] [-d 5s] [-skip-idle]
#
# Builds hawk (this tree) and the reference, then alternates runs of each:
#   1,000 conns x 8 in flight x 256 B, spool.fsync never and always; 100 x 32 x 128 B;
# and holds 15,000 idle connections on each. Prints one line per run and the medians:
# acked/s, the ratio to the reference, and server CPU per report (utime+stime of the
# server process over the run / acked). Every server it starts it stops.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3 dur=5s idle=1
while [ $# -gt 0 ]; do
  case "$1" in
    -runs) runs=$2; shift 2 ;;
    -d) dur=$2; shift 2 ;;
    -skip-idle) idle=0; shift ;;
    *) echo "usage: $0 [-runs N] [-d 5s] [-skip-idle]" >&2; exit 2 ;;
  esac
done
ref=../shared/bench
[ -d "$ref" ] || { echo "no $ref beside the project" >&2; exit 1; }
W=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
go build -o "$W/hawk" ./cmd/server
go build -o "$W/hawkc" ./cmd/client
(cd "$ref" && go build -o "$W/baseline" ./baseline && go build -o "$W/bload" ./load && go build -o "$W/bidle" ./idle)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_kib() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
hz=$(getconf CLK_TCK)
# wait_open FILE: until the idle holder prints "open N", then 4 s for the heartbeats
# and the runtime to settle.
wait_open() { for _ in $(seq 1200); do grep -q '^open' "$1" 2>/dev/null && { sleep 4; return 0; }; sleep 0.1; done; echo "idle holder never opened: $(cat "$1")" >&2; exit 1; }

bport=$(free_port)
"$W/baseline" -addr "127.0.0.1:$bport" & bpid=$!; pids+=("$bpid"); wait_port "$bport"

start_hawk() { # fsync
  hport=$(free_port)
  rm -rf "$W/data"
  "$W/hawk" -listen="127.0.0.1:$hport" -admin.addr= -spool.dir="$W/data" -spool.fsync="$1" -log.level=warn -limits.max_conns=200000 & hpid=$!
  pids+=("$hpid"); wait_port "$hport"
}
stop_hawk() { kill "$hpid"; wait "$hpid" 2>/dev/null || true; }

median() { sort -g | awk '{a[NR]=$1} END{print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

series() { # name fsync conns window size
  local name=$1 fsync=$2 c=$3 w=$4 s=$5
  start_hawk "$fsync"
  : > "$W/$name.ratio"; : > "$W/$name.hawk"; : > "$W/$name.ref"; : > "$W/$name.hcpu"; : > "$W/$name.bcpu"
  for i in $(seq "$runs"); do
    t0=$(cpu_ticks "$bpid")
    b=$("$W/bload" -addr "127.0.0.1:$bport" -c "$c" -w "$w" -s "$s" -d "$dur" | awk '{print $3}')
    t1=$(cpu_ticks "$bpid")
    bsec=$(echo "$dur" | tr -d s)
    bcpu=$(awk -v d="$((t1-t0))" -v hz="$hz" -v r="$b" -v s="$bsec" 'BEGIN{printf "%.2f", d/hz*1e6/(r*s)}')
    t0=$(cpu_ticks "$hpid")
    out=$("$W/hawkc" load -addr "127.0.0.1:$hport" -c "$c" -w "$w" -s "$s" -d "$dur" -json 2>/dev/null | tail -1)
    t1=$(cpu_ticks "$hpid")
    h=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["acked_per_s"])' "$out")
    acked=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["acked"])' "$out")
    hcpu=$(awk -v d="$((t1-t0))" -v hz="$hz" -v a="$acked" 'BEGIN{printf "%.2f", d/hz*1e6/a}')
    ratio=$(awk -v h="$h" -v b="$b" 'BEGIN{printf "%.3f", h/b}')
    echo "$name run $i: hawk $h acked/s ($hcpu us CPU/report), reference $b ($bcpu us CPU/report), ratio $ratio"
    echo "$h" >> "$W/$name.hawk"; echo "$b" >> "$W/$name.ref"; echo "$ratio" >> "$W/$name.ratio"
    echo "$hcpu" >> "$W/$name.hcpu"; echo "$bcpu" >> "$W/$name.bcpu"
  done
  stop_hawk
  printf 'MEDIAN %-28s hawk %8.0f  ref %8.0f  ratio %s  cpu/report hawk %s us ref %s us (x%s)\n' "$name" \
    "$(median < "$W/$name.hawk")" "$(median < "$W/$name.ref")" "$(median < "$W/$name.ratio")" \
    "$(median < "$W/$name.hcpu")" "$(median < "$W/$name.bcpu")" \
    "$(awk -v a="$(median < "$W/$name.hcpu")" -v b="$(median < "$W/$name.bcpu")" 'BEGIN{printf "%.2f", a/b}')"
}

series "1000x8x256-fsync-never" never 1000 8 256
series "1000x8x256-fsync-always" always 1000 8 256
series "100x32x128-fsync-never" never 100 32 128

if [ "$idle" = 1 ]; then
  n=15000
  start_hawk never
  before=$(rss_kib "$hpid")
  "$W/hawkc" idle -addr "127.0.0.1:$hport" -n "$n" -hold 8s > "$W/idle.out" 2>&1 & ipid=$!; pids+=("$ipid")
  wait_open "$W/idle.out"; during=$(rss_kib "$hpid"); wait "$ipid" || true
  stop_hawk
  hk=$(awk -v a="$before" -v b="$during" -v n="$n" 'BEGIN{printf "%.2f", (b-a)/n}')
  before=$(rss_kib "$bpid")
  "$W/bidle" -addr "127.0.0.1:$bport" -n "$n" -hold 8s > "$W/bidle.out" 2>&1 & ipid=$!; pids+=("$ipid")
  wait_open "$W/bidle.out"; during=$(rss_kib "$bpid"); wait "$ipid" || true
  bk=$(awk -v a="$before" -v b="$during" -v n="$n" 'BEGIN{printf "%.2f", (b-a)/n}')
  echo "IDLE 15000: hawk $hk KiB/conn, reference $bk KiB/conn"
fi
