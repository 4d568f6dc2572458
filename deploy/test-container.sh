#!/usr/bin/env bash
# The container image, run as a container runs it: builds the image with podman
# (deploy/container/build.sh), exports its file system, and starts the image's own
# ENTRYPOINT as PID 1 of a new PID namespace, chrooted into that file system, as user
# 10001 (`unshare --pid --fork --mount-proc --root`: what podman run does, which these
# sandboxes refuse at setrlimit). Then, under load from hawkc: 20 SIGHUP upgrades to
# PID 1, the listener probed all along; every report acked, no client notices; SIGTERM
# stops everything with exit 0. Needs root, podman and util-linux's unshare.
#
#   deploy/test-container.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test-container: needs root (unshare --pid, chroot)" >&2; exit 1; }
for tool in podman unshare curl; do
  command -v "$tool" >/dev/null || { echo "test-container: $tool is missing" >&2; exit 1; }
done

work=$(mktemp -d)
tag=localhost/hawk:test-$$
pid1=
cleanup() {
  [ -n "$pid1" ] && kill -KILL "$pid1" 2>/dev/null || true
  umount "$work/root/proc" 2>/dev/null || true
  podman rmi -f "$tag" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$work/hawk.log" ] && tail -30 "$work/hawk.log" >&2; exit 1; }
ok() { echo "ok: $*"; }
# wait_for SECONDS WHAT COMMAND...: polls COMMAND until it succeeds.
wait_for() {
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@"; do
    [ $SECONDS -lt $end ] || fail "timed out after ${secs}s waiting for $what"
    sleep 0.1
  done
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

deploy/container/build.sh -t "$tag" -v test >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; fail "podman build"; }
ok "image built ($(podman image inspect --format '{{.Size}}' "$tag") bytes)"
mkdir "$work/root"
ctr=$(podman create "$tag")
podman export "$ctr" | tar -x -C "$work/root" --same-owner
podman rm "$ctr" >/dev/null
mkdir -p "$work/root/proc"
entry=$(podman image inspect --format '{{join .Config.Entrypoint " "}}' "$tag")
user=$(podman image inspect --format '{{.Config.User}}' "$tag")
[ -n "$entry" ] && [ "$user" = 10001:10001 ] || fail "entrypoint '$entry', user '$user'"
ok "exported; entrypoint: $entry; user $user"

go build -o "$work/hawkc" ./cmd/client
port=$(free_port) admin=$(free_port)
# The image's configuration, with the ports moved to free ones on loopback.
# shellcheck disable=SC2086
HAWK_LISTEN=127.0.0.1:$port HAWK_ADMIN_ADDR=127.0.0.1:$admin \
  unshare --pid --fork --mount-proc --root="$work/root" --wd=/ \
  --setgid "${user#*:}" --setuid "${user%%:*}" $entry >"$work/hawk.log" 2>&1 &
pid1=$!   # unshare, whose child is PID 1 of the namespace: signals go to that child
ready() { curl -fsS "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1; }
wait_for 20 "the server to be ready" ready
inner=$(pgrep -P "$pid1" | head -1)
[ -n "$inner" ] || fail "no PID 1 under unshare"
ok "serving as PID 1 of its namespace (host pid $inner)"

"$work/hawkc" load -json -addr "127.0.0.1:$port" -c 50 -w 4 -s 256 -rate 5000 -d 600s >"$work/load.out" 2>"$work/load.err" &
load=$!
# The listener probe: a connection every 20 ms; each refused one is counted.
( while :; do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo refused >>"$work/probe"; fi
    echo >>"$work/dials"; sleep 0.02
  done ) &
probe=$!
adopted() { [ "$(grep -c 'adopted its successor' "$work/hawk.log")" -ge "$1" ]; }
sleep 1
for i in $(seq 1 20); do
  kill -HUP "$inner"
  wait_for 30 "upgrade $i to be adopted by PID 1" adopted "$i"
  wait_for 30 "readiness after upgrade $i" ready
done
ok "20 SIGHUP upgrades adopted by PID 1, still ready"
kill "$probe"; wait "$probe" 2>/dev/null || true
kill -INT "$load"
rc=0; wait "$load" || rc=$?
[ "$rc" = 0 ] || { cat "$work/load.out" "$work/load.err" >&2; fail "hawkc load exited $rc"; }
summary=$(cat "$work/load.out")
field() { grep -o "\"$1\": *[0-9]*" <<<"$summary" | grep -o '[0-9]*$'; }
sent=$(field sent) acked=$(field acked)
for f in errors connect_errors reconnects goaways dial_failures nacked; do
  v=$(field "$f"); [ "${v:-0}" = 0 ] || fail "load: $f = $v ($summary)"
done
[ "$sent" = "$acked" ] && [ "${acked:-0}" -gt 0 ] || fail "load: sent $sent, acked $acked"
refused=$( [ -f "$work/probe" ] && wc -l <"$work/probe" || echo 0)
[ "$refused" = 0 ] || fail "$refused of $(wc -l <"$work/dials") listener probes refused"
ok "load: $acked of $sent acked, 0 errors, 0 reconnects, 0 GOAWAYs; $(wc -l <"$work/dials") probes, 0 refused"
if grep -q '"level":"error"' "$work/hawk.log"; then fail "errors logged"; fi

kill -TERM "$inner"
rc=0; wait "$pid1" || rc=$?
pid1=
[ "$rc" = 0 ] || fail "PID 1 exited $rc after SIGTERM"
ok "SIGTERM: PID 1 and every generation exited, status 0"
echo "test-container: all checks passed"
