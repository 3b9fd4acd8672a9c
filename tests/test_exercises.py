"""Every exercise's checker accepts its solution, reports a stub and catches each mistake.

The exercises are discovered from ``genphys.exercises.all_exercises()``, so a new
chapter's ``EXERCISES`` list is tested without editing this file. The ``test_oracle_*``
tests check every reference solution against the library or a brute-force computation
on inputs the checkers never use.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genphys import ais, ising, mcmc
from genphys.enumeration import binary_states
from genphys.exercises import (
    Exercise,
    Feedback,
    Mistake,
    all_exercises,
    ch02,
    ch03,
    ch04,
    ch05,
    ch06,
    ch07,
    ch09,
    ch10,
    ch11,
)
from genphys.rbm import log_likelihood_gradient_exact, log_partition_exact

CASES = [(chapter, ex) for chapter, exercises in all_exercises().items() for ex in exercises]
IDS = [f"{chapter}-{ex.name}" for chapter, ex in CASES]
MISTAKES = [(chapter, ex, i) for chapter, ex in CASES for i in range(len(ex.mistakes))]
MISTAKE_IDS = [f"{chapter}-{ex.name}-mistake{i}" for chapter, ex, i in MISTAKES]


def test_every_chapter_with_exercises_has_at_least_two():
    for chapter, exercises in all_exercises().items():
        assert len(exercises) >= 2, chapter


@pytest.mark.parametrize(("chapter", "exercise"), CASES, ids=IDS)
def test_solution_passes(chapter, exercise):
    feedback = exercise.check(exercise.solution)
    assert feedback.passed, str(feedback)


@pytest.mark.parametrize(("chapter", "exercise"), CASES, ids=IDS)
def test_stub_is_reported_not_implemented(chapter, exercise):
    feedback = exercise.check(exercise.stub())
    assert feedback.status == "not implemented"
    assert "Not implemented yet" in feedback.message


@pytest.mark.parametrize(("chapter", "exercise"), CASES, ids=IDS)
def test_every_exercise_has_a_mistake(chapter, exercise):
    assert len(exercise.mistakes) >= 1


@pytest.mark.parametrize(("chapter", "exercise", "index"), MISTAKES, ids=MISTAKE_IDS)
def test_each_mistake_is_rejected_with_its_own_hint(chapter, exercise, index):
    mistake = exercise.mistakes[index]
    feedback = exercise.check(mistake.answer)
    assert feedback.status == "incorrect", str(feedback)
    assert feedback.message == f"Hint: {mistake.hint}", str(feedback)


@pytest.mark.parametrize(("chapter", "exercise"), CASES, ids=IDS)
def test_check_never_raises_on_broken_functions(chapter, exercise):
    def raises(*args):
        raise ZeroDivisionError("boom")

    def returns_none(*args):
        return None

    def returns_text(*args):
        return "not a number"

    assert exercise.check(raises).status == "error"
    assert "ZeroDivisionError: boom" in exercise.check(raises).message
    assert exercise.check(returns_none).status == "incorrect"
    assert "forget `return`" in exercise.check(returns_none).message
    assert exercise.check(returns_text).status == "incorrect"
    assert exercise.check(42).status == "error"


def _square_exercise():
    return Exercise(
        name="square",
        solution=lambda v: v**2,
        cases=lambda: [(2.0,), (3.0,)],
        mistakes=(Mistake(lambda v: 2 * v, "square, do not double."),),
    )


def test_unknown_wrong_answer_reports_the_discrepancy():
    feedback = _square_exercise().check(lambda v: v**2 + 0.5)
    assert feedback.status == "incorrect"
    assert "differ from the reference by up to 0.5" in feedback.message


def test_non_finite_answer_is_reported_as_such():
    feedback = _square_exercise().check(lambda v: float("nan"))
    assert feedback.status == "incorrect"
    assert "NaN or infinite" in feedback.message


def test_wrong_shape_is_reported():
    feedback = _square_exercise().check(lambda v: [v**2, v**2])
    assert feedback.status == "incorrect"
    assert "shape" in feedback.message


def test_mistake_that_agrees_on_some_cases_is_still_found():
    # 2v equals v**2 at v = 2 (the first case): the hint must come from the second case.
    feedback = _square_exercise().check(lambda v: 2 * v)
    assert feedback.message == "Hint: square, do not double."


def test_feedback_rendering_and_assert_passed():
    ok = Feedback("square", "passed", "fine")
    bad = Feedback("square", "incorrect", "Hint: <b>")
    assert ok.assert_passed() is ok
    with pytest.raises(AssertionError, match="square: incorrect"):
        bad.assert_passed()
    assert "&lt;b&gt;" in bad._repr_html_()
    assert str(ok).startswith("✅")


# --------------------------------------------------------------------------------------
# Independent oracles: every reference solution agrees with the library or a brute-force
# computation on fresh random inputs, drawn here from seeds and sizes the checkers do not
# use. A solution that only matched its own checker's cases would fail here.
# --------------------------------------------------------------------------------------
ORACLE_SEEDS = [101, 202]


def _close(actual, expected, *, rtol=1e-10, atol=1e-12):
    torch.testing.assert_close(
        torch.as_tensor(actual, dtype=torch.float64),
        torch.as_tensor(expected, dtype=torch.float64),
        rtol=rtol,
        atol=atol,
    )


@pytest.mark.parametrize("seed", ORACLE_SEEDS)
def test_oracle_ch02(seed, make_rbm):
    rbm = make_rbm(5, 4, scale=2.0, seed=seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.bernoulli(torch.full((9, 5), 0.5, dtype=torch.float64), generator=g)
    h = torch.bernoulli(torch.full((9, 4), 0.5, dtype=torch.float64), generator=g)
    with torch.no_grad():
        _close(ch02.energy(x, h, rbm.W, rbm.a, rbm.b), rbm.energy(x, h))
        _close(ch02.log_partition_brute_force(rbm), log_partition_exact(rbm))
    # log-sum-exp: against math.fsum of exact exponentials, and at scales that overflow exp
    v = torch.randn(50, generator=g, dtype=torch.float64) * 3
    _close(ch02.logsumexp(v), math.log(math.fsum(math.exp(t) for t in v.tolist())))
    for shift in (800.0, -800.0):
        _close(ch02.logsumexp(v + shift), torch.logsumexp(v, 0) + shift, rtol=1e-14)


@pytest.mark.parametrize("seed", ORACLE_SEEDS)
def test_oracle_ch03(seed, make_rbm):
    rbm = make_rbm(6, 3, scale=1.5, seed=seed)
    x = binary_states(6)[seed % 7 :: 5]
    with torch.no_grad():
        _close(ch03.free_energy(rbm, x), rbm.free_energy(x))
        _close(ch03.prob_h_given_x(rbm, x), rbm.prob_h_given_x(x))
        # p(x) by summing the joint e^{-E(x, h)} over h, normalised by the exact Z
        xs, hs = binary_states(6), binary_states(3)
        minus_e = -rbm.energy(xs.repeat_interleave(8, 0), hs.repeat(64, 1)).reshape(64, 8)
        brute = torch.exp(torch.logsumexp(minus_e, 1) - log_partition_exact(rbm))
        _close(ch03.marginal_x(rbm), brute)


@pytest.mark.parametrize("seed", ORACLE_SEEDS)
def test_oracle_ch04(seed, make_rbm, make_binary_data):
    rbm = make_rbm(5, 4, scale=1.0, seed=seed)
    x = make_binary_data(17, 5, seed=seed)
    exact = log_likelihood_gradient_exact(rbm, x)
    for mine, lib in zip(ch04.positive_phase(rbm, x), exact.positive, strict=True):
        _close(mine, lib)
    for mine, lib in zip(ch04.negative_phase(rbm), exact.negative, strict=True):
        _close(mine, lib)
    for mine, lib in zip(ch04.log_likelihood_gradient(rbm, x), exact.gradient, strict=True):
        _close(mine, lib)
    step = ch04.gradient_ascent_step(rbm, x, 0.3)
    for new, p, d in zip(step, (rbm.W, rbm.a, rbm.b), exact.gradient, strict=True):
        _close(new, p.detach() + 0.3 * d)


@pytest.mark.parametrize("seed", ORACLE_SEEDS)
def test_oracle_ch05(seed):
    g = torch.Generator().manual_seed(seed)
    delta_e = torch.randn(40, generator=g, dtype=torch.float64) * 6
    expected = [min(1.0, math.exp(-0.7 * d)) for d in delta_e.tolist()]
    _close(ch05.metropolis_acceptance(delta_e, 0.7), expected)
    # Delta E of one flip: the library's energy_change and the difference of energies
    spins = 2.0 * torch.randint(2, (6, 5, 5), generator=g).double() - 1.0
    for i, j in ((0, 0), (4, 2), (3, 4)):
        flipped = spins.clone()
        flipped[:, i, j] *= -1
        _close(ch05.ising_delta_e(spins, i, j), ising.energy_change(spins)[:, i, j])
        _close(ch05.ising_delta_e(spins, i, j), ising.energy(flipped) - ising.energy(spins))
    # detailed balance: the library's exact MH kernel has none; a perturbed one, loops
    log_p = torch.randn(6, generator=g, dtype=torch.float64)
    P = mcmc.metropolis_hastings_matrix(log_p, torch.full((6, 6), 1 / 6, dtype=torch.float64))
    p = torch.softmax(log_p, 0)
    assert float(ch05.detailed_balance_violation(P, p)) < 1e-15
    Q = P.clone()
    Q[0, 1] += 0.01
    Q[0, 0] -= 0.01
    loops = max(abs(p[i] * Q[i, j] - p[j] * Q[j, i]) for i in range(6) for j in range(6))
    _close(ch05.detailed_balance_violation(Q, p), loops)
    # tau_int from rho: the same window sum as the library's estimator, written as a loop
    rho = mcmc.autocorrelation(torch.randn(2, 300, generator=g, dtype=torch.float64))
    for window in (1, 7, 40):
        _close(ch05.tau_int_from_rho(rho, window), 1 + 2 * sum(rho[1 : window + 1].tolist()))


@pytest.mark.parametrize("seed", ORACLE_SEEDS)
def test_oracle_ch06(seed, make_rbm, make_binary_data):
    rbm = make_rbm(7, 4, scale=1.0, seed=seed)
    x0 = make_binary_data(11, 7, seed=seed)
    x1 = make_binary_data(11, 7, seed=seed + 1)
    # CD-1 = gradient of mean(-F(x0)) - mean(-F(x1)), by autograd of the free energy
    params = [rbm.W, rbm.a, rbm.b]
    objective = -rbm.free_energy(x0).mean() + rbm.free_energy(x1).mean()
    auto = torch.autograd.grad(objective, params)
    with torch.no_grad():
        for mine, lib in zip(ch06.cd1_gradient(x0, x1, *params), auto, strict=True):
            _close(mine, lib)
    # AIS with two temperatures is importance sampling: the library's log-weights
    run = ais.ais_run(rbm, n_chains=13, n_temperatures=2, seed=seed)
    with torch.no_grad():
        _close(ch06.ais_log_weight(run.samples, *params), run.log_weights)
    data = make_binary_data(40, 7, p=0.2, seed=seed)
    data[:, 0] = 0.0  # a pixel never on: the clip keeps the bias finite
    from scipy.special import logit

    p = np.clip(data.mean(0).numpy(), 0.01, 0.99)
    _close(ch06.visible_bias_init(data, 0.01), logit(p))


@pytest.mark.parametrize("seed", ORACLE_SEEDS)
def test_oracle_ch07(seed):
    g = torch.Generator().manual_seed(seed)
    for L in (2, 3, 4):
        x = torch.randint(2, (8, L * L), generator=g).double()
        s = 2 * x - 1
        pairs = ising.bonds(L)
        by_bonds = -(s[:, pairs[:, 0]] * s[:, pairs[:, 1]]).sum(1)
        _close(ch07.ising_energy_from_bits(x, L), by_bonds)
    log_w_p = torch.randn(30, generator=g, dtype=torch.float64) * 2 + 400  # unnormalised
    log_w_q = torch.randn(30, generator=g, dtype=torch.float64) * 2 - 400
    p = np.exp(log_w_p.numpy() - np.logaddexp.reduce(log_w_p.numpy()))
    q = np.exp(log_w_q.numpy() - np.logaddexp.reduce(log_w_q.numpy()))
    _close(ch07.kl_from_log_weights(log_w_p, log_w_q), float(np.sum(p * np.log(p / q))))
    # specific heat of the exact 3x3 distribution, from a sample that has the exact
    # frequencies: c = beta^2 Var(E) / N equals exact_observables' value
    states = 2.0 * binary_states(9).reshape(-1, 3, 3) - 1.0
    energies = ising.energy(states)
    T = 2.0 + seed / 1000
    exact = ising.exact_observables(3, T)["specific_heat_per_spin"]
    p_states = torch.softmax(-energies / T, 0)
    mean = float(p_states @ energies)
    var = float(p_states @ (energies - mean) ** 2)
    _close((1 / T) ** 2 * var / 9, exact)
    sample = torch.randn(500, generator=g, dtype=torch.float64) * 3 - 20
    _close(ch07.specific_heat(sample, T, 9), np.var(sample.numpy()) / T**2 / 9)


@pytest.mark.parametrize("seed", ORACLE_SEEDS)
def test_oracle_ch09(seed):
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.standard_normal((60, 6)) @ rng.standard_normal((6, 6)))
    x_tilde = x + torch.from_numpy(rng.standard_normal((60, 6)))
    _close(ch09.mse_reconstruction_error(x, x_tilde), ((x - x_tilde) ** 2).numpy().sum(1).mean())
    for k in (1, 3):
        pca = PCA(n_components=k).fit(x.numpy())
        recon = pca.inverse_transform(pca.transform(x.numpy()))
        _close(ch09.pca_encode_decode(x, k), recon, rtol=1e-8, atol=1e-9)
        error = ((x.numpy() - recon) ** 2).sum(1).mean()  # mean squared distance, 1/n
        _close(ch09.pca_reconstruction_error(x, k), error, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("seed", ORACLE_SEEDS)
def test_oracle_ch10(seed):
    from torch.distributions import Bernoulli, MultivariateNormal, Normal, kl_divergence

    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(5, 3, generator=g, dtype=torch.float64)
    log_var = torch.randn(5, 3, generator=g, dtype=torch.float64)
    q, prior = Normal(mean, torch.exp(0.5 * log_var)), Normal(torch.zeros(()), torch.ones(()))
    _close(ch10.kl_gaussian(mean, log_var), kl_divergence(q, prior).sum(-1))
    x = torch.randint(2, (5, 8), generator=g).double()
    logits = torch.randn(5, 8, generator=g, dtype=torch.float64) * 50  # saturated logits
    _close(ch10.bernoulli_log_likelihood(x, logits), Bernoulli(logits=logits).log_prob(x).sum(-1))
    # With orthogonal columns of C the exact posterior is diagonal; at q = posterior the
    # ELBO equals log p(x) = log N(x; mu, C C^T + sigma2 I) exactly.
    D, d, sigma2 = 5, 2, 0.3
    C = torch.linalg.qr(torch.randn(D, d, generator=g, dtype=torch.float64))[0] * torch.tensor(
        [1.5, 0.7], dtype=torch.float64
    )
    mu = torch.randn(D, generator=g, dtype=torch.float64)
    x = torch.randn(4, D, generator=g, dtype=torch.float64)
    post_var = 1.0 / (1.0 + (C**2).sum(0) / sigma2)  # (d,)
    post_mean = (x - mu) @ C / sigma2 * post_var  # (4, d)
    log_px = MultivariateNormal(mu, C @ C.T + sigma2 * torch.eye(D, dtype=torch.float64)).log_prob(
        x
    )
    elbo = ch10.linear_gaussian_elbo(x, C, mu, sigma2, post_mean, post_var.expand(4, d))
    _close(elbo, log_px)


@pytest.mark.parametrize("seed", ORACLE_SEEDS)
def test_oracle_ch11(seed):
    from torch.distributions import Normal

    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(6, 3, generator=g, dtype=torch.float64)
    log_var = torch.randn(6, 3, generator=g, dtype=torch.float64)
    eps = torch.randn(6, 3, generator=g, dtype=torch.float64)
    # the quantile transform of N(m, e^l) applied to Phi(eps)
    std_normal_cdf = Normal(0.0, 1.0).cdf(eps)
    _close(
        ch11.reparameterize(mean, log_var, eps),
        Normal(mean, torch.exp(0.5 * log_var)).icdf(std_normal_cdf),
        rtol=1e-8,
        atol=1e-8,
    )
    log_w = torch.randn(7, 4, generator=g, dtype=torch.float64) * 5 + 900  # exp overflows
    expected = np.logaddexp.reduce(log_w.numpy(), axis=0) - math.log(7)
    _close(ch11.iwae_bound(log_w), expected)
    # score function: f(h) d/dm log N(h; m, e^l) at h = m + e^{l/2} eps, by autograd
    m = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    lv = torch.randn(3, generator=g, dtype=torch.float64)
    eps_s = torch.randn(5, 3, generator=g, dtype=torch.float64)
    f = torch.randn(5, generator=g, dtype=torch.float64)
    h = (m + torch.exp(0.5 * lv) * eps_s).detach()
    rows = []
    for s in range(5):
        log_q = Normal(m, torch.exp(0.5 * lv)).log_prob(h[s]).sum()
        rows.append(f[s] * torch.autograd.grad(log_q, m)[0])
    _close(ch11.score_function_gradient(f, eps_s, lv), torch.stack(rows))


def test_every_exercise_has_an_oracle():
    covered = {"ch02", "ch03", "ch04", "ch05", "ch06", "ch07", "ch09", "ch10", "ch11"}
    assert set(all_exercises()) <= covered, set(all_exercises()) - covered
