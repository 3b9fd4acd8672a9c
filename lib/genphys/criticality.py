"""Locating a critical temperature by finite-size scaling of an order parameter.

Explained in {ref}`sec-vae-critical-temperature`.

* :func:`binder_cumulant` -- :math:`U = 1 - \\langle z^4 \\rangle / (3 \\langle z^2 \\rangle^2)`,
  2/3 for a sharply ordered two-peak distribution and 0 for a Gaussian one;
* :func:`susceptibility` -- :math:`\\chi = N (\\langle z^2 \\rangle - \\langle |z| \\rangle^2) / T`;
* :func:`by_temperature` -- an estimator applied to the samples of each temperature;
* :func:`crossing_temperature` -- where the Binder cumulants of two lattice sizes cross,
  by linear interpolation between the measured temperatures;
* :func:`binder_crossing` -- that crossing, from the samples, with a bootstrap error;
* :func:`peak_temperature`, :func:`extrapolate_inverse_size` -- the peak of a curve by a
  parabola through its three highest points, and the :math:`L \\to \\infty` limit of
  :math:`T(L) = T_c + a/L`;
* :func:`bootstrap` -- standard error of any estimator by resampling each group of
  samples with replacement;
* :func:`ising_scan` -- Ising configurations at several temperatures, as one data set.

The analysis is done in float64 NumPy on the CPU; tensors (on any device) are copied there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ._validation import check_positive_int, describe
from .seeding import make_generator

__all__ = [
    "TEMPERATURE_RTOL",
    "binder_crossing",
    "binder_cumulant",
    "bootstrap",
    "by_temperature",
    "crossing_temperature",
    "extrapolate_inverse_size",
    "ising_scan",
    "peak_temperature",
    "susceptibility",
]


def _as_1d(name: str, value: object, *, minimum: int = 1) -> np.ndarray:
    """``value`` as a finite float64 array of shape (n,) with ``n >= minimum``, else raise."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a 1-D array of numbers. Got {describe(value)} instead."
        ) from None
    if array.ndim != 1 or array.shape[0] < minimum:
        raise ValueError(
            f"{name} must be a 1-D array with at least {minimum} entries. "
            f"Got {describe(array)} instead."
        )
    if not np.isfinite(array).all():
        raise ValueError(
            f"{name} must contain only finite values. "
            f"Got {int((~np.isfinite(array)).sum())} NaN or infinite entries instead."
        )
    return array


def _temperatures(name: str, value: object, *, minimum: int) -> np.ndarray:
    """Strictly increasing, positive temperatures of shape (n_T,), ``n_T >= minimum``."""
    T = _as_1d(name, value, minimum=minimum)
    if not (T > 0).all() or not (np.diff(T) > 0).all():
        raise ValueError(
            f"{name} must be positive and strictly increasing. Got {np.array2string(T)} instead."
        )
    return T


def _curve(name: str, value: object, n: int) -> np.ndarray:
    curve = _as_1d(name, value)
    if curve.shape[0] != n:
        raise ValueError(
            f"{name} must have one value per temperature, shape ({n},). "
            f"Got shape {curve.shape} instead."
        )
    return curve


def binder_cumulant(z: object) -> float:
    """Binder cumulant :math:`U = 1 - \\langle z^4 \\rangle / (3 \\langle z^2 \\rangle^2)` of samples ``z``.

    Eq. {eq}`eq-binder-cumulant`. :math:`U` is unchanged when ``z`` is multiplied by a
    constant; it is 2/3 when every :math:`|z|` is the same (two sharp peaks, the ordered
    phase) and 0 for a Gaussian (the disordered phase of a large system). The moments are
    taken of :math:`z / \\max|z|`, so that :math:`z^4` neither overflows nor underflows.
    Explained in {ref}`sec-vae-critical-temperature`.

    Parameters
    ----------
    z : Tensor or ndarray of shape (n_samples,)
        Samples of an order parameter, not all zero.

    Returns
    -------
    float
    """
    z = _as_1d("z", z, minimum=1)
    scale = np.abs(z).max()
    if scale == 0:
        raise ValueError("z must not be all zero (U is 0/0). Got only zeros instead.")
    x2 = (z / scale) ** 2  # (n,), in [0, 1]
    return float(1.0 - np.mean(x2**2) / (3.0 * np.mean(x2) ** 2))


def susceptibility(z: object, *, n_sites: int, T: float) -> float:
    """Susceptibility :math:`\\chi = N (\\langle z^2 \\rangle - \\langle |z| \\rangle^2) / T` of samples ``z``.

    With :math:`z = m` the magnetisation per spin and :math:`N = L^2` this is the
    finite-lattice susceptibility that peaks near :math:`T_c`; using :math:`|z|` makes it
    ignore the sign flips between the two ordered states. Explained in
    {ref}`sec-vae-critical-temperature`.

    Parameters
    ----------
    z : Tensor or ndarray of shape (n_samples,)
    n_sites : int
        Number of spins :math:`N`.
    T : float
        Temperature, ``T > 0``.

    Returns
    -------
    float
    """
    z = _as_1d("z", z, minimum=1)
    n_sites = check_positive_int("n_sites", n_sites)
    if isinstance(T, bool) or not isinstance(T, (int, float, np.integer, np.floating)):
        raise TypeError(f"T must be a finite number > 0. Got {describe(T)} instead.")
    if not (np.isfinite(T) and T > 0):
        raise ValueError(f"T must be a finite number > 0. Got {T} instead.")
    a = np.abs(z)  # (n,)
    return float(n_sites * (np.mean(a**2) - np.mean(a) ** 2) / T)


#: Relative tolerance with which :func:`by_temperature` matches a row's temperature.
TEMPERATURE_RTOL = 1e-6


def by_temperature(
    estimator: Callable[[np.ndarray], float],
    values: object,
    T_of_row: object,
    temperatures: object,
) -> np.ndarray:
    """``estimator`` applied to the values of each temperature: :math:`[\\hat\\theta(z_{T = T_j})]_j`.

    Parameters
    ----------
    estimator : callable
        Maps an array of shape (n_j,) to a float, e.g. :func:`binder_cumulant`.
    values : Tensor or ndarray of shape (n_samples,)
    T_of_row : Tensor or ndarray of shape (n_samples,)
        The temperature of each value.
    temperatures : sequence of float, shape (n_T,)
        Every one must occur in ``T_of_row``. A row belongs to temperature :math:`T_j` when
        :math:`|T_{\\text{row}} - T_j| \\le` ``TEMPERATURE_RTOL`` :math:`|T_j|` (a relative
        1e-6: float32 temperatures and sums such as 0.1 + 0.2 match 0.3), never by exact
        float equality.

    Returns
    -------
    ndarray of shape (n_T,)
    """
    if not callable(estimator):
        raise TypeError(f"estimator must be callable. Got {describe(estimator)} instead.")
    z = _as_1d("values", values)
    rows = _as_1d("T_of_row", T_of_row)
    if rows.shape != z.shape:
        raise ValueError(
            f"T_of_row must have the shape of values, {z.shape}. Got shape {rows.shape} instead."
        )
    T = _as_1d("temperatures", temperatures)
    tol = TEMPERATURE_RTOL * np.abs(T)  # (n_T,)
    close = np.abs(rows[None, :] - T[:, None]) <= tol[:, None]  # (n_T, n_samples)
    if bool((close.sum(0) > 1).any()):
        raise ValueError(
            f"temperatures must differ by more than a relative {TEMPERATURE_RTOL:g} to be told "
            f"apart. Got {T.tolist()} instead."
        )
    out = np.empty(T.shape[0])  # (n_T,)
    for j, t in enumerate(T):
        chosen = z[close[j]]
        if chosen.shape[0] == 0:
            raise ValueError(
                f"temperatures must all occur in T_of_row. Got {t}, which has no values, instead."
            )
        out[j] = estimator(chosen)
    return out


def crossing_temperature(temperatures: object, u_small: object, u_large: object) -> float:
    """Temperature where :math:`d = U_{\\text{large}} - U_{\\text{small}}` changes sign from + to -, linearly interpolated.

    Below :math:`T_c` the cumulant of the larger lattice is closer to 2/3, above it closer
    to 0, so :math:`d` goes from positive to negative through the crossing. Far from
    :math:`T_c` both cumulants flatten, and noise (or, for a learnt order parameter, a
    systematic difference) can make :math:`d` change sign again. Among the + to - sign
    changes, :math:`d_k \\ge 0 > d_{k+1}`, the one chosen has the largest
    :math:`\\sum_{i \\le k} d_i`: the most positive :math:`d` on its left. Between
    :math:`T_k` and :math:`T_{k+1}` both curves are taken as straight lines. Explained in
    {ref}`sec-vae-critical-temperature`.

    Parameters
    ----------
    temperatures : sequence of float, shape (n_T,)
        Strictly increasing, ``n_T >= 2``.
    u_small, u_large : sequence of float, shape (n_T,)
        Binder cumulants of the smaller and the larger lattice.

    Returns
    -------
    float
        In ``[temperatures[k], temperatures[k + 1]]``.

    Raises
    ------
    ValueError
        When :math:`d` never goes from :math:`\\ge 0` to :math:`< 0` (no crossing).
    """
    T = _temperatures("temperatures", temperatures, minimum=2)
    d = _curve("u_large", u_large, T.shape[0]) - _curve("u_small", u_small, T.shape[0])  # (n_T,)
    changes = np.flatnonzero((d[:-1] >= 0) & (d[1:] < 0))  # k with d_k >= 0 > d_{k+1}
    if changes.shape[0] == 0:
        raise ValueError(
            "u_large - u_small must change sign from + to - between two temperatures "
            f"(the larger lattice ordered more below T_c). Got differences "
            f"{np.array2string(d, precision=3)} instead."
        )
    k = int(changes[np.argmax(np.cumsum(d)[changes])])
    return float(T[k] + (T[k + 1] - T[k]) * d[k] / (d[k] - d[k + 1]))


def binder_crossing(
    temperatures: object,
    small: Sequence[object],
    large: Sequence[object],
    *,
    n_resamples: int = 200,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """Crossing of the Binder cumulants of two sizes, :func:`crossing_temperature` of :func:`binder_cumulant`, with its bootstrap SE.

    Parameters
    ----------
    temperatures : sequence of float, shape (n_T,)
        Strictly increasing, ``n_T >= 2``.
    small, large : sequence of n_T Tensors or ndarrays, each of shape (n_j,)
        Order-parameter samples of the smaller and the larger lattice, one array per
        temperature; every array is resampled on its own by :func:`bootstrap`.
    n_resamples : int
    seed, generator
        Exactly one (:mod:`genphys.seeding`).

    Returns
    -------
    T_cross, se : float

    Raises
    ------
    ValueError
        When the cumulants do not cross (:func:`crossing_temperature`), on the samples or
        in any bootstrap replicate: then the crossing is not resolved by the data.
    """
    T = _temperatures("temperatures", temperatures, minimum=2)
    n_T = T.shape[0]
    for name, groups in (("small", small), ("large", large)):
        if not isinstance(groups, Sequence) or len(groups) != n_T:
            raise ValueError(
                f"{name} must be a list of {n_T} arrays, one per temperature. "
                f"Got {describe(groups)} instead."
            )
    groups = [_as_1d(f"small[{j}]", a, minimum=2) for j, a in enumerate(small)]
    groups += [_as_1d(f"large[{j}]", a, minimum=2) for j, a in enumerate(large)]

    def crossing(*z: np.ndarray) -> float:
        u = np.array([binder_cumulant(zj) for zj in z])  # (2 n_T,)
        return crossing_temperature(T, u[:n_T], u[n_T:])

    def crossing_or_nan(*z: np.ndarray) -> float:
        try:
            return crossing(*z)
        except ValueError:
            return math.nan

    crossing(*groups)  # raises when the samples themselves show no crossing
    estimate, se, replicates = bootstrap(
        groups, crossing_or_nan, n_resamples=n_resamples, seed=seed, generator=generator
    )
    n_failed = int(np.isnan(replicates).sum())
    if n_failed:
        raise ValueError(
            "the Binder cumulants must cross in every bootstrap replicate for the standard "
            f"error to be defined. Got {n_failed} of {n_resamples} replicates without a "
            "crossing instead: the samples do not resolve it."
        )
    return estimate, se


def peak_temperature(temperatures: object, values: object) -> float:
    """Vertex of the parabola through the largest value and its two neighbours.

    Parameters
    ----------
    temperatures : sequence of float, shape (n_T,)
        Strictly increasing, ``n_T >= 3``.
    values : sequence of float, shape (n_T,)
        E.g. a susceptibility; its maximum must not be at either end.

    Returns
    -------
    float
        In ``[temperatures[j - 1], temperatures[j + 1]]`` around the maximum ``j``.
    """
    T = _temperatures("temperatures", temperatures, minimum=3)
    y = _curve("values", values, T.shape[0])
    j = int(np.argmax(y))
    if j == 0 or j == T.shape[0] - 1:
        raise ValueError(
            "values must peak inside the temperature range, not at an end. "
            f"Got the maximum at T = {T[j]} instead."
        )
    a, b, _ = np.polyfit(T[j - 1 : j + 2], y[j - 1 : j + 2], 2)
    if a >= 0:  # a flat top: three points on a line
        return float(T[j])
    return float(np.clip(-b / (2 * a), T[j - 1], T[j + 1]))


def extrapolate_inverse_size(sizes: object, temperatures: object) -> tuple[float, float]:
    """Least-squares fit of :math:`T(L) = T_c + a / L`; returns :math:`(T_c, a)`.

    For the 2D Ising model the correlation-length exponent is :math:`\\nu = 1`, so
    finite-size estimates such as a susceptibility peak approach :math:`T_c` like
    :math:`L^{-1/\\nu} = 1/L`.

    Parameters
    ----------
    sizes : sequence of int, shape (n_L,)
        Distinct lattice sizes, ``n_L >= 2``.
    temperatures : sequence of float, shape (n_L,)

    Returns
    -------
    T_c, a : float
    """
    L = _as_1d("sizes", sizes, minimum=2)
    if not (L > 0).all() or np.unique(L).shape[0] != L.shape[0]:
        raise ValueError(f"sizes must be distinct and positive. Got {L} instead.")
    T = _curve("temperatures", temperatures, L.shape[0])
    a, T_c = np.polyfit(1.0 / L, T, 1)
    return float(T_c), float(a)


def _scalar(value: object) -> float:
    """``value`` (a number, or an array or tensor of one element) as a float, or raise."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.size != 1 or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(
            f"estimator must return one number (a float or a one-element array). "
            f"Got {describe(value)} instead."
        )
    return float(array.reshape(()))


def bootstrap(
    groups: Sequence[object],
    estimator: Callable[..., float],
    *,
    n_resamples: int = 200,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[float, float, np.ndarray]:
    """Bootstrap: :math:`\\mathrm{SE} = \\operatorname{std}_r \\hat\\theta(z^{*r}_1, \\dots, z^{*r}_G)` over resampled groups.

    Each group (e.g. the samples at one temperature and lattice size) is resampled with
    replacement to its own size, independently of the others, ``n_resamples`` times;
    ``estimator(*groups)`` is evaluated on each replicate. The samples of a group must be
    independent (for Monte Carlo data, thinned to about one autocorrelation time, as
    :func:`genphys.ising.sample` does; otherwise use :func:`genphys.ising.jackknife`).
    Explained in {ref}`sec-vae-critical-temperature`.

    Parameters
    ----------
    groups : sequence of Tensor or ndarray, each of shape (n_g, ...)
        Resampled along axis 0.
    estimator : callable
        ``estimator(*groups) -> float``.
    n_resamples : int
        Number of replicates, ``>= 2``.
    seed, generator
        Exactly one (:mod:`genphys.seeding`); indices are drawn on the CPU.

    Returns
    -------
    estimate : float
        ``estimator(*groups)`` on the original samples.
    se : float
        Standard deviation of the replicates (``ddof=1``).
    replicates : ndarray of shape (n_resamples,)
    """
    if not callable(estimator):
        raise TypeError(f"estimator must be callable. Got {describe(estimator)} instead.")
    if isinstance(groups, (np.ndarray, torch.Tensor)) or not isinstance(groups, Sequence):
        raise TypeError(
            f"groups must be a list or tuple of arrays. Got {describe(groups)} instead."
        )
    if len(groups) == 0:
        raise ValueError("groups must hold at least one array. Got an empty sequence instead.")
    arrays = []
    for i, group in enumerate(groups):
        array = group.detach().cpu().numpy() if isinstance(group, torch.Tensor) else group
        array = np.asarray(array)
        if array.ndim == 0 or array.shape[0] < 2:
            raise ValueError(
                f"groups[{i}] must have at least 2 samples along axis 0. "
                f"Got {describe(array)} instead."
            )
        arrays.append(array)
    n_resamples = check_positive_int("n_resamples", n_resamples, minimum=2)
    g = make_generator(seed, generator, device="cpu")
    estimate = _scalar(estimator(*arrays))
    replicates = np.empty(n_resamples)  # (R,)
    for r in range(n_resamples):
        resampled = [
            a[torch.randint(a.shape[0], (a.shape[0],), generator=g).numpy()] for a in arrays
        ]
        replicates[r] = _scalar(estimator(*resampled))
    return estimate, float(replicates.std(ddof=1)), replicates


def ising_scan(
    L: int,
    temperatures: Sequence[float],
    n_per_T: int,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ising configurations as bits at each temperature, stacked: :func:`genphys.data.ising_dataset` per :math:`T`.

    The Monte Carlo run of each temperature gets its own seed, drawn from the generator.

    Parameters
    ----------
    L : int
        Linear lattice size.
    temperatures : sequence of float, shape (n_T,)
        Positive and strictly increasing.
    n_per_T : int
        Configurations per temperature.
    seed, generator
        Exactly one (:mod:`genphys.seeding`).
    dtype : torch.dtype
        Of the bits.

    Returns
    -------
    x : Tensor of shape (n_T * n_per_T, L * L)
        Entries 0 and 1, temperature by temperature.
    T_of_row : Tensor of shape (n_T * n_per_T,), float64
    """
    from .data import ising_dataset

    T = _temperatures("temperatures", temperatures, minimum=1)
    n_per_T = check_positive_int("n_per_T", n_per_T)
    g = make_generator(seed, generator, device="cpu")
    seeds = torch.randint(2**31, (T.shape[0],), generator=g).tolist()
    x = torch.cat(
        [
            ising_dataset(L, float(t), n_per_T, seed=s, dtype=dtype)
            for t, s in zip(T, seeds, strict=True)
        ]
    )  # (n_T * n_per_T, L * L)
    T_of_row = torch.as_tensor(np.repeat(T, n_per_T))  # (n_T * n_per_T,)
    return x, T_of_row
