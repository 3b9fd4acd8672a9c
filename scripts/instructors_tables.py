"""Write the tables of ``instructors.md`` from the pages themselves.

For every chapter, exercise page and project in ``_toc.yml`` the script counts the words of
prose (code cells, display equations, directive options and HTML comments removed), the display
equations and the code cells in the page's source, and estimates the time a student needs:

* a chapter: prose at 100 words per minute, plus 2 minutes per display equation and 1 minute
  per code cell, rounded up to 5 minutes;
* an exercise page or a project: the sum of the estimates of its parts, written once in the
  page's front matter (``page_facts``), which also says what the student practises.

The block "You practise / Time" at the top of every exercise page is generated from the same
front matter, between the markers ``<!-- page-facts:start -->`` and ``<!-- page-facts:end -->``,
so a page and the instructors' table cannot disagree.

A chapter's optional sections (a heading followed by an ``Optional section`` note) are listed
in the column *core sections*. The course week of each chapter is the only hand-written input
(``WEEKS`` below). The tables are written between the markers ``<!-- tables:start -->`` and
``<!-- tables:end -->``; with ``--check`` the script only says whether the tables and the
pages' blocks are up to date (``tests/test_book_pages.py`` runs it that way)::

    python scripts/instructors_tables.py          # rewrite the tables
    python scripts/instructors_tables.py --check  # exit status 1 if they are stale
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- tables:start -->", "<!-- tables:end -->"

# The 2025 lecture weeks of the course each chapter belongs to (by the chapter's label).
WEEKS = {
    "sec-generative-models": "Apr 7–11",
    "sec-partition-function": "Apr 7–11",
    "sec-marginals": "Apr 7–11",
    "sec-maximum-likelihood": "Apr 7–11",
    "sec-mcmc": "Apr 7–11",
    "sec-training-rbms": "Apr 7–11",
    "sec-rbm-thermodynamics": "Apr 7–11 (application)",
    "sec-dbn": "Apr 7–11 (reading)",
    "sec-without-sampling": "Apr 7–11 (reading)",
    "sec-langevin": "Apr 7–11 (reading)",
    "sec-autoencoders": "Apr 7–11",
    "sec-vae": "Apr 7–11 and Apr 21–25",
    "sec-training-vaes": "Apr 21–25",
    "sec-diffusion": "Apr 21–25 and May 5–9",
    "sec-training-diffusion": "May 5–9",
    "sec-gans": "May 12–16",
    "sec-variational-free-energy": "May 12–16 (application)",
    "sec-capstone": "May 19–23",
}


@dataclass
class Page:
    path: Path
    label: str
    words: int
    equations: int
    code_cells: int
    exercises: int
    optional: list[str]
    facts: dict | None = None

    @property
    def minutes(self) -> int:
        if self.path.parts[-2] != "chapters":
            return sum(minutes for _, minutes in self.facts["time"])
        raw = self.words / 100 + 2 * self.equations + self.code_cells
        return 5 * math.ceil(raw / 5)


def toc_pages(root: Path = ROOT) -> list[Path]:
    """Every page of the table of contents, in reading order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    found: list[Path] = []

    def walk(entries):
        for entry in entries:
            if "file" in entry:
                found.append(root / f"{entry['file']}.md")
            walk(entry.get("sections", []))
            walk(entry.get("chapters", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    return [p for p in found if p.parent.name in ("chapters", "exercises")]


FENCE = re.compile(r"^(`{3,}|:{3,})\s*(\{[^}]*\})?(.*)$")


FACTS_START, FACTS_END = "<!-- page-facts:start -->", "<!-- page-facts:end -->"


def page_facts(path: Path) -> dict:
    """The ``page_facts`` of an exercise page's front matter: what it practises, and its time.

    ``practise`` is a sentence fragment; ``time`` a list of ``[part, minutes]`` pairs.
    """
    text = path.read_text()
    front = yaml.safe_load(text.split("---", 2)[1]) if text.startswith("---") else {}
    facts = (front or {}).get("page_facts")
    if not isinstance(facts, dict) or not facts.get("practise") or not facts.get("time"):
        raise ValueError(
            f"{path.name} must have page_facts with 'practise' and 'time' in its front matter. "
            f"Got {facts!r} instead."
        )
    for entry in facts["time"]:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], int)):
            raise ValueError(
                f"{path.name}: every page_facts time entry must be [part, minutes]. "
                f"Got {entry!r} instead."
            )
    return facts


def facts_block(facts: dict) -> str:
    """The markdown of the "You practise / Time" block of an exercise page."""
    parts = [f"{what} ({minutes} minutes)" for what, minutes in facts["time"]]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    total = sum(minutes for _, minutes in facts["time"])
    return (
        f"**You practise:** {facts['practise']}\n\n"
        f"**Time:** about {total} minutes: {listed}. This is an estimate from the size of the "
        "tasks, not a measurement with students.\n\n"
        "**Where to work:** the web page cannot run code. Open the page as a notebook with the "
        "rocket icon at the top (*Binder* or *Colab*, nothing to install) or download it with "
        "the download icon, then write your code in the cells marked `YOUR CODE HERE`.\n"
    )


def with_facts_block(path: Path) -> str:
    """The page's text with its generated block brought up to date."""
    text = path.read_text()
    if FACTS_START not in text or FACTS_END not in text:
        raise ValueError(f"{path.name} must contain the markers {FACTS_START} and {FACTS_END}.")
    head, rest = text.split(FACTS_START, 1)
    _, tail = rest.split(FACTS_END, 1)
    return f"{head}{FACTS_START}\n{facts_block(page_facts(path))}{FACTS_END}{tail}"


def parse(path: Path) -> Page:
    """Count the prose words, display equations, code cells and exercises of one page."""
    text = path.read_text()
    facts = page_facts(path) if path.parent.name == "exercises" else None
    if text.startswith("---"):
        text = text.split("---", 2)[2]
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    label = re.search(r"^\((sec-[^)]+)\)=", text, flags=re.M).group(1)
    lines = text.splitlines()
    words = equations = code_cells = exercises = 0
    optional: list[str] = []
    stack: list[tuple[str, str]] = []  # open fences: (marker, directive)
    in_math = False
    last_heading = None
    for line in lines:
        stripped = line.strip()
        if in_math:
            if "$$" in stripped:  # "$$" or "$$ (eq-label)"
                in_math = False
            continue
        if stack and stack[-1][1] in ("{code-cell}", "{math}", ""):  # verbatim content
            if stripped == stack[-1][0]:
                stack.pop()
            continue
        match = FENCE.match(stripped)
        if match and stack and stripped == stack[-1][0]:
            stack.pop()  # the end of a directive
            continue
        if match and (match.group(2) is not None or stripped in ("```", "````")):
            marker, directive = match.group(1), (match.group(2) or "")
            if stack and stripped == stack[-1][0] and not directive:
                stack.pop()
                continue
            stack.append((marker, directive))
            if directive == "{code-cell}":
                code_cells += 1
            elif directive == "{math}":
                equations += 1
            elif directive == "{exercise}" and not match.group(3).strip().startswith("Explore"):
                exercises += 1
            elif directive == "{admonition}" and "Optional section" in match.group(3):
                if last_heading:
                    optional.append(last_heading)
            continue
        if stripped.startswith("$$"):
            equations += 1
            in_math = "$$" not in stripped[2:]
            continue
        if stripped.startswith(":") and re.match(r"^:[a-z-]+:", stripped):
            continue  # directive option
        if re.match(r"^\(sec-[^)]*\)=$", stripped):
            continue
        heading = re.match(r"^#{2,3}\s+(.*)$", stripped)
        if heading:
            last_heading = heading.group(1).strip()
        words += len(re.findall(r"[A-Za-z0-9][A-Za-z0-9'’-]*", re.sub(r"\$[^$]*\$", " x ", line)))
    return Page(path, label, words, equations, code_cells, exercises, optional, facts)


def _duration(minutes: int) -> str:
    return f"{minutes // 60} h {minutes % 60} min"


def tables(root: Path = ROOT) -> str:
    """The markdown of the chapter, exercise-page and project tables."""
    pages = [parse(p) for p in toc_pages(root)]
    chapters = [p for p in pages if p.path.parent.name == "chapters"]
    exercise_pages = [p for p in pages if p.path.name.startswith("ex")]
    projects = [p for p in pages if p.path.name.startswith("project_")]
    missing = [p.label for p in chapters if p.label not in WEEKS]
    if missing:
        raise ValueError(f"WEEKS must name the course week of every chapter. Missing: {missing}.")
    out = [
        # column widths for the PDF (the HTML ignores them)
        "```{tabularcolumns} \\Y{0.25}\\Y{0.14}\\Y{0.08}\\Y{0.1}\\Y{0.08}\\Y{0.08}\\Y{0.19}",
        "```",
        "",
        "| chapter | week (2025) | words | display equations | code cells | time | core sections |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in chapters:
        core = "all" if not p.optional else "all but " + ", ".join(f"*{h}*" for h in p.optional)
        out.append(
            f"| {{ref}}`{p.label}` | {WEEKS[p.label]} | {p.words} | {p.equations} | "
            f"{p.code_cells} | {p.minutes} min | {core} |"
        )
    total = sum(p.minutes for p in chapters)
    out += ["", f"Total for the {len(chapters)} chapters: about {_duration(total)} of reading.", ""]
    out += ["### Exercise pages and projects", ""]
    for title, group in (("exercise page", exercise_pages), ("project", projects)):
        out += [f"| {title} | exercises | words | time |", "|---|---|---|---|"]
        for p in group:
            out.append(f"| {{ref}}`{p.label}` | {p.exercises} | {p.words} | {p.minutes} min |")
        total = sum(p.minutes for p in group)
        out += ["", f"Total for the {len(group)} {title}s: about {_duration(total)}.", ""]
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="only check that the tables are current"
    )
    args = parser.parse_args(argv)
    path = ROOT / "instructors.md"
    text = path.read_text()
    if START not in text or END not in text:
        print(f"{path} must contain the markers {START} and {END}.", file=sys.stderr)
        return 1
    stale = []
    # the pages' blocks first: the tables count the words of the pages as written
    for page in toc_pages():
        if page.parent.name == "exercises":
            old, new = page.read_text(), with_facts_block(page)
            if old != new:
                stale.append(page.relative_to(ROOT).as_posix())
                if not args.check:
                    page.write_text(new)
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{tables()}{END}{tail}"
    if new != text:
        stale.append(path.name)
        if not args.check:
            path.write_text(new)
    if args.check and stale:
        print(
            f"Stale: {', '.join(stale)}. Run `python scripts/instructors_tables.py`.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
