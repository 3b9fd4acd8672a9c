"""Exercises for chapter 14, {ref}`sec-gans`: the discriminator loss, D*, the non-saturating loss."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._feedback import Exercise, Mistake

__all__ = [
    "EXERCISES",
    "check_discriminator_loss",
    "check_generator_loss_non_saturating",
    "check_optimal_discriminator",
    "discriminator_loss",
    "generator_loss_non_saturating",
    "optimal_discriminator",
]

F64 = torch.float64
F32 = torch.float32


# ------------------------------------------------------------ discriminator loss
def discriminator_loss(real_logits, fake_logits):
    """-mean log σ(ℓ_real) - mean log(1 - σ(ℓ_fake)) = mean softplus(-ℓ_real) + mean softplus(ℓ_fake)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def _discriminator_cases():
    g = torch.Generator().manual_seed(140)
    return [
        (torch.randn(6, generator=g, dtype=F64), torch.randn(4, generator=g, dtype=F64)),
        (3 * torch.randn(5, generator=g, dtype=F64), 3 * torch.randn(9, generator=g, dtype=F64)),
        # a confident discriminator that is wrong on some points: logits of +-100 in float32
        (torch.tensor([2.0, -100.0, 100.0], dtype=F32), torch.tensor([100.0, -3.0], dtype=F32)),
        (torch.tensor([-1000.0, 0.5], dtype=F64), torch.tensor([1000.0, -1000.0], dtype=F64)),
    ]


DISCRIMINATOR_LOSS = Exercise(
    name="discriminator_loss",
    solution=discriminator_loss,
    cases=_discriminator_cases,
    mistakes=(
        Mistake(
            lambda r, f: (
                -(torch.log(torch.sigmoid(r)).mean() + torch.log(1 - torch.sigmoid(f)).mean())
            ),
            "right formula, unstable arithmetic: σ(-100) is 0 in float32 and 1 - σ(100) is 0, so "
            "the log gives -inf. Write log σ(ℓ) = -softplus(-ℓ) and log(1 - σ(ℓ)) = -softplus(ℓ) "
            "(or use F.logsigmoid), which are finite for every finite logit.",
        ),
        Mistake(
            lambda r, f: F.softplus(r).mean() + F.softplus(-f).mean(),
            "the labels are swapped: data should get D(x) → 1 (term -log σ(ℓ_real)) and generated "
            "samples D(G(z)) → 0 (term -log(1 - σ(ℓ_fake))).",
        ),
        Mistake(
            lambda r, f: -(F.softplus(-r).mean() + F.softplus(f).mean()),
            "that is the value V(D, G), which the discriminator maximises; the loss it minimises is "
            "-V, a positive number.",
        ),
        Mistake(
            lambda r, f: torch.cat([F.softplus(-r), F.softplus(f)]).mean(),
            "average each term over its own batch: the real and the generated batches have "
            "different sizes here, and V is a sum of two expectations.",
        ),
        Mistake(
            lambda r, f: F.softplus(-r).sum() + F.softplus(f).sum(),
            "use means over each batch, not sums: the loss estimates expectations and must not "
            "grow with the batch size.",
        ),
    ),
    rtol=1e-5,
    atol=1e-6,
)
check_discriminator_loss = DISCRIMINATOR_LOSS.check


# ------------------------------------------------------------ the optimal discriminator
def optimal_discriminator(log_p_data, log_p_model):
    """D*(x) = p_data / (p_data + p_model) = σ(log p_data - log p_model), from log-densities."""
    return torch.sigmoid(log_p_data - log_p_model)


def _log_normal(x, mean, std):
    return -0.5 * ((x - mean) / std) ** 2 - math.log(std * math.sqrt(2 * math.pi))


def _optimal_cases():
    g = torch.Generator().manual_seed(141)
    x = torch.linspace(-3.0, 3.0, 7, dtype=F64)
    return [
        (_log_normal(x, 0.0, 1.0), _log_normal(x, 1.0, 0.5)),
        (torch.randn(5, generator=g, dtype=F64), torch.randn(5, generator=g, dtype=F64)),
        # densities of high-dimensional data: e^{-745} is 0 in float64
        (
            torch.tensor([-740.0, -745.0, -744.0], dtype=F64),
            torch.tensor([-745.0, -740.0, -746.0], dtype=F64),
        ),
        (
            torch.tensor([-800.0, -900.0, -760.0], dtype=F64),
            torch.tensor([-800.0, -899.0, -759.0], dtype=F64),
        ),
    ]


OPTIMAL_DISCRIMINATOR = Exercise(
    name="optimal_discriminator",
    solution=optimal_discriminator,
    cases=_optimal_cases,
    mistakes=(
        Mistake(
            lambda a, b: torch.exp(a) / (torch.exp(a) + torch.exp(b)),
            "right formula, but e^{-745} is 0 in float64, so p_data / (p_data + p_model) loses all "
            "digits (or becomes 0/0). Divide numerator and denominator by p_data: "
            "D* = 1 / (1 + e^{log p_model - log p_data}) = σ(log p_data - log p_model).",
        ),
        Mistake(
            lambda a, b: torch.sigmoid(b - a),
            "that is p_model / (p_data + p_model), the probability that x was generated; D* is the "
            "probability that x is data.",
        ),
        Mistake(
            lambda a, b: torch.exp(a - b),
            "that is the density ratio r = p_data / p_model; D* = r / (1 + r) lies in [0, 1].",
        ),
        Mistake(
            lambda a, b: a - b,
            "that is the logit of D*, log p_data - log p_model; apply the sigmoid to get D*.",
        ),
    ),
)
check_optimal_discriminator = OPTIMAL_DISCRIMINATOR.check


# ------------------------------------------------------------ non-saturating generator loss
def generator_loss_non_saturating(fake_logits):
    """-mean log σ(ℓ_fake) = mean softplus(-ℓ_fake): the generator pushes D(G(z)) towards 1."""
    return F.softplus(-fake_logits).mean()


def _generator_cases():
    g = torch.Generator().manual_seed(142)
    return [
        (torch.randn(7, generator=g, dtype=F64),),
        (4 * torch.randn(11, generator=g, dtype=F64) - 3,),
        # early in training the discriminator rejects samples with logits of -100 and less
        (torch.tensor([-100.0, -200.0, 1.0], dtype=F32),),
        (torch.tensor([-1000.0, 5.0], dtype=F64),),
    ]


GENERATOR_LOSS = Exercise(
    name="generator_loss_non_saturating",
    solution=generator_loss_non_saturating,
    cases=_generator_cases,
    mistakes=(
        Mistake(
            lambda f: -F.softplus(f).mean(),
            "that is the saturating (minimax) loss mean log(1 - D(G(z))). It has the same fixed "
            "point, but its gradient σ(ℓ)/m vanishes when D rejects the samples; the "
            "non-saturating loss is -mean log D(G(z)).",
        ),
        Mistake(
            lambda f: -torch.log(torch.sigmoid(f)).mean(),
            "right formula, unstable arithmetic: σ(-100) is 0 in float32, so log σ(ℓ) is -inf "
            "exactly when the generator needs a signal. Write -log σ(ℓ) = softplus(-ℓ).",
        ),
        Mistake(
            lambda f: -F.softplus(-f).mean(),
            "mind the sign: the generator minimises -log D(G(z)), a positive number that is "
            "small when D is fooled.",
        ),
        Mistake(
            lambda f: F.softplus(f).mean(),
            "that is the discriminator's term for generated samples, -log(1 - D(G(z))); the "
            "generator wants D(G(z)) → 1, i.e. it minimises -log D(G(z)).",
        ),
    ),
    rtol=1e-5,
    atol=1e-6,
)
check_generator_loss_non_saturating = GENERATOR_LOSS.check

EXERCISES = [DISCRIMINATOR_LOSS, OPTIMAL_DISCRIMINATOR, GENERATOR_LOSS]
