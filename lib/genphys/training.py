"""Training RBMs: positive phase minus a negative phase (CD-k, PCD-k or exact), one optimiser step.

Explained in {ref}`sec-training-rbms`. The gradient of the mean log-likelihood is a
positive phase (data) minus a negative phase (model), eq. {eq}`eq-two-phases`; the
negative phase is an expectation under the model that costs :math:`2^{\\min(M, N)}`
terms exactly. What differs between the training methods is only how that expectation is
estimated, so each method is a small *negative phase* object with
``__call__(rbm, batch, generator) -> RBMParameters`` (the statistics
:math:`\\langle x h^\\top \\rangle, \\langle x \\rangle, \\langle h \\rangle`):

* :class:`CD` -- contrastive divergence (Hinton 2002): ``k`` block Gibbs steps started
  at the data;
* :class:`PCD` -- persistent CD (Tieleman 2008): chains kept from one mini-batch to the
  next;
* :class:`ExactNegative` -- the exact model expectation (small models).

:func:`rbm_step` subtracts the negative from the positive phase and hands the result to
an optimiser with ``torch.optim``'s SGD update (momentum and weight decay, Hinton 2010;
:func:`rbm_optimizer`);
:func:`train_rbm` runs it on :func:`genphys.fitting.fit`, which owns the history, the
progress bar and the divergence stop, and monitors the exact or AIS log-likelihood. For
CD and PCD, :func:`train_rbm` applies the same update through a faster kernel on one
augmented parameter matrix (``_FastContrastive``); ``tests/test_training.py`` checks that
its expected update equals that of :func:`rbm_step` and of :func:`cd_gradient_exact`.
:func:`cd_gradient_exact` computes the *expected* CD-k update exactly for tiny models, and
:func:`cd_gradient_sample` one sampled update with the code :class:`CD` uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch.optim.sgd import sgd

from ._validation import (
    as_tensor,
    check_binary,
    check_positive_float,
    check_positive_int,
    check_probability,
    describe,
)
from .ais import DEFAULT_CHAINS, DEFAULT_TEMPERATURES, log_partition_ais
from .enumeration import binary_states
from .fitting import History, TrainingDivergedError, fit, minibatches
from .mcmc import _gibbs_step
from .optim import SGD
from .rbm import (
    BernoulliRBM,
    LogLikelihoodGradient,
    RBMParameters,
    check_batch,
    check_rbm,
    log_likelihood_exact,
    log_likelihood_gradient_exact,
    log_partition_exact,
)
from .seeding import make_generator

__all__ = [
    "CD",
    "MAX_CD_EXACT_UNITS",
    "MAX_MONITOR_EXACT_UNITS",
    "PCD",
    "ExactNegative",
    "TrainingDivergedError",
    "cd_gradient_exact",
    "cd_gradient_sample",
    "gibbs_from_hidden",
    "initialize_rbm",
    "positive_phase",
    "rbm_optimizer",
    "rbm_step",
    "reconstruction_error",
    "sufficient_statistics",
    "train_rbm",
]

#: The monitored log-likelihood is exact when ``min(n_visible, n_hidden)`` is at most this.
MAX_MONITOR_EXACT_UNITS = 20
#: :func:`cd_gradient_exact` enumerates all :math:`2^{M+N}` joint states; ``M + N`` at most this.
MAX_CD_EXACT_UNITS = 20
#: ... and builds a :math:`2^M \\times 2^M` transition matrix; ``M`` at most this.
MAX_CD_EXACT_VISIBLE = 10

# TrainingDivergedError lives in genphys.fitting; it is re-exported here for code that
# imported it from genphys.training before the training loop was shared.


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
    seed: int | None = None,
    generator: torch.Generator | None = None,
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
    seed, generator
        Exactly one (:mod:`genphys.seeding`; a generator on the CPU): the initial weights,
        the same as ``BernoulliRBM(..., seed=seed)`` draws.
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
    g = make_generator(seed, generator)  # on the CPU, as BernoulliRBM draws its weights
    M = x.shape[1]
    W = weight_scale * torch.randn(M, n_hidden, generator=g, dtype=torch.float64)  # (M, N)
    kw = {"dtype": dtype, "device": device}
    rbm = BernoulliRBM.from_parameters(
        W.to(**kw), torch.zeros(M, **kw), torch.zeros(n_hidden, **kw)
    )
    p = x.to(dtype=dtype, device=rbm.W.device).mean(0).clamp(clip, 1.0 - clip)  # (M,)
    with torch.no_grad():
        rbm.a.copy_(torch.log(p) - torch.log1p(-p))
    return rbm


# -------------------------------------------------------------- the two phases
def sufficient_statistics(x: torch.Tensor, ph: torch.Tensor) -> RBMParameters:
    """Mini-batch means :math:`(\\overline{x\\, p_h^\\top}, \\overline{x}, \\overline{p_h})` of :math:`-\\partial E/\\partial(W, a, b)`.

    Parameters
    ----------
    x : Tensor of shape (B, n_visible)
    ph : Tensor of shape (B, n_hidden)
        :math:`p(h = 1 \\mid x)` (or hidden states).

    Returns
    -------
    RBMParameters
        ``W`` (M, N), ``a`` (M,), ``b`` (N,). Explained in {ref}`sec-training-rbms`.
    """
    return RBMParameters(x.T @ ph / x.shape[0], x.mean(0), ph.mean(0))


def positive_phase(rbm: BernoulliRBM, x: torch.Tensor) -> RBMParameters:
    """Positive phase :math:`\\langle -\\partial E / \\partial \\Theta \\rangle_{data}` with :math:`h` summed out: statistics of :math:`(x, \\sigma(b + W^\\top x))`.

    Parameters
    ----------
    rbm : BernoulliRBM
    x : Tensor of shape (B, n_visible)
        A mini-batch (not checked: the training loop calls this for every mini-batch).

    Returns
    -------
    RBMParameters
        Explained in {ref}`sec-training-rbms`.
    """
    with torch.no_grad():
        return sufficient_statistics(x, torch.sigmoid(x @ rbm.W + rbm.b))  # (B, N)


class CD:
    """Negative phase of CD-k: statistics of :math:`x_k` after ``k`` block Gibbs steps from the data.

    Every data vector :math:`x_0` of the mini-batch starts a chain
    :math:`x_0 \\to h_0 \\to x_1 \\to \\dots \\to x_k` (:func:`genphys.mcmc.gibbs_step`);
    the hidden units enter through their probabilities :math:`p(h \\mid x_k)`, eq.
    {eq}`eq-cd-k`. Explained in {ref}`sec-training-rbms`.

    Parameters
    ----------
    k : int
        Gibbs steps, ``k >= 1``.
    """

    #: Hinton's momentum after the first epochs (:func:`train_rbm`).
    final_momentum = 0.9

    def __init__(self, k: int = 1) -> None:
        self.k = check_positive_int("k", k)

    def __repr__(self) -> str:
        return f"CD(k={self.k})"

    def reset(self, data: torch.Tensor, generator: torch.Generator) -> None:
        """Nothing to reset: CD keeps no state between mini-batches."""

    @torch.no_grad()
    def __call__(
        self, rbm: BernoulliRBM, batch: torch.Tensor, generator: torch.Generator
    ) -> RBMParameters:
        x = batch  # (B, M): one chain per data vector
        for _ in range(self.k):
            x, _ = _gibbs_step(rbm, x, generator)  # (B, M)
        return sufficient_statistics(x, torch.sigmoid(x @ rbm.W + rbm.b))


class PCD:
    """Negative phase of PCD-k: ``n_chains`` persistent chains, ``k`` Gibbs steps per mini-batch.

    The chains start at random training vectors (:meth:`reset`, called by
    :func:`train_rbm`) and continue under the current parameters from one mini-batch to
    the next (Tieleman 2008); their visible states are in :attr:`chains`. Explained in
    {ref}`sec-training-rbms`.

    Parameters
    ----------
    k : int
        Gibbs steps per mini-batch, ``k >= 1``.
    n_chains : int
        100 by default (with only 10 chains, PCD on the digits reached a test
        log-likelihood about 1.5 nats lower).
    """

    #: Momentum 0.9 made PCD on the digits oscillate and lose 3-5 nats: the errors of the
    #: persistent chains are correlated between updates and momentum adds them up.
    final_momentum = 0.5

    def __init__(self, k: int = 1, n_chains: int = 100) -> None:
        self.k = check_positive_int("k", k)
        self.n_chains = check_positive_int("n_chains", n_chains)
        self.chains: torch.Tensor | None = None

    def __repr__(self) -> str:
        return f"PCD(k={self.k}, n_chains={self.n_chains})"

    def reset(self, data: torch.Tensor, generator: torch.Generator) -> None:
        """Start the chains at ``n_chains`` training vectors drawn uniformly with replacement."""
        start = torch.randint(
            data.shape[0], (self.n_chains,), generator=generator, device=data.device
        )
        self.chains = data[start]  # (C, M)

    @torch.no_grad()
    def __call__(
        self, rbm: BernoulliRBM, batch: torch.Tensor, generator: torch.Generator
    ) -> RBMParameters:
        if self.chains is None:
            raise ValueError("PCD chains must be started with reset(data, generator). Got none.")
        x = self.chains  # (C, M)
        for _ in range(self.k):
            x, _ = _gibbs_step(rbm, x, generator)  # (C, M)
        self.chains = x
        return sufficient_statistics(x, torch.sigmoid(x @ rbm.W + rbm.b))


class ExactNegative:
    """The exact negative phase :math:`\\mathbb E_{p(x,h)}[-\\partial E/\\partial\\Theta]`, summed over the smaller layer.

    Uses :func:`genphys.rbm.log_likelihood_gradient_exact`; only for models whose smaller
    layer can be enumerated. With it, :func:`train_rbm` is mini-batch (or, with one
    mini-batch, full-batch) gradient ascent on the exact log-likelihood. Explained in
    {ref}`sec-maximum-likelihood` and {ref}`sec-training-rbms`.
    """

    final_momentum = 0.9

    def __repr__(self) -> str:
        return "ExactNegative()"

    def reset(self, data: torch.Tensor, generator: torch.Generator) -> None:
        """Nothing to reset: the exact expectation has no state."""

    @torch.no_grad()
    def __call__(
        self, rbm: BernoulliRBM, batch: torch.Tensor, generator: torch.Generator
    ) -> RBMParameters:
        return log_likelihood_gradient_exact(rbm, batch).negative


NegativePhase = CD | PCD | ExactNegative


def rbm_step(
    rbm: BernoulliRBM,
    batch: torch.Tensor,
    negative_phase: Callable[[BernoulliRBM, torch.Tensor, torch.Generator], RBMParameters],
    optimizer: SGD | torch.optim.Optimizer,
    generator: torch.Generator,
) -> None:
    """One update: the gradient estimate :math:`\\hat g` = positive phase - negative phase, then ``optimizer.step()``.

    Optimisers minimise, so each parameter's ``.grad`` is set to :math:`-\\hat g`
    (the gradient of the negative mean log-likelihood). Explained in
    {ref}`sec-training-rbms`, eqs. {eq}`eq-two-phases` and {eq}`eq-momentum`.

    Parameters
    ----------
    rbm : BernoulliRBM
        Updated in place.
    batch : Tensor of shape (B, n_visible)
    negative_phase : CD, PCD or ExactNegative
    optimizer : genphys.optim.SGD or torch.optim.Optimizer
        Over ``rbm.W``, ``rbm.a``, ``rbm.b`` (see :func:`rbm_optimizer`).
    generator : torch.Generator
    """
    positive = positive_phase(rbm, batch)
    negative = negative_phase(rbm, batch, generator)
    for parameter, pos, neg in zip((rbm.W, rbm.a, rbm.b), positive, negative, strict=True):
        parameter.grad = neg - pos  # minus the log-likelihood gradient
    optimizer.step()


def rbm_optimizer(
    rbm: BernoulliRBM, *, learning_rate: float, momentum: float = 0.0, weight_decay: float = 0.0
) -> SGD:
    """SGD with momentum and weight decay on ``W`` only: eq. {eq}`eq-momentum`, :math:`v \\leftarrow \\mu v + \\epsilon(\\hat g - \\lambda W)`, :math:`\\Theta \\leftarrow \\Theta + v`.

    The update of ``torch.optim.SGD`` (through :class:`genphys.optim.SGD`), which keeps
    :math:`u = -v/\\epsilon`, so with a constant learning rate the two updates are the same.
    Its ``momentum`` can be changed between epochs (``param_groups``), which is how
    :func:`train_rbm` switches from 0.5 to 0.9.

    Returns
    -------
    genphys.optim.SGD
        Two parameter groups: ``W`` with ``weight_decay``, then the biases without.
        Explained in {ref}`sec-training-rbms`.
    """
    learning_rate = check_positive_float("learning_rate", learning_rate)
    if check_probability("momentum", momentum) >= 1.0:
        raise ValueError(f"momentum must be in [0, 1). Got {momentum} instead.")
    weight_decay = check_positive_float("weight_decay", weight_decay, allow_zero=True)
    return SGD(
        [
            {"params": [rbm.W], "weight_decay": weight_decay},
            {"params": [rbm.a, rbm.b], "weight_decay": 0.0},
        ],
        lr=learning_rate,
        momentum=float(momentum),
    )


@torch.no_grad()
def reconstruction_error(rbm: BernoulliRBM, x: torch.Tensor) -> torch.Tensor:
    """Mean over rows of :math:`\\sum_i (x_i - \\sigma(a + W \\sigma(b + W^\\top x))_i)^2`, the mean-field reconstruction.

    Parameters
    ----------
    rbm : BernoulliRBM
    x : Tensor of shape (n, n_visible)

    Returns
    -------
    Tensor of shape ()
        Explained in {ref}`sec-training-rbms`.
    """
    ph = torch.sigmoid(x @ rbm.W + rbm.b)  # (n, N)
    px = torch.sigmoid(ph @ rbm.W.T + rbm.a)  # (n, M)
    return ((x - px) ** 2).sum(1).mean()


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

    :func:`positive_phase` and the negative phase of :class:`CD`, the update
    :func:`train_rbm` applies; its expectation is :func:`cd_gradient_exact`.

    Parameters
    ----------
    rbm : BernoulliRBM
    data : Tensor of shape (n_samples, n_visible)
        Binary data, one chain per row.
    k : int
        Gibbs steps, ``k >= 1``.
    seed, generator
        Exactly one (:mod:`genphys.seeding`), on the RBM's device.

    Returns
    -------
    LogLikelihoodGradient
        ``.positive`` (exact given the data), ``.negative`` (sampled) and ``.gradient``.
        Explained in {ref}`sec-training-rbms`.
    """
    rbm = check_rbm(rbm)
    x = check_batch(rbm, "data", data)
    negative_phase = CD(k)
    g = make_generator(seed, generator, device=rbm.W.device)
    return LogLikelihoodGradient(
        positive=positive_phase(rbm, x), negative=negative_phase(rbm, x, g)
    )


# ------------------------------------------------ the expected CD-k update, exactly
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


# ------------------------------------------------------- the fast CD/PCD kernel
# train_rbm runs CD and PCD with the same algorithm as rbm_step + CD/PCD, written for
# speed: on the digits the readable version took 5-10 times longer per mini-batch (Python
# overhead of ~35 small tensor operations), which made chapter 6 more than 10 % slower.
# tests/test_training.py checks that both give the same expected update.
#
# The biases are the weights of an always-on unit in each layer: the parameters live in
# one augmented matrix Θ = [[W, a], [bᵀ, +inf]] of shape (M+1, N+1), and visible and hidden
# vectors carry a last entry 1 for the bias unit, so that Θᵀx̃ = (b + Wᵀx, +inf) and the
# statistics of all parameters, x̃ p(h̃|x)ᵀ, are one matrix product for a mini-batch. (The
# infinite entry is only ever multiplied by the bias units' constant 1.) Bernoulli draws
# compare noise with probabilities: h_j = [u_j < p_j] with u_j ~ U(0, 1), and
# x_i = [ℓ_i < z_i] with logistic noise ℓ_i = log(u_i / (1 - u_i)), which equals
# [u_i < σ(z_i)] without evaluating the sigmoid.
def _augmented(rbm: BernoulliRBM, dtype: torch.dtype) -> torch.Tensor:
    """The matrix Θ (M+1, N+1) holding ``W``, ``a``, ``b`` and the bias units' +inf."""
    M, N = rbm.n_visible, rbm.n_hidden
    theta = torch.empty(M + 1, N + 1, dtype=dtype, device=rbm.W.device)
    with torch.no_grad():
        theta[:M, :N] = rbm.W
        theta[:M, N] = rbm.a
        theta[M, :N] = rbm.b
        theta[M, N] = math.inf  # the bias units are always on
    return theta


def _split(theta: torch.Tensor) -> RBMParameters:
    """Inverse of :func:`_augmented`: views ``W``, ``a``, ``b`` of Θ."""
    return RBMParameters(theta[:-1, :-1], theta[:-1, -1], theta[-1, :-1])


def _with_bias_unit(x: torch.Tensor) -> torch.Tensor:
    """Append the always-on unit: (B, M) -> (B, M+1)."""
    return torch.cat([x, torch.ones_like(x[:, :1])], dim=1)


def _gibbs_from_hidden(
    ph: torch.Tensor, theta: torch.Tensor, theta_T: torch.Tensor, u_h, l_x
) -> tuple[torch.Tensor, torch.Tensor]:
    """``k = len(u_h)`` block Gibbs steps from hidden probabilities ``ph`` (B, N+1).

    ``u_h``: k uniform noise tensors (B, N+1); ``l_x``: k logistic noise tensors (B, M+1);
    both overwritten. Returns the visible states (B, M+1) and their hidden probabilities.
    """
    for u, noise in zip(u_h, l_x, strict=True):  # k >= 1 steps
        h = u.lt_(ph)  # (B, N+1): 1 where u < p(h_j = 1 | x)
        x = noise.lt_(torch.mm(h, theta_T))  # (B, M+1): 1 where noise < a + W h
        ph = torch.mm(x, theta).sigmoid_()  # (B, N+1), last column 1
    return x, ph


def gibbs_from_hidden(
    ph: torch.Tensor,
    theta: torch.Tensor,
    theta_T: torch.Tensor,
    u_h: Sequence[torch.Tensor],
    l_x: Sequence[torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """``k`` block Gibbs steps on the augmented matrix: :math:`\\tilde h = [u < p_h]`, :math:`\\tilde x = [\\ell < \\Theta \\tilde h]`, :math:`p_h = \\sigma(\\Theta^\\top \\tilde x)`.

    The kernel behind CD-k and PCD-k in :func:`train_rbm`. All parameters live in
    :math:`\\Theta = \\begin{pmatrix} W & a \\\\ b^\\top & +\\infty \\end{pmatrix}`, and
    :math:`\\tilde x = (x, 1)`, :math:`\\tilde h = (h, 1)` carry the always-on bias unit. Each
    step draws :math:`h \\sim p(h \\mid x)` by comparing uniforms with the hidden
    probabilities and :math:`x \\sim p(x \\mid h)` by comparing logistic noise
    :math:`\\ell = \\log\\frac{u}{1-u}` with the visible fields :math:`a + W h` (the same
    Bernoulli draw, without a sigmoid). Explained in {ref}`sec-pcd`.

    Parameters
    ----------
    ph : Tensor of shape (B, N + 1)
        Hidden probabilities :math:`\\sigma(\\Theta^\\top \\tilde x)` of the starting states,
        last column 1.
    theta : Tensor of shape (M + 1, N + 1)
        The augmented matrix :math:`\\Theta`, with :math:`+\\infty` in the corner.
    theta_T : Tensor of shape (N + 1, M + 1)
        Its transpose (a view is fine).
    u_h : sequence of k Tensors of shape (B, N + 1)
        Uniform noise in [0, 1) for the hidden layer, one per step (last column < 1);
        overwritten.
    l_x : sequence of k Tensors of shape (B, M + 1)
        Logistic noise for the visible layer, one per step (last column finite);
        overwritten.

    Returns
    -------
    x : Tensor of shape (B, M + 1)
        Visible states after ``k`` steps, last column 1.
    ph : Tensor of shape (B, N + 1)
        Their hidden probabilities, last column 1.
    """
    for name, value in (("ph", ph), ("theta", theta), ("theta_T", theta_T)):
        if not isinstance(value, torch.Tensor) or value.ndim != 2:
            raise TypeError(f"{name} must be a 2-d tensor. Got {describe(value)} instead.")
    if theta_T.shape != theta.shape[::-1]:
        raise ValueError(
            f"theta_T must be of shape {tuple(theta.shape[::-1])}, the transpose of theta. "
            f"Got {describe(theta_T)} instead."
        )
    if ph.shape[1] != theta.shape[1]:
        raise ValueError(
            f"ph must have {theta.shape[1]} columns (N + 1). Got {describe(ph)} instead."
        )
    if len(u_h) < 1 or len(u_h) != len(l_x):
        raise ValueError(
            f"u_h and l_x must hold the same number k >= 1 of noise tensors. "
            f"Got {len(u_h)} and {len(l_x)} instead."
        )
    for name, noise, width in (("u_h", u_h, theta.shape[1]), ("l_x", l_x, theta.shape[0])):
        for t in noise:
            if not isinstance(t, torch.Tensor) or t.shape != (ph.shape[0], width):
                raise ValueError(
                    f"{name} must hold tensors of shape {(ph.shape[0], width)}. "
                    f"Got {describe(t)} instead."
                )
    return _gibbs_from_hidden(ph, theta, theta_T, u_h, l_x)


class _FastContrastive:
    """CD-k or PCD-k on the augmented matrix, one :class:`genphys.optim.SGD` over Θ."""

    def __init__(self, rbm, phase, x, dtype, learning_rate, momentum, weight_decay, generator):
        self.k, self.g, self.weight_decay = phase.k, generator, weight_decay
        self.M, self.N = rbm.n_visible, rbm.n_hidden
        self.theta = _augmented(rbm, dtype)  # (M+1, N+1)
        self.theta_T = self.theta.T  # a view: follows the in-place updates
        self.x_all = _with_bias_unit(x.to(dtype))  # (n, M+1)
        self.optimizer = SGD([self.theta], lr=learning_rate, momentum=momentum)
        self.chains = None
        if isinstance(phase, PCD):  # chains started at random training vectors
            start = torch.randint(
                x.shape[0], (phase.n_chains,), generator=generator, device=x.device
            )
            self.chains = self.x_all[start]  # (C, M+1)

    def parameters(self) -> dict[str, torch.Tensor]:
        return dict(zip(("W", "a", "b"), _split(self.theta), strict=True))

    def step(self, x0: torch.Tensor) -> dict[str, float]:
        # no tensor here requires grad, so no autograd bookkeeping (and no no_grad guard)
        theta, k, N = self.theta, self.k, self.N
        ph0 = torch.mm(x0, theta).sigmoid_()  # (B, N+1)
        if self.chains is None:  # CD: chains start at the data
            start_ph = ph0
        else:  # PCD: the chains continue under the current Θ
            start_ph = torch.mm(self.chains, theta).sigmoid_()  # (C, N+1)
        width = start_ph.shape[0]
        noise = torch.rand(
            k, width, N + self.M + 2, generator=self.g, dtype=theta.dtype, device=theta.device
        )  # (k, B, N+1 + M+1): uniform for h, then logistic for x
        u_h, l_x = noise[..., : N + 1], noise[..., N + 1 :].logit_()
        xk, phk = _gibbs_from_hidden(start_ph, theta, self.theta_T, u_h.unbind(0), l_x.unbind(0))
        if self.chains is not None:
            self.chains = xk
        # minus (positive - negative) for all parameters at once; the corner is 1 - 1 = 0
        grad = torch.addmm(
            torch.mm(x0.T, ph0), xk.T, phk, beta=-1.0 / x0.shape[0], alpha=1.0 / width
        )  # (M+1, N+1)
        if self.weight_decay > 0.0:
            grad[:-1, :-1].add_(theta[:-1, :-1], alpha=self.weight_decay)  # on W only
        # the update of genphys.optim.SGD (torch.optim's sgd), called without its per-step
        # bookkeeping: one tensor, one group
        group, state = self.optimizer.param_groups[0], self.optimizer.state.setdefault(theta, {})
        buffers = [state.get("momentum_buffer")]
        sgd(
            [theta],
            [grad],
            buffers,
            weight_decay=0.0,  # added above, on W only
            momentum=group["momentum"],
            lr=group["lr"],
            dampening=0.0,
            nesterov=False,
            maximize=False,
            foreach=False,
        )
        state["momentum_buffer"] = buffers[0]
        return {}

    def copy_to(self, rbm: BernoulliRBM) -> None:
        with torch.no_grad():
            for target, value in zip((rbm.W, rbm.a, rbm.b), _split(self.theta), strict=True):
                target.copy_(value)


# ------------------------------------------------------------------ training
def _log_likelihood_monitor(
    rbm: BernoulliRBM,
    x_train: torch.Tensor,
    x_test: torch.Tensor | None,
    ais_chains: int,
    ais_temperatures: int,
    generator: torch.Generator,
) -> dict[str, float | None]:
    """Train/test mean log-likelihood: exact for small models, AIS otherwise."""
    with torch.no_grad():
        if min(rbm.n_visible, rbm.n_hidden) <= MAX_MONITOR_EXACT_UNITS:
            log_z, se, ess = log_partition_exact(rbm), 0.0, None
        else:
            estimate = log_partition_ais(
                rbm, n_chains=ais_chains, n_temperatures=ais_temperatures, generator=generator
            )
            log_z, se = estimate.estimate, float(estimate.standard_error)
            ess = getattr(estimate, "effective_sample_size", None)
        return {
            "train_log_likelihood": log_likelihood_exact(rbm, x_train, log_z=log_z),
            "test_log_likelihood": (
                None if x_test is None else log_likelihood_exact(rbm, x_test, log_z=log_z)
            ),
            "log_likelihood_se": se,
            "ais_effective_sample_size": ess,
        }


def train_rbm(
    rbm: BernoulliRBM,
    data: object,
    *,
    n_epochs: int,
    negative_phase: NegativePhase | None = None,
    batch_size: int = 100,
    learning_rate: float = 0.05,
    momentum: float = 0.5,
    final_momentum: float | None = None,
    momentum_switch_epoch: int = 5,
    weight_decay: float = 0.0,
    test_data: object | None = None,
    log_likelihood_every: int = 0,
    ais_chains: int = DEFAULT_CHAINS,
    ais_temperatures: int = DEFAULT_TEMPERATURES,
    compute_dtype: torch.dtype | None = torch.float32,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> History:
    """Train ``rbm`` in place by mini-batch ascent: :math:`\\Delta\\Theta = \\epsilon\\,(\\langle \\cdot \\rangle_{data} - \\langle \\cdot \\rangle_{negative})` with momentum.

    Every epoch shuffles the data once (:func:`genphys.fitting.minibatches`) and applies
    :func:`rbm_step` to every mini-batch with ``negative_phase``:

    * ``CD(k)`` (the default, ``k = 1``; Hinton 2002) starts a chain at every data vector;
    * ``PCD(k, n_chains)`` (Tieleman 2008) keeps persistent chains, started at random
      training vectors; their final states are ``history.extras["chains"]``;
    * ``ExactNegative()`` uses the exact model expectation (small models).

    The optimiser is :func:`rbm_optimizer` (Hinton 2010): momentum ``momentum`` for the first
    ``momentum_switch_epoch`` epochs and ``final_momentum`` after, by default
    ``negative_phase.final_momentum`` (0.9 for CD, 0.5 for PCD). ``momentum=0,
    final_momentum=0, weight_decay=0, PCD(1, n_chains=batch_size)`` with zero initial biases
    is the algorithm of scikit-learn's ``BernoulliRBM``. The loop is
    :func:`genphys.fitting.fit`.

    Parameters
    ----------
    rbm : BernoulliRBM
        Updated in place (see :func:`initialize_rbm` for a good starting point).
    data : Tensor of shape (n_samples, n_visible)
        Binary training data with the RBM's dtype and device.
    n_epochs : int
    negative_phase : CD, PCD or ExactNegative, optional
        ``CD(k=1)`` by default: CD-1 with Hinton's momentum gave the best test
        log-likelihood on the digits within 20 epochs ({ref}`sec-training-rbms`).
    batch_size : int
        Mini-batch size (the last mini-batch of an epoch may be smaller).
    learning_rate : float
        :math:`\\epsilon > 0`, multiplying the mini-batch *mean* gradient.
    momentum, final_momentum : float
        In [0, 1).
    momentum_switch_epoch : int
        Number of epochs run with ``momentum`` before switching to ``final_momentum``.
    weight_decay : float
        :math:`\\lambda \\ge 0`, on ``W`` only.
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
        Exactly one (:mod:`genphys.seeding`), on the RBM's device.
    progress : bool
        Show a progress bar over epochs.

    Returns
    -------
    genphys.fitting.History
        Columns ``reconstruction_error`` (:func:`reconstruction_error` of the training
        data after each epoch), ``momentum`` and, in monitored epochs,
        ``train_log_likelihood``, ``test_log_likelihood``, ``log_likelihood_se`` (0 when
        exact, the AIS standard error of :math:`\\log \\hat Z` otherwise) and, with AIS,
        ``ais_effective_sample_size`` where the estimate has one;
        ``extras["log_likelihood_method"]`` is ``"exact"`` or ``"ais"``.

    Raises
    ------
    genphys.fitting.TrainingDivergedError
        If a parameter or a monitored quantity becomes NaN or infinite, naming the epoch.
        The RBM keeps its parameters from the start of that epoch. Explained in
        {ref}`sec-training-rbms`.
    """
    rbm = check_rbm(rbm)
    x = check_batch(rbm, "data", data)
    x_test = None if test_data is None else check_batch(rbm, "test_data", test_data)
    n_epochs = check_positive_int("n_epochs", n_epochs)
    if negative_phase is None:
        negative_phase = CD(k=1)
    elif not isinstance(negative_phase, CD | PCD | ExactNegative):
        raise TypeError(
            "negative_phase must be CD(k), PCD(k, n_chains) or ExactNegative(). "
            f"Got {describe(negative_phase)} instead."
        )
    batch_size = check_positive_int("batch_size", batch_size)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    if final_momentum is None:
        final_momentum = negative_phase.final_momentum
    for name, value in (("momentum", momentum), ("final_momentum", final_momentum)):
        if check_probability(name, value) >= 1.0:
            raise ValueError(f"{name} must be in [0, 1). Got {value} instead.")
    momentum_switch_epoch = check_positive_int(
        "momentum_switch_epoch", momentum_switch_epoch, minimum=0
    )
    weight_decay = check_positive_float("weight_decay", weight_decay, allow_zero=True)
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
    g = make_generator(seed, generator, device=rbm.W.device)

    method = "exact" if min(rbm.n_visible, rbm.n_hidden) <= MAX_MONITOR_EXACT_UNITS else "ais"
    history = History(extras={"log_likelihood_method": method})
    if isinstance(negative_phase, ExactNegative):  # the readable step on a working copy
        work = rbm if dtype == rbm.W.dtype else _cast(rbm, dtype)
        x_work = x.to(dtype)
        optimizer = rbm_optimizer(
            work, learning_rate=learning_rate, momentum=momentum, weight_decay=weight_decay
        )
        parameters = {"W": work.W, "a": work.a, "b": work.b}

        def step(batch: torch.Tensor) -> dict[str, float]:
            try:
                rbm_step(work, batch, negative_phase, optimizer, g)
            except ValueError:  # the exact sums refuse non-finite parameters: name one
                for name, p in parameters.items():
                    if not bool(torch.isfinite(p).all()):
                        return {name: math.nan}  # fit stops and restores the epoch start
                raise
            return {}

        def sync() -> None:
            _copy_parameters(work, rbm)

    else:  # CD and PCD: the same update, fast (see _FastContrastive)
        fast = _FastContrastive(
            rbm, negative_phase, x, dtype, learning_rate, momentum, weight_decay, g
        )
        x_work, optimizer, parameters, step = (
            fast.x_all,
            fast.optimizer,
            fast.parameters(),
            fast.step,
        )

        def sync() -> None:
            fast.copy_to(rbm)

    def batches(epoch: int):
        mu = momentum if epoch <= momentum_switch_epoch else final_momentum
        for group in optimizer.param_groups:  # the momentum switch (Hinton 2010)
            group["momentum"] = mu
        return minibatches(x_work, batch_size, generator=g)

    def monitor(epoch: int) -> dict[str, object]:
        sync()
        record: dict[str, object] = {
            "reconstruction_error": reconstruction_error(rbm, x),
            "momentum": optimizer.param_groups[0]["momentum"],
        }
        if log_likelihood_every and (epoch % log_likelihood_every == 0 or epoch == n_epochs):
            record.update(_log_likelihood_monitor(rbm, x, x_test, ais_chains, ais_temperatures, g))
        return record

    try:
        fit(
            step,
            batches,
            n_epochs=n_epochs,
            parameters=parameters,
            monitor=monitor,
            progress=progress,
            desc=f"{negative_phase!r} RBM",
            history=history,
            hint=(
                f"try a smaller learning_rate (now {learning_rate}), a smaller momentum or "
                "some weight_decay"
            ),
        )
    finally:  # after a divergence too: the last finite parameters, restored by fit
        sync()
    if isinstance(negative_phase, PCD):
        negative_phase.chains = fast.chains[:, :-1].to(rbm.W.dtype)
        history.extras["chains"] = negative_phase.chains
    return history


def _copy_parameters(source: BernoulliRBM, target: BernoulliRBM) -> None:
    if source is target:
        return
    with torch.no_grad():
        for t, s in zip(
            (target.W, target.a, target.b), (source.W, source.a, source.b), strict=True
        ):
            t.copy_(s)


def _cast(rbm: BernoulliRBM, dtype: torch.dtype) -> BernoulliRBM:
    W, a, b = (p.detach().to(dtype) for p in (rbm.W, rbm.a, rbm.b))
    return BernoulliRBM.from_parameters(W, a, b)
