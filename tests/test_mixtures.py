"""Gaussian mixtures: density, score and diffused marginals against independent oracles."""

from __future__ import annotations

import math

import pytest
import torch

from genphys.mixtures import GaussianMixture, ring
from genphys.seeding import make_generator


def _mixture() -> GaussianMixture:
    return GaussianMixture([0.2, 0.5, 0.3], [[-2.0, 0.0], [1.0, 1.0], [0.5, -1.5]], [0.4, 0.7, 1.1])


def test_log_prob_matches_a_sum_of_torch_distributions_densities():
    p = _mixture()
    x = torch.randn(50, 2, generator=make_generator(seed=0), dtype=torch.float64)
    brute = torch.zeros(50, dtype=torch.float64)
    for w, mu, s in zip(p.weights, p.means, p.stds, strict=True):
        dist = torch.distributions.MultivariateNormal(
            mu, covariance_matrix=s**2 * torch.eye(2, dtype=torch.float64)
        )
        brute += w * dist.log_prob(x).exp()
    torch.testing.assert_close(p.log_prob(x), brute.log(), rtol=1e-12, atol=1e-12)


def test_density_integrates_to_one_on_a_grid():
    from genphys.grid import Grid

    grid = Grid(-8, 8, 400)
    assert float(grid.log_partition(_mixture().log_prob(grid.points))) == pytest.approx(
        0.0, abs=1e-6
    )


def test_score_equals_autograd_of_log_prob():
    p = _mixture()
    x = torch.randn(
        20, 2, generator=make_generator(seed=1), dtype=torch.float64, requires_grad=True
    )
    (grad,) = torch.autograd.grad(p.log_prob(x).sum(), x)
    torch.testing.assert_close(p.score(x.detach()), grad, rtol=1e-10, atol=1e-12)


def test_diffused_mixture_is_the_law_of_the_noised_samples():
    # Moments of sqrt(ab) x + sqrt(1-ab) eps from 200,000 samples against the diffused
    # mixture's exact mean and covariance; tolerance 5 standard errors (SE = sqrt(var / n)).
    p, ab, n = _mixture(), 0.3, 200_000
    g = make_generator(seed=2)
    x = p.sample(n, generator=g)
    noised = math.sqrt(ab) * x + math.sqrt(1 - ab) * torch.randn(
        n, 2, generator=g, dtype=torch.float64
    )
    q = p.diffused(ab)
    cov = q.covariance()
    se_mean = torch.sqrt(torch.diag(cov) / n)
    assert bool((torch.abs(noised.mean(0) - q.mean()) < 5 * se_mean).all())
    # SE of a sample variance of a non-Gaussian variable: sqrt((m4 - var^2) / n), estimated.
    centred = noised - noised.mean(0)
    var = centred.var(0)
    se_var = torch.sqrt(((centred**4).mean(0) - var**2) / n)
    assert bool((torch.abs(var - torch.diag(cov)) < 5 * se_var).all())


def test_score_at_step_t_uses_the_cumulative_product_of_the_schedule():
    p = _mixture()
    betas = torch.linspace(1e-4, 0.02, 100, dtype=torch.float64)
    x = torch.randn(10, 2, generator=make_generator(seed=3), dtype=torch.float64)
    ab = float(torch.prod(1 - betas[:40]))
    torch.testing.assert_close(p.score(x, 40, betas), p.diffused(ab).grad_log_prob(x))
    torch.testing.assert_close(p.score(x, 0, betas), p.grad_log_prob(x))
    with pytest.raises(ValueError, match="t must be an integer in 0 ... 100"):
        p.score(x, 101, betas)
    with pytest.raises(ValueError, match="betas must be given"):
        p.score(x, 3)
    with pytest.raises(ValueError, match=r"betas must lie in \(0, 1\)"):
        p.score(x, 1, torch.tensor([0.5, 1.0]))


def test_samples_have_the_exact_mixture_weights():
    # Component membership of ring samples (modes 2 apart, std 0.1: overlap below 1e-20) is
    # binomial; 5 binomial standard errors.
    p, n = ring(4, radius=1.0, std=0.1), 40_000
    x = p.sample(n, seed=4)
    counts = torch.bincount(p.responsibilities(x).argmax(1), minlength=4).double()
    se = math.sqrt(n * 0.25 * 0.75)
    assert bool((torch.abs(counts - n / 4) < 5 * se).all())


def test_sampling_is_seeded():
    p = _mixture()
    assert torch.equal(p.sample(10, seed=5), p.sample(10, seed=5))
    with pytest.raises(TypeError, match="neither a seed nor a generator"):
        p.sample(10)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (([0.5, 0.6], [[0.0], [1.0]], [1.0, 1.0]), "sum to 1"),
        (([1.0], [[0.0]], [0.0]), "stds must be positive"),
        (([0.5, 0.5], [[0.0]], [1.0, 1.0]), "same number"),
        (([1.0], [0.0], [1.0]), "means must be a tensor with 2"),
    ],
)
def test_bad_parameters_name_the_argument(args, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(*args)


def test_points_of_the_wrong_dimension_are_refused():
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\)"):
        _mixture().log_prob(torch.zeros(3, 3, dtype=torch.float64))


def test_covariance_of_a_mixture_far_from_the_origin_is_the_definition():
    # Both components sit near (10, -5): without the - E[x] E[x]^T term the "covariance"
    # would be off by ~(10, -5)(10, -5)^T. Exact oracle: the law of total covariance written
    # out, sum_k w_k [s_k^2 I + (mu_k - m)(mu_k - m)^T] with m = sum_k w_k mu_k.
    w = torch.tensor([0.3, 0.7], dtype=torch.float64)
    mu = torch.tensor([[10.0, -5.0], [11.0, -4.0]], dtype=torch.float64)
    s = torch.tensor([0.5, 2.0], dtype=torch.float64)
    q = GaussianMixture(w, mu, s)
    m = (w[:, None] * mu).sum(0)
    oracle = sum(
        w[k] * (s[k] ** 2 * torch.eye(2, dtype=torch.float64) + torch.outer(mu[k] - m, mu[k] - m))
        for k in range(2)
    )
    torch.testing.assert_close(q.covariance(), oracle, rtol=1e-12, atol=1e-12)
