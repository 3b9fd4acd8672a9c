"""Tests for genphys.gaussian: the Gaussian KL, log-densities and log-mean-exp.

Oracles: torch.distributions (KL, log-densities), Monte Carlo with a standard error derived
in closed form, and float64 brute force (log-mean-exp).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from genphys.gaussian import (
    estimate_kl_diagonal_gaussian_standard_normal,
    kl_diagonal_gaussian_standard_normal,
    log_mean_exp,
    log_mean_exp_chunked,
    log_normal_diagonal,
    log_standard_normal,
)

F64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------ KL
def test_kl_matches_torch_distributions_oracle():
    g = gen(1)
    mean = torch.randn(6, 3, generator=g, dtype=F64)
    log_var = torch.randn(6, 3, generator=g, dtype=F64)
    ours = kl_diagonal_gaussian_standard_normal(mean, log_var)
    q = MultivariateNormal(mean, torch.diag_embed(torch.exp(log_var)))
    p = MultivariateNormal(torch.zeros(3, dtype=F64), torch.eye(3, dtype=F64))
    torch.testing.assert_close(ours, kl_divergence(q, p), rtol=1e-12, atol=1e-12)
    assert kl_diagonal_gaussian_standard_normal(torch.zeros(3), torch.zeros(3)).item() == 0.0


def test_kl_monte_carlo_agrees_with_analytic_within_derived_se():
    g = gen(2)
    mean = torch.randn(5, 3, generator=g, dtype=F64)
    log_var = 0.5 * torch.randn(5, 3, generator=g, dtype=F64)
    S = 200_000
    estimate = estimate_kl_diagonal_gaussian_standard_normal(
        mean, log_var, n_samples=S, generator=gen(3)
    )
    exact = kl_diagonal_gaussian_standard_normal(mean, log_var)
    # log q - log p = sum_j [(m_j^2 - l_j)/2 + m_j s_j e_j + (s_j^2 - 1) e_j^2 / 2], e ~ N(0, 1);
    # Var[e] = 1, Var[e^2] = 2, Cov[e, e^2] = 0, so the variance per draw is
    # sum_j [m_j^2 s_j^2 + (s_j^2 - 1)^2 / 2] and SE = sqrt(variance / S). We allow 5 SE.
    s2 = torch.exp(log_var)
    se = torch.sqrt((mean**2 * s2 + 0.5 * (s2 - 1) ** 2).sum(-1) / S)
    assert torch.all((estimate - exact).abs() < 5 * se), (estimate - exact) / se


def test_log_mean_exp_is_stable_and_exact():
    log_w = torch.tensor([[1000.0, -1000.0], [1000.0, -1000.0 + math.log(3)]], dtype=F64)
    out = log_mean_exp(log_w, dim=0)
    torch.testing.assert_close(out, torch.tensor([1000.0, -1000.0 + math.log(2)], dtype=F64))
    small = torch.tensor([0.1, -0.3, 0.7], dtype=F64)
    torch.testing.assert_close(log_mean_exp(small), torch.log(torch.exp(small).mean()))
    assert log_mean_exp(torch.tensor([-math.inf, 0.0])).item() == pytest.approx(-math.log(2))


def test_log_mean_exp_on_a_middle_axis_matches_float64_brute_force():
    # float64 brute force: log of the mean of exp, fine for moderate values
    log_w = torch.randn(3, 7, 4, generator=gen(4), dtype=F64) * 3
    expected = torch.log(torch.exp(log_w).mean(dim=1))  # (3, 4)
    np.testing.assert_allclose(log_mean_exp(log_w, dim=1), expected, rtol=1e-13)
    np.testing.assert_allclose(
        log_mean_exp(log_w, dim=-1), torch.log(torch.exp(log_w).mean(-1)), rtol=1e-13
    )
    # shifted by 5000 the brute force overflows; log-mean-exp shifts exactly
    np.testing.assert_allclose(log_mean_exp(log_w + 5000, dim=1), expected + 5000, rtol=1e-15)


@pytest.mark.parametrize(("k", "chunk_size"), [(10, 3), (10, 10), (10, 25), (1, 1)])
def test_chunked_log_mean_exp_equals_all_at_once(k, chunk_size):
    log_w = torch.randn(k, 5, generator=gen(k), dtype=F64) * 50  # weights over 100 orders
    drawn = iter(log_w.split(chunk_size))
    out = log_mean_exp_chunked(lambda c: next(drawn), k, chunk_size=chunk_size)
    np.testing.assert_allclose(out, log_mean_exp(log_w, dim=0), rtol=1e-14)


def test_log_densities_match_torch_distributions():
    g = gen(6)
    h, mean = torch.randn(4, 3, generator=g, dtype=F64), torch.randn(4, 3, generator=g, dtype=F64)
    log_var = torch.randn(4, 3, generator=g, dtype=F64)
    expected = Normal(mean, torch.exp(0.5 * log_var)).log_prob(h).sum(-1)
    np.testing.assert_allclose(log_normal_diagonal(h, mean, log_var), expected, rtol=1e-13)
    np.testing.assert_allclose(
        log_standard_normal(h), Normal(0.0, 1.0).log_prob(h).sum(-1), rtol=1e-13
    )


def test_chunked_log_mean_exp_bad_input():
    with pytest.raises(TypeError, match="draw_log_weights"):
        log_mean_exp_chunked(3, 4, chunk_size=2)
    with pytest.raises(ValueError, match="draw_log_weights"):
        log_mean_exp_chunked(lambda c: torch.zeros(c + 1, 2), 4, chunk_size=2)
    with pytest.raises(ValueError, match="k"):
        log_mean_exp_chunked(lambda c: torch.zeros(c, 2), 0, chunk_size=2)


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda: kl_diagonal_gaussian_standard_normal([0.0, 1.0], [0.0]), ValueError, "log_var"),
        (lambda: kl_diagonal_gaussian_standard_normal([math.nan], [0.0]), ValueError, "mean"),
        (lambda: kl_diagonal_gaussian_standard_normal("a", [0.0]), TypeError, "mean"),
        (lambda: log_mean_exp(torch.zeros(3), dim=1), ValueError, "dim"),
        (lambda: log_mean_exp(torch.tensor([0.0, math.nan])), ValueError, "log_w"),
        (lambda: log_mean_exp(torch.tensor([0.0, math.inf])), ValueError, "log_w"),
    ],
)
def test_bad_input(call, error, name):
    with pytest.raises(error, match=name):
        call()
