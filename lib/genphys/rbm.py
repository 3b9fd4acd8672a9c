"""The Bernoulli–Bernoulli restricted Boltzmann machine and its exact quantities.

Notation (explained in {ref}`sec-notation`):

.. math::

    E(x, h) = -a^\\top x - b^\\top h - x^\\top W h, \\qquad
    p(x, h) = \\frac{e^{-E(x, h)}}{Z}, \\qquad
    Z = \\sum_{x, h} e^{-E(x, h)},

with visible units ``x`` (``n_visible``), hidden units ``h`` (``n_hidden``),
``W`` of shape (n_visible, n_hidden), visible bias ``a`` and hidden bias ``b``.

The exact functions here (``log_partition_exact``, ``log_likelihood_exact``,
``log_likelihood_gradient_exact``) enumerate the *smaller* layer and sum the other
one out analytically, {ref}`sec-marginals`. Their sampled counterparts live in
:mod:`genphys.ais` and :mod:`genphys.training`.

Precision: every exact routine computes in float64, whatever the model's dtype, and
returns the model's dtype. A float32 model therefore gets its float64 answer rounded
once to float32 (relative error below :math:`2^{-24}`), instead of a sum over
:math:`2^n` states accumulated in float32, which loses several nats or underflows to NaN
for weights of order 3 or more.

Cost: the exact routines refuse models whose work, :math:`2^{n} \\times m` (states of
the smaller layer times units of the larger one), exceeds ``MAX_EXACT_WORK``; pass
``max_work=`` to go further, or estimate with :func:`genphys.ais.log_partition_ais`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import (
    as_tensor,
    check_binary,
    check_float_dtype,
    check_positive_int,
    check_same_placement,
    describe,
)
from .enumeration import StreamingLogSumExp, binary_states
from .seeding import make_generator

__all__ = [
    "MAX_EXACT_UNITS",
    "MAX_EXACT_WORK",
    "BernoulliRBM",
    "LogLikelihoodGradient",
    "RBMParameters",
    "exact_work",
    "log_likelihood_exact",
    "log_likelihood_gradient_exact",
    "log_partition_exact",
]

#: Largest smaller layer that the exact functions can enumerate at all (2**30 states).
MAX_EXACT_UNITS = 30
#: Default limit on :func:`exact_work`, :math:`2^{31}` state-units, e.g. a 64 x 25 model.
#: Measured on one core: ``log_partition_exact`` of a 64 x 20 model (:math:`2^{26}`) takes
#: 0.6-0.8 s, so the limit is about half a minute for log Z and more for the gradient.
MAX_EXACT_WORK = 2**31


def _softplus(z: torch.Tensor) -> torch.Tensor:
    """:math:`\\log(1 + e^z)`, exact to float64 precision.

    ``torch.nn.functional.softplus`` returns ``z`` itself above ``threshold=20``,
    an absolute error of :math:`e^{-20} \\approx 2\\times10^{-9}` per unit; at 37 the
    error :math:`e^{-37}` is below the float64 spacing of ``z``.
    """
    return F.softplus(z, threshold=37.0)


class BernoulliRBM(nn.Module):
    """Restricted Boltzmann machine with binary visible and hidden units.

    Parameters
    ----------
    n_visible : int
        Number of visible units ``M``.
    n_hidden : int
        Number of hidden units ``N``.
    seed : int, optional
        Seed for the initial weights. Following Hinton (2010, sec. 8) the weights
        are drawn from :math:`\\mathcal N(0, \\mathrm{scale}^2)` and both biases are zero.
    generator : torch.Generator, optional
        A CPU generator used instead of ``seed`` (give exactly one of them,
        :func:`genphys.seeding.make_generator`); the weights are drawn in float64 on the
        CPU and then cast, so a seed gives the same model on every device.
    weight_scale : float
        Standard deviation of the initial weights (0.01 by default).
    dtype : torch.dtype
        ``torch.float64`` by default.
    device : torch.device or str, optional

    Attributes
    ----------
    W : Parameter of shape (n_visible, n_hidden)
    a : Parameter of shape (n_visible,)
        Visible bias.
    b : Parameter of shape (n_hidden,)
        Hidden bias.
    """

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        weight_scale: float = 0.01,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        n_visible = check_positive_int("n_visible", n_visible)
        n_hidden = check_positive_int("n_hidden", n_hidden)
        check_float_dtype("dtype", dtype)
        generator = make_generator(seed, generator)
        W = torch.randn(n_visible, n_hidden, generator=generator, dtype=torch.float64)
        self.W = nn.Parameter((weight_scale * W).to(dtype=dtype, device=device))
        self.a = nn.Parameter(torch.zeros(n_visible, dtype=dtype, device=device))
        self.b = nn.Parameter(torch.zeros(n_hidden, dtype=dtype, device=device))

    @classmethod
    def from_parameters(cls, W: object, a: object, b: object) -> BernoulliRBM:
        """Build an RBM from given weights ``W`` (M, N) and biases ``a`` (M,), ``b`` (N,).

        Tensors keep their dtype and device (all three must agree); arrays and
        sequences become float64 tensors.
        """
        W_t = as_tensor("W", W, ndim=2)
        a_t = as_tensor("a", a, ndim=1, shape=(W_t.shape[0],))
        b_t = as_tensor("b", b, ndim=1, shape=(W_t.shape[1],))
        check_same_placement("W", W_t, a=a_t, b=b_t)
        rbm = cls.__new__(cls)
        nn.Module.__init__(rbm)
        rbm.W = nn.Parameter(W_t.detach().clone())
        rbm.a = nn.Parameter(a_t.detach().clone())
        rbm.b = nn.Parameter(b_t.detach().clone())
        return rbm

    # ------------------------------------------------------------------ shape
    @property
    def n_visible(self) -> int:
        return self.W.shape[0]

    @property
    def n_hidden(self) -> int:
        return self.W.shape[1]

    def extra_repr(self) -> str:
        return f"n_visible={self.n_visible}, n_hidden={self.n_hidden}, dtype={self.W.dtype}"

    # ------------------------------------------------------------- validation
    def _layer(self, name: str, value: object, size: int, *, binary: bool) -> torch.Tensor:
        tensor = as_tensor(name, value, ndim=(1, 2), dtype=self.W.dtype, device=self.W.device)
        if tensor.shape[-1] != size:
            raise ValueError(
                f"{name} must have {size} columns (one per unit). "
                f"Got shape {tuple(tensor.shape)} instead."
            )
        if binary:
            check_binary(name, tensor)
        return tensor

    def _check_parameters(self) -> None:
        for name in ("W", "a", "b"):
            value = getattr(self, name)
            if not bool(torch.isfinite(value).all()):
                raise ValueError(
                    f"RBM parameter {name} must be finite. Got NaN or infinite entries instead."
                )

    # ---------------------------------------------------------------- energies
    def energy(self, x: object, h: object) -> torch.Tensor:
        """:math:`E(x, h) = -a^\\top x - b^\\top h - x^\\top W h`.

        Parameters
        ----------
        x : Tensor of shape (batch, n_visible) or (n_visible,)
        h : Tensor of shape (batch, n_hidden) or (n_hidden,)

        Returns
        -------
        Tensor of shape (batch,) or ()
        """
        x = self._layer("x", x, self.n_visible, binary=True)
        h = self._layer("h", h, self.n_hidden, binary=True)
        if x.shape[:-1] != h.shape[:-1]:
            raise ValueError(
                "x and h must have the same batch shape (one h per x). Got x of shape "
                f"{tuple(x.shape)} and h of shape {tuple(h.shape)} instead."
            )
        return -(x @ self.a) - (h @ self.b) - ((x @ self.W) * h).sum(-1)

    def free_energy(self, x: object) -> torch.Tensor:
        """Visible free energy :math:`F(x) = -a^\\top x - \\sum_j \\log(1 + e^{b_j + (x^\\top W)_j})`.

        It satisfies :math:`p(x) = e^{-F(x)} / Z`, eq. {eq}`eq-free-energy`.

        Parameters
        ----------
        x : Tensor of shape (batch, n_visible) or (n_visible,)

        Returns
        -------
        Tensor of shape (batch,) or ()
        """
        x = self._layer("x", x, self.n_visible, binary=True)
        return -(x @ self.a) - _softplus(x @ self.W + self.b).sum(-1)  # (B,)

    def _free_energy(self, x: torch.Tensor) -> torch.Tensor:
        # kept for callers outside this module (genphys.thermodynamics); use free_energy
        return self.free_energy(x)

    def hidden_free_energy(self, h: object) -> torch.Tensor:
        """Hidden free energy :math:`F(h) = -b^\\top h - \\sum_i \\log(1 + e^{a_i + (W h)_i})`.

        It satisfies :math:`p(h) = e^{-F(h)} / Z`.

        Parameters
        ----------
        h : Tensor of shape (batch, n_hidden) or (n_hidden,)

        Returns
        -------
        Tensor of shape (batch,) or ()
        """
        h = self._layer("h", h, self.n_hidden, binary=True)
        return -(h @ self.b) - _softplus(h @ self.W.T + self.a).sum(-1)  # (B,)

    # ------------------------------------------------------------ conditionals
    def prob_h_given_x(self, x: object) -> torch.Tensor:
        """:math:`p(h_j = 1 \\mid x) = \\sigma(b_j + \\sum_i x_i W_{ij})`, shape (batch, n_hidden)."""
        x = self._layer("x", x, self.n_visible, binary=False)
        return torch.sigmoid(x @ self.W + self.b)

    def prob_x_given_h(self, h: object) -> torch.Tensor:
        """:math:`p(x_i = 1 \\mid h) = \\sigma(a_i + \\sum_j W_{ij} h_j)`, shape (batch, n_visible)."""
        h = self._layer("h", h, self.n_hidden, binary=False)
        return torch.sigmoid(h @ self.W.T + self.a)

    def sample_h_given_x(
        self, x: object, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw :math:`h \\sim p(h \\mid x)`; every unit independently Bernoulli."""
        return torch.bernoulli(self.prob_h_given_x(x), generator=generator)

    def sample_x_given_h(
        self, h: object, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw :math:`x \\sim p(x \\mid h)`; every unit independently Bernoulli."""
        return torch.bernoulli(self.prob_x_given_h(h), generator=generator)


@dataclass(frozen=True)
class RBMParameters:
    """One tensor per RBM parameter: ``W`` (M, N), ``a`` (M,), ``b`` (N,)."""

    W: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor

    def __sub__(self, other: RBMParameters) -> RBMParameters:
        return RBMParameters(self.W - other.W, self.a - other.a, self.b - other.b)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter((self.W, self.a, self.b))


@dataclass(frozen=True)
class LogLikelihoodGradient:
    """The gradient of the mean log-likelihood split into its two phases.

    ``gradient = positive - negative``, eq. {eq}`eq-two-phases`:

    * ``positive`` -- :math:`\\langle -\\partial E / \\partial \\Theta\\rangle` under the
      data with :math:`h \\sim p(h \\mid x)`;
    * ``negative`` -- the same expectation under the model :math:`p(x, h)`.
    """

    positive: RBMParameters
    negative: RBMParameters

    @property
    def gradient(self) -> RBMParameters:
        return self.positive - self.negative


def check_rbm(rbm: object) -> BernoulliRBM:
    """Return ``rbm`` if it is a :class:`BernoulliRBM` with finite parameters, else raise."""
    if not isinstance(rbm, BernoulliRBM):
        raise TypeError(f"rbm must be a BernoulliRBM. Got {describe(rbm)} instead.")
    rbm._check_parameters()
    return rbm


def check_batch(rbm: BernoulliRBM, name: str, data: object, rows: str = "n_samples"):
    """``data`` as a binary tensor of shape (rows, n_visible) on the model's dtype and device."""
    x = rbm._layer(name, data, rbm.n_visible, binary=True)
    if x.ndim != 2:
        raise ValueError(
            f"{name} must have shape ({rows}, {rbm.n_visible}). Got shape {tuple(x.shape)} instead."
        )
    return x


def exact_work(n_visible: int, n_hidden: int) -> int:
    """Work of an exact sum, :math:`2^{\\min(M, N)} \\times \\max(M, N)` state-units.

    The exact routines enumerate the :math:`2^n` states of the smaller layer and, for each,
    sum out the :math:`m` units of the larger one; their time is proportional to this.
    """
    n_visible = check_positive_int("n_visible", n_visible)
    n_hidden = check_positive_int("n_hidden", n_hidden)
    return 2 ** min(n_visible, n_hidden) * max(n_visible, n_hidden)


def _check_enumerable(rbm: BernoulliRBM, max_work: int | None) -> None:
    check_rbm(rbm)
    smaller = min(rbm.n_visible, rbm.n_hidden)
    if smaller > MAX_EXACT_UNITS:
        raise ValueError(
            f"rbm must have a layer of at most {MAX_EXACT_UNITS} units for exact "
            f"enumeration (2**{smaller} states would not fit in time or memory). Got "
            f"n_visible={rbm.n_visible}, n_hidden={rbm.n_hidden} instead. Estimate log Z "
            "with annealed importance sampling: genphys.ais.log_partition_ais."
        )
    limit = MAX_EXACT_WORK if max_work is None else check_positive_int("max_work", max_work)
    work = exact_work(rbm.n_visible, rbm.n_hidden)
    if work > limit:
        raise ValueError(
            f"rbm must need at most max_work = {limit:,} state-units for an exact sum "
            f"(2**min(M, N) * max(M, N); the default, MAX_EXACT_WORK = {MAX_EXACT_WORK:,}, "
            "is about half a minute of one core for log Z). Got n_visible="
            f"{rbm.n_visible}, n_hidden={rbm.n_hidden}, work {work:,} "
            f"({work / MAX_EXACT_WORK:.3g} times the default) instead. Estimate log Z with "
            "annealed importance sampling, genphys.ais.log_partition_ais, or pass a larger "
            "max_work= if you really want the exact sum."
        )


def _float64_twin(rbm: BernoulliRBM) -> BernoulliRBM:
    """``rbm`` itself if it is float64, else an RBM whose W, a, b are float64 casts of its own.

    The casts are differentiable, so autograd through the twin reaches ``rbm``'s parameters.
    """
    if rbm.W.dtype == torch.float64:
        return rbm
    twin = BernoulliRBM.__new__(BernoulliRBM)
    nn.Module.__init__(twin)
    twin.W, twin.a, twin.b = (p.to(torch.float64) for p in (rbm.W, rbm.a, rbm.b))
    return twin


def _smaller_layer_chunks(
    rbm: BernoulliRBM, chunk_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(states, log_weight, other_mean)`` over all states of the smaller layer.

    If the hidden layer is the smaller one, ``states`` are hidden vectors ``h``,
    ``log_weight = -F(h)`` and ``other_mean = p(x=1 | h)``; otherwise the roles swap.
    A block of ``2**k`` low-order states is precomputed once, so each chunk costs an
    addition instead of a matrix product.
    """
    W, a, b = rbm.W, rbm.a, rbm.b
    if rbm.n_hidden <= rbm.n_visible:
        weights, own_bias, other_bias = W.T, b, a  # enumerate h; (N, M)
    else:
        weights, own_bias, other_bias = W, a, b  # enumerate x; (M, N)
    n = weights.shape[0]
    kw = {"dtype": W.dtype, "device": W.device}
    low_bits = min(n, max(1, (chunk_size.bit_length() - 1) // 2), 12)
    low = binary_states(low_bits, **kw)  # (L, k)
    low_field = low @ weights[:low_bits]  # (L, m)
    low_bias = low @ own_bias[:low_bits]  # (L,)
    n_high = n - low_bits
    high_per_chunk = max(1, chunk_size // low.shape[0])
    for start in range(0, 2**n_high, high_per_chunk):
        high = binary_states(n_high, start=start, stop=min(start + high_per_chunk, 2**n_high), **kw)
        high_field = high @ weights[low_bits:] + other_bias  # (H, m)
        field = (high_field[:, None, :] + low_field[None, :, :]).reshape(-1, weights.shape[1])
        bias = (high @ own_bias[low_bits:])[:, None] + low_bias[None, :]  # (H, L)
        log_weight = bias.reshape(-1) + _softplus(field).sum(-1)  # (H*L,)
        states = torch.cat(
            [low.repeat(high.shape[0], 1), high.repeat_interleave(low.shape[0], dim=0)], dim=1
        )
        yield states, log_weight, field


def log_partition_exact(
    rbm: BernoulliRBM, *, chunk_size: int = 2**14, max_work: int | None = None
) -> torch.Tensor:
    """Exact :math:`\\log Z`, eq. {eq}`eq-partition-function`, by summing over the smaller layer.

    With the hidden layer the smaller one,
    :math:`\\log Z = \\log \\sum_h \\exp\\big(b^\\top h + \\sum_i \\log(1 + e^{a_i + (W h)_i})\\big)`,
    a streaming log-sum-exp over :math:`2^N` states in chunks of ``chunk_size``.
    Differentiable with respect to the RBM's parameters. Computed in float64 and
    returned in the model's dtype.

    Parameters
    ----------
    rbm : BernoulliRBM
    chunk_size : int
        States per chunk. Memory is one chunk, about ``16 * chunk_size * max(M, N)`` bytes
        (≈ 100 MB at the default and 784 visible units), with or without gradients: the
        backward pass does not keep the chunks' graphs but sums the exact expectations
        :math:`\\mathbb E_p[x h^\\top], \\mathbb E_p[x], \\mathbb E_p[h]` again, chunk by chunk
        (one more enumeration, about twice the time). Not twice differentiable.
    max_work : int, optional
        Refuse models whose :func:`exact_work` exceeds this; ``MAX_EXACT_WORK`` by default.

    Returns
    -------
    Tensor of shape ()

    Raises
    ------
    ValueError
        If the work exceeds ``max_work`` or both layers have more than
        ``MAX_EXACT_UNITS`` units; use :func:`genphys.ais.log_partition_ais` then.
    """
    _check_enumerable(rbm, max_work)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    exact = _float64_twin(rbm)
    if torch.is_grad_enabled() and any(p.requires_grad for p in (exact.W, exact.a, exact.b)):
        # the gradient is an expectation accumulated chunk by chunk: no graph is kept
        return _LogPartition.apply(exact.W, exact.a, exact.b, chunk_size).to(rbm.W.dtype)
    return _log_partition_no_grad(exact, chunk_size).to(rbm.W.dtype)


@torch.no_grad()
def _log_partition_no_grad(rbm: BernoulliRBM, chunk_size: int) -> torch.Tensor:
    """Streaming log-sum-exp of the smaller layer's log-weights (float64 ``rbm``)."""
    acc = StreamingLogSumExp()
    for log_weight in _log_weight_chunks_fast(rbm, chunk_size):
        acc.add(log_weight)
    return acc.value


def _plain_rbm(W: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> BernoulliRBM:
    """An RBM holding ``W, a, b`` detached, without copying them (for no-grad sums)."""
    rbm = BernoulliRBM.__new__(BernoulliRBM)
    nn.Module.__init__(rbm)
    rbm.W, rbm.a, rbm.b = W.detach(), a.detach(), b.detach()
    return rbm


@torch.no_grad()
def _model_expectations(
    rbm: BernoulliRBM, chunk_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:math:`\\mathbb E_p[x h^\\top], \\mathbb E_p[x], \\mathbb E_p[h]` by an exact sum, chunk by chunk.

    These are the derivatives of :math:`\\log Z` with respect to ``W``, ``a`` and ``b``.
    The weights of a chunk are rescaled by a running maximum; memory is that of one chunk.
    """
    hidden_enumerated = rbm.n_hidden <= rbm.n_visible
    m = None
    total = xh = ex = eh = None
    for states, log_weight, field in _smaller_layer_chunks(rbm, chunk_size):
        chunk_max = log_weight.max()
        if m is None:
            m = chunk_max
            total = torch.zeros((), dtype=rbm.W.dtype, device=rbm.W.device)
            xh = torch.zeros_like(rbm.W)
            ex, eh = torch.zeros_like(rbm.a), torch.zeros_like(rbm.b)
        elif chunk_max > m:
            scale = torch.exp(m - chunk_max)
            total, xh, ex, eh = total * scale, xh * scale, ex * scale, eh * scale
            m = chunk_max
        w = torch.exp(log_weight - m)  # (S,)
        mean_other = torch.sigmoid(field)  # (S, other)
        xs, hs = (mean_other, states) if hidden_enumerated else (states, mean_other)
        total = total + w.sum()
        xh = xh + (xs * w[:, None]).T @ hs
        ex = ex + w @ xs
        eh = eh + w @ hs
    return xh / total, ex / total, eh / total


class _LogPartition(torch.autograd.Function):
    """:math:`\\log Z(W, a, b)` whose backward is the exact expectation, chunk by chunk.

    :math:`\\partial \\log Z / \\partial W = \\mathbb E_p[x h^\\top]`,
    :math:`\\partial \\log Z / \\partial a = \\mathbb E_p[x]`,
    :math:`\\partial \\log Z / \\partial b = \\mathbb E_p[h]` (eq. {eq}`eq-two-phases`), so the
    backward pass enumerates again instead of keeping every chunk's graph alive: memory
    stays that of one chunk whatever the number of states.
    """

    @staticmethod
    def forward(ctx, W, a, b, chunk_size):
        ctx.chunk_size = chunk_size
        ctx.save_for_backward(W, a, b)
        return _log_partition_no_grad(_plain_rbm(W, a, b), chunk_size)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        W, a, b = ctx.saved_tensors
        xh, ex, eh = _model_expectations(_plain_rbm(W, a, b), ctx.chunk_size)
        return grad_output * xh, grad_output * ex, grad_output * eh, None


@torch.no_grad()
def _log_weight_chunks_fast(
    rbm: BernoulliRBM, chunk_size: int, group: int = 8
) -> Iterator[torch.Tensor]:
    """Log-weights of the smaller layer's states with products in place of softplus.

    Split every enumerated state into high and low bits, so the field on unit ``i`` of
    the other layer is :math:`z_i = u_i + v_i` (high part plus low part). Then

    .. math::

        \\sum_i \\log(1 + e^{z_i}) = \\sum_i c_i + \\sum_{\\text{groups}} \\log
        \\prod_{i \\in \\text{group}} \\big(e^{-c_i} + e^{u_i - c^u_i}\\, e^{v_i - c^v_i}\\,
        e^{c^u_i + c^v_i - c_i}\\big),

    with :math:`c^u, c^v` the chunk's maxima and :math:`c_i = \\max(c^u_i + c^v_i, 0)`.
    Every factor lies in :math:`(e^{-c_i}, 2]`, so a product over ``group`` units
    neither overflows nor (while :math:`\\sum c_i < 600`) underflows; the exponentials
    are taken once per high or low part instead of once per state and unit. Chunks
    whose fields are too large for that guarantee fall back to ``softplus``. The bound
    600 is a float64 one (:math:`e^{-600} \\approx 10^{-261}`); callers pass a float64 model.
    """
    W, a, b = rbm.W.detach(), rbm.a.detach(), rbm.b.detach()
    if W.dtype != torch.float64:
        raise TypeError(f"rbm must be float64 here. Got dtype {W.dtype} instead.")
    if rbm.n_hidden <= rbm.n_visible:
        weights, own_bias, other_bias = W.T, b, a  # (n, m): enumerate h
    else:
        weights, own_bias, other_bias = W, a, b  # enumerate x
    n, m = weights.shape
    kw = {"dtype": W.dtype, "device": W.device}
    low_bits = min(n, 10)
    low = binary_states(low_bits, **kw)  # (L, k)
    low_field = low @ weights[:low_bits]  # (L, m)
    low_bias = low @ own_bias[:low_bits]  # (L,)
    c_low = low_field.max(0).values  # (m,)
    exp_low = torch.exp(low_field - c_low).T.contiguous()  # (m, L), in (0, 1]
    n_rows = group * -(-m // group)  # units padded to a multiple of the group size
    n_high = n - low_bits
    high_per_chunk = max(1, chunk_size // low.shape[0])
    for start in range(0, 2**n_high, high_per_chunk):
        high = binary_states(n_high, start=start, stop=min(start + high_per_chunk, 2**n_high), **kw)
        high_field = high @ weights[low_bits:] + other_bias  # (H, m)
        bias = (high @ own_bias[low_bits:])[:, None] + low_bias[None, :]  # (H, L)
        c_high = high_field.max(0).values  # (m,)
        c = (c_high + c_low).clamp(min=0.0)  # (m,)
        if float(c.max()) * group > 600.0:
            field = high_field[:, None, :] + low_field[None, :, :]  # (H, L, m)
            yield (bias + _softplus(field).sum(-1)).reshape(-1)
            continue
        exp_high = torch.exp(high_field - c_high + (c_high + c_low - c)).T  # (m, H)
        # units first, so the products below are contiguous elementwise passes
        factors = torch.addcmul(
            torch.exp(-c)[:, None, None], exp_high[:, :, None], exp_low[:, None, :]
        )  # (m, H, L)
        if n_rows > m:
            factors = torch.cat([factors, factors.new_ones((n_rows - m, *factors.shape[1:]))])
        while factors.shape[0] > n_rows // group:  # pairwise products: unit i with i + rows/2
            half = factors.shape[0] // 2
            factors = factors[:half] * factors[half:]
        yield (bias + torch.log(factors).sum(0) + c.sum()).reshape(-1)  # (H*L,)


def log_likelihood_exact(
    rbm: BernoulliRBM,
    data: object,
    *,
    log_z: torch.Tensor | float | None = None,
    max_work: int | None = None,
) -> torch.Tensor:
    """Mean exact log-likelihood :math:`\\frac1n \\sum_k \\log p(x_k) = -\\overline{F(x)} - \\log Z`.

    Computed in float64 and returned in the model's dtype.

    Parameters
    ----------
    rbm : BernoulliRBM
    data : Tensor of shape (n_samples, n_visible)
        Binary data.
    log_z : Tensor of shape () or float, optional
        A precomputed :func:`log_partition_exact` (or an estimate), to avoid recomputing
        it; then nothing is enumerated.
    max_work : int, optional
        Passed to :func:`log_partition_exact` when ``log_z`` is not given.

    Returns
    -------
    Tensor of shape ()
    """
    check_rbm(rbm)
    x = check_batch(rbm, "data", data)
    exact = _float64_twin(rbm)
    if log_z is None:
        log_z = log_partition_exact(exact, max_work=max_work)  # float64
    elif isinstance(log_z, torch.Tensor):
        if log_z.numel() != 1 or not log_z.is_floating_point():
            raise ValueError(
                "log_z must be a floating tensor of shape () (one number, e.g. from "
                f"log_partition_exact). Got {describe(log_z)} instead."
            )
        if log_z.device != rbm.W.device:
            raise ValueError(
                f"log_z must be on the model's device ({rbm.W.device}). "
                f"Got device {log_z.device} instead."
            )
        if not bool(torch.isfinite(log_z).all()):
            raise ValueError(f"log_z must be finite. Got {log_z.item()} instead.")
        log_z = log_z.reshape(())
    else:
        if isinstance(log_z, bool) or not isinstance(log_z, (int, float)):
            raise TypeError(
                f"log_z must be a number or a tensor of shape (). Got {describe(log_z)} instead."
            )
        if not math.isfinite(log_z):
            raise ValueError(f"log_z must be finite. Got {log_z} instead.")
    mean_free_energy = exact.free_energy(x.to(torch.float64)).mean()  # float64
    return (-mean_free_energy - log_z).to(rbm.W.dtype)


@torch.no_grad()
def log_likelihood_gradient_exact(
    rbm: BernoulliRBM, data: object, *, chunk_size: int = 2**16, max_work: int | None = None
) -> LogLikelihoodGradient:
    """Exact gradient of the mean log-likelihood, as positive phase minus negative phase.

    .. math::

        \\frac{\\partial \\overline{\\log p}}{\\partial W_{ij}}
        = \\underbrace{\\tfrac1n \\textstyle\\sum_k x_{ki}\\, p(h_j{=}1 \\mid x_k)}_{\\text{positive}}
        - \\underbrace{\\mathbb E_{p(x, h)}[x_i h_j]}_{\\text{negative}},

    and likewise :math:`\\langle x_i \\rangle` for ``a`` and :math:`\\langle h_j \\rangle` for
    ``b``, eq. {eq}`eq-two-phases`. The negative phase is an exact sum over the smaller
    layer (the other one marginalised), accumulated with a running maximum. Computed in
    float64; the returned tensors have the model's dtype.

    Parameters
    ----------
    rbm : BernoulliRBM
    data : Tensor of shape (n_samples, n_visible)
        Binary data.
    chunk_size : int
        States per chunk of the enumeration.
    max_work : int, optional
        Refuse models whose :func:`exact_work` exceeds this; ``MAX_EXACT_WORK`` by default.

    Returns
    -------
    LogLikelihoodGradient
        ``.positive``, ``.negative`` and ``.gradient``, each an :class:`RBMParameters`.
    """
    _check_enumerable(rbm, max_work)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    x = check_batch(rbm, "data", data).to(torch.float64)  # (n, M)
    dtype, rbm = rbm.W.dtype, _float64_twin(rbm)
    ph = torch.sigmoid(x @ rbm.W + rbm.b)  # (n, N)
    positive = RBMParameters(x.T @ ph / x.shape[0], x.mean(0), ph.mean(0))

    negative = RBMParameters(*_model_expectations(rbm, chunk_size))
    return LogLikelihoodGradient(
        positive=RBMParameters(*(p.to(dtype) for p in positive)),
        negative=RBMParameters(*(p.to(dtype) for p in negative)),
    )
