#!/usr/bin/env bash
# Install everything, then build the HTML book with every chapter executed.
# Warnings are errors (-W -n --keep-going) and a failing cell fails the build.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/setup.sh"
cd "$ROOT"
jupyter-book build . -W -n --keep-going "$@"
echo "The book is in _build/html/index.html"
