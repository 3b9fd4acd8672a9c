"""Exercises for chapter 5, {ref}`sec-mcmc`: Metropolis, detailed balance, autocorrelation."""

from __future__ import annotations

import torch

from ._feedback import Choice, Exercise, Mistake, MultipleChoice, Stress, draw_float, draw_int

__all__ = [
    "EXERCISES",
    "QUESTIONS",
    "check_delta_e_bonds",
    "check_detailed_balance_violation",
    "check_ising_delta_e",
    "check_metropolis_acceptance",
    "check_tau_int_from_rho",
    "detailed_balance_violation",
    "ising_delta_e",
    "metropolis_acceptance",
    "tau_int_from_rho",
]


F64 = torch.float64


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


def _acceptance_random(g: torch.Generator):
    return [
        (
            draw_float(g, 0.5, 10.0) * torch.randn(draw_int(g, 1, 50), generator=g, dtype=F64),
            draw_float(g, 0.05, 3.0),
        )
        for _ in range(3)
    ]


def _acceptance_stress():
    g = torch.Generator().manual_seed(50)
    huge = torch.tensor([-1e5, -1.0, 0.0, 1.0, 1e5], dtype=F64)
    return [
        Stress("energy changes of ±10⁵ at beta = 10", (huge, 10.0)),
        Stress("infinite temperature, beta = 0: every move is accepted", (huge, 0.0)),
        Stress("100000 proposed moves", (4.0 * torch.randn(100_000, generator=g, dtype=F64), 0.5)),
    ]


METROPOLIS_ACCEPTANCE = Exercise(
    name="metropolis_acceptance",
    solution=metropolis_acceptance,
    cases=_acceptance_cases,
    random_cases=_acceptance_random,
    stress_cases=_acceptance_stress,
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


def _delta_e_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        L = draw_int(g, 3, 8)
        spins = 2.0 * torch.randint(0, 2, (draw_int(g, 1, 10), L, L), generator=g).double() - 1.0
        cases.append((spins, draw_int(g, 0, L - 1), draw_int(g, 0, L - 1)))
    return cases


def _delta_e_stress():
    g = torch.Generator().manual_seed(51)
    up = torch.ones(1, 6, 6, dtype=F64)
    checkerboard = (-1.0) ** (torch.arange(6)[:, None] + torch.arange(6)[None, :]).double()
    big = 2.0 * torch.randint(0, 2, (5000, 16, 16), generator=g).double() - 1.0
    return [
        Stress("all spins up: ΔE = +8 everywhere", (up, 0, 5)),
        Stress("a checkerboard: ΔE = -8 at the corner", (checkerboard[None], 5, 5)),
        Stress("5000 configurations of a 16 x 16 lattice", (big, 15, 0)),
    ]


ISING_DELTA_E = Exercise(
    name="ising_delta_e",
    forbidden_calls=("genphys.ising.energy_change",),
    solution=ising_delta_e,
    cases=_delta_e_cases,
    random_cases=_delta_e_random,
    stress_cases=_delta_e_stress,
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


def _balance_random(g: torch.Generator):
    from ..mcmc import metropolis_hastings_matrix

    cases = []
    for _ in range(2):
        n = draw_int(g, 2, 8)
        log_p = draw_float(g, 0.5, 3.0) * torch.randn(n, generator=g, dtype=F64)
        q = torch.rand(n, n, generator=g, dtype=F64)
        q = q / q.sum(1, keepdim=True)
        cases += [(metropolis_hastings_matrix(log_p, q), torch.softmax(log_p, 0)), (q, q[0])]
    return cases


def _balance_stress():
    from ..mcmc import metropolis_hastings_matrix

    g = torch.Generator().manual_seed(52)
    log_p = 30.0 * torch.randn(100, generator=g, dtype=F64)  # p spans ~100 decades
    q = torch.rand(100, 100, generator=g, dtype=F64)
    q = q / q.sum(1, keepdim=True)
    return [
        Stress(
            "100 states whose probabilities span about a hundred decades",
            (metropolis_hastings_matrix(log_p, q), torch.softmax(log_p, 0)),
        ),
        Stress("a single state", (torch.ones(1, 1, dtype=F64), torch.ones(1, dtype=F64))),
    ]


DETAILED_BALANCE = Exercise(
    name="detailed_balance_violation",
    solution=detailed_balance_violation,
    cases=_balance_cases,
    random_cases=_balance_random,
    stress_cases=_balance_stress,
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


def _tau_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n = draw_int(g, 10, 80)
        phi = draw_float(g, -0.5, 0.95)
        rho = phi ** torch.arange(n, dtype=F64) + 0.02 * torch.randn(n, generator=g, dtype=F64)
        rho[0] = 1.0
        cases.append((rho, draw_int(g, 1, n - 1)))
    return cases


def _tau_stress():
    rho = 0.99 ** torch.arange(2000, dtype=F64)
    return [
        Stress("window 0: no lag counts, tau_int = 1", (rho, 0)),
        Stress("the window is the last lag", (rho[:50], 49)),
        Stress("2000 lags, window 1500", (rho, 1500)),
    ]


TAU_INT = Exercise(
    name="tau_int_from_rho",
    solution=tau_int_from_rho,
    cases=_tau_cases,
    random_cases=_tau_random,
    stress_cases=_tau_stress,
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

# ----------------------------------------------------------- derivation questions
DELTA_E_BONDS = MultipleChoice(
    name="delta_e_bonds",
    question=(
        "Flip the spin s at one site of a periodic L × L Ising lattice (L ≥ 3) whose energy is "
        "E = −Σ s·s′, summed over the pairs of nearest neighbours (each pair once). Which "
        "bonds change their energy, and by how much? (s′ is a neighbour's spin.)"
    ),
    choices=(
        Choice(
            "Only the bonds to its right and lower neighbours, each by 2 s·s′.",
            "the energy sum lists each bond once, from its left or upper end, but the bonds "
            "to the left and upper neighbours contain s too and change as well.",
        ),
        Choice(
            "The four bonds to its neighbours, each by s·s′.",
            "the bond energy goes from −s·s′ to +s·s′: the change is twice the bond value, "
            "not once.",
        ),
        Choice(
            "The four bonds to its neighbours, each by 2 s·s′ (s before the flip).",
            "a bond −s·s′ becomes +s·s′, a change of 2 s·s′, and s sits on exactly four "
            "bonds; every other bond is untouched. Hence ΔE = 2 s times the sum of its four "
            "neighbours' spins.",
            correct=True,
        ),
        Choice(
            "Every bond of the lattice, since the magnetisation changes.",
            "the energy has no field term; a bond changes only when one of its two spins "
            "is flipped.",
        ),
    ),
)
check_delta_e_bonds = DELTA_E_BONDS.check

QUESTIONS = [DELTA_E_BONDS]
