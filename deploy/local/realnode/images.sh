#!/usr/bin/env bash
# Builds the real node's image contents as OCI layouts (umoci), one per content, tag `latest`:
#   pause    /pause, compiled with `gcc -static` from the pause.c of the Kubernetes release in the Go module cache
#   busybox  Debian's busybox-static with a symlink per applet in /bin, /etc/passwd and /etc/group for root,
#            /tmp; PATH set, no entrypoint (Cmd sh)
#   perl_job busybox with a label of its own (the seed's index.tenxcloud.com/tenxcloud/perl_job:latest)
# Usage: images.sh OUT_DIR PAUSE_C. Rebuilds only when an input changed (stamp in OUT_DIR).
set -euo pipefail
out="$1" pause_c="$2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
stamp="$(cat "$0" "$pause_c" /bin/busybox | sha256sum | cut -c1-64)"
[ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ] && exit 0
command -v umoci >/dev/null && ! ldd /bin/busybox >/dev/null 2>&1 \
  || { echo "images.sh: needs umoci and busybox-static (scripts/install-runtime-deps.sh)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
tmp="$(mktemp -d "${out%/}.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

image() {  # NAME: new layout $tmp/NAME, unpacked into $tmp/NAME.b; the caller fills rootfs then calls finish
  umoci init --layout "$tmp/$1"
  umoci new --image "$tmp/$1:latest"
  umoci unpack --image "$tmp/$1:latest" "$tmp/$1.b" >/dev/null
}
finish() {  # NAME CONFIG-OPTIONS...
  local name="$1"; shift
  umoci repack --image "$tmp/$name:latest" "$tmp/$name.b"
  umoci config --image "$tmp/$name:latest" --os linux --architecture amd64 "$@"
  rm -rf "$tmp/$name.b"
}

image pause
gcc -Os -static -DVERSION=3.10.1 -o "$tmp/pause.b/rootfs/pause" "$pause_c"
strip "$tmp/pause.b/rootfs/pause"
finish pause --config.entrypoint /pause

image busybox
r="$tmp/busybox.b/rootfs"
mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/root"
chmod 1777 "$r/tmp"
cp /bin/busybox "$r/bin/busybox"
for applet in $(/bin/busybox --list); do [ -e "$r/bin/$applet" ] || ln -s busybox "$r/bin/$applet"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$r/etc/passwd"
echo 'root:x:0:' > "$r/etc/group"
finish busybox --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --config.cmd sh

# the seed's image: the same busybox files under its own config (a label), so it is an image of its own (the CRI
# reports an image by the first name of its digest: with one digest, pods of perl_job would say busybox)
cp -a "$tmp/busybox" "$tmp/perl_job"
umoci config --image "$tmp/perl_job:latest" --config.label org.opencontainers.image.title=tenxcloud/perl_job \
  --config.label org.opencontainers.image.description="busybox-static under the seed job's image name (no perl)"

rm -rf "$out"
mkdir -p "$out"
mv "$tmp/pause" "$tmp/busybox" "$tmp/perl_job" "$out/"
echo "$stamp" > "$out/.stamp"
