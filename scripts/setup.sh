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
# Nothing to do when requirements.txt and pyproject.toml are those of the last install (the
# test command sources this file up to three times; pip takes seconds even to do nothing).
STAMP=.venv/.genphys-requirements
wanted="$(cat requirements.txt pyproject.toml | cksum)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$wanted" ]; then
  python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
  # torch is pinned to the CPU build; an unpinned torch pulls a multi-GB CUDA build.
  python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  echo "$wanted" > "$STAMP"
fi
