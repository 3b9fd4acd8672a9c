"""The Gaussian–Bernoulli RBM: real-valued visible units, binary hidden units, exact log Z.

Explained in {ref}`sec-without-sampling`. With per-visible variances
:math:`\\sigma_i^2 = e^{s_i}` (``log_var`` holds :math:`s`), the energy
(Cho, Ilin & Raiko 2011) is

.. math::

    E(x, h) = \\sum_i \\frac{(x_i - a_i)^2}{2\\sigma_i^2} - b^\\top h
              - \\sum_{ij} \\frac{x_i}{\\sigma_i^2} W_{ij} h_j,

so that :math:`p(x \\mid h) = \\mathcal N(a + W h, \\operatorname{diag}\\sigma^2)` and
:math:`p(h_j = 1 \\mid x) = \\sigma(b_j + \\sum_i W_{ij} x_i / \\sigma_i^2)`. The integral over
:math:`x` is Gaussian for each hidden state, so

.. math::

    \\log Z = \\operatorname{logsumexp}_h \\Big[b^\\top h + \\sum_i
    \\frac{(a_i + (W h)_i)^2 - a_i^2}{2 \\sigma_i^2}\\Big]
    + \\tfrac12 \\sum_i \\log(2\\pi\\sigma_i^2),

an exact sum over the :math:`2^N` hidden states (:func:`log_partition_exact`).
:func:`train_gaussian_rbm` trains on real-valued data with CD-k or PCD-k on the library's
training loop :func:`genphys.fitting.fit`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import (
    as_tensor,
    check_binary,
    check_float_dtype,
    check_positive_float,
    check_positive_int,
    describe,
)
from .enumeration import CHUNK_ELEMENTS, binary_states, chunked_logsumexp, code_ranges
from .fitting import History, fit, minibatches
from .optim import Adam
from .seeding import make_generator

__all__ = [
    "MAX_EXACT_HIDDEN",
    "GaussianBernoulliRBM",
    "gibbs_chain",
    "log_likelihood_exact",
    "log_partition_exact",
    "train_gaussian_rbm",
]

#: Largest hidden layer the exact sums enumerate (2**20 states).
MAX_EXACT_HIDDEN = 20


class GaussianBernoulliRBM(nn.Module):
    """RBM with Gaussian visible units of variance :math:`\\sigma_i^2 = e^{s_i}` and binary hidden units.

    Parameters
    ----------
    n_visible, n_hidden : int
    seed, generator
        Exactly one (:mod:`genphys.seeding`, a CPU generator): the initial weights
        :math:`W_{ij} \\sim \\mathcal N(0, \\mathrm{weight\\_scale}^2)`; the biases and
        ``log_var`` start at zero (unit variances).
    weight_scale : float
    dtype : torch.dtype
    device : torch.device or str, optional

    Attributes
    ----------
    W : Parameter of shape (n_visible, n_hidden)
    a : Parameter of shape (n_visible,)
        The visible bias, the mean of :math:`x` when :math:`h = 0`.
    b : Parameter of shape (n_hidden,)
    log_var : Parameter of shape (n_visible,)
        :math:`s_i = \\log \\sigma_i^2`.
    """

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        weight_scale: float = 0.1,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        n_visible = check_positive_int("n_visible", n_visible)
        n_hidden = check_positive_int("n_hidden", n_hidden)
        weight_scale = check_positive_float("weight_scale", weight_scale, allow_zero=True)
        check_float_dtype("dtype", dtype)
        g = make_generator(seed, generator)
        W = weight_scale * torch.randn(n_visible, n_hidden, generator=g, dtype=torch.float64)
        kw = {"dtype": dtype, "device": device}
        self.W = nn.Parameter(W.to(**kw))
        self.a = nn.Parameter(torch.zeros(n_visible, **kw))
        self.b = nn.Parameter(torch.zeros(n_hidden, **kw))
        self.log_var = nn.Parameter(torch.zeros(n_visible, **kw))

    @classmethod
    def from_parameters(
        cls, W: object, a: object, b: object, log_var: object
    ) -> GaussianBernoulliRBM:
        """Build the model from ``W`` (M, N), ``a`` (M,), ``b`` (N,) and ``log_var`` (M,)."""
        W_t = as_tensor("W", W, ndim=2)
        a_t = as_tensor("a", a, shape=(W_t.shape[0],), dtype=W_t.dtype)
        b_t = as_tensor("b", b, shape=(W_t.shape[1],), dtype=W_t.dtype)
        s_t = as_tensor("log_var", log_var, shape=(W_t.shape[0],), dtype=W_t.dtype)
        model = cls(W_t.shape[0], W_t.shape[1], seed=0, weight_scale=0.0, dtype=W_t.dtype)
        with torch.no_grad():
            for p, v in zip(
                (model.W, model.a, model.b, model.log_var), (W_t, a_t, b_t, s_t), strict=True
            ):
                p.copy_(v)
        return model.to(W_t.device)

    @property
    def n_visible(self) -> int:
        return self.W.shape[0]

    @property
    def n_hidden(self) -> int:
        return self.W.shape[1]

    def extra_repr(self) -> str:
        return f"n_visible={self.n_visible}, n_hidden={self.n_hidden}, dtype={self.W.dtype}"

    # ------------------------------------------------------------- validation
    def _layer(self, name: str, value: object, size: int) -> torch.Tensor:
        tensor = as_tensor(name, value, ndim=(1, 2), dtype=self.W.dtype, device=self.W.device)
        if tensor.shape[-1] != size:
            raise ValueError(
                f"{name} must have {size} columns (one per unit). "
                f"Got shape {tuple(tensor.shape)} instead."
            )
        return tensor

    # ---------------------------------------------------------------- energies
    def energy(self, x: object, h: object) -> torch.Tensor:
        """:math:`E(x, h) = \\sum_i (x_i - a_i)^2 / 2\\sigma_i^2 - b^\\top h - (x/\\sigma^2)^\\top W h`.

        Parameters
        ----------
        x : Tensor of shape (batch, n_visible) or (n_visible,)
        h : Tensor of shape (batch, n_hidden) or (n_hidden,)
            Binary.

        Returns
        -------
        Tensor of shape (batch,) or ()
        """
        x = self._layer("x", x, self.n_visible)
        h = check_binary("h", self._layer("h", h, self.n_hidden))
        if x.shape[:-1] != h.shape[:-1]:
            raise ValueError(
                "x and h must have the same batch shape (one h per x). Got x of shape "
                f"{tuple(x.shape)} and h of shape {tuple(h.shape)} instead."
            )
        inv_var = torch.exp(-self.log_var)  # (M,)
        quadratic = 0.5 * ((x - self.a) ** 2 * inv_var).sum(-1)  # (B,)
        return quadratic - h @ self.b - (((x * inv_var) @ self.W) * h).sum(-1)

    def hidden_field(self, x: object) -> torch.Tensor:
        """:math:`b_j + \\sum_i W_{ij} x_i / \\sigma_i^2`, shape (batch, n_hidden)."""
        x = self._layer("x", x, self.n_visible)
        return (x * torch.exp(-self.log_var)) @ self.W + self.b

    def free_energy(self, x: object) -> torch.Tensor:
        """:math:`F(x) = \\sum_i (x_i - a_i)^2 / 2\\sigma_i^2 - \\sum_j \\log(1 + e^{b_j + (W^\\top x/\\sigma^2)_j})`.

        It satisfies :math:`p(x) = e^{-F(x)} / Z`; differentiable in ``x`` and in the
        parameters.

        Parameters
        ----------
        x : Tensor of shape (batch, n_visible) or (n_visible,)

        Returns
        -------
        Tensor of shape (batch,) or ()
        """
        x = self._layer("x", x, self.n_visible)
        quadratic = 0.5 * ((x - self.a) ** 2 * torch.exp(-self.log_var)).sum(-1)  # (B,)
        field = (x * torch.exp(-self.log_var)) @ self.W + self.b  # (B, N)
        return quadratic - F.softplus(field, threshold=37.0).sum(-1)

    def hidden_log_weight(self, h: object) -> torch.Tensor:
        """:math:`-F(h) = b^\\top h + \\sum_i [(a_i + (Wh)_i)^2 - a_i^2] / 2\\sigma_i^2 + \\frac12\\sum_i \\log 2\\pi\\sigma_i^2`.

        The log of :math:`\\int e^{-E(x, h)} dx`, so that :math:`p(h) = e^{-F(h)} / Z`.

        Parameters
        ----------
        h : Tensor of shape (batch, n_hidden) or (n_hidden,)

        Returns
        -------
        Tensor of shape (batch,) or ()
        """
        h = check_binary("h", self._layer("h", h, self.n_hidden))
        mean = h @ self.W.T + self.a  # (B, M)
        inv_var = torch.exp(-self.log_var)  # (M,)
        gauss = 0.5 * ((mean**2 - self.a**2) * inv_var).sum(-1)  # (B,)
        norm = 0.5 * (self.log_var + math.log(2 * math.pi)).sum()
        return h @ self.b + gauss + norm

    # ------------------------------------------------------------ conditionals
    def prob_h_given_x(self, x: object) -> torch.Tensor:
        """:math:`p(h_j = 1 \\mid x) = \\sigma(b_j + \\sum_i W_{ij} x_i / \\sigma_i^2)`, shape (batch, n_hidden)."""
        return torch.sigmoid(self.hidden_field(x))

    def mean_x_given_h(self, h: object) -> torch.Tensor:
        """:math:`\\mathbb E[x \\mid h] = a + W h`, shape (batch, n_visible); the variance is :math:`\\sigma^2`."""
        h = self._layer("h", h, self.n_hidden)
        return h @ self.W.T + self.a

    def log_prob_x_given_h(self, x: object, h: object) -> torch.Tensor:
        """:math:`\\log \\mathcal N(x; a + W h, \\operatorname{diag} \\sigma^2)`, shape (batch,)."""
        x = self._layer("x", x, self.n_visible)
        mean = self.mean_x_given_h(h)  # (B, M)
        return -0.5 * (
            (x - mean) ** 2 * torch.exp(-self.log_var) + self.log_var + math.log(2 * math.pi)
        ).sum(-1)

    def sample_h_given_x(
        self, x: object, *, seed: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw :math:`h \\sim p(h \\mid x)`, every unit an independent Bernoulli.

        ``seed`` or ``generator``: exactly one (:mod:`genphys.seeding`), on the model's device.
        """
        g = make_generator(seed, generator, device=self.W.device)
        return torch.bernoulli(self.prob_h_given_x(x), generator=g)

    def sample_x_given_h(
        self, h: object, *, seed: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw :math:`x \\sim \\mathcal N(a + W h, \\operatorname{diag} \\sigma^2)`.

        ``seed`` or ``generator``: exactly one (:mod:`genphys.seeding`), on the model's device.
        """
        g = make_generator(seed, generator, device=self.W.device)
        mean = self.mean_x_given_h(h)  # (B, M)
        noise = torch.randn(mean.shape, generator=g, dtype=mean.dtype, device=mean.device)  # (B, M)
        return mean + torch.exp(0.5 * self.log_var) * noise


def _check_model(model: object) -> GaussianBernoulliRBM:
    if not isinstance(model, GaussianBernoulliRBM):
        raise TypeError(f"model must be a GaussianBernoulliRBM. Got {describe(model)} instead.")
    for name, p in model.named_parameters():
        if not bool(torch.isfinite(p).all()):
            raise ValueError(
                f"model parameter {name} must be finite. Got NaN or infinite entries instead."
            )
    return model


def _data(model: GaussianBernoulliRBM, name: str, data: object) -> torch.Tensor:
    x = as_tensor(name, data, ndim=2, dtype=model.W.dtype, device=model.W.device)
    if x.shape[1] != model.n_visible:
        raise ValueError(
            f"{name} must have shape (n_samples, {model.n_visible}). "
            f"Got shape {tuple(x.shape)} instead."
        )
    return x


def log_partition_exact(model: GaussianBernoulliRBM) -> torch.Tensor:
    """Exact :math:`\\log Z = \\operatorname{logsumexp}_h [-F(h)]`, a Gaussian integral per hidden state.

    Differentiable with respect to the parameters. Explained in {ref}`sec-without-sampling`.
    The :math:`2^N` hidden states are summed in chunks of
    ``CHUNK_ELEMENTS // max(M, N)`` states (:data:`genphys.enumeration.CHUNK_ELEMENTS`), and
    the gradient is accumulated chunk by chunk as an expectation, so memory stays about
    100 MiB whatever the size (:func:`genphys.enumeration.chunked_logsumexp`).

    Parameters
    ----------
    model : GaussianBernoulliRBM
        With at most ``MAX_EXACT_HIDDEN`` hidden units.

    Returns
    -------
    Tensor of shape ()
    """
    _check_model(model)
    if model.n_hidden > MAX_EXACT_HIDDEN:
        raise ValueError(
            f"model must have at most {MAX_EXACT_HIDDEN} hidden units for the exact sum over "
            f"2**n_hidden states. Got n_hidden={model.n_hidden} instead."
        )
    kw = {"dtype": model.W.dtype, "device": model.W.device}
    n = model.n_hidden

    def log_weight(codes: tuple[int, int]) -> torch.Tensor:
        h = binary_states(n, start=codes[0], stop=codes[1], **kw)  # (S, N)
        return model.hidden_log_weight(h)  # (S,)

    per_chunk = CHUNK_ELEMENTS // max(model.n_visible, n)
    return chunked_logsumexp(log_weight, code_ranges(2**n, per_chunk), list(model.parameters()))


def log_likelihood_exact(
    model: GaussianBernoulliRBM, data: object, *, log_z: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean exact log-density :math:`\\frac1n \\sum_k \\log p(x_k) = -\\overline{F(x)} - \\log Z`.

    Parameters
    ----------
    model : GaussianBernoulliRBM
    data : Tensor of shape (n_samples, n_visible)
    log_z : Tensor of shape (), optional
        A precomputed :func:`log_partition_exact`.

    Returns
    -------
    Tensor of shape ()
        In nats per sample (a density: it can be positive).
    """
    _check_model(model)
    x = _data(model, "data", data)
    if log_z is None:
        log_z = log_partition_exact(model)
    return -model.free_energy(x).mean() - log_z


def gibbs_chain(
    model: GaussianBernoulliRBM,
    x: object,
    n_steps: int,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Run ``n_steps`` block Gibbs sweeps :math:`h \\sim p(h \\mid x)`, :math:`x \\sim p(x \\mid h)` from ``x``.

    Parameters
    ----------
    model : GaussianBernoulliRBM
    x : Tensor of shape (n_chains, n_visible)
        The starting points.
    n_steps : int
    seed, generator
        Exactly one (:mod:`genphys.seeding`), on the model's device.

    Returns
    -------
    Tensor of shape (n_chains, n_visible)
        The final states (no gradient).
    """
    _check_model(model)
    x = _data(model, "x", x)
    n_steps = check_positive_int("n_steps", n_steps)
    g = make_generator(seed, generator, device=model.W.device)
    with torch.no_grad():
        for _ in range(n_steps):
            h = model.sample_h_given_x(x, generator=g)  # (C, N)
            x = model.sample_x_given_h(h, generator=g)  # (C, M)
            if not bool(torch.isfinite(x).all()):
                raise FloatingPointError(
                    "gibbs_chain produced a non-finite visible state; the variances "
                    "exp(log_var) or the weights are too large."
                )
    return x


def train_gaussian_rbm(
    model: GaussianBernoulliRBM,
    data: object,
    *,
    n_epochs: int,
    k: int = 1,
    persistent: bool = False,
    exact: bool = False,
    batch_size: int = 100,
    learning_rate: float = 1e-2,
    learn_variance: bool = True,
    test_data: object | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> History:
    """Train ``model`` in place with Adam on :math:`\\overline{F(x_\\text{data})} - \\overline{F(x_\\text{model})}`.

    The gradient of that surrogate is minus the log-likelihood gradient, positive phase
    minus negative phase, with the negative samples from ``k`` block Gibbs sweeps started
    at the mini-batch (CD-k) or at persistent chains (PCD-k, one per mini-batch row, started
    at random training vectors). The loop is :func:`genphys.fitting.fit`.

    Parameters
    ----------
    model : GaussianBernoulliRBM
    data : Tensor of shape (n_samples, n_visible)
        Real-valued data (standardised works best).
    n_epochs, k : int
    persistent : bool
        PCD-k instead of CD-k.
    exact : bool
        Exact maximum likelihood instead: Adam on :math:`-\\frac1B\\sum \\log p(x)` with the
        exact :func:`log_partition_exact` (no sampling; ``k`` and ``persistent`` unused).
    batch_size : int
    learning_rate : float
        Adam's step size.
    learn_variance : bool
        Train ``log_var`` too (otherwise it stays fixed).
    test_data : Tensor of shape (n_test, n_visible), optional
        With up to ``MAX_EXACT_HIDDEN`` hidden units, the exact train and test
        log-likelihoods are monitored after every epoch.
    seed, generator
        Exactly one (:mod:`genphys.seeding`), on the model's device.
    progress : bool

    Returns
    -------
    genphys.fitting.History
        Column ``free_energy_gap`` (the surrogate; ``negative_log_likelihood`` when
        ``exact``), and ``train_log_likelihood``,
        ``test_log_likelihood`` when monitored.
    """
    _check_model(model)
    x = _data(model, "data", data)
    x_test = None if test_data is None else _data(model, "test_data", test_data)
    n_epochs = check_positive_int("n_epochs", n_epochs)
    k = check_positive_int("k", k)
    batch_size = check_positive_int("batch_size", batch_size)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    for name, flag in (
        ("persistent", persistent),
        ("exact", exact),
        ("learn_variance", learn_variance),
    ):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool. Got {describe(flag)} instead.")
    g = make_generator(seed, generator, device=model.W.device)
    params = [model.W, model.a, model.b] + ([model.log_var] if learn_variance else [])
    optimizer = Adam(params, lr=learning_rate)
    chains = None
    if persistent:
        start = torch.randint(x.shape[0], (batch_size,), generator=g, device=x.device)
        chains = x[start].clone()  # (C, M)

    def step(batch: torch.Tensor) -> dict[str, float]:
        nonlocal chains
        if exact:
            loss = -log_likelihood_exact(model, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return {"negative_log_likelihood": loss.detach()}
        if persistent:
            chains = gibbs_chain(model, chains, k, generator=g)
            negative = chains[: batch.shape[0]]
        else:
            negative = gibbs_chain(model, batch, k, generator=g)
        loss = model.free_energy(batch).mean() - model.free_energy(negative).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {"free_energy_gap": loss.detach()}

    monitor = None
    if model.n_hidden <= MAX_EXACT_HIDDEN:

        def monitor(epoch: int) -> dict[str, float]:
            with torch.no_grad():
                log_z = log_partition_exact(model)
                out = {"train_log_likelihood": log_likelihood_exact(model, x, log_z=log_z)}
                if x_test is not None:
                    out["test_log_likelihood"] = log_likelihood_exact(model, x_test, log_z=log_z)
            return out

    history = fit(
        step,
        lambda epoch: minibatches(x, batch_size, generator=g),
        n_epochs=n_epochs,
        parameters=model,
        monitor=monitor,
        progress=progress,
        desc="Gaussian-Bernoulli RBM ("
        + ("exact" if exact else f"{'PCD' if persistent else 'CD'}-{k}")
        + ")",
        hint=f"try a smaller learning_rate (now {learning_rate}) or standardise the data",
    )
    if persistent:
        history.extras["chains"] = chains
    return history
