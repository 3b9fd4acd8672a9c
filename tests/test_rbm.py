"""Tests for genphys.rbm against independent oracles.

* brute force: every (x, h) pair of a small model is enumerated directly from the energy;
* float64 central finite differences of the exact log-likelihood;
* autograd of the exact log-likelihood;
* sampling frequencies, with tolerances derived from the binomial standard error.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from memory_helpers import assert_fits

from genphys.enumeration import binary_states
from genphys.rbm import (
    MAX_EXACT_UNITS,
    MAX_EXACT_WORK,
    BernoulliRBM,
    exact_work,
    log_likelihood_exact,
    log_likelihood_gradient_exact,
    log_partition_exact,
)

SHAPES = [(3, 2), (2, 5), (4, 4), (6, 3), (3, 7)]


@pytest.fixture
def random_rbm(make_rbm):
    """``random_rbm(n_visible, n_hidden, scale=1.0, seed=0)``: W and both biases ~ N(0, scale^2)."""

    def build(n_visible, n_hidden, scale=1.0, seed=0):
        return make_rbm(n_visible, n_hidden, scale=scale, seed=seed)

    return build


def brute_force_joint_log_weights(rbm):
    """-E(x, h) for every pair, computed term by term with Python loops: (2^M, 2^N)."""
    xs, hs = binary_states(rbm.n_visible), binary_states(rbm.n_hidden)
    W, a, b = rbm.W.detach(), rbm.a.detach(), rbm.b.detach()
    out = torch.empty(len(xs), len(hs), dtype=torch.float64)
    for r, x in enumerate(xs):
        for c, h in enumerate(hs):
            e = 0.0
            for i in range(rbm.n_visible):
                e -= a[i] * x[i]
                for j in range(rbm.n_hidden):
                    e -= x[i] * W[i, j] * h[j]
            for j in range(rbm.n_hidden):
                e -= b[j] * h[j]
            out[r, c] = -e
    return out


@pytest.mark.parametrize(("n_visible", "n_hidden"), SHAPES)
def test_energy_and_log_partition_match_brute_force(n_visible, n_hidden, random_rbm):
    rbm = random_rbm(n_visible, n_hidden, seed=n_visible * 10 + n_hidden)
    minus_e = brute_force_joint_log_weights(rbm)
    xs, hs = binary_states(n_visible), binary_states(n_hidden)
    with torch.no_grad():
        for c, h in enumerate(hs):
            np.testing.assert_allclose(
                -rbm.energy(xs, h.expand(len(xs), -1)), minus_e[:, c], rtol=1e-13, atol=1e-13
            )
        log_z = log_partition_exact(rbm)
        np.testing.assert_allclose(log_z, torch.logsumexp(minus_e.reshape(-1), 0), rtol=1e-13)
        # free energies are log-sums over the other layer
        np.testing.assert_allclose(-rbm.free_energy(xs), torch.logsumexp(minus_e, 1), rtol=1e-13)
        np.testing.assert_allclose(
            -rbm.hidden_free_energy(hs), torch.logsumexp(minus_e, 0), rtol=1e-13
        )
    # the differentiable path gives the same number
    np.testing.assert_allclose(log_partition_exact(rbm).item(), log_z.item(), rtol=1e-14)


@pytest.mark.parametrize("chunk_size", [1, 3, 64, 2**12])
@pytest.mark.parametrize("scale", [0.1, 3.0, 60.0])
def test_log_partition_independent_of_chunking_and_stable_for_large_weights(
    chunk_size, scale, random_rbm
):
    rbm = random_rbm(12, 11, scale=scale, seed=5)
    with torch.no_grad():
        reference = torch.logsumexp(-rbm.hidden_free_energy(binary_states(11)), 0)
        fast = log_partition_exact(rbm, chunk_size=chunk_size)
    np.testing.assert_allclose(fast.item(), reference.item(), rtol=1e-13)
    assert torch.isfinite(fast)


def test_softplus_is_exact_beyond_torch_default_threshold():
    # torch's softplus returns z for z > 20, an error of e^-20 ~ 2e-9; ours must be exact.
    rbm = BernoulliRBM.from_parameters([[25.0]], [0.0], [0.0])
    exact = np.log1p(np.exp(25.0))
    np.testing.assert_allclose(-rbm.free_energy([[1.0]]).item(), exact, rtol=0, atol=1e-14)


@pytest.mark.parametrize(("n_visible", "n_hidden"), SHAPES)
def test_log_likelihood_matches_brute_force(n_visible, n_hidden, random_rbm):
    rbm = random_rbm(n_visible, n_hidden, seed=7)
    g = torch.Generator().manual_seed(1)
    data = torch.randint(0, 2, (9, n_visible), generator=g).double()
    minus_e = brute_force_joint_log_weights(rbm)
    log_p_all = torch.logsumexp(minus_e, 1) - torch.logsumexp(minus_e.reshape(-1), 0)  # (2^M,)
    codes = (data * 2 ** torch.arange(n_visible, dtype=torch.float64)).sum(1).long()
    expected = log_p_all[codes].mean()
    with torch.no_grad():
        np.testing.assert_allclose(log_likelihood_exact(rbm, data).item(), expected, rtol=1e-13)
    np.testing.assert_allclose(torch.exp(log_p_all).sum().item(), 1.0, rtol=1e-13)


def _log_likelihood_at(rbm, data, name, index, value):
    params = {k: getattr(rbm, k).detach().clone() for k in ("W", "a", "b")}
    params[name][index] = value
    shifted = BernoulliRBM.from_parameters(params["W"], params["a"], params["b"])
    with torch.no_grad():
        return log_likelihood_exact(shifted, data).item()


@pytest.mark.parametrize(("n_visible", "n_hidden"), [(4, 3), (3, 5)])
def test_gradient_matches_central_finite_differences(n_visible, n_hidden, random_rbm):
    """Central differences in float64 with step 1e-5: truncation error ~ eps^2 * f''' ~ 1e-10,
    rounding ~ 1e-16 / 1e-5 = 1e-11; we allow 1e-8 absolute."""
    rbm = random_rbm(n_visible, n_hidden, seed=11)
    data = binary_states(n_visible)[[0, 3, 5, 6, 7]]
    grad = log_likelihood_gradient_exact(rbm, data).gradient
    step = 1e-5
    for name, analytic in zip(("W", "a", "b"), grad, strict=True):
        base = getattr(rbm, name).detach()
        for index in np.ndindex(*base.shape):
            plus = _log_likelihood_at(rbm, data, name, index, base[index] + step)
            minus = _log_likelihood_at(rbm, data, name, index, base[index] - step)
            numeric = (plus - minus) / (2 * step)
            assert abs(numeric - analytic[index].item()) < 1e-8, (
                f"d logL / d {name}{list(index)}: finite difference {numeric:.12f}, "
                f"analytic {analytic[index].item():.12f}"
            )


@pytest.mark.parametrize(("n_visible", "n_hidden"), SHAPES)
def test_gradient_matches_autograd_and_phases_are_expectations(n_visible, n_hidden, random_rbm):
    rbm = random_rbm(n_visible, n_hidden, seed=3)
    g = torch.Generator().manual_seed(2)
    data = torch.randint(0, 2, (8, n_visible), generator=g).double()
    phases = log_likelihood_gradient_exact(rbm, data, chunk_size=3)
    rbm.zero_grad()
    log_likelihood_exact(rbm, data).backward()
    for analytic, param in zip(phases.gradient, (rbm.W, rbm.a, rbm.b), strict=True):
        np.testing.assert_allclose(analytic, param.grad, rtol=1e-11, atol=1e-13)
    # negative phase = E_model[x h^T] by brute force over the joint table
    minus_e = brute_force_joint_log_weights(rbm)
    p = torch.exp(minus_e - torch.logsumexp(minus_e.reshape(-1), 0))  # (2^M, 2^N)
    xs, hs = binary_states(n_visible), binary_states(n_hidden)
    np.testing.assert_allclose(phases.negative.W, xs.T @ p @ hs, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(phases.negative.a, p.sum(1) @ xs, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(phases.negative.b, p.sum(0) @ hs, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(phases.positive.a, data.mean(0), rtol=1e-14)


@pytest.mark.parametrize(("n_visible", "n_hidden"), [(4, 3), (3, 4)])
def test_conditionals_are_normalised_and_match_enumeration(n_visible, n_hidden, random_rbm):
    rbm = random_rbm(n_visible, n_hidden, seed=4)
    minus_e = brute_force_joint_log_weights(rbm)
    xs, hs = binary_states(n_visible), binary_states(n_hidden)
    cond_h = torch.softmax(minus_e, dim=1)  # p(h | x): rows sum to one
    cond_x = torch.softmax(minus_e, dim=0)  # p(x | h): columns sum to one
    with torch.no_grad():
        ph = rbm.prob_h_given_x(xs)
        px = rbm.prob_x_given_h(hs)
    np.testing.assert_allclose(ph, cond_h @ hs, rtol=1e-12)
    np.testing.assert_allclose(px, cond_x.T @ xs, rtol=1e-12)
    assert bool(((ph > 0) & (ph < 1)).all()) and bool(((px > 0) & (px < 1)).all())


def test_sampling_frequencies_match_conditionals(random_rbm):
    """n = 100000 draws per unit; the binomial SE is sqrt(p(1-p)/n) <= 1.6e-3.
    Each frequency must lie within 5 SE (chance of a false failure < 1e-5 over all units)."""
    rbm = random_rbm(4, 3, seed=9)
    n = 100_000
    g = torch.Generator().manual_seed(123)
    x = binary_states(4)[[5]].expand(n, -1)
    h = binary_states(3)[[6]].expand(n, -1)
    with torch.no_grad():
        for samples, p in (
            (rbm.sample_h_given_x(x, generator=g), rbm.prob_h_given_x(x[0])),
            (rbm.sample_x_given_h(h, generator=g), rbm.prob_x_given_h(h[0])),
        ):
            assert set(samples.unique().tolist()) <= {0.0, 1.0}
            se = torch.sqrt(p * (1 - p) / n)
            assert bool(((samples.mean(0) - p).abs() < 5 * se).all())


def test_joint_sampling_by_gibbs_pairs_reproduces_joint_distribution(random_rbm):
    """Draw x from the exact marginal, then h ~ p(h|x): the pair frequencies must match
    p(x, h). n = 200000, SE per cell <= sqrt(p/n); we allow 5 SE + 1e-4."""
    rbm = random_rbm(3, 2, seed=12)
    minus_e = brute_force_joint_log_weights(rbm)
    p_joint = torch.exp(minus_e - torch.logsumexp(minus_e.reshape(-1), 0))  # (8, 4)
    n = 200_000
    g = torch.Generator().manual_seed(5)
    codes = torch.multinomial(p_joint.sum(1), n, replacement=True, generator=g)
    x = binary_states(3)[codes]
    with torch.no_grad():
        h = rbm.sample_h_given_x(x, generator=g)
    h_codes = (h * torch.tensor([1.0, 2.0], dtype=torch.float64)).sum(1).long()
    counts = torch.zeros(8, 4, dtype=torch.float64)
    counts.index_put_((codes, h_codes), torch.ones(n, dtype=torch.float64), accumulate=True)
    freq = counts / n
    se = torch.sqrt(p_joint * (1 - p_joint) / n)
    assert bool(((freq - p_joint).abs() < 5 * se + 1e-4).all())


def test_initialisation_follows_hinton_guide():
    rbm = BernoulliRBM(200, 100, seed=0)
    assert rbm.W.dtype == torch.float64
    assert torch.count_nonzero(rbm.a) == 0 and torch.count_nonzero(rbm.b) == 0
    # 20000 draws of N(0, 0.01^2): the sample std has SE 0.01 / sqrt(2 * 20000) = 5e-5
    assert abs(rbm.W.std().item() - 0.01) < 5 * 5e-5
    again = BernoulliRBM(200, 100, seed=0)
    assert torch.equal(rbm.W, again.W)


def test_float32_model_works_end_to_end():
    rbm = BernoulliRBM(5, 3, seed=1, weight_scale=1.0, dtype=torch.float32)
    data = torch.tensor([[1, 0, 1, 0, 1]], dtype=torch.float32)
    ref = BernoulliRBM.from_parameters(rbm.W.double(), rbm.a.double(), rbm.b.double())
    with torch.no_grad():
        np.testing.assert_allclose(
            log_likelihood_exact(rbm, data).item(),
            log_likelihood_exact(ref, data.double()).item(),
            rtol=1e-5,
        )


EPS32 = torch.finfo(torch.float32).eps  # 2**-23
SCALES = [1e-3, 1e-2, 0.1, 1.0, 3.0, 5.0, 30.0, 1e3]


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize(("n_visible", "n_hidden"), [(30, 16), (64, 12), (12, 30)])
def test_float32_exact_routines_agree_with_float64(
    make_rbm, make_binary_data, n_visible, n_hidden, scale
):
    # The float64 reference uses the float32 model's own (rounded) parameters, so the only
    # admissible difference is the final rounding of each result to float32: at most
    # EPS32 / 2 relative to the value. We allow EPS32 relative (plus 1e-30 absolute for
    # values that are exactly zero). Before, the sums ran in float32 and lost up to
    # 2e-7 relative on log Z and more on the gradient.
    rbm32 = make_rbm(n_visible, n_hidden, scale=scale, seed=17, dtype=torch.float32)
    rbm64 = BernoulliRBM.from_parameters(*(p.detach().double() for p in rbm32.parameters()))
    data = make_binary_data(25, n_visible, seed=3)
    with torch.no_grad():
        z32, z64 = log_partition_exact(rbm32), log_partition_exact(rbm64)
        assert z32.dtype == torch.float32 and torch.isfinite(z32)
        torch.testing.assert_close(z32.double(), z64, rtol=EPS32, atol=1e-30)
        ll32 = log_likelihood_exact(rbm32, data.float())
        ll64 = log_likelihood_exact(rbm64, data)
        assert ll32.dtype == torch.float32
        torch.testing.assert_close(ll32.double(), ll64, rtol=EPS32, atol=1e-30)
    g32 = log_likelihood_gradient_exact(rbm32, data.float())
    g64 = log_likelihood_gradient_exact(rbm64, data)
    for phase in ("positive", "negative"):
        for p32, p64 in zip(getattr(g32, phase), getattr(g64, phase), strict=True):
            assert p32.dtype == torch.float32
            torch.testing.assert_close(p32.double(), p64, rtol=EPS32, atol=1e-30)
    # the gradient is a float32 difference of the rounded phases: error <= EPS32 (|+| + |-|)
    for d32, pos, neg, d64 in zip(
        g32.gradient, g64.positive, g64.negative, g64.gradient, strict=True
    ):
        bound = EPS32 * (pos.abs() + neg.abs()) + 1e-30
        assert bool(((d32.double() - d64).abs() <= bound).all())


def test_float32_log_partition_keeps_autograd(make_rbm):
    rbm32 = make_rbm(6, 4, scale=2.0, seed=1, dtype=torch.float32)
    rbm64 = BernoulliRBM.from_parameters(*(p.detach().double() for p in rbm32.parameters()))
    grads32 = torch.autograd.grad(log_partition_exact(rbm32), list(rbm32.parameters()))
    grads64 = torch.autograd.grad(log_partition_exact(rbm64), list(rbm64.parameters()))
    for g32, g64 in zip(grads32, grads64, strict=True):
        assert g32.dtype == torch.float32
        torch.testing.assert_close(g32.double(), g64, rtol=EPS32, atol=1e-30)


def test_work_limit_refuses_large_sums_and_can_be_raised(random_rbm):
    assert exact_work(10, 8) == 2**8 * 10 == exact_work(8, 10)
    rbm = random_rbm(10, 8)
    data = binary_states(10)[:5]
    with pytest.raises(ValueError, match=r"max_work = 2,000 .*log_partition_ais"):
        log_partition_exact(rbm, max_work=2000)
    with pytest.raises(ValueError, match="max_work"):
        log_likelihood_gradient_exact(rbm, data, max_work=2000)
    with pytest.raises(ValueError, match="max_work"):
        log_likelihood_exact(rbm, data, max_work=2000)
    assert torch.isfinite(log_partition_exact(rbm, max_work=2560))  # exactly the work
    # with log_z given nothing is enumerated, so no limit applies
    log_likelihood_exact(rbm, data, log_z=log_partition_exact(rbm), max_work=1)
    # the default refuses a 64 x 26 model (2**26 * 64 = 2**32 state-units, minutes) at once
    with pytest.raises(ValueError, match=r"MAX_EXACT_WORK = 2,147,483,648.*log_partition_ais"):
        log_partition_exact(BernoulliRBM(64, 26, seed=0))
    # the largest sums in the book (64 x 20, chapter 6) stay allowed
    assert exact_work(64, 20) <= MAX_EXACT_WORK
    with pytest.raises(TypeError, match="max_work"):
        log_partition_exact(rbm, max_work=1.5)


def test_log_z_argument_is_checked(random_rbm):
    rbm = random_rbm(4, 3)
    data = binary_states(4)[:6]
    with torch.no_grad():
        log_z = log_partition_exact(rbm)
        expected = log_likelihood_exact(rbm, data)
    torch.testing.assert_close(log_likelihood_exact(rbm, data, log_z=log_z), expected)
    torch.testing.assert_close(log_likelihood_exact(rbm, data, log_z=float(log_z)), expected)
    for bad, error in [
        (torch.zeros(2, dtype=torch.float64), ValueError),
        (torch.tensor(1), ValueError),
        (torch.tensor(float("nan"), dtype=torch.float64), ValueError),
        (float("inf"), ValueError),
        ("3.0", TypeError),
        (np.float32, TypeError),
    ]:
        with pytest.raises(error, match="log_z must be"):
            log_likelihood_exact(rbm, data, log_z=bad)


def test_energy_refuses_batches_of_different_sizes(random_rbm):
    rbm = random_rbm(4, 3)
    with pytest.raises(
        ValueError, match=r"x and h must have the same batch shape.*\(3, 4\).*\(2, 3\)"
    ):
        rbm.energy(binary_states(4)[:3], binary_states(3)[:2])
    with pytest.raises(ValueError, match="same batch shape"):
        rbm.energy(binary_states(4)[:3], binary_states(3)[0])
    # matching batches and single vectors still work
    assert rbm.energy(binary_states(4)[:2], binary_states(3)[:2]).shape == (2,)
    assert rbm.energy(binary_states(4)[1], binary_states(3)[1]).shape == ()


@pytest.mark.cuda
def test_cuda_matches_cpu(random_rbm):
    rbm = random_rbm(10, 8, seed=2)
    gpu = BernoulliRBM.from_parameters(rbm.W.cuda(), rbm.a.cuda(), rbm.b.cuda())
    data = binary_states(10)[::7]
    with torch.no_grad():
        np.testing.assert_allclose(
            log_partition_exact(gpu).cpu(), log_partition_exact(rbm), rtol=1e-12
        )
        grad_gpu = log_likelihood_gradient_exact(gpu, data.cuda()).gradient
        grad_cpu = log_likelihood_gradient_exact(rbm, data).gradient
    for g_gpu, g_cpu in zip(grad_gpu, grad_cpu, strict=True):
        np.testing.assert_allclose(g_gpu.cpu(), g_cpu, rtol=1e-10, atol=1e-12)
    g = torch.Generator(device="cuda").manual_seed(0)
    assert gpu.sample_h_given_x(data.cuda(), generator=g).device.type == "cuda"


# ------------------------------------------------------------------ bad input
def test_bad_sizes():
    for args, match in [((0, 3), "n_visible"), ((3, -1), "n_hidden"), ((3.5, 2), "n_visible")]:
        with pytest.raises((ValueError, TypeError), match=match):
            BernoulliRBM(*args)
    with pytest.raises(TypeError, match="dtype must be a floating"):
        BernoulliRBM(2, 2, dtype=torch.int64)
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*64 - 1\]"):
        BernoulliRBM(2, 2, seed=-3)


def test_bad_parameters():
    with pytest.raises(ValueError, match="W must have 2 dimensions"):
        BernoulliRBM.from_parameters(np.zeros(3), np.zeros(3), np.zeros(1))
    with pytest.raises(ValueError, match=r"a must have shape \(3\)"):
        BernoulliRBM.from_parameters(np.zeros((3, 2)), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match=r"b must have shape \(2\)"):
        BernoulliRBM.from_parameters(np.zeros((3, 2)), np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="W must contain only finite values"):
        BernoulliRBM.from_parameters([[np.nan]], [0.0], [0.0])
    with pytest.raises(TypeError, match=r"a must have the dtype of W"):
        BernoulliRBM.from_parameters(
            torch.zeros(2, 2, dtype=torch.float64),
            torch.zeros(2, dtype=torch.float32),
            torch.zeros(2, dtype=torch.float64),
        )
    with pytest.raises(ValueError, match="W must not be empty"):
        BernoulliRBM.from_parameters(np.zeros((0, 2)), np.zeros(0), np.zeros(2))


def test_bad_data(random_rbm):
    rbm = random_rbm(3, 2)
    with pytest.raises(ValueError, match=r"data must be binary .*Got the value 0.5"):
        log_likelihood_exact(rbm, [[0, 0.5, 1]])
    with pytest.raises(ValueError, match="data must have 3 columns"):
        log_likelihood_exact(rbm, [[0, 1]])
    with pytest.raises(ValueError, match=r"data must have shape \(n_samples, 3\)"):
        log_likelihood_exact(rbm, [0, 1, 1])
    with pytest.raises(ValueError, match="data must not be empty"):
        log_likelihood_exact(rbm, np.zeros((0, 3)))
    with pytest.raises(ValueError, match="data must contain only finite values"):
        log_likelihood_gradient_exact(rbm, [[0, np.inf, 1]])
    with pytest.raises(TypeError, match="data must have dtype torch.float64"):
        log_likelihood_exact(rbm, torch.zeros(2, 3, dtype=torch.float32))
    with pytest.raises(ValueError, match="data must be on device cpu to match the model"):
        log_likelihood_exact(rbm, torch.zeros(2, 3, dtype=torch.float64, device="meta"))
    with pytest.raises(ValueError, match="x must be binary"):
        rbm.energy([[2, 0, 0]], [[0, 1]])
    with pytest.raises(ValueError, match="h must have 2 columns"):
        rbm.energy([[1, 0, 0]], [[0, 1, 1]])
    with pytest.raises(ValueError, match="x must have 1 or 2 dimensions"):
        rbm.free_energy(np.zeros((2, 2, 3)))


def test_nan_parameters_and_too_large_layers_are_rejected(random_rbm):
    rbm = random_rbm(3, 2)
    with torch.no_grad():
        rbm.W[0, 0] = float("nan")
    with pytest.raises(ValueError, match="RBM parameter W must be finite"):
        log_partition_exact(rbm)
    big = BernoulliRBM(MAX_EXACT_UNITS + 1, MAX_EXACT_UNITS + 2, seed=0)
    with pytest.raises(ValueError, match="log_partition_ais"):
        log_partition_exact(big)
    with pytest.raises(TypeError, match="rbm must be a BernoulliRBM"):
        log_partition_exact("not a model")
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
        log_partition_exact(random_rbm(3, 2), chunk_size=0)


def test_initial_weights_follow_the_one_seeding_rule():
    one = BernoulliRBM(5, 3, seed=4)
    two = BernoulliRBM(5, 3, generator=torch.Generator().manual_seed(4))
    assert torch.equal(one.W, two.W)
    with pytest.raises(TypeError, match="seed must be an integer"):
        BernoulliRBM(5, 3)  # before: silently seeded from the operating system
    with pytest.raises(ValueError, match="seed must be None when a generator is given"):
        BernoulliRBM(5, 3, seed=1, generator=torch.Generator())


def test_exact_log_partition_with_gradients_stays_within_a_memory_cap():
    # 2**20 hidden states x 100 visible units with gradients enabled: keeping every chunk's
    # graph needed ~1 GB (10 bytes per state-unit); the chunked backward needs one chunk.
    assert_fits(
        """
        from genphys.rbm import BernoulliRBM, log_likelihood_exact, log_partition_exact
        g = torch.Generator().manual_seed(0)
        f64 = torch.float64
        rbm = BernoulliRBM.from_parameters(
            0.05 * torch.randn(100, 20, generator=g, dtype=f64),
            torch.zeros(100, dtype=f64),
            torch.zeros(20, dtype=f64),
        ).requires_grad_(True)
        log_partition_exact(rbm).backward()
        assert rbm.W.grad is not None
        x = torch.bernoulli(torch.full((4, 100), 0.5, dtype=f64), generator=g)
        log_likelihood_exact(rbm, x).backward()
        """,
        extra_mb=300,
    )


def test_exact_log_partition_gradient_is_the_exact_expectation_chunk_by_chunk():
    # The backward of log Z is E[x h^T], E[x], E[h] (accumulated chunk by chunk): compare it
    # with autograd through a one-shot log-sum-exp over all 2**N hidden states.
    g = torch.Generator().manual_seed(3)
    f64 = torch.float64
    rbm = BernoulliRBM.from_parameters(
        torch.randn(7, 5, generator=g, dtype=f64),
        torch.randn(7, generator=g, dtype=f64),
        torch.randn(5, generator=g, dtype=f64),
    ).requires_grad_(True)
    log_partition_exact(rbm, chunk_size=4).backward()
    mine = [p.grad.clone() for p in (rbm.W, rbm.a, rbm.b)]
    for p in (rbm.W, rbm.a, rbm.b):
        p.grad = None
    h = binary_states(5, dtype=f64)
    torch.logsumexp(-rbm.hidden_free_energy(h), 0).backward()
    for ours, oracle in zip(mine, (rbm.W.grad, rbm.a.grad, rbm.b.grad), strict=True):
        torch.testing.assert_close(ours, oracle, rtol=1e-12, atol=1e-12)
