"""Tests for genphys.mcmc: samplers against exact distributions, autocorrelation against AR(1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genphys import mcmc
from genphys.enumeration import binary_states
from genphys.rbm import BernoulliRBM, log_partition_exact


def _codes(x: torch.Tensor) -> torch.Tensor:
    """Integer code of binary rows, bit i weighted 2**i (the order of binary_states)."""
    powers = 2 ** torch.arange(x.shape[-1], dtype=torch.int64)
    return (x.round().to(torch.int64) * powers).sum(-1)


def _frequencies(x: torch.Tensor, n_states: int) -> torch.Tensor:
    return torch.bincount(_codes(x), minlength=n_states).double() / x.shape[0]


def _assert_matches_distribution(freq, p, n, *, z=5.0, bias=0.0):
    """Every state's frequency within z standard errors (+ a bias bound) of p.

    For n independent draws the count of a state is binomial, so the frequency has
    SE = sqrt(p (1 - p) / n). With at most 128 states, a 5 SE bound fails by chance
    with probability below 128 * 6e-7 < 1e-4.
    """
    p = torch.as_tensor(p, dtype=torch.float64)
    se = torch.sqrt(p * (1 - p) / n)
    excess = (freq - p).abs() - (z * se + bias)
    assert bool((excess <= 0).all()), (
        f"worst state {int(excess.argmax())}: freq {freq[excess.argmax()]:.5f}, "
        f"p {p[excess.argmax()]:.5f}, SE {se[excess.argmax()]:.2e}"
    )


def _frequencies_from_codes(codes: torch.Tensor, n_states: int) -> torch.Tensor:
    return torch.bincount(codes, minlength=n_states).double() / codes.shape[0]


def _single_flip_proposal_matrix(n_bits: int) -> torch.Tensor:
    states = binary_states(n_bits)
    hamming = torch.cdist(states, states, p=1)
    return (hamming == 1).double() / n_bits  # (2**n, 2**n)


def _second_eigenvalue(P: torch.Tensor) -> float:
    eig = np.sort(np.abs(np.linalg.eigvals(P.numpy())))[::-1]
    return float(eig[1])


# -------------------------------------------------------------- exact kernel
def test_metropolis_hastings_matrix_against_loops_and_detailed_balance():
    gen = torch.Generator().manual_seed(0)
    n = 6
    log_p = torch.randn(n, generator=gen, dtype=torch.float64)
    q = torch.rand(n, n, generator=gen, dtype=torch.float64)
    q = q / q.sum(1, keepdim=True)  # asymmetric proposal: tests the Hastings correction
    P = mcmc.metropolis_hastings_matrix(log_p, q)
    p = torch.exp(log_p)
    expected = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        for j in range(n):
            if i != j:
                expected[i, j] = q[i, j] * min(1.0, p[j] * q[j, i] / (p[i] * q[i, j]))
        expected[i, i] = 1.0 - expected[i].sum()
    torch.testing.assert_close(P, expected, rtol=1e-12, atol=1e-14)
    pi = p / p.sum()
    flow = pi[:, None] * P
    torch.testing.assert_close(flow, flow.T, rtol=1e-12, atol=1e-15)  # detailed balance
    torch.testing.assert_close(pi @ P, pi, rtol=1e-12, atol=1e-15)  # stationarity


def test_metropolis_hastings_step_reproduces_the_exact_kernel_row():
    # One step from a fixed state of 3 bits, repeated in n = 200000 chains: the
    # frequency of each next state is binomial with SE = sqrt(P(1-P)/n) <= 1.2e-3.
    gen = torch.Generator().manual_seed(1)
    log_p_table = torch.randn(8, generator=gen, dtype=torch.float64)
    log_prob = lambda x: log_p_table[_codes(x)]
    n = 200_000
    start = 5
    x = binary_states(3)[start].repeat(n, 1)
    x_next, log_p_next, accepted = mcmc.metropolis_hastings_step(
        x, log_prob, mcmc.flip_one_bit, generator=gen
    )
    P = mcmc.metropolis_hastings_matrix(log_p_table, _single_flip_proposal_matrix(3))
    _assert_matches_distribution(_frequencies(x_next, 8), P[start], n)
    torch.testing.assert_close(log_p_next, log_prob(x_next))
    assert bool((accepted == (_codes(x_next) != start)).all())


# ---------------------------------------------------------- MH distributions
def test_metropolis_hastings_reproduces_exact_distribution_over_16_states():
    gen = torch.Generator().manual_seed(2)
    log_p_table = 1.5 * torch.randn(16, generator=gen, dtype=torch.float64)
    p = torch.softmax(log_p_table, 0)
    log_prob = lambda x: log_p_table[_codes(x)]
    # The exact kernel's second eigenvalue bounds the distance to equilibrium after t
    # steps by |lambda_2|**t / min(p) (times a constant of order 1); we pick t so that
    # this bias is below 1e-6, far below the statistical SE.
    P = mcmc.metropolis_hastings_matrix(log_p_table, _single_flip_proposal_matrix(4))
    lam = _second_eigenvalue(P)
    n_steps = math.ceil(math.log(1e-6 * float(p.min())) / math.log(lam))
    assert n_steps < 400
    n = 20_000  # independent chains: SE = sqrt(p(1-p)/n) <= 3.6e-3
    x0 = torch.bernoulli(torch.full((n, 4), 0.5, dtype=torch.float64), generator=gen)
    result = mcmc.metropolis_hastings(log_prob, x0, 1, burn_in=n_steps - 1, generator=gen)
    assert result.samples.shape == (n, 1, 4)
    _assert_matches_distribution(_frequencies(result.samples[:, 0], 16), p, n, bias=1e-6)
    assert 0.0 < float(result.acceptance_rate.mean()) < 1.0


def test_metropolis_hastings_uses_the_hastings_correction():
    # An asymmetric proposal: pick a bit, set it to 1 with probability 0.8. Without the
    # correction log q(x|x') - log q(x'|x) the chain would be biased towards ones.
    gen = torch.Generator().manual_seed(3)
    log_p_table = torch.randn(8, generator=gen, dtype=torch.float64)
    p = torch.softmax(log_p_table, 0)
    log_prob = lambda x: log_p_table[_codes(x)]
    q_one = 0.8

    def biased(x, generator):
        site = torch.randint(3, (x.shape[0],), generator=generator)
        new_bit = (torch.rand(x.shape[0], generator=generator, dtype=x.dtype) < q_one).double()
        rows = torch.arange(x.shape[0])
        old_bit = x[rows, site]
        x_new = x.clone()
        x_new[rows, site] = new_bit
        log_q = lambda b: torch.log(torch.where(b == 1, q_one, 1 - q_one))
        return x_new, log_q(old_bit) - log_q(new_bit)

    n = 20_000  # SE = sqrt(p(1-p)/n) <= 3.6e-3
    x0 = torch.zeros(n, 3, dtype=torch.float64)
    result = mcmc.metropolis_hastings(log_prob, x0, 1, burn_in=200, proposal=biased, generator=gen)
    _assert_matches_distribution(_frequencies(result.samples[:, 0], 8), p, n)


def test_gaussian_random_walk_targets_a_gaussian():
    # Target N(1, 2^2). n = 4000 independent chains after 300 steps (the step size 2.5
    # gives an autocorrelation time of a few steps, so 300 steps forget the start at 0).
    # SE of the mean = 2/sqrt(n) = 0.032; SE of the variance = 4 sqrt(2/n) = 0.089.
    gen = torch.Generator().manual_seed(4)
    mu, sigma = 1.0, 2.0
    log_prob = lambda x: -0.5 * ((x[:, 0] - mu) / sigma) ** 2
    n = 4000
    result = mcmc.metropolis_hastings(
        log_prob,
        torch.zeros(n, 1, dtype=torch.float64),
        1,
        burn_in=299,
        proposal=mcmc.gaussian_random_walk(2.5),
        generator=gen,
    )
    x = result.samples[:, 0, 0]
    assert abs(float(x.mean()) - mu) < 5 * sigma / math.sqrt(n)
    assert abs(float(x.var()) - sigma**2) < 5 * sigma**2 * math.sqrt(2 / n)
    assert 0.2 < float(result.acceptance_rate.mean()) < 0.8


def test_metropolis_hastings_burn_in_thin_and_shapes():
    gen = torch.Generator().manual_seed(5)
    calls = []

    def log_prob(x):
        calls.append(1)
        return -x.sum(1)

    x0 = torch.zeros(7, 3, dtype=torch.float64)
    result = mcmc.metropolis_hastings(log_prob, x0, 4, burn_in=3, thin=2, generator=gen)
    assert result.samples.shape == (7, 4, 3)
    assert result.log_prob.shape == (7, 4)
    assert result.acceptance_rate.shape == (7,)
    assert len(calls) == 1 + 3 + 4 * 2  # initial state + one proposal per step
    torch.testing.assert_close(result.log_prob, -result.samples.sum(-1))


def test_metropolis_hastings_is_deterministic_given_the_generator():
    log_prob = lambda x: -(x * torch.arange(1.0, 5.0, dtype=torch.float64)).sum(1)
    x0 = torch.zeros(10, 4, dtype=torch.float64)
    a = mcmc.metropolis_hastings(log_prob, x0, 5, generator=torch.Generator().manual_seed(9))
    b = mcmc.metropolis_hastings(log_prob, x0, 5, generator=torch.Generator().manual_seed(9))
    assert torch.equal(a.samples, b.samples)


# ------------------------------------------------------------------- Gibbs
def _small_rbm(seed: int = 0) -> BernoulliRBM:
    rbm = BernoulliRBM(4, 3, seed=seed, weight_scale=1.0)
    gen = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        rbm.a.copy_(0.5 * torch.randn(4, generator=gen, dtype=torch.float64))
        rbm.b.copy_(0.5 * torch.randn(3, generator=gen, dtype=torch.float64))
    return rbm


def _gibbs_kernel(rbm: BernoulliRBM) -> torch.Tensor:
    """Exact x -> x' kernel of one Gibbs step, K(x, x') = sum_h p(h|x) p(x'|h)."""
    with torch.no_grad():
        xs, hs = binary_states(rbm.n_visible), binary_states(rbm.n_hidden)
        ph = rbm.prob_h_given_x(xs)  # (X, N)
        p_h_given_x = torch.prod(hs[None] * ph[:, None] + (1 - hs[None]) * (1 - ph[:, None]), -1)
        px = rbm.prob_x_given_h(hs)  # (H, M)
        p_x_given_h = torch.prod(xs[None] * px[:, None] + (1 - xs[None]) * (1 - px[:, None]), -1)
        return p_h_given_x @ p_x_given_h  # (X, X)


def test_gibbs_chain_reproduces_exact_rbm_marginal():
    rbm = _small_rbm()
    with torch.no_grad():
        p = torch.exp(-rbm.free_energy(binary_states(4)) - log_partition_exact(rbm))
    torch.testing.assert_close(p.sum(), torch.tensor(1.0, dtype=torch.float64))
    K = _gibbs_kernel(rbm)
    torch.testing.assert_close(p @ K, p)  # p(x) is stationary for the exact kernel
    # Bias after k steps <= |lambda_2|**k / min p; choose k for a bias below 1e-6.
    k = math.ceil(math.log(1e-6 * float(p.min())) / math.log(_second_eigenvalue(K)))
    n = 20_000  # independent chains, SE = sqrt(p(1-p)/n) <= 3.6e-3
    gen = torch.Generator().manual_seed(11)
    x0 = torch.zeros(n, 4, dtype=torch.float64)
    x_k, h = mcmc.gibbs_chain(rbm, x0, k, generator=gen)
    assert x_k.shape == (n, 4) and h.shape == (n, 3)
    _assert_matches_distribution(_frequencies(x_k, 16), p, n, bias=1e-6)


def test_gibbs_step_returns_a_joint_sample():
    # If x ~ p(x), the returned pair (x_next, h) is a draw from p(x, h): compare with the
    # exact joint e^{-E(x,h)}/Z over all 2**7 = 128 pairs. SE = sqrt(p(1-p)/n).
    rbm = _small_rbm(1)
    gen = torch.Generator().manual_seed(12)
    n = 40_000
    x, _ = mcmc.gibbs_chain(rbm, torch.zeros(n, 4, dtype=torch.float64), 60, generator=gen)
    x_next, h = mcmc.gibbs_step(rbm, x, generator=gen)
    joint = binary_states(7)
    with torch.no_grad():
        log_w = -rbm.energy(joint[:, :4], joint[:, 4:])
    p = torch.softmax(log_w, 0)
    freq = _frequencies(torch.cat([x_next, h], 1), 128)
    _assert_matches_distribution(freq, p, n, bias=1e-5)


def test_gibbs_chain_equals_repeated_steps_and_gibbs_sample_shapes():
    rbm = _small_rbm(2)
    x0 = torch.bernoulli(torch.full((5, 4), 0.5, dtype=torch.float64))
    x_chain, h_chain = mcmc.gibbs_chain(rbm, x0, 3, generator=torch.Generator().manual_seed(7))
    gen = torch.Generator().manual_seed(7)
    x = x0
    for _ in range(3):
        x, h = mcmc.gibbs_step(rbm, x, generator=gen)
    assert torch.equal(x, x_chain) and torch.equal(h, h_chain)
    samples = mcmc.gibbs_sample(
        rbm, x0, 6, burn_in=2, thin=3, generator=torch.Generator().manual_seed(7)
    )
    assert samples.shape == (5, 6, 4)
    assert set(samples.unique().tolist()) <= {0.0, 1.0}


def test_gibbs_sample_mean_matches_exact_within_mcmc_standard_error():
    # Mean of x_0 over correlated Gibbs samples: SE from the integrated autocorrelation
    # time (standard_error), 5 SE plus the estimated error of tau itself (~10%).
    rbm = _small_rbm(3)
    with torch.no_grad():
        states = binary_states(4)
        p = torch.exp(-rbm.free_energy(states) - log_partition_exact(rbm))
    exact_mean = float(p @ states[:, 0])
    gen = torch.Generator().manual_seed(13)
    samples = mcmc.gibbs_sample(
        rbm, torch.zeros(32, 4, dtype=torch.float64), 2000, burn_in=100, generator=gen
    )
    series = samples[:, :, 0]  # (32, 2000)
    se = mcmc.standard_error(series)
    assert abs(float(series.mean()) - exact_mean) < 5.5 * se


# --------------------------------------------------------- autocorrelation
def _ar1(rho: float, n_chains: int, n_steps: int, seed: int) -> torch.Tensor:
    """x_t = rho x_{t-1} + sqrt(1 - rho^2) eps_t, started in equilibrium: corr = rho^|t|."""
    rng = np.random.default_rng(seed)
    eps = rng.standard_normal((n_chains, n_steps))
    x = np.empty((n_chains, n_steps))
    x[:, 0] = eps[:, 0]
    scale = math.sqrt(1 - rho**2)
    for t in range(1, n_steps):
        x[:, t] = rho * x[:, t - 1] + scale * eps[:, t]
    return torch.from_numpy(x)


def test_autocorrelation_of_ar1_is_geometric():
    rho, n_chains, n_steps = 0.9, 64, 20_000
    series = _ar1(rho, n_chains, n_steps, seed=0)
    acf = mcmc.autocorrelation(series, max_lag=30)
    assert acf.shape == (31,)
    assert float(acf[0]) == 1.0
    # Bartlett: Var[rho_hat(t)] <= (1 + rho^2)/(1 - rho^2) / N = 9.5/N with
    # N = 64 * 20000 = 1.28e6 draws, so SE <= 2.7e-3; subtracting each chain's mean
    # biases rho_hat by about -tau/n_steps = -1e-3. Allow 5 SE + 1e-3 = 0.015.
    expected = rho ** torch.arange(31, dtype=torch.float64)
    torch.testing.assert_close(acf, expected, atol=0.015, rtol=0)


def test_integrated_autocorrelation_time_and_ess_of_ar1():
    rho, n_chains, n_steps = 0.9, 64, 20_000
    series = _ar1(rho, n_chains, n_steps, seed=1)
    tau_exact = (1 + rho) / (1 - rho)  # = 19
    tau = mcmc.integrated_autocorrelation_time(series)
    # Sokal: Var[tau_hat] ~ 2 (2M + 1)/N tau^2 with window M ~ 5 tau = 95 and N = 1.28e6,
    # a relative SE of 1.7%; the truncation bias 2 rho^(M+1)/(1-rho) < 1e-3 is negligible.
    # We allow 6 relative SE = 10%.
    assert abs(tau - tau_exact) < 0.10 * tau_exact
    ess = mcmc.effective_sample_size(series)
    assert ess == pytest.approx(n_chains * n_steps / tau)
    # SE of the mean of an AR(1) chain: sqrt(tau / N) for unit variance.
    assert mcmc.standard_error(series) == pytest.approx(
        math.sqrt(tau_exact / series.numel()), rel=0.1
    )


def test_autocorrelation_of_independent_draws():
    # i.i.d. normal draws: rho(t) = 0 for t >= 1 with SE 1/sqrt(N) = 1/sqrt(2e5) = 2.2e-3,
    # and tau_int = 1 (relative SE sqrt(2 (2M+1)/N) with M ~ 5: 1.5%; allow 10%).
    series = torch.from_numpy(np.random.default_rng(2).standard_normal((20, 10_000)))
    acf = mcmc.autocorrelation(series, max_lag=10)
    assert float(acf[1:].abs().max()) < 5 * 2.2e-3 + 1e-4
    assert mcmc.integrated_autocorrelation_time(series) == pytest.approx(1.0, abs=0.1)
    one_chain = series[0]
    acf_one = mcmc.autocorrelation(one_chain, max_lag=3)
    assert acf_one.shape == (4,)


def test_autocorrelation_matches_direct_sum():
    x = torch.from_numpy(np.random.default_rng(3).standard_normal((3, 50)))
    d = x - x.mean(1, keepdim=True)
    direct = torch.stack([(d[:, : 50 - t] * d[:, t:]).sum(1).mean() / 50 for t in range(50)])
    torch.testing.assert_close(mcmc.autocorrelation(x), direct / direct[0])


# ------------------------------------------------------------ chain layout
def test_langevin_chains_come_out_chains_first_and_the_diagnostics_read_them_so():
    # 1000 chains x 300 ULA steps on N(0, 1) with eta = 0.1, started in ULA's stationary law:
    # each chain is an AR(1) with rho = 1 - eta = 0.9 (tau_int = 19). Read steps first,
    # the same numbers gave tau = 0.997 and a standard error 4x too small, without a warning.
    from genphys import langevin

    eta, n_chains, n_steps = 0.1, 1000, 300
    v = langevin.ula_stationary_variance(1.0, eta)
    g = torch.Generator().manual_seed(0)
    x0 = math.sqrt(v) * torch.randn(n_chains, 1, generator=g, dtype=torch.float64)
    chain, _ = langevin.sample(
        lambda x: -0.5 * (x**2).sum(1), x0, step_size=eta, n_steps=n_steps, method="ula", seed=1
    )
    assert chain.shape == (n_chains, n_steps, 1)
    series = chain[..., 0]  # (C, n): a series of 1000 chains of 300 steps, no warning
    # Sokal's window at 300 steps cuts the sum early (tau_hat ~ 12 for 19); the wrong
    # orientation gives ~1.
    assert mcmc.integrated_autocorrelation_time(series) > 9.0
    # Exact variance of a stationary AR(1) chain mean of n steps:
    # v / n * [(1 + rho)/(1 - rho) - 2 rho (1 - rho^n) / (n (1 - rho)^2)]; the standard error
    # of the overall mean divides it by C. The estimate comes from 1000 chain means, whose
    # standard deviation has a relative SE of 1/sqrt(2 * 999) = 2.2 %: 10 % is 4.5 SE.
    rho = 1.0 - eta
    factor = (1 + rho) / (1 - rho) - 2 * rho * (1 - rho**n_steps) / (n_steps * (1 - rho) ** 2)
    exact = math.sqrt(v / n_steps * factor / n_chains)
    assert mcmc.standard_error(series, warn=False) == pytest.approx(exact, rel=0.10)
    assert mcmc.effective_sample_size(series) < series.numel() / 9.0


@pytest.mark.parametrize(
    "diagnostic",
    [
        mcmc.autocorrelation,
        mcmc.integrated_autocorrelation_time,
        mcmc.effective_sample_size,
        mcmc.standard_error,
        mcmc.split_rhat,
    ],
)
def test_diagnostics_take_one_layout_with_no_option_and_no_guess(diagnostic):
    # One layout, chains first: there is no layout option to get wrong ...
    series = _ar1(0.9, 16, 2_000, seed=6)  # (C, n)
    with pytest.raises(TypeError, match="layout"):
        diagnostic(series, layout="steps_first")
    # ... and many chains of few steps is a valid input, read as it is (no warning: the
    # test configuration turns warnings into errors)
    options = {"warn": False} if diagnostic is mcmc.standard_error else {}  # R-hat is noisy
    diagnostic(_ar1(0.2, 400, 40, seed=7), **options)


def test_ess_never_exceeds_the_number_of_draws():
    # Strongly anticorrelated AR(1) (rho = -0.9) has tau = 0.05: n / tau would be 20x the
    # number of draws; the ESS is clipped at the draws.
    series = _ar1(-0.9, 4, 5_000, seed=7)
    assert mcmc.integrated_autocorrelation_time(series) < 0.2
    assert mcmc.effective_sample_size(series) == series.numel()
    # independent draws: ESS within its sampling spread of n, never above
    iid = torch.from_numpy(np.random.default_rng(8).standard_normal((8, 5_000)))
    assert 0.8 * iid.numel() < mcmc.effective_sample_size(iid) <= iid.numel()


# ---------------------------------------------------------------- split R-hat
@pytest.mark.parametrize("rank_normalize", [True, False])
def test_split_rhat_of_iid_chains_is_one_within_its_spread(rank_normalize):
    # For i.i.d. draws, with m = 2C half-chains of n steps, n var(means) / W follows
    # F(m - 1, m (n - 1)), so R-hat^2 - 1 = (F - 1)/n has SD sqrt(2 / (m - 1)) / n and
    # R-hat - 1 has SD ~ sqrt(2 / (m - 1)) / (2 n). Allow 5 SD over 5 seeds.
    C, steps = 8, 2_000
    m, n = 2 * C, steps // 2
    sd = math.sqrt(2 / (m - 1)) / (2 * n)
    for seed in range(5):
        iid = torch.from_numpy(np.random.default_rng(seed).standard_normal((C, steps)))
        rhat = mcmc.split_rhat(iid, rank_normalize=rank_normalize)
        assert abs(rhat - 1.0) < 5 * sd + (1.0 / n if rank_normalize else 0.0), rhat


def test_split_rhat_matches_the_formula_of_vehtari_et_al():
    x = torch.from_numpy(np.random.default_rng(9).standard_normal((3, 11)))
    halves = np.concatenate([x[:, :5].numpy(), x[:, -5:].numpy()])  # middle step dropped
    n = 5
    within = halves.var(axis=1, ddof=1).mean()
    between_over_n = halves.mean(axis=1).var(ddof=1)
    expected = math.sqrt(((n - 1) / n * within + between_over_n) / within)
    assert mcmc.split_rhat(x, rank_normalize=False) == pytest.approx(expected, rel=1e-12)


def test_split_rhat_detects_shifted_and_drifting_chains():
    rng = np.random.default_rng(10)
    shifted = torch.from_numpy(rng.standard_normal((4, 1_000)) + np.arange(4)[:, None])
    assert mcmc.split_rhat(shifted) > 1.3
    drifting = torch.from_numpy(rng.standard_normal((1, 1_000)) + np.linspace(0, 3, 1_000))
    assert mcmc.split_rhat(drifting) > 1.3  # one chain that disagrees with itself


def test_standard_error_covers_chains_stuck_in_different_modes():
    # 64 chains, each stuck in its own mode: f = mu_c + noise, mu_c ~ N(0, 1), noise
    # N(0, 0.1^2) i.i.d. The overall mean has true SD sqrt(1/64 + 0.01/64000) = 0.125.
    # Before, the error used only the within-chain variance: sqrt(0.01/64000) = 4e-4,
    # 300x too small. The between-chain estimate s/sqrt(C) has relative SD
    # 1/sqrt(2 (C - 1)) = 9 %; allow 4 of them.
    rng = np.random.default_rng(11)
    C, n = 64, 1_000
    series = torch.from_numpy(rng.standard_normal((C, 1)) + 0.1 * rng.standard_normal((C, n)))
    true_sd = math.sqrt(1 / C + 0.01 / (C * n))
    with pytest.warns(mcmc.RHatWarning, match=r"R-hat = .* > 1.01"):
        se = mcmc.standard_error(series)
    assert abs(se / true_sd - 1) < 4 / math.sqrt(2 * (C - 1))
    assert mcmc.split_rhat(series) > 2.0
    # mixed chains: no warning, and the estimate is the usual within-chain one
    iid = torch.from_numpy(rng.standard_normal((C, n)))
    se_iid = mcmc.standard_error(iid)
    assert se_iid == pytest.approx(1 / math.sqrt(C * n), rel=0.1)


# --------------------------------------------------------- spin-flip proposal
def test_flip_one_bit_refuses_spins_and_points_to_flip_one_spin():
    # 200 chains of spins: some chain picks a -1 at once (probability 1 - (2/3)^200)
    spins = torch.tensor([[1.0, -1.0, 1.0]], dtype=torch.float64).repeat(200, 1)
    with pytest.raises(ValueError, match="flip_one_spin"):
        mcmc.flip_one_bit(spins, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="flip_one_spin"):
        mcmc.metropolis_hastings(
            lambda x: x.sum(1), spins, 3, generator=torch.Generator().manual_seed(0)
        )
    with pytest.raises(ValueError, match="flip_one_bit"):
        mcmc.flip_one_spin(torch.tensor([[0.0, 0.0]]), torch.Generator().manual_seed(0))


def test_flip_one_spin_changes_exactly_one_sign():
    x = (
        2.0
        * torch.bernoulli(torch.full((500, 3, 3), 0.5), generator=torch.Generator().manual_seed(1))
        - 1
    )
    proposed, log_q = mcmc.flip_one_spin(x, torch.Generator().manual_seed(2))
    assert torch.equal((proposed != x).reshape(500, -1).sum(1), torch.ones(500, dtype=torch.int64))
    assert torch.equal(proposed.abs(), torch.ones_like(x)) and torch.equal(log_q, torch.zeros(500))


def test_metropolis_hastings_with_spin_flips_samples_the_ising_distribution():
    # 2x2 periodic Ising at T = 2.5 with single spin flips: the frequency of each of the
    # 16 states matches exact enumeration (5 binomial SE with the chains' independence).
    from genphys import ising

    L, T = 2, 2.5
    states = 2.0 * binary_states(L * L).reshape(-1, L, L) - 1.0  # (16, 2, 2)
    p = torch.softmax(-ising.energy(states) / T, 0)
    x0 = torch.ones(4000, L, L, dtype=torch.float64)
    result = mcmc.metropolis_hastings(
        lambda s: -ising.energy(s) / T,
        x0,
        1,
        generator=torch.Generator().manual_seed(3),
        proposal=mcmc.flip_one_spin,
        burn_in=200,
    )
    x = result.samples[:, 0]  # (4000, 2, 2), one state per independent chain
    assert torch.equal(x.abs(), torch.ones_like(x))
    codes = ((x.reshape(-1, 4) > 0).long() * 2 ** torch.arange(4)).sum(1)
    _assert_matches_distribution(_frequencies_from_codes(codes, 16), p, 4000)


# -------------------------------------------------------------- bad inputs
def test_bad_input_metropolis_hastings():
    gen = torch.Generator().manual_seed(0)
    log_prob = lambda x: -x.sum(1)
    x0 = torch.zeros(4, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="n_samples"):
        mcmc.metropolis_hastings(log_prob, x0, 0, generator=gen)
    with pytest.raises(TypeError, match="n_samples"):
        mcmc.metropolis_hastings(log_prob, x0, 2.5, generator=gen)
    with pytest.raises(ValueError, match="burn_in"):
        mcmc.metropolis_hastings(log_prob, x0, 1, burn_in=-1, generator=gen)
    with pytest.raises(ValueError, match="thin"):
        mcmc.metropolis_hastings(log_prob, x0, 1, thin=0, generator=gen)
    with pytest.raises(TypeError, match="generator"):
        mcmc.metropolis_hastings(log_prob, x0, 1, generator=0)
    with pytest.raises(TypeError, match="log_prob"):
        mcmc.metropolis_hastings("not callable", x0, 1, generator=gen)
    with pytest.raises(TypeError, match="proposal"):
        mcmc.metropolis_hastings(log_prob, x0, 1, proposal=3, generator=gen)
    with pytest.raises(ValueError, match="x0"):
        mcmc.metropolis_hastings(log_prob, torch.full((4, 3), math.nan), 1, generator=gen)
    with pytest.raises(ValueError, match="x0"):
        mcmc.metropolis_hastings(log_prob, torch.tensor(1.0), 1, generator=gen)
    with pytest.raises(ValueError, match="log_prob"):
        mcmc.metropolis_hastings(lambda x: x, x0, 1, generator=gen)  # wrong shape
    with pytest.raises(ValueError, match="log_prob"):
        mcmc.metropolis_hastings(lambda x: x.sum(1) * math.nan, x0, 1, generator=gen)
    with pytest.raises(ValueError, match="x0"):
        mcmc.metropolis_hastings(lambda x: x.sum(1) - math.inf, x0, 1, generator=gen)
    bad_proposal = lambda x, g: (x[:, :2], torch.zeros(x.shape[0]))
    with pytest.raises(ValueError, match="proposal"):
        mcmc.metropolis_hastings(log_prob, x0, 1, proposal=bad_proposal, generator=gen)


def test_bad_input_metropolis_hastings_step():
    gen = torch.Generator().manual_seed(0)
    log_prob = lambda x: -x.sum(1)
    x = torch.zeros(4, 3, dtype=torch.float64)
    with pytest.raises(TypeError, match="generator"):
        mcmc.metropolis_hastings_step(x, log_prob, mcmc.flip_one_bit, generator=None)
    with pytest.raises(TypeError, match="log_prob"):
        mcmc.metropolis_hastings_step(x, None, mcmc.flip_one_bit, generator=gen)
    with pytest.raises(TypeError, match="proposal"):
        mcmc.metropolis_hastings_step(x, log_prob, None, generator=gen)
    with pytest.raises(ValueError, match="x"):
        mcmc.metropolis_hastings_step(x * math.inf, log_prob, mcmc.flip_one_bit, generator=gen)
    with pytest.raises(ValueError, match="x must have a leading chain"):
        mcmc.metropolis_hastings_step(
            torch.tensor(0.0, dtype=torch.float64), log_prob, mcmc.flip_one_bit, generator=gen
        )


def test_bad_input_metropolis_hastings_matrix_and_random_walk():
    log_p = torch.zeros(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="proposal_matrix"):
        mcmc.metropolis_hastings_matrix(log_p, torch.ones(3, 3))  # rows sum to 3
    with pytest.raises(ValueError, match="proposal_matrix"):
        mcmc.metropolis_hastings_matrix(log_p, torch.ones(2, 2) / 2)  # wrong shape
    one_way = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5]])
    with pytest.raises(ValueError, match="proposal_matrix"):
        mcmc.metropolis_hastings_matrix(log_p, one_way)
    with pytest.raises(ValueError, match="log_p"):
        mcmc.metropolis_hastings_matrix(torch.tensor([0.0, math.nan, 0.0]), torch.eye(3))
    with pytest.raises(ValueError, match="log_p"):
        mcmc.metropolis_hastings_matrix(torch.zeros(3, 1), torch.eye(3))
    with pytest.raises(ValueError, match="scale"):
        mcmc.gaussian_random_walk(0.0)
    with pytest.raises(TypeError, match="scale"):
        mcmc.gaussian_random_walk("big")


def test_bad_input_gibbs():
    rbm = _small_rbm()
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(2, 4, dtype=torch.float64)
    with pytest.raises(TypeError, match="rbm"):
        mcmc.gibbs_step("rbm", x, generator=gen)
    with pytest.raises(ValueError, match="x"):
        mcmc.gibbs_step(rbm, torch.full((2, 4), 0.5, dtype=torch.float64), generator=gen)
    with pytest.raises(ValueError, match="x"):
        mcmc.gibbs_step(rbm, torch.zeros(2, 5, dtype=torch.float64), generator=gen)
    with pytest.raises(ValueError, match="x"):
        mcmc.gibbs_step(rbm, torch.zeros(4, dtype=torch.float64), generator=gen)
    with pytest.raises(ValueError, match="x"):
        mcmc.gibbs_step(rbm, torch.full((2, 4), math.nan, dtype=torch.float64), generator=gen)
    with pytest.raises(TypeError, match="x"):
        mcmc.gibbs_step(rbm, torch.zeros(2, 4, dtype=torch.float32), generator=gen)
    with pytest.raises(TypeError, match="generator"):
        mcmc.gibbs_step(rbm, x, generator=1)
    with pytest.raises(ValueError, match="k"):
        mcmc.gibbs_chain(rbm, x, 0, generator=gen)
    with pytest.raises(ValueError, match="x0"):
        mcmc.gibbs_chain(rbm, 2 * x + 3, 1, generator=gen)
    with pytest.raises(TypeError, match="generator"):
        mcmc.gibbs_chain(rbm, x, 1, generator=None)
    with pytest.raises(ValueError, match="n_samples"):
        mcmc.gibbs_sample(rbm, x, 0, generator=gen)
    with pytest.raises(ValueError, match="thin"):
        mcmc.gibbs_sample(rbm, x, 1, thin=0, generator=gen)
    with pytest.raises(ValueError, match="burn_in"):
        mcmc.gibbs_sample(rbm, x, 1, burn_in=-2, generator=gen)
    broken = _small_rbm()
    with torch.no_grad():
        broken.W[0, 0] = math.nan
    with pytest.raises(ValueError, match="W"):
        mcmc.gibbs_step(broken, x, generator=gen)


def test_bad_input_autocorrelation():
    with pytest.raises(ValueError, match="series"):
        mcmc.autocorrelation(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="series"):
        mcmc.autocorrelation(torch.ones(2, 10))  # constant chains
    with pytest.raises(ValueError, match="series"):
        mcmc.autocorrelation(torch.tensor([1.0, math.nan, 2.0]))
    with pytest.raises(ValueError, match="series"):
        mcmc.autocorrelation(torch.tensor([[1.0], [2.0]]))  # one step per chain
    with pytest.raises(TypeError, match="series"):
        mcmc.autocorrelation(["a", "b"])
    with pytest.raises(ValueError, match="max_lag"):
        mcmc.autocorrelation(torch.arange(10.0), max_lag=10)
    with pytest.raises(ValueError, match="max_lag"):
        mcmc.autocorrelation(torch.arange(10.0), max_lag=-1)
    with pytest.raises(ValueError, match="c"):
        mcmc.integrated_autocorrelation_time(torch.arange(10.0), c=-1.0)
    with pytest.raises(ValueError, match="series"):
        mcmc.integrated_autocorrelation_time(torch.full((5,), math.inf))
    with pytest.raises(ValueError, match="series"):
        mcmc.effective_sample_size(torch.zeros(3, 1))
    with pytest.raises(ValueError, match="series"):
        mcmc.standard_error(torch.zeros(2, 2, 2))


@pytest.mark.cuda
def test_gibbs_and_autocorrelation_on_cuda():
    device = torch.device("cuda")
    rbm = _small_rbm().to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.zeros(8, 4, dtype=torch.float64, device=device)
    x_next, h = mcmc.gibbs_step(rbm, x, generator=gen)
    assert x_next.device.type == "cuda" and h.device.type == "cuda"
    with pytest.raises(ValueError, match="generator"):
        mcmc.gibbs_step(rbm, x, generator=torch.Generator())
    # AR(1) with rho = 0.5: tau = 3; N = 40000 draws, window ~ 15: relative SE
    # sqrt(2 (2M + 1) / N) = 4%, so 15% is almost 4 SE.
    series = _ar1(0.5, 8, 5000, seed=4).to(device)
    assert mcmc.integrated_autocorrelation_time(series) == pytest.approx(3.0, rel=0.15)
