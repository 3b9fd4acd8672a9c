"""Tests for genphys.ising: energies against loops, samplers against exact enumeration and
Onsager, the Onsager formulas against known limits."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from genphys import ising, mcmc
from genphys.enumeration import binary_states


# ------------------------------------------------------------------ oracles
def _energy_loops(s: np.ndarray) -> float:
    """E = -sum over bonds (i, j)-(i, j+1) and (i, j)-(i+1, j), periodic, by plain loops."""
    L = s.shape[0]
    total = 0.0
    for i in range(L):
        for j in range(L):
            total -= s[i, j] * s[i, (j + 1) % L] + s[i, j] * s[(i + 1) % L, j]
    return total


def _exact_loops(L: int, T: float) -> dict[str, float]:
    """Exact observables by a Python loop over all 2**(L*L) configurations."""
    N, beta = L * L, 1.0 / T
    energies, mags = [], []
    for bits in itertools.product((-1.0, 1.0), repeat=N):
        s = np.array(bits).reshape(L, L)
        energies.append(_energy_loops(s))
        mags.append(abs(s.sum()))
    E, M = np.array(energies), np.array(mags)
    log_w = -beta * E
    log_z = float(np.logaddexp.reduce(log_w))
    p = np.exp(log_w - log_z)
    e, m = E / N, M / N
    return {
        "log_z": log_z,
        "energy_per_spin": p @ e,
        "abs_magnetization_per_spin": p @ m,
        "specific_heat_per_spin": beta**2 * N * (p @ e**2 - (p @ e) ** 2),
        "susceptibility_per_spin": beta * N * (p @ m**2 - (p @ m) ** 2),
    }


def _random_spins(n: int, L: int, generator: torch.Generator) -> torch.Tensor:
    return 2.0 * torch.randint(2, (n, L, L), generator=generator).double() - 1.0


def _all_states(L: int) -> torch.Tensor:
    return 2.0 * binary_states(L * L).reshape(-1, L, L) - 1.0


def _state_codes(s: torch.Tensor) -> torch.Tensor:
    bits = ((s.reshape(s.shape[0], -1) + 1) / 2).to(torch.int64)
    return (bits * 2 ** torch.arange(bits.shape[1])).sum(1)


def _check_observables(sampled, exact, *, z=5.0):
    """Each sampled observable within z standard errors of the exact value.

    The samples come from independent chains, so the jackknife SE of observables()
    is a valid SE; 4 observables at 5 SE fail by chance with probability < 3e-6.
    """
    for key in ising.OBSERVABLE_KEYS:
        diff = abs(sampled[key] - exact[key])
        assert diff < z * sampled[key + "_se"], (
            f"{key}: sampled {sampled[key]:.5f} ± {sampled[key + '_se']:.5f}, "
            f"exact {exact[key]:.5f}"
        )


# ---------------------------------------------------------------- energies
@pytest.mark.parametrize("L", [2, 3, 4, 5])
def test_energy_and_magnetization_against_loops(L):
    gen = torch.Generator().manual_seed(L)
    s = _random_spins(6, L, gen)
    expected = torch.tensor([_energy_loops(x) for x in s.numpy()], dtype=torch.float64)
    torch.testing.assert_close(ising.energy(s), expected)
    torch.testing.assert_close(ising.energy(s, per_spin=True), expected / L**2)
    torch.testing.assert_close(ising.energy(s[0]), expected[0])
    torch.testing.assert_close(ising.magnetization(s), s.sum((1, 2)))
    torch.testing.assert_close(ising.magnetization(s, per_spin=True), s.mean((1, 2)))
    torch.testing.assert_close(ising.magnetization(s[0]), s[0].sum())


@pytest.mark.parametrize("L", [2, 3, 4])
def test_energy_change_is_the_difference_of_energies(L):
    gen = torch.Generator().manual_seed(10 + L)
    s = _random_spins(3, L, gen)
    delta = ising.energy_change(s)
    for i, j in itertools.product(range(L), repeat=2):
        flipped = s.clone()
        flipped[:, i, j] *= -1
        torch.testing.assert_close(delta[:, i, j], ising.energy(flipped) - ising.energy(s))
    assert set(delta.unique().tolist()) <= {-8.0, -4.0, 0.0, 4.0, 8.0}


def test_ground_states():
    up = torch.ones(1, 4, 4, dtype=torch.float64)
    assert float(ising.energy(up, per_spin=True)) == -2.0
    assert float(ising.magnetization(-up, per_spin=True)) == -1.0
    checker = (-1.0) ** (torch.arange(4)[:, None] + torch.arange(4)[None, :]).double()
    assert float(ising.energy(checker, per_spin=True)) == 2.0


# ------------------------------------------------------------- enumeration
@pytest.mark.parametrize(("L", "T"), [(2, 1.0), (2, 3.0), (3, 1.7), (3, ising.T_CRITICAL)])
def test_exact_observables_against_loops(L, T):
    exact = ising.exact_observables(L, T)
    expected = _exact_loops(L, T)
    for key, value in expected.items():
        assert exact[key] == pytest.approx(value, rel=1e-11, abs=1e-12), key


def test_exact_observables_thermodynamic_identities():
    # <e> = -(1/N) d log Z / d beta and c = (beta^2 / N) d^2 log Z / d beta^2, by float64
    # central differences with h = 1e-4 (truncation error ~ h^2 * |d^3 log Z| ~ 1e-7).
    L, T, h = 4, 2.4, 1e-4
    N, beta = L * L, 1.0 / T
    log_z = lambda b: ising.exact_observables(L, 1.0 / b)["log_z"]
    exact = ising.exact_observables(L, T)
    d1 = (log_z(beta + h) - log_z(beta - h)) / (2 * h)
    d2 = (log_z(beta + h) - 2 * log_z(beta) + log_z(beta - h)) / h**2
    assert exact["energy_per_spin"] == pytest.approx(-d1 / N, rel=1e-7)
    assert exact["specific_heat_per_spin"] == pytest.approx(beta**2 * d2 / N, rel=1e-5)
    # log Z of the 4x4 lattice against a direct log-sum-exp over all 65536 states
    direct = torch.logsumexp(-beta * ising.energy(_all_states(4)), 0)
    assert exact["log_z"] == pytest.approx(float(direct), rel=1e-13)
    # limits: T -> 0 gives the two ground states, T -> infinity 2**N states
    cold = ising.exact_observables(4, 0.05)
    assert cold["energy_per_spin"] == pytest.approx(-2.0)
    assert cold["abs_magnetization_per_spin"] == pytest.approx(1.0)
    assert cold["log_z"] == pytest.approx(math.log(2) + 2 * N / 0.05)
    hot = ising.exact_observables(4, 1e6)
    assert hot["log_z"] == pytest.approx(N * math.log(2), rel=1e-6)


# ------------------------------------------------------- sampler exactness
def _sweep_distribution_test(step, L, T_per_chain, n_steps, seed):
    gen = torch.Generator().manual_seed(seed)
    n = T_per_chain.shape[0]
    s = _random_spins(n, L, gen)
    beta = 1.0 / T_per_chain
    for _ in range(n_steps):
        s = step(s, beta, gen)
    return s


@pytest.mark.parametrize(("L", "T", "n_steps"), [(2, 2.0, 30), (3, 2.5, 50)])
@pytest.mark.parametrize("sampler", ["metropolis", "wolff"])
def test_samplers_reproduce_exact_distribution_over_all_states(L, T, n_steps, sampler):
    # n independent chains, each run n_steps from a random start (forgotten after a few
    # sweeps on such tiny lattices, n_steps >> tau). The final-state histogram over all
    # K = 2**(L*L) states is compared to exp(-E/T)/Z by the statistic X2 = sum (O-E)^2/E.
    # For a multinomial sample X2 has mean K - 1 and variance
    # 2 (K - 1) + (sum_k 1/p_k - K^2 - 2K + 2)/n exactly, which stays valid when some
    # expected counts are small; we allow the mean + 5 SD.
    step = ising.metropolis_sweep if sampler == "metropolis" else ising.wolff_step
    n = 40_000 if sampler == "metropolis" else 20_000
    s = _sweep_distribution_test(step, L, torch.full((n,), T, dtype=torch.float64), n_steps, 1)
    states = _all_states(L)
    p = torch.softmax(-ising.energy(states) / T, 0)
    counts = torch.bincount(_state_codes(s), minlength=states.shape[0]).double()
    expected = n * p
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    k = states.shape[0]
    var = 2 * (k - 1) + (float((1 / p).sum()) - k**2 - 2 * k + 2) / n
    assert chi2 < (k - 1) + 5 * math.sqrt(var), (chi2, k - 1, math.sqrt(var))


def test_metropolis_with_certain_zero_energy_flips_would_be_trapped():
    # Why metropolis_sweep accepts Delta E = 0 flips with probability 1/2: on a 2x2
    # lattice a width-one stripe has Delta E = 0 at every site, and a checkerboard sweep
    # that accepts those flips with certainty maps stripes onto stripes forever.
    stripes = torch.tensor([[[1.0, 1.0], [-1.0, -1.0]]], dtype=torch.float64).repeat(1000, 1, 1)
    is_stripe = lambda s: (ising.energy_change(s) == 0).all(-1).all(-1)
    assert bool(is_stripe(stripes).all())
    gen = torch.Generator().manual_seed(0)
    beta = 0.5
    textbook = stripes
    for _ in range(10):
        for mask in ising.colour_classes(2):
            accept = torch.rand(textbook.shape, generator=gen) < torch.exp(
                -beta * ising.energy_change(textbook)
            ).clamp(max=1.0)
            textbook = torch.where(accept & mask, -textbook, textbook)
    assert bool(is_stripe(textbook).all())  # trapped: the chain is not ergodic
    s = stripes.repeat(10, 1, 1)
    for _ in range(20):
        s = ising.metropolis_sweep(s, beta, gen)
    # The library chain forgets the start: the stripe fraction approaches its equilibrium
    # value, the probability of the 4 stripe states. n = 10000 chains: binomial SE.
    states = _all_states(2)
    p = torch.softmax(-beta * ising.energy(states), 0)
    p_stripe = float(p[is_stripe(states)].sum())
    se = math.sqrt(p_stripe * (1 - p_stripe) / s.shape[0])
    assert abs(float(is_stripe(s).double().mean()) - p_stripe) < 5 * se


def test_per_chain_temperatures():
    # Two temperatures in one batch; each half must match its own exact 3x3 energy.
    # SE of the mean energy per spin = sd / sqrt(n) with n = 10000 chains per half.
    n = 10_000
    T = torch.cat([torch.full((n,), 1.5), torch.full((n,), 4.0)]).double()
    for step in (ising.metropolis_sweep, ising.wolff_step):
        s = _sweep_distribution_test(step, 3, T, 40, 2)
        for half, temperature in ((s[:n], 1.5), (s[n:], 4.0)):
            e = ising.energy(half, per_spin=True)
            exact = ising.exact_observables(3, temperature)["energy_per_spin"]
            assert abs(float(e.mean()) - exact) < 5 * float(e.std()) / math.sqrt(n)


@pytest.mark.parametrize("T", [2.0, ising.T_CRITICAL, 3.0])
def test_samplers_match_exact_4x4_observables(T):
    # 4000 independent chains per sampler (the final state of each), compared with the
    # 2**16-state enumeration within 5 jackknife SE.
    gen = torch.Generator().manual_seed(int(100 * T))
    exact = ising.exact_observables(4, T)
    for step, n_steps in ((ising.metropolis_sweep, 60), (ising.wolff_step, 60)):
        s = _random_spins(4000, 4, gen)
        for _ in range(n_steps):
            s = step(s, 1.0 / T, gen)
        _check_observables(ising.observables(s, T), exact)


@pytest.mark.parametrize("T", [1.8, ising.T_CRITICAL, 3.0])
def test_sample_matches_exact_4x4(T):
    s = ising.sample(4, T, 6000, seed=3)
    assert s.shape == (6000, 4, 4) and s.dtype == torch.float64
    assert set(s.unique().tolist()) == {-1.0, 1.0}
    # The jackknife uses 50 contiguous blocks (consecutive samples of one chain), which
    # covers the small residual autocorrelation of kept samples.
    _check_observables(ising.observables(s, T), ising.exact_observables(4, T))


def test_sample_is_deterministic_and_nearly_independent():
    a = ising.sample(16, ising.T_CRITICAL, 640, seed=5)
    assert torch.equal(ising.sample(6, 2.0, 20, seed=5), ising.sample(6, 2.0, 20, seed=5))
    assert not torch.equal(ising.sample(6, 2.0, 20, seed=5), ising.sample(6, 2.0, 20, seed=6))
    # Kept samples are chain-major: 64 chains x 10 samples. Their integrated
    # autocorrelation time in units of kept samples should be close to 1 (independent);
    # at T_c on L = 16 it is 1.0 to 1.3 with the default thinning, and a sampler without
    # Wolff moves would give several.
    e = ising.energy(a).reshape(64, 10)
    assert mcmc.integrated_autocorrelation_time(e) < 1.6
    assert ising.sample(5, 2.0, 3, seed=0).shape == (3, 5, 5)  # odd L, fewer samples than chains


@pytest.mark.slow
@pytest.mark.parametrize("T", [1.5, 3.5])
def test_metropolis_approaches_onsager_on_32x32(T):
    # 64 chains of L = 32, 200 burn-in sweeps (ordered start below T_c, random above) and
    # 400 measured sweeps. The SE is the spread of the 64 independent chain means / 8.
    # Finite-size corrections away from T_c decay like exp(-L/xi) with correlation length
    # xi = 0.63 (T = 1.5) and 1.4 (T = 3.5), i.e. below 1e-9 for L = 32; we allow 1e-4 on
    # top of 5 SE anyway.
    L, n_chains = 32, 64
    gen = torch.Generator().manual_seed(7)
    if T < ising.T_CRITICAL:
        s = torch.ones(n_chains, L, L, dtype=torch.float64)
    else:
        s = _random_spins(n_chains, L, gen)
    for _ in range(200):
        s = ising.metropolis_sweep(s, 1.0 / T, gen)
    e_sum = torch.zeros(n_chains, dtype=torch.float64)
    m_sum = torch.zeros(n_chains, dtype=torch.float64)
    for _ in range(400):
        s = ising.metropolis_sweep(s, 1.0 / T, gen)
        e_sum += ising.energy(s, per_spin=True)
        m_sum += ising.magnetization(s, per_spin=True).abs()
    for chain_means, exact in (
        (e_sum / 400, ising.onsager_energy_per_spin(T)),
        (m_sum / 400, ising.onsager_magnetization_per_spin(T)),
    ):
        se = float(chain_means.std()) / math.sqrt(n_chains)
        if exact == 0.0:
            # above T_c <|m|> ~ sqrt(chi T / N) = O(1/L), not 0: only check it is small
            assert float(chain_means.mean()) < 0.1
        else:
            assert abs(float(chain_means.mean()) - exact) < 5 * se + 1e-4


# ----------------------------------------------------------------- Onsager
def test_onsager_energy_known_values():
    # At T_c: u = -coth(2 beta_c) = -sqrt(2), exactly (the elliptic term vanishes).
    assert ising.onsager_energy_per_spin(ising.T_CRITICAL) == pytest.approx(
        -math.sqrt(2), abs=1e-14
    )
    # continuity at T_c (u is continuous; only its derivative has a log singularity)
    for eps in (1e-6, 1e-9):
        for T in (ising.T_CRITICAL * (1 - eps), ising.T_CRITICAL * (1 + eps)):
            assert ising.onsager_energy_per_spin(T) == pytest.approx(-math.sqrt(2), abs=1e-4)
    # Low-temperature expansion ln Z/N = 2 beta + e^{-8 beta} + 2 e^{-12 beta} + ...:
    # u = -2 + 8 e^{-8 beta} + O(e^{-12 beta}); at T = 0.5 the remainder is < 1e-9.
    beta = 2.0
    assert ising.onsager_energy_per_spin(0.5) == pytest.approx(
        -2 + 8 * math.exp(-8 * beta), abs=1e-8
    )
    # High-temperature expansion ln Z/N = ln 2 + 2 ln cosh beta + t^4 + ..., t = tanh beta:
    # u = -2 t - 4 t^3 (1 - t^2) + O(t^5); at T = 20, t^5 ~ 3e-7.
    t = math.tanh(1 / 20)
    assert ising.onsager_energy_per_spin(20.0) == pytest.approx(
        -2 * t - 4 * t**3 * (1 - t**2), abs=5e-6
    )
    # arrays in, arrays out; monotone increasing in T
    T = np.linspace(0.5, 5.0, 200)
    u = ising.onsager_energy_per_spin(T)
    assert isinstance(u, np.ndarray) and u.shape == T.shape
    assert np.all(np.diff(u) > 0)
    assert isinstance(ising.onsager_energy_per_spin(2.0), float)


def test_onsager_magnetization_known_values():
    assert ising.onsager_magnetization_per_spin(ising.T_CRITICAL) == 0.0
    assert ising.onsager_magnetization_per_spin(3.0) == 0.0
    # low T: m = 1 - 2 e^{-8 beta} + O(e^{-12 beta}); at T = 0.5 the remainder is < 1e-9
    assert ising.onsager_magnetization_per_spin(0.5) == pytest.approx(
        1 - 2 * math.exp(-16), abs=1e-9
    )
    # continuity at T_c: m ~ (T_c - T)^(1/8) -> 0, decreasing below T_c
    T = ising.T_CRITICAL * (1 - np.logspace(-1, -12, 12))
    m = ising.onsager_magnetization_per_spin(T)
    assert np.all(np.diff(m) < 0) and m[-1] < 0.05
    # the exponent 1/8: m^8 is linear in T_c - T close to T_c
    eps = np.array([1e-6, 2e-6])
    m8 = ising.onsager_magnetization_per_spin(ising.T_CRITICAL * (1 - eps)) ** 8
    assert m8[1] / m8[0] == pytest.approx(2.0, rel=1e-4)


def test_onsager_energy_close_to_large_lattice_exact_behaviour():
    # The 4x4 exact energy already lies close to Onsager far from T_c (finite-size
    # corrections ~ exp(-L/xi) with xi ~ 0.6 at T = 1.2): within 1e-3.
    assert ising.exact_observables(4, 1.2)["energy_per_spin"] == pytest.approx(
        ising.onsager_energy_per_spin(1.2), abs=1e-3
    )


# -------------------------------------------------------------- bad inputs
BAD_SPINS = [
    (torch.ones(3, 1, 1), ValueError, "L >= 2"),
    (torch.ones(3, 4, 5), ValueError, "square"),
    (torch.zeros(3, 4, 4), ValueError, "\\+1 and -1"),
    (torch.full((3, 4, 4), 0.5), ValueError, "\\+1 and -1"),
    (torch.full((3, 4, 4), math.nan), ValueError, "finite"),
    (torch.ones(4), ValueError, "dimensions"),
    (torch.ones(2, 2, 4, 4), ValueError, "dimensions"),
    ("spins", TypeError, "numeric"),
]


@pytest.mark.parametrize(("spins", "error", "message"), BAD_SPINS)
def test_bad_spins(spins, error, message):
    for fn in (ising.energy, ising.magnetization, ising.energy_change):
        with pytest.raises(error, match=f"spins.*{message}"):
            fn(spins)
    gen = torch.Generator().manual_seed(0)
    for step in (ising.metropolis_sweep, ising.wolff_step):
        with pytest.raises(error, match="spins"):
            step(spins, 0.4, gen)
    with pytest.raises(error, match="spins"):
        ising.observables(spins, 2.0)


def test_bad_input_sweeps():
    gen = torch.Generator().manual_seed(0)
    s = torch.ones(2, 4, 4, dtype=torch.float64)
    for step in (ising.metropolis_sweep, ising.wolff_step):
        with pytest.raises(ValueError, match="spins"):
            step(torch.ones(4, 4, dtype=torch.float64), 0.4, gen)  # no chain dimension
        with pytest.raises(ValueError, match="beta"):
            step(s, -0.1, gen)
        with pytest.raises(ValueError, match="beta"):
            step(s, math.nan, gen)
        with pytest.raises(TypeError, match="beta"):
            step(s, "hot", gen)
        with pytest.raises(ValueError, match="beta"):
            step(s, torch.tensor([0.1, 0.2, 0.3]), gen)  # 3 betas for 2 chains
        with pytest.raises(ValueError, match="beta"):
            step(s, torch.tensor([0.1, -0.2]), gen)
        with pytest.raises(TypeError, match="generator"):
            step(s, 0.4, 42)
    # beta = 0 (infinite temperature) is allowed
    assert ising.metropolis_sweep(s, 0.0, gen).shape == s.shape


def test_bad_input_sample():
    with pytest.raises(ValueError, match="L"):
        ising.sample(1, 2.0, 10, seed=0)
    with pytest.raises(TypeError, match="L"):
        ising.sample(4.0, 2.0, 10, seed=0)
    with pytest.raises(ValueError, match="T"):
        ising.sample(4, 0.0, 10, seed=0)
    with pytest.raises(ValueError, match="T"):
        ising.sample(4, -1.0, 10, seed=0)
    with pytest.raises(ValueError, match="T"):
        ising.sample(4, math.nan, 10, seed=0)
    with pytest.raises(ValueError, match="n_samples"):
        ising.sample(4, 2.0, 0, seed=0)
    with pytest.raises(ValueError, match="seed"):
        ising.sample(4, 2.0, 10, seed=-1)
    with pytest.raises(TypeError, match="seed"):
        ising.sample(4, 2.0, 10, seed=None)
    with pytest.raises(ValueError, match="thin"):
        ising.sample(4, 2.0, 10, seed=0, thin=0)
    with pytest.raises(ValueError, match="burn_in"):
        ising.sample(4, 2.0, 10, seed=0, burn_in=-1)
    with pytest.raises(ValueError, match="n_chains"):
        ising.sample(4, 2.0, 10, seed=0, n_chains=0)
    with pytest.raises(TypeError):
        ising.sample(4, 2.0, 10, 0)  # seed is keyword-only


def test_bad_input_exact_and_observables():
    with pytest.raises(ValueError, match="L"):
        ising.exact_observables(1, 2.0)
    with pytest.raises(ValueError, match="L must be at most 4"):
        ising.exact_observables(5, 2.0)
    with pytest.raises(ValueError, match="T"):
        ising.exact_observables(3, 0.0)
    with pytest.raises(ValueError, match="T"):
        ising.exact_observables(3, math.inf)
    with pytest.raises(TypeError, match="T"):
        ising.exact_observables(3, "2.0")
    s = torch.ones(5, 4, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="T"):
        ising.observables(s, -2.0)
    with pytest.raises(ValueError, match="spins"):
        ising.observables(s[:1], 2.0)  # one configuration has no spread
    with pytest.raises(ValueError, match="n_blocks"):
        ising.observables(s, 2.0, n_blocks=1)


@pytest.mark.parametrize("L", [2, 3, 4])
def test_energy_is_the_sum_over_the_public_bond_list(L):
    pairs = ising.bonds(L)
    assert pairs.shape == (2 * L * L, 2) and pairs.dtype == torch.int64
    s = _random_spins(20, L, torch.Generator().manual_seed(L)).reshape(20, L * L)
    by_bonds = -(s[:, pairs[:, 0]] * s[:, pairs[:, 1]]).sum(1)
    torch.testing.assert_close(ising.energy(s.reshape(20, L, L)), by_bonds, rtol=0, atol=0)
    # every site has exactly four bond ends (two as first, two as second)
    assert torch.equal(torch.bincount(pairs.reshape(-1), minlength=L * L), torch.full((L * L,), 4))


@pytest.mark.parametrize("T", [1e-3, 1e-30, 1e-300])
def test_exact_observables_at_tiny_temperature_is_the_ground_state(T):
    # Before: OverflowError (beta**2 for T = 1e-300) or NaN. The ground states are the two
    # uniform configurations with E = -2N and |m| = 1, so log Z = 2N/T + log 2 and the
    # fluctuations vanish.
    for L in (2, 3):
        N = L * L
        out = ising.exact_observables(L, T)
        np.testing.assert_allclose(out["log_z"], 2 * N / T + math.log(2), rtol=1e-15)
        assert out["energy_per_spin"] == -2.0
        assert out["abs_magnetization_per_spin"] == 1.0
        assert out["specific_heat_per_spin"] == 0.0
        assert out["susceptibility_per_spin"] == 0.0


def test_exact_observables_at_low_temperature_match_the_two_level_limit():
    # At T = 0.05 on L = 3 the first excitations (one flipped spin, Delta E = 8 on the
    # periodic lattice, 9 of them per ground state) give, to leading order in
    # x = 9 exp(-8/T): <e> = -2 + 8x/N and c = (8/T)^2 x / N; x ~ 1e-68, far below float64
    # resolution of <e> but not of c, which the old formula lost to cancellation.
    T, N = 0.05, 9
    out = ising.exact_observables(3, T)
    x = 9 * math.exp(-8 / T)
    np.testing.assert_allclose(out["specific_heat_per_spin"], (8 / T) ** 2 * x / N, rtol=1e-6)


def test_exact_observables_refuses_a_temperature_whose_log_z_overflows():
    with pytest.raises(ValueError, match="T must be large enough"):
        ising.exact_observables(4, 1e-323)  # 32 / 1e-323 overflows


def test_sample_takes_a_seed_or_a_generator():
    one = ising.sample(4, 2.0, 8, seed=3, burn_in=2, thin=1)
    two = ising.sample(4, 2.0, 8, generator=torch.Generator().manual_seed(3), burn_in=2, thin=1)
    assert torch.equal(one, two)
    with pytest.raises(TypeError, match="seed"):
        ising.sample(4, 2.0, 8)


def test_bad_input_onsager():
    for fn in (ising.onsager_energy_per_spin, ising.onsager_magnetization_per_spin):
        with pytest.raises(ValueError, match="T"):
            fn(0.0)
        with pytest.raises(ValueError, match="T"):
            fn(np.array([1.0, -2.0]))
        with pytest.raises(ValueError, match="T"):
            fn(math.nan)
        with pytest.raises(ValueError, match="T"):
            fn(np.array([]))
        with pytest.raises(TypeError, match="T"):
            fn("cold")


@pytest.mark.cuda
def test_samplers_run_on_cuda_and_match_exact_4x4():
    # Same check as on the CPU: 4000 independent chains, 5 jackknife SE.
    device = torch.device("cuda")
    gen = torch.Generator(device=device).manual_seed(0)
    T = 2.5
    exact = ising.exact_observables(4, T)
    for step in (ising.metropolis_sweep, ising.wolff_step):
        s = 2.0 * torch.randint(2, (4000, 4, 4), generator=gen, device=device).double() - 1.0
        for _ in range(60):
            s = step(s, 1.0 / T, gen)
        assert s.device.type == "cuda"
        _check_observables(ising.observables(s, T), exact)
    with pytest.raises(ValueError, match="generator"):
        ising.metropolis_sweep(s, 0.4, torch.Generator())


@pytest.mark.parametrize("L", [2, 3, 4, 5, 6, 7])
def test_colour_classes_colour_the_torus_properly(L):
    # Oracle: the bond list. No bond joins two sites of one colour, and the masks
    # partition the lattice (every site has exactly one colour).
    masks = ising.colour_classes(L)
    assert len(masks) == (2 if L % 2 == 0 else 3)
    stacked = torch.stack(masks).reshape(len(masks), L * L)  # (n_colours, L*L)
    assert torch.equal(stacked.sum(0), torch.ones(L * L, dtype=torch.long))
    colour = stacked.long().argmax(0)  # (L*L,)
    b = ising.bonds(L)  # (2 L^2, 2)
    assert bool((colour[b[:, 0]] != colour[b[:, 1]]).all())


def test_jackknife_of_a_mean_is_the_standard_error_of_block_means():
    # Exact identity (no randomness in the comparison): for a plain mean and equal blocks
    # the jackknife SE equals std(block means, ddof=1) / sqrt(B).
    values = np.random.default_rng(1).normal(size=(120, 2))
    est, se = ising.jackknife(values, lambda v: v[:, 0].mean(), 8)
    block_means = values[:, 0].reshape(8, 15).mean(1)
    np.testing.assert_allclose(est, values[:, 0].mean(), rtol=1e-14)
    np.testing.assert_allclose(se, block_means.std(ddof=1) / math.sqrt(8), rtol=1e-12)


def test_bad_input_colour_classes_and_jackknife():
    with pytest.raises(ValueError, match="L must be"):
        ising.colour_classes(1)
    with pytest.raises(TypeError, match="L must be"):
        ising.colour_classes(2.5)
    values = np.zeros((10, 1))
    with pytest.raises(TypeError, match="values must be"):
        ising.jackknife([1.0, 2.0], np.mean, 2)
    with pytest.raises(TypeError, match="estimator must be"):
        ising.jackknife(values, "mean", 2)
    with pytest.raises(ValueError, match="n_blocks must be"):
        ising.jackknife(values, np.mean, 1)
    with pytest.raises(ValueError, match="n_blocks must be"):
        ising.jackknife(values, np.mean, 11)


# ------------------------------------------------------------------ Kaufman
KAUFMAN_TEMPERATURES = [0.3, 1.0, 2.0, ising.T_CRITICAL, 2.6, 4.0, 40.0]


@pytest.mark.parametrize("L", [2, 3, 4])
@pytest.mark.parametrize("T", KAUFMAN_TEMPERATURES)
def test_kaufman_log_partition_matches_enumeration(L, T):
    # exact_observables reduces 2**(L*L) states to (E, |M|) levels; _exact_loops sums
    # every state in a Python loop: two independent oracles
    exact = ising.exact_observables(L, T)["log_z"]
    assert ising.log_partition_kaufman(L, T) == pytest.approx(exact, abs=1e-10, rel=1e-12)
    if L <= 3:
        assert ising.log_partition_kaufman(L, T) == pytest.approx(
            _exact_loops(L, T)["log_z"], abs=1e-10
        )


@pytest.mark.parametrize("T", [1.2, ising.T_CRITICAL, 3.5])
def test_kaufman_energy_is_minus_the_beta_derivative(T):
    # <E> = -d log Z / d beta, central finite difference in float64 (error O(h^2) ~ 1e-10)
    L, h = 4, 1e-5
    beta = 1.0 / T
    d_log_z = (
        ising.log_partition_kaufman(L, 1.0 / (beta + h))
        - ising.log_partition_kaufman(L, 1.0 / (beta - h))
    ) / (2 * h)
    exact = ising.exact_observables(L, T)["energy_per_spin"] * L * L
    assert -d_log_z == pytest.approx(exact, abs=1e-6)


@pytest.mark.parametrize("T", [1.5, 2.0, 3.0, 5.0])
def test_kaufman_approaches_onsager_per_spin(T):
    # away from T_c the corrections are exponentially small in L, except the log 2 / N of
    # the two ordered phases below T_c (Z counts both of them)
    L = 256
    per_spin = ising.log_partition_kaufman(L, T) / L**2
    if T < ising.T_CRITICAL:
        per_spin -= math.log(2.0) / L**2
    assert per_spin == pytest.approx(ising.onsager_log_partition_per_spin(T), abs=1e-9)


def test_kaufman_at_t_critical_converges_as_one_over_n():
    # at T_c the finite-size correction is O(1/L^2): quadrupling L divides it by ~16
    f_inf = ising.onsager_log_partition_per_spin(ising.T_CRITICAL)
    errors = [ising.log_partition_kaufman(L, ising.T_CRITICAL) / L**2 - f_inf for L in (16, 64)]
    assert 0 < errors[1] < errors[0] / 10


def test_kaufman_limits_and_large_lattices():
    # high T: log Z -> N log 2; low T: log Z -> 2N beta + log 2 (two ground states)
    assert ising.log_partition_kaufman(5, 1e6) == pytest.approx(25 * math.log(2.0), abs=1e-9)
    T = 0.05
    assert ising.log_partition_kaufman(6, T) == pytest.approx(2 * 36 / T + math.log(2), abs=1e-9)
    value = ising.log_partition_kaufman(1024, 1.0)  # no overflow on a million spins
    assert math.isfinite(value) and value / 1024**2 == pytest.approx(2.0, abs=1e-3)


def test_onsager_log_partition_known_values():
    # at T_c: log(sqrt 2) + 2G/pi with Catalan's constant G (Onsager 1944)
    catalan = 0.915965594177219015054603514932
    value = ising.onsager_log_partition_per_spin(ising.T_CRITICAL)
    assert value == pytest.approx(0.5 * math.log(2.0) + 2 * catalan / math.pi, abs=1e-10)
    # infinite temperature: log 2
    assert ising.onsager_log_partition_per_spin(1e8) == pytest.approx(math.log(2.0), abs=1e-12)


def test_bad_input_kaufman():
    with pytest.raises(ValueError, match="T must be a finite number > 0"):
        ising.log_partition_kaufman(4, 0.0)
    with pytest.raises(ValueError, match="T must be a finite number > 0"):
        ising.log_partition_kaufman(4, -1.0)
    with pytest.raises(ValueError, match="L must be an integer >= 2"):
        ising.log_partition_kaufman(1, 2.0)
    with pytest.raises(TypeError, match="L must be an integer"):
        ising.log_partition_kaufman(4.0, 2.0)
    with pytest.raises(ValueError, match="T must be a finite number > 0"):
        ising.onsager_log_partition_per_spin(float("nan"))
