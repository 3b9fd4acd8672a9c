"""Isotropic Gaussian mixtures: a continuous density whose log-density, score and samples are exact.

The continuous chapters (Langevin energy models, diffusion models, GANs, the capstone)
need data whose true density is known everywhere, so that a trained model can be judged
against exact numbers rather than by eye. A mixture of isotropic Gaussians

.. math::

    p(x) = \\sum_{k=1}^{K} w_k\\, \\mathcal N(x;\\ \\mu_k,\\ s_k^2 I)

is that density: :meth:`GaussianMixture.log_prob` and its gradient, the score
:math:`\\nabla_x \\log p(x) = \\sum_k r_k(x)\\,(\\mu_k - x)/s_k^2` with responsibilities
:math:`r_k(x) = w_k \\mathcal N(x; \\mu_k, s_k^2 I) / p(x)`, are closed forms.

It stays a mixture under the forward (noising) process of a diffusion model,
:math:`x_t = \\sqrt{\\bar\\alpha_t}\\, x_0 + \\sqrt{1 - \\bar\\alpha_t}\\, \\varepsilon`: component
:math:`k` becomes :math:`\\mathcal N(\\sqrt{\\bar\\alpha_t}\\,\\mu_k,\\ (\\bar\\alpha_t s_k^2 + 1 - \\bar\\alpha_t) I)`
(:meth:`GaussianMixture.diffused`), so the score of every noised marginal :math:`q_t` is exact too.
"""

from __future__ import annotations

import math

import torch

from ._validation import as_tensor, check_positive_float, check_positive_int, describe
from .seeding import make_generator

__all__ = ["GaussianMixture", "ring"]


def _float_tensor(name: str, value: object, ndim: int, dtype: torch.dtype) -> torch.Tensor:
    t = as_tensor(name, value, dtype=dtype)
    if t.dim() != ndim:
        raise ValueError(
            f"{name} must be a tensor with {ndim} dimension(s). Got shape {tuple(t.shape)} instead."
        )
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite. Got {t} instead.")
    return t


class GaussianMixture:
    """The density :math:`p(x) = \\sum_k w_k \\mathcal N(x; \\mu_k, s_k^2 I)` in ``dim`` dimensions.

    Parameters
    ----------
    weights : array-like of shape (K,)
        Non-negative, summing to 1 (within 1e-6; they are renormalised exactly).
    means : array-like of shape (K, dim)
    stds : array-like of shape (K,)
        Positive standard deviations :math:`s_k` of the isotropic components.
    dtype : torch.dtype
        ``torch.float64`` (default) or ``torch.float32``.

    Examples
    --------
    >>> p = GaussianMixture([0.5, 0.5], [[-1.0], [1.0]], [0.5, 0.5])
    >>> p.log_prob(torch.zeros(1, 1)).shape
    torch.Size([1])
    """

    def __init__(
        self, weights: object, means: object, stds: object, *, dtype: torch.dtype = torch.float64
    ):
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(
                f"dtype must be torch.float32 or torch.float64. Got {describe(dtype)} instead."
            )
        w = _float_tensor("weights", weights, 1, dtype)
        mu = _float_tensor("means", means, 2, dtype)
        s = _float_tensor("stds", stds, 1, dtype)
        K = w.shape[0]
        if K == 0 or mu.shape[0] != K or s.shape[0] != K:
            raise ValueError(
                "weights, means and stds must describe the same number K >= 1 of components. "
                f"Got shapes {tuple(w.shape)}, {tuple(mu.shape)} and {tuple(s.shape)} instead."
            )
        if bool((w < 0).any()) or abs(float(w.sum()) - 1.0) > 1e-6:
            raise ValueError(
                f"weights must be non-negative and sum to 1. Got {w.tolist()} (sum {float(w.sum())}) "
                "instead."
            )
        if bool((s <= 0).any()):
            raise ValueError(f"stds must be positive. Got {s.tolist()} instead.")
        self.weights = w / w.sum()  # (K,)
        self.means = mu  # (K, dim)
        self.stds = s  # (K,)

    @property
    def n_components(self) -> int:
        return self.weights.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def dtype(self) -> torch.dtype:
        return self.means.dtype

    def __repr__(self) -> str:
        return f"GaussianMixture(n_components={self.n_components}, dim={self.dim})"

    # ------------------------------------------------------------------ checks
    def _points(self, x: object, name: str = "x") -> torch.Tensor:
        x = as_tensor(name, x, dtype=self.dtype)
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(
                f"{name} must have shape (n, {self.dim}). Got shape {tuple(x.shape)} instead."
            )
        return x

    # ------------------------------------------------------------------ density
    def component_log_prob(self, x: object) -> torch.Tensor:
        """:math:`\\log w_k + \\log \\mathcal N(x; \\mu_k, s_k^2 I)` for every point and component.

        Parameters
        ----------
        x : Tensor of shape (n, dim)

        Returns
        -------
        Tensor of shape (n, K)
        """
        x = self._points(x)
        mu, s = self.means.to(x.device), self.stds.to(x.device)
        sq = ((x[:, None, :] - mu[None, :, :]) ** 2).sum(-1)  # (n, K)
        d = self.dim
        log_norm = -0.5 * d * math.log(2 * math.pi) - d * torch.log(s)  # (K,)
        return torch.log(self.weights.to(x.device)) + log_norm - 0.5 * sq / s**2

    def log_prob(self, x: object) -> torch.Tensor:
        """:math:`\\log p(x)`, stable (a log-sum-exp over components).

        Parameters
        ----------
        x : Tensor of shape (n, dim)

        Returns
        -------
        Tensor of shape (n,)
        """
        return torch.logsumexp(self.component_log_prob(x), dim=1)

    def responsibilities(self, x: object) -> torch.Tensor:
        """:math:`r_k(x) = w_k \\mathcal N(x; \\mu_k, s_k^2 I) / p(x)`, shape (n, K); rows sum to 1."""
        return torch.softmax(self.component_log_prob(x), dim=1)

    def grad_log_prob(self, x: object) -> torch.Tensor:
        """The score :math:`\\nabla_x \\log p(x) = \\sum_k r_k(x) (\\mu_k - x) / s_k^2`.

        Parameters
        ----------
        x : Tensor of shape (n, dim)

        Returns
        -------
        Tensor of shape (n, dim)
        """
        x = self._points(x)
        r = self.responsibilities(x)  # (n, K)
        mu, s = self.means.to(x.device), self.stds.to(x.device)
        pull = (mu[None, :, :] - x[:, None, :]) / (s**2)[None, :, None]  # (n, K, dim)
        return (r[:, :, None] * pull).sum(1)

    # ------------------------------------------------------------------ diffusion
    def diffused(self, alpha_bar: float) -> GaussianMixture:
        """The law of :math:`\\sqrt{\\bar\\alpha} x + \\sqrt{1 - \\bar\\alpha}\\, \\varepsilon` for ``x ~ p``.

        Component :math:`k` becomes :math:`\\mathcal N(\\sqrt{\\bar\\alpha}\\mu_k, (\\bar\\alpha s_k^2 + 1 - \\bar\\alpha) I)`
        with the same weight.

        Parameters
        ----------
        alpha_bar : float in (0, 1]
            :math:`\\bar\\alpha_t = \\prod_{s \\le t} (1 - \\beta_s)`; 1 gives ``p`` itself.

        Returns
        -------
        GaussianMixture
        """
        alpha_bar = check_positive_float("alpha_bar", alpha_bar)
        if alpha_bar > 1.0:
            raise ValueError(f"alpha_bar must be in (0, 1]. Got {alpha_bar} instead.")
        scale = math.sqrt(alpha_bar)
        stds = torch.sqrt(alpha_bar * self.stds**2 + (1.0 - alpha_bar))
        return GaussianMixture(self.weights, scale * self.means, stds, dtype=self.dtype)

    def score(self, x: object, t: int | None = None, betas: object | None = None) -> torch.Tensor:
        """:math:`\\nabla_x \\log q_t(x)`: the score of the data (``t`` None or 0) or of its noised marginal.

        Parameters
        ----------
        x : Tensor of shape (n, dim)
        t : int, optional
            Diffusion step, 1-based (``t = 1 ... T`` as in Ho et al. 2020); ``None`` or 0 gives
            the score of ``p`` itself.
        betas : Tensor of shape (T,), optional
            The noise schedule, needed when ``t >= 1``;
            :math:`\\bar\\alpha_t = \\prod_{s=1}^{t} (1 - \\beta_s)`.

        Returns
        -------
        Tensor of shape (n, dim)
        """
        if t is None or (isinstance(t, int) and not isinstance(t, bool) and t == 0):
            return self.grad_log_prob(x)
        if betas is None:
            raise ValueError(
                f"betas must be given when t >= 1. Got t={t!r} and betas=None instead."
            )
        if isinstance(betas, torch.Tensor):
            betas = betas.detach().to("cpu", torch.float64)
        b = _float_tensor("betas", betas, 1, torch.float64)
        if bool(((b <= 0) | (b >= 1)).any()):
            raise ValueError(
                f"betas must lie in (0, 1). Got values in [{b.min()}, {b.max()}] instead."
            )
        T = b.shape[0]
        if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t <= T:
            raise ValueError(
                f"t must be an integer in 0 ... {T} (1-based steps). Got {t!r} instead."
            )
        alpha_bar = float(torch.prod(1.0 - b[:t]))
        return self.diffused(alpha_bar).grad_log_prob(x)

    # ------------------------------------------------------------------ samples, moments
    def sample(
        self, n: int, *, seed: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Exact samples: a component :math:`k \\sim w`, then :math:`\\mu_k + s_k \\varepsilon`.

        Parameters
        ----------
        n : int
        seed, generator
            Exactly one (see :mod:`genphys.seeding`).

        Returns
        -------
        Tensor of shape (n, dim)
        """
        n = check_positive_int("n", n)
        g = make_generator(seed, generator, device="cpu")
        k = torch.multinomial(self.weights, n, replacement=True, generator=g)  # (n,)
        eps = torch.randn(n, self.dim, generator=g, dtype=self.dtype)  # (n, dim)
        return self.means[k] + self.stds[k, None] * eps

    def mean(self) -> torch.Tensor:
        """:math:`E[x] = \\sum_k w_k \\mu_k`, shape (dim,)."""
        return self.weights @ self.means

    def covariance(self) -> torch.Tensor:
        """:math:`\\mathrm{Cov}[x] = \\sum_k w_k (s_k^2 I + \\mu_k \\mu_k^\\top) - E[x] E[x]^\\top`, shape (dim, dim)."""
        m = self.mean()
        second = (
            self.weights[:, None, None] * (self.means[:, :, None] * self.means[:, None, :])
        ).sum(0)
        second = second + (self.weights * self.stds**2).sum() * torch.eye(
            self.dim, dtype=self.dtype
        )
        return second - torch.outer(m, m)


def ring(
    n_modes: int = 8, radius: float = 2.0, std: float = 0.2, *, dtype: torch.dtype = torch.float64
) -> GaussianMixture:
    """Equal-weight isotropic Gaussians of standard deviation ``std`` on a circle in 2D.

    Component :math:`k` sits at :math:`r(\\cos 2\\pi k / K, \\sin 2\\pi k / K)`; the standard test
    of mode coverage for GANs and of mixing for samplers.

    Parameters
    ----------
    n_modes : int
    radius, std : float

    Returns
    -------
    GaussianMixture
    """
    n_modes = check_positive_int("n_modes", n_modes)
    radius = check_positive_float("radius", radius)
    std = check_positive_float("std", std)
    angle = 2 * math.pi * torch.arange(n_modes, dtype=dtype) / n_modes
    means = radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)  # (K, 2)
    weights = torch.full((n_modes,), 1.0 / n_modes, dtype=dtype)
    return GaussianMixture(weights, means, torch.full((n_modes,), std, dtype=dtype), dtype=dtype)
