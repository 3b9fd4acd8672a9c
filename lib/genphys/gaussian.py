r"""Diagonal Gaussians and log-mean-exp: the pieces of maths the VAE chapters share.

Written once here and used by :mod:`genphys.vae` and :mod:`genphys.linear_gaussian`:

* :func:`log_normal_diagonal` and :func:`log_standard_normal` -- the log-densities of
  :math:`\mathcal N(m, \operatorname{diag} e^{\ell})` and :math:`\mathcal N(0, I)`;
* :func:`kl_diagonal_gaussian_standard_normal` -- the closed-form
  :math:`\mathrm{KL}(\mathcal N(m, \operatorname{diag} e^{\ell}) \,\|\, \mathcal N(0, I))`,
  eq. {eq}`eq-kl-gaussian`, and its Monte Carlo twin
  :func:`estimate_kl_diagonal_gaussian_standard_normal`;
* :func:`log_mean_exp` -- :math:`\log \frac1k \sum_s e^{v_s}` along any axis, and
  :func:`log_mean_exp_chunked`, the same over ``k`` weights drawn a chunk at a time (the
  importance-weighted bounds of {ref}`sec-iwae`).

Explained in {ref}`sec-vae-kl` and {ref}`sec-iwae`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._validation import (
    as_tensor,
    check_generator,
    check_positive_int,
    check_same_placement,
    describe,
)

__all__ = [
    "LOG_2PI",
    "check_gaussian",
    "estimate_kl_diagonal_gaussian_standard_normal",
    "kl_diagonal_gaussian_standard_normal",
    "log_mean_exp",
    "log_mean_exp_chunked",
    "log_normal_diagonal",
    "log_standard_normal",
]

LOG_2PI = math.log(2.0 * math.pi)


def check_gaussian(
    mean: object, log_var: object, *, names: tuple[str, str] = ("mean", "log_var")
) -> tuple[torch.Tensor, torch.Tensor]:
    """``mean`` and ``log_var`` as tensors of one shape (n, d) or (d,), dtype and device."""
    mean_t = as_tensor(names[0], mean, ndim=(1, 2))
    log_var_t = as_tensor(names[1], log_var, ndim=(1, 2))
    if log_var_t.shape != mean_t.shape:
        raise ValueError(
            f"{names[1]} must have the shape of {names[0]} {tuple(mean_t.shape)}. "
            f"Got shape {tuple(log_var_t.shape)} instead."
        )
    check_same_placement(names[0], mean_t, **{names[1]: log_var_t})
    return mean_t, log_var_t


def log_normal_diagonal(h: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    r""":math:`\log \mathcal N(h; m, \operatorname{diag} e^{\ell}) = -\frac12 \sum_j [\log 2\pi + \ell_j + (h_j - m_j)^2 e^{-\ell_j}]`.

    No argument checks (an inner-loop helper of the bounds).

    Parameters
    ----------
    h : Tensor of shape (..., d)
    mean, log_var : Tensor broadcastable to the shape of ``h``

    Returns
    -------
    Tensor of shape (...)
        Summed over the last axis. Explained in {ref}`sec-iwae`.
    """
    return -0.5 * (LOG_2PI + log_var + (h - mean) ** 2 * torch.exp(-log_var)).sum(-1)


def log_standard_normal(h: torch.Tensor) -> torch.Tensor:
    r""":math:`\log \mathcal N(h; 0, I) = -\frac12 \sum_j (\log 2\pi + h_j^2)`.

    Parameters
    ----------
    h : Tensor of shape (..., d)

    Returns
    -------
    Tensor of shape (...)
        Summed over the last axis. Explained in {ref}`sec-iwae`.
    """
    return -0.5 * (LOG_2PI + h**2).sum(-1)


def _kl_diagonal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    r"""Unchecked :math:`\frac12 \sum_j (e^{\ell_j} + m_j^2 - 1 - \ell_j)`, for the inner loops.

    The formula of :func:`kl_diagonal_gaussian_standard_normal` without the argument checks
    (the training step calls it on the encoder's outputs every mini-batch).
    """
    return 0.5 * (torch.exp(log_var) + mean**2 - 1.0 - log_var).sum(-1)


def kl_diagonal_gaussian_standard_normal(mean: object, log_var: object) -> torch.Tensor:
    r"""Exact :math:`\mathrm{KL}(q \| p) = \frac12 \sum_j (e^{\ell_j} + m_j^2 - 1 - \ell_j)`.

    Here :math:`q = \mathcal N(m, \operatorname{diag} e^{\ell})` and :math:`p = \mathcal N(0, I)`.

    Explained in {ref}`sec-vae-kl`, eq. {eq}`eq-kl-gaussian`.

    Parameters
    ----------
    mean : Tensor of shape (n, n_latent) or (n_latent,)
    log_var : Tensor of the shape of ``mean``
        Log-variances :math:`\ell_j = \log s_j^2`.

    Returns
    -------
    Tensor of shape (n,) or ()
    """
    mean, log_var = check_gaussian(mean, log_var)
    return _kl_diagonal(mean, log_var)


def estimate_kl_diagonal_gaussian_standard_normal(
    mean: object, log_var: object, *, n_samples: int, generator: torch.Generator
) -> torch.Tensor:
    r"""Monte Carlo :math:`\frac1S \sum_s [\log q(h_s) - \log p(h_s)]`, :math:`h_s \sim q`.

    The sampled counterpart of :func:`kl_diagonal_gaussian_standard_normal` (same
    arguments plus ``n_samples`` and ``generator``); unbiased, with standard error
    :math:`\sqrt{\operatorname{Var}_q[\log q - \log p] / S}`. Explained in {ref}`sec-vae-kl`.

    Returns
    -------
    Tensor of shape (n,) or ()
    """
    mean, log_var = check_gaussian(mean, log_var)
    n_samples = check_positive_int("n_samples", n_samples)
    check_generator(generator, mean.device, "the tensors")
    eps = torch.randn(
        (n_samples, *mean.shape), generator=generator, dtype=mean.dtype, device=mean.device
    )  # (S, n, d)
    h = mean + torch.exp(0.5 * log_var) * eps  # (S, n, d)
    # log q(h) - log p(h) with (h - m)^2 / s^2 = eps^2
    log_ratio = 0.5 * (-log_var - eps**2 + h**2).sum(-1)  # (S, n)
    return log_ratio.mean(0)


def log_mean_exp(log_w: object, dim: int = 0) -> torch.Tensor:
    r""":math:`\log \frac1k \sum_{s=1}^k w_s = \operatorname{logsumexp}(\log w) - \log k`.

    Stable for any magnitude of the log-weights (the largest is factored out).
    Explained in {ref}`sec-iwae`.

    Parameters
    ----------
    log_w : Tensor of shape (..., k, ...)
        Log importance weights, ``k`` of them along ``dim``.
    dim : int
        The axis to average over.

    Returns
    -------
    Tensor with ``dim`` removed
    """
    log_w = as_tensor("log_w", log_w, finite=False)
    if isinstance(dim, bool) or not isinstance(dim, int) or not -log_w.ndim <= dim < log_w.ndim:
        raise ValueError(
            f"dim must be an axis of log_w (shape {tuple(log_w.shape)}). "
            f"Got {describe(dim)} instead."
        )
    if bool(torch.isnan(log_w).any()) or bool((log_w == math.inf).any()):
        raise ValueError("log_w must not contain NaN or +inf. Got such entries instead.")
    return torch.logsumexp(log_w, dim=dim) - math.log(log_w.shape[dim])


def log_mean_exp_chunked(
    draw_log_weights: Callable[[int], torch.Tensor], k: int, *, chunk_size: int
) -> torch.Tensor:
    r""":math:`\log \frac1k \sum_{s=1}^k w_s` over ``k`` weights drawn ``chunk_size`` at a time.

    ``draw_log_weights(c)`` returns the log-weights of ``c`` new samples, shape (c, n); the
    chunks are combined by a log-sum-exp of their log-sum-exps, so memory is bounded by one
    chunk while the result equals :func:`log_mean_exp` over all ``k`` weights at once.
    Explained in {ref}`sec-iwae`.

    Parameters
    ----------
    draw_log_weights : callable, int -> Tensor of shape (c, n)
    k : int
        Number of weights per column.
    chunk_size : int

    Returns
    -------
    Tensor of shape (n,)
    """
    if not callable(draw_log_weights):
        raise TypeError(
            f"draw_log_weights must be callable (c -> log-weights (c, n)). "
            f"Got {describe(draw_log_weights)} instead."
        )
    k = check_positive_int("k", k)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    partial = []
    for start in range(0, k, chunk_size):
        c = min(chunk_size, k - start)
        log_w = draw_log_weights(c)  # (c, n)
        if not isinstance(log_w, torch.Tensor) or log_w.ndim != 2 or log_w.shape[0] != c:
            raise ValueError(
                f"draw_log_weights must return a tensor of shape ({c}, n). "
                f"Got {describe(log_w)} instead."
            )
        partial.append(torch.logsumexp(log_w, dim=0))  # (n,)
    return torch.logsumexp(torch.stack(partial), dim=0) - math.log(k)  # (n,)
