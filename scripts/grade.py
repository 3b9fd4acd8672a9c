"""Grade a folder of submitted exercise notebooks: scores per student and exercise, feedback per student.

    python scripts/grade.py SUBMISSIONS --out GRADES [--cell-timeout 300] [--timeout 900]
                            [--check-timeout 120] [--jobs 1]

``SUBMISSIONS`` holds the notebooks students downloaded from the book without solutions
(or ``_build/handouts/*.ipynb``) and handed in, either as ``SUBMISSIONS/<student>/<page>.ipynb``
(nbgrader's ``submitted/{student_id}/{assignment_id}/{notebook_id}.ipynb``, without the
assignment level) or flat, ``SUBMISSIONS/<student>.ipynb``. Each notebook is graded in two
stages, each a fresh Python process in its own temporary directory:

1. **The student's notebook** runs cell by cell in an IPython shell (magics and displays work),
   with a time limit per cell and for the whole notebook. Its ``genphys`` is a copy of the
   library whose ``genphys.exercises`` holds no reference solution and no checker: its
   ``checks("chNN")`` only records the answers to questions, and ``show_solution`` refuses.
   Where Linux user namespaces are available (``unshare --user --net --mount``) the process
   has no network at all and the directories of the real ``genphys/exercises`` are covered by
   an empty folder, so the reference solutions cannot be read from disk either. Elsewhere the
   grader falls back to refusing sockets in the process and says so (``isolation: weak``).
   What leaves this stage: the student's functions named like the exercises, pickled by
   value (cloudpickle), and the recorded answers to questions. Outputs, check cells and
   anything the notebook prints are ignored: editing a check cell changes nothing.
2. **The checks** run in a second fresh process (no network either) that imports the real
   checkers, loads the student's functions and calls every exercise's, goal's and question's
   strict check, with a time limit per check. Each verdict (passed, incorrect, error, not
   implemented, not answered, timeout) is recorded with its message.

Trust model: the grader trusts nothing the notebook's process writes except the functions
and answers it extracts, and it computes every verdict itself. The student's functions do run
inside the checking process (that is what a check is); the strict checks refuse the
reference solutions there, and the project goals refuse the library's trainers and samplers
and notice a removed profile hook. A function written to attack the checker from inside
its own call (for example by patching the checker's module before it returns) is not ruled
out by process isolation; the grader then still shows the function in the feedback, and the
instructor should read what it does.

Output in ``GRADES``: ``grades.csv`` (one row per submission: student, notebook, chapter,
score, max_score, and one column of points per checked item), ``verdicts.csv`` (one row per
item: status and message), ``feedback/<student>/<notebook>.md`` and ``summary.json``
(isolation, time per notebook, throughput).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "lib"
STUB = '''"""genphys.exercises while grading: no reference solutions, no checkers."""

ANSWERS = []


class _Recorded:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"{self.name}: recorded for grading"

    _repr_markdown_ = __repr__


class _Checks:
    def __init__(self, chapter):
        self._chapter = chapter

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)

        def record(answer, *, seed=None):
            if not callable(answer):
                ANSWERS.append((name, answer))
            return _Recorded(name)

        return record

    def ask(self, name):
        return _Recorded(name)


def checks(chapter):
    return _Checks(chapter)


def show_solution(chapter, name):
    raise RuntimeError("the solutions are not available while grading.")
'''
STATUSES = ("passed", "incorrect", "error", "not implemented", "not answered", "timeout")


# ----------------------------------------------------------------- stage 1: the notebook
def _run_student(notebook: Path, names: list[str], out: Path, cell_timeout: float) -> None:
    """Run the notebook's code cells; after each, save the functions ``names`` and the answers."""
    import cloudpickle
    import nbformat
    from IPython.core.interactiveshell import InteractiveShell

    if os.environ.get("GENPHYS_GRADING_NO_SOCKETS"):
        import socket

        def refuse(*args, **kwargs):
            raise OSError("no network while grading")

        socket.socket.connect = refuse  # type: ignore[method-assign]
        socket.create_connection = refuse  # type: ignore[assignment]

    import genphys.exercises as stub  # the stub: answers are recorded here

    shell = InteractiveShell.instance()
    shell.colors = "NoColor"
    nb = nbformat.read(notebook, as_version=4)
    report: dict = {"cells": 0, "errors": [], "functions": {}, "answers": {}}

    def alarm(signum, frame):
        raise KeyboardInterrupt(f"cell time limit of {cell_timeout:g} s")

    signal.signal(signal.SIGALRM, alarm)
    for index, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        signal.setitimer(signal.ITIMER_REAL, cell_timeout)
        try:
            result = shell.run_cell(cell.source, store_history=False, silent=False)
        except BaseException as exc:  # the cell's time limit outside the shell's handler
            result = None
            report["errors"].append((index, f"{type(exc).__name__}: {exc}"))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        report["cells"] = index + 1
        if result is not None and not result.success:
            exc = result.error_in_exec or result.error_before_exec
            report["errors"].append((index, f"{type(exc).__name__}: {exc}"[:300]))
        functions = {}
        for name in names:
            value = shell.user_ns.get(name)
            if callable(value):
                try:
                    functions[name] = cloudpickle.dumps(value).hex()
                except Exception as exc:  # a function that cannot leave the process
                    report["errors"].append((index, f"{name} could not be extracted: {exc}"))
        report["functions"] = functions
        answers = {}
        for name, answer in stub.ANSWERS:
            try:
                json.dumps(answer)
                answers[name] = answer
            except TypeError:
                answers[name] = repr(answer)
        report["answers"] = answers
        out.write_text(json.dumps(report))


# --------------------------------------------------------------------- stage 2: the checks
class _CheckTimeout(BaseException):
    pass


def _run_checks(chapter: str, extracted: Path, out: Path, check_timeout: float) -> None:
    """Run every strict check of ``chapter`` on the extracted functions and answers."""
    import cloudpickle

    from genphys.exercises import Exercise, Goal, _module

    module = _module(chapter)
    items = [*module.EXERCISES, *getattr(module, "GOALS", []), *getattr(module, "QUESTIONS", [])]
    report = json.loads(extracted.read_text()) if extracted.exists() else {}
    functions, answers = report.get("functions", {}), report.get("answers", {})

    def alarm(signum, frame):
        raise _CheckTimeout

    signal.signal(signal.SIGALRM, alarm)
    verdicts = []
    for item in items:
        kind = "goal" if isinstance(item, Goal) else type(item).__name__.lower()
        verdict = {"item": item.name, "kind": kind}
        is_function = isinstance(item, (Exercise, Goal))
        source = functions if is_function else answers
        if item.name not in source:
            verdict.update(status="not answered", message="No answer was found in the notebook.")
            verdicts.append(verdict)
            continue
        signal.setitimer(signal.ITIMER_REAL, check_timeout)
        try:
            answer = (
                cloudpickle.loads(bytes.fromhex(source[item.name]))
                if is_function
                else source[item.name]
            )
            feedback = item.check(answer, strict=True) if is_function else item.check(answer)
            verdict.update(status=feedback.status, message=feedback.message)
        except _CheckTimeout:
            verdict.update(status="timeout", message=f"The check ran past {check_timeout:g} s.")
        except BaseException as exc:  # a function that breaks the checker itself
            verdict.update(status="error", message=f"{type(exc).__name__}: {exc}"[:500])
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        verdicts.append(verdict)
        out.write_text(json.dumps(verdicts))
    out.write_text(json.dumps(verdicts))


# ---------------------------------------------------------------------- the grading run
def _isolation() -> list[str] | None:
    """The ``unshare`` prefix that gives a process no network and its own mounts, or None."""
    command = ["unshare", "--user", "--map-root-user", "--net", "--mount"]
    if shutil.which("unshare") is None:
        return None
    try:
        ok = subprocess.run([*command, "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return command if ok else None


def _reference_dirs() -> list[Path]:
    """Every directory from which the real ``genphys.exercises`` could be imported or read."""
    import importlib.util

    found = {(LIB / "genphys" / "exercises").resolve()}
    for entry in sys.path:  # editable installs and site-packages included
        candidate = Path(entry or ".") / "genphys" / "exercises"
        if candidate.is_dir():
            found.add(candidate.resolve())
    spec = importlib.util.find_spec("genphys.exercises")
    if spec is not None and spec.submodule_search_locations:
        found.update(Path(p).resolve() for p in spec.submodule_search_locations)
    return sorted(p for p in found if p.is_dir())


def _student_library(workdir: Path) -> Path:
    """A copy of ``lib/genphys`` whose ``exercises`` package is the recording stub."""
    target = workdir / "student_lib"
    shutil.copytree(
        LIB / "genphys",
        target / "genphys",
        ignore=shutil.ignore_patterns("exercises", "__pycache__"),
    )
    (target / "genphys" / "exercises").mkdir()
    (target / "genphys" / "exercises" / "__init__.py").write_text(STUB)
    return target


def _chapter(notebook: Path) -> str | None:
    """The chapter a notebook's checks belong to (``ch02``, ``project_rbm``), or None."""
    text = notebook.read_text(errors="replace")
    match = re.search(r"checks\(\s*\\?[\"'](ch\d\d|project_\w+)\\?[\"']\s*\)", text)
    if match:
        return match.group(1)
    stem = notebook.stem
    if re.match(r"ex\d\d", stem):
        return "ch" + stem[2:4]
    match = re.match(r"(project_[a-z_]+?)(?:_|$)", stem)
    return match.group(1) if match else None


def _submissions(folder: Path) -> list[tuple[str, Path]]:
    """(student, notebook) pairs: ``folder/<student>/**/<page>.ipynb`` or ``folder/<student>.ipynb``."""
    found = []
    for path in sorted(folder.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        relative = path.relative_to(folder)
        student = relative.parts[0] if len(relative.parts) > 1 else path.stem
        found.append((student, path))
    return found


def _run(command: list[str], env: dict, cwd: Path, timeout: float, log: Path) -> str:
    """Run ``command`` in its own process group; kill the group at ``timeout``."""
    with log.open("w") as handle:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            process.wait(timeout=timeout)
            return "ok" if process.returncode == 0 else f"exit {process.returncode}"
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return "timeout"


def _sandboxed(command: list[str], isolation: list[str] | None, hide: list[Path], empty: Path):
    if isolation is None:
        return command
    mounts = " && ".join(f"mount --bind {empty} {d}" for d in hide)
    script = f'{mounts} && exec "$@"' if mounts else 'exec "$@"'
    return [*isolation, "sh", "-c", script, "grade", *command]


def _read_json(path: Path, default):
    """The JSON in ``path``, or ``default`` when it is missing or not valid JSON."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def grade_one(
    student: str,
    notebook: Path,
    out: Path,
    *,
    student_lib: Path,
    isolation: list[str] | None,
    cell_timeout: float,
    timeout: float,
    check_timeout: float,
) -> tuple[dict, list[dict]]:
    """Grade one notebook: run it (stage 1), check its functions (stage 2), write its feedback."""
    from genphys.exercises import _module

    chapter = _chapter(notebook)
    row = {"student": student, "notebook": notebook.stem, "chapter": chapter or "?"}
    if chapter is None:
        return {**row, "score": 0, "max_score": 0, "seconds": 0.0, "run": "unknown page"}, []
    module = _module(chapter)
    items = [*module.EXERCISES, *getattr(module, "GOALS", []), *getattr(module, "QUESTIONS", [])]
    names = [item.name for item in items]
    started = time.perf_counter()
    hide = _reference_dirs()
    with tempfile.TemporaryDirectory(prefix="genphys-grade-") as tmp:
        work = Path(tmp)
        empty = work / "empty"
        empty.mkdir()
        submitted = work / "submission.ipynb"
        shutil.copyfile(notebook, submitted)
        # the checks write their verdicts into a folder made after the student's run and
        # outside the folder the student's code could write, so no file can be planted there
        extracted = work / "extracted.json"
        base = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(work),
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "MPLBACKEND": "Agg",
            "http_proxy": "http://127.0.0.1:9",
            "https_proxy": "http://127.0.0.1:9",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        if isolation is None:
            base["GENPHYS_GRADING_NO_SOCKETS"] = "1"
        me = [sys.executable, str(Path(__file__).resolve())]
        student_env = {**base, "PYTHONPATH": str(student_lib), "PYTHONNOUSERSITE": "1"}
        names_arg = ",".join(names)
        run1 = _run(
            _sandboxed(
                [*me, "_student", str(submitted), names_arg, str(extracted), str(cell_timeout)],
                isolation,
                hide,
                empty,
            ),
            student_env,
            work,
            timeout,
            work / "student.log",
        )
        check_env = {**base, "PYTHONPATH": str(LIB)}
        verdicts_dir = Path(tempfile.mkdtemp(prefix="genphys-verdicts-"))
        verdicts_file = verdicts_dir / "verdicts.json"
        total_check = check_timeout * len(items) + 30
        run2 = _run(
            _sandboxed(
                [*me, "_checks", chapter, str(extracted), str(verdicts_file), str(check_timeout)],
                isolation,
                [],
                empty,
            ),
            check_env,
            work,
            total_check,
            work / "checks.log",
        )
        report = _read_json(extracted, {})
        if not isinstance(report, dict):
            report = {}
        # verdicts count only from a checks process that finished cleanly, and only for
        # the page's own items with a known status
        verdicts = _read_json(verdicts_file, []) if run2 == "ok" else []
        shutil.rmtree(verdicts_dir, ignore_errors=True)
        known = set(STATUSES)
        verdicts = [
            v
            for v in (verdicts if isinstance(verdicts, list) else [])
            if isinstance(v, dict) and v.get("item") in names and v.get("status") in known
        ]
        done = {v["item"] for v in verdicts}
        for item in items:
            if item.name not in done:
                verdicts.append(
                    {
                        "item": item.name,
                        "kind": "goal" if "Goal" in type(item).__name__ else "exercise",
                        "status": "timeout" if run2 == "timeout" else "error",
                        "message": f"The checks stopped before this item ({run2}).",
                    }
                )
        check_log = (work / "checks.log").read_text(errors="replace")[-2000:]
    seconds = time.perf_counter() - started
    for v in verdicts:
        v["points"] = 1 if v["status"] == "passed" else 0
    score = sum(v["points"] for v in verdicts)
    row.update(
        score=score,
        max_score=len(items),
        seconds=round(seconds, 2),
        run=run1 if run1 != "ok" else ("ok" if run2 == "ok" else f"checks: {run2}"),
    )
    for v in verdicts:
        row[f"{chapter}:{v['item']}"] = v["points"]
    _write_feedback(out, row, verdicts, report, run1, check_log if run2 != "ok" else "")
    return row, [{**{k: row[k] for k in ("student", "notebook", "chapter")}, **v} for v in verdicts]


def _write_feedback(out: Path, row: dict, verdicts: list[dict], report: dict, run1: str, log: str):
    folder = out / "feedback" / row["student"]
    folder.mkdir(parents=True, exist_ok=True)
    icons = {"passed": "✅", "incorrect": "❌", "error": "⚠️", "timeout": "⏱️"}
    lines = [
        f"# {row['notebook']} ({row['chapter']}): {row['score']} / {row['max_score']}",
        "",
        f"Student: {row['student']}. Graded by `scripts/grade.py` in {row['seconds']} s.",
        "",
    ]
    for v in verdicts:
        lines.append(
            f"- {icons.get(v['status'], '✍️')} **{v['item']}** ({v['status']}): {v['message']}"
        )
    errors = report.get("errors", [])
    if run1 != "ok" or errors:
        lines += ["", "## While running your notebook", ""]
        if run1 == "timeout":
            lines.append("- The notebook ran past its time limit and was stopped.")
        elif run1 != "ok":
            lines.append(f"- The notebook's process ended with {run1}.")
        lines += [f"- code cell {i + 1}: {message}" for i, message in errors[:20]]
    if log:
        lines += ["", "## Log of the checks", "", "```", log, "```"]
    (folder / f"{row['notebook']}.md").write_text("\n".join(lines) + "\n")


def grade(
    submissions: Path,
    out: Path,
    *,
    cell_timeout: float = 300,
    timeout: float = 900,
    check_timeout: float = 120,
    jobs: int = 1,
) -> dict:
    """Grade every notebook under ``submissions`` into ``out`` (``jobs`` at a time); returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    isolation = _isolation()
    rows, verdicts = [], []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="genphys-lib-") as tmp:
        student_lib = _student_library(Path(tmp))

        def one(pair):
            return grade_one(
                *pair,
                out,
                student_lib=student_lib,
                isolation=isolation,
                cell_timeout=cell_timeout,
                timeout=timeout,
                check_timeout=check_timeout,
            )

        with ThreadPoolExecutor(max(1, jobs)) as pool:  # each notebook runs in processes
            for row, found in pool.map(one, _submissions(submissions)):
                rows.append(row)
                verdicts += found
                print(
                    f"{row['student']}/{row['notebook']}: {row['score']} / {row['max_score']} "
                    f"({row['run']})"
                )
    elapsed = time.perf_counter() - started
    fixed = ["student", "notebook", "chapter", "score", "max_score", "seconds", "run"]
    items = sorted({k for r in rows for k in r} - set(fixed))
    with (out / "grades.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, [*fixed, *items], restval="")
        writer.writeheader()
        writer.writerows(rows)
    with (out / "verdicts.csv").open("w", newline="") as handle:
        columns = ["student", "notebook", "chapter", "item", "kind", "status", "points", "message"]
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(verdicts)
    summary = {
        "notebooks": len(rows),
        "seconds": round(elapsed, 2),
        "notebooks_per_minute": round(60 * len(rows) / elapsed, 2) if elapsed > 0 else None,
        "jobs": jobs,
        "isolation": "strong" if isolation else "weak",
        "isolation_detail": (
            "unshare --user --net --mount: no network; reference directories hidden"
            if isolation
            else "no user namespaces: sockets refused in the process, proxies unreachable; "
            "reference modules absent from the student's library but readable from disk"
        ),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_student":
        _, notebook, names, out, cell_timeout = argv
        _run_student(
            Path(notebook), [n for n in names.split(",") if n], Path(out), float(cell_timeout)
        )
        return 0
    if argv and argv[0] == "_checks":
        _, chapter, extracted, out, check_timeout = argv
        _run_checks(chapter, Path(extracted), Path(out), float(check_timeout))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("submissions", type=Path, help="folder of submitted notebooks")
    parser.add_argument("--out", type=Path, required=True, help="folder for grades and feedback")
    parser.add_argument("--cell-timeout", type=float, default=300, help="seconds per code cell")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per notebook")
    parser.add_argument("--check-timeout", type=float, default=120, help="seconds per check")
    parser.add_argument(
        "--jobs", type=int, default=1, help="notebooks graded at once (one core each)"
    )
    args = parser.parse_args(argv)
    summary = grade(
        args.submissions,
        args.out,
        cell_timeout=args.cell_timeout,
        timeout=args.timeout,
        check_timeout=args.check_timeout,
        jobs=args.jobs,
    )
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
