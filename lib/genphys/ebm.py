"""Continuous energy-based models :math:`p_\\theta(x) = e^{-E_\\theta(x)} / Z_\\theta`: networks, exact 2D references, training.

Explained in {ref}`sec-langevin`.

* :class:`EnergyMLP` (2D data) and :class:`EnergyCNN` (8 x 8 images) -- energy networks
  :math:`E_\\theta(x) = f_\\theta(x) + c \\lVert x \\rVert^2`; the fixed quadratic term keeps
  :math:`e^{-E}` normalisable whatever the network does far from the data;
* :func:`exact_log_partition`, :func:`exact_log_likelihood`,
  :func:`exact_log_likelihood_gradient` -- quadrature on a :class:`genphys.grid.Grid` in 2D,
  the continuous counterpart of enumeration;
* :func:`estimate_log_likelihood_gradient` -- the same gradient with the model term estimated
  from samples, eq. {eq}`eq-ebm-gradient`;
* :func:`contrastive_loss`, :class:`ReplayBuffer`, :func:`langevin_sampler`,
  :func:`heuristic_sampler` and :func:`train` -- maximum-likelihood training with short-run
  Langevin chains and a replay buffer {cite}`du2019implicit`, on the shared training loop
  :func:`genphys.fitting.fit`;
* :func:`load_digits_continuous` -- the bundled 8 x 8 digits, grey levels scaled to [-1, 1].
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from contextlib import contextmanager

import torch
from torch import nn

from . import langevin
from ._validation import (
    as_tensor,
    check_float_dtype,
    check_interval,
    check_positive_float,
    check_positive_int,
    check_probability,
    describe,
)
from .enumeration import CHUNK_ELEMENTS, chunked_logsumexp, code_ranges
from .fitting import History, fit, minibatches
from .grid import Grid
from .seeding import make_generator

__all__ = [
    "EnergyCNN",
    "EnergyMLP",
    "ReplayBuffer",
    "contrastive_loss",
    "estimate_log_likelihood_gradient",
    "exact_log_likelihood",
    "exact_log_likelihood_gradient",
    "exact_log_partition",
    "heuristic_sampler",
    "langevin_sampler",
    "load_digits_continuous",
    "log_prob_of",
    "train",
]

#: A sampler for training: ``(x_init, log_prob, generator) -> x_fake``, shapes (n, dim).
Sampler = Callable[[torch.Tensor, Callable, torch.Generator], torch.Tensor]


# ------------------------------------------------------------------- networks
class EnergyMLP(nn.Module):
    """:math:`E_\\theta(x) = f_\\theta(x) + c \\lVert x \\rVert^2` with :math:`f_\\theta` an MLP with SiLU units.

    Parameters
    ----------
    dim : int
        Dimension of :math:`x` (2 for the grid references).
    hidden : int
        Width of the hidden layers.
    n_layers : int
        Number of hidden layers.
    quadratic : float
        :math:`c \\ge 0`; with :math:`c > 0` and a bounded-slope network :math:`Z` is finite.
    dtype : torch.dtype
    seed, generator
        Exactly one: the initial weights (see :mod:`genphys.seeding`).
    """

    def __init__(
        self,
        dim: int = 2,
        hidden: int = 64,
        n_layers: int = 2,
        *,
        quadratic: float = 0.05,
        dtype: torch.dtype = torch.float64,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.dim = check_positive_int("dim", dim)
        hidden = check_positive_int("hidden", hidden)
        n_layers = check_positive_int("n_layers", n_layers)
        dtype = check_float_dtype("dtype", dtype)
        self.quadratic = check_positive_float("quadratic", quadratic, allow_zero=True)
        sizes = [self.dim] + [hidden] * n_layers
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            layers += [nn.Linear(a, b, dtype=dtype), nn.SiLU()]
        layers.append(nn.Linear(sizes[-1], 1, dtype=dtype))
        self.net = nn.Sequential(*layers)
        _init_weights(self, make_generator(seed, generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Energies :math:`E_\\theta(x)`, shape (n,), for ``x`` of shape (n, dim)."""
        _check_input(x, self.dim, self)
        return self.net(x).squeeze(-1) + self.quadratic * (x**2).sum(1)  # (B,)


class EnergyCNN(nn.Module):
    """:math:`E_\\theta(x) = f_\\theta(x) + c \\lVert x \\rVert^2` for 8 x 8 images, :math:`f_\\theta` a small CNN.

    Three 3 x 3 convolutions (the last two with stride 2: 8 -> 4 -> 2) with SiLU units, then
    a linear layer to one number.

    Parameters
    ----------
    channels : int
        Channels of the first convolution (doubled by the second and third).
    quadratic : float
        :math:`c \\ge 0`.
    dtype : torch.dtype
    seed, generator
        Exactly one: the initial weights.
    """

    side = 8

    def __init__(
        self,
        channels: int = 16,
        *,
        quadratic: float = 0.01,
        dtype: torch.dtype = torch.float32,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        c = check_positive_int("channels", channels)
        self.dim = self.side * self.side
        self.quadratic = check_positive_float("quadratic", quadratic, allow_zero=True)
        self.net = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1, dtype=dtype),  # (B, c, 8, 8)
            nn.SiLU(),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, dtype=dtype),  # (B, 2c, 4, 4)
            nn.SiLU(),
            nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1, dtype=dtype),  # (B, 2c, 2, 2)
            nn.SiLU(),
            nn.Flatten(),  # (B, 8c)
            nn.Linear(8 * c, 1, dtype=dtype),
        )
        _init_weights(self, make_generator(seed, generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Energies :math:`E_\\theta(x)`, shape (n,), for flattened images ``x`` of shape (n, 64)."""
        _check_input(x, self.dim, self)
        images = x.reshape(-1, 1, self.side, self.side)  # (B, 1, 8, 8)
        return self.net(images).squeeze(-1) + self.quadratic * (x**2).sum(1)  # (B,)


def _init_weights(module: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default (Kaiming-uniform) ranges, drawn from ``generator``."""
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Linear | nn.Conv2d):
                fan_in = layer.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                for p in (layer.weight, layer.bias):
                    u = torch.rand(p.shape, generator=generator, dtype=p.dtype)
                    p.copy_((2 * u - 1) * bound)


def _check_input(x: object, dim: int, model: nn.Module) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != dim:
        raise ValueError(f"x must be a tensor of shape (n, {dim}). Got {describe(x)} instead.")
    p = next(model.parameters())
    if x.dtype != p.dtype or x.device != p.device:
        raise TypeError(
            f"x must have the model's dtype {p.dtype} and device {p.device}. "
            f"Got {describe(x)} instead."
        )


def _check_model(model: object) -> nn.Module:
    if not isinstance(model, nn.Module) or not hasattr(model, "dim"):
        raise TypeError(
            f"model must be an energy network (EnergyMLP, EnergyCNN or an nn.Module with a "
            f"`dim` attribute returning energies of shape (n,)). Got {describe(model)} instead."
        )
    return model


def log_prob_of(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The unnormalised log-density :math:`\\log f(x) = -E_\\theta(x)` as a callable for :mod:`genphys.langevin`."""
    _check_model(model)
    return lambda x: -model(x)


# --------------------------------------------------------- exact references (2D)
def _check_grid(grid: object, model: nn.Module) -> Grid:
    if not isinstance(grid, Grid) or grid.dim != model.dim:
        raise TypeError(
            f"grid must be a genphys.grid.Grid of dim {model.dim}. Got {describe(grid)} instead."
        )
    return grid


def _grid_points(grid: Grid, model: nn.Module) -> torch.Tensor:
    p = next(model.parameters())
    return grid.points.to(device=p.device, dtype=p.dtype)  # (C, D)


def exact_log_partition(model: nn.Module, grid: Grid) -> torch.Tensor:
    """:math:`\\log Z_\\theta = \\log \\int e^{-E_\\theta(x)} dx` by the midpoint rule on ``grid`` (differentiable).

    Parameters
    ----------
    model : EnergyMLP with dim 1 or 2
    grid : genphys.grid.Grid
        Its box must hold essentially all the mass of :math:`e^{-E}`. Its points are cast
        to the model's dtype. The cells are evaluated in chunks of
        ``CHUNK_ELEMENTS // widest layer`` (:data:`genphys.enumeration.CHUNK_ELEMENTS`) and
        the gradient is accumulated chunk by chunk, so memory stays about that of one
        chunk (tens of MiB) on any grid.

    Returns
    -------
    Tensor of shape ()
    """
    model = _check_model(model)
    grid = _check_grid(grid, model)
    points = _grid_points(grid, model)  # (C, D), in the model's dtype whatever the grid's
    widest = max(max(p.shape) if p.dim() else 1 for p in model.parameters())
    chunks = code_ranges(points.shape[0], CHUNK_ELEMENTS // widest)

    def log_weight(rows: tuple[int, int]) -> torch.Tensor:
        return -model(points[rows[0] : rows[1]])  # (S,)

    log_sum = chunked_logsumexp(log_weight, chunks, list(model.parameters()))
    return log_sum + math.log(grid.cell_volume)


def exact_log_likelihood(model: nn.Module, x: object, grid: Grid) -> torch.Tensor:
    """:math:`\\frac1n \\sum_k \\log p_\\theta(x^{(k)}) = -\\frac1n \\sum_k E_\\theta(x^{(k)}) - \\log Z_\\theta` (differentiable).

    Parameters
    ----------
    model : EnergyMLP
    x : Tensor of shape (n, dim)
    grid : genphys.grid.Grid

    Returns
    -------
    Tensor of shape ()
        Mean log-likelihood in nats per data point.
    """
    model = _check_model(model)
    x = _data(x, model)
    return -model(x).mean() - exact_log_partition(model, grid)


def _named_gradient(model: nn.Module, scalar: torch.Tensor) -> dict[str, torch.Tensor]:
    names, params = zip(*model.named_parameters(), strict=True)
    grads = torch.autograd.grad(scalar, params)
    return {n: g.detach() for n, g in zip(names, grads, strict=True)}


def exact_log_likelihood_gradient(
    model: nn.Module, x: object, grid: Grid
) -> dict[str, torch.Tensor]:
    """:math:`\\nabla_\\theta \\frac1n \\sum_k \\log p_\\theta(x^{(k)}) = -\\langle \\nabla_\\theta E \\rangle_\\text{data} + \\langle \\nabla_\\theta E \\rangle_\\text{model}`, model term by quadrature.

    Eq. {eq}`eq-ebm-gradient` with :math:`\\langle g \\rangle_\\text{model} = \\sum_c P_c\\, g(x_c)`, the
    cell probabilities :math:`P_c` of :meth:`genphys.grid.Grid.cell_probabilities`.

    Parameters
    ----------
    model : EnergyMLP
    x : Tensor of shape (n, dim)
    grid : genphys.grid.Grid

    Returns
    -------
    dict of str to Tensor
        One gradient per named parameter, shaped like it.
    """
    model = _check_model(model)
    grid = _check_grid(grid, model)
    x = _data(x, model)
    energy_grid = model(_grid_points(grid, model))  # (C,)
    weights = torch.softmax(-energy_grid.detach(), 0)  # (C,) cell probabilities P_c
    return _named_gradient(model, -model(x).mean() + (weights * energy_grid).sum())


def estimate_log_likelihood_gradient(
    model: nn.Module, x: object, x_model: object
) -> dict[str, torch.Tensor]:
    """:math:`-\\langle \\nabla_\\theta E \\rangle_\\text{data} + \\frac1m \\sum_j \\nabla_\\theta E(\\tilde x^{(j)})`, with samples :math:`\\tilde x \\sim p_\\theta`.

    Eq. {eq}`eq-ebm-gradient` with the model term estimated from ``x_model`` (e.g. the last
    states of Langevin chains); the same signature as :func:`exact_log_likelihood_gradient`
    with the grid replaced by samples.

    Parameters
    ----------
    model : nn.Module
    x : Tensor of shape (n, dim)
        Data.
    x_model : Tensor of shape (m, dim)
        Samples of the model.

    Returns
    -------
    dict of str to Tensor
    """
    model = _check_model(model)
    x = _data(x, model)
    x_model = _data(x_model, model, "x_model")
    return _named_gradient(model, -model(x).mean() + model(x_model).mean())


def _data(x: object, model: nn.Module, name: str = "x") -> torch.Tensor:
    p = next(model.parameters())
    x = as_tensor(name, x, dtype=p.dtype, device=p.device)
    if x.dim() != 2 or x.shape[1] != model.dim:
        raise ValueError(
            f"{name} must have shape (n, {model.dim}). Got shape {tuple(x.shape)} instead."
        )
    return x


# ------------------------------------------------------------------ training
def contrastive_loss(
    energy_real: torch.Tensor, energy_fake: torch.Tensor, alpha: float
) -> torch.Tensor:
    """:math:`\\langle E \\rangle_\\text{data} - \\langle E \\rangle_\\text{samples} + \\alpha\\,(\\langle E^2 \\rangle_\\text{data} + \\langle E^2 \\rangle_\\text{samples})`.

    Eq. {eq}`eq-ebm-loss`. With :math:`\\alpha = 0` and the samples held fixed, its gradient is
    minus the estimated log-likelihood gradient, eq. {eq}`eq-ebm-gradient`; the
    :math:`\\alpha` term keeps the energies near zero {cite}`du2019implicit`.

    Parameters
    ----------
    energy_real : Tensor of shape (n,)
        :math:`E_\\theta` of data points.
    energy_fake : Tensor of shape (m,)
        :math:`E_\\theta` of samples (detached from the sampler).
    alpha : float
        Regularisation strength, :math:`\\ge 0`.

    Returns
    -------
    Tensor of shape ()
    """
    alpha = check_positive_float("alpha", alpha, allow_zero=True)
    return (
        energy_real.mean()
        - energy_fake.mean()
        + alpha * ((energy_real**2).mean() + (energy_fake**2).mean())
    )


class ReplayBuffer:
    """Persistent Langevin chains: most chains continue, a fraction restarts from uniform noise.

    Parameters
    ----------
    size : int
        Number of stored samples.
    dim : int
    low, high : float
        The box :math:`[\\text{low}, \\text{high}]^\\text{dim}` of the uniform noise.
    dtype : torch.dtype
    device : torch.device or str
    seed, generator
        Exactly one: the initial (uniform) content.

    Attributes
    ----------
    samples : Tensor of shape (size, dim)
    """

    def __init__(
        self,
        size: int,
        dim: int,
        *,
        low: float = -1.0,
        high: float = 1.0,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = "cpu",
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ):
        self.size = check_positive_int("size", size)
        self.dim = check_positive_int("dim", dim)
        self.low, self.high = check_interval(low, high)
        dtype = check_float_dtype("dtype", dtype)
        g = make_generator(seed, generator, device=device)
        self.samples = self.noise(self.size, g, dtype=dtype, device=device)  # (S, D)

    def noise(self, n: int, generator: torch.Generator, *, dtype=None, device=None) -> torch.Tensor:
        """``n`` points uniform in the box, shape (n, dim)."""
        dtype = dtype or self.samples.dtype
        device = device or self.samples.device
        u = torch.rand(n, self.dim, generator=generator, dtype=dtype, device=device)  # (n, D)
        return self.low + (self.high - self.low) * u

    def draw(
        self, n: int, reinit_fraction: float, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Starting points for ``n`` chains: stored samples, each replaced by noise with probability ``reinit_fraction``.

        Returns
        -------
        x_init : Tensor of shape (n, dim)
        index : Tensor of shape (n,)
            Where to :meth:`store` the chains' end points.
        """
        n = check_positive_int("n", n)
        reinit_fraction = check_probability("reinit_fraction", reinit_fraction)
        device = self.samples.device
        index = torch.randint(self.size, (n,), generator=generator, device=device)  # (n,)
        fresh = torch.rand(n, generator=generator, device=device) < reinit_fraction  # (n,)
        noise = self.noise(n, generator)  # (n, D)
        return torch.where(fresh[:, None], noise, self.samples[index]), index

    def store(self, index: torch.Tensor, x: torch.Tensor) -> None:
        """Write the chains' end points ``x`` (n, dim) back at ``index`` (n,)."""
        if not isinstance(index, torch.Tensor) or index.dim() != 1 or index.is_floating_point():
            raise TypeError(
                f"index must be an integer tensor of shape (n,). Got {describe(index)} instead."
            )
        if bool(((index < 0) | (index >= self.size)).any()):
            raise ValueError(
                f"index must lie in 0 ... {self.size - 1}. Got values in "
                f"[{int(index.min())}, {int(index.max())}] instead."
            )
        shape = (index.shape[0], self.dim)
        if not isinstance(x, torch.Tensor) or tuple(x.shape) != shape:
            raise ValueError(
                f"x must have shape {shape}, one point of dim {self.dim} per index. "
                f"Got {describe(x)} instead."
            )
        if x.dtype != self.samples.dtype:
            raise TypeError(
                f"x must have the buffer's dtype {self.samples.dtype}. Got dtype {x.dtype} instead."
            )
        self.samples[index] = x.detach()


@contextmanager
def _frozen(model: nn.Module):
    """Sampling needs gradients in x only: switch off those of the parameters meanwhile."""
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(flag)


def langevin_sampler(step_size: float, n_steps: int, *, method: str = "ula") -> Sampler:
    """Short-run Langevin chains for training: ``n_steps`` of :func:`genphys.langevin.ula_step` or ``mala_step``.

    A correct sampler of :math:`e^{-E}` (temperature 1) as the step size goes to zero (ULA)
    or for any step size (MALA).

    Returns
    -------
    callable ``(x_init, log_prob, generator) -> x``, shapes (n, dim)
    """
    step_size = check_positive_float("step_size", step_size)
    n_steps = check_positive_int("n_steps", n_steps)
    if method not in langevin.METHODS:
        raise ValueError(f"method must be one of {langevin.METHODS}. Got {method!r} instead.")
    step = langevin.ula_step if method == "ula" else langevin.mala_step

    def sampler(x: torch.Tensor, log_prob: Callable, generator: torch.Generator) -> torch.Tensor:
        state = langevin.init(log_prob, x)
        for _ in range(n_steps):
            state = step(state, log_prob, step_size, generator)
        return state.position

    return sampler


def heuristic_sampler(
    step_size: float = 10.0,
    n_steps: int = 60,
    *,
    noise_std: float = 0.005,
    grad_clip: float = 0.03,
    low: float = -1.0,
    high: float = 1.0,
) -> Sampler:
    """The image-EBM recipe: :math:`x \\leftarrow \\mathrm{clip}(x + \\sigma\\xi)`, then :math:`x \\leftarrow \\mathrm{clip}(x + \\eta\\, \\mathrm{clip}_{\\pm g}(\\nabla \\log f))`.

    The defaults are those of the tutorial behind Foster's chapter {cite}`lippe2022uvadlc,foster2023generative`:
    step 10, noise 0.005, gradients clipped to :math:`\\pm 0.03`, images to [-1, 1]. Read as
    Langevin dynamics (:math:`\\sigma^2 = 2\\eta T`) it samples :math:`e^{-E/T}` at
    :math:`T = \\sigma^2 / (2\\eta) \\approx 10^{-6}`: close to noisy gradient descent on :math:`E`.

    Returns
    -------
    callable ``(x_init, log_prob, generator) -> x``, shapes (n, dim)
    """
    step_size = check_positive_float("step_size", step_size)
    n_steps = check_positive_int("n_steps", n_steps)
    noise_std = check_positive_float("noise_std", noise_std, allow_zero=True)
    grad_clip = check_positive_float("grad_clip", grad_clip)
    low, high = check_interval(low, high)

    def sampler(x: torch.Tensor, log_prob: Callable, generator: torch.Generator) -> torch.Tensor:
        x = x.detach()
        for _ in range(n_steps):
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            x = torch.clamp(x + noise_std * noise, low, high)  # (B, D)
            _, grad = langevin._log_prob_and_grad(log_prob, x)
            x = torch.clamp(x + step_size * torch.clamp(grad, -grad_clip, grad_clip), low, high)
        return x

    return sampler


def train(
    model: nn.Module,
    data: object,
    *,
    sampler: Sampler,
    n_epochs: int,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    alpha: float = 0.1,
    buffer: ReplayBuffer | None = None,
    reinit_fraction: float = 0.05,
    monitor: Callable[[int], dict] | None = None,
    progress: bool = False,
    desc: str = "EBM",
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> History:
    """Maximum likelihood by Adam on :func:`contrastive_loss`, negatives from ``sampler`` started in a replay buffer.

    One step: draw chain starts from ``buffer`` (a fraction ``reinit_fraction`` fresh noise),
    run ``sampler``, store the end points back, and descend on
    :math:`\\langle E\\rangle_\\text{data} - \\langle E\\rangle_\\text{samples} + \\alpha(\\ldots)`.
    Explained in {ref}`sec-langevin`.

    Parameters
    ----------
    model : EnergyMLP or EnergyCNN
    data : Tensor of shape (n, dim)
    sampler : callable
        From :func:`langevin_sampler` or :func:`heuristic_sampler`.
    n_epochs, batch_size : int
    learning_rate : float
    alpha : float
        Weight of the energy regulariser, :math:`\\ge 0`.
    buffer : ReplayBuffer, optional
        Default: 8192 points uniform in the data's bounding box widened by 10 %.
    reinit_fraction : float
        In [0, 1].
    monitor, progress, desc
        As in :func:`genphys.fitting.fit`.
    seed, generator
        Exactly one: buffer, mini-batches and Langevin noise.

    Returns
    -------
    History
        Columns ``loss``, ``energy_data``, ``energy_samples``; ``extras["buffer"]`` is the buffer.

    Raises
    ------
    genphys.fitting.TrainingDivergedError
        When the loss, a parameter or the samples become non-finite (the samples are
        recorded as ``samples_finite``).
    """
    model = _check_model(model)
    x = _data(data, model, "data")
    if not callable(sampler):
        raise TypeError(f"sampler must be callable. Got {describe(sampler)} instead.")
    batch_size = check_positive_int("batch_size", batch_size)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    alpha = check_positive_float("alpha", alpha, allow_zero=True)
    reinit_fraction = check_probability("reinit_fraction", reinit_fraction)
    g = make_generator(seed, generator, device=x.device)
    if buffer is None:
        lo, hi = float(x.min()), float(x.max())
        pad = 0.05 * (hi - lo)
        buffer = ReplayBuffer(
            8192,
            model.dim,
            low=lo - pad,
            high=hi + pad,
            dtype=x.dtype,
            device=x.device,
            generator=g,
        )
    elif not isinstance(buffer, ReplayBuffer) or buffer.dim != model.dim:
        raise TypeError(
            f"buffer must be a ReplayBuffer of dim {model.dim}. Got {describe(buffer)} instead."
        )
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    log_prob = log_prob_of(model)

    def step(batch: torch.Tensor) -> dict[str, float]:
        x_init, index = buffer.draw(batch.shape[0], reinit_fraction, g)
        with _frozen(model):
            try:
                x_fake = sampler(x_init, log_prob, g)  # (B, D)
            except FloatingPointError:
                return {"samples_finite": math.nan}
        buffer.store(index, x_fake)
        energy_real, energy_fake = model(batch), model(x_fake)  # (B,), (B,)
        loss = contrastive_loss(energy_real, energy_fake, alpha)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {
            "loss": loss.detach(),
            "energy_data": energy_real.detach().mean(),
            "energy_samples": energy_fake.detach().mean(),
        }

    history = fit(
        step,
        lambda epoch: minibatches(x, batch_size, generator=g),
        n_epochs=n_epochs,
        parameters=model,
        monitor=monitor,
        progress=progress,
        desc=desc,
        hint="lower the learning rate or the Langevin step size, or raise alpha",
    )
    history.extras["buffer"] = buffer
    return history


# ---------------------------------------------------------------------- data
def load_digits_continuous(
    *, test_fraction: float = 0.2, seed: int = 0, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """The bundled 8 x 8 digits with grey levels :math:`2\\,\\text{pixel}/16 - 1 \\in [-1, 1]`.

    The split is that of :func:`genphys.data.digits_split` (stratified, 1438 / 359 images by
    default), so it matches the binarised digits of the RBM chapters.

    Returns
    -------
    x_train : Tensor of shape (n_train, 64)
    x_test : Tensor of shape (n_test, 64)
    """
    from . import data

    index_train, index_test = data.digits_split(test_fraction=test_fraction, seed=seed)
    pixels = data._digits_bunch().data / 8.0 - 1.0  # (1797, 64), in [-1, 1]
    to = lambda rows: torch.as_tensor(pixels[rows], dtype=dtype)
    return to(index_train), to(index_test)
