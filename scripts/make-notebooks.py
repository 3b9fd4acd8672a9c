"""Write an unexecuted ``.ipynb`` of every chapter and exercise page, ready for Colab.

The book's pages are MyST markdown notebooks (``.md``); Colab opens only ``.ipynb`` files of
a GitHub repository. This script converts every notebook page of ``_toc.yml`` with Jupytext
into ``OUT/<docname>.ipynb`` (``OUT/chapters/02_partition_function.ipynb``: the same path as
the page, so that the book's Colab button, ``_ext/book_assets.py``, finds it on the branch
the publishing workflow pushes ``OUT`` to). The markdown is converted to plain Markdown and the
solutions are folded so that "Run all" prints none (``scripts/reader_notebooks.py``), and one
cell first installs the book's library where it is missing:

    try:
        import genphys
    except ImportError:  # Colab: install the library at the version of this notebook
        pip install "genphys @ git+<repository>@<ref>"

Where ``genphys`` is importable (Binder, a local checkout) the cell does nothing.

    python scripts/make-notebooks.py [--out _build/notebooks] [--ref COMMIT_OR_TAG]
                                     [--repository URL]

``--ref`` defaults to the current commit (``git rev-parse HEAD``), ``--repository`` to
``repository.url`` of ``_config.yml``. Prints one line per notebook written.
"""

from __future__ import annotations

import argparse
import functools
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from reader_notebooks import (  # noqa: E402
    INSTALL_SOURCE,
    INSTALL_TAG,
    Converter,
    install_requirement,
    reader_notebook,
)

__all__ = ["INSTALL_SOURCE", "INSTALL_TAG", "install_requirement", "make_notebook"]


def toc_docnames(root: Path = ROOT) -> list[str]:
    """Every document of ``_toc.yml``, the root first, without suffix (``chapters/02_x``)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    names = [str(toc["root"])]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "file" in node:
                names.append(str(node["file"]))
            for key in ("parts", "chapters", "sections"):
                walk(node.get(key) or [])
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk({key: toc.get(key) for key in ("parts", "chapters", "sections")})
    return list(dict.fromkeys(re.sub(r"\.(md|ipynb)$", "", name) for name in names))


def notebook_sources(root: Path = ROOT) -> dict[str, Path]:
    """``{docname: source}`` for the pages of ``_toc.yml`` that are notebooks (a kernelspec)."""
    found: dict[str, Path] = {}
    for name in toc_docnames(root):
        source = root / f"{name}.md"
        if not source.is_file():
            continue
        front = re.match(r"---\n(.*?)\n---\n", source.read_text(encoding="utf-8"), flags=re.S)
        if front and "kernelspec" in (yaml.safe_load(front.group(1)) or {}):
            found[name] = source
    return found


def make_notebook(source: Path, requirement: str) -> nbformat.NotebookNode:
    """The unexecuted notebook of one MyST page, in plain Markdown, with the install cell first."""
    return reader_notebook(source.read_text(encoding="utf-8"), requirement, _converter())


@functools.cache
def _converter() -> Converter:
    return Converter.for_book(ROOT)


def write_notebooks(out: Path, ref: str, repository: str, root: Path = ROOT) -> list[Path]:
    """Write ``out/<docname>.ipynb`` for every notebook page; return the paths written."""
    requirement = install_requirement(repository, ref)
    written = []
    for name, source in notebook_sources(root).items():
        target = out / f"{name}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(make_notebook(source, requirement), target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "notebooks")
    parser.add_argument("--ref", help="commit or tag to install (default: git rev-parse HEAD)")
    parser.add_argument("--repository", help="repository URL (default: _config.yml)")
    args = parser.parse_args(argv)
    ref = (
        args.ref
        or subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout.strip()
    )
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    repository = args.repository or config["repository"]["url"]
    for path in write_notebooks(args.out, ref, repository):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
