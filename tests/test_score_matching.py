"""Score matching: closed forms for Gaussians, the Fisher-divergence identity by quadrature, DSM."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genphys import score_matching as sm
from genphys.grid import Grid
from genphys.mixtures import GaussianMixture


class Gaussian(nn.Module):
    """E(x) = sum_d (x_d - mu_d)^2 / (2 var_d), var = exp(log_var)."""

    def __init__(self, mu, log_var):
        super().__init__()
        self.mu = nn.Parameter(torch.as_tensor(mu, dtype=torch.float64))
        self.log_var = nn.Parameter(torch.as_tensor(log_var, dtype=torch.float64))

    def energy(self, x):
        return (0.5 * (x - self.mu) ** 2 * torch.exp(-self.log_var)).sum(-1)


def test_score_and_objective_of_a_gaussian_have_their_closed_forms():
    model = Gaussian([0.3, -1.0], [0.2, -0.4])
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        prec = torch.exp(-model.log_var)
        expected_score = -(x - model.mu) * prec
        # J = mean[ 1/2 |P (x - mu)|^2 - tr P ]
        expected_j = (0.5 * ((x - model.mu) * prec) ** 2).sum(1).mean() - prec.sum()
    torch.testing.assert_close(sm.model_score(model.energy, x), expected_score)
    torch.testing.assert_close(sm.score_matching_loss(model.energy, x).detach(), expected_j)


@pytest.mark.parametrize("dim", [1, 2])
def test_objective_is_the_fisher_divergence_up_to_a_constant(dim):
    # E_p[1/2 |s_theta|^2 + div s_theta] = 1/2 E_p |s_theta - s_p|^2 - 1/2 E_p |s_p|^2,
    # both sides by the midpoint rule on a grid (error ~1e-9 for these smooth densities).
    means = [[-1.5] * dim, [1.0] * dim]
    p = GaussianMixture([0.4, 0.6], means, [0.6, 0.8])
    grid = Grid(-9.0, 9.0, 3000 if dim == 1 else 500, dim=dim)
    weights = grid.cell_probabilities(p.log_prob(grid.points))  # (C,)
    s_p = p.grad_log_prob(grid.points)  # (C, D)
    for mu, log_var in ((0.0, 0.0), (0.7, 0.9), (-2.0, -1.0)):
        model = Gaussian([mu] * dim, [log_var] * dim)
        terms = sm.hyvarinen_terms(model.energy, grid.points).detach()  # (C,)
        s_theta = sm.model_score(model.energy, grid.points)
        lhs = (weights * terms).sum()
        fisher = 0.5 * (weights * ((s_theta - s_p) ** 2).sum(1)).sum()
        constant = 0.5 * (weights * (s_p**2).sum(1)).sum()
        torch.testing.assert_close(lhs, fisher - constant, rtol=0, atol=1e-7)


def test_objective_gradient_matches_float64_finite_differences():
    model = Gaussian([0.3, -1.0], [0.2, -0.4])
    x = torch.randn(20, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    loss = sm.score_matching_loss(model.energy, x)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    eps = 1e-6
    for name, p, grad in zip(("mu", "log_var"), model.parameters(), grads, strict=True):
        for i in range(p.numel()):
            old = p.data[i].item()
            p.data[i] = old + eps
            up = sm.score_matching_loss(model.energy, x).item()
            p.data[i] = old - eps
            down = sm.score_matching_loss(model.energy, x).item()
            p.data[i] = old
            assert abs(grad[i].item() - (up - down) / (2 * eps)) < 1e-7, (name, i)


def test_score_matching_fit_of_a_gaussian_is_the_maximum_likelihood_fit():
    # For a Gaussian family J is minimised by the sample mean and the (biased) sample variance.
    g = torch.Generator().manual_seed(2)
    x = 1.5 + 0.7 * torch.randn(400, 1, generator=g, dtype=torch.float64)
    model = Gaussian([0.0], [0.0])
    sm.train_score_matching(
        model, model.energy, x, n_epochs=600, batch_size=400, learning_rate=0.02, seed=0
    )
    torch.testing.assert_close(model.mu.detach(), x.mean(0), rtol=0, atol=1e-4)
    torch.testing.assert_close(
        torch.exp(model.log_var.detach()), x.var(0, unbiased=False), rtol=1e-3, atol=0
    )


def test_denoising_loss_has_its_expected_value():
    # Data N(m, tau^2), model Gaussian with precision lam and mean mu:
    # E[1/2 (lam (x + sigma eps - mu) - eps / sigma)^2]
    #   = 1/2 [lam^2 ((m - mu)^2 + tau^2 + sigma^2) - 2 lam + 1 / sigma^2].
    # 40 independent estimates with n = 2000; their mean must be within 5 standard errors.
    m, tau, sigma, mu, log_var = 0.5, 1.2, 0.3, 0.1, 0.4
    lam = math.exp(-log_var)
    expected = 0.5 * (lam**2 * ((m - mu) ** 2 + tau**2 + sigma**2) - 2 * lam + 1 / sigma**2)
    model = Gaussian([mu], [log_var])
    g = torch.Generator().manual_seed(3)
    values = []
    for _ in range(40):
        x = m + tau * torch.randn(2000, 1, generator=g, dtype=torch.float64)
        values.append(sm.denoising_score_matching_loss(model.energy, x, sigma, generator=g).item())
    values = torch.tensor(values, dtype=torch.float64)
    se = values.std() / math.sqrt(len(values))
    assert abs(values.mean().item() - expected) < 5 * se.item(), (values.mean(), expected, se)


def test_denoising_fit_learns_the_blurred_data():
    # The DSM minimiser is the score of the data convolved with N(0, sigma^2): variance
    # tau^2 + sigma^2. With 4000 points the sample variance has relative SE sqrt(2/4000) = 2.2%;
    # the noise of the fitted loss adds about as much: allow 10%.
    tau, sigma = 0.8, 0.6
    x = tau * torch.randn(4000, 1, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    model = Gaussian([0.5], [0.0])
    sm.train_score_matching(
        model, model.energy, x, n_epochs=40, method="denoising", sigma=sigma,
        batch_size=500, learning_rate=0.03, seed=0,
    )  # fmt: skip
    var = math.exp(model.log_var.item())
    assert abs(var / (tau**2 + sigma**2) - 1) < 0.1, var
    assert abs(model.mu.item()) < 0.1


def test_bad_input_raises_clearly():
    model = Gaussian([0.0], [0.0])
    x = torch.zeros(3, 1, dtype=torch.float64)
    with pytest.raises(TypeError, match="energy must be callable"):
        sm.score_matching_loss("energy", x)
    with pytest.raises(ValueError, match="energy must return one value per row"):
        sm.score_matching_loss(lambda x: x, torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="x must have 2 dimensions"):
        sm.score_matching_loss(model.energy, torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="sigma must be a finite number > 0"):
        sm.denoising_score_matching_loss(model.energy, x, 0.0, seed=0)
    with pytest.raises(ValueError, match="method must be 'exact' or 'denoising'"):
        sm.train_score_matching(model, model.energy, x, n_epochs=1, method="sliced", seed=0)
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        sm.train_score_matching(None, model.energy, x, n_epochs=1, seed=0)


@pytest.mark.parametrize("trainable", [False, True])
def test_a_linear_energy_has_a_constant_score_and_zero_laplacian(trainable):
    # E = w.x: s = -w everywhere, so the terms are |w|^2 / 2 with no divergence, and their
    # gradient in w is w (per sample). This valid energy used to crash in autograd.
    w = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=trainable)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    terms = sm.hyvarinen_terms(lambda x: x @ w, x)
    half_norm = 0.5 * float((w.detach() ** 2).sum())
    torch.testing.assert_close(terms.detach(), torch.full((5,), half_norm, dtype=torch.float64))
    if trainable:
        terms.mean().backward()
        torch.testing.assert_close(w.grad, w.detach())
