#!/bin/sh
# The gateway image's contents, one script for both ways of building it, so that both give the same image: the
# Dockerfile runs it in its final stage, deploy/image/build.sh (make image) in a chroot of the Debian base that
# mmdebstrap made. Run as root inside the image being built:
#
#   install.sh system PACKAGES_FILE      the Debian packages the file lists (apt, only those not installed yet: in
#                                        make image mmdebstrap has installed them), the user gateway (UID/GID 10001)
#                                        and the log archive's directory /var/lib/tenx-gateway
#   install.sh python WHEELS_DIR [deps|app|all]
#                                        the wheels of WHEELS_DIR, never the network, with the pip wheel found there
#                                        (pip itself is not installed): deps = every wheel but tenx-gateway's,
#                                        app = tenx-gateway on those, then `pip check`; all (the default) = both
#
# Python packages go to /usr/local (Debian's python3.11 puts them in /usr/local/lib/python3.11/dist-packages and
# their scripts in /usr/local/bin); no Debian Python library is installed, so --break-system-packages breaks none.
# With SOURCE_DATE_EPOCH set, the .pyc files pip writes are hash-based (py_compile), so they do not depend on when
# the files were written.
set -eu

GATEWAY_UID=10001
DATA_DIR=/var/lib/tenx-gateway
PYTHON=/usr/bin/python3.11

die() { echo "install.sh: $*" >&2; exit 1; }

system() {
    packages=$(sed -e 's/#.*//' "$1" | tr -s ' \n' ' ')
    missing=
    for p in $packages; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q ' installed$' || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $missing
        apt-get clean
        rm -rf /var/lib/apt/lists/*
    fi
    # no home (HOME=/tmp in the image's environment: the root filesystem is read-only in the pod)
    groupadd --system --gid "$GATEWAY_UID" gateway
    useradd --system --uid "$GATEWAY_UID" --gid "$GATEWAY_UID" --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin gateway
    install -d -o "$GATEWAY_UID" -g "$GATEWAY_UID" -m 0750 "$DATA_DIR"
}

python_wheels() {
    wheels=$1 which=${2:-all}
    set -- "$wheels"/pip-*.whl
    [ -f "$1" ] || die "no pip wheel in $wheels"
    # pip runs from its wheel (a zip on sys.path): the image gets what it installs, not pip
    pip="$PYTHON $1/pip"
    opts="--no-index --find-links $wheels --break-system-packages --root-user-action=ignore --no-cache-dir
          --disable-pip-version-check --no-warn-script-location --progress-bar off --quiet"
    if [ "$which" = deps ] || [ "$which" = all ]; then
        # name==version of every wheel but pip and the gateway (a wheel's file name: NAME-VERSION-TAGS.whl);
        # installed by name, not by path, so that pip records no direct_url.json for them
        requirements=$(for w in "$wheels"/*.whl; do
            basename "$w" | awk -F- '$1 != "pip" && $1 != "tenx_gateway" {print $1 "==" $2}'
        done)
        # shellcheck disable=SC2086
        [ -z "$requirements" ] || $pip install $opts --no-deps $requirements
    fi
    if [ "$which" = app ] || [ "$which" = all ]; then
        # shellcheck disable=SC2086
        $pip install $opts tenx-gateway
        # shellcheck disable=SC2086
        $pip check --disable-pip-version-check
    fi
}

case "${1:-}" in
    system) [ $# -eq 2 ] || die "usage: install.sh system PACKAGES_FILE"; system "$2" ;;
    python) [ $# -ge 2 ] || die "usage: install.sh python WHEELS_DIR [deps|app|all]"; python_wheels "$2" "${3:-all}" ;;
    *) die "usage: install.sh system PACKAGES_FILE | python WHEELS_DIR [deps|app|all]" ;;
esac
