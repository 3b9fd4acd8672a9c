"""Tests for genphys.training: CD-k and PCD, checked against exact enumeration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from genphys.rbm import (
    BernoulliRBM,
    log_likelihood_exact,
    log_likelihood_gradient_exact,
)
from genphys.training import (
    EpochRecord,
    TrainingDivergedError,
    TrainingHistory,
    _sgd_step,
    cd_gradient_exact,
    cd_gradient_sample,
    initialize_rbm,
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


@pytest.mark.parametrize(("method", "n_chains"), [("cd", None), ("pcd", None), ("pcd", 50)])
def test_one_training_step_moves_the_parameters_by_the_cd_gradient(method, n_chains):
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
            method=method,
            k=2,
            batch_size=30,
            learning_rate=lr,
            momentum=0.0,
            final_momentum=0.0,
            n_chains=n_chains,
            compute_dtype=None,
            seed=s,
        )
        steps.append((flat(rbm) - flat(rbm0)).detach())
    steps = torch.stack(steps)
    z = (steps.mean(0) - expected) / (steps.std(0) / math.sqrt(150))
    assert float(z.abs().max()) < 5, z


# ----------------------------------------------------------------- training
@pytest.mark.parametrize(("method", "k"), [("cd", 1), ("pcd", 1), ("cd", 5)])
def test_training_raises_the_exact_log_likelihood(method, k):
    data = prototype_data()
    rbm = initialize_rbm(data, 4, seed=0)
    before = exact_ll(rbm, data)
    history = train_rbm(
        rbm,
        data,
        n_epochs=100,
        method=method,
        k=k,
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
    np.testing.assert_allclose(history.train_log_likelihood[-1], after, rtol=1e-9)
    ll = history.train_log_likelihood[~np.isnan(history.train_log_likelihood)]
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
        method="pcd",
        batch_size=60,
        n_chains=4000,
        learning_rate=1e-30,
        compute_dtype=None,
        seed=0,
    )
    se = torch.sqrt(expected * (1 - expected) / 4000)
    z = (history.chains.mean(0) - expected) / se
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
        method="pcd",
        batch_size=10,
        learning_rate=0.1,
        final_momentum=0.9,
        log_likelihood_every=5,
        seed=1,
    )
    ll = history.train_log_likelihood[~np.isnan(history.train_log_likelihood)]
    assert np.all(np.isfinite(ll)) and bool(torch.isfinite(rbm.W.detach()).all())


def test_history_records():
    data, test = prototype_data(60, seed=0), prototype_data(30, seed=1)
    rbm = initialize_rbm(data, 3, seed=0)
    history = train_rbm(
        rbm,
        data,
        n_epochs=7,
        method="pcd",
        batch_size=20,
        test_data=test,
        log_likelihood_every=3,
        seed=0,
        momentum_switch_epoch=2,
        final_momentum=0.9,
    )
    assert isinstance(history, TrainingHistory) and len(history) == 7
    assert all(isinstance(r, EpochRecord) for r in history.records)
    np.testing.assert_array_equal(history.epochs, np.arange(1, 8))
    assert np.all(history.seconds > 0) and np.all(np.isfinite(history.reconstruction_error))
    monitored = ~np.isnan(history.train_log_likelihood)
    np.testing.assert_array_equal(np.flatnonzero(monitored) + 1, [3, 6, 7])
    assert np.all(~np.isnan(history.test_log_likelihood[monitored]))
    np.testing.assert_allclose(history.test_log_likelihood[-1], exact_ll(rbm, test), rtol=1e-9)
    assert list(history.log_likelihood_se[monitored]) == [0.0, 0.0, 0.0]
    assert [r.momentum for r in history.records] == [0.5, 0.5, 0.9, 0.9, 0.9, 0.9, 0.9]
    assert set(history.as_dict()) == set(EpochRecord.__dataclass_fields__)
    assert history.chains.shape == (100, 8)  # max(batch_size, 100) chains by default
    assert bool(((history.chains == 0) | (history.chains == 1)).all())
    with pytest.raises(ValueError, match="name"):
        history.column("loss")


@pytest.mark.parametrize(("method", "final"), [("cd", 0.9), ("pcd", 0.5)])
def test_default_momentum_schedule_depends_on_the_method(method, final):
    data = prototype_data(20)
    rbm = initialize_rbm(data, 2, seed=0)
    history = train_rbm(rbm, data, n_epochs=7, method=method, batch_size=10, seed=0)
    assert [r.momentum for r in history.records] == [0.5] * 5 + [final] * 2


def test_reconstruction_error_definition():
    data = prototype_data(30)
    rbm = initialize_rbm(data, 3, seed=0)
    history = train_rbm(rbm, data, n_epochs=1, batch_size=30, compute_dtype=None, seed=0)
    with torch.no_grad():
        recon = rbm.prob_x_given_h(rbm.prob_h_given_x(data))
        expected = float(((data - recon) ** 2).sum(1).mean())
    np.testing.assert_allclose(history.reconstruction_error[0], expected, rtol=1e-10)


def test_cd_training_has_no_chains_and_same_seed_is_reproducible():
    data = prototype_data(30)
    runs = []
    for _ in range(2):
        rbm = initialize_rbm(data, 3, seed=0)
        history = train_rbm(rbm, data, n_epochs=3, method="cd", batch_size=7, seed=4)
        runs.append(flat(rbm).detach())
    assert history.chains is None
    assert torch.equal(runs[0], runs[1])


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
    record = history.records[-1]
    assert record.log_likelihood_method == "ais" and record.log_likelihood_se > 0
    assert math.isfinite(record.train_log_likelihood)


def test_progress_bar_runs():
    data = prototype_data(20)
    rbm = initialize_rbm(data, 2, seed=0)
    history = train_rbm(rbm, data, n_epochs=2, batch_size=10, progress=True, seed=0)
    assert len(history) == 2


# ----------------------------------------------------- momentum, weight decay
def test_weight_decay_shrinks_w_when_the_data_carry_no_signal():
    # Identical positive and negative statistics: the gradient is exactly zero, so one
    # step multiplies W by (1 - lr * lambda) and leaves the biases alone.
    theta = torch.randn(7, 5, dtype=F64, generator=torch.Generator().manual_seed(0))
    before = theta.clone()
    x = torch.ones(4, 7, dtype=F64)
    p = torch.rand(4, 5, dtype=F64, generator=torch.Generator().manual_seed(1))
    _sgd_step(
        theta,
        torch.zeros_like(theta),
        x.T,
        p,
        x.T,
        p,
        learning_rate=0.1,
        momentum=0.0,
        weight_decay=0.5,
    )
    np.testing.assert_allclose(theta[:-1, :-1].numpy(), 0.95 * before[:-1, :-1].numpy(), atol=1e-14)
    np.testing.assert_allclose(theta[-1].numpy(), before[-1].numpy(), atol=1e-14)
    np.testing.assert_allclose(theta[:, -1].numpy(), before[:, -1].numpy(), atol=1e-14)


def test_momentum_accumulates_a_constant_gradient():
    # A constant gradient g with momentum mu: after n steps v = lr g (1 - mu^n) / (1 - mu).
    theta = torch.zeros(3, 3, dtype=F64)
    velocity = torch.zeros_like(theta)
    x0, p0 = torch.ones(2, 3, dtype=F64), torch.full((2, 3), 0.75, dtype=F64)
    xk, pk = torch.ones(2, 3, dtype=F64), torch.full((2, 3), 0.25, dtype=F64)
    mu, lr = 0.9, 0.1
    for _ in range(5):
        _sgd_step(
            theta, velocity, x0.T, p0, xk.T, pk, learning_rate=lr, momentum=mu, weight_decay=0.0
        )
    g = 0.5  # 0.75 - 0.25 in every entry
    expected_v = lr * g * (1 - mu**5) / (1 - mu)
    np.testing.assert_allclose(velocity.numpy(), expected_v, rtol=1e-12)
    expected_theta = sum(lr * g * (1 - mu**n) / (1 - mu) for n in range(1, 6))
    np.testing.assert_allclose(theta.numpy(), expected_theta, rtol=1e-12)


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
def test_divergence_raises_and_keeps_the_last_finite_parameters():
    # A learning rate of 1e308 overflows float64 within the first epoch.
    data = prototype_data()
    rbm = initialize_rbm(data, 4, seed=0)
    saved = flat(rbm).detach().clone()
    with pytest.raises(TrainingDivergedError, match="epoch 1") as info:
        train_rbm(
            rbm, data, n_epochs=3, batch_size=10, learning_rate=1e308, compute_dtype=None, seed=0
        )
    assert isinstance(info.value, FloatingPointError)
    assert info.value.epoch == 1 and info.value.quantity in ("W", "a", "b")
    assert info.value.quantity in str(info.value) and "before training" in str(info.value)
    assert len(info.value.history) == 0
    assert torch.equal(flat(rbm).detach(), saved)


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
        ({"method": "exact"}, ValueError, "method"),
        ({"k": 0}, ValueError, "k"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate"),
        ({"learning_rate": math.inf}, ValueError, "learning_rate"),
        ({"learning_rate": 1e300}, ValueError, "learning_rate"),  # not a float32 number
        ({"momentum": 1.0}, ValueError, "momentum"),
        ({"final_momentum": -0.1}, ValueError, "final_momentum"),
        ({"momentum_switch_epoch": -1}, ValueError, "momentum_switch_epoch"),
        ({"weight_decay": -1e-3}, ValueError, "weight_decay"),
        ({"n_chains": 0}, ValueError, "n_chains"),
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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_on_cuda_raises_the_log_likelihood():
    data = prototype_data().to("cuda")
    rbm = initialize_rbm(data, 4, seed=0, device="cuda")
    before = exact_ll(rbm, data)
    train_rbm(rbm, data, n_epochs=60, batch_size=10, learning_rate=0.1, seed=1)
    assert rbm.W.device.type == "cuda"
    assert exact_ll(rbm, data) > before + 1.5
