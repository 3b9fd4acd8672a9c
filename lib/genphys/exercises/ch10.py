"""Exercises for chapter 10, {ref}`sec-langevin`: a ULA step, MALA's acceptance, the EBM loss, the replay buffer."""

from __future__ import annotations

import math

import torch

from ._feedback import Exercise, Mistake, StatisticalExercise, Stress, draw_float, draw_int

__all__ = [
    "EXERCISES",
    "StatisticalExercise",
    "check_contrastive_loss",
    "check_mala_log_acceptance",
    "check_replay_starts",
    "check_ula_step",
    "contrastive_loss",
    "mala_log_acceptance",
    "replay_starts",
    "ula_step",
]


F64 = torch.float64


# ------------------------------------------------------------------------ ULA
def ula_step(x, grad_log_prob, step_size, generator):
    """x' = x + eta grad log p(x) + sqrt(2 eta) xi, with xi = torch.randn(x.shape, generator=generator)."""
    xi = torch.randn(x.shape, generator=generator, dtype=x.dtype)  # (B, D)
    return x + step_size * grad_log_prob(x) + math.sqrt(2.0 * step_size) * xi


def _gaussian_score(x):
    return -x / 0.5  # N(0, 0.5 I)


def _double_well_score(x):
    return -8.0 * x * (x**2 - 1.0)  # log p = -2 (x^2 - 1)^2


def _ring_score(x):
    from ..mixtures import ring

    return ring().grad_log_prob(x)


def _ula_cases():
    g = torch.Generator().manual_seed(80)
    cases = []
    for score, dim, eta in (
        (_gaussian_score, 3, 0.1),
        (_double_well_score, 1, 0.02),
        (_ring_score, 2, 0.05),
    ):
        x = torch.randn(7, dim, generator=g, dtype=torch.float64)
        cases.append((x, score, eta, torch.Generator().manual_seed(len(cases) + 81)))
    return cases


_SCORES = (_gaussian_score, _double_well_score, _ring_score)


def _ula_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        k = draw_int(g, 0, 2)
        dim = 2 if k == 2 else draw_int(g, 1, 5)
        x = draw_float(g, 0.1, 3.0) * torch.randn(draw_int(g, 1, 20), dim, generator=g, dtype=F64)
        eta = draw_float(g, 1e-3, 0.3)
        cases.append((x, _SCORES[k], eta, torch.Generator().manual_seed(draw_int(g, 0, 2**30))))
    return cases


def _ula_stress():
    g = torch.Generator().manual_seed(800)
    far = 30.0 + torch.randn(6, 1, generator=g, dtype=F64)  # the double well's drift is ~2e5
    many = torch.randn(20_000, 8, generator=g, dtype=F64)
    single = torch.randn(5, 3, generator=g).to(torch.float32)
    return [
        Stress(
            "far out on the double well, gradients of about 2·10⁵, eta = 10⁻⁶",
            (far, _double_well_score, 1e-6, torch.Generator().manual_seed(801)),
        ),
        Stress(
            "20000 chains in 8 dimensions",
            (many, _gaussian_score, 0.05, torch.Generator().manual_seed(802)),
        ),
        Stress(
            "float32 chains: the noise is drawn in the dtype of x",
            (single, _gaussian_score, 0.1, torch.Generator().manual_seed(803)),
            "Draw the noise as torch.randn(x.shape, generator=generator, dtype=x.dtype).",
        ),
    ]


def _ula_variance_test(student, seed):
    """ULA on N(0, 1) with eta = 0.2 has stationary variance 1 / (1 - 0.1) = 1.111 (eq-ula-variance)."""
    g = torch.Generator().manual_seed(seed)
    n, eta = 20_000, 0.2
    x = torch.zeros(n, 1, dtype=torch.float64)
    for _ in range(80):  # the start is forgotten as 0.8**80 ~ 2e-8
        x = student(x, lambda y: -y, eta, g)
    exact = 1.0 / (1.0 - eta / 2.0)
    se = exact * math.sqrt(2.0 / (n - 1))  # standard error of a Gaussian sample variance
    var = float(x.var())
    if abs(var - exact) > 5 * se:
        return (
            f"With fresh random numbers (seed {seed}) your chains have variance {var:.4f}; ULA "
            f"with eta = 0.2 on N(0, 1) must give {exact:.4f} ± {se:.4f}. Does your function "
            "draw its noise from the generator it is given?"
        )
    return None


ULA_STEP = StatisticalExercise(
    name="ula_step",
    forbidden_calls=("genphys.langevin.ula_step",),
    solution=ula_step,
    cases=_ula_cases,
    random_cases=_ula_random,
    stress_cases=_ula_stress,
    mistakes=(
        Mistake(
            lambda x, s, eta, g: (
                x + eta * s(x) + math.sqrt(eta) * torch.randn(x.shape, generator=g, dtype=x.dtype)
            ),
            "the noise has variance 2 eta, so its standard deviation is sqrt(2 eta), not "
            "sqrt(eta): with sqrt(eta) the chain samples p at temperature 1/2.",
        ),
        Mistake(
            lambda x, s, eta, g: (
                x
                - eta * s(x)
                + math.sqrt(2 * eta) * torch.randn(x.shape, generator=g, dtype=x.dtype)
            ),
            "the drift climbs the log-density: x + eta ∇log p(x), which is x - eta ∇E(x). "
            "With a minus sign the chain runs away from the modes.",
        ),
        Mistake(
            lambda x, s, eta, g: x + eta * s(x),
            "the noise is missing: without it the step is gradient ascent and every chain "
            "ends at a mode. Add sqrt(2 eta) * torch.randn(x.shape, generator=generator).",
        ),
        Mistake(
            lambda x, s, eta, g: (
                x + eta * s(x) + 2 * eta * torch.randn(x.shape, generator=g, dtype=x.dtype)
            ),
            "the noise's standard deviation is sqrt(2 eta), not 2 eta (2 eta is its variance).",
        ),
        Mistake(
            lambda x, s, eta, g: (
                x
                + 0.5 * eta * s(x)
                + math.sqrt(eta) * torch.randn(x.shape, generator=g, dtype=x.dtype)
            ),
            "that is the convention with step eta/2 (drift eta/2 ∇log p, noise sqrt(eta)); "
            "this book writes x + eta ∇log p(x) + sqrt(2 eta) xi, eq. (eq-ula).",
        ),
    ),
    rtol=1e-12,
    atol=1e-12,
    statistic=_ula_variance_test,
)
check_ula_step = ULA_STEP.check


# --------------------------------------------------------------------- MALA
def mala_log_acceptance(x, x_prop, log_p, log_p_prop, grad, grad_prop, step_size):
    """log a = min(0, log p(x') - log p(x) + log q(x | x') - log q(x' | x)), all in log space."""
    forward = -((x_prop - x - step_size * grad) ** 2).sum(1) / (4 * step_size)  # log q(x'|x)
    backward = -((x - x_prop - step_size * grad_prop) ** 2).sum(1) / (4 * step_size)  # log q(x|x')
    return torch.clamp(log_p_prop - log_p + backward - forward, max=0.0)


def _mala_cases():
    g = torch.Generator().manual_seed(85)
    cases = []
    for n, dim, eta, scale in ((9, 2, 0.1, 1.0), (6, 3, 0.5, 2.0)):
        x, x_prop, grad, grad_prop = (
            scale * torch.randn(n, dim, generator=g, dtype=torch.float64) for _ in range(4)
        )
        log_p, log_p_prop = (torch.randn(n, generator=g, dtype=torch.float64) for _ in range(2))
        cases.append((x, x_prop, log_p, log_p_prop, grad, grad_prop, eta))
    # adversarial: far-apart points, large gradients, a proposal deep in the tail
    x = torch.tensor([[0.0, 0.0], [1.0, -1.0], [2.0, 0.5]], dtype=torch.float64)
    x_prop = torch.tensor([[300.0, 0.0], [1.2, -1.1], [-40.0, 8.0]], dtype=torch.float64)
    grad = torch.tensor([[1e3, 0.0], [0.5, 0.0], [-200.0, 40.0]], dtype=torch.float64)
    grad_prop = torch.tensor([[-1e3, 0.0], [-0.3, 0.2], [500.0, -90.0]], dtype=torch.float64)
    log_p = torch.tensor([0.0, -1.0, -2.0], dtype=torch.float64)
    log_p_prop = torch.tensor([-5e4, -0.5, -3e3], dtype=torch.float64)
    cases.append((x, x_prop, log_p, log_p_prop, grad, grad_prop, 0.1))
    return cases


def _mala_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n, dim = draw_int(g, 1, 15), draw_int(g, 1, 6)
        scale, eta = draw_float(g, 0.1, 3.0), draw_float(g, 0.01, 1.0)
        x, x_prop, grad, grad_prop = (
            scale * torch.randn(n, dim, generator=g, dtype=F64) for _ in range(4)
        )
        log_p, log_p_prop = (
            draw_float(g, 0.5, 20.0) * torch.randn(n, generator=g, dtype=F64) for _ in range(2)
        )
        cases.append((x, x_prop, log_p, log_p_prop, grad, grad_prop, eta))
    return cases


def _mala_stress():
    g = torch.Generator().manual_seed(850)
    n, dim = 8, 4
    x = torch.randn(n, dim, generator=g, dtype=F64)
    far = x + 1e3 * torch.randn(n, dim, generator=g, dtype=F64)  # proposals 1000 away
    grad, grad_prop = (1e4 * torch.randn(n, dim, generator=g, dtype=F64) for _ in range(2))
    log_p = torch.randn(n, generator=g, dtype=F64)
    log_p_prop = -1e5 * torch.rand(n, generator=g, dtype=F64)
    big = [torch.randn(50_000, 3, generator=g, dtype=F64) for _ in range(4)]
    big_log = [torch.randn(50_000, generator=g, dtype=F64) for _ in range(2)]
    # an uphill move that is far more likely than the current point: a log ratio of +1e4
    up = torch.zeros(2, 2, dtype=F64)
    return [
        Stress(
            "proposals 1000 away with gradients of 10⁴: log ratios of about -10⁸",
            (x, far, log_p, log_p_prop, grad, grad_prop, 0.1),
            "Stay in log space: exp of the log ratio underflows to 0, and log(0) = -inf.",
        ),
        Stress(
            "a log ratio of +10⁴: exp overflows, the acceptance is exactly 1",
            (
                up,
                up + 1.0,
                torch.zeros(2, dtype=F64),
                torch.full((2,), 1e4, dtype=F64),
                up,
                up,
                0.5,
            ),
            "Clamp the log ratio at 0 rather than exponentiating it.",
        ),
        Stress(
            "50000 chains in 3 dimensions",
            (big[0], big[1], big_log[0], big_log[1], big[2], big[3], 0.2),
        ),
    ]


def _log_q(x_to, x_from, grad_from, eta, variance):
    return -((x_to - x_from - eta * grad_from) ** 2).sum(1) / (2 * variance)


MALA_LOG_ACCEPTANCE = Exercise(
    name="mala_log_acceptance",
    forbidden_calls=(
        "genphys.langevin.mala_log_acceptance",
        "genphys.langevin.proposal_log_density",
    ),
    solution=mala_log_acceptance,
    cases=_mala_cases,
    random_cases=_mala_random,
    stress_cases=_mala_stress,
    mistakes=(
        Mistake(
            lambda x, xp, lp, lpp, gr, grp, eta: torch.clamp(lpp - lp, max=0.0),
            "the proposal-density correction is missing: the Langevin proposal is not "
            "symmetric (it is centred at x + eta ∇log p(x)), so add log q(x | x') - log q(x' | x).",
        ),
        Mistake(
            lambda x, xp, lp, lpp, gr, grp, eta: torch.clamp(
                lpp - lp + _log_q(xp, x, gr, eta, 2 * eta) - _log_q(x, xp, grp, eta, 2 * eta),
                max=0.0,
            ),
            "the correction is upside down: the ratio is q(x | x') / q(x' | x), the probability "
            "of proposing the way BACK over that of the move made.",
        ),
        Mistake(
            lambda x, xp, lp, lpp, gr, grp, eta: torch.clamp(
                lpp - lp + _log_q(x, xp, grp, eta, eta) - _log_q(xp, x, gr, eta, eta), max=0.0
            ),
            "the proposal has variance 2 eta (noise sqrt(2 eta)), so log q = -|x' - x - eta "
            "∇log p(x)|² / (4 eta), not / (2 eta).",
        ),
        Mistake(
            lambda x, xp, lp, lpp, gr, grp, eta: torch.clamp(
                lpp - lp + _log_q(x, xp, gr, eta, 2 * eta) - _log_q(xp, x, gr, eta, 2 * eta),
                max=0.0,
            ),
            "the reverse proposal q(x | x') starts from x', so its mean uses the gradient at "
            "x', grad_prop, not the gradient at x.",
        ),
        Mistake(
            lambda x, xp, lp, lpp, gr, grp, eta: (
                lpp - lp + _log_q(x, xp, grp, eta, 2 * eta) - _log_q(xp, x, gr, eta, 2 * eta)
            ),
            "a probability is at most 1: return min(0, log ratio), the log of min(1, ratio).",
        ),
        Mistake(
            lambda x, xp, lp, lpp, gr, grp, eta: torch.log(
                torch.clamp(
                    torch.exp(
                        lpp
                        - lp
                        + _log_q(x, xp, grp, eta, 2 * eta)
                        - _log_q(xp, x, gr, eta, 2 * eta)
                    ),
                    max=1.0,
                )
            ),
            "stay in log space: for a far-away proposal the ratio is exp(-50 000), which "
            "underflows to 0, and log(0) = -inf. Compute min(0, log ratio) directly.",
        ),
    ),
    rtol=1e-10,
    atol=1e-9,
)
check_mala_log_acceptance = MALA_LOG_ACCEPTANCE.check


# ------------------------------------------------------------ the EBM loss
def contrastive_loss(energy_real, energy_fake, alpha):
    """mean E(data) - mean E(samples) + alpha (mean E(data)^2 + mean E(samples)^2)."""
    return (
        energy_real.mean()
        - energy_fake.mean()
        + alpha * ((energy_real**2).mean() + (energy_fake**2).mean())
    )


def _loss_cases():
    g = torch.Generator().manual_seed(88)
    return [
        (
            torch.randn(10, generator=g, dtype=torch.float64),
            torch.randn(7, generator=g, dtype=torch.float64) + 2,
            alpha,
        )
        for alpha in (0.1, 1.0, 0.0)
    ]


def _loss_random(g: torch.Generator):
    return [
        (
            draw_float(g, 0.1, 5.0) * torch.randn(draw_int(g, 1, 30), generator=g, dtype=F64),
            draw_float(g, -3.0, 3.0)
            + draw_float(g, 0.1, 5.0) * torch.randn(draw_int(g, 1, 30), generator=g, dtype=F64),
            draw_float(g, 0.0, 2.0),
        )
        for _ in range(3)
    ]


def _loss_stress():
    g = torch.Generator().manual_seed(880)
    return [
        Stress(
            "one data point against 5000 samples: each term is a mean over its own batch",
            (torch.tensor([0.3], dtype=F64), 2 + torch.randn(5000, generator=g, dtype=F64), 0.5),
        ),
        Stress(
            "energies of order 10⁶ that drifted (alpha = 10⁻³)",
            (
                1e6 + 1e3 * torch.randn(40, generator=g, dtype=F64),
                -1e6 + 1e3 * torch.randn(60, generator=g, dtype=F64),
                1e-3,
            ),
        ),
        Stress(
            "200000 energies in each batch",
            (
                torch.randn(200_000, generator=g, dtype=F64),
                torch.randn(200_000, generator=g, dtype=F64) - 1,
                0.1,
            ),
        ),
    ]


CONTRASTIVE_LOSS = Exercise(
    name="contrastive_loss",
    differentiable=True,
    forbidden_calls=("genphys.ebm.contrastive_loss",),
    solution=contrastive_loss,
    cases=_loss_cases,
    random_cases=_loss_random,
    stress_cases=_loss_stress,
    mistakes=(
        Mistake(
            lambda er, ef, a: ef.mean() - er.mean() + a * ((er**2).mean() + (ef**2).mean()),
            "the sign is flipped: minimising the loss must LOWER the energy of the data and "
            "raise that of the samples, so the loss is E(data) - E(samples).",
        ),
        Mistake(
            lambda er, ef, a: er.mean() - ef.mean() + a * (er.mean() ** 2 + ef.mean() ** 2),
            "the regulariser is the mean of the squared energies, mean(E²), not the square of "
            "the mean energy: it must keep every energy small, not only their average.",
        ),
        Mistake(
            lambda er, ef, a: er.mean() - ef.mean() + a * (er**2).mean(),
            "regularise both terms: alpha (mean E(data)² + mean E(samples)²).",
        ),
        Mistake(
            lambda er, ef, a: er.mean() - ef.mean(),
            "the regulariser alpha (mean E(data)² + mean E(samples)²) is missing; without it "
            "the energies can drift to large values and training becomes unstable.",
        ),
    ),
)
check_contrastive_loss = CONTRASTIVE_LOSS.check


# ------------------------------------------------------------ replay buffer
def replay_starts(buffer, n, reinit_fraction, generator):
    """Chain starts: buffer rows at random, each replaced by uniform noise in [-1, 1] with probability reinit_fraction."""
    index = torch.randint(buffer.shape[0], (n,), generator=generator)  # (n,)
    fresh = torch.rand(n, generator=generator) < reinit_fraction  # (n,)
    noise = 2 * torch.rand(n, buffer.shape[1], generator=generator, dtype=buffer.dtype) - 1
    return torch.where(fresh[:, None], noise, buffer[index])  # (n, D)


def _replay_cases():
    g = torch.Generator().manual_seed(89)
    cases = []
    for size, dim, n, f in ((50, 2, 40, 0.05), (20, 64, 30, 0.3), (10, 3, 25, 0.9)):
        buffer = 3 + torch.randn(size, dim, generator=g, dtype=torch.float64)
        cases.append((buffer, n, f, torch.Generator().manual_seed(90 + len(cases))))
    return cases


def _replay_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        size, dim = draw_int(g, 1, 40), draw_int(g, 1, 10)
        buffer = draw_float(g, -3.0, 3.0) + torch.randn(size, dim, generator=g, dtype=F64)
        f = draw_float(g, 0.05, 0.95)
        cases.append(
            (buffer, draw_int(g, 1, 50), f, torch.Generator().manual_seed(draw_int(g, 0, 2**30)))
        )
    return cases


def _replay_stress():
    g = torch.Generator().manual_seed(890)
    small = 5 + torch.randn(3, 2, generator=g, dtype=F64)
    return [
        Stress(
            "reinit_fraction = 0: every start comes from the buffer",
            (small, 20, 0.0, torch.Generator().manual_seed(891)),
        ),
        Stress(
            "reinit_fraction = 1: every start is fresh noise",
            (small, 20, 1.0, torch.Generator().manual_seed(892)),
        ),
        Stress(
            "a float32 buffer: the noise has the buffer's dtype",
            (small.to(torch.float32), 30, 0.5, torch.Generator().manual_seed(893)),
            "Draw the noise with dtype=buffer.dtype.",
        ),
        Stress(
            "5000 starts from a buffer of 3 rows in 64 dimensions",
            (
                5 + torch.randn(3, 64, generator=g, dtype=F64),
                5000,
                0.05,
                torch.Generator().manual_seed(894),
            ),
        ),
    ]


def _replay_wrong(flip=False, gaussian=False):
    def answer(buffer, n, f, g):
        index = torch.randint(buffer.shape[0], (n,), generator=g)
        u = torch.rand(n, generator=g)
        fresh = u > f if flip else u < f
        if gaussian:
            noise = torch.randn(n, buffer.shape[1], generator=g, dtype=buffer.dtype)
        else:
            noise = 2 * torch.rand(n, buffer.shape[1], generator=g, dtype=buffer.dtype) - 1
        return torch.where(fresh[:, None], noise, buffer[index])

    return answer


REPLAY_STARTS = Exercise(
    name="replay_starts",
    solution=replay_starts,
    cases=_replay_cases,
    random_cases=_replay_random,
    stress_cases=_replay_stress,
    mistakes=(
        Mistake(
            _replay_wrong(flip=True),
            "the test is the wrong way round: a chain restarts from noise when its uniform "
            "number is BELOW reinit_fraction, so that a fraction reinit_fraction restarts.",
        ),
        Mistake(
            _replay_wrong(gaussian=True),
            "the restarts are uniform in the box [-1, 1]: 2 * torch.rand(...) - 1, not "
            "Gaussian noise.",
        ),
        Mistake(
            lambda buffer, n, f, g: buffer[torch.randint(buffer.shape[0], (n,), generator=g)],
            "no chain restarts: replace each start by uniform noise with probability "
            "reinit_fraction, or the buffer never explores beyond where it already is.",
        ),
    ),
)
check_replay_starts = REPLAY_STARTS.check

EXERCISES = [ULA_STEP, MALA_LOG_ACCEPTANCE, CONTRASTIVE_LOSS, REPLAY_STARTS]
