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


# ---------------------------------------------------------------------------------------------
# The PDF reads like a book: parts, chapters 1-18, exercise pages and projects as sections of
# their chapter, figures numbered per chapter, nothing wider than the page, A4.

TOC = LATEX_DIR / "book.toc"
AUX = LATEX_DIR / "book.aux"
# an overfull line narrower than this is invisible on the page (TeX's own tolerance is 0.1 pt)
OVERFULL_TOLERANCE_PT = 6.0


def _plain_title(text: str) -> str:
    text = text.replace("\\sphinxhyphen {}", "-").replace("\\sphinxhyphen{}", "-")
    return _letters(re.sub(r"\\[a-zA-Z]+\s*|[{}$`*]", "", text))


def _toc_entries() -> list[tuple[str, str | None, str]]:
    """``(level, number or None, title)`` of every entry of the PDF's table of contents."""
    if not TOC.is_file():
        skip_or_fail(f"{TOC.relative_to(REPO_ROOT)} is missing: rebuild the PDF")
    entries = []
    for line in TOC.read_text(encoding="utf-8", errors="replace").splitlines():
        match = re.match(
            r"\\contentsline \{(part|chapter|section)\}\{(.*)\}\{[^{}]*\}\{[^{}]*\}%?$", line
        )
        if not match:
            continue
        level, body = match.groups()
        number = re.match(r"\\numberline \{([^}]*)\}(.*)$", body)
        part = re.match(r"([IVXL]+)\\hspace \{1em\}(.*)$", body)
        if number:
            entries.append((level, number.group(1), number.group(2)))
        elif part:
            entries.append((level, part.group(1), part.group(2)))
        else:
            entries.append((level, None, body))
    return entries


def _toc_tree() -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The parts' captions, and each chapter-level page of _toc.yml with its section pages."""
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text(encoding="utf-8"))
    captions, chapters = [], []
    for part in toc["parts"]:
        captions.append(part["caption"])
        for chapter in part["chapters"]:
            chapters.append((chapter["file"], [s["file"] for s in chapter.get("sections", [])]))
    return captions, chapters


def _title(docname: str) -> str:
    source = source_path(docname)
    return re.search(r"^# (.+)$", source.read_text(encoding="utf-8"), flags=re.M).group(1)


def test_pdf_has_parts_and_chapters_numbered_as_on_the_site(pdf):
    entries = _toc_entries()
    captions, chapters = _toc_tree()
    parts = [title for level, _, title in entries if level == "part"]
    assert [_plain_title(p) for p in parts] == [_plain_title(c) for c in captions], parts
    numbered = [(n, t) for level, n, t in entries if level == "chapter" and n is not None]
    book_chapters = [doc for doc, _ in chapters if doc.startswith("chapters/")]
    assert [n for n, _ in numbered] == [str(k) for k in range(1, len(book_chapters) + 1)], numbered
    assert [_plain_title(t) for _, t in numbered] == [
        _plain_title(_title(doc)) for doc in book_chapters
    ]
    # the reference pages (notation, glossary, instructors) are chapters without a number
    unnumbered = {_plain_title(t) for level, n, t in entries if level == "chapter" and n is None}
    for doc, _ in chapters:
        if not doc.startswith("chapters/"):
            assert _plain_title(_title(doc)) in unnumbered, doc


def test_pdf_places_exercises_and_projects_under_their_chapter(pdf):
    entries = _toc_entries()
    _, chapters = _toc_tree()
    sections = [(n, _plain_title(t)) for level, n, t in entries if level == "section" and n]
    number = {
        doc: k
        for k, (doc, _) in enumerate([c for c in chapters if c[0].startswith("chapters/")], start=1)
    }
    checked = 0
    for doc, pages in chapters:
        for page in pages:
            title = _plain_title(_title(page))
            found = [n for n, t in sections if t == title]
            assert found, f"{page} is not a section of the PDF"
            assert found[0].split(".")[0] == str(number[doc]), (page, found[0], doc)
            checked += 1
    assert checked >= 17 + 5, checked  # every exercise page and every project


def test_pdf_numbers_figures_per_chapter(pdf):
    if not AUX.is_file():
        skip_or_fail(f"{AUX.relative_to(REPO_ROOT)} is missing: rebuild the PDF")
    aux = AUX.read_text(encoding="utf-8", errors="replace")
    found = re.findall(r"\\newlabel\{(chapters/(\d\d)_[\w-]+:fig-[\w-]+)\}\{\{([\d.]+)\}", aux)
    assert found, "no figure label in book.aux"
    for label, chapter, number in found:
        assert number.split(".")[0] == str(int(chapter)), f"{label} is figure {number}"


def test_pdf_has_nothing_wider_than_the_page(pdf):
    if not LOG.is_file():
        skip_or_fail(f"{LOG.relative_to(REPO_ROOT)} is missing: rebuild the PDF")
    log = LOG.read_text(encoding="utf-8", errors="replace")
    wide = [
        (float(width), where)
        for width, where in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\) (.*)", log)
        if float(width) > OVERFULL_TOLERANCE_PT
    ]
    assert not wide, (
        f"{len(wide)} lines run off the page (overfull boxes wider than "
        f"{OVERFULL_TOLERANCE_PT} pt): {sorted(wide, reverse=True)[:10]}; break long equations "
        "(aligned, split) and give wide tables a {tabularcolumns} spec"
    )


def test_pdf_prints_every_column_of_the_reference_tables(pdf):
    """The notation table's four columns, the instructors' tables: every header is printed."""
    letters = _letters(_text(pdf))
    for name in ("notation.md", "instructors.md"):
        text = (REPO_ROOT / name).read_text(encoding="utf-8")
        for header in re.findall(r"^\|(.+)\|\s*\n\|[-| :]+\|\s*$", text, flags=re.M):
            for cell in header.split("|"):
                assert _letters(cell) in letters, f"{name}: column {cell.strip()!r} not printed"


def test_pdf_is_a4_unless_letter_is_asked_for(pdf):
    info = _poppler("pdfinfo", str(pdf))
    size = re.search(r"^Page size:\s+([\d.]+) x ([\d.]+) pts", info, flags=re.M)
    width, height = float(size.group(1)), float(size.group(2))
    letter = os.environ.get("GENPHYS_PAPER") == "letter"
    expected = (612, 792) if letter else (595.28, 841.89)
    assert abs(width - expected[0]) < 1 and abs(height - expected[1]) < 1, (width, height)
