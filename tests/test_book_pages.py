"""The book's cross-references that a single-page build cannot check: every {term} is in the
glossary, every {cite} key is in references.bib, and every page is in the table of contents."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(
    [*ROOT.glob("chapters/*.md"), *ROOT.glob("exercises/*.md")]
    + [ROOT / name for name in ("intro.md", "notation.md", "glossary.md", "instructors.md")]
)


def _glossary_list() -> list[str]:
    text = (ROOT / "glossary.md").read_text()
    body = text.split("```{glossary}", 1)[1].split("\n```", 1)[0]
    return [line.strip().lower() for line in body.splitlines() if line and not line[0].isspace()]


def _glossary_terms() -> set[str]:
    return set(_glossary_list())


def test_glossary_is_sorted_and_nonempty():
    terms = _glossary_list()
    assert len(terms) >= 20
    assert terms == sorted(terms), "keep the glossary in alphabetical order"
    assert len(set(terms)) == len(terms)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_terms_are_in_the_glossary(page):
    terms = _glossary_terms()
    for match in re.finditer(r"\{term\}`([^`]*)`", page.read_text()):
        target = match.group(1)
        target = re.search(r"<([^>]*)>\s*$", target).group(1) if "<" in target else target
        assert target.strip().lower() in terms, f"{page.name}: {{term}}`{target}` not in glossary"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_citations_are_in_the_bibliography(page):
    keys = set(re.findall(r"^@\w+\{([^,]+),", (ROOT / "references.bib").read_text(), re.M))
    for match in re.finditer(r"\{cite(?::\w+)?\}`([^`]*)`", page.read_text()):
        for key in match.group(1).split(","):
            assert key.strip() in keys, f"{page.name}: citation {key.strip()} not in references.bib"


def test_every_page_is_in_the_table_of_contents():
    toc = (ROOT / "_toc.yml").read_text()
    for page in PAGES:
        if page.name == "intro.md":
            continue
        stem = page.relative_to(ROOT).with_suffix("").as_posix()
        assert f"file: {stem}\n" in toc, f"{stem} is not in _toc.yml"


def _instructors_tables():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "instructors_tables", ROOT / "scripts" / "instructors_tables.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("instructors_tables", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_instructors_tables_are_current():
    """The time and size tables of instructors.md are generated from the pages; regenerate them
    with `python scripts/instructors_tables.py` after editing a page."""
    assert _instructors_tables().main(["--check"]) == 0, "instructors.md is stale"


def test_instructors_tables_count_what_a_page_contains(tmp_path):
    """The counter on a page whose contents are known: 2 display equations (one labelled),
    1 code cell, 1 optional section, prose words outside code and math only."""
    page = tmp_path / "chapters" / "99_example.md"
    page.parent.mkdir()
    page.write_text(
        "---\nkernelspec:\n  name: python3\n---\n\n(sec-example)=\n# One two\n\n"
        "three four\n\n$$\na = b\n$$ (eq-a)\n\n$$ c = d $$\n\n"
        "```{code-cell} ipython3\nx = 1  # not words\n```\n\n"
        "## Extra\n\n:::{admonition} Optional section\nfive\n:::\n"
    )
    counted = _instructors_tables().parse(page)
    assert (counted.equations, counted.code_cells, counted.optional) == (2, 1, ["Extra"])
    # "One two three four", "Extra", "five" (the admonition's title line is a directive)
    assert counted.words == 6
    assert counted.minutes == 5 * -(-(6 / 100 + 2 * 2 + 1) // 5)


def test_exercise_page_facts_are_stated_once_and_generated(tmp_path):
    """An exercise page states what it practises and its time once, in its front matter; the
    page's block and the instructors' table are generated from it and agree."""
    tables = _instructors_tables()
    page = tmp_path / "exercises" / "ex99_example.md"
    page.parent.mkdir()
    page.write_text(
        "---\npage_facts:\n  practise: a sampler.\n  time:\n    - [2 functions, 20]\n"
        "    - [one explore question, 15]\n---\n\n(sec-ex-example)=\n# Example\n\n"
        "<!-- page-facts:start -->\nold text\n<!-- page-facts:end -->\n"
    )
    assert tables.parse(page).minutes == 35
    block = tables.with_facts_block(page)
    assert "**You practise:** a sampler." in block and "old text" not in block
    assert (
        "about 35 minutes: 2 functions (20 minutes) and one explore question (15 minutes)" in block
    )
    page.write_text(page.read_text().replace("page_facts", "other"))
    with pytest.raises(ValueError, match="page_facts"):
        tables.page_facts(page)
    for path in tables.toc_pages():
        if path.parent.name == "exercises":
            facts = tables.page_facts(path)
            assert tables.facts_block(facts) in path.read_text(), f"{path.name}: stale block"


def test_library_docstrings_point_at_existing_sections():
    """Every "Explained in {ref}`sec-...`" of the library names a label the book defines."""
    labels = {
        match.group(1)
        for page in PAGES
        for match in re.finditer(r"^\((sec-[\w-]+)\)=", page.read_text(), flags=re.M)
    }
    missing = {
        f"{path.relative_to(ROOT)}: {label}"
        for path in (ROOT / "lib" / "genphys").rglob("*.py")
        for label in re.findall(r"\{ref\}`(sec-[\w-]+)`", path.read_text())
        if label not in labels
    }
    assert not missing, sorted(missing)
