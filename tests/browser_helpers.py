"""Helpers for the tests that open the built book and the Binder environment in a browser.

The book is served from ``_build/html`` (or ``$GENPHYS_BOOK_HTML``) by a threaded
``http.server`` on 127.0.0.1 and opened in headless Chromium through Selenium and
chromedriver. Nothing here touches the network: the server listens on the loopback
interface only and Chromium is started with its background networking switched off.

Where Chromium, chromedriver or Selenium is missing the tests skip with a message saying how
to install them (``bash scripts/install-browser.sh``); with ``GENPHYS_REQUIRE_BROWSER=1`` (set
by CI) they fail instead, so that a missing browser cannot hide a broken page.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS_DIR = REPO_ROOT / "_build" / "artifacts"
SCREENSHOTS_DIR = ARTIFACTS_DIR / "screenshots"
SOURCE_SUFFIXES = (".md", ".ipynb", ".rst")
INSTALL_HINT = "install them with `bash scripts/install-browser.sh`"

# Headless, offline, no first-run or background traffic, no QUIC; a fresh profile is added
# per browser by `start_chromium`.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--disable-default-apps",
    "--metrics-recording-only",
    "--password-store=basic",
    "--window-size=1280,900",
)


# --------------------------------------------------------------------------------------------
# The book: configuration, table of contents, sources
# --------------------------------------------------------------------------------------------


def book_html_dir() -> Path:
    """Directory of the built HTML book: ``$GENPHYS_BOOK_HTML`` or ``_build/html``."""
    return Path(os.environ.get("GENPHYS_BOOK_HTML", REPO_ROOT / "_build" / "html")).resolve()


@functools.cache
def book_config() -> dict[str, Any]:
    """The parsed ``_config.yml``."""
    return yaml.safe_load((REPO_ROOT / "_config.yml").read_text(encoding="utf-8"))


@functools.cache
def toc_docnames() -> tuple[str, ...]:
    """Every document of ``_toc.yml`` in reading order, the root first (``chapters/02_x``)."""
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text(encoding="utf-8"))
    names = [toc["root"]]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "file" in node:
                names.append(str(node["file"]))
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk({key: toc.get(key) for key in ("parts", "chapters", "sections") if key in toc})
    return tuple(dict.fromkeys(re.sub(r"\.(md|ipynb|rst)$", "", n) for n in names))


def source_path(docname: str) -> Path | None:
    """The source file of a document (``.md``, ``.ipynb`` or ``.rst``), or None if absent."""
    for suffix in SOURCE_SUFFIXES:
        path = REPO_ROOT / f"{docname}{suffix}"
        if path.exists():
            return path
    return None


def written_docnames() -> list[str]:
    """The documents of ``_toc.yml`` whose source exists in the repository."""
    return [name for name in toc_docnames() if source_path(name) is not None]


def is_notebook(path: Path) -> bool:
    """True for a Jupyter notebook or a Jupytext text notebook (front matter with a kernel)."""
    if path.suffix == ".ipynb":
        return True
    text = path.read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, flags=re.S)
    return bool(match) and "kernelspec" in (yaml.safe_load(match.group(1)) or {})


def figure_cell_count(path: Path) -> int:
    """Number of code cells of a MyST notebook that draw a captioned figure (``mystnb: figure``)."""
    if path.suffix != ".md":
        return 0
    text = path.read_text(encoding="utf-8")
    cells = re.findall(r"```\{code-cell\}[^\n]*\n---\n(.*?)\n---\n", text, flags=re.S)
    return sum(
        1 for meta in cells if "figure" in ((yaml.safe_load(meta) or {}).get("mystnb") or {})
    )


def html_path(docname: str) -> Path:
    """The built HTML file of a document."""
    return book_html_dir() / f"{docname}.html"


def binder_url(docname: str) -> str:
    """The launch-button URL that ``_config.yml`` asks for, for one document.

    ``{binderhub_url}/v2/gh/{owner}/{repo}/{branch}?urlpath={lab|tree}/tree/{path}`` where
    ``path`` is the source file relative to the repository root (``path_to_book`` prefixed).
    """
    config = book_config()
    repo_url = config["repository"]["url"].rstrip("/")
    owner_repo = re.sub(r"^https://github\.com/", "", repo_url)
    branch = config["repository"].get("branch", "main")
    hub = config["launch_buttons"]["binderhub_url"].rstrip("/")
    interface = config["launch_buttons"].get("notebook_interface", "classic")
    source = source_path(docname)
    assert source is not None, docname
    prefix = str(config["repository"].get("path_to_book", "") or "").strip("/")
    path = source.relative_to(REPO_ROOT).as_posix()
    if prefix:
        path = f"{prefix}/{path}"
    ui = "lab/tree" if interface == "jupyterlab" else "tree"
    return f"{hub}/v2/gh/{owner_repo}/{branch}?urlpath={ui}/{path}"


def colab_url(docname: str) -> str:
    """The Colab launch URL that ``_ext/book_assets.py`` writes, for one document.

    ``https://colab.research.google.com/github/{owner}/{repo}/blob/{branch}/{docname}.ipynb``
    with ``branch`` the ``colab_notebooks_branch`` of ``_config.yml``, where the publishing
    workflow pushes the notebooks of ``scripts/make-notebooks.py``.
    """
    config = book_config()
    owner_repo = re.sub(r"^https://github\.com/", "", config["repository"]["url"].rstrip("/"))
    branch = config["sphinx"]["config"]["colab_notebooks_branch"]
    return f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/{docname}.ipynb"


# --------------------------------------------------------------------------------------------
# Built HTML: ids and links, read without a browser
# --------------------------------------------------------------------------------------------


class _IdCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("id", "name") and value:
                self.ids.add(value)


@functools.cache
def html_ids(path: Path) -> frozenset[str]:
    """Every ``id`` (and ``name``) attribute of a built HTML file."""
    collector = _IdCollector()
    collector.feed(path.read_text(encoding="utf-8"))
    return frozenset(collector.ids)


# --------------------------------------------------------------------------------------------
# Skips that turn into failures in CI
# --------------------------------------------------------------------------------------------


def browser_required() -> bool:
    """True where a missing browser must fail the tests (CI sets GENPHYS_REQUIRE_BROWSER=1)."""
    return os.environ.get("GENPHYS_REQUIRE_BROWSER", "") not in ("", "0")


def skip_or_fail(reason: str) -> None:
    """Skip with `reason`, or fail with it where the browser tests are required."""
    if browser_required():
        pytest.fail(f"{reason} (GENPHYS_REQUIRE_BROWSER is set)", pytrace=False)
    pytest.skip(reason)


def find_chromium() -> tuple[str, str] | None:
    """Paths of Chromium and chromedriver (``$GENPHYS_CHROMIUM``, ``$GENPHYS_CHROMEDRIVER``)."""
    browser = os.environ.get("GENPHYS_CHROMIUM") or next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
    )
    driver = os.environ.get("GENPHYS_CHROMEDRIVER") or shutil.which("chromedriver")
    if browser and driver and os.access(browser, os.X_OK) and os.access(driver, os.X_OK):
        return browser, driver
    return None


def require_chromium() -> tuple[str, str]:
    """Paths of Chromium and chromedriver, or skip (fail in CI) saying how to install them."""
    found = find_chromium()
    if found is None:
        skip_or_fail(f"headless Chromium and chromedriver are not installed; {INSTALL_HINT}")
    try:
        import selenium  # noqa: F401
    except ImportError:
        skip_or_fail("Selenium is not installed; install the test extras: pip install -e .[test]")
    assert found is not None
    return found


@contextlib.contextmanager
def chromium_driver(name: str) -> Iterator[Any]:
    """A headless Chromium WebDriver with a fresh profile; its console log is recorded."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    browser, chromedriver = require_chromium()
    profile = tempfile.mkdtemp(prefix=f"genphys-chromium-{name}-")
    options = Options()
    options.binary_location = browser
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    log = ARTIFACTS_DIR / f"chromedriver-{name}-{worker}.log"
    service = Service(executable_path=chromedriver, log_output=str(log))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(60)
        driver.set_script_timeout(60)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def severe_console_messages(driver: Any) -> list[str]:
    """The console messages of level SEVERE since the last call (the log is drained)."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def save_screenshot(driver: Any, name: str, full_page: bool = True) -> Path:
    """Save a PNG of the current page under ``_build/artifacts/screenshots/``."""
    SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS_DIR / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    size = driver.get_window_size()
    if full_page:
        height = driver.execute_script(
            "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"
        )
        driver.set_window_size(size["width"], min(max(int(height), size["height"]), 6000))
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(size["width"], size["height"])
    return path


# --------------------------------------------------------------------------------------------
# Local servers
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serve `directory` over HTTP on 127.0.0.1 (free port) in a thread; yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="book-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def wait_for(predicate: Callable[[], Any], timeout: float, message: str, interval=0.2) -> Any:
    """Poll `predicate` until it returns a truthy value; fail with `message` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{message} (waited {timeout:.0f} s)", pytrace=False)
        time.sleep(interval)
