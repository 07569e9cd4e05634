#!/usr/bin/env bash
# Make PostgreSQL's server binaries (initdb, pg_ctl, postgres) available and print their directory.
#
# Used by tests/conftest.py (which starts a throw-away server for the test session) and by CI on a fresh
# machine. Installs Debian's `postgresql` package only when initdb cannot be found; never hard-codes the
# major version: the binaries live in /usr/lib/postgresql/<version>/bin and the newest one wins.
set -euo pipefail

find_bindir() {
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return 0
    fi
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
        echo "$dir"
        return 0
    fi
    return 1
}

if bindir=$(find_bindir); then
    echo "$bindir"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    SUDO=sudo
else
    SUDO=
fi
echo "postgres.sh: initdb not found; installing Debian's postgresql package" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update >&2
$SUDO apt-get install -y --no-install-recommends postgresql >&2
# The package starts a cluster service on some systems; the tests run their own server, so leave it be.

if bindir=$(find_bindir); then
    echo "$bindir"
    exit 0
fi
echo "postgres.sh: postgresql installed but initdb/pg_ctl still not found under /usr/lib/postgresql/*/bin" >&2
exit 1
