#!/usr/bin/env bash
# Create .venv (Python 3.11) and install the book, the library and the test tools.
# Sourced by build-book.sh and test-all.sh; safe to run again (it only adds what is missing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
# torch is pinned to the CPU build; an unpinned torch pulls a multi-GB CUDA build.
python -m pip install --quiet --disable-pip-version-check -r requirements.txt
