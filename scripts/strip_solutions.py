"""Remove the solutions from the exercise pages: handouts for students, a book for teaching.

Every solution in ``exercises/*.md`` sits between a ``solution-start`` and a
``solution-end`` fence (sphinx-exercise's gated solutions); everything between them
(the reference source, the check of the reference, the discussion of an explore
question) is solution text. This script drops those blocks.

    python scripts/strip_solutions.py handouts [--out _build/handouts]
        one notebook per exercise page without solution cells, written by Jupytext;
    python scripts/strip_solutions.py book --out DIR
        a copy of the book's sources in DIR with the solutions removed from the
        exercise pages and ``hide_solutions: true`` set for sphinx-exercise, ready for
        ``jupyter-book build DIR`` (what ``scripts/build-book.sh --no-solutions`` runs).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START = re.compile(r"^(`{3,}|:{3,})\{solution-start\}")
END = re.compile(r"^(`{3,}|:{3,})\{solution-end\}")
PLAIN = re.compile(r"^(`{3,}|:{3,})\{solution\}")
# never copied into the teaching build
SKIP = {".git", ".venv", "_build", ".pytest_cache", ".ruff_cache", "__pycache__"}


def strip_solutions(text: str) -> str:
    """``text`` without its solution blocks (gated ``solution-start`` ... ``solution-end``, or ``solution``)."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if START.match(line):
            fence = START.match(line).group(1)
            i += 1
            while i < len(lines) and lines[i] != fence:  # the solution-start directive itself
                i += 1
            i += 1
            while i < len(lines) and not END.match(lines[i]):  # the solution's cells
                i += 1
            if i == len(lines):
                raise ValueError("a solution-start has no matching solution-end.")
            fence = END.match(lines[i]).group(1)
            i += 1
            while i < len(lines) and lines[i] != fence:
                i += 1
            i += 1
            continue
        if PLAIN.match(line):
            fence = PLAIN.match(line).group(1)
            i += 1
            while i < len(lines) and lines[i] != fence:
                i += 1
            i += 1
            continue
        out.append(line)
        i += 1
    text = "\n".join(out)
    # the paragraph of the introduction that points to the collapsed solutions
    text = re.sub(r"\n\*\*Solutions\.\*\*.*?\n\n", "\n", text, flags=re.DOTALL)
    return re.sub(r"\n{3,}", "\n\n", text)


def exercise_pages(root: Path = ROOT) -> list[Path]:
    folder = root / "exercises"
    return sorted([*folder.glob("ex*.md"), *folder.glob("project_*.md")])


def write_handouts(out: Path, root: Path = ROOT, ref: str | None = None) -> list[Path]:
    """One ``.ipynb`` per exercise page, without solution cells, in ``out``.

    Each handout runs anywhere a student opens it: its markdown is plain Markdown (no MyST
    syntax shows as text in Colab or Jupyter), its first cell installs the library at ``ref``
    (default: the current commit) where ``import genphys`` fails, it carries no Jupytext
    pairing metadata, and its cell ids depend only on its content, so that two runs write
    identical files (``scripts/reader_notebooks.py``).
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import nbformat
    import yaml
    from reader_notebooks import Converter, install_requirement, reader_notebook

    repository = yaml.safe_load((root / "_config.yml").read_text())["repository"]["url"]
    requirement = install_requirement(repository, ref or _current_commit(root))
    converter = Converter.for_book(root)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for page in exercise_pages(root):
        notebook = reader_notebook(strip_solutions(page.read_text()), requirement, converter)
        target = out / f"{page.stem}.ipynb"
        nbformat.write(notebook, target)
        written.append(target)
    return written


def _current_commit(root: Path) -> str:
    """The checked-out commit, or ``main`` outside a git checkout."""
    import subprocess

    found = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=False
    )
    return found.stdout.strip() if found.returncode == 0 else "main"


def copy_book(out: Path, root: Path = ROOT) -> None:
    """A copy of the book's sources in ``out`` with every solution removed."""
    if out.exists():
        shutil.rmtree(out)

    def ignore(directory: str, names: list[str]) -> set[str]:
        return {n for n in names if n in SKIP or n.endswith(".ipynb")}

    shutil.copytree(root, out, ignore=ignore)
    for page in exercise_pages(out):
        page.write_text(strip_solutions(page.read_text()))
    config = out / "_config.yml"
    text = config.read_text()
    if "hide_solutions" not in text:
        text = text.replace("  config:\n", "  config:\n    hide_solutions: true\n", 1)
    # Binder and Colab would open the repository's pages, solutions included: the teaching
    # book offers only the download of its own (solution-free) page and the handouts.
    text = re.sub(r"\n  binderhub_url: [^\n]*", '\n  binderhub_url: ""', text)
    text = re.sub(r"\n    colab_notebooks_branch: [^\n]*", '\n    colab_notebooks_branch: ""', text)
    config.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["handouts", "book"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.what == "handouts":
        out = args.out or ROOT / "_build" / "handouts"
        for path in write_handouts(out):
            print(path)
    else:
        if args.out is None:
            parser.error("book needs --out DIR")
        copy_book(args.out)
        print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
