"""Tests for genphys.comparison against independent oracles.

* brute force: state numbers against genphys.enumeration.binary_states, histograms and
  divergences against direct NumPy sums;
* exact Boltzmann samples (genphys.thermodynamics.sample_boltzmann_exact): their observables
  must lie within their jackknife errors of genphys.ising.exact_observables, and the
  mean KL(q || p) of n of them must match its asymptotic value (K - 1) / (2n);
* bad input raises "<argument> must be ...".
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from genphys import comparison, ising
from genphys.enumeration import binary_states
from genphys.thermodynamics import boltzmann_log_prob_exact, sample_boltzmann_exact


def all_spins(L):
    return 2 * binary_states(L * L).reshape(-1, L, L) - 1  # (2^N, L, L)


# ------------------------------------------------------------------ mapping
@pytest.mark.parametrize("L", [2, 3, 4])
def test_state_index_is_the_order_of_binary_states(L):
    codes = comparison.state_index(all_spins(L))
    assert torch.equal(codes, torch.arange(2 ** (L * L)))


def test_state_index_of_single_configurations():
    s = -torch.ones(2, 2, 2)
    s[1, 0, 1] = 1.0  # site 1 in row-major order
    assert comparison.state_index(s).tolist() == [0, 2]


def test_to_spins_thresholds_and_shapes():
    x = torch.tensor([[0.7, 0.2, 0.5, 0.51], [0.0, 1.0, 0.49, 0.9]])
    s = comparison.to_spins(x, 2, threshold=0.5)
    assert s.shape == (2, 2, 2) and s.dtype == torch.float64
    np.testing.assert_array_equal(s.reshape(2, 4).numpy(), [[1, -1, -1, 1], [-1, 1, -1, 1]])
    y = torch.tensor([-0.3, 0.2, 1.4, -2.0]).reshape(1, 1, 2, 2)  # image layout (n, 1, L, L)
    np.testing.assert_array_equal(comparison.to_spins(y, 2).reshape(4).numpy(), [-1, 1, 1, -1])


def test_to_spins_bad_input():
    with pytest.raises(ValueError, match="x must have shape"):
        comparison.to_spins(torch.zeros(3, 5), 2)
    with pytest.raises(ValueError, match="x must"):
        comparison.to_spins(torch.tensor([[0.0, math.nan, 1.0, 1.0]]), 2)
    with pytest.raises(TypeError, match="threshold must be a float"):
        comparison.to_spins(torch.zeros(1, 4), 2, threshold="0")
    with pytest.raises((TypeError, ValueError), match="L must"):
        comparison.to_spins(torch.zeros(1, 4), 1)


# ---------------------------------------------------------------- histograms
def test_empirical_distribution_counts_by_brute_force():
    g = torch.Generator().manual_seed(0)
    s = 2 * torch.randint(2, (500, 2, 2), generator=g).double() - 1
    q = comparison.empirical_distribution(s)
    states = all_spins(2)
    brute = torch.stack([(s == state).all(-1).all(-1).double().mean() for state in states])
    np.testing.assert_allclose(q.numpy(), brute.numpy(), atol=1e-15)
    assert math.isclose(float(q.sum()), 1.0)


def test_empirical_divergences_match_direct_sums():
    g = torch.Generator().manual_seed(1)
    log_p = boltzmann_log_prob_exact(2, 1.5)
    s = 2 * torch.randint(2, (300, 2, 2), generator=g).double() - 1  # far from p
    out = comparison.empirical_divergences(s, log_p)
    p, q = log_p.exp().numpy(), comparison.empirical_distribution(s).numpy()
    m = (p + q) / 2
    kl = lambda a, b: float(np.sum(a[a > 0] * np.log(a[a > 0] / b[a > 0])))
    assert math.isclose(out["jsd"], 0.5 * kl(p, m) + 0.5 * kl(q, m), rel_tol=1e-10)
    assert math.isclose(out["kl_samples_exact"], kl(q, p), rel_tol=1e-10)


def test_divergences_vanish_for_a_histogram_equal_to_p():
    # 2x2 lattice at T = inf-like: the uniform table; every state once gives q = p exactly
    log_p = torch.full((16,), -math.log(16.0), dtype=torch.float64)
    out = comparison.empirical_divergences(all_spins(2), log_p)
    assert abs(out["jsd"]) < 1e-14 and abs(out["kl_samples_exact"]) < 1e-14


def test_divergence_floor_matches_its_asymptotic_value():
    # For n exact draws from K states, 2n KL(q || p) -> chi-square with K - 1 degrees of
    # freedom, so E KL = (K - 1) / (2n) and sd KL = sqrt(2 (K - 1)) / (2n). At T = 5 on the
    # 2x2 lattice all K = 16 states have probability >= 0.02, and n = 20000 makes the
    # O(1/n^2) corrections negligible. Tolerance: 4 standard errors of the mean of 20 repeats.
    n, K, repeats = 20_000, 16, 20
    floor = comparison.divergence_floor(2, 5.0, n, n_repeats=repeats, seed=0)
    expected, sd = (K - 1) / (2 * n), math.sqrt(2 * (K - 1)) / (2 * n)
    assert abs(floor["kl_samples_exact"] - expected) < 4 * sd / math.sqrt(repeats)
    assert abs(floor["kl_samples_exact_sd"] - sd) < 0.5 * sd  # the spread of 20 draws
    # the JSD of exact samples is also O(1/n): it shrinks about tenfold for 10x more samples
    small = comparison.divergence_floor(2, 5.0, n // 10, n_repeats=repeats, seed=0)
    assert 5 < small["jsd"] / floor["jsd"] < 20


def test_divergences_bad_input():
    log_p = boltzmann_log_prob_exact(2, 2.0)
    s = all_spins(2)
    with pytest.raises(ValueError, match="log_p must have shape"):
        comparison.empirical_divergences(s, log_p[:8])
    with pytest.raises(ValueError, match="log_p must be normalised"):
        comparison.empirical_divergences(s, log_p + 1.0)
    with pytest.raises(ValueError, match="spins must hold spins"):
        comparison.empirical_divergences(0.5 * s, log_p)
    with pytest.raises(ValueError, match="spins must have shape"):
        comparison.empirical_distribution(torch.ones(3, 4))
    with pytest.raises(ValueError, match="spins must have at most"):
        comparison.empirical_distribution(torch.ones(2, 5, 5))
    with pytest.raises(ValueError, match="n_repeats must"):
        comparison.divergence_floor(2, 2.0, 100, n_repeats=1, seed=0)
    with pytest.raises(TypeError):
        comparison.divergence_floor(2, 2.0, 100)  # neither seed nor generator


def test_divergence_floor_seed_and_generator_agree():
    a = comparison.divergence_floor(2, 2.0, 500, seed=3)
    b = comparison.divergence_floor(2, 2.0, 500, generator=torch.Generator().manual_seed(3))
    assert a == b


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_spins_on_cuda():
    x = torch.randn(200, 16, device="cuda")
    s = comparison.to_spins(x, 4)
    assert s.device.type == "cuda"
    log_p = boltzmann_log_prob_exact(4, 2.5)
    on_cpu = comparison.empirical_divergences(s.cpu(), log_p)
    assert comparison.empirical_divergences(s, log_p) == on_cpu
    assert comparison.compare_observables(s, 2.5) == comparison.compare_observables(s.cpu(), 2.5)


# --------------------------------------------------------------- observables
def test_exact_samples_give_the_exact_observables_within_their_errors():
    # Independent exact draws: the jackknife standard error is the standard error, so each
    # z is approximately standard normal; |z| < 4 fails by chance with probability ~6e-5.
    T = ising.T_CRITICAL
    out = comparison.compare_observables(sample_boltzmann_exact(4, T, 20_000, seed=3), T)
    exact = ising.exact_observables(4, T)
    for key in ising.OBSERVABLE_KEYS:
        assert out[key]["exact"] == exact[key]
        assert out[key]["se"] > 0
        assert abs(out[key]["z"]) < 4, (key, out[key])


def test_samples_of_another_temperature_are_detected():
    # samples at T = 3.5 compared at T_c: the energy differs by ~0.8 per spin, > 40 se
    out = comparison.compare_observables(
        sample_boltzmann_exact(4, 3.5, 4000, seed=4), ising.T_CRITICAL
    )
    assert out["energy_per_spin"]["z"] > 10
    assert out["abs_magnetization_per_spin"]["z"] < -10


def test_zero_error_bar_gives_infinite_z():
    out = comparison.compare_observables(torch.ones(10, 4, 4), 2.0)
    assert out["energy_per_spin"]["se"] == 0
    assert out["energy_per_spin"]["z"] == -math.inf  # -2 is below the exact mean


def test_compare_observables_bad_input():
    with pytest.raises(ValueError, match="spins must hold spins"):
        comparison.compare_observables(torch.zeros(10, 4, 4), 2.0)
    with pytest.raises(ValueError, match="T must"):
        comparison.compare_observables(torch.ones(10, 4, 4), -1.0)


# ----------------------------------------------------------- bookkeeping
def test_count_parameters_counts_every_tensor_even_frozen():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    assert comparison.count_parameters(model) == 3 * 2 + 2 + 2 + 1
    model.requires_grad_(False)
    assert comparison.count_parameters(model) == 11
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        comparison.count_parameters(torch.zeros(3))


def test_format_table_layout():
    text = comparison.format_table(
        [{"name": "a", "x": 1.234567}, {"name": "bb", "y": 3}], ["name", "x", "y"]
    )
    lines = text.splitlines()
    assert len(lines) == 4 and len({len(line) for line in lines}) == 1
    assert "1.235" in lines[2] and lines[2].rstrip().endswith("-")
    assert lines[3].split() == ["bb", "-", "3"]
    with pytest.raises(TypeError, match="columns must be"):
        comparison.format_table([], "name")
    with pytest.raises(TypeError, match="rows must be"):
        comparison.format_table([1], ["name"])


# ------------------------------------------- oracles for the exercises of chapter 18
def test_exercise_solutions_agree_with_the_library():
    from genphys.exercises import ch18
    from genphys.grid import js_divergence

    g = torch.Generator().manual_seed(5)
    s = 2 * torch.randint(2, (50, 4, 4), generator=g).double() - 1
    assert torch.equal(ch18.state_index(s), comparison.state_index(s))
    p = boltzmann_log_prob_exact(4, 2.0).exp()
    q = comparison.empirical_distribution(s)
    assert math.isclose(float(ch18.js_divergence_tables(p, q)), js_divergence(p, q), rel_tol=1e-10)
    spins = sample_boltzmann_exact(4, 2.0, 1000, seed=6)
    c, se = ch18.jackknife_specific_heat(ising.energy(spins, per_spin=True), 2.0, 16, 20)
    library = ising.observables(spins, 2.0, n_blocks=20)
    assert math.isclose(c, library["specific_heat_per_spin"], rel_tol=1e-12)
    assert math.isclose(se, library["specific_heat_per_spin_se"], rel_tol=1e-9)
