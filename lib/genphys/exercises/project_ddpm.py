"""Project: a DDPM on a 2D mixture, {ref}`sec-training-diffusion`: training step, sampler, trained model.

The student writes the noise-prediction training step and the ancestral sampler. The
sampler is checked on shared noise against the reference, with the *exact* noise
predictor of a Gaussian mixture (:func:`genphys.diffusion.mixture_score` and
:func:`genphys.diffusion.eps_from_score`) as the model, and then with fresh randomness:
its samples must be as close to the mixture as exact samples are, on a grid
(:mod:`genphys.grid`). Last, the student's ``train_and_sample`` (a
:class:`~genphys.exercises._feedback.Goal`) trains a small network with their step and samples
it with their sampler; the samples must reach a stated Jensen–Shannon divergence to the data.
"""

from __future__ import annotations

import functools

import torch
from torch.nn.utils import parameters_to_vector

from .. import diffusion_samplers
from ..diffusion import (
    MLPNoisePredictor,
    cosine_schedule,
    eps_from_score,
    mixture_score,
    simple_loss,
    train_diffusion,
)
from ..fitting import fit, minibatches
from ..grid import Grid, js_divergence
from ..mixtures import GaussianMixture
from ._feedback import (
    Exercise,
    Mistake,
    StatisticalExercise,
    Stress,
    draw_float,
    draw_int,
    garbage_gradients,
)
from ._goals import ProjectGoal, memorisation, moved_mixture

__all__ = [
    "BETAS",
    "EXERCISES",
    "GOALS",
    "MIXTURE",
    "TARGET_JSD",
    "check_ddpm_sample",
    "check_train_and_sample",
    "check_training_step",
    "ddpm_sample",
    "judge_trained_samples",
    "mixture_divergence",
    "train_and_sample",
    "training_step",
]

F64 = torch.float64

#: The project's data: three separated Gaussians in 2D.
MIXTURE = GaussianMixture([0.4, 0.3, 0.3], [[-1.5, -0.5], [1.5, -0.5], [0.0, 1.5]], [0.4, 0.4, 0.4])
#: The project's schedule: T = 100 cosine steps.
BETAS = cosine_schedule(100)
GRID = Grid(-4.0, 4.0, 32)
N_SAMPLES = 4000
#: The stated target of the trained model, and what the reference reaches (3 seeds).
# measured for the reference on 8 hidden seeds: 0.031 to 0.061 (median 0.039)
TARGET_JSD = 0.08


def _short(T, top=0.5):
    """A short linear schedule from 10⁻³ to ``top`` for the test cases (not fully noising)."""
    return torch.linspace(1e-3, top, T, dtype=F64)


def _alpha_bar(betas):
    return torch.cumprod(1 - betas, 0)  # (T,)


# -------------------------------------------------------------- training step
def training_step(model, optimizer, x0, t, eps, betas):
    """Loss = mean |eps - eps_theta(sqrt(ab_t) x0 + sqrt(1 - ab_t) eps, t)|^2, one optimizer step; returns (loss, parameters after)."""
    ab = torch.cumprod(1 - betas, 0)[t - 1].to(x0.dtype)[:, None]  # (B, 1): t runs from 1 to T
    x_t = torch.sqrt(ab) * x0 + torch.sqrt(1 - ab) * eps  # (B, D)
    loss = ((eps - model(x_t, t)) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach(), parameters_to_vector(model.parameters()).detach()


def _net(seed, T, hidden=8):
    return MLPNoisePredictor(2, T, hidden=hidden, n_layers=1, embedding_dim=4, seed=seed, dtype=F64)


def _train_case(g, n, T, optimizer="adam", lr=1e-2, scale=1.0, t=None):
    model = _net(draw_int(g, 0, 2**30), T)
    opt = (
        torch.optim.Adam(model.parameters(), lr=lr)
        if optimizer == "adam"
        else torch.optim.SGD(model.parameters(), lr=lr)
    )
    x0 = scale * torch.randn(n, 2, generator=g, dtype=F64)
    t = torch.randint(1, T + 1, (n,), generator=g) if t is None else torch.full((n,), t)
    eps = torch.randn(n, 2, generator=g, dtype=F64)
    betas = cosine_schedule(T) if T % 2 else _short(T)
    return (model, opt, x0, t, eps, betas)


def _train_cases():
    g = torch.Generator().manual_seed(1901)
    return [
        _train_case(g, 16, 20),
        _train_case(g, 9, 31, optimizer="sgd", lr=0.1),
        _train_case(g, 5, 50, lr=1e-3, scale=3.0),
    ]


def _train_random(g: torch.Generator):
    return [
        _train_case(
            g,
            draw_int(g, 1, 40),
            draw_int(g, 2, 60),
            optimizer=("adam", "sgd")[draw_int(g, 0, 1)],
            lr=draw_float(g, 1e-3, 0.1),
            scale=draw_float(g, 0.3, 3.0),
        )
        for _ in range(3)
    ]


def _train_stress():
    g = torch.Generator().manual_seed(1902)
    return [
        Stress("every row at t = T, where x_t is almost pure noise", _train_case(g, 8, 40, t=40)),
        Stress(
            "every row at t = 1: t counts from 1, so alpha_bar_t is alpha_bar[t - 1]",
            _train_case(g, 8, 40, t=1),
        ),
        Stress("a batch of 5000 points", _train_case(g, 5000, 30, optimizer="sgd", lr=0.05)),
    ]


def _train_wrong(kind):
    def answer(model, optimizer, x0, t, eps, betas):
        ab_all = _alpha_bar(betas)
        ab = (ab_all[t] if kind == "index" else ab_all[t - 1]).to(x0.dtype)[:, None]
        if kind == "beta":
            ab = betas[t - 1].to(x0.dtype)[:, None]
        if kind == "variance":
            x_t = torch.sqrt(ab) * x0 + (1 - ab) * eps
        else:
            x_t = torch.sqrt(ab) * x0 + torch.sqrt(1 - ab) * eps
        if kind == "x0":
            loss = ((x0 - model(x_t, t)) ** 2).mean()
        else:
            loss = ((eps - model(x_t, t)) ** 2).mean()
        if kind == "sum":
            loss = ((eps - model(x_t, t)) ** 2).sum(1).mean()
        optimizer.zero_grad()
        (-loss if kind == "ascent" else loss).backward()
        optimizer.step()
        return loss.detach(), parameters_to_vector(model.parameters()).detach()

    return answer


TRAINING_STEP = Exercise(
    prepare=garbage_gradients,
    name="training_step",
    solution=training_step,
    cases=_train_cases,
    random_cases=_train_random,
    stress_cases=_train_stress,
    mistakes=(
        Mistake(
            _train_wrong("ascent"),
            "the step climbs the loss: call loss.backward() and let the optimizer minimise it.",
        ),
        Mistake(
            _train_wrong("x0"),
            "the network predicts the noise eps that made x_t, not the clean point x_0.",
        ),
        Mistake(
            _train_wrong("variance"),
            "the noise is scaled by the standard deviation sqrt(1 - alpha_bar_t), not by the "
            "variance 1 - alpha_bar_t.",
        ),
        Mistake(
            _train_wrong("beta"),
            "x_t is drawn from q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I): "
            "use the cumulative product alpha_bar_t = prod_{s<=t}(1 - beta_s), not beta_t.",
        ),
        Mistake(
            _train_wrong("sum"),
            "the loss is the mean over every coordinate, ((eps - eps_theta)**2).mean(), not the "
            "sum over the coordinates of a point.",
        ),
    ),
    rtol=1e-8,
    atol=1e-10,
)
check_training_step = TRAINING_STEP.check


# ------------------------------------------------------------------- sampler
def ddpm_sample(eps_model, betas, x_T, generator):
    """x_{t-1} = (x_t - beta_t / sqrt(1 - ab_t) eps_theta) / sqrt(1 - beta_t) + sigma_t z, sigma_t^2 = beta~_t; no noise at t = 1."""
    ab = torch.cumprod(1 - betas, 0)  # (T,): alpha_bar_t = ab[t - 1]
    x = x_T
    for t in range(betas.shape[0], 0, -1):
        beta, ab_t = betas[t - 1], ab[t - 1]
        with torch.no_grad():
            eps = eps_model(x, t)  # (B, D)
        mean = (x - beta / torch.sqrt(1 - ab_t) * eps) / torch.sqrt(1 - beta)  # (B, D)
        if t > 1:
            variance = (1 - ab[t - 2]) / (1 - ab_t) * beta  # beta~_t
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
            x = mean + torch.sqrt(variance) * z
        else:
            x = mean
    return x


def _exact_eps(betas):
    return eps_from_score(mixture_score(MIXTURE, betas), betas)


def _toy_eps(x, t):
    return torch.tanh(x) * (1 + 0.01 * t)


def _sample_cases():
    g = torch.Generator().manual_seed(1903)
    cases = []
    for n, betas, model in (
        (7, cosine_schedule(10), None),
        (5, _short(20, 0.3), None),
        (6, _short(8), _toy_eps),
    ):
        model = _exact_eps(betas) if model is None else model
        x_T = torch.randn(n, 2, generator=g, dtype=F64)
        cases.append((model, betas, x_T, torch.Generator().manual_seed(1904 + len(cases))))
    return cases


def _sample_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        T = draw_int(g, 2, 30)
        betas = _short(T, draw_float(g, 0.05, 0.9))
        model = _exact_eps(betas) if draw_int(g, 0, 1) else _toy_eps
        x_T = torch.randn(draw_int(g, 1, 20), 2, generator=g, dtype=F64)
        cases.append((model, betas, x_T, torch.Generator().manual_seed(draw_int(g, 0, 2**30))))
    return cases


def _sample_stress():
    g = torch.Generator().manual_seed(1905)
    one = _short(1)
    return [
        Stress(
            "a single step, T = 1: no noise is added at t = 1",
            (
                _exact_eps(one),
                one,
                torch.randn(4, 2, generator=g, dtype=F64),
                torch.Generator().manual_seed(1907),
            ),
            "At t = 1 return the mean; there is no beta~_1 noise to add (alpha_bar_0 = 1).",
        ),
        Stress(
            "5000 samples with the exact noise predictor, T = 40",
            (
                _exact_eps(cosine_schedule(40)),
                cosine_schedule(40),
                torch.randn(5000, 2, generator=g, dtype=F64),
                torch.Generator().manual_seed(1906),
            ),
        ),
    ]


def _sample_wrong(kind):
    def answer(eps_model, betas, x_T, g):
        ab = _alpha_bar(betas)
        x = x_T
        for t in range(betas.shape[0], 0, -1):
            beta, ab_t = betas[t - 1], ab[t - 1]
            with torch.no_grad():
                eps = eps_model(x, t)
            if kind == "mean":
                mean = (x - torch.sqrt(1 - ab_t) * eps) / torch.sqrt(ab_t)
            else:
                mean = (x - beta / torch.sqrt(1 - ab_t) * eps) / torch.sqrt(1 - beta)
            last = t == 1 and kind != "last noise"
            if kind == "no noise" or last:
                x = mean
            else:
                if kind == "beta" or t == 1:
                    variance = beta  # at t = 1 the "last noise" mistake adds N(0, beta_1)
                else:
                    ab_prev = ab[t - 2] if t > 1 else torch.ones((), dtype=ab.dtype)
                    variance = (1 - ab_prev) / (1 - ab_t) * beta
                z = torch.randn(x.shape, generator=g, dtype=x.dtype)
                x = mean + torch.sqrt(variance) * z
        return x

    return answer


def _sample_floor_test(student, seed):
    """The student's sampler with the exact predictor: JSD within the exact samples' floor + 0.005."""
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn(N_SAMPLES, 2, generator=g, dtype=F64)
    samples = student(_exact_eps(BETAS), BETAS, x_T, g)
    jsd = mixture_divergence(samples)
    mean, sd = _exact_floor(N_SAMPLES)
    limit = mean + 5 * sd + 0.005
    if not jsd <= limit:
        return (
            f"With fresh random numbers (seed {seed}) and the exact noise predictor, your "
            f"{N_SAMPLES} samples are {jsd:.4f} nats (JSD) from the mixture; exact samples are "
            f"{mean:.4f} ± {sd:.4f} away, and the limit is {limit:.4f} (5 standard deviations, "
            "plus 0.005 for the T = 100 discretisation). Does your function draw its noise "
            "from the generator it is given?"
        )
    return None


DDPM_SAMPLE = StatisticalExercise(
    name="ddpm_sample",
    forbidden_calls=(
        "genphys.diffusion_samplers.ddpm_sample",
        "genphys.diffusion.reverse_mean",
    ),
    solution=ddpm_sample,
    cases=_sample_cases,
    random_cases=_sample_random,
    stress_cases=_sample_stress,
    mistakes=(
        Mistake(
            _sample_wrong("no noise"),
            "add sigma_t z at every step t > 1: without noise the reverse chain collapses "
            "towards the modes instead of sampling the data distribution.",
        ),
        Mistake(
            _sample_wrong("last noise"),
            "the last step, t = 1, returns the mean: beta~_1 = 0, there is no noise to add.",
        ),
        Mistake(
            _sample_wrong("beta"),
            "this project uses the posterior variance beta~_t = (1 - alpha_bar_{t-1}) / "
            "(1 - alpha_bar_t) beta_t, not beta_t (both are valid choices; the check fixes one).",
        ),
        Mistake(
            _sample_wrong("mean"),
            "that is the prediction of x_0, (x_t - sqrt(1 - alpha_bar_t) eps) / "
            "sqrt(alpha_bar_t), not the mean of x_{t-1}: (x_t - beta_t / sqrt(1 - alpha_bar_t) "
            "eps) / sqrt(1 - beta_t).",
        ),
    ),
    rtol=1e-9,
    atol=1e-10,
    statistic=_sample_floor_test,
    claim=(
        "with the exact noise predictor and fresh randomness, samples the mixture as "
        "closely as exact samples do"
    ),
)
check_ddpm_sample = DDPM_SAMPLE.check


# ------------------------------------------------------------ the trained model
def mixture_divergence(samples, mixture=MIXTURE) -> float:
    """JSD between the histogram of ``samples`` on :data:`GRID` (plus one cell outside) and the exact cell probabilities of ``mixture``."""
    counts, outside = GRID.histogram(samples)
    p = GRID.cell_probabilities(mixture.log_prob(GRID.points))
    q = torch.cat([counts, torch.tensor([outside], dtype=counts.dtype)])  # (cells + 1,)
    return js_divergence(torch.cat([p, torch.zeros(1, dtype=p.dtype)]), q)


@functools.cache
def _exact_floor(n: int) -> tuple[float, float]:
    """Mean and standard deviation of the JSD of n exact samples (20 seeds)."""
    values = torch.tensor(
        [mixture_divergence(MIXTURE.sample(n, seed=s)) for s in range(20)], dtype=F64
    )
    return float(values.mean()), float(values.std())


DIVERGED = (
    "Your samples contain NaN or infinity: training diverged (the loss grew without bound) or "
    "the sampler divides by zero. Print the loss per epoch: if it grows, check that the step "
    "descends the loss and that the learning rate is 3e-3; if it stays small, check the "
    "sampler's sqrt(1 - alpha_bar_t) and that t runs from T down to 1."
)


#: The fewest calls of the student's training step the goal accepts (the page's training
#: makes 20 epochs x 32 batches = 640).
MIN_TRAINING_STEPS = 100


def judge_trained_samples(samples, context, steps=None) -> tuple[bool, str]:
    """Whether ``samples`` of shape (N_SAMPLES, 2) are within :data:`TARGET_JSD` of the hidden mixture, and not copies of the training set.

    ``context = (mixture, x0, fresh)``: the hidden mixture, the training data the student's
    function was given and fresh exact samples of the mixture (for the memorisation test).
    ``steps`` (when given) lists the calls of the student's ``training_step`` during the run.
    """
    mixture, x0, fresh = context
    if not isinstance(samples, torch.Tensor) or tuple(samples.shape) != (N_SAMPLES, 2):
        raise TypeError(
            f"samples must be a tensor of shape ({N_SAMPLES}, 2). Got "
            f"{type(samples).__name__} {tuple(getattr(samples, 'shape', ()))} instead."
        )
    samples = samples.detach().to(F64)
    if not bool(torch.isfinite(samples).all()):
        return False, DIVERGED
    copied = memorisation(samples, x0, fresh)
    if copied is not None:
        return False, "Not a trained model: " + copied
    jsd = mixture_divergence(samples, mixture)
    mean, _ = _exact_floor(N_SAMPLES)
    if jsd <= TARGET_JSD and steps is not None and len(steps) < MIN_TRAINING_STEPS:
        return False, (
            f"Your samples are {jsd:.4f} nats from the mixture, but your training_step ran "
            f"{len(steps)} times; the goal is a network trained with it (20 epochs of 32 "
            f"batches make 640 steps, at least {MIN_TRAINING_STEPS} are needed). Train with "
            "your own training_step from step 1, then sample the network with your ddpm_sample."
        )
    verdict = "below" if jsd <= TARGET_JSD else "above"
    return jsd <= TARGET_JSD, (
        f"JSD to the mixture {jsd:.4f} nats, {verdict} the target {TARGET_JSD}. Exact samples "
        f"are {mean:.4f} away; the reference training reaches 0.031 to 0.061 over eight hidden "
        "draws, so the target leaves a margin. Your samples are no copies of the training "
        "points (nearest-neighbour distances as for fresh samples)."
    )


def train(x0, n_epochs, seed):
    """Train the project's network (MLP, 64 wide, 3 layers, float32) with :func:`training_step` and Adam."""
    model = MLPNoisePredictor(2, BETAS.shape[0], hidden=64, n_layers=3, seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    betas = BETAS.float()

    def step(batch):
        t = torch.randint(1, betas.shape[0] + 1, (batch.shape[0],), generator=g)  # (B,)
        eps = torch.randn(batch.shape, generator=g)  # (B, 2)
        loss, _ = training_step(model, optimizer, batch, t, eps, betas)
        return {"loss": loss}

    return model, fit(
        step, lambda epoch: minibatches(x0, 256, generator=g), n_epochs=n_epochs, parameters=model
    )


def train_and_sample(x0, n_samples, seed):
    """Train the project's network on ``x0`` for 20 epochs (:func:`train`), then draw ``n_samples`` with :func:`ddpm_sample`."""
    model, _ = train(x0, 20, seed)

    def network(x, t):
        return model(x.float(), t).double()  # the sampler runs in float64

    g = torch.Generator().manual_seed(seed + 100)
    x_T = torch.randn(n_samples, 2, generator=g, dtype=F64)  # (n, 2)
    return ddpm_sample(network, BETAS, x_T, g)


def _train_arguments(g: torch.Generator):
    """8000 float32 training points of the project's mixture, moved at random, and a hidden seed."""
    mixture = moved_mixture(MIXTURE, g)
    x0 = mixture.sample(8000, generator=g).float()  # (8000, 2) training data
    fresh = mixture.sample(N_SAMPLES, generator=g)  # (N_SAMPLES, 2) for the memorisation test
    return (x0, N_SAMPLES, draw_int(g, 0, 2**20)), (mixture, x0, fresh)


DTYPE_HINT = (
    "the network is float32 (like the training data x0), while betas and the sampler are "
    "float64. In the training step cast alpha_bar_t to the data's dtype (`.to(x0.dtype)`), "
    "train on `x0.float()`, and run the network inside the sampler as "
    "`lambda x, t: model(x.float(), t).double()`."
)

TRAIN_AND_SAMPLE = ProjectGoal(
    name="train_and_sample",
    solution=train_and_sample,
    arguments=_train_arguments,
    judge=judge_trained_samples,
    references=(training_step, ddpm_sample),
    refused=(
        (diffusion_samplers.ddpm_sample, "the library's DDPM sampler: write your own (step 2)."),
        (diffusion_samplers.ddim_sample, "one of the library's diffusion samplers."),
        (diffusion_samplers.probability_flow_sample, "one of the library's diffusion samplers."),
        (train_diffusion, "the library's diffusion trainer: train with your own step 1."),
        (simple_loss, "the library's noise-prediction loss: use your own step 1."),
        (
            GaussianMixture.sample,
            "exact samples of a mixture: the goal is samples of your trained network.",
        ),
    ),
    error_hints=(("dtype", DTYPE_HINT), ("scalar type", DTYPE_HINT)),
    spy=("training_step", lambda arguments: None),
)
check_train_and_sample = TRAIN_AND_SAMPLE.check

EXERCISES = [TRAINING_STEP, DDPM_SAMPLE]
GOALS = [TRAIN_AND_SAMPLE]
