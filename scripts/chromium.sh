#!/usr/bin/env bash
# Make Debian's headless-capable Chromium available at /usr/bin/chromium and print its path.
#
# Used by the dashboard's browser test (tests/dashboard/test_dashboard_browser.py) and by `make test` on a
# fresh machine. Installs Debian's `chromium` package only when /usr/bin/chromium is missing; the test skips
# (saying why) only when this script cannot install it.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [[ -x "$CHROMIUM" ]]; then
    echo "$CHROMIUM"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    SUDO=sudo
else
    SUDO=
fi
echo "chromium.sh: $CHROMIUM not found; installing Debian's chromium package" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update >&2
$SUDO apt-get install -y chromium >&2

if [[ -x "$CHROMIUM" ]]; then
    echo "$CHROMIUM"
    exit 0
fi
echo "chromium.sh: the chromium package installed but $CHROMIUM is missing" >&2
exit 1
