"""Autoencoders: encoder, code, decoder and reconstruction error, and their link to PCA.

Explained in {ref}`sec-autoencoders`. An autoencoder maps an input :math:`x` to a
code :math:`h = f(x; W)` with an *encoder* and the code back to a reconstruction
:math:`\\tilde x = g(h; V)` with a *decoder*; it is trained to make the
reconstruction error between :math:`x` and :math:`\\tilde x` small. Two errors are
provided, both summed over the ``n_features`` components of a data point and
averaged over the ``n_samples`` data points:

* the squared error :math:`\\frac1n \\sum_k \\lVert x_k - \\tilde x_k \\rVert^2`
  (:func:`mse_reconstruction_error`);
* the binary cross-entropy of binary data under Bernoulli means
  :math:`\\sigma(z)` given by decoder logits :math:`z`
  (:func:`bce_reconstruction_error`).

With the squared error and no nonlinearity the optimal autoencoder spans the
principal subspace of the data (Bourlard & Kamp 1988; Baldi & Hornik 1989); the
PCA of :mod:`genphys.pca` makes that comparison measurable
(:meth:`Autoencoder.from_pca`). Training runs on :func:`genphys.fitting.fit`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

from ._validation import (
    as_tensor,
    check_binary,
    check_positive_float,
    check_positive_int,
    describe,
)
from .fitting import History, fit, minibatches
from .pca import PCAResult
from .seeding import make_generator

__all__ = [
    "ACTIVATIONS",
    "Autoencoder",
    "bce_reconstruction_error",
    "bernoulli_cross_entropy",
    "mse_reconstruction_error",
    "squared_error",
    "train_autoencoder",
]

#: Activation functions an :class:`Autoencoder` accepts, by name.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "linear": nn.Identity,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "elu": nn.ELU,
}

#: Output layers: ``"linear"`` (real data, squared error) or ``"sigmoid"`` (binary
#: data, cross-entropy on the decoder's logits).
OUTPUTS = ("linear", "sigmoid")

_REDUCTIONS = ("mean", "sum", "none")


# --------------------------------------------------------------------------- losses
def _check_reduction(reduction: object) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"reduction must be one of {_REDUCTIONS}. Got {describe(reduction)} instead."
        )
    return reduction


def _reduce(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    return per_sample


def _pair(
    name: str, value: object, other_name: str, other: object
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate two (n_samples, n_features) tensors of one shape, dtype and device."""
    first = as_tensor(name, value, ndim=2)
    second = as_tensor(other_name, other, ndim=2, dtype=first.dtype, device=first.device)
    if second.shape != first.shape:
        raise ValueError(
            f"{other_name} must have the shape of {name} {tuple(first.shape)}. "
            f"Got shape {tuple(second.shape)} instead."
        )
    return first, second


def _check_same_shape(name: str, first: object, other_name: str, other: object) -> None:
    """Raise unless both are floating tensors of one shape (values are not inspected)."""
    for n, value in ((name, first), (other_name, other)):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(f"{n} must be a floating-point tensor. Got {describe(value)} instead.")
    if other.shape != first.shape:
        raise ValueError(
            f"{other_name} must have the shape of {name} {tuple(first.shape)}. "
            f"Got shape {tuple(other.shape)} instead."
        )


def squared_error(x: torch.Tensor, x_tilde: torch.Tensor) -> torch.Tensor:
    """Squared distance per data point, :math:`\\lVert x_k - \\tilde x_k \\rVert^2 = \\sum_i (x_{ki} - \\tilde x_{ki})^2`.

    The per-point term of eq. {eq}`eq-ae-mse`, summed over features;
    :func:`mse_reconstruction_error` averages it over data points. The values are not
    checked, so a NaN reaches the caller (a trainer reports it). Explained in
    {ref}`sec-autoencoders`.

    Parameters
    ----------
    x : Tensor of shape (n_samples, n_features)
        Data.
    x_tilde : Tensor of shape (n_samples, n_features)
        Reconstructions.

    Returns
    -------
    Tensor of shape (n_samples,)
    """
    _check_same_shape("x", x, "x_tilde", x_tilde)
    return ((x - x_tilde) ** 2).sum(-1)  # (B,)


def bernoulli_cross_entropy(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per data point from logits, :math:`\\sum_i [x_i \\log(1 + e^{-z_i}) + (1 - x_i) \\log(1 + e^{z_i})]`.

    The per-point term of eq. {eq}`eq-ae-bce`, :math:`-\\sum_i [x_i \\log \\sigma(z_i) + (1 - x_i)
    \\log(1 - \\sigma(z_i))]`, written with :math:`\\log \\sigma(z) = -\\log(1 + e^{-z})` and
    :math:`\\log(1 - \\sigma(z)) = -\\log(1 + e^{z})` so that it stays finite and accurate
    for logits of any size; :func:`bce_reconstruction_error` averages it over data points.
    The values are not checked, so a NaN reaches the caller (a trainer reports it).
    Explained in {ref}`sec-autoencoders`.

    Parameters
    ----------
    x : Tensor of shape (n_samples, n_features)
        Binary data (entries 0 or 1).
    logits : Tensor of shape (n_samples, n_features)
        Decoder outputs :math:`z` before the sigmoid.

    Returns
    -------
    Tensor of shape (n_samples,)
    """
    _check_same_shape("x", x, "logits", logits)
    # logaddexp(0, ·) never overflows and both terms are non-negative, so nothing
    # cancels; the derivative with respect to z is σ(z) - x exactly.
    zero = torch.zeros((), dtype=logits.dtype, device=logits.device)
    per_entry = x * torch.logaddexp(zero, -logits) + (1 - x) * torch.logaddexp(zero, logits)
    return per_entry.sum(-1)  # (B,)


def mse_reconstruction_error(
    x: object, x_tilde: object, *, reduction: str = "mean"
) -> torch.Tensor:
    """Squared reconstruction error :math:`\\frac1n \\sum_k \\lVert x_k - \\tilde x_k \\rVert^2`.

    The squared distance is *summed* over the features of each data point and
    *averaged* over data points, eq. {eq}`eq-ae-mse`. This is
    ``torch.nn.functional.mse_loss(x_tilde, x, reduction="sum") / n_samples``, i.e.
    ``n_features`` times ``mse_loss`` with its default per-entry mean. With this
    normalisation the error of PCA with ``k`` components equals the sum of the
    discarded eigenvalues of the (1/n) covariance matrix. Explained in
    {ref}`sec-autoencoders`.

    Parameters
    ----------
    x : Tensor of shape (n_samples, n_features)
        Data.
    x_tilde : Tensor of shape (n_samples, n_features)
        Reconstructions, same dtype and device as ``x``.
    reduction : {"mean", "sum", "none"}
        Average over data points (default), sum over them, or return one error per
        data point.

    Returns
    -------
    Tensor of shape () or (n_samples,)
    """
    reduction = _check_reduction(reduction)
    x, x_tilde = _pair("x", x, "x_tilde", x_tilde)
    return _reduce(squared_error(x, x_tilde), reduction)


def bce_reconstruction_error(x: object, logits: object, *, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy :math:`-\\frac1n \\sum_{ki} [x_{ki} \\log s_{ki} + (1-x_{ki})\\log(1-s_{ki})]`.

    The negative log-likelihood of binary data ``x`` under independent Bernoulli
    units with means :math:`s = \\sigma(z)`, computed from the decoder's *logits*
    ``z`` with :math:`\\log \\sigma(z) = -\\log(1 + e^{-z})`, so it stays finite and
    accurate for logits of any size, eq. {eq}`eq-ae-bce`. Summed over features,
    averaged over data points; equal to ``binary_cross_entropy_with_logits(logits, x,
    reduction="sum") / n_samples``. Explained in {ref}`sec-autoencoders`.

    Parameters
    ----------
    x : Tensor of shape (n_samples, n_features)
        Binary data (every entry 0 or 1).
    logits : Tensor of shape (n_samples, n_features)
        Decoder outputs before the sigmoid, same dtype and device as ``x``.
    reduction : {"mean", "sum", "none"}
        Average over data points (default), sum over them, or return one error per
        data point.

    Returns
    -------
    Tensor of shape () or (n_samples,)
    """
    reduction = _check_reduction(reduction)
    x, logits = _pair("x", x, "logits", logits)
    check_binary("x", x)
    return _reduce(bernoulli_cross_entropy(x, logits), reduction)


# ---------------------------------------------------------------------- the model
def _check_activation(name: str, value: object) -> str:
    if value not in ACTIVATIONS:
        raise ValueError(
            f"{name} must be one of {tuple(ACTIVATIONS)}. Got {describe(value)} instead."
        )
    return value


class Autoencoder(nn.Module):
    """Encoder :math:`h = f(x; W)` and decoder :math:`\\tilde x = g(h; V)`, fully connected.

    The encoder has layer sizes ``sizes = (n_input, n_hidden_1, ..., n_code)``; the
    decoder mirrors them, ``(n_code, ..., n_hidden_1, n_input)``. Hidden layers use
    ``activation``, the code layer ``code_activation`` and the last decoder layer is
    affine, followed by ``output`` in :meth:`reconstruct`. With ``sizes = (D, k)``,
    ``activation`` irrelevant, ``code_activation="linear"`` and ``output="linear"``
    it is the *linear autoencoder* :math:`\\tilde x = V(Wx + c) + d`, whose optimum
    spans the top-``k`` principal subspace, {ref}`sec-autoencoders`.

    Parameters
    ----------
    sizes : sequence of int
        ``(n_input, ..., n_code)``, at least two positive integers.
    activation : str
        Nonlinearity of the hidden layers, a key of :data:`ACTIVATIONS`.
    code_activation : str
        Nonlinearity applied to the code; ``"linear"`` by default.
    output : {"linear", "sigmoid"}
        ``"linear"``: real data, :meth:`reconstruct` returns the decoder output and
        the loss is :func:`mse_reconstruction_error`. ``"sigmoid"``: binary data, the
        decoder output are logits, :meth:`reconstruct` returns :math:`\\sigma(z)` and
        the loss is :func:`bce_reconstruction_error`.
    seed, generator
        Exactly one (:mod:`genphys.seeding`; a generator on the CPU): the initial weights,
        drawn uniformly in :math:`\\pm\\sqrt{6 / (n_{in} + n_{out})}` (Glorot & Bengio
        2010); biases start at zero.
    dtype : torch.dtype
        ``torch.float64`` by default.
    device : torch.device or str, optional

    Attributes
    ----------
    encoder : nn.Sequential
        The layers of :math:`f(\\cdot; W)`.
    decoder : nn.Sequential
        The layers of :math:`g(\\cdot; V)`; the last one gives outputs or logits.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        activation: str = "tanh",
        code_activation: str = "linear",
        output: str = "linear",
        seed: int | None = None,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
            raise TypeError(
                f"sizes must be a sequence of positive integers. Got {describe(sizes)} instead."
            )
        if len(sizes) < 2:
            raise ValueError(
                "sizes must list at least two layer sizes (n_input, ..., n_code). "
                f"Got {list(sizes)} instead."
            )
        sizes = tuple(check_positive_int(f"sizes[{i}]", s) for i, s in enumerate(sizes))
        activation = _check_activation("activation", activation)
        code_activation = _check_activation("code_activation", code_activation)
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}. Got {describe(output)} instead.")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating torch.dtype. Got {describe(dtype)} instead.")
        device = torch.device(device) if device is not None else torch.empty(0).device
        generator = make_generator(seed, generator)  # on the CPU, whatever the device
        self.sizes = sizes
        self.activation = activation
        self.code_activation = code_activation
        self.output = output

        def stack(dims: Sequence[int], inner: str, last: str) -> nn.Sequential:
            layers: list[nn.Module] = []
            for i, (n_in, n_out) in enumerate(itertools.pairwise(dims)):
                layers.append(_glorot_linear(n_in, n_out, generator, dtype, device))
                act = last if i == len(dims) - 2 else inner
                if act != "linear":
                    layers.append(ACTIVATIONS[act]())
            return nn.Sequential(*layers)

        self.encoder = stack(sizes, activation, code_activation)
        self.decoder = stack(sizes[::-1], activation, "linear")

    @classmethod
    def from_pca(cls, result: PCAResult) -> Autoencoder:
        """Linear autoencoder :math:`h = U_k^\\top (x - \\mu)`, :math:`\\tilde x = U_k h + \\mu`.

        Its squared reconstruction error is the sum of the discarded eigenvalues,
        the optimum of every linear autoencoder with ``k`` code units,
        {ref}`sec-autoencoders`.
        """
        if not isinstance(result, PCAResult):
            raise TypeError(f"result must be a PCAResult. Got {describe(result)} instead.")
        U, mu = result.components, result.mean  # (D, k), (D,)
        model = cls(
            (U.shape[0], U.shape[1]), activation="linear", seed=0, dtype=U.dtype, device=U.device
        )
        with torch.no_grad():
            model.encoder[0].weight.copy_(U.T)
            model.encoder[0].bias.copy_(-(U.T @ mu))
            model.decoder[0].weight.copy_(U)
            model.decoder[0].bias.copy_(mu)
        return model

    # ------------------------------------------------------------------ shape
    @property
    def n_input(self) -> int:
        return self.sizes[0]

    @property
    def n_code(self) -> int:
        return self.sizes[-1]

    @property
    def _reference(self) -> torch.Tensor:
        return self.encoder[0].weight

    def extra_repr(self) -> str:
        return (
            f"sizes={self.sizes}, activation={self.activation!r}, "
            f"code_activation={self.code_activation!r}, output={self.output!r}"
        )

    def _input(self, name: str, value: object, size: int) -> torch.Tensor:
        ref = self._reference
        tensor = as_tensor(name, value, ndim=(1, 2), dtype=ref.dtype, device=ref.device)
        if tensor.shape[-1] != size:
            raise ValueError(
                f"{name} must have {size} columns (one per unit). "
                f"Got shape {tuple(tensor.shape)} instead."
            )
        return tensor

    # ------------------------------------------------------------------ maps
    def encode(self, x: object) -> torch.Tensor:
        """Code :math:`h = f(x; W)`.

        Parameters
        ----------
        x : Tensor of shape (batch, n_input) or (n_input,)

        Returns
        -------
        Tensor of shape (batch, n_code) or (n_code,)
        """
        return self.encoder(self._input("x", x, self.n_input))

    def decode(self, h: object) -> torch.Tensor:
        """Decoder output :math:`g(h; V)`: the reconstruction, or logits if ``output="sigmoid"``.

        Parameters
        ----------
        h : Tensor of shape (batch, n_code) or (n_code,)

        Returns
        -------
        Tensor of shape (batch, n_input) or (n_input,)
        """
        return self.decoder(self._input("h", h, self.n_code))

    def forward(self, x: object) -> torch.Tensor:
        """Decoder output :math:`g(f(x; W); V)` (logits when ``output="sigmoid"``)."""
        return self.decoder(self.encode(x))

    def reconstruct(self, x: object) -> torch.Tensor:
        """Reconstruction :math:`\\tilde x`: decoder output, or its sigmoid for binary data.

        Parameters
        ----------
        x : Tensor of shape (batch, n_input) or (n_input,)

        Returns
        -------
        Tensor of shape (batch, n_input) or (n_input,)
        """
        out = self.forward(x)
        return torch.sigmoid(out) if self.output == "sigmoid" else out

    @property
    def loss_name(self) -> str:
        """``"mse"`` for ``output="linear"``, ``"bce"`` for ``output="sigmoid"``."""
        return "bce" if self.output == "sigmoid" else "mse"

    def reconstruction_error(self, x: object, *, reduction: str = "mean") -> torch.Tensor:
        """The model's reconstruction error of ``x`` (squared error or cross-entropy).

        :func:`mse_reconstruction_error` of :meth:`reconstruct` for ``output="linear"``,
        :func:`bce_reconstruction_error` of the logits for ``output="sigmoid"``.

        Parameters
        ----------
        x : Tensor of shape (n_samples, n_input)
            Data; binary when ``output="sigmoid"``.
        reduction : {"mean", "sum", "none"}

        Returns
        -------
        Tensor of shape () or (n_samples,)
        """
        reduction = _check_reduction(reduction)
        x = self._data("x", x)
        return _reduce(self.loss(x), reduction)

    def _data(self, name: str, value: object) -> torch.Tensor:
        x = self._input(name, value, self.n_input)
        if x.ndim != 2:
            raise ValueError(
                f"{name} must have shape (n_samples, {self.n_input}). "
                f"Got shape {tuple(x.shape)} instead."
            )
        if self.output == "sigmoid":
            check_binary(name, x)
        return x

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction error per data point, :math:`\\ell(x, g(f(x)))` (squared error or cross-entropy).

        :func:`bernoulli_cross_entropy` of the decoder's logits for ``output="sigmoid"``,
        :func:`squared_error` of the reconstruction for ``output="linear"``; the training
        loss is its mean over a mini-batch. Only the shape of ``x`` is checked (use
        :meth:`reconstruction_error` for fully checked input). Explained in
        {ref}`sec-autoencoders`.

        Parameters
        ----------
        x : Tensor of shape (n_samples, n_input)
            Data, with the model's dtype and device; binary when ``output="sigmoid"``.

        Returns
        -------
        Tensor of shape (n_samples,)
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a tensor. Got {describe(x)} instead.")
        if x.ndim != 2 or x.shape[1] != self.n_input:
            raise ValueError(
                f"x must be a tensor of shape (n_samples, {self.n_input}). "
                f"Got {describe(x)} instead."
            )
        out = self.decoder(self.encoder(x))  # (B, D)
        if self.output == "sigmoid":
            return bernoulli_cross_entropy(x, out)  # (B,)
        return squared_error(x, out)  # (B,)


def _glorot_linear(
    n_in: int,
    n_out: int,
    generator: torch.Generator,
    dtype: torch.dtype,
    device: torch.device,
) -> nn.Linear:
    """A linear layer with Glorot-uniform weights from ``generator`` and zero bias."""
    layer = nn.utils.skip_init(nn.Linear, n_in, n_out, dtype=dtype, device=device)
    bound = math.sqrt(6.0 / (n_in + n_out))
    weight = (2 * torch.rand(n_out, n_in, generator=generator, dtype=torch.float64) - 1) * bound
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.zero_()
    return layer


# ---------------------------------------------------------------------- training
def train_autoencoder(
    model: Autoencoder,
    x_train: object,
    *,
    x_test: object | None = None,
    n_epochs: int = 100,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    optimizer: str = "adam",
    seed: int | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> History:
    """Minimise the error :math:`\\frac1n \\sum_k \\ell(x_k, g(f(x_k)))` by mini-batches.

    The loop is :func:`genphys.fitting.fit` over :func:`genphys.fitting.minibatches`: one
    optimiser step per shuffled mini-batch of ``batch_size`` rows on
    :meth:`Autoencoder.reconstruction_error`; after each epoch the monitor evaluates the
    error of the whole training (and test) set. Explained in {ref}`sec-autoencoders`.

    Parameters
    ----------
    model : Autoencoder
        Trained in place.
    x_train : Tensor of shape (n_samples, n_input)
        Training data (binary when ``model.output == "sigmoid"``), with the model's
        dtype and device.
    x_test : Tensor of shape (n_test, n_input), optional
        Held-out data, evaluated after every epoch.
    n_epochs : int
    batch_size : int
        Rows per optimiser step (the last batch of an epoch may be smaller).
    learning_rate : float
    optimizer : {"adam", "sgd"}
    seed, generator
        Exactly one (:mod:`genphys.seeding`): the shuffling.
    progress : bool
        Show a progress bar over epochs.

    Returns
    -------
    genphys.fitting.History
        Columns ``batch_loss`` (mean mini-batch loss during the epoch), ``train_loss`` and,
        with ``x_test``, ``test_loss`` (errors after the epoch); ``history.extras["loss_name"]``
        is ``"mse"`` or ``"bce"``.

    Raises
    ------
    genphys.fitting.TrainingDivergedError
        If a loss becomes NaN or infinite. The message names the epoch and mini-batch,
        the model is put back to its parameters at the start of that epoch, and
        ``.history`` holds the epochs completed before.
    """
    if not isinstance(model, Autoencoder):
        raise TypeError(f"model must be an Autoencoder. Got {describe(model)} instead.")
    x_train = model._data("x_train", x_train)
    if x_test is not None:
        x_test = model._data("x_test", x_test)
    batch_size = check_positive_int("batch_size", batch_size)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd'. Got {describe(optimizer)} instead.")
    for name, param in model.named_parameters():
        if not bool(torch.isfinite(param).all()):
            raise ValueError(
                f"model parameter {name} must be finite before training. "
                "Got NaN or infinite entries instead."
            )
    g = make_generator(seed, generator, device=x_train.device)
    opt_class = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
    opt = opt_class(model.parameters(), lr=learning_rate)
    history = History(extras={"loss_name": model.loss_name})

    def step(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        loss = model.loss(batch).mean()  # (), mean over the mini-batch
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"batch_loss": loss.detach()}

    @torch.no_grad()
    def monitor(epoch: int) -> dict[str, torch.Tensor | None]:
        return {
            "train_loss": model.loss(x_train).mean(),
            "test_loss": None if x_test is None else model.loss(x_test).mean(),
        }

    return fit(
        step,
        lambda epoch: minibatches(x_train, batch_size, generator=g),
        n_epochs=n_epochs,
        parameters=model,
        monitor=monitor,
        progress=progress,
        desc=f"autoencoder ({model.loss_name})",
        history=history,
        hint=f"try a smaller learning_rate (now {learning_rate})",
    )
