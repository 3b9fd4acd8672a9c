r"""Generative adversarial networks: the two players, their losses from logits, the game's exact value.

Explained in {ref}`sec-gans`. A generator :math:`G` maps latent noise
:math:`z \sim \mathcal N(0, I)` to samples :math:`G(z)` of the model density
:math:`p_G`; a discriminator :math:`D(x) = \sigma(\lambda(x))` with logit :math:`\lambda(x)`
tells data from samples. They play the minimax game (Goodfellow et al. 2014)

.. math::

    \min_G \max_D V(D, G), \qquad
    V(D, G) = \mathbb E_{p_\text{data}}[\log D(x)] + \mathbb E_{p_G}[\log(1 - D(x))].

For fixed :math:`G` the best discriminator is
:math:`D^*(x) = p_\text{data}(x) / (p_\text{data}(x) + p_G(x))`, i.e. the logit
:math:`\lambda^*(x) = \log p_\text{data}(x) - \log p_G(x)`, and
:math:`V(D^*, G) = 2\,\mathrm{JSD}(p_\text{data} \,\|\, p_G) - \log 4`.

Every loss is written with logits: :math:`\log \sigma(\lambda) = -\operatorname{softplus}(-\lambda)`
and :math:`\log(1 - \sigma(\lambda)) = -\operatorname{softplus}(\lambda)`, finite for every finite
logit (``log(sigmoid(l))`` is ``-inf`` for ``l = -100`` in float32).

* players: :class:`GAN` (an MLP generator ``G`` and an MLP discriminator ``D``, optionally
  with a minibatch standard-deviation feature);
* losses: :func:`discriminator_loss`, :func:`generator_loss_saturating`,
  :func:`generator_loss_non_saturating`;
* exact references: :func:`optimal_discriminator`, :func:`game_value`;
* training: :func:`gan_step` (D update(s), then a G update) inside
  :func:`genphys.fitting.fit` via :func:`train_gan`;
* diagnostics: :func:`generator_gradient_norm`, :func:`mode_coverage`, :func:`grid_jsd`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import (
    as_tensor,
    check_points,
    check_positive_float,
    check_positive_int,
    describe,
    first_parameter,
)
from .fitting import History, fit, minibatches
from .seeding import make_generator
from .vae import _linear  # PyTorch's default initialisation, drawn from a generator

__all__ = [
    "GAN",
    "GENERATOR_LOSSES",
    "ModeCoverage",
    "discriminator_loss",
    "game_value",
    "gan_step",
    "generator_gradient_norm",
    "generator_loss_non_saturating",
    "generator_loss_saturating",
    "grid_jsd",
    "mode_coverage",
    "optimal_discriminator",
    "train_gan",
]

#: The generator losses :func:`train_gan` and :func:`gan_step` accept.
GENERATOR_LOSSES = ("non-saturating", "saturating")
_ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh}
_OUTPUTS = ("linear", "sigmoid")


# ------------------------------------------------------------------------ checks
def _logits(name: str, value: object) -> torch.Tensor:
    # NaN and infinity pass through to the loss, where genphys.fitting.fit reports them
    dtype = value.dtype if isinstance(value, torch.Tensor) else None
    return as_tensor(name, value, ndim=1, dtype=dtype, finite=False)


def _check_loss(loss: object) -> str:
    if not isinstance(loss, str) or loss not in GENERATOR_LOSSES:
        raise ValueError(f"loss must be one of {GENERATOR_LOSSES}. Got {describe(loss)} instead.")
    return loss


# ------------------------------------------------------------------------ losses
def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    r""":math:`-\frac1n\sum \log\sigma(\lambda_\text{real}) - \frac1m\sum \log(1-\sigma(\lambda_\text{fake}))`, from logits.

    The binary cross-entropy with label 1 for data and 0 for samples, i.e. :math:`-V(D, G)`
    estimated on a mini-batch, written as
    :math:`\overline{\operatorname{softplus}(-\lambda_\text{real})} +
    \overline{\operatorname{softplus}(\lambda_\text{fake})}` so that it is finite for every
    finite logit. Explained in {ref}`sec-gan-game`.

    Parameters
    ----------
    real_logits : Tensor of shape (n,)
        :math:`\lambda(x)` on data.
    fake_logits : Tensor of shape (m,)
        :math:`\lambda(G(z))` on generated samples.

    Returns
    -------
    Tensor of shape ()
    """
    real = _logits("real_logits", real_logits)  # (n,)
    fake = _logits("fake_logits", fake_logits)  # (m,)
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def generator_loss_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    r""":math:`\frac1m \sum \log(1 - \sigma(\lambda_\text{fake})) = -\overline{\operatorname{softplus}(\lambda_\text{fake})}`, the minimax loss of G.

    Its derivative with respect to a logit is :math:`-\sigma(\lambda)/m`, which vanishes when
    the discriminator confidently rejects the samples (:math:`\lambda \to -\infty`).
    Explained in {ref}`sec-gan-vanishing`.

    Parameters
    ----------
    fake_logits : Tensor of shape (m,)

    Returns
    -------
    Tensor of shape ()
    """
    return -F.softplus(_logits("fake_logits", fake_logits)).mean()


def generator_loss_non_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    r""":math:`-\frac1m \sum \log \sigma(\lambda_\text{fake}) = \overline{\operatorname{softplus}(-\lambda_\text{fake})}`, the non-saturating loss of G.

    Same fixed point as the saturating loss, but its derivative with respect to a logit,
    :math:`-\sigma(-\lambda)/m`, tends to :math:`-1/m` when the samples are rejected.
    Explained in {ref}`sec-gan-vanishing`.

    Parameters
    ----------
    fake_logits : Tensor of shape (m,)

    Returns
    -------
    Tensor of shape ()
    """
    return F.softplus(-_logits("fake_logits", fake_logits)).mean()


_GENERATOR_LOSS = {
    "non-saturating": generator_loss_non_saturating,
    "saturating": generator_loss_saturating,
}


# ------------------------------------------------------------- exact references
def optimal_discriminator(log_p_data: torch.Tensor, log_p_model: torch.Tensor) -> torch.Tensor:
    r""":math:`D^*(x) = p_\text{data}(x) / (p_\text{data}(x) + p_G(x)) = \sigma(\log p_\text{data} - \log p_G)`.

    Computed from log-densities as the sigmoid of their difference, so it stays exact where
    both densities underflow (log-densities of -800). Where exactly one density is zero
    (log-density ``-inf``) it is 0 or 1; where both are, it is undefined and raises.
    Explained in {ref}`sec-gan-optimal-d`.

    Parameters
    ----------
    log_p_data, log_p_model : Tensor of shape (n,)
        Log-densities at the same points; ``-inf`` allowed.

    Returns
    -------
    Tensor of shape (n,)
    """
    a = as_tensor("log_p_data", log_p_data, ndim=1, finite=False)
    b = as_tensor("log_p_model", log_p_model, ndim=1, finite=False)
    if a.shape != b.shape:
        raise ValueError(
            f"log_p_model must have the shape of log_p_data {tuple(a.shape)}. "
            f"Got {tuple(b.shape)} instead."
        )
    for name, t in (("log_p_data", a), ("log_p_model", b)):
        if bool(torch.isnan(t).any()) or bool((t == math.inf).any()):
            raise ValueError(f"{name} must be finite or -inf. Got NaN or +inf instead.")
    both = (a == -math.inf) & (b == -math.inf)
    if bool(both.any()):
        first = int(both.nonzero()[0, 0])
        raise ValueError(
            "log_p_data and log_p_model must not both be -inf (D* is 0/0 there). "
            f"Got both -inf at index {first} instead."
        )
    # sigmoid(a - b) with a - b = +-inf where one density is zero
    return torch.sigmoid(a - b)


def game_value(p_data: torch.Tensor, p_model: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    r""":math:`V(D, G) = \sum_c P_c \log \sigma(\lambda_c) + \sum_c Q_c \log(1 - \sigma(\lambda_c))` on the cells of a grid.

    The value of the game for distributions :math:`P` (data) and :math:`Q` (model) on cells
    (e.g. :meth:`genphys.grid.Grid.cell_probabilities`) and a discriminator with logits
    :math:`\lambda_c`; terms with zero mass count as 0, so infinite logits are allowed there.
    At :math:`\lambda^* = \log P - \log Q` it equals :math:`2\,\mathrm{JSD}(P, Q) - \log 4`.
    Explained in {ref}`sec-gan-optimal-d`.

    Parameters
    ----------
    p_data, p_model : Tensor of shape (n_cells,)
        Non-negative, each summing to 1 (within 1e-6).
    logits : Tensor of shape (n_cells,)
        Finite, or :math:`\pm\infty` where the mass it multiplies is zero.

    Returns
    -------
    Tensor of shape ()
    """
    p = as_tensor("p_data", p_data, ndim=1)
    q = as_tensor("p_model", p_model, ndim=1)
    lam = as_tensor("logits", logits, ndim=1, finite=False)
    for name, t in (("p_model", q), ("logits", lam)):
        if t.shape != p.shape:
            raise ValueError(
                f"{name} must have the shape of p_data {tuple(p.shape)}. "
                f"Got {tuple(t.shape)} instead."
            )
    for name, t in (("p_data", p), ("p_model", q)):
        if bool((t < 0).any()) or abs(float(t.sum()) - 1.0) > 1e-6:
            raise ValueError(
                f"{name} must be non-negative and sum to 1. Got minimum {float(t.min())} and "
                f"sum {float(t.sum())} instead."
            )
    if bool(torch.isnan(lam).any()):
        raise ValueError("logits must not contain NaN. Got NaN instead.")
    log_d = F.logsigmoid(lam)  # (n_cells,) log D
    log_1md = F.logsigmoid(-lam)  # (n_cells,) log(1 - D)
    zero = torch.zeros((), dtype=log_d.dtype)
    real = torch.where(p > 0, p * log_d, zero)  # 0 * (-inf) counts as 0
    fake = torch.where(q > 0, q * log_1md, zero)
    return real.sum() + fake.sum()


# ------------------------------------------------------------------------ the players
def _mlp(widths: Sequence[int], activation: str, generator, dtype, device) -> nn.Sequential:
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(widths):
        layers += [_linear(n_in, n_out, generator, dtype, device), _ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


class _Discriminator(nn.Module):
    """Logits :math:`\\lambda(x)`: an MLP, with the minibatch standard deviation appended before the last layer."""

    def __init__(self, features: nn.Sequential, out: nn.Linear, minibatch_std: bool):
        super().__init__()
        self.features = features
        self.out = out
        self.minibatch_std = minibatch_std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)  # (B, H)
        if self.minibatch_std:
            # Karras et al. 2018: the mean over units of the batch standard deviation,
            # one number per batch, appended to every row: a collapsed batch shows it
            spread = h.std(dim=0, unbiased=False).mean() if h.shape[0] > 1 else h.new_zeros(())
            h = torch.cat([h, spread.expand(h.shape[0], 1)], dim=1)  # (B, H + 1)
        return self.out(h).squeeze(-1)  # (B,)


class GAN(nn.Module):
    r"""A generator :math:`G: z \mapsto x` and a discriminator :math:`\lambda: x \mapsto` logit, both MLPs.

    ``G`` maps :math:`z \sim \mathcal N(0, I_{n_\text{latent}})` through hidden layers to
    ``n_features`` outputs (linear, or a sigmoid for data in [0, 1]); ``D`` returns one
    logit per row, :math:`D(x) = \sigma(\lambda(x))`. With ``minibatch_std=True`` the
    discriminator appends the batch's mean standard deviation of its last hidden layer to
    every row (Karras et al. 2018), so it can see a batch without diversity (a remedy for
    mode collapse; the logit of a row then depends on the whole batch).
    Explained in {ref}`sec-gans`.

    Parameters
    ----------
    n_features : int
        Dimension of ``x``.
    n_latent : int
        Dimension of ``z``.
    hidden : sequence of int
        Widths of the hidden layers of both players (at least one).
    output : {"linear", "sigmoid"}
        The generator's output layer.
    activation : {"leaky_relu", "relu", "tanh"}
    minibatch_std : bool
    seed, generator
        Exactly one: the initial weights (PyTorch's default uniform initialisation) are
        drawn from it (a CPU generator; see :mod:`genphys.seeding`).
    dtype : torch.dtype
    device : torch.device or str, optional

    Examples
    --------
    >>> gan = GAN(2, 2, hidden=(16,), seed=0)
    >>> gan.sample(5, seed=1).shape
    torch.Size([5, 2])
    """

    def __init__(
        self,
        n_features: int,
        n_latent: int,
        hidden: Sequence[int] = (64, 64),
        *,
        output: str = "linear",
        activation: str = "leaky_relu",
        minibatch_std: bool = False,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.n_features = check_positive_int("n_features", n_features)
        self.n_latent = check_positive_int("n_latent", n_latent)
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence) or not hidden:
            raise TypeError(
                f"hidden must be a non-empty sequence of layer widths. Got {describe(hidden)} instead."
            )
        widths = [check_positive_int("hidden", w) for w in hidden]
        if output not in _OUTPUTS:
            raise ValueError(f"output must be one of {_OUTPUTS}. Got {describe(output)} instead.")
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {tuple(_ACTIVATIONS)}. Got {describe(activation)} instead."
            )
        if not isinstance(minibatch_std, bool):
            raise TypeError(f"minibatch_std must be a bool. Got {describe(minibatch_std)} instead.")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating torch.dtype. Got {describe(dtype)} instead.")
        device = torch.device("cpu") if device is None else torch.device(device)
        g = make_generator(seed, generator, device="cpu")
        self.output = output
        self.minibatch_std = minibatch_std

        g_layers = _mlp([self.n_latent, *widths], activation, g, dtype, device)
        g_layers.append(_linear(widths[-1], self.n_features, g, dtype, device))
        if output == "sigmoid":
            g_layers.append(nn.Sigmoid())
        self.G = g_layers
        features = _mlp([self.n_features, *widths], activation, g, dtype, device)
        out = _linear(widths[-1] + int(minibatch_std), 1, g, dtype, device)
        self.D = _Discriminator(features, out, minibatch_std)

    def extra_repr(self) -> str:
        return f"output={self.output!r}, minibatch_std={self.minibatch_std}"

    @property
    def _reference(self) -> torch.Tensor:
        return self.D.out.weight

    def _data(self, name: str, value: object) -> torch.Tensor:
        ref = self._reference
        x = as_tensor(name, value, ndim=2, dtype=ref.dtype, device=ref.device)
        if x.shape[1] != self.n_features:
            raise ValueError(
                f"{name} must have shape (n, {self.n_features}). Got shape {tuple(x.shape)} instead."
            )
        return x

    def latent(
        self, n: int, *, seed: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Latent noise :math:`z \\sim \\mathcal N(0, I)`, shape (n, n_latent), on the model's device."""
        n = check_positive_int("n", n)
        ref = self._reference
        g = make_generator(seed, generator, device=ref.device)
        return torch.randn(n, self.n_latent, generator=g, dtype=ref.dtype, device=ref.device)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """:math:`G(z)`: samples from latent noise.

        Parameters
        ----------
        z : Tensor of shape (n, n_latent)

        Returns
        -------
        Tensor of shape (n, n_features)
        """
        ref = self._reference
        z = as_tensor("z", z, ndim=2, dtype=ref.dtype, device=ref.device)
        if z.shape[1] != self.n_latent:
            raise ValueError(
                f"z must have shape (n, {self.n_latent}). Got shape {tuple(z.shape)} instead."
            )
        return self.G(z)

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """The discriminator's logits :math:`\\lambda(x)`, :math:`D(x) = \\sigma(\\lambda(x))`.

        Parameters
        ----------
        x : Tensor of shape (n, n_features)

        Returns
        -------
        Tensor of shape (n,)
        """
        return self.D(self._data("x", x))

    def sample(
        self, n: int, *, seed: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """:math:`G(z)` for :math:`z \\sim \\mathcal N(0, I)`, without gradients. Shape (n, n_features)."""
        z = self.latent(n, seed=seed, generator=generator)
        with torch.no_grad():
            return self.G(z)


# ------------------------------------------------------------------------ training
def gan_step(
    gan: GAN,
    real: torch.Tensor,
    d_optimizer: torch.optim.Optimizer,
    g_optimizer: torch.optim.Optimizer,
    *,
    loss: str = "non-saturating",
    d_steps: int = 1,
    instance_noise: float = 0.0,
    generator: torch.Generator,
) -> dict[str, float]:
    """One alternating update: ``d_steps`` discriminator steps on ``real``, then one generator step.

    Each discriminator step draws a fresh batch :math:`G(z)` (detached) and descends
    :func:`discriminator_loss`; the generator step draws another and descends the chosen
    generator loss through a frozen discriminator. With ``instance_noise`` :math:`\\sigma > 0`
    the discriminator sees every input, real or generated, plus :math:`\\mathcal N(0, \\sigma^2 I)`
    noise (Arjovsky & Bottou 2017), which blurs a data set of discrete values (Ising spins,
    binary pixels) that a discriminator could otherwise tell from any continuous output.
    Explained in {ref}`sec-gan-training`.

    Parameters
    ----------
    gan : GAN
    real : Tensor of shape (B, n_features)
        A mini-batch of data.
    d_optimizer, g_optimizer : torch.optim.Optimizer
        Over ``gan.D.parameters()`` and ``gan.G.parameters()``.
    loss : {"non-saturating", "saturating"}
    d_steps : int
    instance_noise : float
        Standard deviation :math:`\\sigma \\ge 0` of the noise added to the discriminator's inputs.
    generator : torch.Generator
        On the model's device; draws the latent noise (and the instance noise).

    Returns
    -------
    dict
        ``d_loss`` (last D step), ``g_loss``, and the mean of :math:`D` on data
        (``d_real``) and on samples (``d_fake``) before the G step.
    """
    loss = _check_loss(loss)
    d_steps = check_positive_int("d_steps", d_steps)
    sigma = check_positive_float("instance_noise", instance_noise, allow_zero=True)
    if not isinstance(gan, GAN):
        raise TypeError(f"gan must be a GAN. Got {describe(gan)} instead.")
    reference = first_parameter("gan", gan)
    real = check_points(
        "real",
        real,
        width=gan.n_features,
        dtype=reference.dtype,
        device=reference.device,
        owner="the GAN",
    )

    def blur(x: torch.Tensor) -> torch.Tensor:  # (B, n_features)
        if sigma == 0.0:
            return x
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return x + sigma * noise

    B = real.shape[0]
    for _ in range(d_steps):
        with torch.no_grad():
            fake = gan.G(gan.latent(B, generator=generator))  # (B, n_features)
        real_logits, fake_logits = gan.D(blur(real)), gan.D(blur(fake))  # (B,), (B,)
        d_loss = discriminator_loss(real_logits, fake_logits)
        d_optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        d_optimizer.step()

    gan.D.requires_grad_(False)  # the G step must not accumulate gradients in D
    fake_logits = gan.D(blur(gan.G(gan.latent(B, generator=generator))))  # (B,)
    g_loss = _GENERATOR_LOSS[loss](fake_logits)
    g_optimizer.zero_grad(set_to_none=True)
    g_loss.backward()
    g_optimizer.step()
    gan.D.requires_grad_(True)
    return {
        "d_loss": d_loss.detach(),
        "g_loss": g_loss.detach(),
        "d_real": torch.sigmoid(real_logits.detach()).mean(),
        "d_fake": torch.sigmoid(fake_logits.detach()).mean(),
    }


def train_gan(
    gan: GAN,
    data: object,
    *,
    n_epochs: int,
    batch_size: int = 128,
    loss: str = "non-saturating",
    d_steps: int = 1,
    instance_noise: float = 0.0,
    learning_rate: float = 1e-3,
    betas: tuple[float, float] = (0.5, 0.999),
    seed: int | None = None,
    generator: torch.Generator | None = None,
    monitor: Callable[[int], Mapping[str, float]] | None = None,
    progress: bool = False,
    history: History | None = None,
) -> History:
    """Train ``gan`` with Adam by alternating :func:`gan_step` over shuffled mini-batches of ``data``.

    Runs on :func:`genphys.fitting.fit`: one record per epoch with the means of ``d_loss``,
    ``g_loss``, ``d_real``, ``d_fake`` (and what ``monitor`` returns); a NaN or infinity
    stops training with :class:`genphys.fitting.TrainingDivergedError`, parameters restored
    to the start of that epoch. Explained in {ref}`sec-gan-training`.

    Parameters
    ----------
    gan : GAN
        Trained in place.
    data : Tensor of shape (n, n_features)
        On the model's device, with its dtype.
    n_epochs, batch_size, d_steps : int
    loss : {"non-saturating", "saturating"}
    instance_noise : float
        See :func:`gan_step`.
    learning_rate : float
        Adam step size of both players.
    betas : tuple of float
        Adam's :math:`(\\beta_1, \\beta_2)`; :math:`\\beta_1 = 0.5` is customary for GANs.
    seed, generator
        Exactly one: shuffles the data and draws the latent noise.
    monitor : callable, epoch -> dict, optional
    progress : bool
    history : History, optional
        Continue this history.

    Returns
    -------
    History
    """
    if not isinstance(gan, GAN):
        raise TypeError(f"gan must be a GAN. Got {describe(gan)} instead.")
    x = gan._data("data", data)
    loss = _check_loss(loss)
    batch_size = check_positive_int("batch_size", batch_size)
    d_steps = check_positive_int("d_steps", d_steps)
    instance_noise = check_positive_float("instance_noise", instance_noise, allow_zero=True)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    if (
        not isinstance(betas, tuple)
        or len(betas) != 2
        or not all(isinstance(b, float | int) and 0 <= b < 1 for b in betas)
    ):
        raise ValueError(
            f"betas must be a pair of numbers in [0, 1). Got {describe(betas)} instead."
        )
    g = make_generator(seed, generator, device=x.device)
    d_optimizer = torch.optim.Adam(gan.D.parameters(), lr=learning_rate, betas=betas)
    g_optimizer = torch.optim.Adam(gan.G.parameters(), lr=learning_rate, betas=betas)

    def step(batch: torch.Tensor) -> dict[str, float]:
        return gan_step(
            gan,
            batch,
            d_optimizer,
            g_optimizer,
            loss=loss,
            d_steps=d_steps,
            instance_noise=instance_noise,
            generator=g,
        )

    return fit(
        step,
        lambda epoch: minibatches(x, batch_size, generator=g),
        n_epochs=n_epochs,
        parameters=gan,
        monitor=monitor,
        progress=progress,
        desc=f"GAN ({loss})",
        history=history,
        hint=f"lower learning_rate (now {learning_rate})",
    )


# ------------------------------------------------------------------------ diagnostics
def generator_gradient_norm(gan: GAN, z: torch.Tensor, *, loss: str) -> float:
    r""":math:`\lVert \nabla_{\theta_G} L_G \rVert_2` over all generator parameters, for latent noise ``z``.

    The size of the generator's update signal under the current discriminator; with the
    saturating loss it vanishes as the discriminator improves. Explained in
    {ref}`sec-gan-vanishing`.

    Parameters
    ----------
    gan : GAN
    z : Tensor of shape (m, n_latent)
    loss : {"non-saturating", "saturating"}

    Returns
    -------
    float
    """
    if not isinstance(gan, GAN):
        raise TypeError(f"gan must be a GAN. Got {describe(gan)} instead.")
    loss = _check_loss(loss)
    value = _GENERATOR_LOSS[loss](gan.D(gan.generate(z)))
    grads = torch.autograd.grad(value, list(gan.G.parameters()))
    return float(torch.sqrt(sum((gr.double() ** 2).sum() for gr in grads)))


class ModeCoverage(NamedTuple):
    """How a set of samples covers the modes of a Gaussian mixture (see :func:`mode_coverage`)."""

    modes_covered: float
    high_quality: float
    counts: torch.Tensor


def mode_coverage(samples: torch.Tensor, mixture, *, n_std: float = 3.0) -> ModeCoverage:
    r"""Fraction of modes hit, and share of samples within ``n_std`` standard deviations of a mode.

    A sample is *of high quality* when it lies within :math:`n_\text{std}\, s_k` of some
    component mean :math:`\mu_k` (it is then counted for the nearest such mode); a mode is
    *covered* when at least one sample is counted for it. Explained in
    {ref}`sec-gan-mode-collapse`.

    Parameters
    ----------
    samples : Tensor of shape (n, dim)
    mixture : genphys.mixtures.GaussianMixture
    n_std : float

    Returns
    -------
    ModeCoverage
        ``modes_covered`` in [0, 1], ``high_quality`` in [0, 1] and ``counts``, shape (K,),
        the number of high-quality samples of each mode.
    """
    from .mixtures import GaussianMixture  # one-way dependency, imported on use

    if not isinstance(mixture, GaussianMixture):
        raise TypeError(f"mixture must be a GaussianMixture. Got {describe(mixture)} instead.")
    n_std = check_positive_float("n_std", n_std)
    x = as_tensor("samples", samples, ndim=2, finite=False).detach().to("cpu", mixture.dtype)
    if x.shape[1] != mixture.dim or x.shape[0] == 0:
        raise ValueError(
            f"samples must have shape (n, {mixture.dim}) with n >= 1. Got shape {tuple(x.shape)} instead."
        )
    distance = torch.cdist(x, mixture.means) / mixture.stds  # (n, K), in standard deviations
    distance = torch.nan_to_num(distance, nan=math.inf)
    nearest, mode = distance.min(dim=1)  # (n,), (n,)
    good = nearest <= n_std  # (n,)
    counts = torch.bincount(mode[good], minlength=mixture.n_components)  # (K,)
    return ModeCoverage(
        modes_covered=float((counts > 0).double().mean()),
        high_quality=float(good.double().mean()),
        counts=counts,
    )


def grid_jsd(samples: torch.Tensor, grid, log_density: torch.Tensor) -> float:
    r""":math:`\mathrm{JSD}` between the histogram of ``samples`` on ``grid`` and a density discretised on it.

    Samples outside the box count as one extra cell, where the density has (almost) no mass,
    so that samples thrown away from the data are penalised rather than ignored. With
    :math:`n` exact samples the result is not 0 but a positive finite-sample bias that falls
    with :math:`n`; compare with it. Explained in {ref}`sec-gan-mode-collapse`.

    Parameters
    ----------
    samples : Tensor of shape (n, dim)
    grid : genphys.grid.Grid
    log_density : Tensor of shape (n_cells,)
        The (unnormalised) log-density at ``grid.points``.

    Returns
    -------
    float
        In nats, in :math:`[0, \log 2]`.
    """
    from .grid import Grid, js_divergence

    if not isinstance(grid, Grid):
        raise TypeError(f"grid must be a genphys.grid.Grid. Got {describe(grid)} instead.")
    x = as_tensor("samples", samples, ndim=2, finite=False).detach().to("cpu", grid.points.dtype)
    counts, outside = grid.histogram(x)  # (n_cells,), float
    target = grid.cell_probabilities(log_density)  # (n_cells,)
    p = torch.cat([counts, counts.new_tensor([outside])])  # (n_cells + 1,)
    q = torch.cat([target, target.new_zeros(1)])
    return js_divergence(p, q)
