#!/usr/bin/env bash
# idle-mem.sh: server memory per idle connection, plaintext or TLS 1.3, with what
# the runtime says it is made of.
#
#   scripts/idle-mem.sh HAWK HAWKC plain|tls N PORT [server flags...]
#
# HAWK and HAWKC are built binaries (go build ./cmd/server, ./cmd/client). For
# tls, ca.pem, s.crt and s.key (ECDSA P-256, for 127.0.0.1) are taken from
# $CERTS (default: the current directory). It starts a fresh server on PORT
# (admin on PORT+1), reads VmRSS and /metrics, opens N idle heartbeating
# connections with `hawkc idle`, and prints per connection, 2 s, 10 s and 30 s
# after all are open: VmRSS, stack in use, heap in use, and the server's free
# and released heap; then the allocation rate and any "heap trimmed" log lines.
# With IDLE_MEM_60=1 it also prints them 60 s after all are open. With
# IDLE_MEM_EVERY=1 it also reads VmRSS every second and prints the least and
# the most per connection from 3 s after all are open to the last snapshot.
set -euo pipefail
BIN=$1 CLI=$2 MODE=$3 N=$4 PORT=$5
shift 5
APORT=$((PORT + 1))
CERTS=${CERTS:-.}
LONG=${IDLE_MEM_60:-}
EVERY=${IDLE_MEM_EVERY:-}
HOLD=40s
[ -n "$LONG" ] && HOLD=70s
D=$(mktemp -d)
EP=
# The server is waited for, not only signalled: a run started right after this one
# on the same ports would otherwise find them still held.
trap 'kill $SP $CP $EP 2>/dev/null || true; wait $SP 2>/dev/null || true; rm -rf "$D"' EXIT
TLSF=() CF=()
if [ "$MODE" = tls ]; then
	TLSF=(-tls.cert_file="$CERTS/s.crt" -tls.key_file="$CERTS/s.key" -tls.min_version=1.3)
	CF=(-tls-ca "$CERTS/ca.pem")
fi
"$BIN" -listen=127.0.0.1:$PORT -admin.addr=127.0.0.1:$APORT -spool.dir="$D/spool" -spool.fsync=never \
	-log.level=info -limits.handshake_rate=0 "${TLSF[@]}" "$@" >"$D/server.log" 2>&1 &
SP=$! CP=
for _ in $(seq 100); do curl -sf http://127.0.0.1:$APORT/metrics >/dev/null && break; sleep 0.1; done
if ! kill -0 $SP 2>/dev/null; then
	echo "idle-mem: the server exited at start:" >&2
	cat "$D/server.log" >&2
	exit 1
fi
sleep 1
m() { curl -sf http://127.0.0.1:$APORT/metrics | awk -v k="$1" '$1==k{print $2}'; }
rss() { awk '/VmRSS/{print $2}' /proc/$SP/status; }
R0=$(rss) S0=$(m go_memstats_stack_inuse_bytes) H0=$(m go_memstats_heap_inuse_bytes)
"$CLI" idle -addr 127.0.0.1:$PORT "${CF[@]}" -n "$N" -hold $HOLD >"$D/idle.out" 2>"$D/idle.err" &
CP=$!
until grep -q "^open" "$D/idle.out" 2>/dev/null; do
	sleep 0.2
	kill -0 $CP 2>/dev/null || { cat "$D/idle.err"; exit 1; }
done
# One scrape per snapshot: a scrape allocates (about 0.7 MB at 5,000
# connections), and that garbage is in the next snapshot's heap.
mf() { awk -v k="$1" '$1==k{printf "%d\n", $2}' "$D/metrics"; }
snap() {
	local r
	r=$(rss)
	curl -sf http://127.0.0.1:$APORT/metrics >"$D/metrics"
	awk -v l="$1" -v r="$r" -v r0="$R0" -v s="$(mf go_memstats_stack_inuse_bytes)" -v s0="$S0" \
		-v h="$(mf go_memstats_heap_inuse_bytes)" -v h0="$H0" -v hi="$(mf go_memstats_heap_idle_bytes)" \
		-v hr="$(mf go_memstats_heap_released_bytes)" -v n="$N" \
		'BEGIN{printf "%s rss %.2f KiB/conn, stack %.2f, heap in use %.2f; heap free held %.1f MiB, released %.1f MiB\n", l, (r-r0)/n, (s-s0)/n/1024, (h-h0)/n/1024, (hi-hr)/1048576, hr/1048576}'
}
if [ -n "$EVERY" ]; then
	(sleep 3; while :; do awk '/VmRSS/{print $2}' /proc/$SP/status >>"$D/every"; sleep 1; done) &
	EP=$!
fi
sleep 2; snap "open+2s "
sleep 8; snap "open+10s"; A1=$(mf go_memstats_alloc_bytes_total)
sleep 20; snap "open+30s"; A2=$(mf go_memstats_alloc_bytes_total)
awk -v a="$A1" -v b="$A2" -v n="$N" 'BEGIN{printf "allocated %.1f B/conn/s while idle\n", (b-a)/n/20}'
if [ -n "$LONG" ]; then sleep 30; snap "open+60s"; fi
if [ -n "$EVERY" ]; then
	kill $EP
	awk -v r0="$R0" -v n="$N" 'NR==1||$1<lo{lo=$1} NR==1||$1>hi{hi=$1; at=NR+2} {c++}
		END{printf "rss every second from open+3s: least %.2f, most %.2f KiB/conn at about open+%ds (%d readings)\n", (lo-r0)/n, (hi-r0)/n, at, c}' "$D/every"
fi
grep -h "heap trimmed" "$D/server.log" | cut -c1-300 || true
