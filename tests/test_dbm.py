"""Tests of genphys.dbm: brute-force enumeration of all (x, h1, h2), the mean-field fixed
point and its KL gap, float64 finite differences of the exact gradient, invariance of the
Gibbs sweep with SE-derived tolerances, AIS against exact log Z, training, and bad input."""

from __future__ import annotations

import math

import pytest
import torch
from memory_helpers import assert_fits

from genphys import dbm as M
from genphys.ais import log_partition_ais
from genphys.enumeration import binary_states
from genphys.fitting import TrainingDivergedError


def _dbm(sizes=(4, 3, 2), seed=0, scale=1.0) -> M.DeepBoltzmannMachine:
    g = torch.Generator().manual_seed(seed)
    n_v, n_1, n_2 = sizes
    shapes = [(n_v, n_1), (n_1, n_2), (n_v,), (n_1,), (n_2,)]
    return M.DeepBoltzmannMachine.from_parameters(
        *(scale * torch.randn(s, generator=g, dtype=torch.float64) for s in shapes)
    )


def _all_states(dbm):
    n_v, n_1, n_2 = dbm.sizes
    s = binary_states(n_v + n_1 + n_2)
    return s[:, :n_v], s[:, n_v : n_v + n_1], s[:, n_v + n_1 :]


@pytest.mark.parametrize("sizes", [(4, 3, 2), (3, 4, 3)])
@torch.no_grad()
def test_exact_sums_match_brute_force(sizes):
    dbm = _dbm(sizes, seed=1)
    x, h1, h2 = _all_states(dbm)
    energy = dbm.energy(x, h1, h2)
    # the energy written out term by term
    explicit = -(
        x @ dbm.a + h1 @ dbm.b1 + h2 @ dbm.b2 + torch.einsum("bi,ij,bj->b", x, dbm.W1, h1)
        + torch.einsum("bj,jk,bk->b", h1, dbm.W2, h2)
    )  # fmt: skip
    torch.testing.assert_close(energy, explicit)
    log_z = torch.logsumexp(-energy, 0)
    torch.testing.assert_close(M.log_partition_exact(dbm), log_z, rtol=1e-12, atol=1e-12)
    visible = binary_states(sizes[0])
    log_p = M.log_prob_exact(dbm, visible)
    codes = (x * 2.0 ** torch.arange(sizes[0], dtype=torch.float64)).sum(1).long()
    brute = torch.full((2 ** sizes[0],), -math.inf, dtype=torch.float64)
    for c in range(2 ** sizes[0]):
        brute[c] = torch.logsumexp(-energy[codes == c], 0) - log_z
    torch.testing.assert_close(log_p, brute, rtol=1e-12, atol=1e-12)
    # marginals
    mu1, mu2 = M.posterior_marginals_exact(dbm, visible)
    for c in range(2 ** sizes[0]):
        w = torch.softmax(-energy[codes == c], 0)
        torch.testing.assert_close(mu1[c], w @ h1[codes == c])
        torch.testing.assert_close(mu2[c], w @ h2[codes == c])


@torch.no_grad()
def test_mean_field_is_a_fixed_point_and_its_gap_is_the_kl_divergence():
    dbm = _dbm((4, 3, 2), seed=2, scale=0.8)
    x = binary_states(4)
    mf = M.mean_field(dbm, x, n_iterations=500, tolerance=1e-13)
    assert mf.change <= 1e-13
    # one more update moves nothing: mu solves the fixed-point equations
    mu1 = torch.sigmoid(dbm.b1 + x @ dbm.W1 + mf.mu2 @ dbm.W2.T)
    mu2 = torch.sigmoid(dbm.b2 + mu1 @ dbm.W2)
    torch.testing.assert_close(mu1, mf.mu1, rtol=0, atol=1e-12)
    torch.testing.assert_close(mu2, mf.mu2, rtol=0, atol=1e-12)
    # damping changes the path, not the fixed point
    damped = M.mean_field(dbm, x, n_iterations=2000, damping=0.5, tolerance=1e-14)
    torch.testing.assert_close(damped.mu1, mf.mu1, rtol=0, atol=1e-10)
    # bound = log p*(x) - KL(q || p(h|x)), with the KL by enumeration of (h1, h2)
    bound = M.mean_field_bound(dbm, x, mf.mu1, mf.mu2)
    exact = M.log_unnormalized_exact(dbm, x)
    h = binary_states(5)
    h1, h2 = h[:, :3], h[:, 3:]
    for b in range(x.shape[0]):
        log_post = -dbm.energy(x[b].expand(32, -1), h1, h2) - exact[b]  # log p(h | x)
        q1 = torch.where(h1 == 1, mf.mu1[b], 1 - mf.mu1[b]).prod(1)
        q2 = torch.where(h2 == 1, mf.mu2[b], 1 - mf.mu2[b]).prod(1)
        q = q1 * q2
        kl = (q * (torch.log(q) - log_post)).sum()
        torch.testing.assert_close(exact[b] - bound[b], kl, rtol=1e-10, atol=1e-12)
    assert bool((bound <= exact).all())


@torch.no_grad()
def test_mean_field_bound_is_exact_without_the_top_coupling():
    # W2 = 0: h1 and h2 are independent given x, the posterior is factorial and
    # one mean-field sweep reaches it, so the bound is log p*(x) exactly
    dbm = _dbm((4, 3, 2), seed=3)
    dbm.W2.zero_()
    x = binary_states(4)
    mf = M.mean_field(dbm, x, n_iterations=3)
    torch.testing.assert_close(
        M.mean_field_bound(dbm, x, mf.mu1, mf.mu2), M.log_unnormalized_exact(dbm, x)
    )


def test_exact_gradient_matches_float64_finite_differences_and_the_two_phases():
    dbm = _dbm((4, 3, 2), seed=4)
    x = binary_states(4)[[1, 5, 6, 9, 15]]
    grad = M.log_likelihood_gradient_exact(dbm, x)
    eps = 1e-6
    for name, p in dbm.named_parameters():
        for index in [(0,) * p.dim(), tuple(s - 1 for s in p.shape)]:
            with torch.no_grad():
                p[index] += eps
                up = float(M.log_prob_exact(dbm, x).mean())
                p[index] -= 2 * eps
                down = float(M.log_prob_exact(dbm, x).mean())
                p[index] += eps
            numeric = (up - down) / (2 * eps)
            assert abs(numeric - float(grad[name][index])) < 1e-7, f"d logL / d {name}{list(index)}"
    # W2: <h1 h2^T> under p(h | x) averaged over the data, minus under p(x, h)
    with torch.no_grad():
        xs, h1, h2 = _all_states(dbm)
        p_joint = torch.softmax(-dbm.energy(xs, h1, h2), 0)
        negative = torch.einsum("s,sj,sk->jk", p_joint, h1, h2)
        positive = torch.zeros_like(negative)
        for row in x:
            m = (xs == row).all(1)
            w = torch.softmax(-dbm.energy(xs[m], h1[m], h2[m]), 0)
            positive += torch.einsum("s,sj,sk->jk", w, h1[m], h2[m]) / x.shape[0]
    torch.testing.assert_close(grad["W2"], positive - negative)


def test_loss_gradient_is_minus_positive_plus_negative_statistics():
    dbm = _dbm((4, 3, 2), seed=5)
    x = binary_states(4)[:6]
    mf = M.mean_field(dbm, x)
    chains = M.gibbs_sweep(dbm, x, torch.zeros(6, 2, dtype=torch.float64), seed=0)
    loss = M.dbm_loss(dbm, x, mf, chains)
    gW1, gW2 = torch.autograd.grad(loss, [dbm.W1, dbm.W2])
    cx, c1, c2 = chains
    torch.testing.assert_close(-gW1, x.T @ mf.mu1 / 6 - cx.T @ c1 / 6)
    torch.testing.assert_close(-gW2, mf.mu1.T @ mf.mu2 / 6 - c1.T @ c2 / 6)


@torch.no_grad()
def test_gibbs_sweep_leaves_the_joint_distribution_invariant():
    dbm = _dbm((3, 2, 2), seed=6)
    x, h1, h2 = _all_states(dbm)
    p = torch.softmax(-dbm.energy(x, h1, h2), 0)  # (128,)
    n = 40_000
    g = torch.Generator().manual_seed(0)
    start = torch.multinomial(p, n, replacement=True, generator=g)  # exact draws
    nx, nh1, nh2 = M.gibbs_sweep(dbm, x[start], h2[start], n_sweeps=2, generator=g)
    bits = torch.cat([nx, nh1, nh2], 1)
    codes = (bits * 2.0 ** torch.arange(7, dtype=torch.float64)).sum(1).long()
    freq = torch.bincount(codes, minlength=128).double() / n
    se = torch.sqrt(p * (1 - p) / n)
    # exact draws stay exact after the sweep: multinomial frequencies within 5 SE per
    # state (128 states, false alarm rate about 128 * 6e-7)
    assert bool(((freq - p).abs() < 5 * se + 1e-4).all())


@torch.no_grad()
def test_ais_on_the_rbm_form_matches_exact_log_partition():
    dbm = _dbm((6, 4, 3), seed=7, scale=0.7)
    exact = float(M.log_partition_exact(dbm))
    est = log_partition_ais(dbm.as_rbm(), n_chains=200, n_temperatures=500, seed=0)
    # 5 AIS standard errors plus 0.02 nats for the Jensen bias of log(mean w)
    assert abs(float(est.estimate) - exact) < 5 * float(est.standard_error) + 0.02


def test_training_raises_the_exact_log_likelihood():
    g = torch.Generator().manual_seed(8)
    prototypes = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype=torch.float64)
    x = prototypes[torch.randint(2, (200,), generator=g)]
    flip = torch.bernoulli(torch.full_like(x, 0.05), generator=g)
    x = (x + flip) % 2
    dbm = M.DeepBoltzmannMachine(6, 4, 2, seed=0, weight_scale=0.01)
    with torch.no_grad():
        start = float(M.log_prob_exact(dbm, x).mean())
    history = M.train_dbm(
        dbm, x, n_epochs=30, batch_size=20, learning_rate=0.05, n_chains=50, seed=0,
        log_likelihood_every=10,
    )  # fmt: skip
    final = history["train_log_likelihood"][-1]
    # the data have 6 * log 2 = 4.16 nats of uniform entropy but only about 2.8 in fact
    assert final > start + 0.5, (start, history["train_log_likelihood"])
    assert history.extras["chains"][0].shape == (50, 6)
    with pytest.raises(TrainingDivergedError):
        M.train_dbm(dbm, x, n_epochs=3, batch_size=20, learning_rate=1e308, seed=0)


def test_bad_input():
    dbm = _dbm()
    with pytest.raises(ValueError, match="n_hidden1 must be an integer >= 1"):
        M.DeepBoltzmannMachine(4, 0, 2, seed=0)
    with pytest.raises(ValueError, match="x must be binary"):
        M.log_prob_exact(dbm, torch.full((2, 4), 0.5, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"x must have shape \(any, 4\)"):
        M.mean_field(dbm, torch.zeros(2, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="damping must be in"):
        M.mean_field(dbm, torch.zeros(2, 4, dtype=torch.float64), damping=1.0)
    with pytest.raises(ValueError, match="mu1 must hold probabilities"):
        M.mean_field_bound(
            dbm, torch.zeros(2, 4, dtype=torch.float64), torch.full((2, 3), 1.5, dtype=torch.float64),
            torch.zeros(2, 2, dtype=torch.float64),
        )  # fmt: skip
    with pytest.raises(ValueError, match="n_hidden2 must be at most 20"):
        M.log_unnormalized_exact(
            M.DeepBoltzmannMachine(2, 2, 21, seed=0), torch.zeros(1, 2, dtype=torch.float64)
        )
    with pytest.raises(TypeError, match="seed must be"):
        M.gibbs_sweep(
            dbm, torch.zeros(2, 4, dtype=torch.float64), torch.zeros(2, 2, dtype=torch.float64)
        )
    with pytest.raises(ValueError, match="same number of rows"):
        M.gibbs_sweep(
            dbm,
            torch.zeros(2, 4, dtype=torch.float64),
            torch.zeros(3, 2, dtype=torch.float64),
            seed=0,
        )
    with pytest.raises(TypeError, match="dbm must be a DeepBoltzmannMachine"):
        M.log_partition_exact("dbm")
    with torch.no_grad():
        dbm.W1[0, 0] = math.inf
    with pytest.raises(ValueError, match="dbm parameter W1 must be finite"):
        M.mean_field(dbm, torch.zeros(1, 4, dtype=torch.float64))


@pytest.mark.cuda
def test_cuda_matches_cpu():
    dbm = _dbm((4, 3, 2), seed=9)
    gpu = M.DeepBoltzmannMachine.from_parameters(*(p.detach().cuda() for p in dbm.parameters()))
    x = binary_states(4)
    with torch.no_grad():
        torch.testing.assert_close(M.log_prob_exact(gpu, x.cuda()).cpu(), M.log_prob_exact(dbm, x))
        torch.testing.assert_close(M.mean_field(gpu, x.cuda()).mu1.cpu(), M.mean_field(dbm, x).mu1)
        out = M.gibbs_sweep(
            gpu, x.cuda(), torch.zeros(16, 2, device="cuda", dtype=torch.float64), seed=0
        )
        assert all(t.device.type == "cuda" for t in out)
    M.train_dbm(gpu, x.cuda(), n_epochs=1, batch_size=8, n_chains=8, seed=0)


def test_exact_routines_stay_within_a_memory_cap():
    # log Z with gradients: as an RBM of 100 visible and 2**20 hidden states (the graph of
    # every chunk used to be kept, ~1 GB). Posterior marginals of 64 rows with 2**16 states
    # of h2 and 16 units of h1: the (B, S, n_1) field alone used to be 0.5 GB.
    assert_fits(
        """
        from genphys import dbm as D
        g = torch.Generator().manual_seed(0)
        f64 = torch.float64
        net = D.DeepBoltzmannMachine.from_parameters(
            0.05 * torch.randn(80, 20, generator=g, dtype=f64),
            0.05 * torch.randn(20, 20, generator=g, dtype=f64),
            torch.zeros(80, dtype=f64), torch.zeros(20, dtype=f64), torch.zeros(20, dtype=f64),
        )
        D.log_partition_exact(net).backward()
        assert net.W1.grad is not None
        small = D.DeepBoltzmannMachine.from_parameters(
            0.1 * torch.randn(16, 16, generator=g, dtype=f64),
            0.1 * torch.randn(16, 16, generator=g, dtype=f64),
            torch.zeros(16, dtype=f64), torch.zeros(16, dtype=f64), torch.zeros(16, dtype=f64),
        )
        x = torch.bernoulli(torch.full((64, 16), 0.5, dtype=f64), generator=g)
        mu1, mu2 = D.posterior_marginals_exact(small, x)
        assert mu1.shape == (64, 16) and mu2.shape == (64, 16)
        """,
        extra_mb=450,  # peak measured at about 280 MiB; the old field alone was 0.5 GB
    )


def test_posterior_marginals_in_blocks_equal_one_block(monkeypatch):
    # Tiny blocks (one state of h2 and one row at a time) against the whole sum at once:
    # the running maximum and the rescaling must give the same marginals.
    from genphys import dbm as D

    g = torch.Generator().manual_seed(5)
    f64 = torch.float64
    net = D.DeepBoltzmannMachine.from_parameters(
        2 * torch.randn(4, 3, generator=g, dtype=f64),
        2 * torch.randn(3, 5, generator=g, dtype=f64),
        torch.randn(4, generator=g, dtype=f64),
        torch.randn(3, generator=g, dtype=f64),
        torch.randn(5, generator=g, dtype=f64),
    )
    x = torch.bernoulli(torch.full((6, 4), 0.5, dtype=f64), generator=g)
    whole = D.posterior_marginals_exact(net, x)
    monkeypatch.setattr(D, "POSTERIOR_BLOCK", 3)
    blocks = D.posterior_marginals_exact(net, x)
    for a, b in zip(whole, blocks, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_one_mean_field_sweep_by_hand():
    # Start: mu1 = sigma(b1 + 2 x W1) (the doubled bottom-up input), mu2 = sigma(b2 + mu1 W2).
    # One damped sweep updates mu1 first and then mu2 from the *new* mu1 (Gauss-Seidel, as
    # documented), each unit written out with Python floats. A Jacobi sweep (mu2 from the
    # old mu1) or a start without the doubled input gives other numbers.
    g = torch.Generator().manual_seed(9)
    f64 = torch.float64
    W1, W2 = torch.randn(3, 2, generator=g, dtype=f64), torch.randn(2, 2, generator=g, dtype=f64)
    a, b1, b2 = (torch.randn(n, generator=g, dtype=f64) for n in (3, 2, 2))
    net = M.DeepBoltzmannMachine.from_parameters(W1, W2, a, b1, b2)
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], dtype=f64)
    d = 0.3

    def sig(z):
        return 1.0 / (1.0 + math.exp(-z))

    for row in range(2):
        xs = x[row].tolist()
        up = [b1[j].item() + sum(xs[i] * W1[i, j].item() for i in range(3)) for j in range(2)]
        down = [up[j] + sum(xs[i] * W1[i, j].item() for i in range(3)) for j in range(2)]
        mu1 = [sig(down[j]) for j in range(2)]  # sigma(b1 + 2 x W1)
        mu2 = [
            sig(b2[k].item() + sum(mu1[j] * W2[j, k].item() for j in range(2))) for k in range(2)
        ]
        new1 = [
            d * mu1[j] + (1 - d) * sig(up[j] + sum(mu2[k] * W2[j, k].item() for k in range(2)))
            for j in range(2)
        ]
        new2 = [
            d * mu2[k]
            + (1 - d) * sig(b2[k].item() + sum(new1[j] * W2[j, k].item() for j in range(2)))
            for k in range(2)
        ]
        out = M.mean_field(net, x, n_iterations=1, damping=d, tolerance=0.0)
        assert out.n_iterations == 1
        assert out.mu1[row].tolist() == pytest.approx(new1, rel=1e-13, abs=1e-15)
        assert out.mu2[row].tolist() == pytest.approx(new2, rel=1e-13, abs=1e-15)
