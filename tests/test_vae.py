"""Tests for genphys.vae: closed forms against oracles, estimators against closed forms.

Statistical tests state their tolerance as a multiple of a standard error (SE) that is
either derived in closed form or estimated from independent replicates; 5 SE puts the
chance of a false failure of one check near 6e-7 for Gaussian errors.
"""

from __future__ import annotations

import math

import pytest
import torch
from model_helpers import F64, gen, orthogonal_linear_model, random_linear_model

from genphys.fitting import History, TrainingDivergedError
from genphys.linear_gaussian import LinearGaussianModel
from genphys.seeding import make_generator
from genphys.vae import (
    VAE,
    estimate_kl_diagonal_gaussian_standard_normal,
    kl_diagonal_gaussian_standard_normal,
    log_mean_exp,
    sample_gradient_reparameterized,
    sample_gradient_score_function,
    train_vae,
)


def linear_vae(model: LinearGaussianModel, A=None, c=None, log_var=None) -> VAE:
    """A VAE whose decoder is the linear-Gaussian model and whose encoder is x -> A x + c.

    Without ``A``, ``c``, ``log_var`` the encoder is the exact posterior mean map with
    the log of the posterior's diagonal variances.
    """
    D, d = model.n_features, model.n_latent
    vae = VAE(D, d, hidden=(), decoder="gaussian", sigma2=model.sigma2, seed=0)
    M = model.C.T @ model.C + model.sigma2 * torch.eye(d, dtype=F64)
    if A is None:
        A = torch.linalg.solve(M, model.C.T)  # (d, D)
        c = -A @ model.mu
        log_var = torch.log(torch.diagonal(model.sigma2 * torch.linalg.inv(M)))
    with torch.no_grad():
        vae.decoder[0].weight.copy_(model.C)
        vae.decoder[0].bias.copy_(model.mu)
        vae.to_mean.weight.copy_(A)
        vae.to_mean.bias.copy_(c)
        vae.to_log_var.weight.zero_()
        vae.to_log_var.bias.copy_(log_var)
    return vae


def binary_data(n=200, D=8, seed=0) -> torch.Tensor:
    """Two noisy prototypes, so a 1-latent VAE has something to learn."""
    g = gen(seed)
    proto = torch.tensor([[1.0] * (D // 2) + [0.0] * (D - D // 2)], dtype=F64)
    proto = torch.cat([proto, 1 - proto])  # (2, D)
    labels = torch.randint(0, 2, (n,), generator=g)
    flips = torch.rand(n, D, generator=g, dtype=F64) < 0.1
    return (proto[labels] + flips.to(F64)) % 2


# ------------------------------------------------------------------ gradient checks
def _expected_log_p_x_given_h(model, x, mean, log_var):
    """Closed form of E_q[log p(x|h)] = ELBO + KL(q || p(h)), differentiable."""
    var = torch.exp(log_var)
    return model.elbo(x, mean, var) + 0.5 * (var + mean**2 - 1 - log_var).sum(-1)


@pytest.mark.parametrize(
    ("estimator", "S"),
    [(sample_gradient_reparameterized, 20_000), (sample_gradient_score_function, 200_000)],
)
def test_gradient_estimators_are_unbiased(estimator, S):
    model = random_linear_model(D=4, d=2)
    x = model.sample(1, generator=gen(14))
    mean = torch.tensor([0.3, -0.2], dtype=F64, requires_grad=True)
    log_var = torch.tensor([-0.5, 0.2], dtype=F64, requires_grad=True)
    exact = torch.autograd.grad(
        _expected_log_p_x_given_h(model, x, mean[None], log_var[None]).sum(), (mean, log_var)
    )

    def f(h):
        return model.log_p_x_given_h(x.expand(h.shape[0], -1), h)

    grads = estimator(f, mean, log_var, n_samples=S, generator=gen(15))
    for estimate, truth in zip(grads, exact, strict=True):
        assert estimate.shape == (S, 2)
        se = estimate.std(0) / math.sqrt(S)  # rows are independent draws; 5 SE
        assert torch.all((estimate.mean(0) - truth).abs() < 5 * se), (estimate.mean(0), truth)


def test_reparameterised_gradient_has_lower_variance_than_score_function():
    model = random_linear_model(D=4, d=2)
    x = model.sample(1, generator=gen(16))
    mean, log_var = torch.zeros(2, dtype=F64), torch.zeros(2, dtype=F64)

    def f(h):
        return model.log_p_x_given_h(x.expand(h.shape[0], -1), h)

    rep = sample_gradient_reparameterized(f, mean, log_var, n_samples=5000, generator=gen(17))
    score = sample_gradient_score_function(f, mean, log_var, n_samples=5000, generator=gen(17))
    # the sample variances of 5000 draws are within ~10 % of the true ones; the true ratio
    # is ~5 for the mean and ~20 for the log-variance here, so a factor 2 is safe
    for pathwise, reinforce in zip(rep, score, strict=True):
        assert torch.all(2 * pathwise.var(0) < reinforce.var(0))


def test_estimated_elbo_gradient_agrees_with_autograd_of_closed_form():
    model = random_linear_model(D=5, d=3)
    g = gen(18)
    x = model.sample(2, generator=g)
    q_mean = torch.randn(2, 3, generator=g, dtype=F64).requires_grad_(True)
    q_var = (torch.rand(2, 3, generator=g, dtype=F64) + 0.2).requires_grad_(True)
    exact = torch.autograd.grad(model.elbo(x, q_mean, q_var).sum(), (q_mean, q_var))
    # R independent replicates in one pass: each repeated row of q has its own leaf entries,
    # so the gradient of the sum holds R independent gradients of S-sample estimates.
    R, S = 2000, 10
    q_mean_r = q_mean.detach().repeat(R, 1).requires_grad_(True)  # (R * 2, 3)
    q_var_r = q_var.detach().repeat(R, 1).requires_grad_(True)
    estimate = model.estimate_elbo(x.repeat(R, 1), q_mean_r, q_var_r, n_samples=S, generator=g)
    grads = torch.autograd.grad(estimate.sum(), (q_mean_r, q_var_r))
    for grad, truth in zip(grads, exact, strict=True):
        stack = grad.reshape(R, 2, 3)
        se = stack.std(0) / math.sqrt(R)  # SE from the replicates; 5 SE
        assert torch.all((stack.mean(0) - truth).abs() < 5 * se)


def test_vae_gradient_agrees_with_autograd_of_linear_gaussian_closed_form():
    """For a linear VAE, E[ELBO estimate] is the closed-form ELBO of its own q: same gradient."""
    model = random_linear_model(D=5, d=2)
    g = gen(19)
    A = 0.3 * torch.randn(2, 5, generator=g, dtype=F64)
    vae = linear_vae(model, A=A, c=torch.zeros(2, dtype=F64), log_var=torch.tensor([-0.3, 0.1]))
    with torch.no_grad():
        vae.to_log_var.weight.copy_(0.1 * torch.randn(2, 5, generator=g, dtype=F64))
    x = model.sample(4, generator=g)
    params = list(vae.parameters())

    def closed_form():
        mean, log_var = vae.encode(x)
        decoder = LinearGaussianModel(vae.decoder[0].weight, vae.decoder[0].bias, vae.sigma2)
        return decoder.elbo(x, mean, torch.exp(log_var)).sum()

    exact = torch.autograd.grad(closed_form(), params)
    R, S = 100, 50
    reps = [
        torch.autograd.grad(vae.elbo(x, generator=g, n_samples=S).sum(), params) for _ in range(R)
    ]
    for i, truth in enumerate(exact):
        stack = torch.stack([r[i] for r in reps])
        se = stack.std(0) / math.sqrt(R)
        # entries with zero spread (none expected) must match exactly
        assert torch.all((stack.mean(0) - truth).abs() <= 5 * se + 1e-12), i


# ---------------------------------------------------------------------- the VAE
def test_linear_vae_with_exact_posterior_gives_log_p_for_every_k():
    """With q = p(h|x), every importance weight equals p(x): L_k = log p(x) exactly."""
    model = orthogonal_linear_model()
    x = model.sample(6, generator=gen(20))
    vae = linear_vae(model)
    log_p = model.log_marginal(x)
    for k in (1, 7, 250):
        torch.testing.assert_close(
            vae.iwae_bound(x, k=k, generator=gen(21), chunk_size=100), log_p, atol=1e-10, rtol=0
        )
    sampled_kl = vae.elbo(x, generator=gen(22), kl="sampled")
    torch.testing.assert_close(sampled_kl, log_p, atol=1e-10, rtol=0)
    mean, log_var = vae.encode(x)
    post_mean, post_cov = model.posterior(x)
    torch.testing.assert_close(mean, post_mean)
    torch.testing.assert_close(torch.exp(log_var), post_cov.diagonal().expand(6, -1))


@pytest.mark.parametrize("kl", ["analytic", "sampled"])
def test_vae_elbo_estimate_is_unbiased_for_the_closed_form(kl):
    model = random_linear_model(D=5, d=2)
    g = gen(23)
    vae = linear_vae(
        model,
        A=0.3 * torch.randn(2, 5, generator=g, dtype=F64),
        c=torch.zeros(2, dtype=F64),
        log_var=torch.tensor([-0.3, 0.1], dtype=F64),
    )
    x = model.sample(3, generator=g)
    with torch.no_grad():
        mean, log_var = vae.encode(x)
        exact = model.elbo(x, mean, torch.exp(log_var))
        R = 20_000
        single = vae.elbo(x.repeat(R, 1), generator=g, kl=kl).reshape(R, 3)
        se = single.std(0) / math.sqrt(R)  # from R independent replicates; 5 SE
        assert torch.all((single.mean(0) - exact).abs() < 5 * se)
        S = 5000
        many = vae.elbo(x, generator=g, n_samples=S, kl=kl)
        assert torch.all((many - exact).abs() < 5 * single.std(0) / math.sqrt(S))
        # IWAE with k = 1 has the ELBO as its expectation too
        iwae1 = vae.iwae_bound(x.repeat(R, 1), k=1, generator=g).reshape(R, 3)
        assert torch.all((iwae1.mean(0) - exact).abs() < 5 * iwae1.std(0) / math.sqrt(R))


def test_vae_iwae_increases_with_k_on_binary_data():
    vae = VAE(8, 2, hidden=(16,), seed=1)
    with torch.no_grad():
        vae.to_log_var.bias.fill_(-2.0)  # a narrow q, far from the posterior: large gaps
    x = binary_data(n=3)
    R = 2000
    xr = x.repeat(R, 1)
    means, ses = [], []
    for k in (1, 10, 100):
        L = vae.iwae_bound(xr, k=k, generator=gen(k), chunk_size=20).reshape(R, 3)
        means.append(L.mean(0))
        ses.append(L.std(0) / math.sqrt(R))  # SE from replicates
    for a in range(2):
        assert torch.all(means[a + 1] - means[a] > 5 * torch.hypot(ses[a], ses[a + 1]))


def test_vae_gaussian_samples_have_the_linear_model_marginal():
    model = random_linear_model(D=3, d=2)
    vae = linear_vae(model)
    n = 200_000
    x = vae.sample(n, generator=gen(24))
    cov = model.C @ model.C.T + model.sigma2 * torch.eye(3, dtype=F64)
    se = torch.sqrt((torch.outer(cov.diagonal(), cov.diagonal()) + cov**2) / n)  # 5 SE
    assert torch.all((torch.cov(x.T) - cov).abs() < 5 * se)
    means = vae.sample(10, generator=gen(25), mean=True)
    assert means.shape == (10, 3)


def test_bernoulli_vae_shapes_sampling_and_reconstruction():
    vae = VAE(8, 2, hidden=(16, 8), seed=0, activation="tanh")
    x = binary_data(n=10)
    mean, log_var = vae.encode(x)
    assert mean.shape == log_var.shape == (10, 2)
    decoded, m2, _ = vae(x, generator=gen(0))
    assert decoded.shape == (10, 8)
    torch.testing.assert_close(m2, mean)
    h = vae.reparameterize(mean, log_var, generator=gen(1))
    assert h.shape == (10, 2)
    assert vae.log_p_x_given_h(x, h).shape == (10,)
    assert vae.log_p_x_given_h(x, torch.stack([h, h])).shape == (2, 10)
    # the Bernoulli log-likelihood equals the explicit sum of x log p + (1 - x) log(1 - p)
    probs = torch.sigmoid(vae.decode(h))
    explicit = (x * torch.log(probs) + (1 - x) * torch.log1p(-probs)).sum(-1)
    torch.testing.assert_close(vae.log_p_x_given_h(x, h), explicit)
    samples = vae.sample(50, generator=gen(2))
    assert set(samples.unique().tolist()) <= {0.0, 1.0}
    probs = vae.sample(5, generator=gen(3), mean=True)
    assert torch.all((probs > 0) & (probs < 1))
    recon = vae.reconstruct(x)
    assert recon.shape == (10, 8) and torch.all((recon > 0) & (recon < 1))
    assert vae.elbo(x, generator=gen(4)).shape == (10,)
    assert vae.iwae_bound(x, k=5, generator=gen(5)).shape == (10,)


def test_same_seed_same_weights_and_float32_works():
    a, b = VAE(8, 2, seed=3), VAE(8, 2, seed=3)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    c = VAE(8, 2, seed=4)
    assert not torch.equal(a.to_mean.weight, c.to_mean.weight)
    small = VAE(8, 2, seed=3, dtype=torch.float32)
    x = binary_data(n=20).float()
    assert small.elbo(x, generator=gen(0)).dtype == torch.float32
    with pytest.raises(TypeError, match="x"):
        small.encode(binary_data(n=2))  # float64 data for a float32 model


# ------------------------------------------------------------------------ training
def test_training_improves_the_test_elbo_and_records_history():
    x = binary_data(n=300, seed=1)
    vae = VAE(8, 1, hidden=(16,), seed=0)
    history = train_vae(
        vae, x[:200], x_test=x[200:], n_epochs=15, batch_size=32, learning_rate=1e-2, seed=0
    )
    assert isinstance(history, History) and len(history) == 15
    assert history["test_elbo"].shape == history["train_elbo"].shape == (15,)
    assert bool((history["seconds"] > 0).all())
    # independent data: log p(x) of a fair coin per bit is 8 log(1/2) = -5.55; the two
    # prototypes with 10 % flips have entropy 8 H(0.1) + log 2 = 3.29 nats. Training must
    # move the test ELBO from near the coin towards the data entropy.
    assert history["test_elbo"][0] < -4.5
    assert history["test_elbo"][-1] > -4.2
    # the recorded test ELBO is the model's, recomputed with the same noise
    same_noise = make_generator(seed=history.extras["test_seed"])
    with torch.no_grad():
        recomputed = vae.elbo(x[200:], generator=same_noise).mean().item()
    assert history["test_elbo"][-1] == pytest.approx(recomputed, rel=1e-13)
    assert "test_elbo" not in train_vae(VAE(8, 1, seed=0), x, n_epochs=1, seed=0)


def test_same_seed_same_history_and_the_global_rng_is_untouched():
    x = binary_data(n=100, seed=1)
    state = torch.get_rng_state()
    runs = [
        train_vae(VAE(8, 1, hidden=(16,), seed=0), x, x_test=x, n_epochs=2, batch_size=32, seed=5)
        for _ in range(2)
    ]
    for name in ("train_elbo", "test_elbo"):
        assert list(runs[0][name]) == list(runs[1][name])
    assert torch.equal(torch.get_rng_state(), state)
    g = gen(5)
    threaded = train_vae(
        VAE(8, 1, hidden=(16,), seed=0), x, x_test=x, n_epochs=2, batch_size=32, generator=g
    )
    assert list(threaded["train_elbo"]) == list(runs[0]["train_elbo"])  # seed=5 is gen(5)


class _PoisonedVAE(VAE):
    """Gives the ELBO a NaN gradient at minibatch ``poison`` (counting over the whole run)."""

    def __init__(self, *args, poison: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = 0
        self.poison = poison
        self.epoch_start = None

    def elbo(self, x, *, generator, n_samples=1, kl="analytic"):
        elbo = super().elbo(x, generator=generator, n_samples=n_samples, kl=kl)
        if torch.is_grad_enabled():  # a training step, not the monitor
            if self.calls % 4 == 0:
                self.epoch_start = [p.detach().clone() for p in self.parameters()]
            if self.calls == self.poison:
                # sqrt at 0: the value adds 0, the gradient is inf * 0 = NaN
                elbo = elbo + torch.sqrt(0 * self.to_mean.weight.sum())
            self.calls += 1
        return elbo


def test_nan_gradient_stops_training_naming_the_epoch_and_restores_the_epoch_start():
    x = binary_data(n=64)
    vae = _PoisonedVAE(8, 2, hidden=(8,), seed=0, poison=5)  # 4 minibatches per epoch
    with pytest.raises(TrainingDivergedError, match="epoch 2, mini-batch 2") as info:
        train_vae(vae, x, n_epochs=3, batch_size=16, seed=0)
    assert isinstance(info.value, FloatingPointError)
    assert info.value.epoch == 2 and info.value.step == 2
    assert info.value.quantity == "train_elbo" and len(info.value.history) == 1
    for p, saved in zip(vae.parameters(), vae.epoch_start, strict=True):
        assert torch.equal(p, saved)  # the parameters at the start of epoch 2


def test_infinite_loss_from_data_stops_at_the_first_minibatch():
    x = torch.full((8, 2), 1e200, dtype=F64)  # (x - f)^2 overflows
    vae = VAE(2, 1, hidden=(4,), decoder="gaussian", seed=0)
    initial = [p.detach().clone() for p in vae.parameters()]
    with pytest.raises(TrainingDivergedError, match="epoch 1, mini-batch 0"):
        train_vae(vae, x, n_epochs=1, batch_size=4, seed=0)
    for p, saved in zip(vae.parameters(), initial, strict=True):
        assert torch.equal(p, saved)


def test_vae_does_not_import_the_rbm_trainer():
    import genphys.vae

    assert "TrainingDivergedError" not in vars(genphys.vae)
    assert genphys.vae.train_vae.__module__ == "genphys.vae"


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda: kl_diagonal_gaussian_standard_normal([0.0, 1.0], [0.0]), ValueError, "log_var"),
        (lambda: kl_diagonal_gaussian_standard_normal([math.nan], [0.0]), ValueError, "mean"),
        (lambda: kl_diagonal_gaussian_standard_normal("a", [0.0]), TypeError, "mean"),
        (lambda: kl_diagonal_gaussian_standard_normal(torch.zeros(2, 2, 2), 0), ValueError, "mean"),
        (
            lambda: kl_diagonal_gaussian_standard_normal(torch.zeros(2, dtype=F64), torch.zeros(2)),
            TypeError,
            "log_var",
        ),
        (
            lambda: estimate_kl_diagonal_gaussian_standard_normal(
                [0.0], [0.0], n_samples=0, generator=gen()
            ),
            ValueError,
            "n_samples",
        ),
        (
            lambda: estimate_kl_diagonal_gaussian_standard_normal(
                [0.0], [0.0], n_samples=3, generator=0
            ),
            TypeError,
            "generator",
        ),
        (
            lambda: estimate_kl_diagonal_gaussian_standard_normal(
                [0.0], [math.inf], n_samples=3, generator=gen()
            ),
            ValueError,
            "log_var",
        ),
        (lambda: log_mean_exp(torch.zeros(3), dim=1), ValueError, "dim"),
        (lambda: log_mean_exp(torch.tensor([0.0, math.nan])), ValueError, "log_w"),
        (lambda: log_mean_exp(torch.tensor([0.0, math.inf])), ValueError, "log_w"),
        (lambda: log_mean_exp("abc"), TypeError, "log_w"),
    ],
)
def test_bad_input_module_functions(call, error, name):
    with pytest.raises(error, match=name):
        call()


def _f(h):
    return h.sum(-1)


@pytest.mark.parametrize(
    "estimator", [sample_gradient_reparameterized, sample_gradient_score_function]
)
@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"f": "f"}, TypeError, "f"),
        ({"mean": torch.zeros(2, 2), "log_var": torch.zeros(2, 2)}, ValueError, "mean"),
        ({"log_var": torch.zeros(3)}, ValueError, "log_var"),
        ({"n_samples": 0}, ValueError, "n_samples"),
        ({"generator": None}, TypeError, "generator"),
        ({"f": lambda h: h}, ValueError, "f"),
    ],
)
def test_bad_input_gradient_estimators(estimator, kwargs, error, name):
    args = {
        "f": _f,
        "mean": torch.zeros(2, dtype=F64),
        "log_var": torch.zeros(2, dtype=F64),
        "n_samples": 4,
        "generator": gen(),
    } | kwargs
    f, mean, log_var = args.pop("f"), args.pop("mean"), args.pop("log_var")
    with pytest.raises(error, match=name):
        estimator(f, mean, log_var, **args)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"n_features": 0}, ValueError, "n_features"),
        ({"n_latent": "2"}, TypeError, "n_latent"),
        ({"hidden": 16}, TypeError, "hidden"),
        ({"hidden": "16"}, TypeError, "hidden"),
        ({"hidden": (16, 0)}, ValueError, "hidden"),
        ({"decoder": "poisson"}, ValueError, "decoder"),
        ({"sigma2": -1.0}, ValueError, "sigma2"),
        ({"activation": "gelu"}, ValueError, "activation"),
        ({"dtype": torch.int64}, TypeError, "dtype"),
        ({"seed": -1}, ValueError, "seed"),
    ],
)
def test_bad_input_vae_constructor(kwargs, error, name):
    with pytest.raises(error, match=name):
        VAE(**({"n_features": 8, "n_latent": 2} | kwargs))


@pytest.fixture
def vae():
    return VAE(8, 2, hidden=(8,), seed=0)


@pytest.mark.parametrize(
    ("method", "error", "name"),
    [
        (lambda v: v.encode(torch.zeros(3, 7, dtype=F64)), ValueError, "x"),
        (lambda v: v.encode(torch.full((3, 8), 0.5, dtype=F64)), ValueError, "binary"),
        (lambda v: v.encode(torch.zeros(8, dtype=F64)), ValueError, "x"),
        (lambda v: v.encode(torch.zeros(3, 8)), TypeError, "x"),
        (
            lambda v: v.reparameterize(torch.zeros(3, 2), torch.zeros(3, 3), generator=gen()),
            TypeError,
            "mean",
        ),
        (
            lambda v: v.reparameterize(
                torch.zeros(3, 2, dtype=F64), torch.zeros(3, 3, dtype=F64), generator=gen()
            ),
            ValueError,
            "log_var",
        ),
        (
            lambda v: v.reparameterize(
                torch.zeros(3, 2, dtype=F64), torch.zeros(3, 2, dtype=F64), generator=1
            ),
            TypeError,
            "generator",
        ),
        (lambda v: v.decode(torch.zeros(3, 3, dtype=F64)), ValueError, "h"),
        (lambda v: v.decode(torch.full((3, 2), math.nan, dtype=F64)), ValueError, "h"),
        (lambda v: v(torch.zeros(3, 8, dtype=F64), generator="g"), TypeError, "generator"),
        (
            lambda v: v.log_p_x_given_h(torch.zeros(3, 8, dtype=F64), torch.zeros(4, 2, dtype=F64)),
            ValueError,
            "h",
        ),
        (
            lambda v: v.elbo(torch.zeros(3, 8, dtype=F64), generator=gen(), n_samples=0),
            ValueError,
            "n_samples",
        ),
        (
            lambda v: v.elbo(torch.zeros(3, 8, dtype=F64), generator=gen(), kl="exact"),
            ValueError,
            "kl",
        ),
        (lambda v: v.elbo(torch.zeros(3, 8, dtype=F64), generator=None), TypeError, "generator"),
        (
            lambda v: v.iwae_bound(torch.zeros(3, 8, dtype=F64), k=0, generator=gen()),
            ValueError,
            "k",
        ),
        (
            lambda v: v.iwae_bound(
                torch.zeros(3, 8, dtype=F64), k=5, generator=gen(), chunk_size=0
            ),
            ValueError,
            "chunk_size",
        ),
        (
            lambda v: v.iwae_bound(torch.ones(3, 9, dtype=F64), k=5, generator=gen()),
            ValueError,
            "x",
        ),
        (lambda v: v.sample(0, generator=gen()), ValueError, "n"),
        (lambda v: v.sample(3, generator=None), TypeError, "generator"),
        (lambda v: v.reconstruct([[2.0] * 8]), ValueError, "binary"),
    ],
)
def test_bad_input_vae_methods(vae, method, error, name):
    with pytest.raises(error, match=name):
        method(vae)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"model": "vae"}, TypeError, "model"),
        ({"x_train": torch.zeros(4, 7, dtype=F64)}, ValueError, "x_train"),
        ({"x_test": torch.full((4, 8), 0.5, dtype=F64)}, ValueError, "x_test"),
        ({"n_epochs": 0}, ValueError, "n_epochs"),
        ({"batch_size": 1.5}, TypeError, "batch_size"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate"),
        ({"n_samples": 0}, ValueError, "n_samples"),
        ({"seed": -3}, ValueError, "seed"),
        ({"seed": None}, TypeError, "seed"),
        ({"generator": gen(0)}, ValueError, "seed"),
        ({"progress": "yes"}, TypeError, "progress"),
    ],
)
def test_bad_input_train_vae(vae, kwargs, error, name):
    args = {"model": vae, "x_train": torch.zeros(4, 8, dtype=F64), "seed": 0} | kwargs
    model, x = args.pop("model"), args.pop("x_train")
    with pytest.raises(error, match=name):
        train_vae(model, x, **args)


# ---------------------------------------------------------------------- accelerator
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_everything_runs_on_cuda_and_agrees_with_cpu():
    model = random_linear_model(device="cuda")
    cpu = random_linear_model()
    g = gen(30, "cuda")
    x = model.sample(5, generator=g)
    q_mean = torch.randn(5, 3, generator=g, dtype=F64, device="cuda")
    q_var = torch.rand(5, 3, generator=g, dtype=F64, device="cuda") + 0.1
    lhs = model.log_marginal(x) - model.kl_to_posterior(x, q_mean, q_var)
    torch.testing.assert_close(model.elbo(x, q_mean, q_var), lhs, atol=1e-10, rtol=0)
    torch.testing.assert_close(model.log_marginal(x).cpu(), cpu.log_marginal(x.cpu()))
    assert model.estimate_log_marginal(x, k=50, generator=g).device.type == "cuda"
    data = binary_data(n=64).cuda()
    vae = VAE(8, 2, hidden=(16,), seed=0, device="cuda")
    history = train_vae(vae, data, x_test=data, n_epochs=2, batch_size=16, seed=0)
    assert len(history) == 2
    assert vae.iwae_bound(data, k=20, generator=g).device.type == "cuda"
    assert vae.sample(4, generator=g).device.type == "cuda"
    with pytest.raises(ValueError, match="generator"):
        vae.elbo(data, generator=gen(0))


def test_reparameterize_is_mean_plus_scale_times_the_generators_normal_draw():
    # Oracle: the standard normal draw of an identically seeded generator; exact in float64.
    vae = VAE(8, 2, hidden=(8,), seed=0)
    mean = torch.tensor([[0.5, -1.0], [2.0, 0.0], [0.0, 3.0]], dtype=F64)
    log_var = torch.tensor([[0.0, 2.0], [-4.0, 1.0], [0.3, -0.3]], dtype=F64)
    h = vae.reparameterize(mean, log_var, generator=gen(9))
    eps = torch.randn(3, 2, generator=gen(9), dtype=F64)
    torch.testing.assert_close(h, mean + torch.exp(0.5 * log_var) * eps, rtol=0.0, atol=0.0)
    # values are not checked: a NaN passes through for the trainer to report
    nan_mean = mean.clone()
    nan_mean[0, 0] = math.nan
    out = vae.reparameterize(nan_mean, log_var, generator=gen(9))
    assert bool(out[0, 0].isnan()) and bool(out[1:].isfinite().all())
