"""Exercises for chapter 9, {ref}`sec-without-sampling`: pseudo-likelihood, the NCE loss, score matching.

RBM parameters are ``W`` of shape ``(M, N)``, ``a`` of shape ``(M,)`` and ``b`` of shape
``(N,)``, as in :class:`genphys.rbm.BernoulliRBM`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._feedback import Exercise, Mistake, Stress, draw_float, draw_int

__all__ = [
    "EXERCISES",
    "check_gaussian_score_matching",
    "check_log_pseudo_likelihood",
    "check_nce_loss",
    "gaussian_score_matching",
    "log_pseudo_likelihood",
    "nce_loss",
]


def _parameters(generator: torch.Generator, n_visible: int, n_hidden: int, scale: float):
    W = scale * torch.randn(n_visible, n_hidden, generator=generator, dtype=torch.float64)
    a = scale * torch.randn(n_visible, generator=generator, dtype=torch.float64)
    b = scale * torch.randn(n_hidden, generator=generator, dtype=torch.float64)
    return W, a, b


def _bits(generator: torch.Generator, n: int, m: int, p: float = 0.4) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, m), p, dtype=torch.float64), generator=generator)


# ------------------------------------------------------------ pseudo-likelihood
def _free_energy(x, W, a, b):
    return -(x @ a) - F.softplus(x @ W + b).sum(-1)  # (..., )


def _flipped(x):
    """Every one-bit flip of every row: shape (n, M, M), [k, i] is row k with bit i flipped."""
    eye = torch.eye(x.shape[1], dtype=x.dtype)  # (M, M)
    return x[:, None, :] + eye - 2 * x[:, None, :] * eye


def log_pseudo_likelihood(x, W, a, b):
    """Σ_i log σ(F(x with bit i flipped) - F(x)), one value per row of x."""
    f = _free_energy(x, W, a, b)  # (n,)
    f_flipped = _free_energy(_flipped(x), W, a, b)  # (n, M)
    return F.logsigmoid(f_flipped - f[:, None]).sum(-1)


def _pl_sign(x, W, a, b):
    f = _free_energy(x, W, a, b)
    return F.logsigmoid(f[:, None] - _free_energy(_flipped(x), W, a, b)).sum(-1)


def _pl_mean(x, W, a, b):
    return log_pseudo_likelihood(x, W, a, b) / x.shape[1]


def _pl_naive(x, W, a, b):
    f = _free_energy(x, W, a, b)
    return torch.log(torch.sigmoid(_free_energy(_flipped(x), W, a, b) - f[:, None])).sum(-1)


def _pl_no_hidden_bias(x, W, a, b):
    return log_pseudo_likelihood(x, W, a, torch.zeros_like(b))


def _pl_cases():
    g = torch.Generator().manual_seed(91)
    cases = []
    for n, (m, k), scale in zip((5, 8, 4), [(4, 3), (6, 2), (5, 4)], (1.0, 2.0, 1.0), strict=True):
        W, a, b = _parameters(g, m, k, scale)
        cases.append((_bits(g, n, m), W, a, b))
    W, a, b = _parameters(g, 5, 3, 1.0)
    W = 1000.0 * W  # free-energy differences of thousands: σ(-1000) underflows to 0
    cases.append((_bits(g, 6, 5), W, a, b))
    return cases


def _pl_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n, m, k = draw_int(g, 1, 10), draw_int(g, 1, 8), draw_int(g, 1, 6)
        W, a, b = _parameters(g, m, k, draw_float(g, 0.1, 3.0))
        cases.append((_bits(g, n, m, draw_float(g, 0.1, 0.9)), W, a, b))
    return cases


def _pl_stress():
    g = torch.Generator().manual_seed(94)
    return [
        Stress(
            "weights of size 1000: free-energy differences of thousands of nats",
            (_bits(g, 10, 6), *_parameters(g, 6, 4, 1000.0)),
            "compute log σ(z) with torch.nn.functional.logsigmoid and log(1 + e^z) with "
            "softplus; neither forms e^z.",
        ),
        Stress("a single visible unit", (_bits(g, 7, 1), *_parameters(g, 1, 3, 1.0))),
        Stress("3000 rows of 20 units", (_bits(g, 3000, 20), *_parameters(g, 20, 8, 1.0))),
    ]


LOG_PSEUDO_LIKELIHOOD = Exercise(
    name="log_pseudo_likelihood",
    forbidden_calls=(
        "genphys.pseudolikelihood.log_pseudo_likelihood",
        "genphys.pseudolikelihood.conditional_log_probs",
        "genphys.pseudolikelihood.stochastic_log_pseudo_likelihood",
    ),
    solution=log_pseudo_likelihood,
    cases=_pl_cases,
    random_cases=_pl_random,
    stress_cases=_pl_stress,
    mistakes=(
        Mistake(
            _pl_sign,
            "p(x_i | x_-i) = e^{-F(x)} / (e^{-F(x)} + e^{-F(x̃)}) = σ(F(x̃) - F(x)): the "
            "flipped configuration's free energy comes first.",
        ),
        Mistake(
            _pl_mean,
            "the log-pseudo-likelihood is the *sum* of the M one-site log-conditionals, not "
            "their mean.",
        ),
        Mistake(
            _pl_naive,
            "log(sigmoid(z)) is -inf once σ(z) underflows to 0 (z below about -745; one test "
            "case has free-energy differences of thousands). Use logsigmoid.",
        ),
        Mistake(
            _pl_no_hidden_bias,
            "the free energy F(x) = -aᵀx - Σ_j log(1 + e^{b_j + (xW)_j}) includes the hidden "
            "bias b.",
        ),
    ),
)
check_log_pseudo_likelihood = LOG_PSEUDO_LIKELIHOOD.check


# ------------------------------------------------------------------- NCE loss
def nce_loss(log_p_data, log_q_data, log_p_noise, log_q_noise):
    """-mean log σ(G(x)) - ν mean log σ(-G(y)), G = log p - log q - log ν, ν = T_n / T_d."""
    nu = log_p_noise.shape[0] / log_p_data.shape[0]
    g_data = log_p_data - log_q_data - math.log(nu)  # (T_d,)
    g_noise = log_p_noise - log_q_noise - math.log(nu)  # (T_n,)
    return -F.logsigmoid(g_data).mean() - nu * F.logsigmoid(-g_noise).mean()


def _nce_no_log_nu(log_p_data, log_q_data, log_p_noise, log_q_noise):
    nu = log_p_noise.shape[0] / log_p_data.shape[0]
    return (
        -F.logsigmoid(log_p_data - log_q_data).mean()
        - nu * F.logsigmoid(log_q_noise - log_p_noise).mean()
    )


def _nce_no_nu_weight(log_p_data, log_q_data, log_p_noise, log_q_noise):
    nu = log_p_noise.shape[0] / log_p_data.shape[0]
    g_data = log_p_data - log_q_data - math.log(nu)
    g_noise = log_p_noise - log_q_noise - math.log(nu)
    return -F.logsigmoid(g_data).mean() - F.logsigmoid(-g_noise).mean()


def _nce_naive(log_p_data, log_q_data, log_p_noise, log_q_noise):
    nu = log_p_noise.shape[0] / log_p_data.shape[0]
    r_data = torch.exp(log_p_data) / (torch.exp(log_p_data) + nu * torch.exp(log_q_data))
    r_noise = torch.exp(log_p_noise) / (torch.exp(log_p_noise) + nu * torch.exp(log_q_noise))
    return -torch.log(r_data).mean() - nu * torch.log(1 - r_noise).mean()


def _nce_noise_sign(log_p_data, log_q_data, log_p_noise, log_q_noise):
    nu = log_p_noise.shape[0] / log_p_data.shape[0]
    g_data = log_p_data - log_q_data - math.log(nu)
    g_noise = log_p_noise - log_q_noise - math.log(nu)
    return -F.logsigmoid(g_data).mean() - nu * F.logsigmoid(g_noise).mean()


def _logs(g: torch.Generator, n: int, scale: float = 2.0) -> torch.Tensor:
    return scale * torch.randn(n, generator=g, dtype=torch.float64) - 3.0


def _nce_cases():
    g = torch.Generator().manual_seed(92)
    cases = [
        (_logs(g, 6), _logs(g, 6), _logs(g, 6), _logs(g, 6)),
        (_logs(g, 4), _logs(g, 4), _logs(g, 12), _logs(g, 12)),
        (_logs(g, 8), _logs(g, 8), _logs(g, 40), _logs(g, 40)),
    ]
    # log-densities of a 784-pixel image: around -700 nats, where e^{log p} underflows to 0
    deep = [_logs(g, 5, 30.0) - 700.0 for _ in range(2)] + [
        _logs(g, 10, 30.0) - 700.0 for _ in range(2)
    ]
    cases.append(tuple(deep))
    return cases


def _nce_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n_data = draw_int(g, 1, 12)
        n_noise = n_data * draw_int(g, 1, 5)
        s = draw_float(g, 0.5, 5.0)
        cases.append(tuple(_logs(g, n, s) for n in (n_data, n_data, n_noise, n_noise)))
    return cases


def _nce_stress():
    g = torch.Generator().manual_seed(95)
    return [
        Stress(
            "log-densities near -1000 nats: every exp() underflows to 0",
            tuple(_logs(g, n, 50.0) - 1000.0 for n in (6, 6, 18, 18)),
            "work with G = log p - log q - log ν and torch.nn.functional.logsigmoid; never "
            "form p or q themselves.",
        ),
        Stress(
            "a model that is sure: |G| of several hundred nats",
            tuple(_logs(g, n, 300.0) for n in (5, 5, 5, 5)),
        ),
        Stress("one data point and 50 noise draws", tuple(_logs(g, n) for n in (1, 1, 50, 50))),
        Stress(
            "10000 data points and 20000 noise draws",
            tuple(_logs(g, n) for n in (10_000, 10_000, 20_000, 20_000)),
        ),
    ]


NCE_LOSS = Exercise(
    name="nce_loss",
    forbidden_calls=("genphys.nce.nce_loss",),
    solution=nce_loss,
    cases=_nce_cases,
    random_cases=_nce_random,
    stress_cases=_nce_stress,
    mistakes=(
        Mistake(
            _nce_no_log_nu,
            "with ν noise draws per data point the posterior odds of 'data' are "
            "p(u) / (ν q(u)): subtract log ν inside G.",
        ),
        Mistake(
            _nce_no_nu_weight,
            "the noise term is weighted by ν = T_n / T_d: the loss is a sum over all "
            "T_d + T_n points divided by T_d, so the noise mean is multiplied by ν.",
        ),
        Mistake(
            _nce_naive,
            "exp(log p) underflows to 0 for log-densities of hundreds of nats (one test case "
            "has them). Write both terms with torch.nn.functional.logsigmoid of G.",
        ),
        Mistake(
            _nce_noise_sign,
            "a noise point is classified correctly when G(y) is negative: its term is "
            "log σ(-G(y)) = log(1 - σ(G(y))).",
        ),
    ),
)
check_nce_loss = NCE_LOSS.check


# ------------------------------------------------------ Gaussian score matching
def gaussian_score_matching(x, mu, log_var):
    """J = mean over rows of Σ_d [(x_d - μ_d)² / (2 σ_d⁴) - 1 / σ_d²], σ² = exp(log_var)."""
    inv_var = torch.exp(-log_var)  # (D,)
    return (0.5 * (x - mu) ** 2 * inv_var**2 - inv_var).sum(-1).mean()


def _sm_laplacian_sign(x, mu, log_var):
    inv_var = torch.exp(-log_var)
    return (0.5 * (x - mu) ** 2 * inv_var**2 + inv_var).sum(-1).mean()


def _sm_variance_once(x, mu, log_var):
    inv_var = torch.exp(-log_var)
    return (0.5 * (x - mu) ** 2 * inv_var - inv_var).sum(-1).mean()


def _sm_no_half(x, mu, log_var):
    inv_var = torch.exp(-log_var)
    return ((x - mu) ** 2 * inv_var**2 - inv_var).sum(-1).mean()


def _sm_sum_rows(x, mu, log_var):
    return gaussian_score_matching(x, mu, log_var) * x.shape[0]


def _sm_log_var_as_var(x, mu, log_var):
    inv_var = 1.0 / log_var
    return (0.5 * (x - mu) ** 2 * inv_var**2 - inv_var).sum(-1).mean()


def _gaussian_case(g: torch.Generator, n: int, d: int, spread: float = 1.0):
    x = spread * torch.randn(n, d, generator=g, dtype=torch.float64)
    mu = torch.randn(d, generator=g, dtype=torch.float64)
    log_var = 0.5 + 0.5 * torch.randn(d, generator=g, dtype=torch.float64)
    return x, mu, log_var


def _sm_cases():
    g = torch.Generator().manual_seed(93)
    return [_gaussian_case(g, 10, 1), _gaussian_case(g, 7, 3, 2.0), _gaussian_case(g, 20, 2)]


def _sm_random(g: torch.Generator):
    return [
        _gaussian_case(g, draw_int(g, 2, 30), draw_int(g, 1, 6), draw_float(g, 0.3, 3.0))
        for _ in range(3)
    ]


def _sm_stress():
    g = torch.Generator().manual_seed(96)
    x, mu, _ = _gaussian_case(g, 50, 4)
    return [
        Stress("a single row", _gaussian_case(g, 1, 5)),
        Stress(
            "variances from e^-8 to e^8", (x, mu, torch.tensor([-8.0, -2.0, 3.0, 8.0]).double())
        ),
        Stress("100000 rows in 10 dimensions", _gaussian_case(g, 100_000, 10)),
    ]


GAUSSIAN_SCORE_MATCHING = Exercise(
    name="gaussian_score_matching",
    forbidden_calls=(
        "genphys.score_matching.score_matching_loss",
        "genphys.score_matching.hyvarinen_terms",
        "torch.autograd.grad",
        "torch.autograd.backward",
        "torch.func.jacrev",
        "torch.func.jacfwd",
        "torch.func.grad",
        "torch.func.hessian",
        "torch.func.vjp",
        "torch.func.jvp",
        "torch.func.vmap",
        "torch.autograd.functional.jacobian",
        "torch.autograd.functional.hessian",
        "torch.autograd.functional.vjp",
        "torch.autograd.functional.jvp",
    ),
    solution=gaussian_score_matching,
    cases=_sm_cases,
    random_cases=_sm_random,
    stress_cases=_sm_stress,
    mistakes=(
        Mistake(
            _sm_laplacian_sign,
            "the second term is the divergence of the score, ∂_d s_d = -1/σ_d² for a "
            "Gaussian: it enters with a minus sign.",
        ),
        Mistake(
            _sm_variance_once,
            "the score is s_d = -(x_d - μ_d) / σ_d², so ½ s_d² = (x_d - μ_d)² / (2 σ_d⁴): the "
            "variance appears squared.",
        ),
        Mistake(_sm_no_half, "the first term is ½ |s(x)|², with the factor one half."),
        Mistake(_sm_sum_rows, "average over the rows (samples), do not sum."),
        Mistake(
            _sm_log_var_as_var,
            "log_var holds log σ², so σ⁻² = exp(-log_var).",
        ),
    ),
)
check_gaussian_score_matching = GAUSSIAN_SCORE_MATCHING.check

EXERCISES = [LOG_PSEUDO_LIKELIHOOD, NCE_LOSS, GAUSSIAN_SCORE_MATCHING]
