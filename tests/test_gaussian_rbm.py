"""The Gaussian-Bernoulli RBM against quadrature, Bayes' rule, finite differences and sampling."""

from __future__ import annotations

import math

import pytest
import torch
from memory_helpers import assert_fits

from genphys import gaussian_rbm as gr
from genphys.enumeration import binary_states
from genphys.fitting import History
from genphys.grid import Grid


def _model(n_visible: int, n_hidden: int, seed: int = 0, scale: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    W = scale * torch.randn(n_visible, n_hidden, generator=g, dtype=torch.float64)
    a = torch.randn(n_visible, generator=g, dtype=torch.float64)
    b = torch.randn(n_hidden, generator=g, dtype=torch.float64)
    log_var = 0.5 * torch.randn(n_visible, generator=g, dtype=torch.float64)
    return gr.GaussianBernoulliRBM.from_parameters(W, a, b, log_var)


def _joint_log_weights(model, x):
    """log e^{-E(x, h)} for every x (rows) and every hidden state h (columns), shape (B, 2^N)."""
    h = binary_states(model.n_hidden)  # (S, N)
    B, S = x.shape[0], h.shape[0]
    xx = x.repeat_interleave(S, dim=0)  # (B*S, M)
    hh = h.repeat(B, 1)  # (B*S, N)
    return -model.energy(xx, hh).reshape(B, S)


@pytest.mark.parametrize(("n_visible", "n_hidden", "seed"), [(1, 1, 0), (1, 3, 1), (2, 2, 2)])
def test_log_partition_matches_quadrature(n_visible, n_hidden, seed):
    # Midpoint rule on a box of +-14 (more than 8 standard deviations of every component),
    # 2000 or 800 cells per axis: its error on Gaussians is far below 1e-8.
    model = _model(n_visible, n_hidden, seed)
    grid = Grid(-14.0, 14.0, 2000 if n_visible == 1 else 800, dim=n_visible)
    with torch.no_grad():
        by_free_energy = grid.log_partition(-model.free_energy(grid.points))
        by_joint = grid.log_partition(torch.logsumexp(_joint_log_weights(model, grid.points), 1))
        exact = gr.log_partition_exact(model)
    torch.testing.assert_close(exact, by_free_energy, rtol=0, atol=1e-8)
    torch.testing.assert_close(exact, by_joint, rtol=0, atol=1e-8)


def test_hidden_log_weight_is_the_integral_over_x():
    model = _model(1, 3, seed=3)
    grid = Grid(-14.0, 14.0, 4000, dim=1)
    h = binary_states(3)
    with torch.no_grad():
        exact = model.hidden_log_weight(h)
        for k in range(h.shape[0]):
            e = -model.energy(grid.points, h[k].expand(grid.n_cells, -1))
            torch.testing.assert_close(exact[k], grid.log_partition(e), rtol=0, atol=1e-8)


def test_free_energy_sums_the_hidden_units_out():
    model = _model(3, 4, seed=4)
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(
            model.free_energy(x), -torch.logsumexp(_joint_log_weights(model, x), 1)
        )


def test_hidden_conditional_is_bayes_rule_on_the_joint():
    model = _model(3, 4, seed=5)
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    h = binary_states(4)  # (S, N)
    with torch.no_grad():
        posterior = torch.softmax(_joint_log_weights(model, x), 1)  # (B, S) by Bayes
        q = model.prob_h_given_x(x)  # (B, N)
        product = (q[:, None, :] ** h * (1 - q[:, None, :]) ** (1 - h)).prod(-1)  # (B, S)
    torch.testing.assert_close(product, posterior)


def test_visible_conditional_is_bayes_rule_on_the_joint():
    # p(x | h) = e^{-E(x, h)} / int e^{-E(x', h)} dx', the integral by quadrature.
    model = _model(2, 3, seed=6)
    grid = Grid(-14.0, 14.0, 700, dim=2)
    with torch.no_grad():
        for h in binary_states(3):
            hh = h.expand(grid.n_cells, -1)
            bayes = grid.log_density(-model.energy(grid.points, hh))
            torch.testing.assert_close(
                model.log_prob_x_given_h(grid.points, hh), bayes, rtol=0, atol=1e-8
            )


def test_log_likelihood_gradient_matches_float64_finite_differences():
    model = _model(2, 3, seed=7)
    x = torch.randn(9, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ll = gr.log_likelihood_exact(model, x)
    names = [name for name, _ in model.named_parameters()]
    grads = torch.autograd.grad(ll, list(model.parameters()))
    eps = 1e-6
    for name, p, grad in zip(names, model.parameters(), grads, strict=True):
        flat = p.data.view(-1)
        for i in range(flat.numel()):
            old = flat[i].item()
            with torch.no_grad():
                flat[i] = old + eps
                up = gr.log_likelihood_exact(model, x).item()
                flat[i] = old - eps
                down = gr.log_likelihood_exact(model, x).item()
                flat[i] = old
            fd = (up - down) / (2 * eps)
            assert abs(grad.view(-1)[i].item() - fd) < 1e-7, (name, i, grad.view(-1)[i], fd)


def test_log_likelihood_integrates_to_one():
    model = _model(2, 2, seed=8)
    grid = Grid(-14.0, 14.0, 600, dim=2)
    with torch.no_grad():
        log_z = gr.log_partition_exact(model)
        log_p = -model.free_energy(grid.points) - log_z
    total = torch.exp(log_p).sum() * grid.cell_volume
    torch.testing.assert_close(total, torch.tensor(1.0, dtype=torch.float64), rtol=0, atol=1e-8)


def test_gibbs_chains_reach_the_exact_mean_and_variance():
    # Exact moments: E[x] = sum_h p(h) (a + W h); E[x^2] = sum_h p(h) ((a + W h)^2 + sigma^2).
    # 4000 independent chains after 30 sweeps (mixing time of a few sweeps for this model):
    # each sample mean must be within 5 standard errors (std / sqrt(4000)).
    model = _model(2, 3, seed=9, scale=0.8)
    with torch.no_grad():
        h = binary_states(3)
        p_h = torch.softmax(model.hidden_log_weight(h), 0)  # (S,)
        mean_h = model.mean_x_given_h(h)  # (S, M)
        mean = p_h @ mean_h
        second = p_h @ (mean_h**2 + torch.exp(model.log_var))
    start = torch.zeros(4000, 2, dtype=torch.float64)
    x = gr.gibbs_chain(model, start, 30, seed=0)
    se = x.std(0) / math.sqrt(x.shape[0])
    assert bool(((x.mean(0) - mean).abs() < 5 * se).all()), (x.mean(0), mean, se)
    se2 = (x**2).std(0) / math.sqrt(x.shape[0])
    assert bool((((x**2).mean(0) - second).abs() < 5 * se2).all())


def _mixture_data(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g, dtype=torch.float64)
    x[: n // 2, 0] += 3.0
    return x


@pytest.mark.parametrize("persistent", [False, True])
def test_training_raises_the_exact_log_likelihood(persistent):
    x = _mixture_data(1000, 0)
    model = gr.GaussianBernoulliRBM(2, 3, seed=0)
    before = gr.log_likelihood_exact(model, x).item()
    history = gr.train_gaussian_rbm(
        model, x, n_epochs=8, k=2, persistent=persistent, learning_rate=0.05, seed=1
    )
    assert isinstance(history, History)
    after = history["train_log_likelihood"][-1]
    torch.testing.assert_close(after, gr.log_likelihood_exact(model, x).item())
    # a single Gaussian fitted by ML has -3.19 nats here; the bimodal data allow more
    assert after > before + 0.3, (before, after)


def test_training_seed_and_generator_agree():
    x = _mixture_data(200, 1)
    runs = []
    for kw in ({"seed": 3}, {"generator": torch.Generator().manual_seed(3)}):
        model = gr.GaussianBernoulliRBM(2, 2, seed=0)
        gr.train_gaussian_rbm(model, x, n_epochs=2, **kw)
        runs.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)


def test_bad_input_raises_clearly():
    model = _model(2, 3)
    with pytest.raises(ValueError, match="x must have 2 columns"):
        model.free_energy(torch.zeros(4, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="h must be binary"):
        model.energy(
            torch.zeros(2, dtype=torch.float64), torch.full((3,), 0.5, dtype=torch.float64)
        )
    with pytest.raises(TypeError, match="model must be a GaussianBernoulliRBM"):
        gr.log_partition_exact("model")
    with pytest.raises(ValueError, match="at most 20 hidden units"):
        gr.log_partition_exact(gr.GaussianBernoulliRBM(1, 21, seed=0))
    with pytest.raises(ValueError, match="data must have shape"):
        gr.log_likelihood_exact(model, torch.zeros(3, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="data must contain only finite values"):
        gr.train_gaussian_rbm(
            model, torch.full((3, 2), math.nan, dtype=torch.float64), n_epochs=1, seed=0
        )
    with pytest.raises(TypeError, match="seed must be an integer"):
        gr.gibbs_chain(model, torch.zeros(3, 2, dtype=torch.float64), 1)
    with pytest.raises(TypeError, match="persistent must be a bool"):
        gr.train_gaussian_rbm(model, torch.zeros(3, 2, dtype=torch.float64), n_epochs=1,
                              persistent=1, seed=0)  # fmt: skip
    with torch.no_grad():
        model.log_var[0] = math.nan
    with pytest.raises(ValueError, match="model parameter log_var must be finite"):
        gr.log_partition_exact(model)


def test_exact_log_partition_with_gradients_stays_within_a_memory_cap():
    # 784 visible units and 2**16 hidden states, gradients enabled: the (2**N, M) means
    # alone were 0.4 GB, and their graph more; chunks and a per-chunk backward need ~50 MB.
    assert_fits(
        """
        from genphys import gaussian_rbm as gr
        model = gr.GaussianBernoulliRBM(784, 16, seed=0, weight_scale=0.01)
        gr.log_partition_exact(model).backward()
        assert model.W.grad is not None
        """,
        extra_mb=300,
    )


def test_exact_log_partition_gradient_matches_a_one_shot_sum():
    model = gr.GaussianBernoulliRBM(3, 4, seed=2, weight_scale=0.5)
    gr.log_partition_exact(model).backward()
    mine = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    torch.logsumexp(model.hidden_log_weight(binary_states(4, dtype=torch.float64)), 0).backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(mine[name], p.grad, rtol=1e-12, atol=1e-12)
