#!/usr/bin/env bash
# Makes sure Debian's Chromium is at /usr/bin/chromium for the playground's browser test
# (tests/browser), which drives it with Playwright: `playwright install` and its own browser
# builds are never used. Installs the `chromium` package with apt-get when it is missing (as
# root); does nothing when it is there, so `make test` can run it every time.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "ensure_chromium: $CHROMIUM is missing; install Debian's chromium package (as root: apt-get install chromium)" >&2
    exit 1
fi
echo "ensure_chromium: installing chromium (the playground's browser test drives it)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
"$CHROMIUM" --version
