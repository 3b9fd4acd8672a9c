"""Exercises for chapter 6, {ref}`sec-training-rbms`: CD-1, AIS weights and initialisation.

Gradients are returned as a tuple ``(W, a, b)`` with shapes ``(M, N)``, ``(M,)`` and
``(N,)``, in the order of :class:`genphys.rbm.RBMParameters`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._feedback import Exercise, Mistake, Stress, draw_float, draw_int

__all__ = [
    "EXERCISES",
    "ais_log_weight",
    "cd1_gradient",
    "check_ais_log_weight",
    "check_cd1_gradient",
    "check_visible_bias_init",
    "visible_bias_init",
]


def _parameters(generator: torch.Generator, n_visible: int, n_hidden: int, scale: float):
    W = scale * torch.randn(n_visible, n_hidden, generator=generator, dtype=torch.float64)
    a = scale * torch.randn(n_visible, generator=generator, dtype=torch.float64)
    b = scale * torch.randn(n_hidden, generator=generator, dtype=torch.float64)
    return W, a, b


def _bits(generator: torch.Generator, n: int, m: int, p: float = 0.4) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, m), p, dtype=torch.float64), generator=generator)


# ------------------------------------------------------------------- CD-1
def cd1_gradient(x0, x1, W, a, b):
    """CD-1 estimate: (x0ᵀσ(x0 W + b) - x1ᵀσ(x1 W + b)) / n, and the same for a and b."""
    n = x0.shape[0]
    q0 = torch.sigmoid(x0 @ W + b)  # (n, N): p(h = 1 | x0)
    q1 = torch.sigmoid(x1 @ W + b)  # (n, N): p(h = 1 | x1)
    dW = (x0.T @ q0 - x1.T @ q1) / n  # (M, N)
    da = (x0 - x1).mean(0)  # (M,)
    db = (q0 - q1).mean(0)  # (N,)
    return dW, da, db


def _cd1_cases():
    g = torch.Generator().manual_seed(61)
    cases = []
    for n, (n_visible, n_hidden) in zip((5, 8, 12), [(4, 3), (6, 2), (7, 5)], strict=True):
        W, a, b = _parameters(g, n_visible, n_hidden, 1.0)
        cases.append((_bits(g, n, n_visible), _bits(g, n, n_visible), W, a, b))
    return cases


def _cd1_sign(x0, x1, W, a, b):
    dW, da, db = cd1_gradient(x0, x1, W, a, b)
    return -dW, -da, -db


def _cd1_sum(x0, x1, W, a, b):
    dW, da, db = cd1_gradient(x0, x1, W, a, b)
    n = x0.shape[0]
    return n * dW, n * da, n * db


def _cd1_without_bias(x0, x1, W, a, b):
    n = x0.shape[0]
    q0, q1 = torch.sigmoid(x0 @ W), torch.sigmoid(x1 @ W)
    return (x0.T @ q0 - x1.T @ q1) / n, (x0 - x1).mean(0), (q0 - q1).mean(0)


def _cd1_same_hidden(x0, x1, W, a, b):
    n = x0.shape[0]
    q0 = torch.sigmoid(x0 @ W + b)
    return (x0.T @ q0 - x1.T @ q0) / n, (x0 - x1).mean(0), torch.zeros_like(b)


def _cd1_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n, n_visible, n_hidden = draw_int(g, 1, 12), draw_int(g, 1, 8), draw_int(g, 1, 6)
        W, a, b = _parameters(g, n_visible, n_hidden, draw_float(g, 0.1, 3.0))
        p = draw_float(g, 0.1, 0.9)
        cases.append((_bits(g, n, n_visible, p), _bits(g, n, n_visible, p), W, a, b))
    return cases


def _cd1_stress():
    g = torch.Generator().manual_seed(64)
    W, a, b = _parameters(g, 20, 10, 1.0)
    x0, x1 = _bits(g, 4000, 20), _bits(g, 4000, 20)
    strong = _parameters(g, 20, 10, 500.0)
    return [
        Stress("a single data point", (x0[:1], x1[:1], W, a, b)),
        Stress("a batch of 4000 data points", (x0, x1, W, a, b)),
        Stress("weights of size 500: every hidden unit saturates", (x0[:50], x1[:50], *strong)),
    ]


CD1_GRADIENT = Exercise(
    name="cd1_gradient",
    solution=cd1_gradient,
    cases=_cd1_cases,
    random_cases=_cd1_random,
    stress_cases=_cd1_stress,
    mistakes=(
        Mistake(
            _cd1_sign,
            "the sign is flipped: the update is positive phase (data x0) minus negative phase "
            "(reconstruction x1), so that it lowers the energy of the data.",
        ),
        Mistake(
            _cd1_sum,
            "divide by the number of rows n: the update is the mini-batch *mean*, so the "
            "learning rate does not depend on the batch size.",
        ),
        Mistake(
            _cd1_without_bias,
            "p(h_j = 1 | x) = σ(b_j + Σ_i x_i W_ij) includes the hidden bias b.",
        ),
        Mistake(
            _cd1_same_hidden,
            "the negative phase needs the hidden probabilities of the reconstruction, "
            "σ(x1 W + b), not those of the data.",
        ),
    ),
)
check_cd1_gradient = CD1_GRADIENT.check


# ------------------------------------------------------------- AIS weight
def ais_log_weight(x, W, a, b):
    """log w = log p*_1(x) - log p*_0(x) = Σ_j log(1 + e^{b_j + (xW)_j}) - N log 2."""
    n_hidden = W.shape[1]
    return F.softplus(x @ W + b).sum(1) - n_hidden * math.log(2.0)


def _ais_cases():
    g = torch.Generator().manual_seed(62)
    cases = []
    for n, (n_visible, n_hidden), scale in zip(
        (6, 9, 4), [(5, 3), (8, 4), (3, 6)], (1.0, 2.0, 30.0), strict=True
    ):
        W, a, b = _parameters(g, n_visible, n_hidden, scale)
        cases.append((_bits(g, n, n_visible), W, a, b))
    cases[-1][3][0] = 1000.0  # a hidden unit with a huge bias: e^1000 overflows float64
    return cases


def _ais_no_log2(x, W, a, b):
    return F.softplus(x @ W + b).sum(1)


def _ais_with_visible(x, W, a, b):
    return ais_log_weight(x, W, a, b) + x @ a


def _ais_naive(x, W, a, b):
    return torch.log(1 + torch.exp(x @ W + b)).sum(1) - W.shape[1] * math.log(2.0)


def _ais_inverse(x, W, a, b):
    return -ais_log_weight(x, W, a, b)


def _ais_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n, n_visible, n_hidden = draw_int(g, 1, 10), draw_int(g, 1, 8), draw_int(g, 1, 6)
        W, a, b = _parameters(g, n_visible, n_hidden, draw_float(g, 0.1, 5.0))
        cases.append((_bits(g, n, n_visible), W, a, b))
    return cases


def _ais_stress():
    g = torch.Generator().manual_seed(65)
    W, a, b = _parameters(g, 6, 4, 1.0)
    b = torch.tensor([1000.0, -1000.0, 800.0, 0.0], dtype=torch.float64)
    return [
        Stress(
            "hidden fields of ±1000: e^{1000} overflows float64",
            (_bits(g, 8, 6), W, a, b),
            "log(1 + e^z) is torch.nn.functional.softplus(z), computed without forming e^z.",
        ),
        Stress("a batch of 5000 configurations", (_bits(g, 5000, 6), *_parameters(g, 6, 4, 1.0))),
    ]


AIS_LOG_WEIGHT = Exercise(
    name="ais_log_weight",
    solution=ais_log_weight,
    cases=_ais_cases,
    random_cases=_ais_random,
    stress_cases=_ais_stress,
    mistakes=(
        Mistake(
            _ais_no_log2,
            "the base distribution has W = 0 but still N free hidden units: summing them out "
            "gives p*_0(x) = 2^N e^{aᵀx}, so subtract N log 2.",
        ),
        Mistake(
            _ais_with_visible,
            "the visible term aᵀx is the same in p*_1 and p*_0 (the base keeps the RBM's "
            "visible bias), so it cancels in the ratio.",
        ),
        Mistake(
            _ais_naive,
            "log(1 + exp(z)) overflows for large z (one test case has a hidden bias of 1000). "
            "Use torch.nn.functional.softplus, which is computed stably.",
        ),
        Mistake(
            _ais_inverse,
            "the weight is target over proposal, p*_1(x) / p*_0(x), not the inverse.",
        ),
    ),
)
check_ais_log_weight = AIS_LOG_WEIGHT.check


# ------------------------------------------------------- visible-bias init
def visible_bias_init(data, clip):
    """a_i = log(p_i / (1 - p_i)) with p_i the mean of column i, clipped to [clip, 1 - clip]."""
    p = data.mean(0).clamp(clip, 1 - clip)  # (M,)
    return torch.log(p) - torch.log1p(-p)


def _init_cases():
    g = torch.Generator().manual_seed(63)
    cases = []
    for n, m, clip in ((20, 5, 1e-3), (50, 8, 0.01), (7, 4, 0.05)):
        x = _bits(g, n, m, 0.3)
        x[:, 0] = 0.0  # a unit that is never on
        x[:, -1] = 1.0  # and one that is always on
        cases.append((x, clip))
    return cases


def _init_unclipped(data, clip):
    p = data.mean(0)
    return torch.log(p) - torch.log1p(-p)


def _init_log_p(data, clip):
    return torch.log(data.mean(0).clamp(clip, 1 - clip))


def _init_rows(data, clip):
    p = data.mean(1).clamp(clip, 1 - clip)
    return torch.log(p) - torch.log1p(-p)


def _init_inverted(data, clip):
    return -visible_bias_init(data, clip)


def _init_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        x = _bits(g, draw_int(g, 5, 60), draw_int(g, 2, 10), draw_float(g, 0.1, 0.9))
        cases.append((x, 10.0 ** draw_float(g, -6.0, -1.5)))
    return cases


def _init_stress():
    g = torch.Generator().manual_seed(66)
    x = _bits(g, 1, 12)
    return [
        Stress("a single data point: every unit is always on or always off", (x, 0.01)),
        Stress(
            "clip = 1e-12 with units that are never and always on", (_init_cases()[0][0], 1e-12)
        ),
        Stress("70000 data points", (_bits(g, 70_000, 64, 0.2), 1e-3)),
    ]


VISIBLE_BIAS_INIT = Exercise(
    name="visible_bias_init",
    solution=visible_bias_init,
    cases=_init_cases,
    random_cases=_init_random,
    stress_cases=_init_stress,
    mistakes=(
        Mistake(
            _init_unclipped,
            "a unit that is never (or always) on has p_i = 0 (or 1) and log(p/(1-p)) = ∓inf. "
            "Clip p_i to [clip, 1 - clip] before taking the logit.",
        ),
        Mistake(
            _init_log_p,
            "with W = 0, p(x_i = 1) = σ(a_i), so a_i is the logit log(p_i / (1 - p_i)), "
            "not log p_i.",
        ),
        Mistake(
            _init_rows,
            "average over the data points (dimension 0), one probability per visible unit.",
        ),
        Mistake(_init_inverted, "the logit is log(p / (1 - p)), not log((1 - p) / p)."),
    ),
)
check_visible_bias_init = VISIBLE_BIAS_INIT.check

EXERCISES = [CD1_GRADIENT, AIS_LOG_WEIGHT, VISIBLE_BIAS_INIT]
