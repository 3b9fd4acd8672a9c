"""Exercises for chapter 3, {ref}`sec-marginals`: free energy, marginals and conditionals."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..enumeration import binary_states
from ..rbm import BernoulliRBM
from ._feedback import Exercise, Expression, Mistake, Stress, draw_float, draw_int

__all__ = [
    "EXERCISES",
    "QUESTIONS",
    "check_free_energy",
    "check_hidden_sum",
    "check_marginal_x",
    "check_prob_h_given_x",
    "free_energy",
    "marginal_x",
    "prob_h_given_x",
]


def _cases(seed: int, scales=(0.5, 1.0, 3.0)):
    g = torch.Generator().manual_seed(seed)
    cases = []
    for (n_visible, n_hidden), scale in zip([(3, 2), (5, 4), (4, 6)], scales, strict=True):
        rbm = BernoulliRBM.from_parameters(
            scale * torch.randn(n_visible, n_hidden, generator=g, dtype=torch.float64),
            scale * torch.randn(n_visible, generator=g, dtype=torch.float64),
            scale * torch.randn(n_hidden, generator=g, dtype=torch.float64),
        )
        x = torch.randint(0, 2, (6, n_visible), generator=g).double()
        cases.append((rbm, x))
    return cases


def _random_cases(g: torch.Generator, n_cases: int = 3):
    """Fresh (rbm, x) pairs of random sizes (M <= 6, N <= 6) and scales."""
    cases = []
    for _ in range(n_cases):
        n_visible, n_hidden = draw_int(g, 1, 6), draw_int(g, 1, 6)
        scale = draw_float(g, 0.1, 3.0)
        rbm = BernoulliRBM.from_parameters(
            scale * torch.randn(n_visible, n_hidden, generator=g, dtype=torch.float64),
            scale * torch.randn(n_visible, generator=g, dtype=torch.float64),
            scale * torch.randn(n_hidden, generator=g, dtype=torch.float64),
        )
        cases.append(
            (rbm, torch.randint(0, 2, (draw_int(g, 1, 9), n_visible), generator=g).double())
        )
    return cases


def _stress_cases(scale: float, seed: int):
    """An RBM with fields of order ``scale`` on a batch of 500, and one on a single x."""
    g = torch.Generator().manual_seed(seed)
    rbm = BernoulliRBM.from_parameters(
        scale * torch.randn(5, 4, generator=g, dtype=torch.float64),
        scale * torch.randn(5, generator=g, dtype=torch.float64),
        scale * torch.randn(4, generator=g, dtype=torch.float64),
    )
    x = torch.randint(0, 2, (500, 5), generator=g).double()
    return rbm, x


def _conditional_stress():
    rbm, x = _stress_cases(1000.0, 34)
    return [
        Stress(
            "fields b_j + (xᵀW)_j of size 1000: e^{1000} overflows float64",
            (rbm, x),
            "Do not form e^{z} itself: σ(z) = 1 / (1 + e^{-z}) is torch.sigmoid, and "
            "log(1 + e^{z}) is torch.nn.functional.softplus.",
        ),
        Stress("a single configuration, n = 1", (rbm, x[:1])),
    ]


# ---------------------------------------------------------------- free energy
def free_energy(rbm, x):
    """F(x) = -aᵀx - Σ_j log(1 + exp(b_j + (xᵀW)_j)) for a batch x (n, M) -> (n,)."""
    with torch.no_grad():
        return -(x @ rbm.a) - F.softplus(x @ rbm.W + rbm.b).sum(dim=1)


def _free_energy_no_visible_bias(rbm, x):
    with torch.no_grad():
        return -F.softplus(x @ rbm.W + rbm.b).sum(dim=1)


def _free_energy_sign(rbm, x):
    return -free_energy(rbm, x)


def _free_energy_no_log1p(rbm, x):
    with torch.no_grad():
        return -(x @ rbm.a) - (x @ rbm.W + rbm.b).sum(dim=1)


def _free_energy_exp_not_softplus(rbm, x):
    with torch.no_grad():
        return -(x @ rbm.a) - torch.log(torch.exp(x @ rbm.W + rbm.b).sum(dim=1))


FREE_ENERGY = Exercise(
    name="free_energy",
    forbidden_calls=(
        "genphys.rbm.BernoulliRBM.free_energy",
        "genphys.rbm.BernoulliRBM.hidden_free_energy",
    ),
    solution=free_energy,
    cases=lambda: _cases(31),
    random_cases=_random_cases,
    stress_cases=_conditional_stress,
    mistakes=(
        Mistake(
            _free_energy_no_visible_bias,
            "the visible-bias term -aᵀx is missing. Summing out h leaves e^{aᵀx} untouched, so "
            "it appears in F(x) as it is.",
        ),
        Mistake(
            _free_energy_sign,
            "sign error: p(x) = e^{-F(x)}/Z, so F(x) = -aᵀx - Σ_j log(1 + e^{b_j + (xᵀW)_j}).",
        ),
        Mistake(
            _free_energy_no_log1p,
            "summing over h_j ∈ {0, 1} gives the factor 1 + e^{b_j + (xᵀW)_j}, whose log is "
            "softplus, not the exponent itself.",
        ),
        Mistake(
            _free_energy_exp_not_softplus,
            "the sum over h factorises into a PRODUCT over hidden units of (1 + e^{…}); take the "
            "log of each factor and add them (softplus summed over j).",
        ),
    ),
)
check_free_energy = FREE_ENERGY.check


# ---------------------------------------------------------------- conditional
def prob_h_given_x(rbm, x):
    """p(h_j = 1 | x) = σ(b_j + Σ_i x_i W_ij) for a batch x (n, M) -> (n, N)."""
    with torch.no_grad():
        return torch.sigmoid(x @ rbm.W + rbm.b)


PROB_H_GIVEN_X = Exercise(
    name="prob_h_given_x",
    forbidden_calls=(
        "genphys.rbm.BernoulliRBM.prob_h_given_x",
        "genphys.rbm.BernoulliRBM.sample_h_given_x",
    ),
    solution=prob_h_given_x,
    cases=lambda: _cases(32),
    random_cases=_random_cases,
    stress_cases=_conditional_stress,
    mistakes=(
        Mistake(
            lambda rbm, x: torch.exp(x @ rbm.W + rbm.b).detach(),
            "e^{b_j + (xᵀW)_j} is the unnormalised weight of h_j = 1. Normalise by the sum over "
            "h_j ∈ {0, 1}: e^{z}/(1 + e^{z}) = σ(z).",
        ),
        Mistake(
            lambda rbm, x: torch.sigmoid(-(x @ rbm.W + rbm.b)).detach(),
            "sign error: that is p(h_j = 0 | x). The energy has -h_j(b_j + (xᵀW)_j), so h_j = 1 "
            "is favoured when the field is positive.",
        ),
        Mistake(
            lambda rbm, x: torch.sigmoid(x @ rbm.W).detach(),
            "the hidden bias b_j belongs in the field: σ(b_j + Σ_i x_i W_ij).",
        ),
    ),
)
check_prob_h_given_x = PROB_H_GIVEN_X.check


# ------------------------------------------------------------------ marginal
def marginal_x(rbm):
    """p(x) = e^{-F(x)} / Z for all 2^M visible states (unit 0 fastest) -> (2^M,)."""
    x = binary_states(rbm.n_visible)  # (2^M, M)
    minus_f = -free_energy(rbm, x)  # (2^M,)
    return torch.exp(minus_f - torch.logsumexp(minus_f, dim=0))


def _marginal_unnormalised(rbm):
    return torch.exp(-free_energy(rbm, binary_states(rbm.n_visible)))


def _marginal_of_energy_at_h0(rbm):
    x = binary_states(rbm.n_visible)
    with torch.no_grad():
        w = x @ rbm.a
    return torch.exp(w - torch.logsumexp(w, dim=0))


def _marginal_stress():
    rbm, _ = _stress_cases(300.0, 35)
    return [
        Stress(
            "weights of size 300: e^{-F(x)} overflows float64",
            (rbm,),
            "Normalise in log space: p(x) = exp(-F(x) - logsumexp(-F)), or torch.softmax(-F).",
        ),
        Stress(
            "a single visible unit",
            (
                BernoulliRBM.from_parameters(
                    *(
                        torch.ones(1, 2, dtype=torch.float64),
                        torch.zeros(1, dtype=torch.float64),
                        torch.zeros(2, dtype=torch.float64),
                    )
                ),
            ),
        ),
    ]


MARGINAL_X = Exercise(
    name="marginal_x",
    forbidden_calls=(
        "genphys.rbm.log_likelihood_exact",
        "genphys.rbm.log_partition_exact",
        "genphys.thermodynamics.rbm_log_prob_exact",
    ),
    solution=marginal_x,
    cases=lambda: [(rbm,) for rbm, _ in _cases(33)],
    random_cases=lambda g: [(rbm,) for rbm, _ in _random_cases(g)],
    stress_cases=_marginal_stress,
    mistakes=(
        Mistake(
            _marginal_unnormalised,
            "Σ_h e^{-E(x,h)} = e^{-F(x)} is the UNNORMALISED marginal; divide by Z = Σ_x e^{-F(x)} "
            "so the probabilities sum to one.",
        ),
        Mistake(
            _marginal_of_energy_at_h0,
            "the marginal sums over every hidden configuration, not only h = 0: use the free "
            "energy, which does that sum analytically.",
        ),
    ),
)
check_marginal_x = MARGINAL_X.check

EXERCISES = [FREE_ENERGY, PROB_H_GIVEN_X, MARGINAL_X]

# ----------------------------------------------------------- derivation questions
HIDDEN_SUM = Expression(
    name="hidden_sum",
    question=(
        "Summing e^{-E(x,h)} over h factorises over the hidden units. For one hidden unit "
        "with field z = b_j + (xᵀW)_j, what is Σ_{h_j ∈ {0, 1}} e^{h_j z}? Give it as a "
        "formula in z."
    ),
    variables={"z": (-6.0, 6.0)},
    solution="1 + exp(z)",
    mistakes=(
        Mistake("exp(z)", "h_j = 0 contributes too: e^{0 · z} = 1, so the sum is 1 + e^z."),
        Mistake(
            "log(1 + exp(z))",
            "that is the log of the sum (softplus, which enters F(x)); the sum itself is 1 + e^z.",
        ),
        Mistake("1 + exp(-z)", "the exponent is +h_j z: -E contains +h_j (b_j + (xᵀW)_j)."),
        Mistake("2*exp(z)", "h_j = 0 gives e^0 = 1, not e^z."),
    ),
    explanation=(
        "Only h_j = 0 and h_j = 1 contribute: e^0 + e^z = 1 + e^z. The product of these "
        "factors over j is e^{-aᵀx} Σ_h e^{-E(x,h)}, whose minus log is the free energy "
        "F(x) = -aᵀx - Σ_j log(1 + e^{z_j})."
    ),
)
check_hidden_sum = HIDDEN_SUM.check

QUESTIONS = [HIDDEN_SUM]
