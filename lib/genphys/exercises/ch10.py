"""Exercises for chapter 10, {ref}`sec-vae`: the KL divergence, the decoder and the ELBO."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._feedback import Exercise, Mistake

__all__ = [
    "EXERCISES",
    "bernoulli_log_likelihood",
    "check_bernoulli_log_likelihood",
    "check_kl_gaussian",
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


KL_GAUSSIAN = Exercise(
    name="kl_gaussian",
    solution=kl_gaussian,
    cases=_kl_cases,
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


BERNOULLI = Exercise(
    name="bernoulli_log_likelihood",
    solution=bernoulli_log_likelihood,
    cases=_bernoulli_cases,
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


LINEAR_ELBO = Exercise(
    name="linear_gaussian_elbo",
    solution=linear_gaussian_elbo,
    cases=_elbo_cases,
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
