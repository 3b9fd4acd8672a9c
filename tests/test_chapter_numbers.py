"""Figures and exercises are numbered per chapter on the web site (``_ext/chapter_numbers.py``)."""

from __future__ import annotations

import importlib.util
import re

import pytest
from browser_helpers import REPO_ROOT, html_path, toc_docnames

spec = importlib.util.spec_from_file_location(
    "chapter_numbers", REPO_ROOT / "_ext" / "chapter_numbers.py"
)
chapter_numbers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(chapter_numbers)


def test_pages_of_a_chapter_are_numbered_per_chapter_in_reading_order():
    parents = {
        "exercises/ex05_mcmc": "chapters/05_mcmc",
        "exercises/project_ising_mc": "chapters/05_mcmc",
    }
    book_wide = {
        "intro": {"figure": {"a": (1,)}},
        "chapters/05_mcmc": {"figure": {"f1": (7,), "f2": (8,)}, "table": {"t": (2,)}},
        "exercises/ex05_mcmc": {"exercise": {"e1": (30,), "e2": (31,)}},
        "exercises/project_ising_mc": {"exercise": {"p1": (32,)}},
        "chapters/14_diffusion_models": {"figure": {"g": (56,)}},
    }
    numbered = chapter_numbers.renumber(book_wide, parents)
    assert numbered["intro"] == {"figure": {"a": (1,)}}  # outside the chapters: unchanged
    assert numbered["chapters/05_mcmc"]["figure"] == {"f1": (5, 1), "f2": (5, 2)}
    assert numbered["chapters/05_mcmc"]["table"] == {"t": (5, 1)}
    assert numbered["exercises/ex05_mcmc"]["exercise"] == {"e1": (5, 1), "e2": (5, 2)}
    assert numbered["exercises/project_ising_mc"]["exercise"] == {"p1": (5, 3)}
    assert numbered["chapters/14_diffusion_models"]["figure"] == {"g": (14, 1)}


def test_chapter_of_follows_the_table_of_contents():
    parents = {"exercises/project_rbm": "chapters/06_training_rbms"}
    assert chapter_numbers.chapter_of("exercises/project_rbm", parents) == 6
    assert chapter_numbers.chapter_of("chapters/18_capstone", parents) == 18
    assert chapter_numbers.chapter_of("notation", parents) is None


def test_built_pages_show_numbers_of_their_chapter():
    """In the built book, every figure and exercise number of a chapter's pages is N.k."""
    chapter_of = {}
    current = None
    for docname in toc_docnames():
        match = re.match(r"chapters/(\d\d)_", docname)
        if match:
            current = int(match.group(1))
        if docname.startswith(("chapters/", "exercises/")):
            chapter_of[docname] = current
    built = [doc for doc in chapter_of if html_path(doc).is_file()]
    if not built:
        pytest.skip("the book is not built: bash scripts/build-book.sh")
    seen = 0
    for docname in built:
        html = html_path(docname).read_text(encoding="utf-8")
        for number in re.findall(
            r'class="caption-number">\s*(?:Fig\.|Exercise|Table|Listing) ([\d.]+)', html
        ):
            seen += 1
            assert number.split(".")[0] == str(chapter_of[docname]), (docname, number)
    assert seen > 50, seen
