"""Opening a page elsewhere: the Colab notebooks of ``scripts/make-notebooks.py`` and the
launch and download links that ``_ext/book_assets.py`` writes into the built book.

The generated notebooks are checked here offline: one light chapter runs top to bottom with
nbclient in this environment, where ``genphys`` is importable and the install cell must do
nothing. That the install cell works in a clean Colab runtime needs the network (pip from
GitHub) and is not tested; what it would run is checked by executing the cell with ``genphys``
hidden and ``subprocess.run`` recorded.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
from browser_helpers import REPO_ROOT, book_config, html_path, written_docnames

LIGHT_CHAPTER = "chapters/02_partition_function"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_notebooks = _load("make_notebooks", REPO_ROOT / "scripts" / "make-notebooks.py")
book_assets = _load("book_assets", REPO_ROOT / "_ext" / "book_assets.py")


@pytest.fixture(scope="module")
def notebooks(tmp_path_factory) -> Path:
    """The generated notebooks, written by the script's command line into a fresh folder."""
    out = tmp_path_factory.mktemp("notebooks")
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "make-notebooks.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return out


def _colab_branch() -> str:
    return book_config()["sphinx"]["config"]["colab_notebooks_branch"]


def test_every_notebook_page_gets_a_notebook(notebooks):
    import nbformat

    pages = [name for name in written_docnames() if name.startswith(("chapters/", "exercises/"))]
    assert pages, "no chapter or exercise page in _toc.yml"
    generated = sorted(p.relative_to(notebooks).as_posix() for p in notebooks.rglob("*.ipynb"))
    assert generated == sorted(f"{name}.ipynb" for name in pages)
    for name in pages:
        notebook = nbformat.read(notebooks / f"{name}.ipynb", as_version=4)
        nbformat.validate(notebook)
        first = notebook.cells[0]
        assert make_notebooks.INSTALL_TAG in first.metadata.get("tags", []), name
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), name
        assert "jupytext" not in notebook.metadata, name
        # every code cell of the source is there, after the install cell, except the cells
        # of the solutions, which are folded into markdown
        source = (REPO_ROOT / f"{name}.md").read_text(encoding="utf-8")
        solutions = re.findall(r"\{solution-start\}.*?\{solution-end\}", source, flags=re.S)
        cells = len(re.findall(r"^```\{code-cell\}", source, flags=re.M))
        in_solutions = sum(len(re.findall(r"^```\{code-cell\}", s, flags=re.M)) for s in solutions)
        assert len(code) - 1 == cells - in_solutions, name


def test_install_cell_pins_the_commit(notebooks):
    import nbformat

    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    url = book_config()["repository"]["url"].rstrip("/")
    notebook = nbformat.read(notebooks / f"{LIGHT_CHAPTER}.ipynb", as_version=4)
    assert f"'genphys @ git+{url}.git@{head}'" in notebook.cells[0].source


def test_install_cell_installs_only_without_genphys():
    """With ``genphys`` hidden, the cell calls pip once with the pinned requirement."""
    requirement = make_notebooks.install_requirement("https://github.com/o/r", "v1.2")
    assert requirement == "genphys @ git+https://github.com/o/r.git@v1.2"
    cell = make_notebooks.INSTALL_SOURCE.format(requirement=requirement)
    probe = textwrap.dedent(
        """
        import importlib.abc, json, subprocess, sys

        class Hide(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "genphys":
                    raise ImportError("hidden")

        calls = []
        def run(args, check):
            calls.append(args)
            sys.meta_path.remove(hider)  # the "installation" makes genphys importable
        hider = Hide()
        sys.meta_path.insert(0, hider)
        subprocess.run = run
        exec(sys.stdin.read(), {})
        print(json.dumps(calls))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], input=cell, capture_output=True, text=True, check=True
    )
    calls = json.loads(result.stdout)
    assert calls == [[sys.executable, "-m", "pip", "install", "--quiet", requirement]]
    # genphys importable: nothing is called
    quiet = probe.replace("sys.meta_path.insert(0, hider)", "")
    result = subprocess.run(
        [sys.executable, "-c", quiet], input=cell, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("repository", "ref", "message"),
    [
        ("git@github.com:o/r", "main", "repository must be an https URL"),
        ("https://github.com/o/r", "main; rm -rf /", "ref must be a commit, tag or branch"),
    ],
)
def test_install_requirement_rejects_bad_input(repository, ref, message):
    with pytest.raises(ValueError, match=message):
        make_notebooks.install_requirement(repository, ref)


def test_generated_chapter_runs_with_install_cell_skipped(tmp_path):
    """A light chapter's notebook runs top to bottom; the install cell does nothing here.

    The notebook is made for an unreachable repository and ref: had the install cell run pip,
    pip would fail (no such host) and the execution would raise.
    """
    import nbclient
    import nbformat

    make_notebooks.write_notebooks(
        tmp_path, ref="does-not-exist", repository="https://invalid.invalid/none/none"
    )
    path = tmp_path / f"{LIGHT_CHAPTER}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()
    assert notebook.cells[0].outputs == [], notebook.cells[0].outputs
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors


# ------------------------------------------------------------------ links in the built book
def test_colab_url_opens_the_generated_notebook():
    url = book_assets.colab_url("https://github.com/o/r/", "nb", "chapters/02_x")
    assert url == "https://colab.research.google.com/github/o/r/blob/nb/chapters/02_x.ipynb"


def test_download_links_get_a_download_attribute():
    theme_html = (
        '<li><a href="../_sources/chapters/02_x.ipynb" target="_blank"\n'
        '   class="btn btn-sm btn-download-notebook-button dropdown-item"\n'
        '<li><a href="../_sources/chapters/02_x.md" target="_blank"\n'
        '   class="btn btn-sm btn-download-source-button dropdown-item"\n'
        '<li><a href="https://example.org" target="_blank"\n   class="btn btn-sm"'
    )
    fixed = book_assets.add_download_attributes(theme_html)
    assert 'href="../_sources/chapters/02_x.ipynb" download="02_x.ipynb"\n' in fixed
    assert 'href="../_sources/chapters/02_x.md" download="02_x.md"\n' in fixed
    assert 'href="https://example.org" target="_blank"' in fixed
    assert book_assets.add_download_attributes(fixed) == fixed


def test_every_page_colab_link_points_to_a_generated_notebook(notebooks, book_html):
    """The Colab button of each built notebook page opens a notebook the script generates."""
    url = book_config()["repository"]["url"].rstrip("/")
    owner_repo = url.removeprefix("https://github.com/")
    prefix = f"https://colab.research.google.com/github/{owner_repo}/blob/{_colab_branch()}/"
    pages = [name for name in written_docnames() if name.startswith(("chapters/", "exercises/"))]
    for name in pages:
        assert html_path(name).is_file(), f"{html_path(name)} is not built; rebuild the book"
        html = html_path(name).read_text(encoding="utf-8")
        links = re.findall(r'href="(https://colab\.research\.google\.com/[^"]+)"', html)
        assert links == [f"{prefix}{name}.ipynb"], f"{name}: Colab links {links}"
        assert (notebooks / links[0].removeprefix(prefix)).is_file(), links[0]


def test_workflow_pushes_the_notebooks_the_colab_links_open():
    """The publishing workflow writes the notebooks at the published commit, pushes them to
    the branch the Colab buttons open, and serves them with the site; only that job writes."""
    import yaml

    path = REPO_ROOT / ".github" / "workflows" / "deploy-book.yml"
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert workflow["permissions"]["contents"] == "read"
    job = workflow["jobs"]["colab-notebooks"]
    assert job["permissions"] == {"contents": "write"}
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert 'scripts/make-notebooks.py --out "$RUNNER_TEMP/notebooks" --ref "$GITHUB_SHA"' in runs
    assert '"HEAD:refs/heads/$branch"' in runs and "colab_notebooks_branch" in runs
    site = "\n".join(step.get("run", "") for step in workflow["jobs"]["build"]["steps"])
    assert "scripts/make-notebooks.py --out _build/html/notebooks" in site


reader_notebooks = _load("reader_notebooks", REPO_ROOT / "scripts" / "reader_notebooks.py")


def test_notebooks_show_no_myst_syntax_in_a_plain_markdown_renderer(notebooks):
    """Rendered by CommonMark (as Colab and GitHub render markdown cells), no role, directive,
    label or directive option is left as text or as a code block."""
    import nbformat

    for path in sorted(notebooks.rglob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "markdown":
                left = reader_notebooks.leftover_myst(cell.source)
                assert not left, f"{path.name}: {left[:3]} in {cell.source[:200]!r}"
    # a control: the pages' own markdown is full of MyST
    raw = (REPO_ROOT / f"{LIGHT_CHAPTER}.md").read_text(encoding="utf-8")
    assert len(reader_notebooks.leftover_myst(raw)) > 10


def test_notebooks_never_run_a_solution(notebooks):
    """ "Run all" prints no solution: every gated solution is one folded markdown cell."""
    import nbformat

    for name in written_docnames():
        if not name.startswith("exercises/"):
            continue
        source = (REPO_ROOT / f"{name}.md").read_text(encoding="utf-8")
        notebook = nbformat.read(notebooks / f"{name}.ipynb", as_version=4)
        code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
        assert "show_solution(" not in code and "show_source(" not in code, name
        folded = [c for c in notebook.cells if c.source.startswith("<details>")]
        assert len(folded) == source.count("{solution-start}"), name
        assert all(c.cell_type == "markdown" for c in folded), name


def test_notebooks_are_identical_from_one_run_to_the_next():
    requirement = reader_notebooks.install_requirement("https://github.com/o/r", "v1")
    converter = reader_notebooks.Converter.for_book(REPO_ROOT)
    text = (REPO_ROOT / "exercises" / "ex02_partition_function.md").read_text(encoding="utf-8")
    first = reader_notebooks.reader_notebook(text, requirement, converter)
    second = reader_notebooks.reader_notebook(text, requirement, converter)
    assert first == second
    assert len({cell.id for cell in first.cells}) == len(first.cells)


def test_myst_roles_and_directives_become_plain_markdown():
    converter = reader_notebooks.Converter(
        citations={"hinton2002": ("Hinton", "2002"), "a2020": ("A and B", "2020")},
        titles={"sec-mcmc": "Markov chain Monte Carlo"},
    )
    text = "\n".join(
        [
            "(sec-x)=",
            "# Title",
            "",
            "As {cite}`hinton2002,a2020` showed, {cite:t}`hinton2002` used eq. {eq}`eq-energy`",
            "of chapter {ref}`sec-mcmc` ({ref}`the chain <sec-mcmc>`), a {term}`free energy`,",
            "worth {glue:text}`gap:.2f` nats.",
            "",
            "```{admonition} Learning objectives",
            ":class: tip",
            "Learn $x$.",
            "```",
            "",
            "```{exercise} A sampler",
            ":label: ex-a",
            "",
            "Write it.",
            "```",
            "",
            "$$",
            "E = 1",
            "$$ (eq-energy)",
        ]
    )
    plain = converter.plain_markdown(text)
    assert "[Hinton, 2002; A and B, 2020]" in plain and "Hinton [2002] used" in plain
    assert "eq. (energy)" in plain and "*Markov chain Monte Carlo*" in plain
    assert "(the chain)" in plain and "a free energy," in plain and "(computed below)" in plain
    assert "> **Learning objectives**" in plain and "> Learn $x$." in plain
    assert "**Exercise: A sampler**" in plain and "Write it." in plain
    assert "(sec-x)=" not in plain and ":label:" not in plain and "$$ (eq" not in plain
    assert not reader_notebooks.leftover_myst(plain)
