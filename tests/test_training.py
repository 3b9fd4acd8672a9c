"""Tests for genphys.training: CD-k, PCD and the exact negative phase, checked against exact enumeration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from genphys import training
from genphys.fitting import History
from genphys.rbm import (
    BernoulliRBM,
    RBMParameters,
    log_likelihood_exact,
    log_likelihood_gradient_exact,
)
from genphys.training import (
    CD,
    PCD,
    ExactNegative,
    TrainingDivergedError,
    cd_gradient_exact,
    cd_gradient_sample,
    initialize_rbm,
    positive_phase,
    rbm_optimizer,
    rbm_step,
    reconstruction_error,
    train_rbm,
)

F64 = torch.float64


def random_rbm(seed: int, n_visible: int = 6, n_hidden: int = 4, scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    kw = {"generator": g, "dtype": F64}
    return BernoulliRBM.from_parameters(
        scale * torch.randn(n_visible, n_hidden, **kw),
        torch.randn(n_visible, **kw) - 0.5,
        torch.randn(n_hidden, **kw) - 0.5,
    )


def random_bits(n: int, m: int, p: float = 0.3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((n, m), p, dtype=F64), generator=g)


def prototype_data(n: int = 60, seed: int = 0) -> torch.Tensor:
    """Three 8-bit prototypes with 5 % of the bits flipped: a structured toy data set."""
    prototypes = torch.tensor(
        [[1, 1, 1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1], [1, 0, 1, 0, 1, 0, 1, 0]], dtype=F64
    )
    g = torch.Generator().manual_seed(seed)
    rows = prototypes[torch.arange(n) % 3]
    flips = torch.bernoulli(torch.full_like(rows, 0.05), generator=g)
    return (rows + flips) % 2


def flat(params) -> torch.Tensor:
    return torch.cat([params.W.flatten(), params.a, params.b])


def exact_ll(rbm: BernoulliRBM, data: torch.Tensor) -> float:
    with torch.no_grad():
        return float(log_likelihood_exact(rbm, data))


# ------------------------------------------------------------ CD-k gradients
def test_expected_cd_gradient_approaches_exact_gradient_as_k_grows():
    # No sampling anywhere: the expected CD-k update is a sum over 2^6 chain states
    # weighted by delta_{x0} T^k, so distances can be compared exactly.
    data = random_bits(20, 6)
    for seed, scale in [(0, 1.0), (1, 2.0), (2, 2.0)]:
        rbm = random_rbm(seed, scale=scale)
        exact = flat(log_likelihood_gradient_exact(rbm, data).gradient)
        distances = [
            float((flat(cd_gradient_exact(rbm, data, k=k).gradient) - exact).norm())
            for k in (1, 2, 4, 8, 16, 32)
        ]
        assert all(d1 > d2 for d1, d2 in itertools.pairwise(distances)), distances
        assert distances[0] > 1e-2  # CD-1 is visibly biased for these models
        far = flat(cd_gradient_exact(rbm, data, k=2000).gradient)  # matrix-power path
        np.testing.assert_allclose(far.numpy(), exact.numpy(), rtol=0, atol=1e-10)


def test_expected_cd_gradient_positive_phase_is_the_exact_one():
    rbm, data = random_rbm(3), random_bits(15, 6, seed=1)
    cd = cd_gradient_exact(rbm, data, k=3)
    exact = log_likelihood_gradient_exact(rbm, data)
    np.testing.assert_allclose(flat(cd.positive).numpy(), flat(exact.positive).numpy(), atol=1e-13)


def test_expected_cd_gradient_from_the_model_distribution_is_exact_for_every_k():
    # If the data are distributed as the model, p(x) T = p(x) and the CD-k negative phase
    # is the same for every k. The data set repeats every visible state about
    # 200000 p(x) times.
    rbm = random_rbm(4, n_visible=4, n_hidden=3)
    from genphys.enumeration import binary_states

    xs = binary_states(4, dtype=F64)  # (16, 4)
    with torch.no_grad():
        p = torch.softmax(-rbm._free_energy(xs), 0)  # (16,)
    counts = torch.round(p * 200_000).long()
    data = xs.repeat_interleave(counts, dim=0)  # empirical distribution ~ p to 1/200000
    one = flat(cd_gradient_exact(rbm, data, k=1).negative)
    seven = flat(cd_gradient_exact(rbm, data, k=7).negative)
    # the rounding of counts moves the empirical distribution by at most 16 x 0.5 / 200000
    np.testing.assert_allclose(one.numpy(), seven.numpy(), atol=1e-4)


@pytest.mark.parametrize("k", [1, 3])
def test_sampled_cd_gradient_is_unbiased_for_the_exact_expectation(k):
    # 200 independent CD-k estimates, each over 60 chains (the data set repeated 3 times).
    # Per parameter the SE of their mean is std / sqrt(200); we allow 5 SE for each of the
    # 34 parameters (a false alarm has probability below 34 x 6e-7).
    rbm, data = random_rbm(5, scale=1.5), random_bits(20, 6, seed=2).repeat(3, 1)
    expected = flat(cd_gradient_exact(rbm, data, k=k).negative)
    draws = torch.stack(
        [flat(cd_gradient_sample(rbm, data, k=k, seed=s).negative) for s in range(200)]
    )
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(200)
    assert bool((se > 0).all())
    z = (mean - expected) / se
    assert float(z.abs().max()) < 5, z
    positive = flat(cd_gradient_sample(rbm, data, k=k, seed=0).positive)
    np.testing.assert_allclose(
        positive.numpy(),
        flat(log_likelihood_gradient_exact(rbm, data).positive).numpy(),
        atol=1e-13,
    )


@pytest.mark.parametrize(
    "make_phase", [lambda: CD(k=2), lambda: PCD(k=2), lambda: PCD(k=2, n_chains=50)]
)
def test_one_training_step_moves_the_parameters_by_the_cd_gradient(make_phase):
    # One epoch with one full mini-batch, no momentum, no weight decay: the parameter
    # change is learning_rate times one sampled CD-1 gradient. For PCD the chains start
    # at training vectors drawn uniformly, whose expectation is again delta_data T^k, also
    # with more chains than data. We average 150 runs and allow 5 SE per parameter (34
    # parameters: a false alarm has probability below 34 x 6e-7).
    rbm0, data = random_rbm(6, scale=1.5), random_bits(30, 6, seed=3)
    lr = 0.1
    expected = lr * flat(cd_gradient_exact(rbm0, data, k=2).gradient)
    steps = []
    for s in range(150):
        rbm = BernoulliRBM.from_parameters(rbm0.W, rbm0.a, rbm0.b)
        train_rbm(
            rbm,
            data,
            n_epochs=1,
            negative_phase=make_phase(),
            batch_size=30,
            learning_rate=lr,
            momentum=0.0,
            final_momentum=0.0,
            compute_dtype=None,
            seed=s,
        )
        steps.append((flat(rbm) - flat(rbm0)).detach())
    steps = torch.stack(steps)
    z = (steps.mean(0) - expected) / (steps.std(0) / math.sqrt(150))
    assert float(z.abs().max()) < 5, z


# ----------------------------------------------------------------- training
@pytest.mark.parametrize("phase", [CD(1), PCD(1), CD(5)], ids=repr)
def test_training_raises_the_exact_log_likelihood(phase):
    data = prototype_data()
    rbm = initialize_rbm(data, 4, seed=0)
    before = exact_ll(rbm, data)
    history = train_rbm(
        rbm,
        data,
        n_epochs=100,
        negative_phase=phase,
        batch_size=10,
        learning_rate=0.05,
        final_momentum=0.5,
        log_likelihood_every=25,
        seed=1,
    )
    after = exact_ll(rbm, data)
    # Three prototypes with 5 % noise: the best model is near -8 H(0.05) - log 3 = -2.7
    # nats, the initial independent-bits model near -5.2. Over seeds 0-5 the gain is
    # 2.0-2.5 nats for all three methods; we require 1.5.
    assert after > before + 1.5, (before, after)
    np.testing.assert_allclose(history["train_log_likelihood"][-1], after, rtol=1e-9)
    ll = history["train_log_likelihood"][~np.isnan(history["train_log_likelihood"])]
    assert ll.shape == (4,) and ll[-1] > ll[0]


def test_persistent_chains_sample_the_model():
    # With a negligible learning rate the model stays fixed and the 4000 persistent chains
    # run 50 epochs x 1 update x 1 Gibbs step = 50 steps from the data: with weights of
    # order 1 this model mixes within a few steps, so the end states are samples of p(x).
    # Each unit's mean over 4000 chains has SE sqrt(p(1-p)/4000) <= 7.9e-3; 5 SE allowed.
    rbm = random_rbm(3, n_visible=8, n_hidden=4, scale=1.0)
    data = prototype_data()
    expected = log_likelihood_gradient_exact(rbm, data).negative.a  # E_p[x]
    history = train_rbm(
        rbm,
        data,
        n_epochs=50,
        negative_phase=PCD(k=1, n_chains=4000),
        batch_size=60,
        learning_rate=1e-30,
        compute_dtype=None,
        seed=0,
    )
    se = torch.sqrt(expected * (1 - expected) / 4000)
    z = (history.extras["chains"].mean(0) - expected) / se
    assert float(z.abs().max()) < 5, z


def test_pcd_with_large_momentum_can_oscillate_but_stays_finite():
    # PCD's chains lag behind a fast-moving model (Tieleman 2008): with learning rate 0.1
    # and momentum 0.9 on three sharp modes the log-likelihood oscillates. The run must
    # still finish with finite parameters and an honest history.
    data = prototype_data()
    rbm = initialize_rbm(data, 4, seed=0)
    history = train_rbm(
        rbm,
        data,
        n_epochs=40,
        negative_phase=PCD(),
        batch_size=10,
        learning_rate=0.1,
        final_momentum=0.9,
        log_likelihood_every=5,
        seed=1,
    )
    ll = history["train_log_likelihood"][~np.isnan(history["train_log_likelihood"])]
    assert np.all(np.isfinite(ll)) and bool(torch.isfinite(rbm.W.detach()).all())


def test_history_records():
    data, test = prototype_data(60, seed=0), prototype_data(30, seed=1)
    rbm = initialize_rbm(data, 3, seed=0)
    history = train_rbm(
        rbm,
        data,
        n_epochs=7,
        negative_phase=PCD(),
        batch_size=20,
        test_data=test,
        log_likelihood_every=3,
        seed=0,
        momentum_switch_epoch=2,
        final_momentum=0.9,
    )
    assert isinstance(history, History) and len(history) == 7
    np.testing.assert_array_equal(history["epoch"], np.arange(1, 8))
    assert np.all(history["seconds"] > 0) and np.all(np.isfinite(history["reconstruction_error"]))
    monitored = ~np.isnan(history["train_log_likelihood"])
    np.testing.assert_array_equal(np.flatnonzero(monitored) + 1, [3, 6, 7])
    assert np.all(~np.isnan(history["test_log_likelihood"][monitored]))
    # the recorded values are those of the returned model, recomputed independently
    np.testing.assert_allclose(history["test_log_likelihood"][-1], exact_ll(rbm, test), rtol=1e-12)
    np.testing.assert_allclose(history["train_log_likelihood"][-1], exact_ll(rbm, data), rtol=1e-12)
    assert list(history["log_likelihood_se"][monitored]) == [0.0, 0.0, 0.0]
    assert history.extras["log_likelihood_method"] == "exact"
    assert list(history["momentum"]) == [0.5, 0.5, 0.9, 0.9, 0.9, 0.9, 0.9]
    assert "ais_effective_sample_size" not in history  # exact: no AIS
    assert history.extras["chains"].shape == (100, 8)  # PCD() keeps 100 chains
    chains = history.extras["chains"]
    assert bool(((chains == 0) | (chains == 1)).all())
    with pytest.raises(KeyError, match="name"):
        history["loss"]


@pytest.mark.parametrize(("phase", "final"), [(CD(), 0.9), (PCD(), 0.5), (ExactNegative(), 0.9)])
def test_default_momentum_schedule_depends_on_the_method(phase, final):
    data = prototype_data(20)
    rbm = initialize_rbm(data, 2, seed=0)
    history = train_rbm(rbm, data, n_epochs=7, negative_phase=phase, batch_size=10, seed=0)
    assert list(history["momentum"]) == [0.5] * 5 + [final] * 2


def test_reconstruction_error_definition():
    data = prototype_data(30)
    rbm = initialize_rbm(data, 3, seed=0)
    history = train_rbm(rbm, data, n_epochs=1, batch_size=30, compute_dtype=None, seed=0)
    with torch.no_grad():
        recon = rbm.prob_x_given_h(rbm.prob_h_given_x(data))
        expected = float(((data - recon) ** 2).sum(1).mean())
    np.testing.assert_allclose(history["reconstruction_error"][0], expected, rtol=1e-10)
    np.testing.assert_allclose(float(reconstruction_error(rbm, data)), expected, rtol=1e-12)


@pytest.mark.parametrize("phase", [CD(2), PCD(1), ExactNegative()], ids=repr)
def test_same_seed_same_history_and_global_rng_untouched(phase):
    data = prototype_data(30)
    state = torch.get_rng_state()
    runs = []
    for _ in range(2):
        rbm = initialize_rbm(data, 3, seed=0)
        history = train_rbm(
            rbm,
            data,
            n_epochs=3,
            negative_phase=phase,
            batch_size=7,
            log_likelihood_every=1,
            seed=4,
        )
        runs.append((flat(rbm).detach(), history))
    assert torch.equal(runs[0][0], runs[1][0])
    for name in ("reconstruction_error", "train_log_likelihood"):
        np.testing.assert_array_equal(runs[0][1][name], runs[1][1][name])
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is never used
    assert ("chains" in runs[0][1].extras) == isinstance(phase, PCD)


def test_generator_is_threaded_through():
    data = prototype_data(30)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    a, b = initialize_rbm(data, 3, generator=g1), initialize_rbm(data, 3, seed=7)
    assert torch.equal(flat(a).detach(), flat(b).detach())  # the same draws as seed=7
    train_rbm(a, data, n_epochs=2, batch_size=10, generator=g1)
    train_rbm(b, data, n_epochs=2, batch_size=10, generator=g2)
    assert not torch.equal(flat(a).detach(), flat(b).detach())  # g1 had been advanced


def test_ais_monitoring_for_large_models():
    # min(n_visible, n_hidden) = 21 > 20: the monitored log-likelihood comes from AIS.
    data = random_bits(10, 21, seed=5)
    rbm = initialize_rbm(data, 22, seed=0)
    history = train_rbm(
        rbm,
        data,
        n_epochs=1,
        batch_size=10,
        log_likelihood_every=1,
        ais_chains=16,
        ais_temperatures=20,
        seed=0,
    )
    assert history.extras["log_likelihood_method"] == "ais"
    assert history["log_likelihood_se"][-1] > 0
    assert math.isfinite(history["train_log_likelihood"][-1])
    # ais_effective_sample_size is recorded where genphys.ais.AISEstimate has the field
    from genphys.ais import AISEstimate

    has_ess = "effective_sample_size" in getattr(AISEstimate, "_fields", ())
    assert ("ais_effective_sample_size" in history) == has_ess


def test_progress_bar_runs():
    data = prototype_data(20)
    rbm = initialize_rbm(data, 2, seed=0)
    history = train_rbm(rbm, data, n_epochs=2, batch_size=10, progress=True, seed=0)
    assert len(history) == 2


# ------------------------------------------- the readable step and the fast kernel
@pytest.mark.parametrize("make_phase", [lambda: CD(k=2), lambda: PCD(k=2, n_chains=30)])
def test_fast_kernel_and_readable_step_give_the_same_expected_update(make_phase):
    # train_rbm runs CD and PCD on an augmented-matrix kernel; rbm_step with CD/PCD is the
    # readable version shown in the book. One epoch with one full mini-batch, no momentum:
    # 150 runs of each; the difference of the mean updates has SE sqrt(se_1^2 + se_2^2)
    # per parameter and we allow 5 SE for each of 34 parameters (false alarm < 34 x 6e-7).
    # Both must also agree with the exact expected CD-2 update (cd_gradient_exact).
    rbm0, data = random_rbm(6, scale=1.5), random_bits(30, 6, seed=3)
    lr = 0.1
    fast, readable = [], []
    for s in range(150):
        rbm = BernoulliRBM.from_parameters(rbm0.W, rbm0.a, rbm0.b)
        train_rbm(
            rbm,
            data,
            n_epochs=1,
            negative_phase=make_phase(),
            batch_size=30,
            learning_rate=lr,
            momentum=0.0,
            final_momentum=0.0,
            compute_dtype=None,
            seed=s,
        )
        fast.append(flat(rbm).detach() - flat(rbm0).detach())
        rbm = BernoulliRBM.from_parameters(rbm0.W, rbm0.a, rbm0.b)
        g = torch.Generator().manual_seed(10_000 + s)
        phase = make_phase()
        phase.reset(data, g)
        rbm_step(rbm, data, phase, rbm_optimizer(rbm, learning_rate=lr), g)
        readable.append(flat(rbm).detach() - flat(rbm0).detach())
    fast, readable = torch.stack(fast), torch.stack(readable)
    se = torch.sqrt((fast.var(0) + readable.var(0)) / 150)
    z = (fast.mean(0) - readable.mean(0)) / se
    assert float(z.abs().max()) < 5, z
    expected = lr * flat(cd_gradient_exact(rbm0, data, k=2).gradient)
    z = (readable.mean(0) - expected) / (readable.std(0) / math.sqrt(150))
    assert float(z.abs().max()) < 5, z


def test_exact_negative_step_is_gradient_ascent_on_the_exact_log_likelihood():
    # ExactNegative has no randomness: one full-batch step without momentum is exactly
    # Θ + lr * ∇ℓ(Θ), with ∇ℓ from log_likelihood_gradient_exact (itself checked against
    # autograd in test_rbm).
    rbm0, data = random_rbm(2), random_bits(25, 6, seed=4)
    lr = 0.3
    expected = flat(rbm0).detach() + lr * flat(log_likelihood_gradient_exact(rbm0, data).gradient)
    rbm = BernoulliRBM.from_parameters(rbm0.W, rbm0.a, rbm0.b)
    history = train_rbm(
        rbm,
        data,
        n_epochs=1,
        negative_phase=ExactNegative(),
        batch_size=25,
        learning_rate=lr,
        momentum=0.0,
        compute_dtype=None,
        log_likelihood_every=1,
        seed=0,
    )
    np.testing.assert_allclose(flat(rbm).detach().numpy(), expected.numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(history["train_log_likelihood"][0], exact_ll(rbm, data), rtol=1e-13)


def test_positive_phase_is_the_exact_one():
    rbm, data = random_rbm(3), random_bits(15, 6, seed=1)
    exact = log_likelihood_gradient_exact(rbm, data).positive
    np.testing.assert_allclose(
        flat(positive_phase(rbm, data)).numpy(), flat(exact).numpy(), atol=1e-14
    )


# ----------------------------------------------------- momentum, weight decay
class _ConstantStatistics:
    """A negative phase returning fixed statistics (to test the optimiser alone)."""

    def __init__(self, stats):
        self.stats = stats

    def __call__(self, rbm, batch, generator):
        return self.stats


def test_weight_decay_shrinks_w_when_the_data_carry_no_signal():
    # Negative statistics equal to the positive ones: the gradient is exactly zero, so one
    # step multiplies W by (1 - lr * lambda) and leaves the biases alone.
    rbm, data = random_rbm(0), random_bits(4, 6)
    before = [p.detach().clone() for p in (rbm.W, rbm.a, rbm.b)]
    phase = _ConstantStatistics(positive_phase(rbm, data))
    opt = rbm_optimizer(rbm, learning_rate=0.1, weight_decay=0.5)
    rbm_step(rbm, data, phase, opt, torch.Generator())
    np.testing.assert_allclose(rbm.W.detach().numpy(), 0.95 * before[0].numpy(), rtol=1e-14)
    assert torch.equal(rbm.a.detach(), before[1]) and torch.equal(rbm.b.detach(), before[2])


def test_momentum_accumulates_a_constant_gradient():
    # Eq. (eq-momentum) with a constant gradient estimate g and momentum mu: after n steps
    # v = lr g (1 - mu^n) / (1 - mu) and Θ_n - Θ_0 = sum of those v; torch.optim.SGD must
    # reproduce Hinton's update.
    rbm, data = random_rbm(1), random_bits(5, 6, seed=2)
    start = flat(rbm).detach().clone()
    mu, lr, g = 0.9, 0.1, 0.5  # positive - negative = 0.5 in every entry, for every Θ
    opt = rbm_optimizer(rbm, learning_rate=lr, momentum=mu)
    for _ in range(5):
        # the positive phase moves with Θ; keep positive - negative = 0.5 exactly
        phase = _ConstantStatistics(RBMParameters(*(p - 0.5 for p in positive_phase(rbm, data))))
        rbm_step(rbm, data, phase, opt, torch.Generator())
    expected = sum(lr * g * (1 - mu**n) / (1 - mu) for n in range(1, 6))
    np.testing.assert_allclose((flat(rbm).detach() - start).numpy(), expected, rtol=1e-12)


def test_weight_decay_gives_smaller_weights_in_training():
    data = prototype_data()
    norms = []
    for decay in (0.0, 0.05):
        rbm = initialize_rbm(data, 4, seed=0)
        train_rbm(
            rbm, data, n_epochs=30, batch_size=10, learning_rate=0.1, weight_decay=decay, seed=1
        )
        norms.append(float(rbm.W.detach().norm()))
    assert norms[1] < 0.8 * norms[0], norms


# --------------------------------------------------------------- divergence
@pytest.mark.parametrize("phase", [CD(), PCD(), ExactNegative()], ids=repr)
def test_divergence_raises_and_keeps_the_last_finite_parameters(phase):
    # A learning rate of 1e308 overflows float64 within a few mini-batches; the
    # model keeps the parameters it had at the start of the diverging epoch.
    data = prototype_data()
    rbm = initialize_rbm(data, 4, seed=0)
    saved = flat(rbm).detach().clone()
    with pytest.raises(TrainingDivergedError, match=r"epoch \d") as info:
        train_rbm(
            rbm,
            data,
            n_epochs=3,
            negative_phase=phase,
            batch_size=10,
            learning_rate=1e308,
            momentum=0.9,  # keeps pushing even where a saturated CD gradient vanishes
            final_momentum=0.9,
            compute_dtype=None,
            seed=0,
        )
    error = info.value
    assert isinstance(error, FloatingPointError)
    assert error.quantity in ("W", "a", "b") and error.quantity in str(error)
    assert f"epoch {error.epoch}" in str(error)
    assert len(error.history) == error.epoch - 1
    assert bool(torch.isfinite(flat(rbm)).all())
    if error.epoch == 1:
        assert torch.equal(flat(rbm).detach(), saved)


def test_training_re_exports_the_shared_error():
    from genphys import fitting

    assert TrainingDivergedError is fitting.TrainingDivergedError


def test_non_finite_data_are_rejected_up_front():
    data = prototype_data()
    data[3, 2] = math.nan
    with pytest.raises(ValueError, match="data"):
        train_rbm(initialize_rbm(prototype_data(), 3, seed=0), data, n_epochs=1, seed=0)


# ------------------------------------------------------------ initialisation
def test_initialize_rbm_follows_hintons_guide():
    data = prototype_data(200)
    data[:, 0] = 0.0  # a unit that is always off: clipped, not -inf
    rbm = initialize_rbm(data, 300, seed=0)
    p = data.mean(0).clamp(1e-3, 1 - 1e-3)
    np.testing.assert_allclose(rbm.a.detach().numpy(), torch.log(p / (1 - p)).numpy(), rtol=1e-12)
    assert float(rbm.a.detach()[0]) == pytest.approx(math.log(1e-3 / (1 - 1e-3)))
    assert bool((rbm.b == 0).all())
    # 2400 weights N(0, 0.01^2): the SE of their sample std is 0.01 / sqrt(2 * 2400) = 1.4e-4
    assert abs(float(rbm.W.detach().std()) - 0.01) < 5 * 1.4e-4
    # with W = 0 the model reproduces every unit's mean
    with torch.no_grad():
        np.testing.assert_allclose(torch.sigmoid(rbm.a).detach().numpy(), p.numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "name"),
    [
        ((torch.full((3, 4), 0.5, dtype=F64), 2), {"seed": 0}, ValueError, "data"),
        ((torch.zeros(4, dtype=F64), 2), {"seed": 0}, ValueError, "data"),
        ((torch.zeros(3, 4, dtype=F64), 0), {"seed": 0}, ValueError, "n_hidden"),
        ((torch.zeros(3, 4, dtype=F64), 2), {"seed": -1}, ValueError, "seed"),
        ((torch.zeros(3, 4, dtype=F64), 2), {"seed": 0, "clip": 0.5}, ValueError, "clip"),
        ((torch.zeros(3, 4, dtype=F64), 2), {"seed": 0, "clip": "x"}, TypeError, "clip"),
        (
            (torch.zeros(3, 4, dtype=F64), 2),
            {"seed": 0, "weight_scale": -1.0},
            ValueError,
            "weight_scale",
        ),
        ((torch.zeros(3, 4, dtype=F64), 2), {"seed": 0, "dtype": torch.int32}, TypeError, "dtype"),
    ],
)
def test_initialize_rbm_bad_input(args, kwargs, error, name):
    with pytest.raises(error, match=name):
        initialize_rbm(*args, **kwargs)


# ------------------------------------------------------------------ bad input
GOOD = {"n_epochs": 1, "seed": 0}


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"n_epochs": 0}, ValueError, "n_epochs"),
        ({"negative_phase": "cd"}, TypeError, "negative_phase"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate"),
        ({"learning_rate": math.inf}, ValueError, "learning_rate"),
        ({"learning_rate": 1e300}, ValueError, "learning_rate"),  # not a float32 number
        ({"momentum": 1.0}, ValueError, "momentum"),
        ({"final_momentum": -0.1}, ValueError, "final_momentum"),
        ({"momentum_switch_epoch": -1}, ValueError, "momentum_switch_epoch"),
        ({"weight_decay": -1e-3}, ValueError, "weight_decay"),
        ({"test_data": torch.zeros(3, 5, dtype=F64)}, ValueError, "test_data"),
        ({"log_likelihood_every": -1}, ValueError, "log_likelihood_every"),
        ({"ais_chains": 1}, ValueError, "ais_chains"),
        ({"ais_temperatures": 1}, ValueError, "ais_temperatures"),
        ({"compute_dtype": torch.int64}, TypeError, "compute_dtype"),
        ({"seed": None}, TypeError, "seed"),
        ({"generator": torch.Generator()}, ValueError, "seed"),
        ({"seed": None, "generator": 3}, TypeError, "generator"),
        ({"progress": "yes"}, TypeError, "progress"),
    ],
)
def test_train_rbm_bad_input(kwargs, error, name):
    data = prototype_data(10)
    with pytest.raises(error, match=name):
        train_rbm(random_rbm(0, n_visible=8), data, **{**GOOD, **kwargs})


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (torch.full((4, 8), 0.5, dtype=F64), ValueError),
        (torch.zeros(4, 7, dtype=F64), ValueError),
        (torch.zeros(8, dtype=F64), ValueError),
        (torch.zeros(4, 8, dtype=torch.float32), TypeError),
    ],
)
def test_train_rbm_bad_data(data, error):
    with pytest.raises(error, match="data"):
        train_rbm(random_rbm(0, n_visible=8), data, **GOOD)


def test_train_rbm_rejects_non_rbm():
    with pytest.raises(TypeError, match="rbm"):
        train_rbm("rbm", prototype_data(10), **GOOD)


@pytest.mark.parametrize("function", [cd_gradient_exact, cd_gradient_sample])
def test_cd_gradients_bad_input(function):
    rbm, data = random_rbm(0), random_bits(5, 6)
    extra = {"seed": 0} if function is cd_gradient_sample else {}
    with pytest.raises(ValueError, match="k"):
        function(rbm, data, k=0, **extra)
    with pytest.raises(ValueError, match="data"):
        function(rbm, torch.full((3, 6), 0.5, dtype=F64), **extra)
    with pytest.raises(TypeError, match="rbm"):
        function(None, data, **extra)


def test_cd_gradient_exact_rejects_large_models():
    with pytest.raises(ValueError, match="n_visible=11"):
        cd_gradient_exact(random_rbm(0, n_visible=11, n_hidden=2), random_bits(3, 11))
    with pytest.raises(ValueError, match="n_hidden=15"):
        cd_gradient_exact(random_rbm(0, n_visible=6, n_hidden=15), random_bits(3, 6))


def test_cd_gradient_sample_needs_a_seed():
    with pytest.raises(TypeError, match="seed"):
        cd_gradient_sample(random_rbm(0), random_bits(3, 6))


@pytest.mark.parametrize(
    ("make", "name"),
    [(lambda: CD(0), "k"), (lambda: PCD(k=0), "k"), (lambda: PCD(n_chains=0), "n_chains")],
)
def test_negative_phases_bad_input(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_pcd_needs_started_chains():
    with pytest.raises(ValueError, match="reset"):
        PCD()(random_rbm(0), random_bits(3, 6), torch.Generator())


def test_rbm_optimizer_bad_input():
    with pytest.raises(ValueError, match="momentum"):
        rbm_optimizer(random_rbm(0), learning_rate=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="learning_rate"):
        rbm_optimizer(random_rbm(0), learning_rate=-0.1)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("phase", [CD(), PCD(), ExactNegative()], ids=repr)
def test_training_on_cuda_raises_the_log_likelihood(phase):
    data = prototype_data().to("cuda")
    rbm = initialize_rbm(data, 4, seed=0, device="cuda")
    before = exact_ll(rbm, data)
    history = train_rbm(
        rbm, data, n_epochs=60, negative_phase=phase, batch_size=10, learning_rate=0.1, seed=1
    )
    assert rbm.W.device.type == "cuda"
    assert exact_ll(rbm, data) > before + 1.5
    if isinstance(phase, PCD):
        assert history.extras["chains"].device.type == "cuda"


def test_gibbs_from_hidden_matches_plain_block_gibbs_with_the_same_noise():
    # Oracle: k plain block Gibbs steps with sigmoids and uniforms. With the same uniforms
    # (logit-transformed for the visible layer) the augmented kernel draws identical states.
    g = torch.Generator().manual_seed(3)
    M, N, B, k = 6, 4, 7, 3
    W = torch.randn(M, N, generator=g, dtype=torch.float64)
    a = torch.randn(M, generator=g, dtype=torch.float64)
    b = torch.randn(N, generator=g, dtype=torch.float64)
    x = (torch.rand(B, M, generator=g, dtype=torch.float64) < 0.5).double()
    u_h = [torch.rand(B, N, generator=g, dtype=torch.float64) for _ in range(k)]
    u_x = [torch.rand(B, M, generator=g, dtype=torch.float64) for _ in range(k)]
    x_slow = x
    for uh, ux in zip(u_h, u_x, strict=True):
        h = (uh < torch.sigmoid(b + x_slow @ W)).double()  # (B, N)
        x_slow = (ux < torch.sigmoid(a + h @ W.T)).double()  # (B, M)
    ph_slow = torch.sigmoid(b + x_slow @ W)  # (B, N)
    theta = torch.cat(
        [torch.cat([W, a[:, None]], 1), torch.cat([b, torch.tensor([math.inf])])[None]]
    )  # (M+1, N+1)
    ones = torch.ones(B, 1, dtype=torch.float64)
    ph0 = torch.sigmoid(torch.cat([x, ones], 1) @ theta)  # (B, N+1)
    x_fast, ph_fast = training.gibbs_from_hidden(
        ph0,
        theta,
        theta.T,
        [torch.cat([u, ones / 2], 1) for u in u_h],
        [torch.logit(torch.cat([u, ones / 2], 1)) for u in u_x],
    )
    assert torch.equal(x_fast[:, :-1], x_slow) and bool((x_fast[:, -1] == 1).all())
    torch.testing.assert_close(ph_fast[:, :-1], ph_slow, rtol=1e-14, atol=0.0)


def test_bad_input_gibbs_from_hidden():
    theta = torch.zeros(4, 3, dtype=torch.float64)
    ph = torch.full((2, 3), 0.5, dtype=torch.float64)
    u, ell = [torch.rand(2, 3, dtype=torch.float64)], [torch.zeros(2, 4, dtype=torch.float64)]
    with pytest.raises(TypeError, match="ph must be"):
        training.gibbs_from_hidden(ph.numpy(), theta, theta.T, u, ell)
    with pytest.raises(ValueError, match="theta_T must be"):
        training.gibbs_from_hidden(ph, theta, theta, u, ell)
    with pytest.raises(ValueError, match="ph must have"):
        training.gibbs_from_hidden(ph[:, :2], theta, theta.T, u, ell)
    with pytest.raises(ValueError, match="u_h and l_x must"):
        training.gibbs_from_hidden(ph, theta, theta.T, [], [])
    with pytest.raises(ValueError, match="u_h and l_x must"):
        training.gibbs_from_hidden(ph, theta, theta.T, u * 2, ell)
    with pytest.raises(ValueError, match="l_x must hold"):
        training.gibbs_from_hidden(ph, theta, theta.T, u, u)
