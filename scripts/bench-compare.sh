#!/usr/bin/env bash
# bench-compare.sh: hawk beside the limit reference (../shared/bench), in one series.
#
#   scripts/bench-compare.sh [-runs N] [-only NAME] [-d 5s] [-idle-n 15000] [-upgrades 10]
#                            [-skip-throughput] [-skip-idle] [-skip-startup] [-udp]
#                            [-rounds 3] [-rate 150000] [-skip-handoff] [-skip-upgrade-load]
#                            [-upgrades-load 100]
#                            [-tree DIR ...] [-dev-build] [-client-per-tree] [-library-load]
#                            [-port-base N] [-gctrace]
#
# -port-base N: every server listens on a port of N..N+99 (a machine shared with
# other benchmarks), not one the kernel picks. -gctrace: the upgrade rounds' servers
# run with GODEBUG=gctrace=1, and each round prints every process's collections
# (scripts/gctrace-procs.py: gen 1 served the steady run too).
# Builds hawk from each -tree (default: this tree; give two, say a worktree of the
# previous commit and this one, to compare before and after in the same series) and
# the reference, then for each workload alternates runs of the reference and of each
# hawk (the hawks in reverse order every other run, so that the load drifting does not
# favour one tree): 1,000 conns x 8 in flight x 256 B and 100 x 32 x 128 B, each with
# spool.fsync never and always (-only NAME: only the series whose name, say
# 1000x8x256-fsync-never, contains NAME); then holds -idle-n idle connections on each; then times each
# hawk's start. Prints one line per run and the medians: acked/s, the ratio to the
# reference in the same run, server CPU per report and the load generator's; RSS per
# idle connection; `hawk -version` wall time
# (median of 21, beside a Go hello world's: the floor on this machine; with perf, the
# CPU and page faults of both) and the binary's size; SIGHUP to the new process ready (`sighup_to_ready`, idle server,
# -upgrades in a row, the trees in turn (with the new process's own share, from its configuration loaded to listening, and, where its log says, from the request to its main and from main to the configuration loaded),
# each on a fresh spool directory so that the dedup rebuild reads
# the same bytes every time, each after the previous process has exited so no old
# process is left draining on the cores; median and max); then, per hawk, the
# upgrade figures: -idle-n idle heartbeating connections handed over, 3 upgrades
# in a row (the old process's "handoff finished" duration, and the CPU seconds of
# the old process from SIGHUP to its exit and of the new one from its exec to the
# end of the handoff); and -rounds rounds of the ack p99 under load (1,000 conns x
# 8 in flight x 64 B at -rate reports/s, p99 over each whole 10 s window, after the
# clients connected and warmed up for 1 s: hawkc load -warmup): a steady run, then a
# run with SIGHUP at 2.5, 5 and 7.5 s into its window, and their ratio, the trees in
# turn each round; beside each round, where its tail sat (hawkc load -timeline and
# the servers' log, through scripts/upgrade-phases.py: per phase of the upgrades,
# SIGHUP to listening, the dedup rebuild, the handoff and the 0.5 s after the old
# process's exit, its length, its p99 and its share of the ACKs above the run's
# p99). Both upgrade
# measures start each round with a fresh server on a fresh spool directory
# (the new process's dedup rebuild reads what the round wrote, the same every
# time), send each SIGHUP only once the previous old process has exited (so no
# old process is left draining on the cores; the log line says when one was
# late), and print the load average beside the figures (the machine's other work
# moves them). Between the two, -upgrades-load upgrades (100; 0: none) under that
# load (1,000 conns x 8 x 64 B at -rate), each SIGHUP once the previous old process
# has exited, in blocks of 20 per fresh server, the trees in turn block by block:
# SIGHUP to the new process ready (median, p90, max) and the new process's CPU from
# its exec to ready, which tells a slower start from one that waited for a core.
# With -udp, last: the highest rate with 0 kernel drops for this tree's UDP lines
# and syslog listeners beside a minimal Go reader that stores nothing
# (scripts/udp-bench.sh, -runs times).
# hawk is built as the binaries operators run are built (scripts/release.sh,
# scripts/deb.sh, the container: static, CGO_ENABLED=0, -trimpath, -s -w); with
# -dev-build, by a plain go build instead, which on a machine with a C compiler links
# libc for the net package's cgo resolver, so that every exec (-version, an upgrade's
# new process) pays the dynamic loader's start.
# hawk's throughput runs are driven by `hawkc load -raw`: one goroutine per
# connection writing the wire format itself, as lean as the reference's load (on 2
# cores the generator's CPU is taken from the server's). -library-load drives them
# with `hawkc load` on the client library instead (records, callbacks, resends: what
# an agent pays), as the series before 2026-12-08 were.
# With -client-per-tree, each hawk's throughput runs are driven by the `hawkc load`
# of its own tree instead of this tree's, so that two trees compare the load
# generator's CPU per report as well as the server's (a tree without -raw needs
# -library-load).
# Every process it starts it stops.
#
# Throughput is measured the same way for both servers, in a steady-state window:
# each load generator connects, runs a 1 s warm-up that is not counted, then the -d
# window (the reference's load does exactly this; `hawkc load -warmup 1s` does too and
# reports the window's rate as steady_acked_per_s, the figure used here). CPU per
# report, of the server and of the load generator alike, is sampled from
# /proc/PID/stat (utime+stime, every thread) inside that window: from its start (the
# reference's load: -c sockets open plus the 1 s warm-up; hawkc load says on stderr
# when its window begins, its clients past the handshake and its warm-up over) plus a
# margin of 0.2 s to its end less 0.5 s (the sampler runs at nice -10 and wakes at
# deadlines, yet on a busy machine a wake-up can be late), the CPU between the two samples divided
# by (the window's acked/s x the wall time between them). Connection set-up, the
# warm-up and the drain are outside both measures.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3 dur=5s idle=1 idlen=15000 thru=1 startup=1 upgrades=10 udp=0 trees=() release=1
handoff=1 upload=1 upgradesload=100 rounds=3 rate=150000 clientpertree=0 portbase=0 gctrace=0 only= rawload=-raw
while [ $# -gt 0 ]; do
  case "$1" in
    -runs) runs=$2; shift 2 ;;
    -only) only=$2; shift 2 ;;
    -d) dur=$2; shift 2 ;;
    -idle-n) idlen=$2; shift 2 ;;
    -upgrades) upgrades=$2; shift 2 ;;
    -skip-throughput) thru=0; shift ;;
    -skip-idle) idle=0; shift ;;
    -skip-startup) startup=0; shift ;;
    -udp) udp=1; shift ;;
    -skip-handoff) handoff=0; shift ;;
    -skip-upgrade-load) upload=0; shift ;;
    -upgrades-load) upgradesload=$2; shift 2 ;;
    -rounds) rounds=$2; shift 2 ;;
    -port-base) portbase=$2; shift 2 ;;
    -gctrace) gctrace=1; shift ;;
    -rate) rate=$2; shift 2 ;;
    -release-build) release=1; shift ;; # the default, accepted so that either choice can be spelled out
    -dev-build) release=0; shift ;;
    -client-per-tree) clientpertree=1; shift ;;
    -library-load) rawload=; shift ;;
    -tree) trees+=("$(cd "$2" && pwd)"); shift 2 ;;
    *) echo "usage: $0 [-runs N] [-d 5s] [-idle-n N] [-upgrades N] [-skip-throughput] [-skip-idle] [-skip-startup] [-udp] [-rounds N] [-rate N] [-skip-handoff] [-skip-upgrade-load] [-upgrades-load N] [-tree DIR ...] [-dev-build] [-client-per-tree] [-library-load] [-port-base N] [-gctrace]" >&2; exit 2 ;;
  esac
done
[ ${#trees[@]} -gt 0 ] || trees=("$PWD")
ref=../shared/bench
[ -d "$ref" ] || { echo "no $ref beside the project" >&2; exit 1; }
W=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

labels=()
for i in "${!trees[@]}"; do
  label="hawk$i@$(git -C "${trees[$i]}" rev-parse --short HEAD)"
  labels+=("$label")
  if [ "$release" = 1 ]; then
    (cd "${trees[$i]}" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$W/$label" ./cmd/server)
  else
    (cd "${trees[$i]}" && go build -o "$W/$label" ./cmd/server)
  fi
  echo "$label: ${trees[$i]} ($([ "$release" = 1 ] && echo "release build: static, -trimpath, -s -w" || echo "plain go build"))"
  [ "$clientpertree" = 1 ] && (cd "${trees[$i]}" && go build -o "$W/hawkc-$label" ./cmd/client)
done
go build -o "$W/hawkc" ./cmd/client # one load generator for every hawk (but see -client-per-tree)
(cd "$ref" && go build -o "$W/baseline" ./baseline && go build -o "$W/bload" ./load && go build -o "$W/bidle" ./idle)

# free_port: a port the kernel chooses, or with -port-base the next of the 100 from it.
free_port() {
  if [ "$portbase" -gt 0 ]; then
    local n; n=$(cat "$W/port.next" 2>/dev/null || echo 0); echo $((n + 1)) > "$W/port.next"
    echo $((portbase + n % 100)); return
  fi
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
rss_kib() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
# wait_open FILE: until the idle holder prints "open N", then 4 s for the heartbeats
# and the runtime to settle.
wait_open() { for _ in $(seq 1200); do grep -q '^open' "$1" 2>/dev/null && { sleep 4; return 0; }; sleep 0.1; done; echo "idle holder never opened: $(cat "$1")" >&2; exit 1; }
median() { sort -g | awk '{a[NR]=$1} END{print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
hz=$(getconf CLK_TCK)
secs=$(echo "$dur" | tr -d s)

bport=$(free_port)
"$W/baseline" -addr "127.0.0.1:$bport" & bpid=$!; pids+=("$bpid"); wait_port "$bport"

declare -A hport hpid
# The hawks admit connections as fast as the reference does (no limits.handshake_rate):
# at the default 5,000/s the idle holder's and the load generators' bursts were
# refused in part and retried, which is admission's work, not what is measured here.
start_hawks() { # fsync
  for l in "${labels[@]}"; do
    hport[$l]=$(free_port)
    rm -rf "$W/data-$l"
    "$W/$l" -listen="127.0.0.1:${hport[$l]}" -admin.addr= -spool.dir="$W/data-$l" -spool.fsync="$1" -log.level=warn -limits.max_conns=200000 -limits.handshake_rate=0 &
    hpid[$l]=$!; pids+=("${hpid[$l]}"); wait_port "${hport[$l]}"
  done
}
stop_hawks() { for l in "${labels[@]}"; do kill "${hpid[$l]}"; wait "${hpid[$l]}" 2>/dev/null || true; done; }

# window SERVER_PID C OUT LOAD...: runs the load generator LOAD (output to OUT) and
# samples the CPU ticks of the server and of the load generator inside its steady
# window (see the header); leaves "server_ticks load_ticks wall_s" in OUT.cpu. One
# python process starts the load generator, polls and samples, so that neither its
# start (~0.4 s on a busy machine) nor forks shift the samples.
warmup=1
window() {
  local sp=$1 c=$2 out=$3 marker=""; shift 3
  [ "$2" = load ] && marker="steady window begins" # hawkc load, not the reference's
  nice -n -10 python3 - "$sp" "$c" "$warmup" "$secs" "$out" "$marker" "$@" <<'PY' || { echo "the load generator exited before its window ended: $(tail -3 "$out.err")" >&2; exit 1; }
import os, subprocess, sys, time
sp, c = sys.argv[1], int(sys.argv[2])
warmup, secs = map(float, sys.argv[3:5])
out, marker = sys.argv[5], sys.argv[6]
p = subprocess.Popen(sys.argv[7:], stdout=open(out, "w"), stderr=open(out + ".err", "w"))
lp = p.pid
def sockets():
    d = "/proc/%s/fd" % lp
    n = 0
    for f in os.listdir(d):
        try:
            n += os.readlink(d + "/" + f).startswith("socket:")
        except OSError:
            pass
    return n
def ticks(pid):
    with open("/proc/%s/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return int(v[11]) + int(v[12]) # utime, stime: fields 14 and 15
def until(t):
    time.sleep(max(0, t - time.monotonic()))
if marker:  # hawkc load says when its window begins (its clients connected, the warm-up over)
    while marker not in open(out + ".err").read():
        if p.poll() is not None:
            sys.exit(1) # it ended without a window: clients that never connected
        time.sleep(0.005)
    begins = time.monotonic()
else:  # the reference's load: connected once it has c sockets, then 1 s of warm-up
    while sockets() < c:
        time.sleep(0.005)
    begins = time.monotonic() + warmup
until(begins + 0.2)
s0, l0, w0 = ticks(sp), ticks(lp), time.monotonic()
until(begins + secs - 0.5)
s1, l1, w1 = ticks(sp), ticks(lp), time.monotonic()
with open(out + ".cpu", "w") as f:
    print(s1 - s0, l1 - l0, "%.3f" % (w1 - w0), file=f)
p.wait() # a hawkc run with errors still prints its JSON
PY
}
# per_report OUT RATE FIELD: microseconds of CPU per report from OUT.cpu (FIELD 1: the
# server, 2: the load generator) at RATE acked/s.
per_report() { awk -v r="$2" -v f="$3" -v hz="$hz" '{printf "%.2f", $f/hz*1e6/(r*$3)}' "$1.cpu"; }

series() { # name fsync conns window size
  local name=$1 fsync=$2 c=$3 w=$4 s=$5
  [[ -n "$only" && "$name" != *"$only"* ]] && return
  start_hawks "$fsync"
  echo "$name: load average $(cut -d' ' -f1-3 /proc/loadavg)"
  : > "$W/$name.ref"; : > "$W/$name.refcpu"
  for l in "${labels[@]}"; do : > "$W/$name.$l"; : > "$W/$name.$l.cpu"; : > "$W/$name.$l.ratio"; done
  for i in $(seq "$runs"); do
    window "$bpid" "$c" "$W/bout" "$W/bload" -addr "127.0.0.1:$bport" -c "$c" -w "$w" -s "$s" -d "$dur"
    b=$(awk '{print $3}' "$W/bout")
    bcpu=$(per_report "$W/bout" "$b" 1); blcpu=$(per_report "$W/bout" "$b" 2)
    echo "$b" >> "$W/$name.ref"; echo "$bcpu" >> "$W/$name.refcpu"; echo "$blcpu" >> "$W/$name.refload"
    line="$name run $i: reference $b acked/s ($bcpu us CPU/report, load $blcpu)"
    # The hawks in turn, in the reverse order every other run: the machine's load
    # drifts within a run, and a fixed order would favour one tree.
    order=("${labels[@]}")
    [ $((i % 2)) = 0 ] && for ((k = 0; k < ${#labels[@]}; k++)); do order[k]=${labels[${#labels[@]} - 1 - k]}; done
    for l in "${order[@]}"; do
      lg="$W/hawkc"; [ "$clientpertree" = 1 ] && lg="$W/hawkc-$l"
      window "${hpid[$l]}" "$c" "$W/hout" "$lg" load $rawload -addr "127.0.0.1:${hport[$l]}" -c "$c" -w "$w" -s "$s" -d "$dur" -warmup "${warmup}s" -json
      out=$(tail -1 "$W/hout")
      h=$(python3 -c 'import json,sys; print(round(json.loads(sys.argv[1])["steady_acked_per_s"]))' "$out")
      hcpu=$(per_report "$W/hout" "$h" 1); hlcpu=$(per_report "$W/hout" "$h" 2)
      ratio=$(awk -v h="$h" -v b="$b" 'BEGIN{printf "%.3f", h/b}')
      echo "$h" >> "$W/$name.$l"; echo "$hcpu" >> "$W/$name.$l.cpu"; echo "$ratio" >> "$W/$name.$l.ratio"; echo "$hlcpu" >> "$W/$name.$l.load"
      line="$line; $l $h ($hcpu us, load $hlcpu, ratio $ratio)"
    done
    echo "$line"
  done
  stop_hawks
  rm=$(median < "$W/$name.ref"); rc=$(median < "$W/$name.refcpu"); rl=$(median < "$W/$name.refload")
  for l in "${labels[@]}"; do
    hc=$(median < "$W/$name.$l.cpu"); hl=$(median < "$W/$name.$l.load")
    printf 'MEDIAN %-24s %-16s %8.0f acked/s  ratio %s  (reference %8.0f)  CPU/report %s us = x%s the reference (%s us)  load generator (hawkc load %s) %s us = x%s (%s us)\n' \
      "$name" "$l" "$(median < "$W/$name.$l")" "$(median < "$W/$name.$l.ratio")" "$rm" "$hc" \
      "$(awk -v a="$hc" -v b="$rc" 'BEGIN{printf "%.2f", a/b}')" "$rc" \
      "${rawload:-on the client library}" "$hl" "$(awk -v a="$hl" -v b="$rl" 'BEGIN{printf "%.2f", a/b}')" "$rl"
  done
}

if [ "$thru" = 1 ]; then
  series "1000x8x256-fsync-never" never 1000 8 256
  series "1000x8x256-fsync-always" always 1000 8 256
  series "100x32x128-fsync-never" never 100 32 128
  series "100x32x128-fsync-always" always 100 32 128
fi

if [ "$idle" = 1 ]; then
  n=$idlen
  before=$(rss_kib "$bpid")
  "$W/bidle" -addr "127.0.0.1:$bport" -n "$n" -hold 8s > "$W/bidle.out" 2>&1 & ipid=$!; pids+=("$ipid")
  wait_open "$W/bidle.out"; during=$(rss_kib "$bpid"); wait "$ipid" || true
  echo "IDLE $n reference: $(awk -v a="$before" -v b="$during" -v n="$n" 'BEGIN{printf "%.2f", (b-a)/n}') KiB/conn (raw connections)"
  start_hawks never
  for l in "${labels[@]}"; do
    before=$(rss_kib "${hpid[$l]}")
    "$W/hawkc" idle -addr "127.0.0.1:${hport[$l]}" -n "$n" -hold 8s > "$W/idle.out" 2>&1 & ipid=$!; pids+=("$ipid")
    wait_open "$W/idle.out"; during=$(rss_kib "${hpid[$l]}"); wait "$ipid" || true
    echo "IDLE $n $l: $(awk -v a="$before" -v b="$during" -v n="$n" 'BEGIN{printf "%.2f", (b-a)/n}') KiB/conn (authenticated, heartbeating)"
  done
  stop_hawks
fi

# startup: -version wall time (beside a Go hello world's, the floor on this machine),
# its CPU and page faults, then SIGHUP to ready on an idle server.
if [ "$startup" = 1 ]; then
  mkdir -p "$W/hello"
  printf 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hawk") }\n' > "$W/hello/main.go"
  printf 'module hello\n\ngo 1.26\n' > "$W/hello/go.mod"
  (cd "$W/hello" && go build -o "$W/helloworld" .)
  # median wall time of 21 runs of each, the binaries alternating: hello world, then
  # each hawk's -version; one line each
  python3 - "$W/helloworld" "${labels[@]/#/$W/}" > "$W/wall" <<'PY'
import subprocess, sys, time, statistics
ts = {b: [] for b in sys.argv[1:]}
for _ in range(21):
    for i, b in enumerate(sys.argv[1:]):
        t = time.perf_counter()
        subprocess.run([b] if i == 0 else [b, "-version"], stdout=subprocess.DEVNULL, check=True)
        ts[b].append((time.perf_counter() - t) * 1000)
for b in sys.argv[1:]:
    print("%.1f" % statistics.median(ts[b]))
PY
  # cpu BIN ARGS...: "task-clock ms, page faults" (means of 21 runs), or "-" without perf
  cpu() { command -v perf >/dev/null || { echo "-"; return; }
    perf stat -x, -r 21 -e task-clock,page-faults "$@" 2>&1 >/dev/null | awk -F, '$3=="task-clock"{t=$1} $3=="page-faults"{f=$1} END{printf "%.1f ms CPU, %d page faults", t, f}'; }
  hv=$(sed -n 1p "$W/wall")
  printf 'STARTUP %-16s %s ms (median of 21), %s\n' "hello world" "$hv" "$(cpu "$W/helloworld")"
  n=1
  for l in "${labels[@]}"; do
    n=$((n + 1)); v=$(sed -n "${n}p" "$W/wall")
    printf 'STARTUP %-16s -version %s ms (median of 21, %s x hello world), %s, binary %s MB\n' "$l" "$v" \
      "$(awk -v a="$v" -v b="$hv" 'BEGIN{printf "%.1f", a/b}')" "$(cpu "$W/$l" -version)" "$(awk -v s="$(stat -c %s "$W/$l")" 'BEGIN{printf "%.1f", s/1e6}')"
    : > "$W/up.$l"; : > "$W/main.$l"; : > "$W/before_main.$l"; : > "$W/config_load.$l"; : > "$W/cpu.$l"; : > "$W/page_faults.$l"
  done
  port=$(free_port)
  for i in $(seq "$upgrades"); do
    for l in "${labels[@]}"; do # alternating, so a change in the machine's load hits every hawk
      d="$W/up-$l"; rm -rf "$d"; mkdir -p "$d"
      "$W/$l" -listen="127.0.0.1:$port" -admin.addr= -spool.dir="$d/spool" -upgrade.pid_file="$d/pid" -log.format=json 2> "$d/log" &
      p=$!; pids+=("$p")
      for _ in $(seq 200); do [ -s "$d/pid" ] && break; sleep 0.05; done
      kill -HUP "$p"
      for _ in $(seq 200); do grep -q sighup_to_ready "$d/log" && break; sleep 0.05; done
      grep -o '"sighup_to_ready":[0-9.e-]*' "$d/log" | cut -d: -f2 | awk '{printf "%.2f\n", $1*1000}' >> "$W/up.$l"
      # the new process's own start, from its configuration loaded to listening: the rest of
      # sighup_to_ready is exec, the runtime's start, package init and the configuration load
      for _ in $(seq 100); do grep -q '"inherited":true' "$d/log" && break; sleep 0.05; done
      grep '"inherited":true' "$d/log" | grep -o '"startup":[0-9.e-]*' | cut -d: -f2 | awk '{printf "%.2f\n", $1*1000}' >> "$W/main.$l"
      # and, from trees whose new process logs them, what came before that: from the
      # parent's request to the child's main, and main to the configuration loaded; and
      # the new process's CPU and page faults from its exec to ready, which other load on
      # the machine stretches far less than it stretches the wall-clock figures
      for f in before_main config_load cpu page_faults; do
        scale=1000; [ "$f" = page_faults ] && scale=1
        { grep '"inherited":true' "$d/log" | grep -o "\"$f\":[0-9.e-]*" || true; } | cut -d: -f2 | awk -v s="$scale" '{printf "%.2f\n", $1*s}' >> "$W/$f.$l"
      done
      wait "$p" 2>/dev/null || true # the old process drains and exits
      child=$(cat "$d/pid"); kill "$child" 2>/dev/null || true
      while kill -0 "$child" 2>/dev/null; do sleep 0.05; done
    done
  done
  for l in "${labels[@]}"; do
    printf 'STARTUP %-16s SIGHUP->ready idle: median %s ms, max %s ms (%s upgrades); of it the new process from its configuration loaded to listening: median %s ms\n' \
      "$l" "$(median < "$W/up.$l")" "$(sort -g "$W/up.$l" | tail -1)" "$(wc -l < "$W/up.$l")" "$(median < "$W/main.$l")"
    if [ -s "$W/before_main.$l" ]; then
      printf 'STARTUP %-16s SIGHUP->ready idle, before that share: from the request to the new process'"'"'s main (the parent before the exec, exec, runtime start, package init) median %s ms; main to the configuration loaded median %s ms\n' \
        "$l" "$(median < "$W/before_main.$l")" "$(median < "$W/config_load.$l")"
    fi
    if [ -s "$W/cpu.$l" ]; then
      printf 'STARTUP %-16s the new process from its exec to its listening line, just after ready: CPU median %s ms, page faults median %s\n' \
        "$l" "$(median < "$W/cpu.$l")" "$(median < "$W/page_faults.$l")"
    fi
  done
fi

# udp: the highest rate with 0 kernel drops (sink, hawk lines, hawk syslog), per run.
if [ "$udp" = 1 ]; then
  for i in $(seq "$runs"); do
    scripts/udp-bench.sh | grep 'highest rate' | sed "s/^/UDP run $i /"
  done
fi

# upgrade figures: each round a fresh server on a fresh spool directory; with
# -gctrace its processes write their collections to its log (gctrace-procs.py).
godebug=${GODEBUG:-}
[ "$gctrace" = 0 ] || godebug="${godebug:+$godebug,}gctrace=1"
alive() { [ -e "/proc/$1" ] && ! awk '{exit ($3 != "Z")}' "/proc/$1/stat" 2>/dev/null; } # a zombie has exited
loadavg() { cut -d' ' -f1 /proc/loadavg; }
start_upgradable() { # label dir port
  rm -rf "$2"; mkdir -p "$2"
  GODEBUG=$godebug "$W/$1" -listen="127.0.0.1:$3" -admin.addr= -spool.dir="$2/spool" -upgrade.pid_file="$2/pid" -limits.handshake_rate=0 \
    -limits.max_conns=200000 -log.format=json 2> "$2/log" &
  pids+=("$!")
  for _ in $(seq 200); do [ -s "$2/pid" ] && break; sleep 0.05; done
  wait_port "$3"
}
stop_upgradable() { # dir
  local p; p=$(cat "$1/pid"); kill "$p" 2>/dev/null || true
  while alive "$p"; do sleep 0.05; done
}
# sighup DIR: upgrade once the previous old process has exited; prints the pid upgraded
sighup() {
  local old n; old=$(cat "$1/pid"); n=$(grep -c 'upgrade succeeded' "$1/log" || true)
  kill -HUP "$old"
  for _ in $(seq 600); do [ "$(grep -c 'upgrade succeeded' "$1/log" || true)" -gt "$n" ] && break; sleep 0.02; done
  echo "$old"
}
ticks_of() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || true; }

if [ "$handoff" = 1 ]; then
  for l in "${labels[@]}"; do
    d="$W/ho-$l"; port=$(free_port); : > "$W/ho.$l"
    start_upgradable "$l" "$d" "$port"
    "$W/hawkc" idle -addr "127.0.0.1:$port" -n "$idlen" -hold 1h > "$d/idle.out" 2>&1 & ipid=$!; pids+=("$ipid")
    wait_open "$d/idle.out"
    for i in 1 2 3; do
      old=$(cat "$d/pid"); t0=$(ticks_of "$old"); ot=$t0; n=$(grep -c 'handoff received' "$d/log" || true)
      kill -HUP "$old"
      while alive "$old"; do x=$(ticks_of "$old"); [ -n "$x" ] && ot=$x; sleep 0.02; done
      for _ in $(seq 1500); do [ "$(grep -c 'handoff received' "$d/log" || true)" -gt "$n" ] && break; sleep 0.02; done
      new=$(cat "$d/pid"); nt=$(ticks_of "$new")
      line=$(grep 'handoff finished' "$d/log" | grep "\"pid\":$old," || true)
      dur=$(echo "$line" | grep -o '"duration":[0-9.e-]*' | cut -d: -f2)
      moved=$(echo "$line" | grep -o '"moved":[0-9]*' | cut -d: -f2)
      dur=${dur:-nan} moved=${moved:-0}
      echo "$dur" >> "$W/ho.$l"
      printf 'HANDOFF %-16s upgrade %d: %s of %s idle connections moved in %.3f s; CPU: old process %.2f s, new %.2f s (load average %s)\n' \
        "$l" "$i" "$moved" "$idlen" "$dur" "$(awk -v a="$ot" -v b="$t0" -v hz="$hz" 'BEGIN{print (a-b)/hz}')" \
        "$(awk -v a="$nt" -v hz="$hz" 'BEGIN{print a/hz}')" "$(loadavg)"
      sleep 2 # the new process's start settles before the next SIGHUP
    done
    kill "$ipid" 2>/dev/null || true; wait "$ipid" 2>/dev/null || true
    stop_upgradable "$d"
    printf 'HANDOFF %-16s median %.3f s, max %.3f s (%s idle connections, 3 upgrades)\n' "$l" "$(median < "$W/ho.$l")" "$(sort -g "$W/ho.$l" | tail -1)" "$idlen"
  done
fi

# SIGHUP to ready under load: blocks of 20 upgrades on a fresh server each, the
# trees in turn (in the reverse order every other block).
if [ "$upgradesload" -gt 0 ]; then
  for l in "${labels[@]}"; do : > "$W/s2r.$l"; : > "$W/s2rcpu.$l"; : > "$W/s2rerr.$l"; done
  for b in $(seq $(((upgradesload + 19) / 20))); do
    order=("${labels[@]}")
    [ $((b % 2)) = 0 ] && for ((k = 0; k < ${#labels[@]}; k++)); do order[k]=${labels[${#labels[@]} - 1 - k]}; done
    for l in "${order[@]}"; do
      d="$W/sl-$l"; port=$(free_port)
      start_upgradable "$l" "$d" "$port"
      "$W/hawkc" load -addr "127.0.0.1:$port" -c 1000 -w 8 -s 64 -rate "$rate" -d 1h -warmup 1s -json > "$d/load.json" 2> "$d/load.err" & lpid=$!; pids+=("$lpid")
      for _ in $(seq 3000); do grep -q 'steady window begins' "$d/load.err" && break; alive "$lpid" || break; sleep 0.01; done
      n=$((upgradesload - (b - 1) * 20)); [ "$n" -gt 20 ] && n=20
      prev=""
      for _ in $(seq "$n"); do
        while [ -n "$prev" ] && alive "$prev"; do sleep 0.01; done
        prev=$(sighup "$d")
      done
      while alive "$prev"; do sleep 0.02; done; prev=""
      kill -INT "$lpid" 2>/dev/null || true; wait "$lpid" || true
      stop_upgradable "$d"
      grep -o '"sighup_to_ready":[0-9.e-]*' "$d/log" | cut -d: -f2 | awk '{printf "%.2f\n", $1*1000}' >> "$W/s2r.$l"
      grep '"inherited":true' "$d/log" | grep -o '"cpu":[0-9.e-]*' | cut -d: -f2 | awk '{printf "%.2f\n", $1*1000}' >> "$W/s2rcpu.$l"
      python3 -c 'import json,sys; print(json.loads(sys.argv[1])["errors"])' "$(tail -1 "$d/load.json")" >> "$W/s2rerr.$l"
    done
  done
  for l in "${labels[@]}"; do
    printf 'STARTUP-LOAD %-16s SIGHUP->ready under load: median %s ms, p90 %s ms, max %s ms (%s upgrades; 1000 x 8 x 64 B at %s reports/s); the new process'"'"'s CPU from exec to ready median %s ms; load generator errors %s (load average %s)\n' \
      "$l" "$(median < "$W/s2r.$l")" "$(sort -g "$W/s2r.$l" | awk '{v[NR]=$1} END{i=int(NR*0.9); if (i<1) i=1; print v[i]}')" "$(sort -g "$W/s2r.$l" | tail -1)" \
      "$(wc -l < "$W/s2r.$l")" "$rate" "$(median < "$W/s2rcpu.$l")" "$(awk '{s+=$1} END{print s+0}' "$W/s2rerr.$l")" "$(loadavg)"
  done
fi

p99_of() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])["latency_p99_us"])' "$1"; }
if [ "$upload" = 1 ]; then
  for l in "${labels[@]}"; do : > "$W/ratio.$l"; done
  # Round by round, the hawks in turn (in the reverse order every other round), so
  # that the machine's load drifting does not favour one tree.
  for r in $(seq "$rounds"); do
    order=("${labels[@]}")
    [ $((r % 2)) = 0 ] && for ((k = 0; k < ${#labels[@]}; k++)); do order[k]=${labels[${#labels[@]} - 1 - k]}; done
    for l in "${order[@]}"; do
      d="$W/ul-$l"; port=$(free_port)
      start_upgradable "$l" "$d" "$port"
      # Every report measured in both runs, as -timeline does: the p99s compare like for
      # like. Both over the 10 s window after the clients connected and warmed up for
      # 1 s: hawkc's start (a thousand handshakes while the first clients already send
      # at the full rate) is not the server's steady state, and it held more than 1 %
      # of a run's ACKs at 10-45 ms, so it was the p99 of both runs.
      load=("$W/hawkc" load -addr "127.0.0.1:$port" -c 1000 -w 8 -s 64 -rate "$rate" -d 10s -warmup 1s -latency-every 1 -json)
      steady=$("${load[@]}" 2>/dev/null | tail -1 || true)
      "${load[@]}" -timeline "$d/up.tl" > "$d/up.json" 2> "$d/up.err" & lpid=$!; pids+=("$lpid")
      for _ in $(seq 3000); do grep -q 'steady window begins' "$d/up.err" && break; alive "$lpid" || break; sleep 0.01; done
      t0=$(date +%s.%N); late="" # the window's start: the upgrades at 2.5, 5 and 7.5 s into it
      for k in 1 2 3; do
        sleep "$(awk -v t0="$t0" -v k="$k" -v now="$(date +%s.%N)" 'BEGIN{s=t0+2.5*k-now; print (s>0)?s:0}')"
        waited=0
        while [ -n "${prev:-}" ] && alive "$prev"; do waited=1; sleep 0.02; done
        [ "$waited" = 0 ] || late="$late upgrade $k at $(awk -v t0="$t0" -v now="$(date +%s.%N)" 'BEGIN{printf "%.1f", now-t0}') s;"
        prev=$(sighup "$d")
      done
      wait "$lpid" || true
      while alive "$prev"; do sleep 0.02; done; prev=""
      up=$(tail -1 "$d/up.json")
      stop_upgradable "$d"
      s99=$(p99_of "$steady"); u99=$(p99_of "$up")
      ratio=$(awk -v a="$u99" -v b="$s99" 'BEGIN{printf "%.2f", a/b}')
      echo "$ratio" >> "$W/ratio.$l"
      printf 'UPGRADE-LOAD %-16s round %d: ack p99 steady %.1f ms, with 3 upgrades %.1f ms: x%s; acked/s %s / %s, errors %s / %s, reconnects %s (load average %s)%s\n' \
        "$l" "$r" "$(awk -v a="$s99" 'BEGIN{print a/1000}')" "$(awk -v a="$u99" 'BEGIN{print a/1000}')" "$ratio" \
        "$(python3 -c 'import json,sys; print(round(json.loads(sys.argv[1])["acked_per_s"]))' "$steady")" \
        "$(python3 -c 'import json,sys; print(round(json.loads(sys.argv[1])["acked_per_s"]))' "$up")" \
        "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["errors"])' "$steady")" \
        "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["errors"])' "$up")" \
        "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["reconnects"])' "$up")" "$(loadavg)" "${late:+ (waited for the previous old process to exit:$late)}"
      # Where the upgrade run's tail sat: per phase, its p99 and its share of the
      # ACKs slower than the run's p99 (scripts/upgrade-phases.py).
      scripts/upgrade-phases.py "$d/up.tl" "$d/log" | awk -v l="$l" -v r="$r" '
        /^(steady|start|rebuild|wait|handoff|after) / {line = line sprintf(" %s %.2f s p99 %.1f ms tail %s%%;", $1, $2, $5, $7)}
        END {printf "UPGRADE-PHASES %-16s round %d:%s\n", l, r, line}'
      [ "$gctrace" = 0 ] || scripts/gctrace-procs.py "$d/log" | sed "s/^/UPGRADE-GC $l round $r: /"
    done
  done
  for l in "${labels[@]}"; do
    printf 'UPGRADE-LOAD %-16s ratio per round: %s (max %s; %s reports/s, 1000 x 8 x 64 B, 3 upgrades per 10 s)\n' "$l" "$(paste -sd' ' "$W/ratio.$l")" "$(sort -g "$W/ratio.$l" | tail -1)" "$rate"
  done
fi
