"""Tests of genphys.dbn: brute-force oracles for log p(x) and the bound, float64 finite
differences, the transposed-layer identity, sampler frequencies with SE-derived tolerances,
wake-sleep on the one training loop, and bad input."""

from __future__ import annotations

import math

import pytest
import torch
from memory_helpers import assert_fits

from genphys import dbn as D
from genphys.enumeration import binary_states
from genphys.fitting import TrainingDivergedError
from genphys.rbm import BernoulliRBM, log_partition_exact
from genphys.training import ExactNegative, train_rbm


def _rbm(n_v: int, n_h: int, seed: int, scale: float = 1.0) -> BernoulliRBM:
    g = torch.Generator().manual_seed(seed)
    W = scale * torch.randn(n_v, n_h, generator=g, dtype=torch.float64)
    a = scale * torch.randn(n_v, generator=g, dtype=torch.float64)
    b = scale * torch.randn(n_h, generator=g, dtype=torch.float64)
    return BernoulliRBM.from_parameters(W, a, b)


def _dbn(sizes: list[int], seed: int = 0, scale: float = 1.0) -> D.DeepBeliefNetwork:
    rbms = [_rbm(sizes[i], sizes[i + 1], seed + i, scale) for i in range(len(sizes) - 1)]
    net = D.DeepBeliefNetwork(rbms)
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():  # recognition weights different from the generative ones
        for R in net.recognition_W:
            R.add_(0.5 * torch.randn(R.shape, generator=g, dtype=torch.float64))
    return net


def _data(n: int, m: int, seed: int = 0, p: float = 0.4) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((n, m), p, dtype=torch.float64), generator=g)


def _brute_force(net: D.DeepBeliefNetwork, x: torch.Tensor):
    """log p(x) and the bound by an explicit loop over every hidden state, top layer included."""
    sizes = net.layer_sizes
    top = net.top
    top_states = binary_states(sizes[-2] + sizes[-1])
    v, h = top_states[:, : sizes[-2]], top_states[:, sizes[-2] :]
    log_z = torch.logsumexp(-top.energy(v, h), 0)
    hidden = binary_states(sum(sizes[1:-1]))
    log_p = torch.zeros(x.shape[0], hidden.shape[0], dtype=torch.float64)
    log_q = torch.zeros_like(log_p)
    for s, state in enumerate(hidden):
        layers = [*torch.split(state, sizes[1:-1])]
        # log p_top(h_{L-1}) = log sum_{h_L} e^{-E} - log Z, by enumeration of h_L
        h_top = layers[-1].expand(2 ** sizes[-1], -1)
        lp = torch.logsumexp(-top.energy(h_top, binary_states(sizes[-1])), 0) - log_z
        for b in range(x.shape[0]):
            full = [x[b], *layers]
            total, rec = lp.clone(), torch.zeros((), dtype=torch.float64)
            for l in range(net.n_directed):
                p_gen = torch.sigmoid(net.generative_W[l] @ full[l + 1] + net.generative_a[l])
                p_rec = torch.sigmoid(full[l] @ net.recognition_W[l] + net.recognition_c[l])
                total = total + torch.log(torch.where(full[l] == 1, p_gen, 1 - p_gen)).sum()
                rec = rec + torch.log(torch.where(full[l + 1] == 1, p_rec, 1 - p_rec)).sum()
            log_p[b, s], log_q[b, s] = total, rec
    q = torch.exp(log_q)
    return torch.logsumexp(log_p, 1), (q * (log_p - log_q)).sum(1)


@pytest.mark.parametrize("sizes", [[4, 3, 2], [3, 2, 3, 2]])
@torch.no_grad()
def test_exact_log_likelihood_and_bound_match_brute_force(sizes):
    net = _dbn(sizes, seed=3)
    x = _data(5, sizes[0], seed=1)
    log_p, bound = _brute_force(net, x)
    torch.testing.assert_close(D.log_likelihood_exact(net, x), log_p, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(D.variational_bound_exact(net, x), bound, rtol=1e-12, atol=1e-12)
    # normalised over every visible configuration, and the bound is below log p
    all_x = binary_states(sizes[0])
    assert abs(float(torch.logsumexp(D.log_likelihood_exact(net, all_x), 0))) < 1e-12
    assert bool((D.variational_bound_exact(net, all_x) <= D.log_likelihood_exact(net, all_x)).all())


@torch.no_grad()
def test_log_joint_matches_the_terms_of_the_enumeration():
    net = _dbn([4, 3, 2], seed=5)
    x = _data(6, 4, seed=2)
    h1 = _data(6, 3, seed=3)
    joint = D.log_joint(net, [x, h1])
    # log p(x, h1) = log p(x | h1) + log p_top(h1), p_top(h1) from the RBM's free energy
    p_x = torch.sigmoid(h1 @ net.generative_W[0].T + net.generative_a[0])
    log_px_h = torch.log(torch.where(x == 1, p_x, 1 - p_x)).sum(1)
    expected = log_px_h - net.top.free_energy(h1) - log_partition_exact(net.top)
    torch.testing.assert_close(joint, expected, rtol=1e-12, atol=1e-12)


def test_bound_gradient_matches_float64_finite_differences():
    net = _dbn([4, 3, 2], seed=7)
    x = _data(4, 4, seed=4)
    value = D.variational_bound_exact(net, x).mean()
    names = [n for n, _ in net.named_parameters()]
    grads = torch.autograd.grad(value, list(net.parameters()))
    eps = 1e-6
    for name, p, grad in zip(names, net.parameters(), grads, strict=True):
        for index in [(0,) * p.dim(), tuple(s - 1 for s in p.shape)]:
            with torch.no_grad():
                p[index] += eps
                up = float(D.variational_bound_exact(net, x).mean())
                p[index] -= 2 * eps
                down = float(D.variational_bound_exact(net, x).mean())
                p[index] += eps
            numeric = (up - down) / (2 * eps)
            assert abs(numeric - float(grad[index])) < 1e-7, f"d bound / d {name}{list(index)}"


@torch.no_grad()
def test_sampled_bound_agrees_with_exact_within_standard_errors():
    net = _dbn([5, 4, 3], seed=11)
    x = _data(8, 5, seed=5)
    exact = D.variational_bound_exact(net, x)
    est = D.variational_bound_sample(net, x, n_samples=4000, seed=0)
    # each row is a mean of 4000 i.i.d. terms: |z| < 4.5 for all 8 rows fails with
    # probability about 8 * 7e-6 under the CLT
    z = (est.estimate - exact) / est.standard_error
    assert bool((z.abs() < 4.5).all()), z


def test_transposed_layer_keeps_log_likelihood_and_makes_the_bound_tight():
    rbm = _rbm(5, 3, seed=2, scale=1.5)
    x = binary_states(5)
    log_p_rbm = -rbm.free_energy(x) - log_partition_exact(rbm)
    grown = D.add_transposed_layer(rbm)
    assert grown.layer_sizes == [5, 3, 5]
    with torch.no_grad():
        torch.testing.assert_close(D.log_likelihood_exact(grown, x), log_p_rbm)
        # q(h|x) is the RBM's exact (factorial) posterior, so the bound is an equality
        torch.testing.assert_close(D.variational_bound_exact(grown, x), log_p_rbm)
        # growing a DBN again keeps p(x) too
        twice = D.add_transposed_layer(grown)
        assert twice.layer_sizes == [5, 3, 5, 3]
        torch.testing.assert_close(D.log_likelihood_exact(twice, x), log_p_rbm)


def test_training_the_added_layer_raises_the_bound():
    # Hinton, Osindero & Teh (2006): from the transposed initialisation the bound equals
    # log p of the RBM; fitting the new top RBM to samples of q(h1|x) can only raise it
    data = _data(30, 5, seed=9, p=0.3)
    data[:15, :2] = 1.0  # some structure for the first layer to capture
    rbm = _rbm(5, 3, seed=4, scale=0.3)
    train_rbm(rbm, data, n_epochs=30, negative_phase=ExactNegative(), batch_size=10, seed=0)
    grown = D.add_transposed_layer(rbm)
    with torch.no_grad():
        before = D.variational_bound_exact(grown, data).mean()
        h1 = torch.bernoulli(
            rbm.prob_h_given_x(data.repeat(40, 1)), generator=torch.Generator().manual_seed(1)
        )
    train_rbm(grown.top, h1, n_epochs=20, negative_phase=ExactNegative(), batch_size=100, seed=0)
    with torch.no_grad():
        after = D.variational_bound_exact(grown, data).mean()
        log_p = D.log_likelihood_exact(grown, data).mean()
    assert float(after) > float(before) + 1e-3, (float(before), float(after))
    assert float(after) <= float(log_p) + 1e-12


@torch.no_grad()
def test_ancestral_samples_have_the_exact_visible_distribution():
    net = _dbn([3, 3, 2], seed=13)
    n = 20_000
    x = D.sample_dbn(net, n, n_gibbs=60, seed=0)[0]
    codes = (x * torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)).sum(1).long()
    freq = torch.bincount(codes, minlength=8).double() / n
    p = torch.exp(D.log_likelihood_exact(net, binary_states(3)))
    se = torch.sqrt(p * (1 - p) / n)
    # 5 binomial standard errors per state (8 states); the top chain of a 3 x 2 RBM with
    # O(1) weights mixes in a few sweeps, so 60 sweeps leave no visible bias
    assert bool(((freq - p).abs() < 5 * se + 1e-3).all()), (freq, p)


def test_recognition_samples_have_the_factorial_means():
    net = _dbn([4, 3, 2], seed=17)
    x = _data(1, 4, seed=1).expand(40_000, -1)
    h1 = D.sample_recognition(net, x, seed=0)[1]
    p = torch.sigmoid(x[0] @ net.recognition_W[0] + net.recognition_c[0]).detach()
    se = torch.sqrt(p * (1 - p) / x.shape[0])
    assert bool(((h1.mean(0) - p).abs() < 5 * se).all())  # 5 binomial SEs per unit


def test_wake_and_top_losses_reach_only_generative_and_sleep_only_recognition():
    net = _dbn([4, 3, 2], seed=19)
    x = _data(10, 4, seed=2)
    losses = D.wake_sleep_losses(net, x, k=1, generator=torch.Generator().manual_seed(0))
    generative = [*net.generative_W, *net.generative_a, *net.top.parameters()]
    recognition = [*net.recognition_W, *net.recognition_c]
    for name, group, other in (
        ("wake", generative, recognition),
        ("top", generative, recognition),
        ("sleep", recognition, generative),
    ):
        grads = torch.autograd.grad(
            losses[name], group + other, allow_unused=True, retain_graph=True
        )
        assert all(g is None for g in grads[len(group) :]), name
        assert any(g is not None and bool(g.abs().sum() > 0) for g in grads[: len(group)]), name


def test_wake_gradient_is_the_delta_rule():
    net = _dbn([4, 3, 2], seed=23)
    x = _data(12, 4, seed=3)
    g = torch.Generator().manual_seed(5)
    losses = D.wake_sleep_losses(net, x, k=1, generator=g)
    # replay the up pass with the same stream: its first draws are the wake states
    h1 = D.sample_recognition(net, x, generator=torch.Generator().manual_seed(5))[1]
    (grad_W,) = torch.autograd.grad(losses["wake"], [net.generative_W[0]])
    p = torch.sigmoid(h1 @ net.generative_W[0].T + net.generative_a[0])
    delta = (x - p).T @ h1 / x.shape[0]  # (n_0, n_1): the wake delta rule
    torch.testing.assert_close(-grad_W, delta.detach())


def test_train_wake_sleep_runs_on_fit_and_stops_on_divergence():
    x = _data(40, 6, seed=4, p=0.3)
    net, histories = D.train_dbn_greedy(x, [4, 3], n_epochs=3, seed=0, batch_size=10)
    assert len(histories) == 2 and net.layer_sizes == [6, 4, 3]
    history = D.train_wake_sleep(net, x, n_epochs=2, seed=0, batch_size=10)
    assert set(history.names) >= {"wake", "top", "sleep"} and len(history) == 2
    with pytest.raises(TrainingDivergedError):
        D.train_wake_sleep(net, x, n_epochs=5, seed=0, batch_size=10, learning_rate=1e308)


def test_greedy_training_is_reproducible_and_propagates_probabilities():
    x = _data(50, 6, seed=6, p=0.3)
    a, _ = D.train_dbn_greedy(x, [4, 3], n_epochs=2, seed=1, propagate="probabilities")
    b, _ = D.train_dbn_greedy(
        x, [4, 3], n_epochs=2, generator=torch.Generator().manual_seed(1), propagate="probabilities"
    )
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    # after greedy training the recognition weights are tied to the generative ones
    torch.testing.assert_close(a.recognition_W[0], a.generative_W[0])


def test_bad_input():
    net = _dbn([4, 3, 2])
    with pytest.raises(TypeError, match="rbms must be a non-empty list"):
        D.DeepBeliefNetwork([])
    with pytest.raises(ValueError, match=r"rbms\[1\].n_visible must equal"):
        D.DeepBeliefNetwork([_rbm(4, 3, 0), _rbm(2, 2, 1)])
    with pytest.raises(ValueError, match="x must be binary"):
        D.log_likelihood_exact(net, torch.full((2, 4), 0.5, dtype=torch.float64))
    with pytest.raises(ValueError, match="x must have 4 columns"):
        D.variational_bound_exact(net, torch.zeros(2, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="must have at most 20 units"):
        D.log_likelihood_exact(_dbn([2, 21, 2]), torch.zeros(1, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="propagate must be"):
        D.train_dbn_greedy(_data(5, 4), [3], n_epochs=1, seed=0, propagate="means")
    with pytest.raises(TypeError, match="hidden_sizes must be"):
        D.train_dbn_greedy(_data(5, 4), [], n_epochs=1, seed=0)
    with pytest.raises(ValueError, match="layers must be a list of 2"):
        D.log_joint(net, [_data(2, 4)])
    with pytest.raises(TypeError, match="seed must be"):
        D.sample_dbn(net, 3)
    with pytest.raises(ValueError, match="n_samples must be an integer >= 2"):
        D.variational_bound_sample(net, _data(2, 4), n_samples=1, seed=0)
    with pytest.raises(ValueError, match="at least one directed layer"):
        D.train_wake_sleep(D.DeepBeliefNetwork([_rbm(4, 3, 0)]), _data(5, 4), n_epochs=1, seed=0)
    bad = _dbn([4, 3, 2])
    with torch.no_grad():
        bad.generative_W[0][0, 0] = math.nan
    with pytest.raises(ValueError, match="must be finite"):
        D.sample_dbn(bad, 3, seed=0)


@pytest.mark.cuda
def test_cuda_matches_cpu():
    net = _dbn([4, 3, 2], seed=29)
    gpu = D.DeepBeliefNetwork(
        [
            BernoulliRBM.from_parameters(W.detach().cuda(), a.detach().cuda(), c.detach().cuda())
            for W, a, c in ((net.generative_W[0], net.generative_a[0], net.recognition_c[0]),)
        ]
        + [
            BernoulliRBM.from_parameters(
                *(p.detach().cuda() for p in (net.top.W, net.top.a, net.top.b))
            )
        ]
    )
    with torch.no_grad():
        gpu.recognition_W[0].copy_(net.recognition_W[0])
        x = _data(5, 4, seed=3)
        torch.testing.assert_close(
            D.log_likelihood_exact(gpu, x.cuda()).cpu(), D.log_likelihood_exact(net, x)
        )
        torch.testing.assert_close(
            D.variational_bound_exact(gpu, x.cuda()).cpu(), D.variational_bound_exact(net, x)
        )
        assert D.sample_dbn(gpu, 4, n_gibbs=3, seed=0)[0].device.type == "cuda"
    trained, _ = D.train_dbn_greedy(_data(30, 6, seed=1).cuda(), [4, 3], n_epochs=1, seed=0)
    assert trained.top.W.device.type == "cuda"
    D.train_wake_sleep(trained, _data(30, 6, seed=1).cuda(), n_epochs=1, seed=0)


def test_exact_log_likelihood_stays_within_a_memory_cap():
    # 784 visible units and 16 directed hidden bits: the (rows, 2**16, 784) block of one
    # chunk was 0.4 GB per row; blocks of CHUNK_ELEMENTS entries need ~100 MB.
    assert_fits(
        """
        from genphys import dbn as D
        from genphys.rbm import BernoulliRBM
        g = torch.Generator().manual_seed(0)
        f64 = torch.float64
        rbms = [
            BernoulliRBM.from_parameters(0.01 * torch.randn(784, 16, generator=g, dtype=f64),
                                         torch.zeros(784, dtype=f64), torch.zeros(16, dtype=f64)),
            BernoulliRBM.from_parameters(0.1 * torch.randn(16, 8, generator=g, dtype=f64),
                                         torch.zeros(16, dtype=f64), torch.zeros(8, dtype=f64)),
        ]
        net = D.DeepBeliefNetwork(rbms)
        x = torch.bernoulli(torch.full((2, 784), 0.5, dtype=f64), generator=g)
        assert D.log_likelihood_exact(net, x).shape == (2,)
        """,
        extra_mb=300,
    )


def test_exact_bound_with_gradients_refuses_by_its_memory_need():
    net = _dbn([6, 4, 3])
    x = torch.zeros(3, 6, dtype=torch.float64)
    old = D.MAX_EXACT_GRAPH_BYTES
    try:
        D.MAX_EXACT_GRAPH_BYTES = 1000
        with pytest.raises(ValueError, match="MAX_EXACT_GRAPH_BYTES.*variational_bound_sample"):
            D.variational_bound_exact(net, x)
        with torch.no_grad():  # without a graph memory is one block: no refusal
            D.variational_bound_exact(net, x)
    finally:
        D.MAX_EXACT_GRAPH_BYTES = old


def test_sleep_gradient_is_the_delta_rule_on_the_fantasy():
    # Replay the stream of one wake-sleep step: up pass, one Gibbs sweep of the top RBM,
    # then the fantasy generated down. The sleep loss must be the recognition delta rule
    # on the fantasy (x~, h~): -dL/dR = x~^T (h~ - sigma(x~ R + c)) / B. Computed on the
    # wake states (x, h1) instead, it would give another matrix (checked below).
    net = _dbn([4, 3, 2], seed=29)
    x = _data(16, 4, seed=6)
    losses = D.wake_sleep_losses(net, x, k=1, generator=torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        h1 = torch.bernoulli(torch.sigmoid(net.recognition_logits(0, x)), generator=g)
        v = net.top.sample_x_given_h(net.top.sample_h_given_x(h1, generator=g), generator=g)
        x_f = torch.bernoulli(torch.sigmoid(net.generative_logits(0, v)), generator=g)
    R, c = net.recognition_W[0], net.recognition_c[0]
    grad_R, grad_c = torch.autograd.grad(losses["sleep"], [R, c])
    B = x.shape[0]
    err = (v - torch.sigmoid(x_f @ R + c)).detach()  # (B, n_1)
    torch.testing.assert_close(-grad_R, x_f.T @ err / B)
    torch.testing.assert_close(-grad_c, err.mean(0))
    wake_err = (h1 - torch.sigmoid(x @ R + c)).detach()
    assert not torch.allclose(x.T @ wake_err / B, x_f.T @ err / B)  # the mutant is visible
