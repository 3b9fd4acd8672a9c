"""Shared fixtures: random RBMs and binary data for the numerical tests, and the headless
Chromium fixtures for the tests that open the built book and JupyterLab.

One CPU thread for the whole run: the test command runs one pytest worker per core, and the
models of the tests are small, so more threads only wait on each other. ``GENPHYS_NUM_THREADS``
is set here, before any test runs, so this process and every kernel that nbval or the Binder
test starts (they inherit the environment) take one thread (:mod:`genphys.threads`); a value
set by the caller wins.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from browser_helpers import (
    book_html_dir,
    chromium_driver,
    serve_directory,
    skip_or_fail,
)

import genphys
from genphys.rbm import BernoulliRBM

os.environ.setdefault("GENPHYS_NUM_THREADS", "1")
genphys.threads.configure_threads()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``cuda`` where no CUDA device is available."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


# ---------------------------------------------------------------- RBMs and data
def _random_rbm(
    n_visible: int,
    n_hidden: int,
    *,
    scale: float = 1.0,
    seed: int = 0,
    bias_scale: float | None = None,
    bias_shift: float = 0.0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> BernoulliRBM:
    """RBM with W ~ N(0, scale^2) and biases ~ N(bias_shift, bias_scale^2) (bias_scale = scale).

    The numbers are drawn in float64 from one seeded generator and then cast, so the same
    seed gives the same model (up to rounding) in every dtype and on every device.
    """
    g = torch.Generator().manual_seed(seed)
    bias_scale = scale if bias_scale is None else bias_scale
    W = scale * torch.randn(n_visible, n_hidden, generator=g, dtype=torch.float64)
    a = bias_scale * torch.randn(n_visible, generator=g, dtype=torch.float64) + bias_shift
    b = bias_scale * torch.randn(n_hidden, generator=g, dtype=torch.float64) + bias_shift
    return BernoulliRBM.from_parameters(*(t.to(dtype=dtype, device=device) for t in (W, a, b)))


def _binary_data(
    n_samples: int,
    n_visible: int,
    *,
    p: float = 0.4,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Independent Bernoulli(p) pixels, shape (n_samples, n_visible)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.bernoulli(torch.full((n_samples, n_visible), p, dtype=torch.float64), generator=g)
    return x.to(dtype=dtype, device=device)


@pytest.fixture
def make_rbm() -> Callable[..., BernoulliRBM]:
    """Factory ``make_rbm(n_visible, n_hidden, *, scale, seed, bias_scale, bias_shift, dtype, device)``."""
    return _random_rbm


@pytest.fixture
def make_binary_data() -> Callable[..., torch.Tensor]:
    """Factory ``make_binary_data(n_samples, n_visible, *, p, seed, dtype, device)``."""
    return _binary_data


# -------------------------------------------------------------------- browser
@pytest.fixture(scope="session")
def book_html() -> Path:
    """The built HTML book; skips (fails in CI) where it has not been built."""
    html = book_html_dir()
    if not (html / "index.html").exists():
        skip_or_fail(
            f"the book is not built at {html}; build it with `bash scripts/build-book.sh` "
            "(or point GENPHYS_BOOK_HTML at a built book)"
        )
    return html


@pytest.fixture(scope="session")
def book_url(book_html: Path) -> Iterator[str]:
    """Base URL of the built book, served on 127.0.0.1 for the whole session."""
    with serve_directory(book_html) as url:
        yield url


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A headless Chromium WebDriver shared by the session (fresh profile, console logged)."""
    with chromium_driver("book") as driver:
        yield driver
