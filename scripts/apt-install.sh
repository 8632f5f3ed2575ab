#!/usr/bin/env bash
# Installs Debian packages for the project's install scripts: scripts/apt-install.sh <who> <package>...
# Needs root (CI runs as root); otherwise it says what to run and exits 1. `apt-get update` runs only when the
# package lists are over an hour old, so scripts called in a row share one. No service a package ships is started
# (a policy-rc.d for the duration): nothing here runs an init system, and the tests start what they need themselves.
set -euo pipefail

who=${1:?usage: apt-install.sh <who> <package>...}
shift
[[ $# -gt 0 ]] || exit 0
if [[ $(id -u) -ne 0 ]]; then
    echo "$who: missing $*; run as root: apt-get update && apt-get install -y $*" >&2
    exit 1
fi
echo "$who: installing $* from Debian" >&2
export DEBIAN_FRONTEND=noninteractive
if [[ -z $(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -60 2>/dev/null | head -n 1) ]]; then
    apt-get update -qq >&2
fi
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.tenx && chmod +x /usr/sbin/policy-rc.d.tenx
[[ -e /usr/sbin/policy-rc.d ]] || ln -s /usr/sbin/policy-rc.d.tenx /usr/sbin/policy-rc.d
status=0
apt-get install -y -qq --no-install-recommends "$@" >&2 || status=$?
[[ -L /usr/sbin/policy-rc.d && $(readlink /usr/sbin/policy-rc.d) == /usr/sbin/policy-rc.d.tenx ]] && rm -f /usr/sbin/policy-rc.d
rm -f /usr/sbin/policy-rc.d.tenx
exit "$status"
