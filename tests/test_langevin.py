"""Tests of genphys.langevin: ULA's exact bias, MALA's exactness, the steps, clear failures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genphys import langevin, mixtures
from genphys.grid import Grid


def gaussian(variance: float):
    return lambda x: -0.5 * (x**2).sum(1) / variance


def double_well(x: torch.Tensor) -> torch.Tensor:
    """log f(x) = -2 (x^2 - 1)^2 - 0.5 x: two wells, unequal depths, barrier of about 2."""
    return -2.0 * (x[:, 0] ** 2 - 1.0) ** 2 - 0.5 * x[:, 0]


def variance_z(sample: torch.Tensor, target: float) -> float:
    """z-score of the sample variance of independent draws: SE = var * sqrt(2 / (n - 1)) (Gaussian)."""
    n = sample.numel()
    var = float(sample.var())
    return (var - target) / (target * math.sqrt(2.0 / (n - 1)))


# ------------------------------------------------------------------ stationary laws
@pytest.mark.parametrize(("variance", "step_size"), [(1.0, 0.2), (0.5, 0.4)])
def test_ula_has_the_exact_biased_stationary_variance(variance, step_size):
    # 20 000 independent chains; the last state of each is one independent draw. The chain
    # contracts by |1 - eta / s^2| per step, so after 150 steps the start is forgotten to
    # < 1e-7. Tolerance: 4.5 standard errors of a Gaussian sample variance.
    n_chains = 20_000
    x0 = torch.zeros(n_chains, 1, dtype=torch.float64)
    chain, rate = langevin.sample(
        gaussian(variance), x0, step_size=step_size, n_steps=150, method="ula", seed=1
    )
    assert chain.shape == (n_chains, 150, 1)  # chains first
    assert rate == 1.0
    exact = langevin.ula_stationary_variance(variance, step_size)
    assert abs(variance_z(chain[:, -1], exact)) < 4.5
    # ... and the bias is resolved: the unbiased value is rejected
    assert abs(variance_z(chain[:, -1], variance)) > 6


def test_mala_removes_the_bias():
    n_chains = 20_000
    x0 = torch.zeros(n_chains, 1, dtype=torch.float64)
    chain, rate = langevin.sample(
        gaussian(1.0), x0, step_size=0.4, n_steps=200, method="mala", seed=2
    )
    assert 0.8 < rate < 1.0  # rejections happen, and most moves are accepted
    # tolerance: 4.5 standard errors of the sample variance of independent last states
    assert abs(variance_z(chain[:, -1], 1.0)) < 4.5
    assert abs(variance_z(chain[:, -1], langevin.ula_stationary_variance(1.0, 0.4))) > 6


def test_mala_reproduces_double_well_moments_from_quadrature():
    grid = Grid(-4.0, 4.0, 4000, dim=1)
    p = grid.cell_probabilities(double_well(grid.points))  # (C,)
    x = grid.points[:, 0]
    exact = {k: float((p * x**k).sum()) for k in (1, 2, 3)}
    # start spread over both wells, not in the tails: there the gradient is so large that
    # MALA rejects every proposal and a chain stays stuck (Roberts & Tweedie 1996).
    # 10 000 independent chains; their last states are independent draws.
    g = torch.Generator().manual_seed(3)
    x0 = 3.0 * torch.rand(10_000, 1, generator=g, dtype=torch.float64) - 1.5
    chain, rate = langevin.sample(
        double_well, x0, step_size=0.05, n_steps=600, method="mala", generator=g
    )
    last = chain[:, -1, 0]
    for k, value in exact.items():
        moment = last**k
        se = float(moment.std()) / math.sqrt(last.numel())  # SE of a mean of independent draws
        assert abs(float(moment.mean()) - value) < 4.5 * se, (k, float(moment.mean()), value, se)
    assert rate > 0.8


# ----------------------------------------------------------------------- steps
def test_ula_step_is_the_formula():
    log_prob = gaussian(2.0)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    state = langevin.init(log_prob, x)
    np.testing.assert_allclose(state.grad, -x / 2.0)  # autograd gives the score
    new = langevin.ula_step(state, log_prob, 0.1, torch.Generator().manual_seed(4))
    xi = torch.randn(5, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    np.testing.assert_allclose(new.position, x - 0.1 * x / 2.0 + math.sqrt(0.2) * xi, rtol=1e-13)
    np.testing.assert_allclose(new.log_prob, log_prob(new.position), rtol=1e-13)
    assert bool(new.accepted.all())


def test_proposal_log_density_is_the_gaussian_kernel_up_to_a_constant():
    g = torch.Generator().manual_seed(5)
    x_from, x_to, grad = (torch.randn(6, 2, generator=g, dtype=torch.float64) for _ in range(3))
    eta = 0.3
    normal = torch.distributions.Normal(x_from + eta * grad, math.sqrt(2 * eta))
    exact = normal.log_prob(x_to).sum(1)  # (6,)
    ours = langevin.proposal_log_density(x_to, x_from, grad, eta)
    diff = exact - ours
    np.testing.assert_allclose(diff, diff[0].expand(6), rtol=1e-12)  # the same constant


def test_mala_log_acceptance_is_stable_for_far_points_and_large_gradients():
    x = torch.tensor([[0.0, 0.0], [1.0, -1.0]], dtype=torch.float64)
    x_prop = torch.tensor([[300.0, 0.0], [1.1, -1.0]], dtype=torch.float64)
    grad = torch.tensor([[1e3, 0.0], [0.0, 0.0]], dtype=torch.float64)
    grad_prop = torch.tensor([[-1e3, 0.0], [0.0, 0.0]], dtype=torch.float64)
    log_p = torch.tensor([0.0, -1.0], dtype=torch.float64)
    log_p_prop = torch.tensor([-5e4, -1.0], dtype=torch.float64)
    log_a = langevin.mala_log_acceptance(x, x_prop, log_p, log_p_prop, grad, grad_prop, 0.1)
    assert bool(torch.isfinite(log_a).all()) and bool((log_a <= 0).all())
    assert float(log_a[0]) < -1e4  # exp would underflow to 0 and log(0) = -inf
    # second chain: equal log p, zero gradients: symmetric proposal, always accepted
    assert float(log_a[1]) == 0.0


def test_mala_step_accepts_by_the_log_acceptance():
    log_prob = gaussian(1.0)
    x = torch.randn(4000, 2, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    state = langevin.init(log_prob, x)
    g = torch.Generator().manual_seed(7)
    new = langevin.mala_step(state, log_prob, 1.5, g)
    # replay the draws: the noise, then one uniform per chain
    g = torch.Generator().manual_seed(7)
    xi = torch.randn(x.shape, generator=g, dtype=x.dtype)
    u = torch.rand(x.shape[0], generator=g, dtype=x.dtype)
    x_prop = x + 1.5 * state.grad + math.sqrt(3.0) * xi
    s_prop = langevin.init(log_prob, x_prop)
    log_a = langevin.mala_log_acceptance(
        x, x_prop, state.log_prob, s_prop.log_prob, state.grad, s_prop.grad, 1.5
    )
    accepted = torch.log(u) < log_a
    assert torch.equal(new.accepted, accepted)
    assert 0 < float(accepted.double().mean()) < 1
    np.testing.assert_allclose(new.position, torch.where(accepted[:, None], x_prop, x))
    np.testing.assert_allclose(new.log_prob, log_prob(new.position), rtol=1e-13)


def test_seeding_reproduces_and_generator_is_threaded():
    x0 = torch.zeros(3, 2, dtype=torch.float64)
    a, _ = langevin.sample(gaussian(1.0), x0, step_size=0.1, n_steps=5, method="mala", seed=8)
    b, _ = langevin.sample(gaussian(1.0), x0, step_size=0.1, n_steps=5, method="mala", seed=8)
    assert torch.equal(a, b)
    g = torch.Generator().manual_seed(8)
    c, _ = langevin.sample(gaussian(1.0), x0, step_size=0.1, n_steps=5, method="mala", generator=g)
    d, _ = langevin.sample(gaussian(1.0), x0, step_size=0.1, n_steps=5, method="mala", generator=g)
    assert torch.equal(a, c) and not torch.equal(c, d)


def test_dtype_is_kept():
    x0 = torch.zeros(4, 2, dtype=torch.float32)
    chain, _ = langevin.sample(gaussian(1.0), x0, step_size=0.1, n_steps=3, method="ula", seed=0)
    assert chain.dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    x0 = torch.zeros(4, 2, dtype=torch.float64, device="cuda")
    chain, rate = langevin.sample(gaussian(1.0), x0, step_size=0.1, n_steps=3, seed=0)
    assert chain.device.type == "cuda" and 0 <= rate <= 1


# --------------------------------------------------------------- clear failures
@pytest.mark.parametrize("step_size", [0.0, -0.1, math.nan, math.inf])
def test_bad_step_size(step_size):
    with pytest.raises(ValueError, match="step_size must be a finite number > 0"):
        langevin.sample(gaussian(1.0), torch.zeros(2, 1), step_size=step_size, n_steps=2, seed=0)


def test_bad_shapes_and_arguments():
    with pytest.raises(ValueError, match=r"x0 must have shape \(n_chains, dim\)"):
        langevin.sample(gaussian(1.0), torch.zeros(3), step_size=0.1, n_steps=2, seed=0)
    with pytest.raises(ValueError, match=r"log_prob must return a tensor of shape \(3,\)"):
        langevin.sample(lambda x: -(x**2), torch.zeros(3, 2), step_size=0.1, n_steps=2, seed=0)
    with pytest.raises(ValueError, match="method must be one of"):
        langevin.sample(
            gaussian(1.0), torch.zeros(3, 2), step_size=0.1, n_steps=2, method="hmc", seed=0
        )
    with pytest.raises(TypeError, match="log_prob must be callable"):
        langevin.sample(3.0, torch.zeros(3, 2), step_size=0.1, n_steps=2, seed=0)
    with pytest.raises(ValueError, match="n_steps must be an integer >= 1"):
        langevin.sample(gaussian(1.0), torch.zeros(3, 2), step_size=0.1, n_steps=0, seed=0)
    with pytest.raises(TypeError, match="seed must be an integer"):
        langevin.sample(gaussian(1.0), torch.zeros(3, 2), step_size=0.1, n_steps=2)
    with pytest.raises(ValueError, match="x0 must contain only finite values"):
        langevin.sample(
            gaussian(1.0), torch.full((3, 2), math.nan), step_size=0.1, n_steps=2, seed=0
        )
    with pytest.raises(ValueError, match="log_prob must be differentiable"):
        langevin.sample(
            lambda x: torch.zeros(x.shape[0]), torch.zeros(3, 2), step_size=0.1, n_steps=2, seed=0
        )
    with pytest.raises(TypeError, match="state must be a LangevinState"):
        langevin.ula_step(torch.zeros(3, 2), gaussian(1.0), 0.1, torch.Generator())
    with pytest.raises(ValueError, match="step_size must be < 2"):
        langevin.ula_stationary_variance(1.0, 2.0)


def test_log_prob_returning_nan_at_the_start_is_named():
    with pytest.raises(ValueError, match="At x0: log_prob and its gradient must be finite"):
        langevin.sample(
            lambda x: torch.log(x[:, 0] - 1.0), torch.zeros(3, 1), step_size=0.1, n_steps=2, seed=0
        )


def test_log_prob_returning_nan_later_names_the_step():
    def log_prob(x):  # a bug: NaN once a proposal passes x = 3 (log of a negative number)
        return -0.5 * x[:, 0] ** 2 + torch.log(3.0 - x[:, 0])

    with pytest.raises(
        langevin.SamplerDivergedError, match=r"MALA produced NaN or infinity at step \d+"
    ) as info:
        langevin.sample(
            log_prob,
            torch.zeros(200, 1, dtype=torch.float64),
            step_size=0.5,
            n_steps=500,
            method="mala",
            seed=0,
        )
    assert info.value.step >= 1


def test_unstable_ula_stops_and_says_at_which_step():
    # eta > 2 s^2: the chain grows by |1 - eta / s^2| = 1.5 per step and overflows float32
    with pytest.raises(
        langevin.SamplerDivergedError, match="ULA produced NaN or infinity at step"
    ) as info:
        langevin.sample(
            gaussian(1.0), torch.ones(4, 1), step_size=2.5, n_steps=1000, method="ula", seed=0
        )
    assert 100 < info.value.step < 1000


# ----------------------------------------------------- the exercises match the library
def test_exercise_solutions_are_the_library_steps():
    from genphys.exercises import ch10

    for x, score, eta, g in ch10._ula_cases():
        # a log-density whose autograd gradient is `score`, for the library's step
        ref = {
            ch10._gaussian_score: gaussian(0.5),
            ch10._double_well_score: lambda y: -2.0 * ((y**2 - 1.0) ** 2).sum(1),
            ch10._ring_score: mixtures.ring().log_prob,
        }[score]
        state = langevin.init(ref, x)
        np.testing.assert_allclose(state.grad, score(x), rtol=1e-13)
        g2 = torch.Generator().manual_seed(0)
        g2.set_state(g.get_state())
        want = langevin.ula_step(state, ref, eta, g2).position
        np.testing.assert_allclose(ch10.ula_step(x, score, eta, g), want, rtol=1e-13)
    for case in ch10._mala_cases():
        np.testing.assert_allclose(
            ch10.mala_log_acceptance(*case), langevin.mala_log_acceptance(*case), rtol=1e-13
        )


def test_statistical_check_catches_an_answer_fitted_to_the_seeded_cases():
    from genphys.exercises import ch10

    def fitted(x, score, eta, g):
        # Right on every case drawn from the checker's fixed list of scores (seeded, fresh
        # random and stress cases), no noise otherwise: only the statistical test can tell.
        named = getattr(score, "__name__", "<lambda>") != "<lambda>"
        return ch10.ula_step(x, score, eta, g) if named else x + eta * score(x)

    feedback = ch10.check_ula_step(fitted)
    assert feedback.status == "incorrect"
    assert "fresh random numbers" in feedback.message
    assert ch10.check_ula_step(ch10.ula_step).passed


@pytest.mark.parametrize("step_size", [0.0, -0.1, math.nan])
@pytest.mark.parametrize("kernel", [langevin.ula_step, langevin.mala_step])
def test_kernels_name_a_bad_step_size(kernel, step_size):
    state = langevin.init(gaussian(1.0), torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="step_size must be a finite number > 0"):
        kernel(state, gaussian(1.0), step_size, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("kernel", [langevin.ula_step, langevin.mala_step])
def test_kernels_refuse_a_missing_generator(kernel):
    # generator=None used to draw silently from the global RNG
    state = langevin.init(gaussian(1.0), torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        kernel(state, gaussian(1.0), 0.1, None)


def test_proposal_log_density_names_a_bad_step_size():
    x = torch.zeros(2, 1, dtype=torch.float64)
    with pytest.raises(ValueError, match="step_size must be a finite number > 0"):
        langevin.proposal_log_density(x, x, x, 0.0)
