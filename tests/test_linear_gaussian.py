"""Tests for genphys.linear_gaussian: closed forms against oracles, estimators against closed forms.

Oracles: torch.distributions (marginal, posterior, KL), the central identity
log p(x) - KL(q || p(h|x)) = ELBO, and Monte Carlo with standard errors (SE) derived in
closed form or estimated from replicates; 5 SE puts the chance of a false failure of one
check near 6e-7 for Gaussian errors.
"""

from __future__ import annotations

import math

import pytest
import torch
from model_helpers import F64, gen, orthogonal_linear_model, random_linear_model
from torch.distributions import MultivariateNormal, kl_divergence

from genphys.linear_gaussian import LinearGaussianModel


# ------------------------------------------------------------ linear-Gaussian model
def test_log_marginal_and_posterior_match_independent_oracles():
    model = random_linear_model()
    x = model.sample(7, generator=gen(4))
    D = model.n_features
    cov = model.C @ model.C.T + model.sigma2 * torch.eye(D, dtype=F64)
    oracle = MultivariateNormal(model.mu, cov).log_prob(x)
    torch.testing.assert_close(model.log_marginal(x), oracle, rtol=1e-12, atol=1e-12)
    # Gaussian conditioning of the joint (h, x): mean C^T cov^-1 (x - mu), cov I - C^T cov^-1 C.
    gain = model.C.T @ torch.linalg.inv(cov)  # (d, D)
    mean, post_cov = model.posterior(x)
    torch.testing.assert_close(mean, (x - model.mu) @ gain.T, rtol=1e-10, atol=1e-12)
    eye = torch.eye(model.n_latent, dtype=F64)
    torch.testing.assert_close(post_cov, eye - gain @ model.C, rtol=1e-10, atol=1e-12)


def test_kl_to_posterior_matches_torch_distributions_oracle():
    model = random_linear_model()
    g = gen(5)
    x = model.sample(4, generator=g)
    q_mean = torch.randn(4, 3, generator=g, dtype=F64)
    q_var = torch.rand(4, 3, generator=g, dtype=F64) + 0.1
    post_mean, post_cov = model.posterior(x)
    oracle = kl_divergence(
        MultivariateNormal(q_mean, torch.diag_embed(q_var)), MultivariateNormal(post_mean, post_cov)
    )
    torch.testing.assert_close(model.kl_to_posterior(x, q_mean, q_var), oracle, rtol=1e-10, atol=0)


@pytest.mark.parametrize("full", [False, True])
def test_central_identity_log_p_minus_kl_equals_elbo(full):
    """log p(x) - KL(q || p(h|x)) = E_q[log p(x|h)] - KL(q || p(h)) for an arbitrary q."""
    model = random_linear_model(D=7, d=3)
    g = gen(6)
    x = torch.cat([model.sample(5, generator=g), 3 * torch.randn(3, 7, generator=g, dtype=F64)])
    q_mean = torch.randn(8, 3, generator=g, dtype=F64)
    if full:
        B = torch.randn(8, 3, 3, generator=g, dtype=F64)
        q = {"q_cov": B @ B.transpose(-1, -2) + 0.1 * torch.eye(3, dtype=F64)}
    else:
        q = {"q_var": torch.rand(8, 3, generator=g, dtype=F64) + 0.05}
    lhs = model.log_marginal(x) - model.kl_to_posterior(x, q_mean, **q)
    torch.testing.assert_close(model.elbo(x, q_mean, **q), lhs, rtol=0, atol=1e-10)
    assert torch.all(model.elbo(x, q_mean, **q) < model.log_marginal(x))


def test_elbo_equals_log_p_at_the_exact_posterior():
    # full covariance posterior of a generic model
    model = random_linear_model()
    x = model.sample(6, generator=gen(7))
    mean, cov = model.posterior(x)
    torch.testing.assert_close(
        model.elbo(x, mean, q_cov=cov), model.log_marginal(x), atol=1e-10, rtol=0
    )
    torch.testing.assert_close(
        model.kl_to_posterior(x, mean, q_cov=cov), torch.zeros(6, dtype=F64), atol=1e-10, rtol=0
    )
    # orthogonal columns: the posterior is diagonal, so a diagonal q reaches log p(x)
    ortho = orthogonal_linear_model()
    x = ortho.sample(6, generator=gen(8))
    mean, cov = ortho.posterior(x)
    torch.testing.assert_close(cov, torch.diag(torch.diagonal(cov)), atol=1e-14, rtol=0)
    elbo = ortho.elbo(x, mean, torch.diagonal(cov))
    torch.testing.assert_close(elbo, ortho.log_marginal(x), atol=1e-10, rtol=0)


def test_linear_model_samples_have_the_marginal_covariance():
    model = random_linear_model(D=4, d=2)
    n = 200_000
    x = model.sample(n, generator=gen(9))
    cov = model.C @ model.C.T + model.sigma2 * torch.eye(4, dtype=F64)
    # For Gaussian x the sample covariance entry (i, j) has variance
    # (S_ii S_jj + S_ij^2) / n and the sample mean has variance S_ii / n; 5 SE each.
    se_cov = torch.sqrt((torch.outer(cov.diagonal(), cov.diagonal()) + cov**2) / n)
    assert torch.all((torch.cov(x.T) - cov).abs() < 5 * se_cov)
    assert torch.all((x.mean(0) - model.mu).abs() < 5 * torch.sqrt(cov.diagonal() / n))


def test_estimated_elbo_agrees_with_closed_form():
    model = random_linear_model()
    g = gen(10)
    x = model.sample(3, generator=g)
    q_mean = torch.randn(3, 3, generator=g, dtype=F64)
    q_var = torch.rand(3, 3, generator=g, dtype=F64) + 0.1
    # SE from R independent single-sample estimates on repeated rows, then / sqrt(S).
    R = 20_000
    single = model.estimate_elbo(
        x.repeat(R, 1), q_mean.repeat(R, 1), q_var.repeat(R, 1), n_samples=1, generator=g
    ).reshape(R, 3)
    se = single.std(0) / math.sqrt(R)
    exact = model.elbo(x, q_mean, q_var)
    assert torch.all((single.mean(0) - exact).abs() < 5 * se)
    S = 20_000
    many = model.estimate_elbo(x, q_mean, q_var, n_samples=S, generator=g)
    assert torch.all((many - exact).abs() < 5 * single.std(0) / math.sqrt(S))


def test_importance_sampling_estimate_of_p_is_unbiased():
    """E[exp(L_k)] = p(x): the estimate of p(x) (not of log p(x)) is unbiased, any proposal."""
    model = random_linear_model(D=4, d=2, seed=1)
    x = model.sample(1, generator=gen(11))
    mean, cov = model.posterior(x)
    R = 4000
    log_p = model.log_marginal(x)
    for q in ({}, {"q_mean": mean + 0.3, "q_var": 1.5 * cov.diagonal()}):
        ratio = torch.exp(
            model.estimate_log_marginal(x.expand(R, -1), k=10, generator=gen(12), **q) - log_p
        )  # (R,) independent draws of p_hat / p
        se = ratio.std() / math.sqrt(R)  # 5 SE from the replicates
        assert abs(ratio.mean().item() - 1.0) < 5 * se.item()


def test_iwae_bounds_increase_with_k_and_approach_log_p():
    model = random_linear_model(D=4, d=2, seed=1)
    x = model.sample(1, generator=gen(13))
    mean, cov = model.posterior(x)
    q_mean, q_var = mean + 0.5, 2.0 * cov.diagonal()
    log_p = model.log_marginal(x).item()
    R = 2000  # independent replicates of L_k for each k
    means, ses = [], []
    for i, k in enumerate((1, 10, 100, 1000)):
        L = model.estimate_log_marginal(
            x.expand(R, -1), k=k, generator=gen(100 + i), q_mean=q_mean, q_var=q_var, chunk_size=300
        )
        means.append(L.mean().item())
        ses.append(L.std().item() / math.sqrt(R))
    # E[L_1] is the ELBO (5 SE)
    assert abs(means[0] - model.elbo(x, q_mean, q_var).item()) < 5 * ses[0]
    for k_index in range(3):
        gap = means[k_index + 1] - means[k_index]
        se_gap = math.hypot(ses[k_index], ses[k_index + 1])
        if k_index < 2:  # E[L_10] - E[L_1] ~ 1.7 and E[L_100] - E[L_10] ~ 0.17: > 5 SE
            assert gap > 5 * se_gap, (k_index, gap, se_gap)
        else:  # E[L_1000] - E[L_100] ~ 0.015 is about 3 SE here: no decrease beyond 5 SE
            assert gap > -5 * se_gap, (k_index, gap, se_gap)
        assert means[k_index + 1] < log_p + 5 * ses[k_index + 1]  # still a lower bound
    # log p - E[L_k] ~ Var[w/p] / (2k) shrinks like 1/k; Var[w/p] ~ 3 for this q, so at
    # k = 1000 the gap is ~0.0015: we allow 0.01 + 5 SE.
    assert log_p - means[-1] < 0.01 + 5 * ses[-1]


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("args", "error", "name"),
    [
        (([1.0, 2.0], [0.0, 0.0], 1.0), ValueError, "C"),
        (([[1.0], [2.0]], [0.0], 1.0), ValueError, "mu"),
        (([[1.0], [2.0]], [0.0, 0.0], 0.0), ValueError, "sigma2"),
        (([[1.0], [2.0]], [0.0, 0.0], "1"), TypeError, "sigma2"),
        (([[math.nan], [2.0]], [0.0, 0.0], 1.0), ValueError, "C"),
        ((torch.ones(2, 1), torch.zeros(2, dtype=F64), 1.0), TypeError, "mu"),
    ],
)
def test_bad_input_linear_model_constructor(args, error, name):
    with pytest.raises(error, match=name):
        LinearGaussianModel(*args)


X3 = torch.zeros(2, 3, dtype=F64)
M2 = torch.zeros(2, 2, dtype=F64)
V2 = torch.ones(2, 2, dtype=F64)


@pytest.mark.parametrize(
    ("method", "error", "name"),
    [
        (lambda m: m.log_marginal(torch.zeros(2, 4, dtype=F64)), ValueError, "x"),
        (lambda m: m.log_marginal(torch.zeros(3, dtype=F64)), ValueError, "x"),
        (lambda m: m.posterior([[math.nan] * 3]), ValueError, "x"),
        (lambda m: m.elbo(X3, M2, -V2), ValueError, "q_var"),
        (lambda m: m.elbo(X3, M2, torch.ones(3, dtype=F64)), ValueError, "q_var"),
        (lambda m: m.elbo(X3, M2), ValueError, "q_var"),
        (lambda m: m.elbo(X3, M2, V2, q_cov=torch.eye(2, dtype=F64)), ValueError, "q_cov"),
        (
            lambda m: m.elbo(X3, M2, q_cov=torch.tensor([[1.0, 0.5], [0.0, 1.0]], dtype=F64)),
            ValueError,
            "symmetric",
        ),
        (
            lambda m: m.elbo(X3, M2, q_cov=torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=F64)),
            ValueError,
            "definite",
        ),
        (lambda m: m.elbo(X3, M2, q_cov=torch.eye(3, dtype=F64)), ValueError, "q_cov"),
        (lambda m: m.elbo(X3, torch.zeros(3, 2, dtype=F64), V2), ValueError, "q_mean"),
        (lambda m: m.elbo(X3, M2.float(), V2), TypeError, "q_mean"),
        (lambda m: m.kl_to_posterior(X3, M2, 0 * V2), ValueError, "q_var"),
        (lambda m: m.kl_to_posterior(X3, [[math.inf, 0.0]], V2), ValueError, "q_mean"),
        (
            lambda m: m.estimate_elbo(X3, M2, V2, n_samples=0, generator=gen()),
            ValueError,
            "n_samples",
        ),
        (lambda m: m.estimate_elbo(X3, M2, -V2, n_samples=2, generator=gen()), ValueError, "q_var"),
        (lambda m: m.estimate_log_marginal(X3, k=0, generator=gen()), ValueError, "k"),
        (
            lambda m: m.estimate_log_marginal(X3, k=2, generator=gen(), q_mean=M2),
            ValueError,
            "q_var",
        ),
        (
            lambda m: m.estimate_log_marginal(X3, k=2, generator=gen(), chunk_size=0),
            ValueError,
            "chunk_size",
        ),
        (lambda m: m.estimate_log_marginal(X3, k=2, generator=3), TypeError, "generator"),
        (lambda m: m.sample(0, generator=gen()), ValueError, "n"),
        (lambda m: m.sample(2, generator="g"), TypeError, "generator"),
        (lambda m: m.log_p_x_given_h(X3, torch.zeros(3, 2, dtype=F64)), ValueError, "h"),
    ],
)
def test_bad_input_linear_model_methods(method, error, name):
    model = LinearGaussianModel(torch.ones(3, 2, dtype=F64), torch.zeros(3, dtype=F64), 0.5)
    with pytest.raises(error, match=name):
        method(model)
