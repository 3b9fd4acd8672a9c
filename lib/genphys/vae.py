r"""Variational autoencoders: the ELBO, the importance-weighted bound and their training.

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

:class:`genphys.linear_gaussian.LinearGaussianModel` (probabilistic PCA) has every term of
that identity in closed form, so the sampled estimators of :class:`VAE` can be checked
against exact numbers. The Gaussian pieces (KL, log-densities, log-mean-exp) live in
:mod:`genphys.gaussian`; training runs on :func:`genphys.fitting.fit`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import (
    as_tensor,
    check_binary,
    check_generator,
    check_positive_float,
    check_positive_int,
    describe,
)
from .fitting import History, fit, minibatches
from .gaussian import (
    LOG_2PI,
    _kl_diagonal,
    check_gaussian,
    estimate_kl_diagonal_gaussian_standard_normal,
    kl_diagonal_gaussian_standard_normal,
    log_mean_exp,
    log_mean_exp_chunked,
    log_normal_diagonal,
    log_standard_normal,
)
from .seeding import make_generator

__all__ = [
    "VAE",
    "estimate_kl_diagonal_gaussian_standard_normal",
    "kl_diagonal_gaussian_standard_normal",
    "log_mean_exp",
    "sample_gradient_reparameterized",
    "sample_gradient_score_function",
    "train_vae",
]

# kl_diagonal_gaussian_standard_normal, its estimate and log_mean_exp live in
# genphys.gaussian and are re-exported here, where chapter 12 first meets them.

DECODERS = ("bernoulli", "gaussian")
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "softplus": nn.Softplus}


# ------------------------------------------------------------------ gradient estimators
def _gradient_inputs(
    f: object, mean: object, log_var: object, n_samples: object, generator: object
) -> tuple[torch.Tensor, torch.Tensor, int, torch.Tensor]:
    if not callable(f):
        raise TypeError(f"f must be a callable h -> f(h). Got {describe(f)} instead.")
    mean_t, log_var_t = check_gaussian(mean, log_var)
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
    seed, generator
        Exactly one (:mod:`genphys.seeding`; a generator on the CPU): the initial weights,
        PyTorch's default uniform initialisation.
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
        generator: torch.Generator | None = None,
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
        generator = make_generator(seed, generator)  # on the CPU, whatever the device
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

        Differentiable in ``mean`` and ``log_var``, eq. {eq}`eq-reparam`. The ELBO, the IWAE
        bound and the forward pass draw their codes with it. Shapes, dtype, device and the
        generator are checked, the values are not: a NaN from a diverging encoder passes
        through, so that the trainer reports the epoch and mini-batch where it appeared.
        Explained in {ref}`sec-reparameterization`.

        Parameters
        ----------
        mean, log_var : Tensor of shape (..., n_latent)
        generator : torch.Generator

        Returns
        -------
        h : Tensor of the shape of ``mean``
        """
        ref = self._reference
        mean_t = as_tensor("mean", mean, dtype=ref.dtype, device=ref.device, finite=False)
        log_var_t = as_tensor("log_var", log_var, dtype=ref.dtype, device=ref.device, finite=False)
        if mean_t.shape[-1] != self.n_latent or log_var_t.shape != mean_t.shape:
            raise ValueError(
                f"mean and log_var must have the same shape (..., {self.n_latent}). "
                f"Got shapes {tuple(mean_t.shape)} and {tuple(log_var_t.shape)} instead."
            )
        check_generator(generator, mean_t.device, "the tensors")
        eps = torch.randn(
            mean_t.shape, generator=generator, dtype=mean_t.dtype, device=mean_t.device
        )  # (..., d), standard normal
        return mean_t + torch.exp(0.5 * log_var_t) * eps  # (..., d)

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
        h = self.reparameterize(mean, log_var, generator=generator)
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
        mean, log_var = self._encode(x)  # (n, d)
        if n_samples == 1:
            h = self.reparameterize(mean, log_var, generator=generator)  # (n, d)
        else:
            shape = (n_samples, *mean.shape)
            h = self.reparameterize(mean.expand(shape), log_var.expand(shape), generator=generator)
        reconstruction = self._log_p_x_given_decoded(x, self.decoder(h))  # (n,) or (S, n)
        if kl == "analytic":
            kl = _kl_diagonal(mean, log_var)  # (n,), eq. (eq-kl-gaussian)
        else:
            kl = log_normal_diagonal(h, mean, log_var) - log_standard_normal(h)  # (S, n)
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

        def draw_log_weights(c: int) -> torch.Tensor:
            shape = (c, *mean.shape)
            h = self.reparameterize(mean.expand(shape), log_var.expand(shape), generator=generator)
            return (
                self._log_p_x_given_decoded(x, self.decoder(h))
                + log_standard_normal(h)
                - log_normal_diagonal(h, mean, log_var)
            )  # (c, n): log p(x | h) + log p(h) - log q(h | x)

        return log_mean_exp_chunked(draw_log_weights, k, chunk_size=chunk_size)

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
def train_vae(
    model: VAE,
    x_train: object,
    *,
    x_test: object | None = None,
    n_epochs: int = 20,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    n_samples: int = 1,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> History:
    """Maximise the mean ELBO with Adam: each step minimises ``-model.elbo(batch).mean()``.

    The loop is :func:`genphys.fitting.fit` over :func:`genphys.fitting.minibatches`; the
    step below is all that is specific to the VAE (reparameterised samples, analytic KL).
    After each epoch the monitor records the mean ELBO of ``x_test`` with the same noise
    every epoch (a generator seeded with ``history.extras["test_seed"]``, drawn once from
    the training generator), so differences between epochs are not sampling noise. A NaN
    or infinite value stops training with :class:`genphys.fitting.TrainingDivergedError`
    naming the epoch and mini-batch; the model keeps its parameters from the start of that
    epoch. Explained in {ref}`sec-training-vaes`.

    Parameters
    ----------
    model : VAE
        Trained in place.
    x_train : Tensor of shape (n_train, n_features)
    x_test : Tensor of shape (n_test, n_features), optional
    n_epochs, batch_size : int
    learning_rate : float
        Adam step size.
    n_samples : int
        Reparameterised samples per data point in each ELBO estimate.
    seed, generator
        Exactly one (:mod:`genphys.seeding`): the shuffling and the noise.
    progress : bool
        Show a progress bar.

    Returns
    -------
    genphys.fitting.History
        Columns ``train_elbo`` (mean single-sample ELBO over the epoch's mini-batches,
        while the parameters change) and, with ``x_test``, ``test_elbo``.
    """
    if not isinstance(model, VAE):
        raise TypeError(f"model must be a VAE. Got {describe(model)} instead.")
    x = model._data("x_train", x_train)
    x_eval = None if x_test is None else model._data("x_test", x_test)
    batch_size = check_positive_int("batch_size", batch_size)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    n_samples = check_positive_int("n_samples", n_samples)
    g = make_generator(seed, generator, device=x.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    history = History()
    history.extras["test_seed"] = test_seed = int(
        torch.randint(2**62, (), generator=g, device=x.device)
    )

    def step(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        loss = -model.elbo(batch, generator=g, n_samples=n_samples).mean()  # (), the negative ELBO
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"train_elbo": -loss.detach()}

    @torch.no_grad()
    def monitor(epoch: int) -> dict[str, torch.Tensor]:
        if x_eval is None:
            return {}
        same_noise = make_generator(seed=test_seed, device=x_eval.device)
        return {"test_elbo": model.elbo(x_eval, generator=same_noise).mean()}

    return fit(
        step,
        lambda epoch: minibatches(x, batch_size, generator=g),
        n_epochs=n_epochs,
        parameters=model,
        monitor=monitor,
        progress=progress,
        desc="VAE",
        history=history,
        hint=f"lower the learning_rate (now {learning_rate}) or check the data",
    )
