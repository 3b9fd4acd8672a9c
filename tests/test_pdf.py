"""The book as one PDF (``bash scripts/build-book.sh --pdf`` -> ``_build/latex/book.pdf``).

The PDF is read back with poppler's ``pdfinfo``, ``pdftotext`` and ``pdfimages`` (Debian
``poppler-utils``, installed with TeX by ``bash scripts/install-latex.sh``) and the LaTeX log is
read: enough pages, no unresolved reference ("??") and no undefined label, no character missing
from a font (a box in the PDF instead of a glyph), every figure embedded, the bibliography
complete, and the published site linking to the PDF.

Without the PDF (or without poppler) the tests skip with a message; ``scripts/test-all.sh``
builds the PDF and sets ``GENPHYS_REQUIRE_PDF=1``, which turns such a skip into a failure.
"""

from __future__ import annotations

import codecs
import functools
import os
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest
import yaml
from browser_helpers import REPO_ROOT, figure_cell_count, source_path, toc_docnames

LATEX_DIR = REPO_ROOT / "_build" / "latex"
PDF = LATEX_DIR / "book.pdf"
LOG = LATEX_DIR / "book.log"
SITE_PDF = REPO_ROOT / "_build" / "html" / "book.pdf"
# 275 pages with chapters 1-7 and 10-18 and their exercises (November 2026); a floor well
# below that catches a PDF that stopped after a failing chapter without tripping on layout.
MIN_PAGES = 200


def pdf_required() -> bool:
    """True where a missing PDF must fail the tests (scripts/test-all.sh sets it)."""
    return os.environ.get("GENPHYS_REQUIRE_PDF", "") not in ("", "0")


def skip_or_fail(reason: str) -> None:
    if pdf_required():
        pytest.fail(f"{reason} (GENPHYS_REQUIRE_PDF is set)", pytrace=False)
    pytest.skip(reason)


def _poppler(tool: str, *args: str) -> str:
    if shutil.which(tool) is None:
        skip_or_fail(f"{tool} is not installed (poppler-utils: bash scripts/install-latex.sh)")
    result = subprocess.run([tool, *args], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"{tool} {' '.join(args)} failed: {result.stderr[-2000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def pdf() -> Path:
    if not PDF.is_file():
        skip_or_fail(f"{PDF.relative_to(REPO_ROOT)} is not built: bash scripts/build-book.sh --pdf")
    return PDF


@functools.cache
def _text(path: Path) -> str:
    return _poppler("pdftotext", "-enc", "UTF-8", str(path), "-")


def _letters(text: str) -> str:
    """Lowercase letters and digits only: line breaks, hyphenation and ligatures removed."""
    text = unicodedata.normalize("NFKC", text).replace("-\n", "")
    return re.sub(r"[^a-z0-9]", "", text.lower())


def test_pdf_has_the_whole_book(pdf):
    info = _poppler("pdfinfo", str(pdf))
    pages = int(re.search(r"^Pages:\s+(\d+)", info, flags=re.M).group(1))
    assert pages >= MIN_PAGES, f"the PDF has {pages} pages, fewer than {MIN_PAGES}"
    text = _letters(_text(pdf))
    # every chapter's title is in the PDF (the first heading of its source)
    missing = []
    for docname in toc_docnames():
        source = source_path(docname)
        assert source is not None, docname
        title = re.search(r"^# (.+)$", source.read_text(encoding="utf-8"), flags=re.M)
        if title and _letters(re.sub(r"[`*$\\{}]", "", title.group(1))) not in text:
            missing.append(f"{docname}: {title.group(1)}")
    assert not missing, "pages missing from the PDF:\n" + "\n".join(missing)


def test_pdf_has_no_unresolved_reference(pdf):
    text = _text(pdf)
    lines = [line.strip() for line in text.splitlines() if "??" in line]
    assert not lines, f"unresolved references (??) in the PDF: {lines[:10]}"


def test_latex_log_has_no_missing_glyph_or_undefined_reference(pdf):
    if not LOG.is_file():
        skip_or_fail(f"{LOG.relative_to(REPO_ROOT)} is missing: rebuild the PDF")
    log = LOG.read_text(encoding="utf-8", errors="replace")
    # TeX wraps its log at 79 characters: join the pieces of each message
    log = re.sub(r"(?m)^(.{79})\n", r"\1", log)
    # the log of the last xelatex run; every run reports the same missing characters
    missing = sorted(
        set(re.findall(r"Missing character: There is no (.+?) in font ([^!\s]+)", log))
    )
    assert "Missing character" not in log, (
        f"characters missing from the fonts (boxes in the PDF): {missing[:20]}; "
        "map them in sphinx.config.latex_elements of _config.yml"
    )
    undefined = re.findall(
        r"LaTeX Warning: (?:Reference|Citation|Hyper reference) `[^']*' on page \d+ undefined", log
    )
    assert not undefined, f"undefined references: {sorted(set(undefined))[:20]}"
    assert "There were undefined references" not in log


def test_pdf_embeds_every_figure(pdf):
    listing = _poppler("pdfimages", "-list", str(pdf))
    # rows: page num type width height ...; "smask" rows are the alpha channels of PNGs
    images = [row.split() for row in listing.splitlines()[2:] if row.strip()]
    drawn = [row for row in images if row[2] == "image" and int(row[3]) > 16 and int(row[4]) > 16]
    figures = sum(
        figure_cell_count(path) for docname in toc_docnames() if (path := source_path(docname))
    )
    assert figures > 0
    assert len(drawn) >= figures, f"{len(drawn)} images in the PDF, {figures} figure cells"


@functools.cache
def _cited_titles() -> dict[str, str]:
    """Title of every work the book cites, as plain text (latexcodec, braces removed)."""
    import latexcodec  # noqa: F401  (registers the "ulatex" codec)
    import pybtex.database

    bib = pybtex.database.parse_file(REPO_ROOT / "references.bib").entries
    keys: set[str] = set()
    for docname in toc_docnames():
        source = source_path(docname)
        if source is None:
            continue
        for body in re.findall(r"\{cite(?::[a-z]+)?\}`([^`]+)`", source.read_text("utf-8")):
            keys.update(k.strip() for k in re.split(r"[,;]", body) if k.strip())
    return {
        key: codecs.decode(bib[key].fields["title"], "ulatex").replace("{", "").replace("}", "")
        for key in sorted(keys)
    }


def test_pdf_has_the_bibliography(pdf):
    text = _text(pdf)
    assert re.search(r"^\s*Bibliography\s*$", text, flags=re.M), "no Bibliography heading"
    titles = _cited_titles()
    assert len(titles) > 10, titles
    letters = _letters(text)
    # An entry can break across a page, with the page's footer and header between its two
    # halves in the extracted text: the first three words of each title together, and every
    # word of it somewhere.
    missing = {
        key: title
        for key, title in titles.items()
        if "$" not in title
        and (
            _letters(" ".join(title.split()[:3])) not in letters
            or any(_letters(word) not in letters for word in title.split())
        )
    }
    assert not missing, f"cited works missing from the PDF's bibliography: {missing}"


def test_site_links_the_pdf():
    """The intro page links book.pdf, and the site carries the PDF next to it."""
    intro = (REPO_ROOT / "intro.md").read_text(encoding="utf-8")
    assert re.search(r'<a href="book\.pdf" download="book\.pdf">', intro), "intro.md: no link"
    html = REPO_ROOT / "_build" / "html"
    if not (html / "intro.html").is_file():
        skip_or_fail("the HTML book is not built: bash scripts/build-book.sh")
    assert 'href="book.pdf"' in (html / "intro.html").read_text(encoding="utf-8")
    if not PDF.is_file():
        skip_or_fail(f"{PDF.relative_to(REPO_ROOT)} is not built: bash scripts/build-book.sh --pdf")
    assert SITE_PDF.is_file(), "build-book.sh --pdf copies the PDF into _build/html"
    assert SITE_PDF.read_bytes() == PDF.read_bytes(), "_build/html/book.pdf is not the latest PDF"


def test_deploy_workflow_publishes_the_pdf():
    """The site is uploaded after the PDF has been built and copied into _build/html."""
    workflow = yaml.safe_load(
        (REPO_ROOT / ".github" / "workflows" / "deploy-book.yml").read_text(encoding="utf-8")
    )
    steps = workflow["jobs"]["build"]["steps"]
    runs = [step.get("run", "") for step in steps]
    html = next(
        k
        for k, run in enumerate(runs)
        if re.search(r"^bash scripts/build-book\.sh$", run, flags=re.M)
    )
    pdf = next(k for k, run in enumerate(runs) if "bash scripts/build-book.sh --pdf" in run)
    upload = next(
        k for k, step in enumerate(steps) if "upload-pages-artifact" in step.get("uses", "")
    )
    assert html < pdf < upload, (html, pdf, upload)
    assert "bash scripts/install-latex.sh" in runs[pdf]
    assert steps[upload]["with"]["path"] == "_build/html"
    script = (REPO_ROOT / "scripts" / "build-book.sh").read_text(encoding="utf-8")
    assert "cp _build/latex/book.pdf _build/html/book.pdf" in script
