"""Annealed importance sampling (AIS) for the partition function of an RBM.

Explained in {ref}`sec-training-rbms`. Following Neal (2001) and Salakhutdinov &
Murray (2008), AIS moves particles from a base distribution :math:`p_0` with known
normaliser :math:`Z_0` to the RBM :math:`p_1` through the geometric path between the
*joint* distributions, with the hidden units summed out,

.. math::

    p^*_\\beta(x) = \\sum_h p^*_0(x, h)^{1 - \\beta}\\, p^*_1(x, h)^{\\beta}
    = e^{((1-\\beta) a_0 + \\beta a)^\\top x} \\prod_{j} \\big(1 + e^{\\beta (b_j + (x^\\top W)_j)}\\big),
    \\qquad 0 = \\beta_0 < \\beta_1 < \\dots < \\beta_{K-1} = 1,

with :math:`p^*_0(x, h) = e^{a_0^\\top x}` and :math:`p^*_1(x, h) = e^{-E(x, h)}`, so that
:math:`p^*_\\beta` is the unnormalised visible marginal of an RBM with weights
:math:`\\beta W`, hidden bias :math:`\\beta b` and visible bias
:math:`(1-\\beta) a_0 + \\beta a`. (The geometric average of the *marginals*,
:math:`p^*_0(x)^{1-\\beta} p^*_1(x)^\\beta`, is a different path whose intermediate
distributions are not RBMs.) The
base :math:`p^*_0(x) = 2^{N} e^{a_0^\\top x}` is an RBM with :math:`W = 0`, so
:math:`\\log Z_0 = N \\log 2 + \\sum_i \\log(1 + e^{a_{0,i}})` and exact samples are
independent Bernoulli bits. By default :math:`a_0 = a`, the RBM's own visible bias.

Each particle carries the log-weight
:math:`\\log w = \\sum_{t=1}^{K-1} [\\log p^*_{\\beta_t}(x_{t-1}) - \\log p^*_{\\beta_{t-1}}(x_{t-1})]`,
where :math:`x_t` is obtained from :math:`x_{t-1}` by one block Gibbs step that leaves
:math:`p_{\\beta_t}` invariant. Then :math:`\\mathbb E[w] = Z_1 / Z_0` exactly, and

.. math::

    \\log \\hat Z = \\log Z_0 + \\log \\frac1n \\sum_k w_k, \\qquad
    \\mathrm{SE}(\\log \\hat Z) \\approx \\frac{\\mathrm{std}(w)}{\\sqrt n\\, \\overline{w}}

(the delta method). Because :math:`\\log` is concave, :math:`\\log \\hat Z` is biased
low on average (Jensen), by about :math:`\\mathrm{SE}^2 / 2` when the weights are well
behaved; with heavy-tailed weights the standard error itself is underestimated (a
handful of particles carry all the weight and the sample standard deviation misses the
tail), so the estimate carries Kish's effective sample size
:math:`(\\sum w)^2 / \\sum w^2` and an :class:`AISWeightWarning` is raised when it falls
below ``MIN_ESS_FRACTION`` (10 %) of the particles.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ._validation import as_tensor, check_positive_int
from .rbm import BernoulliRBM, check_batch, check_rbm
from .seeding import make_generator

__all__ = [
    "MIN_ESS_FRACTION",
    "AISEstimate",
    "AISRun",
    "AISWeightWarning",
    "ais_run",
    "anneal",
    "importance_estimate",
    "linear_betas",
    "log_likelihood_ais",
    "log_partition_ais",
    "log_partition_base",
]

#: Default number of AIS particles (independent annealing runs).
DEFAULT_CHAINS = 128
#: Default number of inverse temperatures, :math:`\\beta = 0` and :math:`\\beta = 1` included.
DEFAULT_TEMPERATURES = 1000


#: Below this fraction of the particles, the effective sample size of the importance
#: weights makes the standard error unreliable and :class:`AISWeightWarning` is raised.
#: With fewer than 10 % effective particles the delta-method error comes from a dozen
#: weights out of 128 and routinely misses the true error by a factor of several
#: (chapter {ref}`sec-training-rbms` shows plain importance sampling at 2 % off by 1 nat
#: with an error bar of 0.2).
MIN_ESS_FRACTION = 0.1


def _make_generator(
    seed: int | None, generator: torch.Generator | None, device: torch.device
) -> torch.Generator:
    # Kept for genphys.training, which imports it from here and passes the device
    # positionally; the one rule is genphys.seeding.make_generator.
    return make_generator(seed, generator, device=device)


class AISWeightWarning(UserWarning):
    """The importance weights are dominated by a few particles; the standard error is unreliable."""


class AISEstimate(NamedTuple):
    r"""An AIS estimate, its standard error (both in nats) and the weights' effective sample size.

    Attributes
    ----------
    estimate : Tensor of shape ()
    standard_error : Tensor of shape ()
        Delta-method error of ``estimate``; meaningful only when
        ``effective_sample_size`` is a good fraction of the particles.
    effective_sample_size : float
        Kish's :math:`(\sum_k w_k)^2 / \sum_k w_k^2`, between 1 and the number of particles.
    """

    estimate: torch.Tensor
    standard_error: torch.Tensor
    effective_sample_size: float


def importance_estimate(
    log_weights: torch.Tensor, log_z_base: torch.Tensor | float = 0.0, *, warn: bool = True
) -> AISEstimate:
    """:math:`\\log Z_0 + \\log \\frac1n \\sum_k w_k`, its delta-method SE and Kish's ESS.

    Computed from weights shifted by their maximum, so nothing overflows:
    :math:`\\mathrm{SE} = \\mathrm{std}(w) / (\\sqrt n\\, \\overline w)` and
    :math:`n_{\\mathrm{eff}} = (\\sum w)^2 / \\sum w^2`.

    Parameters
    ----------
    log_weights : Tensor of shape (n_chains,)
        :math:`\\log w_k`, finite.
    log_z_base : Tensor of shape () or float
        :math:`\\log Z_0`.
    warn : bool
        Raise :class:`AISWeightWarning` when :math:`n_{\\mathrm{eff}} <` ``MIN_ESS_FRACTION``
        times ``n_chains``.

    Returns
    -------
    AISEstimate
        Explained in {ref}`sec-training-rbms`.
    """
    log_weights = as_tensor("log_weights", log_weights, ndim=1, dtype=log_weights.dtype)
    n = check_positive_int("n_chains", log_weights.shape[0], minimum=2)
    shift = log_weights.max()
    w = torch.exp(log_weights - shift)  # (n,) in (0, 1]
    mean = w.mean()
    log_z = log_z_base + shift + torch.log(mean)
    se = w.std(correction=1) / (math.sqrt(n) * mean)
    ess = float(w.sum() ** 2 / (w**2).sum())
    if warn and ess < MIN_ESS_FRACTION * n:
        warnings.warn(
            f"effective sample size {ess:.1f} of {n} AIS particles is below "
            f"{MIN_ESS_FRACTION:.0%}: a few weights dominate and the standard error "
            f"{float(se):.3g} is not reliable (the estimate may be off by much more). Use "
            "more temperatures (n_temperatures) or more particles (n_chains).",
            AISWeightWarning,
            stacklevel=3,
        )
    return AISEstimate(log_z, se, ess)


def linear_betas(
    n_temperatures: int, *, dtype: torch.dtype = torch.float64, device=None
) -> torch.Tensor:
    """Equally spaced inverse temperatures :math:`\\beta_t = t / (K - 1)`, ``t = 0..K-1``.

    Parameters
    ----------
    n_temperatures : int
        ``K >= 2``; ``K = 2`` gives :math:`(0, 1)`, plain importance sampling.

    Returns
    -------
    Tensor of shape (n_temperatures,)
        Explained in {ref}`sec-training-rbms`.
    """
    n_temperatures = check_positive_int("n_temperatures", n_temperatures, minimum=2)
    return torch.linspace(0.0, 1.0, n_temperatures, dtype=dtype, device=device)


def _check_betas(betas: object, rbm: BernoulliRBM) -> torch.Tensor:
    betas = as_tensor("betas", betas, ndim=1, dtype=rbm.W.dtype, device=rbm.W.device)
    if betas.shape[0] < 2 or float(betas[0]) != 0.0 or float(betas[-1]) != 1.0:
        raise ValueError(
            "betas must start at 0, end at 1 and have at least 2 entries. "
            f"Got {betas.shape[0]} entries from {float(betas[0])} to {float(betas[-1])} instead."
        )
    if bool((betas[1:] < betas[:-1]).any()):
        raise ValueError("betas must be non-decreasing. Got a decreasing step instead.")
    return betas


def _base_bias(rbm: BernoulliRBM, base_visible_bias: object | None) -> torch.Tensor:
    if base_visible_bias is None:
        return rbm.a.detach()
    return as_tensor(
        "base_visible_bias",
        base_visible_bias,
        ndim=1,
        shape=(rbm.n_visible,),
        dtype=rbm.W.dtype,
        device=rbm.W.device,
    )


def log_partition_base(n_hidden: int, base_visible_bias: object) -> torch.Tensor:
    """:math:`\\log Z_0 = N \\log 2 + \\sum_i \\log(1 + e^{a_{0,i}})` of the RBM with :math:`W = 0`.

    Parameters
    ----------
    n_hidden : int
        Number of hidden units ``N`` (each contributes a free factor 2).
    base_visible_bias : Tensor of shape (n_visible,)
        :math:`a_0`.

    Returns
    -------
    Tensor of shape ()
        Explained in {ref}`sec-training-rbms`, eq. {eq}`eq-ais-path`.
    """
    n_hidden = check_positive_int("n_hidden", n_hidden)
    a0 = as_tensor("base_visible_bias", base_visible_bias, ndim=1)
    return n_hidden * math.log(2.0) + F.softplus(a0).sum()


# ---------------------------------------------------------------------- AIS
@dataclass(frozen=True)
class AISRun:
    """The particles of one AIS run.

    Attributes
    ----------
    log_weights : Tensor of shape (n_chains,)
        :math:`\\log w_k`, without :math:`\\log Z_0`.
    log_z_base : Tensor of shape ()
        :math:`\\log Z_0` of the base distribution.
    betas : Tensor of shape (n_temperatures,)
    samples : Tensor of shape (n_chains, n_visible)
        The last states :math:`x_{K-2}`, the ones weighted by the final factor
        :math:`p^*_1 / p^*_{\\beta_{K-2}}`; with ``K = 2`` these are the base draws.
    """

    log_weights: torch.Tensor
    log_z_base: torch.Tensor
    betas: torch.Tensor
    samples: torch.Tensor

    @property
    def estimate(self) -> AISEstimate:
        """:math:`\\log \\hat Z = \\log Z_0 + \\log \\overline{w}`, its SE and ESS (:func:`importance_estimate`)."""
        return importance_estimate(self.log_weights, self.log_z_base)

    @property
    def effective_sample_size(self) -> float:
        """Kish's :math:`(\\sum_k w_k)^2 / \\sum_k w_k^2`, between 1 and ``n_chains``."""
        return importance_estimate(self.log_weights, self.log_z_base, warn=False)[2]


#: Random numbers drawn at once during annealing (bounds the memory used for noise).
_NOISE_BLOCK = 2**21


@torch.no_grad()
def anneal(
    W: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    a0: torch.Tensor,
    betas: list[float],
    n_chains: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Anneal particles through :math:`\\beta_0 = 0 < \\dots < \\beta_{K-1} = 1`, adding :math:`\\log p^*_{\\beta_t}(x) - \\log p^*_{\\beta_{t-1}}(x)` at each step.

    The loop behind :func:`ais_run`, eq. {eq}`eq-ais-path`: start from exact draws of the
    base RBM (:math:`W = 0`, visible bias :math:`a_0`), and at each temperature add the
    log-ratio of the next unnormalised marginal to the current one, then make one block
    Gibbs step that leaves :math:`p_{\\beta_t}` invariant.

    Parameters
    ----------
    W : Tensor of shape (n_visible, n_hidden)
    a : Tensor of shape (n_visible,)
    b : Tensor of shape (n_hidden,)
    a0 : Tensor of shape (n_visible,)
        Visible bias of the base RBM.
    betas : list of float
        The schedule, from 0 to 1.
    n_chains : int
    generator : torch.Generator

    Returns
    -------
    log_weights : Tensor of shape (n_chains,)
    last_states : Tensor of shape (n_chains, n_visible)

    Bernoulli draws compare pre-drawn noise with probabilities: :math:`h_j = [u_j < p_j]`
    with uniform :math:`u`, and :math:`x_i = [\\ell_i < z_i]` with logistic noise
    :math:`\\ell = \\log(u / (1 - u))`, the same as :math:`[u_i < \\sigma(z_i)]`.
    """
    M, N = W.shape
    kw = {"dtype": W.dtype, "device": W.device, "generator": generator}
    u0 = torch.rand(n_chains, M, **kw)  # (C, M)
    x = (u0 < torch.sigmoid(a0)).to(W.dtype)  # exact draws from the base
    log_w = torch.zeros(n_chains, dtype=W.dtype, device=W.device)  # (C,)
    visible_shift = a - a0  # (M,); zero with the default base
    anneal_visible = bool((visible_shift != 0).any())
    field = torch.addmm(b, x, W)  # (C, N): b + x W
    n_moves = len(betas) - 2  # one Gibbs step at each of beta_1 .. beta_{K-2}
    block = max(1, _NOISE_BLOCK // (n_chains * (M + N)))  # Gibbs steps per noise draw
    for t in range(1, len(betas)):
        beta_prev, beta = betas[t - 1], betas[t]
        # log p*_beta(x) - log p*_beta_prev(x) for x ~ (approximately) p_beta_prev
        scaled = field * beta  # (C, N)
        log_w += (F.softplus(scaled) - F.softplus(field * beta_prev)).sum(-1)
        if anneal_visible:
            log_w += (beta - beta_prev) * (x @ visible_shift)
        if t == len(betas) - 1:
            break
        if (t - 1) % block == 0:  # draw the noise of the next `count` Gibbs steps
            count = min(block, n_moves - (t - 1))
            u_h = iter(torch.rand(count, n_chains, N, **kw).unbind(0))  # views (C, N)
            l_x = iter(torch.rand(count, n_chains, M, **kw).logit_().unbind(0))  # (C, M)
        # one Gibbs step that leaves p_beta invariant: h ~ p_beta(h|x), x ~ p_beta(x|h)
        h = next(u_h).lt_(torch.sigmoid(scaled))  # (C, N)
        bias = torch.add(a0, visible_shift, alpha=beta) if anneal_visible else a
        x = next(l_x).lt_(torch.addmm(bias, h, W.T, alpha=beta))  # (C, M)
        field = torch.addmm(b, x, W)
    return log_w, x


def ais_run(
    rbm: BernoulliRBM,
    *,
    n_chains: int = DEFAULT_CHAINS,
    n_temperatures: int = DEFAULT_TEMPERATURES,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    base_visible_bias: object | None = None,
    betas: object | None = None,
) -> AISRun:
    """Anneal ``n_chains`` particles from :math:`p_0` to the RBM and return their log-weights.

    Parameters
    ----------
    rbm : BernoulliRBM
    n_chains : int
        Number of independent particles, ``>= 2`` (for a standard error).
    n_temperatures : int
        Number ``K >= 2`` of inverse temperatures, equally spaced from 0 to 1
        (:func:`linear_betas`). ``K = 2`` is plain importance sampling from :math:`p_0`.
    seed : int, optional
        Seed of a new ``torch.Generator`` on the RBM's device.
    generator : torch.Generator, optional
        Used instead of ``seed`` (give exactly one of them).
    base_visible_bias : Tensor of shape (n_visible,), optional
        :math:`a_0` of the base RBM (:math:`W = 0`); the RBM's visible bias ``a`` by default.
    betas : Tensor of shape (K,), optional
        A custom non-decreasing schedule from 0 to 1; overrides ``n_temperatures``.

    Returns
    -------
    AISRun
        ``.estimate`` gives :math:`(\\log \\hat Z, \\mathrm{SE})`. Explained in
        {ref}`sec-training-rbms`.
    """
    rbm = check_rbm(rbm)
    n_chains = check_positive_int("n_chains", n_chains, minimum=2)
    if betas is None:
        betas_t = linear_betas(n_temperatures, dtype=rbm.W.dtype, device=rbm.W.device)
    else:
        betas_t = _check_betas(betas, rbm)
    a0 = _base_bias(rbm, base_visible_bias)
    g = make_generator(seed, generator, device=rbm.W.device)
    W, a, b = rbm.W.detach(), rbm.a.detach(), rbm.b.detach()
    log_w, x = anneal(W, a, b, a0, betas_t.tolist(), n_chains, g)
    return AISRun(log_w, log_partition_base(rbm.n_hidden, a0), betas_t, x)


def log_partition_ais(
    rbm: BernoulliRBM,
    *,
    n_chains: int = DEFAULT_CHAINS,
    n_temperatures: int = DEFAULT_TEMPERATURES,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    base_visible_bias: object | None = None,
) -> AISEstimate:
    """AIS estimate of :math:`\\log Z` and its standard error, the sampled twin of ``log_partition_exact``.

    :math:`\\log \\hat Z = \\log Z_0 + \\log \\frac1n \\sum_k w_k` and
    :math:`\\mathrm{SE} = \\mathrm{std}(w) / (\\sqrt n\\, \\overline w)`, computed from weights
    shifted by their maximum so nothing overflows (:func:`importance_estimate`).
    Arguments as in :func:`ais_run`.

    Returns
    -------
    AISEstimate
        ``(estimate, standard_error, effective_sample_size)``. Explained in
        {ref}`sec-training-rbms`.

    Warns
    -----
    AISWeightWarning
        When the effective sample size is below ``MIN_ESS_FRACTION`` of ``n_chains``.
    """
    run = ais_run(
        rbm,
        n_chains=n_chains,
        n_temperatures=n_temperatures,
        seed=seed,
        generator=generator,
        base_visible_bias=base_visible_bias,
    )
    return run.estimate


def log_likelihood_ais(
    rbm: BernoulliRBM,
    data: object,
    *,
    n_chains: int = DEFAULT_CHAINS,
    n_temperatures: int = DEFAULT_TEMPERATURES,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    base_visible_bias: object | None = None,
) -> AISEstimate:
    """Mean log-likelihood :math:`-\\overline{F(x)} - \\log \\hat Z` with :math:`\\log \\hat Z` from AIS.

    The sampled twin of :func:`genphys.rbm.log_likelihood_exact`. The free energies are
    exact, so the standard error is that of :math:`\\log \\hat Z`.

    Parameters
    ----------
    rbm : BernoulliRBM
    data : Tensor of shape (n_samples, n_visible)
        Binary data.

    Returns
    -------
    AISEstimate
        ``(estimate, standard_error, effective_sample_size)``. Explained in
        {ref}`sec-training-rbms`.
    """
    rbm = check_rbm(rbm)
    x = check_batch(rbm, "data", data)
    log_z, se, ess = log_partition_ais(
        rbm,
        n_chains=n_chains,
        n_temperatures=n_temperatures,
        seed=seed,
        generator=generator,
        base_visible_bias=base_visible_bias,
    )
    with torch.no_grad():
        mean_free_energy = rbm.free_energy(x).mean()
    return AISEstimate(-mean_free_energy - log_z, se, ess)
