"""An RBM learns the Ising model: exact distributions, exact KL divergences and observables.

Explained in {ref}`sec-rbm-thermodynamics`. Spins :math:`s_i = \\pm 1` of an
:math:`L \\times L` Ising lattice (:mod:`genphys.ising`) become the visible bits of an RBM
through :math:`x_i = (s_i + 1)/2`, site ``(r, c)`` at position ``r * L + c``. On lattices
small enough to enumerate (:math:`L \\le 4`, :math:`2^{16}` states) every quantity can be
computed exactly:

* :func:`boltzmann_log_prob_exact` and :func:`rbm_log_prob_exact` -- the whole table
  :math:`\\log p(x)` of the Boltzmann distribution and of an RBM, in the order of
  :func:`genphys.enumeration.binary_states`;
* :func:`kl_divergence_exact` -- :math:`\\mathrm{KL}(p \\,\\|\\, q)` between two such tables;
* :func:`observables_exact` -- energy, :math:`|m|`, specific heat and susceptibility of
  any table, the same keys as :func:`genphys.ising.exact_observables`;
* :func:`ising_rbm_exact` -- an RBM with one hidden unit per bond whose :math:`p(x)` *is*
  the Boltzmann distribution.

Their sampled counterparts are :func:`sample_boltzmann_exact` (independent draws from the
table, the ideal Monte Carlo), :func:`sample_rbm_spins` (block Gibbs chains of an RBM,
mapped back to spins) and :func:`genphys.ising.observables`. :func:`fit_rbm_exact_negative`
trains a small RBM by maximum likelihood with the model expectation summed exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ._validation import (
    as_tensor,
    check_binary,
    check_positive_float,
    check_positive_int,
    describe,
)
from .enumeration import binary_states
from .fitting import History, fit
from .optim import Adam
from .rbm import BernoulliRBM, check_rbm
from .seeding import make_generator

__all__ = [
    "MAX_EXACT_SITES",
    "MAX_FIT_HIDDEN",
    "FitResult",
    "bits_to_spins",
    "boltzmann_log_prob_exact",
    "fit_rbm_exact_negative",
    "ising_rbm_exact",
    "kl_divergence_exact",
    "observables_exact",
    "rbm_log_prob_exact",
    "sample_boltzmann_exact",
    "sample_rbm_spins",
    "spin_log_likelihood_gradient",
    "spins_to_bits",
]

#: Largest number of sites (visible units) whose :math:`2^n` states are tabulated.
MAX_EXACT_SITES = 16
#: Largest hidden layer :func:`fit_rbm_exact_negative` sums over exactly (:math:`2^{12}` states).
MAX_FIT_HIDDEN = 12
#: Tolerance on :math:`|\\log \\sum_x p(x)|` for a table to count as normalised.
_NORMALISATION_TOL = 1e-8


# ---------------------------------------------------------------------- checks
def _check_L(L: object) -> int:
    L = check_positive_int("L", L, minimum=2)
    if L * L > MAX_EXACT_SITES:
        raise ValueError(
            f"L must be at most {math.isqrt(MAX_EXACT_SITES)} for exact enumeration "
            f"(2**(L*L) states). Got {L} instead."
        )
    return L


def _side(n_sites: int, name: str, what: str) -> int:
    """The side ``L`` of a square lattice of ``n_sites``, or raise naming ``name``."""
    L = math.isqrt(n_sites)
    if L * L != n_sites or L < 2:
        raise ValueError(
            f"{name} must have {what} for a square L x L lattice with L >= 2. "
            f"Got {n_sites} sites instead."
        )
    return L


def _check_table(name: str, log_prob: object) -> torch.Tensor:
    """A normalised log-probability table over the :math:`2^n` states, shape (2**n,)."""
    lp = as_tensor(name, log_prob, ndim=1, finite=False)
    if bool(torch.isnan(lp).any()) or bool((lp == math.inf).any()):
        raise ValueError(f"{name} must not contain NaN or +inf. Got {describe(lp)} instead.")
    n = lp.shape[0].bit_length() - 1
    if 2**n != lp.shape[0]:
        raise ValueError(
            f"{name} must have 2**n entries, one per binary state. "
            f"Got shape {tuple(lp.shape)} instead."
        )
    total = torch.logsumexp(lp, 0).item()
    tolerance = max(_NORMALISATION_TOL, 1e3 * torch.finfo(lp.dtype).eps)  # looser for float32
    if not abs(total) <= tolerance:
        raise ValueError(
            f"{name} must be normalised: logsumexp({name}) = 0, i.e. the probabilities sum "
            f"to 1. Got logsumexp = {total:.3g} instead."
        )
    return lp


# -------------------------------------------------------------------- mapping
def spins_to_bits(spins: object) -> torch.Tensor:
    """:math:`x_i = (s_i + 1)/2`: Ising spins (n, L, L) to visible bits (n, L*L), row by row.

    Parameters
    ----------
    spins : Tensor of shape (n, L, L)
        Entries ±1.

    Returns
    -------
    Tensor of shape (n, L * L)
        Entries 0 (spin down) and 1 (spin up). Explained in {ref}`sec-rbm-thermodynamics`.
    """
    s = as_tensor("spins", spins, ndim=3, dtype=_float_dtype(spins))
    if s.shape[1] != s.shape[2]:
        raise ValueError(f"spins must have shape (n, L, L). Got shape {tuple(s.shape)} instead.")
    if bool((s.abs() != 1).any()):
        raise ValueError(
            f"spins must contain only +1 and -1. Got values {torch.unique(s)[:5].tolist()} instead."
        )
    return ((s.reshape(s.shape[0], -1) + 1) / 2).contiguous()


def bits_to_spins(x: object) -> torch.Tensor:
    """:math:`s_i = 2 x_i - 1`: visible bits (n, L*L) to Ising spins (n, L, L).

    Parameters
    ----------
    x : Tensor of shape (n, L * L)
        Binary visible states, site ``(r, c)`` in column ``r * L + c``.

    Returns
    -------
    Tensor of shape (n, L, L)
        Entries ±1. Explained in {ref}`sec-rbm-thermodynamics`.
    """
    bits = as_tensor("x", x, ndim=2, dtype=_float_dtype(x))
    check_binary("x", bits)
    L = _side(bits.shape[1], "x", "L*L columns")
    return (2 * bits - 1).reshape(bits.shape[0], L, L)


def _float_dtype(value: object) -> torch.dtype | None:
    return value.dtype if isinstance(value, torch.Tensor) and value.is_floating_point() else None


# --------------------------------------------------------- exact distributions
@lru_cache(maxsize=4)
def _all_energies(L: int) -> torch.Tensor:
    """Ising energy of every state of ``binary_states(L*L)``, shape (2**(L*L),)."""
    s = 2 * binary_states(L * L) - 1  # (2^N, N)
    s = s.reshape(-1, L, L)
    return -(s * (s.roll(-1, -1) + s.roll(-1, -2))).sum((-2, -1))  # (2^N,)


def boltzmann_log_prob_exact(L: int, T: float) -> torch.Tensor:
    """:math:`\\log p_T(x) = -E(s)/T - \\log Z` for every bit vector, with :math:`s = 2x - 1`.

    The energy is the periodic nearest-neighbour Ising energy of :func:`genphys.ising.energy`.

    Parameters
    ----------
    L : int
        Linear lattice size, ``L * L <= MAX_EXACT_SITES``.
    T : float
        Temperature, ``T > 0``.

    Returns
    -------
    Tensor of shape (2 ** (L * L),), float64
        In the order of ``genphys.enumeration.binary_states(L * L)``. Explained in
        {ref}`sec-rbm-thermodynamics`.
    """
    L = _check_L(L)
    T = check_positive_float("T", T)
    minus_beta_e = -_all_energies(L) / T  # (2^N,)
    return minus_beta_e - torch.logsumexp(minus_beta_e, 0)


def sample_boltzmann_exact(
    L: int,
    T: float,
    n_samples: int,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Independent draws :math:`s \\sim e^{-E(s)/T}/Z` from the enumerated table.

    The exact counterpart of :func:`genphys.ising.sample`: no Markov chain, no burn-in and
    no autocorrelation, at the price of tabulating all :math:`2^{L^2}` states.

    Parameters
    ----------
    L : int
        ``L * L <= MAX_EXACT_SITES``.
    T : float
    n_samples : int
    seed, generator
        Exactly one (:mod:`genphys.seeding`; a generator on the CPU).

    Returns
    -------
    Tensor of shape (n_samples, L, L), float64
        Spins ±1. Explained in {ref}`sec-rbm-thermodynamics`.
    """
    log_p = boltzmann_log_prob_exact(L, T)
    n_samples = check_positive_int("n_samples", n_samples)
    generator = make_generator(seed, generator)
    codes = torch.multinomial(log_p.exp(), n_samples, replacement=True, generator=generator)
    bits = ((codes[:, None] >> torch.arange(L * L)) & 1).to(torch.float64)  # (n, N)
    return (2 * bits - 1).reshape(n_samples, L, L)


@torch.no_grad()
def rbm_log_prob_exact(rbm: BernoulliRBM) -> torch.Tensor:
    """:math:`\\log p(x) = -F(x) - \\log Z` of an RBM for every visible state.

    Parameters
    ----------
    rbm : BernoulliRBM
        With at most ``MAX_EXACT_SITES`` visible units.

    Returns
    -------
    Tensor of shape (2 ** n_visible,)
        In the order of ``binary_states(n_visible)``. Explained in {ref}`sec-rbm-thermodynamics`.
    """
    rbm = check_rbm(rbm)
    if rbm.n_visible > MAX_EXACT_SITES:
        raise ValueError(
            f"rbm must have at most {MAX_EXACT_SITES} visible units to tabulate p(x). "
            f"Got n_visible={rbm.n_visible} instead."
        )
    x = binary_states(rbm.n_visible, dtype=rbm.W.dtype, device=rbm.W.device)  # (2^M, M)
    minus_f = -rbm._free_energy(x)  # (2^M,)
    return minus_f - torch.logsumexp(minus_f, 0)  # the table itself sums to Z


def kl_divergence_exact(log_p: object, log_q: object) -> torch.Tensor:
    """:math:`\\mathrm{KL}(p \\,\\|\\, q) = \\sum_x p(x) \\,[\\log p(x) - \\log q(x)] \\ge 0`.

    States with :math:`p(x) = 0` contribute nothing; a state with :math:`p(x) > 0` and
    :math:`q(x) = 0` makes the divergence infinite.

    Parameters
    ----------
    log_p, log_q : Tensor of shape (2**n,)
        Normalised log-probability tables over the same states (``-inf`` allowed).

    Returns
    -------
    Tensor of shape ()
        In nats. Explained in {ref}`sec-rbm-thermodynamics`.
    """
    lp = _check_table("log_p", log_p)
    lq = _check_table("log_q", log_q).to(lp.device)
    if lq.shape != lp.shape:
        raise ValueError(
            f"log_q must have the shape of log_p {tuple(lp.shape)}. "
            f"Got shape {tuple(lq.shape)} instead."
        )
    p = lp.exp()
    support = p > 0
    if bool((lq[support] == -math.inf).any()):
        return torch.tensor(math.inf, dtype=lp.dtype, device=lp.device)
    return (p[support] * (lp[support] - lq[support])).sum().clamp(min=0.0)


def observables_exact(log_prob: object, T: float) -> dict[str, float]:
    """Per-spin energy, :math:`|m|`, specific heat and susceptibility of a table :math:`p(x)`.

    With :math:`s = 2x - 1`, :math:`N = L^2` sites, :math:`e = E(s)/N`, :math:`m = \\sum_i s_i / N`
    and :math:`\\beta = 1/T`: :math:`\\langle e \\rangle`, :math:`\\langle |m| \\rangle`,
    :math:`c = \\beta^2 N \\operatorname{Var}(e)` and
    :math:`\\chi = \\beta N (\\langle m^2 \\rangle - \\langle |m| \\rangle^2)`, the keys of
    :func:`genphys.ising.exact_observables` except ``log_z``. For the Boltzmann table they are
    the exact Ising values; for an RBM's table they are what its perfect samples would give.

    Parameters
    ----------
    log_prob : Tensor of shape (2 ** (L * L),)
        Normalised, in the order of ``binary_states(L * L)``.
    T : float
        The temperature that enters :math:`c` and :math:`\\chi`.

    Returns
    -------
    dict of float
        Explained in {ref}`sec-rbm-thermodynamics`.
    """
    lp = _check_table("log_prob", log_prob)
    T = check_positive_float("T", T)
    n_sites = lp.shape[0].bit_length() - 1
    L = _side(n_sites, "log_prob", "2**(L*L) entries")
    p = lp.exp().double().cpu()
    e = _all_energies(L) / n_sites  # (2^N,)
    s = 2 * binary_states(n_sites) - 1
    m = s.mean(1)  # (2^N,)
    beta = 1.0 / T
    e_mean, m_abs = float(p @ e), float(p @ m.abs())
    return {
        "energy_per_spin": e_mean,
        "abs_magnetization_per_spin": m_abs,
        "specific_heat_per_spin": beta**2 * n_sites * float(p @ (e - e_mean) ** 2),
        "susceptibility_per_spin": beta * n_sites * (float(p @ m**2) - m_abs**2),
    }


# --------------------------------------------------------- exact construction
def ising_rbm_exact(L: int, T: float) -> BernoulliRBM:
    """The RBM with one hidden unit per bond whose marginal :math:`p(x)` is the Ising distribution.

    For the bond :math:`\\langle i k \\rangle` with :math:`u = x_i + x_k`, a hidden unit with
    weight :math:`w` to both sites and bias :math:`-w`, together with :math:`-w/2` added to
    both visible biases, contributes the factor
    :math:`e^{-w u/2}(1 + e^{w(u - 1)})`, which equals :math:`1 + e^{-w}` for
    :math:`u \\in \\{0, 2\\}` (aligned spins) and :math:`2 e^{-w/2}` for :math:`u = 1`. Their
    ratio is :math:`\\cosh(w/2)`, and it must be :math:`e^{2\\beta}`:

    .. math::

        w = 2 \\operatorname{arccosh} e^{2\\beta}, \\qquad b_{\\langle ik \\rangle} = -w,
        \\qquad a_i = -2w,

    (every site has four bonds). Eq. {eq}`eq-bond-unit`. With one unit for each of the
    :math:`2L^2` bonds of :func:`genphys.ising.energy` (the right and lower neighbour of every
    site) the product over bonds is :math:`e^{-\\beta E(s)}` up to a constant, for every ``L``.

    Parameters
    ----------
    L : int
        Linear size, ``L >= 2``.
    T : float
        Temperature, ``T > 0``.

    Returns
    -------
    BernoulliRBM
        ``L * L`` visible and ``2 * L * L`` hidden units, float64. Explained in
        {ref}`sec-rbm-thermodynamics`.
    """
    L = check_positive_int("L", L, minimum=2)
    T = check_positive_float("T", T)
    beta = 1.0 / T
    # arccosh(e^{2 beta}) = 2 beta + log(1 + sqrt(1 - e^{-4 beta})), stable for large beta
    w = 2.0 * (2.0 * beta + math.log1p(math.sqrt(-math.expm1(-4.0 * beta))))
    n = L * L
    site = np.arange(n).reshape(L, L)
    right, down = np.roll(site, -1, axis=1).ravel(), np.roll(site, -1, axis=0).ravel()
    first = np.concatenate([site.ravel(), site.ravel()])  # (2N,)
    second = np.concatenate([right, down])  # (2N,)
    W = torch.zeros(n, 2 * n, dtype=torch.float64)
    bond = torch.arange(2 * n)
    W.index_put_(
        (torch.as_tensor(first), bond), torch.tensor(w, dtype=torch.float64), accumulate=True
    )
    W.index_put_(
        (torch.as_tensor(second), bond), torch.tensor(w, dtype=torch.float64), accumulate=True
    )
    a = torch.full((n,), -2.0 * w, dtype=torch.float64)
    b = torch.full((2 * n,), -w, dtype=torch.float64)
    return BernoulliRBM.from_parameters(W, a, b)


# ------------------------------------------------------------------ sampling
def sample_rbm_spins(
    rbm: BernoulliRBM,
    n_chains: int,
    n_samples: int,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    burn_in: int = 100,
    thin: int = 5,
) -> torch.Tensor:
    """Spins :math:`s = 2x - 1` from ``n_chains`` block Gibbs chains of an RBM.

    Every chain starts from uniformly random bits, runs ``burn_in`` steps of
    :func:`genphys.mcmc.gibbs_step` and then keeps one visible state every ``thin`` steps.
    Samples are returned chain by chain (all samples of chain 0, then chain 1, ...), so the
    contiguous blocks of the jackknife in :func:`genphys.ising.observables` are groups of
    independent chains.

    Parameters
    ----------
    rbm : BernoulliRBM
        With ``L * L`` visible units.
    n_chains : int
    n_samples : int
        States kept per chain.
    seed, generator
        Exactly one (:mod:`genphys.seeding`), on the RBM's device.
    burn_in : int
    thin : int

    Returns
    -------
    Tensor of shape (n_chains * n_samples, L, L)
        Spins ±1. Explained in {ref}`sec-rbm-thermodynamics`.
    """
    from .mcmc import gibbs_sample  # imported here: mcmc is not needed for the exact tables

    rbm = check_rbm(rbm)
    L = _side(rbm.n_visible, "rbm", "L*L visible units")
    n_chains = check_positive_int("n_chains", n_chains)
    n_samples = check_positive_int("n_samples", n_samples)
    generator = make_generator(seed, generator, device=rbm.W.device)
    x0 = torch.randint(2, (n_chains, rbm.n_visible), generator=generator, device=rbm.W.device).to(
        rbm.W.dtype
    )
    x = gibbs_sample(rbm, x0, n_samples, generator=generator, burn_in=burn_in, thin=thin)
    return (2 * x - 1).reshape(n_chains * n_samples, L, L)  # (B*S, L, L), chain-major


# ------------------------------------------------------------------ training
@dataclass(frozen=True)
class FitResult:
    """What :func:`fit_rbm_exact_negative` returns for one machine.

    Attributes
    ----------
    rbm : BernoulliRBM
        The trained machine.
    steps : ndarray of shape (n_records,)
        Adam steps after which the divergence was recorded (0 = before training).
    kl : ndarray of shape (n_records,)
        Exact :math:`\\mathrm{KL}(p_{target} \\,\\|\\, p_{RBM})` in nats at those steps (empty
        when no target was given).
    history : genphys.fitting.History
        The run's records, shared by the machines trained together: ``step`` and
        ``kl_<k>`` for machine ``k``; record 0 is before training.
    """

    rbm: BernoulliRBM
    steps: np.ndarray
    kl: np.ndarray
    history: History


def _to_rbm(U: torch.Tensor, alpha: torch.Tensor, gamma: torch.Tensor) -> BernoulliRBM:
    """Parameters of :math:`-E = \\alpha^\\top s + \\gamma^\\top t + s^\\top U t` (s, t = ±1) as a 0/1 RBM."""
    W = 4 * U  # (M, N)
    a = 2 * alpha - 2 * U.sum(1)  # (M,)
    b = 2 * gamma - 2 * U.sum(0)  # (N,)
    return BernoulliRBM.from_parameters(W, a, b)


def _as_list(name: str, value: object, count: int | None) -> list:
    if isinstance(value, (list, tuple)):
        items = list(value)
        if not items:
            raise ValueError(f"{name} must not be empty. Got an empty {type(value).__name__}.")
    else:
        items = [value] * (count or 1)
    if count is not None and len(items) != count:
        raise ValueError(
            f"{name} must have one entry per data set ({count}). Got {len(items)} instead."
        )
    return items


def spin_log_likelihood_gradient(
    s: torch.Tensor,
    U: torch.Tensor,
    alpha: torch.Tensor,
    gamma: torch.Tensor,
    t_all: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradient for :math:`U` of the mean log-likelihood in the ±1 gauge: :math:`\\langle s \\tanh(\\gamma + U^\\top s)^\\top \\rangle_{batch} - \\sum_t q(t) \\tanh(\\alpha + U t)\\, t^\\top`.

    For K RBMs at once, with :math:`-E = \\alpha^\\top s + \\gamma^\\top t + s^\\top U t`
    (spins :math:`s = 2x - 1`, :math:`t = 2h - 1`): data term from the batch minus the exact
    model term, where :math:`q(t) \\propto e^{\\gamma^\\top t} \\prod_i 2\\cosh(\\alpha_i + (U t)_i)`
    is the model's marginal of the hidden layer, summed over all ``H = 2**N`` states
    ``t_all``. The gradients for :math:`\\alpha` and :math:`\\gamma` are the same difference
    with :math:`s` and :math:`t` in place of the outer products. This is the ascent
    direction used by :func:`fit_rbm_exact_negative`. Explained in
    {ref}`sec-rbm-thermodynamics`.

    Parameters
    ----------
    s : Tensor of shape (K, B, M)
        A batch of visible spins ±1 for each of the K machines.
    U : Tensor of shape (K, M, N)
        Couplings.
    alpha : Tensor of shape (K, M)
        Visible fields.
    gamma : Tensor of shape (K, N)
        Hidden fields.
    t_all : Tensor of shape (H, N)
        All :math:`H = 2^N` hidden spin states.

    Returns
    -------
    grad_U : Tensor of shape (K, M, N)
    grad_alpha : Tensor of shape (K, M)
    grad_gamma : Tensor of shape (K, N)
    """
    for name, value, ndim in (
        ("s", s, 3),
        ("U", U, 3),
        ("alpha", alpha, 2),
        ("gamma", gamma, 2),
        ("t_all", t_all, 2),
    ):
        if not isinstance(value, torch.Tensor) or value.ndim != ndim:
            raise TypeError(f"{name} must be a {ndim}-d tensor. Got {describe(value)} instead.")
    K, M, N = U.shape
    for name, value, shape in (
        ("s", s, (K, s.shape[1], M)),
        ("alpha", alpha, (K, M)),
        ("gamma", gamma, (K, N)),
        ("t_all", t_all, (t_all.shape[0], N)),
    ):
        if tuple(value.shape) != shape:
            raise ValueError(
                f"{name} must be of shape {shape} to match U. Got {describe(value)} instead."
            )
    t_mean = torch.tanh(torch.baddbmm(gamma[:, None, :], s, U))  # (K, B, N), E[t | s]
    field = alpha[:, None, :] + torch.matmul(t_all, U.transpose(1, 2))  # (K, H, M)
    # log weight of each hidden state: gamma.t + sum_i log 2cosh(field_i)
    log_w = gamma @ t_all.T + (F.softplus(2 * field) - field).sum(-1)  # (K, H)
    q = torch.softmax(log_w, -1)  # (K, H), p(t) under each model
    s_mean = torch.tanh(field) * q[..., None]  # (K, H, M), q(t) E[s | t]
    batch = s.shape[1]
    return (
        s.transpose(1, 2) @ t_mean / batch - s_mean.transpose(1, 2) @ t_all,  # (K, M, N)
        s.mean(1) - s_mean.sum(1),  # (K, M)
        t_mean.mean(1) - q @ t_all,  # (K, N)
    )


def fit_rbm_exact_negative(
    data: object,
    n_hidden: int | list[int],
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    n_steps: int = 500,
    batch_size: int = 500,
    learning_rate: float = 0.1,
    weight_scale: float = 0.1,
    target_log_prob: object | None = None,
    record_every: int = 100,
    compute_dtype: torch.dtype = torch.float32,
) -> FitResult | list[FitResult]:
    """Maximum likelihood for small RBMs: data term from mini-batches, model term summed exactly.

    The gradient of the mean log-likelihood is the data expectation minus the model
    expectation of :math:`-\\partial E/\\partial\\Theta`, eq. {eq}`eq-two-phases`. Here the
    model expectation is an exact sum over the :math:`2^N` hidden states (the visible units
    summed out analytically), so for ``n_hidden <= MAX_FIT_HIDDEN`` the only noise is that of
    the mini-batch of ``batch_size`` training vectors drawn with replacement at every step.

    The parameters are optimised in the symmetric gauge: with :math:`s = 2x - 1` and
    :math:`t = 2h - 1`, :math:`-E = \\alpha^\\top s + \\gamma^\\top t + s^\\top U t`, the same
    family of distributions as eq. {eq}`eq-rbm-energy` (:math:`W = 4U`,
    :math:`a = 2\\alpha - 2U\\mathbf 1`, :math:`b = 2\\gamma - 2U^\\top\\mathbf 1`), in which the
    biases of a spin-flip symmetric model stay at zero instead of at :math:`\\pm` a sum of
    weights. This is the centering trick (Montavon and Müller 2012) with offsets 1/2; it lets
    Adam (Kingma and Ba 2015), whose steps have about the same size for every parameter,
    reach the large weights of an ordered phase in a few hundred steps. The step size
    follows a cosine from ``learning_rate`` down to zero. Initialisation:
    :math:`U_{ij} \\sim \\mathcal N(0, \\text{weight\\_scale}^2)`, :math:`\\gamma = 0` and
    :math:`\\alpha_i = \\operatorname{artanh}\\langle s_i \\rangle_{data}` (clipped), so that
    with :math:`U = 0` every unit has its data mean.

    Several machines can be trained at once: pass a list of data sets (and a list of hidden
    layer sizes, or one size for all, and optionally a list of targets). They are trained
    independently, but in one vectorised loop, with the smaller hidden layers padded by
    units whose weights and bias stay exactly zero (such a unit multiplies :math:`Z` and
    every :math:`e^{-F(x)}` by 2, so it leaves :math:`p(x)` unchanged).

    Parameters
    ----------
    data : Tensor of shape (n_samples, n_visible), or a list of them
        Binary training data; every data set must have the same ``n_visible``.
    n_hidden : int or list of int
        ``1 <= n_hidden <= MAX_FIT_HIDDEN``.
    seed, generator
        Exactly one (:mod:`genphys.seeding`): the initial weights and the mini-batches.
    n_steps : int
    batch_size : int
    learning_rate : float
        Initial Adam step size.
    weight_scale : float
        Standard deviation of the initial :math:`U`.
    target_log_prob : Tensor of shape (2 ** n_visible,), or a list of them, optional
        Normalised tables (e.g. :func:`boltzmann_log_prob_exact`); if given, the exact
        :math:`\\mathrm{KL}(p_{target} \\,\\|\\, p_{RBM})` is recorded.
    record_every : int
        Record every this many steps (and before the first and after the last).
    compute_dtype : torch.dtype
        Dtype of the arithmetic during training (``torch.float32`` by default, about twice
        as fast); the returned machines are float64.

    Returns
    -------
    FitResult, or a list of them when ``data`` is a list
        Explained in {ref}`sec-rbm-thermodynamics`.

    Raises
    ------
    genphys.fitting.TrainingDivergedError
        If a parameter becomes NaN or infinite, naming the record in which it happened
        (``record_every`` Adam steps count as one epoch of :func:`genphys.fitting.fit`).
    """
    single = not isinstance(data, (list, tuple))
    datasets = _as_list("data", data, None)
    K = len(datasets)
    xs = []
    for k, d in enumerate(datasets):
        name = "data" if single else f"data[{k}]"
        x = as_tensor(name, d, ndim=2, dtype=_float_dtype(d))
        check_binary(name, x)
        if (
            x.shape[1]
            != as_tensor("data", datasets[0], ndim=2, dtype=_float_dtype(datasets[0])).shape[1]
        ):
            raise ValueError(
                f"{name} must have the n_visible of data[0]. Got shape {tuple(x.shape)} instead."
            )
        xs.append(x)
    sizes = [check_positive_int("n_hidden", n) for n in _as_list("n_hidden", n_hidden, K)]
    if max(sizes) > MAX_FIT_HIDDEN:
        raise ValueError(
            f"n_hidden must be at most {MAX_FIT_HIDDEN}: the model expectation sums over "
            f"2**n_hidden states. Got {max(sizes)} instead."
        )
    n_steps = check_positive_int("n_steps", n_steps)
    batch_size = check_positive_int("batch_size", batch_size)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    weight_scale = check_positive_float("weight_scale", weight_scale, allow_zero=True)
    record_every = check_positive_int("record_every", record_every)
    M = xs[0].shape[1]
    targets: list[torch.Tensor | None] = [None] * K
    if target_log_prob is not None:
        for k, t in enumerate(_as_list("target_log_prob", target_log_prob, K)):
            targets[k] = _check_table("target_log_prob", t)
            if targets[k].shape[0] != 2**M:
                raise ValueError(
                    f"target_log_prob must have 2**n_visible = {2**M} entries. "
                    f"Got shape {tuple(targets[k].shape)} instead."
                )

    if not isinstance(compute_dtype, torch.dtype) or not compute_dtype.is_floating_point:
        raise TypeError(
            f"compute_dtype must be a floating torch.dtype. Got {describe(compute_dtype)} instead."
        )
    N = max(sizes)
    kw = {"dtype": compute_dtype, "device": xs[0].device}
    device = xs[0].device
    generator = make_generator(seed, generator, device=device)
    n_rows = torch.tensor([x.shape[0] for x in xs], device=device)  # (K,), int64
    s_data = torch.zeros(K, int(n_rows.max()), M, **kw)  # (K, n_max, M), zero padded
    for k, x in enumerate(xs):
        s_data[k, : x.shape[0]] = 2 * x - 1
    mask = torch.arange(N, device=device) < torch.tensor(sizes, device=device)[:, None]
    mask = mask.to(compute_dtype)  # (K, N): 1 for the real hidden units
    U = weight_scale * torch.randn(K, M, N, generator=generator, **kw) * mask[:, None, :]
    means = torch.stack([(2 * x - 1).mean(0) for x in xs]).to(compute_dtype)  # (K, M)
    alpha = torch.atanh(means.clamp(-0.999, 0.999))  # (K, M)
    gamma = torch.zeros(K, N, **kw)
    t_all = 2 * binary_states(N, **kw) - 1  # (H, N), every hidden state, H = 2^N
    params = {"U": U, "alpha": alpha, "gamma": gamma}
    masks = {"U": mask[:, None, :], "alpha": None, "gamma": mask}
    optimizer = Adam(list(params.values()), lr=learning_rate)  # torch.optim.Adam's update
    done = [0]  # Adam steps taken
    offsets = (torch.arange(K, device=device) * s_data.shape[1])[:, None]  # (K, 1)
    s_flat = s_data.reshape(-1, M)  # (K * n_max, M)

    def machine(k: int) -> BernoulliRBM:
        n, f64 = sizes[k], torch.float64
        return _to_rbm(U[k, :, :n].to(f64), alpha[k].to(f64), gamma[k, :n].to(f64))

    def monitor(epoch: int) -> dict[str, float]:
        record = {"step": float(min(epoch * record_every, n_steps))}
        for k in range(K):
            if targets[k] is not None:
                log_q = rbm_log_prob_exact(machine(k))
                record[f"kl_{k}"] = float(kl_divergence_exact(targets[k], log_q))
        return record

    def batches(epoch: int):
        """``record_every`` mini-batches (fewer at the end), drawn with replacement."""
        for _ in range(min(record_every, n_steps - (epoch - 1) * record_every)):
            u = torch.rand(K, batch_size, generator=generator, dtype=torch.float64, device=device)
            idx = (u * n_rows[:, None]).long().clamp(max=n_rows[:, None] - 1)  # (K, B), uniform
            rows = (idx + offsets).reshape(-1)  # rows of s_flat
            yield s_flat.index_select(0, rows).reshape(K, batch_size, M)  # (K, B, M)

    def step(s: torch.Tensor) -> dict[str, float]:
        grads = spin_log_likelihood_gradient(s, U, alpha, gamma, t_all)  # ascent directions
        for (name, p), g in zip(params.items(), grads, strict=True):
            if masks[name] is not None:
                g = g * masks[name]  # padded units get no gradient at all
            p.grad = -g  # Adam minimises the negative log-likelihood
        # cosine schedule from learning_rate down to 0 over n_steps (as CosineAnnealingLR)
        optimizer.param_groups[0]["lr"] = (
            learning_rate * 0.5 * (1 + math.cos(math.pi * done[0] / n_steps))
        )
        optimizer.step()
        done[0] += 1
        return {}

    before = {"epoch": 0.0, **monitor(0)}  # record 0: before training
    history = fit(
        step,
        batches,
        n_epochs=math.ceil(n_steps / record_every),
        parameters=params,
        monitor=monitor,
        desc="exact-negative RBM fit",
        hint=f"try a smaller learning_rate (now {learning_rate})",
    )
    history.records.insert(0, before)
    results = []
    for k in range(K):
        kl = history[f"kl_{k}"] if targets[k] is not None else np.array([])
        steps = (
            history["step"].astype(np.int64)
            if targets[k] is not None
            else np.array([], dtype=np.int64)
        )
        results.append(FitResult(machine(k), steps, kl, history))
    return results[0] if single else results
