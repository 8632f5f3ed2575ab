#!/usr/bin/env bash
# Installs Debian's PostgreSQL server binaries, which the log archive's tests start in a temporary directory.
# Idempotent: does nothing when initdb and pg_ctl are already there. Prints the bin directory on success.
set -euo pipefail

find_bin() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x $dir/initdb && -x $dir/pg_ctl && -x $dir/postgres ]]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

if bin=$(find_bin); then
    echo "$bin"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "install-postgres: PostgreSQL server binaries are missing; run as root: apt-get install -y postgresql" >&2
    exit 1
fi
echo "install-postgres: installing Debian's postgresql package" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq postgresql >&2
bin=$(find_bin) || { echo "install-postgres: initdb/pg_ctl still missing after apt-get install" >&2; exit 1; }
echo "$bin"
