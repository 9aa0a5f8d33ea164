#!/usr/bin/env bash
# Builds the `vast` image without pulling anything: a `scratch` image holding the
# release binary, stripped, and exactly the shared libraries it links (as ldd
# reports them). The same path works on machines that do have a registry. The
# image must stay at most 40 MB (VAST_IMAGE_MAX_MB to change the limit).
#
#   deploy/build-image.sh [TAG]        (default vast:latest)
set -euo pipefail
tag=${1:-vast:latest}
root=$(cd "$(dirname "$0")/.." && pwd)
(cd "$root" && cargo build --release -q -p vast)
bin="${CARGO_TARGET_DIR:-$root/target}/release/vast"
max_mb=${VAST_IMAGE_MAX_MB:-40}
stage=$(mktemp -d /tmp/vast-image.XXXXXX)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/rootfs/usr/bin" "$stage/rootfs/tmp" "$stage/rootfs/data" "$stage/rootfs/etc"
# The release profile keeps line tables for backtraces; the image does without.
strip --strip-all -o "$stage/rootfs/usr/bin/vast" "$bin"
# Every library the binary needs, and the dynamic loader itself.
ldd "$bin" | awk '/=>/ { print $3 } $1 ~ /ld-linux/ { print $1 }' | while read -r lib; do
  [ -n "$lib" ] && [ -e "$lib" ] && cp -L --parents "$lib" "$stage/rootfs/"
done
echo 'root:x:0:0:root:/data:/usr/bin/vast' > "$stage/rootfs/etc/passwd"
size_mb=$(( $(du -sb "$stage/rootfs" | cut -f1) / 1000000 ))
if [ "$size_mb" -gt "$max_mb" ]; then
  echo "error: the image would be ${size_mb} MB, over the ${max_mb} MB limit" >&2
  exit 1
fi
cp "$root/deploy/Dockerfile" "$stage/Dockerfile"
docker build -q -t "$tag" "$stage"
echo "built $tag (${size_mb} MB)"
