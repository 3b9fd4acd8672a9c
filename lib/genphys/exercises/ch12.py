"""Exercises for chapter 12, {ref}`sec-vae`: the KL divergence, the decoder and the ELBO."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._feedback import Exercise, Expression, Mistake, Stress, draw_float, draw_int

__all__ = [
    "EXERCISES",
    "QUESTIONS",
    "bernoulli_log_likelihood",
    "check_bernoulli_log_likelihood",
    "check_expected_squared_error",
    "check_kl_gaussian",
    "check_kl_one_dimension",
    "check_linear_gaussian_elbo",
    "kl_gaussian",
    "linear_gaussian_elbo",
]

F64 = torch.float64


# ---------------------------------------------------------------- KL divergence
def kl_gaussian(mean, log_var):
    """KL(N(m, diag e^ℓ) || N(0, I)) = ½ Σ_j (e^ℓ_j + m_j² - 1 - ℓ_j), one value per row."""
    return 0.5 * (torch.exp(log_var) + mean**2 - 1.0 - log_var).sum(dim=-1)


def _kl_cases():
    g = torch.Generator().manual_seed(9)
    cases = [(torch.zeros(2, 3, dtype=F64), torch.zeros(2, 3, dtype=F64))]
    for n, d in [(4, 2), (5, 3), (3, 6)]:
        mean = torch.randn(n, d, generator=g, dtype=F64)
        log_var = torch.randn(n, d, generator=g, dtype=F64)
        cases.append((mean, log_var))
    return cases


def _kl_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n, d = draw_int(g, 1, 10), draw_int(g, 1, 8)
        scale = draw_float(g, 0.1, 4.0)
        cases.append(
            (
                scale * torch.randn(n, d, generator=g, dtype=F64),
                scale * torch.randn(n, d, generator=g, dtype=F64),
            )
        )
    return cases


def _kl_stress():
    g = torch.Generator().manual_seed(12)
    mean = torch.randn(4, 3, generator=g, dtype=F64)
    log_var = torch.tensor([[-800.0, 0.0, 1.0]] * 4, dtype=F64)
    return [
        Stress(
            "a log-variance of -800: e^ℓ underflows to 0, so log(e^ℓ) = -inf",
            (mean, log_var),
            "Use ℓ itself where the formula has log s²; only the s² term needs e^ℓ.",
        ),
        Stress(
            "one latent dimension and 5000 rows",
            (
                torch.randn(5000, 1, generator=g, dtype=F64),
                torch.randn(5000, 1, generator=g, dtype=F64),
            ),
        ),
    ]


KL_GAUSSIAN = Exercise(
    name="kl_gaussian",
    differentiable=True,
    forbidden_calls=(
        "genphys.gaussian.kl_diagonal_gaussian_standard_normal",
        "torch.distributions.kl.kl_divergence",
    ),
    solution=kl_gaussian,
    cases=_kl_cases,
    random_cases=_kl_random,
    stress_cases=_kl_stress,
    mistakes=(
        Mistake(
            lambda mean, log_var: (torch.exp(log_var) + mean**2 - 1.0 - log_var).sum(dim=-1),
            "the factor 1/2 is missing: each dimension contributes "
            "½(s² + m² - 1 - log s²), from E_q[log q] = -½ log(2πs²) - ½.",
        ),
        Mistake(
            lambda mean, log_var: 0.5 * (torch.exp(log_var) + mean**2 - 1.0 + log_var).sum(dim=-1),
            "the sign of the log-variance term: KL contains -log s² = -ℓ, which comes from the "
            "entropy of q. Check that your KL is 0 for m = 0, ℓ = 0 and grows when ℓ → -∞.",
        ),
        Mistake(
            lambda mean, log_var: 0.5 * (torch.exp(log_var) + mean**2 - log_var).sum(dim=-1),
            "the -1 per dimension is missing; without it the KL of the prior with itself "
            "would be d/2 instead of 0.",
        ),
        Mistake(
            lambda mean, log_var: (
                0.5 * (torch.exp(0.5 * log_var) + mean**2 - 1.0 - log_var).sum(-1)
            ),
            "ℓ is the log-VARIANCE: the variance is e^ℓ, not the standard deviation e^{ℓ/2}.",
        ),
        Mistake(
            lambda mean, log_var: 0.5 * (torch.exp(log_var) + mean**2 - 1.0 - log_var),
            "sum over the latent dimensions: the KL of a diagonal Gaussian is the sum of the "
            "one-dimensional KLs, one number per row.",
        ),
    ),
)
check_kl_gaussian = KL_GAUSSIAN.check


# ------------------------------------------------------------ Bernoulli decoder
def bernoulli_log_likelihood(x, logits):
    """log p(x|h) = Σ_i [x_i f_i - log(1 + e^{f_i})] for logits f, without overflow."""
    return (x * logits - F.softplus(logits)).sum(dim=-1)


def _bernoulli_cases():
    g = torch.Generator().manual_seed(10)
    cases = []
    for n, D in [(3, 4), (5, 8)]:
        x = torch.randint(0, 2, (n, D), generator=g).to(F64)
        cases.append((x, 2 * torch.randn(n, D, generator=g, dtype=F64)))
    # confident and wrong: sigmoid(-800) is 0 in float64, log(0) = -inf
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], dtype=F64)
    logits = torch.tensor([[-800.0, 800.0, 2.0], [3.0, -1.0, -750.0]], dtype=F64)
    cases.append((x, logits))
    return cases


def _through_sigmoid(x, logits):
    p = torch.sigmoid(logits)
    return (x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum(dim=-1)


def _bernoulli_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n, D = draw_int(g, 1, 10), draw_int(g, 1, 16)
        x = torch.randint(0, 2, (n, D), generator=g).to(F64)
        cases.append((x, draw_float(g, 0.1, 8.0) * torch.randn(n, D, generator=g, dtype=F64)))
    return cases


def _bernoulli_stress():
    g = torch.Generator().manual_seed(13)
    x = torch.randint(0, 2, (2000, 64), generator=g).to(F64)
    return [
        Stress(
            "logits of ±40: σ(40) rounds to exactly 1 in float64",
            (
                torch.tensor([[1.0, 0.0, 0.0, 1.0]], dtype=F64),
                torch.tensor([[40.0, -40.0, 40.0, -40.0]], dtype=F64),
            ),
            "Work with the logits: x f - softplus(f), never log σ(f) or log(1 - σ(f)).",
        ),
        Stress(
            "2000 images of 64 pixels", (x, 3.0 * torch.randn(2000, 64, generator=g, dtype=F64))
        ),
    ]


BERNOULLI = Exercise(
    name="bernoulli_log_likelihood",
    differentiable=True,
    forbidden_calls=("genphys.autoencoder.bernoulli_cross_entropy",),
    solution=bernoulli_log_likelihood,
    cases=_bernoulli_cases,
    random_cases=_bernoulli_random,
    stress_cases=_bernoulli_stress,
    mistakes=(
        Mistake(
            _through_sigmoid,
            "σ(f) rounds to exactly 0 or 1 for large |f| and log(0) = -inf. Work with the logits: "
            "x log σ(f) + (1 - x) log(1 - σ(f)) = x f - log(1 + e^f), and log(1 + e^f) is "
            "torch.nn.functional.softplus(f).",
        ),
        Mistake(
            lambda x, logits: (x * logits - F.softplus(logits)).mean(dim=-1),
            "sum over the features, do not average: log p(x|h) of independent pixels is the sum "
            "of their log-probabilities.",
        ),
        Mistake(
            lambda x, logits: (-x * F.softplus(-logits)).sum(dim=-1),
            "only the pixels with x_i = 1 are counted; the pixels with x_i = 0 contribute "
            "log(1 - σ(f_i)) = -softplus(f_i).",
        ),
        Mistake(
            lambda x, logits: (x * logits + F.softplus(logits)).sum(dim=-1),
            "the sign of log(1 + e^f): a log-probability is never positive.",
        ),
    ),
)
check_bernoulli_log_likelihood = BERNOULLI.check


# ------------------------------------------------------- linear-Gaussian ELBO
def linear_gaussian_elbo(x, C, mu, sigma2, q_mean, q_var):
    """ELBO = E_q[log N(x; Ch + mu, σ²I)] - KL(q || N(0, I)) for diagonal q = N(m, diag v)."""
    D = x.shape[-1]
    residual = x - mu - q_mean @ C.T  # (n, D)
    trace = q_var @ (C**2).sum(dim=0)  # tr(C diag(v) Cᵀ): (n,)
    expected_log_lik = -0.5 * (
        D * math.log(2 * math.pi * sigma2) + ((residual**2).sum(dim=-1) + trace) / sigma2
    )
    kl = 0.5 * (q_var + q_mean**2 - 1.0 - torch.log(q_var)).sum(dim=-1)
    return expected_log_lik - kl


def _elbo_cases():
    g = torch.Generator().manual_seed(11)
    cases = []
    for n, D, d, sigma2 in [(3, 4, 2, 0.5), (5, 6, 3, 0.1), (2, 3, 1, 2.0)]:
        C = torch.randn(D, d, generator=g, dtype=F64)
        mu = torch.randn(D, generator=g, dtype=F64)
        x = torch.randn(n, D, generator=g, dtype=F64)
        q_mean = torch.randn(n, d, generator=g, dtype=F64)
        q_var = torch.rand(n, d, generator=g, dtype=F64) + 0.1
        cases.append((x, C, mu, sigma2, q_mean, q_var))
    return cases


def _elbo_without_trace(x, C, mu, sigma2, q_mean, q_var):
    return (
        linear_gaussian_elbo(x, C, mu, sigma2, q_mean, q_var)
        + 0.5 * (q_var @ (C**2).sum(dim=0)) / sigma2
    )


def _elbo_without_constant(x, C, mu, sigma2, q_mean, q_var):
    D = x.shape[-1]
    return linear_gaussian_elbo(x, C, mu, sigma2, q_mean, q_var) + 0.5 * D * math.log(
        2 * math.pi * sigma2
    )


def _elbo_plus_kl(x, C, mu, sigma2, q_mean, q_var):
    kl = 0.5 * (q_var + q_mean**2 - 1.0 - torch.log(q_var)).sum(dim=-1)
    return linear_gaussian_elbo(x, C, mu, sigma2, q_mean, q_var) + 2 * kl


def _elbo_random(g: torch.Generator):
    cases = []
    for _ in range(2):
        n, D, d = draw_int(g, 1, 6), draw_int(g, 1, 8), draw_int(g, 1, 4)
        C = torch.randn(D, d, generator=g, dtype=F64)
        mu = torch.randn(D, generator=g, dtype=F64)
        x = torch.randn(n, D, generator=g, dtype=F64)
        q_mean = torch.randn(n, d, generator=g, dtype=F64)
        q_var = torch.rand(n, d, generator=g, dtype=F64) + 0.05
        cases.append((x, C, mu, draw_float(g, 0.05, 3.0), q_mean, q_var))
    return cases


def _elbo_stress():
    g = torch.Generator().manual_seed(14)
    D, d = 64, 10
    C = torch.randn(D, d, generator=g, dtype=F64)
    x = torch.randn(500, D, generator=g, dtype=F64)
    q_mean = torch.randn(500, d, generator=g, dtype=F64)
    return [
        Stress(
            "500 images of 64 pixels with 10 latent dimensions",
            (
                x,
                C,
                torch.zeros(D, dtype=F64),
                0.3,
                q_mean,
                torch.rand(500, d, generator=g, dtype=F64) + 0.01,
            ),
        ),
        Stress(
            "nearly deterministic posteriors, variances of 10⁻³⁰⁰",
            (
                x[:3],
                C,
                torch.zeros(D, dtype=F64),
                0.3,
                q_mean[:3],
                torch.full((3, d), 1e-300, dtype=F64),
            ),
        ),
    ]


LINEAR_ELBO = Exercise(
    name="linear_gaussian_elbo",
    forbidden_calls=("genphys.linear_gaussian.LinearGaussianModel.elbo",),
    solution=linear_gaussian_elbo,
    cases=_elbo_cases,
    random_cases=_elbo_random,
    stress_cases=_elbo_stress,
    mistakes=(
        Mistake(
            _elbo_without_trace,
            "E_q‖x - μ - Ch‖² is not ‖x - μ - Cm‖²: h fluctuates around m, which adds "
            "tr(C diag(v) Cᵀ) = Σ_j v_j ‖C_:j‖².",
        ),
        Mistake(
            _elbo_without_constant,
            "the normalisation of the Gaussian is missing: log N(x; f, σ²I) contains "
            "-(D/2) log(2πσ²).",
        ),
        Mistake(
            _elbo_plus_kl,
            "the KL divergence to the prior is subtracted from the expected log-likelihood, "
            "not added: the ELBO is E_q[log p(x|h)] - KL(q || p(h)).",
        ),
    ),
)
check_linear_gaussian_elbo = LINEAR_ELBO.check

EXERCISES = [KL_GAUSSIAN, BERNOULLI, LINEAR_ELBO]

# ----------------------------------------------------------- derivation questions
KL_ONE_DIMENSION = Expression(
    name="kl_one_dimension",
    question=(
        "Derive KL(N(m, s²) || N(0, 1)) for one latent dimension from the definition "
        "E_q[log q(h) - log p(h)], using E_q[(h - m)²] = s² and E_q[h²] = m² + s². Give it "
        "as a formula in m and s2 (the variance s²)."
    ),
    variables={"m": (-3.0, 3.0), "s2": (0.05, 5.0)},
    solution="0.5*(s2 + m**2 - 1 - log(s2))",
    mistakes=(
        Mistake(
            "s2 + m**2 - 1 - log(s2)",
            "the factor 1/2: both log-densities carry -(1/2)(...)² terms.",
        ),
        Mistake(
            "0.5*(s2 + m**2 - 1 + log(s2))",
            "E_q[log q] = -½ log(2π s²) - ½ enters with a minus sign of log s².",
        ),
        Mistake(
            "0.5*(s2 + m**2 - log(s2))",
            "the -1 comes from E_q[(h - m)²] / s² = 1 in E_q[log q]; without it KL(p || p) ≠ 0.",
        ),
        Mistake(
            "0.5*(sqrt(s2) + m**2 - 1 - log(s2))",
            "E_q[h²] = m² + s² contains the variance s², not the standard deviation.",
        ),
    ),
    explanation=(
        "E_q[log q(h)] = -½ log(2π s²) - ½ and E_q[log p(h)] = -½ log(2π) - ½ (m² + s²). "
        "Their difference is ½ (s² + m² - 1 - log s²), which is 0 for m = 0, s² = 1."
    ),
)
check_kl_one_dimension = KL_ONE_DIMENSION.check

EXPECTED_SQUARED_ERROR = Expression(
    name="expected_squared_error",
    question=(
        "For one pixel and one latent dimension (D = d = 1), C = c, and q(h) = N(m, v), "
        "write h = m + √v ε with ε ~ N(0, 1) and compute E_q[(x - μ - c h)²]. Give it as a "
        "formula in x, mu, c, m and v."
    ),
    variables={
        "x": (-3.0, 3.0),
        "mu": (-2.0, 2.0),
        "c": (-2.0, 2.0),
        "m": (-2.0, 2.0),
        "v": (0.01, 3.0),
    },
    solution="(x - mu - c*m)**2 + c**2*v",
    mistakes=(
        Mistake(
            "(x - mu - c*m)**2",
            "h fluctuates around m: the cross term averages to zero but E[ε²] = 1 leaves c² v.",
        ),
        Mistake(
            "(x - mu - c*m)**2 + c*v", "the fluctuation term is (c √v ε)², whose mean is c² v."
        ),
        Mistake("(x - mu - c*m)**2 + c**2*sqrt(v)", "v is the variance: E[(c √v ε)²] = c² v."),
    ),
    explanation=(
        "x - μ - c h = (x - μ - c m) - c √v ε. Squaring and averaging, the cross term has "
        "E[ε] = 0 and the last term E[ε²] = 1: E_q[(x - μ - c h)²] = (x - μ - c m)² + c² v. "
        "For D, d > 1 the same steps give ||x - μ - C m||² + Σ_j v_j ||C_:j||²."
    ),
)
check_expected_squared_error = EXPECTED_SQUARED_ERROR.check

QUESTIONS = [KL_ONE_DIMENSION, EXPECTED_SQUARED_ERROR]
