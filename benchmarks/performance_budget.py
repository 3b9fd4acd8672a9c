"""Check the book against its performance budget (Binder-sized chapters, a bounded build).

Every chapter and exercise page (``chapters/*.md``, ``exercises/*.md``) is converted with
Jupytext and executed with nbclient on ONE core, the way a reader runs it on Binder: the
kernel inherits a CPU affinity of one core (``os.sched_setaffinity``, as ``taskset -c 0``),
matplotlib draws with its inline backend, and the working directory is the page's folder.
For each page the script measures the wall time from kernel start to the last cell and the
peak resident memory of the kernel (``ru_maxrss`` of the kernel process and of any process
it started, read in the kernel once the page has run, and a psutil poll of the kernel's
process tree every 50 ms as a cross-check).

Optionally (``--book``, ``--test-command``) it times a fresh build of the whole book into a
temporary folder and the full test command, both on every core.

Targets: each page <= 60 s and <= 1.5 GB on one core; book build <= 8 min; test command
<= 20 min. Rows over budget are marked ``OVER``; with ``--strict`` the exit status is 1 when
any row is over budget or failed.

    python benchmarks/performance_budget.py                      # every page
    python benchmarks/performance_budget.py chapters/02_*.md     # some pages
    python benchmarks/performance_budget.py --book --test-command
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import jupytext
import psutil
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

ROOT = Path(__file__).resolve().parents[1]
PAGE_BUDGET_S = 60.0
PAGE_BUDGET_MB = 1536.0  # 1.5 GB
BOOK_BUDGET_S = 8 * 60.0
TESTS_BUDGET_S = 20 * 60.0

# Appended to each page once it has run: the kernel's own peak memory (kB on Linux).
PEAK_MEMORY_CELL = """\
import resource as _resource
print("__PEAK_KB__", _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss,
      _resource.getrusage(_resource.RUSAGE_CHILDREN).ru_maxrss)
"""


@dataclass
class Row:
    """One measured item of the budget table."""

    name: str
    wall_s: float
    peak_mb: float | None
    budget_s: float
    budget_mb: float | None
    status: str  # "ok", "OVER" or "FAILED: ..."


class TreePeak:
    """Poll the resident memory of a process tree in a thread; keep the largest total."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid, self.interval, self.peak_bytes = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            total = 0
            try:
                for proc in [root, *root.children(recursive=True)]:
                    try:
                        total += proc.memory_info().rss
                    except psutil.NoSuchProcess:
                        pass
            except psutil.NoSuchProcess:
                return
            self.peak_bytes = max(self.peak_bytes, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def run_page(path: Path, core: int, timeout: int) -> Row:
    """Execute one page on one core; return its wall time and peak memory."""
    notebook = jupytext.read(path)
    notebook.cells.append(jupytext.reads(PEAK_MEMORY_CELL, fmt="py:percent").cells[0])
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # inline figures
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        allow_errors=False,
    )
    name = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
    status, peak_mb = "ok", None
    start = time.perf_counter()
    previous_affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})  # the kernel inherits it, as under `taskset -c CORE`
    try:
        with client.setup_kernel(env=env, cwd=str(path.parent)):
            os.sched_setaffinity(0, previous_affinity)
            pid = client.km.provisioner.process.pid
            with TreePeak(pid) as tree:
                try:
                    client.execute(cleanup_kc=False)
                except (CellExecutionError, CellTimeoutError) as error:
                    status = f"FAILED: {str(error).strip().splitlines()[-1][:100]}"
            wall = time.perf_counter() - start
            peak_mb = tree.peak_bytes / 2**20
            for output in notebook.cells[-1].get("outputs", []):
                text = output.get("text", "")
                if "__PEAK_KB__" in text:
                    self_kb, children_kb = map(int, text.split("__PEAK_KB__", 1)[1].split()[:2])
                    peak_mb = max(peak_mb, (self_kb + children_kb) / 1024)
    finally:
        os.sched_setaffinity(0, previous_affinity)
    if status == "ok" and (wall > PAGE_BUDGET_S or (peak_mb or 0) > PAGE_BUDGET_MB):
        status = "OVER"
    return Row(name, wall, peak_mb, PAGE_BUDGET_S, PAGE_BUDGET_MB, status)


def run_command(name: str, command: list[str], budget_s: float) -> Row:
    """Time a command on every core; its output goes to a log file beside the results."""
    log_dir = ROOT / "benchmarks" / "results"
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name.split()[0]}.log"
    start = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        status = f"FAILED: exit {process.returncode} (log: {log.relative_to(ROOT)})"
    else:
        status = "OVER" if wall > budget_s else "ok"
    return Row(name, wall, None, budget_s, None, status)


def print_table(rows: list[Row]) -> None:
    print(f"{'item':<48} {'time [s]':>9} {'budget':>7} {'peak MB':>8} {'budget':>7}  status")
    for row in rows:
        peak = f"{row.peak_mb:8.0f}" if row.peak_mb is not None else f"{'-':>8}"
        budget_mb = f"{row.budget_mb:7.0f}" if row.budget_mb is not None else f"{'-':>7}"
        print(
            f"{row.name:<48} {row.wall_s:9.1f} {row.budget_s:7.0f} {peak} {budget_mb}  {row.status}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "pages", nargs="*", help="pages to run (default: every chapter and exercise)"
    )
    parser.add_argument("--core", type=int, default=0, help="the one core pages run on (0)")
    parser.add_argument("--timeout", type=int, default=600, help="per-cell timeout in s (600)")
    parser.add_argument("--book", action="store_true", help="also time a fresh book build")
    parser.add_argument("--test-command", action="store_true", help="also time test-all.sh")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON to this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 if anything is over")
    args = parser.parse_args(argv)

    patterns = args.pages or ["chapters/*.md", "exercises/*.md"]
    pages = sorted({Path(p).resolve() for pat in patterns for p in glob.glob(str(ROOT / pat))})
    pages += [Path(p).resolve() for p in args.pages if Path(p).is_file()]
    pages = sorted(set(pages))
    load_before = os.getloadavg()
    print(
        f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load_before[0]:.2f} (1 min) before the run; pages on core {args.core}"
    )
    rows = []
    for page in pages:
        row = run_page(page, args.core, args.timeout)
        print(f"  {row.name}: {row.wall_s:.1f} s, {row.peak_mb or 0:.0f} MB, {row.status}")
        rows.append(row)
    if args.book:
        out = tempfile.mkdtemp(prefix="genphys-book-")
        command = ["jupyter-book", "build", ".", "-W", "-n", "--keep-going", "--path-output", out]
        command[0] = str(Path(sys.executable).with_name("jupyter-book"))
        rows.append(run_command("book build (fresh, every core)", command, BOOK_BUDGET_S))
    if args.test_command:
        rows.append(
            run_command(
                "test command (scripts/test-all.sh)",
                ["bash", "scripts/test-all.sh"],
                TESTS_BUDGET_S,
            )
        )
    print()
    print_table(rows)
    load_after = os.getloadavg()
    print(f"\nload average {load_after[0]:.2f} (1 min) after the run")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    bad = [r for r in rows if r.status != "ok"]
    return 1 if args.strict and bad else 0


if __name__ == "__main__":
    sys.exit(main())
