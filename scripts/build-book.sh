#!/usr/bin/env bash
# Install everything, then build the HTML book with every chapter executed.
# Warnings are errors (-W -n --keep-going) and a failing cell fails the build. The pages are
# executed first, as many at once as there are cores, into _build/.jupyter_cache
# (scripts/execute_notebooks.py; pages whose code did not change are not executed again), so
# that jupyter-book only renders.
#
#   bash scripts/build-book.sh                 # the book with collapsed solutions: _build/html
#   bash scripts/build-book.sh --no-solutions  # for teaching: _build/no-solutions/html, and
#                                              # exercise notebooks without solutions in
#                                              # _build/handouts/*.ipynb
#   bash scripts/build-book.sh --pdf           # the whole book as one PDF (A4; --pdf --letter for
#                                              # US Letter): _build/latex/book.pdf,
#                                              # copied to _build/html/book.pdf for the site
#                                              # (needs XeLaTeX: bash scripts/install-latex.sh)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/setup.sh"
cd "$ROOT"
if [ "${1:-}" = "--no-solutions" ]; then
  shift
  COPY="$(mktemp -d)"
  trap 'rm -rf "$COPY"' EXIT
  python scripts/execute_notebooks.py --no-solutions
  # a copy of the sources with every solution block removed from the exercise pages
  python scripts/strip_solutions.py book --out "$COPY/book"
  # unchanged chapters reuse the executed notebooks of the full build, if there is one
  if [ -d _build/.jupyter_cache ]; then
    mkdir -p "$COPY/book/_build" && cp -r _build/.jupyter_cache "$COPY/book/_build/"
  fi
  jupyter-book build "$COPY/book" -W -n --keep-going "$@"
  rm -rf _build/no-solutions && mkdir -p _build/no-solutions
  cp -r "$COPY/book/_build/html" _build/no-solutions/html
  python scripts/strip_solutions.py handouts --out _build/handouts
  echo "The book without solutions is in _build/no-solutions/html/index.html;"
  echo "the exercise notebooks without solutions are in _build/handouts/."
  exit 0
fi
if [ "${1:-}" = "--pdf" ]; then
  shift
  # A4 by default; --letter for US Letter (_ext/latex_book.py reads GENPHYS_PAPER)
  if [ "${1:-}" = "--letter" ]; then
    shift
    export GENPHYS_PAPER=letter
  fi
  if ! command -v xelatex >/dev/null 2>&1; then
    echo "The PDF needs XeLaTeX: bash scripts/install-latex.sh" >&2
    exit 1
  fi
  python scripts/execute_notebooks.py
  # executed chapters come from _build/.jupyter_cache (filled above, or by the HTML build);
  # warnings are errors, as for the HTML book (tests/test_pdf.py reads the LaTeX log for
  # missing glyphs and undefined references)
  jupyter-book build . --builder pdflatex -W -n --keep-going "$@"
  # the published site links book.pdf from its intro page
  if [ -d _build/html ]; then
    cp _build/latex/book.pdf _build/html/book.pdf
  fi
  echo "The book is in _build/latex/book.pdf"
  exit 0
fi
python scripts/execute_notebooks.py
jupyter-book build . -W -n --keep-going "$@"
echo "The book is in _build/html/index.html"
