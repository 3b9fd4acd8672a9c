#!/usr/bin/env bash
# Install everything, then build the HTML book with every chapter executed.
# Warnings are errors (-W -n --keep-going) and a failing cell fails the build.
#
#   bash scripts/build-book.sh                 # the book with collapsed solutions: _build/html
#   bash scripts/build-book.sh --no-solutions  # for teaching: _build/no-solutions/html, and
#                                              # exercise notebooks without solutions in
#                                              # _build/handouts/*.ipynb
#   bash scripts/build-book.sh --pdf           # the whole book as one PDF: _build/latex/book.pdf
#                                              # (needs xelatex: Debian packages texlive-xetex
#                                              # texlive-latex-extra texlive-fonts-recommended
#                                              # texlive-plain-generic latexmk fonts-freefont-otf)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/setup.sh"
cd "$ROOT"
if [ "${1:-}" = "--no-solutions" ]; then
  shift
  COPY="$(mktemp -d)"
  trap 'rm -rf "$COPY"' EXIT
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
  # executed chapters come from _build/.jupyter_cache when the HTML book was built first
  jupyter-book build . --builder pdflatex "$@"
  echo "The book is in _build/latex/book.pdf"
  exit 0
fi
jupyter-book build . -W -n --keep-going "$@"
echo "The book is in _build/html/index.html"
