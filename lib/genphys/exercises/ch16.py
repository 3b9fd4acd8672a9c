"""Exercises for chapter 16, {ref}`sec-gans`: the discriminator loss, D*, the non-saturating loss."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._feedback import Exercise, Mistake, Stress, draw_float, draw_int

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


def _discriminator_random(g: torch.Generator):
    return [
        (
            draw_float(g, 0.1, 20.0) * torch.randn(draw_int(g, 1, 30), generator=g, dtype=F64),
            draw_float(g, 0.1, 20.0) * torch.randn(draw_int(g, 1, 30), generator=g, dtype=F64),
        )
        for _ in range(3)
    ]


def _discriminator_stress():
    g = torch.Generator().manual_seed(1400)
    return [
        Stress(
            "logits of ±100 in float32: σ(-100) and 1 - σ(100) are 0",
            (
                100 * torch.sign(torch.randn(50, generator=g)).to(F32),
                100 * torch.sign(torch.randn(30, generator=g)).to(F32),
            ),
            "log σ(ℓ) = -softplus(-ℓ) and log(1 - σ(ℓ)) = -softplus(ℓ) are finite for every logit.",
        ),
        Stress(
            "logits of ±10⁴ in float64: exp(10⁴) overflows",
            (
                torch.tensor([1e4, -1e4, 3.0], dtype=F64),
                torch.tensor([-1e4, 1e4], dtype=F64),
            ),
            "log σ(ℓ) = -softplus(-ℓ) and log(1 - σ(ℓ)) = -softplus(ℓ) are finite for every logit.",
        ),
        Stress(
            "one real logit against 100000 generated ones",
            (torch.tensor([0.5], dtype=F64), torch.randn(100_000, generator=g, dtype=F64)),
        ),
    ]


DISCRIMINATOR_LOSS = Exercise(
    name="discriminator_loss",
    differentiable=True,
    forbidden_calls=("genphys.gan.discriminator_loss",),
    solution=discriminator_loss,
    cases=_discriminator_cases,
    random_cases=_discriminator_random,
    stress_cases=_discriminator_stress,
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


def _optimal_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n = draw_int(g, 1, 20)
        offset = draw_float(g, -50.0, 0.0)
        log_p_data = offset + 3 * torch.randn(n, generator=g, dtype=F64)
        cases.append((log_p_data, offset + 3 * torch.randn(n, generator=g, dtype=F64)))
    return cases


def _optimal_stress():
    g = torch.Generator().manual_seed(1410)
    deep = -800.0 + 5 * torch.randn(20, generator=g, dtype=F64)
    return [
        Stress(
            "log-densities near -800: both densities are 0 in float64",
            (deep, deep + torch.randn(20, generator=g, dtype=F64)),
            "Work with the difference of the log-densities: D* = σ(log p_data - log p_model).",
        ),
        Stress(
            "equal log-densities of -10⁴: D* = 1/2 exactly",
            (torch.full((4,), -1e4, dtype=F64), torch.full((4,), -1e4, dtype=F64)),
            "Work with the difference of the log-densities: D* = σ(log p_data - log p_model).",
        ),
        Stress(
            "log-densities 1000 apart: D* is 0 or 1 to all digits",
            (torch.tensor([0.0, -1000.0], dtype=F64), torch.tensor([-1000.0, 0.0], dtype=F64)),
        ),
    ]


OPTIMAL_DISCRIMINATOR = Exercise(
    name="optimal_discriminator",
    forbidden_calls=("genphys.gan.optimal_discriminator",),
    solution=optimal_discriminator,
    cases=_optimal_cases,
    random_cases=_optimal_random,
    stress_cases=_optimal_stress,
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


def _generator_random(g: torch.Generator):
    return [
        (
            draw_float(g, -10.0, 5.0)
            + draw_float(g, 0.1, 20.0) * torch.randn(draw_int(g, 1, 30), generator=g, dtype=F64),
        )
        for _ in range(3)
    ]


def _generator_stress():
    g = torch.Generator().manual_seed(1420)
    return [
        Stress(
            "rejected samples, logits of -100 in float32: σ(-100) is 0",
            ((-100 + torch.randn(40, generator=g)).to(F32),),
            "Write -log σ(ℓ) = softplus(-ℓ), which is finite for every logit.",
        ),
        Stress(
            "logits of -10⁴ and +10⁴ in float64: exp(10⁴) overflows",
            (torch.tensor([-1e4, 1e4, 0.0], dtype=F64),),
            "Write -log σ(ℓ) = softplus(-ℓ), which is finite for every logit.",
        ),
        Stress("100000 generated samples", (torch.randn(100_000, generator=g, dtype=F64),)),
    ]


GENERATOR_LOSS = Exercise(
    name="generator_loss_non_saturating",
    differentiable=True,
    forbidden_calls=("genphys.gan.generator_loss_non_saturating",),
    solution=generator_loss_non_saturating,
    cases=_generator_cases,
    random_cases=_generator_random,
    stress_cases=_generator_stress,
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
