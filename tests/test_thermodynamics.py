"""Tests for genphys.thermodynamics against independent oracles.

* brute force: every spin configuration of a small lattice, energies from genphys.ising.energy;
* genphys.ising.exact_observables and genphys.rbm.log_partition_exact as independent exact values;
* autograd of the exact log-likelihood for the training gradient;
* sampling frequencies and Monte Carlo observables, with tolerances derived from standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genphys import ising
from genphys.enumeration import binary_states
from genphys.fitting import TrainingDivergedError
from genphys.rbm import BernoulliRBM, log_likelihood_exact, log_partition_exact
from genphys.thermodynamics import (
    MAX_FIT_HIDDEN,
    _to_rbm,
    bits_to_spins,
    boltzmann_log_prob_exact,
    fit_rbm_exact_negative,
    ising_rbm_exact,
    kl_divergence_exact,
    observables_exact,
    rbm_log_prob_exact,
    sample_boltzmann_exact,
    sample_rbm_spins,
    spin_log_likelihood_gradient,
    spins_to_bits,
)


def random_rbm(n_visible, n_hidden, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return BernoulliRBM.from_parameters(
        scale * torch.randn(n_visible, n_hidden, generator=g, dtype=torch.float64),
        scale * torch.randn(n_visible, generator=g, dtype=torch.float64),
        scale * torch.randn(n_hidden, generator=g, dtype=torch.float64),
    )


def normalised(v):
    return v - torch.logsumexp(v, 0)


# ------------------------------------------------------------------- mapping
def test_spins_bits_round_trip_and_layout():
    spins = torch.tensor([[[1.0, -1.0], [-1.0, -1.0]], [[-1.0, 1.0], [1.0, 1.0]]])
    bits = spins_to_bits(spins)
    np.testing.assert_array_equal(bits.numpy(), [[1, 0, 0, 0], [0, 1, 1, 1]])  # row by row
    np.testing.assert_array_equal(bits_to_spins(bits).numpy(), spins.numpy())


def test_mapping_bad_inputs():
    with pytest.raises(ValueError, match="spins"):
        spins_to_bits(torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match="spins"):
        spins_to_bits(torch.ones(2, 3, 4))
    with pytest.raises(ValueError, match="spins"):
        spins_to_bits(torch.ones(3, 3))
    with pytest.raises(ValueError, match="x"):
        bits_to_spins(torch.full((2, 4), 0.5))
    with pytest.raises(ValueError, match="x"):
        bits_to_spins(torch.zeros(2, 5))
    with pytest.raises(TypeError, match="x"):
        bits_to_spins("0101")


# -------------------------------------------------------- exact distributions
@pytest.mark.parametrize("L", [2, 3, 4])
@pytest.mark.parametrize("T", [1.0, ising.T_CRITICAL, 4.0])
def test_boltzmann_table_matches_ising_energy_and_exact_observables(L, T):
    log_p = boltzmann_log_prob_exact(L, T)
    assert log_p.shape == (2 ** (L * L),)
    np.testing.assert_allclose(torch.logsumexp(log_p, 0).item(), 0.0, atol=1e-12)
    spins = bits_to_spins(binary_states(L * L))
    expected = normalised(-ising.energy(spins) / T)  # independent energy function
    np.testing.assert_allclose(log_p.numpy(), expected.numpy(), rtol=0, atol=1e-10)
    exact = ising.exact_observables(L, T)
    ours = observables_exact(log_p, T)
    for key in ising.OBSERVABLE_KEYS:
        np.testing.assert_allclose(ours[key], exact[key], rtol=1e-10, atol=1e-12)


def test_boltzmann_bad_inputs():
    with pytest.raises(ValueError, match="L"):
        boltzmann_log_prob_exact(5, 2.0)
    with pytest.raises(ValueError, match="L"):
        boltzmann_log_prob_exact(1, 2.0)
    with pytest.raises(ValueError, match="T"):
        boltzmann_log_prob_exact(3, 0.0)
    with pytest.raises(TypeError, match="T"):
        boltzmann_log_prob_exact(3, "hot")


def test_sample_boltzmann_exact_frequencies():
    # L = 2: 16 states. n = 200_000 draws; each frequency has SE = sqrt(p(1-p)/n) <= 1.2e-3.
    # We allow 5 SE per state (16 states: a false alarm has probability < 1e-5).
    L, T, n = 2, 2.5, 200_000
    spins = sample_boltzmann_exact(L, T, n, seed=3)
    assert spins.shape == (n, L, L)
    codes = (spins_to_bits(spins) @ (2.0 ** torch.arange(L * L, dtype=torch.float64))).long()
    freq = torch.bincount(codes, minlength=2 ** (L * L)).double() / n
    p = boltzmann_log_prob_exact(L, T).exp()
    se = torch.sqrt(p * (1 - p) / n)
    assert bool((torch.abs(freq - p) <= 5 * se).all())


def test_sample_boltzmann_exact_bad_inputs():
    with pytest.raises(ValueError, match="n_samples"):
        sample_boltzmann_exact(2, 1.0, 0, seed=0)
    with pytest.raises(ValueError, match="seed"):
        sample_boltzmann_exact(2, 1.0, 5, seed=-1)
    with pytest.raises(ValueError, match="L"):
        sample_boltzmann_exact(6, 1.0, 5, seed=0)


@pytest.mark.parametrize(("n_visible", "n_hidden"), [(4, 3), (9, 2), (5, 12)])
def test_rbm_log_prob_matches_free_energy_and_log_partition(n_visible, n_hidden):
    rbm = random_rbm(n_visible, n_hidden, seed=n_visible + n_hidden)
    x = binary_states(n_visible)
    with torch.no_grad():
        expected = -rbm.free_energy(x) - log_partition_exact(rbm)
    np.testing.assert_allclose(rbm_log_prob_exact(rbm).numpy(), expected.numpy(), atol=1e-11)


def test_rbm_log_prob_bad_inputs():
    with pytest.raises(TypeError, match="rbm"):
        rbm_log_prob_exact(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="rbm"):
        rbm_log_prob_exact(BernoulliRBM(17, 2, seed=0))
    bad = random_rbm(3, 2)
    with torch.no_grad():
        bad.W[0, 0] = math.nan
    with pytest.raises(ValueError, match="W"):
        rbm_log_prob_exact(bad)


# ------------------------------------------------------------------------ KL
def test_kl_divergence_against_definition():
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        log_p = normalised(2 * torch.randn(32, generator=g, dtype=torch.float64))
        log_q = normalised(2 * torch.randn(32, generator=g, dtype=torch.float64))
        p, q = log_p.exp().numpy(), log_q.exp().numpy()
        expected = float(np.sum(p * np.log(p / q)))
        kl = kl_divergence_exact(log_p, log_q)
        np.testing.assert_allclose(kl.item(), expected, rtol=1e-12)
        assert kl.item() > 0.0
        assert kl_divergence_exact(log_p, log_p).item() == 0.0


def test_kl_divergence_zero_probabilities():
    log_p = torch.log(torch.tensor([0.5, 0.5, 0.0, 0.0], dtype=torch.float64))
    log_q = torch.log(torch.tensor([0.25, 0.25, 0.25, 0.25], dtype=torch.float64))
    np.testing.assert_allclose(kl_divergence_exact(log_p, log_q).item(), math.log(2.0))
    assert kl_divergence_exact(log_q, log_p).item() == math.inf


def test_kl_divergence_bad_inputs():
    good = normalised(torch.zeros(8, dtype=torch.float64))
    with pytest.raises(ValueError, match="normalised"):
        kl_divergence_exact(torch.zeros(8, dtype=torch.float64), good)
    with pytest.raises(ValueError, match="log_q"):
        kl_divergence_exact(good, torch.zeros(8, dtype=torch.float64))
    with pytest.raises(ValueError, match="log_q"):
        kl_divergence_exact(good, normalised(torch.zeros(4, dtype=torch.float64)))
    with pytest.raises(ValueError, match="log_p"):
        kl_divergence_exact(normalised(torch.zeros(6, dtype=torch.float64)), good)
    with pytest.raises(ValueError, match="log_p"):
        kl_divergence_exact(torch.full((8,), math.nan, dtype=torch.float64), good)
    with pytest.raises(ValueError, match="log_p"):
        kl_divergence_exact(torch.zeros(2, 4, dtype=torch.float64), good)


def test_observables_exact_bad_inputs():
    with pytest.raises(ValueError, match="T"):
        observables_exact(boltzmann_log_prob_exact(2, 1.0), -1.0)
    with pytest.raises(ValueError, match="log_prob"):
        observables_exact(normalised(torch.zeros(32, dtype=torch.float64)), 1.0)  # 5 sites
    with pytest.raises(ValueError, match="log_prob"):
        observables_exact(torch.zeros(16, dtype=torch.float64), 1.0)  # not normalised


# ------------------------------------------------------ exact construction
@pytest.mark.parametrize("L", [2, 3, 4])
@pytest.mark.parametrize("T", [0.8, ising.T_CRITICAL, 5.0])
def test_bond_rbm_is_exactly_the_boltzmann_distribution(L, T):
    rbm = ising_rbm_exact(L, T)
    assert (rbm.n_visible, rbm.n_hidden) == (L * L, 2 * L * L)
    kl = kl_divergence_exact(boltzmann_log_prob_exact(L, T), rbm_log_prob_exact(rbm))
    assert kl.item() < 1e-10
    np.testing.assert_allclose(
        rbm_log_prob_exact(rbm).numpy(), boltzmann_log_prob_exact(L, T).numpy(), atol=1e-10
    )


def test_bond_rbm_bad_inputs():
    with pytest.raises(ValueError, match="L"):
        ising_rbm_exact(1, 1.0)
    with pytest.raises(ValueError, match="T"):
        ising_rbm_exact(3, 0.0)


# ------------------------------------------------------------------ sampling
def test_sample_rbm_spins_agrees_with_exact_rbm_observables():
    # 400 independent chains x 10 samples; the jackknife SE of ising.observables uses
    # blocks of whole chains (the samples are chain-major), so it is valid for correlated
    # samples within a chain. We allow 5 SE for each of the four observables.
    L, T = 3, 3.0
    rbm = ising_rbm_exact(L, T)
    spins = sample_rbm_spins(rbm, 400, 10, seed=1, burn_in=50, thin=3)
    assert spins.shape == (4000, L, L)
    estimate = ising.observables(spins, T, n_blocks=40)
    exact = observables_exact(rbm_log_prob_exact(rbm), T)
    for key in ising.OBSERVABLE_KEYS:
        assert abs(estimate[key] - exact[key]) <= 5 * estimate[key + "_se"], key


def test_sample_rbm_spins_is_chain_major_and_seeded():
    rbm = random_rbm(4, 3, seed=2)
    a = sample_rbm_spins(rbm, 5, 7, seed=4, burn_in=2, thin=1)
    b = sample_rbm_spins(rbm, 5, 7, seed=4, burn_in=2, thin=1)
    assert a.shape == (35, 2, 2)
    assert torch.equal(a, b)
    assert set(torch.unique(a).tolist()) <= {-1.0, 1.0}


def test_sample_rbm_spins_bad_inputs():
    with pytest.raises(ValueError, match="rbm"):
        sample_rbm_spins(random_rbm(5, 2), 3, 3, seed=0)
    with pytest.raises(ValueError, match="n_chains"):
        sample_rbm_spins(random_rbm(4, 2), 0, 3, seed=0)
    with pytest.raises(ValueError, match="n_samples"):
        sample_rbm_spins(random_rbm(4, 2), 3, 0, seed=0)
    with pytest.raises(TypeError, match="rbm"):
        sample_rbm_spins("rbm", 3, 3, seed=0)
    with pytest.raises(ValueError, match="seed"):
        sample_rbm_spins(random_rbm(4, 2), 3, 3, seed=-2)


# ------------------------------------------------------------------ training
def test_symmetric_gauge_is_the_same_distribution():
    g = torch.Generator().manual_seed(5)
    M, N = 5, 3
    U = torch.randn(M, N, generator=g, dtype=torch.float64)
    alpha = torch.randn(M, generator=g, dtype=torch.float64)
    gamma = torch.randn(N, generator=g, dtype=torch.float64)
    s, t = 2 * binary_states(M) - 1, 2 * binary_states(N) - 1
    joint = (s @ alpha)[:, None] + (t @ gamma)[None, :] + s @ U @ t.T  # (2^M, 2^N): -E(s, t)
    log_p = normalised(torch.logsumexp(joint, 1))
    np.testing.assert_allclose(
        rbm_log_prob_exact(_to_rbm(U, alpha, gamma)).numpy(), log_p.numpy(), atol=1e-12
    )


def test_spin_log_likelihood_gradient_matches_autograd():
    g = torch.Generator().manual_seed(6)
    K, B, M, N = 2, 7, 4, 3
    U = torch.randn(K, M, N, generator=g, dtype=torch.float64)
    alpha = torch.randn(K, M, generator=g, dtype=torch.float64)
    gamma = torch.randn(K, N, generator=g, dtype=torch.float64)
    s = 2 * torch.randint(2, (K, B, M), generator=g).double() - 1
    t_all = 2 * binary_states(N) - 1
    grads = spin_log_likelihood_gradient(s, U, alpha, gamma, t_all)
    for k in range(K):
        params = [p[k].clone().requires_grad_() for p in (U, alpha, gamma)]
        W = 4 * params[0]
        a = 2 * params[1] - 2 * params[0].sum(1)
        b = 2 * params[2] - 2 * params[0].sum(0)
        rbm = BernoulliRBM.from_parameters(W.detach(), a.detach(), b.detach())
        x = (s[k] + 1) / 2
        # mean log-likelihood, differentiable in (U, alpha, gamma) through W, a, b
        minus_f = x @ a + torch.nn.functional.softplus(x @ W + b).sum(1)
        x_all = binary_states(M)
        log_z = torch.logsumexp(x_all @ a + torch.nn.functional.softplus(x_all @ W + b).sum(1), 0)
        ll = minus_f.mean() - log_z
        np.testing.assert_allclose(ll.item(), log_likelihood_exact(rbm, x).item(), rtol=1e-12)
        auto = torch.autograd.grad(ll, params)
        for got, want in zip((gr[k] for gr in grads), auto, strict=True):
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-12)


def test_fit_reduces_exact_kl_and_keeps_padded_units_out():
    # Two 2x2 lattices trained at once with 1 and 3 hidden units on exact draws.
    L, T = 2, 2.0
    target = boltzmann_log_prob_exact(L, T)
    data = spins_to_bits(sample_boltzmann_exact(L, T, 4000, seed=0))
    results = fit_rbm_exact_negative(
        [data, data],
        [1, 3],
        seed=1,
        n_steps=300,
        batch_size=200,
        target_log_prob=target,
        record_every=50,
    )
    assert [r.rbm.n_hidden for r in results] == [1, 3]
    for r in results:
        np.testing.assert_array_equal(r.steps, [0, 50, 100, 150, 200, 250, 300])
        assert (r.kl >= 0).all()
        assert r.kl[-1] < 0.2 * r.kl[0]
        assert r.rbm.W.dtype == torch.float64
        # the recorded value is the exact KL of the returned machine
        np.testing.assert_allclose(
            r.kl[-1], kl_divergence_exact(target, rbm_log_prob_exact(r.rbm)).item(), rtol=1e-9
        )
    # with 4000 samples the fitted 3-unit machine is within a few hundredths of a nat
    assert results[1].kl[-1] < 0.05
    np.testing.assert_array_equal(results[0].history["kl_1"], results[1].kl)
    single = fit_rbm_exact_negative(data, 2, seed=0, n_steps=5)
    assert single.kl.size == 0 and single.rbm.n_hidden == 2


def test_fit_same_seed_same_result_and_global_rng_untouched():
    data = spins_to_bits(sample_boltzmann_exact(2, 2.0, 500, seed=0))
    target = boltzmann_log_prob_exact(2, 2.0)
    state = torch.get_rng_state()
    runs = [
        fit_rbm_exact_negative(data, 2, seed=3, n_steps=20, target_log_prob=target, record_every=5)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0].kl, runs[1].kl)
    assert torch.equal(runs[0].rbm.W, runs[1].rbm.W)
    assert torch.equal(torch.get_rng_state(), state)
    threaded = fit_rbm_exact_negative(
        data,
        2,
        generator=torch.Generator().manual_seed(3),
        n_steps=20,
        target_log_prob=target,
        record_every=5,
    )
    np.testing.assert_array_equal(threaded.kl, runs[0].kl)


def test_fit_diverges_loudly():
    data = spins_to_bits(sample_boltzmann_exact(2, 1.0, 100, seed=0))
    with pytest.raises(TrainingDivergedError, match=r"epoch \d+: (U|alpha|gamma) is") as info:
        fit_rbm_exact_negative(data, 2, seed=0, n_steps=3, learning_rate=1e308, record_every=1)
    assert info.value.quantity in ("U", "alpha", "gamma")


def test_fit_bad_inputs():
    data = spins_to_bits(sample_boltzmann_exact(2, 1.0, 50, seed=0))
    with pytest.raises(ValueError, match="n_hidden"):
        fit_rbm_exact_negative(data, MAX_FIT_HIDDEN + 1, seed=0)
    with pytest.raises(ValueError, match="n_hidden"):
        fit_rbm_exact_negative(data, 0, seed=0)
    with pytest.raises(ValueError, match="data"):
        fit_rbm_exact_negative(data * 0.5, 2, seed=0)
    with pytest.raises(ValueError, match=r"data\[1\]"):
        fit_rbm_exact_negative([data, torch.zeros(5, 9)], 2, seed=0)
    with pytest.raises(ValueError, match="n_hidden"):
        fit_rbm_exact_negative([data, data], [1, 2, 3], seed=0)
    with pytest.raises(ValueError, match="data"):
        fit_rbm_exact_negative([], 2, seed=0)
    with pytest.raises(ValueError, match="target_log_prob"):
        fit_rbm_exact_negative(data, 2, seed=0, target_log_prob=boltzmann_log_prob_exact(3, 1.0))
    with pytest.raises(ValueError, match="n_steps"):
        fit_rbm_exact_negative(data, 2, seed=0, n_steps=0)
    with pytest.raises(ValueError, match="learning_rate"):
        fit_rbm_exact_negative(data, 2, seed=0, learning_rate=-1.0)
    with pytest.raises(TypeError, match="compute_dtype"):
        fit_rbm_exact_negative(data, 2, seed=0, compute_dtype=torch.int64)
    with pytest.raises(TypeError, match="seed"):
        fit_rbm_exact_negative(data, 2, seed=None)


def test_bad_input_spin_log_likelihood_gradient():
    K, B, M, N = 2, 3, 4, 2
    s, U = torch.ones(K, B, M), torch.zeros(K, M, N)
    alpha, gamma, t_all = torch.zeros(K, M), torch.zeros(K, N), 2 * binary_states(N) - 1
    with pytest.raises(TypeError, match="U must be a 3-d tensor"):
        spin_log_likelihood_gradient(s, U[0], alpha, gamma, t_all)
    with pytest.raises(TypeError, match="s must be a 3-d tensor"):
        spin_log_likelihood_gradient(s.numpy(), U, alpha, gamma, t_all)
    with pytest.raises(ValueError, match="s must be of shape"):
        spin_log_likelihood_gradient(torch.ones(K, B, M + 1), U, alpha, gamma, t_all)
    with pytest.raises(ValueError, match="alpha must be of shape"):
        spin_log_likelihood_gradient(s, U, torch.zeros(K, N), gamma, t_all)
    with pytest.raises(ValueError, match="gamma must be of shape"):
        spin_log_likelihood_gradient(s, U, alpha, torch.zeros(1, N), t_all)
    with pytest.raises(ValueError, match="t_all must be of shape"):
        spin_log_likelihood_gradient(s, U, alpha, gamma, torch.ones(4, N + 1))
