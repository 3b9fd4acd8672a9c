"""Samplers of a diffusion model: ancestral DDPM, DDIM and the probability-flow ODE.

Each sampler runs the reverse process from :math:`x_T` to :math:`x_0` with a noise
prediction ``eps_model(x, t)`` (an int ``t``, 1-based), which may be a trained network or
the exact :math:`\\varepsilon^*` of a Gaussian mixture
(:func:`genphys.diffusion.eps_from_score`), so that the samplers can be tested
independently of any training:

* :func:`ddpm_sample` -- ancestral sampling, :math:`x_{t-1} \\sim \\mathcal N(\\mu_\\theta(x_t, t), \\sigma_t^2 I)`,
  all ``T`` steps (Ho et al. 2020);
* :func:`ddim_sample` -- DDIM on a subsequence of the steps (Song, Meng & Ermon 2021);
  deterministic for ``eta = 0``, where it is Euler's method for the probability-flow ODE;
* :func:`probability_flow_sample` -- Heun's method for the same ODE written as
  :math:`d y / d\\sigma = \\varepsilon^*`, with :math:`y = x/\\sqrt{\\bar\\alpha}` and
  :math:`\\sigma = \\sqrt{(1 - \\bar\\alpha)/\\bar\\alpha}` (Song et al. 2021; Karras et al. 2022).

Starting from :math:`\\mathcal N(0, I)` (``x_T=None``) is only right when
:math:`\\bar\\alpha_T \\approx 0`; otherwise a :class:`genphys.diffusion.IncompleteNoisingWarning`
is issued. Pass ``x_T`` to start elsewhere, e.g. from the exact :math:`q_T`.

Explained in {ref}`sec-diffusion-samplers`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ._validation import check_positive_float, check_positive_int, describe
from .diffusion import _betas, _eps, _variances, _warn_if_noisy, reverse_mean
from .seeding import make_generator

__all__ = ["ddim_sample", "ddpm_sample", "probability_flow_sample", "sampling_steps"]

EpsModel = Callable[[torch.Tensor, int], torch.Tensor]


def sampling_steps(T: int, n_steps: int) -> torch.Tensor:
    """``n_steps`` steps from T down to 1, evenly spaced and rounded: the DDIM subsequence.

    Parameters
    ----------
    T : int
    n_steps : int in 1 ... T

    Returns
    -------
    Tensor of shape (n_steps,), int64, strictly decreasing, first T.
    """
    T = check_positive_int("T", T)
    n_steps = check_positive_int("n_steps", n_steps)
    if n_steps > T:
        raise ValueError(f"n_steps must be at most T = {T}. Got {n_steps} instead.")
    if n_steps == 1:
        return torch.tensor([T])
    steps = torch.round(torch.linspace(T, 1, n_steps, dtype=torch.float64)).long()
    return steps


def _start(
    name: str,
    shape: Sequence[int] | None,
    x_T: torch.Tensor | None,
    b: torch.Tensor,
    g: torch.Generator | None,
    dtype: torch.dtype,
    device: torch.device | str,
) -> torch.Tensor:
    if x_T is not None:
        if not isinstance(x_T, torch.Tensor) or not x_T.is_floating_point() or x_T.dim() < 2:
            raise TypeError(
                f"x_T must be a floating tensor of shape (n, ...). Got {describe(x_T)} instead."
            )
        if shape is not None and tuple(shape) != tuple(x_T.shape):
            raise ValueError(
                f"shape must be None or the shape of x_T {tuple(x_T.shape)}. Got {tuple(shape)} instead."
            )
        return x_T.clone()
    if shape is None:
        raise ValueError(f"{name} needs shape or x_T. Got neither instead.")
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence):
        raise TypeError(
            f"shape must be a tuple (n, ...) of positive integers, e.g. (n, dim). "
            f"Got {describe(shape)} instead."
        )
    shape = tuple(check_positive_int("shape entries", s) for s in shape)
    if len(shape) < 2:
        raise ValueError(f"shape must be (n, ...) with a feature axis. Got {shape} instead.")
    _warn_if_noisy(b, stacklevel=4)
    return torch.randn(shape, generator=g, dtype=dtype, device=device)


def _placement(
    eps_model: object,
    x_T: torch.Tensor | None,
    dtype: torch.dtype | None,
    device: torch.device | str | None,
) -> tuple[torch.dtype, torch.device]:
    """The dtype and device of the chains: ``x_T``'s, else those given, else the network's.

    A network with parameters (an ``nn.Module``) fixes both unless they are given, so a
    float32 network samples in float32 without further arguments; a given ``x_T`` or
    ``dtype`` that differs from the network's is refused with a clear message.
    """
    reference = None
    if isinstance(eps_model, nn.Module):
        reference = next(iter(eps_model.parameters()), None)
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch.dtype. Got {describe(dtype)} instead.")
    if isinstance(x_T, torch.Tensor):
        dtype, device = x_T.dtype, x_T.device
    if dtype is None:
        dtype = reference.dtype if reference is not None else torch.float64
    if device is None:
        device = reference.device if reference is not None else torch.device("cpu")
    if reference is not None and dtype != reference.dtype:
        what = "x_T" if isinstance(x_T, torch.Tensor) else "dtype"
        raise TypeError(
            f"{what} must match the dtype of eps_model's parameters ({reference.dtype}). "
            f"Got {dtype} instead; leave dtype out to sample in the network's dtype."
        )
    return dtype, torch.device(device)


def _check_finite(name: str, x: torch.Tensor, t: int) -> None:
    if not bool(torch.isfinite(x).all()):
        raise FloatingPointError(
            f"{name} produced non-finite values at step t = {t}: the noise prediction must be "
            "finite. Check the model or its inputs."
        )


def ddpm_sample(
    eps_model: EpsModel,
    betas: object,
    shape: Sequence[int] | None = None,
    *,
    x_T: torch.Tensor | None = None,
    variances: object | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Ancestral sampling: :math:`x_{t-1} = \\mu_\\theta(x_t, t) + \\sigma_t z`, t = T ... 1, no noise at t = 1.

    :math:`\\mu_\\theta` is :func:`genphys.diffusion.reverse_mean`; :math:`\\sigma_t^2` defaults
    to :func:`genphys.diffusion.reverse_variances` (:math:`\\tilde\\beta_t`). ``T`` network
    evaluations. Explained in {ref}`sec-diffusion-samplers`.

    Parameters
    ----------
    eps_model : callable (x, t) -> Tensor
    betas : Tensor of shape (T,)
    shape : tuple (n, ...), optional
        Shape of the samples when ``x_T`` is not given (then :math:`x_T \\sim \\mathcal N(0, I)`).
    x_T : Tensor of shape (n, ...), optional
        The starting point.
    variances : Tensor of shape (T,), optional
    dtype, device
        Of :math:`x_T` when it is drawn; by default those of ``eps_model``'s parameters
        (float64 on the CPU for a plain function). A ``dtype`` or ``x_T`` other than the
        network's raises.
    seed, generator
        Exactly one.

    Returns
    -------
    Tensor of shape (n, ...): :math:`x_0`
    """
    b = _betas(betas)
    var = _variances(variances, b)
    dtype, device = _placement(eps_model, x_T, dtype, device)
    g = make_generator(seed, generator, device=device)
    x = _start("ddpm_sample", shape, x_T, b, g, dtype, device)
    for t in range(b.shape[0], 0, -1):
        with torch.no_grad():
            mean = reverse_mean(x, _eps(eps_model, x, t), t, b)
        if t > 1:
            z = torch.randn(x.shape, generator=g, dtype=x.dtype, device=x.device)
            x = mean + math.sqrt(float(var[t - 1])) * z
        else:
            x = mean
        _check_finite("ddpm_sample", x, t)
    return x


def ddim_sample(
    eps_model: EpsModel,
    betas: object,
    shape: Sequence[int] | None = None,
    *,
    n_steps: int,
    eta: float = 0.0,
    x_T: torch.Tensor | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """DDIM: :math:`x_s = \\sqrt{\\bar\\alpha_s}\\, \\hat x_0 + \\sqrt{1 - \\bar\\alpha_s - \\sigma^2}\\, \\varepsilon_\\theta(x_t, t) + \\sigma z` from step t to s < t.

    :math:`\\hat x_0 = (x_t - \\sqrt{1 - \\bar\\alpha_t}\\, \\varepsilon_\\theta)/\\sqrt{\\bar\\alpha_t}`,
    :math:`\\sigma = \\eta \\sqrt{(1 - \\bar\\alpha_s)/(1 - \\bar\\alpha_t)} \\sqrt{1 - \\bar\\alpha_t/\\bar\\alpha_s}`,
    on the steps of :func:`sampling_steps` and a last step to :math:`\\bar\\alpha_0 = 1`. With
    ``eta = 0`` the map is deterministic (Euler's method for the probability-flow ODE);
    ``n_steps`` network evaluations. Explained in {ref}`sec-diffusion-samplers`.

    Parameters
    ----------
    eps_model : callable (x, t) -> Tensor
    betas : Tensor of shape (T,)
    shape : tuple (n, ...), optional
    n_steps : int in 1 ... T
    eta : float >= 0
        0 deterministic; 1 with the posterior's noise level.
    x_T : Tensor of shape (n, ...), optional
    dtype, device
        As for :func:`ddpm_sample`: the network's by default.
    seed, generator
        Exactly one, except that neither is needed when ``x_T`` is given and ``eta = 0``.

    Returns
    -------
    Tensor of shape (n, ...)
    """
    b = _betas(betas)
    eta = check_positive_float("eta", eta, allow_zero=True)
    steps = sampling_steps(b.shape[0], n_steps).tolist()
    dtype, device = _placement(eps_model, x_T, dtype, device)
    needs_random = x_T is None or eta > 0
    given = seed is not None or generator is not None
    # validated whenever given, so that seed and generator together are refused even when
    # nothing is drawn
    g = make_generator(seed, generator, device=device) if needs_random or given else None
    x = _start("ddim_sample", shape, x_T, b, g, dtype, device)
    ab = torch.cumprod(1.0 - b, 0).tolist()
    for i, t in enumerate(steps):
        s = steps[i + 1] if i + 1 < len(steps) else 0
        ab_t, ab_s = ab[t - 1], (ab[s - 1] if s > 0 else 1.0)
        with torch.no_grad():
            e = _eps(eps_model, x, t)
        x0 = (x - math.sqrt(1.0 - ab_t) * e) / math.sqrt(ab_t)
        sigma = eta * math.sqrt((1.0 - ab_s) / (1.0 - ab_t) * (1.0 - ab_t / ab_s))
        x = math.sqrt(ab_s) * x0 + math.sqrt(max(1.0 - ab_s - sigma**2, 0.0)) * e
        if sigma > 0:
            x = x + sigma * torch.randn(x.shape, generator=g, dtype=x.dtype, device=x.device)
        _check_finite("ddim_sample", x, t)
    return x


def probability_flow_sample(
    eps_model: EpsModel,
    betas: object,
    shape: Sequence[int] | None = None,
    *,
    n_steps: int,
    x_T: torch.Tensor | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Heun's method for the probability-flow ODE :math:`dy/d\\sigma = \\varepsilon^*(\\sqrt{\\bar\\alpha}\\, y, t)`.

    In the variables :math:`y = x/\\sqrt{\\bar\\alpha_t}`, :math:`\\sigma_t = \\sqrt{(1 - \\bar\\alpha_t)/\\bar\\alpha_t}`,
    the deterministic flow that carries :math:`q_T` to :math:`q_0` through every
    :math:`q_t` is :math:`dy/d\\sigma = \\varepsilon^*`; one step from t to s is a
    predictor (Euler, the DDIM step) and a trapezoidal corrector that evaluates the
    model at step s. The last step to :math:`\\sigma = 0` is Euler's. Uses
    ``2 n_steps - 1`` network evaluations. Explained in {ref}`sec-diffusion-samplers`.

    Parameters
    ----------
    eps_model : callable (x, t) -> Tensor
    betas : Tensor of shape (T,)
    shape : tuple (n, ...), optional
    n_steps : int in 1 ... T
    x_T : Tensor of shape (n, ...), optional
    dtype, device
        As for :func:`ddpm_sample`: the network's by default.
    seed, generator
        Exactly one when ``x_T`` is drawn; neither when ``x_T`` is given.

    Returns
    -------
    Tensor of shape (n, ...)
    """
    b = _betas(betas)
    steps = sampling_steps(b.shape[0], n_steps).tolist()
    dtype, device = _placement(eps_model, x_T, dtype, device)
    if x_T is not None and (seed is not None or generator is not None):
        raise ValueError(
            "seed and generator must be None when x_T is given (the flow is deterministic). "
            f"Got seed={seed!r}, generator={generator!r} instead."
        )
    g = make_generator(seed, generator, device=device) if x_T is None else None
    x = _start("probability_flow_sample", shape, x_T, b, g, dtype, device)
    ab = torch.cumprod(1.0 - b, 0).tolist()

    def sigma(t: int) -> float:
        return 0.0 if t == 0 else math.sqrt((1.0 - ab[t - 1]) / ab[t - 1])

    y = x / math.sqrt(ab[steps[0] - 1])
    for i, t in enumerate(steps):
        s = steps[i + 1] if i + 1 < len(steps) else 0
        with torch.no_grad():
            d = _eps(eps_model, math.sqrt(ab[t - 1]) * y, t)
            y_euler = y + (sigma(s) - sigma(t)) * d
            if s == 0:
                y = y_euler
            else:
                d_s = _eps(eps_model, math.sqrt(ab[s - 1]) * y_euler, s)
                y = y + (sigma(s) - sigma(t)) * 0.5 * (d + d_s)
        _check_finite("probability_flow_sample", y, t)
    return y
