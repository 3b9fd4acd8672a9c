"""Score matching (Hyvärinen 2005) and denoising score matching (Vincent 2011) for continuous energies.

Explained in {ref}`sec-without-sampling`. The score :math:`s_\\theta(x) = \\nabla_x \\log p_\\theta(x)
= -\\nabla_x E_\\theta(x)` does not depend on :math:`Z`. Integration by parts turns the Fisher
divergence :math:`\\tfrac12 \\mathbb E_{p}|s_\\theta - \\nabla \\log p|^2` into

.. math::

    J(\\theta) = \\mathbb E_{p}\\Big[\\tfrac12 |s_\\theta(x)|^2 + \\nabla_x \\cdot s_\\theta(x)\\Big]
    + \\text{const},

which needs only samples of :math:`p` (:func:`score_matching_loss`; the Laplacian by
autograd, one backward pass per dimension, so for low dimensions). Denoising score
matching replaces it by the regression
:math:`\\tfrac12\\mathbb E|s_\\theta(x + \\sigma\\epsilon) + \\epsilon/\\sigma|^2`
(:func:`denoising_score_matching_loss`), which fits the score of the data blurred by
:math:`\\mathcal N(0, \\sigma^2)`: the loss of the diffusion chapters.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._validation import as_tensor, check_positive_float, check_positive_int, describe
from .fitting import History, fit, minibatches
from .optim import Adam
from .seeding import make_generator

__all__ = [
    "denoising_score_matching_loss",
    "hyvarinen_terms",
    "model_score",
    "score_matching_loss",
    "train_score_matching",
]

Energy = Callable[[torch.Tensor], torch.Tensor]


def _points(x: object) -> torch.Tensor:
    dtype = x.dtype if isinstance(x, torch.Tensor) and x.is_floating_point() else None
    return as_tensor("x", x, ndim=2, dtype=dtype)


def _check_energy(energy: object) -> Energy:
    if not callable(energy):
        raise TypeError(
            f"energy must be callable (x of shape (B, D) -> (B,)). Got {describe(energy)} instead."
        )
    return energy


def _energies(energy: Energy, x: torch.Tensor) -> torch.Tensor:
    e = energy(x)
    if not isinstance(e, torch.Tensor) or e.shape != (x.shape[0],):
        got = tuple(e.shape) if isinstance(e, torch.Tensor) else describe(e)
        raise ValueError(
            f"energy must return one value per row, shape ({x.shape[0]},). Got {got} instead."
        )
    return e


def model_score(energy: Energy, x: object, *, create_graph: bool = False) -> torch.Tensor:
    """:math:`s_\\theta(x) = -\\nabla_x E_\\theta(x)`, by autograd.

    Parameters
    ----------
    energy : callable, Tensor of shape (B, D) -> Tensor of shape (B,)
    x : Tensor of shape (B, D)
    create_graph : bool
        Keep the graph (for a loss that is differentiated again).

    Returns
    -------
    Tensor of shape (B, D)
    """
    energy = _check_energy(energy)
    x = _points(x).detach().requires_grad_(True)
    e = _energies(energy, x)
    (grad,) = torch.autograd.grad(e.sum(), x, create_graph=create_graph)
    return -grad


def hyvarinen_terms(energy: Energy, x: object) -> torch.Tensor:
    """Per-sample :math:`\\frac12|s_\\theta(x)|^2 + \\nabla_x \\cdot s_\\theta(x)`, with :math:`s_\\theta = -\\nabla_x E_\\theta`.

    The divergence of the score (minus the Laplacian of the energy) is computed exactly with
    one extra backward pass per dimension. Differentiable with respect to the parameters of
    ``energy``.

    Parameters
    ----------
    energy : callable, Tensor of shape (B, D) -> Tensor of shape (B,)
    x : Tensor of shape (B, D)

    Returns
    -------
    Tensor of shape (B,)
    """
    energy = _check_energy(energy)
    x = _points(x).detach().requires_grad_(True)
    e = _energies(energy, x)
    s = -_grad_or_zero(e.sum(), x)  # (B, D)
    divergence = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)  # (B,)
    for d in range(x.shape[1]):
        second = _grad_or_zero(s[:, d].sum(), x)  # (B, D)
        divergence = divergence + second[:, d]
    return 0.5 * (s**2).sum(-1) + divergence


def _grad_or_zero(value: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """:math:`\\partial\\, \\mathrm{value} / \\partial x` with a graph, or zeros where it does not depend on ``x``.

    A linear energy :math:`E = w^\\top x` has a constant score: its derivative has no path
    back to ``x`` (or no graph at all), and the Laplacian term is exactly zero.
    """
    if not value.requires_grad:
        return torch.zeros_like(x)
    (grad,) = torch.autograd.grad(value, x, create_graph=True, allow_unused=True)
    return torch.zeros_like(x) if grad is None else grad


def score_matching_loss(energy: Energy, x: object) -> torch.Tensor:
    """Hyvärinen's objective :math:`J = \\frac1B\\sum_k [\\frac12|s_\\theta(x_k)|^2 + \\nabla \\cdot s_\\theta(x_k)]`.

    The mean of :func:`hyvarinen_terms`; it equals the Fisher divergence from the data up to
    a constant that does not depend on :math:`\\theta`.

    Parameters
    ----------
    energy : callable, Tensor of shape (B, D) -> Tensor of shape (B,)
    x : Tensor of shape (B, D)
        Samples of the data.

    Returns
    -------
    Tensor of shape ()
    """
    return hyvarinen_terms(energy, x).mean()


def denoising_score_matching_loss(
    energy: Energy,
    x: object,
    sigma: float,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Denoising score matching :math:`\\frac1B\\sum_k \\frac12|s_\\theta(x_k + \\sigma\\epsilon_k) + \\epsilon_k/\\sigma|^2`.

    Its minimiser is the score of the data convolved with :math:`\\mathcal N(0, \\sigma^2 I)`.

    Parameters
    ----------
    energy : callable, Tensor of shape (B, D) -> Tensor of shape (B,)
    x : Tensor of shape (B, D)
    sigma : float
        The noise level, > 0.
    seed, generator
        Exactly one (:mod:`genphys.seeding`): the noise :math:`\\epsilon`.

    Returns
    -------
    Tensor of shape ()
    """
    energy = _check_energy(energy)
    x = _points(x).detach()
    sigma = check_positive_float("sigma", sigma)
    g = make_generator(seed, generator, device=x.device)
    eps = torch.randn(x.shape, generator=g, dtype=x.dtype, device=x.device)  # (B, D)
    s = model_score(energy, x + sigma * eps, create_graph=True)  # (B, D)
    return 0.5 * ((s + eps / sigma) ** 2).sum(-1).mean()


def train_score_matching(
    model: torch.nn.Module,
    energy: Energy,
    data: object,
    *,
    n_epochs: int,
    method: str = "exact",
    sigma: float = 0.1,
    batch_size: int = 100,
    learning_rate: float = 1e-2,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> History:
    """Fit the parameters of ``model`` by Adam on :func:`score_matching_loss` or its denoising version.

    Parameters
    ----------
    model : nn.Module
        Holds the parameters of ``energy``.
    energy : callable, Tensor of shape (B, D) -> Tensor of shape (B,)
    data : Tensor of shape (n_samples, D)
    n_epochs : int
    method : {"exact", "denoising"}
    sigma : float
        The noise level of the denoising loss.
    batch_size : int
    learning_rate : float
    seed, generator
        Exactly one (:mod:`genphys.seeding`): shuffling and denoising noise.
    progress : bool

    Returns
    -------
    genphys.fitting.History
        Column ``loss``.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be an nn.Module. Got {describe(model)} instead.")
    energy = _check_energy(energy)
    x = _points(data)
    n_epochs = check_positive_int("n_epochs", n_epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    sigma = check_positive_float("sigma", sigma)
    if method not in ("exact", "denoising"):
        raise ValueError(f"method must be 'exact' or 'denoising'. Got {method!r} instead.")
    g = make_generator(seed, generator, device=x.device)
    optimizer = Adam(model.parameters(), lr=learning_rate)

    def step(batch: torch.Tensor) -> dict[str, object]:
        if method == "exact":
            loss = score_matching_loss(energy, batch)
        else:
            loss = denoising_score_matching_loss(energy, batch, sigma, generator=g)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach()}

    return fit(
        step,
        lambda epoch: minibatches(x, batch_size, generator=g),
        n_epochs=n_epochs,
        parameters=model,
        progress=progress,
        desc=f"{method} score matching",
        hint=f"try a smaller learning_rate (now {learning_rate})",
    )
