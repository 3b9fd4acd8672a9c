"""Exercises for chapter 13, {ref}`sec-training-vaes`: reparameterisation, IWAE, REINFORCE, Binder cumulant."""

from __future__ import annotations

import math

import torch

from ._feedback import Exercise, Expression, Mistake, Stress, draw_float, draw_int

__all__ = [
    "EXERCISES",
    "QUESTIONS",
    "binder_cumulant",
    "check_binder_cumulant",
    "check_dh_dlog_var",
    "check_iwae_bound",
    "check_reparameterize",
    "check_score_function_gradient",
    "check_score_of_mean",
    "iwae_bound",
    "reparameterize",
    "score_function_gradient",
]

F64 = torch.float64


# ------------------------------------------------------------ reparameterisation
def reparameterize(mean, log_var, eps):
    """h = m + e^{ℓ/2} ⊙ ε: the sample of N(m, diag e^ℓ) built from standard normal noise ε."""
    return mean + torch.exp(0.5 * log_var) * eps


def _reparameterize_cases():
    g = torch.Generator().manual_seed(20)
    cases = []
    for n, d in [(4, 2), (6, 3), (3, 5)]:
        mean = torch.randn(n, d, generator=g, dtype=F64)
        log_var = torch.randn(n, d, generator=g, dtype=F64)
        eps = torch.randn(n, d, generator=g, dtype=F64)
        cases.append((mean, log_var, eps))
    return cases


def _reparameterize_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n, d = draw_int(g, 1, 10), draw_int(g, 1, 8)
        scale = draw_float(g, 0.1, 3.0)
        cases.append(
            (
                scale * torch.randn(n, d, generator=g, dtype=F64),
                scale * torch.randn(n, d, generator=g, dtype=F64),
                torch.randn(n, d, generator=g, dtype=F64),
            )
        )
    return cases


def _reparameterize_stress():
    g = torch.Generator().manual_seed(23)
    mean = torch.randn(3, 2, generator=g, dtype=F64)
    eps = torch.randn(3, 2, generator=g, dtype=F64)
    big = [torch.randn(5000, 16, generator=g, dtype=F64) for _ in range(3)]
    return [
        Stress(
            "a log-variance of 1400: e^ℓ overflows, although s = e^{ℓ/2} = 10³⁰⁴ does not",
            (mean, torch.tensor([[1400.0, 2.0]] * 3, dtype=F64), eps),
            "Compute the standard deviation as e^{ℓ/2} directly, not as √(e^ℓ).",
        ),
        Stress("5000 rows of 16 latent dimensions", tuple(big)),
    ]


REPARAMETERIZE = Exercise(
    name="reparameterize",
    differentiable=True,
    forbidden_calls=("genphys.vae.VAE.reparameterize",),
    solution=reparameterize,
    cases=_reparameterize_cases,
    random_cases=_reparameterize_random,
    stress_cases=_reparameterize_stress,
    mistakes=(
        Mistake(
            lambda mean, log_var, eps: mean + torch.exp(log_var) * eps,
            "e^ℓ is the variance; the noise must be scaled by the standard deviation e^{ℓ/2}.",
        ),
        Mistake(
            lambda mean, log_var, eps: mean + log_var * eps,
            "ℓ is the log-variance, not the standard deviation: scale ε by e^{ℓ/2}.",
        ),
        Mistake(
            lambda mean, log_var, eps: (mean + eps) * torch.exp(0.5 * log_var),
            "only the noise is scaled: h = m + s ⊙ ε, so the mean must not be multiplied by s.",
        ),
    ),
)
check_reparameterize = REPARAMETERIZE.check


# ------------------------------------------------------------------ IWAE bound
def iwae_bound(log_w):
    """log (1/k) Σ_s e^{log w_s} over axis 0 of log_w (k, n), stably: logsumexp - log k."""
    return torch.logsumexp(log_w, dim=0) - math.log(log_w.shape[0])


def _iwae_cases():
    g = torch.Generator().manual_seed(21)
    return [
        (torch.randn(5, 3, generator=g, dtype=F64),),
        (2 * torch.randn(50, 4, generator=g, dtype=F64),),
        # realistic log-weights of images: e^{-800} underflows to 0 in float64
        (-800.0 + 3 * torch.randn(20, 2, generator=g, dtype=F64),),
    ]


def _iwae_random(g: torch.Generator):
    # every column within 50 nats of the others: a stable formula is not needed here yet
    cases = []
    for _ in range(3):
        k, n = draw_int(g, 1, 40), draw_int(g, 1, 6)
        offsets = draw_float(g, -200.0, 0.0) + 50.0 * torch.rand(n, generator=g, dtype=F64)
        cases.append(
            (offsets + draw_float(g, 0.1, 4.0) * torch.randn(k, n, generator=g, dtype=F64),)
        )
    return cases


def _iwae_stress():
    g = torch.Generator().manual_seed(24)
    apart = torch.tensor([300.0, -500.0], dtype=F64) + torch.randn(30, 2, generator=g, dtype=F64)
    return [
        Stress(
            "two data points whose log-weights lie 800 nats apart",
            (apart,),
            "Shift each data point (column) by its own maximum over the k samples.",
        ),
        Stress(
            "a single sample, k = 1: the bound is log w itself",
            (torch.randn(1, 4, generator=g, dtype=F64),),
        ),
        Stress("k = 5000 samples", (-90.0 + 5.0 * torch.randn(5000, 3, generator=g, dtype=F64),)),
    ]


def _iwae_global_max(log_w):
    m = log_w.max()
    return m + torch.log(torch.exp(log_w - m).mean(dim=0))


IWAE = Exercise(
    name="iwae_bound",
    forbidden_calls=(
        "genphys.vae.VAE.iwae_bound",
        "genphys.gaussian.log_mean_exp",
        "genphys.gaussian.log_mean_exp_chunked",
    ),
    solution=iwae_bound,
    cases=_iwae_cases,
    random_cases=_iwae_random,
    stress_cases=_iwae_stress,
    mistakes=(
        Mistake(
            lambda log_w: log_w.mean(dim=0),
            "that is the mean of the log-weights, the ELBO estimate. The IWAE bound is the log "
            "of the mean of the weights: log (1/k) Σ_s w_s, which is larger by Jensen.",
        ),
        Mistake(
            lambda log_w: torch.logsumexp(log_w, dim=0),
            "divide by k inside the log: log (1/k) Σ_s w_s = logsumexp(log w) - log k.",
        ),
        Mistake(
            lambda log_w: torch.log(torch.exp(log_w).mean(dim=0)),
            "e^{-800} underflows to 0 and log 0 = -inf. Subtract the largest log-weight before "
            "exponentiating (log-sum-exp), or use torch.logsumexp.",
        ),
        Mistake(
            lambda log_w: torch.logsumexp(log_w, dim=1) - math.log(log_w.shape[1]),
            "average over the k samples, axis 0; axis 1 runs over the data points.",
        ),
        Mistake(
            _iwae_global_max,
            "one global maximum is not enough: the data points (columns) live on different "
            "scales, and a column 800 nats below the largest log-weight underflows to "
            "log 0 = -inf. Subtract each column's own maximum, log_w.max(dim=0), or use "
            "torch.logsumexp(log_w, dim=0).",
        ),
    ),
)
check_iwae_bound = IWAE.check


# --------------------------------------------------------- score function
def score_function_gradient(f_values, eps, log_var):
    """Per-sample REINFORCE estimates of ∂E_q[f]/∂m: f(h_s) ε_s e^{-ℓ/2}, shape (S, d)."""
    return f_values[:, None] * eps * torch.exp(-0.5 * log_var)


def _score_cases():
    g = torch.Generator().manual_seed(22)
    cases = []
    for S, d in [(6, 2), (10, 3)]:
        eps = torch.randn(S, d, generator=g, dtype=F64)
        cases.append(
            (torch.randn(S, generator=g, dtype=F64), eps, torch.randn(d, generator=g, dtype=F64))
        )
    return cases


def _score_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        S, d = draw_int(g, 1, 20), draw_int(g, 1, 6)
        cases.append(
            (
                draw_float(g, 0.1, 10.0) * torch.randn(S, generator=g, dtype=F64),
                torch.randn(S, d, generator=g, dtype=F64),
                draw_float(g, 0.1, 3.0) * torch.randn(d, generator=g, dtype=F64),
            )
        )
    return cases


def _score_stress():
    g = torch.Generator().manual_seed(25)
    S, d = 20_000, 8
    return [
        Stress(
            "a single sample, S = 1",
            tuple(
                a[:1] if a.dim() and a.shape[0] == S else a
                for a in (
                    torch.randn(S, generator=g, dtype=F64),
                    torch.randn(S, d, generator=g, dtype=F64),
                    torch.randn(d, generator=g, dtype=F64),
                )
            ),
        ),
        Stress(
            "20000 samples",
            (
                torch.randn(S, generator=g, dtype=F64),
                torch.randn(S, d, generator=g, dtype=F64),
                torch.randn(d, generator=g, dtype=F64),
            ),
        ),
    ]


SCORE = Exercise(
    name="score_function_gradient",
    solution=score_function_gradient,
    cases=_score_cases,
    random_cases=_score_random,
    stress_cases=_score_stress,
    mistakes=(
        Mistake(
            lambda f_values, eps, log_var: f_values[:, None] * eps,
            "the score is ∂ log q/∂m = (h - m)/s² = ε/s: divide by the standard deviation "
            "s = e^{ℓ/2}.",
        ),
        Mistake(
            lambda f_values, eps, log_var: f_values[:, None] * eps * torch.exp(0.5 * log_var),
            "the score is (h - m)/s² = ε s / s² = ε/s: divide by s = e^{ℓ/2}, do not multiply.",
        ),
        Mistake(
            lambda f_values, eps, log_var: f_values[:, None] * 0.5 * (eps**2 - 1.0),
            "that is the estimate for the log-variance ℓ; the one for the mean uses "
            "∂ log q/∂m = ε e^{-ℓ/2}.",
        ),
    ),
)
check_score_function_gradient = SCORE.check


# ----------------------------------------------------------- Binder cumulant
def binder_cumulant(z):
    """U = 1 - <z⁴>/(3 <z²>²) of samples z (n,), from z / max|z| so that z⁴ stays finite."""
    x2 = (z / z.abs().max()) ** 2  # (n,), in [0, 1]
    return 1.0 - (x2**2).mean() / (3.0 * x2.mean() ** 2)


def _two_peaks(g: torch.Generator, n: int, width: float, p_up: float = 0.5) -> torch.Tensor:
    """Samples s (1 + width ε), s = ±1 with P(s = 1) = p_up: an ordered phase."""
    s = torch.where(torch.rand(n, generator=g, dtype=F64) < p_up, 1.0, -1.0).to(F64)
    return s * (1.0 + width * torch.randn(n, generator=g, dtype=F64))


def _binder_cases():
    g = torch.Generator().manual_seed(26)
    return [
        (torch.tensor([1.0, -1.0, -1.0, 1.0, 1.0, 1.0, -1.0], dtype=F64),),  # U = 2/3 exactly
        (_two_peaks(g, 50, 0.3, p_up=0.7),),
        (2.5 * torch.randn(40, generator=g, dtype=F64) + 0.4,),
    ]


def _binder_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n, scale = draw_int(g, 5, 300), draw_float(g, 0.01, 100.0)
        width, p_up = draw_float(g, 0.05, 1.5), draw_float(g, 0.2, 0.8)
        cases.append((scale * _two_peaks(g, n, width, p_up),))
    return cases


def _binder_stress():
    g = torch.Generator().manual_seed(27)
    z = _two_peaks(g, 200, 0.4, p_up=0.6)
    hint = (
        "U does not change when z is multiplied by a constant: divide z by max|z| "
        "before taking powers."
    )
    return [
        Stress("a latent on a scale of 10¹⁰⁰: z⁴ = 10⁴⁰⁰ overflows to inf", (1e100 * z,), hint),
        Stress("a latent on a scale of 10⁻⁹⁰: z⁴ = 10⁻³⁶⁰ underflows to 0", (1e-90 * z,), hint),
        Stress(
            "a million Gaussian samples (U close to 0)",
            (torch.randn(10**6, generator=g, dtype=F64),),
        ),
    ]


def _binder_central(z):
    c = z - z.mean()
    return 1.0 - (c**4).mean() / (3.0 * (c**2).mean() ** 2)


BINDER = Exercise(
    name="binder_cumulant",
    forbidden_calls=("genphys.criticality.binder_cumulant",),
    solution=binder_cumulant,
    cases=_binder_cases,
    random_cases=_binder_random,
    stress_cases=_binder_stress,
    mistakes=(
        Mistake(
            lambda z: 1.0 - (z**4).mean() / (z**2).mean() ** 2,
            "the factor 3 is missing: U = 1 - <z⁴>/(3 <z²>²), which is 0 for a Gaussian "
            "(<z⁴> = 3 <z²>²) and 2/3 for z = ±1.",
        ),
        Mistake(
            lambda z: 1.0 - (z**4).mean() / (3.0 * (z**2).mean()),
            "square the second moment: the denominator is 3 <z²>², so that U does not "
            "depend on the scale of z.",
        ),
        Mistake(
            lambda z: 1.0 - (z**2).mean() ** 2 / (3.0 * (z**4).mean()),
            "the ratio is upside down: U = 1 - <z⁴>/(3 <z²>²).",
        ),
        Mistake(
            _binder_central,
            "Binder's U uses moments about zero, <z²> and <z⁴>, not about the sample mean "
            "(that would be the kurtosis): on a finite lattice the order parameter "
            "averages to 0 only over both ordered states.",
        ),
    ),
)
check_binder_cumulant = BINDER.check

EXERCISES = [REPARAMETERIZE, IWAE, SCORE, BINDER]

# ----------------------------------------------------------- derivation questions
DH_DLOG_VAR = Expression(
    name="dh_dlog_var",
    question=(
        "For one latent dimension, h = m + e^{ℓ/2} ε. What is ∂h/∂ℓ at fixed ε? Give it as "
        "a formula in ell (ℓ) and eps (ε)."
    ),
    variables={"ell": (-3.0, 3.0), "eps": (-3.0, 3.0)},
    solution="0.5*exp(ell/2)*eps",
    mistakes=(
        Mistake("exp(ell/2)*eps", "the chain rule: ∂e^{ℓ/2}/∂ℓ = ½ e^{ℓ/2}."),
        Mistake("0.5*exp(ell/2)", "ε multiplies the standard deviation, so it stays in ∂h/∂ℓ."),
        Mistake("exp(ell)*eps", "h contains e^{ℓ/2}, the standard deviation, not e^ℓ."),
    ),
    explanation=(
        "ε is fixed noise, so h is an ordinary differentiable function of ℓ: "
        "∂h/∂ℓ = ½ e^{ℓ/2} ε (and ∂h/∂m = 1). Autograd computes the same through "
        "reparameterize; the sampling step has been moved into ε."
    ),
)
check_dh_dlog_var = DH_DLOG_VAR.check

SCORE_OF_MEAN = Expression(
    name="score_of_mean",
    question=(
        "For one latent dimension, q(h) = N(m, e^ℓ). Derive ∂ log q(h)/∂m and evaluate it at "
        "h = m + e^{ℓ/2} ε. Give it as a formula in ell (ℓ) and eps (ε)."
    ),
    variables={"ell": (-3.0, 3.0), "eps": (-3.0, 3.0)},
    solution="eps*exp(-ell/2)",
    mistakes=(
        Mistake("eps", "(h - m)/s² = ε s / s² = ε / s: a factor e^{-ℓ/2} remains."),
        Mistake("eps*exp(ell/2)", "divide by the variance: (h - m)/s² = ε s / s² = ε / s."),
        Mistake("-eps*exp(-ell/2)", "log q = -(h - m)²/(2s²) + const grows with m when h > m."),
        Mistake("eps*exp(-ell)", "(h - m) = s ε, so (h - m)/s² = ε / s = ε e^{-ℓ/2}."),
    ),
    explanation=(
        "log q(h) = -(h - m)²/(2 e^ℓ) - ℓ/2 - ½ log 2π, so ∂ log q/∂m = (h - m)/e^ℓ. With "
        "h - m = e^{ℓ/2} ε this is ε e^{-ℓ/2}."
    ),
)
check_score_of_mean = SCORE_OF_MEAN.check

QUESTIONS = [DH_DLOG_VAR, SCORE_OF_MEAN]
