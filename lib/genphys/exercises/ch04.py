"""Exercises for chapter 4, {ref}`sec-maximum-likelihood`: the two phases of the gradient.

Every function returns the three parameter blocks as a tuple ``(W, a, b)`` with shapes
``(M, N)``, ``(M,)`` and ``(N,)``, in the order of :class:`genphys.rbm.RBMParameters`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..enumeration import binary_states
from ..rbm import BernoulliRBM
from ._feedback import Exercise, Mistake, Stress, draw_float, draw_int

__all__ = [
    "EXERCISES",
    "check_gradient_ascent_step",
    "check_log_likelihood_gradient",
    "check_negative_phase",
    "check_positive_phase",
    "gradient_ascent_step",
    "log_likelihood_gradient",
    "negative_phase",
    "positive_phase",
]


def _rbm(generator: torch.Generator, n_visible: int, n_hidden: int, scale: float) -> BernoulliRBM:
    return BernoulliRBM.from_parameters(
        scale * torch.randn(n_visible, n_hidden, generator=generator, dtype=torch.float64),
        scale * torch.randn(n_visible, generator=generator, dtype=torch.float64),
        scale * torch.randn(n_hidden, generator=generator, dtype=torch.float64),
    )


def _cases(seed: int):
    """Three (rbm, x) pairs: small RBMs (M <= 6) and binary batches of 7 to 9 rows."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for (n_visible, n_hidden), scale, n in zip(
        [(3, 2), (5, 4), (6, 3)], (0.7, 1.0, 1.5), (7, 8, 9), strict=True
    ):
        rbm = _rbm(g, n_visible, n_hidden, scale)
        x = torch.randint(0, 2, (n, n_visible), generator=g).double()
        cases.append((rbm, x))
    return cases


def _random_cases(g: torch.Generator, n_cases: int = 2):
    """Fresh (rbm, x) pairs of random sizes (M <= 6, N <= 5), scales and batch sizes."""
    cases = []
    for _ in range(n_cases):
        n_visible, n_hidden = draw_int(g, 1, 6), draw_int(g, 1, 5)
        rbm = _rbm(g, n_visible, n_hidden, draw_float(g, 0.1, 2.5))
        x = torch.randint(0, 2, (draw_int(g, 1, 12), n_visible), generator=g).double()
        cases.append((rbm, x))
    return cases


def _stress_cases():
    """Large weights (e^{-F} overflows), a single data point, a large batch."""
    g = torch.Generator().manual_seed(45)
    strong = _rbm(g, 5, 3, 300.0)
    rbm = _rbm(g, 6, 4, 1.0)
    x = torch.randint(0, 2, (3000, 6), generator=g).double()
    overflow = (
        "Weight the states with p(x) = softmax(-F) over all states (or subtract "
        "logsumexp(-F) before exponentiating); e^{-F(x)} alone overflows."
    )
    return [
        Stress("weights of size 300: e^{-F(x)} overflows float64", (strong, x[:4, :5]), overflow),
        Stress("a single data point", (rbm, x[:1])),
        Stress("a batch of 3000 data points", (rbm, x)),
    ]


def _features(rbm, x):
    """The per-configuration statistics E_{p(h|x)}[-∂E/∂Θ] = (x σᵀ, x, σ), σ = p(h=1|x)."""
    with torch.no_grad():
        q = torch.sigmoid(x @ rbm.W + rbm.b)  # (n, N)
    return x[:, :, None] * q[:, None, :], x, q  # (n, M, N), (n, M), (n, N)


def _weighted(rbm, x, weights):
    """Σ_k w_k (x_k σ_kᵀ, x_k, σ_k) for given weights w (n,)."""
    xh, xs, hs = _features(rbm, x)
    return (
        torch.einsum("k,kij->ij", weights, xh),
        weights @ xs,
        weights @ hs,
    )


# ------------------------------------------------------------- positive phase
def positive_phase(rbm, x):
    """(⟨x hᵀ⟩_data, ⟨x⟩_data, ⟨h⟩_data) with h replaced by p(h = 1 | x) = σ(b + xW)."""
    with torch.no_grad():
        q = torch.sigmoid(x @ rbm.W + rbm.b)  # (n, N): E[h | x]
        n = x.shape[0]
        return x.T @ q / n, x.mean(dim=0), q.mean(dim=0)  # (M, N), (M,), (N,)


def _positive_summed(rbm, x):
    W, a, b = positive_phase(rbm, x)
    n = x.shape[0]
    return n * W, n * a, n * b


def _positive_no_hidden_bias(rbm, x):
    with torch.no_grad():
        q = torch.sigmoid(x @ rbm.W)
        return x.T @ q / x.shape[0], x.mean(dim=0), q.mean(dim=0)


def _positive_most_probable_h(rbm, x):
    with torch.no_grad():
        h = (torch.sigmoid(x @ rbm.W + rbm.b) > 0.5).double()
        return x.T @ h / x.shape[0], x.mean(dim=0), h.mean(dim=0)


POSITIVE_PHASE = Exercise(
    name="positive_phase",
    forbidden_calls=("genphys.rbm.log_likelihood_gradient_exact",),
    solution=positive_phase,
    cases=lambda: _cases(41),
    random_cases=_random_cases,
    stress_cases=_stress_cases,
    mistakes=(
        Mistake(
            _positive_summed,
            "the positive phase is an AVERAGE over the data points: divide the sums over the "
            "batch by n, as in the mean log-likelihood.",
        ),
        Mistake(
            _positive_no_hidden_bias,
            "p(h_j = 1 | x) = σ(b_j + Σ_i x_i W_ij): the hidden bias b belongs in the field.",
        ),
        Mistake(
            _positive_most_probable_h,
            "h is not set to its most probable value: the gradient needs the expectation "
            "E[h_j | x] = p(h_j = 1 | x), so use the probabilities themselves, not a threshold "
            "(and not a sample, which only estimates them).",
        ),
    ),
)
check_positive_phase = POSITIVE_PHASE.check


# ------------------------------------------------------------- negative phase
def negative_phase(rbm):
    """(⟨x hᵀ⟩_model, ⟨x⟩_model, ⟨h⟩_model) by enumerating all 2^M visible states x."""
    x = binary_states(rbm.n_visible)  # (2^M, M): every configuration of the model
    with torch.no_grad():
        minus_f = (x @ rbm.a) + F.softplus(x @ rbm.W + rbm.b).sum(dim=1)  # -F(x): (2^M,)
        p = torch.softmax(minus_f, dim=0)  # p(x) = e^{-F(x)} / Z
    return _weighted(rbm, x, p)


def _negative_unnormalised(rbm):
    x = binary_states(rbm.n_visible)
    with torch.no_grad():
        weights = torch.exp((x @ rbm.a) + F.softplus(x @ rbm.W + rbm.b).sum(dim=1))
    return _weighted(rbm, x, weights)


def _negative_uniform(rbm):
    x = binary_states(rbm.n_visible)
    return _weighted(rbm, x, torch.full((len(x),), 1.0 / len(x), dtype=torch.float64))


def _negative_sign(rbm):
    x = binary_states(rbm.n_visible)
    with torch.no_grad():
        minus_f = (x @ rbm.a) + F.softplus(x @ rbm.W + rbm.b).sum(dim=1)
    return _weighted(rbm, x, torch.softmax(-minus_f, dim=0))


NEGATIVE_PHASE = Exercise(
    name="negative_phase",
    forbidden_calls=("genphys.rbm.log_likelihood_gradient_exact",),
    solution=negative_phase,
    cases=lambda: [(rbm,) for rbm, _ in _cases(42)],
    random_cases=lambda g: [(rbm,) for rbm, _ in _random_cases(g)],
    stress_cases=lambda: [Stress(s.description, s.args[:1], s.hint) for s in _stress_cases()[:2]],
    mistakes=(
        Mistake(
            _negative_unnormalised,
            "e^{-F(x)} is the unnormalised weight of x. Divide by Z = Σ_x e^{-F(x)} (a softmax "
            "of -F over all states) so that the weights form the distribution p(x).",
        ),
        Mistake(
            _negative_uniform,
            "every configuration must be weighted by its model probability p(x) = e^{-F(x)}/Z, "
            "not equally: the negative phase is an expectation under the model.",
        ),
        Mistake(
            _negative_sign,
            "sign error in the weights: p(x) ∝ e^{-F(x)}, so low free energy means high "
            "probability.",
        ),
    ),
)
check_negative_phase = NEGATIVE_PHASE.check


# ------------------------------------------------------------------- gradient
def log_likelihood_gradient(rbm, x):
    """∇ of the mean log-likelihood: positive phase minus negative phase, eq. (eq-two-phases)."""
    positive = positive_phase(rbm, x)
    negative = negative_phase(rbm)
    return tuple(p - m for p, m in zip(positive, negative, strict=True))


def _gradient_negative_over_data(rbm, x):
    positive = positive_phase(rbm, x)
    return tuple(p - p for p in positive)


def _gradient_literal_notes(rbm, x):
    states = binary_states(rbm.n_visible)
    with torch.no_grad():
        minus_f = (states @ rbm.a) + F.softplus(states @ rbm.W + rbm.b).sum(dim=1)
        log_z = torch.logsumexp(minus_f, dim=0)
        p_data_points = torch.exp(
            (x @ rbm.a) + F.softplus(x @ rbm.W + rbm.b).sum(dim=1) - log_z
        )  # p(x_k): (n,)
    positive = positive_phase(rbm, x)
    negative = _weighted(rbm, x, p_data_points)
    return tuple(p - m for p, m in zip(positive, negative, strict=True))


def _gradient_flipped(rbm, x):
    return tuple(-g for g in log_likelihood_gradient(rbm, x))


LOG_LIKELIHOOD_GRADIENT = Exercise(
    name="log_likelihood_gradient",
    forbidden_calls=("genphys.rbm.log_likelihood_gradient_exact",),
    solution=log_likelihood_gradient,
    cases=lambda: _cases(43),
    random_cases=_random_cases,
    stress_cases=_stress_cases,
    mistakes=(
        Mistake(
            _gradient_negative_over_data,
            "your gradient is zero: the negative phase was averaged over the data points, so it "
            "cancels the positive phase. ∇ log Z is an expectation under the MODEL, a sum over "
            "all 2^M configurations x weighted by p(x).",
        ),
        Mistake(
            _gradient_literal_notes,
            "the sum in ∇ log Z = Σ_x p(x) ∇ log f(x) runs over ALL configurations x of the "
            "model, not over the data points x_k (a slip in the lecture notes).",
        ),
        Mistake(
            _gradient_flipped,
            "sign error: the gradient of the log-likelihood is positive phase MINUS negative "
            "phase (data minus model).",
        ),
    ),
)
check_log_likelihood_gradient = LOG_LIKELIHOOD_GRADIENT.check


# -------------------------------------------------------------- one step
def gradient_ascent_step(rbm, x, learning_rate):
    """New parameters Θ + η ∇_Θ ℓ(Θ), returned as (W, a, b); the rbm itself is unchanged."""
    gradient = log_likelihood_gradient(rbm, x)
    with torch.no_grad():
        return tuple(
            p + learning_rate * g for p, g in zip((rbm.W, rbm.a, rbm.b), gradient, strict=True)
        )


def _step_descent(rbm, x, learning_rate):
    return gradient_ascent_step(rbm, x, -learning_rate)


def _step_without_rate(rbm, x, learning_rate):
    return gradient_ascent_step(rbm, x, 1.0)


def _step_weights_only(rbm, x, learning_rate):
    W, _, _ = gradient_ascent_step(rbm, x, learning_rate)
    return W, rbm.a.detach().clone(), rbm.b.detach().clone()


def _step_cases():
    return [(rbm, x, rate) for (rbm, x), rate in zip(_cases(44), (0.1, 0.05, 0.3), strict=True)]


def _step_random(g: torch.Generator):
    return [(rbm, x, draw_float(g, 0.001, 1.0)) for rbm, x in _random_cases(g)]


def _step_stress():
    cases = [Stress(s.description, (*s.args, 0.1), s.hint) for s in _stress_cases()]
    rbm, x = cases[1].args[:2]
    return [*cases, Stress("learning rate 0: the parameters stay as they are", (rbm, x, 0.0))]


GRADIENT_ASCENT_STEP = Exercise(
    name="gradient_ascent_step",
    forbidden_calls=("genphys.rbm.log_likelihood_gradient_exact",),
    solution=gradient_ascent_step,
    cases=_step_cases,
    random_cases=_step_random,
    stress_cases=_step_stress,
    mistakes=(
        Mistake(
            _step_descent,
            "that step goes downhill. We MAXIMISE the log-likelihood: Θ ← Θ + η ∇ℓ.",
        ),
        Mistake(
            _step_without_rate,
            "the step must be scaled by the learning rate η: Θ ← Θ + η ∇ℓ.",
        ),
        Mistake(
            _step_weights_only,
            "the biases a and b are parameters too; update them with their own components of "
            "the gradient, ⟨x⟩_data - ⟨x⟩_model and ⟨h⟩_data - ⟨h⟩_model.",
        ),
    ),
)
check_gradient_ascent_step = GRADIENT_ASCENT_STEP.check

EXERCISES = [POSITIVE_PHASE, NEGATIVE_PHASE, LOG_LIKELIHOOD_GRADIENT, GRADIENT_ASCENT_STEP]
