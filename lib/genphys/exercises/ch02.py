"""Exercises for chapter 2, {ref}`sec-partition-function`: energies and partition functions."""

from __future__ import annotations

import torch

from ..enumeration import binary_states
from ..rbm import BernoulliRBM
from ._feedback import Exercise, Mistake, Stress, draw_float, draw_int

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


def _energy_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n_visible, n_hidden, n = draw_int(g, 1, 8), draw_int(g, 1, 8), draw_int(g, 1, 12)
        W, a, b = _random_rbm(g, n_visible, n_hidden, draw_float(g, 0.1, 3.0))
        x = torch.randint(0, 2, (n, n_visible), generator=g).double()
        h = torch.randint(0, 2, (n, n_hidden), generator=g).double()
        cases.append((x, h, W, a, b))
    return cases


def _energy_stress():
    g = torch.Generator().manual_seed(12)
    W, a, b = _random_rbm(g, 7, 3)
    x = torch.randint(0, 2, (2000, 7), generator=g).double()
    h = torch.randint(0, 2, (2000, 3), generator=g).double()
    return [
        Stress("a single configuration, n = 1", (x[:1], h[:1], W, a, b)),
        Stress("a batch of 2000 configurations", (x, h, W, a, b)),
    ]


ENERGY = Exercise(
    name="energy",
    forbidden_calls=("genphys.rbm.BernoulliRBM.energy",),
    solution=energy,
    cases=_energy_cases,
    random_cases=_energy_random,
    stress_cases=_energy_stress,
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


def _logsumexp_random(g: torch.Generator):
    # moderate spreads (< 300 nats) and offsets: a stable formula is not needed here yet
    cases = []
    for _ in range(3):
        n = draw_int(g, 1, 100)
        scale, offset = draw_float(g, 0.1, 20.0), draw_float(g, -300.0, 300.0)
        cases.append((offset + scale * torch.randn(n, generator=g, dtype=torch.float64),))
    return cases


def _logsumexp_stress():
    g = torch.Generator().manual_seed(13)
    first_low = torch.cat([torch.tensor([-800.0]), torch.randn(30, generator=g)]).double()
    mean_low = torch.tensor([0.0, -1500.0, -1500.0, -1500.0, -1500.0], dtype=torch.float64)
    return [
        Stress(
            "the first value lies 800 nats below the others",
            (first_low,),
            "Shift by the maximum, the only shift that can never overflow: every v_k - m <= 0.",
        ),
        Stress(
            "values spread over 1500 nats: the maximum lies 1200 nats above the mean",
            (mean_low,),
            "Shift by the maximum, the only shift that can never overflow: every v_k - m <= 0.",
        ),
        Stress(
            "values spread over 2000 nats, the maximum 890 nats above the mean",
            (torch.tensor([0.0] * 5 + [-2000.0] * 4, dtype=torch.float64),),
            "Shift by the maximum, the only shift that can never overflow: every v_k - m <= 0.",
        ),
        Stress("a single value", (torch.tensor([3.5], dtype=torch.float64),)),
        Stress(
            "100000 values",
            (5.0 * torch.randn(100_000, generator=g, dtype=torch.float64),),
        ),
    ]


def _logsumexp_shift_by_mean(v):
    m = v.mean()
    return m + torch.log(torch.exp(v - m).sum())


def _logsumexp_shift_by_first(v):
    m = v[0]
    return m + torch.log(torch.exp(v - m).sum())


LOGSUMEXP = Exercise(
    name="logsumexp",
    forbidden_calls=(
        "scipy.special.logsumexp",
        "numpy.logaddexp.reduce",
        "numpy.logaddexp.accumulate",
        "torch.logcumsumexp",
        "torch.log_softmax",
        "torch.softmax",
        "torch.special.log_softmax",
        "torch.nn.functional.log_softmax",
        "torch.nn.functional.cross_entropy",
        "torch.nn.functional.nll_loss",
        "scipy.special.log_softmax",
        "scipy.special.softmax",
        "genphys.gaussian.log_mean_exp",
        "genphys.gaussian.log_mean_exp_chunked",
    ),
    solution=logsumexp,
    cases=_logsumexp_cases,
    random_cases=_logsumexp_random,
    stress_cases=_logsumexp_stress,
    forbidden=("logsumexp", "log_softmax", "cross_entropy"),
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
        Mistake(
            _logsumexp_shift_by_mean,
            "shifting by the mean is exact algebra but not stable: when the values are spread "
            "over hundreds of nats the maximum lies far above the mean and e^{v_k - mean} "
            "overflows. Shift by the maximum m, so that every exponent v_k - m is <= 0.",
        ),
        Mistake(
            _logsumexp_shift_by_first,
            "shifting by the first value only works when it is the largest: here it lies "
            "800 nats below the others and e^{v_k - v_0} overflows. Shift by the maximum.",
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


def _log_partition_random(g: torch.Generator):
    return [
        (
            BernoulliRBM.from_parameters(
                *_random_rbm(g, draw_int(g, 1, 5), draw_int(g, 1, 4), draw_float(g, 0.1, 3.0))
            ),
        )
        for _ in range(2)
    ]


def _log_partition_stress():
    g = torch.Generator().manual_seed(14)
    return [
        Stress(
            "couplings of size 400: e^{-E} overflows float64",
            (BernoulliRBM.from_parameters(*_random_rbm(g, 4, 3, 400.0)),),
            "Sum in log space (logsumexp), never e^{-E} itself.",
        ),
        Stress(
            "one visible and one hidden unit",
            (BernoulliRBM.from_parameters(*_random_rbm(g, 1, 1)),),
        ),
        Stress(
            "8 visible and 6 hidden units, 16384 configurations",
            (BernoulliRBM.from_parameters(*_random_rbm(g, 8, 6)),),
        ),
    ]


LOG_PARTITION = Exercise(
    name="log_partition_brute_force",
    forbidden_calls=("genphys.rbm.log_partition_exact",),
    solution=log_partition_brute_force,
    cases=_log_partition_cases,
    random_cases=_log_partition_random,
    stress_cases=_log_partition_stress,
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
