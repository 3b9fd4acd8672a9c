"""Execute the book's pages into the jupyter-cache, several at a time, before the build.

``jupyter-book build`` (``execute_notebooks: cache``) executes the pages it does not find in
``_build/.jupyter_cache`` one at a time. This script fills that cache first, with ``--jobs``
kernels at once, so that the build executes nothing and only renders:

    python scripts/execute_notebooks.py                    # every page of _toc.yml
    python scripts/execute_notebooks.py --no-solutions     # and the exercise pages without
                                                           # their solutions (the teaching build)
    python scripts/execute_notebooks.py --jobs 2 chapters/05_mcmc.md

Each page is read the way myst-nb reads it in the build (its MyST notebook reader), so the
cache key is the one the build computes: the code cells (source and metadata) and the
kernelspec; prose edits keep it. Pages already in the cache are skipped. A page runs in its own
folder with the build's timeout (``execute.timeout`` of ``_config.yml``, errors not allowed);
one that fails is not stored, and the build then executes it again and reports the error as it
always does. With ``--no-solutions`` the exercise pages are also executed as
``scripts/strip_solutions.py`` writes them for the teaching build (``build-book.sh
--no-solutions``, which copies this cache): without their solution cells, a different cache
key, and the proof that the pages handed out still run.

The number of kernels defaults to the CPUs this process may use (``genphys.threads``: the
cgroup quota and the affinity mask), each kernel with one torch thread, and at most one kernel
per 1.5 GB of memory (the budget of a page).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "lib"))


def toc_pages(root: Path = ROOT) -> list[Path]:
    """Every file of ``_toc.yml`` that is a MyST notebook (``.md`` with Jupytext front matter)."""
    from myst_nb.core.read import is_myst_markdown_notebook

    def files(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["file"]] if "file" in node else []
            if "root" in node:
                found.append(node["root"])
            return found + [f for value in node.values() for f in files(value)]
        if isinstance(node, list):
            return [f for item in node for f in files(item)]
        return []

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    pages = [root / f"{name}.md" for name in dict.fromkeys(files(toc))]
    return [p for p in pages if p.is_file() and is_myst_markdown_notebook(p.read_text())]


def default_jobs() -> int:
    """Kernels at once: the CPUs available, at most one per 1.5 GB of physical memory."""
    from genphys.threads import available_cpus

    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return available_cpus()
    return max(1, min(available_cpus(), int(memory // (1.5 * 2**30))))


def read_page(path: Path, text: str | None = None):
    """The notebook myst-nb builds from ``path`` (or from ``text``, read as if at ``path``)."""
    from myst_nb.core.read import read_myst_markdown_notebook

    text = path.read_text(encoding="utf8") if text is None else text
    return read_myst_markdown_notebook(text, add_source_map=True, path=str(path))


def _execute(job: tuple[str, str, bool, int]) -> tuple[str, bool, object, float, str | None]:
    """Run in a worker process: execute one page, return the executed notebook."""
    from jupyter_cache.executors.utils import single_nb_execution
    from strip_solutions import strip_solutions

    path, label, stripped, timeout = job
    page = Path(path)
    text = page.read_text(encoding="utf8")
    notebook = read_page(page, strip_solutions(text) if stripped else text)
    result = single_nb_execution(
        notebook, cwd=str(page.parent), timeout=timeout, allow_errors=False, meta_override=True
    )
    error = None
    if result.err is not None:
        error = str(result.err).strip().splitlines()[-1][:200] if str(result.err) else "error"
    return label, stripped, result.nb, result.time, error


def main(argv: list[str] | None = None) -> int:
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from strip_solutions import exercise_pages, strip_solutions

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="*", type=Path, help="pages (default: all of _toc.yml)")
    parser.add_argument("--jobs", type=int, default=default_jobs(), help="kernels at once")
    parser.add_argument("--cache", type=Path, default=ROOT / "_build" / ".jupyter_cache")
    parser.add_argument(
        "--no-solutions", action="store_true", help="also the exercise pages without solutions"
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be a positive integer. Got {args.jobs} instead.")

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    timeout = int(config.get("execute", {}).get("timeout", 600))
    pages = [p.resolve() for p in args.pages] or toc_pages()
    exercises = {p.resolve() for p in exercise_pages()}
    cache = get_cache(str(args.cache))

    jobs, cached = [], 0
    for page in pages:
        label = page.relative_to(ROOT).as_posix() if page.is_relative_to(ROOT) else str(page)
        variants = [False] + ([True] if args.no_solutions and page in exercises else [])
        for stripped in variants:
            text = page.read_text(encoding="utf8")
            notebook = read_page(page, strip_solutions(text) if stripped else text)
            try:
                cache.match_cache_notebook(notebook)
                cached += 1
            except KeyError:
                jobs.append((str(page), label, stripped, timeout))
    # the longest pages first, so that the last ones to finish are short (size ~ run time)
    jobs.sort(key=lambda job: Path(job[0]).stat().st_size, reverse=True)
    print(
        f"{len(jobs)} page(s) to execute with {args.jobs} kernel(s) at once, "
        f"{cached} already in {args.cache}",
        flush=True,
    )
    start, total, failed = time.perf_counter(), 0.0, []
    env_threads = os.environ.get("GENPHYS_NUM_THREADS")
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(_execute, job) for job in jobs]
        for future in as_completed(futures):
            label, stripped, notebook, seconds, error = future.result()
            name = label + (" (without solutions)" if stripped else "")
            total += seconds
            if error is None:
                cache.cache_notebook_bundle(
                    CacheBundleIn(notebook, label, data={"execution_seconds": seconds}),
                    check_validity=False,
                    overwrite=True,
                )
                print(f"  {name}: {seconds:.1f} s", flush=True)
            else:
                failed.append(name)
                print(f"  {name}: FAILED after {seconds:.1f} s: {error}", flush=True)
    wall = time.perf_counter() - start
    print(
        f"executed {len(jobs)} page(s) in {wall:.0f} s of wall time ({total:.0f} s of page time,"
        f" {args.jobs} kernel(s), GENPHYS_NUM_THREADS={env_threads or 'unset'})"
    )
    if failed:
        print("not cached (the build runs them again and reports the error): " + ", ".join(failed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
