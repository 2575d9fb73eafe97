#!/usr/bin/env bash
# Install Debian's chromium for tests/test_site.py (headless browser test of the website), quietly.
# Never fails the CI run: when chromium cannot be installed it says why, and tests/test_site.py then skips
# with a visible reason. Usage: bash .ci/install_chromium.sh
set -uo pipefail

if command -v chromium >/dev/null 2>&1; then
    echo "chromium: already installed ($(chromium --version 2>/dev/null | head -1))"; exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium: NOT installed (no apt-get on this machine); tests/test_site.py will be skipped"; exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"
    else echo "chromium: NOT installed (not root and no passwordless sudo); tests/test_site.py will be skipped"; exit 0; fi
fi
log=$(mktemp)
start=$(date +%s)
if $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1 &&
   $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >>"$log" 2>&1 &&
   command -v chromium >/dev/null 2>&1; then
    echo "chromium: installed in $(( $(date +%s) - start )) s ($(chromium --version 2>/dev/null | head -1))"
else
    echo "chromium: NOT installed (apt-get failed, last lines below); tests/test_site.py will be skipped"
    tail -5 "$log" | sed 's/^/  apt: /'
fi
rm -f "$log"
exit 0
