#!/usr/bin/env bash
# promtool, Prometheus' rule checker, taken from Debian's `prometheus` package into one file (scripts/install-promtool.sh
# <dest>): the package is downloaded and unpacked, not installed, so no service, user or config comes with it. Seconds,
# where building it from the Go module proxy took 22 minutes of a cold `make test`. The tests load the alert rules of
# deploy/components/monitoring in it (`promtool check rules`, `promtool test rules`: stable since Prometheus 2).
set -euo pipefail

dest=${1:?usage: install-promtool.sh <dest>}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"  # apt-get download drops to the _apt user where it can
cd "$tmp"
if ! apt-get download -qq prometheus >/dev/null 2>&1; then
    apt-get update -qq >&2  # no package lists yet (a fresh machine)
    apt-get download -qq prometheus >/dev/null
fi
dpkg-deb -x prometheus_*.deb unpacked
mkdir -p "$(dirname "$dest")"
install -m 755 unpacked/usr/bin/promtool "$dest.tmp" && mv "$dest.tmp" "$dest"
"$dest" --version | head -n 1 >&2
