"""Project: a VAE on the digits, {ref}`sec-training-vaes`: the ELBO loss, a training step, a trained model.

The student writes the negative ELBO of a Gaussian-encoder, Bernoulli-decoder VAE
(:class:`genphys.vae.VAE`) with a reparameterised draw from given noise, and a training
step. Both are checked on shared noise against the reference, which agrees with the
library's :meth:`genphys.vae.VAE.elbo` (tests/test_exercises.py). Last, the student's
``train_vae`` (a :class:`~genphys.exercises._feedback.Goal`) trains a VAE with their step, and
the model it returns must reach a stated IWAE bound on the held-out digits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.utils import parameters_to_vector

from .. import vae as vae_module
from ..data import load_digits_binary
from ..fitting import fit, minibatches
from ..vae import VAE
from ._feedback import Exercise, Mistake, Stress, draw_float, draw_int, garbage_gradients
from ._goals import ProjectGoal

__all__ = [
    "EXERCISES",
    "GOALS",
    "TARGET_IWAE",
    "check_negative_elbo",
    "check_train_vae",
    "check_training_step",
    "held_out_iwae",
    "judge_trained_vae",
    "negative_elbo",
    "train_vae",
    "training_step",
]

F64 = torch.float64

#: The stated target: mean IWAE bound (k = 100) on the 359 held-out digits, in nats.
TARGET_IWAE = -20.0
#: The reference's training: epochs, batch size, Adam's learning rate.
N_EPOCHS, BATCH_SIZE, LEARNING_RATE = 20, 64, 2e-3


# ------------------------------------------------------------------ the loss
def negative_elbo(model, x, eps):
    """-ELBO = mean over the batch of KL(q(h|x) || N(0, I)) - log p(x | h), h = m + e^{l/2} eps, Bernoulli p(x|h)."""
    mean, log_var = model.encode(x)  # (B, d), (B, d)
    h = mean + torch.exp(0.5 * log_var) * eps  # (B, d), the reparameterised draw
    logits = model.decode(h)  # (B, M)
    log_p_x = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)  # (B,)
    kl = 0.5 * (torch.exp(log_var) + mean**2 - 1.0 - log_var).sum(1)  # (B,)
    return (kl - log_p_x).mean()


def _model(g, n_features, n_latent, hidden, scale=1.0):
    model = VAE(n_features, n_latent, hidden, seed=draw_int(g, 0, 2**30))
    if scale != 1.0:
        with torch.no_grad():
            for p in model.decoder.parameters():
                p.mul_(scale)
    return model


def _bits(g, n, m, p=0.4):
    return torch.bernoulli(torch.full((n, m), p, dtype=F64), generator=g)


def _loss_case(g, n, n_features, n_latent, hidden=(6,), scale=1.0):
    model = _model(g, n_features, n_latent, hidden, scale)
    x = _bits(g, n, n_features, draw_float(g, 0.2, 0.8))
    return model, x, torch.randn(n, n_latent, generator=g, dtype=F64)


def _loss_cases():
    g = torch.Generator().manual_seed(2001)
    return [
        _loss_case(g, 9, 5, 2),
        _loss_case(g, 4, 8, 3, hidden=()),
        _loss_case(g, 12, 6, 1, hidden=(4, 3)),
    ]


def _loss_random(g: torch.Generator):
    return [
        _loss_case(
            g,
            draw_int(g, 1, 20),
            draw_int(g, 1, 10),
            draw_int(g, 1, 4),
            hidden=tuple(draw_int(g, 1, 8) for _ in range(draw_int(g, 0, 2))),
        )
        for _ in range(3)
    ]


def _loss_stress():
    g = torch.Generator().manual_seed(2002)
    return [
        Stress(
            "decoder weights scaled by 300: logits of hundreds, sigmoid(f) rounds to 0 or 1",
            _loss_case(g, 10, 6, 2, scale=300.0),
            "log p(x | h) = x f - softplus(f) = -binary_cross_entropy_with_logits(f, x): "
            "computed from the logits f, never from sigmoid(f).",
        ),
        Stress("a batch of 3000 images of 64 pixels", _loss_case(g, 3000, 64, 4, hidden=(16,))),
        Stress("a single data point", _loss_case(g, 1, 7, 2)),
    ]


def _loss_wrong(kind):
    def answer(model, x, eps):
        mean, log_var = model.encode(x)
        if kind == "no noise":
            h = mean
        elif kind == "variance":
            h = mean + torch.exp(log_var) * eps
        else:
            h = mean + torch.exp(0.5 * log_var) * eps
        logits = model.decode(h)
        if kind == "squared error":
            log_p_x = -((x - torch.sigmoid(logits)) ** 2).sum(1)
        else:
            log_p_x = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
        one = 0.0 if kind == "kl constant" else 1.0
        kl = 0.5 * (torch.exp(log_var) + mean**2 - one - log_var).sum(1)
        if kind == "kl sign":
            kl = -kl
        if kind == "no kl":
            kl = torch.zeros_like(kl)
        loss = kl - log_p_x
        return loss.sum() if kind == "sum" else loss.mean()

    return answer


NEGATIVE_ELBO = Exercise(
    name="negative_elbo",
    differentiable=True,
    solution=negative_elbo,
    cases=_loss_cases,
    random_cases=_loss_random,
    stress_cases=_loss_stress,
    mistakes=(
        Mistake(
            _loss_wrong("kl sign"),
            "the KL term is added to the loss: -ELBO = KL(q || p(h)) - E_q[log p(x | h)]; "
            "with the sign flipped the encoder is pushed away from the prior.",
        ),
        Mistake(
            _loss_wrong("no kl"),
            "the KL term is missing: without it the model is an autoencoder with noise, and "
            "the prior N(0, I) says nothing about the codes.",
        ),
        Mistake(
            _loss_wrong("variance"),
            "log_var is the log of the variance, so the standard deviation is "
            "exp(0.5 * log_var), not exp(log_var).",
        ),
        Mistake(
            _loss_wrong("no noise"),
            "draw the code with the given noise, h = mean + exp(0.5 * log_var) * eps; the "
            "mean alone is not a sample of q(h | x).",
        ),
        Mistake(
            _loss_wrong("kl constant"),
            "KL(N(m, s^2) || N(0, 1)) = (s^2 + m^2 - 1 - log s^2)/2 per latent dimension: "
            "the -1 makes it 0 when q is the prior.",
        ),
        Mistake(
            _loss_wrong("squared error"),
            "the decoder is Bernoulli: log p(x | h) = -binary_cross_entropy_with_logits(f, x) "
            "summed over the pixels, not a squared error.",
        ),
        Mistake(
            _loss_wrong("sum"),
            "average over the images of the batch (the loss per image), not the sum: the "
            "learning rate should not depend on the batch size.",
        ),
    ),
    rtol=1e-9,
    atol=1e-10,
)
check_negative_elbo = NEGATIVE_ELBO.check


# ------------------------------------------------------------ training step
def training_step(model, optimizer, x, eps):
    """One step on the negative ELBO: zero_grad, backward, step; returns (loss before, parameters after)."""
    loss = negative_elbo(model, x, eps)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach(), parameters_to_vector(model.parameters()).detach()


def _step_case(g, n, n_features, n_latent, optimizer="adam", lr=1e-2, scale=1.0):
    model, x, eps = _loss_case(g, n, n_features, n_latent, scale=scale)
    opt = (
        torch.optim.Adam(model.parameters(), lr=lr)
        if optimizer == "adam"
        else torch.optim.SGD(model.parameters(), lr=lr)
    )
    return model, opt, x, eps


def _step_cases():
    g = torch.Generator().manual_seed(2003)
    return [
        _step_case(g, 8, 6, 2, optimizer="sgd", lr=0.1),
        _step_case(g, 5, 4, 1),
        _step_case(g, 11, 7, 3, optimizer="sgd", lr=0.03),
    ]


def _step_random(g: torch.Generator):
    return [
        _step_case(
            g,
            draw_int(g, 1, 20),
            draw_int(g, 1, 10),
            draw_int(g, 1, 4),
            optimizer=("adam", "sgd")[draw_int(g, 0, 1)],
            lr=draw_float(g, 1e-3, 0.1),
        )
        for _ in range(3)
    ]


def _step_stress():
    g = torch.Generator().manual_seed(2004)
    return [
        Stress(
            "decoder weights scaled by 300: logits of hundreds",
            _step_case(g, 6, 5, 2, optimizer="sgd", lr=1e-4, scale=300.0),
            "Compute log p(x | h) from the logits with binary_cross_entropy_with_logits.",
        ),
        Stress("a batch of 2000 images", _step_case(g, 2000, 64, 4, optimizer="sgd", lr=0.01)),
    ]


def _step_wrong(kind):
    def answer(model, optimizer, x, eps):
        loss = negative_elbo(model, x, eps)
        if kind == "sum":
            loss = loss * x.shape[0]
        optimizer.zero_grad()
        (-loss if kind == "ascent" else loss).backward()
        if kind != "no step":
            optimizer.step()
        return loss.detach(), parameters_to_vector(model.parameters()).detach()

    return answer


TRAINING_STEP = Exercise(
    prepare=garbage_gradients,
    name="training_step",
    solution=training_step,
    cases=_step_cases,
    random_cases=_step_random,
    stress_cases=_step_stress,
    mistakes=(
        Mistake(
            _step_wrong("ascent"),
            "the step must lower the negative ELBO: call loss.backward() on -ELBO itself and "
            "let the optimizer minimise it.",
        ),
        Mistake(
            _step_wrong("no step"),
            "the parameters did not change: call optimizer.step() after loss.backward().",
        ),
        Mistake(
            _step_wrong("sum"),
            "the loss is the mean over the batch (your negative_elbo), not the sum.",
        ),
    ),
    rtol=1e-8,
    atol=1e-10,
)
check_training_step = TRAINING_STEP.check


# --------------------------------------------------------- the trained model
def held_out_iwae(model, k: int = 100, seed: int = 5, order=None) -> tuple[float, float]:
    """Mean IWAE bound (k samples) on the held-out digits (pixels in ``order``), and its standard error over the images."""
    x_test = load_digits_binary(dtype=next(model.parameters()).dtype).x_test  # (359, 64)
    if order is not None:
        x_test = x_test[:, order]
    bound = model.iwae_bound(x_test, k=k, generator=torch.Generator().manual_seed(seed))  # (n,)
    return float(bound.mean()), float(bound.std() / bound.shape[0] ** 0.5)


def train_vae(x_train, seed):
    """A VAE(64, 8, hidden=(128,)) in float32 trained with :func:`training_step` and Adam by :func:`genphys.fitting.fit`."""
    model = VAE(64, 8, (128,), seed=seed, dtype=torch.float32)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    g = torch.Generator().manual_seed(seed)

    def step(batch):
        eps = torch.randn(batch.shape[0], 8, generator=g)  # (B, 8): one draw per image
        loss, _ = training_step(model, optimizer, batch, eps)
        return {"loss": loss}

    fit(
        step,
        lambda epoch: minibatches(x_train, BATCH_SIZE, generator=g),
        n_epochs=N_EPOCHS,
        parameters=model,
    )
    return model


def _train_arguments(g: torch.Generator):
    """The training images with their pixels in a hidden order, and a hidden seed.

    A VAE with dense layers is as easy to train on permuted pixels (its first and last layers
    permute with them), but a model trained before the check does not fit them.
    """
    order = torch.randperm(64, generator=g)  # (64,)
    x_train = load_digits_binary(dtype=torch.float32).x_train
    rows = torch.randperm(x_train.shape[0], generator=g)  # and a hidden order of the images
    x_train = x_train[rows][:, order]  # (1438, 64)
    return (x_train, draw_int(g, 0, 2**20)), order


def judge_trained_vae(model, order=None) -> tuple[bool, str]:
    """Whether ``model``, a VAE on the 64 pixels (in ``order``), reaches :data:`TARGET_IWAE` on the held-out digits."""
    if not isinstance(model, VAE) or model.n_features != 64:
        raise TypeError(
            f"model must be a genphys.vae.VAE with 64 features. Got {type(model).__name__} instead."
        )
    bound, se = held_out_iwae(model, order=order)
    verdict = "reaches" if bound >= TARGET_IWAE else "falls short of"
    return bound >= TARGET_IWAE, (
        f"IWAE bound (k = 100) on the 359 held-out digits {bound:.2f} ± {se:.2f} nats per "
        f"image (standard error over the images), which {verdict} the target {TARGET_IWAE}. "
        "The reference training reaches -18.68 to -18.89 over seeds 0, 1, 2 (measured on this "
        "machine), a margin of more than 1 nat, five standard errors."
    )


TRAIN_VAE = ProjectGoal(
    name="train_vae",
    solution=train_vae,
    arguments=_train_arguments,
    judge=judge_trained_vae,
    references=(negative_elbo, training_step),
    refused=(
        (
            vae_module.train_vae,
            "the library's VAE trainer: the goal is your own loop with your training_step.",
        ),
    ),
)
check_train_vae = TRAIN_VAE.check

EXERCISES = [NEGATIVE_ELBO, TRAINING_STEP]
GOALS = [TRAIN_VAE]
