"""Exact numbers for low-dimensional continuous densities: quadrature on a regular grid.

In one or two dimensions an unnormalised density :math:`f(x) = e^{-E(x)}` can be integrated
to high accuracy by the midpoint rule on a fine grid. That turns the continuous models of
the book into models with an *exact* partition function, density, log-likelihood and
divergence, the way enumeration does for the binary ones:

.. math::

    Z = \\int f(x)\\, dx \\approx \\Delta V \\sum_{c} f(x_c), \\qquad
    \\log Z \\approx \\log \\Delta V + \\operatorname{logsumexp}_c \\log f(x_c),

with cell centres :math:`x_c` and cell volume :math:`\\Delta V`. The error is
:math:`O(h^2)` in the cell width :math:`h` for smooth densities, plus the mass outside the box.

Distributions on the grid's cells (a discretised density, or a histogram of samples) are
compared with :func:`kl_divergence` and :func:`js_divergence`, in nats.
"""

from __future__ import annotations

import math

import torch

from ._validation import as_tensor, check_positive_int, describe

__all__ = ["Grid", "js_divergence", "kl_divergence"]


class Grid:
    """The cells of the box :math:`[\\text{low}, \\text{high}]^{\\text{dim}}`, ``n_points`` per axis.

    Parameters
    ----------
    low, high : float
        The box, the same on every axis.
    n_points : int
        Cells per axis; the midpoint rule evaluates at their centres.
    dim : int
        1 or 2 (the number of cells, ``n_points ** dim``, grows fast).
    dtype : torch.dtype

    Attributes
    ----------
    axis : Tensor of shape (n_points,)
        The cell centres along one axis.
    points : Tensor of shape (n_points ** dim, dim)
        Every cell centre, the last axis varying fastest.
    cell_volume : float
        :math:`h^{\\text{dim}}` with :math:`h = (\\text{high} - \\text{low}) / n_\\text{points}`.
    """

    def __init__(
        self,
        low: float,
        high: float,
        n_points: int,
        *,
        dim: int = 2,
        dtype: torch.dtype = torch.float64,
    ):
        for name, value in (("low", low), ("high", high)):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise TypeError(f"{name} must be a finite number. Got {describe(value)} instead.")
        if not low < high:
            raise ValueError(f"high must be larger than low. Got low={low}, high={high} instead.")
        self.n_points = check_positive_int("n_points", n_points, minimum=2)
        self.dim = check_positive_int("dim", dim)
        if self.dim > 2:
            raise ValueError(f"dim must be 1 or 2. Got {self.dim} instead.")
        if self.n_points**self.dim > 4_000_000:
            raise ValueError(
                "n_points ** dim must be at most 4,000,000 cells. "
                f"Got {self.n_points}**{self.dim} = {self.n_points**self.dim} instead."
            )
        self.low, self.high = float(low), float(high)
        self.width = (self.high - self.low) / self.n_points
        self.cell_volume = self.width**self.dim
        self.axis = self.low + self.width * (torch.arange(self.n_points, dtype=dtype) + 0.5)
        if self.dim == 1:
            self.points = self.axis[:, None]  # (n, 1)
        else:
            xx, yy = torch.meshgrid(self.axis, self.axis, indexing="ij")
            self.points = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)  # (n*n, 2)

    @property
    def shape(self) -> tuple[int, ...]:
        """The grid's shape, ``(n_points,) * dim``, for reshaping values to an image."""
        return (self.n_points,) * self.dim

    @property
    def n_cells(self) -> int:
        return self.points.shape[0]

    def __repr__(self) -> str:
        return f"Grid(low={self.low}, high={self.high}, n_points={self.n_points}, dim={self.dim})"

    def _values(self, name: str, values: object) -> torch.Tensor:
        v = as_tensor(name, values, dtype=self.points.dtype, finite=False)
        if v.shape != (self.n_cells,):
            raise ValueError(
                f"{name} must have shape ({self.n_cells},), one value per cell of the grid. "
                f"Got shape {tuple(v.shape)} instead."
            )
        if bool(torch.isnan(v).any()) or bool((v == math.inf).any()):
            raise ValueError(
                f"{name} must be finite or -inf (zero density). Got NaN or +inf instead."
            )
        if not bool(torch.isfinite(v).any()):
            raise ValueError(
                f"{name} must be finite on at least one cell (a density with some mass on the "
                "grid). Got -inf everywhere instead: widen the box or check the density."
            )
        return v

    def log_partition(self, log_f: object) -> torch.Tensor:
        """:math:`\\log \\int f \\approx \\log \\Delta V + \\operatorname{logsumexp}_c \\log f(x_c)`.

        Parameters
        ----------
        log_f : Tensor of shape (n_cells,)
            The unnormalised log-density at :attr:`points`, e.g. ``-energy(grid.points)``.

        Returns
        -------
        Tensor of shape ()
        """
        log_f = self._values("log_f", log_f)
        return torch.logsumexp(log_f, dim=0) + math.log(self.cell_volume)

    def log_density(self, log_f: object) -> torch.Tensor:
        """The normalised log-density :math:`\\log f(x_c) - \\log Z` at every cell centre, shape (n_cells,)."""
        log_f = self._values("log_f", log_f)
        return log_f - self.log_partition(log_f)

    def cell_probabilities(self, log_f: object) -> torch.Tensor:
        """:math:`P_c = f(x_c) \\Delta V / Z`, the density discretised on the cells; sums to 1. Shape (n_cells,)."""
        log_f = self._values("log_f", log_f)
        return torch.softmax(log_f, dim=0)

    def histogram(self, samples: object) -> tuple[torch.Tensor, float]:
        """The fraction of ``samples`` in each cell, and the fraction outside the box.

        Parameters
        ----------
        samples : Tensor of shape (n, dim)

        Returns
        -------
        probabilities : Tensor of shape (n_cells,)
            Counts divided by ``n`` (so they sum to ``1 - outside``).
        outside : float
            The fraction of samples outside the box.
        """
        x = as_tensor("samples", samples, dtype=self.points.dtype, finite=False)
        if x.dim() != 2 or x.shape[1] != self.dim or x.shape[0] == 0:
            raise ValueError(
                f"samples must have shape (n, {self.dim}) with n >= 1. Got shape {tuple(x.shape)} instead."
            )
        x = x.detach().cpu()
        index = torch.floor((x - self.low) / self.width).long()  # (n, dim)
        inside = ((index >= 0) & (index < self.n_points)).all(1) & torch.isfinite(x).all(1)
        flat = index[inside, 0]
        if self.dim == 2:
            flat = flat * self.n_points + index[inside, 1]
        counts = torch.bincount(flat, minlength=self.n_cells).to(self.points.dtype)
        n = x.shape[0]
        return counts / n, float((~inside).sum()) / n


def _probabilities(name: str, p: object) -> torch.Tensor:
    p = as_tensor(name, p, ndim=1)
    if bool((p < 0).any()):
        raise ValueError(f"{name} must be non-negative. Got a minimum of {float(p.min())} instead.")
    total = float(p.sum())
    if total <= 0:
        raise ValueError(f"{name} must have positive total mass. Got {total} instead.")
    return p / total


def kl_divergence(p: object, q: object) -> float:
    """:math:`\\mathrm{KL}(P \\,\\|\\, Q) = \\sum_c P_c \\log (P_c / Q_c)` in nats, for distributions on cells.

    Both are renormalised to sum to 1; :math:`0 \\log 0 = 0`; the result is :math:`+\\infty`
    when :math:`P` puts mass where :math:`Q` has none.

    Parameters
    ----------
    p, q : Tensor of shape (n_cells,)
        Non-negative masses (e.g. :meth:`Grid.cell_probabilities` or :meth:`Grid.histogram`).

    Returns
    -------
    float
    """
    p = _probabilities("p", p)
    q = _probabilities("q", q)
    if p.shape != q.shape:
        raise ValueError(
            f"q must have the shape of p {tuple(p.shape)}. Got {tuple(q.shape)} instead."
        )
    support = p > 0
    if bool((q[support] == 0).any()):
        return math.inf
    return float((p[support] * (torch.log(p[support]) - torch.log(q[support]))).sum())


def js_divergence(p: object, q: object) -> float:
    """:math:`\\mathrm{JSD}(P, Q) = \\tfrac12 \\mathrm{KL}(P \\| M) + \\tfrac12 \\mathrm{KL}(Q \\| M)`, :math:`M = (P + Q)/2`.

    Symmetric, in :math:`[0, \\log 2]` nats, finite even for disjoint supports.

    Parameters
    ----------
    p, q : Tensor of shape (n_cells,)

    Returns
    -------
    float
    """
    p = _probabilities("p", p)
    q = _probabilities("q", q)
    if p.shape != q.shape:
        raise ValueError(
            f"q must have the shape of p {tuple(p.shape)}. Got {tuple(q.shape)} instead."
        )
    m = 0.5 * (p + q)
    return 0.5 * kl_divergence(p, m) + 0.5 * kl_divergence(q, m)
