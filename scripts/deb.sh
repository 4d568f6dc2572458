#!/usr/bin/env bash
# Builds hawk's Debian package into OUTDIR (default dist/): hawk_VERSION_ARCH.deb with
# /usr/bin/hawk (the server), /usr/bin/hawkc (the agent CLI), the systemd unit
# (deploy/hawk.service, with the binaries at /usr/bin), /etc/hawk/hawk.yaml as a
# conffile (deploy/hawk.yaml listening on loopback only; no credentials are shipped)
# and the maintainer scripts of deploy/debian (user, directories, in-place upgrade on
# `dpkg -i`, stop on remove, state deleted on purge).
#
#   scripts/deb.sh [-o OUTDIR] [-v VERSION] [-a ARCH] [-s SERVER]
#
# Reproducible: static binaries built with -trimpath and no build ID, every file time
# the commit's (SOURCE_DATE_EPOCH), owners root, one file order: two builds of one
# commit are the same bytes. VERSION defaults to 0.0~git<commit time>.<commit>;
# ARCH (amd64, arm64) to go env GOARCH. -s packages SERVER instead of building
# cmd/server (deploy/test-deb.sh packages a build that fails to start).
set -euo pipefail
cd "$(dirname "$0")/.."

out=dist
arch=$(go env GOARCH)
epoch=$(git log -1 --format=%ct 2>/dev/null || echo 0)
version=0.0~git$epoch.$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
server=""
while getopts "o:v:a:s:" opt; do
  case $opt in
    o) out=$OPTARG ;;
    v) version=$OPTARG ;;
    a) arch=$OPTARG ;;
    s) server=$OPTARG ;;
    *) echo "usage: $0 [-o OUTDIR] [-v VERSION] [-a ARCH] [-s SERVER]" >&2; exit 2 ;;
  esac
done
command -v dpkg-deb >/dev/null 2>&1 || { apt-get update && apt-get install -y --no-install-recommends dpkg; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
umask 022

build() { # pkg output
  CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -buildvcs=false \
    -ldflags "-s -w -buildid= -X main.version=$version" -o "$2" "$1"
}
install -d "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/hawk" "$root/usr/share/doc/hawk" "$root/DEBIAN"
if [ -n "$server" ]; then install -m 0755 "$server" "$root/usr/bin/hawk"; else build ./cmd/server "$root/usr/bin/hawk"; fi
build ./cmd/client "$root/usr/bin/hawkc"
sed 's|/usr/local/bin/hawk|/usr/bin/hawk|g' deploy/hawk.service >"$root/lib/systemd/system/hawk.service"
{
  echo "# hawk's configuration as the Debian package installs it: deploy/hawk.yaml, listening"
  echo "# on loopback only. /etc/hawk/tokens starts empty: until it names a credential, hawk"
  echo "# serves loopback agents only. Open the listener (listen:) once it does."
  sed 's/^listen: "0.0.0.0:/listen: "127.0.0.1:/' deploy/hawk.yaml
} >"$root/etc/hawk/hawk.yaml"
grep -q '^listen: "127.0.0.1:' "$root/etc/hawk/hawk.yaml" || { echo "deb: the shipped config does not listen on loopback" >&2; exit 1; }
cp LICENSE "$root/usr/share/doc/hawk/copyright"
install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$root/DEBIAN/"
echo /etc/hawk/hawk.yaml >"$root/DEBIAN/conffiles"
cat >"$root/DEBIAN/control" <<CONTROL
Package: hawk
Version: $version
Architecture: $arch
Maintainer: hawk maintainers <hawk@localhost>
Installed-Size: $(du -s --apparent-size -k "$root" --exclude=DEBIAN | cut -f1)
Depends: adduser, systemd
Section: net
Priority: optional
Homepage: https://github.com/hawk-agents/hawk
Description: server for fleets of long-lived agents
 hawk accepts reports from long-lived agents over TCP, stores them durably and
 acknowledges them. It upgrades in place: systemctl reload hawk (and upgrading
 this package) execs the new binary and hands it the listening sockets and the
 established connections, so agents stay connected.
CONTROL
find "$root" -exec touch -h -d "@$epoch" {} +
deb=$out/hawk_${version}_$arch.deb
SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
