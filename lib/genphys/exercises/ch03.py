"""Exercises for chapter 3, {ref}`sec-marginals`: free energy, marginals and conditionals."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..enumeration import binary_states
from ..rbm import BernoulliRBM
from ._feedback import Exercise, Mistake

__all__ = [
    "EXERCISES",
    "check_free_energy",
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
    solution=free_energy,
    cases=lambda: _cases(31),
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
    solution=prob_h_given_x,
    cases=lambda: _cases(32),
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


MARGINAL_X = Exercise(
    name="marginal_x",
    solution=marginal_x,
    cases=lambda: [(rbm,) for rbm, _ in _cases(33)],
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
