"""Exercises for chapter 14, {ref}`sec-diffusion`: the forward marginal, its posterior, the noise-parameterised mean."""

from __future__ import annotations

import torch

from ._feedback import Exercise, Mistake, Stress, draw_float, draw_int

__all__ = [
    "EXERCISES",
    "check_forward_sample",
    "check_posterior_mean_variance",
    "check_reverse_mean_from_eps",
    "forward_sample",
    "posterior_mean_variance",
    "reverse_mean_from_eps",
]

F64 = torch.float64


def _course_schedule_float32(T: int = 300) -> torch.Tensor:
    """The course's linear schedule (1e-4 to 0.02) in float32: 1 - ᾱ_t cancels if computed naively."""
    return torch.linspace(1e-4, 0.02, T, dtype=torch.float32)


def _log_alpha_bar(betas):
    return torch.cumsum(torch.log1p(-betas), dim=0)  # (T,)


def _random_schedule(g: torch.Generator) -> torch.Tensor:
    """A linear schedule of random length and end points, float64, for fresh test cases."""
    T = draw_int(g, 2, 1000)
    start = draw_float(g, 1e-5, 1e-3)
    return torch.linspace(start, draw_float(g, 0.005, 0.05), T, dtype=F64)


def _cosine_schedule(T: int = 200) -> torch.Tensor:
    """The cosine schedule with its last β clipped at 0.999: ᾱ_T is about 10⁻¹⁰."""
    from ..diffusion import cosine_schedule

    return cosine_schedule(T)


# ------------------------------------------------------------------ forward marginal
def forward_sample(x0, t, betas, eps):
    """x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε with ᾱ_t = Π_{s ≤ t} (1 - β_s), t 1-based."""
    log_ab = _log_alpha_bar(betas)[t - 1]  # log ᾱ_t
    return torch.exp(0.5 * log_ab) * x0 + torch.sqrt(-torch.expm1(log_ab)) * eps


def _forward_cases():
    g = torch.Generator().manual_seed(120)
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=F64)
    cases = []
    for t, n in [(1, 3), (10, 4), (500, 2), (1000, 5)]:
        x0 = torch.randn(n, 2, generator=g, dtype=F64)
        cases.append((x0, t, betas, torch.randn(n, 2, generator=g, dtype=F64)))
    cosine = torch.tensor([0.1, 0.3, 0.5, 0.2], dtype=F64)
    cases.append(
        (torch.randn(3, 2, generator=g, dtype=F64), 3, cosine, torch.ones(3, 2, dtype=F64))
    )
    # float32, first steps, x_0 = 0: only the noise scale sqrt(1 - ᾱ_t) is left to check
    b32 = _course_schedule_float32()
    noise = torch.randn(4, 2, generator=g).to(torch.float32)
    cases.append((torch.zeros(4, 2, dtype=torch.float32), 2, b32, noise))
    return cases


def _forward_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        betas = _random_schedule(g)
        n, d = draw_int(g, 1, 10), draw_int(g, 1, 5)
        t = draw_int(g, 1, betas.shape[0])
        x0 = draw_float(g, 0.1, 5.0) * torch.randn(n, d, generator=g, dtype=F64)
        cases.append((x0, t, betas, torch.randn(n, d, generator=g, dtype=F64)))
    return cases


def _forward_stress():
    g = torch.Generator().manual_seed(1200)
    b32 = _course_schedule_float32()
    cosine = _cosine_schedule()
    x = torch.randn(4, 2, generator=g, dtype=F64)
    noise = torch.randn(4, 2, generator=g, dtype=F64)
    return [
        Stress(
            "t = 1 of the course's schedule in float32: 1 - ᾱ_1 = 10⁻⁴",
            (torch.zeros(3, 2, dtype=torch.float32), 1, b32, noise[:3].to(torch.float32)),
            "1 - ᾱ_t cancels in float32 when ᾱ_t is close to 1: use -expm1 of a sum of log1p(-β).",
        ),
        Stress(
            "t = T of the cosine schedule: ᾱ_T is about 10⁻¹⁰",
            (1e3 * x, cosine.shape[0], cosine, noise),
        ),
        Stress(
            "a one-step schedule, T = 1",
            (x, 1, torch.tensor([0.3], dtype=F64), noise),
        ),
        Stress(
            "10000 points in 16 dimensions",
            (
                torch.randn(10_000, 16, generator=g, dtype=F64),
                300,
                torch.linspace(1e-4, 0.02, 1000, dtype=F64),
                torch.randn(10_000, 16, generator=g, dtype=F64),
            ),
        ),
    ]


FORWARD = Exercise(
    name="forward_sample",
    forbidden_calls=(
        "genphys.diffusion.forward_marginal",
        "genphys.diffusion.diffuse",
    ),
    solution=forward_sample,
    cases=_forward_cases,
    random_cases=_forward_random,
    stress_cases=_forward_stress,
    rtol=1e-5,
    atol=1e-12,
    mistakes=(
        Mistake(
            lambda x0, t, betas, eps: (
                torch.sqrt(1 - betas[t - 1]) * x0 + torch.sqrt(betas[t - 1]) * eps
            ),
            "that is one step of the chain, q(x_t | x_{t-1}). The jump from x_0 needs the "
            "product ᾱ_t = (1 - β_1)(1 - β_2)···(1 - β_t): torch.cumprod, or the exp of a "
            "cumulative sum of log(1 - β).",
        ),
        Mistake(
            lambda x0, t, betas, eps: (
                (
                    torch.sqrt(torch.cumprod(1 - betas, 0)[t]) * x0
                    + torch.sqrt(1 - torch.cumprod(1 - betas, 0)[t]) * eps
                )
                if t < betas.shape[0]
                else x0 * 0
            ),
            "t is 1-based: ᾱ_t is entry t - 1 of the cumulative product (entry 0 is ᾱ_1).",
        ),
        Mistake(
            lambda x0, t, betas, eps: (
                torch.sqrt(torch.cumprod(1 - betas, 0)[t - 1]) * x0
                + (1 - torch.cumprod(1 - betas, 0)[t - 1]) * eps
            ),
            "1 - ᾱ_t is the VARIANCE of the noise; multiply ε by its square root.",
        ),
        Mistake(
            lambda x0, t, betas, eps: (
                torch.sqrt(torch.cumprod(1 - betas, 0)[t - 1]) * x0
                + torch.sqrt(1 - torch.cumprod(1 - betas, 0)[t - 1]) * eps
            ),
            "correct in exact arithmetic, but 1 - ᾱ_t loses its digits when ᾱ_t is close to 1: "
            "with the course's schedule in float32, 1 - (1 - 10⁻⁴) is off by about 10⁻³ "
            "relative. Compute log ᾱ_t = Σ log1p(-β_s) and 1 - ᾱ_t = -expm1(log ᾱ_t), or work "
            "in float64.",
        ),
    ),
)
check_forward_sample = FORWARD.check


# ------------------------------------------------------------------ forward posterior
def posterior_mean_variance(x_t, x0, t, betas):
    """μ̃_t = √ᾱ_{t-1} β_t/(1-ᾱ_t) x_0 + √α_t (1-ᾱ_{t-1})/(1-ᾱ_t) x_t, β̃_t = (1-ᾱ_{t-1})/(1-ᾱ_t) β_t, t ≥ 2."""
    log_ab = _log_alpha_bar(betas)
    ab_prev = torch.exp(log_ab[t - 2])
    one_minus, one_minus_prev = -torch.expm1(log_ab[t - 1]), -torch.expm1(log_ab[t - 2])
    beta = betas[t - 1]
    mean = (
        torch.sqrt(ab_prev) * beta * x0 + torch.sqrt(1 - beta) * one_minus_prev * x_t
    ) / one_minus
    return mean, one_minus_prev / one_minus * beta


def _posterior_cases():
    g = torch.Generator().manual_seed(121)
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=F64)
    cases = []
    for t, n in [(2, 3), (50, 4), (999, 2)]:
        cases.append(
            (
                torch.randn(n, 3, generator=g, dtype=F64),
                torch.randn(n, 3, generator=g, dtype=F64),
                t,
                betas,
            )
        )
    b32 = _course_schedule_float32()
    x = torch.randn(2, 2, generator=g).to(torch.float32)
    cases.append((x, x.flip(0), 2, b32))
    return cases


def _posterior_naive(x_t, x0, t, betas):
    ab = torch.cumprod(1 - betas, 0)
    ab_t, ab_prev, beta = ab[t - 1], ab[t - 2], betas[t - 1]
    mean = (torch.sqrt(ab_prev) * beta * x0 + torch.sqrt(1 - beta) * (1 - ab_prev) * x_t) / (
        1 - ab_t
    )
    return mean, (1 - ab_prev) / (1 - ab_t) * beta


def _posterior_swapped(x_t, x0, t, betas):
    _, var = posterior_mean_variance(x_t, x0, t, betas)
    return posterior_mean_variance(x0, x_t, t, betas)[0], var


def _posterior_beta(x_t, x0, t, betas):
    mean, _ = posterior_mean_variance(x_t, x0, t, betas)
    return mean, betas[t - 1] * torch.ones_like(mean[..., 0, 0])


def _posterior_shifted(x_t, x0, t, betas):
    log_ab = _log_alpha_bar(betas)
    ab, one_minus = torch.exp(log_ab[t - 1]), -torch.expm1(log_ab[t - 1])
    beta = betas[t - 1]  # ᾱ_t used where ᾱ_{t-1} belongs
    mean = (torch.sqrt(ab) * beta * x0 + torch.sqrt(1 - beta) * one_minus * x_t) / one_minus
    return mean, beta * torch.ones_like(one_minus)


def _posterior_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        betas = _random_schedule(g)
        n, d = draw_int(g, 1, 10), draw_int(g, 1, 5)
        t = draw_int(g, 2, betas.shape[0])
        x_t, x0 = (torch.randn(n, d, generator=g, dtype=F64) for _ in range(2))
        cases.append((x_t, draw_float(g, 0.1, 3.0) * x0, t, betas))
    return cases


def _posterior_stress():
    g = torch.Generator().manual_seed(1210)
    b32 = _course_schedule_float32()
    cosine = _cosine_schedule()
    x32 = torch.randn(3, 2, generator=g).to(torch.float32)
    x, y = (torch.randn(5, 3, generator=g, dtype=F64) for _ in range(2))
    return [
        Stress(
            "t = 3 of the course's schedule in float32: 1 - ᾱ_2 is about 3·10⁻⁴",
            (x32, x32.flip(0), 3, b32),
            "1 - ᾱ_t and 1 - ᾱ_{t-1} cancel in float32 when ᾱ is close to 1: use -expm1 of a "
            "sum of log1p(-β).",
        ),
        Stress("t = T of the cosine schedule, β_T = 0.999", (x, y, cosine.shape[0], cosine)),
        Stress(
            "a two-step schedule at t = 2, T = 2",
            (x, y, 2, torch.tensor([0.1, 0.5], dtype=F64)),
        ),
    ]


POSTERIOR = Exercise(
    name="posterior_mean_variance",
    forbidden_calls=("genphys.diffusion.forward_posterior",),
    solution=posterior_mean_variance,
    cases=_posterior_cases,
    random_cases=_posterior_random,
    stress_cases=_posterior_stress,
    rtol=1e-5,
    atol=1e-12,
    mistakes=(
        Mistake(
            _posterior_swapped,
            "the coefficients of x_0 and x_t are swapped: x_0 is multiplied by "
            "√ᾱ_{t-1} β_t / (1 - ᾱ_t), x_t by √α_t (1 - ᾱ_{t-1}) / (1 - ᾱ_t).",
        ),
        Mistake(
            _posterior_beta,
            "the variance of q(x_{t-1} | x_t, x_0) is not β_t: knowing x_0 as well makes it "
            "smaller, β̃_t = β_t (1 - ᾱ_{t-1}) / (1 - ᾱ_t). Add the precisions α_t/β_t and "
            "1/(1 - ᾱ_{t-1}).",
        ),
        Mistake(
            _posterior_shifted,
            "ᾱ_{t-1} is needed, not ᾱ_t, in the coefficient of x_0 and in 1 - ᾱ_{t-1}: with "
            "1-based t it is entry t - 2 of the cumulative product.",
        ),
        Mistake(
            _posterior_naive,
            "correct in exact arithmetic, but 1 - ᾱ_t and 1 - ᾱ_{t-1} lose their digits when "
            "ᾱ is close to 1 (the first steps, in float32). Use -expm1 of the cumulative sum "
            "of log1p(-β), or compute in float64.",
        ),
    ),
)
check_posterior_mean_variance = POSTERIOR.check


# ------------------------------------------------------------------ noise-parameterised mean
def reverse_mean_from_eps(x_t, eps, t, betas):
    """μ_θ(x_t, t) = (x_t - β_t ε_θ / sqrt(1 - ᾱ_t)) / sqrt(α_t), t 1-based."""
    one_minus = -torch.expm1(_log_alpha_bar(betas)[t - 1])
    beta = betas[t - 1]
    return (x_t - beta / torch.sqrt(one_minus) * eps) / torch.sqrt(1 - beta)


def _reverse_cases():
    g = torch.Generator().manual_seed(122)
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=F64)
    cases = []
    for t, n in [(1, 2), (2, 3), (300, 4), (1000, 2)]:
        cases.append(
            (
                torch.randn(n, 2, generator=g, dtype=F64),
                torch.randn(n, 2, generator=g, dtype=F64),
                t,
                betas,
            )
        )
    return cases


def _reverse_ab(x_t, eps, t, betas):
    ab = torch.cumprod(1 - betas, 0)[t - 1]
    return (x_t - torch.sqrt(1 - ab) * eps) / torch.sqrt(ab)


def _reverse_no_scale(x_t, eps, t, betas):
    ab = torch.cumprod(1 - betas, 0)[t - 1]
    return x_t - betas[t - 1] / torch.sqrt(1 - ab) * eps


def _reverse_sign(x_t, eps, t, betas):
    ab = torch.cumprod(1 - betas, 0)[t - 1]
    return (x_t + betas[t - 1] / torch.sqrt(1 - ab) * eps) / torch.sqrt(1 - betas[t - 1])


def _reverse_sqrt_beta(x_t, eps, t, betas):
    return (x_t - torch.sqrt(betas[t - 1]) * eps) / torch.sqrt(1 - betas[t - 1])


def _reverse_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        betas = _random_schedule(g)
        n, d = draw_int(g, 1, 10), draw_int(g, 1, 5)
        t = draw_int(g, 1, betas.shape[0])
        x_t, eps = (torch.randn(n, d, generator=g, dtype=F64) for _ in range(2))
        cases.append((draw_float(g, 0.1, 5.0) * x_t, eps, t, betas))
    return cases


def _reverse_stress():
    g = torch.Generator().manual_seed(1220)
    cosine = _cosine_schedule()
    x, eps = (torch.randn(6, 2, generator=g, dtype=F64) for _ in range(2))
    return [
        Stress("t = T of the cosine schedule: β_T = 0.999, √α_T ≈ 0.03", (x, eps, 200, cosine)),
        Stress(
            "t = 1 of a schedule with β_1 = 10⁻¹⁴: 1 - ᾱ_1 = β_1",
            (x, eps, 1, torch.linspace(1e-14, 0.02, 100, dtype=F64)),
            "1 - ᾱ_1 = β_1 = 10⁻¹⁴ keeps only two digits when computed as 1 - (1 - β_1) in "
            "float64; use -expm1 of a sum of log1p(-β).",
        ),
        Stress("a one-step schedule, T = 1", (x, eps, 1, torch.tensor([0.2], dtype=F64))),
    ]


REVERSE = Exercise(
    name="reverse_mean_from_eps",
    forbidden_calls=("genphys.diffusion.reverse_mean",),
    solution=reverse_mean_from_eps,
    cases=_reverse_cases,
    random_cases=_reverse_random,
    stress_cases=_reverse_stress,
    rtol=1e-10,
    atol=1e-12,
    mistakes=(
        Mistake(
            _reverse_ab,
            "that is the prediction of x_0, (x_t - √(1-ᾱ_t) ε)/√ᾱ_t, a jump to the end. The "
            "reverse step goes to x_{t-1} only: μ_θ = (x_t - β_t ε / √(1-ᾱ_t)) / √α_t.",
        ),
        Mistake(
            _reverse_no_scale,
            "the division by √α_t = √(1 - β_t) is missing: every forward step shrinks x by "
            "√α_t, so the reverse step expands it again.",
        ),
        Mistake(
            _reverse_sign,
            "the sign: the predicted noise is removed from x_t, not added.",
        ),
        Mistake(
            _reverse_sqrt_beta,
            "the noise coefficient is β_t / √(1 - ᾱ_t), not √β_t: write μ̃_t in terms of x_t and "
            "ε by substituting x_0 = (x_t - √(1-ᾱ_t) ε)/√ᾱ_t.",
        ),
    ),
)
check_reverse_mean_from_eps = REVERSE.check

EXERCISES = [FORWARD, POSTERIOR, REVERSE]
