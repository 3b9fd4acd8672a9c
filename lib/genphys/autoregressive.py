"""Variational autoregressive networks for the Ising model: exact sampling, exact log q, F_q >= F.

Explained in {ref}`sec-variational-free-energy`. The :math:`N = L^2` spins of an
:math:`L \\times L` lattice are put in raster order and the model factorises

.. math::

    q(s) = \\prod_{i=1}^{N} q(s_i \\mid s_{<i}), \\qquad
    q(s_i = +1 \\mid s_{<i}) = \\sigma\\big(\\ell_i(s_{<i})\\big),

where the logit :math:`\\ell_i` comes from a masked network (MADE, Germain et al. 2015):
a dense layer whose weight matrix is strictly lower triangular, optionally plus one
hidden layer whose masks let output :math:`i` see inputs :math:`j < i` only. Both
:math:`\\log q(s)` (one forward pass) and sampling (:math:`N` passes, one spin at a time)
are exact, which is what makes the model useful in statistical physics (Wu, Wang & Zhang
2019):

* the variational free energy :math:`F_q = \\mathbb E_q[E(s) + T \\log q(s)] \\ge F`
  (:func:`local_free_energy`, :func:`free_energy_exact`), minimised with the
  score-function gradient (:func:`score_function_loss`, :func:`train_variational`);
* importance-weighted estimates of :math:`F`, :math:`E` and :math:`|m|` that are
  consistent whatever :math:`q` is (:func:`importance_estimates`);
* :math:`q` as the proposal of an independence Metropolis–Hastings sampler, exact for any
  :math:`q` with full support (:func:`learned_proposal`, :func:`independence_metropolis`).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping

import torch
from torch import nn

from ._validation import (
    check_positive_float,
    check_positive_int,
    check_probability,
    describe,
)
from .ais import MIN_ESS_FRACTION, AISWeightWarning, importance_estimate
from .enumeration import binary_states
from .fitting import History, fit
from .ising import _check_spins, energy, metropolis_sweep, wolff_step
from .mcmc import (
    MCMCResult,
    Proposal,
    integrated_autocorrelation_time,
    metropolis_hastings,
    split_rhat,
    standard_error,
)
from .seeding import make_generator

__all__ = [
    "MAX_EXACT_SPINS",
    "AutoregressiveModel",
    "free_energy_exact",
    "importance_estimates",
    "independence_metropolis",
    "learned_proposal",
    "local_free_energy",
    "sampler_comparison",
    "score_function_loss",
    "train_variational",
]

#: Largest number of spins :func:`free_energy_exact` enumerates (:math:`2^{16}` states).
MAX_EXACT_SPINS = 16


def _check_T(T: object) -> float:
    return check_positive_float("T", T)


class AutoregressiveModel(nn.Module):
    """:math:`q(s) = \\prod_i \\sigma(s_i \\ell_i(s_{<i}))` over the :math:`L^2` spins of a lattice.

    The logits are :math:`\\ell = b + W_{<} s + V_{>} \\tanh(c + U_{\\le} s)`: ``W`` is
    strictly lower triangular (spin :math:`i` sees spins :math:`j < i`), and with
    ``n_hidden > 0`` a hidden layer with MADE masks is added (hidden unit :math:`k` has
    degree :math:`m_k \\in \\{1, \\dots, N-1\\}`, sees inputs :math:`j \\le m_k` and feeds
    outputs :math:`i > m_k`, counting from 1). With ``z2_symmetric`` the model is
    :math:`q_{\\mathbb Z_2}(s) = \\frac12 [q(s) + q(-s)]`, which gives the two ordered
    phases equal weight (Wu et al. 2019). Explained in
    {ref}`sec-variational-free-energy`.

    Parameters
    ----------
    L : int
        Side of the lattice (``L >= 2``); :math:`N = L^2` spins.
    n_hidden : int
        Hidden units of the masked layer; 0 (default) for the dense layer alone.
    z2_symmetric : bool
        Symmetrise under :math:`s \\to -s`.
    seed, generator
        The source of the initial weights (one of them), drawn on the CPU.
    dtype : torch.dtype
    device : torch.device or str, optional
    """

    def __init__(
        self,
        L: int,
        *,
        n_hidden: int = 0,
        z2_symmetric: bool = False,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ):
        super().__init__()
        self.L = check_positive_int("L", L, minimum=2)
        self.n_hidden = check_positive_int("n_hidden", n_hidden, minimum=0)
        if not isinstance(z2_symmetric, bool):
            raise TypeError(f"z2_symmetric must be a bool. Got {describe(z2_symmetric)} instead.")
        self.z2_symmetric = z2_symmetric
        g = make_generator(seed, generator, device="cpu")
        N, H = self.L**2, self.n_hidden

        def uniform(shape: tuple[int, ...], fan_in: int) -> nn.Parameter:
            bound = 1.0 / math.sqrt(fan_in)
            u = torch.rand(shape, generator=g, dtype=torch.float64)
            return nn.Parameter((2.0 * u - 1.0).mul(bound).to(dtype=dtype, device=device))

        self.weight = uniform((N, N), N)  # (N, N), masked to j < i
        self.bias = nn.Parameter(torch.zeros(N, dtype=dtype, device=device))  # (N,)
        self.register_buffer("mask", torch.ones(N, N).tril(-1).to(dtype=dtype, device=device))
        if H:
            degree = torch.arange(H) % (N - 1) + 1  # (H,) m_k in 1..N-1
            position = torch.arange(1, N + 1)  # (N,) input and output degrees 1..N
            self.weight_in = uniform((H, N), N)  # (H, N)
            self.bias_in = nn.Parameter(torch.zeros(H, dtype=dtype, device=device))
            self.weight_out = uniform((N, H), H)  # (N, H)
            mask_in = (degree[:, None] >= position[None, :]).to(dtype=dtype, device=device)
            mask_out = (position[:, None] > degree[None, :]).to(dtype=dtype, device=device)
            self.register_buffer("mask_in", mask_in)  # (H, N)
            self.register_buffer("mask_out", mask_out)  # (N, H)

    @property
    def n_spins(self) -> int:
        """:math:`N = L^2`."""
        return self.L**2

    def _flat(self, spins: object) -> torch.Tensor:
        s = _check_spins("spins", spins, batched=True)
        if s.shape[-1] != self.L:
            raise ValueError(
                f"spins must have shape (n, {self.L}, {self.L}) for this model. "
                f"Got shape {tuple(s.shape)} instead."
            )
        p = self.weight
        if s.dtype != p.dtype or s.device != p.device:
            raise TypeError(
                f"spins must have the model's dtype {p.dtype} on {p.device}. "
                f"Got dtype {s.dtype} on {s.device} instead."
            )
        return s.reshape(s.shape[0], -1)  # (B, N)

    def conditional_logits(self, spins: torch.Tensor) -> torch.Tensor:
        """:math:`\\ell_i(s_{<i})`, the logit of :math:`q(s_i = +1 \\mid s_{<i})`, for every site.

        Parameters
        ----------
        spins : Tensor of shape (n, L, L)
            Spins ±1; the logit of site :math:`i` (raster order) depends on the sites
            before it only.

        Returns
        -------
        Tensor of shape (n, L * L)
        """
        return self._logits(self._flat(spins))

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bias + x @ (self.weight * self.mask).T  # (B, N)
        if self.n_hidden:
            hidden = torch.tanh(self.bias_in + x @ (self.weight_in * self.mask_in).T)  # (B, H)
            out = out + hidden @ (self.weight_out * self.mask_out).T  # (B, N)
        return out

    def _log_q(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\sum_i \\log \\sigma(s_i \\ell_i)` for flat spins of shape (B, N), no symmetrisation."""
        # log sigma(u) = -softplus(-u): finite for any logit
        return -nn.functional.softplus(-x * self._logits(x)).sum(-1)  # (B,)

    def log_prob(self, spins: torch.Tensor) -> torch.Tensor:
        """:math:`\\log q(s) = \\sum_i \\log \\sigma(s_i \\ell_i(s_{<i}))`, exact and normalised.

        With ``z2_symmetric``: :math:`\\log \\frac12 [q(s) + q(-s)]`.

        Parameters
        ----------
        spins : Tensor of shape (n, L, L)

        Returns
        -------
        Tensor of shape (n,)
        """
        x = self._flat(spins)  # (B, N)
        log_q = self._log_q(x)
        if self.z2_symmetric:
            log_q = torch.logaddexp(log_q, self._log_q(-x)) - math.log(2.0)
        return log_q

    @torch.no_grad()
    def sample(
        self,
        n_samples: int,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Draw :math:`s \\sim q` exactly, one spin at a time: :math:`s_i \\sim q(s_i \\mid s_{<i})`.

        The hidden pre-activations are updated as each spin is drawn, so the :math:`N`
        steps cost :math:`O(n N (N + H))` together, not :math:`N` full forward passes.

        Parameters
        ----------
        n_samples : int
        seed, generator
            One of them; the generator lives on the model's device.

        Returns
        -------
        Tensor of shape (n_samples, L, L)
            Spins ±1 in the model's dtype.

        Raises
        ------
        FloatingPointError
            If a conditional logit is NaN (the parameters are broken); names the site.
        """
        n = check_positive_int("n_samples", n_samples)
        p = self.weight
        g = make_generator(seed, generator, device=p.device)
        N = self.n_spins
        w = self.weight * self.mask  # (N, N)
        x = torch.zeros(n, N, dtype=p.dtype, device=p.device)  # (B, N), 0 = not drawn yet
        u = torch.rand(n, N, generator=g, dtype=p.dtype, device=p.device)  # (B, N)
        if self.n_hidden:
            w_in = self.weight_in * self.mask_in  # (H, N)
            w_out = self.weight_out * self.mask_out  # (N, H)
            pre = self.bias_in.expand(n, -1).clone()  # (B, H), inputs j < i added so far
        for i in range(N):
            logit = self.bias[i] + x @ w[i]  # (B,)
            if self.n_hidden:
                logit = logit + torch.tanh(pre) @ w_out[i]
            if bool(torch.isnan(logit).any()):
                raise FloatingPointError(
                    f"the conditional logit of site {i} (row {i // self.L}, column "
                    f"{i % self.L}) is NaN: the model's parameters are not finite."
                )
            s_i = torch.where(u[:, i] < torch.sigmoid(logit), 1.0, -1.0).to(p.dtype)  # (B,)
            x[:, i] = s_i
            if self.n_hidden:
                pre = pre + s_i[:, None] * w_in[:, i]
        if self.z2_symmetric:  # q_Z2 = (q(s) + q(-s)) / 2: flip half of the draws
            flip = torch.rand(n, generator=g, dtype=p.dtype, device=p.device) < 0.5
            x = torch.where(flip[:, None], -x, x)
        return x.reshape(n, self.L, self.L)


def _check_model(model: object) -> AutoregressiveModel:
    if not isinstance(model, AutoregressiveModel):
        raise TypeError(
            f"model must be a genphys.autoregressive.AutoregressiveModel. "
            f"Got {describe(model)} instead."
        )
    return model


# ------------------------------------------------------------- free energies
def local_free_energy(model: AutoregressiveModel, spins: torch.Tensor, T: float) -> torch.Tensor:
    """:math:`f(s) = E(s) + T \\log q(s)`, whose mean under :math:`q` is :math:`F_q`.

    Eq. {eq}`eq-vfe`: :math:`F_q = \\mathbb E_q[f] = F + T\\, \\mathrm{KL}(q \\| p) \\ge F`.

    Parameters
    ----------
    model : AutoregressiveModel
    spins : Tensor of shape (n, L, L)
    T : float
        Temperature, ``T > 0``.

    Returns
    -------
    Tensor of shape (n,)
        Differentiable in the model's parameters through :math:`\\log q`.
    """
    model = _check_model(model)
    T = _check_T(T)
    log_q = model.log_prob(spins)  # (B,), checks the spins
    return energy(spins) + T * log_q


def free_energy_exact(model: AutoregressiveModel, T: float) -> torch.Tensor:
    """:math:`F_q = \\sum_s q(s) [E(s) + T \\log q(s)]` by enumerating all :math:`2^{N}` states.

    Parameters
    ----------
    model : AutoregressiveModel
        At most :data:`MAX_EXACT_SPINS` spins (``L <= 4``).
    T : float

    Returns
    -------
    Tensor of shape ()
        Differentiable in the model's parameters (the exact gradient of :math:`F_q`).
    """
    model = _check_model(model)
    T = _check_T(T)
    if model.n_spins > MAX_EXACT_SPINS:
        raise ValueError(
            f"model must have at most {MAX_EXACT_SPINS} spins for enumeration. "
            f"Got {model.n_spins} (L = {model.L}) instead."
        )
    p = model.weight
    states = binary_states(model.n_spins, dtype=p.dtype, device=p.device)  # (2**N, N)
    spins = (2.0 * states - 1.0).reshape(-1, model.L, model.L)  # (2**N, L, L)
    log_q = model.log_prob(spins)  # (2**N,)
    return (torch.exp(log_q) * (energy(spins) + T * log_q)).sum()


def score_function_loss(
    model: AutoregressiveModel, spins: torch.Tensor, T: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Surrogate whose gradient is :math:`\\frac1n \\sum_k (f_k - B_k) \\nabla \\log q(s_k)`, the REINFORCE estimate of :math:`\\nabla F_q`.

    Eq. {eq}`eq-vfe-gradient`. :math:`f_k = E(s_k) + T \\log q(s_k)` is held fixed and the
    baseline :math:`B_k = \\frac{1}{n-1}\\sum_{l \\ne k} f_l` leaves out sample :math:`k`, so
    it is independent of :math:`s_k` and the estimate stays unbiased for
    :math:`s_k \\sim q` independent. (The term :math:`T\\, \\mathbb E_q[\\nabla \\log q]` that
    comes from differentiating :math:`f` itself vanishes, because :math:`\\sum_s \\nabla q = 0`.)

    Parameters
    ----------
    model : AutoregressiveModel
    spins : Tensor of shape (n, L, L)
        Independent draws from ``model`` (n >= 2).
    T : float

    Returns
    -------
    loss : Tensor of shape ()
        Call ``loss.backward()``; its value is not :math:`F_q`.
    f : Tensor of shape (n,)
        The local free energies :math:`f_k`, detached; their mean estimates :math:`F_q`.
    """
    model = _check_model(model)
    T = _check_T(T)
    n = spins.shape[0] if isinstance(spins, torch.Tensor) and spins.ndim == 3 else 0
    if n < 2:
        raise ValueError(
            "spins must hold at least 2 configurations, shape (n, L, L) with n >= 2 "
            f"(the baseline leaves one out). Got {describe(spins)} instead."
        )
    log_q = model.log_prob(spins)  # (B,)
    f = (energy(spins) + T * log_q).detach()  # (B,)
    baseline = (f.sum() - f) / (n - 1)  # (B,) leave-one-out mean
    return ((f - baseline) * log_q).mean(), f


def train_variational(
    model: AutoregressiveModel,
    T: float,
    *,
    n_steps: int,
    batch_size: int = 256,
    lr: float = 1e-2,
    anneal: float = 0.95,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    monitor: Callable[[int], Mapping[str, float]] | None = None,
    progress: bool = False,
) -> History:
    """Minimise :math:`F_q` with Adam on the score-function gradient of fresh samples each step.

    Step :math:`t` (1-based) draws ``batch_size`` configurations from the current model and
    takes one Adam step on :func:`score_function_loss` at the annealed temperature
    :math:`T_t = T / (1 - a^t)` (``anneal`` :math:`= a`; Wu et al. 2019 anneal
    :math:`\\beta_t = \\beta (1 - a^t)` so that early, hot steps spread :math:`q` over both
    ordered phases before it can collapse onto one). One step is one "epoch" of
    :func:`genphys.fitting.fit`, whose one mini-batch is the fresh sample.

    Parameters
    ----------
    model : AutoregressiveModel
        Trained in place.
    T : float
        Target temperature.
    n_steps : int
    batch_size : int
        Samples per step (>= 2).
    lr : float
        Adam's learning rate.
    anneal : float in [0, 1)
        0 switches annealing off. The default 0.95 reaches :math:`T_t < 1.01\\,T` after 90
        steps; Wu et al. use 0.998 for runs of :math:`10^4` steps.
    seed, generator
        One of them; on the model's device.
    monitor : callable, step -> mapping, optional
        Passed to :func:`genphys.fitting.fit`.
    progress : bool

    Returns
    -------
    History
        Per step: ``free_energy_per_spin`` (batch mean of :math:`f/N` at :math:`T_t`),
        ``free_energy_se`` (its standard error, per spin), ``beta`` (:math:`1/T_t`),
        ``seconds``.

    Raises
    ------
    genphys.fitting.TrainingDivergedError
    """
    model = _check_model(model)
    T = _check_T(T)
    n_steps = check_positive_int("n_steps", n_steps)
    batch_size = check_positive_int("batch_size", batch_size, minimum=2)
    lr = check_positive_float("lr", lr)
    anneal = check_probability("anneal", anneal)
    if anneal >= 1.0:
        raise ValueError(f"anneal must be in [0, 1). Got {anneal} instead.")
    g = make_generator(seed, generator, device=model.weight.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    N = model.n_spins
    counter = {"t": 0}

    def step(spins: torch.Tensor) -> dict[str, float]:
        counter["t"] += 1
        factor = 1.0 - anneal ** counter["t"]  # beta_t / beta
        T_t = T / factor
        optimizer.zero_grad()
        loss, f = score_function_loss(model, spins, T_t)
        loss.backward()
        optimizer.step()
        return {
            "free_energy_per_spin": float(f.mean()) / N,
            "free_energy_se": float(f.std()) / math.sqrt(f.shape[0]) / N,
            "beta": 1.0 / T_t,
        }

    return fit(
        step,
        lambda epoch: [model.sample(batch_size, generator=g)],
        n_epochs=n_steps,
        parameters=model,
        monitor=monitor,
        progress=progress,
        desc="variational free energy",
        hint="lower lr or raise batch_size",
    )


# ------------------------------------------------------------ importance sampling
def importance_estimates(
    model: AutoregressiveModel,
    T: float,
    n_samples: int,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    warn: bool = True,
) -> dict[str, float]:
    """Estimates from :math:`s_k \\sim q` with weights :math:`w_k = e^{-E(s_k)/T} / q(s_k)`.

    Eq. {eq}`eq-vfe-importance`: :math:`\\hat Z = \\frac1n \\sum_k w_k` is unbiased, so
    :math:`\\hat F = -T \\log \\hat Z` is consistent whatever :math:`q` is (and biased
    upwards by about :math:`T\\, \\mathrm{SE}^2/2`, by Jensen); its standard error is the
    delta-method one of :func:`genphys.ais.importance_estimate`. Observables use the
    self-normalised weights :math:`\\tilde w_k = w_k / \\sum_l w_l`,
    :math:`\\hat O = \\sum_k \\tilde w_k O_k` with
    :math:`\\mathrm{SE}^2 \\approx \\sum_k \\tilde w_k^2 (O_k - \\hat O)^2`.

    Parameters
    ----------
    model : AutoregressiveModel
    T : float
    n_samples : int
        At least 2.
    seed, generator
        One of them.
    warn : bool
        Warn (:class:`genphys.ais.AISWeightWarning`) when the effective sample size is
        below ``MIN_ESS_FRACTION`` (10 %) of ``n_samples``: a few weights then dominate and
        the standard errors can be far too small.

    Returns
    -------
    dict of float
        ``free_energy_per_spin``, ``variational_free_energy_per_spin`` (the plain mean of
        :math:`f/N`, an upper bound), ``energy_per_spin``, ``abs_magnetization_per_spin``,
        each with ``*_se``, and ``effective_sample_size`` (Kish's
        :math:`(\\sum w)^2 / \\sum w^2`).
    """
    model = _check_model(model)
    T = _check_T(T)
    n = check_positive_int("n_samples", n_samples, minimum=2)
    g = make_generator(seed, generator, device=model.weight.device)
    with torch.no_grad():
        spins = model.sample(n, generator=g)  # (n, L, L)
        log_q = model.log_prob(spins)  # (n,)
        e = energy(spins)  # (n,)
    N = model.n_spins
    log_w = (-e / T - log_q).double()  # (n,)
    est = importance_estimate(log_w, warn=False)
    w = torch.softmax(log_w, 0)  # (n,) self-normalised weights
    out = {
        "free_energy_per_spin": -T * float(est.estimate) / N,
        "free_energy_per_spin_se": T * float(est.standard_error) / N,
    }
    f = (e + T * log_q).double() / N  # (n,)
    out["variational_free_energy_per_spin"] = float(f.mean())
    out["variational_free_energy_per_spin_se"] = float(f.std()) / math.sqrt(n)
    observables = {
        "energy_per_spin": e.double() / N,
        "abs_magnetization_per_spin": spins.sum((-2, -1)).abs().double() / N,
    }
    for key, o in observables.items():
        mean = float((w * o).sum())
        out[key] = mean
        out[key + "_se"] = float(torch.sqrt((w**2 * (o - mean) ** 2).sum()))
    out["effective_sample_size"] = est.effective_sample_size
    if warn and est.effective_sample_size < MIN_ESS_FRACTION * n:
        warnings.warn(
            f"effective sample size {est.effective_sample_size:.1f} of {n} draws of q is below "
            f"{MIN_ESS_FRACTION:.0%}: a few importance weights dominate and the standard "
            "errors are not reliable (the estimates may be off by much more). Train q "
            "further or draw more samples.",
            AISWeightWarning,
            stacklevel=2,
        )
    return out


# -------------------------------------------------------------- neural MCMC
def learned_proposal(model: AutoregressiveModel) -> Proposal:
    """Independence proposal :math:`s' \\sim q`, with :math:`\\log q(s) - \\log q(s')` as the log ratio.

    A :data:`genphys.mcmc.Proposal` for :func:`genphys.mcmc.metropolis_hastings`: the
    proposal ignores the current state, so the Metropolis–Hastings ratio is
    :math:`\\frac{p(s') q(s)}{p(s) q(s')} = w(s') / w(s)`, eq. {eq}`eq-independence-mh`.

    Parameters
    ----------
    model : AutoregressiveModel

    Returns
    -------
    callable
        ``(spins, generator) -> (proposed, log_q_ratio)`` with shapes (n, L, L) and (n,).
    """
    model = _check_model(model)

    def proposal(
        spins: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = spins.shape[0]
        proposed = model.sample(n, generator=generator)  # (B, L, L)
        log_q = model.log_prob(torch.cat([spins, proposed]))  # (2B,) one forward pass
        return proposed, log_q[:n] - log_q[n:]

    return proposal


@torch.no_grad()
def independence_metropolis(
    model: AutoregressiveModel,
    T: float,
    n_samples: int,
    *,
    n_chains: int = 1,
    burn_in: int = 0,
    x0: torch.Tensor | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> MCMCResult:
    """Metropolis–Hastings chains on :math:`e^{-E(s)/T}` with the learned proposal :math:`q`.

    Accepts :math:`s' \\sim q` with :math:`\\min(1, w(s') / w(s))`,
    :math:`w = e^{-E/T}/q`, eq. {eq}`eq-independence-mh`. The chains leave the Boltzmann
    distribution :math:`p` invariant for any :math:`q` that is positive on every
    configuration; how fast they converge is governed by :math:`\\min_s q(s)/p(s)` (the
    total-variation distance after n steps is at most :math:`(1 - \\min q/p)^n`). A
    :math:`q` that nearly misses part of :math:`p` can leave a finite run biased while the
    acceptance rate, the autocorrelation time and split R-hat look healthy. Each chain
    starts from a draw of :math:`q` unless ``x0`` is given.
    Runs :func:`genphys.mcmc.metropolis_hastings` with :func:`learned_proposal`.

    Parameters
    ----------
    model : AutoregressiveModel
    T : float
    n_samples : int
        States kept per chain (one per step after ``burn_in``).
    n_chains : int
    burn_in : int
    x0 : Tensor of shape (n_chains, L, L), optional
        Initial states (e.g. exact draws of :math:`p`, to test that :math:`p` is invariant).
    seed, generator
        One of them; on the model's device.

    Returns
    -------
    MCMCResult
        ``samples`` of shape (n_chains, n_samples, L, L), ``log_prob`` (:math:`-E/T`) and
        ``acceptance_rate`` of shape (n_chains,).
    """
    model = _check_model(model)
    T = _check_T(T)
    n_samples = check_positive_int("n_samples", n_samples)
    n_chains = check_positive_int("n_chains", n_chains)
    burn_in = check_positive_int("burn_in", burn_in, minimum=0)
    g = make_generator(seed, generator, device=model.weight.device)
    if x0 is None:
        x0 = model.sample(n_chains, generator=g)  # (C, L, L)
    elif model.log_prob(x0).shape != (n_chains,):  # log_prob checks spins, shape and dtype
        raise ValueError(
            f"x0 must have shape ({n_chains}, {model.L}, {model.L}), one state per chain. "
            f"Got shape {tuple(x0.shape)} instead."
        )
    return metropolis_hastings(
        lambda s: -energy(s) / T,
        x0,
        n_samples,
        generator=g,
        proposal=learned_proposal(model),
        burn_in=burn_in,
    )


SAMPLERS = ("metropolis", "wolff", "learned")


def sampler_comparison(
    model: AutoregressiveModel,
    T: float,
    *,
    n_steps: Mapping[str, int],
    n_chains: int = 16,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, dict[str, float]]:
    """Local Metropolis, Wolff and the learned proposal on one lattice: acceptance, :math:`\\tau_{\\mathrm{int}}`, cost.

    Every sampler runs ``n_chains`` chains from the same draws of :math:`q` for
    ``n_steps[name]`` steps (a step is one checkerboard sweep of
    :func:`genphys.ising.metropolis_sweep`, one :func:`genphys.ising.wolff_step`, or one
    independence Metropolis–Hastings step of :func:`independence_metropolis`); the first
    10 % are discarded. From the series of :math:`E/N` and :math:`|m|` it reports the
    integrated autocorrelation times (:func:`genphys.mcmc.integrated_autocorrelation_time`,
    in steps), the wall time per step, and the cost-normalised rate
    ``independent_per_second`` :math:`= n_{\\text{chains}} / (t_{\\text{step}}
    \\max(\\tau_E, \\tau_{|m|}))`, which compares the samplers at equal wall time.
    Explained in {ref}`sec-vfe-neural-mcmc`.

    Parameters
    ----------
    model : AutoregressiveModel
        The proposal of the learned sampler; its lattice size is used for all three.
    T : float
    n_steps : mapping
        Steps for each of ``"metropolis"``, ``"wolff"``, ``"learned"`` (at least 20 each).
    n_chains : int
    seed, generator
        One of them; on the model's device.

    Returns
    -------
    dict
        For each sampler: ``acceptance`` (Metropolis: the fraction of spins flipped per
        sweep; Wolff: 1, every cluster flip is accepted; learned: the acceptance rate),
        ``seconds_per_step``, ``tau_energy``, ``tau_abs_magnetization``,
        ``independent_per_second``, ``energy_per_spin``, ``abs_magnetization_per_spin``
        and their ``*_se`` (:func:`genphys.mcmc.standard_error`), and ``split_rhat``, the
        larger split :math:`\\hat R` of the two series (:func:`genphys.mcmc.split_rhat`;
        above 1.01 the chains have not mixed and the error bars are not to be trusted).
    """
    model = _check_model(model)
    T = _check_T(T)
    n_chains = check_positive_int("n_chains", n_chains)
    if not isinstance(n_steps, Mapping) or set(n_steps) != set(SAMPLERS):
        raise ValueError(
            f"n_steps must be a mapping with the keys {SAMPLERS}. Got {describe(n_steps)} instead."
        )
    steps = {k: check_positive_int(f"n_steps[{k!r}]", n_steps[k], minimum=20) for k in SAMPLERS}
    g = make_generator(seed, generator, device=model.weight.device)
    x0 = model.sample(n_chains, generator=g)  # (C, L, L)
    N = model.n_spins
    out: dict[str, dict[str, float]] = {}
    for name in SAMPLERS:
        n = steps[name]
        began = time.perf_counter()
        if name == "learned":
            result = independence_metropolis(model, T, n, n_chains=n_chains, x0=x0, generator=g)
            chain = result.samples  # (C, n, L, L)
            acceptance = float(result.acceptance_rate.mean())
        else:
            update = metropolis_sweep if name == "metropolis" else wolff_step
            s, states, flipped = x0, [], 0.0
            for _ in range(n):
                new = update(s, 1.0 / T, g)
                flipped += float((new != s).double().mean())
                s = new
                states.append(s)
            chain = torch.stack(states, dim=1)  # (C, n, L, L)
            acceptance = flipped / n if name == "metropolis" else 1.0
        seconds = (time.perf_counter() - began) / n
        kept = chain[:, n // 10 :]  # (C, n', L, L)
        series = {
            "energy_per_spin": energy(kept.reshape(-1, model.L, model.L)).reshape(n_chains, -1)
            / N,  # (C, n')
            "abs_magnetization_per_spin": kept.sum((-2, -1)).abs() / N,  # (C, n')
        }
        record = {"acceptance": acceptance, "seconds_per_step": seconds}
        for key, values in series.items():
            values = values.double().cpu()
            tau = (
                integrated_autocorrelation_time(values)
                if bool((values != values[:, :1]).any())
                else math.inf  # a chain that never moves
            )
            record["tau_" + key.removesuffix("_per_spin")] = tau
            record[key] = float(values.mean())
            record[key + "_se"] = standard_error(values, warn=False)
            record["split_rhat"] = max(record.get("split_rhat", 1.0), split_rhat(values))
        tau_max = max(record["tau_energy"], record["tau_abs_magnetization"], 1.0)
        record["independent_per_second"] = n_chains / (seconds * tau_max)
        out[name] = record
    return out
