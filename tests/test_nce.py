"""Noise-contrastive estimation: the loss by its definition, its optimum, recovery of log Z."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genphys import nce
from genphys.enumeration import binary_states
from genphys.rbm import log_partition_exact


def _definition(p_d, q_d, p_n, q_n):
    """The loss written out with explicit probabilities, term by term (float64, moderate values)."""
    nu = len(p_n) / len(p_d)
    total = 0.0
    for lp, lq in zip(p_d.tolist(), q_d.tolist(), strict=True):
        r = math.exp(lp) / (math.exp(lp) + nu * math.exp(lq))  # P(data | u)
        total -= math.log(r) / len(p_d)
    for lp, lq in zip(p_n.tolist(), q_n.tolist(), strict=True):
        r = nu * math.exp(lq) / (math.exp(lp) + nu * math.exp(lq))  # P(noise | u)
        total -= nu * math.log(r) / len(p_n)
    return total


@pytest.mark.parametrize(("n_data", "n_noise"), [(5, 5), (4, 12), (9, 3)])
def test_loss_matches_its_definition(n_data, n_noise):
    g = torch.Generator().manual_seed(n_data + n_noise)
    p_d, q_d = torch.randn(2, n_data, generator=g, dtype=torch.float64) * 2
    p_n, q_n = torch.randn(2, n_noise, generator=g, dtype=torch.float64) * 2
    loss = nce.nce_loss(p_d, q_d, p_n, q_n)
    assert loss.item() == pytest.approx(_definition(p_d, q_d, p_n, q_n), rel=1e-12)


def test_loss_is_stable_for_log_densities_of_hundreds_of_nats():
    big = torch.tensor([800.0, 900.0], dtype=torch.float64)
    loss = nce.nce_loss(big, -big, -big, big)  # a perfect classifier: the loss is e^{-1600}
    assert loss.item() == 0.0
    # every data point taken for noise by 1000 nats, noise at G = 0: 1000 + log 2 exactly
    zero = torch.zeros(2, dtype=torch.float64)
    loss = nce.nce_loss(zero, zero + 1000.0, zero - 500.0, zero - 500.0)
    assert loss.item() == pytest.approx(1000.0 + math.log(2.0), rel=1e-15)


def test_population_optimum_is_the_true_model_with_c_equal_log_z(make_rbm):
    # With exact expectations over all 2^4 states (no sampling), the NCE objective is
    # stationary at the data's own RBM with c = log Z, and any perturbation increases it.
    truth = make_rbm(4, 2, scale=1.2, seed=0)
    states = binary_states(4)
    with torch.no_grad():
        log_p_true = -truth.free_energy(states) - log_partition_exact(truth)
    noise = nce.BernoulliNoise(torch.tensor([0.3, 0.5, 0.6, 0.4], dtype=torch.float64))
    log_q = noise.log_prob(states)
    for nu in (1.0, 3.0):
        model = nce.NCEModel(truth, truth.free_energy, log_z=log_partition_exact(truth).item())

        def objective(model=model, nu=nu):
            g = model(states) - log_q - math.log(nu)
            return (
                -(log_p_true.exp() * torch.nn.functional.logsigmoid(g)).sum()
                - nu * (log_q.exp() * torch.nn.functional.logsigmoid(-g)).sum()
            )

        at_truth = objective()
        grads = torch.autograd.grad(at_truth, list(model.parameters()))
        assert max(gr.abs().max().item() for gr in grads) < 1e-12
        with torch.no_grad():
            model.log_z += 0.05
        assert objective().item() > at_truth.item()


class _Gaussian(nn.Module):
    def __init__(self):
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(1, dtype=torch.float64))
        self.log_var = nn.Parameter(torch.zeros(1, dtype=torch.float64))

    def energy(self, x):
        return (0.5 * torch.exp(-self.log_var) * (x - self.mu) ** 2).sum(-1)


def test_fit_recovers_parameters_and_log_z_within_standard_errors():
    # Data N(1, 0.5^2), noise N(0, 2^2), 6 independent fits with 2000 points each. The mean
    # of each estimate must lie within 4 of its standard errors (spread over the 6 fits) of
    # the true value, or 0.01 (the optimiser's residual) when the spread is tiny.
    truth = {"mu": 1.0, "log_var": math.log(0.25), "log_z": 0.5 * math.log(2 * math.pi * 0.25)}
    noise = nce.GaussianNoise(
        torch.zeros(1, dtype=torch.float64), torch.full((1,), 2.0, dtype=torch.float64)
    )
    estimates = {k: [] for k in truth}
    for seed in range(6):
        g = torch.Generator().manual_seed(100 + seed)
        x = 1.0 + 0.5 * torch.randn(2000, 1, generator=g, dtype=torch.float64)
        energy = _Gaussian()
        model = nce.NCEModel(energy, energy.energy)
        history = nce.train_nce(
            model, x, noise, n_epochs=250, batch_size=2000, learning_rate=0.05, seed=seed
        )
        assert history["log_z"][-1] == pytest.approx(model.log_z.item())
        for name, value in (
            ("mu", energy.mu), ("log_var", energy.log_var), ("log_z", model.log_z)
        ):  # fmt: skip
            estimates[name].append(value.item())
    for name, value in truth.items():
        e = torch.tensor(estimates[name], dtype=torch.float64)
        se = e.std().item() / math.sqrt(len(e))
        assert abs(e.mean().item() - value) < 4 * se + 0.01, (name, e, value, se)
        assert se < 0.05, (name, se)


def test_noise_distributions():
    noise = nce.BernoulliNoise(torch.tensor([0.2, 0.7], dtype=torch.float64))
    total = noise.log_prob(binary_states(2)).exp().sum()
    torch.testing.assert_close(total, torch.tensor(1.0, dtype=torch.float64))
    y = noise.sample(20000, generator=torch.Generator().manual_seed(0))
    se = (0.2 * 0.8 / 20000) ** 0.5
    assert abs(y[:, 0].mean().item() - 0.2) < 5 * se
    gauss = nce.GaussianNoise(
        torch.tensor([1.0], dtype=torch.float64), torch.tensor([2.0], dtype=torch.float64)
    )
    x = torch.tensor([[0.0], [3.0]], dtype=torch.float64)
    expected = torch.distributions.Normal(1.0, 2.0).log_prob(x[:, 0].float()).double()
    torch.testing.assert_close(gauss.log_prob(x), expected, rtol=1e-6, atol=1e-6)


def test_bad_input_raises_clearly():
    t = torch.zeros(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="log_q_data must match log_p_data"):
        nce.nce_loss(t, torch.zeros(2, dtype=torch.float64), t, t)
    with pytest.raises(ValueError, match="log_p_data must contain only finite values"):
        nce.nce_loss(torch.full((3,), math.nan, dtype=torch.float64), t, t, t)
    with pytest.raises(ValueError, match="p must lie strictly between 0 and 1"):
        nce.BernoulliNoise(torch.tensor([0.0, 0.5], dtype=torch.float64))
    with pytest.raises(ValueError, match="std must be positive"):
        nce.GaussianNoise(torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64))
    with pytest.raises(TypeError, match="model must be an NCEModel"):
        nce.train_nce("model", torch.zeros(3, 1), None, n_epochs=1, seed=0)
    energy = _Gaussian()
    with pytest.raises(TypeError, match="noise must have log_prob and sample"):
        nce.train_nce(
            nce.NCEModel(energy, energy.energy), torch.zeros(3, 1), None, n_epochs=1, seed=0
        )


def test_loss_gradient_matches_float64_finite_differences(make_rbm, make_binary_data):
    rbm = make_rbm(5, 3, seed=4)
    model = nce.NCEModel(rbm, rbm.free_energy, log_z=2.0)
    noise = nce.BernoulliNoise(torch.full((5,), 0.4, dtype=torch.float64))
    x = make_binary_data(8, 5, seed=5)
    y = noise.sample(16, seed=6)

    def loss():
        return nce.nce_loss(model(x), noise.log_prob(x), model(y), noise.log_prob(y))

    names = [name for name, _ in model.named_parameters()]
    grads = torch.autograd.grad(loss(), list(model.parameters()))
    eps = 1e-6
    for name, p, grad in zip(names, model.parameters(), grads, strict=True):
        flat = p.data.view(-1)
        for i in range(flat.numel()):
            old = flat[i].item()
            with torch.no_grad():
                flat[i] = old + eps
                up = loss().item()
                flat[i] = old - eps
                down = loss().item()
                flat[i] = old
            assert abs(grad.view(-1)[i].item() - (up - down) / (2 * eps)) < 1e-8, (name, i)


def test_noise_log_prob_checks_the_trailing_dimension_and_dtype():
    # Broadcasting (5, 1) against a 3-D Gaussian would return the density of the 3-D origin.
    gauss = nce.GaussianNoise(torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 3\).*Got shape \(5, 1\)"):
        gauss.log_prob(torch.zeros(5, 1))
    with pytest.raises(ValueError, match="x must have 2 dimensions"):
        gauss.log_prob(torch.zeros(3))
    bern = nce.BernoulliNoise(torch.full((3,), 0.5, dtype=torch.float64))
    with pytest.raises(TypeError, match="x must have dtype torch.float64.*Got dtype torch.float32"):
        bern.log_prob(torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 3\)"):
        bern.log_prob(torch.zeros(5, 2, dtype=torch.float64))
    assert gauss.dim == 3 and bern.dim == 3


def test_parameterless_model_and_noise_of_the_wrong_dimension_are_refused():
    with pytest.raises(ValueError, match="model must have at least one parameter"):
        nce.NCEModel(nn.Identity(), lambda x: x.sum(-1))
    energy = _Gaussian()
    noise = nce.GaussianNoise(
        torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    )
    with pytest.raises(ValueError, match=r"noise must have the dimension of the data \(1\)"):
        nce.train_nce(
            nce.NCEModel(energy, energy.energy),
            torch.zeros(3, 1, dtype=torch.float64),
            noise,
            n_epochs=1,
            seed=0,
        )
