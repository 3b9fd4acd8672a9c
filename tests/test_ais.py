"""Tests for genphys.ais: annealed importance sampling of log Z, checked by enumeration."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genphys.ais import (
    MIN_ESS_FRACTION,
    AISEstimate,
    AISWeightWarning,
    ais_run,
    importance_estimate,
    linear_betas,
    log_likelihood_ais,
    log_partition_ais,
    log_partition_base,
)
from genphys.rbm import BernoulliRBM, log_likelihood_exact, log_partition_exact


@pytest.fixture
def random_rbm(make_rbm):
    """``random_rbm(seed, n_visible=12, n_hidden=8, scale=1.0)``: W ~ N(0, scale^2), biases ~ N(-0.5, 1)."""

    def build(seed, n_visible=12, n_hidden=8, scale=1.0):
        return make_rbm(
            n_visible, n_hidden, scale=scale, seed=seed, bias_scale=1.0, bias_shift=-0.5
        )

    return build


def exact_log_z(rbm: BernoulliRBM) -> float:
    with torch.no_grad():
        return float(log_partition_exact(rbm))


def unnormalised_log_p(rbm: BernoulliRBM, x: torch.Tensor, beta: float, a0: torch.Tensor):
    """log p*_beta(x), written out independently of the library."""
    with torch.no_grad():
        visible = x @ ((1 - beta) * a0 + beta * rbm.a)
        return visible + F.softplus(beta * (x @ rbm.W + rbm.b)).sum(-1)


# ------------------------------------------------------------------- accuracy
def test_ais_agrees_with_exact_log_z_within_error_bars(random_rbm):
    # Ten independent AIS runs on a 12 x 8 RBM whose log Z is enumerated exactly. Each
    # z = (log Z_hat - log Z) / SE is approximately N(0, 1) (bias -SE^2/2 is negligible
    # for SE ~ 0.01). We allow |z| < 4 for every run (probability of a false alarm
    # about 10 x 6e-5) and require the mean z to lie within 4 / sqrt(10) of 0 and the
    # spread of z to be sane (an SE underestimated tenfold would give std(z) ~ 10).
    rbm = random_rbm(0)
    log_z = exact_log_z(rbm)
    zs, ses = [], []
    for seed in range(10):
        estimate, se, _ess = log_partition_ais(rbm, n_chains=200, n_temperatures=300, seed=seed)
        zs.append((float(estimate) - log_z) / float(se))
        ses.append(float(se))
    zs = np.array(zs)
    assert np.all(np.abs(zs) < 4), zs
    assert abs(zs.mean()) < 4 / math.sqrt(10), zs
    assert 0.2 < zs.std(ddof=1) < 3.0, zs
    assert max(ses) < 0.05


def test_se_shrinks_with_more_temperatures(random_rbm):
    rbm = random_rbm(1, scale=1.5)
    with pytest.warns(AISWeightWarning):  # 10 temperatures: ESS 15 of 200
        few = log_partition_ais(rbm, n_chains=200, n_temperatures=10, seed=0).standard_error
    many = log_partition_ais(rbm, n_chains=200, n_temperatures=400, seed=0).standard_error
    assert float(many) < 0.5 * float(few)


def test_estimate_is_logmeanexp_of_weights_and_se_is_delta_method(random_rbm):
    rbm = random_rbm(2)
    run = ais_run(rbm, n_chains=50, n_temperatures=20, seed=3)
    log_w = run.log_weights.numpy()
    n = log_w.shape[0]
    expected = float(run.log_z_base) + np.log(np.mean(np.exp(log_w)))
    w = np.exp(log_w)
    expected_se = w.std(ddof=1) / (math.sqrt(n) * w.mean())
    estimate, se, _ess = run.estimate
    np.testing.assert_allclose(float(estimate), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(float(se), expected_se, rtol=1e-10)
    assert 1.0 <= run.effective_sample_size <= n


def test_estimate_is_stable_for_huge_log_weights(random_rbm):
    # log Z ~ 2000: exp(log w) would overflow float64 without the shift by max(log w).
    rbm = random_rbm(4, n_visible=10, n_hidden=6, scale=0.2)
    with torch.no_grad():
        rbm.b += 300.0
    estimate, se, _ess = log_partition_ais(rbm, n_chains=100, n_temperatures=50, seed=0)
    assert math.isfinite(float(estimate)) and math.isfinite(float(se))
    assert abs(float(estimate) - exact_log_z(rbm)) < 4 * float(se) + 1e-9


def test_log_likelihood_ais_matches_exact(random_rbm):
    rbm = random_rbm(5)
    data = torch.bernoulli(
        torch.full((30, 12), 0.4, dtype=torch.float64), generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        exact = float(log_likelihood_exact(rbm, data))
    estimate, se, _ess = log_likelihood_ais(rbm, data, n_chains=200, n_temperatures=300, seed=1)
    # one run: 4 SE (SE ~ 0.01 here; see the z-score test for the calibration)
    assert abs(float(estimate) - exact) < 4 * float(se)
    assert isinstance(
        log_likelihood_ais(rbm, data, n_chains=2, n_temperatures=2, seed=0), AISEstimate
    )


# ------------------------------------------------------- two temperatures = IS
def test_two_temperatures_is_plain_importance_sampling(random_rbm):
    # With betas = (0, 1) there is no Gibbs move: x ~ p_0 and w = p*_1(x) / p*_0(x).
    rbm = random_rbm(6)
    run = ais_run(rbm, n_chains=4000, n_temperatures=2, seed=0)
    x = run.samples
    assert x.shape == (4000, 12)
    expected = unnormalised_log_p(rbm, x, 1.0, rbm.a) - unnormalised_log_p(rbm, x, 0.0, rbm.a)
    np.testing.assert_allclose(run.log_weights.numpy(), expected.numpy(), rtol=0, atol=1e-12)
    # the draws are exact base samples: each bit is Bernoulli(sigmoid(a_i)); with 4000 draws
    # the SE of a bit frequency is sqrt(p(1-p)/4000) <= 7.9e-3; we allow 5 SE.
    p = torch.sigmoid(rbm.a.detach())
    se = torch.sqrt(p * (1 - p) / 4000)
    assert bool(((x.mean(0) - p).abs() < 5 * se).all())
    # and the estimate is the independent importance-sampling formula
    log_z0 = float(F.softplus(rbm.a.detach()).sum()) + rbm.n_hidden * math.log(2)
    is_estimate = log_z0 + float(torch.logsumexp(expected, 0)) - math.log(4000)
    with pytest.warns(AISWeightWarning, match="effective sample size"):  # ESS 33 of 4000
        estimate = run.estimate
    np.testing.assert_allclose(float(estimate.estimate), is_estimate, rtol=0, atol=1e-10)


def test_custom_base_bias_changes_the_weights_consistently(random_rbm):
    rbm = random_rbm(7)
    a0 = torch.zeros(12, dtype=torch.float64)
    run = ais_run(rbm, n_chains=3000, n_temperatures=2, seed=1, base_visible_bias=a0)
    x = run.samples
    expected = unnormalised_log_p(rbm, x, 1.0, a0) - unnormalised_log_p(rbm, x, 0.0, a0)
    np.testing.assert_allclose(run.log_weights.numpy(), expected.numpy(), rtol=0, atol=1e-12)
    # base draws with a0 = 0 are fair coins: SE of a frequency = 0.5 / sqrt(3000) = 9.1e-3
    assert float((x.mean(0) - 0.5).abs().max()) < 5 * 0.5 / math.sqrt(3000)
    # annealing with a visible-bias path is also unbiased: 4 SE
    estimate, se, _ess = log_partition_ais(
        rbm, n_chains=200, n_temperatures=300, seed=2, base_visible_bias=a0
    )
    assert abs(float(estimate) - exact_log_z(rbm)) < 4 * float(se)


def test_log_partition_base_is_exact_for_w_zero():
    a0 = torch.linspace(-2, 2, 7, dtype=torch.float64)
    base = BernoulliRBM.from_parameters(
        torch.zeros(7, 5, dtype=torch.float64), a0, torch.zeros(5, dtype=torch.float64)
    )
    with torch.no_grad():
        exact = float(log_partition_exact(base))
    np.testing.assert_allclose(float(log_partition_base(5, a0)), exact, rtol=1e-13)


def test_custom_betas_and_linear_betas(random_rbm):
    betas = linear_betas(5)
    np.testing.assert_allclose(betas.numpy(), [0, 0.25, 0.5, 0.75, 1.0])
    rbm = random_rbm(8)
    uneven = torch.cat([torch.linspace(0, 0.5, 50), torch.linspace(0.5, 1, 200)[1:]]).double()
    run = ais_run(rbm, n_chains=200, betas=uneven, seed=0)
    assert torch.equal(run.betas, uneven)
    estimate, se, _ess = run.estimate
    assert abs(float(estimate) - exact_log_z(rbm)) < 4 * float(se)


def test_same_seed_same_estimate_and_generator_accepted(random_rbm):
    rbm = random_rbm(9)
    one = log_partition_ais(rbm, n_chains=20, n_temperatures=30, seed=11)
    two = log_partition_ais(rbm, n_chains=20, n_temperatures=30, seed=11)
    three = log_partition_ais(
        rbm, n_chains=20, n_temperatures=30, generator=torch.Generator().manual_seed(11)
    )
    assert float(one.estimate) == float(two.estimate) == float(three.estimate)


@pytest.mark.cuda
def test_ais_runs_on_cuda(random_rbm):
    rbm = random_rbm(10).to("cuda")
    estimate, se, _ess = log_partition_ais(rbm, n_chains=200, n_temperatures=300, seed=0)
    assert estimate.device.type == "cuda"
    assert abs(float(estimate) - exact_log_z(rbm)) < 4 * float(se)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"n_chains": 1, "seed": 0}, ValueError, "n_chains"),
        ({"n_chains": 2.5, "seed": 0}, TypeError, "n_chains"),
        ({"n_temperatures": 1, "seed": 0}, ValueError, "n_temperatures"),
        ({}, TypeError, "seed"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 0, "generator": torch.Generator()}, ValueError, "seed"),
        ({"generator": "rng"}, TypeError, "generator"),
        (
            {"seed": 0, "base_visible_bias": torch.zeros(3, dtype=torch.float64)},
            ValueError,
            "base_visible_bias",
        ),
        (
            {"seed": 0, "base_visible_bias": torch.zeros(12, dtype=torch.float32)},
            TypeError,
            "base_visible_bias",
        ),
        (
            {"seed": 0, "base_visible_bias": torch.full((12,), math.nan, dtype=torch.float64)},
            ValueError,
            "base_visible_bias",
        ),
    ],
)
def test_log_partition_ais_bad_input(kwargs, error, name, random_rbm):
    with pytest.raises(error, match=name):
        log_partition_ais(random_rbm(0), **{"n_temperatures": 3, **kwargs})


@pytest.mark.parametrize(
    ("betas", "name"),
    [
        ([0.1, 1.0], "betas"),
        ([0.0, 0.9], "betas"),
        ([0.0, 0.6, 0.4, 1.0], "non-decreasing"),
        ([1.0], "betas"),
        ([[0.0, 1.0]], "betas"),
    ],
)
def test_ais_run_bad_betas(betas, name, random_rbm):
    with pytest.raises(ValueError, match=name):
        ais_run(random_rbm(0), n_chains=2, betas=torch.tensor(betas, dtype=torch.float64), seed=0)


def test_ais_rejects_non_rbm_and_non_finite_parameters(random_rbm):
    with pytest.raises(TypeError, match="rbm"):
        log_partition_ais("rbm", seed=0)
    rbm = random_rbm(0)
    with torch.no_grad():
        rbm.W[0, 0] = math.nan
    with pytest.raises(ValueError, match="W"):
        log_partition_ais(rbm, seed=0)


@pytest.mark.parametrize(
    ("data", "error", "name"),
    [
        (torch.full((4, 12), 0.5, dtype=torch.float64), ValueError, "data"),
        (torch.zeros(4, 11, dtype=torch.float64), ValueError, "data"),
        (torch.zeros(12, dtype=torch.float64), ValueError, "data"),
        (torch.zeros(4, 12, dtype=torch.float32), TypeError, "data"),
    ],
)
def test_log_likelihood_ais_bad_data(data, error, name, random_rbm):
    with pytest.raises(error, match=name):
        log_likelihood_ais(random_rbm(0), data, n_chains=2, n_temperatures=2, seed=0)


@pytest.mark.parametrize(
    ("args", "error", "name"),
    [
        ((0, torch.zeros(3)), ValueError, "n_hidden"),
        ((2, torch.zeros(3, 2)), ValueError, "base_visible_bias"),
        ((2, "a"), TypeError, "base_visible_bias"),
    ],
)
def test_log_partition_base_bad_input(args, error, name):
    with pytest.raises(error, match=name):
        log_partition_base(*args)


def test_linear_betas_bad_input():
    with pytest.raises(ValueError, match="n_temperatures"):
        linear_betas(1)


# ------------------------------------------------------ effective sample size
def test_uniform_weights_give_ess_equal_to_the_number_of_chains():
    # Kish's ESS (sum w)^2 / sum w^2 equals n exactly when all weights are equal, at any
    # scale of log w (the shift by the maximum must not change it).
    for log_w in (0.0, -700.0, 1e4):
        est = importance_estimate(torch.full((37,), log_w, dtype=torch.float64), 1.5)
        assert est.effective_sample_size == 37.0
        assert float(est.standard_error) == 0.0
        np.testing.assert_allclose(float(est.estimate), 1.5 + log_w, rtol=1e-15)


def test_ess_of_one_dominant_weight_is_one_and_warns():
    log_w = torch.cat([torch.zeros(1), torch.full((19,), -800.0)]).double()
    with pytest.warns(AISWeightWarning, match=r"effective sample size 1.0 of 20"):
        est = importance_estimate(log_w)
    assert est.effective_sample_size == pytest.approx(1.0, abs=1e-12)


def test_hard_model_warns_and_its_standard_error_misleads(random_rbm):
    # |W| ~ 50 on a 24 x 12 RBM with 20 temperatures: one particle carries all the weight.
    # Before the warning existed this run was 18 nats off the exact log Z with a reported
    # standard error of 1.0 and no sign of trouble (the ESS, 1.0, was dropped).
    rbm = random_rbm(12, n_visible=24, n_hidden=12, scale=50.0)
    with pytest.warns(AISWeightWarning) as record:
        est = log_partition_ais(rbm, n_chains=64, n_temperatures=20, seed=0)
    assert est.effective_sample_size < MIN_ESS_FRACTION * 64
    assert f"{est.effective_sample_size:.1f} of 64" in str(record[0].message)


def test_well_mixed_run_reports_a_large_ess_without_warning(random_rbm):
    rbm = random_rbm(0)
    est = log_partition_ais(rbm, n_chains=200, n_temperatures=300, seed=0)  # no warning
    assert MIN_ESS_FRACTION * 200 <= est.effective_sample_size <= 200
    run = ais_run(rbm, n_chains=200, n_temperatures=300, seed=0)
    assert run.effective_sample_size == est.effective_sample_size
