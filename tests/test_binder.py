"""The Binder experience, locally: the launch link opens a chapter as a notebook that runs.

JupyterLab is started from this environment with the settings of ``binder/`` applied the way
Binder applies them (``binder/postBuild`` run with a temporary ``$HOME``), on 127.0.0.1 with
a token. Headless Chromium opens the chapter through the URL path of the book's launch button
(``/lab/tree/chapters/<name>.md``), checks that it opens as a notebook (not in the text
editor), runs every cell with JupyterLab's own "Run All" command, and checks that every cell
ran without an error and that the figures are drawn.

The static checks of the Binder files need no browser.
"""

from __future__ import annotations

import codecs
import functools
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from browser_helpers import (
    ARTIFACTS_DIR,
    REPO_ROOT,
    binder_url,
    chromium_driver,
    figure_cell_count,
    free_port,
    require_chromium,
    save_screenshot,
    skip_or_fail,
    source_path,
    wait_for,
)

BINDER = REPO_ROOT / "binder"
# The prebuilt JupyterLab extension that writes citations as author-year text (postBuild installs it).
CITATIONS = BINDER / "labextensions" / "genphys-citations"
# {cite}`k1,k2` and {cite:t}`k` (group 1: the role's suffix, "" for {cite}; group 2: the keys)
CITE_ROLE = re.compile(r"\{cite(?::([a-z]+))?\}`([^`]+)`")
# The chapter opened in Binder; any chapter or exercise page can be named instead.
BINDER_PAGE = os.environ.get("GENPHYS_BINDER_PAGE", "chapters/02_partition_function")
# The Binder environment (binder/requirements.txt), made by scripts/binder-env.sh: JupyterLab
# is served from it, with the JupyterLab and jupyterlab-myst versions Binder installs.
BINDER_VENV = REPO_ROOT / "_build" / "binder-venv"
RUN_ALL_TIMEOUT_S = 300


# --------------------------------------------------------------------------------------------
# The Binder files (no browser)
# --------------------------------------------------------------------------------------------


def _cite_keys(body: str) -> list[str]:
    """The keys of a cite role's body, split as MyST splits them (at commas and semicolons)."""
    return [key.strip() for key in re.split(r"[,;]", body) if key.strip()]


@functools.cache
def _bibliography() -> dict[str, tuple[str, str]]:
    """(authors, year) of every references.bib entry, lowercased key, as the HTML book writes
    them (sphinxcontrib-bibtex, author_year: "Hinton", "Kingma and Welling", "Goodfellow et al.").

    Read with pybtex, the parser of the book build: the oracle for the JavaScript parser of the
    citations extension.
    """
    import latexcodec  # noqa: F401  (registers the "ulatex" codec)
    import pybtex.database

    entries = {}
    for key, entry in pybtex.database.parse_file(REPO_ROOT / "references.bib").entries.items():
        people = entry.persons.get("author") or entry.persons.get("editor")
        names = [
            codecs.decode(" ".join(p.prelast_names + p.last_names), "ulatex")
            .replace("{", "")
            .replace("}", "")
            for p in people
        ]
        authors = f"{names[0]} et al." if len(names) >= 3 else " and ".join(names)
        entries[key.lower()] = (authors, entry.fields["year"])
    return entries


def _expected_citations(markdown: str) -> list[str]:
    """Every citation of a MyST notebook's markdown, in order, as the HTML book writes it:
    {cite}`a,b` -> "[A, 2002; B, 2010]", {cite:t}`a` -> "A [2002]"."""
    prose = re.sub(r"^```\{code-cell\}.*?^```", "", markdown, flags=re.M | re.S)
    written = []
    for role in CITE_ROLE.finditer(prose):
        cites = [_bibliography()[key.lower()] for key in _cite_keys(role.group(2))]
        if role.group(1) == "t":
            written.append(", ".join(f"{a} [{y}]" for a, y in cites))
        else:
            written.append("[" + "; ".join(f"{a}, {y}" for a, y in cites) + "]")
    return written


def _requirements(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def test_binder_requirements_pin_torch_and_install_the_book():
    binder = _requirements(BINDER / "requirements.txt")
    top = _requirements(REPO_ROOT / "requirements.txt")
    torch_pins = [r for r in binder if re.match(r"torch\b", r)]
    assert torch_pins == [r for r in top if re.match(r"torch\b", r)] == ["torch==2.13.0"]
    assert "-e ." in binder, "binder/requirements.txt must install the book's library editable"
    names = {re.split(r"[<>=!~ \[]", r, maxsplit=1)[0].lower() for r in binder}
    assert {"jupytext", "jupyterlab"} <= names, names
    jupytext = next(r for r in binder if r.lower().startswith("jupytext"))
    assert re.search(r">=\s*1\.(1[6-9]|[2-9]\d)", jupytext), jupytext
    assert (BINDER / "runtime.txt").read_text(encoding="utf-8").strip() == "python-3.11"


def test_binder_opens_markdown_as_notebooks():
    overrides = json.loads(
        (BINDER / "labconfig" / "default_setting_overrides.json").read_text(encoding="utf-8")
    )
    viewers = overrides["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers["markdown"] == "Jupytext Notebook"
    assert viewers["myst"] == "Jupytext Notebook"


def test_post_build_installs_the_lab_settings(tmp_path):
    post_build = BINDER / "postBuild"
    assert os.access(post_build, os.X_OK), "binder/postBuild must be executable"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env["HOME"] = str(tmp_path)
    subprocess.run([str(post_build)], check=True, cwd=tmp_path, env=env, timeout=60)
    installed = tmp_path / ".jupyter" / "labconfig" / "default_setting_overrides.json"
    assert (
        installed.read_bytes()
        == (BINDER / "labconfig" / "default_setting_overrides.json").read_bytes()
    )
    extension = tmp_path / ".local" / "share" / "jupyter" / "labextensions" / CITATIONS.name
    for path in CITATIONS.rglob("*"):
        if path.is_file():
            copy = extension / path.relative_to(CITATIONS)
            assert copy.read_bytes() == path.read_bytes(), copy


def test_citations_extension_is_a_federated_extension_jupyterlab_loads():
    """The hand-written extension declares what JupyterLab's loader reads, and nothing shared."""
    package = json.loads((CITATIONS / "package.json").read_text(encoding="utf-8"))
    assert package["name"] == CITATIONS.name
    build = package["jupyterlab"]["_build"]
    assert package["jupyterlab"]["extension"] is True
    assert build["extension"] == "./extension"
    entry = (CITATIONS / build["load"]).read_text(encoding="utf-8")
    assert "window._JUPYTERLAB[NAME]" in entry and f"const NAME = '{package['name']}'" in entry
    assert "sharedPackages" not in package["jupyterlab"] and not package.get("dependencies")


def test_no_narrative_citation_has_several_keys():
    """The citations extension reads a MyST cite group of one key as {cite:t}, of several as
    {cite} (both are "narrative" groups in jupyterlab-myst): a {cite:t} with several keys would
    be written as a parenthetical citation in Binder."""
    several = [
        f"{path.relative_to(REPO_ROOT)}: {m.group(0)}"
        for path in sorted([*REPO_ROOT.glob("chapters/*.md"), *REPO_ROOT.glob("exercises/*.md")])
        for m in CITE_ROLE.finditer(path.read_text(encoding="utf-8"))
        if m.group(1) == "t" and len(_cite_keys(m.group(2))) > 1
    ]
    assert not several, "write these as one {cite:t} per work:\n" + "\n".join(several)


def test_launch_button_opens_a_file_binder_can_open():
    url = binder_url(BINDER_PAGE)
    assert "?urlpath=lab/tree/" in url, url
    path = url.split("?urlpath=lab/tree/", 1)[1]
    assert (REPO_ROOT / path).is_file(), path
    assert path.endswith(".md"), "Binder opens the MyST markdown source, the source of truth"


# --------------------------------------------------------------------------------------------
# Deployment workflow (no browser)
# --------------------------------------------------------------------------------------------


def test_deploy_workflow_builds_with_the_readme_command_and_deploys_pages():
    path = REPO_ROOT / ".github" / "workflows" / "deploy-book.yml"
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert "push" in triggers and "workflow_dispatch" in triggers, triggers
    assert workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    assert workflow["concurrency"]["group"], workflow["concurrency"]
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    assert build["runs-on"].startswith("ubuntu")
    uses = [step.get("uses", "") for step in build["steps"]]
    assert any(u.startswith("actions/checkout@") for u in uses), uses
    python = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/setup-python"))
    assert str(python["with"]["python-version"]) == "3.11"
    runs = "\n".join(step.get("run", "") for step in build["steps"])
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "bash scripts/build-book.sh" in readme, "the README's build command changed"
    assert re.search(r"^\s*bash scripts/build-book\.sh\s*$", runs, flags=re.M), runs
    upload = next(s for s in build["steps"] if "upload-pages-artifact" in s.get("uses", ""))
    assert upload["with"]["path"] == "_build/html"
    assert deploy["needs"] == "build"
    assert deploy["environment"]["name"] == "github-pages"
    assert any("actions/deploy-pages@" in s.get("uses", "") for s in deploy["steps"])


# --------------------------------------------------------------------------------------------
# JupyterLab with the Binder settings, driven by headless Chromium
# --------------------------------------------------------------------------------------------


def _get(url: str, timeout: float = 5) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0


def binder_python() -> str:
    """Python of the Binder environment: ``$GENPHYS_BINDER_PYTHON`` or ``_build/binder-venv``.

    Skips (fails in CI) where it has not been made with ``bash scripts/binder-env.sh``.
    """
    python = os.environ.get("GENPHYS_BINDER_PYTHON") or str(BINDER_VENV / "bin" / "python")
    if not os.access(python, os.X_OK):
        skip_or_fail(
            f"the Binder environment {python} does not exist; make it with "
            "`bash scripts/binder-env.sh` (see the script for an offline-torch variant)"
        )
    return python


def _labextensions(python: str, home: Path | None = None) -> str:
    """The output of ``jupyter labextension list`` in the Binder environment, colours removed.

    With ``home``, binder/postBuild is run first with that ``$HOME``, as Binder runs it.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    if home is not None:
        env["HOME"] = str(home)
        subprocess.run([str(BINDER / "postBuild")], check=True, cwd=home, env=env, timeout=60)
    result = subprocess.run(
        [python, "-m", "jupyterlab.labextensions", "list"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    return re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)


def test_binder_pins_a_compatible_jupyterlab_myst():
    """jupyterlab-myst is pinned with a JupyterLab it loads in (2.7.0 is flagged with 4.6)."""
    pins = {
        re.split(r"[<>=!~ ]", r, maxsplit=1)[0].lower(): r
        for r in _requirements(BINDER / "requirements.txt")
    }
    assert re.fullmatch(r"jupyterlab-myst==[\d.]+", pins["jupyterlab-myst"]), pins
    assert re.fullmatch(r"jupyterlab==[\d.*]+", pins["jupyterlab"]), pins


@pytest.mark.slow
def test_labextensions_of_the_binder_environment_are_compatible(tmp_path):
    listing = _labextensions(binder_python(), home=tmp_path)
    assert re.search(r"jupyterlab-myst v[\d.]+ enabled\s+OK", listing), listing
    assert re.search(r"jupyterlab-jupytext v[\d.]+ enabled\s+OK", listing), listing
    assert re.search(rf"{CITATIONS.name} v[\d.]+ enabled\s+OK", listing), listing
    assert "not compatible" not in listing and "Conflicting" not in listing, listing


@pytest.fixture
def binder_lab(tmp_path) -> Iterator[dict[str, Any]]:
    """JupyterLab with the Binder settings, serving a copy of the chapters on 127.0.0.1.

    The server's root is a copy of the notebooks and of Jupytext's settings, so that running
    the chapter cannot write into the working tree.
    """
    require_chromium()
    python = binder_python()
    home = tmp_path / "home"
    root = tmp_path / "root"
    home.mkdir()
    for folder in ("chapters", "exercises"):
        if (REPO_ROOT / folder).is_dir():
            shutil.copytree(
                REPO_ROOT / folder, root / folder, ignore=shutil.ignore_patterns("*.ipynb")
            )
    # the citations extension reads the bibliography from the server's root, as on Binder
    shutil.copy2(REPO_ROOT / "references.bib", root / "references.bib")
    for config in ("jupytext.toml", ".jupytext.toml", "pyproject.toml"):
        if (REPO_ROOT / config).is_file():  # Jupytext reads its settings from these
            shutil.copy2(REPO_ROOT / config, root / config)
    # The notebook is run, not saved: switch autosave off so nothing is ever written back.
    user_settings = tmp_path / "user-settings" / "@jupyterlab" / "docmanager-extension"
    user_settings.mkdir(parents=True)
    (user_settings / "plugin.jupyterlab-settings").write_text('{"autosave": false}')
    # Every cell in the page (no windowing), so that the browser checks see all of them.
    notebook_settings = tmp_path / "user-settings" / "@jupyterlab" / "notebook-extension"
    notebook_settings.mkdir(parents=True)
    (notebook_settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')

    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "MPLBACKEND"))}
    env["HOME"] = str(home)
    env.update(
        JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        IPYTHONDIR=str(tmp_path / "ipython"),
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    # postBuild installs the settings and the citations extension where this server reads them
    subprocess.run([str(BINDER / "postBuild")], check=True, cwd=REPO_ROOT, env=env, timeout=60)
    port, token = free_port(), secrets.token_hex(16)
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    log = (ARTIFACTS_DIR / "binder-jupyterlab.log").open("w")
    server = subprocess.Popen(
        [
            python,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            f"--LabApp.user_settings_dir={tmp_path / 'user-settings'}",
            f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            "--ServerApp.terminals_enabled=False",
            "--ServerApp.allow_root=True",
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: server.poll() is not None or _get(f"{base}/api/status?token={token}") == 200,
            timeout=120,
            message="JupyterLab did not start (see _build/artifacts/binder-jupyterlab.log)",
        )
        assert server.poll() is None, (
            "JupyterLab exited (see _build/artifacts/binder-jupyterlab.log)"
        )
        yield {"base": base, "token": token, "root": root}
    finally:
        request = urllib.request.Request(
            f"{base}/api/shutdown", method="POST", headers={"Authorization": f"token {token}"}
        )
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)
        log.close()


OPEN_STATE_JS = """
const app = window.jupyterapp;
if (!app || !app.shell || !app.shell.currentWidget) return null;
const widget = app.shell.currentWidget;
const path = widget.context ? widget.context.path : null;
const notebook = widget.node.querySelector(".jp-Notebook");
return {
  path: path,
  isNotebook: widget.hasClass("jp-NotebookPanel") && Boolean(notebook),
  isEditor: Boolean(widget.node.querySelector(".jp-FileEditor")),
  codeCells: widget.node.querySelectorAll(".jp-CodeCell").length,
  kernel: widget.sessionContext && widget.sessionContext.session
    && widget.sessionContext.session.kernel ? widget.sessionContext.session.kernel.name : null,
};
"""

RUN_ALL_JS = """
const done = arguments[arguments.length - 1];
const app = window.jupyterapp;
const panel = app.shell.currentWidget;
(async () => {
  await panel.sessionContext.ready;
  const started = Date.now();
  while (panel.sessionContext.session.kernel.status !== "idle" && Date.now() - started < 60000) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const t0 = performance.now();
  const ok = await app.commands.execute("notebook:run-all-cells");
  const seconds = (performance.now() - t0) / 1000;
  const cells = Array.from(panel.content.model.cells).filter((c) => c.type === "code")
    .map((c) => ({
      source: c.sharedModel.getSource().slice(0, 80),
      count: c.executionCount,
      outputs: c.outputs.toJSON().map((o) => ({
        type: o.output_type, name: o.name || null, ename: o.ename || null,
        evalue: o.evalue || null, text: typeof o.text === "string" ? o.text.slice(0, 300)
          : Array.isArray(o.text) ? o.text.join("").slice(0, 300) : null,
        mimes: o.data ? Object.keys(o.data) : [],
      })),
    }));
  return { ok: ok, seconds: seconds, cells: cells,
           stderrTracebacks: Array.from(panel.node.querySelectorAll(
             ".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']"))
             .map((e) => e.textContent).filter((t) => /Traceback|Error/.test(t)),
           images: panel.node.querySelectorAll(".jp-RenderedImage img").length };
})().then(done, (err) => done({ error: String(err) }));
"""


@pytest.mark.browser
@pytest.mark.slow
def test_launch_link_opens_the_chapter_as_a_notebook_that_runs(binder_lab):
    source = source_path(BINDER_PAGE)
    assert source is not None, f"{BINDER_PAGE} has no source"
    relative = source.relative_to(REPO_ROOT).as_posix()
    # The path the launch button puts after ?urlpath= (the test above checks it).
    urlpath = binder_url(BINDER_PAGE).split("?urlpath=", 1)[1]
    with chromium_driver("binder") as driver:
        driver.set_script_timeout(RUN_ALL_TIMEOUT_S + 90)
        driver.get(f"{binder_lab['base']}/{urlpath}?token={binder_lab['token']}")
        state = wait_for(
            lambda: (s := driver.execute_script(OPEN_STATE_JS)) and s["path"] == relative and s,
            timeout=120,
            message=f"JupyterLab did not open {relative}",
        )
        # Let the notebook finish rendering before judging which viewer opened it.
        time.sleep(1)
        state = driver.execute_script(OPEN_STATE_JS)
        assert state["isNotebook"] and not state["isEditor"], (
            f"{relative} opened in the text editor, not as a notebook: {state}"
        )
        assert state["codeCells"] > 0, state
        result = driver.execute_async_script(RUN_ALL_JS)
        save_screenshot(driver, f"binder_{BINDER_PAGE}", full_page=False)
    assert "error" not in result, result
    errors = [
        f"cell {k} ({cell['source']!r}): {out['ename']}: {out['evalue']}"
        for k, cell in enumerate(result["cells"])
        for out in cell["outputs"]
        if out["type"] == "error"
    ]
    assert not errors, "cells raised errors in Binder:\n" + "\n".join(errors)
    assert not result["stderrTracebacks"], result["stderrTracebacks"]
    assert result["ok"], "JupyterLab's Run All reported a failure"
    not_run = [c["source"] for c in result["cells"] if c["count"] is None and c["source"].strip()]
    assert not not_run, f"cells that did not run: {not_run}"
    figures = figure_cell_count(source)
    assert result["images"] >= figures, f"{result['images']} images drawn, {figures} figures"
    print(f"{relative}: {len(result['cells'])} code cells ran in {result['seconds']:.1f} s")


# What a reader must not see in a rendered markdown cell: MyST roles and directives left as
# text mean the cell was rendered as plain Markdown (no jupyterlab-myst).
RAW_MYST = re.compile(r"\{(?:eq|cite|ref|numref|doc|math)(?::[a-z]+)?\}`|```\{|:::\{")

MYST_STATE_JS = """
const done = arguments[arguments.length - 1];
const app = window.jupyterapp;
const panel = app.shell.currentWidget;
(async () => {
  await panel.context.ready;
  const cells = () => Array.from(panel.node.querySelectorAll(".jp-MarkdownCell"));
  // Markdown cells render when they come into view: scroll through the whole notebook.
  const scroller = panel.content.node;
  for (let y = 0; y <= scroller.scrollHeight; y += 400) {
    scroller.scrollTop = y;
    await new Promise((resolve) => setTimeout(resolve, 60));
  }
  const started = Date.now();
  // jupyterlab-myst renders a markdown cell into a `.myst` widget; JupyterLab's own
  // renderer would write a `.jp-MarkdownOutput` with the roles left as text.
  const output = (c) => c.querySelector(".myst") || c.querySelector(".jp-MarkdownOutput");
  const pending = () => cells().filter((c) => !output(c) || !output(c).children.length).length;
  while (pending() && Date.now() - started < 30000) {
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  // binder/labextensions/genphys-citations rewrites the citations once it has read the .bib
  const extension = window.genphysCitations;
  const bibEntries = extension ? await extension.ready : null;
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const rendered = cells().map(output).filter((o) => o && o.children.length);
  // Every citation as a reader sees it: a cite group with its CSS brackets and separators,
  // or a lone citation, in document order.
  const pseudo = (element, which) => {
    const content = getComputedStyle(element, which).content;
    return content && content !== "none" && content !== "normal" ? JSON.parse(content) : "";
  };
  const citeSelector = "span.cite-group, span.genphys-cite, span[title='Citation Not Found']";
  const citations = Array.from(panel.node.querySelectorAll(
      ".jp-MarkdownCell " + citeSelector.split(", ").join(", .jp-MarkdownCell ")))
    .filter((e) => !(e.parentElement && e.parentElement.matches("span.cite-group")))
    .map((e) => e.matches("span.cite-group")
      ? pseudo(e, "::before") + Array.from(e.children)
          .map((c) => c.textContent + pseudo(c, "::after")).join("") + pseudo(e, "::after")
      : e.textContent)
    .map((t) => t.replace(/\u00a0/g, " "));
  const text = rendered.map((node) => {
    const clone = node.cloneNode(true);
    clone.querySelectorAll("pre, code, mjx-container, .MathJax, .katex, script, style")
      .forEach((e) => e.remove());
    return clone.textContent;
  }).join("\\n");
  return {
    markdownCells: cells().length,
    rendered: rendered.length,
    myst: cells().filter((c) => c.querySelector(".myst")).length,
    math: panel.node.querySelectorAll(".jp-MarkdownCell mjx-container, "
      + ".jp-MarkdownCell .katex, .jp-MarkdownCell .MathJax").length,
    admonitions: panel.node.querySelectorAll(".jp-MarkdownCell aside.admonition, "
      + ".jp-MarkdownCell .admonition, .jp-MarkdownCell [class*='admonition']").length,
    text: text,
    citations: citations,
    bareKeys: panel.node.querySelectorAll(".jp-MarkdownCell span[title='Citation Not Found']")
      .length,
    bibEntries: bibEntries,
    bibliography: extension ? Object.fromEntries(extension.keys().map((k) => {
      const c = extension.citation(k);
      return [k, [c.author, c.year]];
    })) : null,
  };
})().then(done, (err) => done({ error: String(err) }));
"""


@pytest.mark.browser
@pytest.mark.slow
def test_launch_link_renders_the_chapter_as_myst(binder_lab):
    """Opened from its launch URL, the chapter's markdown reads as in the book.

    Equations are typeset, admonitions are boxes, and no MyST role or directive ({eq},
    {cite}, ```{...}) is left as text: jupyterlab-myst renders the markdown cells. Citations
    read as author-year text, as in the HTML book (binder/labextensions/genphys-citations):
    jupyterlab-myst alone shows each bare key with a "Citation Not Found" warning.
    """
    source = source_path(BINDER_PAGE)
    assert source is not None, f"{BINDER_PAGE} has no source"
    relative = source.relative_to(REPO_ROOT).as_posix()
    text = source.read_text(encoding="utf-8")
    urlpath = binder_url(BINDER_PAGE).split("?urlpath=", 1)[1]
    with chromium_driver("binder-myst") as driver:
        driver.get(f"{binder_lab['base']}/{urlpath}?token={binder_lab['token']}")
        wait_for(
            lambda: (s := driver.execute_script(OPEN_STATE_JS)) and s["isNotebook"] and s,
            timeout=120,
            message=f"JupyterLab did not open {relative} as a notebook",
        )
        state = driver.execute_async_script(MYST_STATE_JS)
        driver.execute_script("window.jupyterapp.shell.currentWidget.content.node.scrollTop = 0")
        save_screenshot(driver, f"binder_myst_{BINDER_PAGE}", full_page=False)
        driver.execute_script(
            "const cite = document.querySelector('.jp-MarkdownCell span.genphys-cite');"
            "if (cite) cite.scrollIntoView({block: 'center'});"
        )
        save_screenshot(driver, f"binder_citation_{BINDER_PAGE}", full_page=False)
    assert "error" not in state, state
    assert state["rendered"] == state["markdownCells"] > 0, state
    assert state["myst"] == state["markdownCells"], (
        f"cells not rendered by jupyterlab-myst: {state}"
    )
    raw = sorted({m.group(0) for m in RAW_MYST.finditer(state["text"])})
    assert not raw, f"MyST left as text in the rendered chapter: {raw}; renderers {state}"
    if re.search(r"\$\$|\{math\}|(?<![\w$])\$[^$\n]+\$", text):
        assert state["math"] > 0, f"the chapter has equations but none is typeset: {state}"
    if re.search(r"^(:::|```)\{(admonition|note|tip|warning|important)\}", text, flags=re.M):
        assert state["admonitions"] > 0, f"the chapter's admonitions are not rendered: {state}"
    # the extension parsed every entry of references.bib as pybtex does
    assert state["bibEntries"] == len(_bibliography()), state["bibEntries"]
    assert state["bibliography"] == {k: list(v) for k, v in _bibliography().items()}
    expected = _expected_citations(text)
    assert state["bareKeys"] == 0, f"citations left as bare keys: {state['citations']}"
    assert state["citations"] == expected, (state["citations"], expected)
