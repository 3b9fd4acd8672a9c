"""Fixtures for the tests that open the built book and JupyterLab in headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import book_html_dir, chromium_driver, serve_directory, skip_or_fail


@pytest.fixture(scope="session")
def book_html() -> Path:
    """The built HTML book; skips (fails in CI) where it has not been built."""
    html = book_html_dir()
    if not (html / "index.html").exists():
        skip_or_fail(
            f"the book is not built at {html}; build it with `bash scripts/build-book.sh` "
            "(or point GENPHYS_BOOK_HTML at a built book)"
        )
    return html


@pytest.fixture(scope="session")
def book_url(book_html: Path) -> Iterator[str]:
    """Base URL of the built book, served on 127.0.0.1 for the whole session."""
    with serve_directory(book_html) as url:
        yield url


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A headless Chromium WebDriver shared by the session (fresh profile, console logged)."""
    with chromium_driver("book") as driver:
        yield driver
