#!/usr/bin/env bash
# Install headless Chromium and its WebDriver from Debian's packages, for the browser tests
# (pytest marker `browser`: tests/test_book_browser.py, tests/test_binder.py).
# Safe to run again: it does nothing when Chromium and chromedriver are already installed.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  echo "Chromium is installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser.sh needs apt-get (Debian); install Chromium and chromedriver yourself," >&2
  echo "or point GENPHYS_CHROMIUM and GENPHYS_CHROMEDRIVER at them." >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver
echo "Chromium is installed: $(/usr/bin/chromium --version)"
