"""Diffusion models: forward process, posterior, ELBO, scores and samplers against exact references."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from scipy import stats

from genphys import diffusion as D
from genphys.diffusion import GaussianMixture
from genphys.diffusion_samplers import (
    ddim_sample,
    ddpm_sample,
    probability_flow_sample,
    sampling_steps,
)
from genphys.fitting import TrainingDivergedError
from genphys.seeding import make_generator

F64 = torch.float64


def _schedule(T: int = 1000) -> torch.Tensor:
    return D.linear_schedule(T)


def _mixture() -> GaussianMixture:
    return GaussianMixture([0.2, 0.5, 0.3], [[-2.5, 0.0], [1.5, 1.5], [1.0, -2.0]], [0.4, 0.5, 0.3])


# ------------------------------------------------------------------ schedules
def test_linear_schedule_endpoints_and_alpha_bar():
    b = D.linear_schedule(1000, 1e-4, 0.02)
    assert b.dtype == F64 and b.shape == (1000,)
    assert float(b[0]) == pytest.approx(1e-4) and float(b[-1]) == pytest.approx(0.02)
    ab = D.alpha_bar(b)
    torch.testing.assert_close(ab[9], torch.prod(1 - b[:10]), rtol=1e-14, atol=0)
    assert float(ab[-1]) == pytest.approx(4.04e-5, rel=0.01)


def test_cosine_schedule_follows_its_closed_form_before_clipping():
    T, s = 200, 0.008
    ab = D.alpha_bar(D.cosine_schedule(T, s))
    t = torch.arange(1, T + 1, dtype=F64)
    f = lambda u: torch.cos(0.5 * math.pi * (u / T + s) / (1 + s)) ** 2
    want = f(t) / f(torch.zeros(1, dtype=F64))
    torch.testing.assert_close(ab[: T - 5], want[: T - 5], rtol=1e-10, atol=1e-12)


def test_short_schedule_is_reported_with_alpha_bar_and_its_square_root():
    with pytest.warns(D.IncompleteNoisingWarning) as record:
        b = D.linear_schedule(300, 1e-4, 0.02)
    ab_T = float(D.alpha_bar(b)[-1])
    message = str(record[0].message)
    assert f"{ab_T:.4g}" in message and f"{math.sqrt(ab_T):.3g}" in message
    assert 0.04 < ab_T < 0.06  # the course's T = 300: about 22 % of the amplitude survives
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        D.linear_schedule(1000)  # 4e-5: no warning
        D.cosine_schedule(100)


def test_sampling_from_pure_noise_with_a_short_schedule_warns():
    with pytest.warns(D.IncompleteNoisingWarning):
        b = D.linear_schedule(10, 1e-3, 0.02)
    with pytest.warns(D.IncompleteNoisingWarning):
        ddim_sample(lambda x, t: torch.zeros_like(x), b, (3, 2), n_steps=5, seed=0)


# ------------------------------------------------------------------ forward process
def test_forward_chain_reproduces_the_closed_form_marginal():
    # n independent chains from fixed x_0 = (1.5, -0.7): after t steps the mean, variance and
    # law must be N(sqrt(ab) x_0, 1 - ab). Tolerances: 5 standard errors (SE of a mean
    # sqrt(var/n), of a variance var*sqrt(2/(n-1))); the KS statistic against the 0.1 %
    # critical value 1.95/sqrt(n).
    b = D.cosine_schedule(60)
    n = 40_000
    x0 = torch.tensor([1.5, -0.7], dtype=F64).expand(n, 2).clone()
    g = make_generator(seed=0)
    x = x0
    for t in range(1, 61):
        x = D.forward_step(x, t, b, generator=g)
        if t in (1, 7, 30, 60):
            mean, var = D.forward_marginal(x0, t, b)
            v = float(var)
            assert bool((torch.abs(x.mean(0) - mean[0]) < 5 * math.sqrt(v / n)).all())
            assert bool((torch.abs(x.var(0) - v) < 5 * v * math.sqrt(2 / (n - 1))).all())
            z = ((x[:, 0] - mean[0, 0]) / math.sqrt(v)).numpy()
            assert stats.kstest(z, "norm").statistic < 1.95 / math.sqrt(n)


def test_diffuse_with_per_row_steps_matches_forward_marginal():
    b = _schedule()
    x0 = torch.randn(5, 3, generator=make_generator(seed=1), dtype=F64)
    t = torch.tensor([1, 10, 500, 999, 1000])
    xt, eps = D.diffuse(x0, t, b, seed=2)
    mean, var = D.forward_marginal(x0, t, b)
    assert var.shape == (5, 1)
    torch.testing.assert_close(xt, mean + var.sqrt() * eps, rtol=1e-14, atol=1e-14)
    for i in range(5):
        m_i, v_i = D.forward_marginal(x0[i : i + 1], int(t[i]), b)
        torch.testing.assert_close(mean[i : i + 1], m_i)
        assert float(var[i, 0]) == pytest.approx(float(v_i), rel=1e-14)


@pytest.mark.parametrize("t", [2, 3, 40, 100])
def test_forward_posterior_is_bayes_rule_on_a_grid(t):
    # q(x_{t-1} | x_t, x_0) ∝ q(x_t | x_{t-1}) q(x_{t-1} | x_0), integrated on a fine 1D grid.
    b = D.cosine_schedule(100)
    x0, xt = 0.8, -0.3
    ab = D.alpha_bar(b)
    ab_prev = 1.0 if t == 1 else float(ab[t - 2])
    beta = float(b[t - 1])
    grid = torch.linspace(-8, 8, 400_001, dtype=F64)
    log_w = -0.5 * (xt - math.sqrt(1 - beta) * grid) ** 2 / beta
    log_w = log_w - 0.5 * (grid - math.sqrt(ab_prev) * x0) ** 2 / (1 - ab_prev)
    w = torch.softmax(log_w, 0)
    grid_mean = float((w * grid).sum())
    grid_var = float((w * (grid - grid_mean) ** 2).sum())
    mean, var = D.forward_posterior(
        torch.tensor([[xt]], dtype=F64), torch.tensor([[x0]], dtype=F64), t, b
    )
    assert float(mean) == pytest.approx(grid_mean, abs=1e-7)
    assert float(var) == pytest.approx(grid_var, rel=1e-5)


# ------------------------------------------------------------------ ELBO on Gaussian data
def _gaussian_data(n: int, s: float = 0.6):
    m = torch.tensor([0.5, -1.0], dtype=F64)
    p = GaussianMixture([1.0], m[None], [s])
    return p, p.sample(n, seed=11)


def test_elbo_with_the_exact_reverse_kernels_is_log_likelihood_minus_prior_mismatch():
    # E_x0[ELBO] = E_x0[log p(x0)] - KL(q_T || N(0, I)) when every reverse kernel is exact.
    # A short schedule (alpha_bar_T = 0.37) makes the prior mismatch large; tolerance 5 SE of
    # the mean over data points of ELBO - log p.
    with pytest.warns(D.IncompleteNoisingWarning):
        b = D.linear_schedule(50, 1e-3, 0.04)
    s = 0.6
    p, x0 = _gaussian_data(4000, s)
    eps = D.eps_from_score(D.mixture_score(p, b), b)
    exact = D.exact_reverse_variances(b, s**2)
    terms = D.diffusion_elbo(eps, x0, b, variances=exact, seed=0)
    gap = terms.elbo - p.log_prob(x0)  # (n,)
    qT = p.diffused(float(D.alpha_bar(b)[-1]))
    v = float(qT.stds[0]) ** 2
    kl_T = 0.5 * (2 * (v - 1 - math.log(v)) + float((qT.means[0] ** 2).sum()))
    se = float(gap.std()) / math.sqrt(gap.shape[0])
    assert float(gap.mean()) == pytest.approx(-kl_T, abs=5 * se)
    assert float(gap.mean()) + 5 * se < 0  # the ELBO is below the log-likelihood


def test_elbo_approaches_the_log_likelihood_as_the_reverse_model_becomes_exact():
    # T = 1000: the prior mismatch is ~1e-5 nats. The ELBO of the exact kernels equals
    # log p within 5 SE; the default variances (beta tilde) and perturbed noise predictions
    # lie below it, the perturbation costs exactly ||delta||^2 sum_t lambda_t (elbo_weights),
    # because E[eps - eps* | x_t] = 0. Common random numbers (same seed) make differences precise.
    b = _schedule(1000)
    s = 0.6
    p, x0 = _gaussian_data(400, s)
    eps = D.eps_from_score(D.mixture_score(p, b), b)
    exact = D.exact_reverse_variances(b, s**2)
    log_p = p.log_prob(x0)
    best = D.diffusion_elbo(eps, x0, b, variances=exact, seed=3)
    gap = best.elbo - log_p
    se = float(gap.std()) / math.sqrt(gap.shape[0])
    assert abs(float(gap.mean())) < 5 * se + 1e-4
    default = D.diffusion_elbo(eps, x0, b, seed=3).elbo - log_p
    assert float(default.mean()) < float(gap.mean()) - 5 * se
    delta = torch.tensor([0.1, -0.05], dtype=F64)
    lam = D.elbo_weights(b, exact)
    for scale in (1.0, 2.0):
        shifted = lambda x, t, scale=scale: eps(x, t) + scale * delta
        worse = D.diffusion_elbo(shifted, x0, b, variances=exact, seed=3)
        drop = (best.elbo - worse.elbo).mean()
        want = float((scale * delta).pow(2).sum() * lam.sum())
        spread = float((best.elbo - worse.elbo).std()) / math.sqrt(x0.shape[0])
        assert float(drop) == pytest.approx(want, abs=5 * spread + 1e-9)


def test_elbo_terms_have_the_documented_shapes_and_exact_prior_term():
    b = D.cosine_schedule(20)
    _, x0 = _gaussian_data(7)
    terms = D.diffusion_elbo(lambda x, t: torch.zeros_like(x), x0, b, n_samples=3, seed=0)
    assert terms.reconstruction.shape == (7,) and terms.prior_matching.shape == (7,)
    assert terms.consistency.shape == (7, 19)
    assert bool((terms.consistency >= 0).all()) and bool((terms.prior_matching >= 0).all())
    ab_T = float(D.alpha_bar(b)[-1])
    want = 0.5 * (2 * (1 - ab_T - 1 - math.log(1 - ab_T)) + ab_T * (x0**2).sum(1))
    torch.testing.assert_close(terms.prior_matching, want, rtol=1e-10, atol=1e-12)


def test_elbo_weights_match_the_posterior_kl_in_terms_of_the_noise():
    # ||mu~ - mu_theta||^2 / (2 sigma^2) = lambda_t ||eps - eps_theta||^2, value by value.
    b = D.cosine_schedule(50)
    lam = D.elbo_weights(b)
    var = D.reverse_variances(b)
    g = make_generator(seed=4)
    x0 = torch.randn(6, 3, generator=g, dtype=F64)
    guess = torch.randn(6, 3, generator=g, dtype=F64)
    for t in (2, 25, 50):
        xt, eps = D.diffuse(x0, t, b, generator=g)
        tilde_mu, _ = D.forward_posterior(xt, x0, t, b)
        mu = D.reverse_mean(xt, guess, t, b)
        lhs = ((tilde_mu - mu) ** 2).sum(1) / (2 * var[t - 1])
        torch.testing.assert_close(lhs, lam[t - 1] * ((eps - guess) ** 2).sum(1))


# ------------------------------------------------------------------ scores
def test_mixture_score_equals_autograd_of_the_noised_log_density():
    b = _schedule()
    p = _mixture()
    score = D.mixture_score(p, b)
    g = make_generator(seed=5)
    t = torch.tensor([1, 50, 300, 800, 1000, 50])
    x = torch.randn(6, 2, generator=g, dtype=F64) * 2
    got = score(x, t)
    for i in range(6):
        q = p.diffused(float(D.alpha_bar(b)[t[i] - 1]))
        xi = x[i : i + 1].clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(q.log_prob(xi).sum(), xi)
        torch.testing.assert_close(got[i : i + 1], grad, rtol=1e-10, atol=1e-12)
    eps = D.eps_from_score(score, b)
    back = D.score_from_eps(eps, b)
    torch.testing.assert_close(back(x, t), got, rtol=1e-12, atol=1e-12)


def test_tweedie_exact_eps_is_the_conditional_mean_of_the_noise():
    # For Gaussian data E[eps | x_t] is linear in x_t; compare eps* with a least-squares fit of
    # the drawn eps on x_t (n = 100,000; tolerance 5 SE of the fitted values).
    b = _schedule()
    p, _ = _gaussian_data(1)
    t = 300
    x0 = p.sample(100_000, seed=6)
    xt, eps = D.diffuse(x0, t, b, seed=7)
    design = torch.cat([xt, torch.ones(xt.shape[0], 1, dtype=F64)], 1)
    coef = torch.linalg.lstsq(design, eps).solution
    probe = torch.tensor([[0.0, 0.0], [1.0, -1.0]], dtype=F64)
    fitted = torch.cat([probe, torch.ones(2, 1, dtype=F64)], 1) @ coef
    exact = D.eps_from_score(D.mixture_score(p, b), b)(probe, t)
    resid = eps - design @ coef
    se = float(resid.std()) / math.sqrt(x0.shape[0]) * 3  # probes within ~3 data std
    torch.testing.assert_close(fitted, exact, rtol=0, atol=5 * se)


def test_denoising_score_matching_recovers_the_linear_score_of_gaussian_data():
    # DSM is a least-squares problem in (A, c) for s(x) = A x + c; its minimiser for data
    # N(m, C) is A = -(C + sigma^2 I)^-1, c = (C + sigma^2 I)^-1 m. Tolerance: 5 OLS standard
    # errors, sqrt(residual variance * diag((X^T X)^-1)).
    n, sigma = 100_000, 0.5
    m = torch.tensor([1.0, -0.5], dtype=F64)
    L = torch.tensor([[1.0, 0.0], [0.6, 0.5]], dtype=F64)
    C = L @ L.T
    x0 = m + torch.randn(n, 2, generator=make_generator(seed=8), dtype=F64) @ L.T
    A = torch.zeros(2, 2, dtype=F64, requires_grad=True)
    c = torch.zeros(2, dtype=F64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [A, c], max_iter=200, tolerance_grad=1e-12, line_search_fn="strong_wolfe"
    )

    def closure():
        opt.zero_grad()
        loss = D.denoising_score_matching_loss(lambda x: x @ A.T + c, x0, sigma, seed=9)
        loss.backward()
        return loss

    opt.step(closure)
    want_A = -torch.linalg.inv(C + sigma**2 * torch.eye(2, dtype=F64))
    want_c = -want_A @ m
    noisy = x0 + sigma * torch.randn(n, 2, generator=make_generator(seed=9), dtype=F64)
    design = torch.cat([noisy, torch.ones(n, 1, dtype=F64)], 1)
    resid = (-(noisy - x0) / sigma**2) - (noisy @ A.detach().T + c.detach())
    cov = torch.linalg.inv(design.T @ design)
    se = torch.sqrt(resid.var(0)[None, :] * torch.diag(cov)[:, None])  # (3, 2)
    assert bool((torch.abs(A.detach().T - want_A.T) < 5 * se[:2]).all())
    assert bool((torch.abs(c.detach() - want_c) < 5 * se[2]).all())


# ------------------------------------------------------------------ samplers with the exact score
def _component_fractions(p: GaussianMixture, x: torch.Tensor) -> torch.Tensor:
    k = p.responsibilities(x).argmax(1)
    return torch.bincount(k, minlength=p.n_components).to(F64) / x.shape[0]


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "ode"])
def test_samplers_driven_by_the_exact_score_reproduce_the_mixture(sampler):
    # Weights: 5 SE of a binomial fraction (plus the overlap of the components, 0.3 %).
    # Mean: 5 SE, sqrt(var / n). Covariance entries: 5 SE of the sample covariance (from
    # the fourth moments estimated on exact samples) plus the discretisation bias of the
    # 200/100-step deterministic samplers, measured below 0.02.
    b = _schedule()
    p = _mixture()
    eps = D.eps_from_score(D.mixture_score(p, b), b)
    n = 3000
    if sampler == "ddpm":
        x = ddpm_sample(eps, b, (n, 2), seed=10)
    elif sampler == "ddim":
        x = ddim_sample(eps, b, (n, 2), n_steps=200, seed=10)
    else:
        x = probability_flow_sample(eps, b, (n, 2), n_steps=100, seed=10)
    w = p.weights
    frac = _component_fractions(p, x)
    frac_exact = _component_fractions(p, p.sample(200_000, seed=1))
    assert bool((torch.abs(frac - frac_exact) < 5 * torch.sqrt(w * (1 - w) / n)).all())
    cov = p.covariance()
    assert bool((torch.abs(x.mean(0) - p.mean()) < 5 * torch.sqrt(torch.diag(cov) / n)).all())
    ref = p.sample(200_000, seed=2)
    centred = ref - ref.mean(0)
    prods = centred[:, :, None] * centred[:, None, :]  # (N, 2, 2)
    se_cov = prods.std(0) / math.sqrt(n)
    bias = 0.0 if sampler == "ddpm" else 0.02
    assert bool((torch.abs(torch.cov(x.T) - cov) < 5 * se_cov + bias).all())


def test_ddim_with_eta_one_and_all_steps_is_ancestral_sampling():
    # eta = 1 on every step gives sigma^2 = beta tilde: the DDPM update with the same noise.
    b = D.cosine_schedule(30)
    p = _mixture()
    eps = D.eps_from_score(D.mixture_score(p, b), b)
    x_T = torch.randn(50, 2, generator=make_generator(seed=12), dtype=F64)
    a = ddim_sample(eps, b, n_steps=30, eta=1.0, x_T=x_T, seed=13)
    c = ddpm_sample(eps, b, x_T=x_T, seed=13)
    torch.testing.assert_close(a, c, rtol=1e-9, atol=1e-9)


def test_deterministic_samplers_converge_to_each_other_with_more_steps():
    # DDIM (Euler) and the ODE (Heun) integrate the same flow: from the same x_T their
    # endpoints agree better as the steps grow; Heun is closer to the 1000-step answer.
    b = _schedule()
    eps = D.eps_from_score(D.mixture_score(_mixture(), b), b)
    x_T = torch.randn(200, 2, generator=make_generator(seed=14), dtype=F64)
    fine = ddim_sample(eps, b, n_steps=1000, x_T=x_T)
    errors = {}
    for k in (10, 40):
        errors[("ddim", k)] = float(
            (ddim_sample(eps, b, n_steps=k, x_T=x_T) - fine).norm(dim=1).mean()
        )
        errors[("ode", k)] = float(
            (probability_flow_sample(eps, b, n_steps=k, x_T=x_T) - fine).norm(dim=1).mean()
        )
    assert errors[("ddim", 40)] < errors[("ddim", 10)]
    assert errors[("ode", 40)] < errors[("ode", 10)]
    assert errors[("ode", 40)] < errors[("ddim", 40)]


def test_sampling_steps_are_decreasing_from_T_to_1():
    s = sampling_steps(1000, 50)
    assert s.shape == (50,) and int(s[0]) == 1000 and int(s[-1]) == 1
    assert bool((s[1:] < s[:-1]).all())
    with pytest.raises(ValueError, match="n_steps must be at most T"):
        sampling_steps(10, 11)


def test_samplers_stop_on_a_non_finite_noise_prediction():
    b = _schedule(1000)
    bad = lambda x, t: torch.full_like(x, math.nan) if t < 500 else torch.zeros_like(x)
    with pytest.raises(FloatingPointError, match="step t = 499"):
        ddpm_sample(bad, b, (4, 2), seed=0)
    with pytest.raises(ValueError, match="eps_model must return a tensor of the shape"):
        ddim_sample(lambda x, t: x[:, :1], b, (4, 2), n_steps=5, seed=0)


# ------------------------------------------------------------------ networks and training
def test_networks_are_seeded_and_have_the_right_shapes():
    a = D.MLPNoisePredictor(2, 100, hidden=16, seed=0)
    c = D.MLPNoisePredictor(2, 100, hidden=16, seed=0)
    x = torch.randn(5, 2, generator=make_generator(seed=1))
    torch.testing.assert_close(a(x, 7), c(x, 7))
    assert a(x, torch.tensor([1, 2, 3, 4, 100])).shape == (5, 2)
    conv = D.ConvNoisePredictor(100, channels=4, seed=0, circular=True)
    assert conv(torch.zeros(3, 1, 8, 8), 5).shape == (3, 1, 8, 8)
    with pytest.raises(ValueError, match="t must lie in 1 ... 100"):
        a(x, torch.tensor([0, 1, 2, 3, 4]))


def test_trained_network_loss_sits_above_the_exact_floor():
    # Same seeds give the same (t, eps) draws for the network and for the exact eps*, so the
    # difference estimates E||eps_theta - eps*||^2 / D >= 0; 20 batches give its SE.
    b = D.cosine_schedule(100)
    p = _mixture()
    x = p.sample(2000, seed=15).float()
    model = D.MLPNoisePredictor(2, 100, hidden=64, seed=16)
    exact = D.eps_from_score(D.mixture_score(p, b), b)
    with torch.no_grad():
        gap_before = float(D.simple_loss(model, x, b, seed=99)) - float(
            D.simple_loss(exact, x.double(), b, seed=99)
        )
    history = D.train_diffusion(
        model, x, b, n_epochs=15, batch_size=128, learning_rate=3e-3, seed=17
    )
    assert len(history) == 15 and history["loss"][-1] < history["loss"][0]
    x64 = x.double()
    diffs = []
    with torch.no_grad():
        for s in range(20):
            net = float(D.simple_loss(lambda z, t: model(z.float(), t).double(), x64, b, seed=s))
            floor = float(D.simple_loss(exact, x64, b, seed=s))
            diffs.append(net - floor)
    diffs = torch.tensor(diffs, dtype=F64)
    se = float(diffs.std()) / math.sqrt(len(diffs))
    assert float(diffs.mean()) > -3 * se
    assert float(diffs.mean()) < 0.2 * gap_before  # most of what can be learnt was learnt


def test_training_stops_on_a_non_finite_parameter():
    b = D.cosine_schedule(10)
    model = D.MLPNoisePredictor(2, 10, hidden=8, seed=0)
    with torch.no_grad():
        model.out.bias[0] = math.nan
    with pytest.raises(TrainingDivergedError, match="diverged at epoch 1"):
        D.train_diffusion(model, torch.zeros(10, 2), b, n_epochs=2, seed=0)


# ------------------------------------------------------------------ seeding and errors
def test_same_seed_same_draws_and_one_source_of_randomness():
    b = D.cosine_schedule(10)
    x0 = torch.zeros(4, 2, dtype=F64)
    torch.testing.assert_close(D.diffuse(x0, 3, b, seed=1), D.diffuse(x0, 3, b, seed=1))
    with pytest.raises(ValueError, match="seed must be None when a generator is given"):
        D.diffuse(x0, 3, b, seed=1, generator=make_generator(seed=1))
    with pytest.raises(TypeError, match="seed must be an integer"):
        D.forward_step(x0, 1, b)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda b, x: D.forward_posterior(x, x, 1, b), "t must be an integer in 2 ... 10"),
        (lambda b, x: D.forward_marginal(x, 11, b), "t must be an integer in 1 ... 10"),
        (lambda b, x: D.forward_marginal(x, 2.0, b), "t must be an integer"),
        (lambda b, x: D.diffuse(x, torch.tensor([1, 2]), b, seed=0), r"t must have shape \(4,\)"),
        (lambda b, x: D.forward_posterior(x, x[:, :1], 3, b), "x_0 must have the shape of x_t"),
        (lambda b, x: D.alpha_bar(torch.tensor([0.1, 1.0])), r"betas must lie in \(0, 1\)"),
        (lambda b, x: D.alpha_bar(torch.tensor([0.1, 0.0])), r"betas must lie in \(0, 1\)"),
        (lambda b, x: D.alpha_bar(torch.ones(2, 2) / 2), "betas must have 1 dimensions"),
        (lambda b, x: D.linear_schedule(0), "T must be an integer >= 1"),
        (lambda b, x: D.linear_schedule(10, 0.1, 1.5), r"beta_end must lie in \(0, 1\)"),
        (lambda b, x: D.forward_marginal(torch.zeros(3), 1, b), r"x_0 must have shape \(n, ...\)"),
        (lambda b, x: D.elbo_weights(b, torch.ones(3)), "variances must be 10 positive numbers"),
        (
            lambda b, x: D.denoising_score_matching_loss(lambda z: z, x, -1.0, seed=0),
            "sigma must be",
        ),
        (lambda b, x: D.reverse_mean(x, x[:, :1], 2, b), "eps must have the shape of x_t"),
        (lambda b, x: D.predict_x0([[0.0]], x, 2, b), "x_t must be a floating tensor"),
        (lambda b, x: D.sinusoidal_embedding(torch.ones(3), 10, 5), "dim must be even"),
        (lambda b, x: D.MLPNoisePredictor(2, 10, seed=0)(x[:, :1], 1), r"x must have shape"),
    ],
)
def test_bad_input_gives_a_clear_error(call, message):
    b = D.cosine_schedule(10)
    x = torch.zeros(4, 2, dtype=F64)
    with pytest.raises((ValueError, TypeError), match=message):
        call(b, x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_everything_follows_the_device_of_the_inputs():
    b = D.cosine_schedule(50)
    x = torch.randn(64, 2, device="cuda", generator=make_generator(seed=0, device="cuda"))
    model = D.MLPNoisePredictor(2, 50, hidden=16, seed=0).cuda()
    history = D.train_diffusion(model, x, b, n_epochs=2, seed=0)
    assert len(history) == 2
    out = ddpm_sample(model, b, (8, 2), dtype=torch.float32, device="cuda", seed=0)
    assert out.device.type == "cuda"
    out = probability_flow_sample(
        model, b, (8, 2), n_steps=5, dtype=torch.float32, device="cuda", seed=0
    )
    assert out.device.type == "cuda"


def test_one_minus_alpha_bar_has_no_cancellation_for_tiny_betas():
    # 1 - prod(1 - beta) in float64 loses about 1e-16 / beta of relative precision; the
    # library sums log1p and uses expm1, so it matches the exact t * beta (1 + O(beta)).
    b = torch.full((5,), 1e-12, dtype=F64)
    _, var = D.forward_marginal(torch.zeros(1, 1, dtype=F64), 5, b)
    assert float(var) == pytest.approx(5e-12, rel=1e-10)
    _, tilde = D.forward_posterior(torch.zeros(1, 1, dtype=F64), torch.zeros(1, 1, dtype=F64), 5, b)
    assert float(tilde) == pytest.approx(4 / 5 * 1e-12, rel=1e-10)


# ------------------------------------------------------- hostile input, named clearly
def _net32():
    return D.MLPNoisePredictor(2, 10, hidden=8, n_layers=1, seed=0)  # float32 by default


def test_samplers_follow_the_network_dtype_and_refuse_a_conflicting_one():
    # The samplers used to default to float64 whatever the network: a raw dtype error on
    # the obvious first call with a float32 network. Now they sample in its dtype.
    net, b = _net32(), D.cosine_schedule(10)
    assert ddpm_sample(net, b, (4, 2), seed=0).dtype == torch.float32
    assert ddim_sample(net, b, (4, 2), n_steps=3, seed=0).dtype == torch.float32
    assert probability_flow_sample(net, b, (4, 2), n_steps=3, seed=0).dtype == torch.float32
    with pytest.raises(TypeError, match=r"dtype must match the dtype of eps_model's parameters"):
        ddpm_sample(net, b, (4, 2), dtype=torch.float64, seed=0)
    with pytest.raises(TypeError, match=r"x_T must match the dtype of eps_model's parameters"):
        ddim_sample(net, b, x_T=torch.zeros(4, 2, dtype=torch.float64), n_steps=3)
    with pytest.raises(TypeError, match=r"x must have the dtype of the network's parameters"):
        net(torch.zeros(4, 2, dtype=torch.float64), 3)


def test_sampler_shape_must_be_a_tuple():
    with pytest.raises(TypeError, match=r"shape must be a tuple \(n, \.\.\.\).*Got 5"):
        ddpm_sample(lambda x, t: torch.zeros_like(x), D.cosine_schedule(10), 5, seed=0)


def test_deterministic_samplers_refuse_seed_and_generator_with_x_T():
    eps, b, x_T = (lambda x, t: torch.zeros_like(x)), D.cosine_schedule(10), torch.zeros(3, 2)
    x_T = x_T.double()
    with pytest.raises(ValueError, match="seed must be None when a generator is given"):
        ddim_sample(eps, b, x_T=x_T, n_steps=3, seed=0, generator=torch.Generator())
    with pytest.raises(ValueError, match="seed and generator must be None when x_T is given"):
        probability_flow_sample(eps, b, x_T=x_T, n_steps=3, seed=0, generator=torch.Generator())


def test_a_bool_step_and_a_parameterless_model_are_refused():
    b = D.cosine_schedule(10)
    x = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"t must hold integers"):
        D.forward_marginal(x, torch.tensor(True), b)
    with pytest.raises(ValueError, match="model must have at least one parameter"):
        D.train_diffusion(torch.nn.Identity(), x, b, n_epochs=1, seed=0)
