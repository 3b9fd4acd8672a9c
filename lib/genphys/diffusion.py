"""Diffusion models as a Markovian hierarchical VAE: forward process, ELBO, noise prediction.

The *forward process* (the encoder, fixed, with no parameters) adds Gaussian noise in
``T`` steps with a schedule :math:`\\beta_1, \\dots, \\beta_T`,

.. math::

    q(x_t \\mid x_{t-1}) = \\mathcal N\\big(\\sqrt{\\alpha_t}\\, x_{t-1},\\ \\beta_t I\\big),
    \\qquad \\alpha_t = 1 - \\beta_t, \\qquad \\bar\\alpha_t = \\prod_{s \\le t} \\alpha_s,

whose marginal is closed-form, :math:`q(x_t \\mid x_0) = \\mathcal N(\\sqrt{\\bar\\alpha_t} x_0,
(1 - \\bar\\alpha_t) I)`, and whose posterior :math:`q(x_{t-1} \\mid x_t, x_0) =
\\mathcal N(\\tilde\\mu_t, \\tilde\\beta_t I)` is Gaussian too. The *reverse process* (the decoder)
is a chain of Gaussians :math:`p(x_{t-1} \\mid x_t) = \\mathcal N(\\mu_\\theta(x_t, t), \\sigma_t^2 I)`
whose mean is written through a noise prediction :math:`\\varepsilon_\\theta(x_t, t)`.

This module holds the process, the ELBO term by term (:func:`diffusion_elbo`), the
noise-prediction loss (:func:`simple_loss`) with its ELBO weights (:func:`elbo_weights`),
denoising score matching, the exact noise prediction of a Gaussian mixture through
Tweedie's formula (:func:`eps_from_score`), two small noise-prediction networks and their
trainer. The samplers (DDPM, DDIM, probability-flow ODE) are in
:mod:`genphys.diffusion_samplers`. Steps are 1-based, ``t = 1 ... T``, as in Ho et al. (2020).

Explained in {ref}`sec-diffusion` and {ref}`sec-training-diffusion`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from ._validation import (
    as_tensor,
    check_positive_float,
    check_positive_int,
    describe,
    first_parameter,
)
from .fitting import History, fit, minibatches
from .mixtures import GaussianMixture
from .seeding import make_generator

__all__ = [
    "ALPHA_BAR_T_TOLERANCE",
    "ConvNoisePredictor",
    "ELBOTerms",
    "GaussianMixture",
    "IncompleteNoisingWarning",
    "MLPNoisePredictor",
    "alpha_bar",
    "cosine_schedule",
    "denoising_score_matching_loss",
    "diffuse",
    "diffusion_elbo",
    "elbo_weights",
    "eps_from_score",
    "exact_reverse_variances",
    "forward_marginal",
    "forward_posterior",
    "forward_step",
    "linear_schedule",
    "mixture_score",
    "predict_x0",
    "reverse_mean",
    "reverse_variances",
    "score_from_eps",
    "simple_loss",
    "sinusoidal_embedding",
    "train_diffusion",
]

#: A schedule whose :math:`\bar\alpha_T` exceeds this leaves signal in :math:`x_T`:
#: :math:`\sqrt{\bar\alpha_T} > 0.032` of the data's amplitude survives, and starting the
#: reverse chain from :math:`\mathcal N(0, I)` is then a visible approximation.
ALPHA_BAR_T_TOLERANCE = 1e-3

EpsModel = Callable[[torch.Tensor, object], torch.Tensor]


class IncompleteNoisingWarning(UserWarning):
    """The schedule's :math:`\\bar\\alpha_T` is not close to 0: :math:`x_T` is not pure noise."""


# ---------------------------------------------------------------------------- checks
def _betas(betas: object) -> torch.Tensor:
    """``betas`` as a float64 CPU tensor of shape (T,) with every entry in (0, 1)."""
    if isinstance(betas, torch.Tensor):
        betas = betas.detach().to("cpu", torch.float64)
    b = as_tensor("betas", betas, ndim=1)
    if bool(((b <= 0) | (b >= 1)).any()):
        raise ValueError(
            f"betas must lie in (0, 1). Got values in [{float(b.min()):.4g}, "
            f"{float(b.max()):.4g}] instead."
        )
    return b


def _warn_if_noisy(b: torch.Tensor, stacklevel: int = 3) -> None:
    ab_T = float(torch.prod(1.0 - b))
    if ab_T > ALPHA_BAR_T_TOLERANCE:
        warnings.warn(
            f"alpha_bar_T must be close to 0 (below {ALPHA_BAR_T_TOLERANCE:g}) for x_T to be "
            f"pure noise N(0, I). Got alpha_bar_T = {ab_T:.4g} instead: sqrt(alpha_bar_T) = "
            f"{math.sqrt(ab_T):.3g} of the signal amplitude survives in x_T (T = {b.shape[0]}).",
            IncompleteNoisingWarning,
            stacklevel=stacklevel,
        )


def _step(t: object, T: int, n: int | None = None, *, minimum: int = 1) -> int | torch.Tensor:
    """A 1-based step: an int in ``minimum ... T`` or an int64 tensor of shape (n,) of them."""
    if isinstance(t, torch.Tensor) and t.dim() == 0:
        if t.dtype == torch.bool:  # int(True) would silently be step 1
            raise TypeError(f"t must hold integers (int64). Got {describe(t)} instead.")
        t = int(t) if not t.is_floating_point() else t
    if isinstance(t, torch.Tensor):
        if t.is_floating_point() or t.dtype == torch.bool:
            raise TypeError(f"t must hold integers (int64). Got {describe(t)} instead.")
        if t.dim() != 1 or (n is not None and t.shape[0] != n):
            want = "(n,)" if n is None else f"({n},)"
            raise ValueError(f"t must have shape {want}. Got shape {tuple(t.shape)} instead.")
        if bool(((t < minimum) | (t > T)).any()):
            raise ValueError(
                f"t must lie in {minimum} ... {T} (1-based steps). Got values in "
                f"[{int(t.min())}, {int(t.max())}] instead."
            )
        return t.long()
    if isinstance(t, bool) or not isinstance(t, int):
        raise TypeError(f"t must be an integer or an int64 tensor. Got {describe(t)} instead.")
    if not minimum <= t <= T:
        raise ValueError(
            f"t must be an integer in {minimum} ... {T} (1-based steps). Got {t} instead."
        )
    return t


def _data(name: str, x: object) -> torch.Tensor:
    if isinstance(x, torch.Tensor) and x.is_floating_point():
        t = x
    else:
        t = as_tensor(name, x)
    if t.dim() < 2 or t.shape[0] == 0:
        raise ValueError(
            f"{name} must have shape (n, ...) with n >= 1 and at least one feature axis. "
            f"Got shape {tuple(t.shape)} instead."
        )
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must contain only finite values. Got NaN or infinity instead.")
    return t


def _per_row(coef: torch.Tensor, t: int | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``coef[t - 1]`` in the dtype and device of ``like``, shaped to broadcast against it."""
    if isinstance(t, int):
        return coef[t - 1].to(like.dtype).to(like.device)
    value = coef.to(like.device)[t.to(like.device) - 1].to(like.dtype)  # (n,)
    return value.reshape(-1, *([1] * (like.dim() - 1)))


# ------------------------------------------------------------------------- schedules
def linear_schedule(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """:math:`\\beta_t = \\beta_\\text{start} + (\\beta_\\text{end} - \\beta_\\text{start})(t - 1)/(T - 1)`, t = 1 ... T.

    The schedule of Ho et al. (2020). Warns with :class:`IncompleteNoisingWarning` when
    :math:`\\bar\\alpha_T > 10^{-3}`: with the defaults and ``T = 300``,
    :math:`\\bar\\alpha_T \\approx 0.048`. Explained in {ref}`sec-diffusion-forward`.

    Parameters
    ----------
    T : int
        Number of steps, ``T >= 1``.
    beta_start, beta_end : float in (0, 1)
        :math:`\\beta_1` and :math:`\\beta_T`.

    Returns
    -------
    betas : Tensor of shape (T,), float64
    """
    T = check_positive_int("T", T)
    for name, value in (("beta_start", beta_start), ("beta_end", beta_end)):
        value = check_positive_float(name, value)
        if value >= 1:
            raise ValueError(f"{name} must lie in (0, 1). Got {value} instead.")
    if T == 1:
        b = torch.tensor([float(beta_end)], dtype=torch.float64)
    else:
        b = torch.linspace(float(beta_start), float(beta_end), T, dtype=torch.float64)
    _warn_if_noisy(b)
    return b


def cosine_schedule(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """:math:`\\bar\\alpha_t = f(t)/f(0)`, :math:`f(t) = \\cos^2\\big(\\tfrac{\\pi}{2} \\tfrac{t/T + s}{1 + s}\\big)`; :math:`\\beta_t = \\min(1 - \\bar\\alpha_t/\\bar\\alpha_{t-1}, \\beta_\\max)`.

    The schedule of Nichol & Dhariwal (2021): :math:`\\bar\\alpha_t` falls like a cosine, so
    fewer steps are spent at almost pure noise than with :func:`linear_schedule`.
    Explained in {ref}`sec-diffusion-forward`.

    Parameters
    ----------
    T : int
    s : float > 0
        Offset that keeps :math:`\\beta_1` from being tiny.
    max_beta : float in (0, 1)
        Clips the last steps, where :math:`\\bar\\alpha_t \\to 0`.

    Returns
    -------
    betas : Tensor of shape (T,), float64
    """
    T = check_positive_int("T", T)
    s = check_positive_float("s", s)
    max_beta = check_positive_float("max_beta", max_beta)
    if max_beta >= 1:
        raise ValueError(f"max_beta must lie in (0, 1). Got {max_beta} instead.")
    steps = torch.arange(T + 1, dtype=torch.float64) / T  # (T + 1,)
    f = torch.cos(0.5 * math.pi * (steps + s) / (1 + s)) ** 2
    ab = f / f[0]  # (T + 1,), ab[0] = 1
    b = torch.clamp(1.0 - ab[1:] / ab[:-1], min=1e-8, max=max_beta)
    _warn_if_noisy(b)
    return b


def _alpha_bars(b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:math:`\\bar\\alpha_t` and :math:`1 - \\bar\\alpha_t` from :math:`\\sum_s \\log(1 - \\beta_s)`, without cancellation."""
    log_ab = torch.cumsum(torch.log1p(-b), 0)  # (T,)
    return torch.exp(log_ab), -torch.expm1(log_ab)


def _previous(ab: torch.Tensor, one_minus: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:math:`\\bar\\alpha_{t-1}` and :math:`1 - \\bar\\alpha_{t-1}` with :math:`\\bar\\alpha_0 = 1`."""
    return torch.cat([torch.ones_like(ab[:1]), ab[:-1]]), torch.cat(
        [torch.zeros_like(ab[:1]), one_minus[:-1]]
    )


def alpha_bar(betas: object) -> torch.Tensor:
    """:math:`\\bar\\alpha_t = \\prod_{s=1}^{t} (1 - \\beta_s)`; entry ``t - 1`` is step ``t``.

    Parameters
    ----------
    betas : Tensor of shape (T,)

    Returns
    -------
    Tensor of shape (T,), float64
    """
    return _alpha_bars(_betas(betas))[0]


# --------------------------------------------------------------------- forward process
def forward_step(
    x_prev: object,
    t: int,
    betas: object,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One step of the chain, :math:`x_t = \\sqrt{1 - \\beta_t}\\, x_{t-1} + \\sqrt{\\beta_t}\\, \\varepsilon`.

    A draw from :math:`q(x_t \\mid x_{t-1})`. Explained in {ref}`sec-diffusion-forward`.

    Parameters
    ----------
    x_prev : Tensor of shape (n, ...)
        :math:`x_{t-1}` (the data when ``t = 1``).
    t : int in 1 ... T
    betas : Tensor of shape (T,)
    seed, generator
        Exactly one (see :mod:`genphys.seeding`).

    Returns
    -------
    Tensor of the shape of ``x_prev``
    """
    b = _betas(betas)
    x = _data("x_prev", x_prev)
    t = _step(t, b.shape[0])
    if not isinstance(t, int):
        raise TypeError("t must be a single integer here. Got a tensor instead.")
    g = make_generator(seed, generator, device=x.device)
    eps = torch.randn(x.shape, generator=g, dtype=x.dtype, device=x.device)
    beta = float(b[t - 1])
    return math.sqrt(1.0 - beta) * x + math.sqrt(beta) * eps


def forward_marginal(
    x_0: object, t: int | torch.Tensor, betas: object
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of :math:`q(x_t \\mid x_0) = \\mathcal N(\\sqrt{\\bar\\alpha_t}\\, x_0, (1 - \\bar\\alpha_t) I)`.

    Explained in {ref}`sec-diffusion-forward`.

    Parameters
    ----------
    x_0 : Tensor of shape (n, ...)
    t : int in 1 ... T, or int64 Tensor of shape (n,)
    betas : Tensor of shape (T,)

    Returns
    -------
    mean : Tensor of the shape of ``x_0``
    variance : Tensor of shape () (int ``t``) or (n, 1, ...) (one step per row)
    """
    b = _betas(betas)
    x0 = _data("x_0", x_0)
    t = _step(t, b.shape[0], x0.shape[0])
    ab, one_minus = _alpha_bars(b)
    return torch.sqrt(_per_row(ab, t, x0)) * x0, _per_row(one_minus, t, x0)


def diffuse(
    x_0: object,
    t: int | torch.Tensor,
    betas: object,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A draw :math:`x_t = \\sqrt{\\bar\\alpha_t}\\, x_0 + \\sqrt{1 - \\bar\\alpha_t}\\, \\varepsilon` and its noise :math:`\\varepsilon`.

    One jump from the data to step ``t``, the closed form of the forward chain.
    Explained in {ref}`sec-diffusion-forward`.

    Parameters
    ----------
    x_0 : Tensor of shape (n, ...)
    t : int in 1 ... T, or int64 Tensor of shape (n,)
    betas : Tensor of shape (T,)
    seed, generator
        Exactly one.

    Returns
    -------
    x_t : Tensor of the shape of ``x_0``
    eps : Tensor of the shape of ``x_0``
    """
    mean, variance = forward_marginal(x_0, t, betas)
    g = make_generator(seed, generator, device=mean.device)
    eps = torch.randn(mean.shape, generator=g, dtype=mean.dtype, device=mean.device)
    return mean + torch.sqrt(variance) * eps, eps


def forward_posterior(
    x_t: object, x_0: object, t: int | torch.Tensor, betas: object
) -> tuple[torch.Tensor, torch.Tensor]:
    """:math:`q(x_{t-1} \\mid x_t, x_0) = \\mathcal N(\\tilde\\mu_t, \\tilde\\beta_t I)`, for t = 2 ... T.

    .. math::

        \\tilde\\mu_t = \\frac{\\sqrt{\\bar\\alpha_{t-1}}\\, \\beta_t}{1 - \\bar\\alpha_t}\\, x_0
        + \\frac{\\sqrt{\\alpha_t}\\, (1 - \\bar\\alpha_{t-1})}{1 - \\bar\\alpha_t}\\, x_t,
        \\qquad
        \\tilde\\beta_t = \\frac{1 - \\bar\\alpha_{t-1}}{1 - \\bar\\alpha_t}\\, \\beta_t.

    Explained in {ref}`sec-diffusion-posterior`.

    Parameters
    ----------
    x_t, x_0 : Tensor of shape (n, ...)
    t : int in 2 ... T, or int64 Tensor of shape (n,)
    betas : Tensor of shape (T,)

    Returns
    -------
    mean : Tensor of the shape of ``x_t``
    variance : Tensor of shape () (int ``t``) or (n, 1, ...)
    """
    b = _betas(betas)
    xt = _data("x_t", x_t)
    x0 = _data("x_0", x_0)
    if xt.shape != x0.shape:
        raise ValueError(
            f"x_0 must have the shape of x_t {tuple(xt.shape)}. Got shape {tuple(x0.shape)} instead."
        )
    t = _step(t, b.shape[0], xt.shape[0], minimum=2)
    ab, one_minus = _alpha_bars(b)  # (T,), (T,)
    ab_prev, one_minus_prev = _previous(ab, one_minus)  # ab_0 = 1
    coef_x0 = torch.sqrt(ab_prev) * b / one_minus
    coef_xt = torch.sqrt(1.0 - b) * one_minus_prev / one_minus
    var = one_minus_prev / one_minus * b
    mean = _per_row(coef_x0, t, x0) * x0 + _per_row(coef_xt, t, xt) * xt
    return mean, _per_row(var, t, xt)


# --------------------------------------------------------------------- reverse process
def reverse_variances(betas: object) -> torch.Tensor:
    """:math:`\\sigma_t^2` of the reverse chain: :math:`\\tilde\\beta_t` for t >= 2 and :math:`\\beta_1` for t = 1.

    The default of :func:`diffusion_elbo` and of the DDPM sampler; :math:`\\tilde\\beta_1 = 0`,
    so the first step uses :math:`\\beta_1` as the decoder's variance.

    Returns
    -------
    Tensor of shape (T,), float64
    """
    b = _betas(betas)
    ab, one_minus = _alpha_bars(b)
    _, one_minus_prev = _previous(ab, one_minus)
    var = one_minus_prev / one_minus * b
    var[0] = b[0]
    return var


def exact_reverse_variances(betas: object, data_variance: float) -> torch.Tensor:
    """Variances of the exact reverse kernel :math:`q(x_{t-1} \\mid x_t)` for data :math:`\\mathcal N(m, s^2 I)`.

    :math:`\\operatorname{Var}[x_{t-1} \\mid x_t] = \\tilde\\beta_t + c_t^2 \\operatorname{Var}[x_0 \\mid x_t]`
    with :math:`c_t = \\sqrt{\\bar\\alpha_{t-1}} \\beta_t / (1 - \\bar\\alpha_t)` and
    :math:`\\operatorname{Var}[x_0 \\mid x_t] = s^2 (1 - \\bar\\alpha_t) / (\\bar\\alpha_t s^2 + 1 - \\bar\\alpha_t)`;
    at t = 1 this is :math:`\\operatorname{Var}[x_0 \\mid x_1]`. Together with the exact noise
    prediction these make the reverse chain exact. Explained in {ref}`sec-diffusion-elbo`.

    Parameters
    ----------
    betas : Tensor of shape (T,)
    data_variance : float
        :math:`s^2`.

    Returns
    -------
    Tensor of shape (T,), float64
    """
    b = _betas(betas)
    s2 = check_positive_float("data_variance", data_variance)
    ab, one_minus = _alpha_bars(b)
    ab_prev, one_minus_prev = _previous(ab, one_minus)
    tilde = one_minus_prev / one_minus * b
    c = torch.sqrt(ab_prev) * b / one_minus
    var_x0 = s2 * one_minus / (ab * s2 + one_minus)
    return tilde + c**2 * var_x0


def _pair(x_t: object, eps: object) -> None:
    for name, v in (("x_t", x_t), ("eps", eps)):
        if not isinstance(v, torch.Tensor) or not v.is_floating_point() or v.dim() < 2:
            raise TypeError(
                f"{name} must be a floating tensor of shape (n, ...). Got {describe(v)} instead."
            )
    if eps.shape != x_t.shape:
        raise ValueError(
            f"eps must have the shape of x_t {tuple(x_t.shape)}. Got shape {tuple(eps.shape)} instead."
        )


def predict_x0(x_t: torch.Tensor, eps: torch.Tensor, t: int | torch.Tensor, betas: object):
    """:math:`\\hat x_0 = (x_t - \\sqrt{1 - \\bar\\alpha_t}\\, \\varepsilon) / \\sqrt{\\bar\\alpha_t}`.

    With the exact :math:`\\varepsilon^*` this is Tweedie's :math:`E[x_0 \\mid x_t]`.
    Explained in {ref}`sec-diffusion-score`.

    Parameters
    ----------
    x_t, eps : Tensor of shape (n, ...)
    t : int or int64 Tensor of shape (n,)
    betas : Tensor of shape (T,)

    Returns
    -------
    Tensor of the shape of ``x_t``
    """
    _pair(x_t, eps)
    b = _betas(betas)
    t = _step(t, b.shape[0], x_t.shape[0])
    ab, one_minus = _alpha_bars(b)
    return (x_t - torch.sqrt(_per_row(one_minus, t, x_t)) * eps) / torch.sqrt(_per_row(ab, t, x_t))


def reverse_mean(x_t: torch.Tensor, eps: torch.Tensor, t: int | torch.Tensor, betas: object):
    """:math:`\\mu_\\theta(x_t, t) = \\big(x_t - \\beta_t \\varepsilon_\\theta / \\sqrt{1 - \\bar\\alpha_t}\\big) / \\sqrt{\\alpha_t}`.

    The posterior mean :math:`\\tilde\\mu_t(x_t, \\hat x_0)` with :math:`\\hat x_0` from
    :func:`predict_x0`. Explained in {ref}`sec-diffusion-eps`.

    Parameters
    ----------
    x_t, eps : Tensor of shape (n, ...)
    t : int or int64 Tensor of shape (n,)
    betas : Tensor of shape (T,)

    Returns
    -------
    Tensor of the shape of ``x_t``
    """
    _pair(x_t, eps)
    b = _betas(betas)
    t = _step(t, b.shape[0], x_t.shape[0])
    beta = _per_row(b, t, x_t)
    one_minus = _per_row(_alpha_bars(b)[1], t, x_t)
    return (x_t - beta / torch.sqrt(one_minus) * eps) / torch.sqrt(1.0 - beta)


def _eps(eps_model: EpsModel, x: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
    out = eps_model(x, t)
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        raise ValueError(
            f"eps_model must return a tensor of the shape of x {tuple(x.shape)}. "
            f"Got {describe(out)} instead."
        )
    return out


# ------------------------------------------------------------------------------ ELBO
class ELBOTerms(NamedTuple):
    """The diffusion ELBO term by term, per data point (nats).

    Attributes
    ----------
    reconstruction : Tensor of shape (n,)
        :math:`E_{q(x_1 \\mid x_0)}[\\log p(x_0 \\mid x_1)]`.
    prior_matching : Tensor of shape (n,)
        :math:`\\mathrm{KL}(q(x_T \\mid x_0) \\,\\|\\, \\mathcal N(0, I))`.
    consistency : Tensor of shape (n, T - 1)
        Column ``t - 2`` is :math:`E_{q(x_t \\mid x_0)} \\mathrm{KL}(q(x_{t-1} \\mid x_t, x_0) \\,\\|\\, p(x_{t-1} \\mid x_t))`, t = 2 ... T.
    """

    reconstruction: torch.Tensor
    prior_matching: torch.Tensor
    consistency: torch.Tensor

    @property
    def elbo(self) -> torch.Tensor:
        """Reconstruction minus prior matching minus the consistency terms, shape (n,)."""
        return self.reconstruction - self.prior_matching - self.consistency.sum(1)


def _variances(variances: object, b: torch.Tensor) -> torch.Tensor:
    if variances is None:
        return reverse_variances(b)
    v = as_tensor(
        "variances",
        variances.detach().cpu() if isinstance(variances, torch.Tensor) else variances,
        ndim=1,
    )
    if v.shape != b.shape or bool((v <= 0).any()):
        raise ValueError(
            f"variances must be {b.shape[0]} positive numbers, one per step. "
            f"Got {describe(v)} instead."
        )
    return v.to(torch.float64)


def diffusion_elbo(
    eps_model: EpsModel,
    x_0: object,
    betas: object,
    *,
    variances: object | None = None,
    n_samples: int = 1,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> ELBOTerms:
    """:math:`\\mathcal L(x_0) = E[\\log p(x_0 \\mid x_1)] - \\mathrm{KL}(q(x_T \\mid x_0) \\| p(x_T)) - \\sum_{t=2}^T E\\, \\mathrm{KL}(q(x_{t-1} \\mid x_t, x_0) \\| p(x_{t-1} \\mid x_t))`.

    The reverse model is :math:`p(x_T) = \\mathcal N(0, I)` and
    :math:`p(x_{t-1} \\mid x_t) = \\mathcal N(\\mu_\\theta(x_t, t), \\sigma_t^2 I)` with the mean of
    :func:`reverse_mean`. The prior-matching KL is exact (it reuses
    :func:`genphys.vae.kl_diagonal_gaussian_standard_normal`); the KLs between Gaussians are
    exact given :math:`x_t`, and the expectations over :math:`x_t \\sim q(x_t \\mid x_0)` are
    averages over ``n_samples`` draws per step and data point. Explained in
    {ref}`sec-diffusion-elbo`.

    Parameters
    ----------
    eps_model : callable (x_t, t) -> Tensor
        Noise prediction :math:`\\varepsilon_\\theta`; ``t`` is an int.
    x_0 : Tensor of shape (n, ...)
    betas : Tensor of shape (T,), T >= 2
    variances : Tensor of shape (T,), optional
        :math:`\\sigma_t^2`; default :func:`reverse_variances`.
    n_samples : int
        Draws of :math:`x_t` per step and data point.
    seed, generator
        Exactly one.

    Returns
    -------
    ELBOTerms
    """
    from .vae import kl_diagonal_gaussian_standard_normal

    b = _betas(betas)
    T = b.shape[0]
    if T < 2:
        raise ValueError(f"betas must hold T >= 2 steps. Got T = {T} instead.")
    x0 = _data("x_0", x_0)
    S = check_positive_int("n_samples", n_samples)
    var = _variances(variances, b)
    g = make_generator(seed, generator, device=x0.device)
    n = x0.shape[0]
    D = x0[0].numel()
    ab, one_minus = _alpha_bars(b)
    x0_rep = x0.repeat(S, *([1] * (x0.dim() - 1)))  # (S n, ...)

    def mean_over_samples(v: torch.Tensor) -> torch.Tensor:  # (S n,) -> (n,)
        return v.reshape(S, n).mean(0)

    # reconstruction, t = 1: log N(x_0; mu_theta(x_1, 1), sigma_1^2 I)
    x1, _ = diffuse(x0_rep, 1, b, generator=g)
    with torch.no_grad():
        mu = reverse_mean(x1, _eps(eps_model, x1, 1), 1, b)
    s2 = float(var[0])
    sq = ((x0_rep - mu) ** 2).reshape(S * n, -1).sum(1)  # (S n,)
    reconstruction = mean_over_samples(-0.5 * D * math.log(2 * math.pi * s2) - 0.5 * sq / s2)

    # prior matching: KL(N(sqrt(ab_T) x_0, (1 - ab_T) I) || N(0, I))
    flat = x0.reshape(n, -1)
    log_var = torch.full_like(flat, math.log(float(one_minus[-1])))
    prior = kl_diagonal_gaussian_standard_normal(math.sqrt(float(ab[-1])) * flat, log_var)

    # consistency terms, t = 2 ... T
    consistency = []
    for t in range(2, T + 1):
        xt, _ = diffuse(x0_rep, t, b, generator=g)
        tilde_mu, tilde_var = forward_posterior(xt, x0_rep, t, b)
        with torch.no_grad():
            mu = reverse_mean(xt, _eps(eps_model, xt, t), t, b)
        ratio = float(tilde_var) / float(var[t - 1])
        sq = ((tilde_mu - mu) ** 2).reshape(S * n, -1).sum(1)  # (S n,)
        kl = 0.5 * D * (ratio - 1.0 - math.log(ratio)) + 0.5 * sq / float(var[t - 1])
        consistency.append(mean_over_samples(kl))
    return ELBOTerms(reconstruction, prior, torch.stack(consistency, dim=1))


def elbo_weights(betas: object, variances: object | None = None) -> torch.Tensor:
    """:math:`\\lambda_t = \\beta_t^2 / (2 \\sigma_t^2 \\alpha_t (1 - \\bar\\alpha_t))`, the ELBO's weight on :math:`\\|\\varepsilon - \\varepsilon_\\theta\\|^2`.

    With :math:`\\mu_\\theta` written through :math:`\\varepsilon_\\theta` (:func:`reverse_mean`),
    the t-th term of :func:`diffusion_elbo` is
    :math:`\\lambda_t E\\|\\varepsilon - \\varepsilon_\\theta(x_t, t)\\|^2` plus a constant
    (for t = 1 as well); :func:`simple_loss` sets every :math:`\\lambda_t` equal. Explained in
    {ref}`sec-diffusion-eps`.

    Parameters
    ----------
    betas : Tensor of shape (T,)
    variances : Tensor of shape (T,), optional
        :math:`\\sigma_t^2`; default :func:`reverse_variances`.

    Returns
    -------
    Tensor of shape (T,), float64
    """
    b = _betas(betas)
    var = _variances(variances, b)
    one_minus = _alpha_bars(b)[1]
    return b**2 / (2.0 * var * (1.0 - b) * one_minus)


def simple_loss(
    eps_model: EpsModel,
    x_0: torch.Tensor,
    betas: object,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """:math:`L_\\text{simple} = E_{t, x_0, \\varepsilon} \\tfrac1D \\|\\varepsilon - \\varepsilon_\\theta(\\sqrt{\\bar\\alpha_t} x_0 + \\sqrt{1 - \\bar\\alpha_t} \\varepsilon, t)\\|^2`.

    One uniform step :math:`t \\in \\{1, \\dots, T\\}` and one noise draw per row; the mean
    squared error per coordinate (Ho et al. 2020). Differentiable in the model's
    parameters. With the exact :math:`\\varepsilon^*` (:func:`eps_from_score`) and the same
    seed it is the floor a trained network can reach on the same draws. Explained in
    {ref}`sec-diffusion-eps`.

    Parameters
    ----------
    eps_model : callable (x_t, t) -> Tensor
        ``t`` is an int64 Tensor of shape (n,).
    x_0 : Tensor of shape (n, ...)
    betas : Tensor of shape (T,)
    seed, generator
        Exactly one.

    Returns
    -------
    Tensor of shape ()
    """
    b = _betas(betas)
    x0 = _data("x_0", x_0)
    g = make_generator(seed, generator, device=x0.device)
    t = torch.randint(1, b.shape[0] + 1, (x0.shape[0],), generator=g, device=x0.device)  # (n,)
    xt, eps = diffuse(x0, t, b, generator=g)
    return ((eps - _eps(eps_model, xt, t)) ** 2).mean()


# ----------------------------------------------------------------- scores and Tweedie
def mixture_score(mixture: GaussianMixture, betas: object) -> Callable:
    """The exact score :math:`\\nabla_x \\log q_t(x)` of a noised mixture as a callable ``score(x, t)``.

    For an int ``t`` this is :meth:`GaussianMixture.score`; ``t`` may also be an int64 tensor of
    shape (n,), one step per row, where the same responsibilities-weighted formula is
    evaluated with each row's noised components (for training losses). Explained in
    {ref}`sec-diffusion-score`.

    Returns
    -------
    callable (x : Tensor of shape (n, dim), t) -> Tensor of shape (n, dim)
    """
    if not isinstance(mixture, GaussianMixture):
        raise TypeError(f"mixture must be a GaussianMixture. Got {describe(mixture)} instead.")
    b = _betas(betas)
    T = b.shape[0]

    ab_all = _alpha_bars(b)[0]  # (T,)

    def score(x: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        t = _step(t, T, x.shape[0])
        if isinstance(t, int):
            return mixture.score(x, t, b)
        # one noise level per row: component k of q_t is N(sqrt(ab) mu_k, (ab s_k^2 + 1 - ab) I)
        x = mixture._points(x)
        ab = ab_all.to(x.device)[t.to(x.device) - 1].to(x.dtype)[:, None]  # (n, 1)
        mu = torch.sqrt(ab)[:, :, None] * mixture.means.to(x.device)[None]  # (n, K, dim)
        var = ab * mixture.stds.to(x.device) ** 2 + 1.0 - ab  # (n, K)
        diff = mu - x[:, None, :]  # (n, K, dim)
        log_r = (
            torch.log(mixture.weights.to(x.device))
            - 0.5 * mixture.dim * torch.log(var)
            - 0.5 * (diff**2).sum(-1) / var
        )  # (n, K)
        r = torch.softmax(log_r, dim=1)
        return (r[:, :, None] * diff / var[:, :, None]).sum(1)

    return score


def eps_from_score(score: Callable, betas: object) -> Callable:
    """:math:`\\varepsilon^*(x, t) = -\\sqrt{1 - \\bar\\alpha_t}\\, \\nabla_x \\log q_t(x)` (Tweedie).

    The noise prediction that minimises :func:`simple_loss` at every step, from the score
    of the noised marginal. Explained in {ref}`sec-diffusion-score`.

    Parameters
    ----------
    score : callable (x, t) -> Tensor
    betas : Tensor of shape (T,)

    Returns
    -------
    callable (x, t) -> Tensor
    """
    if not callable(score):
        raise TypeError(
            f"score must be a callable (x, t) -> Tensor. Got {describe(score)} instead."
        )
    b = _betas(betas)
    one_minus = _alpha_bars(b)[1]

    def eps(x: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        t = _step(t, b.shape[0], x.shape[0])
        return -torch.sqrt(_per_row(one_minus, t, x)) * score(x, t)

    return eps


def score_from_eps(eps_model: EpsModel, betas: object) -> Callable:
    """:math:`s_\\theta(x, t) = -\\varepsilon_\\theta(x, t) / \\sqrt{1 - \\bar\\alpha_t}`, the inverse of :func:`eps_from_score`.

    Returns
    -------
    callable (x, t) -> Tensor
    """
    if not callable(eps_model):
        raise TypeError(
            f"eps_model must be a callable (x, t) -> Tensor. Got {describe(eps_model)} instead."
        )
    b = _betas(betas)
    one_minus = _alpha_bars(b)[1]

    def score(x: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        t = _step(t, b.shape[0], x.shape[0])
        return -eps_model(x, t) / torch.sqrt(_per_row(one_minus, t, x))

    return score


def denoising_score_matching_loss(
    score_model: Callable[[torch.Tensor], torch.Tensor],
    x_0: torch.Tensor,
    sigma: float,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """:math:`J_\\text{DSM} = E_{x, \\varepsilon} \\tfrac12 \\| s(x + \\sigma\\varepsilon) + \\varepsilon / \\sigma \\|^2` (Vincent 2011).

    :math:`-\\varepsilon/\\sigma` is the score of :math:`q(\\tilde x \\mid x) = \\mathcal N(x, \\sigma^2 I)`
    at :math:`\\tilde x = x + \\sigma\\varepsilon`; the minimiser over all functions is the score of
    the noised data :math:`\\nabla \\log q_\\sigma(\\tilde x)`. Explained in {ref}`sec-diffusion-score`.

    Parameters
    ----------
    score_model : callable x -> Tensor of the shape of x
    x_0 : Tensor of shape (n, ...)
    sigma : float > 0
    seed, generator
        Exactly one.

    Returns
    -------
    Tensor of shape (), the mean over rows of the per-row half squared norm.
    """
    x0 = _data("x_0", x_0)
    sigma = check_positive_float("sigma", sigma)
    g = make_generator(seed, generator, device=x0.device)
    eps = torch.randn(x0.shape, generator=g, dtype=x0.dtype, device=x0.device)
    noisy = x0 + sigma * eps
    out = score_model(noisy)
    if not isinstance(out, torch.Tensor) or out.shape != x0.shape:
        raise ValueError(
            f"score_model must return a tensor of the shape of x_0 {tuple(x0.shape)}. "
            f"Got {describe(out)} instead."
        )
    return 0.5 * ((out + eps / sigma) ** 2).reshape(x0.shape[0], -1).sum(1).mean()


# --------------------------------------------------------------------------- networks
def sinusoidal_embedding(t: torch.Tensor, T: int, dim: int) -> torch.Tensor:
    """:math:`[\\sin(\\omega_k t/T), \\cos(\\omega_k t/T)]_{k < \\text{dim}/2}` with :math:`\\omega_k = 1000^{k/(\\text{dim}/2)}`.

    Parameters
    ----------
    t : Tensor of shape (n,)
        Steps 1 ... T (any numeric dtype).
    T : int
    dim : int, even

    Returns
    -------
    Tensor of shape (n, dim), float32 on the device of ``t``
    """
    if not isinstance(t, torch.Tensor) or t.dim() != 1:
        raise TypeError(f"t must be a tensor of shape (n,). Got {describe(t)} instead.")
    T = check_positive_int("T", T)
    dim = check_positive_int("dim", dim, minimum=2)
    if dim % 2:
        raise ValueError(f"dim must be even. Got {dim} instead.")
    half = dim // 2
    freq = 1000.0 ** (torch.arange(half, device=t.device, dtype=torch.float32) / half)  # (dim/2,)
    angle = (t.to(torch.float32) / T)[:, None] * freq[None, :]  # (n, dim/2)
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)


def _init_(module: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default uniform initialisation (bound 1/sqrt(fan_in)), drawn from ``generator``."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Linear | nn.Conv2d):
                fan_in = layer.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                for p in (layer.weight, layer.bias):
                    u = torch.rand(p.shape, generator=generator, dtype=torch.float64)
                    p.copy_(((2.0 * u - 1.0) * bound).to(p.dtype))


def _model_steps(t: object, n: int, T: int, device: torch.device) -> torch.Tensor:
    t = _step(t, T, n)
    if isinstance(t, int):
        return torch.full((n,), t, dtype=torch.long, device=device)
    return t.to(device)


def _check_model_dtype(model: nn.Module, x: torch.Tensor) -> None:
    """Raise unless ``x`` has the dtype of ``model``'s parameters (no silent cast either way)."""
    reference = first_parameter("model", model)
    if x.dtype != reference.dtype:
        raise TypeError(
            f"x must have the dtype of the network's parameters ({reference.dtype}). Got "
            f"dtype {x.dtype} instead; convert it with x.to({reference.dtype}) or build the "
            f"network with dtype={x.dtype}."
        )


class MLPNoisePredictor(nn.Module):
    """:math:`\\varepsilon_\\theta(x, t)`: an MLP on :math:`[h, e(t)]` at every layer, :math:`e` sinusoidal.

    For low-dimensional data (2D mixtures). Parameters are drawn from the seeded
    generator. Explained in {ref}`sec-training-diffusion`.

    Parameters
    ----------
    dim : int
        Data dimension.
    T : int
        Number of diffusion steps (the time embedding uses t/T).
    hidden : int
        Width of the hidden layers.
    n_layers : int
        Number of hidden layers.
    embedding_dim : int
        Width of the time embedding (even).
    seed, generator
        Exactly one; initialises the parameters.
    dtype : torch.dtype
    """

    def __init__(
        self,
        dim: int,
        T: int,
        *,
        hidden: int = 64,
        n_layers: int = 3,
        embedding_dim: int = 16,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        self.dim = check_positive_int("dim", dim)
        self.T = check_positive_int("T", T)
        hidden = check_positive_int("hidden", hidden)
        n_layers = check_positive_int("n_layers", n_layers)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim, minimum=2)
        if self.embedding_dim % 2:
            raise ValueError(f"embedding_dim must be even. Got {embedding_dim} instead.")
        widths = [self.dim, *([hidden] * n_layers)]
        self.layers = nn.ModuleList(
            nn.Linear(w + self.embedding_dim, hidden, dtype=dtype) for w in widths[:-1]
        )
        self.out = nn.Linear(hidden, self.dim, dtype=dtype)
        _init_(self, make_generator(seed, generator))

    def forward(self, x: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        """:math:`\\varepsilon_\\theta(x, t)` for x of shape (n, dim) and t an int or shape (n,); returns (n, dim)."""
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}). Got {describe(x)} instead.")
        _check_model_dtype(self, x)
        e = sinusoidal_embedding(
            _model_steps(t, x.shape[0], self.T, x.device), self.T, self.embedding_dim
        )
        e = e.to(x.dtype)  # (n, E)
        h = x
        for layer in self.layers:
            h = torch.nn.functional.silu(layer(torch.cat([h, e], dim=1)))  # (n, hidden)
        return self.out(h)


class ConvNoisePredictor(nn.Module):
    """:math:`\\varepsilon_\\theta(x, t)` for small images: 3x3 convolutions in residual blocks, time added per block.

    ``x`` of shape (n, 1, H, W) is lifted to ``channels`` maps, passed through
    ``n_blocks`` residual blocks :math:`h \\leftarrow h + \\mathrm{conv}(\\mathrm{silu}(\\mathrm{conv}(\\mathrm{silu}(h)) + W e(t)))`
    and projected back to one map. No down-sampling: an 8x8 image is covered by the
    receptive field of a few layers. ``circular=True`` pads periodically (lattice
    models). Explained in {ref}`sec-training-diffusion`.

    Parameters
    ----------
    T : int
    channels : int
    n_blocks : int
    embedding_dim : int
    circular : bool
    seed, generator
        Exactly one; initialises the parameters.
    dtype : torch.dtype
    """

    def __init__(
        self,
        T: int,
        *,
        channels: int = 32,
        n_blocks: int = 2,
        embedding_dim: int = 32,
        circular: bool = False,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        self.T = check_positive_int("T", T)
        channels = check_positive_int("channels", channels)
        n_blocks = check_positive_int("n_blocks", n_blocks)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim, minimum=2)
        if self.embedding_dim % 2:
            raise ValueError(f"embedding_dim must be even. Got {embedding_dim} instead.")
        pad = "circular" if circular else "zeros"

        def conv(c_in: int, c_out: int) -> nn.Conv2d:
            return nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode=pad, dtype=dtype)

        self.inp = conv(1, channels)
        self.conv1 = nn.ModuleList(conv(channels, channels) for _ in range(n_blocks))
        self.conv2 = nn.ModuleList(conv(channels, channels) for _ in range(n_blocks))
        self.time = nn.ModuleList(
            nn.Linear(self.embedding_dim, channels, dtype=dtype) for _ in range(n_blocks)
        )
        self.out = conv(channels, 1)
        _init_(self, make_generator(seed, generator))

    def forward(self, x: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        """:math:`\\varepsilon_\\theta(x, t)` for x of shape (n, 1, H, W); returns (n, 1, H, W)."""
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"x must have shape (n, 1, H, W). Got {describe(x)} instead.")
        _check_model_dtype(self, x)
        e = sinusoidal_embedding(
            _model_steps(t, x.shape[0], self.T, x.device), self.T, self.embedding_dim
        )
        e = e.to(x.dtype)  # (n, E)
        silu = torch.nn.functional.silu
        h = self.inp(x)  # (n, C, H, W)
        for conv1, conv2, time in zip(self.conv1, self.conv2, self.time, strict=True):
            a = conv1(silu(h)) + time(e)[:, :, None, None]  # (n, C, H, W)
            h = h + conv2(silu(a))
        return self.out(silu(h))  # (n, 1, H, W)


# --------------------------------------------------------------------------- training
def train_diffusion(
    model: nn.Module,
    x_0: torch.Tensor,
    betas: object,
    *,
    n_epochs: int,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    monitor: Callable[[int], dict] | None = None,
    progress: bool = False,
    desc: str = "diffusion",
) -> History:
    """Minimise :func:`simple_loss` with Adam over shuffled mini-batches (:func:`genphys.fitting.fit`).

    One generator (from ``seed`` or ``generator``) shuffles the data and draws every step
    and noise. A non-finite loss or parameter stops training with
    :class:`genphys.fitting.TrainingDivergedError`. Explained in {ref}`sec-training-diffusion`.

    Parameters
    ----------
    model : nn.Module
        A noise predictor ``model(x_t, t)``; it is trained in place.
    x_0 : Tensor of shape (n, ...)
        Training data in the model's dtype and on its device.
    betas : Tensor of shape (T,)
    n_epochs, batch_size : int
    learning_rate : float
    seed, generator
        Exactly one.
    monitor : callable epoch -> dict, optional
    progress : bool
    desc : str

    Returns
    -------
    History
        Column ``"loss"``: the epoch's mean :func:`simple_loss`.
    """
    reference = first_parameter("model", model)
    b = _betas(betas)
    x0 = _data("x_0", x_0)
    if x0.dtype != reference.dtype or x0.device != reference.device:
        raise TypeError(
            f"x_0 must have the model's dtype {reference.dtype} and device {reference.device}. "
            f"Got dtype {x0.dtype} on {x0.device} instead."
        )
    learning_rate = check_positive_float("learning_rate", learning_rate)
    g = make_generator(seed, generator, device=x0.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)

    def step(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        loss = simple_loss(model, batch, b, generator=g)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach()}

    return fit(
        step,
        lambda epoch: minibatches(x0, batch_size, generator=g),
        n_epochs=n_epochs,
        parameters=model,
        monitor=monitor,
        progress=progress,
        desc=desc,
    )
