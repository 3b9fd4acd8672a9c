"""Exercises for chapter 2, {ref}`sec-partition-function`: energies and partition functions."""

from __future__ import annotations

import torch

from ..enumeration import binary_states
from ..rbm import BernoulliRBM
from ._feedback import Exercise, Mistake

__all__ = [
    "EXERCISES",
    "check_energy",
    "check_log_partition_brute_force",
    "check_logsumexp",
    "energy",
    "log_partition_brute_force",
    "logsumexp",
]


def _random_rbm(generator: torch.Generator, n_visible: int, n_hidden: int, scale: float = 1.0):
    W = scale * torch.randn(n_visible, n_hidden, generator=generator, dtype=torch.float64)
    a = scale * torch.randn(n_visible, generator=generator, dtype=torch.float64)
    b = scale * torch.randn(n_hidden, generator=generator, dtype=torch.float64)
    return W, a, b


# --------------------------------------------------------------------- energy
def energy(x, h, W, a, b):
    """E(x, h) = -aᵀx - bᵀh - xᵀWh for a batch: x (n, M), h (n, N) -> (n,)."""
    return -(x @ a) - (h @ b) - ((x @ W) * h).sum(dim=1)


def _energy_cases():
    g = torch.Generator().manual_seed(2)
    cases = []
    for n_visible, n_hidden in [(3, 2), (5, 4), (6, 3)]:
        W, a, b = _random_rbm(g, n_visible, n_hidden)
        x = torch.randint(0, 2, (7, n_visible), generator=g).double()
        h = torch.randint(0, 2, (7, n_hidden), generator=g).double()
        cases.append((x, h, W, a, b))
    return cases


ENERGY = Exercise(
    name="energy",
    solution=energy,
    cases=_energy_cases,
    mistakes=(
        Mistake(
            lambda x, h, W, a, b: (x @ a) + (h @ b) + ((x @ W) * h).sum(dim=1),
            "the sign is flipped. With E = -aᵀx - bᵀh - xᵀWh, configurations that agree with "
            "the biases and couplings have LOW energy and so high probability e^{-E}/Z.",
        ),
        Mistake(
            lambda x, h, W, a, b: -(x @ a) - ((x @ W) * h).sum(dim=1),
            "the hidden-bias term -bᵀh is missing.",
        ),
        Mistake(
            lambda x, h, W, a, b: -(h @ b) - ((x @ W) * h).sum(dim=1),
            "the visible-bias term -aᵀx is missing.",
        ),
        Mistake(
            lambda x, h, W, a, b: -(x @ a) - (h @ b) - (x @ W @ h.T),
            "xᵀWh must be computed row by row: for a batch, (x @ W) * h summed over the hidden "
            "axis gives one number per configuration, while x @ W @ h.T mixes all pairs.",
        ),
    ),
)
check_energy = ENERGY.check


# ------------------------------------------------------------------ logsumexp
def logsumexp(v):
    """log Σ_k exp(v_k) for a 1-D tensor, without overflow: m + log Σ exp(v_k - m)."""
    m = v.max()
    return m + torch.log(torch.exp(v - m).sum())


def _logsumexp_cases():
    g = torch.Generator().manual_seed(3)
    return [
        (torch.randn(10, generator=g, dtype=torch.float64),),
        (torch.tensor([1000.0, 999.0, 998.0], dtype=torch.float64),),
        (torch.tensor([-1000.0, -1001.0], dtype=torch.float64),),
        (50 * torch.randn(100, generator=g, dtype=torch.float64),),
    ]


LOGSUMEXP = Exercise(
    name="logsumexp",
    solution=logsumexp,
    cases=_logsumexp_cases,
    mistakes=(
        Mistake(
            lambda v: torch.log(torch.exp(v).sum()),
            "exp overflows (or underflows) for large |v|: e^1000 is inf in float64. Subtract "
            "the maximum m first and add it back: log Σ e^{v_k} = m + log Σ e^{v_k - m}.",
        ),
        Mistake(
            lambda v: v.max() + torch.log(torch.exp(v - v.max()).sum()) - v.max(),
            "after subtracting the maximum inside the exponentials, add it back outside the log.",
        ),
        Mistake(
            lambda v: v.max(), "the maximum alone is only a lower bound: add log Σ e^{v_k - m}."
        ),
    ),
)
check_logsumexp = LOGSUMEXP.check


# --------------------------------------------------------- brute-force log Z
def log_partition_brute_force(rbm):
    """log Z = log Σ_{x,h} e^{-E(x,h)} over all 2^(M+N) configurations, via log-sum-exp."""
    x = binary_states(rbm.n_visible)  # (2^M, M)
    h = binary_states(rbm.n_hidden)  # (2^N, N)
    with torch.no_grad():
        minus_energy = (x @ rbm.a)[:, None] + (h @ rbm.b)[None, :] + x @ rbm.W @ h.T  # (2^M, 2^N)
    return torch.logsumexp(minus_energy.reshape(-1), dim=0)


def _log_partition_cases():
    g = torch.Generator().manual_seed(4)
    cases = []
    for n_visible, n_hidden, scale in [(3, 2, 1.0), (4, 3, 2.0), (5, 4, 100.0)]:
        cases.append((BernoulliRBM.from_parameters(*_random_rbm(g, n_visible, n_hidden, scale)),))
    return cases


def _log_z_sign_error(rbm):
    x, h = binary_states(rbm.n_visible), binary_states(rbm.n_hidden)
    with torch.no_grad():
        energy = -(x @ rbm.a)[:, None] - (h @ rbm.b)[None, :] - x @ rbm.W @ h.T
    return torch.logsumexp(energy.reshape(-1), dim=0)


def _z_not_log(rbm):
    return torch.exp(log_partition_brute_force(rbm))


def _naive_log_z(rbm):
    x, h = binary_states(rbm.n_visible), binary_states(rbm.n_hidden)
    with torch.no_grad():
        minus_energy = (x @ rbm.a)[:, None] + (h @ rbm.b)[None, :] + x @ rbm.W @ h.T
    return torch.log(torch.exp(minus_energy).sum())


LOG_PARTITION = Exercise(
    name="log_partition_brute_force",
    solution=log_partition_brute_force,
    cases=_log_partition_cases,
    mistakes=(
        Mistake(
            _log_z_sign_error,
            "the Boltzmann weight is e^{-E(x,h)}: sum exp(-E), not exp(+E).",
        ),
        Mistake(
            _naive_log_z,
            "with large weights e^{-E} overflows to inf. Use torch.logsumexp (or your own "
            "logsumexp from the previous exercise) instead of log(sum(exp(...))).",
        ),
        Mistake(_z_not_log, "you returned Z itself; the function should return log Z."),
    ),
)
check_log_partition_brute_force = LOG_PARTITION.check

EXERCISES = [ENERGY, LOGSUMEXP, LOG_PARTITION]
