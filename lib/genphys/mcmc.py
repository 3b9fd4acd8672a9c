"""Markov chain Monte Carlo: Metropolis–Hastings, Gibbs sampling and autocorrelation.

Explained in {ref}`sec-mcmc`. Every sampler here is a transition function over an
explicit state whose first dimension indexes independent chains, so many chains
run in parallel as one tensor operation. Randomness comes only from the
``torch.Generator`` passed in.

* :func:`metropolis_hastings_step` / :func:`metropolis_hastings` -- any
  log-probability, any proposal (:func:`flip_one_bit` for binary vectors,
  :func:`gaussian_random_walk` for real vectors);
* :func:`metropolis_hastings_matrix` -- the exact Metropolis–Hastings kernel on a
  finite state space, to check detailed balance;
* :func:`gibbs_step` / :func:`gibbs_chain` / :func:`gibbs_sample` -- block Gibbs
  sampling for :class:`genphys.rbm.BernoulliRBM`;
* :func:`autocorrelation`, :func:`integrated_autocorrelation_time`,
  :func:`effective_sample_size`, :func:`standard_error` -- how many independent
  samples a correlated chain is worth.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ._validation import (
    as_tensor,
    check_generator,
    check_positive_float,
    check_positive_int,
    describe,
)
from .rbm import BernoulliRBM, check_batch, check_rbm

__all__ = [
    "MCMCResult",
    "Proposal",
    "autocorrelation",
    "effective_sample_size",
    "flip_one_bit",
    "gaussian_random_walk",
    "gibbs_chain",
    "gibbs_sample",
    "gibbs_step",
    "integrated_autocorrelation_time",
    "metropolis_hastings",
    "metropolis_hastings_matrix",
    "metropolis_hastings_step",
    "standard_error",
]

#: A proposal maps ``(x, generator)`` to ``(x_proposed, log_q_ratio)`` with
#: ``log_q_ratio = log q(x | x_proposed) - log q(x_proposed | x)``, shape (n_chains,).
Proposal = Callable[[torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


# ---------------------------------------------------------------------- checks
def _own_float_dtype(value: object) -> torch.dtype | None:
    """Keep the dtype of a floating tensor; anything else becomes float64."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.dtype
    return None


def _check_callable(name: str, value: object) -> None:
    if not callable(value):
        raise TypeError(f"{name} must be callable. Got {describe(value)} instead.")


def _evaluate_log_prob(log_prob: Callable, x: torch.Tensor, *, initial: bool) -> torch.Tensor:
    """Call ``log_prob`` and check that it returns one finite (or -inf) number per chain."""
    value = log_prob(x)
    if not isinstance(value, torch.Tensor) or value.shape != x.shape[:1]:
        raise ValueError(
            f"log_prob must return a tensor of shape ({x.shape[0]},), one value per chain. "
            f"Got {describe(value)} instead."
        )
    if bool(torch.isnan(value).any()) or bool((value == math.inf).any()):
        raise ValueError("log_prob must return numbers < +inf (not NaN). Got NaN or +inf instead.")
    if initial and not bool(torch.isfinite(value).all()):
        raise ValueError(
            "x0 must lie in the support of the target: log_prob(x0) must be finite. "
            "Got -inf for at least one chain instead."
        )
    return value


# ------------------------------------------------------------------- proposals
def flip_one_bit(x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric proposal :math:`x' = x` with one uniformly chosen bit flipped, :math:`x'_i = 1 - x_i`.

    Parameters
    ----------
    x : Tensor of shape (n_chains, n)
        Binary states (0/1).
    generator : torch.Generator

    Returns
    -------
    x_proposed : Tensor of shape (n_chains, n)
    log_q_ratio : Tensor of shape (n_chains,)
        Zero: :math:`q(x' \\mid x) = q(x \\mid x') = 1/n`.
    """
    n_chains, n = x.shape[0], x[0].numel()
    site = torch.randint(n, (n_chains,), generator=generator, device=x.device)  # (B,)
    flat = x.reshape(n_chains, n).clone()  # (B, n)
    rows = torch.arange(n_chains, device=x.device)
    flat[rows, site] = 1 - flat[rows, site]
    return flat.reshape(x.shape), torch.zeros(n_chains, dtype=x.dtype, device=x.device)


def gaussian_random_walk(scale: float) -> Proposal:
    """Symmetric proposal :math:`x' = x + \\sigma \\varepsilon`, :math:`\\varepsilon \\sim \\mathcal N(0, I)`.

    Parameters
    ----------
    scale : float
        Step size :math:`\\sigma > 0`.

    Returns
    -------
    proposal : callable ``(x, generator) -> (x_proposed, log_q_ratio)``
        ``log_q_ratio`` is zero because the Gaussian step is symmetric.
    """
    scale = check_positive_float("scale", scale)

    def proposal(x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        step = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return x + scale * step, torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)

    return proposal


# --------------------------------------------------------- Metropolis–Hastings
@torch.no_grad()
def metropolis_hastings_step(
    x: torch.Tensor,
    log_prob: Callable[[torch.Tensor], torch.Tensor],
    proposal: Proposal,
    *,
    generator: torch.Generator,
    log_p: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One Metropolis–Hastings step, accepting :math:`x'` with :math:`\\min(1, \\frac{p(x') q(x|x')}{p(x) q(x'|x)})`.

    Eq. {eq}`eq-mh-acceptance`; every chain (row of ``x``) moves independently.

    Parameters
    ----------
    x : Tensor of shape (n_chains, ...)
        Current states, chains first.
    log_prob : callable
        Unnormalised :math:`\\log p`, mapping (n_chains, ...) to (n_chains,).
        It may return ``-inf`` outside the support.
    proposal : callable
        ``(x, generator) -> (x_proposed, log_q_ratio)``, see :data:`Proposal`.
    generator : torch.Generator
        On the device of ``x``.
    log_p : Tensor of shape (n_chains,), optional
        ``log_prob(x)`` if already known (it is returned by the previous step).

    Returns
    -------
    x_next : Tensor of shape (n_chains, ...)
    log_p_next : Tensor of shape (n_chains,)
    accepted : Tensor of shape (n_chains,), dtype bool
    """
    x = as_tensor("x", x, dtype=_own_float_dtype(x))
    if x.ndim < 1:
        raise ValueError(
            f"x must have a leading chain dimension. Got shape {tuple(x.shape)} instead."
        )
    _check_callable("log_prob", log_prob)
    _check_callable("proposal", proposal)
    check_generator(generator, x.device)
    if log_p is None:
        log_p = _evaluate_log_prob(log_prob, x, initial=True)
    return _mh_step(x, log_prob, proposal, generator, log_p)


def _mh_step(x, log_prob, proposal, generator, log_p):
    x_prop, log_q_ratio = proposal(x, generator)  # (B, ...), (B,)
    if x_prop.shape != x.shape or log_q_ratio.shape != x.shape[:1]:
        raise ValueError(
            f"proposal must return (x_proposed of shape {tuple(x.shape)}, log_q_ratio of shape "
            f"({x.shape[0]},)). Got shapes {tuple(x_prop.shape)} and "
            f"{tuple(log_q_ratio.shape)} instead."
        )
    log_p_prop = _evaluate_log_prob(log_prob, x_prop, initial=False)  # (B,)
    log_alpha = log_p_prop - log_p + log_q_ratio  # (B,)
    u = torch.rand(x.shape[0], generator=generator, dtype=log_p.dtype, device=x.device)
    accepted = torch.log(u) < log_alpha  # (B,)
    mask = accepted.reshape((-1,) + (1,) * (x.ndim - 1))
    return torch.where(mask, x_prop, x), torch.where(accepted, log_p_prop, log_p), accepted


@dataclass(frozen=True)
class MCMCResult:
    """Output of :func:`metropolis_hastings`.

    Attributes
    ----------
    samples : Tensor of shape (n_chains, n_samples, ...)
        Kept states, chains first, then time.
    log_prob : Tensor of shape (n_chains, n_samples)
        ``log_prob`` of every kept state.
    acceptance_rate : Tensor of shape (n_chains,)
        Fraction of accepted proposals per chain, over all steps (burn-in included);
        ``acceptance_rate.mean()`` is the overall rate.
    """

    samples: torch.Tensor
    log_prob: torch.Tensor
    acceptance_rate: torch.Tensor


@torch.no_grad()
def metropolis_hastings(
    log_prob: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    n_samples: int,
    *,
    generator: torch.Generator,
    proposal: Proposal = flip_one_bit,
    burn_in: int = 0,
    thin: int = 1,
) -> MCMCResult:
    """Run many Metropolis–Hastings chains targeting :math:`p(x) \\propto e^{\\log p(x)}`.

    Eq. {eq}`eq-mh-acceptance`. Each chain makes ``burn_in + n_samples * thin`` steps
    and keeps every ``thin``-th state after the burn-in.

    Parameters
    ----------
    log_prob : callable
        Unnormalised log-probability, (n_chains, ...) -> (n_chains,).
    x0 : Tensor of shape (n_chains, ...)
        Initial states; ``log_prob(x0)`` must be finite.
    n_samples : int
        States kept per chain.
    generator : torch.Generator
    proposal : callable
        :func:`flip_one_bit` (default, binary vectors) or e.g.
        ``gaussian_random_walk(0.5)``.
    burn_in : int
        Steps discarded first.
    thin : int
        Keep one state every ``thin`` steps.

    Returns
    -------
    MCMCResult
        ``samples`` of shape (n_chains, n_samples, ...), ``log_prob`` and the
        per-chain ``acceptance_rate``.
    """
    x0 = as_tensor("x0", x0, dtype=_own_float_dtype(x0))
    if x0.ndim < 1:
        raise ValueError(
            f"x0 must have a leading chain dimension. Got shape {tuple(x0.shape)} instead."
        )
    _check_callable("log_prob", log_prob)
    _check_callable("proposal", proposal)
    n_samples = check_positive_int("n_samples", n_samples)
    burn_in = check_positive_int("burn_in", burn_in, minimum=0)
    thin = check_positive_int("thin", thin)
    check_generator(generator, x0.device)

    x = x0
    log_p = _evaluate_log_prob(log_prob, x, initial=True)
    n_accepted = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)
    samples, log_probs = [], []
    for step in range(burn_in + n_samples * thin):
        x, log_p, accepted = _mh_step(x, log_prob, proposal, generator, log_p)
        n_accepted += accepted
        if step >= burn_in and (step - burn_in + 1) % thin == 0:
            samples.append(x)
            log_probs.append(log_p)
    n_steps = burn_in + n_samples * thin
    return MCMCResult(
        samples=torch.stack(samples, dim=1),  # (B, S, ...)
        log_prob=torch.stack(log_probs, dim=1),  # (B, S)
        acceptance_rate=n_accepted.to(x.dtype) / n_steps,
    )


def metropolis_hastings_matrix(log_p: object, proposal_matrix: object) -> torch.Tensor:
    """Exact Metropolis–Hastings kernel :math:`P_{ij} = q_{ij} \\min(1, \\frac{p_j q_{ji}}{p_i q_{ij}})` for ``i != j``.

    The diagonal collects the rejected mass, :math:`P_{ii} = 1 - \\sum_{j \\ne i} P_{ij}`,
    so every row sums to one. The kernel satisfies detailed balance
    :math:`p_i P_{ij} = p_j P_{ji}`, eq. {eq}`eq-detailed-balance`.

    Parameters
    ----------
    log_p : Tensor of shape (n_states,)
        Unnormalised log-probabilities of the states (finite).
    proposal_matrix : Tensor of shape (n_states, n_states)
        :math:`q_{ij} = q(j \\mid i)`, non-negative rows summing to one, with
        :math:`q_{ij} > 0 \\Leftrightarrow q_{ji} > 0`.

    Returns
    -------
    P : Tensor of shape (n_states, n_states)
    """
    log_p = as_tensor("log_p", log_p, ndim=1)
    q = as_tensor("proposal_matrix", proposal_matrix, shape=(log_p.shape[0], log_p.shape[0]))
    q = q.to(log_p.dtype)
    if bool((q < 0).any()) or not torch.allclose(q.sum(1), torch.ones_like(log_p)):
        raise ValueError(
            "proposal_matrix must be non-negative with rows summing to 1. "
            f"Got row sums {q.sum(1).tolist()} and minimum {q.min().item()} instead."
        )
    if not torch.equal(q > 0, (q > 0).T):
        raise ValueError(
            "proposal_matrix must propose i -> j exactly when it proposes j -> i. "
            "Got a one-way proposal instead."
        )
    # log of p_j q_ji / (p_i q_ij) where q_ij > 0
    with torch.no_grad():
        log_ratio = log_p[None, :] - log_p[:, None] + torch.log(q.T) - torch.log(q)  # (S, S)
    accept = torch.where(q > 0, torch.exp(torch.clamp(log_ratio, max=0.0)), torch.zeros_like(q))
    P = q * accept
    P.fill_diagonal_(0.0)
    P = P + torch.diag(1.0 - P.sum(1))
    return P


# ---------------------------------------------------------------- Gibbs (RBM)
@torch.no_grad()
def _gibbs_step(
    rbm: BernoulliRBM, x: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    ph = torch.sigmoid(x @ rbm.W + rbm.b)  # (B, N)
    h = torch.bernoulli(ph, generator=generator)  # (B, N)
    px = torch.sigmoid(h @ rbm.W.T + rbm.a)  # (B, M)
    return torch.bernoulli(px, generator=generator), h


def gibbs_step(
    rbm: BernoulliRBM, x: torch.Tensor, *, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One block Gibbs step :math:`h \\sim p(h \\mid x)`, then :math:`x' \\sim p(x \\mid h)`.

    Both conditionals factorise over units, eq. {eq}`eq-rbm-gibbs`, so each half-step
    samples a whole layer at once. If :math:`x \\sim p(x)` then :math:`(x, h)` and
    :math:`(x', h)` are both draws from the joint :math:`p(x, h)`.

    Parameters
    ----------
    rbm : BernoulliRBM
    x : Tensor of shape (n_chains, n_visible)
        Binary visible states, one chain per row.
    generator : torch.Generator
        On the RBM's device.

    Returns
    -------
    x_next : Tensor of shape (n_chains, n_visible)
    h : Tensor of shape (n_chains, n_hidden)
        The hidden sample drawn from :math:`p(h \\mid x)` that produced ``x_next``.
    """
    check_rbm(rbm)
    x = check_batch(rbm, "x", x, "n_chains")
    check_generator(generator, x.device)
    return _gibbs_step(rbm, x, generator)


def gibbs_chain(
    rbm: BernoulliRBM, x0: torch.Tensor, k: int, *, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply :func:`gibbs_step` ``k`` times, :math:`x_0 \\to h_0 \\to x_1 \\to \\dots \\to x_k`.

    Parameters
    ----------
    rbm : BernoulliRBM
    x0 : Tensor of shape (n_chains, n_visible)
    k : int
        Number of full Gibbs steps, ``k >= 1``.
    generator : torch.Generator

    Returns
    -------
    x_k : Tensor of shape (n_chains, n_visible)
    h : Tensor of shape (n_chains, n_hidden)
        The last hidden sample, :math:`h_{k-1} \\sim p(h \\mid x_{k-1})`.
    """
    check_rbm(rbm)
    x = check_batch(rbm, "x0", x0, "n_chains")
    k = check_positive_int("k", k)
    check_generator(generator, x.device)
    for _ in range(k):
        x, h = _gibbs_step(rbm, x, generator)
    return x, h


def gibbs_sample(
    rbm: BernoulliRBM,
    x0: torch.Tensor,
    n_samples: int,
    *,
    generator: torch.Generator,
    burn_in: int = 0,
    thin: int = 1,
) -> torch.Tensor:
    """Visible samples of many Gibbs chains, :math:`x_t` for ``t = burn_in + thin, burn_in + 2 thin, ...``.

    Parameters
    ----------
    rbm : BernoulliRBM
    x0 : Tensor of shape (n_chains, n_visible)
    n_samples : int
        States kept per chain.
    generator : torch.Generator
    burn_in : int
        Gibbs steps discarded first.
    thin : int
        Keep one state every ``thin`` steps.

    Returns
    -------
    samples : Tensor of shape (n_chains, n_samples, n_visible)
    """
    check_rbm(rbm)
    x = check_batch(rbm, "x0", x0, "n_chains")
    n_samples = check_positive_int("n_samples", n_samples)
    burn_in = check_positive_int("burn_in", burn_in, minimum=0)
    thin = check_positive_int("thin", thin)
    check_generator(generator, x.device)
    for _ in range(burn_in):
        x, _h = _gibbs_step(rbm, x, generator)
    kept = []
    for _ in range(n_samples):
        for _ in range(thin):
            x, _h = _gibbs_step(rbm, x, generator)
        kept.append(x)
    return torch.stack(kept, dim=1)  # (B, S, M)


# ------------------------------------------------------------- autocorrelation
def _as_series(series: object) -> torch.Tensor:
    if isinstance(series, torch.Tensor):
        s = series.detach().to(torch.float64)
    else:
        s = series
    s = as_tensor("series", s, ndim=(1, 2))
    if s.ndim == 1:
        s = s[None, :]  # (1, n)
    if s.shape[1] < 2:
        raise ValueError(
            f"series must have at least 2 steps per chain. Got shape {tuple(s.shape)} instead."
        )
    return s  # (C, n)


def _autocovariance(s: torch.Tensor) -> torch.Tensor:
    """Biased autocovariance :math:`\\frac1n \\sum_t \\delta_t \\delta_{t+k}` per chain, averaged."""
    n = s.shape[1]
    d = s - s.mean(dim=1, keepdim=True)  # (C, n)
    size = 1 << (2 * n - 1).bit_length()  # zero padding: no wrap-around
    f = torch.fft.rfft(d, n=size, dim=1)  # (C, size//2 + 1)
    acov = torch.fft.irfft(f * f.conj(), n=size, dim=1)[:, :n] / n  # (C, n)
    return acov.mean(dim=0)  # (n,)


def autocorrelation(series: object, max_lag: int | None = None) -> torch.Tensor:
    """Normalised autocorrelation :math:`\\rho(t) = C(t)/C(0)`, eq. {eq}`eq-autocorrelation`.

    :math:`C(t) = \\frac1n \\sum_{s=0}^{n-1-t} (f_s - \\bar f)(f_{s+t} - \\bar f)` is computed
    for every chain by FFT (each chain about its own mean) and averaged over chains
    before normalising.

    Parameters
    ----------
    series : Tensor of shape (n_chains, n_steps) or (n_steps,)
        A scalar observable along each chain.
    max_lag : int, optional
        Largest lag returned; default ``n_steps - 1``.

    Returns
    -------
    rho : Tensor of shape (max_lag + 1,)
        ``rho[0] == 1``.

    Raises
    ------
    ValueError
        If every chain is constant (the autocorrelation is undefined).
    """
    s = _as_series(series)
    n = s.shape[1]
    if max_lag is None:
        max_lag = n - 1
    max_lag = check_positive_int("max_lag", max_lag, minimum=0)
    if max_lag > n - 1:
        raise ValueError(f"max_lag must be at most n_steps - 1 = {n - 1}. Got {max_lag} instead.")
    acov = _autocovariance(s)
    if not acov[0] > 0:
        raise ValueError(
            "series must vary along at least one chain to define an autocorrelation. "
            "Got constant chains instead."
        )
    return acov[: max_lag + 1] / acov[0]


def integrated_autocorrelation_time(series: object, *, c: float = 5.0) -> float:
    """:math:`\\tau_{\\mathrm{int}} = 1 + 2 \\sum_{t=1}^{M} \\rho(t)` with Sokal's automatic window.

    Eq. {eq}`eq-tau-int`. The window :math:`M` is the smallest lag with
    :math:`M \\ge c\\, \\tau_{\\mathrm{int}}(M)` (Sokal 1997), which balances the bias of
    cutting the sum against the noise of adding long-lag terms. With this
    convention the variance of a chain average of :math:`n` correlated steps is
    :math:`\\sigma^2 \\tau_{\\mathrm{int}} / n`; an AR(1) process with coefficient
    :math:`\\rho` has :math:`\\tau_{\\mathrm{int}} = (1 + \\rho)/(1 - \\rho)`.

    The estimate is reliable when ``n_steps`` is at least about :math:`50\\,\\tau_{\\mathrm{int}}`;
    if no lag satisfies the window condition the largest lag is used and the result
    is a lower bound.

    Parameters
    ----------
    series : Tensor of shape (n_chains, n_steps) or (n_steps,)
    c : float
        Window constant, 5 by default.

    Returns
    -------
    float
        :math:`\\tau_{\\mathrm{int}}` in units of steps; 1 for independent draws, below 1
        for anticorrelated chains.
    """
    c = check_positive_float("c", c)
    rho = autocorrelation(series)  # (n,)
    taus = 2.0 * torch.cumsum(rho, dim=0) - 1.0  # taus[M] = 1 + 2 sum_{t=1}^{M} rho(t)
    lags = torch.arange(rho.shape[0], dtype=rho.dtype, device=rho.device)
    ok = lags >= c * taus
    window = int(torch.argmax(ok.to(torch.int8))) if bool(ok.any()) else rho.shape[0] - 1
    return float(taus[window])


def effective_sample_size(series: object, *, c: float = 5.0) -> float:
    """:math:`n_{\\mathrm{eff}} = n_{\\mathrm{chains}}\\, n_{\\mathrm{steps}} / \\tau_{\\mathrm{int}}`.

    Parameters
    ----------
    series : Tensor of shape (n_chains, n_steps) or (n_steps,)
    c : float
        Window constant of :func:`integrated_autocorrelation_time`.

    Returns
    -------
    float
    """
    s = _as_series(series)
    return s.numel() / integrated_autocorrelation_time(s, c=c)


def standard_error(series: object, *, c: float = 5.0) -> float:
    """Standard error of the overall mean, :math:`\\sqrt{\\sigma^2 \\tau_{\\mathrm{int}} / (n_{\\mathrm{chains}} n_{\\mathrm{steps}})}`.

    :math:`\\sigma^2` is the variance of the series about each chain's mean, averaged
    over chains.

    Parameters
    ----------
    series : Tensor of shape (n_chains, n_steps) or (n_steps,)
    c : float
        Window constant of :func:`integrated_autocorrelation_time`.

    Returns
    -------
    float
    """
    s = _as_series(series)
    var = float(s.var(dim=1, correction=0).mean())
    if var == 0.0:
        return 0.0
    tau = max(integrated_autocorrelation_time(s, c=c), 1.0 / s.shape[1])
    return float(np.sqrt(var * tau / s.numel()))
