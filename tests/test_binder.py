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

import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
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
# The chapter opened in Binder; any chapter or exercise page can be named instead.
BINDER_PAGE = os.environ.get("GENPHYS_BINDER_PAGE", "chapters/02_partition_function")
RUN_ALL_TIMEOUT_S = 300


# --------------------------------------------------------------------------------------------
# The Binder files (no browser)
# --------------------------------------------------------------------------------------------


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


@pytest.fixture
def binder_lab(tmp_path) -> Iterator[dict[str, Any]]:
    """JupyterLab with the Binder settings, serving a copy of the chapters on 127.0.0.1.

    The server's root is a copy of the notebooks and of Jupytext's settings, so that running
    the chapter cannot write into the working tree.
    """
    require_chromium()
    if importlib.util.find_spec("jupyterlab") is None:
        skip_or_fail("JupyterLab is not installed; install the test extras: pip install -e .[test]")
    home = tmp_path / "home"
    root = tmp_path / "root"
    home.mkdir()
    for folder in ("chapters", "exercises"):
        if (REPO_ROOT / folder).is_dir():
            shutil.copytree(
                REPO_ROOT / folder, root / folder, ignore=shutil.ignore_patterns("*.ipynb")
            )
    for config in ("jupytext.toml", ".jupytext.toml", "pyproject.toml"):
        if (REPO_ROOT / config).is_file():  # Jupytext reads its settings from these
            shutil.copy2(REPO_ROOT / config, root / config)
    # The notebook is run, not saved: switch autosave off so nothing is ever written back.
    user_settings = tmp_path / "user-settings" / "@jupyterlab" / "docmanager-extension"
    user_settings.mkdir(parents=True)
    (user_settings / "plugin.jupyterlab-settings").write_text('{"autosave": false}')

    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "MPLBACKEND"))}
    env["HOME"] = str(home)
    subprocess.run([str(BINDER / "postBuild")], check=True, cwd=REPO_ROOT, env=env, timeout=60)
    env.update(
        JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        IPYTHONDIR=str(tmp_path / "ipython"),
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    port, token = free_port(), secrets.token_hex(16)
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    log = (ARTIFACTS_DIR / "binder-jupyterlab.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
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
