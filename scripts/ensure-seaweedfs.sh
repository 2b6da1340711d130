#!/usr/bin/env bash
# Builds SeaweedFS's `weed` (a real S3 server, Apache-2.0) once into a cache
# folder outside the tree and prints its path. The object-storage tests start
# `weed mini` on loopback from there (DBOPS_WEED, or this cache path).
# `go install` refuses the module (it has replace directives), so the module
# is downloaded from the Go module proxy and built inside a copy of it.
# About 4 minutes on 2 cores the first time; later runs reuse the binary.
set -euo pipefail
version=v0.0.0-20261109003541-7506e5f91cd6
cache="${XDG_CACHE_HOME:-$HOME/.cache}/dbops/seaweedfs-$version"
if [ -x "$cache/weed" ]; then echo "$cache/weed"; exit 0; fi
mkdir -p "$cache"
dir=$(go mod download -json "github.com/seaweedfs/seaweedfs@$version" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] || { echo "go mod download of seaweedfs $version failed" >&2; exit 1; }
src=$(mktemp -d)
trap 'chmod -R u+w "$src"; rm -rf "$src"' EXIT
cp -r "$dir/." "$src/"
chmod -R u+w "$src"
echo "building seaweedfs weed $version into $cache (once; a few minutes)" >&2
(cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags '-s -w' -o "$cache/weed.tmp" ./weed)
mv "$cache/weed.tmp" "$cache/weed"
echo "$cache/weed"
