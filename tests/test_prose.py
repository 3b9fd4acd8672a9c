"""The prose of the chapters cannot drift from what their code computes.

Two conventions of the book, checked on every chapter's source:

* **Numbers come from the code.** Every decimal number written in the prose (markdown outside
  code cells and display equations; inline math, admonitions and captions included) is either
  glued from a code cell of the same page (``glue("key", value)`` in the code and
  ``{glue:text}`key:.3f``` in the text), or a value from the literature (a ``{cite}`` role in
  the same sentence), or an input or checked constant that appears, written the same way, in a
  code cell of the same page (``step_size = 0.01``, ``assert abs(gain - 0.16) < 0.01``).
  Every glue key the text uses is glued by the page's code.
* **Reading order.** A reference from chapter n to a section, equation or figure of a later
  chapter is a forward pointer: its sentence says so ("later", "will", "next", "ahead").
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(ROOT.glob("chapters/[0-9][0-9]_*.md"))

# A decimal number: digits, a point, digits; not part of a word, an identifier, a version
# string such as 4.6.1, a label or a file name.
NUMBER = re.compile(r"(?<![\w.\-/])(\d+\.\d+)(?![\w.]\d|\w)")
# Words before a number that make it a section, equation, figure or version number.
NOT_A_VALUE = re.compile(
    r"(?:§|section|sections|chapter|chapters|eq\.|eqs\.|fig\.|figure|table|python|version|"
    r"jupyterlab|jupyter-book|torch|pytorch|numpy|v)\s*~?$",
    re.IGNORECASE,
)
ABBREVIATIONS = ("al.", "e.g.", "i.e.", "eq.", "eqs.", "fig.", "cf.", "vs.", "approx.", "resp.")
CITE = re.compile(r"\{cite(?::\w+)?\}`")
GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([A-Za-z_][A-Za-z0-9_]*)")
GLUE_CALL = re.compile(r"\bglue\(\s*(f?)(['\"])(.*?)\2")
REFERENCE = re.compile(r"\{(?:ref|numref|eq)\}`(?:[^`<]*<)?([^`>]+)>?`")
LABEL = re.compile(
    r"^\(([\w-]+)\)=\s*$|^:label:\s*(\S+)|^\$\$\s*\(([\w-]+)\)\s*$|^\s*:?name:\s*(fig-\S+)",
    re.M,
)
# Words that mark a sentence as pointing ahead.
FORWARD = re.compile(r"\b(later|will|next|ahead|following|coming)\b", re.IGNORECASE)


@cache
def split_page(path: Path) -> tuple[list[str], list[str]]:
    """Return ``(prose_blocks, code_cells)`` of a MyST notebook source.

    Prose blocks are the paragraphs of markdown with display math (``$$ ... $$``,
    ``{math}``), fenced code of any kind, directive option lines, labels, HTML comments and
    the YAML front matter removed. Directive bodies (admonitions, figures' captions,
    exercises) are prose.
    """
    text = path.read_text()
    if text.startswith("---"):
        text = text.split("\n---", 1)[1]
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    prose: list[str] = []
    code: list[str] = []
    paragraph: list[str] = []
    verbatim: tuple[str, str] | None = None  # (closing fence, kind) of an open code/math fence
    buffer: list[str] = []
    open_directives: list[str] = []  # closing fences of open directives
    in_math = False

    def flush():
        if paragraph:
            prose.append("\n".join(paragraph))
            paragraph.clear()

    for line in text.splitlines():
        stripped = line.strip()
        if verbatim:
            if stripped == verbatim[0]:
                if verbatim[1] == "code":
                    code.append("\n".join(buffer))
                buffer.clear()
                verbatim = None
            else:
                buffer.append(line)
            continue
        if in_math:
            if "$$" in stripped:
                in_math = False
            continue
        if open_directives and stripped == open_directives[-1]:
            open_directives.pop()  # the end of a directive whose body is prose
            flush()
            continue
        fence = re.match(r"^(`{3,}|:{3,})\s*(\{[^}]*\})?", stripped)
        if fence:
            directive = fence.group(2) or ""
            if directive == "{code-cell}":
                flush()
                verbatim = (fence.group(1), "code")
                continue
            if directive in ("{math}", "") and fence.group(1).startswith("`"):
                flush()
                verbatim = (fence.group(1), "other")  # math or a plain code block
                continue
            flush()  # a directive opens: its body lines are prose
            if directive:
                open_directives.append(fence.group(1))
            continue
        if stripped.startswith("$$"):
            flush()
            in_math = "$$" not in stripped[2:]
            continue
        if re.match(r"^:[\w-]+:", stripped) or re.match(r"^\([\w-]+\)=$", stripped):
            continue  # directive option or label
        if not stripped:
            flush()
            continue
        paragraph.append(line)
    flush()
    return prose, code


def sentences(paragraph: str) -> list[str]:
    """Split a paragraph into sentences at '.', '!' or '?' followed by a space."""
    out, start = [], 0
    for match in re.finditer(r"[.!?](?=\s+\S)", paragraph):
        words = paragraph[start : match.end()].split()
        if words and words[-1].lower() in ABBREVIATIONS:
            continue
        out.append(paragraph[start : match.end()])
        start = match.end()
    out.append(paragraph[start:])
    return out


def _strip_non_prose(sentence: str) -> str:
    """Remove inline code, roles' targets, link targets and URLs from a sentence."""
    sentence = re.sub(r"\{[\w:-]+\}`[^`]*`", " ", sentence)  # roles
    sentence = re.sub(r"`[^`]*`", " ", sentence)  # inline code
    sentence = re.sub(r"\]\([^)]*\)", "]", sentence)  # link targets
    return re.sub(r"https?://\S+", " ", sentence)


def unsupported_numbers(path: Path) -> list[str]:
    """The decimal numbers of a page's prose that are neither glued, cited nor in its code."""
    prose, code = split_page(path)
    code_text = "\n".join(code)
    problems = []
    for paragraph in prose:
        for sentence in sentences(paragraph):
            if CITE.search(sentence):
                continue
            plain = _strip_non_prose(sentence)
            for match in NUMBER.finditer(plain):
                before = plain[: match.start()]
                if NOT_A_VALUE.search(before):
                    continue
                literal = match.group(1)
                if re.search(rf"(?<![\w.]){re.escape(literal)}(?![\d])", code_text):
                    continue
                context = " ".join(sentence.split())
                problems.append(f"{literal!r} in: {context[:160]}")
    return problems


def glue_keys(path: Path) -> tuple[set[str], list[str]]:
    """Glue keys set by a page's code: literal keys, and the known prefixes of computed keys.

    ``glue("gap", x)`` sets the key ``gap``; ``glue(f"jsd_{name}", x)`` and
    ``glue("jsd_" + name, x)`` set keys starting with ``jsd_``; a key held in a variable,
    ``glue(key, x)``, gives the prefix ``""`` (any key; the book build, run with warnings as
    errors, then reports a key that no cell glued).
    """
    _, code = split_page(path)
    literal, prefixes = set(), []
    for match in re.finditer(r"\bglue\(\s*", "\n".join(code)):
        rest = match.string[match.end() :]
        plain = re.match(r"(['\"])([^'\"{}]*)\1\s*([,+)])", rest)
        formatted = re.match(r"f(['\"])([^'\"]*)\1", rest)
        if plain and plain.group(3) != "+":
            literal.add(plain.group(2))
        elif plain:
            prefixes.append(plain.group(2))
        elif formatted:
            prefixes.append(formatted.group(2).split("{", 1)[0])
        else:
            prefixes.append("")
    return literal, prefixes


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_number_in_the_prose_is_glued_cited_or_in_the_code(chapter):
    problems = unsupported_numbers(chapter)
    assert not problems, (
        f"{chapter.name}: {len(problems)} number(s) typed by hand. Glue each computed number "
        "(glue('key', value) in a code cell, {glue:text}`key:.3f` in the text), cite a "
        "literature value in the same sentence, or use an input that the code sets:\n  "
        + "\n  ".join(problems)
    )


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_glued_key_is_set_by_the_code(chapter):
    literal, prefixes = glue_keys(chapter)
    text = chapter.read_text()
    for key in GLUE_ROLE.findall(text):
        assert key in literal or any(key.startswith(p) for p in prefixes), (
            f"{chapter.name}: {{glue}} key {key!r} is used in the text but no code cell "
            f"glues it (glue({key!r}, value))"
        )


@cache
def labels_by_chapter() -> dict[str, int]:
    """Map every label (section, equation, figure) to the number of the chapter defining it."""
    found: dict[str, int] = {}
    for path in CHAPTERS:
        number = int(path.name[:2])
        for match in LABEL.finditer(path.read_text()):
            label = next(g for g in match.groups() if g)
            found[label] = number
    return found


def backward_looking_forward_references(path: Path) -> list[str]:
    """References to a later chapter whose sentence does not mark them as forward pointers."""
    number = int(path.name[:2])
    labels = labels_by_chapter()
    prose, _ = split_page(path)
    problems = []
    for paragraph in prose:
        for sentence in sentences(paragraph):
            for match in REFERENCE.finditer(sentence):
                target = labels.get(match.group(1).strip())
                if target is None or target <= number:
                    continue
                if FORWARD.search(sentence):
                    continue
                context = " ".join(sentence.split())
                problems.append(f"chapter {target} ({match.group(1)}) in: {context[:160]}")
    return problems


def test_the_label_scanner_finds_sections_equations_and_figures():
    labels = labels_by_chapter()
    assert labels["sec-partition-function"] == 2
    assert any(label.startswith("eq-") for label in labels)
    assert any(label.startswith("fig-") for label in labels)


def test_the_number_scanner_finds_a_hand_typed_number(tmp_path):
    page = tmp_path / "99_probe.md"
    page.write_text(
        "---\nkernelspec: {}\n---\n# Probe\n\nThe gap is 0.16 nats, glued as "
        "{glue:text}`gap:.2f`.\nOnsager's value is 2.269 {cite}`onsager1944crystal`.\n\n"
        "The step is 0.05.\n\n$$\nx = 0.37\n$$\n\n```{code-cell} ipython3\nstep = 0.05\n"
        "glue('gap', 0.2)\n```\n"
    )
    problems = unsupported_numbers(page)
    assert len(problems) == 1 and problems[0].startswith("'0.16'"), problems
    assert glue_keys(page)[0] == {"gap"}


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_references_to_later_chapters_are_forward_pointers(chapter):
    problems = backward_looking_forward_references(chapter)
    assert not problems, (
        f"{chapter.name}: a later chapter is cited as if already read. Say that it comes later "
        "('chapter 10 will ...', '... later, in ...'):\n  " + "\n  ".join(problems)
    )


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_no_cell_prints_a_glued_value_by_accident(chapter):
    """``glue`` returns its value: as a cell's last expression it would print a stray number
    under the cell. Assign it (``_ = glue(...)``) or glue before the last line."""
    import ast

    _, code = split_page(chapter)
    for source in code:
        try:
            body = ast.parse(source).body
        except SyntaxError:  # IPython magics
            continue
        if body and isinstance(body[-1], ast.Expr):
            last = ast.unparse(body[-1])
            assert not re.match(r"(genphys\.)?glue\(", last), f"{chapter.name}: {last[:80]}"
