#!/usr/bin/env bash
# Installs the real node's runtime from Debian's packages (deploy/local/runtime.sh uses them):
# containerd + runc (the container runtime), containernetworking-plugins (bridge/host-local/loopback CNI),
# docker-registry (the local image registry), umoci + skopeo (build and push OCI images),
# busybox-static (the content of the local images), iproute2 (ip netns), util-linux (unshare), iptables (kube-proxy's
# rules, inside the node's network namespace), socat (the node's ports to and from the host, realnode/network.sh).
# Idempotent: apt runs only when a command is missing. Needs root for apt (CI runs as root).
set -euo pipefail

# command -> Debian package
declare -A want=(
    [containerd]=containerd
    [runc]=runc
    [/usr/lib/cni/bridge]=containernetworking-plugins
    [docker-registry]=docker-registry
    [umoci]=umoci
    [skopeo]=skopeo
    [/bin/busybox]=busybox-static
    [ip]=iproute2
    [unshare]=util-linux
    [iptables]=iptables
    [socat]=socat
    [gcc]=gcc
)
missing=()
for cmd in "${!want[@]}"; do
    if [[ $cmd == /* ]]; then
        [[ -x $cmd ]] || missing+=("${want[$cmd]}")
    else
        command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}")
    fi
done
# busybox-static replaces busybox's dynamic binary; a static one is needed inside an image
if [[ -x /bin/busybox ]] && ldd /bin/busybox >/dev/null 2>&1; then  # ldd fails on a static binary
    missing+=(busybox-static)
fi
[[ ${#missing[@]} -eq 0 ]] && exit 0
# shellcheck disable=SC2207
missing=($(printf '%s\n' "${missing[@]}" | sort -u))
# docker-registry and containerd ship init scripts: apt-install.sh keeps them from starting
exec "$(dirname "$0")/apt-install.sh" install-runtime-deps "${missing[@]}"
