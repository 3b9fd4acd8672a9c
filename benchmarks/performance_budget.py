"""Check the book against its performance budget (Binder-sized chapters, a bounded build).

Every chapter and exercise page (``chapters/*.md``, ``exercises/*.md``) is converted with
Jupytext and executed with nbclient the way readers meet it, in two settings:

* ``one-core``: the kernel inherits a CPU affinity of one core (``os.sched_setaffinity``, as
  ``taskset -c 0``), as on Binder's quota of about one core;
* ``busy``: the kernel may use every core and takes the library's thread default
  (:mod:`genphys.threads`: the cgroup quota, the affinity mask, ``GENPHYS_NUM_THREADS``), while
  another process keeps one core busy (``python -c 'while True: pass'``), as on a laptop that
  runs other work, or a CI machine with two test workers.

Matplotlib draws with its inline backend and the working directory is the page's folder. For
each page the script measures the wall time from kernel start to the last cell and the peak
resident memory of the kernel (``ru_maxrss`` of the kernel process and of any process it
started, read in the kernel once the page has run, and a psutil poll of the kernel's process
tree every 50 ms as a cross-check), and reads back the kernel's torch threads and whether the
page imported ``torch._dynamo`` (which the first ``torch.optim`` optimiser of a process does).

The exercise pages run the checks of every exercise (``checks.<name>(...)``, and
``show_solution(...)``, which proves that the reference solution passes its check) and the
projects' goals (``show_solution("project_x", "<goal>")``: the whole trainer against its exact
number); each of those cells is timed (nbclient's execution timestamps) and listed in a second
table, the goals marked.

Optionally (``--book``, ``--test-command``) it times a fresh build of the whole book into a
temporary folder and the full test command, both on every core.

Targets: each page <= 60 s and <= 1.5 GB in both settings; book build <= 8 min; test command
<= 15 min. Rows over budget are marked ``OVER``; with ``--strict`` the exit status is 1 when
any row is over budget or failed.

    python benchmarks/performance_budget.py                      # every page, both settings
    python benchmarks/performance_budget.py chapters/02_*.md     # some pages
    python benchmarks/performance_budget.py --settings one-core  # one setting
    python benchmarks/performance_budget.py --book --test-command
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import jupytext
import psutil
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

ROOT = Path(__file__).resolve().parents[1]
PAGE_BUDGET_S = 60.0
PAGE_BUDGET_MB = 1536.0  # 1.5 GB
BOOK_BUDGET_S = 8 * 60.0
TESTS_BUDGET_S = 15 * 60.0
SETTINGS = ("one-core", "busy")

# Appended to each page once it has run: the kernel's own peak memory (kB on Linux).
# Also the kernel's torch threads and whether the page imported torch._dynamo.
PEAK_MEMORY_CELL = """\
import resource as _resource, sys as _sys
print("__PEAK_KB__", _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss,
      _resource.getrusage(_resource.RUSAGE_CHILDREN).ru_maxrss,
      _sys.modules["torch"].get_num_threads() if "torch" in _sys.modules else 0,
      int("torch._dynamo" in _sys.modules))
"""
# The cells that run a check (a student's answer or the reference) or a project's goal.
CHECK_CALL = re.compile(r"(?:checks\.(\w+)\(|show_solution\(\s*\"(\w+)\",\s*\"(\w+)\"\))")


@dataclass
class Row:
    """One measured item of the budget table."""

    name: str
    wall_s: float
    peak_mb: float | None
    budget_s: float
    budget_mb: float | None
    status: str  # "ok", "OVER" or "FAILED: ..."
    threads: int | None = None  # torch threads in the kernel at the end of the page
    dynamo: bool | None = None  # the page imported torch._dynamo (a torch.optim optimiser)


@dataclass
class CheckRow:
    """One timed check or goal cell of an exercise page."""

    page: str
    setting: str
    name: str
    goal: bool
    wall_s: float


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


def _goal_names() -> set[tuple[str, str]]:
    """``(module, name)`` of every project goal (``GOALS`` of ``genphys.exercises``)."""
    from genphys.exercises import all_goals

    return {(module, goal.name) for module, goals in all_goals().items() for goal in goals}


def _cell_seconds(cell: dict) -> float | None:
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return None
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def check_rows(notebook, page: str, setting: str, goals: set[tuple[str, str]]) -> list[CheckRow]:
    """The timed check and goal cells of an executed page."""
    rows = []
    for cell in notebook.cells:
        if cell.get("cell_type") != "code":
            continue
        calls = CHECK_CALL.findall(cell.get("source", ""))
        seconds = _cell_seconds(cell)
        if not calls or seconds is None:
            continue
        names, goal = [], False
        for student, module, reference in calls:
            if student:
                names.append(f"checks.{student}")
            else:
                names.append(f"{module}.{reference} (reference)")
                goal = goal or (module, reference) in goals
        rows.append(CheckRow(page, setting, ", ".join(names), goal, seconds))
    return rows


class BusyCore:
    """A process that keeps one core busy (``python -c 'while True: pass'``) while in use."""

    def __enter__(self) -> BusyCore:
        self.process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.kill()
        self.process.wait()


def run_page(
    path: Path, setting: str, core: int, timeout: int, goals: set[tuple[str, str]]
) -> tuple[Row, list[CheckRow]]:
    """Execute one page in one setting; return its row and its timed checks.

    ``one-core``: the kernel is pinned to ``core``; ``busy``: the kernel may use every core
    (the library's thread default) while another process keeps one core busy.
    """
    notebook = jupytext.read(path)
    notebook.cells.append(jupytext.reads(PEAK_MEMORY_CELL, fmt="py:percent").cells[0])
    # inline figures; the library's thread default, not the caller's pinning
    drop = {"MPLBACKEND", "GENPHYS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        allow_errors=False,
        record_timing=True,
    )
    name = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
    status, peak_mb, threads, dynamo = "ok", None, None, None
    previous_affinity = os.sched_getaffinity(0)
    busy = BusyCore() if setting == "busy" else contextlib.nullcontext()
    with busy:
        start = time.perf_counter()
        if setting == "one-core":
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
                        fields = text.split("__PEAK_KB__", 1)[1].split()
                        self_kb, children_kb, n_threads, imported = map(int, fields[:4])
                        peak_mb = max(peak_mb, (self_kb + children_kb) / 1024)
                        threads, dynamo = n_threads, bool(imported)
        finally:
            os.sched_setaffinity(0, previous_affinity)
    if status == "ok" and (wall > PAGE_BUDGET_S or (peak_mb or 0) > PAGE_BUDGET_MB):
        status = "OVER"
    label = f"{name} [{setting}]"
    row = Row(label, wall, peak_mb, PAGE_BUDGET_S, PAGE_BUDGET_MB, status, threads, dynamo)
    return row, check_rows(notebook, name, setting, goals)


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
    print(
        f"{'item':<60} {'time [s]':>9} {'budget':>7} {'peak MB':>8} {'budget':>7} "
        f"{'threads':>7} {'optim':>5}  status"
    )
    for row in rows:
        peak = f"{row.peak_mb:8.0f}" if row.peak_mb is not None else f"{'-':>8}"
        budget_mb = f"{row.budget_mb:7.0f}" if row.budget_mb is not None else f"{'-':>7}"
        threads = f"{row.threads:7d}" if row.threads is not None else f"{'-':>7}"
        dynamo = {None: "-", True: "yes", False: "no"}[row.dynamo]
        print(
            f"{row.name:<60} {row.wall_s:9.1f} {row.budget_s:7.0f} {peak} {budget_mb} "
            f"{threads} {dynamo:>5}  {row.status}"
        )


def print_checks(rows: list[CheckRow]) -> None:
    """Per page and setting: its check cells, their total and the slowest; every goal."""
    print(f"{'page':<44} {'setting':<9} {'checks':>6} {'all [s]':>8} {'max [s]':>8}  slowest")
    groups: dict[tuple[str, str], list[CheckRow]] = {}
    for row in rows:
        groups.setdefault((row.page, row.setting), []).append(row)
    for (page, setting), these in groups.items():
        slowest = max(these, key=lambda r: r.wall_s)
        total = sum(r.wall_s for r in these)
        print(
            f"{page:<44} {setting:<9} {len(these):6d} {total:8.2f} {slowest.wall_s:8.2f}  "
            f"{slowest.name}"
        )
    goals = [r for r in rows if r.goal]
    if goals:
        print("\nproject goals (the reference trainer or study, checked against its exact number):")
        for row in goals:
            print(f"  {row.page:<42} {row.setting:<9} {row.wall_s:8.1f} s  {row.name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "pages", nargs="*", help="pages to run (default: every chapter and exercise)"
    )
    parser.add_argument(
        "--settings",
        default=",".join(SETTINGS),
        help="comma-separated: one-core (pinned to --core), busy (the thread default while "
        "another process keeps a core busy); default both",
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
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown or not settings:
        parser.error(
            f"--settings must be among {', '.join(SETTINGS)}. Got {args.settings!r} instead."
        )
    load_before = os.getloadavg()
    print(
        f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load_before[0]:.2f} (1 min) before the run; settings "
        f"{', '.join(settings)} (one-core on core {args.core})"
    )
    goals = _goal_names()
    rows, checks = [], []
    for page in pages:
        for setting in settings:
            row, page_checks = run_page(page, setting, args.core, args.timeout, goals)
            print(
                f"  {row.name}: {row.wall_s:.1f} s, {row.peak_mb or 0:.0f} MB, "
                f"{row.threads} thread(s), {row.status}",
                flush=True,
            )
            rows.append(row)
            checks += page_checks
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
    if checks:
        print()
        print_checks(checks)
    load_after = os.getloadavg()
    print(f"\nload average {load_after[0]:.2f} (1 min) after the run")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        data = {"pages": [asdict(r) for r in rows], "checks": [asdict(c) for c in checks]}
        args.json.write_text(json.dumps(data, indent=2))
    bad = [r for r in rows if r.status != "ok"]
    return 1 if args.strict and bad else 0


if __name__ == "__main__":
    sys.exit(main())
