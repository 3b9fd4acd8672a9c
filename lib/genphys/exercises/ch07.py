"""Exercises for chapter 7, {ref}`sec-rbm-thermodynamics`: spins, exact KL and the specific heat."""

from __future__ import annotations

import torch

from ..enumeration import binary_states
from ..ising import energy as _ising_energy
from ..thermodynamics import sample_boltzmann_exact, spins_to_bits
from ._feedback import Exercise, Mistake, Stress, draw_float, draw_int

__all__ = [
    "EXERCISES",
    "check_ising_energy_from_bits",
    "check_kl_from_log_weights",
    "check_specific_heat",
    "ising_energy_from_bits",
    "kl_from_log_weights",
    "specific_heat",
]


# ------------------------------------------------------------- bits to energy
def ising_energy_from_bits(x, L):
    """E(s) = -Σ_<ik> s_i s_k with s = 2x - 1, periodic L x L lattice: x (n, L*L) -> (n,)."""
    s = (2 * x - 1).reshape(-1, L, L)  # (n, L, L), row by row
    return -(s * (s.roll(-1, -1) + s.roll(-1, -2))).sum((-2, -1))


def _energy_cases():
    g = torch.Generator().manual_seed(7)
    cases = []
    for L, n in [(3, 6), (4, 5), (5, 4)]:
        cases.append((torch.randint(2, (n, L * L), generator=g).double(), L))
    cases.append((spins_to_bits(sample_boltzmann_exact(4, 2.0, 6, seed=1)), 4))
    return cases


def _open_boundaries(x, L):
    s = (2 * x - 1).reshape(-1, L, L)
    right = (s[:, :, :-1] * s[:, :, 1:]).sum((-2, -1))
    down = (s[:, :-1, :] * s[:, 1:, :]).sum((-2, -1))
    return -(right + down)


def _all_four_neighbours(x, L):
    s = (2 * x - 1).reshape(-1, L, L)
    neighbours = s.roll(1, -1) + s.roll(-1, -1) + s.roll(1, -2) + s.roll(-1, -2)
    return -(s * neighbours).sum((-2, -1))


def _bits_as_spins(x, L):
    b = x.reshape(-1, L, L)
    return -(b * (b.roll(-1, -1) + b.roll(-1, -2))).sum((-2, -1))


def _energy_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        L = draw_int(g, 3, 7)
        cases.append((torch.randint(2, (draw_int(g, 1, 8), L * L), generator=g).double(), L))
    return cases


def _energy_stress():
    g = torch.Generator().manual_seed(71)
    L = 6
    checkerboard = ((torch.arange(L)[:, None] + torch.arange(L)[None, :]) % 2).double()
    return [
        Stress("all spins up, the ground state: E = -2L²", (torch.ones(1, L * L).double(), L)),
        Stress("a checkerboard: E = +2L²", (checkerboard.reshape(1, -1), L)),
        Stress(
            "3000 configurations of a 16 x 16 lattice",
            (torch.randint(2, (3000, 256), generator=g).double(), 16),
        ),
    ]


ISING_ENERGY = Exercise(
    name="ising_energy_from_bits",
    solution=ising_energy_from_bits,
    cases=_energy_cases,
    random_cases=_energy_random,
    stress_cases=_energy_stress,
    mistakes=(
        Mistake(
            _open_boundaries,
            "the lattice is periodic: the right neighbour of the last column is the first "
            "column, and the lower neighbour of the last row is the first row. torch.roll "
            "wraps around; slicing s[:, :, :-1] * s[:, :, 1:] drops the 2L boundary bonds.",
        ),
        Mistake(
            _all_four_neighbours,
            "every bond is counted twice: summing s_i times all four neighbours visits the bond "
            "<ik> once from i and once from k. Use only the right and the lower neighbour of "
            "each site (2L² bonds), or halve the sum.",
        ),
        Mistake(
            _bits_as_spins,
            "the energy is defined for spins s = 2x - 1 = ±1, not for the bits x ∈ {0, 1}: "
            "with bits, every bond with a 0 contributes nothing instead of -1 or +1.",
        ),
        Mistake(
            lambda x, L: -_ising_energy(2 * x.reshape(-1, L, L) - 1),
            "the sign is flipped: E = -Σ s_i s_k, so aligned neighbours LOWER the energy.",
        ),
        Mistake(
            lambda x, L: ising_energy_from_bits(x, L) / L**2,
            "return the total energy E, not the energy per spin E / L².",
        ),
    ),
)
check_ising_energy_from_bits = ISING_ENERGY.check


# -------------------------------------------------------------------- exact KL
def kl_from_log_weights(log_w_p, log_w_q):
    """KL(p || q) for p ∝ exp(log_w_p), q ∝ exp(log_w_q) over the same states (1-D tensors)."""
    log_p = log_w_p - torch.logsumexp(log_w_p, 0)
    log_q = log_w_q - torch.logsumexp(log_w_q, 0)
    return (log_p.exp() * (log_p - log_q)).sum()


def _kl_cases():
    g = torch.Generator().manual_seed(8)
    cases = []
    for n, shift_p, shift_q in [(8, 2.0, -1.0), (32, -3.0, 5.0), (64, 0.5, 0.0)]:
        log_w_p = torch.randn(n, generator=g, dtype=torch.float64) + shift_p
        log_w_q = 1.5 * torch.randn(n, generator=g, dtype=torch.float64) + shift_q
        cases.append((log_w_p, log_w_q))
    # -beta E of a 3 x 3 Ising lattice at T = 2 against independent spins with a small field
    x = binary_states(9)  # (512, 9): every configuration
    minus_beta_e = -ising_energy_from_bits(x, 3) / 2.0
    cases.append((minus_beta_e, 0.3 * x.sum(1)))
    return cases


def _kl_unnormalised(log_w_p, log_w_q):
    return (log_w_p.exp() * (log_w_p - log_w_q)).sum()


def _kl_q_unnormalised(log_w_p, log_w_q):
    log_p = log_w_p - torch.logsumexp(log_w_p, 0)
    return (log_p.exp() * (log_p - log_w_q)).sum()


def _kl_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n = draw_int(g, 2, 64)
        log_w_p = draw_float(g, 0.2, 3.0) * torch.randn(n, generator=g, dtype=torch.float64)
        log_w_q = draw_float(g, 0.2, 3.0) * torch.randn(n, generator=g, dtype=torch.float64)
        cases.append((log_w_p + draw_float(g, -50, 50), log_w_q + draw_float(g, -50, 50)))
    return cases


def _kl_stress():
    g = torch.Generator().manual_seed(72)
    log_w_p = torch.randn(16, generator=g, dtype=torch.float64)
    log_w_q = torch.randn(16, generator=g, dtype=torch.float64)
    empty = log_w_p.clone()
    empty[:5] = -1e4  # p(x) = e^{-10000}: exactly 0 in float64
    in_log_space = (
        "Work with log-weights throughout: normalise with logsumexp and compute "
        "Σ p (log p - log q); never exponentiate a raw log-weight."
    )
    return [
        Stress(
            "log-weights around +1000: e^{1000} overflows",
            (log_w_p + 1000, log_w_q + 1000),
            in_log_space,
        ),
        Stress(
            "log-weights around -1000: e^{-1000} underflows to 0",
            (log_w_p - 1000, log_w_q - 1000),
            in_log_space,
        ),
        Stress(
            "states with p(x) = 0 in float64, where 0 · log 0 must count as 0",
            (empty, log_w_q),
            "Compute p (log p - log q) from the log-probabilities, not p log(p / q) from "
            "probabilities: with p = 0 the latter is 0 · (-inf) = NaN.",
        ),
    ]


KL_FROM_LOG_WEIGHTS = Exercise(
    name="kl_from_log_weights",
    solution=kl_from_log_weights,
    cases=_kl_cases,
    random_cases=_kl_random,
    stress_cases=_kl_stress,
    mistakes=(
        Mistake(
            lambda log_w_p, log_w_q: kl_from_log_weights(log_w_q, log_w_p),
            "the KL divergence is not symmetric and you computed KL(q || p). The average is "
            "taken under the FIRST distribution: Σ_x p(x) [log p(x) - log q(x)].",
        ),
        Mistake(
            _kl_unnormalised,
            "the inputs are unnormalised log-weights (like -βE or -F(x)). Normalise both first: "
            "log p = log_w_p - logsumexp(log_w_p), and the same for q.",
        ),
        Mistake(
            _kl_q_unnormalised,
            "you normalised p but not q. Subtract logsumexp(log_w_q) from log_w_q as well; "
            "otherwise the result is off by log Z_q.",
        ),
    ),
)
check_kl_from_log_weights = KL_FROM_LOG_WEIGHTS.check


# --------------------------------------------------------------- specific heat
def specific_heat(energies, T, n_sites):
    """c = β² N Var(e) = β² Var(E) / N per spin, from total energies E (n,), population variance."""
    beta = 1.0 / T
    return beta**2 * energies.var(correction=0) / n_sites


def _heat_cases():
    cases = []
    for L, T, seed in [(3, 2.5, 1), (4, 2.269, 2), (4, 1.5, 3)]:
        spins = sample_boltzmann_exact(L, T, 400, seed=seed)
        cases.append((_ising_energy(spins), T, L * L))
    g = torch.Generator().manual_seed(9)
    cases.append((10.0 * torch.randn(50, generator=g, dtype=torch.float64), 3.0, 25))
    return cases


def _heat_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n_sites = draw_int(g, 4, 400)
        energies = draw_float(g, -2.0, 0.0) * n_sites + draw_float(g, 0.5, 10.0) * torch.randn(
            draw_int(g, 2, 500), generator=g, dtype=torch.float64
        )
        cases.append((energies, draw_float(g, 1.0, 4.0), n_sites))
    return cases


def _heat_stress():
    g = torch.Generator().manual_seed(73)
    cold = -2e6 + torch.randn(1000, generator=g, dtype=torch.float64)
    return [
        Stress(
            "energies far from zero that fluctuate little, -2·10⁶ ± 1",
            (cold, 1.0, 100),
            "⟨E²⟩ - ⟨E⟩² subtracts two numbers of size 4·10¹² that agree in their first 12 "
            "digits: compute the variance from the deviations, ⟨(E - ⟨E⟩)²⟩, e.g. "
            "energies.var(correction=0).",
        ),
        Stress(
            "a single energy: no fluctuations, c = 0",
            (torch.tensor([-8.0], dtype=torch.float64), 2.0, 4),
        ),
    ]


SPECIFIC_HEAT = Exercise(
    name="specific_heat",
    solution=specific_heat,
    cases=_heat_cases,
    random_cases=_heat_random,
    stress_cases=_heat_stress,
    mistakes=(
        Mistake(
            lambda E, T, N: E.var(correction=0) / N,
            "the factor β² = 1/T² is missing: c = ∂⟨E⟩/∂T / N = β² Var(E) / N.",
        ),
        Mistake(
            lambda E, T, N: E.var(correction=0) / (T * N),
            "the prefactor is β² = 1/T², not β: the fluctuation formula is c = β² Var(E) / N.",
        ),
        Mistake(
            lambda E, T, N: E.var(correction=0) / T**2,
            "the per-spin normalisation is missing: divide Var(E) by the number of sites N "
            "(equivalently, c = β² N Var(e) with e = E / N).",
        ),
        Mistake(
            lambda E, T, N: N * E.var(correction=0) / T**2,
            "the per-spin normalisation goes the other way: c = β² Var(E) / N. The energy per "
            "spin e = E / N has Var(e) = Var(E) / N², and c = β² N Var(e).",
        ),
        Mistake(
            lambda E, T, N: E.var(correction=0) / (T**2 * N**2),
            "Var(e) = Var(E) / N² is only part of it: the specific heat per spin is "
            "c = β² N Var(e) = β² Var(E) / N, extensive fluctuations divided by N once.",
        ),
    ),
)
check_specific_heat = SPECIFIC_HEAT.check

EXERCISES = [ISING_ENERGY, KL_FROM_LOG_WEIGHTS, SPECIFIC_HEAT]
