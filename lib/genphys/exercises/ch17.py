"""Exercises for chapter 17, {ref}`sec-variational-free-energy`: autoregressive log q, REINFORCE, learned proposals."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._feedback import Choice, Exercise, Mistake, MultipleChoice, Stress, draw_float, draw_int

__all__ = [
    "EXERCISES",
    "QUESTIONS",
    "autoregressive_log_prob",
    "check_autoregressive_log_prob",
    "check_independence_acceptance",
    "check_reinforce_gradient",
    "check_vfe_bound",
    "independence_acceptance",
    "reinforce_gradient",
]

F64 = torch.float64


def _spins(g: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    return 2.0 * torch.randint(0, 2, shape, generator=g).to(F64) - 1.0


# ------------------------------------------------------- autoregressive log q
def autoregressive_log_prob(logits, spins):
    """log q(s) = sum_i log sigma(s_i l_i) for spins ±1 and logits l_i of q(s_i = +1 | s_<i)."""
    return -F.softplus(-spins * logits).sum(-1)  # log sigma(u) = -softplus(-u), never log 0


def _log_prob_cases():
    g = torch.Generator().manual_seed(17)
    return [
        (torch.randn(6, 16, generator=g, dtype=F64), _spins(g, (6, 16))),
        (3.0 * torch.randn(4, 9, generator=g, dtype=F64), _spins(g, (4, 9))),
        (torch.zeros(2, 4, dtype=F64), _spins(g, (2, 4))),  # uniform: log q = -4 log 2
    ]


def _log_prob_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n, N = draw_int(g, 1, 20), draw_int(g, 2, 64)
        scale = draw_float(g, 0.1, 5.0)
        cases.append((scale * torch.randn(n, N, generator=g, dtype=F64), _spins(g, (n, N))))
    return cases


def _log_prob_stress():
    g = torch.Generator().manual_seed(170)
    confident = 800.0 * torch.randn(5, 16, generator=g, dtype=F64)  # sigma saturates to 0 or 1
    return [
        Stress(
            "confident conditionals, logits of ±800 (σ(−800) underflows to 0 in float64)",
            (confident, _spins(g, (5, 16))),
            hint="Write log σ(u) as -softplus(-u) (or F.logsigmoid), never log(sigmoid(u)).",
        ),
        Stress(
            "a 64 x 64 lattice: 4096 conditionals, 300 configurations",
            (torch.randn(300, 4096, generator=g, dtype=F64), _spins(g, (300, 4096))),
        ),
    ]


AUTOREGRESSIVE_LOG_PROB = Exercise(
    name="autoregressive_log_prob",
    forbidden_calls=("genphys.autoregressive.AutoregressiveModel.log_prob",),
    solution=autoregressive_log_prob,
    cases=_log_prob_cases,
    random_cases=_log_prob_random,
    stress_cases=_log_prob_stress,
    mistakes=(
        Mistake(
            lambda logits, spins: F.logsigmoid(logits).sum(-1),
            "the logit gives q(s_i = +1 | s_<i); a spin s_i = -1 has probability "
            "1 - σ(l_i) = σ(-l_i). Both cases are σ(s_i l_i).",
        ),
        Mistake(
            lambda logits, spins: F.logsigmoid(-spins * logits).sum(-1),
            "the sign is flipped: q(s_i = +1 | s_<i) = σ(l_i), so the factor of spin s_i is "
            "σ(+s_i l_i).",
        ),
        Mistake(
            lambda logits, spins: F.logsigmoid(spins * logits).mean(-1),
            "log q(s) is the SUM of the log-conditionals (a product of probabilities), not "
            "their mean.",
        ),
        Mistake(
            lambda logits, spins: F.logsigmoid(spins * logits).sum(),
            "return one log-probability per configuration, shape (n,): sum over the sites "
            "(the last axis) only.",
        ),
        Mistake(
            lambda logits, spins: torch.log(torch.sigmoid(spins * logits)).sum(-1),
            "log(sigmoid(u)) is -inf once sigmoid(u) underflows to 0 (u below about -745 in "
            "float64): write log σ(u) = -softplus(-u), or use F.logsigmoid.",
        ),
    ),
)
check_autoregressive_log_prob = AUTOREGRESSIVE_LOG_PROB.check


# ------------------------------------------------------------- REINFORCE
def reinforce_gradient(f, score):
    """(1/n) sum_k (f_k - b_k) score_k with the leave-one-out baseline b_k = mean of f_l, l != k."""
    n = f.shape[0]
    # f_k - b_k = n / (n - 1) (f_k - mean f): no large sums that cancel
    centred = (f - f.mean()) * (n / (n - 1))  # (n,)
    return (centred[:, None] * score).mean(0)  # (P,)


def _reinforce_cases():
    g = torch.Generator().manual_seed(171)
    return [
        (torch.randn(8, generator=g, dtype=F64) - 30.0, torch.randn(8, 5, generator=g, dtype=F64)),
        (torch.tensor([1.0, 2.0], dtype=F64), torch.tensor([[1.0], [-1.0]], dtype=F64)),
        (torch.randn(50, generator=g, dtype=F64), torch.randn(50, 3, generator=g, dtype=F64)),
    ]


def _reinforce_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n, P = draw_int(g, 2, 60), draw_int(g, 1, 12)
        offset = draw_float(g, -100.0, 100.0)
        f = offset + draw_float(g, 0.1, 5.0) * torch.randn(n, generator=g, dtype=F64)
        cases.append((f, torch.randn(n, P, generator=g, dtype=F64)))
    return cases


def _reinforce_stress():
    # The leave-one-out form b_k = (Σf - f_k)/(n - 1) is as accurate as the centred form
    # n/(n-1) (f_k - mean f) up to offsets of 10^10 (both lose ~1e-7 against exact rational
    # arithmetic there), so no stress case demands one of them: both are correct answers.
    g = torch.Generator().manual_seed(172)
    return [
        Stress(
            "local free energies with a large offset, f ≈ -10⁶ ± 1",
            (
                -1e6 + torch.randn(40, generator=g, dtype=F64),
                torch.randn(40, 7, generator=g, dtype=F64),
            ),
        ),
        Stress(
            "100000 samples of 20 parameters",
            (
                torch.randn(100_000, generator=g, dtype=F64),
                torch.randn(100_000, 20, generator=g, dtype=F64),
            ),
        ),
        Stress(
            "two samples: each baseline is the other sample's f",
            (torch.tensor([-3.0, 5.0], dtype=F64), torch.randn(2, 4, generator=g, dtype=F64)),
        ),
    ]


REINFORCE_GRADIENT = Exercise(
    name="reinforce_gradient",
    solution=reinforce_gradient,
    cases=_reinforce_cases,
    random_cases=_reinforce_random,
    stress_cases=_reinforce_stress,
    mistakes=(
        Mistake(
            lambda f, score: (f[:, None] * score).mean(0),
            "there is no baseline: subtract b_k, the mean of the OTHER samples' f, from f_k. "
            "Without it the estimate is unbiased but its variance grows with the size of f.",
        ),
        Mistake(
            lambda f, score: ((f - f.mean())[:, None] * score).mean(0),
            "the baseline must leave sample k out: b_k = (sum_l f_l - f_k) / (n - 1). The mean "
            "over all samples includes f_k itself, which correlates b_k with the score of s_k "
            "and shrinks the estimate by a factor (n - 1)/n.",
        ),
        Mistake(
            lambda f, score: (
                ((f - f.mean()) * (f.shape[0] / (f.shape[0] - 1)))[:, None].mul(score).sum(0)
            ),
            "average over the samples (divide by n), do not sum: the estimate of an "
            "expectation is a sample mean.",
        ),
        Mistake(
            lambda f, score: (
                ((f.mean() - f) * (f.shape[0] / (f.shape[0] - 1)))[:, None] * score
            ).mean(0),
            "the sign is flipped: the weight of sample k is f_k - b_k, so that samples with a "
            "higher free energy than the others push log q down when you descend.",
        ),
    ),
)
check_reinforce_gradient = REINFORCE_GRADIENT.check


# ---------------------------------------------- independence Metropolis–Hastings
def independence_acceptance(energy, log_q, energy_proposed, log_q_proposed, beta):
    """min(1, w'/w) with log w = -beta E - log q: the acceptance of a proposal s' ~ q."""
    log_ratio = -beta * (energy_proposed - energy) - (log_q_proposed - log_q)
    return torch.exp(torch.clamp(log_ratio, max=0.0))


def _acceptance_cases():
    g = torch.Generator().manual_seed(173)
    e = 4.0 * torch.randn(10, generator=g, dtype=F64)
    e_prop = 4.0 * torch.randn(10, generator=g, dtype=F64)
    log_q = -5.0 - torch.rand(10, generator=g, dtype=F64) * 5
    log_q_prop = -5.0 - torch.rand(10, generator=g, dtype=F64) * 5
    same = torch.zeros(3, dtype=F64)
    return [
        (e, log_q, e_prop, log_q_prop, 0.44),
        (e, log_q, e_prop, log_q_prop, 2.0),
        (same, same - 3.0, same, same - 3.0, 1.0),  # s' = s: accepted
    ]


def _acceptance_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n = draw_int(g, 1, 40)
        scale = draw_float(g, 1.0, 30.0)
        e, e_prop = (scale * torch.randn(n, generator=g, dtype=F64) for _ in range(2))
        log_q, log_q_prop = (-scale * torch.rand(n, generator=g, dtype=F64) for _ in range(2))
        cases.append((e, log_q, e_prop, log_q_prop, draw_float(g, 0.1, 2.0)))
    return cases


def _acceptance_stress():
    g = torch.Generator().manual_seed(174)
    n = 20
    # a 32 x 32 lattice: E ~ -2000, log q ~ -700 (q itself underflows to 0)
    e = -2000.0 + 10.0 * torch.randn(n, generator=g, dtype=F64)
    e_prop = -2000.0 + 10.0 * torch.randn(n, generator=g, dtype=F64)
    log_q = -720.0 + 5.0 * torch.randn(n, generator=g, dtype=F64)
    log_q_prop = -720.0 + 5.0 * torch.randn(n, generator=g, dtype=F64)
    return [
        Stress(
            "a 32 x 32 lattice near T_c: E ≈ -2000 and log q ≈ -720, so e^{-βE} overflows and "
            "q underflows",
            (e, log_q, e_prop, log_q_prop, 0.44),
            hint="Work with log-weights: log w = -βE - log q, and exponentiate only the "
            "difference, clamped at 0.",
        ),
        Stress(
            "100000 proposals",
            (
                10 * torch.randn(100_000, generator=g, dtype=F64),
                -10 * torch.rand(100_000, generator=g, dtype=F64),
                10 * torch.randn(100_000, generator=g, dtype=F64),
                -10 * torch.rand(100_000, generator=g, dtype=F64),
                1.0,
            ),
        ),
    ]


INDEPENDENCE_ACCEPTANCE = Exercise(
    name="independence_acceptance",
    forbidden_calls=("genphys.autoregressive.independence_metropolis",),
    solution=independence_acceptance,
    cases=_acceptance_cases,
    random_cases=_acceptance_random,
    stress_cases=_acceptance_stress,
    mistakes=(
        Mistake(
            lambda e, lq, ep, lqp, beta: torch.clamp(torch.exp(-beta * (ep - e)), max=1.0),
            "this is the Metropolis acceptance of a SYMMETRIC proposal. The learned proposal "
            "draws s' from q whatever s is, so q(s)/q(s') enters the ratio: "
            "a = min(1, p(s') q(s) / (p(s) q(s'))).",
        ),
        Mistake(
            lambda e, lq, ep, lqp, beta: torch.clamp(
                torch.exp(-beta * (ep - e) + (lqp - lq)), max=1.0
            ),
            "the proposal ratio is upside down: it is q(s)/q(s') (the probability of proposing "
            "the way back over the way there), so log q(s') enters with a minus sign.",
        ),
        Mistake(
            lambda e, lq, ep, lqp, beta: torch.exp(-beta * (ep - e) - (lqp - lq)),
            "a probability cannot exceed 1: a = min(1, w(s')/w(s)). Proposals that raise the "
            "weight are always accepted.",
        ),
    ),
)
check_independence_acceptance = INDEPENDENCE_ACCEPTANCE.check

EXERCISES = [AUTOREGRESSIVE_LOG_PROB, REINFORCE_GRADIENT, INDEPENDENCE_ACCEPTANCE]

# ----------------------------------------------------------- derivation questions
VFE_BOUND = MultipleChoice(
    name="vfe_bound",
    question=(
        "For a normalised q and p(s) = exp(-E(s)/T)/Z, which identity makes "
        "F_q = E_q[E(s) + T log q(s)] an upper bound of F = -T log Z?"
    ),
    choices=(
        Choice(
            "F_q = F - T KL(p || q), because the KL divergence is always negative.",
            "a KL divergence is never negative, and it is KL(q || p) (the expectation under "
            "q) that appears, since F_q is an expectation under q.",
        ),
        Choice(
            "F_q = F + T KL(q || p), and KL(q || p) >= 0 with equality only at q = p.",
            "insert log p = -E/T - log Z into T KL(q || p) = T E_q[log q - log p]: it is "
            "E_q[E + T log q] + T log Z = F_q - F.",
            correct=True,
        ),
        Choice(
            "F_q = F + T KL(p || q), so the bound needs samples of p.",
            "the expectation in F_q is under q; expanding KL(p || q) gives an expectation "
            "under p, which is what we cannot compute.",
        ),
        Choice(
            "Jensen's inequality applied to log Z = log E_q[exp(-E/T)/q] gives F_q <= F.",
            "Jensen gives log Z >= E_q[log(exp(-E/T)/q)] = -F_q/T, that is F_q >= F: the "
            "direction is the other way round.",
        ),
    ),
)
check_vfe_bound = VFE_BOUND.check

QUESTIONS = [VFE_BOUND]
