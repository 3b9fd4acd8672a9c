"""Tests for genphys.autoregressive: normalisation and sampling against enumeration, the bound
F_q >= F, the score-function gradient against float64 finite differences, importance estimates
and the learned-proposal chain against exact 4 x 4 observables.

Statistical tolerances are stated as multiples of a standard error computed from the same
samples (binomial for state frequencies, the spread of independent estimates otherwise)."""

from __future__ import annotations

import math

import pytest
import torch

from genphys import autoregressive as ar
from genphys import ising, mcmc
from genphys.ais import AISWeightWarning
from genphys.enumeration import binary_states
from genphys.fitting import History
from genphys.thermodynamics import sample_boltzmann_exact


def _all_spins(L: int) -> torch.Tensor:
    return (2.0 * binary_states(L * L) - 1.0).reshape(-1, L, L)  # (2**N, L, L)


def _codes(spins: torch.Tensor) -> torch.Tensor:
    """The index of each configuration in _all_spins (bit i of the code is site i)."""
    bits = (spins.reshape(spins.shape[0], -1) > 0).long()  # (n, N)
    return (bits << torch.arange(bits.shape[1])).sum(1)


def _boltzmann(L: int, T: float) -> torch.Tensor:
    e = ising.energy(_all_spins(L))  # (2**N,)
    return torch.softmax(-e / T, 0)


MODELS = [
    dict(n_hidden=0, z2_symmetric=False),
    dict(n_hidden=7, z2_symmetric=False),
    dict(n_hidden=0, z2_symmetric=True),
    dict(n_hidden=20, z2_symmetric=True),
]


# ------------------------------------------------------------- the model itself
@pytest.mark.parametrize("kwargs", MODELS, ids=str)
def test_q_sums_to_one_over_all_4x4_states(kwargs):
    model = ar.AutoregressiveModel(4, seed=0, **kwargs)
    with torch.no_grad():  # random biases too, so that q is far from uniform
        model.bias.copy_(torch.linspace(-2, 2, 16, dtype=torch.float64))
        log_q = model.log_prob(_all_spins(4))  # (65536,)
    assert float(torch.logsumexp(log_q, 0)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("n_hidden", [0, 9])
def test_logit_of_site_i_depends_only_on_earlier_sites(n_hidden):
    model = ar.AutoregressiveModel(3, n_hidden=n_hidden, seed=1)
    g = torch.Generator().manual_seed(2)
    s = 2.0 * torch.randint(0, 2, (5, 3, 3), generator=g).double() - 1.0
    base = model.conditional_logits(s).detach()  # (5, 9)
    for j in range(9):
        flipped = s.clone().reshape(5, 9)
        flipped[:, j] *= -1
        logits = model.conditional_logits(flipped.reshape(5, 3, 3)).detach()
        change = (logits - base).abs().amax(0)
        assert float(change[: j + 1].max()) == 0.0, f"site {j} leaks into logits <= {j}"
        if j < 8:
            assert float(change[j + 1 :].max()) > 0.0  # and later sites do see it


@pytest.mark.parametrize("kwargs", MODELS, ids=str)
def test_sample_frequencies_match_q_on_2x2(kwargs):
    model = ar.AutoregressiveModel(2, seed=3, **kwargs)
    with torch.no_grad():
        model.bias.copy_(torch.tensor([1.0, -0.5, 0.3, -1.2], dtype=torch.float64))
        q = torch.exp(model.log_prob(_all_spins(2)))  # (16,)
    n = 40_000
    counts = torch.bincount(_codes(model.sample(n, seed=4)), minlength=16).double()
    se = torch.sqrt(n * q * (1 - q))  # binomial standard error of each count
    assert bool(((counts - n * q).abs() <= 5 * se + 1).all()), (counts, n * q)


def test_sample_is_seeded_and_seed_equals_generator():
    model = ar.AutoregressiveModel(3, n_hidden=4, z2_symmetric=True, seed=0)
    a = model.sample(50, seed=7)
    b = model.sample(50, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, model.sample(50, seed=8))
    assert set(a.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(
        ar.AutoregressiveModel(3, seed=5).weight, ar.AutoregressiveModel(3, seed=5).weight
    )


# --------------------------------------------------------------- free energies
@pytest.mark.parametrize("T", [1.5, ising.T_CRITICAL, 4.0])
@pytest.mark.parametrize("kwargs", MODELS[:3], ids=str)
def test_variational_free_energy_is_an_upper_bound_by_t_times_kl(T, kwargs):
    model = ar.AutoregressiveModel(4, seed=6, **kwargs)
    f_exact = -T * ising.exact_observables(4, T)["log_z"]
    with torch.no_grad():
        f_q = float(ar.free_energy_exact(model, T))
        log_q = model.log_prob(_all_spins(4))
    log_p = torch.log(_boltzmann(4, T))
    kl = float((log_q.exp() * (log_q - log_p)).sum())  # KL(q || p) by enumeration
    assert f_q >= f_exact
    assert f_q - f_exact == pytest.approx(T * kl, rel=1e-9, abs=1e-9)


def test_local_free_energy_is_energy_plus_t_log_q():
    model = ar.AutoregressiveModel(3, seed=0)
    s = model.sample(10, seed=1)
    expected = ising.energy(s) + 2.0 * model.log_prob(s)
    assert torch.allclose(ar.local_free_energy(model, s, 2.0), expected, rtol=0, atol=1e-12)


def _flat_grad(model, scalar):
    grads = torch.autograd.grad(scalar, list(model.parameters()), retain_graph=True)
    return torch.cat([g.reshape(-1) for g in grads])


def _finite_difference(model, T, h=1e-6):
    """Central differences of the exact F_q, float64, parameter by parameter."""
    out = []
    with torch.no_grad():
        for p in model.parameters():
            flat = p.view(-1)
            for k in range(flat.numel()):
                old = float(flat[k])
                flat[k] = old + h
                up = float(ar.free_energy_exact(model, T))
                flat[k] = old - h
                down = float(ar.free_energy_exact(model, T))
                flat[k] = old
                out.append((up - down) / (2 * h))
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("kwargs", [MODELS[1], MODELS[3]], ids=str)
def test_score_function_gradient_against_finite_differences(kwargs):
    T = 2.0
    model = ar.AutoregressiveModel(2, seed=8, **kwargs)
    fd = _finite_difference(model, T)  # (P,)
    # masked weights have gradient zero; the rest must be resolved by the test
    assert fd.abs().max() > 1e-2
    # 1. autograd of the exact F_q agrees with the finite differences (error O(h^2))
    exact = _flat_grad(model, ar.free_energy_exact(model, T))
    assert torch.allclose(exact, fd, atol=1e-7, rtol=0)
    # 2. the expectation of the score-function estimator, summed exactly over the 16
    # states with weights q(s), is the same gradient for any constant baseline c
    s = _all_spins(2)
    log_q = model.log_prob(s)
    f = (ising.energy(s) + T * log_q).detach()
    for c in (0.0, float(f.mean()), 100.0):
        surrogate = (log_q.exp().detach() * (f - c) * log_q).sum()
        assert torch.allclose(_flat_grad(model, surrogate), fd, atol=1e-7, rtol=0)
    # 3. the sampled estimator with the leave-one-out baseline is unbiased: the mean of
    # 400 independent batch estimates lies within 5 standard errors of the gradient
    g = torch.Generator().manual_seed(9)
    estimates = []
    for _ in range(400):
        spins = model.sample(64, generator=g)
        loss, _ = ar.score_function_loss(model, spins, T)
        estimates.append(_flat_grad(model, loss))
    estimates = torch.stack(estimates)  # (400, P)
    mean, se = estimates.mean(0), estimates.std(0) / math.sqrt(estimates.shape[0])
    assert bool(((mean - fd).abs() <= 5 * se + 1e-12).all())


def test_training_lowers_f_q_towards_f_and_records_history():
    T = 3.0
    model = ar.AutoregressiveModel(4, seed=0)
    f_exact = -T * ising.exact_observables(4, T)["log_z"] / 16
    before = ar.free_energy_exact(model, T).item() / 16
    history = ar.train_variational(model, T, n_steps=150, batch_size=128, lr=3e-2, seed=1)
    after = ar.free_energy_exact(model, T).item() / 16
    assert isinstance(history, History) and len(history) == 150
    assert before - f_exact > 0.3  # the untrained model is far off
    assert 0.0 <= after - f_exact < 0.02  # trained: within 1 % of |F| and still above it
    assert history["beta"][-1] == pytest.approx(1 / T, rel=1e-3)
    assert history["beta"][0] == pytest.approx(0.05 / T)  # annealed: beta_1 = beta (1 - 0.95)


# --------------------------------------------------------------- estimates
@pytest.fixture(scope="module")
def trained_4x4():
    T = 2.5
    model = ar.AutoregressiveModel(4, z2_symmetric=True, seed=0)
    ar.train_variational(model, T, n_steps=150, batch_size=128, lr=3e-2, seed=1)
    return model, T


@pytest.mark.parametrize("steps", [0, 20, 150])
def test_importance_estimates_agree_with_enumeration(steps):
    T = 2.5
    model = ar.AutoregressiveModel(4, z2_symmetric=True, seed=0)
    if steps:
        ar.train_variational(model, T, n_steps=steps, batch_size=128, lr=3e-2, seed=1)
    exact = ising.exact_observables(4, T)
    est = ar.importance_estimates(model, T, 20_000, seed=2, warn=False)
    if est["effective_sample_size"] < 2_000:  # a poor q is flagged
        with pytest.warns(AISWeightWarning, match="effective sample size"):
            ar.importance_estimates(model, T, 20_000, seed=2)
    f_exact = -T * exact["log_z"] / 16
    # the plain mean of f is an upper bound (up to its own noise)
    assert (
        est["variational_free_energy_per_spin"]
        > f_exact - 5 * est["variational_free_energy_per_spin_se"]
    )
    # 6 standard errors: the delta-method SE is itself noisy for a poor q (ESS ~ 100)
    assert abs(est["free_energy_per_spin"] - f_exact) < 6 * est["free_energy_per_spin_se"]
    for key in ("energy_per_spin", "abs_magnetization_per_spin"):
        assert abs(est[key] - exact[key]) < 6 * est[key + "_se"], key
    assert 1.0 <= est["effective_sample_size"] <= 20_000
    if steps == 150:
        assert est["effective_sample_size"] > 5_000  # a good q: many samples count
        assert est["free_energy_per_spin_se"] < 1e-3


# ------------------------------------------------------------- neural MCMC
def _poor_model(kind: str) -> ar.AutoregressiveModel:
    model = ar.AutoregressiveModel(4, seed=0)
    if kind == "biased":  # prefers all spins down, misses the up phase
        with torch.no_grad():
            model.bias.fill_(-1.5)
    return model


@pytest.mark.parametrize("kind", ["untrained", "biased"])
def test_learned_proposal_leaves_the_boltzmann_distribution_invariant(kind):
    # Chains started from exact Boltzmann draws stay exactly Boltzmann after any number of
    # steps, whatever q is: 4000 independent chains after 10 steps are 4000 i.i.d. draws,
    # so their observables agree with enumeration within 5 i.i.d. standard errors.
    T, n = 2.5, 4000
    model = _poor_model(kind)
    x0 = sample_boltzmann_exact(4, T, n, seed=3)
    result = ar.independence_metropolis(model, T, 10, n_chains=n, x0=x0, seed=4)
    final = result.samples[:, -1]  # (n, 4, 4)
    exact = ising.exact_observables(4, T)
    for key, values in (
        ("energy_per_spin", ising.energy(final) / 16),
        ("abs_magnetization_per_spin", final.sum((-2, -1)).abs() / 16),
    ):
        se = float(values.std()) / math.sqrt(n)
        assert abs(float(values.mean()) - exact[key]) < 5 * se, key
    assert 0.0 < float(result.acceptance_rate.mean()) < 0.5  # a poor q: most proposals fail


def test_learned_proposal_chain_frequencies_on_2x2_from_a_poor_q():
    # From draws of an untrained q (not of p), 3000 chains of 60 steps on the 2 x 2 lattice
    # reach p: every state's frequency within 5 binomial standard errors.
    T, n = 2.5, 3000
    model = ar.AutoregressiveModel(2, seed=0)
    result = ar.independence_metropolis(model, T, 1, n_chains=n, burn_in=60, seed=5)
    p = _boltzmann(2, T)
    counts = torch.bincount(_codes(result.samples[:, -1]), minlength=16).double()
    se = torch.sqrt(n * p * (1 - p))
    assert bool(((counts - n * p).abs() <= 5 * se + 1).all()), (counts, n * p)


def test_learned_proposal_chain_matches_exact_4x4_observables(trained_4x4):
    model, T = trained_4x4
    result = ar.independence_metropolis(model, T, 400, n_chains=32, burn_in=20, seed=6)
    assert float(result.acceptance_rate.mean()) > 0.3  # a trained q: many proposals pass
    s = result.samples  # (32, 400, 4, 4)
    exact = ising.exact_observables(4, T)
    series = {
        "energy_per_spin": ising.energy(s.reshape(-1, 4, 4)).reshape(32, -1) / 16,
        "abs_magnetization_per_spin": s.sum((-2, -1)).abs() / 16,
    }
    for key, values in series.items():
        se = mcmc.standard_error(values)  # autocorrelation-aware
        assert abs(float(values.mean()) - exact[key]) < 5 * se, key


# ------------------------------------------------------------- bad input
def test_bad_input():
    model = ar.AutoregressiveModel(3, seed=0)
    good = model.sample(4, seed=0)
    with pytest.raises(ValueError, match="T must be a finite number > 0"):
        ar.local_free_energy(model, good, 0.0)
    with pytest.raises(ValueError, match="T must be a finite number > 0"):
        ar.importance_estimates(model, -1.0, 10, seed=0)
    with pytest.raises(TypeError, match="T must be a finite positive number"):
        ar.train_variational(model, "hot", n_steps=1, seed=0)
    with pytest.raises(ValueError, match=r"spins must contain only spins \+1 and -1"):
        model.log_prob(torch.zeros(2, 3, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"spins must have shape \(n, 3, 3\)"):
        model.log_prob(torch.ones(2, 4, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="spins must have 3 dimensions"):
        model.log_prob(torch.ones(3, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="spins must have the model's dtype"):
        model.log_prob(torch.ones(2, 3, 3, dtype=torch.float32))
    with pytest.raises(ValueError, match="spins must hold at least 2 configurations"):
        ar.score_function_loss(model, good[:1], 1.0)
    with pytest.raises(TypeError, match="model must be a genphys.autoregressive"):
        ar.free_energy_exact(torch.nn.Linear(2, 2), 1.0)
    with pytest.raises(ValueError, match="model must have at most 16 spins"):
        ar.free_energy_exact(ar.AutoregressiveModel(5, seed=0), 1.0)
    with pytest.raises(ValueError, match="L must be an integer >= 2"):
        ar.AutoregressiveModel(1, seed=0)
    with pytest.raises(TypeError, match="seed must be an integer"):
        ar.AutoregressiveModel(3)
    with pytest.raises(ValueError, match="seed must be None when a generator is given"):
        model.sample(3, seed=0, generator=torch.Generator())
    with pytest.raises(ValueError, match="n_samples must be an integer >= 1"):
        model.sample(0, seed=0)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 2"):
        ar.train_variational(model, 1.0, n_steps=1, batch_size=1, seed=0)
    with pytest.raises(ValueError, match=r"anneal must be in \[0, 1\)"):
        ar.train_variational(model, 1.0, n_steps=1, anneal=1.0, seed=0)
    with pytest.raises(ValueError, match=r"x0 must have shape \(5, 3, 3\)"):
        ar.independence_metropolis(model, 1.0, 2, n_chains=5, x0=good, seed=0)


def test_nan_parameters_stop_the_sampler_and_the_trainer_names_the_site():
    model = ar.AutoregressiveModel(3, seed=0)
    with torch.no_grad():
        model.bias[4] = float("nan")
    with pytest.raises(FloatingPointError, match=r"site 4 \(row 1, column 1\) is NaN"):
        model.sample(5, seed=0)
    with pytest.raises(FloatingPointError, match="site 4"):
        ar.train_variational(model, 1.0, n_steps=2, seed=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    model = ar.AutoregressiveModel(4, n_hidden=8, seed=0, device="cuda")
    s = model.sample(100, seed=0)
    assert s.device.type == "cuda"
    log_q = model.log_prob(_all_spins(4).cuda())
    assert float(torch.logsumexp(log_q, 0)) == pytest.approx(0.0, abs=1e-10)
    ar.train_variational(model, 2.5, n_steps=3, batch_size=16, seed=1)
    est = ar.importance_estimates(model, 2.5, 100, seed=2)
    assert math.isfinite(est["free_energy_per_spin"])
    result = ar.independence_metropolis(model, 2.5, 5, n_chains=4, seed=3)
    assert result.samples.device.type == "cuda"


def test_sampler_comparison_reports_all_three_samplers_consistently():
    T = 2.5
    model = ar.AutoregressiveModel(4, seed=0)
    ar.train_variational(model, T, n_steps=60, batch_size=64, lr=3e-2, seed=1)
    out = ar.sampler_comparison(
        model, T, n_steps={"metropolis": 300, "wolff": 200, "learned": 200}, n_chains=8, seed=2
    )
    exact = ising.exact_observables(4, T)
    assert set(out) == {"metropolis", "wolff", "learned"}
    for name, record in out.items():
        assert 0.0 < record["acceptance"] <= 1.0, name
        assert record["seconds_per_step"] > 0 and record["tau_energy"] > 0, name
        for key in ("energy_per_spin", "abs_magnetization_per_spin"):
            # every sampler is exact: within 5 autocorrelation-aware standard errors
            assert abs(record[key] - exact[key]) < 5 * record[key + "_se"], (name, key)
    assert out["wolff"]["acceptance"] == 1.0
    assert all(record["split_rhat"] >= 0.99 for record in out.values())
    with pytest.raises(ValueError, match="n_steps must be a mapping with the keys"):
        ar.sampler_comparison(model, T, n_steps={"wolff": 30}, seed=0)
    with pytest.raises(ValueError, match=r"n_steps\['wolff'\] must be an integer >= 20"):
        ar.sampler_comparison(
            model, T, n_steps={"metropolis": 30, "wolff": 3, "learned": 30}, seed=0
        )


def test_reinforce_surrogate_is_exactly_the_leave_one_out_formula_on_fixed_spins():
    # Five fixed configurations (repeats included), T = 1.7. The surrogate's value and its
    # gradient are recomputed term by term: b_k is the mean of the other n - 1 values of f.
    # A baseline that includes the sample itself (the plain mean) would scale every
    # (f_k - b_k) by (n - 1) / n = 0.8 and fail both checks.
    model = ar.AutoregressiveModel(2, n_hidden=3, seed=5, dtype=torch.float64)
    states = binary_states(4, dtype=torch.float64)[[0, 3, 6, 6, 13]]
    spins = (2 * states - 1).reshape(5, 2, 2)
    T, n = 1.7, 5
    loss, f = ar.score_function_loss(model, spins, T)
    log_q = [model.log_prob(spins[k : k + 1])[0] for k in range(n)]
    f_hand = [
        float(ising.energy(spins[k : k + 1])[0]) + T * float(log_q[k].detach()) for k in range(n)
    ]
    assert f.tolist() == pytest.approx(f_hand, rel=1e-13, abs=1e-13)
    b = [(sum(f_hand) - f_hand[k]) / (n - 1) for k in range(n)]
    value = sum((f_hand[k] - b[k]) * float(log_q[k].detach()) for k in range(n)) / n
    assert float(loss.detach()) == pytest.approx(value, rel=1e-12, abs=1e-13)
    params = list(model.parameters())
    got = torch.autograd.grad(loss, params, allow_unused=True)
    want = [torch.zeros_like(p) for p in params]
    for k in range(n):
        per_sample = torch.autograd.grad(log_q[k], params, retain_graph=True, allow_unused=True)
        for w, g in zip(want, per_sample, strict=True):
            if g is not None:
                w += (f_hand[k] - b[k]) * g / n
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(
            torch.zeros_like(w) if g is None else g, w, rtol=1e-11, atol=1e-13
        )
