r"""The linear-Gaussian latent model (probabilistic PCA): every term of the VAE identity exactly.

Explained in {ref}`sec-linear-gaussian`. With :math:`p(h) = \mathcal N(0, I)` and
:math:`p(x \mid h) = \mathcal N(C h + \mu, \sigma^2 I)` the marginal, the posterior, the
ELBO of any Gaussian :math:`q` and its KL divergence to the posterior are closed forms
(Tipping & Bishop, 1999), so the sampled estimators of :mod:`genphys.vae` (the ELBO,
importance-weighted bounds) can be checked against exact numbers.
"""

from __future__ import annotations

import math

import torch

from ._validation import (
    as_tensor,
    check_generator,
    check_positive_float,
    check_positive_int,
    check_same_placement,
)
from .gaussian import (
    LOG_2PI,
    _kl_diagonal,
    log_mean_exp_chunked,
    log_normal_diagonal,
    log_standard_normal,
)

__all__ = ["LinearGaussianModel"]


class LinearGaussianModel:
    r"""Linear-Gaussian latent model (probabilistic PCA), :math:`x = Ch + \mu + \sigma\varepsilon`.

    Here :math:`p(h) = \mathcal N(0, I)` and
    :math:`p(x \mid h) = \mathcal N(C h + \mu, \sigma^2 I)`.

    Every quantity of the VAE identity is available in closed form (Tipping & Bishop, 1999):

    * marginal :math:`p(x) = \mathcal N(\mu, C C^\top + \sigma^2 I)`;
    * posterior :math:`p(h \mid x) = \mathcal N(M^{-1} C^\top (x - \mu), \sigma^2 M^{-1})`,
      :math:`M = C^\top C + \sigma^2 I`;
    * the ELBO and :math:`\mathrm{KL}(q \| p(h \mid x))` for any Gaussian :math:`q`.

    Explained in {ref}`sec-linear-gaussian`.

    Parameters
    ----------
    C : Tensor of shape (n_features, n_latent)
    mu : Tensor of shape (n_features,)
    sigma2 : float
        Observation noise variance :math:`\sigma^2 > 0`.
    """

    def __init__(self, C: object, mu: object, sigma2: float) -> None:
        self.C = as_tensor("C", C, ndim=2)
        self.mu = as_tensor("mu", mu, ndim=1, shape=(self.C.shape[0],))
        check_same_placement("C", self.C, mu=self.mu)
        self.sigma2 = check_positive_float("sigma2", sigma2)
        self.n_features, self.n_latent = self.C.shape
        eye = torch.eye(self.n_latent, dtype=self.C.dtype, device=self.C.device)
        self._M = self.C.T @ self.C + self.sigma2 * eye  # (d, d)
        self._M_chol = torch.linalg.cholesky(self._M)  # (d, d)

    def __repr__(self) -> str:
        return (
            f"LinearGaussianModel(n_features={self.n_features}, n_latent={self.n_latent}, "
            f"sigma2={self.sigma2})"
        )

    # ------------------------------------------------------------- validation
    def _data(self, x: object) -> torch.Tensor:
        x_t = as_tensor("x", x, ndim=2, dtype=self.C.dtype, device=self.C.device)
        if x_t.shape[1] != self.n_features:
            raise ValueError(
                f"x must have shape (n, {self.n_features}). Got shape {tuple(x_t.shape)} instead."
            )
        return x_t

    def _q(
        self, n: int, q_mean: object, q_var: object | None, q_cov: object | None
    ) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Validate q; return ``(mean (n, d), var (n, d) or cov (n, d, d), is_full)``."""
        kw = {"dtype": self.C.dtype, "device": self.C.device}
        d = self.n_latent
        mean = as_tensor("q_mean", q_mean, ndim=(1, 2), **kw)
        if mean.shape[-1] != d or (mean.ndim == 2 and mean.shape[0] not in (1, n)):
            raise ValueError(
                f"q_mean must have shape ({n}, {d}) or ({d},). "
                f"Got shape {tuple(mean.shape)} instead."
            )
        mean = mean.expand(n, d)
        if (q_var is None) == (q_cov is None):
            raise ValueError(
                "q_var and q_cov must be given one at a time (diagonal variances or a full "
                f"covariance). Got {'both' if q_var is not None else 'neither'} instead."
            )
        if q_var is not None:
            var = as_tensor("q_var", q_var, ndim=(0, 1, 2), **kw)
            try:
                var = var.expand(n, d)
            except RuntimeError:
                raise ValueError(
                    f"q_var must broadcast to shape ({n}, {d}). "
                    f"Got shape {tuple(var.shape)} instead."
                ) from None
            if not bool((var > 0).all()):
                raise ValueError(
                    "q_var must be positive (variances). "
                    f"Got the minimum {var.min().item()} instead."
                )
            return mean, var, False
        cov = as_tensor("q_cov", q_cov, ndim=(2, 3), **kw)
        if cov.shape[-2:] != (d, d) or (cov.ndim == 3 and cov.shape[0] not in (1, n)):
            raise ValueError(
                f"q_cov must have shape ({d}, {d}) or ({n}, {d}, {d}). "
                f"Got shape {tuple(cov.shape)} instead."
            )
        cov = cov.expand(n, d, d)
        if not torch.allclose(cov, cov.transpose(-1, -2), rtol=1e-12, atol=1e-12):
            raise ValueError("q_cov must be symmetric. Got a non-symmetric matrix instead.")
        if bool((torch.linalg.cholesky_ex(cov).info != 0).any()):
            raise ValueError(
                "q_cov must be positive definite. Got a matrix without a Cholesky factor instead."
            )
        return mean, cov, True

    # ------------------------------------------------------------- exact terms
    def log_marginal(self, x: object) -> torch.Tensor:
        r"""Exact :math:`\log p(x) = \log \mathcal N(x; \mu, C C^\top + \sigma^2 I)`.

        Computed with a Cholesky factor of the (n_features, n_features) covariance,
        independently of the posterior. Explained in {ref}`sec-linear-gaussian`.

        Parameters
        ----------
        x : Tensor of shape (n, n_features)

        Returns
        -------
        Tensor of shape (n,)
        """
        x = self._data(x)
        eye = torch.eye(self.n_features, dtype=x.dtype, device=x.device)
        L = torch.linalg.cholesky(self.C @ self.C.T + self.sigma2 * eye)  # (D, D)
        z = torch.linalg.solve_triangular(L, (x - self.mu).T, upper=False)  # (D, n)
        log_det = 2.0 * torch.log(torch.diagonal(L)).sum()
        return -0.5 * (self.n_features * LOG_2PI + log_det + (z**2).sum(0))

    def posterior(self, x: object) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Exact :math:`p(h \mid x) = \mathcal N(M^{-1} C^\top (x - \mu), \sigma^2 M^{-1})`.

        Here :math:`M = C^\top C + \sigma^2 I` (n_latent, n_latent).

        Parameters
        ----------
        x : Tensor of shape (n, n_features)

        Returns
        -------
        mean : Tensor of shape (n, n_latent)
        covariance : Tensor of shape (n_latent, n_latent)
            The same for every ``x``.
        """
        x = self._data(x)
        return self._posterior_mean(x), self._posterior_cov()

    def _posterior_mean(self, x: torch.Tensor) -> torch.Tensor:
        rhs = self.C.T @ (x - self.mu).T  # (d, n)
        return torch.cholesky_solve(rhs, self._M_chol).T  # (n, d)

    def _posterior_cov(self) -> torch.Tensor:
        return self.sigma2 * torch.cholesky_inverse(self._M_chol)  # (d, d)

    def log_p_x_given_h(self, x: object, h: object) -> torch.Tensor:
        r""":math:`\log p(x \mid h) = \log \mathcal N(x; C h + \mu, \sigma^2 I)`.

        Parameters
        ----------
        x : Tensor of shape (n, n_features)
        h : Tensor of shape (n, n_latent) or (k, n, n_latent)

        Returns
        -------
        Tensor of shape (n,) or (k, n)
        """
        x = self._data(x)
        h = as_tensor("h", h, ndim=(2, 3), dtype=self.C.dtype, device=self.C.device)
        if h.shape[-1] != self.n_latent or h.shape[-2] != x.shape[0]:
            raise ValueError(
                f"h must have shape (..., {x.shape[0]}, {self.n_latent}). "
                f"Got shape {tuple(h.shape)} instead."
            )
        return self._log_p_x_given_h(x, h)

    def _log_p_x_given_h(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        residual = x - h @ self.C.T - self.mu  # (..., n, D)
        return -0.5 * (
            (residual**2).sum(-1) / self.sigma2
            + self.n_features * (LOG_2PI + math.log(self.sigma2))
        )

    def elbo(
        self, x: object, q_mean: object, q_var: object | None = None, *, q_cov: object | None = None
    ) -> torch.Tensor:
        r"""Exact :math:`\mathrm{ELBO} = \mathbb E_q[\log p(x \mid h)] - \mathrm{KL}(q \| p(h))`.

        With :math:`q = \mathcal N(m, S)`:
        :math:`\mathbb E_q[\log p(x \mid h)] = -\frac12[D \log 2\pi\sigma^2
        + (\lVert x - \mu - C m \rVert^2 + \operatorname{tr} C S C^\top)/\sigma^2]` and
        :math:`\mathrm{KL}(q \| p(h)) = \frac12[\operatorname{tr} S + \lVert m \rVert^2 - d
        - \log\det S]`. Differentiable in ``q_mean``, ``q_var`` and ``q_cov``. Explained in
        {ref}`sec-linear-gaussian`.

        Parameters
        ----------
        x : Tensor of shape (n, n_features)
        q_mean : Tensor of shape (n, n_latent) or (n_latent,)
        q_var : Tensor broadcastable to (n, n_latent), optional
            Variances of a diagonal :math:`q` (positive).
        q_cov : Tensor of shape (n_latent, n_latent) or (n, n_latent, n_latent), optional
            A full covariance instead (symmetric positive definite).

        Returns
        -------
        Tensor of shape (n,)
        """
        x = self._data(x)
        mean, S, full = self._q(x.shape[0], q_mean, q_var, q_cov)
        residual = x - self.mu - mean @ self.C.T  # (n, D)
        if full:
            trace_CSC = (S * (self.C.T @ self.C)).sum((-1, -2))  # (n,)
            trace_S = torch.diagonal(S, dim1=-2, dim2=-1).sum(-1)
            log_det_S = torch.logdet(S)
        else:
            trace_CSC = S @ (self.C**2).sum(0)  # (n,)
            trace_S = S.sum(-1)
            log_det_S = torch.log(S).sum(-1)
        reconstruction = -0.5 * (
            self.n_features * (LOG_2PI + math.log(self.sigma2))
            + ((residual**2).sum(-1) + trace_CSC) / self.sigma2
        )
        kl_prior = 0.5 * (trace_S + (mean**2).sum(-1) - self.n_latent - log_det_S)
        return reconstruction - kl_prior

    def kl_to_posterior(
        self, x: object, q_mean: object, q_var: object | None = None, *, q_cov: object | None = None
    ) -> torch.Tensor:
        r"""Exact :math:`\mathrm{KL}(q \| p(h \mid x))` between Gaussians.

        With :math:`p(h \mid x) = \mathcal N(\mu_p, \Sigma_p)` and
        :math:`\Sigma_p^{-1} = M/\sigma^2`:
        :math:`\frac12[\operatorname{tr}(\Sigma_p^{-1} S) + (\mu_p - m)^\top \Sigma_p^{-1}
        (\mu_p - m) - d + \log\det\Sigma_p - \log\det S]`. Same arguments as :meth:`elbo`.

        Returns
        -------
        Tensor of shape (n,)
        """
        x = self._data(x)
        mean, S, full = self._q(x.shape[0], q_mean, q_var, q_cov)
        precision = self._M / self.sigma2  # (d, d)
        diff = self._posterior_mean(x) - mean  # (n, d)
        quad = ((diff @ precision) * diff).sum(-1)  # (n,)
        if full:
            trace = (precision * S).sum((-1, -2))
            log_det_S = torch.logdet(S)
        else:
            trace = S @ torch.diagonal(precision)
            log_det_S = torch.log(S).sum(-1)
        log_det_post = (
            self.n_latent * math.log(self.sigma2)
            - 2.0 * torch.log(torch.diagonal(self._M_chol)).sum()
        )
        return 0.5 * (trace + quad - self.n_latent + log_det_post - log_det_S)

    # ---------------------------------------------------------- sampled terms
    def estimate_elbo(
        self,
        x: object,
        q_mean: object,
        q_var: object,
        *,
        n_samples: int,
        generator: torch.Generator,
    ) -> torch.Tensor:
        r"""Sampled ELBO :math:`\frac1S \sum_s \log p(x \mid h_s) - \mathrm{KL}(q \| p)`.

        Here :math:`h_s = m + \sqrt v \odot \varepsilon_s` with
        :math:`\varepsilon_s \sim \mathcal N(0, I)`.

        The sampled counterpart of :meth:`elbo` for a diagonal :math:`q` (the VAE's
        estimator, KL exact); differentiable in ``q_mean`` and ``q_var``, so its gradient
        is the reparameterised gradient. Explained in {ref}`sec-reparameterization`.

        Returns
        -------
        Tensor of shape (n,)
        """
        x = self._data(x)
        mean, var, _ = self._q(x.shape[0], q_mean, q_var, None)
        n_samples = check_positive_int("n_samples", n_samples)
        check_generator(generator, x.device, "the tensors")
        eps = torch.randn(
            (n_samples, *mean.shape), generator=generator, dtype=x.dtype, device=x.device
        )  # (S, n, d)
        h = mean + torch.sqrt(var) * eps  # (S, n, d)
        reconstruction = self._log_p_x_given_h(x, h).mean(0)  # (n,)
        return reconstruction - _kl_diagonal(mean, torch.log(var))

    def estimate_log_marginal(
        self,
        x: object,
        *,
        k: int,
        generator: torch.Generator,
        q_mean: object | None = None,
        q_var: object | None = None,
        chunk_size: int = 1000,
    ) -> torch.Tensor:
        r"""Importance-sampling estimate :math:`\log \frac1k \sum_{s=1}^k p(x, h_s) / q(h_s)`.

        The samples are :math:`h_s \sim q` independently.

        The sampled counterpart of :meth:`log_marginal`. Without ``q_mean``/``q_var`` the
        proposal is the prior and the estimate is :math:`\log \frac1k \sum_s p(x \mid h_s)`;
        with a diagonal Gaussian :math:`q` its expectation is the importance-weighted
        bound :math:`\mathcal L_k`. Explained in {ref}`sec-latent-variable-models` and
        {ref}`sec-iwae`.

        Parameters
        ----------
        x : Tensor of shape (n, n_features)
        k : int
        generator : torch.Generator
        q_mean : Tensor of shape (n, n_latent) or (n_latent,), optional
        q_var : Tensor broadcastable to (n, n_latent), optional
        chunk_size : int
            Samples drawn at a time.

        Returns
        -------
        Tensor of shape (n,)
        """
        x = self._data(x)
        k = check_positive_int("k", k)
        chunk_size = check_positive_int("chunk_size", chunk_size)
        check_generator(generator, x.device, "the tensors")
        n, d = x.shape[0], self.n_latent
        if q_mean is None and q_var is None:
            mean, std, log_var = None, None, None
        elif q_mean is None or q_var is None:
            raise ValueError(
                "q_mean and q_var must be given together (or neither, for the prior). "
                f"Got only {'q_mean' if q_var is None else 'q_var'} instead."
            )
        else:
            mean, var, _ = self._q(n, q_mean, q_var, None)
            std, log_var = torch.sqrt(var), torch.log(var)

        def draw_log_weights(c: int) -> torch.Tensor:
            eps = torch.randn((c, n, d), generator=generator, dtype=x.dtype, device=x.device)
            if mean is None:
                return self._log_p_x_given_h(x, eps)  # (c, n)
            h = mean + std * eps  # (c, n, d)
            log_q = log_normal_diagonal(h, mean, log_var)  # (c, n)
            return self._log_p_x_given_h(x, h) + log_standard_normal(h) - log_q

        return log_mean_exp_chunked(draw_log_weights, k, chunk_size=chunk_size)

    def sample(self, n: int, *, generator: torch.Generator) -> torch.Tensor:
        r"""Draw :math:`h \sim \mathcal N(0, I)` and :math:`x = C h + \mu + \sigma \varepsilon`.

        Returns
        -------
        Tensor of shape (n, n_features)
        """
        n = check_positive_int("n", n)
        check_generator(generator, self.C.device, "the tensors")
        kw = {"generator": generator, "dtype": self.C.dtype, "device": self.C.device}
        h = torch.randn((n, self.n_latent), **kw)  # (n, d)
        noise = torch.randn((n, self.n_features), **kw)  # (n, D)
        return h @ self.C.T + self.mu + math.sqrt(self.sigma2) * noise
