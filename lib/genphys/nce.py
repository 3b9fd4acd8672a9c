"""Noise-contrastive estimation (Gutmann & Hyvärinen 2010): log Z learned as one more parameter.

Explained in {ref}`sec-without-sampling`. The model is :math:`\\log p_\\theta(x) = -E_\\theta(x) - c`
with a free parameter :math:`c` in place of :math:`\\log Z`. A logistic classifier with logit

.. math::

    G(u) = \\log p_\\theta(u) - \\log q(u) - \\log \\nu

separates :math:`T_d` data points from :math:`T_n = \\nu T_d` draws of a known noise density
:math:`q`; the loss (:func:`nce_loss`)

.. math::

    \\ell(\\theta, c) = -\\frac1{T_d}\\sum_t \\log\\sigma(G(x_t))
    - \\frac{\\nu}{T_n}\\sum_t \\log\\sigma(-G(y_t))

is minimised, in the limit of many samples, by the data density itself, with :math:`c = \\log Z`:
the normalisation cannot be absorbed elsewhere, because the classifier compares against a
normalised :math:`q`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import (
    as_tensor,
    check_binary,
    check_points,
    check_positive_float,
    check_positive_int,
    check_same_placement,
    describe,
    first_parameter,
)
from .fitting import History, fit, minibatches
from .optim import Adam
from .seeding import make_generator

__all__ = [
    "BernoulliNoise",
    "GaussianNoise",
    "NCEModel",
    "nce_loss",
    "train_nce",
]


def nce_loss(
    log_p_data: object, log_q_data: object, log_p_noise: object, log_q_noise: object
) -> torch.Tensor:
    """:math:`-\\overline{\\log\\sigma(G(x))} - \\nu\\,\\overline{\\log\\sigma(-G(y))}`, :math:`G = \\log p - \\log q - \\log\\nu`.

    :math:`\\nu = T_n / T_d` is read off the lengths. Stable for any log-densities
    (``logsigmoid``, never :math:`e^{G}`).

    Parameters
    ----------
    log_p_data, log_q_data : Tensor of shape (T_d,)
        Model and noise log-densities at the data points.
    log_p_noise, log_q_noise : Tensor of shape (T_n,)
        The same at the noise samples.

    Returns
    -------
    Tensor of shape ()
    """
    tensors = {}
    for name, value in (
        ("log_p_data", log_p_data),
        ("log_q_data", log_q_data),
        ("log_p_noise", log_p_noise),
        ("log_q_noise", log_q_noise),
    ):
        dtype = value.dtype if isinstance(value, torch.Tensor) else None
        tensors[name] = as_tensor(name, value, ndim=1, dtype=dtype)
    p_d, q_d, p_n, q_n = tensors.values()
    check_same_placement("log_p_data", p_d, log_q_data=q_d, log_p_noise=p_n, log_q_noise=q_n)
    if q_d.shape != p_d.shape or q_n.shape != p_n.shape:
        raise ValueError(
            "log_q_data must match log_p_data and log_q_noise must match log_p_noise in shape. "
            f"Got {tuple(p_d.shape)}, {tuple(q_d.shape)}, {tuple(p_n.shape)}, "
            f"{tuple(q_n.shape)} instead."
        )
    log_nu = math.log(p_n.shape[0] / p_d.shape[0])
    g_data = p_d - q_d - log_nu  # (T_d,)
    g_noise = p_n - q_n - log_nu  # (T_n,)
    nu = p_n.shape[0] / p_d.shape[0]
    return -F.logsigmoid(g_data).mean() - nu * F.logsigmoid(-g_noise).mean()


class NCEModel(nn.Module):
    """:math:`\\log p_\\theta(x) = -E_\\theta(x) - c`, the energy's parameters plus :math:`c` (``log_z``).

    Parameters
    ----------
    model : nn.Module
        Holds the parameters of ``energy`` (registered as a submodule).
    energy : callable, Tensor of shape (B, D) -> Tensor of shape (B,)
        E.g. ``rbm.free_energy``.
    log_z : float
        The starting value of :math:`c`.
    """

    def __init__(
        self,
        model: nn.Module,
        energy: Callable[[torch.Tensor], torch.Tensor],
        *,
        log_z: float = 0.0,
    ) -> None:
        super().__init__()
        first = first_parameter("model", model)
        if not callable(energy):
            raise TypeError(f"energy must be callable. Got {describe(energy)} instead.")
        self.model = model
        self.energy = energy
        self.log_z = nn.Parameter(
            torch.tensor(float(log_z), dtype=first.dtype, device=first.device)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\log p_\\theta(x) = -E_\\theta(x) - c`, shape (B,)."""
        return -self.energy(x) - self.log_z


class BernoulliNoise:
    """Independent Bernoulli pixels with means ``p``: :math:`q(x) = \\prod_i p_i^{x_i}(1 - p_i)^{1 - x_i}`.

    Parameters
    ----------
    p : Tensor of shape (D,)
        In (0, 1); e.g. the clipped data means.
    """

    def __init__(self, p: object) -> None:
        dtype = p.dtype if isinstance(p, torch.Tensor) else None
        self.p = as_tensor("p", p, ndim=1, dtype=dtype)
        if bool(((self.p <= 0) | (self.p >= 1)).any()):
            raise ValueError(f"p must lie strictly between 0 and 1. Got {self.p.tolist()} instead.")

    @property
    def dim(self) -> int:
        """:math:`D`, the number of pixels."""
        return self.p.shape[0]

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\log q(x)`, shape (B,), for ``x`` of shape (B, D) and the dtype of ``p``."""
        x = check_points("x", x, width=self.dim, dtype=self.p.dtype, owner="the noise")
        check_binary("x", x)
        return x @ torch.log(self.p) + (1 - x) @ torch.log1p(-self.p)

    def sample(
        self, n: int, *, seed: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``n`` draws, shape (n, D); ``seed`` or ``generator`` (:mod:`genphys.seeding`)."""
        g = make_generator(seed, generator, device=self.p.device)
        probs = self.p.expand(check_positive_int("n", n), -1)
        return torch.bernoulli(probs, generator=g)


class GaussianNoise:
    """:math:`q = \\mathcal N(\\mu, \\operatorname{diag} s^2)`.

    Parameters
    ----------
    mean, std : Tensor of shape (D,)
    """

    def __init__(self, mean: object, std: object) -> None:
        dtype = mean.dtype if isinstance(mean, torch.Tensor) else None
        self.mean = as_tensor("mean", mean, ndim=1, dtype=dtype)
        self.std = as_tensor("std", std, shape=(self.mean.shape[0],), dtype=self.mean.dtype)
        if bool((self.std <= 0).any()):
            raise ValueError(f"std must be positive. Got {self.std.tolist()} instead.")

    @property
    def dim(self) -> int:
        """:math:`D`, the dimension of the Gaussian."""
        return self.mean.shape[0]

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\log q(x)`, shape (B,), for ``x`` of shape (B, D) and the dtype of ``mean``."""
        x = check_points("x", x, width=self.dim, dtype=self.mean.dtype, owner="the noise")
        z = (x - self.mean) / self.std  # (B, D)
        return (-0.5 * z**2 - torch.log(self.std) - 0.5 * math.log(2 * math.pi)).sum(-1)

    def sample(
        self, n: int, *, seed: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``n`` draws, shape (n, D); ``seed`` or ``generator`` (:mod:`genphys.seeding`)."""
        generator = make_generator(seed, generator, device=self.mean.device)
        n = check_positive_int("n", n)
        eps = torch.randn(
            (n, self.mean.shape[0]),
            generator=generator,
            dtype=self.mean.dtype,
            device=self.mean.device,
        )
        return self.mean + self.std * eps


def train_nce(
    model: NCEModel,
    data: object,
    noise: BernoulliNoise | GaussianNoise,
    *,
    n_epochs: int,
    noise_ratio: int = 1,
    batch_size: int = 100,
    learning_rate: float = 1e-2,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> History:
    """Fit ``model`` (its energy and :math:`c`) in place by Adam on :func:`nce_loss`.

    Each mini-batch of :math:`B` data points meets ``noise_ratio`` :math:`\\times B` fresh
    noise draws.

    Parameters
    ----------
    model : NCEModel
    data : Tensor of shape (n_samples, D)
    noise : BernoulliNoise or GaussianNoise
        Any object with ``log_prob(x)`` and ``sample(n, generator=)``.
    n_epochs : int
    noise_ratio : int
        :math:`\\nu`.
    batch_size : int
    learning_rate : float
    seed, generator
        Exactly one (:mod:`genphys.seeding`): shuffling and noise.
    progress : bool

    Returns
    -------
    genphys.fitting.History
        Columns ``loss`` and ``log_z`` (the current :math:`c`).
    """
    if not isinstance(model, NCEModel):
        raise TypeError(f"model must be an NCEModel. Got {describe(model)} instead.")
    if not (hasattr(noise, "log_prob") and hasattr(noise, "sample")):
        raise TypeError(
            f"noise must have log_prob and sample (e.g. BernoulliNoise). Got {describe(noise)} instead."
        )
    x = as_tensor("data", data, ndim=2, dtype=model.log_z.dtype, device=model.log_z.device)
    width = getattr(noise, "dim", None)
    if width is not None and width != x.shape[1]:
        raise ValueError(
            f"noise must have the dimension of the data ({x.shape[1]}). Got noise of "
            f"dimension {width} instead."
        )
    n_epochs = check_positive_int("n_epochs", n_epochs)
    noise_ratio = check_positive_int("noise_ratio", noise_ratio)
    batch_size = check_positive_int("batch_size", batch_size)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    g = make_generator(seed, generator, device=x.device)
    optimizer = Adam(model.parameters(), lr=learning_rate)

    def step(batch: torch.Tensor) -> dict[str, object]:
        y = noise.sample(noise_ratio * batch.shape[0], generator=g)  # (nu B, D)
        loss = nce_loss(model(batch), noise.log_prob(batch), model(y), noise.log_prob(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach()}

    return fit(
        step,
        lambda epoch: minibatches(x, batch_size, generator=g),
        n_epochs=n_epochs,
        parameters=model,
        monitor=lambda epoch: {"log_z": model.log_z.detach()},
        progress=progress,
        desc="noise-contrastive estimation",
        hint=f"try a smaller learning_rate (now {learning_rate}) or a noise closer to the data",
    )
