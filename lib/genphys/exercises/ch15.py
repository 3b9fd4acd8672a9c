"""Exercises for chapter 15, {ref}`sec-training-diffusion`: the training loss, a DDPM step and a DDIM step."""

from __future__ import annotations

import torch

from ._feedback import Exercise, Mistake, Stress, draw_float, draw_int

__all__ = [
    "EXERCISES",
    "check_ddim_step",
    "check_ddpm_step",
    "check_noise_prediction_loss",
    "ddim_step",
    "ddpm_step",
    "noise_prediction_loss",
]

F64 = torch.float64


def _alpha_bars(betas):
    log_ab = torch.cumsum(torch.log1p(-betas), dim=0)  # (T,)
    return torch.exp(log_ab), -torch.expm1(log_ab)  # ᾱ_t and 1 - ᾱ_t


class _ToyNoisePredictor:
    """A fixed, non-linear stand-in for a network: ε_θ(x, t) = tanh(x W + t/T · c)."""

    def __init__(self, dim: int, T: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.W = torch.randn(dim, dim, generator=g, dtype=F64) / dim**0.5
        self.c = torch.randn(dim, generator=g, dtype=F64)
        self.T = T

    def __call__(self, x, t):
        t = torch.as_tensor(t, dtype=F64)
        time = (t / self.T).reshape(-1, 1) if t.dim() == 1 else t / self.T
        return torch.tanh(x @ self.W + time * self.c)


def _random_schedule(g: torch.Generator) -> torch.Tensor:
    """A linear schedule of random length and end points, float64, for fresh test cases."""
    T = draw_int(g, 2, 1000)
    return torch.linspace(draw_float(g, 1e-5, 1e-3), draw_float(g, 0.005, 0.05), T, dtype=F64)


def _cosine_schedule(T: int = 200) -> torch.Tensor:
    """The cosine schedule with its last β clipped at 0.999: ᾱ_T is about 10⁻¹⁰."""
    from ..diffusion import cosine_schedule

    return cosine_schedule(T)


# ------------------------------------------------------------------ the training loss
def noise_prediction_loss(eps_model, x0, t, eps, betas):
    """L = mean over rows and coordinates of (ε - ε_θ(x_t, t))², x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε; t of shape (n,)."""
    ab, one_minus = _alpha_bars(betas)
    x_t = torch.sqrt(ab[t - 1])[:, None] * x0 + torch.sqrt(one_minus[t - 1])[:, None] * eps
    return ((eps - eps_model(x_t, t)) ** 2).mean()


def _loss_cases():
    g = torch.Generator().manual_seed(130)
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=F64)
    cases = []
    for n, d in [(6, 2), (10, 3), (4, 5)]:
        model = _ToyNoisePredictor(d, 1000, seed=131 + d)
        t = torch.randint(1, 1001, (n,), generator=g)
        cases.append(
            (
                model,
                torch.randn(n, d, generator=g, dtype=F64),
                t,
                torch.randn(n, d, generator=g, dtype=F64),
                betas,
            )
        )
    return cases


def _loss_on_x0(eps_model, x0, t, eps, betas):
    return ((eps - eps_model(x0, t)) ** 2).mean()


def _loss_alpha(eps_model, x0, t, eps, betas):
    a = 1 - betas[t - 1]
    x_t = torch.sqrt(a)[:, None] * x0 + torch.sqrt(1 - a)[:, None] * eps
    return ((eps - eps_model(x_t, t)) ** 2).mean()


def _loss_x0_target(eps_model, x0, t, eps, betas):
    ab, one_minus = _alpha_bars(betas)
    x_t = torch.sqrt(ab[t - 1])[:, None] * x0 + torch.sqrt(one_minus[t - 1])[:, None] * eps
    return ((x0 - eps_model(x_t, t)) ** 2).mean()


def _loss_sum(eps_model, x0, t, eps, betas):
    return noise_prediction_loss(eps_model, x0, t, eps, betas) * x0.numel()


def _loss_index(eps_model, x0, t, eps, betas):
    ab, one_minus = _alpha_bars(betas)
    s = torch.clamp(t, max=betas.shape[0] - 1)
    x_t = torch.sqrt(ab[s])[:, None] * x0 + torch.sqrt(one_minus[s])[:, None] * eps
    return ((eps - eps_model(x_t, t)) ** 2).mean()


def _loss_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        betas = _random_schedule(g)
        T = betas.shape[0]
        n, d = draw_int(g, 1, 12), draw_int(g, 1, 5)
        model = _ToyNoisePredictor(d, T, seed=draw_int(g, 0, 2**30))
        t = torch.randint(1, T + 1, (n,), generator=g)
        x0, eps = (torch.randn(n, d, generator=g, dtype=F64) for _ in range(2))
        cases.append((model, draw_float(g, 0.1, 3.0) * x0, t, eps, betas))
    return cases


def _loss_stress():
    g = torch.Generator().manual_seed(1300)
    cosine = _cosine_schedule()
    edges = torch.tensor([1, 200, 1, 200, 2, 199])
    x0, eps = (torch.randn(6, 3, generator=g, dtype=F64) for _ in range(2))
    big = [torch.randn(4096, 16, generator=g, dtype=F64) for _ in range(2)]
    return [
        Stress(
            "the edges t = 1 and t = T of the cosine schedule in one batch",
            (_ToyNoisePredictor(3, 200, seed=1301), x0, edges, eps, cosine),
        ),
        Stress(
            "4096 rows in 16 dimensions",
            (
                _ToyNoisePredictor(16, 1000, seed=1302),
                big[0],
                torch.randint(1, 1001, (4096,), generator=g),
                big[1],
                torch.linspace(1e-4, 0.02, 1000, dtype=F64),
            ),
        ),
        Stress(
            "a single row at t = T = 1",
            (
                _ToyNoisePredictor(2, 1, seed=1303),
                x0[:1, :2],
                torch.tensor([1]),
                eps[:1, :2],
                torch.tensor([0.5], dtype=F64),
            ),
        ),
    ]


LOSS = Exercise(
    name="noise_prediction_loss",
    differentiable=True,
    forbidden_calls=("genphys.diffusion.simple_loss",),
    solution=noise_prediction_loss,
    cases=_loss_cases,
    random_cases=_loss_random,
    stress_cases=_loss_stress,
    mistakes=(
        Mistake(
            _loss_on_x0,
            "the network must see the noised point x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε, not the clean "
            "x_0: it learns to find the noise in x_t.",
        ),
        Mistake(
            _loss_alpha,
            "x_t is one jump from x_0 with ᾱ_t = Π_{s≤t}(1 - β_s), not one step with "
            "α_t = 1 - β_t.",
        ),
        Mistake(
            _loss_x0_target,
            "the target is the noise ε that produced x_t, not x_0 (predicting x_0 is another "
            "parameterisation, with other weights).",
        ),
        Mistake(
            _loss_sum,
            "take the mean over rows and coordinates (a mean squared error), not the sum.",
        ),
        Mistake(
            _loss_index,
            "t is 1-based: ᾱ_t is entry t - 1 of the cumulative product.",
        ),
    ),
)
check_noise_prediction_loss = LOSS.check


# ------------------------------------------------------------------ the ancestral step
def ddpm_step(x_t, eps_hat, z, t, betas):
    """x_{t-1} = (x_t - β_t ε̂/√(1-ᾱ_t))/√α_t + √β̃_t z for t ≥ 2; no noise at t = 1."""
    _, one_minus = _alpha_bars(betas)
    beta = betas[t - 1]
    mean = (x_t - beta / torch.sqrt(one_minus[t - 1]) * eps_hat) / torch.sqrt(1 - beta)
    if t == 1:
        return mean
    variance = one_minus[t - 2] / one_minus[t - 1] * beta  # β̃_t
    return mean + torch.sqrt(variance) * z


def _ddpm_cases():
    g = torch.Generator().manual_seed(132)
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=F64)
    cases = []
    for t, n in [(1000, 3), (400, 4), (2, 2), (1, 3)]:
        x, e, z = (torch.randn(n, 2, generator=g, dtype=F64) for _ in range(3))
        cases.append((x, e, z, t, betas))
    return cases


def _ddpm_noise_at_one(x_t, eps_hat, z, t, betas):
    if t == 1:
        _, one_minus = _alpha_bars(betas)
        beta = betas[0]
        mean = (x_t - beta / torch.sqrt(one_minus[0]) * eps_hat) / torch.sqrt(1 - beta)
        return mean + torch.sqrt(beta) * z
    return ddpm_step(x_t, eps_hat, z, t, betas)


def _ddpm_beta(x_t, eps_hat, z, t, betas):
    if t == 1:
        return ddpm_step(x_t, eps_hat, z, t, betas)
    mean = ddpm_step(x_t, eps_hat, torch.zeros_like(z), t, betas)
    return mean + torch.sqrt(betas[t - 1]) * z


def _ddpm_variance_not_std(x_t, eps_hat, z, t, betas):
    if t == 1:
        return ddpm_step(x_t, eps_hat, z, t, betas)
    _, one_minus = _alpha_bars(betas)
    mean = ddpm_step(x_t, eps_hat, torch.zeros_like(z), t, betas)
    return mean + one_minus[t - 2] / one_minus[t - 1] * betas[t - 1] * z


def _ddpm_ddim(x_t, eps_hat, z, t, betas):
    ab, one_minus = _alpha_bars(betas)
    x0 = (x_t - torch.sqrt(one_minus[t - 1]) * eps_hat) / torch.sqrt(ab[t - 1])
    if t == 1:
        return x0
    return torch.sqrt(ab[t - 2]) * x0 + torch.sqrt(one_minus[t - 2]) * eps_hat


def _ddpm_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        betas = _random_schedule(g)
        t = draw_int(g, 1, betas.shape[0])
        n, d = draw_int(g, 1, 10), draw_int(g, 1, 5)
        x, e, z = (torch.randn(n, d, generator=g, dtype=F64) for _ in range(3))
        cases.append((draw_float(g, 0.1, 5.0) * x, e, z, t, betas))
    return cases


def _ddpm_stress():
    g = torch.Generator().manual_seed(1320)
    cosine = _cosine_schedule()
    x, e, z = (torch.randn(5, 2, generator=g, dtype=F64) for _ in range(3))
    return [
        Stress("t = T of the cosine schedule, β_T = 0.999", (x, e, z, 200, cosine)),
        Stress(
            "t = 2, where β̃_2 = β_1 β_2 / (1 - ᾱ_2) is the smallest noise",
            (x, e, z, 2, cosine),
        ),
        Stress(
            "t = 1 of a one-step schedule: the output is the mean, no noise",
            (x, e, z, 1, torch.tensor([0.3], dtype=F64)),
        ),
    ]


DDPM = Exercise(
    name="ddpm_step",
    forbidden_calls=(
        "genphys.diffusion.reverse_mean",
        "genphys.diffusion_samplers.ddpm_sample",
    ),
    solution=ddpm_step,
    cases=_ddpm_cases,
    random_cases=_ddpm_random,
    stress_cases=_ddpm_stress,
    rtol=1e-10,
    atol=1e-12,
    mistakes=(
        Mistake(
            _ddpm_beta,
            "the exercise asks for σ_t² = β̃_t = β_t (1 - ᾱ_{t-1})/(1 - ᾱ_t), the variance of "
            "the forward posterior. σ_t² = β_t is the other choice of Ho et al. and works in "
            "practice, but it is not what was asked.",
        ),
        Mistake(
            _ddpm_noise_at_one,
            "no noise at the last step (t = 1): its output is the sample x_0, the mean of "
            "p(x_0 | x_1). Added noise there would only blur the samples.",
        ),
        Mistake(
            _ddpm_variance_not_std,
            "z is multiplied by the standard deviation √β̃_t, not by the variance β̃_t.",
        ),
        Mistake(
            _ddpm_ddim,
            "that is the deterministic DDIM step (re-noising x̂_0 with the predicted noise). "
            "The ancestral step draws x_{t-1} from N(μ_θ(x_t, t), β̃_t I) with the fresh noise z.",
        ),
    ),
)
check_ddpm_step = DDPM.check


# ------------------------------------------------------------------ the DDIM step
def ddim_step(x_t, eps_hat, alpha_bar_t, alpha_bar_s):
    """x_s = √ᾱ_s x̂_0 + √(1-ᾱ_s) ε̂ with x̂_0 = (x_t - √(1-ᾱ_t) ε̂)/√ᾱ_t (deterministic, η = 0)."""
    x0_hat = (x_t - torch.sqrt(1 - alpha_bar_t) * eps_hat) / torch.sqrt(alpha_bar_t)
    return torch.sqrt(alpha_bar_s) * x0_hat + torch.sqrt(1 - alpha_bar_s) * eps_hat


def _ddim_cases():
    g = torch.Generator().manual_seed(133)
    ab = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=F64), 0)
    cases = []
    for t, s, n in [(1000, 980, 3), (500, 450, 4), (100, 1, 2)]:
        x, e = (torch.randn(n, 2, generator=g, dtype=F64) for _ in range(2))
        cases.append((x, e, ab[t - 1], ab[s - 1]))
    x, e = (torch.randn(3, 2, generator=g, dtype=F64) for _ in range(2))
    cases.append((x, e, ab[19], torch.tensor(1.0, dtype=F64)))  # last step, to ᾱ_0 = 1
    return cases


def _ddim_no_rescale(x_t, eps_hat, alpha_bar_t, alpha_bar_s):
    x0_hat = (x_t - torch.sqrt(1 - alpha_bar_t) * eps_hat) / torch.sqrt(alpha_bar_t)
    return x0_hat + torch.sqrt(1 - alpha_bar_s) * eps_hat


def _ddim_old_noise(x_t, eps_hat, alpha_bar_t, alpha_bar_s):
    x0_hat = (x_t - torch.sqrt(1 - alpha_bar_t) * eps_hat) / torch.sqrt(alpha_bar_t)
    return torch.sqrt(alpha_bar_s) * x0_hat + torch.sqrt(1 - alpha_bar_t) * eps_hat


def _ddim_x0(x_t, eps_hat, alpha_bar_t, alpha_bar_s):
    return (x_t - torch.sqrt(1 - alpha_bar_t) * eps_hat) / torch.sqrt(alpha_bar_t)


def _ddim_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        ab = torch.cumprod(1 - _random_schedule(g), 0)  # (T,)
        T = ab.shape[0]
        t = draw_int(g, 1, T)
        s = draw_int(g, 0, t - 1)  # s = 0 is the last step, to ᾱ_0 = 1
        ab_s = ab[s - 1] if s > 0 else torch.tensor(1.0, dtype=F64)
        n, d = draw_int(g, 1, 10), draw_int(g, 1, 5)
        x, e = (torch.randn(n, d, generator=g, dtype=F64) for _ in range(2))
        cases.append((x, e, ab[t - 1], ab_s))
    return cases


def _ddim_stress():
    g = torch.Generator().manual_seed(1330)
    x, e = (torch.randn(5, 3, generator=g, dtype=F64) for _ in range(2))
    one = torch.tensor(1.0, dtype=F64)
    return [
        Stress(
            "a jump from ᾱ_t = 10⁻⁶ (pure noise) to ᾱ_s = 1: x̂_0 is of order 10³",
            (x, e, torch.tensor(1e-6, dtype=F64), one),
        ),
        Stress(
            "ᾱ_s = ᾱ_t: a step of length zero returns x_t",
            (x, e, torch.tensor(0.37, dtype=F64), torch.tensor(0.37, dtype=F64)),
        ),
        Stress(
            "10000 points in 8 dimensions, from ᾱ_t = 0.01 to ᾱ_s = 0.5",
            (
                torch.randn(10_000, 8, generator=g, dtype=F64),
                torch.randn(10_000, 8, generator=g, dtype=F64),
                torch.tensor(0.01, dtype=F64),
                torch.tensor(0.5, dtype=F64),
            ),
        ),
    ]


DDIM = Exercise(
    name="ddim_step",
    forbidden_calls=("genphys.diffusion_samplers.ddim_sample",),
    solution=ddim_step,
    cases=_ddim_cases,
    random_cases=_ddim_random,
    stress_cases=_ddim_stress,
    rtol=1e-10,
    atol=1e-12,
    mistakes=(
        Mistake(
            _ddim_no_rescale,
            "x̂_0 must be scaled by √ᾱ_s before the noise is added back: x_s has the law "
            "N(√ᾱ_s x_0, (1 - ᾱ_s) I) at step s.",
        ),
        Mistake(
            _ddim_old_noise,
            "the noise is re-added at the level of the target step s, √(1 - ᾱ_s), not at the "
            "level of the current step t.",
        ),
        Mistake(
            _ddim_x0,
            "returning x̂_0 jumps straight to the end; that is right only for the last step "
            "(ᾱ_s = 1). Re-noise x̂_0 to step s with the predicted noise.",
        ),
    ),
)
check_ddim_step = DDIM.check

EXERCISES = [LOSS, DDPM, DDIM]
