"""A deep Boltzmann machine with two hidden layers: energy, exact sums, mean field, PCD training.

Explained in {ref}`sec-dbm`. Following Salakhutdinov & Hinton (2009), with layers
:math:`x` (``n_visible``), :math:`h^{(1)}` (``n_hidden1``) and :math:`h^{(2)}` (``n_hidden2``),

.. math::

    E(x, h^{(1)}, h^{(2)}) = -a^\\top x - b^{(1)\\top} h^{(1)} - b^{(2)\\top} h^{(2)}
    - x^\\top W^{(1)} h^{(1)} - h^{(1)\\top} W^{(2)} h^{(2)},
    \\qquad p = e^{-E} / Z.

The graph is bipartite between :math:`h^{(1)}` and :math:`(x, h^{(2)})`, so the DBM *is* an
RBM whose "visible" layer is :math:`(x, h^{(2)})` and whose hidden layer is
:math:`h^{(1)}`, with weights :math:`[W^{(1)}; W^{(2)\\top}]` (:meth:`DeepBoltzmannMachine.as_rbm`).
Its :math:`\\log Z` is therefore :func:`genphys.rbm.log_partition_exact` of that RBM, and
:func:`genphys.ais.log_partition_ais` applies unchanged (its base distribution has
:math:`W = 0` and the RBM's visible biases :math:`(a, b^{(2)})`). What does not reduce to
an RBM is :math:`\\log p(x)`: :math:`h^{(2)}` must be enumerated
(:func:`log_unnormalized_exact`), or bounded by mean field (:func:`mean_field_bound`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import (
    as_tensor,
    check_binary,
    check_float_dtype,
    check_positive_float,
    check_positive_int,
    check_probability,
    describe,
)
from .enumeration import binary_states
from .fitting import History, fit, minibatches
from .rbm import BernoulliRBM
from .rbm import log_partition_exact as rbm_log_partition_exact
from .seeding import make_generator

__all__ = [
    "MAX_EXACT_HIDDEN2",
    "POSTERIOR_BLOCK",
    "DeepBoltzmannMachine",
    "MeanField",
    "dbm_loss",
    "gibbs_sweep",
    "log_likelihood_gradient_exact",
    "log_partition_exact",
    "log_prob_exact",
    "log_unnormalized_exact",
    "mean_field",
    "mean_field_bound",
    "posterior_marginals_exact",
    "train_dbm",
]

#: Largest second hidden layer that :func:`log_unnormalized_exact` enumerates (2**20 states).
MAX_EXACT_HIDDEN2 = 20

#: Entries (row x state x unit) of one block of :func:`posterior_marginals_exact`: 2**21
#: float64 numbers, 16 MiB per intermediate.
POSTERIOR_BLOCK = 2**21


class DeepBoltzmannMachine(nn.Module):
    """Binary DBM with layers :math:`x`, :math:`h^{(1)}`, :math:`h^{(2)}`.

    Parameters
    ----------
    n_visible, n_hidden1, n_hidden2 : int
    seed, generator
        Exactly one: the initial weights :math:`\\mathcal N(0, \\mathrm{scale}^2)`, drawn in
        float64 on the CPU and then cast (the same model on every device); biases zero.
    weight_scale : float
    dtype : torch.dtype
    device : torch.device or str, optional

    Attributes
    ----------
    W1 : Parameter of shape (n_visible, n_hidden1)
    W2 : Parameter of shape (n_hidden1, n_hidden2)
    a : Parameter of shape (n_visible,)
    b1 : Parameter of shape (n_hidden1,)
    b2 : Parameter of shape (n_hidden2,)
    """

    def __init__(
        self,
        n_visible: int,
        n_hidden1: int,
        n_hidden2: int,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        weight_scale: float = 0.01,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        sizes = [
            check_positive_int(name, n)
            for name, n in (
                ("n_visible", n_visible),
                ("n_hidden1", n_hidden1),
                ("n_hidden2", n_hidden2),
            )
        ]
        check_float_dtype("dtype", dtype)
        weight_scale = check_positive_float("weight_scale", weight_scale, allow_zero=True)
        g = make_generator(seed, generator)
        kw = {"dtype": dtype, "device": device}
        W1 = weight_scale * torch.randn(sizes[0], sizes[1], generator=g, dtype=torch.float64)
        W2 = weight_scale * torch.randn(sizes[1], sizes[2], generator=g, dtype=torch.float64)
        self.W1 = nn.Parameter(W1.to(**kw))
        self.W2 = nn.Parameter(W2.to(**kw))
        self.a = nn.Parameter(torch.zeros(sizes[0], **kw))
        self.b1 = nn.Parameter(torch.zeros(sizes[1], **kw))
        self.b2 = nn.Parameter(torch.zeros(sizes[2], **kw))

    @classmethod
    def from_parameters(cls, W1: object, W2: object, a: object, b1: object, b2: object):
        """A DBM with the given parameters (float64 unless they are float tensors), copied."""
        W1_t = as_tensor("W1", W1, ndim=2)
        n_v, n_1 = W1_t.shape
        W2_t = as_tensor("W2", W2, ndim=2, shape=(n_1, None), dtype=W1_t.dtype)
        a_t = as_tensor("a", a, ndim=1, shape=(n_v,), dtype=W1_t.dtype)
        b1_t = as_tensor("b1", b1, ndim=1, shape=(n_1,), dtype=W1_t.dtype)
        b2_t = as_tensor("b2", b2, ndim=1, shape=(W2_t.shape[1],), dtype=W1_t.dtype)
        dbm = cls(
            n_v, n_1, W2_t.shape[1], seed=0, weight_scale=0.0, dtype=W1_t.dtype, device=W1_t.device
        )
        with torch.no_grad():
            for p, v in zip(dbm.parameters(), (W1_t, W2_t, a_t, b1_t, b2_t), strict=True):
                p.copy_(v)
        return dbm

    @property
    def sizes(self) -> tuple[int, int, int]:
        """``(n_visible, n_hidden1, n_hidden2)``."""
        return self.W1.shape[0], self.W1.shape[1], self.W2.shape[1]

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}, dtype={self.W1.dtype}"

    def _energy(self, x, h1, h2) -> torch.Tensor:
        # no checks: also used with mean-field values in place of h1, h2
        return (
            -(x @ self.a)
            - (h1 @ self.b1)
            - (h2 @ self.b2)
            - ((x @ self.W1) * h1).sum(-1)
            - ((h1 @ self.W2) * h2).sum(-1)
        )

    def energy(self, x: object, h1: object, h2: object) -> torch.Tensor:
        """:math:`E = -a^\\top x - b^{(1)\\top} h^{(1)} - b^{(2)\\top} h^{(2)} - x^\\top W^{(1)} h^{(1)} - h^{(1)\\top} W^{(2)} h^{(2)}`.

        Parameters
        ----------
        x : Tensor of shape (B, n_visible)
        h1 : Tensor of shape (B, n_hidden1)
        h2 : Tensor of shape (B, n_hidden2)

        Returns
        -------
        Tensor of shape (B,)
        """
        x, h1, h2 = (
            self.check_layer(n, v, i) for i, (n, v) in enumerate((("x", x), ("h1", h1), ("h2", h2)))
        )
        if not x.shape[0] == h1.shape[0] == h2.shape[0]:
            raise ValueError(
                "x, h1 and h2 must have the same number of rows. Got "
                f"{x.shape[0]}, {h1.shape[0]} and {h2.shape[0]} instead."
            )
        return self._energy(x, h1, h2)

    def check_layer(
        self, name: str, value: object, layer: int, *, binary: bool = True
    ) -> torch.Tensor:
        """``value`` as a (B, n) tensor of layer ``layer`` (0, 1, 2) with the model's dtype and device."""
        n = self.sizes[layer]
        t = as_tensor(
            name, value, ndim=2, shape=(None, n), dtype=self.W1.dtype, device=self.W1.device
        )
        return check_binary(name, t) if binary else t

    def as_rbm(self) -> BernoulliRBM:
        """The same model as an RBM with visible :math:`(x, h^{(2)})` and hidden :math:`h^{(1)}`: :math:`W = [W^{(1)}; W^{(2)\\top}]`, :math:`a = (a, b^{(2)})`, :math:`b = b^{(1)}`.

        Returns
        -------
        BernoulliRBM
            With ``n_visible = n_visible + n_hidden2`` and ``n_hidden = n_hidden1``; a copy
            (parameters detached). Explained in {ref}`sec-dbm`.
        """
        W = torch.cat([self.W1, self.W2.T], dim=0).detach()  # (n_v + n_2, n_1)
        return BernoulliRBM.from_parameters(
            W, torch.cat([self.a, self.b2]).detach(), self.b1.detach()
        )


def _check_dbm(dbm: object) -> DeepBoltzmannMachine:
    if not isinstance(dbm, DeepBoltzmannMachine):
        raise TypeError(f"dbm must be a DeepBoltzmannMachine. Got {describe(dbm)} instead.")
    for name, p in dbm.named_parameters():
        if not bool(torch.isfinite(p).all()):
            raise ValueError(f"dbm parameter {name} must be finite. Got NaN or infinity instead.")
    return dbm


# -------------------------------------------------------------------- exact sums
def log_partition_exact(dbm: DeepBoltzmannMachine) -> torch.Tensor:
    """:math:`\\log Z = \\log \\sum_{x, h^{(1)}, h^{(2)}} e^{-E}`, as :func:`genphys.rbm.log_partition_exact` of :meth:`~DeepBoltzmannMachine.as_rbm`.

    Differentiable: the RBM is built from the DBM's parameters without detaching when
    gradients are enabled.

    Returns
    -------
    Tensor of shape ()
        Explained in {ref}`sec-dbm`.
    """
    dbm = _check_dbm(dbm)
    rbm = BernoulliRBM.__new__(BernoulliRBM)
    nn.Module.__init__(rbm)
    rbm.W = torch.cat([dbm.W1, dbm.W2.T], dim=0)  # (n_v + n_2, n_1), keeps the graph
    rbm.a = torch.cat([dbm.a, dbm.b2])
    rbm.b = dbm.b1
    return rbm_log_partition_exact(rbm)


def _h2_log_weights(dbm: DeepBoltzmannMachine, x: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
    """:math:`a^\\top x + b^{(2)\\top} h^{(2)} + \\sum_j \\log(1 + e^{b^{(1)}_j + (x W^{(1)})_j + (W^{(2)} h^{(2)})_j})`, shape (B, S)."""
    field = (x @ dbm.W1 + dbm.b1)[:, None, :] + (h2 @ dbm.W2.T)[None, :, :]  # (B, S, n_1)
    return (x @ dbm.a)[:, None] + (h2 @ dbm.b2)[None, :] + F.softplus(field, threshold=37.0).sum(-1)


def _check_h2(dbm: DeepBoltzmannMachine) -> None:
    if dbm.sizes[2] > MAX_EXACT_HIDDEN2:
        raise ValueError(
            f"n_hidden2 must be at most {MAX_EXACT_HIDDEN2} to be enumerated. "
            f"Got {dbm.sizes[2]} instead; use mean_field_bound."
        )


def log_unnormalized_exact(dbm: DeepBoltzmannMachine, x: object) -> torch.Tensor:
    """:math:`\\log p^*(x) = \\log \\sum_{h^{(1)}, h^{(2)}} e^{-E}`, with :math:`h^{(1)}` summed analytically and :math:`h^{(2)}` enumerated.

    Parameters
    ----------
    dbm : DeepBoltzmannMachine
        ``n_hidden2 <= MAX_EXACT_HIDDEN2``.
    x : Tensor of shape (B, n_visible)

    Returns
    -------
    Tensor of shape (B,)
        Explained in {ref}`sec-dbm`.
    """
    dbm = _check_dbm(dbm)
    x = dbm.check_layer("x", x, 0)
    _check_h2(dbm)
    n2 = dbm.sizes[2]
    out = torch.full((x.shape[0],), -math.inf, dtype=x.dtype, device=x.device)
    chunk = max(1, 2**20 // max(1, x.shape[0] * dbm.sizes[1]))
    for start in range(0, 2**n2, chunk):
        h2 = binary_states(
            n2, start=start, stop=min(2**n2, start + chunk), dtype=x.dtype, device=x.device
        )
        out = torch.logaddexp(out, torch.logsumexp(_h2_log_weights(dbm, x, h2), dim=1))
    return out


def log_prob_exact(
    dbm: DeepBoltzmannMachine, x: object, *, log_z: torch.Tensor | float | None = None
) -> torch.Tensor:
    """:math:`\\log p(x) = \\log p^*(x) - \\log Z` for every row.

    Parameters
    ----------
    dbm : DeepBoltzmannMachine
    x : Tensor of shape (B, n_visible)
    log_z : float or Tensor, optional
        :math:`\\log Z` (e.g. from AIS); :func:`log_partition_exact` by default.

    Returns
    -------
    Tensor of shape (B,)
        Explained in {ref}`sec-dbm`.
    """
    if log_z is None:
        log_z = log_partition_exact(dbm)
    return log_unnormalized_exact(dbm, x) - log_z


def posterior_marginals_exact(
    dbm: DeepBoltzmannMachine, x: object
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact :math:`p(h^{(1)}_j = 1 \\mid x)` and :math:`p(h^{(2)}_k = 1 \\mid x)`, by enumerating :math:`h^{(2)}`.

    :math:`p(h^{(2)} \\mid x) \\propto e^{\\ell(h^{(2)})}` with :math:`\\ell` the summand of
    :func:`log_unnormalized_exact`, and
    :math:`p(h^{(1)}_j = 1 \\mid x) = \\sum_{h^{(2)}} p(h^{(2)} \\mid x)\\, \\sigma(b^{(1)}_j + (x W^{(1)})_j + (W^{(2)} h^{(2)})_j)`.

    The sum runs over blocks of rows and of :math:`h^{(2)}` states with a running maximum,
    so memory is bounded whatever ``B`` and ``n_hidden2``: a block holds at most
    :data:`POSTERIOR_BLOCK` (row, state, unit) entries, about 16 MiB per float64
    intermediate and 100 MiB in all.

    Returns
    -------
    mu1 : Tensor of shape (B, n_hidden1)
    mu2 : Tensor of shape (B, n_hidden2)
        Explained in {ref}`sec-dbm`.
    """
    dbm = _check_dbm(dbm)
    x = dbm.check_layer("x", x, 0)
    _check_h2(dbm)
    n1, n2 = dbm.sizes[1], dbm.sizes[2]
    n_states = 2**n2
    states_per_block = min(n_states, max(1, POSTERIOR_BLOCK // n1))
    rows_per_block = max(1, POSTERIOR_BLOCK // (states_per_block * n1))
    kw = {"dtype": x.dtype, "device": x.device}
    mu1_parts, mu2_parts = [], []
    with torch.no_grad():
        for first in range(0, x.shape[0], rows_per_block):
            xb = x[first : first + rows_per_block]  # (Bc, n_v)
            top = torch.full((xb.shape[0],), -math.inf, **kw)  # running max of log-weights
            total = torch.zeros(xb.shape[0], **kw)
            acc1 = torch.zeros(xb.shape[0], n1, **kw)
            acc2 = torch.zeros(xb.shape[0], n2, **kw)
            bottom_up = xb @ dbm.W1 + dbm.b1  # (Bc, n_1)
            for start in range(0, n_states, states_per_block):
                h2 = binary_states(
                    n2, start=start, stop=min(n_states, start + states_per_block), **kw
                )
                log_w = _h2_log_weights(dbm, xb, h2)  # (Bc, Sc)
                new_top = torch.maximum(top, log_w.max(1).values)
                scale = torch.exp(top - new_top)  # (Bc,), 0 on the first block
                w = torch.exp(log_w - new_top[:, None])  # (Bc, Sc)
                field = bottom_up[:, None, :] + (h2 @ dbm.W2.T)[None, :, :]  # (Bc, Sc, n_1)
                total = total * scale + w.sum(1)
                acc1 = acc1 * scale[:, None] + torch.einsum("bs,bsj->bj", w, torch.sigmoid(field))
                acc2 = acc2 * scale[:, None] + w @ h2
                top = new_top
            mu1_parts.append(acc1 / total[:, None])
            mu2_parts.append(acc2 / total[:, None])
    return torch.cat(mu1_parts), torch.cat(mu2_parts)


# -------------------------------------------------------------------- mean field
class MeanField(NamedTuple):
    """The mean-field parameters of :math:`q(h \\mid x) = \\prod_j \\mu^{(1)}_j{}^{h_j} (1 - \\mu^{(1)}_j)^{1 - h_j} \\prod_k \\dots`.

    Attributes
    ----------
    mu1 : Tensor of shape (B, n_hidden1)
    mu2 : Tensor of shape (B, n_hidden2)
    n_iterations : int
        Sweeps made.
    change : float
        Largest change of any :math:`\\mu` in the last sweep.
    """

    mu1: torch.Tensor
    mu2: torch.Tensor
    n_iterations: int
    change: float


@torch.no_grad()
def mean_field(
    dbm: DeepBoltzmannMachine,
    x: object,
    *,
    n_iterations: int = 50,
    damping: float = 0.0,
    tolerance: float = 1e-8,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> MeanField:
    """Fixed-point iteration :math:`\\mu^{(1)} \\leftarrow \\sigma(b^{(1)} + x W^{(1)} + \\mu^{(2)} W^{(2)\\top})`, :math:`\\mu^{(2)} \\leftarrow \\sigma(b^{(2)} + \\mu^{(1)} W^{(2)})`, eq. {eq}`eq-dbm-mean-field`.

    Each update is damped, :math:`\\mu \\leftarrow d\\,\\mu_{\\mathrm{old}} + (1 - d)\\,\\mu_{\\mathrm{new}}`.
    Stops when no :math:`\\mu` moves by more than ``tolerance`` or after ``n_iterations``.

    Parameters
    ----------
    dbm : DeepBoltzmannMachine
    x : Tensor of shape (B, n_visible)
        Binary.
    n_iterations : int
        Most sweeps (each updates :math:`\\mu^{(1)}` then :math:`\\mu^{(2)}`).
    damping : float
        :math:`d \\in [0, 1)`.
    tolerance : float
    init : tuple of Tensors (mu1, mu2), optional
        Starting point; by default the bottom-up pass :math:`\\mu^{(1)} = \\sigma(b^{(1)} + 2 x W^{(1)})`
        (the doubled input of Salakhutdinov & Hinton 2009), :math:`\\mu^{(2)} = \\sigma(b^{(2)} + \\mu^{(1)} W^{(2)})`.

    Returns
    -------
    MeanField
        Explained in {ref}`sec-dbm`.
    """
    dbm = _check_dbm(dbm)
    x = dbm.check_layer("x", x, 0)
    n_iterations = check_positive_int("n_iterations", n_iterations)
    d = check_probability("damping", damping)
    if d >= 1.0:
        raise ValueError(f"damping must be in [0, 1). Got {damping} instead.")
    tolerance = check_positive_float("tolerance", tolerance, allow_zero=True)
    bottom_up = x @ dbm.W1 + dbm.b1  # (B, n_1)
    if init is None:
        mu1 = torch.sigmoid(bottom_up + x @ dbm.W1)
        mu2 = torch.sigmoid(mu1 @ dbm.W2 + dbm.b2)
    else:
        if not isinstance(init, tuple | list) or len(init) != 2:
            raise TypeError(f"init must be a tuple (mu1, mu2). Got {describe(init)} instead.")
        mu1 = as_tensor(
            "init[0]", init[0], shape=(x.shape[0], dbm.sizes[1]), dtype=x.dtype, device=x.device
        ).clone()
        mu2 = as_tensor(
            "init[1]", init[1], shape=(x.shape[0], dbm.sizes[2]), dtype=x.dtype, device=x.device
        ).clone()
    change, done = math.inf, 0
    for it in range(1, n_iterations + 1):
        done = it
        new1 = d * mu1 + (1 - d) * torch.sigmoid(bottom_up + mu2 @ dbm.W2.T)  # (B, n_1)
        new2 = d * mu2 + (1 - d) * torch.sigmoid(new1 @ dbm.W2 + dbm.b2)  # (B, n_2)
        change = max(float((new1 - mu1).abs().max()), float((new2 - mu2).abs().max()))
        mu1, mu2 = new1, new2
        if change <= tolerance:
            break
    return MeanField(mu1, mu2, done, change)


def _entropy(mu: torch.Tensor) -> torch.Tensor:
    """:math:`-\\sum_j [\\mu_j \\log \\mu_j + (1 - \\mu_j) \\log(1 - \\mu_j)]`, zero at 0 and 1; shape (B,)."""
    return -(torch.special.xlogy(mu, mu) + torch.special.xlogy(1 - mu, 1 - mu)).sum(-1)


def mean_field_bound(
    dbm: DeepBoltzmannMachine, x: object, mu1: object, mu2: object
) -> torch.Tensor:
    """:math:`\\log p^*(x) \\ge -\\mathbb E_q[E(x, h)] + H(q) = -E(x, \\mu^{(1)}, \\mu^{(2)}) + H(\\mu^{(1)}) + H(\\mu^{(2)})`, eq. {eq}`eq-dbm-bound`.

    The energy is linear in each layer, so its mean under the factorial :math:`q` is the
    energy at the means. The gap to :func:`log_unnormalized_exact` is
    :math:`\\mathrm{KL}(q \\,\\|\\, p(h \\mid x)) \\ge 0`.

    Parameters
    ----------
    dbm : DeepBoltzmannMachine
    x : Tensor of shape (B, n_visible)
    mu1 : Tensor of shape (B, n_hidden1)
        In [0, 1].
    mu2 : Tensor of shape (B, n_hidden2)

    Returns
    -------
    Tensor of shape (B,)
        Explained in {ref}`sec-dbm`.
    """
    dbm = _check_dbm(dbm)
    x = dbm.check_layer("x", x, 0)
    mu1 = dbm.check_layer("mu1", mu1, 1, binary=False)
    mu2 = dbm.check_layer("mu2", mu2, 2, binary=False)
    for name, mu in (("mu1", mu1), ("mu2", mu2)):
        if mu.shape[0] != x.shape[0] or bool(((mu < 0) | (mu > 1)).any()):
            raise ValueError(
                f"{name} must hold probabilities in [0, 1], one row per row of x. "
                f"Got {describe(mu)} with values in [{float(mu.min()):.3g}, {float(mu.max()):.3g}] instead."
            )
    return -dbm._energy(x, mu1, mu2) + _entropy(mu1) + _entropy(mu2)


# ------------------------------------------------------------------ sampling
@torch.no_grad()
def gibbs_sweep(
    dbm: DeepBoltzmannMachine,
    x: object,
    h2: object,
    *,
    n_sweeps: int = 1,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Block Gibbs on the two-colouring: :math:`h^{(1)} \\sim p(h^{(1)} \\mid x, h^{(2)})`, then :math:`x \\sim p(x \\mid h^{(1)})` and :math:`h^{(2)} \\sim p(h^{(2)} \\mid h^{(1)})` together.

    :math:`p(h^{(1)}_j = 1 \\mid x, h^{(2)}) = \\sigma(b^{(1)}_j + (x W^{(1)})_j + (W^{(2)} h^{(2)})_j)`,
    :math:`p(x_i = 1 \\mid h^{(1)}) = \\sigma(a_i + (W^{(1)} h^{(1)})_i)`,
    :math:`p(h^{(2)}_k = 1 \\mid h^{(1)}) = \\sigma(b^{(2)}_k + (h^{(1)\\top} W^{(2)})_k)`:
    the odd layer given the even ones, then the even ones given the odd one. Each sweep
    leaves :math:`p(x, h^{(1)}, h^{(2)})` invariant.

    Parameters
    ----------
    dbm : DeepBoltzmannMachine
    x : Tensor of shape (C, n_visible)
    h2 : Tensor of shape (C, n_hidden2)
        The chains' even layers.
    n_sweeps : int
    seed, generator
        Exactly one.

    Returns
    -------
    x, h1, h2 : Tensors of shapes (C, n_visible), (C, n_hidden1), (C, n_hidden2)
        Explained in {ref}`sec-dbm`.
    """
    dbm = _check_dbm(dbm)
    x = dbm.check_layer("x", x, 0)
    h2 = dbm.check_layer("h2", h2, 2)
    if x.shape[0] != h2.shape[0]:
        raise ValueError(
            f"x and h2 must have the same number of rows. Got {x.shape[0]} and {h2.shape[0]} instead."
        )
    n_sweeps = check_positive_int("n_sweeps", n_sweeps)
    g = make_generator(seed, generator, device=x.device)
    for _ in range(n_sweeps):
        h1 = torch.bernoulli(torch.sigmoid(x @ dbm.W1 + h2 @ dbm.W2.T + dbm.b1), generator=g)
        x = torch.bernoulli(torch.sigmoid(h1 @ dbm.W1.T + dbm.a), generator=g)
        h2 = torch.bernoulli(torch.sigmoid(h1 @ dbm.W2 + dbm.b2), generator=g)
    return x, h1, h2


# ------------------------------------------------------------------ learning
def log_likelihood_gradient_exact(dbm: DeepBoltzmannMachine, x: object) -> dict[str, torch.Tensor]:
    """:math:`\\nabla_\\theta \\frac1B \\sum_b \\log p(x_b) = \\langle -\\partial_\\theta E \\rangle_{p(h \\mid x)\\,\\mathrm{data}} - \\langle -\\partial_\\theta E \\rangle_{p}`, by enumeration.

    Computed as the autograd gradient of :func:`log_prob_exact` (exact sums over
    :math:`h^{(2)}` and, for :math:`\\log Z`, over the smaller side of :meth:`as_rbm`).

    Returns
    -------
    dict of str to Tensor
        ``"W1"``, ``"W2"``, ``"a"``, ``"b1"``, ``"b2"`` with the parameters' shapes.
        Explained in {ref}`sec-dbm`.
    """
    dbm = _check_dbm(dbm)
    x = dbm.check_layer("x", x, 0)
    names = ["W1", "W2", "a", "b1", "b2"]
    params = [getattr(dbm, n) for n in names]
    with torch.enable_grad():
        value = log_prob_exact(dbm, x).mean()
        grads = torch.autograd.grad(value, params)
    return dict(zip(names, grads, strict=True))


def dbm_loss(
    dbm: DeepBoltzmannMachine, x: torch.Tensor, mf: MeanField, chains: tuple
) -> torch.Tensor:
    """Surrogate :math:`\\overline{E(x, \\mu^{(1)}, \\mu^{(2)})} - \\overline{E(\\tilde x, \\tilde h^{(1)}, \\tilde h^{(2)})}`; its gradient is minus the learning signal of eq. {eq}`eq-dbm-gradient`.

    The energy is linear in the parameters, so the gradient of the first term is
    :math:`-\\langle -\\partial_\\theta E \\rangle` at the mean-field statistics (positive phase)
    and that of the second is the chains' average (negative phase).

    Parameters
    ----------
    dbm : DeepBoltzmannMachine
    x : Tensor of shape (B, n_visible)
    mf : MeanField
        For ``x``.
    chains : tuple of Tensors (x, h1, h2) of shapes (C, ...)

    Returns
    -------
    Tensor of shape ()
        Explained in {ref}`sec-dbm`.
    """
    return dbm._energy(x, mf.mu1, mf.mu2).mean() - dbm._energy(*chains).mean()


def train_dbm(
    dbm: DeepBoltzmannMachine,
    data: object,
    *,
    n_epochs: int,
    batch_size: int = 100,
    learning_rate: float = 1e-2,
    n_chains: int = 100,
    n_sweeps: int = 1,
    n_mean_field: int = 30,
    damping: float = 0.0,
    log_likelihood_every: int = 0,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> History:
    """Train ``dbm`` in place: mean-field positive phase, persistent Gibbs chains for the negative phase, Adam (Salakhutdinov & Hinton 2009).

    Each mini-batch: :func:`mean_field` (``n_mean_field`` sweeps) for the data, ``n_sweeps``
    of :func:`gibbs_sweep` for the ``n_chains`` persistent chains (started at random
    training vectors and :math:`h^{(2)} = 0`), then one Adam step on :func:`dbm_loss`.

    Parameters
    ----------
    dbm : DeepBoltzmannMachine
    data : Tensor of shape (n_samples, n_visible)
        Binary.
    n_epochs, batch_size, learning_rate
    n_chains, n_sweeps, n_mean_field, damping
    log_likelihood_every : int
        Record the exact mean log-likelihood (``train_log_likelihood``) every this many
        epochs (0: never); needs a model small enough for :func:`log_prob_exact`.
    seed, generator
        Exactly one.
    progress : bool

    Returns
    -------
    genphys.fitting.History
        Columns ``loss`` (the surrogate), ``mean_field_change`` and, when monitored,
        ``train_log_likelihood``; ``extras["chains"]`` holds the final chains.
        Explained in {ref}`sec-dbm`.

    Raises
    ------
    genphys.fitting.TrainingDivergedError
    """
    dbm = _check_dbm(dbm)
    x = dbm.check_layer("data", data, 0)
    n_epochs = check_positive_int("n_epochs", n_epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    n_chains = check_positive_int("n_chains", n_chains)
    n_sweeps = check_positive_int("n_sweeps", n_sweeps)
    n_mean_field = check_positive_int("n_mean_field", n_mean_field)
    log_likelihood_every = check_positive_int(
        "log_likelihood_every", log_likelihood_every, minimum=0
    )
    g = make_generator(seed, generator, device=x.device)
    start = torch.randint(x.shape[0], (n_chains,), generator=g, device=x.device)
    chains = [x[start], None, x.new_zeros(n_chains, dbm.sizes[2])]
    optimizer = torch.optim.Adam(dbm.parameters(), lr=learning_rate)

    def step(batch: torch.Tensor) -> dict[str, float]:
        for name, p in dbm.named_parameters():  # the last update overflowed: fit stops
            if not bool(torch.isfinite(p).all()):
                return {name: math.nan}
        mf = mean_field(dbm, batch, n_iterations=n_mean_field, damping=damping)
        chains[:] = gibbs_sweep(dbm, chains[0], chains[2], n_sweeps=n_sweeps, generator=g)
        loss = dbm_loss(dbm, batch, mf, tuple(chains))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {"loss": float(loss.detach()), "mean_field_change": mf.change}

    def monitor(epoch: int) -> dict[str, float]:
        if log_likelihood_every and (epoch % log_likelihood_every == 0 or epoch == n_epochs):
            with torch.no_grad():
                return {"train_log_likelihood": float(log_prob_exact(dbm, x).mean())}
        return {}

    history = fit(
        step,
        lambda epoch: minibatches(x, batch_size, generator=g),
        n_epochs=n_epochs,
        parameters=dbm,
        monitor=monitor,
        progress=progress,
        desc="DBM",
        hint=f"try a smaller learning_rate (now {learning_rate})",
    )
    history.extras["chains"] = tuple(chains)
    return history
