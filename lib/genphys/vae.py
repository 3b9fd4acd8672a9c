r"""Variational autoencoders: the ELBO, the importance-weighted bound and an exact linear model.

Notation (explained in {ref}`sec-vae`): data ``x`` (``n_features``), latent ``h``
(``n_latent``), prior :math:`p(h) = \mathcal N(0, I)`, encoder
:math:`q(h \mid x) = \mathcal N\big(m(x), \operatorname{diag} e^{\ell(x)}\big)`
with mean ``m`` and log-variance ``ℓ`` (``mean``, ``log_var``), and decoder
:math:`p(x \mid h)`, either Bernoulli with logits :math:`f(h; \Theta)` or Gaussian
:math:`\mathcal N(f(h; \Theta), \sigma^2 I)`.
Every quantity rests on the identity

.. math::

    \log p(x) - \mathrm{KL}\big(q(h \mid x) \,\|\, p(h \mid x)\big)
    = \mathbb E_{q}[\log p(x \mid h)] - \mathrm{KL}\big(q(h \mid x) \,\|\, p(h)\big),

whose right-hand side is the evidence lower bound (ELBO), eq. {eq}`eq-vae-central`.

:class:`LinearGaussianModel` (probabilistic PCA) has every term of that identity in closed
form, so the sampled estimators of :class:`VAE` can be checked against exact numbers.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import (
    as_tensor,
    check_binary,
    check_generator,
    check_positive_float,
    check_positive_int,
    check_same_placement,
    describe,
)
from .training import TrainingDivergedError

__all__ = [
    "VAE",
    "LinearGaussianModel",
    "VAEHistory",
    "VAETrainingDivergedError",
    "estimate_kl_diagonal_gaussian_standard_normal",
    "kl_diagonal_gaussian_standard_normal",
    "log_mean_exp",
    "sample_gradient_reparameterized",
    "sample_gradient_score_function",
    "train_vae",
]

LOG_2PI = math.log(2.0 * math.pi)
DECODERS = ("bernoulli", "gaussian")
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "softplus": nn.Softplus}


class VAETrainingDivergedError(TrainingDivergedError):
    """VAE training produced NaN or infinity; the model keeps its last finite parameters.

    A :class:`genphys.training.TrainingDivergedError` (hence a ``FloatingPointError``)
    that also names the minibatch.

    Attributes
    ----------
    epoch : int
        The epoch (counted from 1) in which the non-finite value appeared.
    step : int or None
        The minibatch within that epoch (counted from 0); ``None`` for the checks made
        after the epoch's last step.
    quantity : str
        What became non-finite: ``"loss"``, ``"parameters"`` or ``"test_elbo"``.
    history : VAEHistory
        The epochs completed before.
    """

    def __init__(
        self, message: str, *, epoch: int, step: int | None, quantity: str, history: VAEHistory
    ):
        super().__init__(message, epoch=epoch, quantity=quantity, history=history)
        self.step = step


# ----------------------------------------------------------------------------- checks
def _check_gaussian(
    mean: object, log_var: object, *, names: tuple[str, str] = ("mean", "log_var")
) -> tuple[torch.Tensor, torch.Tensor]:
    mean_t = as_tensor(names[0], mean, ndim=(1, 2))
    log_var_t = as_tensor(names[1], log_var, ndim=(1, 2))
    if log_var_t.shape != mean_t.shape:
        raise ValueError(
            f"{names[1]} must have the shape of {names[0]} {tuple(mean_t.shape)}. "
            f"Got shape {tuple(log_var_t.shape)} instead."
        )
    check_same_placement(names[0], mean_t, **{names[1]: log_var_t})
    return mean_t, log_var_t


def _log_normal_diagonal(
    h: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor
) -> torch.Tensor:
    r""":math:`\log \mathcal N(h; m, \operatorname{diag} e^{\ell})` over the last axis."""
    return -0.5 * (LOG_2PI + log_var + (h - mean) ** 2 * torch.exp(-log_var)).sum(-1)


def _log_standard_normal(h: torch.Tensor) -> torch.Tensor:
    r""":math:`\log \mathcal N(h; 0, I)`, summed over the last axis."""
    return -0.5 * (LOG_2PI + h**2).sum(-1)


# -------------------------------------------------------------------- Gaussian pieces
def kl_diagonal_gaussian_standard_normal(mean: object, log_var: object) -> torch.Tensor:
    r"""Exact :math:`\mathrm{KL}(q \| p) = \frac12 \sum_j (e^{\ell_j} + m_j^2 - 1 - \ell_j)`.

    Here :math:`q = \mathcal N(m, \operatorname{diag} e^{\ell})` and :math:`p = \mathcal N(0, I)`.

    Explained in {ref}`sec-vae-kl`, eq. {eq}`eq-kl-gaussian`.

    Parameters
    ----------
    mean : Tensor of shape (n, n_latent) or (n_latent,)
    log_var : Tensor of the shape of ``mean``
        Log-variances :math:`\ell_j = \log s_j^2`.

    Returns
    -------
    Tensor of shape (n,) or ()
    """
    mean, log_var = _check_gaussian(mean, log_var)
    return 0.5 * (torch.exp(log_var) + mean**2 - 1.0 - log_var).sum(-1)


def estimate_kl_diagonal_gaussian_standard_normal(
    mean: object, log_var: object, *, n_samples: int, generator: torch.Generator
) -> torch.Tensor:
    r"""Monte Carlo :math:`\frac1S \sum_s [\log q(h_s) - \log p(h_s)]`, :math:`h_s \sim q`.

    The sampled counterpart of :func:`kl_diagonal_gaussian_standard_normal` (same
    arguments plus ``n_samples`` and ``generator``); unbiased, with standard error
    :math:`\sqrt{\operatorname{Var}_q[\log q - \log p] / S}`. Explained in {ref}`sec-vae-kl`.

    Returns
    -------
    Tensor of shape (n,) or ()
    """
    mean, log_var = _check_gaussian(mean, log_var)
    n_samples = check_positive_int("n_samples", n_samples)
    check_generator(generator, mean.device, "the tensors")
    eps = torch.randn(
        (n_samples, *mean.shape), generator=generator, dtype=mean.dtype, device=mean.device
    )  # (S, n, d)
    h = mean + torch.exp(0.5 * log_var) * eps  # (S, n, d)
    # log q(h) - log p(h) with (h - m)^2 / s^2 = eps^2
    log_ratio = 0.5 * (-log_var - eps**2 + h**2).sum(-1)  # (S, n)
    return log_ratio.mean(0)


def log_mean_exp(log_w: object, dim: int = 0) -> torch.Tensor:
    r""":math:`\log \frac1k \sum_{s=1}^k w_s = \operatorname{logsumexp}(\log w) - \log k`.

    Stable for any magnitude of the log-weights (the largest is factored out).
    Explained in {ref}`sec-iwae`.

    Parameters
    ----------
    log_w : Tensor of shape (k, ...)
        Log importance weights along ``dim``.
    dim : int
        The axis to average over.

    Returns
    -------
    Tensor with ``dim`` removed
    """
    log_w = as_tensor("log_w", log_w, finite=False)
    if isinstance(dim, bool) or not isinstance(dim, int) or not -log_w.ndim <= dim < log_w.ndim:
        raise ValueError(
            f"dim must be an axis of log_w (shape {tuple(log_w.shape)}). "
            f"Got {describe(dim)} instead."
        )
    if bool(torch.isnan(log_w).any()) or bool((log_w == math.inf).any()):
        raise ValueError("log_w must not contain NaN or +inf. Got such entries instead.")
    return torch.logsumexp(log_w, dim=dim) - math.log(log_w.shape[dim])


# ------------------------------------------------------------------ gradient estimators
def _gradient_inputs(
    f: object, mean: object, log_var: object, n_samples: object, generator: object
) -> tuple[torch.Tensor, torch.Tensor, int, torch.Tensor]:
    if not callable(f):
        raise TypeError(f"f must be a callable h -> f(h). Got {describe(f)} instead.")
    mean_t, log_var_t = _check_gaussian(mean, log_var)
    if mean_t.ndim != 1:
        raise ValueError(
            f"mean must have shape (n_latent,). Got shape {tuple(mean_t.shape)} instead."
        )
    n = check_positive_int("n_samples", n_samples)
    check_generator(generator, mean_t.device, "the tensors")
    eps = torch.randn(
        (n, mean_t.shape[0]), generator=generator, dtype=mean_t.dtype, device=mean_t.device
    )  # (S, d)
    return mean_t.detach(), log_var_t.detach(), n, eps


def _evaluate(f: Callable, h: torch.Tensor) -> torch.Tensor:
    values = f(h)
    if not isinstance(values, torch.Tensor) or values.shape != (h.shape[0],):
        raise ValueError(
            f"f must map h of shape {tuple(h.shape)} to a tensor of shape ({h.shape[0]},). "
            f"Got {describe(values)} instead."
        )
    return values


def sample_gradient_reparameterized(
    f: Callable[[torch.Tensor], torch.Tensor],
    mean: object,
    log_var: object,
    *,
    n_samples: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Single-sample pathwise estimates of :math:`\nabla_{m, \ell}\, \mathbb E_{q}[f(h)]`.

    With :math:`h = m + e^{\ell/2} \odot \varepsilon` and
    :math:`\varepsilon \sim \mathcal N(0, I)`, each estimate is
    :math:`\nabla_{m, \ell} f(m + e^{\ell/2} \odot \varepsilon_s)`, eq.
    {eq}`eq-reparam-gradient`. Explained in {ref}`sec-reparameterization`.

    Parameters
    ----------
    f : callable
        Differentiable, row-wise map from ``h`` of shape (n_samples, n_latent) to (n_samples,).
    mean, log_var : Tensor of shape (n_latent,)
        Parameters of :math:`q = \mathcal N(m, \operatorname{diag} e^{\ell})`.
    n_samples : int
    generator : torch.Generator

    Returns
    -------
    grad_mean, grad_log_var : Tensor of shape (n_samples, n_latent)
        One independent, unbiased gradient estimate per row; average rows to reduce variance.
    """
    mean, log_var, n, eps = _gradient_inputs(f, mean, log_var, n_samples, generator)
    mean_s = mean.expand(n, -1).clone().requires_grad_(True)  # (S, d)
    log_var_s = log_var.expand(n, -1).clone().requires_grad_(True)  # (S, d)
    with torch.enable_grad():
        h = mean_s + torch.exp(0.5 * log_var_s) * eps  # (S, d)
        values = _evaluate(f, h)  # (S,)
        # rows are independent, so the gradient of the sum holds each row's own gradient
        grad_mean, grad_log_var = torch.autograd.grad(values.sum(), (mean_s, log_var_s))
    return grad_mean, grad_log_var


def sample_gradient_score_function(
    f: Callable[[torch.Tensor], torch.Tensor],
    mean: object,
    log_var: object,
    *,
    n_samples: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Single-sample score-function estimates :math:`f(h_s) \nabla_{m, \ell} \log q(h_s)`.

    This is the REINFORCE estimator.

    For :math:`q = \mathcal N(m, \operatorname{diag} e^{\ell})` the score is
    :math:`\partial_{m_j} \log q = \varepsilon_j e^{-\ell_j/2}` and
    :math:`\partial_{\ell_j} \log q = (\varepsilon_j^2 - 1)/2`, eq. {eq}`eq-score-gradient`
    (Williams, 1992). ``f`` need not be differentiable. Same arguments and return shapes as
    :func:`sample_gradient_reparameterized`. Explained in {ref}`sec-reparameterization`.
    """
    mean, log_var, _, eps = _gradient_inputs(f, mean, log_var, n_samples, generator)
    with torch.no_grad():
        h = mean + torch.exp(0.5 * log_var) * eps  # (S, d)
        values = _evaluate(f, h)[:, None]  # (S, 1)
    return values * eps * torch.exp(-0.5 * log_var), values * 0.5 * (eps**2 - 1.0)


# ---------------------------------------------------------------------------- the VAE
def _linear(n_in: int, n_out: int, generator: torch.Generator, dtype, device) -> nn.Linear:
    """A linear layer with PyTorch's default initialisation, drawn from ``generator``."""
    device = torch.device("cpu") if device is None else torch.device(device)
    layer = nn.utils.skip_init(nn.Linear, n_in, n_out, dtype=dtype, device=device)
    bound = 1.0 / math.sqrt(n_in)
    with torch.no_grad():
        for p in (layer.weight, layer.bias):
            u = torch.rand(p.shape, generator=generator, dtype=torch.float64)
            p.copy_(((2.0 * u - 1.0) * bound).to(dtype=dtype, device=device))
    return layer


class VAE(nn.Module):
    r"""Variational autoencoder with a diagonal Gaussian encoder and a standard normal prior.

    Encoder :math:`q(h \mid x) = \mathcal N(m(x), \operatorname{diag} e^{\ell(x)})` and decoder
    :math:`p(x \mid h)` are multilayer perceptrons with the hidden widths ``hidden`` (the
    decoder mirrors the encoder). Explained in {ref}`sec-vae-model`.

    Parameters
    ----------
    n_features : int
        Dimension of ``x``.
    n_latent : int
        Dimension of ``h``.
    hidden : sequence of int
        Widths of the encoder's hidden layers; ``()`` gives linear maps.
    decoder : {"bernoulli", "gaussian"}
        ``"bernoulli"``: :math:`p(x_i = 1 \mid h) = \sigma(f_i(h))` for binary data;
        ``"gaussian"``: :math:`p(x \mid h) = \mathcal N(f(h), \sigma^2 I)`.
    sigma2 : float
        Decoder variance :math:`\sigma^2` of the Gaussian decoder (a hyperparameter).
    activation : {"relu", "tanh", "softplus"}
    seed : int, optional
        Seed of the initial weights (PyTorch's default uniform initialisation);
        ``None`` draws a fresh seed.
    dtype : torch.dtype
        ``torch.float64`` by default.
    device : torch.device or str, optional
    """

    def __init__(
        self,
        n_features: int,
        n_latent: int,
        hidden: Sequence[int] = (128,),
        *,
        decoder: str = "bernoulli",
        sigma2: float = 1.0,
        activation: str = "relu",
        seed: int | None = None,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.n_features = check_positive_int("n_features", n_features)
        self.n_latent = check_positive_int("n_latent", n_latent)
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
            raise TypeError(
                f"hidden must be a sequence of layer widths. Got {describe(hidden)} instead."
            )
        widths = [check_positive_int("hidden", w) for w in hidden]
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}. Got {describe(decoder)} instead.")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {tuple(ACTIVATIONS)}. "
                f"Got {describe(activation)} instead."
            )
        self.decoder_type = decoder
        self.sigma2 = check_positive_float("sigma2", sigma2)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating torch.dtype. Got {describe(dtype)} instead.")
        generator = torch.Generator()
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(check_positive_int("seed", seed, minimum=0))
        kw = {"generator": generator, "dtype": dtype, "device": device}
        act = ACTIVATIONS[activation]

        encoder: list[nn.Module] = []
        for n_in, n_out in zip([self.n_features, *widths], widths, strict=False):
            encoder += [_linear(n_in, n_out, **kw), act()]
        self.encoder = nn.Sequential(*encoder)
        last = widths[-1] if widths else self.n_features
        self.to_mean = _linear(last, self.n_latent, **kw)
        self.to_log_var = _linear(last, self.n_latent, **kw)

        decoder_layers: list[nn.Module] = []
        back = [self.n_latent, *reversed(widths)]
        for n_in, n_out in itertools.pairwise(back):
            decoder_layers += [_linear(n_in, n_out, **kw), act()]
        decoder_layers.append(_linear(back[-1], self.n_features, **kw))
        self.decoder = nn.Sequential(*decoder_layers)

    def extra_repr(self) -> str:
        extra = f", sigma2={self.sigma2}" if self.decoder_type == "gaussian" else ""
        return f"decoder={self.decoder_type!r}{extra}"

    @property
    def _reference(self) -> torch.Tensor:
        return self.to_mean.weight

    # ------------------------------------------------------------- validation
    def _data(self, name: str, value: object) -> torch.Tensor:
        ref = self._reference
        x = as_tensor(name, value, ndim=2, dtype=ref.dtype, device=ref.device)
        if x.shape[1] != self.n_features:
            raise ValueError(
                f"{name} must have shape (n, {self.n_features}). "
                f"Got shape {tuple(x.shape)} instead."
            )
        if self.decoder_type == "bernoulli":
            check_binary(name, x)
        return x

    def _latent(self, name: str, value: object) -> torch.Tensor:
        ref = self._reference
        h = as_tensor(name, value, ndim=(2, 3), dtype=ref.dtype, device=ref.device)
        if h.shape[-1] != self.n_latent:
            raise ValueError(
                f"{name} must have {self.n_latent} columns (one per latent variable). "
                f"Got shape {tuple(h.shape)} instead."
            )
        return h

    # ------------------------------------------------ encode / sample / decode
    def encode(self, x: object) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Encoder :math:`x \mapsto (m(x), \ell(x))` of :math:`q(h \mid x)`.

        Parameters
        ----------
        x : Tensor of shape (n, n_features)

        Returns
        -------
        mean, log_var : Tensor of shape (n, n_latent)
        """
        return self._encode(self._data("x", x))

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(x)  # (n, hidden[-1])
        return self.to_mean(hidden), self.to_log_var(hidden)  # (n, d), (n, d)

    def reparameterize(
        self, mean: object, log_var: object, *, generator: torch.Generator
    ) -> torch.Tensor:
        r"""Reparameterised sample :math:`h = m + e^{\ell/2} \odot \varepsilon`, standard normal ε.

        Differentiable in ``mean`` and ``log_var``, eq. {eq}`eq-reparam`. Explained in
        {ref}`sec-reparameterization`.

        Parameters
        ----------
        mean, log_var : Tensor of shape (..., n_latent)
        generator : torch.Generator

        Returns
        -------
        h : Tensor of the shape of ``mean``
        """
        ref = self._reference
        mean_t = as_tensor("mean", mean, dtype=ref.dtype, device=ref.device)
        log_var_t = as_tensor("log_var", log_var, dtype=ref.dtype, device=ref.device)
        if mean_t.shape[-1] != self.n_latent or log_var_t.shape != mean_t.shape:
            raise ValueError(
                f"mean and log_var must have the same shape (..., {self.n_latent}). "
                f"Got shapes {tuple(mean_t.shape)} and {tuple(log_var_t.shape)} instead."
            )
        check_generator(generator, mean_t.device, "the tensors")
        return self._reparameterize(mean_t, log_var_t, generator)

    @staticmethod
    def _reparameterize(
        mean: torch.Tensor, log_var: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return mean + torch.exp(0.5 * log_var) * eps

    def decode(self, h: object) -> torch.Tensor:
        r"""Decoder output :math:`f(h; \Theta)`: logits (Bernoulli) or the mean (Gaussian).

        Parameters
        ----------
        h : Tensor of shape (n, n_latent) or (k, n, n_latent)

        Returns
        -------
        Tensor of shape (..., n_features)
        """
        return self.decoder(self._latent("h", h))

    def forward(
        self, x: object, *, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r"""One pass :math:`x \to (m, \ell) \to h \to f(h)`.

        Returns
        -------
        decoded : Tensor of shape (n, n_features)
            Logits or Gaussian mean at one reparameterised sample ``h``.
        mean, log_var : Tensor of shape (n, n_latent)
        """
        x = self._data("x", x)
        check_generator(generator, x.device, "the tensors")
        mean, log_var = self._encode(x)
        h = self._reparameterize(mean, log_var, generator)
        return self.decoder(h), mean, log_var

    # ------------------------------------------------------------ likelihoods
    def log_p_x_given_h(self, x: object, h: object) -> torch.Tensor:
        r""":math:`\log p(x \mid h)`, summed over the features.

        Bernoulli: :math:`\sum_i [x_i f_i - \log(1 + e^{f_i})]`; Gaussian:
        :math:`-\frac12 \sum_i [(x_i - f_i)^2/\sigma^2 + \log 2\pi\sigma^2]`.

        Parameters
        ----------
        x : Tensor of shape (n, n_features)
        h : Tensor of shape (n, n_latent) or (k, n, n_latent)

        Returns
        -------
        Tensor of shape (n,) or (k, n)
        """
        x = self._data("x", x)
        h = self._latent("h", h)
        if h.shape[-2] != x.shape[0]:
            raise ValueError(
                f"h must have one row per row of x ({x.shape[0]}). "
                f"Got shape {tuple(h.shape)} instead."
            )
        return self._log_p_x_given_decoded(x, self.decoder(h))

    def _log_p_x_given_decoded(self, x: torch.Tensor, decoded: torch.Tensor) -> torch.Tensor:
        if self.decoder_type == "bernoulli":
            # x f - softplus(f) = -BCE(sigmoid(f), x), computed without forming sigmoid(f)
            return -F.binary_cross_entropy_with_logits(
                decoded, x.expand_as(decoded), reduction="none"
            ).sum(-1)
        return -0.5 * (
            ((x - decoded) ** 2).sum(-1) / self.sigma2
            + self.n_features * (LOG_2PI + math.log(self.sigma2))
        )

    def elbo(
        self,
        x: object,
        *,
        generator: torch.Generator,
        n_samples: int = 1,
        kl: str = "analytic",
    ) -> torch.Tensor:
        r"""Estimate :math:`\mathrm{ELBO} = \mathbb E_q[\log p(x \mid h)] - \mathrm{KL}(q \| p(h))`.

        The reconstruction term is averaged over ``n_samples`` reparameterised draws;
        the KL term is exact (``kl="analytic"``, eq. {eq}`eq-kl-gaussian`) or estimated from
        the same draws (``kl="sampled"``). Differentiable; the training objective is
        ``-elbo(...).mean()``. Explained in {ref}`sec-vae-elbo`, eq. {eq}`eq-elbo`.

        Parameters
        ----------
        x : Tensor of shape (n, n_features)
        generator : torch.Generator
        n_samples : int
        kl : {"analytic", "sampled"}

        Returns
        -------
        Tensor of shape (n,)
        """
        x = self._data("x", x)
        check_generator(generator, x.device, "the tensors")
        n_samples = check_positive_int("n_samples", n_samples)
        if kl not in ("analytic", "sampled"):
            raise ValueError(f"kl must be 'analytic' or 'sampled'. Got {describe(kl)} instead.")
        return self._elbo(x, generator, n_samples, analytic_kl=kl == "analytic")

    def _elbo(
        self,
        x: torch.Tensor,
        generator: torch.Generator,
        n_samples: int = 1,
        *,
        analytic_kl: bool = True,
    ) -> torch.Tensor:
        mean, log_var = self._encode(x)  # (n, d)
        if n_samples == 1:
            h = self._reparameterize(mean, log_var, generator)  # (n, d)
        else:
            shape = (n_samples, *mean.shape)
            h = self._reparameterize(mean.expand(shape), log_var.expand(shape), generator)
        reconstruction = self._log_p_x_given_decoded(x, self.decoder(h))  # (n,) or (S, n)
        if analytic_kl:
            kl = 0.5 * (torch.exp(log_var) + mean**2 - 1.0 - log_var).sum(-1)  # (n,)
        else:
            kl = _log_normal_diagonal(h, mean, log_var) - _log_standard_normal(h)
        elbo = reconstruction - kl
        return elbo if n_samples == 1 else elbo.mean(0)

    @torch.no_grad()
    def iwae_bound(
        self,
        x: object,
        *,
        k: int,
        generator: torch.Generator,
        chunk_size: int = 100,
    ) -> torch.Tensor:
        r"""IWAE bound :math:`\mathcal L_k = \log \frac1k \sum_{s=1}^k p(x, h_s) / q(h_s \mid x)`.

        With :math:`h_1, \dots, h_k \sim q(h \mid x)` independently: one draw of the
        estimator whose expectation is the bound of Burda et al. (2016),
        :math:`\mathrm{ELBO} = \mathbb E\mathcal L_1 \le \mathbb E\mathcal L_k
        \le \mathbb E\mathcal L_{k+1} \to \log p(x)`; for large ``k`` it is a
        log-likelihood estimate (biased low).
        The ``k`` samples are drawn ``chunk_size`` at a time and combined with a
        log-sum-exp, so memory is bounded by ``chunk_size * n * width``. Evaluated without
        gradients. Explained in {ref}`sec-iwae`, eq. {eq}`eq-iwae`.

        Parameters
        ----------
        x : Tensor of shape (n, n_features)
        k : int
            Number of importance samples per data point.
        generator : torch.Generator
        chunk_size : int

        Returns
        -------
        Tensor of shape (n,)
        """
        x = self._data("x", x)
        k = check_positive_int("k", k)
        chunk_size = check_positive_int("chunk_size", chunk_size)
        check_generator(generator, x.device, "the tensors")
        mean, log_var = self._encode(x)  # (n, d)
        partial = []
        for start in range(0, k, chunk_size):
            shape = (min(chunk_size, k - start), *mean.shape)
            h = self._reparameterize(mean.expand(shape), log_var.expand(shape), generator)
            log_w = (
                self._log_p_x_given_decoded(x, self.decoder(h))
                + _log_standard_normal(h)
                - _log_normal_diagonal(h, mean, log_var)
            )  # (c, n)
            partial.append(torch.logsumexp(log_w, dim=0))  # (n,)
        return torch.logsumexp(torch.stack(partial), dim=0) - math.log(k)

    # ------------------------------------------------------ sampling / output
    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator, mean: bool = False) -> torch.Tensor:
        r"""Ancestral samples :math:`h \sim \mathcal N(0, I)`, :math:`x \sim p(x \mid h)`.

        Parameters
        ----------
        n : int
        generator : torch.Generator
        mean : bool
            Return the decoder mean :math:`\mathbb E[x \mid h]` (probabilities for the
            Bernoulli decoder) instead of a draw of ``x``.

        Returns
        -------
        Tensor of shape (n, n_features)
        """
        n = check_positive_int("n", n)
        ref = self._reference
        check_generator(generator, ref.device, "the tensors")
        h = torch.randn(
            (n, self.n_latent), generator=generator, dtype=ref.dtype, device=ref.device
        )  # (n, d)
        decoded = self.decoder(h)  # (n, D)
        if self.decoder_type == "bernoulli":
            probs = torch.sigmoid(decoded)
            return probs if mean else torch.bernoulli(probs, generator=generator)
        if mean:
            return decoded
        noise = torch.randn(decoded.shape, generator=generator, dtype=ref.dtype, device=ref.device)
        return decoded + math.sqrt(self.sigma2) * noise

    @torch.no_grad()
    def reconstruct(self, x: object) -> torch.Tensor:
        r"""Decoder mean at the encoder mean, :math:`\mathbb E[x' \mid h = m(x)]`.

        Parameters
        ----------
        x : Tensor of shape (n, n_features)

        Returns
        -------
        Tensor of shape (n, n_features)
            Probabilities (Bernoulli decoder) or :math:`f(m(x))` (Gaussian decoder).
        """
        mean, _ = self.encode(x)
        decoded = self.decoder(mean)
        return torch.sigmoid(decoded) if self.decoder_type == "bernoulli" else decoded


# ---------------------------------------------------------------------- training
@dataclass
class VAEHistory:
    """Per-epoch record of :func:`train_vae`.

    Attributes
    ----------
    train_elbo : list of float
        Mean single-sample ELBO over the epoch's minibatches (parameters change during
        the epoch).
    test_elbo : list of float
        Mean ELBO on the test set after the epoch (empty without a test set); the same
        noise draws every epoch, so differences between epochs are not sampling noise.
    seconds : list of float
        Wall time of each epoch's parameter updates (the test evaluation excluded).
    """

    train_elbo: list[float] = field(default_factory=list)
    test_elbo: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.train_elbo)


def train_vae(
    model: VAE,
    x_train: object,
    *,
    x_test: object | None = None,
    epochs: int = 20,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    n_samples: int = 1,
    seed: int = 0,
    progress: bool = False,
) -> VAEHistory:
    """Maximise the mean ELBO with Adam on shuffled minibatches; return the history.

    Each step minimises ``-model.elbo(batch).mean()`` (reparameterised, analytic KL).
    A NaN or infinite loss stops training with :class:`VAETrainingDivergedError`
    naming the epoch and minibatch; the model then holds the last parameters that gave
    a finite loss. Explained in {ref}`sec-training-vaes`.

    Parameters
    ----------
    model : VAE
        Trained in place.
    x_train : Tensor of shape (n_train, n_features)
    x_test : Tensor of shape (n_test, n_features), optional
    epochs, batch_size : int
    learning_rate : float
        Adam step size.
    n_samples : int
        Reparameterised samples per data point in each ELBO estimate.
    seed : int
        Seeds the shuffling and the noise.
    progress : bool
        Show a progress bar (``tqdm.auto``).

    Returns
    -------
    VAEHistory
    """
    if not isinstance(model, VAE):
        raise TypeError(f"model must be a VAE. Got {describe(model)} instead.")
    x = model._data("x_train", x_train)
    x_eval = None if x_test is None else model._data("x_test", x_test)
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    n_samples = check_positive_int("n_samples", n_samples)
    seed = check_positive_int("seed", seed, minimum=0)
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be a bool. Got {describe(progress)} instead.")
    device = x.device
    generator = torch.Generator(device=device).manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    params = list(model.parameters())
    last_finite = [p.detach().clone() for p in params]
    history = VAEHistory()
    n = x.shape[0]

    def diverged(epoch: int, step: int | None, quantity: str, what: str, value: float) -> None:
        if bar is not None:
            bar.close()
        with torch.no_grad():
            if not all(bool(torch.isfinite(p).all()) for p in params):
                for p, saved in zip(params, last_finite, strict=True):
                    p.copy_(saved)
        where = f"epoch {epoch}" + ("" if step is None else f", minibatch {step}")
        raise VAETrainingDivergedError(
            f"VAE training diverged at {where}: {what} is {value}. The model keeps its last "
            f"finite parameters; lower learning_rate (now {learning_rate}) or check the data.",
            epoch=epoch,
            step=step,
            quantity=quantity,
            history=history,
        )

    epoch_range = range(1, epochs + 1)
    bar = None
    if progress:
        from tqdm.auto import tqdm  # imported here: nothing heavy at import time

        bar = tqdm(epoch_range, desc="VAE", unit="epoch")
    for epoch in epoch_range if bar is None else bar:
        start = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=generator, device=device)  # (n,)
        total = 0.0
        for step, first in enumerate(range(0, n, batch_size)):
            batch = x[order[first : first + batch_size]]  # (B, D)
            loss = -model._elbo(batch, generator, n_samples).mean()
            value = loss.item()
            if not math.isfinite(value):
                diverged(epoch, step, "loss", "the loss (negative ELBO)", value)
            with torch.no_grad():
                for saved, p in zip(last_finite, params, strict=True):
                    saved.copy_(p)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += value * batch.shape[0]
        seconds = time.perf_counter() - start
        model.eval()
        if not all(bool(torch.isfinite(p).all()) for p in params):
            diverged(epoch, None, "parameters", "a parameter", math.nan)
        postfix = {"train_elbo": f"{-total / n:.3f}"}
        if x_eval is not None:
            eval_generator = torch.Generator(device=device).manual_seed(seed + 1)
            with torch.no_grad():
                test = model._elbo(x_eval, eval_generator).mean().item()
            if not math.isfinite(test):
                diverged(epoch, None, "test_elbo", "the test ELBO", test)
            history.test_elbo.append(test)
            postfix["test_elbo"] = f"{test:.3f}"
        history.train_elbo.append(-total / n)
        history.seconds.append(seconds)
        if bar is not None:
            bar.set_postfix(postfix)
    if bar is not None:
        bar.close()
    return history


# ------------------------------------------------------------- linear-Gaussian model
class LinearGaussianModel:
    r"""Linear-Gaussian latent model (probabilistic PCA), :math:`x = Ch + \mu + \sigma\varepsilon`.

    Here :math:`p(h) = \mathcal N(0, I)` and
    :math:`p(x \mid h) = \mathcal N(C h + \mu, \sigma^2 I)`.

    Every quantity of the VAE identity is available in closed form (Tipping & Bishop, 1999):

    * marginal :math:`p(x) = \mathcal N(\mu, C C^\top + \sigma^2 I)`;
    * posterior :math:`p(h \mid x) = \mathcal N(M^{-1} C^\top (x - \mu), \sigma^2 M^{-1})`,
      :math:`M = C^\top C + \sigma^2 I`;
    * the ELBO and :math:`\mathrm{KL}(q \| p(h \mid x))` for any Gaussian :math:`q`.

    Explained in {ref}`sec-linear-gaussian`.

    Parameters
    ----------
    C : Tensor of shape (n_features, n_latent)
    mu : Tensor of shape (n_features,)
    sigma2 : float
        Observation noise variance :math:`\sigma^2 > 0`.
    """

    def __init__(self, C: object, mu: object, sigma2: float) -> None:
        self.C = as_tensor("C", C, ndim=2)
        self.mu = as_tensor("mu", mu, ndim=1, shape=(self.C.shape[0],))
        check_same_placement("C", self.C, mu=self.mu)
        self.sigma2 = check_positive_float("sigma2", sigma2)
        self.n_features, self.n_latent = self.C.shape
        eye = torch.eye(self.n_latent, dtype=self.C.dtype, device=self.C.device)
        self._M = self.C.T @ self.C + self.sigma2 * eye  # (d, d)
        self._M_chol = torch.linalg.cholesky(self._M)  # (d, d)

    def __repr__(self) -> str:
        return (
            f"LinearGaussianModel(n_features={self.n_features}, n_latent={self.n_latent}, "
            f"sigma2={self.sigma2})"
        )

    # ------------------------------------------------------------- validation
    def _data(self, x: object) -> torch.Tensor:
        x_t = as_tensor("x", x, ndim=2, dtype=self.C.dtype, device=self.C.device)
        if x_t.shape[1] != self.n_features:
            raise ValueError(
                f"x must have shape (n, {self.n_features}). Got shape {tuple(x_t.shape)} instead."
            )
        return x_t

    def _q(
        self, n: int, q_mean: object, q_var: object | None, q_cov: object | None
    ) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Validate q; return ``(mean (n, d), var (n, d) or cov (n, d, d), is_full)``."""
        kw = {"dtype": self.C.dtype, "device": self.C.device}
        d = self.n_latent
        mean = as_tensor("q_mean", q_mean, ndim=(1, 2), **kw)
        if mean.shape[-1] != d or (mean.ndim == 2 and mean.shape[0] not in (1, n)):
            raise ValueError(
                f"q_mean must have shape ({n}, {d}) or ({d},). "
                f"Got shape {tuple(mean.shape)} instead."
            )
        mean = mean.expand(n, d)
        if (q_var is None) == (q_cov is None):
            raise ValueError(
                "q_var and q_cov must be given one at a time (diagonal variances or a full "
                f"covariance). Got {'both' if q_var is not None else 'neither'} instead."
            )
        if q_var is not None:
            var = as_tensor("q_var", q_var, ndim=(0, 1, 2), **kw)
            try:
                var = var.expand(n, d)
            except RuntimeError:
                raise ValueError(
                    f"q_var must broadcast to shape ({n}, {d}). "
                    f"Got shape {tuple(var.shape)} instead."
                ) from None
            if not bool((var > 0).all()):
                raise ValueError(
                    "q_var must be positive (variances). "
                    f"Got the minimum {var.min().item()} instead."
                )
            return mean, var, False
        cov = as_tensor("q_cov", q_cov, ndim=(2, 3), **kw)
        if cov.shape[-2:] != (d, d) or (cov.ndim == 3 and cov.shape[0] not in (1, n)):
            raise ValueError(
                f"q_cov must have shape ({d}, {d}) or ({n}, {d}, {d}). "
                f"Got shape {tuple(cov.shape)} instead."
            )
        cov = cov.expand(n, d, d)
        if not torch.allclose(cov, cov.transpose(-1, -2), rtol=1e-12, atol=1e-12):
            raise ValueError("q_cov must be symmetric. Got a non-symmetric matrix instead.")
        if bool((torch.linalg.cholesky_ex(cov).info != 0).any()):
            raise ValueError(
                "q_cov must be positive definite. Got a matrix without a Cholesky factor instead."
            )
        return mean, cov, True

    # ------------------------------------------------------------- exact terms
    def log_marginal(self, x: object) -> torch.Tensor:
        r"""Exact :math:`\log p(x) = \log \mathcal N(x; \mu, C C^\top + \sigma^2 I)`.

        Computed with a Cholesky factor of the (n_features, n_features) covariance,
        independently of the posterior. Explained in {ref}`sec-linear-gaussian`.

        Parameters
        ----------
        x : Tensor of shape (n, n_features)

        Returns
        -------
        Tensor of shape (n,)
        """
        x = self._data(x)
        eye = torch.eye(self.n_features, dtype=x.dtype, device=x.device)
        L = torch.linalg.cholesky(self.C @ self.C.T + self.sigma2 * eye)  # (D, D)
        z = torch.linalg.solve_triangular(L, (x - self.mu).T, upper=False)  # (D, n)
        log_det = 2.0 * torch.log(torch.diagonal(L)).sum()
        return -0.5 * (self.n_features * LOG_2PI + log_det + (z**2).sum(0))

    def posterior(self, x: object) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Exact :math:`p(h \mid x) = \mathcal N(M^{-1} C^\top (x - \mu), \sigma^2 M^{-1})`.

        Here :math:`M = C^\top C + \sigma^2 I` (n_latent, n_latent).

        Parameters
        ----------
        x : Tensor of shape (n, n_features)

        Returns
        -------
        mean : Tensor of shape (n, n_latent)
        covariance : Tensor of shape (n_latent, n_latent)
            The same for every ``x``.
        """
        x = self._data(x)
        return self._posterior_mean(x), self._posterior_cov()

    def _posterior_mean(self, x: torch.Tensor) -> torch.Tensor:
        rhs = self.C.T @ (x - self.mu).T  # (d, n)
        return torch.cholesky_solve(rhs, self._M_chol).T  # (n, d)

    def _posterior_cov(self) -> torch.Tensor:
        return self.sigma2 * torch.cholesky_inverse(self._M_chol)  # (d, d)

    def log_p_x_given_h(self, x: object, h: object) -> torch.Tensor:
        r""":math:`\log p(x \mid h) = \log \mathcal N(x; C h + \mu, \sigma^2 I)`.

        Parameters
        ----------
        x : Tensor of shape (n, n_features)
        h : Tensor of shape (n, n_latent) or (k, n, n_latent)

        Returns
        -------
        Tensor of shape (n,) or (k, n)
        """
        x = self._data(x)
        h = as_tensor("h", h, ndim=(2, 3), dtype=self.C.dtype, device=self.C.device)
        if h.shape[-1] != self.n_latent or h.shape[-2] != x.shape[0]:
            raise ValueError(
                f"h must have shape (..., {x.shape[0]}, {self.n_latent}). "
                f"Got shape {tuple(h.shape)} instead."
            )
        return self._log_p_x_given_h(x, h)

    def _log_p_x_given_h(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        residual = x - h @ self.C.T - self.mu  # (..., n, D)
        return -0.5 * (
            (residual**2).sum(-1) / self.sigma2
            + self.n_features * (LOG_2PI + math.log(self.sigma2))
        )

    def elbo(
        self, x: object, q_mean: object, q_var: object | None = None, *, q_cov: object | None = None
    ) -> torch.Tensor:
        r"""Exact :math:`\mathrm{ELBO} = \mathbb E_q[\log p(x \mid h)] - \mathrm{KL}(q \| p(h))`.

        With :math:`q = \mathcal N(m, S)`:
        :math:`\mathbb E_q[\log p(x \mid h)] = -\frac12[D \log 2\pi\sigma^2
        + (\lVert x - \mu - C m \rVert^2 + \operatorname{tr} C S C^\top)/\sigma^2]` and
        :math:`\mathrm{KL}(q \| p(h)) = \frac12[\operatorname{tr} S + \lVert m \rVert^2 - d
        - \log\det S]`. Differentiable in ``q_mean``, ``q_var`` and ``q_cov``. Explained in
        {ref}`sec-linear-gaussian`.

        Parameters
        ----------
        x : Tensor of shape (n, n_features)
        q_mean : Tensor of shape (n, n_latent) or (n_latent,)
        q_var : Tensor broadcastable to (n, n_latent), optional
            Variances of a diagonal :math:`q` (positive).
        q_cov : Tensor of shape (n_latent, n_latent) or (n, n_latent, n_latent), optional
            A full covariance instead (symmetric positive definite).

        Returns
        -------
        Tensor of shape (n,)
        """
        x = self._data(x)
        mean, S, full = self._q(x.shape[0], q_mean, q_var, q_cov)
        residual = x - self.mu - mean @ self.C.T  # (n, D)
        if full:
            trace_CSC = (S * (self.C.T @ self.C)).sum((-1, -2))  # (n,)
            trace_S = torch.diagonal(S, dim1=-2, dim2=-1).sum(-1)
            log_det_S = torch.logdet(S)
        else:
            trace_CSC = S @ (self.C**2).sum(0)  # (n,)
            trace_S = S.sum(-1)
            log_det_S = torch.log(S).sum(-1)
        reconstruction = -0.5 * (
            self.n_features * (LOG_2PI + math.log(self.sigma2))
            + ((residual**2).sum(-1) + trace_CSC) / self.sigma2
        )
        kl_prior = 0.5 * (trace_S + (mean**2).sum(-1) - self.n_latent - log_det_S)
        return reconstruction - kl_prior

    def kl_to_posterior(
        self, x: object, q_mean: object, q_var: object | None = None, *, q_cov: object | None = None
    ) -> torch.Tensor:
        r"""Exact :math:`\mathrm{KL}(q \| p(h \mid x))` between Gaussians.

        With :math:`p(h \mid x) = \mathcal N(\mu_p, \Sigma_p)` and
        :math:`\Sigma_p^{-1} = M/\sigma^2`:
        :math:`\frac12[\operatorname{tr}(\Sigma_p^{-1} S) + (\mu_p - m)^\top \Sigma_p^{-1}
        (\mu_p - m) - d + \log\det\Sigma_p - \log\det S]`. Same arguments as :meth:`elbo`.

        Returns
        -------
        Tensor of shape (n,)
        """
        x = self._data(x)
        mean, S, full = self._q(x.shape[0], q_mean, q_var, q_cov)
        precision = self._M / self.sigma2  # (d, d)
        diff = self._posterior_mean(x) - mean  # (n, d)
        quad = ((diff @ precision) * diff).sum(-1)  # (n,)
        if full:
            trace = (precision * S).sum((-1, -2))
            log_det_S = torch.logdet(S)
        else:
            trace = S @ torch.diagonal(precision)
            log_det_S = torch.log(S).sum(-1)
        log_det_post = (
            self.n_latent * math.log(self.sigma2)
            - 2.0 * torch.log(torch.diagonal(self._M_chol)).sum()
        )
        return 0.5 * (trace + quad - self.n_latent + log_det_post - log_det_S)

    # ---------------------------------------------------------- sampled terms
    def estimate_elbo(
        self,
        x: object,
        q_mean: object,
        q_var: object,
        *,
        n_samples: int,
        generator: torch.Generator,
    ) -> torch.Tensor:
        r"""Sampled ELBO :math:`\frac1S \sum_s \log p(x \mid h_s) - \mathrm{KL}(q \| p)`.

        Here :math:`h_s = m + \sqrt v \odot \varepsilon_s` with
        :math:`\varepsilon_s \sim \mathcal N(0, I)`.

        The sampled counterpart of :meth:`elbo` for a diagonal :math:`q` (the VAE's
        estimator, KL exact); differentiable in ``q_mean`` and ``q_var``, so its gradient
        is the reparameterised gradient. Explained in {ref}`sec-reparameterization`.

        Returns
        -------
        Tensor of shape (n,)
        """
        x = self._data(x)
        mean, var, _ = self._q(x.shape[0], q_mean, q_var, None)
        n_samples = check_positive_int("n_samples", n_samples)
        check_generator(generator, x.device, "the tensors")
        eps = torch.randn(
            (n_samples, *mean.shape), generator=generator, dtype=x.dtype, device=x.device
        )  # (S, n, d)
        h = mean + torch.sqrt(var) * eps  # (S, n, d)
        reconstruction = self._log_p_x_given_h(x, h).mean(0)  # (n,)
        kl_prior = 0.5 * (var + mean**2 - 1.0 - torch.log(var)).sum(-1)
        return reconstruction - kl_prior

    def estimate_log_marginal(
        self,
        x: object,
        *,
        k: int,
        generator: torch.Generator,
        q_mean: object | None = None,
        q_var: object | None = None,
        chunk_size: int = 1000,
    ) -> torch.Tensor:
        r"""Importance-sampling estimate :math:`\log \frac1k \sum_{s=1}^k p(x, h_s) / q(h_s)`.

        The samples are :math:`h_s \sim q` independently.

        The sampled counterpart of :meth:`log_marginal`. Without ``q_mean``/``q_var`` the
        proposal is the prior and the estimate is :math:`\log \frac1k \sum_s p(x \mid h_s)`;
        with a diagonal Gaussian :math:`q` its expectation is the importance-weighted
        bound :math:`\mathcal L_k`. Explained in {ref}`sec-latent-variable-models` and
        {ref}`sec-iwae`.

        Parameters
        ----------
        x : Tensor of shape (n, n_features)
        k : int
        generator : torch.Generator
        q_mean : Tensor of shape (n, n_latent) or (n_latent,), optional
        q_var : Tensor broadcastable to (n, n_latent), optional
        chunk_size : int
            Samples drawn at a time.

        Returns
        -------
        Tensor of shape (n,)
        """
        x = self._data(x)
        k = check_positive_int("k", k)
        chunk_size = check_positive_int("chunk_size", chunk_size)
        check_generator(generator, x.device, "the tensors")
        n, d = x.shape[0], self.n_latent
        if q_mean is None and q_var is None:
            mean, std = None, None
        elif q_mean is None or q_var is None:
            raise ValueError(
                "q_mean and q_var must be given together (or neither, for the prior). "
                f"Got only {'q_mean' if q_var is None else 'q_var'} instead."
            )
        else:
            mean, var, _ = self._q(n, q_mean, q_var, None)
            std = torch.sqrt(var)
        partial = []
        for start in range(0, k, chunk_size):
            c = min(chunk_size, k - start)
            eps = torch.randn((c, n, d), generator=generator, dtype=x.dtype, device=x.device)
            if mean is None:
                log_w = self._log_p_x_given_h(x, eps)  # (c, n)
            else:
                h = mean + std * eps  # (c, n, d)
                log_q = -0.5 * (LOG_2PI + 2.0 * torch.log(std) + eps**2).sum(-1)
                log_w = self._log_p_x_given_h(x, h) + _log_standard_normal(h) - log_q
            partial.append(torch.logsumexp(log_w, dim=0))  # (n,)
        return torch.logsumexp(torch.stack(partial), dim=0) - math.log(k)

    def sample(self, n: int, *, generator: torch.Generator) -> torch.Tensor:
        r"""Draw :math:`h \sim \mathcal N(0, I)` and :math:`x = C h + \mu + \sigma \varepsilon`.

        Returns
        -------
        Tensor of shape (n, n_features)
        """
        n = check_positive_int("n", n)
        check_generator(generator, self.C.device, "the tensors")
        kw = {"generator": generator, "dtype": self.C.dtype, "device": self.C.device}
        h = torch.randn((n, self.n_latent), **kw)  # (n, d)
        noise = torch.randn((n, self.n_features), **kw)  # (n, D)
        return h @ self.C.T + self.mu + math.sqrt(self.sigma2) * noise
