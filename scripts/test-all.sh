#!/usr/bin/env bash
# Install everything, then run every check: lint, the book build (warnings as errors,
# every chapter executed), and one pytest run with the library tests and nbval executing
# every chapter and exercise notebook.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/setup.sh"
cd "$ROOT"
export PYDEVD_DISABLE_FILE_VALIDATION=1

echo "== lint =="
ruff check .
ruff format --check .

echo "== book build =="
jupyter-book build . -W -n --keep-going

echo "== book build without solutions (for teaching) and exercise handouts =="
bash scripts/build-book.sh --no-solutions
export GENPHYS_REQUIRE_BUILDS=1  # the tests of both builds must run, not skip

echo "== the book as one PDF =="
# Where XeLaTeX is installed (bash scripts/install-latex.sh; CI installs it and sets
# GENPHYS_REQUIRE_PDF=1 itself), the PDF is built and tests/test_pdf.py must run, not skip.
if [ "${GENPHYS_REQUIRE_PDF:-0}" != "0" ] || command -v xelatex >/dev/null 2>&1; then
  start=$SECONDS
  bash scripts/build-book.sh --pdf
  echo "PDF built in $((SECONDS - start)) s"
  export GENPHYS_REQUIRE_PDF=1
else
  echo "XeLaTeX is not installed: no PDF, tests/test_pdf.py skips (bash scripts/install-latex.sh)"
fi

echo "== notebooks for nbval =="
rm -rf _build/nbval && mkdir -p _build/nbval
for md in chapters/*.md exercises/*.md; do
  jupytext --quiet --to ipynb --output "_build/nbval/$(basename "${md%.md}").ipynb" "$md"
done

echo "== tests: library, notebooks (nbval), built book =="
# Two pytest workers share the two cores (--dist loadfile keeps every notebook's cells in one
# worker, hence one kernel); one math thread each avoids oversubscription,
# which slows small tensor operations by up to ten times.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
python -m pytest tests _build/nbval --nbval-lax -n "${PYTEST_WORKERS:-2}" --dist loadfile "$@"
