"""The built book as a reader meets it: every page of ``_toc.yml`` opened in headless Chromium.

On every page: the equations are typeset by the book's own MathJax (no raw TeX, no MathJax
error), every image loads and has alt text, no cross-reference or citation is left unresolved,
every internal link reaches an existing page and anchor, every resource comes from the book
itself (nothing from a CDN), the Binder launch button opens the page's own source file, and
the console shows no error. Search finds the chapters. A few screenshots are kept under
``_build/artifacts/screenshots/``.

The structural checks (a page for every written document, chapters ending with a summary and
their exercises) read the HTML files and need no browser.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import (
    REPO_ROOT,
    binder_url,
    book_config,
    colab_url,
    figure_cell_count,
    html_ids,
    html_path,
    is_notebook,
    save_screenshot,
    severe_console_messages,
    source_path,
    toc_docnames,
    wait_for,
    written_docnames,
)

DOCNAMES = written_docnames()
CHAPTERS = [name for name in DOCNAMES if name.startswith("chapters/")]
EXERCISES = [name for name in DOCNAMES if name.startswith("exercises/")]

# One page of each kind is photographed: the landing page, a chapter, an exercise page.
SCREENSHOT_PAGES = {toc_docnames()[0], *(CHAPTERS[1:2] or CHAPTERS[:1]), *EXERCISES[:1]}

# TeX left in the visible text (code, pre and typeset math removed) means MathJax or the MyST
# math parser missed it.
RAW_TEX = re.compile(
    r"\$\$|\\begin\{|\\end\{|\\\(|\\\)|\\\[|\\\]|\\(?:frac|sum|mathrm|mathbf|left|right)\b"
    r"|(?<![\w$])\$[^\s$][^$\n]*\$(?![\w$])"
)

# Everything the page checks need, measured in the page after MathJax has finished.
PAGE_REPORT_JS = r"""
const done = arguments[arguments.length - 1];
const started = Date.now();
const root = document.querySelector("article.bd-article") || document.querySelector("main")
  || document.body;
const mathNodes = () => Array.from(root.querySelectorAll(".math"));
const report = () => {
  const clone = root.cloneNode(true);
  clone.querySelectorAll("pre, code, script, style, mjx-container, .MathJax")
    .forEach((node) => node.remove());
  const sameOrigin = (url) => !url || url.startsWith(location.origin + "/")
    || url.startsWith("data:") || url.startsWith("blob:") || url.startsWith("about:");
  const declared = [
    ...Array.from(document.querySelectorAll("script[src]"), (e) => e.src),
    ...Array.from(document.querySelectorAll(
      "link[rel~='stylesheet'][href], link[rel~='preload'][href], link[rel~='icon'][href]"),
      (e) => e.href),
    ...Array.from(document.querySelectorAll("img[src], iframe[src]"), (e) => e.src),
  ];
  const fetched = performance.getEntriesByType("resource").map((e) => e.name);
  return {
    title: document.title,
    h1: Array.from(root.querySelectorAll("h1"), (e) => e.textContent.trim()),
    text: clone.textContent,
    mathjax: Boolean(window.MathJax && window.MathJax.startup),
    mathjaxSrc: Array.from(document.querySelectorAll("script[src*='mathjax' i]"), (e) => e.src),
    math: mathNodes().length,
    untypeset: mathNodes().filter((e) => !e.querySelector("mjx-container"))
      .map((e) => e.textContent.slice(0, 80)),
    // A TeX error is an <merror>; an undefined macro is shown as red text (noundefined).
    merror: Array.from(document.querySelectorAll(
      "mjx-merror, mjx-assistive-mml mtext[mathcolor='red'], mjx-mtext[style*='color: red']"),
      (e) => e.textContent),
    figures: Array.from(root.querySelectorAll("figure img")).length,
    images: Array.from(document.images, (img) => ({
      src: img.currentSrc || img.src, complete: img.complete, width: img.naturalWidth,
      alt: img.getAttribute("alt"), inContent: root.contains(img),
    })),
    problematic: Array.from(document.querySelectorAll(
      ".problematic, .pending_xref"),
      (e) => e.outerHTML.slice(0, 200)),
    links: Array.from(document.querySelectorAll("a[href]"), (a) => ({
      href: a.href, raw: a.getAttribute("href"), text: a.textContent.trim().slice(0, 80),
      inContent: root.contains(a), classes: a.className,
      citation: Boolean(a.closest(".bibtex-citation")),
    })),
    emptyCitations: Array.from(document.querySelectorAll(".bibtex-citation"))
      .filter((e) => !e.querySelector("a[href]")).map((e) => e.textContent),
    launch: Array.from(document.querySelectorAll(".dropdown-launch-buttons a[href]"),
      (a) => a.href),
    downloads: Array.from(document.querySelectorAll(
      "a.btn-download-notebook-button, a.btn-download-source-button"), (a) => ({
        href: a.href, download: a.getAttribute("download"), target: a.getAttribute("target"),
        kind: a.classList.contains("btn-download-notebook-button") ? "notebook" : "source",
      })),
    foreign: [...new Set([...declared, ...fetched].filter((u) => !sameOrigin(u)))],
    // Display equations and tables wider than the text column (they would scroll sideways,
    // clipped with no visible cue): how many pixels they stick out.
    wide: [
      ...Array.from(root.querySelectorAll("mjx-container[display='true']"), (m) => {
        const box = m.closest("div.math") || m.parentElement;
        const inner = m.querySelector("mjx-math") || m;
        return {kind: "equation", over: inner.getBoundingClientRect().width - box.clientWidth,
          id: (m.closest("[id]") || {}).id || "",
          text: (m.querySelector("mjx-assistive-mml") || m).textContent.slice(0, 60)};
      }),
      ...Array.from(root.querySelectorAll("table"), (t) => ({kind: "table",
        over: t.scrollWidth - t.parentElement.clientWidth, id: t.id || "",
        text: t.textContent.trim().slice(0, 60)})),
    ].filter((item) => item.over > 2),
  };
};
const finish = () => {
  const pending = Array.from(document.images).filter((img) => !img.complete);
  if (pending.length && Date.now() - started < 30000) { setTimeout(finish, 100); return; }
  done(report());
};
const waitMath = () => {
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) {
    mj.startup.promise.then(finish, (err) => { const r = report(); r.mathjaxError = String(err);
      done(r); });
  } else if (!document.querySelector("script[src*='mathjax' i]") || Date.now() - started > 30000) {
    finish();
  } else {
    setTimeout(waitMath, 50);
  }
};
if (document.readyState === "complete") waitMath();
else window.addEventListener("load", waitMath);
"""


def _pdf_required() -> bool:
    """True where the PDF is built (scripts/test-all.sh with XeLaTeX, CI): see tests/test_pdf.py."""
    return os.environ.get("GENPHYS_REQUIRE_PDF", "") not in ("", "0")


def _target_file(url: str, base_url: str, book_html: Path) -> tuple[Path, str]:
    """The built file and fragment that a same-origin link points to."""
    parts = urllib.parse.urlsplit(url)
    path = urllib.parse.unquote(parts.path)
    relative = path[len(urllib.parse.urlsplit(base_url).path) :].lstrip("/")
    target = book_html / relative
    if relative == "" or relative.endswith("/"):
        target = target / "index.html"
    return target, urllib.parse.unquote(parts.fragment)


def _page_problems(
    docname: str, report: dict[str, Any], console: list[str], base_url: str, book_html: Path
) -> list[str]:
    problems: list[str] = []
    # One title per page.
    if len(report["h1"]) != 1:
        problems.append(f"expected one <h1> in the article, found {report['h1']}")
    # Equations: typeset by the book's own MathJax, none left raw, none in error.
    if report["math"]:
        if not report["mathjax"]:
            problems.append(f"{report['math']} equations but MathJax did not start")
        if report.get("mathjaxError"):
            problems.append(f"MathJax failed: {report['mathjaxError']}")
        if report["untypeset"]:
            problems.append(f"equations not typeset: {report['untypeset'][:5]}")
    if report["merror"]:
        problems.append(f"MathJax errors or undefined macros: {report['merror'][:5]}")
    for src in report["mathjaxSrc"]:
        if not src.startswith(base_url):
            problems.append(f"MathJax is loaded from outside the book: {src}")
    raw = sorted({m.group(0) for m in RAW_TEX.finditer(report["text"])})
    if raw:
        problems.append(f"raw TeX left in the text: {raw[:10]}")
    # Unresolved references: '??', 'undefined label', docutils 'problematic' nodes.
    if "??" in report["text"]:
        i = report["text"].index("??")
        problems.append(f"unresolved reference '??' near {report['text'][i - 60 : i + 20]!r}")
    if re.search(r"undefined label|unknown document|could not find bibtex", report["text"], re.I):
        problems.append("unresolved reference text ('undefined label' or similar) in the page")
    if report["problematic"]:
        problems.append(f"unresolved reference nodes: {report['problematic'][:5]}")
    if report["emptyCitations"]:
        problems.append(f"citations without a link: {report['emptyCitations'][:5]}")
    # Images: loaded, with alt text in the content.
    for image in report["images"]:
        if not image["complete"] or image["width"] == 0:
            problems.append(f"image did not load: {image['src']}")
        if image["inContent"] and not (image["alt"] or "").strip():
            problems.append(f"image without alt text: {image['src']}")
    # Every captioned figure cell of the source drew its figure.
    source = source_path(docname)
    assert source is not None
    expected_figures = figure_cell_count(source)
    if report["figures"] < expected_figures:
        problems.append(
            f"{report['figures']} figures shown, but the source has {expected_figures} figure "
            "cells (a figure was not drawn: is MPLBACKEND set for the build?)"
        )
    # Links: internal targets exist (file and anchor); citations go to the bibliography.
    bibliography = next((n for n in toc_docnames() if n.endswith("bibliography")), None)
    for link in report["links"]:
        if link["raw"].startswith(("mailto:", "javascript:")) or not link["href"].startswith(
            base_url
        ):
            if link["citation"]:
                problems.append(f"citation does not link into the book: {link['href']}")
            continue
        target, fragment = _target_file(link["href"], base_url, book_html)
        if link["raw"] == "book.pdf" and not target.is_file() and not _pdf_required():
            continue  # the intro's PDF link; build-book.sh --pdf copies the PDF there
        if not target.is_file():
            problems.append(f"link {link['text']!r} points to a missing page: {link['raw']}")
            continue
        if fragment and target.suffix == ".html" and fragment not in html_ids(target):
            problems.append(f"link {link['text']!r} points to a missing anchor: {link['raw']}")
        if link["citation"] and (
            bibliography is None or target != html_path(bibliography).resolve()
        ):
            problems.append(f"citation does not link to the bibliography page: {link['raw']}")
    # Nothing fetched from outside the book (an offline reader would get errors).
    if report["foreign"]:
        problems.append(f"resources from outside the book: {report['foreign']}")
    # Download links: the page's source, and for a notebook its .ipynb, saved rather than
    # shown (a `download` attribute naming the file, no new tab), pointing at built files.
    kinds = sorted(link["kind"] for link in report["downloads"])
    wanted = ["notebook", "source"] if is_notebook(source) else ["source"]
    if kinds != wanted:
        problems.append(f"download links {kinds}, expected {wanted}")
    for link in report["downloads"]:
        name = urllib.parse.unquote(link["href"].rsplit("/", 1)[-1])
        if link["download"] != name or link["target"] == "_blank":
            problems.append(
                f"download link {link['href']} has download={link['download']!r} and "
                f"target={link['target']!r}; the browser would show it instead of saving {name}"
            )
        target, _ = _target_file(link["href"], base_url, book_html)
        if not target.is_file():
            problems.append(f"download link points to a missing file: {link['href']}")
    # The launch buttons open this page's source in Binder and its notebook in Colab.
    if is_notebook(source):
        expected = binder_url(docname)
        if report["launch"] != [expected, colab_url(docname)]:
            problems.append(
                f"launch links are {report['launch']}, expected [{expected}, {colab_url(docname)}]"
            )
        urlpath = urllib.parse.parse_qs(urllib.parse.urlsplit(expected).query)["urlpath"][0]
        in_repo = re.sub(r"^(lab/)?tree/", "", urlpath)
        if not (REPO_ROOT / in_repo).is_file():
            problems.append(f"Binder opens {in_repo}, which is not a file of the repository")
    elif report["launch"]:
        problems.append(f"launch button on a page that is not a notebook: {report['launch']}")
    # Nothing wider than the text column at desktop width: long equations are broken into
    # lines (aligned, split), wide tables get narrower columns.
    for item in report["wide"]:
        problems.append(
            f"{item['kind']} {item['id']!r} is {item['over']:.0f} px wider than the text column: "
            f"{item['text']!r}"
        )
    # The console.
    problems.extend(f"console error: {message}" for message in console)
    return problems


@pytest.mark.browser
@pytest.mark.parametrize("docname", DOCNAMES)
def test_page_renders_for_readers(docname, chromium, book_url, book_html):
    page = html_path(docname)
    assert page.exists(), (
        f"{source_path(docname)} is in _toc.yml but {page} was not built; rebuild the book"
    )
    severe_console_messages(chromium)  # drain messages of earlier pages
    chromium.get(f"{book_url}/{docname}.html")
    report = chromium.execute_async_script(PAGE_REPORT_JS)
    console = severe_console_messages(chromium)
    if docname in SCREENSHOT_PAGES:
        save_screenshot(chromium, docname)
    problems = _page_problems(docname, report, console, book_url, book_html)
    assert not problems, f"{docname}.html:\n  - " + "\n  - ".join(problems)


@pytest.mark.browser
def test_search_finds_the_partition_function(chromium, book_url):
    """The search page (Sphinx's own index, no server side) lists chapters for a query."""
    severe_console_messages(chromium)
    chromium.get(f"{book_url}/search.html?q=partition")
    results = chromium.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const started = Date.now();
        (function poll() {
          const items = document.querySelectorAll("#search-results ul.search li a");
          const status = document.querySelector("#search-results .search-summary, "
            + "#search-results p");
          const finished = status && !/searching|preparing/i.test(status.textContent);
          if ((items.length && finished) || Date.now() - started > 30000) {
            done(Array.from(items, (a) => a.getAttribute("href")));
          } else { setTimeout(poll, 100); }
        })();
        """
    )
    console = severe_console_messages(chromium)
    save_screenshot(chromium, "search_partition", full_page=False)
    assert results, "searching for 'partition' returned no results"
    assert any("partition_function" in href for href in results), results
    assert not console, console


# --------------------------------------------------------------------------------------------
# Structure of the built book, read from the HTML files (no browser needed)
# --------------------------------------------------------------------------------------------


def _sections(page: Path) -> list[tuple[str, str]]:
    """(title, HTML) of each second-level section of a built page, in order."""
    html = page.read_text(encoding="utf-8")
    heads = list(re.finditer(r"<h2>(.*?)<a class=\"headerlink\"", html, flags=re.S))
    sections = []
    for k, head in enumerate(heads):
        end = heads[k + 1].start() if k + 1 < len(heads) else html.find("</article>", head.end())
        title = re.sub(r"<[^>]+>", "", head.group(1)).strip()
        sections.append((title, html[head.end() : end]))
    return sections


def test_every_written_page_is_built(book_html):
    missing = [name for name in DOCNAMES if not html_path(name).exists()]
    assert not missing, f"in _toc.yml with a source but not built (rebuild the book): {missing}"


def test_landing_notation_and_bibliography_pages_exist(book_html):
    names = toc_docnames()
    assert html_path(names[0]).exists(), "landing page"
    for needed in ("notation", "bibliography"):
        found = [n for n in names if n.rsplit("/", 1)[-1] == needed]
        assert found, f"no {needed} page in _toc.yml"
        assert html_path(found[0]).exists(), f"{needed} page is not built"
    bibliography = html_path(next(n for n in names if n.endswith("bibliography")))
    assert 'class="citation' in bibliography.read_text(encoding="utf-8"), "empty bibliography"


@pytest.mark.parametrize("docname", CHAPTERS)
def test_chapter_ends_with_summary_and_exercises(docname, book_html):
    """Each chapter ends with 'Summary', 'Exercises' (linking to its exercise page), 'Further reading'."""
    page = html_path(docname)
    if not page.exists():
        pytest.fail(f"{page} is not built; rebuild the book")
    sections = _sections(page)
    titles = [title for title, _ in sections]
    assert titles[-3:] == ["Summary", "Exercises", "Further reading"], (
        f"last sections of {docname}: {titles}"
    )
    assert "cite" in sections[-1][1] or "bibliography" in sections[-1][1], (
        f"the Further reading of {docname} cites nothing"
    )
    exercises_html = sections[-2][1]
    linked = {
        urllib.parse.urljoin(f"{docname}.html", href.split("#")[0])
        for href in re.findall(r'href="([^"#][^"]*)"', exercises_html)
    }
    own = [n for n in _toc_sections(docname) if n.startswith("exercises/")]
    wanted = own or EXERCISES
    assert any(f"{n}.html" in linked for n in wanted), (
        f"the Exercises section of {docname} links to none of {wanted}: {sorted(linked)}"
    )


def _toc_sections(docname: str) -> list[str]:
    """The documents listed under `docname` in ``_toc.yml`` (its ``sections``)."""
    import yaml

    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text(encoding="utf-8"))
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("file") == docname:
                found.extend(str(s["file"]) for s in node.get("sections", []) or [])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(toc)
    return found


def test_repository_button_points_at_the_repository(book_html):
    url = book_config()["repository"]["url"].rstrip("/")
    html = html_path(toc_docnames()[0]).read_text(encoding="utf-8")
    assert f'href="{url}"' in html, f"no repository button pointing at {url}"


# --------------------------------------------------------------------------------------------
# Downloads and dark mode, as a reader uses them
# --------------------------------------------------------------------------------------------

FIGURE_CHAPTER = next(
    (name for name in CHAPTERS if figure_cell_count(source_path(name) or Path())), None
)


@pytest.mark.browser
@pytest.mark.parametrize("kind", ["notebook", "source"])
def test_download_button_saves_the_file(kind, chromium, book_url, book_html, tmp_path):
    """Clicking a chapter's .ipynb / .md download link saves the built file, unchanged."""
    docname = CHAPTERS[0]
    chromium.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
    )
    severe_console_messages(chromium)
    chromium.get(f"{book_url}/{docname}.html")
    href = chromium.execute_script(
        "const a = document.querySelector(arguments[0]); a.click(); return a.href;",
        f"a.btn-download-{kind}-button",
    )
    name = urllib.parse.unquote(href.rsplit("/", 1)[-1])
    saved = wait_for(
        lambda: (tmp_path / name).is_file() and not list(tmp_path.glob("*.crdownload")),
        30,
        f"clicking the {kind} download link of {docname} saved no {name} in {tmp_path}",
    )
    assert saved
    built, _ = _target_file(href, book_url, book_html)
    assert (tmp_path / name).read_bytes() == built.read_bytes()
    # the page stays where it was: nothing opened the file as a page
    assert chromium.current_url.startswith(f"{book_url}/{docname}.html")
    assert len(chromium.window_handles) == 1
    assert not severe_console_messages(chromium)


DARK_MODE_JS = r"""
const done = arguments[arguments.length - 1];
document.documentElement.dataset.theme = "dark";
document.documentElement.dataset.mode = "dark";
const images = () => Array.from(document.querySelectorAll("article.bd-article figure img"));
const started = Date.now();
(function poll() {
  const pending = images().filter((img) => !img.complete);
  if (pending.length && Date.now() - started < 30000) { setTimeout(poll, 100); return; }
  requestAnimationFrame(() => done({
    theme: document.documentElement.dataset.theme,
    page: getComputedStyle(document.body).backgroundColor,
    images: images().map((img) => ({
      src: img.currentSrc, background: getComputedStyle(img).backgroundColor,
    })),
  }));
})();
"""


def _rgba(css: str) -> tuple[float, ...]:
    """(r, g, b, alpha) of a computed CSS colour: ``rgb(1, 2, 3)`` or ``rgba(1, 2, 3, 0.5)``."""
    numbers = [float(x) for x in re.findall(r"[\d.]+", css)]
    return tuple(numbers + [1.0] * (4 - len(numbers)))


def _luminance(rgb: tuple[float, ...]) -> float:
    r, g, b = rgb[:3]
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


@pytest.mark.browser
def test_figures_are_legible_in_dark_mode(chromium, book_url):
    """In the theme's dark mode every figure sits on an opaque light background.

    matplotlib's inline figures are transparent PNGs with dark text. The check reads the
    computed background of each figure image (opaque, light) and the pixels of the image as
    the browser shows it: its border, which is the figure's own background, must be light
    while the page around it is dark.
    """
    import io

    from PIL import Image

    if FIGURE_CHAPTER is None:
        pytest.skip("no chapter draws a captioned figure")
    severe_console_messages(chromium)
    chromium.get(f"{book_url}/{FIGURE_CHAPTER}.html")
    report = chromium.execute_async_script(DARK_MODE_JS)
    assert report["theme"] == "dark"
    assert _luminance(_rgba(report["page"])) < 0.3, f"page background {report['page']}"
    assert len(report["images"]) >= figure_cell_count(source_path(FIGURE_CHAPTER)), report
    elements = chromium.find_elements("css selector", "article.bd-article figure img")
    problems = []
    for image, element in zip(report["images"], elements, strict=True):
        rgba = _rgba(image["background"])
        if rgba[3] < 1 or _luminance(rgba) < 0.9:
            problems.append(f"{image['src']}: background {image['background']}")
        chromium.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        shot = Image.open(io.BytesIO(element.screenshot_as_png)).convert("L")
        width, height = shot.size
        border = [
            shot.getpixel((x, y)) for x in range(width) for y in (0, 1, height - 2, height - 1)
        ]
        border += [
            shot.getpixel((x, y)) for y in range(height) for x in (0, 1, width - 2, width - 1)
        ]
        light = sum(value > 180 for value in border) / len(border)
        if light < 0.9:
            problems.append(f"{image['src']}: only {light:.0%} of its border pixels are light")
    chromium.execute_script("window.scrollTo(0, 0);")
    save_screenshot(chromium, f"dark_{FIGURE_CHAPTER}")
    assert not problems, "figures in dark mode:\n  - " + "\n  - ".join(problems)
    assert not severe_console_messages(chromium)


# --------------------------------------------------------------------------------------------
# The page's frame at desktop width
# --------------------------------------------------------------------------------------------

SEARCH_FIELDS_JS = r"""
const shown = (e) => {
  const r = e.getBoundingClientRect();
  return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== "hidden";
};
const place = (e) => {
  const box = e.closest("#pst-header, .bd-sidebar-primary, .bd-header-article, article, "
    + ".bd-sidebar-secondary, footer");
  return box ? (box.id || box.className.split(" ")[0]) : e.parentElement.className;
};
const header = document.querySelector("#pst-header");
return {
  width: window.innerWidth,
  topBar: header ? header.getBoundingClientRect().height : 0,
  fields: Array.from(document.querySelectorAll(
    ".search-button__button, form.bd-search, input[type='search']"))
    .filter((e) => !e.closest("article") && shown(e)).map(place),
};
"""


@pytest.mark.browser
@pytest.mark.parametrize("width", [1000, 1280, 1400])
def test_one_search_box_at_desktop_width(width, chromium, book_url):
    """A desktop reader sees one search field (the sidebar's), not a second one in a top bar.

    pydata-sphinx-theme >= 0.16 adds a search field to its top navigation bar by default;
    with the book theme's own field at the top of the left sidebar that made two, the second
    in an extra 64 px bar above the page. Counted: search buttons, forms and inputs outside the
    article that the browser draws (non-zero box) at a window `width` px wide.
    """
    if not CHAPTERS:
        pytest.skip("no chapter is built")
    size = chromium.get_window_size()
    chromium.set_window_size(width, 900)
    try:
        severe_console_messages(chromium)
        chromium.get(f"{book_url}/{CHAPTERS[0]}.html")
        report = chromium.execute_script(SEARCH_FIELDS_JS)
    finally:
        chromium.set_window_size(size["width"], size["height"])
    assert report["width"] == width, report
    assert len(report["fields"]) == 1, (
        f"{len(report['fields'])} search fields shown at {width} px (where: {report['fields']})"
    )
    assert report["topBar"] < 1, (
        f"an extra top bar {report['topBar']:.0f} px high above the page at {width} px"
    )


# --------------------------------------------------------------------------------------------
# Chapter-start schematics on a phone
# --------------------------------------------------------------------------------------------

PHONE_WIDTH = 390
# The smallest text of genphys.plotting's schematics, in points (checked by
# tests/test_plotting.py); at the PNG's dpi it is SCHEMATIC_FONT_PT * dpi / 72 image pixels.
SCHEMATIC_FONT_PT = 8
LEGIBLE_PX = 8
SCHEMATIC_CHAPTERS = [
    name for name in CHAPTERS if "name: fig-schematic-" in source_path(name).read_text("utf-8")
]

SCHEMATICS_JS = r"""
const done = arguments[arguments.length - 1];
const images = () => Array.from(document.querySelectorAll("figure[id^='fig-schematic-'] > img"));
const started = Date.now();
(function poll() {
  if (images().some((img) => !img.complete) && Date.now() - started < 30000) {
    setTimeout(poll, 100); return;
  }
  requestAnimationFrame(() => done({
    width: window.innerWidth,
    page: document.documentElement.scrollWidth,
    viewport: document.documentElement.clientWidth,
    schematics: images().map((img) => {
      const figure = img.closest("figure");
      const caption = figure.querySelector("figcaption");
      return {id: figure.id, src: img.currentSrc, natural: img.naturalWidth,
        shown: img.getBoundingClientRect().width, column: figure.clientWidth,
        caption: caption ? caption.getBoundingClientRect().width : 0};
    }),
  }));
})();
"""


def _png_dpi(path: Path) -> float:
    """The resolution written in a PNG (matplotlib writes its savefig dpi), 72 if none."""
    from PIL import Image

    with Image.open(path) as image:
        return float((image.info.get("dpi") or (72, 72))[0])


@pytest.mark.browser
@pytest.mark.parametrize("docname", SCHEMATIC_CHAPTERS)
def test_schematics_are_legible_on_a_phone(docname, chromium, book_url, book_html):
    """At 390 px the chapter's schematic shows its smallest label at >= 8 CSS px.

    The label's size on screen is its size in the PNG, SCHEMATIC_FONT_PT * dpi / 72 pixels (the
    dpi read from the built PNG), times the scale at which the browser draws the image
    (rendered width / natural width). Scaled to the phone's column the labels fall to 4-6 px;
    the book shows schematics at their natural size in a figure that scrolls sideways. The
    page itself must not become wider than the screen, and the caption stays in the column.
    """
    size = chromium.get_window_size()
    chromium.set_window_size(PHONE_WIDTH, 844)
    try:
        severe_console_messages(chromium)
        chromium.get(f"{book_url}/{docname}.html")
        report = chromium.execute_async_script(SCHEMATICS_JS)
    finally:
        chromium.set_window_size(size["width"], size["height"])
    assert report["width"] == PHONE_WIDTH, report
    assert report["schematics"], f"{docname}.html shows no fig-schematic-* image"
    problems = []
    for item in report["schematics"]:
        png, _ = _target_file(item["src"], book_url, book_html)
        scale = item["shown"] / item["natural"]
        label_px = SCHEMATIC_FONT_PT * _png_dpi(png) / 72 * scale
        if label_px < LEGIBLE_PX:
            problems.append(
                f"{item['id']}: {item['natural']} px image shown {item['shown']:.0f} px wide, so "
                f"its {SCHEMATIC_FONT_PT} pt labels are {label_px:.2f} CSS px"
            )
        if item["caption"] > item["column"] + 1:
            problems.append(
                f"{item['id']}: caption {item['caption']:.0f} px wide in a "
                f"{item['column']} px column"
            )
    if report["page"] > report["viewport"]:
        problems.append(f"the page is {report['page']} px wide on a {report['viewport']} px screen")
    assert not problems, f"{docname}.html at {PHONE_WIDTH} px:\n  - " + "\n  - ".join(problems)
