"""Pseudo-likelihood of a binary RBM (Besag 1975): exact over all sites, stochastic over one, and its training.

Explained in {ref}`sec-without-sampling`. The pseudo-likelihood replaces :math:`p(x)` by the
product of the one-site conditionals, in which :math:`Z` cancels:

.. math::

    \\log \\mathrm{PL}(x) = \\sum_i \\log p(x_i \\mid x_{-i})
    = \\sum_i \\log \\sigma\\big(F(\\tilde x^{(i)}) - F(x)\\big),

where :math:`\\tilde x^{(i)}` is :math:`x` with bit :math:`i` flipped and :math:`F` the
free energy. :func:`log_pseudo_likelihood` sums all :math:`M` sites;
:func:`stochastic_log_pseudo_likelihood` draws one site per sample and multiplies by
:math:`M`, an unbiased estimate of the same number, which is what scikit-learn's
``BernoulliRBM.score_samples`` returns.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._validation import check_positive_float, check_positive_int, describe
from .enumeration import CHUNK_ELEMENTS
from .fitting import History, fit, minibatches
from .optim import Adam
from .rbm import BernoulliRBM, check_batch, check_rbm, log_likelihood_exact
from .seeding import make_generator

__all__ = [
    "conditional_log_probs",
    "log_pseudo_likelihood",
    "stochastic_log_pseudo_likelihood",
    "train_pseudo_likelihood",
]


def conditional_log_probs(rbm: BernoulliRBM, x: object) -> torch.Tensor:
    """:math:`\\log p(x_i \\mid x_{-i}) = \\log\\sigma(F(\\tilde x^{(i)}) - F(x))` for every sample and site.

    Parameters
    ----------
    rbm : BernoulliRBM
    x : Tensor of shape (n_samples, n_visible)
        Binary.

    Returns
    -------
    Tensor of shape (n_samples, n_visible)
        Differentiable with respect to the RBM's parameters.

    Notes
    -----
    Flipping site :math:`i` changes :math:`a^\\top x` by :math:`d_i a_i` and the hidden field
    by :math:`d_i W_{i\\cdot}`, :math:`d_i = 1 - 2x_i`, so the flipped free energies come from
    one (rows, M, N) block of fields, never from the (rows * M, M) flipped copies. Rows are
    processed in blocks of at most ``CHUNK_ELEMENTS`` (:data:`genphys.enumeration.CHUNK_ELEMENTS`)
    entries: without gradients memory is one block (about 100 MiB); with gradients the
    graph holds about ``24 * n_samples * M * N`` bytes, as any differentiable evaluation
    of every site must.
    """
    check_rbm(rbm)
    x = check_batch(rbm, "x", x)
    n, m = x.shape
    W, a, b = rbm.W, rbm.a, rbm.b
    rows = max(1, CHUNK_ELEMENTS // (m * rbm.n_hidden))
    parts = []
    for first in range(0, n, rows):
        xb = x[first : first + rows]  # (B, M)
        d = 1.0 - 2.0 * xb  # (B, M): +1 where a 0 becomes 1, -1 where a 1 becomes 0
        field = xb @ W + b  # (B, N)
        visible = xb @ a  # (B,)
        f = -visible - F.softplus(field, threshold=37.0).sum(-1)  # (B,)
        flipped_field = field[:, None, :] + d[:, :, None] * W[None, :, :]  # (B, M, N)
        f_flipped = -(visible[:, None] + d * a) - F.softplus(flipped_field, threshold=37.0).sum(-1)
        parts.append(F.logsigmoid(f_flipped - f[:, None]))  # (B, M)
    return torch.cat(parts)


def log_pseudo_likelihood(rbm: BernoulliRBM, x: object) -> torch.Tensor:
    """Exact :math:`\\log \\mathrm{PL}(x) = \\sum_{i=1}^M \\log p(x_i \\mid x_{-i})` per sample.

    Parameters
    ----------
    rbm : BernoulliRBM
    x : Tensor of shape (n_samples, n_visible)

    Returns
    -------
    Tensor of shape (n_samples,)
    """
    return conditional_log_probs(rbm, x).sum(-1)


def stochastic_log_pseudo_likelihood(
    rbm: BernoulliRBM,
    x: object,
    *,
    sites: object | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One-site estimate :math:`M \\log\\sigma(F(\\tilde x^{(i)}) - F(x))`, :math:`i` uniform per sample.

    Its mean over :math:`i` is :func:`log_pseudo_likelihood`. This is the formula of
    scikit-learn's ``BernoulliRBM.score_samples`` (which draws ``i`` with NumPy).

    Parameters
    ----------
    rbm : BernoulliRBM
    x : Tensor of shape (n_samples, n_visible)
    sites : integer Tensor of shape (n_samples,), optional
        The flipped site of each sample; drawn uniformly when not given.
    seed, generator
        Exactly one when ``sites`` is not given (:mod:`genphys.seeding`); none otherwise.

    Returns
    -------
    Tensor of shape (n_samples,)
    """
    check_rbm(rbm)
    x = check_batch(rbm, "x", x)
    n, m = x.shape
    if sites is None:
        g = make_generator(seed, generator, device=x.device)
        index = torch.randint(m, (n,), generator=g, device=x.device)  # (n,)
    else:
        if seed is not None or generator is not None:
            raise ValueError(
                "seed and generator must be None when sites are given. "
                f"Got seed={seed!r}, generator={generator!r} instead."
            )
        if isinstance(sites, (str, bytes)):
            raise TypeError(
                f"sites must be an integer tensor of shape ({n},). Got {describe(sites)} instead."
            )
        try:
            index = torch.as_tensor(sites, device=x.device)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(
                f"sites must be an integer tensor of shape ({n},). Got {describe(sites)} instead."
            ) from exc
        if index.dtype.is_floating_point or index.dtype == torch.bool or index.shape != (n,):
            raise ValueError(
                f"sites must be an integer tensor of shape ({n},). "
                f"Got dtype {index.dtype}, shape {tuple(index.shape)} instead."
            )
        if bool(((index < 0) | (index >= m)).any()):
            raise ValueError(
                f"sites must lie in [0, {m - 1}]. Got values from {int(index.min())} "
                f"to {int(index.max())} instead."
            )
        index = index.long()
    rows = torch.arange(n, device=x.device)
    flipped = x.clone()
    flipped[rows, index] = 1 - flipped[rows, index]
    return m * F.logsigmoid(rbm.free_energy(flipped) - rbm.free_energy(x))


def train_pseudo_likelihood(
    rbm: BernoulliRBM,
    data: object,
    *,
    n_epochs: int,
    batch_size: int = 100,
    learning_rate: float = 1e-2,
    test_data: object | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> History:
    """Train ``rbm`` in place by maximum pseudo-likelihood: Adam on :math:`-\\frac1n\\sum_k \\log\\mathrm{PL}(x_k)`.

    No sampling and no :math:`Z`; each step costs :math:`M + 1` free energies per sample.

    Parameters
    ----------
    rbm : BernoulliRBM
    data : Tensor of shape (n_samples, n_visible)
        Binary.
    n_epochs, batch_size : int
    learning_rate : float
        Adam's step size.
    test_data : Tensor of shape (n_test, n_visible), optional
        When given (and the model is small enough), the exact test log-likelihood is
        monitored after each epoch.
    seed, generator
        Exactly one (:mod:`genphys.seeding`): the shuffling.
    progress : bool

    Returns
    -------
    genphys.fitting.History
        Columns ``loss`` (minus the mean log-pseudo-likelihood) and, with ``test_data``,
        ``test_log_likelihood``.
    """
    check_rbm(rbm)
    x = check_batch(rbm, "data", data)
    x_test = None if test_data is None else check_batch(rbm, "test_data", test_data)
    n_epochs = check_positive_int("n_epochs", n_epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    g = make_generator(seed, generator, device=rbm.W.device)
    optimizer = Adam(rbm.parameters(), lr=learning_rate)

    def step(batch: torch.Tensor) -> dict[str, object]:
        loss = -log_pseudo_likelihood(rbm, batch).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach()}

    def monitor(epoch: int) -> dict[str, object]:
        if x_test is None:
            return {}
        with torch.no_grad():
            return {"test_log_likelihood": log_likelihood_exact(rbm, x_test)}

    return fit(
        step,
        lambda epoch: minibatches(x, batch_size, generator=g),
        n_epochs=n_epochs,
        parameters=rbm,
        monitor=monitor,
        progress=progress,
        desc="pseudo-likelihood RBM",
        hint=f"try a smaller learning_rate (now {learning_rate})",
    )
