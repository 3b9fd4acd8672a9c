"""Tests for genphys.regularized_autoencoder: sparsity penalties, corruption, denoising, the score link.

Oracles: brute-force loops over code units and data points; ``torch.distributions``'
Bernoulli KL; float64 central finite differences of the penalties; the closed-form optimal
denoiser of Gaussian data against Tweedie's formula and against a least-squares fit;
statistical properties of the corruptions with tolerances of a few standard errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Bernoulli, kl_divergence

from genphys.autoencoder import Autoencoder, bernoulli_cross_entropy
from genphys.fitting import History, TrainingDivergedError
from genphys.regularized_autoencoder import (
    dae_score,
    denoising_loss,
    gaussian_corruption,
    gaussian_denoiser,
    gaussian_score,
    kl_sparsity_penalty,
    l1_sparsity_penalty,
    masking_corruption,
    mean_activation,
    train_regularized_autoencoder,
)

F64 = torch.float64


def _codes(seed: int, n: int = 7, d: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g, dtype=F64)


def _central_difference(f, x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    grad = torch.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        up, down = x.clone(), x.clone()
        up[idx] += eps
        down[idx] -= eps
        grad[idx] = (f(up) - f(down)) / (2 * eps)
    return grad


# ================================================================ sparsity penalties
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_l1_penalty_matches_loops(seed):
    h = 2 * _codes(seed) - 1  # signs of both kinds
    brute = sum(abs(h[k, j].item()) for k in range(h.shape[0]) for j in range(h.shape[1]))
    np.testing.assert_allclose(l1_sparsity_penalty(h).item(), brute / h.shape[0], rtol=1e-14)


def test_mean_activation_is_column_mean():
    h = _codes(3)
    np.testing.assert_allclose(
        mean_activation(h), [h[:, j].sum().item() / h.shape[0] for j in range(5)], rtol=1e-14
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("rho", [0.05, 0.5, 0.9])
def test_kl_penalty_matches_torch_distributions(seed, rho):
    h = _codes(seed)
    rho_hat = h.mean(0)
    oracle = kl_divergence(
        Bernoulli(probs=torch.full_like(rho_hat, rho)), Bernoulli(probs=rho_hat)
    ).sum()
    np.testing.assert_allclose(kl_sparsity_penalty(h, rho).item(), oracle.item(), rtol=1e-12)


def test_kl_penalty_zero_at_target_and_positive_elsewhere():
    h = torch.full((4, 3), 0.2, dtype=F64)
    assert kl_sparsity_penalty(h, 0.2).item() == pytest.approx(0.0, abs=1e-15)
    assert kl_sparsity_penalty(h, 0.3).item() > 0


def test_kl_penalty_rarely_active_unit_is_finite_and_accurate():
    # the naive ratio rho / rho_hat overflows to inf for rho_hat ~ 1e-310; the difference
    # of logarithms stays exact: KL ≈ rho (log rho - log rho_hat) + (1 - rho) log(1 - rho)
    rho_hat = 1e-310
    h = torch.tensor([[rho_hat * 4], [0.0], [0.0], [0.0]], dtype=F64)  # mean 1e-310
    expected = 0.1 * (math.log(0.1) - math.log(h.mean().item())) + 0.9 * math.log(0.9)
    value = kl_sparsity_penalty(h, 0.1).item()
    assert math.isfinite(value)
    np.testing.assert_allclose(value, expected, rtol=1e-12)
    assert torch.isinf(0.1 / h.mean())  # the ratio a careless formula would form


@pytest.mark.parametrize("penalty", ["l1", "kl"])
def test_penalty_gradients_match_finite_differences(penalty):
    h = (0.1 + 0.8 * _codes(5)).requires_grad_(True)  # away from 0 and 1

    def f(v):
        return l1_sparsity_penalty(v) if penalty == "l1" else kl_sparsity_penalty(v, 0.15)

    f(h).backward()
    numeric = _central_difference(lambda v: f(v).item(), h.detach())
    np.testing.assert_allclose(h.grad, numeric, rtol=1e-6, atol=1e-8)


def test_penalty_errors():
    with pytest.raises(TypeError, match="h must be a floating-point tensor"):
        l1_sparsity_penalty([[1.0, 2.0]])
    with pytest.raises(ValueError, match="h must have 2 dimensions"):
        l1_sparsity_penalty(torch.ones(3, dtype=F64))
    with pytest.raises(ValueError, match="h must contain only finite values"):
        l1_sparsity_penalty(torch.tensor([[float("nan")]], dtype=F64))
    with pytest.raises(ValueError, match=r"h must have entries in \[0, 1\]"):
        kl_sparsity_penalty(torch.tensor([[0.5, 1.5]], dtype=F64), 0.1)
    for rho in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="rho must be"):
            kl_sparsity_penalty(_codes(0), rho)
    with pytest.raises(TypeError, match="rho must be a number"):
        kl_sparsity_penalty(_codes(0), "0.1")


# ======================================================================= corruption
def test_gaussian_corruption_statistics_and_seeding():
    x = torch.zeros(20_000, 3, dtype=F64)
    noisy = gaussian_corruption(x, 0.5, seed=0)
    # the sample std of N = 60000 normals has standard error 0.5 / sqrt(2N) ≈ 0.0014: 5 s.e.
    assert abs(noisy.std().item() - 0.5) < 5 * 0.5 / math.sqrt(2 * noisy.numel())
    assert abs(noisy.mean().item()) < 5 * 0.5 / math.sqrt(noisy.numel())
    same = gaussian_corruption(x, 0.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(noisy, same)
    assert noisy.dtype == F64


def test_masking_corruption_statistics():
    x = torch.rand(10_000, 8, generator=torch.Generator().manual_seed(1), dtype=F64) + 1.0
    p = 0.3
    masked = masking_corruption(x, p, seed=2)
    zeroed = masked == 0
    assert torch.equal(masked[~zeroed], x[~zeroed])  # kept entries unchanged
    # fraction zeroed: binomial standard error sqrt(p (1 - p) / N), 5 s.e.
    n = x.numel()
    assert abs(zeroed.double().mean().item() - p) < 5 * math.sqrt(p * (1 - p) / n)
    assert torch.equal(masking_corruption(x, 0.0, seed=3), x)


def test_corruption_errors():
    x = torch.zeros(3, 2, dtype=F64)
    with pytest.raises(ValueError, match="sigma must be a finite number > 0"):
        gaussian_corruption(x, 0.0, seed=0)
    with pytest.raises(ValueError, match="p must be a probability below 1"):
        masking_corruption(x, 1.0, seed=0)
    with pytest.raises(ValueError, match=r"p must be a number in \[0, 1\]"):
        masking_corruption(x, -0.1, seed=0)
    with pytest.raises(TypeError, match="seed must be an integer"):
        gaussian_corruption(x, 0.1)
    with pytest.raises(ValueError, match="x must have 2 dimensions"):
        masking_corruption(torch.zeros(3, dtype=F64), 0.1, seed=0)


# ======================================================================= denoising
def test_denoising_loss_brute_force_and_reduction_to_loss():
    x = (torch.rand(6, 5, generator=torch.Generator().manual_seed(0), dtype=F64) > 0.5).double()
    ae = Autoencoder((5, 3), activation="tanh", code_activation="tanh", output="sigmoid", seed=1)
    x_c = masking_corruption(x, 0.4, seed=2)
    with torch.no_grad():
        value = denoising_loss(ae, x, x_c)
        logits = ae(x_c)
        brute = [
            -sum(
                x[k, i].item() * math.log(torch.sigmoid(logits[k, i]).item())
                + (1 - x[k, i].item()) * math.log(1 - torch.sigmoid(logits[k, i]).item())
                for i in range(5)
            )
            for k in range(6)
        ]
        np.testing.assert_allclose(value, brute, rtol=1e-12)
        np.testing.assert_allclose(denoising_loss(ae, x, x), ae.loss(x), rtol=0)
        np.testing.assert_allclose(value, bernoulli_cross_entropy(x, logits), rtol=0)


@pytest.mark.parametrize("output", ["linear", "sigmoid"])
def test_denoising_loss_gradient_matches_finite_differences(output):
    g = torch.Generator().manual_seed(10)
    x = (torch.rand(5, 4, generator=g, dtype=F64) > 0.5).double()
    x_c = gaussian_corruption(x, 0.3, generator=g)
    ae = Autoencoder((4, 3, 2), activation="tanh", output=output, seed=2)
    weight = ae.decoder[0].weight  # (3, 2)
    denoising_loss(ae, x, x_c).mean().backward()

    def loss_at(value):
        with torch.no_grad():
            saved = weight.clone()
            weight.copy_(value)
            out = denoising_loss(ae, x, x_c).mean().item()
            weight.copy_(saved)
        return out

    numeric = _central_difference(loss_at, weight.detach().clone())
    np.testing.assert_allclose(weight.grad, numeric, rtol=1e-6, atol=1e-9)


def test_denoising_loss_errors():
    ae = Autoencoder((4, 2), seed=0)
    x = torch.zeros(3, 4, dtype=F64)
    with pytest.raises(TypeError, match="model must be an Autoencoder"):
        denoising_loss("ae", x, x)
    with pytest.raises(ValueError, match="x_corrupted must have the shape of x"):
        denoising_loss(ae, x, torch.zeros(2, 4, dtype=F64))
    with pytest.raises(TypeError, match="x must have dtype"):
        denoising_loss(ae, x.float(), x)


# =================================================================== the score link
def _gaussian_problem():
    mu = torch.tensor([1.0, -0.5, 0.2], dtype=F64)
    A = torch.tensor([[1.0, 0.0, 0.0], [0.6, 0.5, 0.0], [-0.3, 0.2, 0.4]], dtype=F64)
    return mu, A @ A.T


def test_gaussian_score_is_autograd_of_log_density():
    mu, C = _gaussian_problem()
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    x.requires_grad_(True)
    log_p = torch.distributions.MultivariateNormal(mu, C).log_prob(x).sum()
    (grad,) = torch.autograd.grad(log_p, x)
    np.testing.assert_allclose(gaussian_score(x.detach(), mu, C), grad, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("sigma", [0.05, 0.3, 2.0])
def test_gaussian_denoiser_is_tweedie(sigma):
    # E[x | x̃] = x̃ + σ² ∇ log N(x̃; μ, C + σ²I): the implied score is exactly the noised score
    mu, C = _gaussian_problem()
    A, b = gaussian_denoiser(mu, C, sigma)
    x_tilde = torch.randn(6, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    denoised = x_tilde @ A.T + b
    noised_score = gaussian_score(x_tilde, mu, C + sigma**2 * torch.eye(3, dtype=F64))
    np.testing.assert_allclose(
        (denoised - x_tilde) / sigma**2, noised_score, rtol=1e-10, atol=1e-12
    )


def test_gaussian_denoiser_is_the_least_squares_regression():
    # with many (x, x̃) pairs the least-squares affine map from x̃ to x approaches A, b;
    # the regression coefficients have standard errors ~ 1/sqrt(n) ≈ 0.003, tolerance 0.02
    mu, C = _gaussian_problem()
    sigma, n = 0.7, 100_000
    g = torch.Generator().manual_seed(2)
    x = mu + torch.randn(n, 3, generator=g, dtype=F64) @ torch.linalg.cholesky(C).T
    x_tilde = gaussian_corruption(x, sigma, generator=g)
    design = torch.cat([x_tilde, torch.ones(n, 1, dtype=F64)], 1)  # (n, 4)
    coef = torch.linalg.lstsq(design, x).solution  # (4, 3)
    A, b = gaussian_denoiser(mu, C, sigma)
    np.testing.assert_allclose(coef[:3].T, A, atol=0.02)
    np.testing.assert_allclose(coef[3], b, atol=0.02)


def test_dae_score_of_the_optimal_linear_denoiser():
    mu, C = _gaussian_problem()
    sigma = 0.4
    A, b = gaussian_denoiser(mu, C, sigma)
    ae = Autoencoder((3, 3), activation="linear", seed=0)
    with torch.no_grad():  # encoder = identity, decoder = the optimal affine denoiser
        ae.encoder[0].weight.copy_(torch.eye(3, dtype=F64))
        ae.encoder[0].bias.zero_()
        ae.decoder[0].weight.copy_(A)
        ae.decoder[0].bias.copy_(b)
        x = torch.randn(4, 3, generator=torch.Generator().manual_seed(3), dtype=F64)
        expected = gaussian_score(x, mu, C + sigma**2 * torch.eye(3, dtype=F64))
        np.testing.assert_allclose(dae_score(ae, x, sigma), expected, rtol=1e-10, atol=1e-12)


def test_score_link_errors():
    mu, C = _gaussian_problem()
    with pytest.raises(ValueError, match="covariance must be positive definite"):
        gaussian_denoiser(mu, -C, 0.1)
    with pytest.raises(ValueError, match="covariance must be symmetric"):
        gaussian_denoiser(mu, C + torch.triu(torch.ones(3, 3, dtype=F64), 1), 0.1)
    with pytest.raises(ValueError, match=r"covariance must have shape \(3, 3\)"):
        gaussian_score(torch.zeros(1, 3, dtype=F64), mu, C[:2, :2])
    with pytest.raises(ValueError, match="x must have 3 columns"):
        gaussian_score(torch.zeros(1, 2, dtype=F64), mu, C)
    with pytest.raises(ValueError, match="sigma must be"):
        gaussian_denoiser(mu, C, -1.0)
    binary = Autoencoder((3, 2), output="sigmoid", seed=0)
    with pytest.raises(ValueError, match="model must have output='linear'"):
        dae_score(binary, torch.zeros(1, 3, dtype=F64), 0.1)


# ========================================================================= training
def test_linear_dae_learns_the_optimal_denoiser():
    # Gaussian data: the trained linear DAE's end-to-end map approaches the closed-form
    # A = Ĉ (Ĉ + σ²I)⁻¹ of the sample covariance. Adam with fresh noise leaves a
    # stochastic error of order lr + 1/sqrt(#noise draws); 0.05 relative is several times it.
    mu, C = _gaussian_problem()
    g = torch.Generator().manual_seed(4)
    x = mu + torch.randn(2000, 3, generator=g, dtype=F64) @ torch.linalg.cholesky(C).T
    sigma = 0.5
    ae = Autoencoder((3, 3), activation="linear", seed=0)
    history = train_regularized_autoencoder(
        ae,
        x,
        corruption="gaussian",
        noise_level=sigma,
        n_epochs=30,
        batch_size=100,
        learning_rate=1e-2,
        seed=5,
    )
    A, b = gaussian_denoiser(x.mean(0), torch.cov(x.T, correction=0), sigma)
    with torch.no_grad():
        learned = ae.decoder[0].weight @ ae.encoder[0].weight
        offset = ae.decoder[0].weight @ ae.encoder[0].bias + ae.decoder[0].bias
    assert torch.linalg.matrix_norm(learned - A) / torch.linalg.matrix_norm(A) < 0.05
    assert torch.linalg.vector_norm(offset - b) < 0.05 * torch.linalg.vector_norm(b) + 0.02
    assert isinstance(history, History) and len(history) == 30
    assert {"batch_loss", "batch_reconstruction", "batch_penalty", "train_loss"} <= set(
        history.names
    )
    np.testing.assert_allclose(history["batch_penalty"], 0.0)


def test_kl_penalty_drives_mean_activation_to_rho():
    x = (torch.rand(300, 10, generator=torch.Generator().manual_seed(6), dtype=F64) < 0.3).double()
    ae = Autoencoder(
        (10, 12), activation="tanh", code_activation="sigmoid", output="sigmoid", seed=0
    )
    with torch.no_grad():
        before = ae.encode(x).mean().item()
    train_regularized_autoencoder(
        ae, x, kl=3.0, rho=0.05, n_epochs=40, batch_size=50, learning_rate=2e-2, seed=1
    )
    with torch.no_grad():
        after = mean_activation(ae.encode(x))
    assert before > 0.3
    assert after.mean().item() < 0.12  # from ~0.5 towards rho = 0.05


def test_l1_penalty_zeroes_relu_codes():
    x = (torch.rand(300, 10, generator=torch.Generator().manual_seed(7), dtype=F64) < 0.3).double()
    zeros = []
    for l1 in (0.0, 0.3):
        ae = Autoencoder(
            (10, 12), activation="tanh", code_activation="relu", output="sigmoid", seed=0
        )
        train_regularized_autoencoder(
            ae, x, l1=l1, n_epochs=30, batch_size=50, learning_rate=2e-2, seed=1
        )
        with torch.no_grad():
            zeros.append((ae.encode(x) == 0).double().mean().item())
    assert zeros[1] > zeros[0] + 0.2


def test_masking_dae_denoises_better_than_plain():
    g = torch.Generator().manual_seed(8)
    prototypes = (torch.rand(4, 16, generator=g, dtype=F64) < 0.5).double()
    x = prototypes[torch.randint(4, (400,), generator=g)]  # (400, 16): four noiseless patterns
    x_c = masking_corruption(x, 0.3, seed=9)
    errors = {}
    for corruption, level in ((None, 0.0), ("mask", 0.3)):
        ae = Autoencoder(
            (16, 8), activation="tanh", code_activation="tanh", output="sigmoid", seed=0
        )
        train_regularized_autoencoder(
            ae,
            x,
            corruption=corruption,
            noise_level=level,
            n_epochs=30,
            batch_size=50,
            learning_rate=2e-2,
            seed=1,
        )
        with torch.no_grad():
            errors[corruption] = denoising_loss(ae, x, x_c).mean().item()
    assert errors["mask"] < 0.5 * errors[None]


def test_seed_and_generator_give_the_same_run():
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    runs = []
    for kwargs in ({"seed": 3}, {"generator": torch.Generator().manual_seed(3)}):
        ae = Autoencoder((3, 4), code_activation="tanh", seed=0)
        h = train_regularized_autoencoder(
            ae, x, corruption="gaussian", noise_level=0.2, n_epochs=2, batch_size=10, **kwargs
        )
        runs.append(h["train_loss"])
    np.testing.assert_array_equal(runs[0], runs[1])


def test_training_errors_and_divergence():
    x = torch.randn(20, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    ae = Autoencoder((3, 2), seed=0)
    with pytest.raises(ValueError, match="corruption must be None or one of"):
        train_regularized_autoencoder(ae, x, corruption="salt", seed=0)
    with pytest.raises(ValueError, match="noise_level must be 0 without a corruption"):
        train_regularized_autoencoder(ae, x, noise_level=0.1, seed=0)
    with pytest.raises(ValueError, match="noise_level must be a finite number > 0"):
        train_regularized_autoencoder(ae, x, corruption="gaussian", seed=0)
    with pytest.raises(ValueError, match="noise_level must be a masking probability below 1"):
        train_regularized_autoencoder(ae, x, corruption="mask", noise_level=1.0, seed=0)
    with pytest.raises(ValueError, match="code_activation='sigmoid'"):
        train_regularized_autoencoder(ae, x, kl=1.0, seed=0)
    with pytest.raises(ValueError, match="l1 must be a finite number >= 0"):
        train_regularized_autoencoder(ae, x, l1=-1.0, seed=0)
    with pytest.raises(TypeError, match="model must be an Autoencoder"):
        train_regularized_autoencoder(None, x, seed=0)
    with pytest.raises(TypeError, match="seed must be an integer"):
        train_regularized_autoencoder(ae, x)
    # noise of scale 1e200 makes the squared error overflow in the first mini-batch
    before = [p.detach().clone() for p in ae.parameters()]
    with pytest.raises(TrainingDivergedError, match="epoch 1") as info:
        train_regularized_autoencoder(
            ae, x, corruption="gaussian", noise_level=1e200, n_epochs=2, batch_size=5, seed=0
        )
    assert info.value.epoch == 1
    for old, new in zip(before, ae.parameters(), strict=True):
        assert torch.equal(old, new)  # restored to the start of the epoch
