"""Exercises for chapter 18, {ref}`sec-capstone`: numbering states, the JSD of two tables, a jackknife error."""

from __future__ import annotations

import math

import numpy as np
import torch

from ._feedback import Exercise, Mistake, Stress, draw_float, draw_int

__all__ = [
    "EXERCISES",
    "check_jackknife_specific_heat",
    "check_js_divergence_tables",
    "check_state_index",
    "jackknife_specific_heat",
    "js_divergence_tables",
    "state_index",
]

F64 = torch.float64


# ------------------------------------------------------------ numbering configurations
def state_index(spins):
    """k = sum_i x_i 2^i with x_i = (s_i + 1)/2, sites numbered row by row."""
    x = ((spins.reshape(spins.shape[0], -1) + 1) / 2).round().long()  # (n, N) bits
    powers = 2 ** torch.arange(x.shape[1])  # (N,)
    return (x * powers).sum(1)  # (n,)


def _random_spins(n, L, g):
    return 2 * torch.randint(2, (n, L, L), generator=g).to(F64) - 1


def _state_cases():
    g = torch.Generator().manual_seed(150)
    return [
        (_random_spins(7, 2, g),),
        (_random_spins(9, 3, g),),
        (_random_spins(20, 4, g),),
        (torch.ones(2, 4, 4, dtype=F64),),  # all up: 2^16 - 1
    ]


def _state_random(g: torch.Generator):
    # fresh lattices of 1x1 to 4x4 sites, and batches of any size
    return [(_random_spins(draw_int(g, 1, 30), draw_int(g, 1, 4), g),) for _ in range(3)]


def _state_stress():
    g = torch.Generator().manual_seed(153)
    return [
        Stress(
            "a 6x6 lattice: numbers up to 2^36 - 1 overflow 32-bit integers",
            (torch.cat([_random_spins(5, 6, g), torch.ones(1, 6, 6, dtype=F64)]),),
            "Keep the numbers in 64-bit integers (torch.long), e.g. 2 ** torch.arange(N).",
        ),
        Stress("a single 1x1 lattice", (-torch.ones(1, 1, 1, dtype=F64),)),
        Stress("100000 configurations of a 4x4 lattice", (_random_spins(100_000, 4, g),)),
    ]


STATE_INDEX = Exercise(
    name="state_index",
    forbidden_calls=("genphys.comparison.state_index",),
    solution=state_index,
    cases=_state_cases,
    random_cases=_state_random,
    stress_cases=_state_stress,
    mistakes=(
        Mistake(
            lambda s: (
                ((s.reshape(s.shape[0], -1) + 1) / 2).round().long()
                * 2 ** torch.arange(s[0].numel() - 1, -1, -1)
            ).sum(1),
            "the bits are in reverse order: site i must carry the weight 2^i (site 0 is the "
            "least significant bit), as in genphys.enumeration.binary_states.",
        ),
        Mistake(
            lambda s: (s.reshape(s.shape[0], -1) * 2 ** torch.arange(s[0].numel())).sum(1),
            "convert the spins to bits first, x = (s + 1)/2: with s = ±1 the sum can be "
            "negative and two configurations can get the same number.",
        ),
        Mistake(
            lambda s: state_index(s.transpose(-1, -2)),
            "number the sites row by row (s.reshape(n, -1)), not column by column: the exact "
            "table of genphys.thermodynamics uses the row-major order.",
        ),
    ),
)
check_state_index = STATE_INDEX.check


# ------------------------------------------------------------ JSD of two tables
def js_divergence_tables(p, q):
    """JSD(p, q) = KL(p || m)/2 + KL(q || m)/2 with m = (p + q)/2 and 0 log 0 = 0, in nats."""
    m = (p + q) / 2  # (K,)

    def kl_to_m(a):
        support = a > 0
        return (a[support] * (torch.log(a[support]) - torch.log(m[support]))).sum()

    return 0.5 * kl_to_m(p) + 0.5 * kl_to_m(q)


def _table(values):
    t = torch.tensor(values, dtype=F64)
    return t / t.sum()


def _jsd_cases():
    g = torch.Generator().manual_seed(151)
    a, b = torch.rand(16, generator=g, dtype=F64), torch.rand(16, generator=g, dtype=F64)
    return [
        (a / a.sum(), b / b.sum()),
        (_table([0.5, 0.25, 0.25]), _table([0.2, 0.3, 0.5])),
        (_table([1.0, 0.0, 0.0, 0.0]), _table([0.25, 0.25, 0.25, 0.25])),
    ]


def _jsd_random(g: torch.Generator):
    # fresh tables of 2 to 64 states, some entries exactly 0 in one of the two
    cases = []
    for _ in range(3):
        k = draw_int(g, 2, 64)
        p, q = (torch.rand(k, generator=g, dtype=F64) ** draw_float(g, 0.5, 4.0) for _ in range(2))
        p[torch.rand(k, generator=g) < draw_float(g, 0.0, 0.4)] = 0.0
        p[0] = p[0] + 0.1  # at least one positive entry
        cases.append((p / p.sum(), q / q.sum()))
    return cases


def _jsd_stress():
    # histograms of a few samples over many states: most entries are exactly 0 in one table
    empirical = torch.zeros(256, dtype=F64)
    empirical[[3, 17, 200]] = torch.tensor([0.5, 0.25, 0.25], dtype=F64)
    return [
        Stress(
            "a histogram of 4 samples over 256 states against a uniform table",
            (empirical, torch.full((256,), 1 / 256, dtype=F64)),
            "states with p = 0 contribute 0 log 0 = 0; compute the terms only where the "
            "probability is positive (a boolean mask), otherwise 0 * log 0 gives NaN.",
        ),
        Stress(
            "two tables with disjoint supports",
            (_table([1.0, 1.0, 0.0, 0.0]), _table([0.0, 0.0, 1.0, 3.0])),
            "for disjoint supports the JSD is log 2, finite: m = (p + q)/2 is positive "
            "wherever p or q is.",
        ),
    ]


def _kl(a, b):
    support = a > 0
    return (a[support] * (torch.log(a[support]) - torch.log(b[support]))).sum()


JS_DIVERGENCE = Exercise(
    name="js_divergence_tables",
    forbidden_calls=(
        "genphys.grid.js_divergence",
        "scipy.spatial.distance.jensenshannon",
    ),
    solution=js_divergence_tables,
    cases=_jsd_cases,
    random_cases=_jsd_random,
    stress_cases=_jsd_stress,
    mistakes=(
        Mistake(
            lambda p, q: 2 * js_divergence_tables(p, q),
            "each of the two KL terms carries a factor 1/2: JSD = KL(p || m)/2 + KL(q || m)/2.",
        ),
        Mistake(
            lambda p, q: js_divergence_tables(p, q) / math.log(2),
            "that is the JSD in bits; the book works in nats (natural logarithm).",
        ),
        Mistake(
            lambda p, q: 0.5 * _kl(p, q) + 0.5 * _kl(q, p),
            "compare each table with the mixture m = (p + q)/2, not with the other table: the "
            "symmetrised KL is infinite as soon as one table has a zero where the other has not.",
        ),
    ),
)
check_js_divergence_tables = JS_DIVERGENCE.check


# ------------------------------------------------------------ jackknife error of c
def jackknife_specific_heat(e, T, N, n_blocks):
    """c = N Var(e) / T^2 and its block-jackknife error sqrt((b-1)/b sum_i (c_(i) - mean c_(.))^2)."""
    values = e.detach().double().cpu().numpy()  # (n,)

    def c_of(v):
        return N * v.var() / T**2  # population variance, as genphys.ising.observables

    blocks = np.array_split(np.arange(values.shape[0]), n_blocks)  # contiguous blocks
    leave_out = np.array([c_of(np.delete(values, block)) for block in blocks])  # (b,)
    b = len(blocks)
    se = math.sqrt((b - 1) / b * float(((leave_out - leave_out.mean()) ** 2).sum()))
    return float(c_of(values)), se


def _correlated_energies(n, rho, g):
    # AR(1) chain: neighbouring samples are correlated, so the choice of blocks matters
    noise = torch.randn(n, generator=g, dtype=F64)
    e = torch.empty(n, dtype=F64)
    e[0] = noise[0]
    for i in range(1, n):
        e[i] = rho * e[i - 1] + math.sqrt(1 - rho**2) * noise[i]
    return -1.5 + 0.1 * e


def _jackknife_cases():
    g = torch.Generator().manual_seed(152)
    return [
        (_correlated_energies(200, 0.0, g), 2.269, 16, 10),
        (_correlated_energies(300, 0.9, g), 2.269, 16, 20),
        (_correlated_energies(101, 0.5, g), 1.5, 64, 7),  # blocks of unequal size
    ]


def _jackknife_random(g: torch.Generator):
    # fresh chains of any length and correlation, any temperature, size and number of blocks
    cases = []
    for _ in range(3):
        n = draw_int(g, 40, 400)
        e = _correlated_energies(n, draw_float(g, 0.0, 0.95), g)
        cases.append((e, draw_float(g, 1.0, 4.0), draw_int(g, 4, 64), draw_int(g, 2, 30)))
    return cases


def _jackknife_stress():
    g = torch.Generator().manual_seed(154)
    offset = _correlated_energies(500, 0.5, g)
    return [
        Stress(
            "energies of -1000 with fluctuations of 10⁻³: <e^2> - <e>^2 cancels catastrophically",
            (-1000.0 + 0.01 * (offset + 1.5), 2.0, 16, 10),
            "Compute the variance from the deviations, mean((e - mean e)^2), as numpy's var does.",
        ),
        Stress("leave-one-out: as many blocks as samples", (offset[:60], 2.269, 16, 60)),
        Stress("20000 samples in 100 blocks", (_correlated_energies(20_000, 0.9, g), 2.5, 64, 100)),
    ]


def _var_ddof1(e, T, N, n_blocks):
    values = e.double().numpy()
    c = N * values.var(ddof=1) / T**2
    return float(c), _se(values, T, N, n_blocks, ddof=1)


def _se(values, T, N, n_blocks, *, ddof=0, factor=None, interleaved=False):
    if interleaved:
        blocks = [np.arange(i, values.shape[0], n_blocks) for i in range(n_blocks)]
    else:
        blocks = np.array_split(np.arange(values.shape[0]), n_blocks)
    leave_out = np.array([N * np.delete(values, b).var(ddof=ddof) / T**2 for b in blocks])
    b = len(blocks)
    factor = (b - 1) / b if factor is None else factor(b)
    return math.sqrt(factor * float(((leave_out - leave_out.mean()) ** 2).sum()))


def _with_se(**kwargs):
    def wrong(e, T, N, n_blocks):
        c, _ = jackknife_specific_heat(e, T, N, n_blocks)
        return c, _se(e.double().numpy(), T, N, n_blocks, **kwargs)

    return wrong


JACKKNIFE = Exercise(
    name="jackknife_specific_heat",
    solution=jackknife_specific_heat,
    cases=_jackknife_cases,
    random_cases=_jackknife_random,
    stress_cases=_jackknife_stress,
    mistakes=(
        Mistake(
            _with_se(factor=lambda b: 1 / (b * (b - 1))),
            "that is the standard error of the mean of the leave-one-out values treated as "
            "independent; the jackknife values are almost equal by construction, and the "
            "factor is (b - 1)/b, not 1/(b(b - 1)).",
        ),
        Mistake(
            _with_se(factor=lambda b: 1 / b),
            "the jackknife variance is (b - 1)/b times the sum of squared deviations, not 1/b "
            "times it (that would be the plain variance of the b leave-one-out values).",
        ),
        Mistake(
            _with_se(interleaved=True),
            "use contiguous blocks (numpy.array_split of the indices), not every b-th sample: "
            "for correlated samples the blocks must keep neighbours together.",
        ),
        Mistake(
            _var_ddof1,
            "use the population variance (numpy's default ddof=0), as genphys.ising.observables "
            "and the exact formula c = N(<e^2> - <e>^2)/T^2 do.",
        ),
        Mistake(
            lambda e, T, N, n: (
                jackknife_specific_heat(e, T, N, n)[0] * T,
                jackknife_specific_heat(e, T, N, n)[1] * T,
            ),
            "c = beta^2 N Var(e): divide by T squared, not by T.",
        ),
    ),
)
check_jackknife_specific_heat = JACKKNIFE.check

EXERCISES = [STATE_INDEX, JS_DIVERGENCE, JACKKNIFE]
