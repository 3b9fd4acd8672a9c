"""Exercises for chapter 11, {ref}`sec-training-vaes`: reparameterisation, IWAE, REINFORCE."""

from __future__ import annotations

import math

import torch

from ._feedback import Exercise, Mistake

__all__ = [
    "EXERCISES",
    "check_iwae_bound",
    "check_reparameterize",
    "check_score_function_gradient",
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


REPARAMETERIZE = Exercise(
    name="reparameterize",
    solution=reparameterize,
    cases=_reparameterize_cases,
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


IWAE = Exercise(
    name="iwae_bound",
    solution=iwae_bound,
    cases=_iwae_cases,
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


SCORE = Exercise(
    name="score_function_gradient",
    solution=score_function_gradient,
    cases=_score_cases,
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

EXERCISES = [REPARAMETERIZE, IWAE, SCORE]
