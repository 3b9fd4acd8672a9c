#!/usr/bin/env bash
# Install everything, then run every check: lint, the book build (warnings as errors,
# every chapter executed), the build without solutions, the PDF where XeLaTeX is installed,
# and pytest: the library tests, nbval executing every chapter and exercise notebook, and the
# tests of the built books.
#
# Every notebook is executed once for the books and once, independently, by nbval. The
# books' executions run first, several kernels at once (scripts/execute_notebooks.py fills
# _build/.jupyter_cache; the three builds then only render), and the library tests and nbval
# run beside the builds, which use about one core. Each phase prints its duration.
# PYTEST_WORKERS (default: the CPUs available, as genphys.threads counts them) sets both the
# pytest workers and the kernels that execute the books.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/setup.sh"
cd "$ROOT"
export PYDEVD_DISABLE_FILE_VALIDATION=1
# One torch thread per kernel and per pytest worker: there are as many of them as cores
# (genphys.threads reads GENPHYS_NUM_THREADS; OMP/MKL for NumPy and SciPy).
export GENPHYS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
WORKERS="${PYTEST_WORKERS:-$(python -c 'from genphys.threads import available_cpus as a; print(a())')}"
ALL_START=$SECONDS
LOGS=_build/logs
mkdir -p "$LOGS"

phase_start=0
phase() { echo "== $1 =="; phase_start=$SECONDS; }
phase_end() { echo "-- $1: $((SECONDS - phase_start)) s"; }

phase "lint"
ruff check .
ruff format --check .
phase_end "lint"

phase "notebooks for nbval"
rm -rf _build/nbval && mkdir -p _build/nbval
python - <<'EOF'  # one interpreter for the 40 conversions, not one jupytext process each
from pathlib import Path

import jupytext

for md in sorted([*Path("chapters").glob("*.md"), *Path("exercises").glob("*.md")]):
    jupytext.write(jupytext.read(md), Path("_build/nbval") / f"{md.stem}.ipynb", fmt="ipynb")
EOF
phase_end "notebooks for nbval"

phase "execute the books' notebooks into _build/.jupyter_cache ($WORKERS at once)"
# every page of the book, and the exercise pages without their solutions for the teaching
# build; pages whose code did not change since the last run come from the cache
python scripts/execute_notebooks.py --no-solutions --jobs "$WORKERS"
phase_end "execute the books' notebooks"

# The tests that do not read a built book run now, beside the builds (library tests, and
# nbval executing every chapter and exercise notebook again, independently of the cache).
# --dist loadfile keeps every notebook's cells in one worker, hence one kernel.
BUILT_BOOK_TESTS=(tests/test_book_browser.py tests/test_binder.py tests/test_handouts.py
  tests/test_launchers.py tests/test_pdf.py)
ignore=()
for t in "${BUILT_BOOK_TESTS[@]}"; do ignore+=(--ignore "$t"); done
echo "== tests: library, notebooks (nbval), in the background; log: $LOGS/pytest-library.log =="
(
  start=$SECONDS
  status=0
  python -m pytest tests _build/nbval --nbval-lax -n "$WORKERS" --dist loadfile "${ignore[@]}" \
    "$@" > "$LOGS/pytest-library.log" 2>&1 || status=$?
  echo "-- tests: library, notebooks (nbval): $((SECONDS - start)) s" >> "$LOGS/pytest-library.log"
  exit $status
) &
TESTS_PID=$!
finish_background() {
  local status=0
  wait "$TESTS_PID" || status=$?
  echo "== tests: library, notebooks (nbval) =="
  cat "$LOGS/pytest-library.log"
  return $status
}
# if a build fails, the background tests still finish and are shown before the exit
trap 'finish_background || true' ERR

phase "book build"
jupyter-book build . -W -n --keep-going
phase_end "book build"

phase "book build without solutions (for teaching) and exercise handouts"
bash scripts/build-book.sh --no-solutions
phase_end "book build without solutions"
export GENPHYS_REQUIRE_BUILDS=1  # the tests of both builds must run, not skip

phase "the book as one PDF"
# Where XeLaTeX is installed (bash scripts/install-latex.sh; CI installs it and sets
# GENPHYS_REQUIRE_PDF=1 itself), the PDF is built and tests/test_pdf.py must run, not skip.
if [ "${GENPHYS_REQUIRE_PDF:-0}" != "0" ] || command -v xelatex >/dev/null 2>&1; then
  bash scripts/build-book.sh --pdf
  export GENPHYS_REQUIRE_PDF=1
else
  echo "XeLaTeX is not installed: no PDF, tests/test_pdf.py skips (bash scripts/install-latex.sh)"
fi
phase_end "the book as one PDF"

trap - ERR
phase "tests: the built books (browser, Binder, handouts, launchers, PDF)"
status=0
python -m pytest "${BUILT_BOOK_TESTS[@]}" -n "$WORKERS" --dist loadfile "$@" || status=$?
phase_end "tests: the built books"

library_status=0
finish_background || library_status=$?
echo "-- the test command: $((SECONDS - ALL_START)) s (after the installs)"
[ "$status" -eq 0 ] && [ "$library_status" -eq 0 ]
