#!/usr/bin/env bash
# Create the Binder environment locally, from binder/requirements.txt as repo2docker installs
# it (from the repository root), for tests/test_binder.py, which serves JupyterLab from it:
#
#   bash scripts/binder-env.sh                      # -> _build/binder-venv
#   bash scripts/binder-env.sh --jupyter-only .venv # only the Jupyter packages of
#       binder/requirements.txt; torch, numpy, ... and genphys are taken from the given
#       environment's site-packages (a .pth file): for machines without PyTorch's index
#
# $GENPHYS_BINDER_VENV overrides the location; tests/test_binder.py finds _build/binder-venv
# (or $GENPHYS_BINDER_PYTHON). The book's own .venv is not used for JupyterLab: Binder pins
# JupyterLab and jupyterlab-myst together, and the test must see exactly that pair.
# Needs the network (PyPI; PyTorch's CPU index without --jupyter-only). Safe to run again.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${GENPHYS_BINDER_VENV:-$ROOT/_build/binder-venv}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
REUSE=""
if [ "${1:-}" = "--jupyter-only" ]; then
  REUSE="$(cd "${2:?--jupyter-only needs the environment that provides torch and genphys}" && pwd)"
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
pip_install() {
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
}
pip_install --upgrade "pip>=24"
if [ -z "$REUSE" ]; then
  pip_install -r binder/requirements.txt
else
  # the lines of binder/requirements.txt that are neither torch, nor the book, nor an index
  grep -vE '^\s*(#|$|-e |--|torch\b)' binder/requirements.txt | sed 's/\s*#.*//' \
    > "$VENV/jupyter-requirements.txt"
  pip_install -r "$VENV/jupyter-requirements.txt"
  site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  other="$("$REUSE/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  # appended after this environment's own packages: its JupyterLab wins
  printf '%s\n%s\n' "$ROOT/lib" "$other" > "$site/zz-genphys-reuse.pth"
fi
"$VENV/bin/jupyter" labextension list 2>&1 | sed 's/\x1b\[[0-9;]*m//g'
echo "The Binder environment is $VENV; its Python: $VENV/bin/python"
