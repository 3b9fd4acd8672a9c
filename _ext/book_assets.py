"""Sphinx hooks that make the HTML book work wherever a reader opens it.

- Inline ``<script>`` bodies that an extension registers after the HTML builder started (the
  ``THEBE_JS_URL`` and ``togglebuttonSelector`` settings of sphinx-thebe and
  sphinx-togglebutton) are written twice by Sphinx < 8.2, and the second copy raises
  "Identifier 'THEBE_JS_URL' has already been declared" in the browser. Each page keeps one
  copy of each script.
- Downloads download: the theme's ".ipynb" and ".md" buttons are plain links opened in a new
  tab, so a browser shows the notebook's JSON instead of saving it. Each such link gets a
  ``download="<file name>"`` attribute (and loses ``target="_blank"``) in the written HTML.
- Colab: Colab opens ``.ipynb`` files of a GitHub repository, not MyST ``.md``; the theme's
  own Colab button would point at the ``.md`` source. Each notebook page gets a Colab launch
  button opening ``<docname>.ipynb`` on the branch ``colab_notebooks_branch``, where the
  publishing workflow pushes the notebooks that ``scripts/make-notebooks.py`` generates.
- One search box: pydata-sphinx-theme >= 0.16 puts a search field in its top navigation bar
  (``navbar_persistent``) unless the theme options name that bar's items. The book theme
  already has a search field at the top of the left sidebar, so on a desktop screen (960 px
  and wider, where that bar is shown) readers saw an extra top bar holding a second search
  box. The bar is left empty (and takes no height), unless ``_config.yml`` sets it.

MathJax itself is served from the book (``_static/mathjax``) by the sphinx-mathjax-offline
extension, so equations render without a network.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

COLAB_URL = "https://colab.research.google.com"

# The theme's download links: <a href="..." target="_blank" class="btn ... btn-download-...-button
DOWNLOAD_LINK = re.compile(
    r'<a href="(?P<href>[^"]+)" target="_blank"(?P<rest>\s+class="[^"]*'
    r'btn-download-(?:notebook|source)-button[^"]*")'
)


def _dedupe_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree) -> None:
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        key = (
            str(getattr(script, "filename", script) or ""),
            getattr(script, "priority", 0),
            tuple(sorted(getattr(script, "attributes", {}).items())),
        )
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def colab_url(repository_url: str, branch: str, docname: str) -> str:
    """The Colab URL of the generated notebook ``<docname>.ipynb`` on ``branch`` (GitHub only)."""
    owner_repo = re.sub(r"^https://github\.com/", "", repository_url.rstrip("/"))
    return f"{COLAB_URL}/github/{owner_repo}/blob/{branch}/{docname}.ipynb"


def _add_colab_button(app: Any, pagename: str, templatename: str, context: dict, doctree) -> None:
    branch = app.config.colab_notebooks_branch
    repository = app.config.html_theme_options.get("repository_url", "")
    if not branch or not repository.startswith("https://github.com/"):
        return
    for group in context.get("header_buttons", []) or []:
        # the theme adds this group only to notebook pages (a kernelspec in the front matter)
        if isinstance(group, dict) and group.get("label") == "launch-buttons":
            group["buttons"].append(
                {
                    "type": "link",
                    "text": "Colab",
                    "tooltip": "Launch on Colab",
                    "icon": "_static/images/logo_colab.png",
                    "url": colab_url(repository, branch, pagename),
                    "label": "colab-button",
                }
            )


def add_download_attributes(html: str) -> str:
    """Give the theme's download links a ``download`` attribute and open them in place."""

    def fix(match: re.Match) -> str:
        name = match["href"].rsplit("/", 1)[-1]
        return f'<a href="{match["href"]}" download="{name}"{match["rest"]}'

    return DOWNLOAD_LINK.sub(fix, html)


def _fix_downloads(app: Any, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for page in Path(app.outdir).rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        fixed = add_download_attributes(html)
        if fixed != html:
            page.write_text(fixed, encoding="utf-8")


def _one_search_box(app: Any, config: Any) -> None:
    options = config.html_theme_options
    if isinstance(options, dict):
        options.setdefault("navbar_persistent", [])


def setup(app: Any) -> dict[str, Any]:
    app.add_config_value("colab_notebooks_branch", "", "html", types=[str])
    app.connect("config-inited", _one_search_box)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("html-page-context", _add_colab_button, priority=600)
    app.connect("build-finished", _fix_downloads)
    return {"version": "1.1", "parallel_read_safe": True, "parallel_write_safe": True}
