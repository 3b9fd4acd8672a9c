"""Figures, tables and exercises numbered per chapter on the web site, as in the PDF.

Jupyter Book numbers captioned figures and sphinx-exercise's exercises through the whole book
("Exercise 44", "Fig. 56") unless the table of contents is numbered, and a numbered table of
contents restarts at 1 in every part. The PDF numbers them per chapter (``Fig. 14.1``). After
Sphinx has assigned its numbers, this extension renumbers every figure, table, code block and
exercise of a chapter's page, and of the pages nested under it in ``_toc.yml`` (its exercise
page and project), as ``(chapter, k)`` in reading order, where the chapter's number is the one
in its file name (``chapters/14_diffusion_models`` is chapter 14). Pages outside the chapters
keep Sphinx's numbers.
"""

from __future__ import annotations

import re
from typing import Any

CHAPTER = re.compile(r"^chapters/(\d\d)_")


def chapter_of(docname: str, parents: dict[str, str]) -> int | None:
    """The chapter a page belongs to: its own number, or that of the page it is nested under."""
    seen = set()
    while docname not in seen:
        seen.add(docname)
        match = CHAPTER.match(docname)
        if match:
            return int(match.group(1))
        if docname not in parents:
            return None
        docname = parents[docname]
    return None


def renumber(fignumbers: dict, parents: dict[str, str]) -> dict:
    """``env.toc_fignumbers`` with the pages of each chapter numbered ``(chapter, k)``.

    ``fignumbers`` maps docname -> figtype -> id -> number tuple, numbered in reading order
    through the book; the order is kept within each chapter.
    """
    items = []
    for docname, types in fignumbers.items():
        chapter = chapter_of(docname, parents)
        if chapter is None:
            continue
        for figtype, ids in types.items():
            for node_id, number in ids.items():
                items.append((figtype, tuple(number), chapter, docname, node_id))
    counters: dict[tuple[str, int], int] = {}
    result = {doc: {t: dict(ids) for t, ids in types.items()} for doc, types in fignumbers.items()}
    for figtype, _, chapter, docname, node_id in sorted(items):
        counters[figtype, chapter] = counters.get((figtype, chapter), 0) + 1
        result[docname][figtype][node_id] = (chapter, counters[figtype, chapter])
    return result


def _renumber(app: Any, env: Any) -> list[str]:
    parents = {
        child: parent for parent, children in env.toctree_includes.items() for child in children
    }
    env.toc_fignumbers = renumber(env.toc_fignumbers, parents)
    return [doc for doc in env.toc_fignumbers if chapter_of(doc, parents) is not None]


def setup(app: Any) -> dict[str, Any]:
    # after Sphinx's own TocTreeCollector (priority 500) has assigned the book-wide numbers
    app.connect("env-get-updated", _renumber, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
