"""Exercises for chapter 8, {ref}`sec-dbn`: a mean-field sweep, the bound of a tiny DBN, the wake phase.

Weights follow the library's orientation: ``W1`` is (n_visible, n_hidden1), ``W2`` is
(n_hidden1, n_hidden2); a DBN's generative ``W`` is (n_0, n_1), used as
:math:`p(x \\mid h) = \\sigma(a + W h)`, and its recognition ``R`` is (n_0, n_1), used as
:math:`q(h \\mid x) = \\sigma(c + x^\\top R)`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..enumeration import binary_states
from ._feedback import Exercise, Mistake, Stress, draw_float, draw_int

__all__ = [
    "EXERCISES",
    "check_dbn_bound",
    "check_mean_field_sweep",
    "check_wake_delta",
    "dbn_bound",
    "mean_field_sweep",
    "wake_delta",
]


def _normal(g: torch.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=g, dtype=torch.float64)


def _bits(g: torch.Generator, n: int, m: int, p: float = 0.4) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, m), p, dtype=torch.float64), generator=g)


# --------------------------------------------------------------- mean field
def mean_field_sweep(x, mu2, W1, W2, b1, b2):
    """μ1 = σ(b1 + x W1 + μ2 W2ᵀ), then μ2 = σ(b2 + μ1 W2) with the new μ1."""
    mu1 = torch.sigmoid(b1 + x @ W1 + mu2 @ W2.T)  # (B, n1): bottom-up plus top-down
    return mu1, torch.sigmoid(b2 + mu1 @ W2)  # (B, n2)


def _mf_args(g, n, n_v, n_1, n_2, scale):
    return (
        _bits(g, n, n_v),
        torch.rand(n, n_2, generator=g, dtype=torch.float64),
        _normal(g, n_v, n_1, scale=scale),
        _normal(g, n_1, n_2, scale=scale),
        _normal(g, n_1, scale=scale),
        _normal(g, n_2, scale=scale),
    )


def _mf_cases():
    g = torch.Generator().manual_seed(81)
    return [
        _mf_args(g, n, *sizes, 1.0) for n, sizes in ((5, (4, 3, 2)), (7, (6, 2, 3)), (3, (3, 4, 4)))
    ]


def _mf_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        sizes = (draw_int(g, 1, 8), draw_int(g, 1, 6), draw_int(g, 1, 5))
        cases.append(_mf_args(g, draw_int(g, 1, 10), *sizes, draw_float(g, 0.1, 3.0)))
    return cases


def _mf_stress():
    g = torch.Generator().manual_seed(84)
    return [
        Stress("a single data row", _mf_args(g, 1, 5, 3, 2, 1.0)),
        Stress("a batch of 5000 rows", _mf_args(g, 5000, 8, 6, 4, 1.0)),
        Stress("weights of size 300: every unit saturates", _mf_args(g, 20, 6, 4, 3, 300.0)),
    ]


def _mf_no_top_down(x, mu2, W1, W2, b1, b2):
    mu1 = torch.sigmoid(b1 + x @ W1)
    return mu1, torch.sigmoid(b2 + mu1 @ W2)


def _mf_doubled(x, mu2, W1, W2, b1, b2):
    mu1 = torch.sigmoid(b1 + 2 * x @ W1 + mu2 @ W2.T)
    return mu1, torch.sigmoid(b2 + mu1 @ W2)


def _mf_no_bias(x, mu2, W1, W2, b1, b2):
    mu1 = torch.sigmoid(x @ W1 + mu2 @ W2.T)
    return mu1, torch.sigmoid(mu1 @ W2)


def _mf_old_mu2(x, mu2, W1, W2, b1, b2):
    mu1 = torch.sigmoid(b1 + x @ W1 + mu2 @ W2.T)
    return mu1, mu2


MEAN_FIELD_SWEEP = Exercise(
    name="mean_field_sweep",
    forbidden_calls=("genphys.dbm.mean_field",),
    solution=mean_field_sweep,
    cases=_mf_cases,
    random_cases=_mf_random,
    stress_cases=_mf_stress,
    mistakes=(
        Mistake(
            _mf_no_top_down,
            "h1 is coupled to both neighbours: its field is b1 + x W1 + μ2 W2ᵀ, with the "
            "top-down term from the current μ2.",
        ),
        Mistake(
            _mf_doubled,
            "the doubled bottom-up input 2 x W1 is only the initialisation used with "
            "pretrained weights; the fixed-point update uses x W1 once.",
        ),
        Mistake(_mf_no_bias, "each layer's field includes its bias, b1 and b2."),
        Mistake(
            _mf_old_mu2,
            "return the updated μ2 too: after μ1, compute μ2 = σ(b2 + μ1 W2) from the new μ1.",
        ),
    ),
)
check_mean_field_sweep = MEAN_FIELD_SWEEP.check


# ------------------------------------------------------------- the DBN bound
def _log_bernoulli(h, logits):
    # log σ(z) for h = 1 and log σ(-z) = log(1 - σ(z)) for h = 0, without forming σ
    return (h * F.logsigmoid(logits) + (1 - h) * F.logsigmoid(-logits)).sum(-1)


def dbn_bound(x, W, a, R, c, W_top, a_top, b_top, log_z_top):
    """Σ_h q(h|x) [log p(x|h) + log p_top(h) - log q(h|x)] by enumerating every h."""
    h = binary_states(W.shape[1])  # (S, n1): every hidden state
    log_q = _log_bernoulli(h[None], (x @ R + c)[:, None, :])  # (B, S): log q(h | x)
    log_px_h = _log_bernoulli(x[:, None, :], (h @ W.T + a)[None])  # (B, S): log p(x | h)
    log_top = h @ a_top + F.softplus(h @ W_top + b_top).sum(-1) - log_z_top  # (S,)
    q = torch.exp(log_q)
    return (q * (log_px_h + log_top - log_q)).sum(-1)  # (B,)


def _bound_args(g, n, n_0, n_1, n_2, scale, top_bias=0.0):
    W_top = _normal(g, n_1, n_2, scale=scale)
    a_top = _normal(g, n_1, scale=scale)
    b_top = _normal(g, n_2, scale=scale) + top_bias
    states = binary_states(n_1)  # the top RBM's exact log Z, by enumerating its visible side
    log_z_top = torch.logsumexp(states @ a_top + F.softplus(states @ W_top + b_top).sum(-1), 0)
    return (
        _bits(g, n, n_0),
        _normal(g, n_0, n_1, scale=scale),
        _normal(g, n_0, scale=scale),
        _normal(g, n_0, n_1, scale=scale),
        _normal(g, n_1, scale=scale),
        W_top,
        a_top,
        b_top,
        log_z_top,
    )


def _bound_cases():
    g = torch.Generator().manual_seed(82)
    cases = [_bound_args(g, n, *sizes, 1.0) for n, sizes in ((4, (4, 3, 2)), (6, (5, 2, 3)))]
    # a top hidden unit with a bias of 1000: e^1000 overflows float64
    return [*cases, _bound_args(g, 3, 3, 4, 2, 1.0, top_bias=1000.0)]


def _bound_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        sizes = (draw_int(g, 1, 6), draw_int(g, 1, 5), draw_int(g, 1, 4))
        cases.append(_bound_args(g, draw_int(g, 1, 8), *sizes, draw_float(g, 0.1, 2.5)))
    return cases


def _bound_stress():
    g = torch.Generator().manual_seed(85)
    return [
        Stress(
            "top-RBM hidden biases of 800: e^{800} overflows float64",
            _bound_args(g, 5, 4, 3, 2, 1.0, top_bias=800.0),
            "log(1 + e^z) is torch.nn.functional.softplus(z), computed without forming e^z.",
        ),
        Stress(
            "weights of size 300: σ(z) rounds to exactly 0 or 1",
            _bound_args(g, 5, 4, 3, 2, 300.0),
            "log σ(z) and log(1 - σ(z)) are F.logsigmoid(z) and F.logsigmoid(-z); taking the "
            "log of a rounded σ gives log 0 = -inf.",
        ),
        Stress("a batch of 3000 rows", _bound_args(g, 3000, 6, 5, 3, 1.0)),
    ]


def _bound_no_entropy(x, W, a, R, c, W_top, a_top, b_top, log_z_top):
    h = binary_states(W.shape[1])
    log_q = _log_bernoulli(h[None], (x @ R + c)[:, None, :])
    log_px_h = _log_bernoulli(x[:, None, :], (h @ W.T + a)[None])
    log_top = h @ a_top + F.softplus(h @ W_top + b_top).sum(-1) - log_z_top
    return (torch.exp(log_q) * (log_px_h + log_top)).sum(-1)


def _bound_no_log_z(x, W, a, R, c, W_top, a_top, b_top, log_z_top):
    return dbn_bound(x, W, a, R, c, W_top, a_top, b_top, 0.0)


def _bound_generative_q(x, W, a, R, c, W_top, a_top, b_top, log_z_top):
    return dbn_bound(x, W, a, W, c, W_top, a_top, b_top, log_z_top)


def _bound_naive(x, W, a, R, c, W_top, a_top, b_top, log_z_top):
    h = binary_states(W.shape[1])
    q = torch.sigmoid(x @ R + c)[:, None, :]  # (B, 1, n1)
    p = torch.sigmoid(h @ W.T + a)[None]  # (1, S, n0)
    log_q = (h * torch.log(q) + (1 - h) * torch.log(1 - q)).sum(-1)
    log_px_h = (x[:, None, :] * torch.log(p) + (1 - x[:, None, :]) * torch.log(1 - p)).sum(-1)
    log_top = h @ a_top + torch.log(1 + torch.exp(h @ W_top + b_top)).sum(-1) - log_z_top
    return (torch.exp(log_q) * (log_px_h + log_top - log_q)).sum(-1)


DBN_BOUND = Exercise(
    name="dbn_bound",
    solution=dbn_bound,
    cases=_bound_cases,
    random_cases=_bound_random,
    stress_cases=_bound_stress,
    mistakes=(
        Mistake(
            _bound_no_entropy,
            "the bound is E_q[log p(x, h) - log q(h|x)]: without the entropy term "
            "-E_q[log q] it is not a bound on log p(x).",
        ),
        Mistake(
            _bound_no_log_z,
            "log p_top(h) = -F_top(h) - log Z_top: subtract the top RBM's log Z (given).",
        ),
        Mistake(
            _bound_generative_q,
            "q(h|x) uses the recognition weights R and bias c, σ(c + x R), not the generative W.",
        ),
        Mistake(
            _bound_naive,
            "log(1 + exp(z)) and log(σ(z)) overflow or round to log 0 for large |z| (one "
            "test case has a top bias of 1000, the stress cases have fields of hundreds). "
            "Use F.softplus and F.logsigmoid.",
        ),
    ),
)
check_dbn_bound = DBN_BOUND.check


# ------------------------------------------------------------------ wake phase
def wake_delta(x, h, W, a):
    """Mean over the batch of ∂ log p(x|h)/∂(W, a): ((x - σ(a + h Wᵀ))ᵀ h / B, mean(x - σ(a + h Wᵀ)))."""
    error = x - torch.sigmoid(h @ W.T + a)  # (B, n0): data minus prediction
    return error.T @ h / x.shape[0], error.mean(0)  # (n0, n1), (n0,)


def _wake_args(g, n, n_0, n_1, scale):
    return (
        _bits(g, n, n_0),
        _bits(g, n, n_1, 0.5),
        _normal(g, n_0, n_1, scale=scale),
        _normal(g, n_0, scale=scale),
    )


def _wake_cases():
    g = torch.Generator().manual_seed(83)
    return [_wake_args(g, n, n_0, n_1, 1.0) for n, n_0, n_1 in ((5, 4, 3), (8, 6, 2), (3, 3, 5))]


def _wake_random(g: torch.Generator):
    return [
        _wake_args(
            g, draw_int(g, 1, 12), draw_int(g, 1, 8), draw_int(g, 1, 6), draw_float(g, 0.1, 3.0)
        )
        for _ in range(3)
    ]


def _wake_stress():
    g = torch.Generator().manual_seed(86)
    return [
        Stress("a single data row", _wake_args(g, 1, 5, 3, 1.0)),
        Stress("a batch of 20000 rows", _wake_args(g, 20_000, 8, 4, 1.0)),
        Stress("weights of size 500: σ saturates", _wake_args(g, 30, 6, 4, 500.0)),
    ]


def _wake_sign(x, h, W, a):
    dW, da = wake_delta(x, h, W, a)
    return -dW, -da


def _wake_sum(x, h, W, a):
    dW, da = wake_delta(x, h, W, a)
    return x.shape[0] * dW, x.shape[0] * da


def _wake_no_bias(x, h, W, a):
    error = x - torch.sigmoid(h @ W.T)
    return error.T @ h / x.shape[0], error.mean(0)


def _wake_hebbian(x, h, W, a):
    return x.T @ h / x.shape[0], x.mean(0)


WAKE_DELTA = Exercise(
    name="wake_delta",
    solution=wake_delta,
    cases=_wake_cases,
    random_cases=_wake_random,
    stress_cases=_wake_stress,
    mistakes=(
        Mistake(
            _wake_sign,
            "the update raises log p(x|h): it is (data - prediction), x - σ(a + W h), "
            "not the reverse.",
        ),
        Mistake(_wake_sum, "divide by the batch size: the update is the mini-batch mean."),
        Mistake(_wake_no_bias, "the prediction σ(a + W h) includes the visible bias a."),
        Mistake(
            _wake_hebbian,
            "the gradient of a directed sigmoid layer has no negative phase from a model "
            "average, but it does subtract the prediction: (x - σ(a + W h)) hᵀ.",
        ),
    ),
)
check_wake_delta = WAKE_DELTA.check

EXERCISES = [MEAN_FIELD_SWEEP, DBN_BOUND, WAKE_DELTA]
