"""Langevin samplers for any differentiable log-density: ULA and MALA, many chains at once.

Explained in {ref}`sec-langevin`. The overdamped Langevin equation
:math:`dx = \\nabla \\log p(x)\\, dt + \\sqrt{2}\\, dW` has :math:`p` as its stationary
density. Its Euler–Maruyama discretisation with step :math:`\\eta` is the *unadjusted
Langevin algorithm* (ULA),

.. math::

    x' = x + \\eta \\nabla \\log p(x) + \\sqrt{2\\eta}\\, \\xi, \\qquad \\xi \\sim \\mathcal N(0, I),

which samples :math:`p` only up to a bias of order :math:`\\eta`. Using the same move as the
proposal of a Metropolis–Hastings test removes the bias: the *Metropolis-adjusted Langevin
algorithm* (MALA) {cite}`roberts1996exponential`.

Samplers are pure transition functions over an explicit :class:`LangevinState`
(blackjax style): ``ula_step(state, log_prob, step_size, generator) -> state`` and
``mala_step(...)``; :func:`sample` loops over them and stops with
:class:`SamplerDivergedError` at the first step that produces NaN or infinity.
Gradients come from autograd of ``log_prob``, a callable mapping (n_chains, dim) to
(n_chains,). Randomness comes only from the ``torch.Generator`` passed in.

Chain layout: like every sampler of the library, :func:`sample` returns its chains
**chains first**, shape (n_chains, n_steps, dim), the one layout that the diagnostics of
:mod:`genphys.mcmc` read (``chain[..., i]`` is a series of shape (n_chains, n_steps)).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

from ._validation import (
    as_tensor,
    check_generator,
    check_positive_float,
    check_positive_int,
    describe,
)
from .seeding import make_generator

__all__ = [
    "METHODS",
    "LangevinState",
    "SamplerDivergedError",
    "init",
    "mala_log_acceptance",
    "mala_step",
    "proposal_log_density",
    "sample",
    "ula_stationary_variance",
    "ula_step",
]

#: The samplers :func:`sample` knows.
METHODS = ("ula", "mala")

LogProb = Callable[[torch.Tensor], torch.Tensor]


class SamplerDivergedError(FloatingPointError):
    """A sampler produced NaN or infinity; ``step`` (1-based) says where it happened."""

    def __init__(self, message: str, *, step: int):
        super().__init__(message)
        self.step = step


class LangevinState(NamedTuple):
    """The state of many Langevin chains.

    Attributes
    ----------
    position : Tensor of shape (n_chains, dim)
        :math:`x`.
    log_prob : Tensor of shape (n_chains,)
        :math:`\\log p(x)` (unnormalised).
    grad : Tensor of shape (n_chains, dim)
        :math:`\\nabla_x \\log p(x)`.
    accepted : Tensor of shape (n_chains,), dtype bool
        Whether the last move was accepted (always true for ULA and for the initial state).
    """

    position: torch.Tensor
    log_prob: torch.Tensor
    grad: torch.Tensor
    accepted: torch.Tensor


# ---------------------------------------------------------------------- checks
def _check_callable(log_prob: object) -> None:
    if not callable(log_prob):
        raise TypeError(
            f"log_prob must be callable, mapping (n_chains, dim) to (n_chains,). "
            f"Got {describe(log_prob)} instead."
        )


def _check_state(state: object) -> LangevinState:
    if not isinstance(state, LangevinState):
        raise TypeError(
            f"state must be a LangevinState (make one with genphys.langevin.init). "
            f"Got {describe(state)} instead."
        )
    return state


def _log_prob_and_grad(log_prob: LogProb, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:math:`\\log p(x)` and :math:`\\nabla_x \\log p(x)` by autograd, detached."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        value = log_prob(x)
        if not isinstance(value, torch.Tensor) or value.shape != x.shape[:1]:
            raise ValueError(
                f"log_prob must return a tensor of shape ({x.shape[0]},), one value per chain. "
                f"Got {describe(value)} instead."
            )
        if not value.requires_grad:
            raise ValueError(
                "log_prob must be differentiable in x (built from torch operations on x). "
                "Got a result that does not depend on x through autograd instead."
            )
        (grad,) = torch.autograd.grad(value.sum(), x)
    value, grad = value.detach(), grad.detach()
    # -inf (outside the support) is allowed and rejected by MALA; NaN and +inf are errors,
    # and so is a non-finite gradient where log p is finite.
    bad = torch.isnan(value) | (value == math.inf)
    bad |= torch.isfinite(value) & ~torch.isfinite(grad).all(1)
    bad |= ~torch.isfinite(x.detach()).all(1)
    if bool(bad.any()):
        chain = int(bad.nonzero()[0])
        raise FloatingPointError(
            "log_prob and its gradient must be finite (or log_prob = -inf outside the "
            f"support). Got log_prob = {float(value[chain])} at x = {x[chain].tolist()} "
            f"(chain {chain}) instead."
        )
    return value, grad


def _first_bad(*tensors: torch.Tensor) -> int | None:
    """Index of the first chain with a non-finite entry in any of ``tensors``, else None."""
    bad = torch.zeros(tensors[0].shape[0], dtype=torch.bool, device=tensors[0].device)
    for t in tensors:
        bad |= ~torch.isfinite(t.reshape(t.shape[0], -1)).all(1)
    if bool(bad.any()):
        return int(bad.nonzero()[0])
    return None


def init(log_prob: LogProb, x0: object) -> LangevinState:
    """The state at :math:`x_0`: positions, :math:`\\log p(x_0)` and :math:`\\nabla \\log p(x_0)`.

    Parameters
    ----------
    log_prob : callable, Tensor of shape (n_chains, dim) -> Tensor of shape (n_chains,)
        Unnormalised, differentiable log-density.
    x0 : Tensor of shape (n_chains, dim)
        Starting points (a floating tensor keeps its dtype and device).

    Returns
    -------
    LangevinState

    Raises
    ------
    ValueError
        When ``x0`` has the wrong shape or is not finite, or ``log_prob`` returns the
        wrong shape or a non-finite value or gradient at ``x0``.
    """
    _check_callable(log_prob)
    dtype = x0.dtype if isinstance(x0, torch.Tensor) and x0.is_floating_point() else None
    x = as_tensor("x0", x0, dtype=dtype)
    if x.dim() != 2:
        raise ValueError(f"x0 must have shape (n_chains, dim). Got shape {tuple(x.shape)} instead.")
    x = x.detach()
    try:
        value, grad = _log_prob_and_grad(log_prob, x)
    except FloatingPointError as exc:
        raise ValueError(f"At x0: {exc}") from None
    chain = _first_bad(value[:, None], grad)
    if chain is not None:
        raise ValueError(
            "log_prob must be finite with a finite gradient at x0. Got NaN or infinity for "
            f"chain {chain} (x0[{chain}] = {x[chain].tolist()}) instead."
        )
    accepted = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    return LangevinState(x, value, grad, accepted)


# ---------------------------------------------------------------------- steps
def ula_step(
    state: LangevinState, log_prob: LogProb, step_size: float, generator: torch.Generator
) -> LangevinState:
    """One ULA step, :math:`x' = x + \\eta \\nabla \\log p(x) + \\sqrt{2\\eta}\\, \\xi`, for every chain.

    Eq. {eq}`eq-ula`. The noise is drawn as ``torch.randn(x.shape, generator=generator)``.

    Parameters
    ----------
    state : LangevinState
        Chains of shape (n_chains, dim).
    log_prob : callable, (n_chains, dim) -> (n_chains,)
    step_size : float
        :math:`\\eta > 0`.
    generator : torch.Generator
        On the device of the chains.

    Returns
    -------
    LangevinState
        ``accepted`` is all true.
    """
    x, _, grad, accepted = _check_state(state)
    step_size = check_positive_float("step_size", step_size)
    check_generator(generator, x.device, "the chains")
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)  # (B, D)
    x_new = x + step_size * grad + math.sqrt(2.0 * step_size) * noise  # (B, D)
    value, grad_new = _log_prob_and_grad(log_prob, x_new)
    return LangevinState(x_new, value, grad_new, torch.ones_like(accepted))


def proposal_log_density(
    x_to: torch.Tensor, x_from: torch.Tensor, grad_from: torch.Tensor, step_size: float
) -> torch.Tensor:
    """:math:`\\log q(x_\\text{to} \\mid x_\\text{from}) = -\\lVert x_\\text{to} - x_\\text{from} - \\eta \\nabla \\log p(x_\\text{from}) \\rVert^2 / (4\\eta)` + const.

    The Langevin proposal is :math:`\\mathcal N(x + \\eta \\nabla \\log p(x),\\ 2\\eta I)`; the
    constant, the same for every pair, cancels in the Metropolis–Hastings ratio.

    Parameters
    ----------
    x_to, x_from, grad_from : Tensor of shape (n, dim)
    step_size : float

    Returns
    -------
    Tensor of shape (n,)
    """
    step_size = check_positive_float("step_size", step_size)
    mean = x_from + step_size * grad_from  # (B, D)
    return -((x_to - mean) ** 2).sum(1) / (4.0 * step_size)


def mala_log_acceptance(
    x: torch.Tensor,
    x_prop: torch.Tensor,
    log_p: torch.Tensor,
    log_p_prop: torch.Tensor,
    grad: torch.Tensor,
    grad_prop: torch.Tensor,
    step_size: float,
) -> torch.Tensor:
    """:math:`\\log a = \\min\\big(0,\\ \\log p(x') - \\log p(x) + \\log q(x \\mid x') - \\log q(x' \\mid x)\\big)`.

    Eq. {eq}`eq-mala-acceptance`, in log space, so that large gradients and distant
    points give a large negative number rather than ``exp`` overflowing.

    Parameters
    ----------
    x, x_prop : Tensor of shape (n, dim)
        Current and proposed positions.
    log_p, log_p_prop : Tensor of shape (n,)
    grad, grad_prop : Tensor of shape (n, dim)
        :math:`\\nabla \\log p` at ``x`` and at ``x_prop``.
    step_size : float

    Returns
    -------
    Tensor of shape (n,)
        Log acceptance probabilities, :math:`\\le 0`.
    """
    forward = proposal_log_density(x_prop, x, grad, step_size)  # (B,)
    backward = proposal_log_density(x, x_prop, grad_prop, step_size)  # (B,)
    return torch.clamp(log_p_prop - log_p + backward - forward, max=0.0)


def mala_step(
    state: LangevinState, log_prob: LogProb, step_size: float, generator: torch.Generator
) -> LangevinState:
    """One MALA step: propose by ULA, accept with :math:`\\min\\big(1, \\frac{p(x') q(x \\mid x')}{p(x) q(x' \\mid x)}\\big)`.

    Eq. {eq}`eq-mala-acceptance`: Metropolis–Hastings ({ref}`sec-mcmc`) with the
    Langevin proposal, so :math:`p` is stationary exactly, for any step size. Per chain,
    the noise ``torch.randn(x.shape)`` is drawn first, then one uniform number
    ``torch.rand(n_chains)``.

    Parameters
    ----------
    state : LangevinState
    log_prob : callable, (n_chains, dim) -> (n_chains,)
    step_size : float
    generator : torch.Generator

    Returns
    -------
    LangevinState
        ``accepted`` says which chains moved.
    """
    x, log_p, grad, _ = _check_state(state)
    step_size = check_positive_float("step_size", step_size)
    check_generator(generator, x.device, "the chains")
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)  # (B, D)
    x_prop = x + step_size * grad + math.sqrt(2.0 * step_size) * noise  # (B, D)
    log_p_prop, grad_prop = _log_prob_and_grad(log_prob, x_prop)
    log_a = mala_log_acceptance(x, x_prop, log_p, log_p_prop, grad, grad_prop, step_size)
    u = torch.rand(x.shape[0], generator=generator, dtype=x.dtype, device=x.device)  # (B,)
    accepted = torch.log(u) < log_a  # (B,)
    keep = accepted[:, None]
    return LangevinState(
        torch.where(keep, x_prop, x),
        torch.where(accepted, log_p_prop, log_p),
        torch.where(keep, grad_prop, grad),
        accepted,
    )


_STEPS = {"ula": ula_step, "mala": mala_step}


def sample(
    log_prob: LogProb,
    x0: object,
    *,
    step_size: float,
    n_steps: int,
    method: str = "mala",
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, float]:
    """Run ``n_steps`` of ULA or MALA from ``x0`` and return every state and the acceptance rate.

    Explained in {ref}`sec-langevin`.

    Parameters
    ----------
    log_prob : callable, Tensor of shape (n_chains, dim) -> Tensor of shape (n_chains,)
        Unnormalised, differentiable :math:`\\log p`.
    x0 : Tensor of shape (n_chains, dim)
        Starting points; the chains run on its device in its dtype.
    step_size : float
        :math:`\\eta > 0`.
    n_steps : int
        Number of transitions; the starting point is not included in the chain.
    method : {"ula", "mala"}
    seed, generator
        Exactly one (see :mod:`genphys.seeding`).

    Returns
    -------
    chain : Tensor of shape (n_chains, n_steps, dim)
        The state after each step, chains first (the layout of every sampler and every
        diagnostic in :mod:`genphys.mcmc`): ``chain[:, t]`` holds the states after step
        ``t + 1`` and ``chain[..., i]`` is the series of coordinate ``i``.
    acceptance_rate : float
        The fraction of accepted moves over all steps and chains (1.0 for ULA).

    Raises
    ------
    SamplerDivergedError
        At the first step where a position, :math:`\\log p` or its gradient is NaN or
        infinite (ULA), or where a proposal's is (MALA); the message names the step.
    """
    _check_callable(log_prob)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}. Got {method!r} instead.")
    step_size = check_positive_float("step_size", step_size)
    n_steps = check_positive_int("n_steps", n_steps)
    state = init(log_prob, x0)
    x = state.position
    g = make_generator(seed, generator, device=x.device)
    check_generator(g, x.device)
    step = _STEPS[method]
    chain = torch.empty(
        (x.shape[0], n_steps, *x.shape[1:]), dtype=x.dtype, device=x.device
    )  # (B, T, D)
    n_accepted = torch.zeros((), dtype=torch.float64, device=x.device)
    for t in range(n_steps):
        try:
            new = step(state, log_prob, step_size, g)
            bad = _first_bad(new.position, new.log_prob[:, None], new.grad)
            if bad is not None:
                raise FloatingPointError(
                    f"Got x = {new.position[bad].tolist()}, log_prob = "
                    f"{float(new.log_prob[bad])} (chain {bad}) instead."
                )
        except FloatingPointError as exc:
            raise SamplerDivergedError(
                f"{method.upper()} produced NaN or infinity at step {t + 1} of {n_steps}; "
                f"lower step_size (now {step_size}) or check log_prob. {exc}",
                step=t + 1,
            ) from None
        state = new
        chain[:, t] = state.position
        n_accepted += state.accepted.sum()
    return chain, float(n_accepted) / (n_steps * x.shape[0])


def ula_stationary_variance(variance: float, step_size: float) -> float:
    """:math:`s^2 / (1 - \\eta / (2 s^2))`: the variance ULA samples for the target :math:`\\mathcal N(0, s^2)`.

    Eq. {eq}`eq-ula-variance`; ULA diverges for :math:`\\eta \\ge 2 s^2`.

    Parameters
    ----------
    variance : float
        :math:`s^2 > 0`.
    step_size : float
        :math:`0 < \\eta < 2 s^2`.

    Returns
    -------
    float
    """
    variance = check_positive_float("variance", variance)
    step_size = check_positive_float("step_size", step_size)
    if step_size >= 2.0 * variance:
        raise ValueError(
            f"step_size must be < 2 * variance = {2 * variance} for ULA to be stable. "
            f"Got {step_size} instead."
        )
    return variance / (1.0 - step_size / (2.0 * variance))
