"""The PDF reads like a book: parts, chapters numbered 1-18, A4 or US Letter.

The book's LaTeX uses sphinx-jupyterbook-latex (``use_jupyterbook_latex: true``): it turns the
captions of ``_toc.yml`` into ``\\part``s, makes the root page (``intro.md``) front matter
instead of a chapter, and numbers figures and equations per chapter. Its document class,
``jupyterBook.cls``, loads ``bbm.sty`` for blackboard-bold letters (``\\mathbbm``), which only
the 1.4 GB ``texlive-fonts-extra`` package provides; the book uses ``\\mathbb`` (amssymb)
throughout. At the end of the Sphinx build, before LaTeX runs, this extension rewrites the copy
of the class in the output folder without ``bbm`` and with ``\\mathbbm`` mapped to ``\\mathbb``.

The parts named in ``latex_unnumbered_parts`` (the reference pages before and after the
chapters: notation, glossary, instructors, bibliography) are set without numbers, so that the
chapters are numbered 1-18 as on the web site: the same build-finished step writes
``\\setcounter{secnumdepth}`` before each ``\\part`` of ``book.tex``.

The paper size is A4 unless ``GENPHYS_PAPER=letter`` is set
(``bash scripts/build-book.sh --pdf --letter``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any


def portable_class(text: str) -> str:
    """``jupyterBook.cls`` without the ``bbm`` package; ``\\mathbbm`` becomes ``\\mathbb``."""
    text = re.sub(
        r"^\\RequirePackage\{bbm\}.*$",
        r"\\newcommand{\\mathbbm}[1]{\\mathbb{#1}}",
        text,
        flags=re.M,
    )
    return text


PART = re.compile(r"^\\part\{(?P<title>[^\n]*)\}\s*$", re.M)
NUMBERED_DEPTH = 2  # sphinxmanual.cls: chapters, sections and subsections numbered


def number_parts(tex: str, unnumbered: list[str]) -> str:
    """``tex`` with the parts titled in ``unnumbered`` (and their chapters) set without numbers."""
    titles = [match.group("title") for match in PART.finditer(tex)]
    missing = [title for title in unnumbered if title not in titles]
    if missing:
        raise ValueError(
            f"latex_unnumbered_parts must name parts of the book. Got {missing!r}; "
            f"the parts are {titles!r}."
        )

    def depth(match: re.Match) -> str:
        level = -2 if match.group("title") in unnumbered else NUMBERED_DEPTH
        return f"\\setcounter{{secnumdepth}}{{{level}}}\n{match.group(0)}"

    return PART.sub(depth, tex)


def _rewrite_class(app: Any, exception: Exception | None) -> None:
    if exception is not None or app.builder.name != "latex":
        return
    path = Path(app.outdir) / "jupyterBook.cls"
    if path.exists():
        path.write_text(portable_class(path.read_text()))
    for tex in Path(app.outdir).glob("*.tex"):
        text = tex.read_text(encoding="utf-8")
        if PART.search(text):
            tex.write_text(number_parts(text, app.config.latex_unnumbered_parts), encoding="utf-8")


def _paper(app: Any, config: Any) -> None:
    paper = os.environ.get("GENPHYS_PAPER", "a4")
    if paper not in ("a4", "letter"):
        raise ValueError(f"GENPHYS_PAPER must be 'a4' or 'letter'. Got {paper!r} instead.")
    config.latex_elements["papersize"] = f"{paper}paper"


def setup(app: Any) -> dict[str, Any]:
    app.add_config_value("latex_unnumbered_parts", [], "env", types=[list])
    app.connect("config-inited", _paper, priority=900)
    app.connect("build-finished", _rewrite_class)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
