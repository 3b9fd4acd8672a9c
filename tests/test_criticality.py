"""Tests for genphys.criticality: Binder cumulant limits, crossings of known curves, bootstrap SEs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genphys import criticality, ising


def _binder_se(z: np.ndarray) -> float:
    """Delta-method SE of U = 1 - m4 / (3 m2^2) from the sample covariance of (z^2, z^4).

    dU/dm2 = 2 m4 / (3 m2^3), dU/dm4 = -1 / (3 m2^2); Var U ~ g^T Cov g / n.
    """
    m2, m4 = np.mean(z**2), np.mean(z**4)
    grad = np.array([2 * m4 / (3 * m2**3), -1 / (3 * m2**2)])
    cov = np.cov(np.stack([z**2, z**4]))
    return float(math.sqrt(grad @ cov @ grad / z.shape[0]))


# ---------------------------------------------------------------- Binder cumulant
def test_binder_of_two_sharp_peaks_is_two_thirds_exactly():
    z = torch.tensor([1.0, -1.0, -1.0, 1.0, 1.0], dtype=torch.float64) * 0.37
    assert criticality.binder_cumulant(z) == pytest.approx(2 / 3, abs=1e-15)


def test_binder_of_a_uniform_grid_is_two_fifths():
    # <z^2> = 1/3 and <z^4> = 1/5 on [-1, 1]: U = 1 - (1/5) / (3/9) = 2/5; a midpoint
    # grid of 10^5 points has an O(1e-10) quadrature error.
    z = np.linspace(-1, 1, 100_001)[:-1] + 1e-5
    assert criticality.binder_cumulant(z) == pytest.approx(0.4, abs=1e-8)


@pytest.mark.parametrize("seed", [0, 1])
def test_binder_of_a_gaussian_is_zero(seed):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(200_000, generator=g, dtype=torch.float64).numpy()
    # For N(0, 1) the delta method gives Var U = 8 / (3n) (Var z^2 = 2, Var z^4 = 96,
    # Cov = 12); the bias is O(1/n). 5 SE fails by chance with probability < 1e-6.
    se = math.sqrt(8 / (3 * z.shape[0]))
    assert abs(criticality.binder_cumulant(z)) < 5 * se
    assert _binder_se(z) == pytest.approx(se, rel=0.1)


@pytest.mark.parametrize("width", [0.05, 0.3])
def test_binder_of_two_broadened_peaks_matches_the_exact_moments(width):
    # z = s (1 + width eps), s = +-1, eps ~ N(0, 1): <z^2> = 1 + w^2, <z^4> = 1 + 6 w^2 + 3 w^4,
    # which tends to 2/3 as w -> 0. Tolerance: 5 delta-method SEs.
    g = torch.Generator().manual_seed(7)
    n = 100_000
    s = 2.0 * torch.randint(2, (n,), generator=g).double() - 1.0
    z = (s * (1 + width * torch.randn(n, generator=g, dtype=torch.float64))).numpy()
    exact = 1 - (1 + 6 * width**2 + 3 * width**4) / (3 * (1 + width**2) ** 2)
    assert abs(criticality.binder_cumulant(z) - exact) < 5 * _binder_se(z)


@pytest.mark.parametrize("scale", [1e-200, 1e-3, 1e3, 1e200])
def test_binder_is_scale_invariant_without_overflow(scale):
    z = np.random.default_rng(3).normal(size=500)
    u = criticality.binder_cumulant(z)
    assert criticality.binder_cumulant(scale * z) == pytest.approx(u, rel=1e-12)


def test_binder_rejects_bad_input():
    with pytest.raises(ValueError, match="z must not be all zero"):
        criticality.binder_cumulant(np.zeros(4))
    with pytest.raises(ValueError, match="z must contain only finite values"):
        criticality.binder_cumulant([1.0, float("nan")])
    with pytest.raises(ValueError, match="z must be a 1-D array with at least 1 entries"):
        criticality.binder_cumulant(np.ones((2, 2)))
    with pytest.raises(TypeError, match="z must be a 1-D array of numbers. Got"):
        criticality.binder_cumulant(["a"])


# ---------------------------------------------------------------- susceptibility
def test_susceptibility_matches_ising_observables():
    s = ising.sample(4, 2.4, 500, seed=2)
    m = ising.magnetization(s, per_spin=True)
    expected = ising.observables(s, 2.4)["susceptibility_per_spin"]
    assert criticality.susceptibility(m, n_sites=16, T=2.4) == pytest.approx(expected, rel=1e-12)
    # |z| convention: the sign of each sample does not matter
    flipped = m * torch.where(torch.arange(500) % 2 == 0, 1.0, -1.0).double()
    assert criticality.susceptibility(flipped, n_sites=16, T=2.4) == pytest.approx(
        expected, rel=1e-12
    )


def test_susceptibility_rejects_bad_input():
    with pytest.raises(ValueError, match="T must be a finite number > 0. Got -1.0 instead."):
        criticality.susceptibility([1.0, 2.0], n_sites=4, T=-1.0)
    with pytest.raises(ValueError, match="n_sites must be an integer >= 1"):
        criticality.susceptibility([1.0, 2.0], n_sites=0, T=1.0)


# ---------------------------------------------------------------- crossings
def test_crossing_of_straight_lines_is_exact():
    T = np.array([2.0, 2.1, 2.2, 2.3, 2.4, 2.5])
    T_star = 2.2468
    u_small = 0.5 - 0.8 * (T - T_star)
    u_large = 0.5 - 2.5 * (T - T_star)
    assert criticality.crossing_temperature(T, u_small, u_large) == pytest.approx(T_star, abs=1e-12)


def _scaling_curves(T, sizes, T_c=2.269):
    """U_L(T) = F((T - T_c) L) with F decreasing from 2/3 to 0: all curves meet at T_c."""
    return [(1 / 3) * (1 - np.tanh((T - T_c) * L / 2)) for L in sizes]


def test_crossing_of_scaling_curves_is_found_to_second_order():
    T = np.linspace(1.8, 3.0, 61)  # spacing 0.02; linear interpolation error O(h^2)
    u8, u16 = _scaling_curves(T, (8, 16))
    assert criticality.crossing_temperature(T, u8, u16) == pytest.approx(2.269, abs=2e-3)


def test_crossing_ignores_noise_far_from_the_transition():
    T = np.linspace(1.6, 3.4, 37)
    u8, u16 = _scaling_curves(T, (8, 16))
    u16 = u16.copy()
    # spurious sign changes of d where both curves are flat, at both ends
    u16[-3:] += np.array([0.03, -0.02, 0.04])
    u16[1] -= 0.01
    assert criticality.crossing_temperature(T, u8, u16) == pytest.approx(2.269, abs=5e-3)
    # a systematic reversal far above T_c (seen with learnt order parameters): U_16 > U_8
    u16[-6:] = u8[-6:] + 0.2
    assert criticality.crossing_temperature(T, u8, u16) == pytest.approx(2.269, abs=5e-3)


def test_crossing_rejects_curves_that_do_not_cross():
    T = np.linspace(2.0, 2.5, 6)
    with pytest.raises(ValueError, match="u_large - u_small must change sign from \\+ to -"):
        criticality.crossing_temperature(T, 0.5 - T / 10, 0.6 - T / 10)
    with pytest.raises(ValueError, match="u_large - u_small must change sign"):  # reversed roles
        criticality.crossing_temperature(T, *_scaling_curves(T, (16, 8)))
    with pytest.raises(ValueError, match="temperatures must be positive and strictly increasing"):
        criticality.crossing_temperature(T[::-1], T, T)
    with pytest.raises(ValueError, match="u_small must have one value per temperature"):
        criticality.crossing_temperature(T, T[:3], T)


def test_peak_and_extrapolation_are_exact_on_exact_curves():
    T = np.linspace(2.0, 2.8, 9)
    assert criticality.peak_temperature(T, 5.0 - (T - 2.3314) ** 2) == pytest.approx(2.3314)
    sizes = [8, 16, 32]
    T_c, a = criticality.extrapolate_inverse_size(sizes, [2.269 + 0.7 / L for L in sizes])
    assert (T_c, a) == pytest.approx((2.269, 0.7))
    with pytest.raises(ValueError, match="values must peak inside the temperature range"):
        criticality.peak_temperature(T, -T)
    with pytest.raises(ValueError, match="sizes must be distinct and positive"):
        criticality.extrapolate_inverse_size([8, 8], [2.3, 2.3])


# ---------------------------------------------------------------- bootstrap
def test_bootstrap_se_of_a_mean_is_sigma_over_root_n():
    x = torch.randn(400, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = x.numpy()
    R = 2000
    estimate, se, replicates = criticality.bootstrap([x], np.mean, n_resamples=R, seed=0)
    assert estimate == np.mean(x) and replicates.shape == (R,)
    # The bootstrap SE converges to the plug-in sigma / sqrt(n) as R grows; a standard
    # deviation from R draws has relative SE 1/sqrt(2(R - 1)) = 1.6 %; 5 of them.
    expected = x.std() / math.sqrt(x.shape[0])
    assert abs(se / expected - 1) < 5 / math.sqrt(2 * (R - 1))


def test_bootstrap_resamples_groups_independently():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(300, generator=g, dtype=torch.float64).numpy()
    b = 3 * torch.randn(100, generator=g, dtype=torch.float64).numpy()
    R = 2000
    _, se, _ = criticality.bootstrap(
        (a, b), lambda u, v: u.mean() - v.mean(), n_resamples=R, seed=1
    )
    expected = math.sqrt(a.var() / a.shape[0] + b.var() / b.shape[0])
    assert abs(se / expected - 1) < 5 / math.sqrt(2 * (R - 1))  # as above


def test_bootstrap_is_reproducible_and_follows_the_seeding_rule():
    x = np.arange(10.0)
    one = criticality.bootstrap([x], np.mean, n_resamples=5, seed=4)
    two = criticality.bootstrap(
        [x], np.mean, n_resamples=5, generator=torch.Generator().manual_seed(4)
    )
    np.testing.assert_array_equal(one[2], two[2])
    with pytest.raises(TypeError, match="seed must be an integer >= 0"):
        criticality.bootstrap([x], np.mean)
    with pytest.raises(ValueError, match="seed must be None when a generator is given"):
        criticality.bootstrap([x], np.mean, seed=1, generator=torch.Generator())


def test_bootstrap_rejects_bad_input():
    with pytest.raises(TypeError, match="groups must be a list or tuple of arrays"):
        criticality.bootstrap(np.ones(4), np.mean, seed=0)
    with pytest.raises(ValueError, match="groups\\[0\\] must have at least 2 samples"):
        criticality.bootstrap([np.ones(1)], np.mean, seed=0)
    with pytest.raises(TypeError, match="estimator must be callable"):
        criticality.bootstrap([np.ones(4)], "mean", seed=0)
    with pytest.raises(ValueError, match="n_resamples must be an integer >= 2. Got 1 instead."):
        criticality.bootstrap([np.ones(4)], np.mean, n_resamples=1, seed=0)


def test_binder_crossing_of_sampled_scaling_distributions():
    # Two-peak samples z = s (1 + w eps) have U(w) = 1 - (1 + 6w^2 + 3w^4) / (3 (1 + w^2)^2),
    # decreasing in w. Let w depend on (T - 2.3) L so that U_8 and U_16 cross at T = 2.3.
    T = np.linspace(2.0, 2.6, 13)
    g = torch.Generator().manual_seed(5)

    def groups(L):
        out = []
        for t in T:
            w = math.exp(2.0 * (t - 2.3) * L / 8) * 0.5
            s = 2.0 * torch.randint(2, (4000,), generator=g).double() - 1.0
            out.append((s * (1 + w * torch.randn(4000, generator=g, dtype=torch.float64))).numpy())
        return out

    small, large = groups(8), groups(16)
    estimate, se = criticality.binder_crossing(T, small, large, n_resamples=100, seed=0)
    u = [np.array([criticality.binder_cumulant(z) for z in zs]) for zs in (small, large)]
    assert estimate == criticality.crossing_temperature(T, *u)
    # 0 < se, and the crossing within 5 bootstrap SEs (plus the O(h^2) interpolation error)
    assert 0 < se < 0.05
    assert abs(estimate - 2.3) < 5 * se + 2e-3
    with pytest.raises(ValueError, match="small must be a list of 13 arrays"):
        criticality.binder_crossing(T, small[:3], large, seed=0)
    # roles swapped: no crossing on the samples themselves
    with pytest.raises(ValueError, match="u_large - u_small must change sign"):
        criticality.binder_crossing(T, large, small, seed=0)


def test_binder_crossing_that_the_samples_do_not_resolve_raises():
    # Two small Gaussian samples a, b with U(a) > U(b) by chance: small = (b, a) and
    # large = (a, b) cross on the samples, but the order flips in many replicates.
    g = torch.Generator().manual_seed(8)
    a, b = (torch.randn(30, generator=g, dtype=torch.float64).numpy() for _ in range(2))
    if criticality.binder_cumulant(a) < criticality.binder_cumulant(b):
        a, b = b, a
    criticality.crossing_temperature(
        [2.2, 2.4], *[[criticality.binder_cumulant(z) for z in zs] for zs in ((b, a), (a, b))]
    )
    with pytest.raises(ValueError, match="must cross in every bootstrap replicate"):
        criticality.binder_crossing([2.2, 2.4], [b, a], [a, b], n_resamples=200, seed=0)


def test_by_temperature_and_ising_scan():
    temperatures = [1.5, 2.5, 3.5]
    x, T_of_row = criticality.ising_scan(4, temperatures, 6, seed=0)
    assert x.shape == (18, 16) and T_of_row.shape == (18,)
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    assert T_of_row.tolist() == [1.5] * 6 + [2.5] * 6 + [3.5] * 6
    x2, _ = criticality.ising_scan(4, temperatures, 6, seed=0)
    assert torch.equal(x, x2)
    means = criticality.by_temperature(np.mean, x.sum(1), T_of_row, temperatures)
    np.testing.assert_allclose(means, x.sum(1).reshape(3, 6).mean(1).numpy())
    with pytest.raises(ValueError, match="temperatures must all occur in T_of_row"):
        criticality.by_temperature(np.mean, x.sum(1), T_of_row, [2.0])
    with pytest.raises(ValueError, match="T_of_row must have the shape of values"):
        criticality.by_temperature(np.mean, x.sum(1), T_of_row[:3], temperatures)


def test_bootstrap_se_is_the_ddof_1_spread_of_replicates_drawn_by_the_definition():
    # Replicates recomputed by hand with the same generator stream: each group resampled
    # with replacement to its own size; the SE is sqrt(sum (r - mean)^2 / (R - 1)). With
    # R = 4 a ddof = 0 spread would be sqrt(3/4) = 0.87 of it.
    x = np.array([0.3, 1.7, -0.4, 2.2, 0.9])
    y = np.array([5.0, -1.0, 2.5])
    est, se, reps = criticality.bootstrap(
        [x, y], lambda a, b: a.mean() - b.max(), n_resamples=4, seed=11
    )
    g = torch.Generator().manual_seed(11)
    by_hand = []
    for _ in range(4):
        xs = x[torch.randint(5, (5,), generator=g).numpy()]
        ys = y[torch.randint(3, (3,), generator=g).numpy()]
        by_hand.append(xs.mean() - ys.max())
    by_hand = np.array(by_hand)
    np.testing.assert_allclose(reps, by_hand, rtol=0, atol=1e-15)
    assert est == x.mean() - y.max()
    mean = by_hand.sum() / 4
    assert se == pytest.approx(math.sqrt(((by_hand - mean) ** 2).sum() / 3), rel=1e-13)


def test_bootstrap_names_an_estimator_that_returns_an_array():
    with pytest.raises(TypeError, match="estimator must return one number"):
        criticality.bootstrap([np.ones(5)], lambda a: a, seed=0)
    # a one-element array or tensor is a number
    est, _, _ = criticality.bootstrap([np.ones(5)], lambda a: torch.tensor([a.sum()]), seed=0)
    assert est == 5.0


def test_by_temperature_matches_temperatures_with_a_tolerance():
    # Rows at 0.1 + 0.2 and at float32(0.3) belong to T = 0.3: exact float equality used to
    # drop them silently (here the mean would have been 1 instead of 2).
    values = np.array([1.0, 3.0, 2.0, 10.0])
    T_of_row = np.array([0.3, 0.1 + 0.2, float(np.float32(0.3)), 0.5])
    out = criticality.by_temperature(np.mean, values, T_of_row, [0.3, 0.5])
    np.testing.assert_array_equal(out, [2.0, 10.0])
    with pytest.raises(ValueError, match="temperatures must differ by more than"):
        criticality.by_temperature(np.mean, values, T_of_row, [0.3, 0.3 + 1e-9])
