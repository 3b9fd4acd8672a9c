#!/usr/bin/env bash
# Install headless Chromium and its WebDriver (Debian/Ubuntu packages) for the browser tests
# (pytest marker `browser`). Safe to run again: does nothing when Chromium is already there.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  echo "Chromium is installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
if apt-cache show chromium >/dev/null 2>&1 && apt-cache show chromium-driver >/dev/null 2>&1; then
  # Debian names.
  $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver
else
  # Ubuntu ships Chromium as a snap; its deb package is chromium-browser.
  $SUDO apt-get install -y -qq --no-install-recommends chromium-browser chromium-chromedriver
fi
echo "Chromium is installed: $(command -v chromium || command -v chromium-browser)"
