"""Exercises for chapter 5, {ref}`sec-mcmc`: Metropolis, detailed balance, autocorrelation."""

from __future__ import annotations

import torch

from ._feedback import Exercise, Mistake

__all__ = [
    "EXERCISES",
    "check_detailed_balance_violation",
    "check_ising_delta_e",
    "check_metropolis_acceptance",
    "check_tau_int_from_rho",
    "detailed_balance_violation",
    "ising_delta_e",
    "metropolis_acceptance",
    "tau_int_from_rho",
]


# ------------------------------------------------------- acceptance probability
def metropolis_acceptance(delta_e, beta):
    """a = min(1, exp(-beta * delta_e)) elementwise, for a tensor of energy changes."""
    return torch.clamp(torch.exp(-beta * delta_e), max=1.0)


def _acceptance_cases():
    delta_e = torch.tensor([-8.0, -4.0, 0.0, 4.0, 8.0], dtype=torch.float64)
    g = torch.Generator().manual_seed(5)
    return [
        (delta_e, 0.44),
        (delta_e, 2.0),
        (3.0 * torch.randn(12, generator=g, dtype=torch.float64), 0.7),
    ]


METROPOLIS_ACCEPTANCE = Exercise(
    name="metropolis_acceptance",
    solution=metropolis_acceptance,
    cases=_acceptance_cases,
    mistakes=(
        Mistake(
            lambda delta_e, beta: torch.exp(-beta * delta_e),
            "exp(-beta ΔE) exceeds 1 when the energy goes down (ΔE < 0), and a probability "
            "cannot. Cap it: a = min(1, exp(-beta ΔE)); downhill moves are always accepted.",
        ),
        Mistake(
            lambda delta_e, beta: torch.clamp(torch.exp(beta * delta_e), max=1.0),
            "the sign is flipped: moves that RAISE the energy must be suppressed, so the "
            "exponent is -beta ΔE.",
        ),
        Mistake(
            lambda delta_e, beta: torch.clamp(torch.exp(-delta_e / beta), max=1.0),
            "beta is the inverse temperature, 1/T: the Boltzmann factor is exp(-beta ΔE) = "
            "exp(-ΔE / T), not exp(-ΔE / beta).",
        ),
        Mistake(
            lambda delta_e, beta: torch.clamp(torch.exp(-delta_e), max=1.0),
            "the temperature is missing: the factor is exp(-beta ΔE).",
        ),
    ),
)
check_metropolis_acceptance = METROPOLIS_ACCEPTANCE.check


# ------------------------------------------------------------ Ising energy change
def ising_delta_e(spins, i, j):
    """ΔE of flipping spin (i, j) in every configuration: 2 s_ij (sum of its 4 periodic neighbours)."""
    L = spins.shape[-1]
    neighbours = (
        spins[:, (i + 1) % L, j]
        + spins[:, (i - 1) % L, j]
        + spins[:, i, (j + 1) % L]
        + spins[:, i, (j - 1) % L]
    )  # (n,)
    return 2.0 * spins[:, i, j] * neighbours


def _delta_e_cases():
    g = torch.Generator().manual_seed(6)
    cases = []
    for L, i, j in [(4, 1, 2), (5, 0, 0), (5, 4, 2), (6, 5, 5)]:
        spins = 2.0 * torch.randint(0, 2, (9, L, L), generator=g).double() - 1.0
        cases.append((spins, i, j))
    return cases


def _delta_e_open_boundaries(spins, i, j):
    L = spins.shape[-1]
    total = torch.zeros(spins.shape[0], dtype=spins.dtype)
    for a, b in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)):
        if 0 <= a < L and 0 <= b < L:
            total = total + spins[:, a, b]
    return 2.0 * spins[:, i, j] * total


ISING_DELTA_E = Exercise(
    name="ising_delta_e",
    solution=ising_delta_e,
    cases=_delta_e_cases,
    mistakes=(
        Mistake(
            lambda spins, i, j: ising_delta_e(spins, i, j) / 2,
            "the factor 2 is missing: flipping s_ij changes each of its four bond energies "
            "-s_ij s_k from one sign to the other, a change of 2 s_ij s_k per bond.",
        ),
        Mistake(
            lambda spins, i, j: -ising_delta_e(spins, i, j),
            "the sign is flipped: an aligned spin (s_ij equal to its neighbours) costs energy "
            "to flip, so ΔE = +2 s_ij Σ s_k is positive then.",
        ),
        Mistake(
            _delta_e_open_boundaries,
            "the lattice is periodic: a spin on the edge has neighbours on the opposite edge. "
            "Use indices modulo L.",
        ),
        Mistake(
            lambda spins, i, j: (
                2.0
                * spins[:, i, j]
                * (spins[:, (i + 1) % spins.shape[-1], j] + spins[:, i, (j + 1) % spins.shape[-1]])
            ),
            "all four neighbours count (up, down, left and right), not only the two bonds "
            "that the energy sum assigns to site (i, j).",
        ),
    ),
)
check_ising_delta_e = ISING_DELTA_E.check


# ------------------------------------------------------------- detailed balance
def detailed_balance_violation(P, p):
    """max_ij |p_i P_ij - p_j P_ji|: zero exactly when P satisfies detailed balance w.r.t. p."""
    flow = p[:, None] * P  # (S, S), probability flow i -> j in equilibrium
    return (flow - flow.T).abs().max()


def _balance_cases():
    from ..mcmc import metropolis_hastings_matrix

    g = torch.Generator().manual_seed(7)
    cases = []
    for n in (4, 6):
        log_p = torch.randn(n, generator=g, dtype=torch.float64)
        q = torch.rand(n, n, generator=g, dtype=torch.float64)
        q = q / q.sum(1, keepdim=True)
        p = torch.softmax(log_p, 0)
        cases.append((metropolis_hastings_matrix(log_p, q), p))  # balanced: 0
        cases.append((q, p))  # a random kernel: not balanced
    cyclic = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    cases.append((cyclic, torch.full((3,), 1 / 3, dtype=torch.float64)))  # stationary, unbalanced
    return cases


DETAILED_BALANCE = Exercise(
    name="detailed_balance_violation",
    solution=detailed_balance_violation,
    cases=_balance_cases,
    mistakes=(
        Mistake(
            lambda P, p: (P - P.T).abs().max(),
            "detailed balance compares probability FLOWS, p_i P_ij with p_j P_ji, not the "
            "transition probabilities alone: a chain with a non-uniform p has P_ij != P_ji.",
        ),
        Mistake(
            lambda P, p: (p[None, :] * P - (p[None, :] * P).T).abs().max(),
            "the flow from i to j is p_i P_ij: weight row i by p_i (p[:, None] * P).",
        ),
        Mistake(
            lambda P, p: (p @ P - p).abs().max(),
            "this checks stationarity, p P = p, which detailed balance implies but which is "
            "weaker: a chain that cycles 0 -> 1 -> 2 -> 0 keeps the uniform p stationary "
            "without balancing each pair of states.",
        ),
    ),
    atol=1e-12,
)
check_detailed_balance_violation = DETAILED_BALANCE.check


# ---------------------------------------------------- integrated autocorrelation
def tau_int_from_rho(rho, window):
    """tau_int = 1 + 2 sum_{t=1}^{window} rho(t), given rho(0..) with rho(0) = 1."""
    return 1.0 + 2.0 * rho[1 : window + 1].sum()


def _tau_cases():
    t = torch.arange(60, dtype=torch.float64)
    return [
        (0.9**t, 45),
        (0.5**t, 10),
        (torch.cat([torch.ones(1), torch.zeros(9)]).double(), 5),
        (torch.cos(0.3 * t) * 0.8**t, 20),
    ]


TAU_INT = Exercise(
    name="tau_int_from_rho",
    solution=tau_int_from_rho,
    cases=_tau_cases,
    mistakes=(
        Mistake(
            lambda rho, window: 1.0 + 2.0 * rho[: window + 1].sum(),
            "the sum starts at lag 1: rho(0) = 1 is the '1 +' in front, so including it again "
            "adds 2.",
        ),
        Mistake(
            lambda rho, window: 1.0 + rho[1 : window + 1].sum(),
            "the factor 2 is missing: the variance of a mean counts every pair of times twice, "
            "(s, t) and (t, s), so tau_int = 1 + 2 Σ_{t≥1} rho(t).",
        ),
        Mistake(
            lambda rho, window: 1.0 + 2.0 * rho[1:window].sum(),
            "the window includes lag `window` itself: sum rho(1), ..., rho(window).",
        ),
        Mistake(
            lambda rho, window: 2.0 * rho[: window + 1].sum() - 1.0 + 2.0 * rho[window + 1 :].sum(),
            "sum only up to the window: the noisy long-lag terms are exactly what the window "
            "cuts off.",
        ),
    ),
)
check_tau_int_from_rho = TAU_INT.check

EXERCISES = [METROPOLIS_ACCEPTANCE, ISING_DELTA_E, DETAILED_BALANCE, TAU_INT]
