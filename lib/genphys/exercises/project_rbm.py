"""Project: an RBM from scratch, {ref}`sec-project-rbm`: Gibbs sampling, CD-k, training to a target.

The student writes the two conditionals of a binary RBM, a block Gibbs chain, the CD-k
gradient, and then trains a 64 x 12 RBM on the binarised digits until its *exact* test
log-likelihood (:func:`genphys.rbm.log_likelihood_exact`, a sum over the 2^12 hidden
states) reaches :data:`TARGET_TEST_LOG_LIKELIHOOD`. Gradients are tuples ``(W, a, b)`` of
shapes ``(M, N)``, ``(M,)``, ``(N,)``; random draws use the generator they are given, in
the order of :func:`genphys.mcmc.gibbs_step`, so that the checks can replay them.
"""

from __future__ import annotations

import torch

from .. import mcmc, training
from .. import rbm as rbm_module
from ..data import load_digits_binary
from ..enumeration import binary_states
from ..fitting import fit, minibatches
from ..rbm import BernoulliRBM, log_likelihood_exact
from ..training import initialize_rbm
from ._feedback import (
    Exercise,
    Mistake,
    StatisticalExercise,
    Stress,
    draw_float,
    draw_int,
)
from ._goals import ProjectGoal

__all__ = [
    "EXERCISES",
    "GOALS",
    "N_HIDDEN",
    "TARGET_TEST_LOG_LIKELIHOOD",
    "cd_gradient",
    "check_cd_gradient",
    "check_conditionals",
    "check_gibbs_chain",
    "check_train_rbm",
    "conditionals",
    "gibbs_chain",
    "judge_trained_rbm",
    "train_rbm",
]

F64 = torch.float64

#: Hidden units of the trained RBM: 2^12 hidden states make the exact log-likelihood cheap.
N_HIDDEN = 12
#: The goal, in nats per test image. The reference (CD-1, Adam, 30 epochs) reached
#: -19.01 +- 0.11 (mean +- standard deviation over seeds 0-4, ``tests/test_exercises.py``
#: checks five seeds); the target leaves a margin of 0.5 nats, about four and a half standard
#: deviations. The best model with independent pixels reaches -24.7 on the test images.
TARGET_TEST_LOG_LIKELIHOOD = -19.5


def _parameters(generator: torch.Generator, n_visible: int, n_hidden: int, scale: float):
    W = scale * torch.randn(n_visible, n_hidden, generator=generator, dtype=F64)
    a = scale * torch.randn(n_visible, generator=generator, dtype=F64)
    b = scale * torch.randn(n_hidden, generator=generator, dtype=F64)
    return W, a, b


def _bits(generator: torch.Generator, n: int, m: int, p: float = 0.4) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, m), p, dtype=F64), generator=generator)


# ------------------------------------------------------------ step 1: conditionals
def conditionals(x, h, W, a, b):
    """p(h_j = 1 | x) = σ(b_j + Σ_i x_i W_ij) and p(x_i = 1 | h) = σ(a_i + Σ_j W_ij h_j)."""
    p_h = torch.sigmoid(x @ W + b)  # (n, N)
    p_x = torch.sigmoid(h @ W.T + a)  # (n, M)
    return p_h, p_x


def _conditional_cases():
    g = torch.Generator().manual_seed(301)
    cases = []
    for n, (n_visible, n_hidden), scale in zip(
        (5, 8, 3), [(4, 3), (6, 2), (3, 5)], (1.0, 2.0, 0.5), strict=True
    ):
        W, a, b = _parameters(g, n_visible, n_hidden, scale)
        cases.append((_bits(g, n, n_visible), _bits(g, n, n_hidden), W, a, b))
    return cases


def _conditional_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n, n_visible, n_hidden = draw_int(g, 1, 10), draw_int(g, 1, 8), draw_int(g, 1, 6)
        W, a, b = _parameters(g, n_visible, n_hidden, draw_float(g, 0.1, 4.0))
        p = draw_float(g, 0.1, 0.9)
        cases.append((_bits(g, n, n_visible, p), _bits(g, n, n_hidden, p), W, a, b))
    return cases


def _conditional_stress():
    g = torch.Generator().manual_seed(302)
    W, a, b = _parameters(g, 10, 6, 800.0)
    x, h = _bits(g, 20, 10), _bits(g, 20, 6)
    return [
        Stress(
            "weights and biases of size 800: fields of ±10^3 overflow exp",
            (x, h, W, a, b),
            "σ(z) is torch.sigmoid(z); exp(z) / (1 + exp(z)) is inf / inf = NaN for z > 710.",
        ),
        Stress(
            "a batch of 5000 rows",
            (_bits(g, 5000, 10), _bits(g, 5000, 6), *_parameters(g, 10, 6, 1.0)),
        ),
    ]


def _conditional_energy_sign(x, h, W, a, b):
    return torch.sigmoid(-(x @ W + b)), torch.sigmoid(-(h @ W.T + a))


def _conditional_no_bias(x, h, W, a, b):
    return torch.sigmoid(x @ W), torch.sigmoid(h @ W.T)


def _conditional_swapped(x, h, W, a, b):
    p_h, p_x = conditionals(x, h, W, a, b)
    return p_x, p_h


CONDITIONALS = Exercise(
    name="conditionals",
    forbidden_calls=(
        "genphys.rbm.BernoulliRBM.prob_h_given_x",
        "genphys.rbm.BernoulliRBM.prob_x_given_h",
    ),
    solution=conditionals,
    cases=_conditional_cases,
    random_cases=_conditional_random,
    stress_cases=_conditional_stress,
    mistakes=(
        Mistake(
            _conditional_energy_sign,
            "the sign: with E = -aᵀx - bᵀh - xᵀWh a unit switches on more often when its "
            "field b_j + Σ_i x_i W_ij is large, so p(h_j = 1 | x) = σ(+field).",
        ),
        Mistake(
            _conditional_no_bias,
            "the biases are part of the field: p(h_j = 1 | x) = σ(b_j + Σ_i x_i W_ij) and "
            "p(x_i = 1 | h) = σ(a_i + Σ_j W_ij h_j).",
        ),
        Mistake(
            _conditional_swapped,
            "return the hidden probabilities first, (p(h = 1 | x), p(x = 1 | h)).",
        ),
    ),
)
check_conditionals = CONDITIONALS.check


# -------------------------------------------------------------- step 2: Gibbs chain
def gibbs_chain(x0, W, a, b, k, generator):
    """k block Gibbs steps: h ~ Bernoulli(σ(b + x W)), then x ~ Bernoulli(σ(a + h Wᵀ)); returns x_k."""
    x = x0  # (n, M)
    for _ in range(k):
        h = torch.bernoulli(torch.sigmoid(x @ W + b), generator=generator)  # (n, N)
        x = torch.bernoulli(torch.sigmoid(h @ W.T + a), generator=generator)  # (n, M)
    return x


def _gibbs_cases():
    g = torch.Generator().manual_seed(303)
    cases = []
    for n, (n_visible, n_hidden), k in zip(
        (6, 9, 4), [(4, 3), (7, 2), (5, 6)], (1, 3, 10), strict=True
    ):
        W, a, b = _parameters(g, n_visible, n_hidden, 1.0)
        cases.append((_bits(g, n, n_visible), W, a, b, k, torch.Generator().manual_seed(310 + k)))
    return cases


def _gibbs_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n, n_visible, n_hidden = draw_int(g, 1, 12), draw_int(g, 1, 8), draw_int(g, 1, 6)
        W, a, b = _parameters(g, n_visible, n_hidden, draw_float(g, 0.1, 3.0))
        k = draw_int(g, 1, 6)
        seed = draw_int(g, 0, 2**30)
        cases.append((_bits(g, n, n_visible), W, a, b, k, torch.Generator().manual_seed(seed)))
    return cases


def _gibbs_stress():
    g = torch.Generator().manual_seed(304)
    strong = _parameters(g, 8, 5, 500.0)
    return [
        Stress(
            "weights of size 500: every conditional probability is 0 or 1",
            (_bits(g, 10, 8), *strong, 4, torch.Generator().manual_seed(305)),
        ),
        Stress(
            "2000 chains, 25 steps",
            (_bits(g, 2000, 8), *_parameters(g, 8, 5, 1.0), 25, torch.Generator().manual_seed(306)),
        ),
    ]


def _gibbs_one_step_less(x0, W, a, b, k, generator):
    return x0 if k == 1 else gibbs_chain(x0, W, a, b, k - 1, generator)


def _gibbs_mean_field_hidden(x0, W, a, b, k, generator):
    x = x0
    for _ in range(k):
        h = torch.sigmoid(x @ W + b)
        x = torch.bernoulli(torch.sigmoid(h @ W.T + a), generator=generator)
    return x


def _gibbs_probabilities(x0, W, a, b, k, generator):
    x = x0
    for _ in range(k):
        h = torch.bernoulli(torch.sigmoid(x @ W + b), generator=generator)
        x = torch.sigmoid(h @ W.T + a)
    return x


def _gibbs_visible_first(x0, W, a, b, k, generator):
    x = x0
    h = torch.zeros(x0.shape[0], W.shape[1], dtype=x0.dtype)
    for _ in range(k):
        x = torch.bernoulli(torch.sigmoid(h @ W.T + a), generator=generator)
        h = torch.bernoulli(torch.sigmoid(x @ W + b), generator=generator)
    return x


def _gibbs_stationary_test(student, seed):
    """Chains on a 4 x 3 RBM visit each of the 16 visible states with its exact p(x).

    Each of n independent chains, after 40 steps from x = 0 (the chain forgets its
    start within a few steps on this model), gives one draw; the count of state s is
    binomial, so its standard error is sqrt(n p(s) (1 - p(s))). Passing needs every
    state within 5 standard errors.
    """
    g = torch.Generator().manual_seed(seed)
    W, a, b = _parameters(torch.Generator().manual_seed(307), 4, 3, 1.0)
    n = 8000
    x = student(torch.zeros(n, 4, dtype=F64), W, a, b, 40, g)  # (n, 4)
    states = binary_states(4, dtype=F64)  # (16, 4)
    rbm = BernoulliRBM.from_parameters(W, a, b)
    with torch.no_grad():
        log_p = -rbm.free_energy(states)  # (16,), unnormalised
    p = torch.softmax(log_p, dim=0)  # (16,)
    index = (x @ (2.0 ** torch.arange(3, -1, -1, dtype=F64))).long()  # binary code of each row
    states_index = (states @ (2.0 ** torch.arange(3, -1, -1, dtype=F64))).long()
    counts = torch.bincount(index, minlength=16)[states_index].to(F64)  # (16,)
    se = torch.sqrt(n * p * (1 - p))
    z = (counts - n * p).abs() / se
    worst = int(torch.argmax(z))
    if float(z[worst]) > 5.0:
        return (
            f"With fresh random numbers (seed {seed}), {n} chains of 40 steps on a 4 x 3 RBM "
            f"visited the state {states[worst].long().tolist()} {int(counts[worst])} times; its "
            f"exact probability {float(p[worst]):.4f} predicts {float(n * p[worst]):.0f} ± "
            f"{float(se[worst]):.0f}. Does your chain draw from the generator it is given?"
        )
    return None


GIBBS_CHAIN = StatisticalExercise(
    name="gibbs_chain",
    forbidden_calls=(
        "genphys.mcmc.gibbs_chain",
        "genphys.mcmc.gibbs_sample",
        "genphys.mcmc.gibbs_step",
    ),
    solution=gibbs_chain,
    cases=_gibbs_cases,
    random_cases=_gibbs_random,
    stress_cases=_gibbs_stress,
    mistakes=(
        Mistake(
            _gibbs_one_step_less,
            "run exactly k full steps x → h → x; your chain stops one step early.",
        ),
        Mistake(
            _gibbs_mean_field_hidden,
            "sample the hidden layer, h = torch.bernoulli(p(h = 1 | x)), before computing "
            "p(x = 1 | h): with the probabilities instead of a sample the chain is no longer "
            "a Gibbs sampler of p(x, h).",
        ),
        Mistake(
            _gibbs_probabilities,
            "return binary samples x_k, not the probabilities p(x = 1 | h): draw them with "
            "torch.bernoulli(..., generator=generator).",
        ),
        Mistake(
            _gibbs_visible_first,
            "start from the data: the first half-step draws h from p(h | x0), then x from "
            "p(x | h).",
        ),
    ),
    statistic=_gibbs_stationary_test,
    claim="samples the exact distribution p(x) of a small RBM with fresh randomness",
)
check_gibbs_chain = GIBBS_CHAIN.check


# ----------------------------------------------------------------- step 3: CD-k
def cd_gradient(x0, W, a, b, k, generator):
    """CD-k: mean of x0 σ(b + x0 W)ᵀ minus that of x_k σ(b + x_k W)ᵀ, x_k = gibbs_chain(x0, ..., k)."""
    n = x0.shape[0]
    x_k = gibbs_chain(x0, W, a, b, k, generator)  # (n, M)
    q0 = torch.sigmoid(x0 @ W + b)  # (n, N): p(h = 1 | x0)
    q_k = torch.sigmoid(x_k @ W + b)  # (n, N): p(h = 1 | x_k)
    dW = (x0.T @ q0 - x_k.T @ q_k) / n  # (M, N)
    da = (x0 - x_k).mean(0)  # (M,)
    db = (q0 - q_k).mean(0)  # (N,)
    return dW, da, db


def _cd_cases():
    g = torch.Generator().manual_seed(320)
    cases = []
    for n, (n_visible, n_hidden), k in zip(
        (5, 8, 12), [(4, 3), (6, 2), (7, 5)], (1, 2, 5), strict=True
    ):
        W, a, b = _parameters(g, n_visible, n_hidden, 1.0)
        cases.append((_bits(g, n, n_visible), W, a, b, k, torch.Generator().manual_seed(321 + k)))
    return cases


def _cd_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n, n_visible, n_hidden = draw_int(g, 1, 12), draw_int(g, 1, 8), draw_int(g, 1, 6)
        W, a, b = _parameters(g, n_visible, n_hidden, draw_float(g, 0.1, 3.0))
        k, seed = draw_int(g, 1, 5), draw_int(g, 0, 2**30)
        cases.append((_bits(g, n, n_visible), W, a, b, k, torch.Generator().manual_seed(seed)))
    return cases


def _cd_stress():
    g = torch.Generator().manual_seed(330)
    return [
        Stress(
            "a single data vector",
            (_bits(g, 1, 9), *_parameters(g, 9, 4, 1.0), 3, torch.Generator().manual_seed(331)),
        ),
        Stress(
            "weights of size 500: every hidden unit saturates",
            (_bits(g, 40, 9), *_parameters(g, 9, 4, 500.0), 2, torch.Generator().manual_seed(332)),
        ),
        Stress(
            "a batch of 3000 data vectors",
            (_bits(g, 3000, 9), *_parameters(g, 9, 4, 1.0), 1, torch.Generator().manual_seed(333)),
        ),
    ]


def _cd_sign(x0, W, a, b, k, generator):
    return tuple(-t for t in cd_gradient(x0, W, a, b, k, generator))


def _cd_sum(x0, W, a, b, k, generator):
    return tuple(x0.shape[0] * t for t in cd_gradient(x0, W, a, b, k, generator))


def _cd_sampled_hidden(x0, W, a, b, k, generator):
    n = x0.shape[0]
    x, h = x0, None
    for _ in range(k):
        h = torch.bernoulli(torch.sigmoid(x @ W + b), generator=generator)
        x = torch.bernoulli(torch.sigmoid(h @ W.T + a), generator=generator)
    q0 = torch.sigmoid(x0 @ W + b)
    return (x0.T @ q0 - x.T @ h) / n, (x0 - x).mean(0), (q0 - h).mean(0)


def _cd_one_step(x0, W, a, b, k, generator):
    return cd_gradient(x0, W, a, b, 1, generator)


CD_GRADIENT = Exercise(
    name="cd_gradient",
    solution=cd_gradient,
    cases=_cd_cases,
    random_cases=_cd_random,
    stress_cases=_cd_stress,
    mistakes=(
        Mistake(
            _cd_sign,
            "the sign: the update is the positive phase (data x0) minus the negative phase "
            "(x_k), so that it raises the probability of the data.",
        ),
        Mistake(
            _cd_sum,
            "divide by the number of rows: the update is the mini-batch *mean*.",
        ),
        Mistake(
            _cd_sampled_hidden,
            "use the hidden probabilities σ(b + x_k W) in the negative phase, not the hidden "
            "sample that produced x_k: the probabilities have the same expectation and less "
            "noise, and the last hidden sample belongs to x_{k-1}, not to x_k.",
        ),
        Mistake(
            _cd_one_step,
            "run k Gibbs steps (gibbs_chain with the k you are given), not always one.",
        ),
    ),
)
check_cd_gradient = CD_GRADIENT.check


# ----------------------------------------------------------- step 4: the trained RBM
def train_rbm(x_train, n_hidden, seed):
    """CD-1 with Adam (learning rate 0.01, mini-batches of 32, 30 epochs) from Hinton's initialisation."""
    g = torch.Generator().manual_seed(seed)
    start = initialize_rbm(x_train, n_hidden, generator=g)  # a = logit of the pixel means
    W, a, b = (p.detach().clone().requires_grad_() for p in (start.W, start.a, start.b))
    optimizer = torch.optim.Adam([W, a, b], lr=0.01)

    def step(batch):
        with torch.no_grad():
            gradient = cd_gradient(batch, W, a, b, 1, g)  # ascent direction of log p
        for parameter, ascent in zip((W, a, b), gradient, strict=True):
            parameter.grad = -ascent  # Adam minimises -log p
        optimizer.step()
        return {}

    fit(
        step, lambda epoch: minibatches(x_train, 32, generator=g), n_epochs=30, parameters=[W, a, b]
    )
    return W.detach(), a.detach(), b.detach()


def _digits():
    return load_digits_binary()


def _train_arguments(g: torch.Generator):
    """The training images with their pixels in a hidden order, and a hidden seed.

    An RBM does not depend on the order of its visible units (a permutation of the rows of
    ``W`` and of ``a``), so training is as hard as on the images themselves; but parameters
    trained before the check, on the images in their usual order, do not fit these.
    """
    order = torch.randperm(64, generator=g)  # (64,): a hidden order of the pixels
    digits = _digits()
    rows = torch.randperm(digits.x_train.shape[0], generator=g)  # and of the images
    return (digits.x_train[rows][:, order], N_HIDDEN, draw_int(g, 0, 2**20)), order


def judge_trained_rbm(result, order=None) -> tuple[bool, str]:
    """Whether ``result = (W, a, b)``, a 64 x 12 RBM, reaches the target exact test log-likelihood.

    ``order`` is the order of the pixels the RBM was trained on (the identity when None); the
    test images are judged in the same order.
    """
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise TypeError(
            f"the result must be a tuple (W, a, b). Got {type(result).__name__} instead."
        )
    W, a, b = (torch.as_tensor(t).detach().to(F64) for t in result)
    if W.shape != (64, N_HIDDEN) or a.shape != (64,) or b.shape != (N_HIDDEN,):
        return False, (
            f"The RBM must have 64 visible and {N_HIDDEN} hidden units: W of shape "
            f"(64, {N_HIDDEN}), a (64,), b ({N_HIDDEN},). Got {tuple(W.shape)}, "
            f"{tuple(a.shape)}, {tuple(b.shape)}."
        )
    if not all(bool(torch.isfinite(t).all()) for t in (W, a, b)):
        return (
            False,
            "Your parameters contain NaN or inf: training diverged; lower the learning rate.",
        )
    order = torch.arange(64) if order is None else order
    rbm = BernoulliRBM.from_parameters(W, a, b)
    digits = _digits()
    with torch.no_grad():
        test = float(log_likelihood_exact(rbm, digits.x_test[:, order]))
        train = float(log_likelihood_exact(rbm, digits.x_train[:, order]))
    numbers = (
        f"exact mean log-likelihood {test:.2f} nats per test image ({train:.2f} on the "
        f"training images); the target is {TARGET_TEST_LOG_LIKELIHOOD:.1f}"
    )
    if test >= TARGET_TEST_LOG_LIKELIHOOD:
        return True, f"Your RBM reaches the goal: {numbers}."
    return False, (
        f"Not there yet: {numbers}, and independent pixels reach about -24.7. Check that the "
        "update ascends the log-likelihood (Adam minimises, so set .grad to minus the CD "
        "gradient), that you train on the x_train the check passes (its pixels are in a "
        "hidden order), and try more epochs or a larger learning rate."
    )


_TRAINER = "the library's RBM training: the goal is your own loop with your cd_gradient (step 3)."

TRAIN_RBM = ProjectGoal(
    name="train_rbm",
    solution=train_rbm,
    arguments=_train_arguments,
    judge=judge_trained_rbm,
    references=(conditionals, gibbs_chain, cd_gradient),
    refused=(
        (training.train_rbm, _TRAINER),
        (training.rbm_step, _TRAINER),
        (training.rbm_optimizer, _TRAINER),
        (training.CD, _TRAINER),
        (training.PCD, _TRAINER),
        (training.ExactNegative, _TRAINER),
        (training.cd_gradient_sample, "the library's CD gradient: use your own (step 3)."),
        (training.cd_gradient_exact, "the library's CD gradient: use your own (step 3)."),
        (training.gibbs_from_hidden, "the library's Gibbs sampler: use your own (step 2)."),
        (mcmc.gibbs_chain, "the library's Gibbs chain: use your own (step 2)."),
        (mcmc.gibbs_step, "the library's Gibbs step: use your own (step 2)."),
        (mcmc.gibbs_sample, "the library's Gibbs sampler: use your own (step 2)."),
        (rbm_module.log_likelihood_gradient_exact, "the exact gradient: train with CD (step 3)."),
    ),
)
check_train_rbm = TRAIN_RBM.check

EXERCISES = [CONDITIONALS, GIBBS_CHAIN, CD_GRADIENT]
GOALS = [TRAIN_RBM]
