"""scripts/execute_notebooks.py fills the execution cache under the keys the book build looks up.

The build (myst-nb, ``execute_notebooks: cache``) reads each page with its MyST notebook reader
and the book's MyST configuration, and looks the notebook up in jupyter-cache by a hash of its
code cells and kernelspec. If the script computed another key, every page would be executed
twice, silently: these tests compare the keys without executing anything.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from execute_notebooks import read_page, toc_pages  # noqa: E402
from strip_solutions import exercise_pages, strip_solutions  # noqa: E402

jupyter_cache = pytest.importorskip("jupyter_cache")
myst_nb_read = pytest.importorskip("myst_nb.core.read")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return jupyter_cache.get_cache(str(tmp_path_factory.mktemp("cache")))


def _book_md_config():
    """The MyST configuration the build parses pages with (``parse`` of ``_config.yml``)."""
    from myst_parser.config.main import MdParserConfig

    parse = yaml.safe_load((ROOT / "_config.yml").read_text()).get("parse", {})
    return MdParserConfig(enable_extensions=set(parse.get("myst_enable_extensions", [])))


def _build_key(cache, page: Path, text: str | None = None) -> str:
    text = page.read_text(encoding="utf8") if text is None else text
    notebook = myst_nb_read.read_myst_markdown_notebook(
        text, config=_book_md_config(), add_source_map=True, path=str(page)
    )
    return cache.create_hashed_notebook(notebook)[1]


def test_every_chapter_and_exercise_page_is_executed():
    pages = {p.relative_to(ROOT).as_posix() for p in toc_pages()}
    expected = {
        p.relative_to(ROOT).as_posix()
        for p in [*ROOT.glob("chapters/*.md"), *ROOT.glob("exercises/*.md")]
    }
    assert expected <= pages, sorted(expected - pages)


def test_the_keys_are_those_of_the_build(cache):
    for page in toc_pages():
        assert cache.create_hashed_notebook(read_page(page))[1] == _build_key(cache, page), page


def test_pages_without_solutions_have_their_own_keys_and_prose_keeps_a_key(cache):
    page = exercise_pages()[0]
    text = page.read_text(encoding="utf8")
    stripped = strip_solutions(text)
    key = cache.create_hashed_notebook(read_page(page, stripped))[1]
    assert key == _build_key(cache, page, stripped)
    assert key != _build_key(cache, page)
    # an edit of the prose only: the same key, the executed notebook is reused
    edited = text.replace("\n\n", "\n\nA sentence more.\n\n", 1)
    assert edited != text
    assert cache.create_hashed_notebook(read_page(page, edited))[1] == _build_key(cache, page)
