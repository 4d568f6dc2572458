#!/usr/bin/env bash
# Builds hawk's container image with podman (Debian's package), offline: a static
# binary and a scratch image.
#
#   deploy/container/build.sh [-t TAG] [-v VERSION]
set -euo pipefail
cd "$(dirname "$0")/../.."
tag=localhost/hawk:dev
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
while getopts "t:v:" opt; do
  case $opt in
    t) tag=$OPTARG ;;
    v) version=$OPTARG ;;
    *) echo "usage: $0 [-t TAG] [-v VERSION]" >&2; exit 2 ;;
  esac
done
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root=$ctx/rootfs
install -d "$root/usr/local/bin" "$root/etc/hawk" "$root/tmp"
install -d -m 0750 "$ctx/state"   # /var/lib/hawk, given to hawk by the Dockerfile
CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w -buildid= -X main.version=$version" \
  -o "$root/usr/local/bin/hawk" ./cmd/server
install -m 0644 deploy/container/hawk.yaml "$root/etc/hawk/hawk.yaml"
# A passwd and group naming the user, for tools that print names.
printf 'root:x:0:0::/:/sbin/nologin\nhawk:x:10001:10001::/var/lib/hawk:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nhawk:x:10001:\n' >"$root/etc/group"
cp deploy/container/Dockerfile "$ctx/Dockerfile"
podman build --network=none -t "$tag" "$ctx"
