"""Notebooks for readers outside the book: plain Markdown, solutions folded, the library installed.

Colab, GitHub and a plain Jupyter render CommonMark with ``$`` maths, not MyST: there a
``{cite}`` role, a ``(sec-x)=`` label or an ``{exercise}`` directive shows as raw text or as a
code block of raw LaTeX. The notebooks made for them (``scripts/make-notebooks.py`` and the
handouts of ``scripts/strip_solutions.py``) pass every markdown cell through
:func:`plain_markdown`:

* labels ``(name)=`` and directive options (``:label:``, ``:class:``) are removed, and so is the
  label of a display equation (``$$ (eq-x)``);
* ``{cite}`` becomes author-year text as in the book (``[Hinton, 2002]``, ``{cite:t}``:
  ``Hinton [2002]``), from ``references.bib``;
* ``{ref}``/``{numref}``/``{doc}`` become the title of the section or page they point to (or
  their explicit text), ``{eq}`` the words "eq. (name)", ``{term}`` its text, ``{math}``
  inline maths, and ``{glue:text}`` (a number computed when the book is built) the words
  "(computed below)";
* admonitions and notes become block quotes with a bold title, exercises a bold
  "Exercise: title" followed by the statement, figures an image with its caption;
  ``{tableofcontents}``, ``{bibliography}`` and the solution gates are dropped.

Solutions are never printed by "Run all": the cells between a solution's gates become one
markdown cell holding the discussion in a folded ``<details>`` block, with the call that shows
the reference code (``reader_notebook``; the handouts have no solutions at all). The first cell
installs the library where ``import genphys`` fails (Colab). Cell ids are derived from the
cell's position and content, so two runs write identical notebooks, and Jupytext's pairing
metadata is removed.

    from reader_notebooks import Converter, reader_notebook
    reader_notebook(page_text, requirement, Converter.for_book())
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent

FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|:{3,})\s*\{(?P<name>[\w:-]+)\}\s*(?P<arg>.*)$")
ROLE = re.compile(r"\{(?P<name>[\w:-]+)\}`(?P<body>[^`]*)`")
LABEL_LINE = re.compile(r"^\s*\([\w-]+\)=\s*$")
OPTION_LINE = re.compile(r"^\s*:[\w-]+:(\s.*)?$")
DROPPED = {"tableofcontents", "bibliography", "solution-start", "solution-end", "only"}
QUOTED = {
    "admonition": None,
    "note": "Note",
    "tip": "Tip",
    "important": "Important",
    "warning": "Warning",
    "caution": "Caution",
    "hint": "Hint",
    "seealso": "See also",
    "attention": "Attention",
    "danger": "Danger",
    "error": "Error",
}


def _bib_entries(path: Path) -> dict[str, tuple[str, str]]:
    """``{key: (authors as cited, year)}`` from a BibTeX file (first author et al. for 3+)."""
    from pybtex.database import parse_file

    entries = {}
    for key, entry in parse_file(str(path)).entries.items():
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        names = [" ".join(p.last_names).replace("{", "").replace("}", "") for p in people]
        if not names:
            who = entry.fields.get("organization", key)
        elif len(names) == 1:
            who = names[0]
        elif len(names) == 2:
            who = f"{names[0]} and {names[1]}"
        else:
            who = f"{names[0]} et al."
        entries[key] = (who, entry.fields.get("year", "n.d."))
    return entries


def _titles(root: Path) -> dict[str, str]:
    """``{label or docname: title}`` for every section label and page of the book."""
    titles: dict[str, str] = {}
    pages = [*root.glob("*.md"), *root.glob("chapters/*.md"), *root.glob("exercises/*.md")]
    for page in pages:
        lines = page.read_text(encoding="utf-8").splitlines()
        doc = page.relative_to(root).with_suffix("").as_posix()
        for i, line in enumerate(lines):
            match = re.match(r"^\(([\w-]+)\)=\s*$", line)
            if match:
                for following in lines[i + 1 : i + 4]:
                    heading = re.match(r"^#+\s+(.*)$", following)
                    if heading:
                        titles[match.group(1)] = heading.group(1).strip()
                        break
            heading = re.match(r"^#\s+(.*)$", line)
            if heading and doc not in titles:
                titles[doc] = heading.group(1).strip()
    return titles


@dataclass
class Converter:
    """MyST to plain Markdown, with the book's bibliography and section titles."""

    citations: dict[str, tuple[str, str]] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_book(cls, root: Path = ROOT) -> Converter:
        return cls(_bib_entries(root / "references.bib"), _titles(root))

    # -- roles -------------------------------------------------------------------------
    def _cite(self, keys: str, textual: bool) -> str:
        parts = []
        for key in (k.strip() for k in keys.split(",")):
            who, year = self.citations.get(key, (key, "n.d."))
            parts.append(f"{who} [{year}]" if textual else f"{who}, {year}")
        return ", ".join(parts) if textual else "[" + "; ".join(parts) + "]"

    def _role(self, match: re.Match) -> str:
        name, body = match.group("name"), match.group("body")
        explicit = re.match(r"^(?P<text>.*?)\s*<(?P<target>[^>]+)>$", body, flags=re.S)
        text, target = (
            (explicit.group("text"), explicit.group("target")) if explicit else (None, body)
        )
        if name in ("cite", "cite:p", "cite:ps"):
            return self._cite(body, textual=False)
        if name in ("cite:t", "cite:ts"):
            return self._cite(body, textual=True)
        if name in ("ref", "numref", "doc"):
            if text:
                return re.sub(r"%s|\{number\}|\{name\}", "", text).strip() or target
            key = target.strip().lstrip("/").removesuffix(".md")
            title = self.titles.get(key)
            if name == "numref" and key.startswith("fig-"):
                return "the figure below" if title is None else f"the figure *{title}*"
            return f"*{title}*" if title else key
        if name == "eq":
            return f"({target.removeprefix('eq-')})"
        if name == "term":
            return text or target
        if name == "math":
            return f"${body}$"
        if name.startswith("glue"):
            return "(computed below)"
        if name in ("code", "samp", "file", "kbd"):
            return f"`{body}`"
        if name in ("sub", "sup", "abbr"):
            return body
        return text or body

    def roles(self, text: str) -> str:
        return ROLE.sub(self._role, text)

    # -- blocks ------------------------------------------------------------------------
    def plain_markdown(self, text: str) -> str:
        """The plain-Markdown form of one markdown cell (or page) of MyST."""
        lines = text.split("\n")
        out: list[str] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            match = FENCE.match(line)
            if match:
                body, i = self._body(lines, i + 1, match.group("fence"))
                out.extend(self._directive(match.group("name"), match.group("arg"), body))
                continue
            if LABEL_LINE.match(line):
                i += 1
                continue
            display = re.match(r"^(\s*)\$\$\s*\([\w-]+\)\s*$", line)
            if display:  # the closing $$ of a labelled display equation
                out.append(display.group(1) + "$$")
                i += 1
                continue
            out.append(self.roles(line))
            i += 1
        return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip("\n")

    @staticmethod
    def _body(lines: list[str], start: int, fence: str) -> tuple[list[str], int]:
        """The lines of a directive up to its closing fence, and the index after it."""
        depth, i = 0, start
        body: list[str] = []
        while i < len(lines):
            stripped = lines[i].strip()
            nested = FENCE.match(lines[i])
            if nested and nested.group("fence") == fence:
                depth += 1
            elif stripped == fence:
                if depth == 0:
                    return body, i + 1
                depth -= 1
            body.append(lines[i])
            i += 1
        return body, i

    def _directive(self, name: str, arg: str, body: list[str]) -> list[str]:
        options = [line for line in body if OPTION_LINE.match(line)]
        content = [line for line in body if not OPTION_LINE.match(line)]
        inner = self.plain_markdown("\n".join(content))
        if name in DROPPED:
            return []
        if name in ("math",):
            return ["$$", "\n".join(content).strip(), "$$", ""]
        if name in ("code-block", "code", "sourcecode"):
            return [f"```{arg.strip()}", *content, "```", ""]
        if name in ("figure", "image"):
            alt = next(
                (o.split(":", 2)[2].strip() for o in options if o.strip().startswith(":alt:")), ""
            )
            caption = inner.strip()
            return [
                f"![{alt or caption}]({arg.strip()})",
                "",
                f"*{caption}*" if caption else "",
                "",
            ]
        if name == "exercise":
            title = self.roles(arg.strip())
            return [f"**Exercise: {title}**" if title else "**Exercise**", "", inner, ""]
        if name in (
            "proof:theorem",
            "prf:theorem",
            "proof:lemma",
            "prf:lemma",
            "proof:proof",
            "prf:proof",
            "proof:definition",
            "prf:definition",
        ):
            kind = name.split(":", 1)[1].capitalize()
            title = self.roles(arg.strip())
            head = f"**{kind}{' (' + title + ')' if title else ''}.**"
            return [head, "", inner, ""]
        if name in QUOTED or name.startswith("prf:") or name.startswith("proof:"):
            title = self.roles(arg.strip()) or QUOTED.get(name) or name.split(":")[-1].capitalize()
            quoted = [f"> **{title}**", ">"] + [
                f"> {line}" if line else ">" for line in inner.split("\n")
            ]
            return [*quoted, ""]
        if name == "glossary":
            return [inner, ""]
        return [inner, ""]  # any other directive: keep its content as plain text


def leftover_myst(markdown: str) -> list[str]:
    """MyST syntax that a CommonMark renderer would show as text or as a code block.

    Renders ``markdown`` with markdown-it (CommonMark) and returns what remains: code blocks
    whose info string is a directive (``{exercise}``), roles (``{cite}`x```), labels
    (``(sec-x)=``), colon fences and directive options.
    """
    from markdown_it import MarkdownIt

    found = []
    for token in MarkdownIt("commonmark").parse(markdown):
        if token.type == "fence" and token.info.strip().startswith("{"):
            found.append(f"directive rendered as code: {token.info.strip()}")
        children = token.children or []
        for child, following in zip(children, [*children[1:], None], strict=False):
            if child.type != "text":
                continue
            content = child.content
            role = re.search(r"\{[\w:-]+\}$", content)
            if role and following is not None and following.type == "code_inline":
                found.append(f"role: {role.group(0)}`{following.content}`")
        if token.type == "inline":
            content = token.content
            found += [f"label: {m.group(0)}" for m in re.finditer(r"^\([\w-]+\)=", content, re.M)]
            found += [
                f"colon fence: {m.group(0)}" for m in re.finditer(r"^:{3,}.*$", content, re.M)
            ]
            found += [f"option: {m.group(0)}" for m in re.finditer(r"^:[\w-]+:.*$", content, re.M)]
    return found


INSTALL_TAG = "install-genphys"
INSTALL_SOURCE = """\
# Colab and other fresh environments lack the book's library: install it, at the version this
# notebook was made from, only where `import genphys` fails (Binder and a local checkout have it).
try:
    import genphys  # noqa: F401
except ImportError:
    import importlib
    import subprocess
    import sys

    requirement = {requirement!r}
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", requirement], check=True)
    importlib.invalidate_caches()
    import genphys  # noqa: F401"""


def install_requirement(repository: str, ref: str) -> str:
    """The pip requirement of the library at ``ref``: ``genphys @ git+<repository>@<ref>``."""
    if not re.fullmatch(r"https://[\w.-]+/[\w./-]+", repository):
        raise ValueError(f"repository must be an https URL. Got {repository!r} instead.")
    if not re.fullmatch(r"[\w./-]+", ref):
        raise ValueError(f"ref must be a commit, tag or branch name. Got {ref!r} instead.")
    return f"genphys @ git+{repository.rstrip('/').removesuffix('.git')}.git@{ref}"


SOLUTION_START = re.compile(r"^(`{3,}|:{3,})\{solution-start\}", re.M)
SOLUTION_END = re.compile(r"^(`{3,}|:{3,})\{solution-end\}", re.M)


def _fold_solutions(cells: list) -> list:
    """Replace every gated solution (its cells) by one folded markdown cell."""
    out, inside = [], None
    for cell in cells:
        if cell.cell_type == "markdown" and SOLUTION_START.search(cell.source):
            inside = []
            before = cell.source[: SOLUTION_START.search(cell.source).start()].strip()
            if before:
                out.append(nbformat.v4.new_markdown_cell(before))
            continue
        if inside is not None:
            end = SOLUTION_END.search(cell.source) if cell.cell_type == "markdown" else None
            if end:
                out.append(_folded(inside))
                inside = None
                # what follows the closing fence of solution-end belongs to the page
                rest = cell.source[end.end() :].split("\n")[1:]
                while rest and rest[0].strip() != end.group(1):
                    rest.pop(0)
                after = "\n".join(rest[1:]).strip()
                if after:
                    out.append(nbformat.v4.new_markdown_cell(after))
                continue
            inside.append(cell)
            continue
        out.append(cell)
    if inside is not None:
        raise ValueError("a solution-start has no matching solution-end.")
    return out


def _folded(cells: list) -> nbformat.NotebookNode:
    """One markdown cell: the solution's discussion and its code, folded."""
    parts = ["<details>", "<summary>Solution (click to open)</summary>", ""]
    for cell in cells:
        if cell.cell_type == "markdown":
            parts += [cell.source.strip(), ""]
        else:
            parts += [
                "Run this in a new cell to see the reference solution and its check:",
                "",
                "```python",
                cell.source.strip(),
                "```",
                "",
            ]
    parts.append("</details>")
    return nbformat.v4.new_markdown_cell("\n".join(parts))


def reader_notebook(text: str, requirement: str, converter: Converter) -> nbformat.NotebookNode:
    """The notebook of one MyST page for Colab or any Jupyter: unexecuted, plain Markdown,
    solutions folded (never run by "Run all"), the install cell first, stable cell ids."""
    import jupytext

    notebook = jupytext.reads(text, fmt="md:myst")
    cells = []
    for cell in _fold_solutions(notebook.cells):
        if cell.cell_type == "markdown":
            source = converter.plain_markdown(cell.source)
            if not source.strip():
                continue
            cell = nbformat.v4.new_markdown_cell(source)
        else:
            cell.outputs = []
            cell.execution_count = None
        cells.append(cell)
    install = nbformat.v4.new_code_cell(
        INSTALL_SOURCE.format(requirement=requirement), metadata={"tags": [INSTALL_TAG]}
    )
    notebook.cells = [install, *cells]
    for index, cell in enumerate(notebook.cells):
        digest = hashlib.sha1(f"{index}\n{cell.cell_type}\n{cell.source}".encode()).hexdigest()
        cell["id"] = digest[:16]
    # Jupytext's pairing metadata would make Jupytext (on Binder) look for the .md next to it.
    notebook.metadata.pop("jupytext", None)
    notebook.metadata.pop("page_facts", None)
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    return notebook
