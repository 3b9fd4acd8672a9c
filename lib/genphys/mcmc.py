"""Markov chain Monte Carlo: Metropolis–Hastings, Gibbs sampling and autocorrelation.

Explained in {ref}`sec-mcmc`. Every sampler here is a transition function over an
explicit state whose first dimension indexes independent chains, so many chains
run in parallel as one tensor operation. Randomness comes only from the
``torch.Generator`` passed in.

* :func:`metropolis_hastings_step` / :func:`metropolis_hastings` -- any
  log-probability, any proposal (:func:`flip_one_bit` for 0/1 vectors,
  :func:`flip_one_spin` for ±1 spins, :func:`gaussian_random_walk` for real vectors);
* :func:`metropolis_hastings_matrix` -- the exact Metropolis–Hastings kernel on a
  finite state space, to check detailed balance;
* :func:`gibbs_step` / :func:`gibbs_chain` / :func:`gibbs_sample` -- block Gibbs
  sampling for :class:`genphys.rbm.BernoulliRBM`;
* :func:`autocorrelation`, :func:`integrated_autocorrelation_time`,
  :func:`effective_sample_size`, :func:`standard_error` -- how many independent
  samples a correlated chain is worth;
* :func:`split_rhat` -- whether several chains agree (Vehtari et al. 2021).

**One chain layout.** Every sampler of the library returns its chains *chains first*:
:func:`gibbs_sample` and :func:`metropolis_hastings` shape (n_chains, n_samples, ...),
:func:`genphys.langevin.sample` shape (n_chains, n_steps, dim), :func:`genphys.ising.sample`
chain by chain. Every diagnostic here (:func:`autocorrelation`,
:func:`integrated_autocorrelation_time`, :func:`effective_sample_size`,
:func:`standard_error`, :func:`split_rhat`) takes a series of shape (n_chains, n_steps)
and only that: there is no ``layout`` option to get wrong and no guess from the shape
(1000 chains of 300 steps is a valid input). Series stored steps first elsewhere (emcee)
are transposed with ``.T`` before they come in. Explained in {ref}`sec-mcmc` and
{ref}`sec-mcmc-rhat`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._validation import (
    as_tensor,
    check_generator,
    check_positive_float,
    check_positive_int,
    describe,
    float_dtype_of,
)
from .rbm import BernoulliRBM, check_batch, check_rbm

__all__ = [
    "RHAT_THRESHOLD",
    "MCMCResult",
    "Proposal",
    "RHatWarning",
    "autocorrelation",
    "effective_sample_size",
    "flip_one_bit",
    "flip_one_spin",
    "gaussian_random_walk",
    "gibbs_chain",
    "gibbs_sample",
    "gibbs_step",
    "integrated_autocorrelation_time",
    "metropolis_hastings",
    "metropolis_hastings_matrix",
    "metropolis_hastings_step",
    "split_rhat",
    "standard_error",
]

#: Split R-hat above this means the chains disagree (Vehtari et al. 2021, sec. 4: use the
#: samples only if R-hat < 1.01).
RHAT_THRESHOLD = 1.01


class RHatWarning(UserWarning):
    """Split R-hat exceeds :data:`RHAT_THRESHOLD`: the chains have not mixed."""


#: A proposal maps ``(x, generator)`` to ``(x_proposed, log_q_ratio)`` with
#: ``log_q_ratio = log q(x | x_proposed) - log q(x_proposed | x)``, shape (n_chains,).
Proposal = Callable[[torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


# ---------------------------------------------------------------------- checks
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
        Binary states (0/1); for ±1 spins use :func:`flip_one_spin`. The values at the
        chosen sites are checked (``n_chains`` numbers per call, not the whole state):
        a ValueError is raised as soon as a value other than 0 or 1 would be flipped.
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
    old = flat[rows, site]  # (B,): the values about to be flipped, checked (cheaply) here
    if bool(((old != 0) & (old != 1)).any()):
        bad = old[(old != 0) & (old != 1)][0].item()
        raise ValueError(
            "x must hold bits 0 and 1 for flip_one_bit (x -> 1 - x). Got the value "
            f"{bad!r} instead. For spins +1/-1 use the proposal genphys.mcmc.flip_one_spin."
        )
    flat[rows, site] = 1 - old
    return flat.reshape(x.shape), torch.zeros(n_chains, dtype=x.dtype, device=x.device)


def flip_one_spin(x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric proposal :math:`x' = x` with one uniformly chosen spin reversed, :math:`x'_i = -x_i`.

    Parameters
    ----------
    x : Tensor of shape (n_chains, ...)
        Spins +1/-1 (e.g. Ising lattices of shape (n_chains, L, L)); a ValueError is
        raised as soon as a value other than ±1 would be reversed.
    generator : torch.Generator

    Returns
    -------
    x_proposed : Tensor of the shape of ``x``
    log_q_ratio : Tensor of shape (n_chains,)
        Zero: every site is chosen with probability :math:`1/n` either way.
    """
    n_chains, n = x.shape[0], x[0].numel()
    site = torch.randint(n, (n_chains,), generator=generator, device=x.device)  # (B,)
    flat = x.reshape(n_chains, n).clone()  # (B, n)
    rows = torch.arange(n_chains, device=x.device)
    old = flat[rows, site]  # (B,): the values about to be reversed, checked here
    if bool((old.abs() != 1).any()):
        bad = old[old.abs() != 1][0].item()
        raise ValueError(
            "x must hold spins +1 and -1 for flip_one_spin (x -> -x). Got the value "
            f"{bad!r} instead. For bits 0/1 use the proposal genphys.mcmc.flip_one_bit."
        )
    flat[rows, site] = -old
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
    x = as_tensor("x", x, dtype=float_dtype_of(x))
    if x.ndim < 1:
        raise ValueError(
            f"x must have a leading chain dimension. Got shape {tuple(x.shape)} instead."
        )
    _check_callable("log_prob", log_prob)
    _check_callable("proposal", proposal)
    check_generator(generator, x.device)
    if log_p is None:
        log_p = _evaluate_log_prob(log_prob, x, initial=True)
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
        :func:`flip_one_bit` (default, 0/1 vectors), :func:`flip_one_spin` (±1 spins)
        or e.g. ``gaussian_random_walk(0.5)``.
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
    x0 = as_tensor("x0", x0, dtype=float_dtype_of(x0))
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
        x, log_p, accepted = metropolis_hastings_step(
            x, log_prob, proposal, generator=generator, log_p=log_p
        )
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
    """``series`` (chains first, or one chain) as a float64 tensor of shape (n_chains, n_steps)."""
    if isinstance(series, torch.Tensor):
        s = series.detach().to(torch.float64)
    else:
        s = series
    s = as_tensor("series", s, ndim=(1, 2))
    if s.ndim == 1:
        s = s[None, :]  # (1, n)
    if s.shape[1] < 2:
        raise ValueError(
            f"series must have shape (n_chains, n_steps) with at least 2 steps per chain. "
            f"Got {s.shape[0]} chains of {s.shape[1]} step instead."
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
        Chains first (the layout of every sampler of the library); one chain may be 1-D.
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
        Chains first (the layout of every sampler of the library); one chain may be 1-D.
    c : float
        Window constant, 5 by default.

    Returns
    -------
    float
        :math:`\\tau_{\\mathrm{int}}` in units of steps; 1 for independent draws, below 1
        for anticorrelated chains.
    """
    c = check_positive_float("c", c)
    rho = autocorrelation(_as_series(series))  # (n,)
    taus = 2.0 * torch.cumsum(rho, dim=0) - 1.0  # taus[M] = 1 + 2 sum_{t=1}^{M} rho(t)
    lags = torch.arange(rho.shape[0], dtype=rho.dtype, device=rho.device)
    ok = lags >= c * taus
    window = int(torch.argmax(ok.to(torch.int8))) if bool(ok.any()) else rho.shape[0] - 1
    return float(taus[window])


def effective_sample_size(series: object, *, c: float = 5.0) -> float:
    """:math:`n_{\\mathrm{eff}} = n_{\\mathrm{chains}}\\, n_{\\mathrm{steps}} / \\max(\\tau_{\\mathrm{int}}, 1)`.

    Never more than the number of draws: anticorrelated chains (:math:`\\tau_{\\mathrm{int}} < 1`)
    can in principle beat independent sampling, but :math:`\\hat\\tau_{\\mathrm{int}} < 1` is
    as often noise, and an effective sample size above the number of draws would make
    error bars narrower than those of independent draws; we report at most the draws.

    Parameters
    ----------
    series : Tensor of shape (n_chains, n_steps) or (n_steps,)
        Chains first (the layout of every sampler of the library); one chain may be 1-D.
    c : float
        Window constant of :func:`integrated_autocorrelation_time`.

    Returns
    -------
    float
        Between 1 and ``n_chains * n_steps``.
    """
    s = _as_series(series)
    tau = integrated_autocorrelation_time(s, c=c)
    return s.numel() / max(tau, 1.0)


def split_rhat(series: object, *, rank_normalize: bool = True) -> float:
    """Split :math:`\\hat R = \\sqrt{\\widehat{\\mathrm{var}}^+ / W}` of Vehtari et al. (2021).

    Every chain is cut into two halves (the middle step dropped if ``n_steps`` is odd),
    so that a chain that drifts disagrees with itself. With :math:`m` half-chains of
    :math:`n` steps, :math:`W` the mean within-half variance and :math:`B/n` the
    variance of the half-chain means,
    :math:`\\widehat{\\mathrm{var}}^+ = \\frac{n - 1}{n} W + \\frac{B}{n}` and
    :math:`\\hat R = \\sqrt{\\widehat{\\mathrm{var}}^+ / W}`, which tends to 1 when all
    chains sample the same distribution. With ``rank_normalize`` (default) the draws are
    first replaced by the normal quantiles of their pooled ranks, and the result is the
    larger of that "bulk" :math:`\\hat R` and the one of the folded draws
    :math:`|x - \\mathrm{median}|` ("tail"), as the paper recommends. Trust the chains
    only if :math:`\\hat R <` :data:`RHAT_THRESHOLD` = 1.01 (Vehtari et al. 2021).

    Parameters
    ----------
    series : Tensor of shape (n_chains, n_steps) or (n_steps,)
        Chains first (the layout of every sampler of the library); one chain may be 1-D.
        At least 4 steps per chain.
    rank_normalize : bool
        Rank-normalise (bulk and tail) as in the paper; ``False`` gives the classic
        split :math:`\\hat R` of the raw draws.

    Returns
    -------
    float
        ``inf`` when every half-chain is constant but their values differ; 1 when all
        draws are equal.
    """
    s = _as_series(series)
    n = s.shape[1] // 2
    if n < 2:
        raise ValueError(
            f"series must have at least 4 steps per chain for split R-hat. Got {s.shape[1]} "
            "instead."
        )
    halves = torch.cat([s[:, :n], s[:, -n:]], dim=0)  # (2C, n)
    if not rank_normalize:
        return _rhat(halves)
    from scipy.special import ndtri
    from scipy.stats import rankdata

    def normal_scores(x: torch.Tensor) -> torch.Tensor:
        ranks = rankdata(x.cpu().numpy(), method="average").reshape(x.shape)  # pooled ranks
        return torch.from_numpy(ndtri((ranks - 0.375) / (x.numel() + 0.25)))  # (2C, n)

    bulk = _rhat(normal_scores(halves))
    tail = _rhat(normal_scores((halves - halves.median()).abs()))
    return max(bulk, tail)


def _rhat(halves: torch.Tensor) -> float:
    """:math:`\\sqrt{((n-1)/n\\, W + B/n) / W}` for half-chains of shape (m, n)."""
    n = halves.shape[1]
    within = float(halves.var(dim=1, correction=1).mean())  # W
    between_over_n = float(halves.mean(dim=1).var(correction=1))  # B / n
    if within == 0.0:
        return 1.0 if between_over_n == 0.0 else math.inf
    return math.sqrt(((n - 1) / n * within + between_over_n) / within)


def standard_error(series: object, *, c: float = 5.0, warn: bool = True) -> float:
    """Standard error of the overall mean, :math:`\\max\\big(\\sqrt{\\sigma^2 \\tau_{\\mathrm{int}} / N},\\ s_{\\bar f} / \\sqrt{C}\\big)`.

    Two estimates of the same error, the larger one reported:

    * within chains: :math:`\\sigma^2` the variance about each chain's mean, averaged over
      the :math:`C` chains, times :math:`\\tau_{\\mathrm{int}}` over the :math:`N` draws;
    * between chains: :math:`s_{\\bar f}` the standard deviation of the :math:`C` chain
      means. Independent chains give independent means, so :math:`s_{\\bar f}/\\sqrt C`
      is the error of their average whatever the mixing; it is what catches chains
      stuck in different modes (an Ising model below :math:`T_c`), where the
      within-chain estimate is far too small.

    With a single chain only the first is available. If :func:`split_rhat` exceeds
    :data:`RHAT_THRESHOLD` an :class:`RHatWarning` says that the chains have not mixed
    and that the error bar is then only as good as the between-chain spread of a few
    chains.

    Parameters
    ----------
    series : Tensor of shape (n_chains, n_steps) or (n_steps,)
        Chains first (the layout of every sampler of the library); one chain may be 1-D.
    c : float
        Window constant of :func:`integrated_autocorrelation_time`.
    warn : bool
        Check split R-hat (for at least 4 steps) and warn above the threshold.

    Returns
    -------
    float
    """
    s = _as_series(series)
    n_chains = s.shape[0]
    var = float(s.var(dim=1, correction=0).mean())
    within = 0.0
    if var > 0.0:
        tau = integrated_autocorrelation_time(s, c=c)
        tau = max(tau, 1.0 / s.shape[1])
        within = var * tau / s.numel()
    between = float(s.mean(dim=1).var(correction=1)) / n_chains if n_chains > 1 else 0.0
    if warn and s.shape[1] >= 4:
        rhat = split_rhat(s)
        if rhat > RHAT_THRESHOLD:
            warnings.warn(
                f"split R-hat = {rhat:.3g} > {RHAT_THRESHOLD} (Vehtari et al. 2021): the "
                f"{n_chains} chains have not mixed. The standard error includes the spread "
                "of the chain means, but run longer chains (or a better sampler) before "
                "trusting it.",
                RHatWarning,
                stacklevel=2,
            )
    return math.sqrt(max(within, between))
