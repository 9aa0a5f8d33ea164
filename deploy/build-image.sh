#!/usr/bin/env bash
# Builds the `vast` image without pulling anything: a `scratch` image holding the
# release binary and exactly the shared libraries it links (as ldd reports them).
# The same path works on machines that do have a registry.
#
#   deploy/build-image.sh [TAG]        (default vast:latest)
set -euo pipefail
tag=${1:-vast:latest}
root=$(cd "$(dirname "$0")/.." && pwd)
(cd "$root" && cargo build --release -q -p vast)
bin="$root/target/release/vast"
stage=$(mktemp -d /tmp/vast-image.XXXXXX)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/rootfs/usr/bin" "$stage/rootfs/tmp" "$stage/rootfs/data" "$stage/rootfs/etc"
cp "$bin" "$stage/rootfs/usr/bin/vast"
# Every library the binary needs, and the dynamic loader itself.
ldd "$bin" | awk '/=>/ { print $3 } $1 ~ /ld-linux/ { print $1 }' | while read -r lib; do
  [ -n "$lib" ] && [ -e "$lib" ] && cp -L --parents "$lib" "$stage/rootfs/"
done
echo 'root:x:0:0:root:/data:/usr/bin/vast' > "$stage/rootfs/etc/passwd"
cp "$root/deploy/Dockerfile" "$stage/Dockerfile"
docker build -q -t "$tag" "$stage"
echo "built $tag"
