"""Comparing generative models against exact answers: observables with error bars, divergences, a table.

The capstone chapter trains every model family of the book on the same samples of the
:math:`4 \\times 4` Ising model, where the Boltzmann distribution over all :math:`2^{16}`
configurations is known exactly. This module holds what the comparison needs and no
model: mapping generated values to spins, the empirical distribution of samples over
all states, its divergences from the exact table with the sampling-noise floor of exact
samples of the same size, sample observables next to their exact values, and a printed
table. Explained in {ref}`sec-capstone`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ._validation import as_tensor, check_positive_float, check_positive_int, describe
from .seeding import make_generator
from .thermodynamics import MAX_EXACT_SITES

__all__ = [
    "compare_observables",
    "count_parameters",
    "divergence_floor",
    "empirical_distribution",
    "empirical_divergences",
    "format_table",
    "state_index",
    "to_spins",
]


def _side(n_sites: int, name: str) -> int:
    L = math.isqrt(n_sites)
    if L * L != n_sites or L < 2:
        raise ValueError(
            f"{name} must describe a square lattice of L*L >= 4 sites. Got {n_sites} sites instead."
        )
    return L


def to_spins(x: object, L: int, *, threshold: float = 0.0) -> torch.Tensor:
    """:math:`s_i = +1` if :math:`x_i > \\text{threshold}`, else :math:`-1`, reshaped to lattices.

    The map from the continuous output of a diffusion model, a GAN or a VAE decoder to
    Ising spins: ``threshold=0`` for values around :math:`\\pm 1`, ``threshold=0.5`` for
    values around bits :math:`\\{0, 1\\}`.

    Parameters
    ----------
    x : Tensor of shape (n_samples, L * L) or (n_samples, ..., L, L)
        Finite values.
    L : int
        Linear lattice size.
    threshold : float

    Returns
    -------
    Tensor of shape (n_samples, L, L), float64
        Spins ±1. Explained in {ref}`sec-capstone`.
    """
    L = check_positive_int("L", L, minimum=2)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise TypeError(f"threshold must be a float. Got {describe(threshold)} instead.")
    v = as_tensor("x", x).detach()
    if v.dim() < 2 or v[0].numel() != L * L:
        raise ValueError(
            f"x must have shape (n_samples, {L * L}) or (n_samples, ..., {L}, {L}). "
            f"Got shape {tuple(v.shape)} instead."
        )
    v = v.reshape(v.shape[0], L * L)  # (n, N)
    if not bool(torch.isfinite(v).all()):
        raise ValueError("x must be finite. Got NaN or infinite values instead.")
    return torch.where(v > threshold, 1.0, -1.0).to(torch.float64).reshape(-1, L, L)


def _spins(name: str, spins: object) -> torch.Tensor:
    s = as_tensor(name, spins).detach()
    if s.dim() != 3 or s.shape[1] != s.shape[2] or s.shape[0] == 0:
        raise ValueError(
            f"{name} must have shape (n_samples, L, L) with n_samples >= 1. "
            f"Got shape {tuple(s.shape)} instead."
        )
    if not bool(((s == 1) | (s == -1)).all()):
        raise ValueError(f"{name} must hold spins ±1 only. Got other values instead.")
    if s.shape[1] ** 2 > MAX_EXACT_SITES:
        raise ValueError(
            f"{name} must have at most {MAX_EXACT_SITES} sites to tabulate all states. "
            f"Got {s.shape[1] ** 2} instead."
        )
    return s


def state_index(spins: object) -> torch.Tensor:
    """:math:`k = \\sum_i x_i 2^i` with bits :math:`x_i = (s_i + 1)/2`, sites in row-major order.

    The number of a configuration in the order of
    :func:`genphys.enumeration.binary_states` (and of
    :func:`genphys.thermodynamics.boltzmann_log_prob_exact`).

    Parameters
    ----------
    spins : Tensor of shape (n_samples, L, L)
        Spins ±1.

    Returns
    -------
    Tensor of shape (n_samples,), int64
        Explained in {ref}`sec-capstone`.
    """
    s = _spins("spins", spins)
    s = s.reshape(s.shape[0], -1).cpu()  # (n, N)
    bits = ((s + 1) / 2).round().to(torch.int64)  # (n, N)
    powers = 2 ** torch.arange(bits.shape[1], dtype=torch.int64)  # (N,)
    return (bits * powers).sum(1)  # (n,)


def empirical_distribution(spins: object) -> torch.Tensor:
    """:math:`\\hat q(k) = \\#\\{j : k_j = k\\} / n` over all :math:`2^{L^2}` configurations.

    Parameters
    ----------
    spins : Tensor of shape (n_samples, L, L)
        Spins ±1, ``L * L <= genphys.thermodynamics.MAX_EXACT_SITES``.

    Returns
    -------
    Tensor of shape (2 ** (L * L),), float64
        Sums to 1, in the order of ``binary_states(L * L)``. Explained in {ref}`sec-capstone`.
    """
    s = _spins("spins", spins)
    codes = state_index(s)  # (n,)
    counts = torch.bincount(codes, minlength=2 ** (s.shape[1] ** 2)).to(torch.float64)
    return counts / codes.shape[0]


def empirical_divergences(spins: object, log_p: object) -> dict[str, float]:
    """:math:`\\mathrm{JSD}(p, \\hat q)` and :math:`\\mathrm{KL}(\\hat q \\,\\|\\, p)` of samples' histogram against an exact table.

    :math:`\\mathrm{KL}(p \\,\\|\\, \\hat q)` is infinite as soon as one state of positive
    probability is missing from the samples, which is the rule for :math:`2^{16}` states and
    :math:`10^4` samples; the two divergences returned are finite. Both are positive even
    for exact samples: compare them with :func:`divergence_floor` at the same sample size.

    Parameters
    ----------
    spins : Tensor of shape (n_samples, L, L)
        Spins ±1.
    log_p : Tensor of shape (2 ** (L * L),)
        Normalised exact log-probabilities in the order of ``binary_states(L * L)``, e.g.
        :func:`genphys.thermodynamics.boltzmann_log_prob_exact`.

    Returns
    -------
    dict
        ``jsd`` and ``kl_samples_exact`` in nats. Explained in {ref}`sec-capstone`.
    """
    from .grid import js_divergence, kl_divergence

    q = empirical_distribution(spins)  # (2^N,)
    lp = as_tensor("log_p", log_p, ndim=1, finite=False).detach().to("cpu", torch.float64)
    if lp.shape != q.shape:
        raise ValueError(
            f"log_p must have shape {tuple(q.shape)} (one entry per state of the lattice). "
            f"Got shape {tuple(lp.shape)} instead."
        )
    if bool(torch.isnan(lp).any()) or abs(float(torch.logsumexp(lp, 0))) > 1e-6:
        raise ValueError(
            f"log_p must be normalised (logsumexp 0). Got logsumexp {float(torch.logsumexp(lp, 0))} instead."
        )
    p = lp.exp()
    return {"jsd": js_divergence(p, q), "kl_samples_exact": kl_divergence(q, p)}


def divergence_floor(
    L: int,
    T: float,
    n_samples: int,
    *,
    n_repeats: int = 5,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    """Mean and spread of :func:`empirical_divergences` for ``n_samples`` exact Boltzmann draws.

    The sampling-noise floor: a model whose samples are exact still shows these values.
    Draws ``n_repeats`` independent sets with
    :func:`genphys.thermodynamics.sample_boltzmann_exact`, all from one generator.

    Parameters
    ----------
    L : int
    T : float
    n_samples : int
    n_repeats : int
        At least 2, for the standard deviation.
    seed, generator
        Exactly one (:mod:`genphys.seeding`; a generator on the CPU).

    Returns
    -------
    dict
        ``jsd``, ``jsd_sd``, ``kl_samples_exact``, ``kl_samples_exact_sd``.
        Explained in {ref}`sec-capstone`.
    """
    from .thermodynamics import boltzmann_log_prob_exact, sample_boltzmann_exact

    n_samples = check_positive_int("n_samples", n_samples)
    n_repeats = check_positive_int("n_repeats", n_repeats, minimum=2)
    g = make_generator(seed, generator)
    log_p = boltzmann_log_prob_exact(L, T)
    runs = [
        empirical_divergences(sample_boltzmann_exact(L, T, n_samples, generator=g), log_p)
        for _ in range(n_repeats)
    ]
    out: dict[str, float] = {}
    for key in ("jsd", "kl_samples_exact"):
        values = np.array([run[key] for run in runs])
        out[key], out[key + "_sd"] = float(values.mean()), float(values.std(ddof=1))
    return out


def compare_observables(spins: object, T: float, *, n_blocks: int = 50) -> dict[str, dict]:
    """Sample observables with jackknife errors next to the exact values, and :math:`\\zeta = (\\hat o - o)/\\mathrm{se}`.

    Uses :func:`genphys.ising.observables` (block jackknife) and
    :func:`genphys.ising.exact_observables` (enumeration).

    Parameters
    ----------
    spins : Tensor of shape (n_samples, L, L)
        Spins ±1; independent samples, or chain-major Markov samples.
    T : float
    n_blocks : int

    Returns
    -------
    dict
        For each key of ``genphys.ising.OBSERVABLE_KEYS``: a dict with ``value``, ``se``,
        ``exact`` and ``z`` (``inf`` when ``se == 0`` and the value is off).
        Explained in {ref}`sec-capstone`.
    """
    from . import ising

    s = _spins("spins", spins)
    T = check_positive_float("T", T)
    sample = ising.observables(s, T, n_blocks=n_blocks)
    exact = ising.exact_observables(s.shape[1], T)
    out: dict[str, dict] = {}
    for key in ising.OBSERVABLE_KEYS:
        value, se, ref = sample[key], sample[key + "_se"], exact[key]
        if se > 0:
            z = (value - ref) / se
        else:
            z = 0.0 if value == ref else math.copysign(math.inf, value - ref)
        out[key] = {"value": value, "se": se, "exact": ref, "z": z}
    return out


def count_parameters(model: object) -> int:
    """:math:`\\sum` of the sizes of all parameter tensors of an ``nn.Module``.

    Frozen parameters (``requires_grad=False``, e.g. while sampling) count too: the
    number describes the model, not its training state.

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    int
        Explained in {ref}`sec-capstone`.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module. Got {describe(model)} instead.")
    return sum(p.numel() for p in model.parameters())


def format_table(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> str:
    """A fixed-width text table: one line per row, one column per key in ``columns``.

    Floats print with 4 significant digits, missing keys as ``-``.

    Parameters
    ----------
    rows : sequence of mappings
    columns : sequence of str

    Returns
    -------
    str
        Explained in {ref}`sec-capstone`.
    """
    if isinstance(columns, str) or not all(isinstance(c, str) for c in columns) or not columns:
        raise TypeError(
            f"columns must be a non-empty sequence of str. Got {describe(columns)} instead."
        )
    if not all(isinstance(r, Mapping) for r in rows):
        raise TypeError(f"rows must be a sequence of mappings. Got {describe(rows)} instead.")

    def cell(value: object) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    body = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [
        max(len(c), *(len(b[i]) for b in body)) if body else len(c) for i, c in enumerate(columns)
    ]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.rjust(w) for v, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)
