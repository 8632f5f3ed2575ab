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
"$(dirname "$0")/apt-install.sh" install-postgres postgresql
bin=$(find_bin) || { echo "install-postgres: initdb/pg_ctl still missing after apt-get install" >&2; exit 1; }
echo "$bin"
