"""The teaching outputs hold no solution: handout notebooks and the solution-free HTML book.

``scripts/strip_solutions.py`` writes the handouts (``_build/handouts/*.ipynb``) and the
sources of the solution-free book; ``bash scripts/build-book.sh --no-solutions`` builds
that book into ``_build/no-solutions/html``. The handouts are generated here; the HTML is
checked when it has been built (set ``GENPHYS_NO_SOLUTIONS_HTML`` to check another folder).
"""

from __future__ import annotations

import html
import importlib.util
import inspect
import json
import os
import re
from pathlib import Path

import pytest

from genphys.exercises import Exercise, MultipleChoice, all_exercises, all_goals, all_questions

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([*(ROOT / "exercises").glob("ex*.md"), *(ROOT / "exercises").glob("project_*.md")])
NO_SOLUTIONS_HTML = Path(
    os.environ.get("GENPHYS_NO_SOLUTIONS_HTML", ROOT / "_build" / "no-solutions" / "html")
)
FULL_HTML = ROOT / "_build" / "html"


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "strip_solutions", ROOT / "scripts" / "strip_solutions.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


strip = _load_script()


def _chapter(page: Path) -> str:
    """The exercise module of a page (pages import its checks, older ones the module)."""
    text = page.read_text()
    found = re.search(r'checks\("(ch\d\d|project_\w+)"\)', text) or re.search(
        r"from genphys\.exercises import (ch\d\d)", text
    )
    return found.group(1)


def _solution_markers(chapter: str) -> list[str]:
    """Text that only a solution shows: each reference's docstring summary, each answer."""
    markers = ["show_solution(", "show_source(", "solution-start", "solution-end"]
    for exercise in all_exercises()[chapter]:
        assert isinstance(exercise, Exercise)
        doc = inspect.getdoc(exercise.solution)
        if doc:
            markers.append(doc.splitlines()[0])
    for goal in all_goals().get(chapter, []):  # a project's final step
        markers.append(inspect.getdoc(goal.solution).splitlines()[0])
    for question in all_questions().get(chapter, []):
        if isinstance(question, MultipleChoice):
            correct = next(c for c in question.choices if c.correct)
            markers.append(f"right: {correct.why[:40]}")
        else:
            markers.append(question.explanation[:40])
    return markers


def _solution_lines(page: Path) -> list[str]:
    """The long prose and code lines inside the page's solution blocks."""
    text = page.read_text()
    blocks = re.findall(r"\{solution-start\}.*?\{solution-end\}", text, flags=re.DOTALL)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if len(line) > 30 and not line.startswith(("`", ":"))]


def _html_text(path: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


def test_strip_removes_gated_and_plain_solutions_and_keeps_the_rest():
    text = "\n".join(
        [
            "intro",
            "",
            "**Solutions.** Each solution is collapsed",
            "under its exercise.",
            "",
            "```{exercise} One",
            ":label: one",
            "Do it.",
            "```",
            "",
            "````{solution-start} one",
            ":class: dropdown",
            "````",
            "",
            "secret discussion",
            "",
            "```{code-cell} ipython3",
            "secret_code()",
            "```",
            "",
            "````{solution-end}",
            "````",
            "",
            "```{solution} one",
            "plain secret",
            "```",
            "after",
        ]
    )
    stripped = strip.strip_solutions(text)
    assert "secret" not in stripped and "solution" not in stripped.lower()
    assert "Do it." in stripped and "after" in stripped and "intro" in stripped
    with pytest.raises(ValueError, match="no matching solution-end"):
        strip.strip_solutions("````{solution-start} one\n````\nopen")


def test_handouts_hold_the_exercises_but_no_solution_text(tmp_path):
    written = strip.write_handouts(tmp_path)
    assert [p.stem for p in written] == [p.stem for p in PAGES]
    for page, notebook_path in zip(PAGES, written, strict=True):
        notebook = json.loads(notebook_path.read_text())
        source = "\n".join("".join(cell["source"]) for cell in notebook["cells"])
        for marker in _solution_markers(_chapter(page)):
            assert marker not in source, f"{notebook_path.name} contains {marker!r}"
        for line in _solution_lines(page):
            assert line not in source, f"{notebook_path.name} contains {line!r}"
        # every exercise, stub and check is still there
        text = page.read_text()
        assert source.count("**Exercise: ") == text.count("{exercise}"), page.name
        for needle in ("YOUR CODE HERE", "checks."):
            assert source.count(needle) == text.count(needle), (page.name, needle)
        # ready for Colab or any Jupyter: the library installed where it is missing, no
        # Jupytext pairing, and no MyST syntax left in the markdown
        assert "install-genphys" in notebook["cells"][0]["metadata"].get("tags", [])
        assert "jupytext" not in notebook["metadata"], notebook_path.name
        assert "{exercise}" not in source and "{cite}" not in source, notebook_path.name


def test_handouts_are_identical_from_one_run_to_the_next(tmp_path):
    first = strip.write_handouts(tmp_path / "a", ref="v1")
    second = strip.write_handouts(tmp_path / "b", ref="v1")
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_the_teaching_book_copy_has_no_solutions(tmp_path):
    strip.copy_book(tmp_path / "book")
    config = (tmp_path / "book" / "_config.yml").read_text()
    assert "hide_solutions: true" in config
    # Binder and Colab would open the repository's pages with their solutions
    assert 'binderhub_url: ""' in config and 'colab_notebooks_branch: ""' in config
    for page in PAGES:
        copied = (tmp_path / "book" / "exercises" / page.name).read_text()
        assert "solution-start" not in copied and "show_solution(" not in copied
        assert copied.count("{exercise}") == page.read_text().count("{exercise}")
    assert (tmp_path / "book" / "_toc.yml").exists()
    assert not (tmp_path / "book" / "_build").exists()


def _skip_or_fail(reason: str) -> None:
    """Skip where the builds are optional; fail where the test command requires them."""
    if os.environ.get("GENPHYS_REQUIRE_BUILDS") == "1":
        pytest.fail(f"{reason} (GENPHYS_REQUIRE_BUILDS is set)", pytrace=False)
    pytest.skip(reason)


def _exercise_html(folder: Path, page: Path) -> Path:
    return folder / "exercises" / f"{page.stem}.html"


def test_solution_free_html_has_no_solution_text():
    if not NO_SOLUTIONS_HTML.is_dir():
        _skip_or_fail(
            f"{NO_SOLUTIONS_HTML} has not been built: run `bash scripts/build-book.sh "
            "--no-solutions` to check it."
        )
    for page in PAGES:
        path = _exercise_html(NO_SOLUTIONS_HTML, page)
        assert path.exists(), f"{path} is missing from the solution-free build"
        raw = path.read_text()
        assert 'class="solution' not in raw, path.name
        text = _html_text(path)
        for marker in _solution_markers(_chapter(page)):
            assert marker not in text, f"{path.name} contains {marker!r}"
        assert "YOUR CODE HERE" in text


def test_the_html_check_would_find_solutions_in_the_full_book():
    # a control: the same markers are present where the solutions are shown
    if not FULL_HTML.is_dir():
        _skip_or_fail(f"{FULL_HTML} has not been built: run `bash scripts/build-book.sh`.")
    for page in PAGES:
        path = _exercise_html(FULL_HTML, page)
        if not path.exists():
            continue
        text = _html_text(path)
        assert 'class="solution' in path.read_text()
        assert any(marker in text for marker in _solution_markers(_chapter(page))[4:])
