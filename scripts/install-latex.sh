#!/usr/bin/env bash
# Install XeLaTeX and the tools the PDF test reads the PDF with, from Debian's packages, for
# `bash scripts/build-book.sh --pdf` and tests/test_pdf.py (about 410 MB installed).
# Safe to run again: it does nothing when xelatex, latexmk, pdftotext and the fonts are there.
set -euo pipefail
PACKAGES=(
  texlive-xetex texlive-latex-extra texlive-fonts-recommended texlive-plain-generic latexmk
  # FreeSerif/FreeSans for text (and the few emoji of the outputs), DejaVu Sans Mono for code
  fonts-freefont-otf fonts-dejavu-core
  # pdftotext, pdfinfo, pdfimages for tests/test_pdf.py
  poppler-utils
  # make runs latexmk (the Makefile Sphinx writes)
  make
)
have_fonts() {
  fc-list "FreeSerif" family 2>/dev/null | grep -q . \
    && fc-list "DejaVu Sans Mono" family 2>/dev/null | grep -q .
}
if command -v xelatex >/dev/null 2>&1 && command -v latexmk >/dev/null 2>&1 \
  && command -v pdftotext >/dev/null 2>&1 && command -v make >/dev/null 2>&1 && have_fonts; then
  echo "XeLaTeX is installed: $(xelatex --version | head -n 1)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-latex.sh needs apt-get (Debian/Ubuntu); install TeX Live with XeTeX, latexmk," >&2
  echo "poppler-utils and the FreeFont and DejaVu fonts yourself: ${PACKAGES[*]}" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
start=$SECONDS
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${PACKAGES[@]}" >/dev/null
echo "XeLaTeX is installed ($((SECONDS - start)) s): $(xelatex --version | head -n 1)"
