"""Training RBMs by contrastive divergence (CD-k) and persistent CD, with exact checks.

Explained in {ref}`sec-training-rbms`. The gradient of the mean log-likelihood is a
positive phase (data) minus a negative phase (model), eq. {eq}`eq-two-phases`; the
negative phase is an expectation under the model that costs :math:`2^{\\min(M, N)}`
terms exactly. Contrastive divergence (Hinton 2002) replaces it by the statistics of
``k`` block Gibbs steps started at the data; persistent CD (Tieleman 2008) keeps the
chains running from one mini-batch to the next instead of restarting them.

* :func:`train_rbm` -- mini-batch CD-k / PCD-k with momentum and weight decay
  (Hinton 2010), a :class:`TrainingHistory`, exact or AIS log-likelihood monitoring
  and a clear :class:`TrainingDivergedError` on NaN or infinity;
* :func:`initialize_rbm` -- Hinton's initialisation: small random weights, zero hidden
  biases, visible biases :math:`\\log p_i / (1 - p_i)` from the data;
* :func:`cd_gradient_exact` / :func:`cd_gradient_sample` -- the expected CD-k update
  computed exactly by transition matrices (tiny models), and one sampled CD-k update.

Implementation note. The biases are the weights of an always-on unit in each layer:
the parameters live in one augmented matrix

.. math::

    \\Theta = \\begin{pmatrix} W & a \\\\ b^\\top & +\\infty \\end{pmatrix}
    \\in \\mathbb R^{(M+1) \\times (N+1)},

and visible and hidden vectors carry a last entry for the bias unit, so that
:math:`\\Theta^\\top \\tilde x = (b + W^\\top x,\\ a^\\top x + \\infty)` and
:math:`p(\\tilde h \\mid x) = (\\sigma(b + W^\\top x),\\ 1)`: the bias unit is a unit
with an infinite bias, always on, and the statistics of all parameters,
:math:`\\tilde x\\, p(\\tilde h \\mid x)^\\top`, are one matrix product for a mini-batch.
(The infinite entry is only ever multiplied by the bias units' constant 1.) Bernoulli
draws compare pre-drawn
noise with probabilities: :math:`h_j = [u_j < p_j]` with :math:`u_j \\sim U(0, 1)`, and
:math:`x_i = [\\ell_i < z_i]` with logistic noise :math:`\\ell_i = \\log(u_i / (1 - u_i))`,
which equals :math:`[u_i < \\sigma(z_i)]` without evaluating the sigmoid. Both keep the
Python work per mini-batch to a handful of tensor operations.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ._validation import (
    as_tensor,
    check_binary,
    check_positive_float,
    check_positive_int,
    check_probability,
    describe,
)
from .ais import DEFAULT_CHAINS, DEFAULT_TEMPERATURES, _make_generator, log_partition_ais
from .enumeration import binary_states
from .rbm import (
    BernoulliRBM,
    LogLikelihoodGradient,
    RBMParameters,
    check_batch,
    check_rbm,
    log_likelihood_exact,
    log_partition_exact,
)

__all__ = [
    "MAX_CD_EXACT_UNITS",
    "MAX_MONITOR_EXACT_UNITS",
    "EpochRecord",
    "TrainingDivergedError",
    "TrainingHistory",
    "cd_gradient_exact",
    "cd_gradient_sample",
    "initialize_rbm",
    "train_rbm",
]

#: The monitored log-likelihood is exact when ``min(n_visible, n_hidden)`` is at most this.
MAX_MONITOR_EXACT_UNITS = 20
#: :func:`cd_gradient_exact` enumerates all :math:`2^{M+N}` joint states; ``M + N`` at most this.
MAX_CD_EXACT_UNITS = 20
#: ... and builds a :math:`2^M \\times 2^M` transition matrix; ``M`` at most this.
MAX_CD_EXACT_VISIBLE = 10
#: Random numbers drawn at once during training (bounds the memory used for noise).
_NOISE_BLOCK = 2**22


class TrainingDivergedError(FloatingPointError):
    """Training produced NaN or infinity.

    The RBM keeps the last finite parameters (those at the end of the previous epoch).

    Attributes
    ----------
    epoch : int
        The epoch (1-based) in which the non-finite value appeared.
    quantity : str
        What became non-finite (``"W"``, ``"a"``, ``"b"`` or a monitored quantity).
    history : TrainingHistory
        The records of the epochs completed before (other trainers attach their own
        history object).
    """

    def __init__(self, message: str, *, epoch: int, quantity: str, history: object):
        super().__init__(message)
        self.epoch = epoch
        self.quantity = quantity
        self.history = history


@dataclass(frozen=True)
class EpochRecord:
    """What :func:`train_rbm` measured after one epoch.

    Attributes
    ----------
    epoch : int
        1-based.
    seconds : float
        Wall time of the epoch's parameter updates (monitoring excluded).
    reconstruction_error : float
        Mean over training images of :math:`\\sum_i (x_i - \\hat x_i)^2` with the
        mean-field reconstruction :math:`\\hat x = \\sigma(a + W \\sigma(b + W^\\top x))`.
    momentum : float
        The momentum used during the epoch.
    train_log_likelihood, test_log_likelihood : float or None
        Mean log-likelihood per image (nats), when monitored.
    log_likelihood_se : float or None
        Its standard error: 0 when exact, the AIS standard error of :math:`\\log \\hat Z`
        otherwise.
    log_likelihood_method : {"exact", "ais"} or None
    monitor_seconds : float
        Wall time spent on monitoring after the epoch.
    """

    epoch: int
    seconds: float
    reconstruction_error: float
    momentum: float
    train_log_likelihood: float | None = None
    test_log_likelihood: float | None = None
    log_likelihood_se: float | None = None
    log_likelihood_method: str | None = None
    monitor_seconds: float = 0.0


@dataclass
class TrainingHistory:
    """Per-epoch records of a :func:`train_rbm` run.

    Attributes
    ----------
    records : list of EpochRecord
    chains : Tensor of shape (n_chains, n_visible) or None
        The visible states of the persistent chains after the last epoch (PCD only):
        approximate samples of the model.
    """

    records: list[EpochRecord] = field(default_factory=list)
    chains: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.records)

    def column(self, name: str) -> np.ndarray:
        """One field of every record as a float array (``nan`` where not measured)."""
        if name not in EpochRecord.__dataclass_fields__:
            known = ", ".join(EpochRecord.__dataclass_fields__)
            raise ValueError(f"name must be one of {known}. Got {name!r} instead.")
        values = [getattr(r, name) for r in self.records]
        if name == "log_likelihood_method":
            return np.array(values, dtype=object)
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    @property
    def epochs(self) -> np.ndarray:
        return self.column("epoch").astype(np.int64)

    @property
    def seconds(self) -> np.ndarray:
        return self.column("seconds")

    @property
    def reconstruction_error(self) -> np.ndarray:
        return self.column("reconstruction_error")

    @property
    def train_log_likelihood(self) -> np.ndarray:
        return self.column("train_log_likelihood")

    @property
    def test_log_likelihood(self) -> np.ndarray:
        return self.column("test_log_likelihood")

    @property
    def log_likelihood_se(self) -> np.ndarray:
        return self.column("log_likelihood_se")

    def as_dict(self) -> dict[str, list]:
        """Columns as lists, e.g. for ``pandas.DataFrame(history.as_dict())``."""
        return {
            name: [getattr(r, name) for r in self.records]
            for name in EpochRecord.__dataclass_fields__
        }


# ------------------------------------------------------------------ arguments
def _check_dtype(name: str, dtype: object) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating torch.dtype. Got {describe(dtype)} instead.")
    return dtype


# ------------------------------------------------------------- initialisation
def initialize_rbm(
    data: object,
    n_hidden: int,
    *,
    seed: int,
    weight_scale: float = 0.01,
    clip: float = 1e-3,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> BernoulliRBM:
    """Hinton's initialisation: :math:`W_{ij} \\sim \\mathcal N(0, 0.01^2)`, :math:`b = 0`, :math:`a_i = \\log \\frac{p_i}{1 - p_i}`.

    Here :math:`p_i` is the fraction of training vectors with :math:`x_i = 1`, clipped to
    ``[clip, 1 - clip]`` so that a unit that is always off (or on) gets a large finite
    bias instead of :math:`\\mp\\infty`. With :math:`W = 0` the model would then already
    reproduce every unit's mean (Hinton 2010, sec. 8).

    Parameters
    ----------
    data : Tensor of shape (n_samples, n_visible)
        Binary training data.
    n_hidden : int
    seed : int
        Seed of the initial weights.
    weight_scale : float
        Standard deviation of the weights, 0.01 by default.
    clip : float
        In (0, 0.5); 1e-3 by default (biases between about -6.9 and 6.9).
    dtype : torch.dtype
    device : torch.device or str, optional

    Returns
    -------
    BernoulliRBM
        Explained in {ref}`sec-training-rbms`.
    """
    dtype = _check_dtype("dtype", dtype)
    x = as_tensor("data", data, ndim=2, dtype=dtype if isinstance(data, torch.Tensor) else None)
    check_binary("data", x)
    n_hidden = check_positive_int("n_hidden", n_hidden)
    weight_scale = check_positive_float("weight_scale", weight_scale, allow_zero=True)
    clip = check_probability("clip", clip)
    if not 0.0 < clip < 0.5:
        raise ValueError(f"clip must be in (0, 0.5). Got {clip} instead.")
    rbm = BernoulliRBM(
        x.shape[1], n_hidden, seed=seed, weight_scale=weight_scale, dtype=dtype, device=device
    )
    p = x.to(dtype=dtype, device=rbm.W.device).mean(0).clamp(clip, 1.0 - clip)  # (M,)
    with torch.no_grad():
        rbm.a.copy_(torch.log(p) - torch.log1p(-p))
    return rbm


# ------------------------------------------------------------------- kernels
def _augmented(rbm: BernoulliRBM, dtype: torch.dtype) -> torch.Tensor:
    """The matrix :math:`\\Theta` (M+1, N+1) holding ``W``, ``a``, ``b`` and the bias units' +inf."""
    M, N = rbm.n_visible, rbm.n_hidden
    theta = torch.empty(M + 1, N + 1, dtype=dtype, device=rbm.W.device)
    with torch.no_grad():
        theta[:M, :N] = rbm.W
        theta[:M, N] = rbm.a
        theta[M, :N] = rbm.b
        theta[M, N] = math.inf  # the bias units are always on
    return theta


def _split(theta: torch.Tensor) -> RBMParameters:
    """Inverse of :func:`_augmented`: views ``W``, ``a``, ``b`` of :math:`\\Theta`."""
    return RBMParameters(theta[:-1, :-1], theta[:-1, -1], theta[-1, :-1])


def _with_bias_unit(x: torch.Tensor) -> torch.Tensor:
    """Append the always-on unit: (B, M) -> (B, M+1)."""
    return torch.cat([x, torch.ones_like(x[:, :1])], dim=1)


def _hidden_probabilities(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """:math:`p(h_j = 1 \\mid x) = \\sigma(b_j + (x^\\top W)_j)` and 1 for the bias unit: (B, M+1) -> (B, N+1)."""
    return torch.mm(x, theta).sigmoid_()


def _noise(
    n_steps: int, width: int, n_visible: int, n_hidden: int, like: torch.Tensor, generator
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Noise for ``n_steps`` Gibbs steps of ``width`` chains, as lists of (width, ...) views.

    Uniform noise for the hidden draws (width, N+1) and logistic noise for the visible
    draws (width, M+1).
    """
    kw = {"dtype": like.dtype, "device": like.device, "generator": generator}
    u_h = torch.rand(n_steps, width, n_hidden + 1, **kw)  # (S, B, N+1)
    l_x = torch.rand(n_steps, width, n_visible + 1, **kw).logit_()  # (S, B, M+1), logistic
    return list(u_h.unbind(0)), list(l_x.unbind(0))


def _gibbs_from_hidden(
    ph: torch.Tensor,
    theta: torch.Tensor,
    theta_T: torch.Tensor,
    u_h: list[torch.Tensor],
    l_x: list[torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """``k = len(u_h)`` block Gibbs steps :math:`h \\sim p(h|x),\\ x \\sim p(x|h)` from ``ph``.

    Parameters
    ----------
    ph : Tensor of shape (B, N+1)
        Hidden probabilities of the starting states (last column 1).
    u_h : list of k Tensors of shape (B, N+1)
        Uniform noise; overwritten.
    l_x : list of k Tensors of shape (B, M+1)
        Logistic noise; overwritten.

    Returns
    -------
    x : Tensor of shape (B, M+1)
        The visible states after ``k`` steps (last column 1).
    ph : Tensor of shape (B, N+1)
        Their hidden probabilities.
    """
    for u, noise in zip(u_h, l_x, strict=True):  # k >= 1 steps
        h = u.lt_(ph)  # (B, N+1): 1 where u < p(h_j = 1 | x)
        x = noise.lt_(torch.mm(h, theta_T))  # (B, M+1): 1 where noise < a + W h
        ph = _hidden_probabilities(x, theta)
    return x, ph


# ------------------------------------------------------------ CD gradients
def cd_gradient_sample(
    rbm: BernoulliRBM,
    data: object,
    *,
    k: int = 1,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> LogLikelihoodGradient:
    """One CD-k estimate :math:`\\overline{x\\, p(h \\mid x)^\\top} - \\overline{x_k\\, p(h \\mid x_k)^\\top}`.

    One Gibbs chain starts at every data vector :math:`x_0`, runs
    :math:`h_0 \\sim p(h \\mid x_0),\\ x_1 \\sim p(x \\mid h_0), \\dots, x_k` and contributes
    its :math:`x_k` to the negative phase; the hidden units enter both phases through
    their probabilities. This is the update :func:`train_rbm` applies (with the same
    sampling code), and its expectation is :func:`cd_gradient_exact`.

    Parameters
    ----------
    rbm : BernoulliRBM
    data : Tensor of shape (n_samples, n_visible)
        Binary data, one chain per row.
    k : int
        Gibbs steps, ``k >= 1``.
    seed, generator
        Exactly one of them (an int seed or a ``torch.Generator`` on the RBM's device).

    Returns
    -------
    LogLikelihoodGradient
        ``.positive`` (exact given the data), ``.negative`` (sampled) and ``.gradient``.
        Explained in {ref}`sec-training-rbms`.
    """
    rbm = check_rbm(rbm)
    x = check_batch(rbm, "data", data)
    k = check_positive_int("k", k)
    g = _make_generator(seed, generator, rbm.W.device)
    n, M, N = x.shape[0], rbm.n_visible, rbm.n_hidden
    with torch.no_grad():
        theta = _augmented(rbm, rbm.W.dtype)  # (M+1, N+1)
        x0 = _with_bias_unit(x)  # (n, M+1)
        ph0 = _hidden_probabilities(x0, theta)  # (n, N+1)
        u_h, l_x = _noise(k, n, M, N, theta, g)
        xk, phk = _gibbs_from_hidden(ph0, theta, theta.T, u_h, l_x)
        positive = _split(x0.T @ ph0 / n)
        negative = _split(xk.T @ phk / n)
    return LogLikelihoodGradient(positive=positive, negative=negative)


def _log_conditional_matrix(
    states_in: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor, states_out: torch.Tensor
) -> torch.Tensor:
    """:math:`\\log p(s_{out} \\mid s_{in})` for every pair, with field ``bias + s_in @ weights``.

    Returns a tensor of shape (S_in, S_out); each row is a product of Bernoullis.
    """
    z = torch.addmm(bias, states_in, weights)  # (S_in, n_out)
    on = torch.nn.functional.logsigmoid(z)  # log sigma(z)
    off = torch.nn.functional.logsigmoid(-z)  # log (1 - sigma(z))
    return on @ states_out.T + off @ (1 - states_out).T  # (S_in, S_out)


@torch.no_grad()
def cd_gradient_exact(rbm: BernoulliRBM, data: object, *, k: int = 1) -> LogLikelihoodGradient:
    """Expected CD-k update :math:`\\overline{x\\, p(h|x)^\\top} - \\sum_{x'} (\\delta_{x_0} T^k)(x')\\, x' p(h|x')^\\top`, exactly.

    :math:`T(x \\to x') = \\sum_h p(h \\mid x)\\, p(x' \\mid h)` is the block Gibbs transition
    matrix over all :math:`2^M` visible states, and :math:`\\delta_{x_0} T^k` is the exact
    distribution of the chain after ``k`` steps from the data vector :math:`x_0`. No
    sampling, so comparisons with :func:`genphys.rbm.log_likelihood_gradient_exact` are
    exact: as :math:`k \\to \\infty`, :math:`\\delta_{x_0} T^k \\to p(x)` and the CD-k update
    tends to the true gradient.

    Parameters
    ----------
    rbm : BernoulliRBM
        At most ``MAX_CD_EXACT_VISIBLE`` visible units and ``MAX_CD_EXACT_UNITS`` units
        in all.
    data : Tensor of shape (n_samples, n_visible)
    k : int
        Gibbs steps, ``k >= 1``.

    Returns
    -------
    LogLikelihoodGradient
        The same ``.positive`` as :func:`genphys.rbm.log_likelihood_gradient_exact`; the
        expected CD-k ``.negative``. Explained in {ref}`sec-training-rbms`.
    """
    rbm = check_rbm(rbm)
    x = check_batch(rbm, "data", data)
    k = check_positive_int("k", k)
    M, N = rbm.n_visible, rbm.n_hidden
    if M > MAX_CD_EXACT_VISIBLE or M + N > MAX_CD_EXACT_UNITS:
        raise ValueError(
            f"rbm must have at most {MAX_CD_EXACT_VISIBLE} visible units and "
            f"{MAX_CD_EXACT_UNITS} units in all for the exact CD-k expectation. Got "
            f"n_visible={M}, n_hidden={N} instead. Use cd_gradient_sample."
        )
    W, a, b = rbm.W.detach(), rbm.a.detach(), rbm.b.detach()
    kw = {"dtype": W.dtype, "device": W.device}
    xs = binary_states(M, **kw)  # (S, M), state code sum_i x_i 2^i
    hs = binary_states(N, **kw)  # (R, N)
    p_h_given_x = torch.exp(_log_conditional_matrix(xs, W, b, hs))  # (S, R)
    p_x_given_h = torch.exp(_log_conditional_matrix(hs, W.T, a, xs))  # (R, S)
    T = p_h_given_x @ p_x_given_h  # (S, S), rows sum to 1

    codes = (x @ (2.0 ** torch.arange(M, **kw))).round().long()  # (n,)
    dist = torch.bincount(codes, minlength=2**M).to(W.dtype) / x.shape[0]  # (S,)
    S = T.shape[0]
    if k <= 2 * S * max(1, k.bit_length()):  # k vector-matrix products are cheaper
        for _ in range(k):
            dist = dist @ T
    else:
        dist = dist @ torch.linalg.matrix_power(T, k)

    ph_all = torch.sigmoid(xs @ W + b)  # (S, N)
    ph_data = torch.sigmoid(x @ W + b)  # (n, N)
    positive = RBMParameters(x.T @ ph_data / x.shape[0], x.mean(0), ph_data.mean(0))
    negative = RBMParameters((xs * dist[:, None]).T @ ph_all, dist @ xs, dist @ ph_all)
    return LogLikelihoodGradient(positive=positive, negative=negative)


# ------------------------------------------------------------------ training
def _sgd_step(
    theta: torch.Tensor,
    velocity: torch.Tensor,
    x0_T: torch.Tensor,
    ph0: torch.Tensor,
    xk_T: torch.Tensor,
    phk: torch.Tensor,
    *,
    learning_rate: float,
    momentum: float,
    weight_decay: float,
) -> None:
    """In place: :math:`v \\leftarrow \\mu v + \\epsilon(\\hat g - \\lambda W)`, :math:`\\Theta \\leftarrow \\Theta + v`.

    :math:`\\hat g = \\tilde x_0^\\top p_0 / B - \\tilde x_k^\\top p_k / C` is the CD (or PCD)
    gradient for all parameters at once; weight decay acts on ``W`` only. With
    ``momentum == 0`` the step is added to :math:`\\Theta` directly.
    """
    target = velocity if momentum > 0.0 else theta
    if momentum > 0.0:
        velocity.mul_(momentum)
    target.addmm_(x0_T, ph0, alpha=learning_rate / ph0.shape[0])  # positive phase
    target.addmm_(xk_T, phk, alpha=-learning_rate / phk.shape[0])  # negative phase
    if weight_decay > 0.0:
        target[:-1, :-1].add_(theta[:-1, :-1], alpha=-learning_rate * weight_decay)
    if momentum > 0.0:
        theta.add_(velocity)


def _reconstruction_error(x: torch.Tensor, theta: torch.Tensor) -> float:
    """Mean over rows of :math:`\\sum_i (x_i - \\sigma(a + W \\sigma(b + W^\\top x))_i)^2`."""
    ph = _hidden_probabilities(x, theta)  # (n, N+1)
    px = torch.mm(ph, theta.T).sigmoid_()  # (n, M+1); the last column is the bias unit's 1
    return float(px.sub_(x).square_().sum()) / x.shape[0]


def _first_non_finite(theta: torch.Tensor) -> str | None:
    """Name of the first parameter block with NaN or infinity, or None."""
    if bool(torch.isfinite(theta.view(-1)[:-1]).all()):  # W, a, b: all but the +inf corner
        return None
    for name, value in zip(("W", "a", "b"), _split(theta), strict=True):
        if not bool(torch.isfinite(value).all()):
            return name
    return None  # pragma: no cover - one of the blocks is non-finite


def _monitor(
    rbm: BernoulliRBM,
    x_train: torch.Tensor,
    x_test: torch.Tensor | None,
    ais_chains: int,
    ais_temperatures: int,
    generator: torch.Generator,
) -> tuple[float, float | None, float, str]:
    """Train/test mean log-likelihood: exact for small models, AIS otherwise."""
    with torch.no_grad():
        if min(rbm.n_visible, rbm.n_hidden) <= MAX_MONITOR_EXACT_UNITS:
            log_z, se, method = log_partition_exact(rbm), 0.0, "exact"
        else:
            log_z, se_t = log_partition_ais(
                rbm, n_chains=ais_chains, n_temperatures=ais_temperatures, generator=generator
            )
            se, method = float(se_t), "ais"
        train = float(log_likelihood_exact(rbm, x_train, log_z=log_z))
        test = None if x_test is None else float(log_likelihood_exact(rbm, x_test, log_z=log_z))
    return train, test, se, method


def train_rbm(
    rbm: BernoulliRBM,
    data: object,
    *,
    n_epochs: int,
    method: str = "cd",
    k: int = 1,
    batch_size: int = 100,
    learning_rate: float = 0.05,
    momentum: float = 0.5,
    final_momentum: float | None = None,
    momentum_switch_epoch: int = 5,
    weight_decay: float = 0.0,
    n_chains: int | None = None,
    test_data: object | None = None,
    log_likelihood_every: int = 0,
    ais_chains: int = DEFAULT_CHAINS,
    ais_temperatures: int = DEFAULT_TEMPERATURES,
    compute_dtype: torch.dtype | None = torch.float32,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> TrainingHistory:
    """Train ``rbm`` in place by mini-batch CD-k or PCD-k: :math:`\\Delta\\Theta = \\epsilon\\,(\\langle \\cdot \\rangle_{data} - \\langle \\cdot \\rangle_{k})`.

    Every epoch shuffles the data once and visits it in mini-batches of ``batch_size``.
    For each mini-batch the positive phase uses the batch and :math:`p(h \\mid x)`; the
    negative phase uses the states :math:`x_k` after ``k`` block Gibbs steps and
    :math:`p(h \\mid x_k)`:

    * ``method="cd"`` (Hinton 2002) starts one chain at every data vector of the batch;
    * ``method="pcd"`` (Tieleman 2008) keeps ``n_chains`` persistent chains, started at
      random training vectors, and continues them from one mini-batch to the next.

    The update uses momentum and an L2 penalty on ``W`` (Hinton 2010):
    :math:`v \\leftarrow \\mu v + \\epsilon(\\hat g - \\lambda W)`, :math:`\\Theta \\leftarrow \\Theta + v`,
    with :math:`\\mu` = ``momentum`` for the first ``momentum_switch_epoch`` epochs and
    ``final_momentum`` after. By default ``final_momentum`` is Hinton's 0.9 with CD and
    stays 0.5 with PCD: on the digits, PCD with momentum 0.9 oscillated and lost 3-5 nats
    of test log-likelihood (the errors of the persistent chains are correlated from one
    update to the next, and momentum adds them up). ``momentum=0, final_momentum=0,
    weight_decay=0, method="pcd", k=1, n_chains=batch_size`` with zero initial biases is
    the algorithm of scikit-learn's ``BernoulliRBM``.

    Parameters
    ----------
    rbm : BernoulliRBM
        Updated in place (see :func:`initialize_rbm` for a good starting point).
    data : Tensor of shape (n_samples, n_visible)
        Binary training data with the RBM's dtype and device.
    n_epochs : int
    method : {"cd", "pcd"}
        CD-1 with Hinton's momentum gave the best test log-likelihood on the digits
        within 20 epochs ({ref}`sec-training-rbms`), so it is the default.
    k : int
        Gibbs steps per update, ``k >= 1``.
    batch_size : int
        Mini-batch size (the last mini-batch of an epoch may be smaller).
    learning_rate : float
        :math:`\\epsilon > 0`, multiplying the mini-batch *mean* gradient.
    momentum : float
        In [0, 1); 0.5 by default.
    final_momentum : float, optional
        In [0, 1); 0.9 for CD and 0.5 for PCD by default.
    momentum_switch_epoch : int
        Number of epochs run with ``momentum`` before switching to ``final_momentum``.
    weight_decay : float
        :math:`\\lambda \\ge 0`.
    n_chains : int, optional
        Persistent chains for PCD; ``max(batch_size, 100)`` by default (with only 10
        chains, PCD on the digits reached a test log-likelihood about 1.5 nats lower).
    test_data : Tensor of shape (n_test, n_visible), optional
        Held-out data for the monitored log-likelihood.
    log_likelihood_every : int
        Monitor the train (and test) log-likelihood every this many epochs and after the
        last one; 0 (the default) never. Exact when ``min(n_visible, n_hidden) <=
        MAX_MONITOR_EXACT_UNITS``, otherwise with :func:`genphys.ais.log_partition_ais`
        (``ais_chains`` particles, ``ais_temperatures`` temperatures).
    compute_dtype : torch.dtype or None
        Dtype of the arithmetic during training (``torch.float32`` by default, faster
        on CPUs and GPUs); ``None`` uses the RBM's dtype. The RBM keeps its own dtype.
    seed, generator
        Exactly one of them: an int seed or a ``torch.Generator`` on the RBM's device.
    progress : bool
        Show a ``tqdm`` progress bar over epochs.

    Returns
    -------
    TrainingHistory
        One :class:`EpochRecord` per epoch; ``.chains`` holds the final persistent states.

    Raises
    ------
    TrainingDivergedError
        If a parameter or a monitored quantity becomes NaN or infinite. The RBM keeps
        the parameters of the last finite epoch. Explained in {ref}`sec-training-rbms`.
    """
    rbm = check_rbm(rbm)
    x = check_batch(rbm, "data", data)
    x_test = None if test_data is None else check_batch(rbm, "test_data", test_data)
    n_epochs = check_positive_int("n_epochs", n_epochs)
    if method not in ("cd", "pcd"):
        raise ValueError(f"method must be 'cd' or 'pcd'. Got {method!r} instead.")
    k = check_positive_int("k", k)
    batch_size = check_positive_int("batch_size", batch_size)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    if final_momentum is None:
        final_momentum = 0.9 if method == "cd" else 0.5
    for name, value in (("momentum", momentum), ("final_momentum", final_momentum)):
        if check_probability(name, value) >= 1.0:
            raise ValueError(f"{name} must be in [0, 1). Got {value} instead.")
    momentum, final_momentum = float(momentum), float(final_momentum)
    momentum_switch_epoch = check_positive_int(
        "momentum_switch_epoch", momentum_switch_epoch, minimum=0
    )
    weight_decay = check_positive_float("weight_decay", weight_decay, allow_zero=True)
    n_chains = (
        max(batch_size, 100) if n_chains is None else check_positive_int("n_chains", n_chains)
    )
    log_likelihood_every = check_positive_int(
        "log_likelihood_every", log_likelihood_every, minimum=0
    )
    ais_chains = check_positive_int("ais_chains", ais_chains, minimum=2)
    ais_temperatures = check_positive_int("ais_temperatures", ais_temperatures, minimum=2)
    dtype = rbm.W.dtype if compute_dtype is None else _check_dtype("compute_dtype", compute_dtype)
    if learning_rate > torch.finfo(dtype).max:
        raise ValueError(
            f"learning_rate must be at most {torch.finfo(dtype).max:.3g} to be representable "
            f"in compute_dtype {dtype}. Got {learning_rate} instead."
        )
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False. Got {describe(progress)} instead.")
    g = _make_generator(seed, generator, rbm.W.device)

    n, M, N = x.shape[0], rbm.n_visible, rbm.n_hidden
    persistent = method == "pcd"
    history = TrainingHistory()
    with torch.no_grad():
        x_all = _with_bias_unit(x).to(dtype)  # (n, M+1)
        theta = _augmented(rbm, dtype)  # (M+1, N+1)
        theta_T = theta.T  # a view: follows the in-place updates
        velocity = torch.zeros_like(theta)
        width = n_chains if persistent else min(batch_size, n)  # chains per update
        if persistent:  # the chains' visible states, started at random training vectors
            start = torch.randint(n, (n_chains,), generator=g, device=x.device)
            chains_x = x_all[start]  # (C, M+1)
        n_batches = math.ceil(n / batch_size)
        per_batch = k * width * (M + N + 2)
        block = max(1, min(n_batches, _NOISE_BLOCK // per_batch))  # mini-batches per draw

        if progress:  # tqdm.auto picks the notebook widget, and warns where it is missing
            from tqdm.auto import tqdm
        else:
            from tqdm import tqdm
        bar = tqdm(
            range(1, n_epochs + 1), disable=not progress, desc=f"{method.upper()}-{k}", unit="epoch"
        )
        try:
            for epoch in bar:
                mu = momentum if epoch <= momentum_switch_epoch else final_momentum
                began = time.perf_counter()
                order = torch.randperm(n, generator=g, device=x.device)
                x_epoch = x_all[order]  # (n, M+1)
                batches = x_epoch.split(batch_size)  # views (B, M+1)
                batches_T = x_epoch.T.split(batch_size, dim=1)  # views (M+1, B)
                for first in range(0, n_batches, block):
                    count = min(block, n_batches - first)
                    u_h, l_x = _noise(count * k, width, M, N, theta, g)  # lists of (C, .)
                    for i in range(count):
                        x0, x0_T = batches[first + i], batches_T[first + i]
                        ph0 = _hidden_probabilities(x0, theta)  # (B, N+1)
                        # CD starts at the data; PCD continues its chains under the current Θ
                        start_ph = _hidden_probabilities(chains_x, theta) if persistent else ph0
                        u, noise = u_h[i * k : (i + 1) * k], l_x[i * k : (i + 1) * k]
                        if start_ph.shape[0] < width:  # the last, smaller mini-batch of CD
                            u = [v[: start_ph.shape[0]] for v in u]
                            noise = [v[: start_ph.shape[0]] for v in noise]
                        xk, phk = _gibbs_from_hidden(start_ph, theta, theta_T, u, noise)
                        if persistent:
                            chains_x = xk
                        _sgd_step(
                            theta,
                            velocity,
                            x0_T,
                            ph0,
                            xk.T,
                            phk,
                            learning_rate=learning_rate,
                            momentum=mu,
                            weight_decay=weight_decay,
                        )
                seconds = time.perf_counter() - began

                bad = _first_non_finite(theta)
                recon = math.nan if bad else _reconstruction_error(x_all, theta)
                if bad is None and not math.isfinite(recon):
                    bad = "reconstruction error"
                if bad is not None:
                    kept = f"the end of epoch {epoch - 1}" if epoch > 1 else "before training"
                    raise TrainingDivergedError(
                        f"Training diverged at epoch {epoch}: {bad} became NaN or infinite. "
                        f"The RBM keeps its parameters from {kept}, the last finite ones. Try a "
                        f"smaller learning_rate (now {learning_rate}), a smaller momentum or some "
                        "weight_decay.",
                        epoch=epoch,
                        quantity=bad,
                        history=history,
                    )
                for target, value in zip((rbm.W, rbm.a, rbm.b), _split(theta), strict=True):
                    target.copy_(value)

                record = {
                    "epoch": epoch,
                    "seconds": seconds,
                    "reconstruction_error": recon,
                    "momentum": mu,
                }
                if log_likelihood_every and (
                    epoch % log_likelihood_every == 0 or epoch == n_epochs
                ):
                    began = time.perf_counter()
                    train_ll, test_ll, se, how = _monitor(
                        rbm, x, x_test, ais_chains, ais_temperatures, g
                    )
                    if not math.isfinite(train_ll) or (
                        test_ll is not None and not math.isfinite(test_ll)
                    ):
                        raise TrainingDivergedError(
                            f"Training diverged at epoch {epoch}: the monitored log-likelihood "
                            "became NaN or infinite. The RBM keeps the parameters of this epoch.",
                            epoch=epoch,
                            quantity="log-likelihood",
                            history=history,
                        )
                    record.update(
                        train_log_likelihood=train_ll,
                        test_log_likelihood=test_ll,
                        log_likelihood_se=se,
                        log_likelihood_method=how,
                        monitor_seconds=time.perf_counter() - began,
                    )
                    bar.set_postfix(recon=f"{recon:.3f}", train_ll=f"{train_ll:.3f}")
                else:
                    bar.set_postfix(recon=f"{recon:.3f}")
                history.records.append(EpochRecord(**record))
        finally:
            bar.close()
        if persistent:
            history.chains = chains_x[:, :-1].to(rbm.W.dtype)
    return history
