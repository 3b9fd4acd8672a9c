"""Project: Langevin samplers from scratch, {ref}`sec-langevin`: ULA, MALA, and a 2D mixture.

The student writes a ULA step and a MALA step that take the gradient of ``log_prob`` by
autograd. Each step is checked against the reference on shared noise and then
statistically: on the Gaussian :math:`\\mathcal N(0, \\mathrm{diag}(1, 1/2))` with
:math:`\\eta = 0.4`, ULA must sample its exact biased variance
:math:`s^2 / (1 - \\eta / (2 s^2))` (eq. {eq}`eq-ula-variance`) and MALA the exact
:math:`s^2`, each within five standard errors (from the effective sample size of
:func:`genphys.mcmc.effective_sample_size`). Last, the student's ``sample_mixture``
runs their MALA on a 2D Gaussian mixture (a :class:`~genphys.exercises._feedback.Goal`) and the
histogram of its samples is compared with the exact density on a grid.
"""

from __future__ import annotations

import functools
import math

import torch

from .. import langevin, mcmc
from ..grid import Grid, js_divergence
from ..langevin import ula_stationary_variance
from ..mcmc import effective_sample_size
from ..mixtures import GaussianMixture, ring
from ._feedback import Mistake, StatisticalExercise, Stress, draw_float, draw_int
from ._goals import ProjectGoal, moved_mixture

__all__ = [
    "EXERCISES",
    "GOALS",
    "MIXTURE",
    "check_mala_step",
    "check_sample_mixture",
    "check_ula_step",
    "gaussian_log_prob",
    "judge_mixture_samples",
    "mala_step",
    "mixture_divergence",
    "sample_mixture",
    "ula_step",
    "variance_with_error",
]

F64 = torch.float64

#: The statistical test's target: N(0, diag(S2)) sampled with step ETA.
S2 = (1.0, 0.5)
ETA = 0.4


# ------------------------------------------------------------------ targets
def gaussian_log_prob(x):
    """log N(x; 0, diag(1, 1/2)) up to a constant, for x of shape (B, 2)."""
    s2 = torch.tensor(S2, dtype=x.dtype, device=x.device)  # (2,)
    return -0.5 * (x**2 / s2).sum(1)


def _isotropic_log_prob(x):
    return -(x**2).sum(1)  # N(0, I/2) in any dimension


def _double_well_log_prob(x):
    return -2.0 * ((x**2 - 1.0) ** 2).sum(1)


def _ring_log_prob(x):
    return ring().log_prob(x)


_TARGETS = (_isotropic_log_prob, _double_well_log_prob, _ring_log_prob)


def _grad(log_prob, x):
    x = x.detach().requires_grad_(True)
    value = log_prob(x)  # (B,)
    return value.detach(), torch.autograd.grad(value.sum(), x)[0]  # (B,), (B, D)


# ---------------------------------------------------------------- statistics
def variance_with_error(chain):
    """Per coordinate: mean of x^2 over every step and chain, and its standard error sqrt(Var(x^2) / n_eff).

    ``chain`` has shape (n_chains, n_steps, dim), chains first like every sampler of the
    library (:func:`genphys.langevin.sample`), and the target has mean 0, so the mean of
    x^2 estimates the variance; ``n_eff`` is the effective sample size of the series x^2.
    """
    estimates, errors = [], []
    for d in range(chain.shape[2]):
        series = chain[:, :, d] ** 2  # (C, T)
        n_eff = effective_sample_size(series)
        estimates.append(float(series.mean()))
        errors.append(math.sqrt(float(series.var()) / n_eff))
    return estimates, errors


def _variance_test(step, exact, seed, what):
    """Run ``step`` on N(0, diag(S2)) and compare the variance per axis with ``exact`` (5 SE)."""
    g = torch.Generator().manual_seed(seed)
    n_chains, n_burn, n_keep = 1000, 60, 200
    x = torch.zeros(n_chains, 2, dtype=F64)
    for _ in range(n_burn):  # ULA contracts by 1 - eta/s^2 >= 0.2 per step: 0.8**60 ~ 2e-6
        x = _position(step(x, gaussian_log_prob, ETA, g))
    chain = torch.empty(n_chains, n_keep, 2, dtype=F64)  # (C, T, D), chains first
    for t in range(n_keep):
        x = _position(step(x, gaussian_log_prob, ETA, g))
        chain[:, t] = x
    estimates, errors = variance_with_error(chain)
    for axis, (v, se, want) in enumerate(zip(estimates, errors, exact, strict=True)):
        if not abs(v - want) <= 5 * se:
            return (
                f"With fresh random numbers (seed {seed}) your chains on N(0, diag(1, 1/2)) with "
                f"eta = {ETA} have variance {v:.4f} on axis {axis}; {what} must give {want:.4f} "
                f"± {se:.4f} (one standard error from the effective sample size; 5 allowed). "
                "Does your function draw its random numbers from the generator it is given?"
            )
    return None


def _position(result):
    return (result[0] if isinstance(result, tuple) else result).detach()


# ------------------------------------------------------------------------ ULA
def ula_step(x, log_prob, step_size, generator):
    """x' = x + eta ∇log p(x) + sqrt(2 eta) xi, the gradient by autograd, xi = torch.randn(x.shape, generator=generator)."""
    x = x.detach().requires_grad_(True)
    grad = torch.autograd.grad(log_prob(x).sum(), x)[0]  # (B, D): each chain's own gradient
    xi = torch.randn(x.shape, generator=generator, dtype=x.dtype)  # (B, D)
    return (x + step_size * grad + math.sqrt(2.0 * step_size) * xi).detach()


def _step_cases():
    g = torch.Generator().manual_seed(1801)
    cases = []
    for k, (dim, eta) in enumerate(((3, 0.1), (1, 0.02), (2, 0.05))):
        x = torch.randn(7, dim, generator=g, dtype=F64)
        cases.append((x, _TARGETS[k], eta, torch.Generator().manual_seed(1802 + k)))
    return cases


def _step_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        k = draw_int(g, 0, 2)
        dim = 2 if k == 2 else draw_int(g, 1, 5)
        x = draw_float(g, 0.1, 3.0) * torch.randn(draw_int(g, 1, 20), dim, generator=g, dtype=F64)
        eta = draw_float(g, 1e-3, 0.3)
        cases.append((x, _TARGETS[k], eta, torch.Generator().manual_seed(draw_int(g, 0, 2**30))))
    return cases


def _step_stress():
    g = torch.Generator().manual_seed(1803)
    far = 30.0 + torch.randn(6, 1, generator=g, dtype=F64)  # the double well's drift is ~2e5
    return [
        Stress(
            "far out on the double well, gradients of about 2·10⁵, eta = 10⁻⁶",
            (far, _double_well_log_prob, 1e-6, torch.Generator().manual_seed(1804)),
        ),
        Stress(
            "20000 chains in 8 dimensions",
            (
                torch.randn(20_000, 8, generator=g, dtype=F64),
                _isotropic_log_prob,
                0.05,
                torch.Generator().manual_seed(1805),
            ),
            "Take the gradient of log_prob(x).sum(): the sum's gradient is each chain's own.",
        ),
        Stress(
            "a single chain",
            (
                torch.randn(1, 2, generator=g, dtype=F64),
                _ring_log_prob,
                0.1,
                torch.Generator().manual_seed(1807),
            ),
        ),
    ]


def _ula_wrong(drift=1.0, noise=2.0, reduce="sum"):
    def answer(x, log_prob, eta, g):
        x = x.detach().requires_grad_(True)
        value = log_prob(x)
        grad = torch.autograd.grad(value.sum() if reduce == "sum" else value.mean(), x)[0]
        xi = torch.randn(x.shape, generator=g, dtype=x.dtype)
        return (x + drift * eta * grad + math.sqrt(noise * eta) * xi).detach()

    return answer


def _no_gradient_history(result, args) -> str | None:
    if isinstance(result, torch.Tensor) and (result.requires_grad or result.grad_fn is not None):
        return (
            "your step returns a tensor with gradient history (requires_grad): return "
            "`x_new.detach()`, else every step of a chain keeps the graph of all the steps "
            "before it and memory and time grow without bound."
        )
    return None


ULA_STEP = StatisticalExercise(
    name="ula_step",
    result_check=_no_gradient_history,
    forbidden_calls=("genphys.langevin.ula_step",),
    solution=ula_step,
    cases=_step_cases,
    random_cases=_step_random,
    stress_cases=_step_stress,
    mistakes=(
        Mistake(
            _ula_wrong(noise=1.0),
            "the noise has variance 2 eta, so its standard deviation is sqrt(2 eta), not "
            "sqrt(eta): with sqrt(eta) the chain samples p at temperature 1/2.",
        ),
        Mistake(
            _ula_wrong(drift=-1.0),
            "the drift climbs the log-density: x + eta ∇log p(x). With a minus sign the chains "
            "run away from the modes.",
        ),
        Mistake(
            _ula_wrong(noise=0.0),
            "the noise is missing: without it the step is gradient ascent and every chain ends "
            "at a mode. Add sqrt(2 eta) * torch.randn(x.shape, generator=generator).",
        ),
        Mistake(
            _ula_wrong(reduce="mean"),
            "take the gradient of log_prob(x).sum(), not of the mean: the mean divides every "
            "chain's gradient by the number of chains.",
        ),
    ),
    rtol=1e-10,
    atol=1e-10,
    statistic=lambda student, seed: _variance_test(
        student,
        [ula_stationary_variance(s2, ETA) for s2 in S2],
        seed,
        "ULA (eq. eq-ula-variance, s²/(1 - eta/(2 s²)))",
    ),
    claim="with fresh randomness, samples ULA's exact biased variance on a 2D Gaussian",
)
check_ula_step = ULA_STEP.check


# ----------------------------------------------------------------------- MALA
def mala_step(x, log_prob, step_size, generator):
    """Propose x' by ULA (noise first), accept if log u < log p(x') - log p(x) + log q(x|x') - log q(x'|x), u = torch.rand(B)."""
    x = x.detach().requires_grad_(True)
    log_p = log_prob(x)  # (B,)
    grad = torch.autograd.grad(log_p.sum(), x)[0]  # (B, D)
    x = x.detach()
    xi = torch.randn(x.shape, generator=generator, dtype=x.dtype)  # (B, D)
    x_prop = (x + step_size * grad + math.sqrt(2.0 * step_size) * xi).requires_grad_(True)
    log_p_prop = log_prob(x_prop)  # (B,)
    grad_prop = torch.autograd.grad(log_p_prop.sum(), x_prop)[0]  # (B, D)
    x_prop = x_prop.detach()
    forward = -((x_prop - x - step_size * grad) ** 2).sum(1) / (4 * step_size)  # log q(x'|x)
    backward = -((x - x_prop - step_size * grad_prop) ** 2).sum(1) / (4 * step_size)  # log q(x|x')
    log_ratio = (log_p_prop - log_p + backward - forward).detach()  # (B,)
    u = torch.rand(x.shape[0], generator=generator, dtype=x.dtype)  # (B,)
    accepted = torch.log(u) < log_ratio  # (B,)
    return torch.where(accepted[:, None], x_prop, x), accepted


def _mala_cases():
    # large steps from spread-out starts: many rejections, so every term of the ratio matters
    g = torch.Generator().manual_seed(1808)
    return [
        (
            2 * torch.randn(300, 2, generator=g, dtype=F64),
            _ring_log_prob,
            0.3,
            torch.Generator().manual_seed(1809),
        ),
        (
            torch.randn(300, 3, generator=g, dtype=F64),
            _isotropic_log_prob,
            0.9,
            torch.Generator().manual_seed(1810),
        ),
        *_step_cases(),
    ]


def _mala_wrong(kind):
    def answer(x, log_prob, eta, g):
        log_p, grad = _grad(log_prob, x)
        xi = torch.randn(x.shape, generator=g, dtype=x.dtype)
        x_prop = x.detach() + eta * grad + math.sqrt(2.0 * eta) * xi
        log_p_prop, grad_prop = _grad(log_prob, x_prop)
        var = eta if kind == "variance" else 2 * eta
        back_grad = grad if kind == "backward gradient" else grad_prop
        forward = -((x_prop - x - eta * grad) ** 2).sum(1) / (2 * var)
        backward = -((x - x_prop - eta * back_grad) ** 2).sum(1) / (2 * var)
        if kind == "no correction":
            log_ratio = log_p_prop - log_p
        elif kind == "inverted":
            log_ratio = log_p_prop - log_p + forward - backward
        else:
            log_ratio = log_p_prop - log_p + backward - forward
        if kind == "greedy":
            accepted = log_ratio > 0
            return torch.where(accepted[:, None], x_prop, x.detach()), accepted
        u = torch.rand(x.shape[0], generator=g, dtype=x.dtype)
        accepted = torch.log(u) > log_ratio if kind == "flipped" else torch.log(u) < log_ratio
        return torch.where(accepted[:, None], x_prop, x.detach()), accepted

    return answer


MALA_STEP = StatisticalExercise(
    name="mala_step",
    forbidden_calls=(
        "genphys.langevin.mala_step",
        "genphys.langevin.mala_log_acceptance",
    ),
    solution=mala_step,
    cases=_mala_cases,
    random_cases=_step_random,
    stress_cases=_step_stress,
    mistakes=(
        Mistake(
            _mala_wrong("no correction"),
            "the proposal-density correction is missing: the Langevin proposal is centred at "
            "x + eta ∇log p(x), not symmetric, so add log q(x | x') - log q(x' | x).",
        ),
        Mistake(
            _mala_wrong("inverted"),
            "the correction is upside down: the ratio is q(x | x') / q(x' | x), the probability "
            "of proposing the way back over that of the move made.",
        ),
        Mistake(
            _mala_wrong("variance"),
            "the proposal has variance 2 eta, so log q = -|x' - x - eta ∇log p(x)|² / (4 eta), "
            "not / (2 eta).",
        ),
        Mistake(
            _mala_wrong("backward gradient"),
            "the reverse proposal q(x | x') starts from x', so its mean uses the gradient at x'.",
        ),
        Mistake(
            _mala_wrong("greedy"),
            "the acceptance test must be random: accepting exactly when the ratio exceeds 1 "
            "(log ratio > 0) never moves downhill. Draw u = torch.rand(B, generator=generator) "
            "and accept where log u < log ratio.",
        ),
        Mistake(
            _mala_wrong("flipped"),
            "your step keeps (nearly) every proposal: either the accept/reject test is "
            "missing, or it is the wrong way round. Draw u = torch.rand(B, generator=generator) "
            "after the proposal and keep x' only where log u < the log acceptance ratio (a move "
            "up in probability is always accepted, one down only sometimes); elsewhere keep x.",
        ),
    ),
    rtol=1e-10,
    atol=1e-10,
    statistic=lambda student, seed: _variance_test(student, list(S2), seed, "MALA (exact, s²)"),
    claim="with fresh randomness, samples the exact variance of a 2D Gaussian",
)
check_mala_step = MALA_STEP.check


# ------------------------------------------------------------- the 2D mixture
#: The project's 2D target: three overlapping Gaussians of unequal weights.
MIXTURE = GaussianMixture([0.5, 0.3, 0.2], [[-1.0, 0.0], [1.0, 0.5], [0.2, -1.2]], [0.6, 0.5, 0.7])
GRID = Grid(-4.0, 4.0, 32)
N_SAMPLES = 4000


N_STEPS = 300


@functools.cache
def _exact_floor(n: int) -> tuple[float, float]:
    """Mean and standard deviation of the JSD of n exact samples' histogram (20 seeds)."""
    return _floor(MIXTURE, n)


def _floor(mixture, n: int) -> tuple[float, float]:
    p = GRID.cell_probabilities(mixture.log_prob(GRID.points))
    values = torch.tensor(
        [js_divergence(GRID.histogram(mixture.sample(n, seed=s))[0], p) for s in range(20)],
        dtype=F64,
    )
    return float(values.mean()), float(values.std())


def mixture_divergence(samples, mixture=MIXTURE) -> float:
    """JSD between the histogram of ``samples`` on :data:`GRID` and the exact cell probabilities of ``mixture``."""
    counts, outside = GRID.histogram(samples)
    p = GRID.cell_probabilities(mixture.log_prob(GRID.points))
    q = torch.cat([counts, torch.tensor([outside], dtype=counts.dtype)])  # (cells + 1,)
    return js_divergence(torch.cat([p, torch.zeros(1, dtype=p.dtype)]), q)


def judge_mixture_samples(samples, context) -> tuple[bool, str]:
    """Whether ``samples`` of shape (N_SAMPLES, 2) are within 5 SD of the exact samples' JSD floor, after 300 MALA steps.

    ``context = (mixture, evaluations)``: the hidden target and a one-element list with the
    number of points at which the student's chains evaluated its log-density. Each MALA
    step evaluates it at least at its proposals, so 300 steps of N_SAMPLES chains need at
    least 300 * N_SAMPLES evaluations; fewer means fewer steps.
    """
    mixture, evaluations = context
    if not isinstance(samples, torch.Tensor) or samples.dim() != 2 or samples.shape[1] != 2:
        raise TypeError(
            f"samples must be a tensor of shape ({N_SAMPLES}, 2). Got {type(samples).__name__} "
            f"{tuple(getattr(samples, 'shape', ()))} instead."
        )
    if samples.shape[0] != N_SAMPLES:
        raise ValueError(f"samples must have {N_SAMPLES} rows. Got {samples.shape[0]} instead.")
    samples = samples.detach().to(F64)
    if not bool(torch.isfinite(samples).all()):
        return False, (
            "Your samples contain NaN or infinity: the chains diverged. Check the sign of the "
            "drift (+ eta * grad log p) and the acceptance test."
        )
    needed = N_STEPS * N_SAMPLES
    if evaluations[0] < needed:
        return False, (
            f"Your chains evaluated log_prob at {evaluations[0]} points; {N_STEPS} MALA steps of "
            f"{N_SAMPLES} chains evaluate it at least at their {needed} proposals. Run all "
            f"{N_STEPS} steps: chains stopped early still remember their uniform start."
        )
    jsd = mixture_divergence(samples, mixture)
    mean, sd = _floor(mixture, N_SAMPLES)
    limit = mean + 5 * sd
    verdict = "within" if jsd <= limit else "above"
    return jsd <= limit, (
        f"JSD to the exact density {jsd:.4f} nats, {verdict} the limit {limit:.4f}: the JSD "
        f"of {N_SAMPLES} exact independent samples is {mean:.4f} ± {sd:.4f} (20 seeds; 5 "
        "standard deviations allowed)."
    )


def sample_mixture(log_prob, n_samples, seed):
    """The last positions of ``n_samples`` MALA chains (300 steps, eta = 0.15) from uniform starts in [-1.5, 1.5]²."""
    g = torch.Generator().manual_seed(seed)
    x = 3 * torch.rand(n_samples, 2, generator=g, dtype=F64) - 1.5  # (B, 2)
    for _ in range(300):
        x, _ = mala_step(x, log_prob, 0.15, g)  # the components overlap: chains cross
    return x


def _mixture_arguments(g: torch.Generator):
    """The project's mixture moved at random, as a log-density that counts its evaluations."""
    mixture = moved_mixture(MIXTURE, g)
    evaluations = [0]
    means, stds, log_w = mixture.means, mixture.stds, torch.log(mixture.weights)

    def log_prob(x):
        evaluations[0] += int(x.shape[0]) if x.dim() > 1 else 1
        d2 = ((x[:, None, :] - means.to(x.dtype)) ** 2).sum(-1)  # (B, K)
        s2 = stds.to(x.dtype) ** 2  # (K,)
        terms = log_w.to(x.dtype) - d2 / (2 * s2) - torch.log(2 * math.pi * s2)  # 2D Gaussians
        return torch.logsumexp(terms, dim=1)  # (B,)

    return (log_prob, N_SAMPLES, draw_int(g, 0, 2**20)), (mixture, evaluations)


SAMPLE_MIXTURE = ProjectGoal(
    name="sample_mixture",
    solution=sample_mixture,
    arguments=_mixture_arguments,
    judge=judge_mixture_samples,
    references=(ula_step, mala_step),
    refused=(
        (langevin.ula_step, "the library's ULA step: use your own (step 1)."),
        (langevin.mala_step, "the library's MALA step: use your own (step 2)."),
        (langevin.sample, "the library's Langevin sampler: run your own chains."),
        (mcmc.metropolis_hastings, "the library's Metropolis-Hastings sampler."),
        (
            GaussianMixture.sample,
            "exact samples of a mixture: the goal is the output of your MALA chains.",
        ),
    ),
)
check_sample_mixture = SAMPLE_MIXTURE.check

EXERCISES = [ULA_STEP, MALA_STEP]
GOALS = [SAMPLE_MIXTURE]
