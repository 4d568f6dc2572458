#!/usr/bin/env bash
# Builds hawk's release archives into OUTDIR (default dist/): for every OS and
# architecture agents run on, hawkc (the agent CLI) and the README/LICENSE; for Linux,
# hawk (the server, Linux-only) too. tar.gz for linux/darwin, zip for windows, and
# SHA256SUMS over the archives. The binaries are static (CGO_ENABLED=0) and
# reproducible: -trimpath, no build ID, file times and owners fixed in the archives.
#
#   scripts/release.sh [-o OUTDIR] [-v VERSION]
#
# VERSION defaults to `git describe --tags --always --dirty`.
set -euo pipefail
cd "$(dirname "$0")/.."

out=dist
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
while getopts "o:v:" opt; do
  case $opt in
    o) out=$OPTARG ;;
    v) version=$OPTARG ;;
    *) echo "usage: $0 [-o OUTDIR] [-v VERSION]" >&2; exit 2 ;;
  esac
done
command -v zip >/dev/null 2>&1 || { apt-get update && apt-get install -y --no-install-recommends zip; }

# The commit's time, so that archives built twice from one commit are identical.
epoch=$(git log -1 --format=%ct 2>/dev/null || echo 0)
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build() { # goos goarch pkg name dir
  CGO_ENABLED=0 GOOS=$1 GOARCH=$2 go build -trimpath -buildvcs=false \
    -ldflags "-s -w -buildid= -X main.version=$version" -o "$5/$4" "$3"
}

for target in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64; do
  goos=${target%/*} goarch=${target#*/}
  name=hawk-$version-$goos-$goarch
  dir=$work/$name
  mkdir -p "$dir"
  exe=""; [ "$goos" = windows ] && exe=.exe
  build "$goos" "$goarch" ./cmd/client "hawkc$exe" "$dir"
  [ "$goos" = linux ] && build "$goos" "$goarch" ./cmd/server hawk "$dir"
  cp README.md LICENSE "$dir/"
  find "$dir" -exec touch -h -d "@$epoch" {} +
  if [ "$goos" = windows ]; then
    (cd "$work" && find "$name" | LC_ALL=C sort | TZ=UTC zip -X -q "$out/$name.zip" -@)
  else
    tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
      -cf - "$name" | gzip -n >"$out/$name.tar.gz"
  fi
done
(cd "$out" && sha256sum hawk-"$version"-*.tar.gz hawk-"$version"-*.zip >SHA256SUMS)
cat "$out/SHA256SUMS"
