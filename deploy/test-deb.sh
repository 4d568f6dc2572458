#!/usr/bin/env bash
# Installs, upgrades, removes and purges hawk's Debian package (scripts/deb.sh) under
# real systemd (252, in the throwaway container of ../shared/systemd, `-users overlay`:
# dpkg and its maintainer scripts work there as on a fresh Debian machine), checking:
#
#   install v1: the hawk user, the unit enabled and active, a loopback-only listener
#   and no credential; agents connected and a load running, install v2: the agents'
#   connections are handed over, MainPID follows, version 2 serves, 0 reports lost;
#   install a v3 whose binary fails to start: dpkg's configure fails and v2 keeps
#   serving; remove: stopped, state kept; purge: state deleted.
#
# Run as root from anywhere:  deploy/test-deb.sh   (exit 0: all passed)
# HAWK_SYSTEMD_DIR names the scripts' directory (default ../shared/systemd from the
# repository root). .ci/run runs it (as root) when ../shared/systemd is present.
set -uo pipefail # no -e: every check is counted, and the run goes on to the end
cd "$(dirname "$0")/.."
. deploy/sd-lib.sh
W=$(mktemp -d)
trap 'sd_down; rm -rf "$W"' EXIT
# status: hawk status as the running binary (/proc/MAINPID/exe) answers it: after a
# failed upgrade /usr/bin/hawk is the broken build.
status() { inc sh -c 'exec /proc/$(systemctl show -p MainPID --value hawk)/exe status -config /etc/hawk/hawk.yaml'; }
serving_pid() { field pid; }
field() { status | awk -v k="$1" '$1 == k {print $2}'; }

set -e
scripts/deb.sh -o "$W" -v 1.0 >/dev/null
scripts/deb.sh -o "$W" -v 2.0 >/dev/null
printf '#!/bin/sh\necho "broken build" >&2\nexit 1\n' >"$W/broken"
scripts/deb.sh -o "$W" -v 3.0 -s "$W/broken" >/dev/null
arch=$(go env GOARCH)
sd_up -users overlay -file "$W/hawk_1.0_$arch.deb:/opt/hawk_1.deb" \
  -file "$W/hawk_2.0_$arch.deb:/opt/hawk_2.deb" -file "$W/hawk_3.0_$arch.deb:/opt/hawk_3.deb"
set +e

say "1. install v1"
inc getent passwd hawk && bad "a hawk user exists before the install"
run dpkg -i /opt/hawk_1.deb || bad "dpkg -i of v1"
inc getent passwd hawk && ok "the hawk user was created" || bad "no hawk user"
[[ $(inc systemctl is-enabled hawk) == enabled ]] && ok "enabled" || bad "not enabled"
wait_for 20 "hawk serving" status
show
P1=$(prop MainPID)
[[ $(prop ActiveState) == active && $(serving_pid) == "$P1" ]] && ok "active, MainPID=$P1 serves" || bad "not active or MainPID is not the server"
[[ $(field version) == 1.0 ]] && ok "version 1.0 serves" || bad "version $(field version)"
run stat -c '%n %U:%G %a' /var/lib/hawk /etc/hawk /etc/hawk/tokens /etc/hawk/hawk.yaml
! inc test -s /etc/hawk/tokens && ok "no credential installed" || bad "the tokens file is not empty"
listeners=$(inc ss -Htln | awk '{print $4}' | sort -u | tr '\n' ' ')
echo "  listening: $listeners"
[[ -n $listeners && ! $listeners =~ (0\.0\.0\.0|\[::\]|\*): ]] && ok "every listener is on loopback" || bad "a listener is not on loopback: $listeners"

say "2. a credential, agents and a load, then install v2 (in-place upgrade)"
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
inc sh -c "printf 'test-agents sha256:%s dev*\n' $(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1) >/etc/hawk/tokens"
wait_for 20 "the credential (tokens_file re-read)" inc hawkc send -id dev1 -token "$TOKEN" hello
idle_clients 5
inc sh -c "setsid hawkc load -addr 127.0.0.1:7373 -c 4 -w 2 -s 64 -d 20s -id-prefix dev-load -src-spread=false -json -acked-log /tmp/acked.log -token $TOKEN >/tmp/load.json 2>/tmp/load.err & echo \$! >/tmp/load.pid"
wait_for 20 "9 connections" sh -c "'$SD/in.sh' hawk status -config /etc/hawk/hawk.yaml | grep -qx 'connections 9'"
run dpkg -i /opt/hawk_2.deb || bad "dpkg -i of v2"
inc sh -c 'kill -0 $(cat /tmp/load.pid)' && ok "the load still runs: the upgrade happened under it" || bad "the load ended before the upgrade"
gone "$P1" && ok "old process $P1 had exited when dpkg returned" || bad "old process $P1 still runs"
P2=$(serving_pid)
[[ $(prop MainPID) == "$P2" && $P2 != "$P1" ]] && ok "MainPID followed: $P1 -> $P2" || bad "MainPID=$(prop MainPID), serving: $P2"
[[ $(field version) == 2.0 ]] && ok "version 2.0 serves" || bad "version $(field version)"
handed=$(inc journalctl -u hawk -o cat --no-pager | grep 'handoff finished' | grep "\"pid\":$P1[,}]")
echo "  $handed"
[[ $handed =~ \"moved\":9, ]] && ok "the 9 connections were handed to the new process" || bad "no 'handoff finished' moving the connections from $P1"
wait_for 60 "the load's end" sh -c "! '$SD/in.sh' sh -c 'kill -0 \$(cat /tmp/load.pid)'"
run cat /tmp/load.json
acked=$(inc sh -c 'sort -u /tmp/acked.log' | wc -l)
inc sh -c "cat /var/lib/hawk/spool/* | sed -n 's/^{\"client_id\":\"\\([^\"]*\\)\",\"seq\":\\([0-9]*\\).*/\\1 \\2/p' | sort -u" >"$W/stored"
inc sh -c 'sort -u /tmp/acked.log' >"$W/acked"
lost=$(comm -23 "$W/acked" "$W/stored" | wc -l)
echo "  acked $acked reports, $lost of them not in the spool"
[[ $acked -gt 0 && $lost == 0 ]] && ok "0 reports lost ($acked acked across the upgrade)" || bad "$lost of $acked acked reports lost"
[[ $(field connections) == 5 ]] && ok "the 5 idle agents stayed connected" || bad "connections $(field connections)"

say "3. install v3, whose binary fails to start"
if run dpkg -i /opt/hawk_3.deb; then bad "dpkg -i of a broken build succeeded"; else ok "dpkg -i failed"; fi
run dpkg-query -W -f '${Status} ${Version}\n' hawk
[[ $(inc dpkg-query -W -f '${Status}' hawk) == *half-configured* ]] && ok "the package is half-configured" || bad "package state $(inc dpkg-query -W -f '${Status}' hawk)"
[[ $(prop MainPID) == "$P2" && $(prop ActiveState) == active && $(serving_pid) == "$P2" ]] && ok "MainPID still $P2, active, serving" || bad "v2 is not serving after a failed upgrade"
[[ $(field version) == 2.0 && $(field connections) == 5 ]] && ok "version 2.0 serves its 5 agents" || bad "version $(field version), connections $(field connections)"
inc hawkc send -id dev2 -token "$TOKEN" after-failed-upgrade >/dev/null && ok "a report was acked" || bad "no report acked after the failed upgrade"
idle_stop

say "4. remove"
run dpkg -r hawk || bad "dpkg -r"
show
[[ $(prop ActiveState) == inactive ]] && ok "stopped" || bad "$(prop ActiveState) after a remove"
gone "$P2" && ok "process $P2 gone" || bad "process $P2 still runs"
inc test -e /usr/bin/hawk && bad "/usr/bin/hawk still there" || ok "binaries removed"
inc test -d /var/lib/hawk/spool && inc test -e /etc/hawk/hawk.yaml && inc test -s /etc/hawk/tokens && ok "state, config and credentials kept" || bad "remove deleted state or configuration"

say "5. purge"
run dpkg -P hawk || bad "dpkg -P"
for f in /var/lib/hawk /etc/hawk /run/hawk; do
  inc test -e "$f" && bad "$f still exists after a purge" || ok "$f deleted"
done
run dpkg-query -W hawk && bad "the package is still known" || ok "the package is gone"

summary
