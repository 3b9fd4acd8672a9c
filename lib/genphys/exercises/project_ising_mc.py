"""Project: Monte Carlo for the Ising model, {ref}`sec-project-ising-mc`: a sampler and honest error bars.

The student writes a single-spin Metropolis sweep for the periodic 2D Ising model
(:math:`E = -\\sum_{\\langle ij \\rangle} s_i s_j`), the error bar of a chain average from its
effective sample size (:func:`genphys.mcmc.effective_sample_size`), and a block-jackknife
error bar of the specific heat (:func:`genphys.ising.jackknife`); then measures the energy
per spin and the specific heat of the 4 x 4 lattice at :data:`TEMPERATURES` and reproduces
the exact values (:func:`genphys.ising.exact_observables`) within the error bars.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import ising, thermodynamics
from ..ising import energy, exact_observables, jackknife
from ..mcmc import effective_sample_size
from ._feedback import (
    Exercise,
    Mistake,
    StatisticalExercise,
    Stress,
    draw_float,
    draw_int,
)
from ._goals import ProjectGoal

__all__ = [
    "EXERCISES",
    "GOALS",
    "MAX_C_ERROR",
    "MAX_E_ERROR",
    "MAX_Z",
    "TEMPERATURES",
    "check_ising_study",
    "check_mean_and_error",
    "check_metropolis_sweep",
    "check_specific_heat_jackknife",
    "ising_study",
    "judge_ising_study",
    "mean_and_error",
    "metropolis_sweep",
    "specific_heat_jackknife",
]

F64 = torch.float64

#: The temperatures of the study: ordered, near T_c = 2.269 and disordered.
TEMPERATURES = (1.5, 2.25, 3.0)
#: An estimate passes when it is within MAX_Z of its error bars from the exact value. With
#: six estimates and honest Gaussian errors a correct study fails with probability about
#: 6 * 6e-5 = 4e-4.
MAX_Z = 4.0
#: The precision the study must reach (energy per spin, specific heat per spin): the
#: reference (500 chains, 400 sweeps) reaches about 0.002 and 0.003.
MAX_E_ERROR = 0.005
MAX_C_ERROR = 0.03


def _spins(generator: torch.Generator, n: int, L: int, dtype=F64) -> torch.Tensor:
    s = 2.0 * torch.bernoulli(torch.full((n, L, L), 0.5, dtype=F64), generator=generator) - 1.0
    return s.to(dtype)


# ------------------------------------------------------- step 1: Metropolis sweep
def metropolis_sweep(spins, beta, generator):
    """Visit sites (i, j) in raster order; flip s_ij if u_ij < exp(-beta ΔE), ΔE = 2 s_ij Σ_nn s, u drawn first."""
    s = spins.clone()  # (C, L, L)
    L = s.shape[-1]
    u = torch.rand(s.shape, generator=generator, dtype=s.dtype)  # (C, L, L), one per site
    for i in range(L):
        for j in range(L):
            neighbours = (
                s[:, (i + 1) % L, j]
                + s[:, (i - 1) % L, j]
                + s[:, i, (j + 1) % L]
                + s[:, i, (j - 1) % L]
            )  # (C,), periodic
            delta_e = 2.0 * s[:, i, j] * neighbours  # (C,)
            flip = u[:, i, j] < torch.exp(-beta * delta_e)  # (C,)
            s[:, i, j] = torch.where(flip, -s[:, i, j], s[:, i, j])
    return s


def _sweep_cases():
    g = torch.Generator().manual_seed(401)
    cases = []
    for n, L, beta in ((5, 4, 0.44), (3, 3, 1.0), (8, 5, 0.2)):
        cases.append((_spins(g, n, L), beta, torch.Generator().manual_seed(402 + L)))
    return cases


def _sweep_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n, L = draw_int(g, 1, 10), draw_int(g, 3, 6)
        beta = draw_float(g, 0.0, 1.5)
        cases.append((_spins(g, n, L), beta, torch.Generator().manual_seed(draw_int(g, 0, 2**30))))
    return cases


def _sweep_stress():
    g = torch.Generator().manual_seed(410)
    return [
        Stress(
            "beta = 0: every flip is accepted",
            (_spins(g, 6, 4), 0.0, torch.Generator().manual_seed(411)),
        ),
        Stress(
            "beta = 200: exp(-beta ΔE) is 0 or inf",
            (_spins(g, 6, 4), 200.0, torch.Generator().manual_seed(412)),
        ),
        Stress(
            "a 2 x 2 lattice: each neighbour is counted twice, once from each side",
            (_spins(g, 6, 2), 0.7, torch.Generator().manual_seed(413)),
        ),
        Stress(
            "1000 chains of float32 spins: u is drawn in the dtype of the spins",
            (_spins(g, 1000, 4, torch.float32), 0.44, torch.Generator().manual_seed(414)),
            "Draw u = torch.rand(spins.shape, generator=generator, dtype=spins.dtype).",
        ),
    ]


def _sweep_parallel(spins, beta, generator):
    s = spins.clone()
    u = torch.rand(s.shape, generator=generator, dtype=s.dtype)
    neighbours = sum(torch.roll(s, shift, dim) for shift in (1, -1) for dim in (1, 2))
    flip = u < torch.exp(-beta * 2.0 * s * neighbours)
    return torch.where(flip, -s, s)


def _sweep_sign(spins, beta, generator):
    return metropolis_sweep(spins, -beta, generator)


def _sweep_no_two(spins, beta, generator):
    return metropolis_sweep(spins, beta / 2.0, generator)


def _sweep_open(spins, beta, generator):
    s = spins.clone()
    L = s.shape[-1]
    u = torch.rand(s.shape, generator=generator, dtype=s.dtype)
    for i in range(L):
        for j in range(L):
            neighbours = torch.zeros_like(s[:, i, j])
            for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                if 0 <= i + di < L and 0 <= j + dj < L:
                    neighbours = neighbours + s[:, i + di, j + dj]
            flip = u[:, i, j] < torch.exp(-beta * 2.0 * s[:, i, j] * neighbours)
            s[:, i, j] = torch.where(flip, -s[:, i, j], s[:, i, j])
    return s


def _sweep_stationary_test(student, seed):
    """4000 independent chains on the 3 x 3 lattice at T = 2.5 give the exact mean energy.

    After 60 sweeps from all spins up (the energy's autocorrelation time is a few sweeps
    here), each chain's energy per spin is one draw; its variance is c T^2 / N from the
    exact specific heat c, so the standard error of the mean is sqrt(c T^2 / (N n)).
    """
    g = torch.Generator().manual_seed(seed)
    n, L, T = 4000, 3, 2.5
    s = torch.ones(n, L, L, dtype=F64)
    for _ in range(60):
        s = student(s, 1.0 / T, g)
    e = energy(s) / L**2  # (n,)
    exact = exact_observables(L, T)
    se = math.sqrt(exact["specific_heat_per_spin"] * T**2 / L**2 / n)
    mean = float(e.mean())
    if abs(mean - exact["energy_per_spin"]) > 5 * se:
        return (
            f"With fresh random numbers (seed {seed}), {n} chains of 60 sweeps on the 3 x 3 "
            f"lattice at T = {T} have mean energy per spin {mean:.4f}; the exact value is "
            f"{exact['energy_per_spin']:.4f} ± {se:.4f}. Does your sweep draw its uniforms "
            "from the generator it is given?"
        )
    return None


METROPOLIS_SWEEP = StatisticalExercise(
    name="metropolis_sweep",
    forbidden_calls=("genphys.ising.metropolis_sweep",),
    solution=metropolis_sweep,
    cases=_sweep_cases,
    random_cases=_sweep_random,
    stress_cases=_sweep_stress,
    mistakes=(
        Mistake(
            _sweep_parallel,
            "update the sites one after the other: the energy change of a site must use its "
            "neighbours' *current* values, including flips made earlier in the same sweep. "
            "Flipping all sites at once from the old configuration is not a Metropolis "
            "sampler of the Ising model (neighbours flip together and the chain oscillates).",
        ),
        Mistake(
            _sweep_sign,
            "the acceptance is exp(-beta ΔE): a flip that raises the energy (ΔE > 0) is "
            "accepted less often, not more.",
        ),
        Mistake(
            _sweep_no_two,
            "flipping s_ij changes the energy by ΔE = 2 s_ij Σ_nn s_nn: the bond terms change "
            "sign, from -s_ij s_nn to +s_ij s_nn, a change of twice their value.",
        ),
        Mistake(
            _sweep_open,
            "the lattice is periodic: the neighbours of site (i, j) are ((i ± 1) mod L, j) "
            "and (i, (j ± 1) mod L), also at the edges.",
        ),
    ),
    rtol=1e-12,
    atol=1e-12,
    statistic=_sweep_stationary_test,
    claim="samples the exact mean energy of the 3 x 3 lattice with fresh randomness",
)
check_metropolis_sweep = METROPOLIS_SWEEP.check


# ------------------------------------------------------- step 2: honest error bar
def mean_and_error(series):
    """Mean of all draws and its error sqrt(var / n_eff), var with N - 1, n_eff = genphys.mcmc.effective_sample_size."""
    n_eff = effective_sample_size(series)  # N / max(tau_int, 1)
    return series.mean(), torch.sqrt(series.var() / n_eff)


def _ar1(generator: torch.Generator, n_chains: int, n_steps: int, rho: float, offset: float = 0.0):
    """AR(1) chains x_t = rho x_{t-1} + sqrt(1 - rho^2) xi_t, stationary N(0, 1), plus offset."""
    xi = torch.randn(n_chains, n_steps, generator=generator, dtype=F64)  # (C, n)
    x = torch.empty_like(xi)
    x[:, 0] = xi[:, 0]
    scale = math.sqrt(1.0 - rho**2)
    for t in range(1, n_steps):
        x[:, t] = rho * x[:, t - 1] + scale * xi[:, t]
    return x + offset


def _mean_cases():
    g = torch.Generator().manual_seed(420)
    return [(_ar1(g, 4, 400, 0.8),), (_ar1(g, 1, 600, 0.5, 3.0),), (_ar1(g, 10, 200, 0.0),)]


def _mean_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        rho = draw_float(g, 0.0, 0.9)
        n_chains, n_steps = draw_int(g, 1, 8), draw_int(g, 200, 600)
        cases.append((_ar1(g, n_chains, n_steps, rho, draw_float(g, -5.0, 5.0)),))
    return cases


def _mean_stress():
    g = torch.Generator().manual_seed(430)
    return [
        Stress(
            "values around 10^6 with a spread of 10^-3: E[x^2] - E[x]^2 loses every digit",
            (1e6 + 1e-3 * _ar1(g, 3, 500, 0.6),),
            "Compute the variance about the mean (torch.var), not as E[x²] - E[x]².",
        ),
        Stress("strongly correlated chains, rho = 0.97", (_ar1(g, 4, 3000, 0.97),)),
        Stress("one chain of 20000 steps", (_ar1(g, 1, 20_000, 0.3),)),
    ]


def _mean_iid(series):
    return series.mean(), torch.sqrt(series.var() / series.numel())


def _mean_divided_tau(series):
    n_eff = effective_sample_size(series)
    tau = series.numel() / n_eff
    return series.mean(), torch.sqrt(series.var() / (series.numel() * tau * tau))


def _mean_std(series):
    return series.mean(), series.std()


def _mean_per_chain(series):
    n_eff = effective_sample_size(series)
    return series.mean(), torch.sqrt(series.var() / (n_eff / series.shape[0]))


def _mean_population_var(series):
    n_eff = effective_sample_size(series)
    return series.mean(), torch.sqrt(series.var(correction=0) / n_eff)


MEAN_AND_ERROR = Exercise(
    name="mean_and_error",
    solution=mean_and_error,
    cases=_mean_cases,
    random_cases=_mean_random,
    stress_cases=_mean_stress,
    mistakes=(
        Mistake(
            _mean_iid,
            "the draws of a chain are correlated: divide the variance by the effective sample "
            "size N / tau_int (genphys.mcmc.effective_sample_size), not by the number of draws "
            "N. Error bars that ignore the autocorrelation are too small by sqrt(tau_int). If "
            "you did call effective_sample_size, check the layout: it takes the series as "
            "(n_chains, n_steps), as given; with the axes swapped (series.T) it looks for "
            "correlation across chains at one time and finds none.",
        ),
        Mistake(
            _mean_divided_tau,
            "correlation *raises* the error: var · tau_int / N, so n_eff = N / tau_int is "
            "smaller than N.",
        ),
        Mistake(
            _mean_std, "the error of the mean is sqrt(var / n_eff), not the spread of the draws."
        ),
        Mistake(
            _mean_per_chain,
            "n_eff counts the draws of all chains together: effective_sample_size already "
            "multiplies by the number of chains.",
        ),
        Mistake(
            _mean_population_var,
            "use the sample variance with N - 1 in the denominator, torch.var's default.",
        ),
    ),
)
check_mean_and_error = MEAN_AND_ERROR.check


# -------------------------------------------------- step 3: jackknife specific heat
def specific_heat_jackknife(e, T, n_spins, n_blocks):
    """c = N var(e) / T² over all draws, with its block-jackknife error over n_blocks blocks of steps (genphys.ising.jackknife)."""
    values = e.T.detach().cpu().numpy()  # (n_steps, C): one row per step, blocks of steps
    c, se = jackknife(values, lambda v: n_spins * v.var() / T**2, n_blocks)
    return torch.tensor(c, dtype=F64), torch.tensor(se, dtype=F64)


def _heat_cases():
    g = torch.Generator().manual_seed(440)
    return [
        (-1.6 + 0.3 * _ar1(g, 4, 300, 0.7), 2.25, 16, 10),
        (-1.0 + 0.2 * _ar1(g, 2, 500, 0.5), 3.0, 9, 20),
        (-1.9 + 0.05 * _ar1(g, 6, 120, 0.2), 1.5, 16, 6),
    ]


def _heat_random(g: torch.Generator):
    cases = []
    for _ in range(3):
        n_chains, n_steps = draw_int(g, 1, 6), draw_int(g, 100, 400)
        e = draw_float(g, -2.0, 0.0) + draw_float(g, 0.05, 0.5) * _ar1(
            g, n_chains, n_steps, draw_float(g, 0.0, 0.9)
        )
        cases.append((e, draw_float(g, 1.0, 4.0), draw_int(g, 4, 64), draw_int(g, 2, 30)))
    return cases


def _heat_stress():
    g = torch.Generator().manual_seed(450)
    e = -1.5 + 0.3 * _ar1(g, 3, 200, 0.5)
    return [
        Stress("one step per block: n_blocks = n_steps", (e, 2.0, 16, 200)),
        Stress("two blocks", (e, 2.0, 16, 2)),
        Stress("T = 0.05: c is large", (-2.0 + 0.002 * _ar1(g, 2, 300, 0.5), 0.05, 16, 10)),
    ]


def _heat_numpy_var(e, T, n_spins, n_blocks):
    values = e.T.numpy()
    return jackknife(values, lambda v: n_spins * v.var(ddof=1) / T**2, n_blocks)


def _heat_no_n(e, T, n_spins, n_blocks):
    values = e.T.numpy()
    return jackknife(values, lambda v: v.var() / T**2, n_blocks)


def _heat_t_not_squared(e, T, n_spins, n_blocks):
    values = e.T.numpy()
    return jackknife(values, lambda v: n_spins * v.var() / T, n_blocks)


def _heat_spread_of_blocks(e, T, n_spins, n_blocks):
    values = e.T.numpy()
    blocks = np.array_split(values, n_blocks, axis=0)
    estimates = np.array([n_spins * b.var() / T**2 for b in blocks])
    return n_spins * values.var() / T**2, estimates.std(ddof=1) / math.sqrt(n_blocks)


SPECIFIC_HEAT_JACKKNIFE = Exercise(
    name="specific_heat_jackknife",
    solution=specific_heat_jackknife,
    cases=_heat_cases,
    random_cases=_heat_random,
    stress_cases=_heat_stress,
    mistakes=(
        Mistake(
            _heat_numpy_var,
            "this book's estimator is c = N var(e) / T² with the variance over N draws "
            "(numpy's default ddof=0), as in genphys.ising.observables.",
        ),
        Mistake(
            _heat_no_n, "e is the energy per spin: c = N var(e) / T² per spin, with N = n_spins."
        ),
        Mistake(
            _heat_t_not_squared, "c = β² var(E) / N = N var(e) / T²: the temperature is squared."
        ),
        Mistake(
            _heat_spread_of_blocks,
            "that is binning: the spread of the estimates on each block. The jackknife leaves "
            "one block out at a time, sqrt((B - 1)/B Σ_b (c_(b) - mean)²); "
            "genphys.ising.jackknife does it.",
        ),
    ),
)
check_specific_heat_jackknife = SPECIFIC_HEAT_JACKKNIFE.check


# ------------------------------------------------------------- step 4: the study
def ising_study(temperatures, seed):
    """Per T: 500 chains from all spins up, 100 sweeps of burn-in, 400 measured; (e series, e ± SE (step 2), c ± jackknife SE (step 3))."""
    g = torch.Generator().manual_seed(seed)
    L, n_chains, n_burn, n_measure = 4, 500, 100, 400
    results = {}
    for T in temperatures:
        s = torch.ones(n_chains, L, L, dtype=F64)  # ordered start: random spins leave
        # domain walls across the torus that live for hundreds of sweeps at T = 1.5
        for _ in range(n_burn):
            s = metropolis_sweep(s, 1.0 / T, g)
        e = torch.empty(n_chains, n_measure, dtype=F64)  # (C, n): energy per spin
        for t in range(n_measure):
            s = metropolis_sweep(s, 1.0 / T, g)
            e[:, t] = energy(s) / L**2
        e_mean, e_err = mean_and_error(e)
        c, c_err = specific_heat_jackknife(e, T, L**2, 20)
        results[T] = (e, float(e_mean), float(e_err), float(c), float(c_err))
    return results


def _study_arguments(g: torch.Generator):
    """Three hidden temperatures, one near each of :data:`TEMPERATURES` (± 0.1), and a hidden seed."""
    temperatures = tuple(round(T + draw_float(g, -0.1, 0.1), 3) for T in TEMPERATURES)
    return (temperatures, draw_int(g, 0, 2**20)), temperatures


#: The fewest chains with which the check can test equilibration across chains.
MIN_CHAINS = 20
#: How far the student's error bars may stray from the check's own (relative).
ERROR_BAR_TOLERANCE = 0.2


def _series(T, entry) -> torch.Tensor:
    """The energy series of one temperature, checked to be a sample of the 4 x 4 lattice."""
    if not isinstance(entry, (tuple, list)) or len(entry) != 5:
        raise TypeError(
            f"result[{T}] must be a tuple (e_series, e, e_err, c, c_err). Got "
            f"{type(entry).__name__} of length {len(entry) if hasattr(entry, '__len__') else '?'} "
            "instead."
        )
    e = torch.as_tensor(entry[0]).detach().to(F64)
    if e.dim() != 2 or e.shape[0] < MIN_CHAINS or e.shape[1] < 20:
        raise ValueError(
            f"e_series at T = {T} must have shape (n_chains, n_sweeps) with at least "
            f"{MIN_CHAINS} chains and 20 sweeps. Got {tuple(e.shape)} instead."
        )
    levels = 4 * e  # energies per spin of the 4 x 4 torus are multiples of 1/4 in [-2, 2]
    if not (bool(torch.isfinite(e).all()) and bool((levels - levels.round()).abs().max() < 1e-9)):
        raise ValueError(
            f"e_series at T = {T} must hold energies per spin of 4 x 4 configurations, "
            "multiples of 1/4. Got other values instead: measure energy(spins) / 16."
        )
    if float(e.abs().max()) > 2.0:
        raise ValueError(f"e_series at T = {T} must lie in [-2, 2]. Got {float(e.abs().max())}.")
    return e


def _across_chains(
    e: torch.Tensor, T: float, n_groups: int = 20
) -> tuple[float, float, float, float]:
    """e ± SE and c ± SE from the spread across independent chains (valid for any autocorrelation).

    The SE of e is the standard deviation of the chain means over sqrt(C); that of c is the
    jackknife over ``n_groups`` groups of chains, leaving one group out at a time.
    """
    C = e.shape[0]
    se_e = float(e.mean(1).std()) / math.sqrt(C)
    k = min(n_groups, C)
    groups = torch.arange(C) % k  # (C,): the group of each chain
    c_all = 16 * float(e.var()) / T**2
    leave_one_out = torch.tensor(
        [16 * float(e[groups != j].var()) / T**2 for j in range(k)], dtype=F64
    )  # (k,)
    se_c = math.sqrt((k - 1) / k * float(((leave_one_out - leave_one_out.mean()) ** 2).sum()))
    return float(e.mean()), se_e, c_all, se_c


def _drift(e: torch.Tensor) -> float:
    """z of the difference between the first and the last quarter of each chain, across chains."""
    q = e.shape[1] // 4
    d = e[:, :q].mean(1) - e[:, -q:].mean(1)  # (C,): independent chains, independent values
    sd = float(d.std())
    return float(d.mean()) / (sd / math.sqrt(d.shape[0])) if sd > 0 else 0.0


#: Burn-in sweeps the page asks for before measuring (from all spins up).
N_BURN = 100


def _sweep_record(arguments) -> int:
    """What the check notes of one call of the student's sweep: the number of chains."""
    spins = next(iter(arguments.values()), None)
    return int(spins.shape[0]) if isinstance(spins, torch.Tensor) and spins.dim() == 3 else 0


def judge_ising_study(result, temperatures=TEMPERATURES, sweeps=None) -> tuple[bool, str]:
    """Whether ``result[T] = (e_series, e, e_err, c, c_err)`` reproduces the exact 4 x 4 values at every T.

    The check recomputes every estimate and error bar from the raw series ``e_series`` of
    shape (n_chains, n_sweeps) with the reference steps 2 and 3: the student's own numbers
    must agree with them (within 20 % for the error bars). The comparison with the exact
    values uses error bars from the spread across the independent chains
    (:func:`_across_chains`), which hold for any autocorrelation (the block jackknife of
    step 3 underestimates the error of c near T_c by about a third). The chains must be in equilibrium
    (the first and last quarter of each chain agree across chains within 5 standard
    errors), and the check's estimates must be within :data:`MAX_Z` of their error bars of
    the exact values, with error bars below :data:`MAX_E_ERROR` and :data:`MAX_C_ERROR`.
    ``sweeps`` (when given) lists the number of chains of every call of the student's sweep:
    there must be :data:`N_BURN` burn-in sweeps per temperature besides the measured ones.
    """
    if not isinstance(result, dict):
        raise TypeError(
            "the result must be a dict {T: (e_series, e, e_err, c, c_err)}. Got "
            f"{type(result).__name__} instead."
        )
    lines, problems = [], []
    for T in temperatures:
        if T not in result:
            return False, f"The result has no entry for T = {T}; it needs {tuple(temperatures)}."
        e = _series(T, result[T])
        mine = [float(v) for v in result[T][1:]]
        drift = _drift(e)
        if abs(drift) > 5:
            problems.append(
                f"T = {T}: the first quarter of your chains differs from the last by "
                f"{abs(drift):.1f} standard errors (across chains): the chains are not in "
                "equilibrium yet. Burn in longer, or start from the ordered state"
            )
        step_e = [float(v) for v in mean_and_error(e)]
        step_c = [float(v) for v in specific_heat_jackknife(e, T, 16, 20)]
        e_mean, e_err, c, c_err = _across_chains(e, T)
        exact = exact_observables(4, T)
        for name, value, err, own, own_err, step_value, step_err, want, limit, step in (
            ("e", e_mean, e_err, *mine[:2], *step_e, exact["energy_per_spin"], MAX_E_ERROR, 2),
            ("c", c, c_err, *mine[2:], *step_c, exact["specific_heat_per_spin"], MAX_C_ERROR, 3),
        ):
            if not (
                math.isfinite(own) and abs(own - step_value) <= 1e-6 * max(1.0, abs(step_value))
            ):
                problems.append(
                    f"T = {T}: your {name} = {own} is not the {step_value:.6f} that step {step} "
                    "gives for your series"
                )
            ratio = own_err / step_err if step_err > 0 else math.inf
            if not (math.isfinite(own_err) and abs(ratio - 1) <= ERROR_BAR_TOLERANCE):
                problems.append(
                    f"T = {T}: your error bar of {name}, {own_err:.5f}, is not the "
                    f"{step_err:.5f} that step {step} gives for your series"
                    + (
                        ": it must account for the autocorrelation of the chains "
                        "(sqrt(var / n_eff), n_eff from the effective sample size)"
                        if name == "e"
                        else ": use the block jackknife over 20 blocks of sweeps"
                    )
                )
            z = (value - want) / err if err > 0 else math.inf
            lines.append(
                f"T = {T}: {name} = {value:.4f} ± {err:.4f}, exact {want:.4f} (z = {z:+.1f})"
            )
            if abs(z) > MAX_Z:
                problems.append(f"T = {T}: {name} is {abs(z):.1f} error bars from the exact value")
            if err > limit:
                problems.append(
                    f"T = {T}: the error bar of {name}, {err:.4f}, is above {limit}: run longer"
                )
    if sweeps is not None:
        n_chains, n_measured = _series(temperatures[0], result[temperatures[0]]).shape
        done = sum(1 for n in sweeps if n == n_chains)
        needed = len(temperatures) * (N_BURN + n_measured)
        if done < needed:
            problems.insert(
                0,
                f"your metropolis_sweep ran {done} sweeps of your {n_chains} chains; "
                f"{len(temperatures)} temperatures of {N_BURN} burn-in and {n_measured} "
                f"measured sweeps need {needed}. Burn in for {N_BURN} sweeps at each "
                "temperature before you measure",
            )
    table = "; ".join(lines)
    if problems:
        return False, "Not there yet: " + "; ".join(problems) + ". The numbers: " + table + "."
    return True, (
        f"Every estimate, with error bars the check computed from your series, is within "
        f"{MAX_Z:g} error bars of the exact value: {table}."
    )


ISING_STUDY = ProjectGoal(
    name="ising_study",
    solution=ising_study,
    arguments=_study_arguments,
    judge=judge_ising_study,
    references=(metropolis_sweep, mean_and_error, specific_heat_jackknife),
    spy=("metropolis_sweep", _sweep_record),
    refused=(
        (ising.exact_observables, "the exact answer the study is judged against."),
        (ising.log_partition_kaufman, "the exact answer the study is judged against."),
        (ising.sample, "the library's Ising sampler: use your own sweep (step 1)."),
        (ising.metropolis_sweep, "the library's Metropolis sweep: use your own (step 1)."),
        (ising.wolff_step, "the library's cluster update: use your own sweep (step 1)."),
        (ising.observables, "the library's estimates: use your own steps 2 and 3."),
        (
            thermodynamics.sample_boltzmann_exact,
            "exact samples of the Boltzmann distribution: the study is a Monte Carlo study.",
        ),
        (thermodynamics.boltzmann_log_prob_exact, "the exact answer the study is judged against."),
        (thermodynamics.observables_exact, "the exact answer the study is judged against."),
    ),
)
check_ising_study = ISING_STUDY.check

EXERCISES = [METROPOLIS_SWEEP, MEAN_AND_ERROR, SPECIFIC_HEAT_JACKKNIFE]
GOALS = [ISING_STUDY]
