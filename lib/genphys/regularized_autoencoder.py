"""Regularised autoencoders: sparse codes, denoising, and the denoiser's estimate of the score.

Explained in {ref}`sec-sparse-autoencoders` and {ref}`sec-denoising-autoencoders`. An
autoencoder (:class:`genphys.autoencoder.Autoencoder`) need not have a narrow code to learn
something useful if its training objective is *regularised* (Goodfellow et al. 2016, ch. 14.2):

* a **sparse** autoencoder adds a penalty on the code :math:`h = f(x)` to the reconstruction
  error: the L1 norm :math:`\\lambda \\frac1n \\sum_k \\lVert h_k \\rVert_1`
  (:func:`l1_sparsity_penalty`), or, for codes in :math:`(0, 1)`, the Kullback-Leibler
  penalty :math:`\\sum_j \\mathrm{KL}(\\rho \\,\\|\\, \\hat\\rho_j)` between a target activation
  :math:`\\rho` and the mean activation :math:`\\hat\\rho_j` of each code unit
  (:func:`kl_sparsity_penalty`, :func:`mean_activation`);
* a **denoising** autoencoder reconstructs the clean :math:`x` from a corrupted
  :math:`\\tilde x` (Vincent et al. 2008): Gaussian noise :math:`\\tilde x = x + \\sigma
  \\varepsilon` (:func:`gaussian_corruption`) or masking noise that zeroes each entry with
  probability :math:`p` (:func:`masking_corruption`); :func:`denoising_loss` is the error.

For Gaussian noise the best denoiser is :math:`r(\\tilde x) = E[x \\mid \\tilde x] = \\tilde x +
\\sigma^2 \\nabla \\log q_\\sigma(\\tilde x)` (Vincent 2011; Alain & Bengio 2014), so
:math:`(r(x) - x)/\\sigma^2` (:func:`dae_score`) estimates the score of the noised density,
and of the data density as :math:`\\sigma \\to 0`. For Gaussian data everything is in closed
form: :func:`gaussian_denoiser` and :func:`gaussian_score`. Training runs on
:func:`genphys.fitting.fit` (:func:`train_regularized_autoencoder`).
"""

from __future__ import annotations

import math

import torch

from ._validation import (
    as_tensor,
    check_positive_float,
    check_positive_int,
    check_probability,
    check_same_placement,
    describe,
)
from .autoencoder import Autoencoder, bernoulli_cross_entropy, squared_error
from .fitting import History, fit, minibatches
from .seeding import make_generator

__all__ = [
    "CORRUPTIONS",
    "dae_score",
    "denoising_loss",
    "gaussian_corruption",
    "gaussian_denoiser",
    "gaussian_score",
    "kl_sparsity_penalty",
    "l1_sparsity_penalty",
    "masking_corruption",
    "mean_activation",
    "train_regularized_autoencoder",
]

#: Corruptions :func:`train_regularized_autoencoder` accepts: ``"gaussian"`` (level = the
#: standard deviation :math:`\sigma`) and ``"mask"`` (level = the probability :math:`p` of
#: zeroing an entry).
CORRUPTIONS = ("gaussian", "mask")


def _codes(name: str, value: object) -> torch.Tensor:
    """A floating (n_samples, n_code) tensor, kept as it is (so that gradients flow)."""
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor. Got {describe(value)} instead.")
    return as_tensor(name, value, ndim=2, dtype=value.dtype)


def _rho(value: object) -> float:
    rho = check_probability("rho", value)
    if not 0.0 < rho < 1.0:
        raise ValueError(f"rho must be a number strictly between 0 and 1. Got {rho} instead.")
    return rho


# ----------------------------------------------------------------- sparsity penalties
def l1_sparsity_penalty(h: torch.Tensor) -> torch.Tensor:
    """L1 penalty on the code, :math:`\\Omega_1(h) = \\frac1n \\sum_{k=1}^n \\sum_{j=1}^d |h_{kj}|`.

    Summed over the code units of a data point and averaged over data points, like the
    reconstruction error of eq. {eq}`eq-ae-mse`, so that :math:`L + \\lambda \\Omega_1` does not
    depend on the batch size. Explained in {ref}`sec-sparse-autoencoders`.

    Parameters
    ----------
    h : Tensor of shape (n_samples, n_code)
        Codes :math:`h = f(x)`.

    Returns
    -------
    Tensor of shape ()
    """
    h = _codes("h", h)
    return h.abs().sum(-1).mean()  # (B, d) -> (B,) -> ()


def mean_activation(h: torch.Tensor) -> torch.Tensor:
    """Mean activation of each code unit over the data, :math:`\\hat\\rho_j = \\frac1n \\sum_k h_{kj}`.

    Explained in {ref}`sec-sparse-autoencoders`.

    Parameters
    ----------
    h : Tensor of shape (n_samples, n_code)
        Codes with entries in [0, 1] (a sigmoid code layer).

    Returns
    -------
    Tensor of shape (n_code,)
    """
    h = _codes("h", h)
    if bool(((h < 0) | (h > 1)).any()):
        bad = ((h < 0) | (h > 1)).nonzero()[0].tolist()
        raise ValueError(
            "h must have entries in [0, 1] (a sigmoid code). "
            f"Got {h[tuple(bad)].item()!r} at index {tuple(bad)} instead."
        )
    return h.mean(0)  # (d,)


def kl_sparsity_penalty(h: torch.Tensor, rho: float) -> torch.Tensor:
    """KL sparsity penalty :math:`\\sum_j [\\rho \\log\\frac{\\rho}{\\hat\\rho_j} + (1-\\rho)\\log\\frac{1-\\rho}{1-\\hat\\rho_j}]`.

    The sum over code units of :math:`\\mathrm{KL}(\\mathrm{Bernoulli}(\\rho) \\,\\|\\,
    \\mathrm{Bernoulli}(\\hat\\rho_j))`, eq. {eq}`eq-kl-sparsity`, with :math:`\\hat\\rho_j` the
    :func:`mean_activation` of unit :math:`j` over the batch. It is zero when every unit is
    active a fraction :math:`\\rho` of the time on average and grows without bound as a mean
    activation approaches 0 or 1. The logarithms are taken separately,
    :math:`\\log\\rho - \\log\\hat\\rho_j` and :math:`\\log(1-\\rho) - \\log(1-\\hat\\rho_j)` (with
    ``log1p``), so a unit that is almost never active (:math:`\\hat\\rho_j` down to the smallest
    doubles) gives a large finite penalty rather than an overflowing ratio. Explained in
    {ref}`sec-sparse-autoencoders`.

    Parameters
    ----------
    h : Tensor of shape (n_samples, n_code)
        Codes with entries in [0, 1].
    rho : float in (0, 1)
        Target mean activation :math:`\\rho`.

    Returns
    -------
    Tensor of shape ()
    """
    rho = _rho(rho)
    rho_hat = mean_activation(h)  # (d,)
    kl = rho * (math.log(rho) - torch.log(rho_hat)) + (1 - rho) * (
        math.log1p(-rho) - torch.log1p(-rho_hat)
    )  # (d,)
    return kl.sum()


# ----------------------------------------------------------------------- corruption
def gaussian_corruption(
    x: torch.Tensor,
    sigma: float,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Additive Gaussian noise, :math:`\\tilde x = x + \\sigma \\varepsilon`, :math:`\\varepsilon \\sim \\mathcal N(0, I)`.

    Explained in {ref}`sec-denoising-autoencoders`.

    Parameters
    ----------
    x : Tensor of shape (n_samples, n_features)
    sigma : float > 0
    seed, generator
        Exactly one (:mod:`genphys.seeding`), on the device of ``x``.

    Returns
    -------
    Tensor of shape (n_samples, n_features)
    """
    x = as_tensor("x", x, ndim=2, dtype=x.dtype if isinstance(x, torch.Tensor) else None)
    sigma = check_positive_float("sigma", sigma)
    g = make_generator(seed, generator, device=x.device)
    return _gaussian(x, sigma, g)


def _gaussian(x: torch.Tensor, sigma: float, g: torch.Generator) -> torch.Tensor:
    eps = torch.randn(x.shape, generator=g, dtype=x.dtype, device=x.device)  # (B, D)
    return x + sigma * eps


def masking_corruption(
    x: torch.Tensor,
    p: float,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Masking noise: each entry is set to 0 with probability :math:`p`, independently.

    :math:`\\tilde x_i = m_i x_i` with :math:`m_i \\sim \\mathrm{Bernoulli}(1 - p)` (Vincent et
    al. 2008). Explained in {ref}`sec-denoising-autoencoders`.

    Parameters
    ----------
    x : Tensor of shape (n_samples, n_features)
    p : float in [0, 1)
    seed, generator
        Exactly one (:mod:`genphys.seeding`), on the device of ``x``.

    Returns
    -------
    Tensor of shape (n_samples, n_features)
    """
    x = as_tensor("x", x, ndim=2, dtype=x.dtype if isinstance(x, torch.Tensor) else None)
    p = _mask_probability(p)
    g = make_generator(seed, generator, device=x.device)
    return _mask(x, p, g)


def _mask_probability(p: object) -> float:
    p = check_probability("p", p)
    if p >= 1.0:
        raise ValueError(
            f"p must be a probability below 1 (1 erases every input). Got {p} instead."
        )
    return p


def _mask(x: torch.Tensor, p: float, g: torch.Generator) -> torch.Tensor:
    u = torch.rand(x.shape, generator=g, dtype=x.dtype, device=x.device)  # (B, D)
    return torch.where(u < p, torch.zeros_like(x), x)


# -------------------------------------------------------------------- the objective
def denoising_loss(model: Autoencoder, x: torch.Tensor, x_corrupted: torch.Tensor) -> torch.Tensor:
    """Denoising error per data point, :math:`\\operatorname{err}(x, g(f(\\tilde x)))`: the CLEAN input from the corrupted one.

    :func:`genphys.autoencoder.squared_error` for ``output="linear"`` and
    :func:`genphys.autoencoder.bernoulli_cross_entropy` of the logits for
    ``output="sigmoid"``, eq. {eq}`eq-dae-loss`; with ``x_corrupted = x`` it is
    :meth:`Autoencoder.loss`. Explained in {ref}`sec-denoising-autoencoders`.

    Parameters
    ----------
    model : Autoencoder
    x : Tensor of shape (n_samples, n_input)
        Clean data, with the model's dtype and device (binary for ``output="sigmoid"``).
    x_corrupted : Tensor of shape (n_samples, n_input)
        Its corrupted version :math:`\\tilde x`.

    Returns
    -------
    Tensor of shape (n_samples,)
    """
    if not isinstance(model, Autoencoder):
        raise TypeError(f"model must be an Autoencoder. Got {describe(model)} instead.")
    x = model._data("x", x)
    x_corrupted = model._input("x_corrupted", x_corrupted, model.n_input)
    if x_corrupted.shape != x.shape:
        raise ValueError(
            f"x_corrupted must have the shape of x {tuple(x.shape)}. "
            f"Got shape {tuple(x_corrupted.shape)} instead."
        )
    return _per_point(model, x, model.decoder(model.encoder(x_corrupted)))


def _per_point(model: Autoencoder, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    if model.output == "sigmoid":
        return bernoulli_cross_entropy(x, out)  # (B,)
    return squared_error(x, out)  # (B,)


# --------------------------------------------------------------------- the score link
def dae_score(model: Autoencoder, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Score implied by a denoising autoencoder, :math:`s(x) = (r(x) - x) / \\sigma^2`.

    For the optimal denoiser of Gaussian noise of scale :math:`\\sigma` this is exactly the
    score :math:`\\nabla \\log q_\\sigma(x)` of the noised density, eq. {eq}`eq-tweedie`, and
    it tends to :math:`\\nabla \\log p(x)` as :math:`\\sigma \\to 0` (Alain & Bengio 2014).
    Explained in {ref}`sec-dae-score`.

    Parameters
    ----------
    model : Autoencoder
        With ``output="linear"``, trained with Gaussian corruption of scale ``sigma``.
    x : Tensor of shape (n_samples, n_input)
    sigma : float > 0

    Returns
    -------
    Tensor of shape (n_samples, n_input)
    """
    if not isinstance(model, Autoencoder):
        raise TypeError(f"model must be an Autoencoder. Got {describe(model)} instead.")
    if model.output != "linear":
        raise ValueError(
            "model must have output='linear' (a real-valued reconstruction). "
            f"Got output={model.output!r} instead."
        )
    x = model._data("x", x)
    sigma = check_positive_float("sigma", sigma)
    return (model.reconstruct(x) - x) / sigma**2  # (B, D)


def _gaussian_parameters(mean: object, covariance: object) -> tuple[torch.Tensor, torch.Tensor]:
    mu = as_tensor("mean", mean, ndim=1)
    cov = as_tensor("covariance", covariance, ndim=2)
    check_same_placement("mean", mu, covariance=cov)
    D = mu.shape[0]
    if cov.shape != (D, D):
        raise ValueError(
            f"covariance must have shape ({D}, {D}) to match mean. "
            f"Got shape {tuple(cov.shape)} instead."
        )
    if not torch.allclose(cov, cov.T, rtol=1e-10, atol=1e-12 * float(cov.abs().max())):
        raise ValueError("covariance must be symmetric. Got a non-symmetric matrix instead.")
    if torch.linalg.cholesky_ex(cov).info != 0:
        raise ValueError(
            "covariance must be positive definite. Got a matrix with a non-positive "
            f"eigenvalue ({torch.linalg.eigvalsh(cov).min().item():.3g}) instead."
        )
    return mu, cov


def gaussian_score(x: torch.Tensor, mean: torch.Tensor, covariance: torch.Tensor) -> torch.Tensor:
    """Score of a Gaussian, :math:`\\nabla_x \\log \\mathcal N(x; \\mu, \\Sigma) = -\\Sigma^{-1}(x - \\mu)`.

    Explained in {ref}`sec-dae-score`.

    Parameters
    ----------
    x : Tensor of shape (n_samples, dim)
    mean : Tensor of shape (dim,)
    covariance : Tensor of shape (dim, dim)
        Symmetric positive definite.

    Returns
    -------
    Tensor of shape (n_samples, dim)
    """
    mu, cov = _gaussian_parameters(mean, covariance)
    x = as_tensor("x", x, ndim=2, dtype=mu.dtype, device=mu.device)
    if x.shape[1] != mu.shape[0]:
        raise ValueError(
            f"x must have {mu.shape[0]} columns to match mean. Got shape {tuple(x.shape)} instead."
        )
    L = torch.linalg.cholesky(cov)  # (D, D)
    return -torch.cholesky_solve((x - mu).T, L).T  # (B, D)


def gaussian_denoiser(
    mean: torch.Tensor, covariance: torch.Tensor, sigma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Optimal denoiser of Gaussian data, :math:`E[x \\mid \\tilde x] = A \\tilde x + b`, :math:`A = C (C + \\sigma^2 I)^{-1}`.

    For :math:`x \\sim \\mathcal N(\\mu, C)` and :math:`\\tilde x = x + \\sigma\\varepsilon` the
    posterior mean is affine in :math:`\\tilde x`, with :math:`A = C (C + \\sigma^2 I)^{-1}` and
    :math:`b = (I - A)\\mu`, eq. {eq}`eq-gaussian-denoiser`; it minimises the expected squared
    denoising error over *all* functions. Explained in {ref}`sec-dae-score`.

    Parameters
    ----------
    mean : Tensor of shape (dim,)
        :math:`\\mu`.
    covariance : Tensor of shape (dim, dim)
        :math:`C`, symmetric positive definite.
    sigma : float > 0
        Noise scale.

    Returns
    -------
    A : Tensor of shape (dim, dim)
    b : Tensor of shape (dim,)
    """
    mu, cov = _gaussian_parameters(mean, covariance)
    sigma = check_positive_float("sigma", sigma)
    eye = torch.eye(mu.shape[0], dtype=mu.dtype, device=mu.device)
    noised = cov + sigma**2 * eye  # (D, D)
    # A = C (C + σ²I)^{-1}; both matrices are symmetric, so A^T = (C + σ²I)^{-1} C
    A = torch.linalg.solve(noised, cov).T  # (D, D)
    return A, mu - A @ mu


# ------------------------------------------------------------------------- training
def train_regularized_autoencoder(
    model: Autoencoder,
    x_train: object,
    *,
    x_test: object | None = None,
    corruption: str | None = None,
    noise_level: float = 0.0,
    l1: float = 0.0,
    kl: float = 0.0,
    rho: float = 0.05,
    n_epochs: int = 100,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> History:
    """Minimise :math:`\\frac1n \\sum_k \\operatorname{err}(x_k, g(f(\\tilde x_k))) + \\lambda_1 \\Omega_1(h) + \\beta \\sum_j \\mathrm{KL}(\\rho \\| \\hat\\rho_j)` with Adam.

    Each mini-batch is corrupted afresh (``corruption`` of strength ``noise_level``; no
    corruption by default), encoded to :math:`h = f(\\tilde x)` and decoded; the loss is the
    error of the reconstruction against the CLEAN batch (:func:`denoising_loss`) plus the
    penalties :func:`l1_sparsity_penalty` (weight ``l1``) and :func:`kl_sparsity_penalty`
    (weight ``kl``, target ``rho``, mean activation over the mini-batch). With no corruption
    and no penalty it is :func:`genphys.autoencoder.train_autoencoder` with Adam. The loop is
    :func:`genphys.fitting.fit`. Explained in {ref}`sec-sparse-autoencoders` and
    {ref}`sec-denoising-autoencoders`.

    Parameters
    ----------
    model : Autoencoder
        Trained in place; ``code_activation="sigmoid"`` when ``kl > 0``.
    x_train : Tensor of shape (n_samples, n_input)
        Clean training data with the model's dtype and device.
    x_test : Tensor of shape (n_test, n_input), optional
    corruption : {None, "gaussian", "mask"}
    noise_level : float
        :math:`\\sigma > 0` for ``"gaussian"``, :math:`p \\in [0, 1)` for ``"mask"``; must be 0
        without corruption.
    l1, kl : float >= 0
        Penalty weights.
    rho : float in (0, 1)
        Target mean activation of the KL penalty.
    n_epochs, batch_size : int
    learning_rate : float
    seed, generator
        Exactly one (:mod:`genphys.seeding`): shuffling and corruption.
    progress : bool

    Returns
    -------
    genphys.fitting.History
        Columns ``batch_loss`` (the whole objective), ``batch_reconstruction`` and
        ``batch_penalty`` (epoch means over mini-batches), and after each epoch
        ``train_loss`` / ``test_loss`` (the reconstruction error of the *clean* data, as in
        :meth:`Autoencoder.reconstruction_error`) and ``mean_abs_code`` (the mean of
        :math:`|h|` over the training set).

    Raises
    ------
    genphys.fitting.TrainingDivergedError
        If a loss becomes NaN or infinite (the message names the epoch and mini-batch).
    """
    if not isinstance(model, Autoencoder):
        raise TypeError(f"model must be an Autoencoder. Got {describe(model)} instead.")
    x_train = model._data("x_train", x_train)
    if x_test is not None:
        x_test = model._data("x_test", x_test)
    if corruption is not None and corruption not in CORRUPTIONS:
        raise ValueError(
            f"corruption must be None or one of {CORRUPTIONS}. Got {describe(corruption)} instead."
        )
    if corruption is None:
        if noise_level != 0.0:
            raise ValueError(
                "noise_level must be 0 without a corruption (pass corruption='gaussian' or "
                f"'mask'). Got {describe(noise_level)} instead."
            )
    elif corruption == "gaussian":
        noise_level = check_positive_float("noise_level", noise_level)
    else:
        noise_level = check_probability("noise_level", noise_level)
        if noise_level >= 1.0:
            raise ValueError(
                f"noise_level must be a masking probability below 1. Got {noise_level} instead."
            )
    l1 = check_positive_float("l1", l1, allow_zero=True)
    kl = check_positive_float("kl", kl, allow_zero=True)
    rho = _rho(rho)
    if kl > 0 and model.code_activation != "sigmoid":
        raise ValueError(
            "model must have code_activation='sigmoid' for the KL sparsity penalty (codes in "
            f"(0, 1)). Got code_activation={model.code_activation!r} instead."
        )
    check_positive_int("n_epochs", n_epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    g = make_generator(seed, generator, device=x_train.device)
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate)
    history = History(extras={"loss_name": model.loss_name})

    def corrupt(batch: torch.Tensor) -> torch.Tensor:
        if corruption == "gaussian":
            return _gaussian(batch, noise_level, g)
        if corruption == "mask":
            return _mask(batch, noise_level, g)
        return batch

    def step(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        h = model.encoder(corrupt(batch))  # (B, d)
        reconstruction = _per_point(model, batch, model.decoder(h)).mean()  # ()
        penalty = torch.zeros((), dtype=batch.dtype, device=batch.device)
        if l1 > 0:
            penalty = penalty + l1 * l1_sparsity_penalty(h)
        if kl > 0:
            penalty = penalty + kl * kl_sparsity_penalty(h, rho)
        loss = reconstruction + penalty
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {
            "batch_loss": loss.detach(),
            "batch_reconstruction": reconstruction.detach(),
            "batch_penalty": penalty.detach(),
        }

    @torch.no_grad()
    def monitor(epoch: int) -> dict[str, torch.Tensor | None]:
        return {
            "train_loss": model.loss(x_train).mean(),
            "test_loss": None if x_test is None else model.loss(x_test).mean(),
            "mean_abs_code": model.encoder(x_train).abs().mean(),
        }

    return fit(
        step,
        lambda epoch: minibatches(x_train, batch_size, generator=g),
        n_epochs=n_epochs,
        parameters=model,
        monitor=monitor,
        progress=progress,
        desc=f"regularised autoencoder ({model.loss_name})",
        history=history,
        hint=f"try a smaller learning_rate (now {learning_rate})",
    )
