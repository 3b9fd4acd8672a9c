"""Tests of genphys.ebm: exact grid references, the sampled gradient, the buffer, training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from memory_helpers import assert_fits

from genphys import ebm, langevin, mixtures
from genphys.fitting import TrainingDivergedError
from genphys.grid import Grid


def small_model(seed: int = 0, quadratic: float = 0.5) -> ebm.EnergyMLP:
    return ebm.EnergyMLP(hidden=8, n_layers=2, quadratic=quadratic, seed=seed)


def test_log_partition_of_a_pure_quadratic_energy_is_closed_form():
    model = small_model()
    with torch.no_grad():
        last = model.net[-1]
        last.weight.zero_()
        last.bias.fill_(0.7)
    # E = 0.7 + c |x|^2  =>  Z = e^{-0.7} pi / c in 2D
    grid = Grid(-8.0, 8.0, 400)
    exact = -0.7 + math.log(math.pi / 0.5)
    assert abs(float(ebm.exact_log_partition(model, grid).detach()) - exact) < 1e-10


def test_exact_gradient_is_the_gradient_of_the_exact_log_likelihood():
    model = small_model(seed=1)
    grid = Grid(-7.0, 7.0, 120)
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    grad = ebm.exact_log_likelihood_gradient(model, x, grid)
    ll = ebm.exact_log_likelihood(model, x, grid)
    auto = torch.autograd.grad(ll, list(model.parameters()))
    for (name, g), a in zip(grad.items(), auto, strict=True):
        np.testing.assert_allclose(g, a, rtol=1e-10, atol=1e-12, err_msg=name)
    # central finite differences in float64 on a few entries of each parameter
    for name, p in model.named_parameters():
        flat = p.data.view(-1)
        for i in (0, flat.numel() - 1):
            old = float(flat[i])
            with torch.no_grad():
                flat[i] = old + 1e-5
                up = float(ebm.exact_log_likelihood(model, x, grid).detach())
                flat[i] = old - 1e-5
                down = float(ebm.exact_log_likelihood(model, x, grid).detach())
                flat[i] = old
            fd = (up - down) / 2e-5
            assert abs(fd - float(grad[name].view(-1)[i])) < 1e-6, (name, i)


def test_langevin_negative_phase_agrees_with_the_exact_grid_gradient():
    model = small_model(seed=2)
    grid = Grid(-7.0, 7.0, 200)
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for p in model.parameters():
        p.requires_grad_(False)
    # MALA is exact for any step; 4000 chains from N(0, I), 300 steps; last states independent
    chain, rate = langevin.sample(
        ebm.log_prob_of(model),
        torch.randn(4000, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64),
        step_size=0.2,
        n_steps=300,
        method="mala",
        seed=4,
    )
    for p in model.parameters():
        p.requires_grad_(True)
    samples = chain[:, -1]
    exact = ebm.exact_log_likelihood_gradient(model, x, grid)
    estimate = ebm.estimate_log_likelihood_gradient(model, x, samples)
    # per-sample gradients of E give the standard error of the model term (the data term is
    # the same in both); tolerance 5 SE per entry, for about 100 entries
    params = dict(model.named_parameters())

    def energy_one(p, xi):
        return torch.func.functional_call(model, p, (xi[None],))[0]

    per_sample = torch.func.vmap(torch.func.grad(energy_one), in_dims=(None, 0))(params, samples)
    worst = 0.0
    for name, g in exact.items():
        se = per_sample[name].detach().std(0) / math.sqrt(samples.shape[0])
        noisy = se > 0  # the output bias has dE/db = 1 everywhere: both terms cancel exactly
        if not bool(noisy.any()):
            assert float((estimate[name] - g).abs().max()) < 1e-12
            continue
        z = ((estimate[name] - g)[noisy] / se[noisy]).abs()
        worst = max(worst, float(z.max()))
    assert worst < 5.0
    assert 0.5 < rate < 1.0


def test_contrastive_loss_gradient_is_minus_the_estimated_gradient():
    model = small_model(seed=3)
    g = torch.Generator().manual_seed(5)
    x, x_fake = (torch.randn(30, 2, generator=g, dtype=torch.float64) for _ in range(2))
    loss = ebm.contrastive_loss(model(x), model(x_fake), alpha=0.0)
    auto = torch.autograd.grad(loss, list(model.parameters()))
    estimate = ebm.estimate_log_likelihood_gradient(model, x, x_fake)
    for (name, e), a in zip(estimate.items(), auto, strict=True):
        np.testing.assert_allclose(-e, a, rtol=1e-12, atol=1e-14, err_msg=name)
    # the regulariser
    e_real, e_fake = torch.tensor([1.0, 3.0]), torch.tensor([2.0])
    assert float(ebm.contrastive_loss(e_real, e_fake, 0.5)) == pytest.approx(
        2.0 - 2.0 + 0.5 * (5.0 + 4.0)
    )


def test_replay_buffer_restarts_the_stated_fraction():
    buffer = ebm.ReplayBuffer(1000, 3, low=2.0, high=4.0, seed=0)
    assert float(buffer.samples.min()) >= 2.0 and float(buffer.samples.max()) <= 4.0
    buffer.samples.zero_()
    g = torch.Generator().manual_seed(1)
    n, fraction = 20_000, 0.05
    x_init, index = buffer.draw(n, fraction, g)
    fresh = (x_init != 0).all(1).double().mean()
    se = math.sqrt(fraction * (1 - fraction) / n)  # binomial standard error
    assert abs(float(fresh) - fraction) < 4.5 * se
    buffer.store(index[:5], torch.full((5, 3), 7.0, dtype=torch.float64))
    assert bool((buffer.samples[index[:5]] == 7.0).all())


def test_heuristic_sampler_without_noise_descends_the_energy_inside_the_box():
    model = small_model(seed=4)
    for p in model.parameters():
        p.requires_grad_(False)
    sampler = ebm.heuristic_sampler(
        step_size=10.0, n_steps=1, noise_std=0.0, grad_clip=0.03, low=-1, high=1
    )
    x = 2 * torch.rand(200, 2, generator=torch.Generator().manual_seed(6), dtype=torch.float64) - 1
    y = sampler(x, ebm.log_prob_of(model), torch.Generator().manual_seed(0))
    assert float(y.abs().max()) <= 1.0
    assert float((y - x).abs().max()) <= 0.3 + 1e-12  # step * clip
    assert float(model(y).mean().detach()) < float(model(x).mean().detach())


@pytest.mark.slow
def test_trained_model_reaches_the_data_density_within_a_stated_margin():
    data = mixtures.ring()  # 8 modes, radius 2, std 0.2
    x_train, x_test = data.sample(2000, seed=1), data.sample(2000, seed=2)
    reference = float(data.log_prob(x_test).mean())  # the data density's own, exact
    grid = Grid(-4.0, 4.0, 160)
    model = ebm.EnergyMLP(seed=0)
    before = float(ebm.exact_log_likelihood(model, x_test, grid).detach())
    history = ebm.train(
        model,
        x_train,
        sampler=ebm.langevin_sampler(0.01, 10),
        n_epochs=12,
        batch_size=64,
        learning_rate=3e-3,
        alpha=0.01,
        seed=0,
    )
    after = float(ebm.exact_log_likelihood(model, x_test, grid).detach())
    assert len(history) == 12 and "energy_samples" in history
    # measured: reference -1.67, before -3.8, after about -2.4; the margin is 1 nat per point
    assert after > before + 1.0
    assert after > reference - 1.0
    assert after < reference + 0.05  # no model beats the true density by more than noise


def test_cnn_energies_and_digits():
    x_train, x_test = ebm.load_digits_continuous()
    assert x_train.shape == (1438, 64) and x_test.shape == (359, 64)
    assert float(x_train.min()) == -1.0 and float(x_train.max()) == 1.0
    model = ebm.EnergyCNN(channels=4, seed=0)
    assert model(x_train[:5]).shape == (5,)
    with pytest.raises(ValueError, match=r"x must be a tensor of shape \(n, 64\)"):
        model(x_train[:5, :10])
    with pytest.raises(TypeError, match="x must have the model's dtype"):
        model(x_train[:5].double())


def test_training_stops_with_the_epoch_when_the_sampler_diverges():
    model = small_model(seed=5, quadratic=0.5)
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(TrainingDivergedError, match="epoch 1, mini-batch 0: samples_finite"):
        ebm.train(model, x, sampler=ebm.langevin_sampler(50.0, 200), n_epochs=2, seed=0)
    for p, b in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, b)


def test_bad_input_is_named():
    model = small_model()
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\)"):
        ebm.exact_log_likelihood(model, torch.zeros(3, 3, dtype=torch.float64), Grid(-1, 1, 10))
    with pytest.raises(TypeError, match="grid must be a genphys.grid.Grid of dim 2"):
        ebm.exact_log_partition(model, Grid(-1, 1, 10, dim=1))
    with pytest.raises(ValueError, match="data must contain only finite values"):
        ebm.train(
            model,
            torch.full((4, 2), math.nan, dtype=torch.float64),
            sampler=ebm.langevin_sampler(0.1, 1),
            n_epochs=1,
            seed=0,
        )
    with pytest.raises(ValueError, match="reinit_fraction must be a number in"):
        ebm.train(
            model,
            torch.zeros(4, 2, dtype=torch.float64),
            sampler=ebm.langevin_sampler(0.1, 1),
            n_epochs=1,
            reinit_fraction=2.0,
            seed=0,
        )
    with pytest.raises(ValueError, match="step_size must be a finite number > 0"):
        ebm.langevin_sampler(-1.0, 3)
    with pytest.raises(TypeError, match="model must be an energy network"):
        ebm.log_prob_of(lambda x: x)


def test_exercise_solutions_are_the_library_functions():
    from genphys.exercises import ch10

    for args in ch10._loss_cases():
        assert float(ch10.contrastive_loss(*args)) == pytest.approx(
            float(ebm.contrastive_loss(*args)), rel=1e-14
        )
    for buffer, n, fraction, g in ch10._replay_cases():
        replay = ebm.ReplayBuffer(buffer.shape[0], buffer.shape[1], seed=0)
        replay.samples = buffer.clone()
        g2 = torch.Generator().manual_seed(0)
        g2.set_state(g.get_state())
        want, _ = replay.draw(n, fraction, g2)
        assert torch.equal(ch10.replay_starts(buffer, n, fraction, g), want)


def test_exact_log_partition_with_gradients_stays_within_a_memory_cap():
    # 160 000 grid cells through a 64-wide MLP with gradients: the activations of every cell
    # and their graph were ~0.5 GB; chunks of cells with a per-chunk backward need ~100 MB.
    assert_fits(
        """
        from genphys import ebm
        from genphys.grid import Grid
        model = ebm.EnergyMLP(2, seed=0)
        ebm.exact_log_partition(model, Grid(-4.0, 4.0, 400)).backward()
        assert all(p.grad is not None for p in model.parameters())
        """,
        extra_mb=450,  # the old path needed about 0.5 GB; the chunked one about 100 MB
    )


def test_exact_log_partition_gradient_matches_a_one_shot_sum():
    model = ebm.EnergyMLP(2, seed=1)
    grid = Grid(-3.0, 3.0, 30)
    ebm.exact_log_partition(model, grid).backward()
    mine = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    (torch.logsumexp(-model(grid.points), 0) + math.log(grid.cell_volume)).backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(mine[name], p.grad, rtol=1e-10, atol=1e-12)


def test_hostile_constructor_and_buffer_arguments_are_named():
    with pytest.raises(TypeError, match="dtype must be a floating torch.dtype"):
        ebm.EnergyMLP(2, dtype=torch.int64, seed=0)
    with pytest.raises(TypeError, match="low must be a finite number.*'a'"):
        ebm.ReplayBuffer(10, 2, low="a", seed=0)
    with pytest.raises(ValueError, match="low must be smaller than high"):
        ebm.heuristic_sampler(low=1.0, high=-1.0)
    buffer = ebm.ReplayBuffer(10, 2, seed=0)
    with pytest.raises(ValueError, match=r"x must have shape \(3, 2\)"):
        buffer.store(torch.arange(3), torch.zeros(3, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"index must lie in 0 \.\.\. 9"):
        buffer.store(torch.tensor([0, 10]), torch.zeros(2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
        ebm.contrastive_loss(torch.zeros(3), torch.zeros(3), -0.1)


def test_a_float32_grid_serves_a_float64_model():
    # The grid's points are cast to the model's dtype: no internal name, no dtype error
    model = ebm.EnergyMLP(2, seed=0)
    g64 = Grid(-3.0, 3.0, 40)
    g32 = Grid(-3.0, 3.0, 40, dtype=torch.float32)
    torch.testing.assert_close(
        ebm.exact_log_partition(model, g32), ebm.exact_log_partition(model, g64), rtol=1e-6, atol=0
    )
