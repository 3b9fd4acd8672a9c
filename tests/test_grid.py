"""Quadrature on a grid against closed forms: log Z, KL and JSD of Gaussians, histograms."""

from __future__ import annotations

import math

import pytest
import torch

from genphys.grid import Grid, js_divergence, kl_divergence
from genphys.mixtures import GaussianMixture


def test_log_partition_of_a_gaussian_energy_matches_the_closed_form():
    # E(x) = |x|^2 / (2 s^2): Z = 2 pi s^2 in 2D, sqrt(2 pi) s in 1D.
    s = 0.8
    g2 = Grid(-8, 8, 300)
    g1 = Grid(-8, 8, 300, dim=1)
    log_f2 = -(g2.points**2).sum(1) / (2 * s**2)
    log_f1 = -(g1.points**2).sum(1) / (2 * s**2)
    assert float(g2.log_partition(log_f2)) == pytest.approx(math.log(2 * math.pi * s**2), abs=1e-6)
    assert float(g1.log_partition(log_f1)) == pytest.approx(
        0.5 * math.log(2 * math.pi) + math.log(s), abs=1e-6
    )
    assert float(g2.cell_probabilities(log_f2).sum()) == pytest.approx(1.0, abs=1e-12)


def test_kl_of_two_gaussians_matches_the_closed_form():
    # KL(N(0, a^2) || N(m, b^2)) in 1D = log(b/a) + (a^2 + m^2) / (2 b^2) - 1/2.
    a, b, m = 0.7, 1.3, 0.5
    grid = Grid(-12, 12, 4000, dim=1)
    x = grid.points[:, 0]
    p = grid.cell_probabilities(-(x**2) / (2 * a**2))
    q = grid.cell_probabilities(-((x - m) ** 2) / (2 * b**2))
    exact = math.log(b / a) + (a**2 + m**2) / (2 * b**2) - 0.5
    assert kl_divergence(p, q) == pytest.approx(exact, abs=1e-6)


def test_js_divergence_is_symmetric_bounded_and_zero_only_for_equal_distributions():
    p = torch.tensor([0.5, 0.5, 0.0, 0.0], dtype=torch.float64)
    q = torch.tensor([0.0, 0.0, 0.3, 0.7], dtype=torch.float64)
    assert js_divergence(p, q) == pytest.approx(math.log(2), abs=1e-12)  # disjoint supports
    assert kl_divergence(p, q) == math.inf
    r = torch.tensor([0.1, 0.4, 0.3, 0.2], dtype=torch.float64)
    assert js_divergence(p, r) == pytest.approx(js_divergence(r, p), abs=1e-15)
    assert js_divergence(r, r) == 0.0
    assert 0 < js_divergence(p, r) < math.log(2)


def test_histogram_of_exact_samples_converges_to_the_discretised_density():
    # Sampling noise of the JSD between a histogram of n samples and the truth is about
    # (n_cells_with_mass) / (8 n) nats (a chi-square with that many degrees of freedom / 8n);
    # with about 400 occupied cells and n = 200,000 it is ~ 2.5e-4; we allow 4x that.
    p = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.5]], [0.4, 0.6])
    grid = Grid(-4, 4, 40)
    hist, outside = grid.histogram(p.sample(200_000, seed=0))
    truth = grid.cell_probabilities(p.log_prob(grid.points))
    assert outside < 1e-3
    assert js_divergence(hist, truth) < 1e-3
    wrong = grid.cell_probabilities(p.diffused(0.5).log_prob(grid.points))
    assert js_divergence(hist, wrong) > 10 * js_divergence(hist, truth)


def test_histogram_counts_points_outside_the_box():
    grid = Grid(0, 1, 2, dim=1)
    hist, outside = grid.histogram(
        torch.tensor([[0.25], [0.75], [0.8], [2.0]], dtype=torch.float64)
    )
    assert hist.tolist() == [0.25, 0.5] and outside == 0.25


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"low": 1, "high": 0, "n_points": 10}, ValueError, "high must be larger than low"),
        ({"low": 0, "high": 1, "n_points": 1}, ValueError, "n_points"),
        ({"low": 0, "high": 1, "n_points": 10, "dim": 3}, ValueError, "dim must be 1 or 2"),
        ({"low": "a", "high": 1, "n_points": 10}, TypeError, "low must be a finite number"),
    ],
)
def test_bad_grids_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        Grid(**kwargs)


def test_values_of_the_wrong_length_are_refused():
    with pytest.raises(ValueError, match=r"log_f must have shape \(100,\)"):
        Grid(0, 1, 10).log_partition(torch.zeros(99, dtype=torch.float64))


def test_a_density_with_no_mass_on_the_grid_is_refused():
    # all -inf used to give NaN probabilities and a log Z of -inf without a word
    grid = Grid(-1.0, 1.0, 4)
    nothing = torch.full((grid.n_cells,), -math.inf, dtype=torch.float64)
    for method in (grid.cell_probabilities, grid.log_partition, grid.log_density):
        with pytest.raises(ValueError, match="log_f must be finite on at least one cell"):
            method(nothing)
