"""scripts/grade.py on a synthetic class: correct, partly wrong, crashing, endless, cheating.

The submissions are the exercise handout of chapter 2 (``scripts/strip_solutions.py``) with
the stub cells filled in, as students would hand them in. The oracle for every verdict is the
same strict check run directly on the same function in this process.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CORRECT = {
    "energy": (
        "def energy(x, h, W, a, b):\n"
        "    return -(x * a).sum(1) - (h * b).sum(1) - ((x @ W) * h).sum(1)\n"
    ),
    "logsumexp": (
        "def logsumexp(v):\n"
        "    c = torch.max(v)\n"
        "    return c + torch.log(torch.sum(torch.exp(v - c)))\n"
    ),
    "log_partition_brute_force": (
        "def log_partition_brute_force(rbm):\n"
        "    from genphys.enumeration import binary_states\n"
        "    xs, hs = binary_states(rbm.n_visible), binary_states(rbm.n_hidden)\n"
        "    with torch.no_grad():\n"
        "        s = (xs @ rbm.a)[:, None] + (hs @ rbm.b)[None, :] + xs @ rbm.W @ hs.T\n"
        "    return logsumexp(s.reshape(-1))\n"
    ),
}
WRONG_ENERGY = "def energy(x, h, W, a, b):\n    return (x * a).sum(1) + (h * b).sum(1) + ((x @ W) * h).sum(1)\n"


def _grade_module():
    spec = importlib.util.spec_from_file_location("grade", ROOT / "scripts" / "grade.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _handout():
    import jupytext

    spec = importlib.util.spec_from_file_location("strip", ROOT / "scripts" / "strip_solutions.py")
    strip = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(strip)
    text = (ROOT / "exercises" / "ex02_partition_function.md").read_text()
    return jupytext.reads(strip.strip_solutions(text), fmt="md:myst")


def _submission(
    answers: dict[str, str],
    *,
    before: dict[str, str] | None = None,
    after: dict[str, str] | None = None,
    edit=None,
):
    """The handout with each stub ``def name`` cell replaced by ``answers[name]``."""
    import copy

    nb = copy.deepcopy(_handout())
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for name, code in answers.items():
            if f"def {name}(" in cell.source and "NotImplementedError" in cell.source:
                cell.source = (before or {}).get(name, "") + code + (after or {}).get(name, "")
        if edit is not None:
            cell.source = edit(cell.source)
    return nb


def _fake_checks(source: str) -> str:
    # a student who edits the check cells: every check prints a pass
    if source.startswith("checks."):
        return 'print("✅ passed")'
    return source.replace(
        'checks = genphys.exercises.checks("ch02")',
        "class _C:\n    def __getattr__(self, n):\n        return lambda *a, **k: 'passed'\n"
        "checks = _C()",
    )


def _forge(source: str) -> str:
    if 'checks = genphys.exercises.checks("ch02")' not in source:
        return source
    return source + (
        "\nimport json, os, sys\n"
        "json.dump([{'item': n, 'kind': 'exercise', 'status': 'passed', 'message': 'ok'}\n"
        "           for n in ('energy', 'logsumexp', 'log_partition_brute_force')],\n"
        "          open('verdicts.json', 'w'))\n"
        "open(sys.argv[-2], 'w').write('not json')\n"
        "os._exit(0)\n"
    )


def _class(folder: Path) -> None:
    import nbformat

    wrong = {**CORRECT, "energy": WRONG_ENERGY}
    crash = {**CORRECT, "logsumexp": "def logsumexp(v):\n    return v.no_such_method()\n"}
    endless = {
        **CORRECT,
        "logsumexp": "def logsumexp(v):\n    while True:\n        pass\n",
    }
    cheat = {
        name: f"from genphys.exercises.ch02 import {name}\n"
        for name in ("energy", "logsumexp", "log_partition_brute_force")
    }
    cheat["energy"] = (
        "import pathlib\n"
        f"exec(pathlib.Path({str(ROOT / 'lib/genphys/exercises/ch02.py')!r}).read_text())\n"
    )
    notebooks = {
        "correct": _submission(CORRECT),
        "partly_wrong": _submission(wrong),
        "crashing": _submission(crash, before={"energy": "1 / 0\n"}),
        "endless_loop": _submission(endless, after={"energy": "while True:\n    pass\n"}),
        "imports_reference": _submission(cheat),
        "edits_checks": _submission(wrong, edit=_fake_checks),
        # plants passing verdicts and an unreadable answers file, then ends its process
        "forges_verdicts": _submission({}, edit=_forge),
    }
    for student, nb in notebooks.items():
        (folder / student).mkdir(parents=True)
        nbformat.write(nb, folder / student / "ex02_partition_function.ipynb")


@pytest.mark.slow  # about 10 s per notebook: two fresh processes that import torch
def test_grading_a_synthetic_class(tmp_path):
    from genphys.exercises import checks

    grade = _grade_module()
    submissions, out = tmp_path / "submitted", tmp_path / "grades"
    _class(submissions)
    started = time.perf_counter()
    summary = grade.grade(submissions, out, cell_timeout=3, timeout=120, check_timeout=4, jobs=2)
    elapsed = time.perf_counter() - started
    print(f"throughput: {7 / elapsed * 60:.1f} notebooks per minute ({summary})")

    with (out / "grades.csv").open() as handle:
        rows = {r["student"]: r for r in csv.DictReader(handle)}
    with (out / "verdicts.csv").open() as handle:
        verdicts = {(v["student"], v["item"]): v["status"] for v in csv.DictReader(handle)}
    assert set(rows) == {
        "correct",
        "partly_wrong",
        "crashing",
        "endless_loop",
        "imports_reference",
        "edits_checks",
        "forges_verdicts",
    }
    assert all(r["max_score"] == "3" for r in rows.values())

    # the oracle: the strict checks run here on the same functions
    namespace: dict = {}
    exec("import torch\n" + "".join(CORRECT.values()), namespace)
    c = checks("ch02")
    expected = {name: getattr(c, name)(namespace[name]).status for name in CORRECT}
    for name, status in expected.items():
        assert verdicts[("correct", name)] == status, name
    assert rows["correct"]["score"] == str(sum(s == "passed" for s in expected.values()))
    assert expected["energy"] == "passed"

    # partly wrong: the energy's sign, the other two as the correct student's
    assert verdicts[("partly_wrong", "energy")] == "incorrect"
    for name in ("logsumexp", "log_partition_brute_force"):
        assert verdicts[("partly_wrong", name)] == expected[name]

    # crashing: the cell of energy raises before its definition, logsumexp raises inside
    assert verdicts[("crashing", "energy")] == "not answered"
    assert verdicts[("crashing", "logsumexp")] == "error"
    feedback = (out / "feedback" / "crashing" / "ex02_partition_function.md").read_text()
    assert "ZeroDivisionError" in feedback

    # an endless loop in a cell is stopped by the cell's time limit; one in a function by
    # the check's: the other exercises are graded as usual
    assert verdicts[("endless_loop", "logsumexp")] == "timeout"
    assert verdicts[("endless_loop", "energy")] == expected["energy"]

    # the reference solutions cannot be imported (nor read from disk where the grader
    # isolates the process): nothing is answered
    assert rows["imports_reference"]["score"] == "0"
    assert verdicts[("imports_reference", "logsumexp")] == "not answered"
    if summary["isolation"] == "strong":
        assert verdicts[("imports_reference", "energy")] == "not answered"

    # edited check cells print passes, but the grader runs its own checks
    assert verdicts[("edits_checks", "energy")] == "incorrect"

    # planted verdicts and a broken answers file count for nothing, and the class is graded
    assert rows["forges_verdicts"]["score"] == "0"

    # a feedback file per student, and the summary with the throughput
    for student in rows:
        assert (out / "feedback" / student / "ex02_partition_function.md").exists()
    stored = json.loads((out / "summary.json").read_text())
    assert stored["notebooks"] == 7 and stored["notebooks_per_minute"] > 0


@pytest.mark.parametrize(
    ("name", "chapter"),
    [("ex02_partition_function", "ch02"), ("project_rbm", "project_rbm"), ("x", None)],
)
def test_the_page_of_a_submission_is_found_from_its_checks_or_its_name(tmp_path, name, chapter):
    grade = _grade_module()
    path = tmp_path / f"{name}.ipynb"
    path.write_text("{}")
    assert grade._chapter(path) == chapter
    path.write_text('{"source": "checks = genphys.exercises.checks(\\"ch05\\")"}')
    assert grade._chapter(path) == "ch05"
