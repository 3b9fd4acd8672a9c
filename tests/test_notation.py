"""One notation: ``notation.md`` is the table of symbols, and the chapters keep to it.

The table has a Scope column: ``all``, ``all but ch. 7``, ``ch. 12`` or ``ch. 14–15``. A symbol
may appear in several rows only if their scopes are disjoint, so that no chapter has two
meanings for it. Each chapter lists the symbols it introduces in its YAML header,

    notation: ['\\Theta', 'E(x, h)', ...]

written exactly as in the table's Symbol column (spaces do not matter). The tests check the
table, the declarations against the table (present, in scope, used on the page), and, for the
clashes that the book once had, that the old meaning does not return: a regular expression on
the LaTeX of the pages where the old meaning is gone. The text is read outside code cells: the
prose, its inline math, display math and the captions in code-cell headers.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.md"))
PAGES = CHAPTERS + sorted((ROOT / "exercises").glob("*.md"))
ALL_CHAPTERS = frozenset(range(1, 19))
# project pages belong to the chapter whose library they use
PROJECT_CHAPTER = {"project_ising_mc": 5, "project_rbm": 6, "project_langevin": 10,
                   "project_vae": 13, "project_ddpm": 15}  # fmt: skip


def chapter_of(path: Path) -> int:
    """Chapter number of a chapter page (``05_mcmc``), exercise page (``ex05_mcmc``) or project."""
    match = re.match(r"(?:ex)?(\d\d)_", path.name)
    return int(match.group(1)) if match else PROJECT_CHAPTER[path.stem]


def norm(symbol: str) -> str:
    """LaTeX without thin spaces ``\\,``, braces around one letter, or spaces (but ``\\tilde x``)."""
    text = re.sub(r"(\\[A-Za-z]+)\{(\w)\}", r"\1 \2", symbol.replace("\\,", " "))
    text = re.sub(r"\{(\w)\}", r"\1", text)
    return re.sub(
        r"(\\[A-Za-z]+)?\s+(?=(.?))",
        lambda m: (m.group(1) or "") + (" " if m.group(1) and m.group(2).isalpha() else ""),
        text.strip(),
    )


def uses(math: str, symbol: str) -> bool:
    """Whether normalised ``math`` contains ``symbol`` as a whole token (``x`` is not in ``\\max``)."""
    pattern = re.compile(r"(?<![A-Za-z\\])" + re.escape(symbol) + r"(?![A-Za-z])")
    # a letter right after a command is that command's argument: w in \mathrm w is not w
    return any(not re.search(r"\\[A-Za-z]+ $", math[: m.start()]) for m in pattern.finditer(math))


def parse_scope(cell: str) -> frozenset[int]:
    """``all``, ``all but ch. 9–11, 13``, ``ch. 1, 16`` -> a set of chapter numbers."""
    text = cell.strip()
    listed: set[int] = set()
    numbers = text.split("but", 1)[1] if text.startswith("all but") else text
    for a, b in re.findall(r"(\d+)(?:\s*[–-]\s*(\d+))?", numbers):
        listed.update(range(int(a), int(b or a) + 1))
    if text == "all":
        return ALL_CHAPTERS
    if text.startswith("all but"):
        return ALL_CHAPTERS - listed
    if not text.startswith("ch."):
        raise ValueError(
            f"scope must be 'all', 'all but ch. ...' or 'ch. ...'. Got {cell!r} instead."
        )
    return frozenset(listed)


def read_table() -> list[dict]:
    """The rows of notation.md's table: symbols (normalised), scope, meaning."""
    rows = []
    lines = (ROOT / "notation.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Symbol"))
    assert [c.strip() for c in lines[start].strip("|").split("|")] == [
        "Symbol", "Code", "Shape", "Meaning", "Scope"]  # fmt: skip
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = re.split(r"(?<!\\)\|", line.strip()[1:-1])  # "\|" inside math is not a column
        assert len(cells) == 5, line
        symbols = [norm(s) for s in re.findall(r"\$([^$]+)\$", cells[0])]
        rows.append({"symbols": symbols, "scope": parse_scope(cells[4]), "line": line})
    return rows


def front_matter(path: Path) -> dict:
    text = path.read_text()
    assert text.startswith("---\n"), path
    return yaml.safe_load(text[4 : text.index("\n---", 4)])


def math_text(path: Path) -> list[tuple[int, str]]:
    """(line number, LaTeX) of every inline and display math outside code cells."""
    out = []
    in_code = in_display = in_header = False
    code_start = 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if in_code:
            if number == code_start + 1 and stripped == "---":
                in_header = True
            elif in_header and stripped == "---":
                in_header = False
            elif stripped.startswith("```") and not in_header:
                in_code = False
            if not in_header:
                continue
        elif stripped.startswith("```{code-cell"):
            in_code, code_start = True, number
            continue
        if stripped.startswith("$$"):
            in_display = stripped.count("$$") == 1 and not in_display
            out.append((number, stripped.strip("$")))
        elif in_display:
            out.append((number, line))
        else:
            out.extend((number, m) for m in re.findall(r"(?<!\$)\$([^$\n]+)\$", line))
    return out


TABLE = read_table()


def rows_in(chapter: int) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for row in TABLE:
        if chapter in row["scope"]:
            for symbol in row["symbols"]:
                found.setdefault(symbol, []).append(row)
    return found


def test_table_rows_have_symbols_and_scopes():
    assert len(TABLE) > 50
    for row in TABLE:
        assert row["symbols"], row["line"]
        assert row["scope"] and row["scope"] <= ALL_CHAPTERS, row["line"]


@pytest.mark.parametrize("chapter", sorted(ALL_CHAPTERS))
def test_no_symbol_has_two_meanings_in_one_chapter(chapter):
    clashes = {s: [r["line"][:90] for r in rows] for s, rows in rows_in(chapter).items()
               if len(rows) > 1}  # fmt: skip
    assert not clashes, f"chapter {chapter}: symbols with two meanings in scope: {clashes}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_declares_its_symbols_from_the_table(path):
    declared = front_matter(path).get("notation")
    assert isinstance(declared, list), f"{path.name}: the header has no 'notation' list"
    symbols = [norm(s) for s in declared]
    assert len(symbols) == len(set(symbols)), f"{path.name}: a symbol is declared twice"
    in_scope = rows_in(chapter_of(path))
    missing = [s for s in declared if norm(s) not in in_scope]
    assert not missing, (
        f"{path.name} declares {missing}, which notation.md does not list for chapter "
        f"{chapter_of(path)}"
    )
    math = "$".join(norm(m) for _, m in math_text(path))
    unused = [
        s for s in declared if not uses(math, norm(s)) and not uses(math, norm(s).split("(")[0])
    ]
    assert not unused, f"{path.name} declares {unused} but its math never uses them"


def test_every_table_row_is_introduced_by_a_chapter_in_its_scope():
    declared = {chapter_of(p): {norm(s) for s in front_matter(p).get("notation") or []}
                for p in CHAPTERS}  # fmt: skip
    orphans = [row["line"][:90] for row in TABLE
               if not any(set(row["symbols"]) & declared.get(c, set()) for c in row["scope"])]  # fmt: skip
    assert not orphans, f"rows that no chapter in their scope introduces: {orphans}"


# Old meanings of symbols that clashed, and the pages they must not return to.
# (regular expression on the LaTeX, chapters whose pages it applies to, the rule)
EARLY = frozenset(range(1, 17))
OLD_USES = [
    (
        r"_\\theta(?![A-Za-z])|\(\\theta[,)]|\\theta\^\*",
        ALL_CHAPTERS,
        "model parameters are written \\Theta",
    ),
    (
        r"N_\{\\(?:text|mathrm)\{eff\}\}|N\s*=\s*Cn",
        ALL_CHAPTERS,
        "the number of draws is n, the effective one n_eff; N is the number of hidden units",
    ),
    (
        r"\\beta\^2\s*N|\\beta\s*N\s*\\operatorname|E\s*/\s*N(?![A-Za-z_])|\\frac\s*1\s*N|"
        r"\\chi\s*=\s*N|/N(?![A-Za-z_])",
        EARLY,
        "a lattice has L^2 spins; N is the number of hidden units (N = L^2 only in ch. 17-18)",
    ),
    (r"\\lambda", frozenset({6, 9}), "weight decay is alpha; a precision is 1/sigma^2"),
    (
        r"\\lambda(?![_A-Za-z])",
        frozenset({11}),
        "in chapter 11 lambda_i are eigenvalues; the penalty weight is alpha",
    ),
    (r"e\^\{s_i\}", ALL_CHAPTERS, "the Gaussian-Bernoulli variances are sigma_i^2"),
    (
        r"\\tilde x(?!\^\{\(i\)\})",
        frozenset({9}),
        "in chapter 9 x-tilde^(i) is x with bit i flipped, and nothing else",
    ),
    (
        r"\\tilde x\s*=\s*(?:g\(|V\s*h|U_d)",
        frozenset({11}),
        "the reconstruction is x-hat; x-tilde is the corrupted input",
    ),
    (
        r"(?<![A-Za-z_\\])s\((?:\\tilde|x\s*\+)",
        ALL_CHAPTERS,
        "a score model is s_Theta; s is a spin",
    ),
    (
        r"E\(s\)|p\(s\s*\\mid\s*T\)",
        frozenset({12}),
        "s is the encoder's standard deviation in ch. 12",
    ),
    (
        r"h_s(?![A-Za-z])|w_s(?![A-Za-z])|\\sum_\{s=1\}",
        frozenset({12, 13}),
        "importance samples are indexed by l; s is a spin or a standard deviation",
    ),
    (r"\\prod_\{s=1\}", frozenset({14}), "the product index of alpha-bar is u"),
    (
        r"K\(k\)|modulus\s*k|2M\s*\+\s*1|M\s*\\ge|\|M\|",
        frozenset({5}),
        "M is the number of visible units and k a data index: Sokal's window is t_max, the "
        "elliptic modulus kappa, the magnetisation m",
    ),
    (r"c\\,\s*\\tau", frozenset({5}), "Sokal's constant is c_w; c is the specific heat"),
    (
        r"\\frac\{n\s*-\s*1\}\{n\}\s*W|\\hat\\theta_\{\(b\)\}",
        frozenset({5}),
        "R-hat uses V_W and V_B (W are couplings), the jackknife blocks l (b are biases)",
    ),
    (r"\\sum_\{s=0\}|\(s,\s*t\)", frozenset({5}), "the lag-sum index is r; s is a spin"),
    (r"\\sum_\{k=1\}\^\{?n\}?\s*w_k", frozenset({6}), "in chapter 6, k counts Gibbs steps"),
    (r"x\^\{\(k\)\}", frozenset({13}), "in chapter 13, k is the number of importance samples"),
    (
        r"\\epsilon",
        ALL_CHAPTERS - {4},
        "the learning rate is eta, Gaussian noise varepsilon (epsilon: ch. 4's finite difference)",
    ),
    (r"T\^k|T\(x\s*\\to|T_\{\\beta", frozenset({6}), "the Gibbs transition matrix is P"),
    (
        r"\\ell\s*\(\\Theta,|\\ell\s*=\s*\\log",
        frozenset({6, 9}),
        "ell is the log-likelihood; the NCE loss is L_NCE",
    ),
    (
        r"J\(\\Theta\)|J_\\sigma|J_t|(?<![A-Za-z\\])J(?![A-Za-z_])",
        frozenset({9, 10}),
        "J is the Ising coupling: the score-matching objective is L_SM, the current j_t",
    ),
    (r"G\(h\)", ALL_CHAPTERS, "the GAN generator maps z: G(z)"),
    (
        r"W\^\{\(l\)\}|W\^\{\(0\)\}|h\^\{\(L",
        frozenset({8}),
        "a DBN's generative weights are V^(l) and its top layer K; W^(1), W^(2) are the DBM's",
    ),
    (
        r"\\Delta\s*L(?!_)|(?<![A-Za-z_\\{])L\s*=\s*L_",
        frozenset({11}),
        "a loss is L with a subscript; L alone is a lattice side",
    ),
    (
        r"(?<![A-Za-z_\\])T\s*=\s*2\.5",
        frozenset({14, 15}),
        "T is the number of diffusion steps; the Ising temperature is T_Ising",
    ),
    (r"\\gamma_k", frozenset({17}), "Kaufman's mode index is u; k indexes draws"),
    (r"rL\s*\+\s*c", frozenset({7}), "c is the specific heat; the column index is r'"),
    (r"(?<![A-Za-z_\\])b_k|f\(s\)\s*-\s*b\)", frozenset({17}), "the baseline is B; b is a bias"),
]


@pytest.mark.parametrize("pattern, chapters, rule", OLD_USES, ids=[r for _, _, r in OLD_USES])
def test_clashing_symbols_keep_their_new_meaning(pattern, chapters, rule):
    regex = re.compile(pattern)
    hits = [f"{path.relative_to(ROOT)}:{number}: {math.strip()[:80]}"
            for path in PAGES if chapter_of(path) in chapters
            for number, math in math_text(path) if regex.search(math)]  # fmt: skip
    assert not hits, f"{rule}:\n" + "\n".join(hits)


# Symbols once used without a definition: (chapter, defining LaTeX, label it must precede)
DEFINITIONS = [
    ("05_mcmc.md", r"\\sigma\^2\s*=\s*\\operatorname\{Var\}", "(eq-tau-int)"),
    ("14_diffusion_models.md", r"\\bar\\alpha_0\s*=\s*1", "(eq-diffusion-posterior)"),
    ("14_diffusion_models.md", r"\\sigma_1\^2\s*=\s*\\beta_1", None),
]


@pytest.mark.parametrize("name, pattern, before", DEFINITIONS, ids=[d[1] for d in DEFINITIONS])
def test_symbols_are_defined_before_they_are_needed(name, pattern, before):
    text = (ROOT / "chapters" / name).read_text()
    if before is not None:
        text = text[: text.index(before)]
    assert re.search(pattern, text), f"{name}: no definition matching {pattern!r}"
