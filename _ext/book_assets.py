"""Sphinx hook that keeps the HTML book free of browser console errors.

Inline ``<script>`` bodies that an extension registers after the HTML builder started (the
``THEBE_JS_URL`` and ``togglebuttonSelector`` settings of sphinx-thebe and
sphinx-togglebutton) are written twice by Sphinx < 8.2, and the second copy raises
"Identifier 'THEBE_JS_URL' has already been declared" in the browser. Each page keeps one
copy of each script.

MathJax itself is served from the book (``_static/mathjax``) by the sphinx-mathjax-offline
extension, so equations render without a network.
"""

from __future__ import annotations

from typing import Any


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


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
