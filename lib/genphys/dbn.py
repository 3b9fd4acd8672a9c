"""Deep belief networks: a stack of RBMs, its variational bound and wake-sleep fine-tuning.

Explained in {ref}`sec-dbn`. Layers :math:`h^{(0)} = x, h^{(1)}, \\dots, h^{(L)}` of sizes
:math:`n_0, \\dots, n_L`. The generative model (Hinton, Osindero & Teh 2006) is an RBM over
the top two layers and directed sigmoid layers below it,

.. math::

    p(x, h^{(1)}, \\dots, h^{(L)}) = p_{\\mathrm{top}}(h^{(L-1)}, h^{(L)})
    \\prod_{l=0}^{L-2} p(h^{(l)} \\mid h^{(l+1)}), \\qquad
    p(h^{(l)}_i = 1 \\mid h^{(l+1)}) = \\sigma\\big(a^{(l)}_i + (V^{(l)} h^{(l+1)})_i\\big),

and the recognition model is factorial layer by layer,
:math:`q(h^{(l+1)}_j = 1 \\mid h^{(l)}) = \\sigma(c^{(l)}_j + (h^{(l)\\top} R^{(l)})_j)`, with
recognition weights :math:`R^{(l)}` equal to :math:`V^{(l)}` after greedy training and
separate from them during wake-sleep. Every directed layer :math:`l` comes from the RBM
that was trained on layer :math:`l`: :math:`V^{(l)}`, its visible bias :math:`a^{(l)}` and
its hidden bias :math:`c^{(l)}`.

The log-likelihood is bounded below by (eq. {eq}`eq-dbn-bound`)

.. math::

    \\log p(x) \\ge \\mathbb E_{q(h \\mid x)}\\big[\\log p(x, h) - \\log q(h \\mid x)\\big],
    \\qquad h = (h^{(1)}, \\dots, h^{(L-1)}),

where :math:`\\log p(x, h)` contains :math:`\\log p_{\\mathrm{top}}(h^{(L-1)}) =
-F_{\\mathrm{top}}(h^{(L-1)}) - \\log Z_{\\mathrm{top}}` with :math:`h^{(L)}` summed out. The
``*_exact`` functions enumerate every state of :math:`h^{(1)}, \\dots, h^{(L-1)}` (at most
``MAX_EXACT_HIDDEN_BITS`` bits in all) and compute :math:`\\log Z_{\\mathrm{top}}` with
:func:`genphys.rbm.log_partition_exact`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import as_tensor, check_binary, check_positive_float, check_positive_int, describe
from .enumeration import CHUNK_ELEMENTS, binary_states
from .fitting import History, fit, minibatches
from .rbm import BernoulliRBM, check_rbm, log_partition_exact
from .seeding import make_generator
from .training import (
    CD,
    PCD,
    initialize_rbm,
    rbm_optimizer,
    rbm_step,
    reconstruction_error,
    train_rbm,
)

__all__ = [
    "MAX_EXACT_GRAPH_BYTES",
    "MAX_EXACT_HIDDEN_BITS",
    "BoundEstimate",
    "DeepBeliefNetwork",
    "add_transposed_layer",
    "log_bernoulli",
    "log_joint",
    "log_likelihood_exact",
    "sample_dbn",
    "sample_recognition",
    "train_dbn_greedy",
    "train_wake_sleep",
    "variational_bound_exact",
    "variational_bound_sample",
    "wake_sleep_losses",
]

#: Largest number of directed hidden units (:math:`n_1 + \\dots + n_{L-1}`) the exact
#: functions enumerate, :math:`2^{20}` joint states.
MAX_EXACT_HIDDEN_BITS = 20


def log_bernoulli(h: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """:math:`\\sum_i [h_i \\log\\sigma(z_i) + (1 - h_i)\\log\\sigma(-z_i)]` from logits, stably; shape (...,)."""
    return (h * F.logsigmoid(logits) + (1.0 - h) * F.logsigmoid(-logits)).sum(-1)


class DeepBeliefNetwork(nn.Module):
    """A DBN: a top RBM over :math:`(h^{(L-1)}, h^{(L)})` and directed sigmoid layers below.

    Parameters
    ----------
    rbms : list of BernoulliRBM
        ``rbms[l]`` has ``n_visible = n_l`` and ``n_hidden = n_{l+1}``; copied. The last one
        becomes the top RBM; each other one gives a directed layer with generative weights
        and bias :math:`(V^{(l)}, a^{(l)})` and recognition weights and bias
        :math:`(R^{(l)}, c^{(l)}) = (V^{(l)}, b^{(l)})`.

    Attributes
    ----------
    top : BernoulliRBM
    generative_W : ParameterList of Tensors of shape (n_l, n_{l+1}), l = 0..L-2
    generative_a : ParameterList of Tensors of shape (n_l,)
    recognition_W : ParameterList of Tensors of shape (n_l, n_{l+1})
    recognition_c : ParameterList of Tensors of shape (n_{l+1},)
    """

    def __init__(self, rbms: list[BernoulliRBM]) -> None:
        super().__init__()
        if not isinstance(rbms, list | tuple) or len(rbms) < 1:
            raise TypeError(
                f"rbms must be a non-empty list of BernoulliRBM. Got {describe(rbms)} instead."
            )
        for i, rbm in enumerate(rbms):
            if not isinstance(rbm, BernoulliRBM):
                raise TypeError(f"rbms[{i}] must be a BernoulliRBM. Got {describe(rbm)} instead.")
            check_rbm(rbm)
        for i in range(1, len(rbms)):
            below, above = rbms[i - 1], rbms[i]
            if above.n_visible != below.n_hidden:
                raise ValueError(
                    f"rbms[{i}].n_visible must equal rbms[{i - 1}].n_hidden = {below.n_hidden}. "
                    f"Got {above.n_visible} instead."
                )
            if above.W.dtype != below.W.dtype or above.W.device != below.W.device:
                raise ValueError(
                    f"rbms[{i}] must have the dtype and device of rbms[0]. Got {above.W.dtype} "
                    f"on {above.W.device} instead."
                )
        top = rbms[-1]
        self.top = BernoulliRBM.from_parameters(top.W.detach(), top.a.detach(), top.b.detach())

        def params(tensors):
            return nn.ParameterList([nn.Parameter(t.detach().clone()) for t in tensors])

        lower = rbms[:-1]
        self.generative_W = params([r.W for r in lower])
        self.generative_a = params([r.a for r in lower])
        self.recognition_W = params([r.W for r in lower])
        self.recognition_c = params([r.b for r in lower])

    @property
    def layer_sizes(self) -> list[int]:
        """:math:`[n_0, n_1, \\dots, n_L]`."""
        return [W.shape[0] for W in self.generative_W] + [self.top.n_visible, self.top.n_hidden]

    @property
    def n_directed(self) -> int:
        """Number of directed layers, :math:`L - 1`."""
        return len(self.generative_W)

    def extra_repr(self) -> str:
        return f"layer_sizes={self.layer_sizes}"

    def generative_logits(self, l: int, h_above: torch.Tensor) -> torch.Tensor:
        """:math:`a^{(l)} + V^{(l)} h^{(l+1)}`, the logits of :math:`p(h^{(l)} \\mid h^{(l+1)})`; shape (B, n_l)."""
        return h_above @ self.generative_W[l].T + self.generative_a[l]

    def recognition_logits(self, l: int, h_below: torch.Tensor) -> torch.Tensor:
        """:math:`c^{(l)} + h^{(l)\\top} R^{(l)}`, the logits of :math:`q(h^{(l+1)} \\mid h^{(l)})`; shape (B, n_{l+1})."""
        return h_below @ self.recognition_W[l] + self.recognition_c[l]


def _check_dbn(dbn: object) -> DeepBeliefNetwork:
    if not isinstance(dbn, DeepBeliefNetwork):
        raise TypeError(f"dbn must be a DeepBeliefNetwork. Got {describe(dbn)} instead.")
    for name, p in dbn.named_parameters():
        if not bool(torch.isfinite(p).all()):
            raise ValueError(f"dbn parameter {name} must be finite. Got NaN or infinity instead.")
    return dbn


def _check_data(dbn: DeepBeliefNetwork, name: str, data: object) -> torch.Tensor:
    W = dbn.top.W
    x = as_tensor(name, data, ndim=2, dtype=W.dtype, device=W.device)
    if x.shape[1] != dbn.layer_sizes[0]:
        raise ValueError(
            f"{name} must have {dbn.layer_sizes[0]} columns (one per visible unit). "
            f"Got shape {tuple(x.shape)} instead."
        )
    return check_binary(name, x)


def add_transposed_layer(dbn_or_rbm: DeepBeliefNetwork | BernoulliRBM) -> DeepBeliefNetwork:
    """Grow a DBN by one layer: the top RBM :math:`(W, a, b)` becomes a directed layer and the new top is :math:`(W^\\top, b, a)`.

    The new top RBM has the old top's hidden layer as its visible layer and a copy of the old
    visible layer as its hidden layer, so its marginal over :math:`h^{(L)}` is the old top
    RBM's; the grown DBN defines the same :math:`p(x)`, and with the old top's exact
    factorial posterior as the new recognition layer its bound is as tight as before
    (Hinton, Osindero & Teh 2006). Explained in {ref}`sec-dbn`.

    Parameters
    ----------
    dbn_or_rbm : DeepBeliefNetwork or BernoulliRBM
        An RBM counts as a DBN with no directed layer.

    Returns
    -------
    DeepBeliefNetwork
        With one more layer; the input is not changed.
    """
    if isinstance(dbn_or_rbm, BernoulliRBM):
        check_rbm(dbn_or_rbm)
        lower, top = [], dbn_or_rbm
    else:
        dbn = _check_dbn(dbn_or_rbm)
        lower = [
            BernoulliRBM.from_parameters(W.detach(), a.detach(), c.detach())
            for W, a, c in zip(dbn.generative_W, dbn.generative_a, dbn.recognition_c, strict=True)
        ]
        top = dbn.top
    new = DeepBeliefNetwork([*lower, top, BernoulliRBM.from_parameters(top.W.T, top.b, top.a)])
    if not isinstance(dbn_or_rbm, BernoulliRBM):  # keep the separate recognition weights
        with torch.no_grad():
            for l in range(dbn_or_rbm.n_directed):
                new.recognition_W[l].copy_(dbn_or_rbm.recognition_W[l])
    return new


# ---------------------------------------------------------------- greedy training
def train_dbn_greedy(
    data: object,
    hidden_sizes: list[int],
    *,
    n_epochs: int,
    propagate: str = "samples",
    negative_phase: CD | PCD | None = None,
    batch_size: int = 100,
    learning_rate: float = 0.05,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> tuple[DeepBeliefNetwork, list[History]]:
    """Greedy layer-wise training: RBM :math:`l` is trained on :math:`h^{(l)}` drawn from (or the probabilities of) :math:`q(h^{(l)} \\mid h^{(l-1)})`.

    Each RBM starts from :func:`genphys.training.initialize_rbm`. With
    ``propagate="samples"`` the next layer's data are Bernoulli draws of the hidden
    probabilities, once, and the RBM is trained with :func:`genphys.training.train_rbm`;
    with ``"probabilities"`` it is trained on the probabilities themselves with
    :func:`genphys.training.rbm_step` inside :func:`genphys.fitting.fit`. Explained in
    {ref}`sec-dbn`.

    Parameters
    ----------
    data : Tensor of shape (n_samples, n_0)
        Binary training data; float64 unless it is a float tensor.
    hidden_sizes : list of int
        :math:`[n_1, \\dots, n_L]`, at least one.
    n_epochs : int
        Epochs per layer.
    propagate : {"samples", "probabilities"}
    negative_phase : CD or PCD, optional
        ``CD(1)`` by default (a fresh one per layer is made from its class and ``k``).
    batch_size, learning_rate
        As in :func:`genphys.training.train_rbm`.
    seed, generator
        Exactly one (:mod:`genphys.seeding`), on the data's device.
    progress : bool

    Returns
    -------
    dbn : DeepBeliefNetwork
    histories : list of genphys.fitting.History
        One per layer.
    """
    x = as_tensor(
        "data",
        data,
        ndim=2,
        dtype=data.dtype if isinstance(data, torch.Tensor) and data.is_floating_point() else None,
    )
    check_binary("data", x)
    if not isinstance(hidden_sizes, list | tuple) or not hidden_sizes:
        raise TypeError(
            f"hidden_sizes must be a non-empty list of integers. Got {describe(hidden_sizes)} instead."
        )
    sizes = [check_positive_int(f"hidden_sizes[{i}]", n) for i, n in enumerate(hidden_sizes)]
    n_epochs = check_positive_int("n_epochs", n_epochs)
    if propagate not in ("samples", "probabilities"):
        raise ValueError(
            f"propagate must be 'samples' or 'probabilities'. Got {propagate!r} instead."
        )
    if negative_phase is not None and not isinstance(negative_phase, CD | PCD):
        raise TypeError(
            f"negative_phase must be CD or PCD. Got {describe(negative_phase)} instead."
        )
    batch_size = check_positive_int("batch_size", batch_size)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    g = make_generator(seed, generator, device=x.device)

    def fresh_phase():
        if negative_phase is None:
            return CD(1)
        if isinstance(negative_phase, PCD):
            return PCD(negative_phase.k, negative_phase.n_chains)
        return CD(negative_phase.k)

    rbms, histories = [], []
    layer_probabilities, layer_samples = x, x  # (n, n_l)
    for l, n_hidden in enumerate(sizes):
        init_seed = int(torch.randint(2**62, (1,), generator=g, device=x.device))
        rbm = initialize_rbm(
            layer_samples, n_hidden, seed=init_seed, dtype=x.dtype, device=x.device
        )
        phase = fresh_phase()
        if propagate == "samples" or l == 0:
            history = train_rbm(
                rbm,
                layer_samples,
                n_epochs=n_epochs,
                negative_phase=phase,
                batch_size=batch_size,
                learning_rate=learning_rate,
                generator=g,
                progress=progress,
            )
        else:  # the same update, on real-valued inputs (train_rbm accepts only bits)
            optimizer = rbm_optimizer(rbm, learning_rate=learning_rate, momentum=0.5)
            phase.reset(layer_probabilities, g)
            inputs = layer_probabilities

            def step(batch, rbm=rbm, optimizer=optimizer, phase=phase):
                rbm_step(rbm, batch, phase, optimizer, g)
                return {}

            history = fit(
                step,
                lambda epoch, inputs=inputs: minibatches(inputs, batch_size, generator=g),
                n_epochs=n_epochs,
                parameters=rbm,
                monitor=lambda epoch, rbm=rbm, inputs=inputs: {
                    "reconstruction_error": reconstruction_error(rbm, inputs)
                },
                progress=progress,
                desc=f"DBN layer {l + 1}",
            )
        rbms.append(rbm)
        histories.append(history)
        with torch.no_grad():
            layer_probabilities = rbm.prob_h_given_x(layer_probabilities)  # (n, n_{l+1})
            layer_samples = torch.bernoulli(rbm.prob_h_given_x(layer_samples), generator=g)
    return DeepBeliefNetwork(rbms), histories


# ------------------------------------------------------------------ sampling
@torch.no_grad()
def sample_dbn(
    dbn: DeepBeliefNetwork,
    n_samples: int,
    *,
    n_gibbs: int = 200,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> list[torch.Tensor]:
    """Ancestral sampling: ``n_gibbs`` block Gibbs sweeps in the top RBM, then :math:`h^{(l)} \\sim p(h^{(l)} \\mid h^{(l+1)})` down to :math:`x`.

    The top chains start from independent bits with the top RBM's visible biases
    (:math:`p(h^{(L-1)}_i = 1) = \\sigma(a_i)`), so only the top sampler is approximate;
    the directed layers are sampled exactly. Explained in {ref}`sec-dbn`.

    Returns
    -------
    list of Tensor
        ``[x, h1, ..., h_{L-1}]``, layer ``l`` of shape (n_samples, n_l); ``x`` first.
    """
    dbn = _check_dbn(dbn)
    n_samples = check_positive_int("n_samples", n_samples)
    n_gibbs = check_positive_int("n_gibbs", n_gibbs, minimum=0)
    top = dbn.top
    g = make_generator(seed, generator, device=top.W.device)
    v = torch.bernoulli(torch.sigmoid(top.a).expand(n_samples, -1), generator=g)  # (S, n_{L-1})
    for _ in range(n_gibbs):
        h = top.sample_h_given_x(v, generator=g)  # (S, n_L)
        v = top.sample_x_given_h(h, generator=g)
    layers = [v]
    for l in reversed(range(dbn.n_directed)):
        p = torch.sigmoid(dbn.generative_logits(l, layers[0]))  # (S, n_l)
        layers.insert(0, torch.bernoulli(p, generator=g))
    return layers


@torch.no_grad()
def sample_recognition(
    dbn: DeepBeliefNetwork,
    x: object,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> list[torch.Tensor]:
    """Draw :math:`h \\sim q(h \\mid x)`: :math:`h^{(l+1)} \\sim q(h^{(l+1)} \\mid h^{(l)})` for :math:`l = 0, \\dots, L-2`.

    Returns
    -------
    list of Tensor
        ``[x, h1, ..., h_{L-1}]``, layer ``l`` of shape (B, n_l). Explained in {ref}`sec-dbn`.
    """
    dbn = _check_dbn(dbn)
    x = _check_data(dbn, "x", x)
    g = make_generator(seed, generator, device=x.device)
    layers = [x]
    for l in range(dbn.n_directed):
        p = torch.sigmoid(dbn.recognition_logits(l, layers[-1]))  # (B, n_{l+1})
        layers.append(torch.bernoulli(p, generator=g))
    return layers


# -------------------------------------------------------- log p(x, h), log q(h | x)
def _log_joint_and_recognition(
    dbn: DeepBeliefNetwork, layers: list[torch.Tensor], log_z_top: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """:math:`\\log p(x, h)` and :math:`\\log q(h \\mid x)` for layers broadcastable to (..., n_l)."""
    top = dbn.top
    h_top = layers[-1]
    field = h_top @ top.W + top.b  # (..., n_L)
    log_p = h_top @ top.a + F.softplus(field, threshold=37.0).sum(-1) - log_z_top  # -F - log Z
    log_q = torch.zeros_like(log_p)
    for l in range(dbn.n_directed):
        log_p = log_p + log_bernoulli(layers[l], dbn.generative_logits(l, layers[l + 1]))
        log_q = log_q + log_bernoulli(layers[l + 1], dbn.recognition_logits(l, layers[l]))
    return log_p, log_q


def log_joint(
    dbn: DeepBeliefNetwork, layers: list[object], *, log_z_top: torch.Tensor | float | None = None
) -> torch.Tensor:
    """:math:`\\log p(x, h^{(1)}, \\dots, h^{(L-1)}) = \\log p_{\\mathrm{top}}(h^{(L-1)}) + \\sum_{l=0}^{L-2} \\log p(h^{(l)} \\mid h^{(l+1)})`.

    Parameters
    ----------
    dbn : DeepBeliefNetwork
    layers : list of Tensors of shape (B, n_l)
        ``[x, h1, ..., h_{L-1}]``, binary.
    log_z_top : float or Tensor, optional
        :math:`\\log Z_{\\mathrm{top}}`; exact (:func:`genphys.rbm.log_partition_exact`) by default.

    Returns
    -------
    Tensor of shape (B,)
        Explained in {ref}`sec-dbn`.
    """
    dbn = _check_dbn(dbn)
    layers = _check_layers(dbn, layers)
    if log_z_top is None:
        log_z_top = log_partition_exact(dbn.top)
    return _log_joint_and_recognition(dbn, layers, log_z_top)[0]


def _check_layers(dbn: DeepBeliefNetwork, layers: object) -> list[torch.Tensor]:
    sizes = dbn.layer_sizes[:-1]
    if not isinstance(layers, list | tuple) or len(layers) != len(sizes):
        raise ValueError(
            f"layers must be a list of {len(sizes)} tensors [x, h1, ..., h_(L-1)]. "
            f"Got {describe(layers)} instead."
        )
    W = dbn.top.W
    out = []
    for l, (h, n) in enumerate(zip(layers, sizes, strict=True)):
        h = as_tensor(f"layers[{l}]", h, ndim=2, shape=(None, n), dtype=W.dtype, device=W.device)
        out.append(check_binary(f"layers[{l}]", h))
    if len({h.shape[0] for h in out}) != 1:
        raise ValueError(
            f"layers must share their number of rows. Got {[h.shape[0] for h in out]} instead."
        )
    return out


def _check_enumerable(dbn: DeepBeliefNetwork) -> int:
    bits = sum(dbn.layer_sizes[1:-1])
    if bits > MAX_EXACT_HIDDEN_BITS:
        raise ValueError(
            f"the directed hidden layers must have at most {MAX_EXACT_HIDDEN_BITS} units in all "
            f"to be enumerated. Got {bits} ({dbn.layer_sizes[1:-1]}) instead; use "
            "variational_bound_sample."
        )
    return bits


#: Bytes that the autograd graph of :func:`variational_bound_exact` may hold (2 GiB): with
#: gradients every chunk's graph is kept, about ``40 * B * 2**bits * widest layer`` bytes.
MAX_EXACT_GRAPH_BYTES = 2**31


def _exact_sums(
    dbn: DeepBeliefNetwork, x: torch.Tensor, *, need_log_px: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact :math:`\\log p(x)` and the bound, both (B,), by enumerating all hidden states.

    Blocks of rows and of hidden states hold at most ``CHUNK_ELEMENTS`` (row, state, unit)
    entries, so the memory of one block is bounded whatever ``B`` and the layer widths.
    """
    bits = _check_enumerable(dbn)
    widest = max(dbn.layer_sizes)
    total = 2**bits
    graph = torch.is_grad_enabled() and any(p.requires_grad for p in dbn.parameters())
    if graph:
        need = 40 * x.shape[0] * total * widest
        if need > MAX_EXACT_GRAPH_BYTES:
            raise ValueError(
                f"x must be small enough for the graph of an exact sum with gradients: "
                f"{x.shape[0]} rows x 2**{bits} hidden states x {widest} units need about "
                f"{need / 2**30:.3g} GiB, above MAX_EXACT_GRAPH_BYTES = "
                f"{MAX_EXACT_GRAPH_BYTES / 2**30:.3g} GiB. Got {x.shape[0]} rows instead. "
                "Use fewer rows, call it under torch.no_grad() for the value alone, or "
                "estimate the bound with variational_bound_sample."
            )
    log_z_top = log_partition_exact(dbn.top)  # chunked, its gradient too
    sizes = dbn.layer_sizes[1:-1]
    rows_per_block = max(1, CHUNK_ELEMENTS // widest)
    log_px_parts, bound_parts = [], []
    for first in range(0, x.shape[0], rows_per_block):
        xb = x[first : first + rows_per_block]
        B = xb.shape[0]
        log_px = torch.full((B,), -math.inf, dtype=x.dtype, device=x.device)
        bound = torch.zeros(B, dtype=x.dtype, device=x.device)
        chunk = max(1, CHUNK_ELEMENTS // (B * widest))
        for start in range(0, total, chunk):
            states = binary_states(
                bits, start=start, stop=min(total, start + chunk), dtype=x.dtype, device=x.device
            )  # (S, bits)
            hidden = list(torch.split(states, sizes, dim=1)) if sizes else []
            layers = [xb[:, None, :]] + [h[None, :, :] for h in hidden]  # (B, 1, n_0), (1, S, n_l)
            log_p, log_q = _log_joint_and_recognition(dbn, layers, log_z_top)  # (B, S) each
            log_p = log_p.expand(B, -1)
            log_q = log_q.expand(B, -1)
            if need_log_px:
                log_px = torch.logaddexp(log_px, torch.logsumexp(log_p, dim=1))
            q = torch.exp(log_q)  # (B, S)
            bound = bound + (q * torch.where(q > 0, log_p - log_q, torch.zeros_like(log_p))).sum(1)
        log_px_parts.append(log_px)
        bound_parts.append(bound)
    return torch.cat(log_px_parts), torch.cat(bound_parts)


def log_likelihood_exact(dbn: DeepBeliefNetwork, x: object) -> torch.Tensor:
    """:math:`\\log p(x) = \\log \\sum_h p(x, h)` for every row, by enumeration of :math:`h^{(1)}, \\dots, h^{(L-1)}`.

    Parameters
    ----------
    dbn : DeepBeliefNetwork
        At most ``MAX_EXACT_HIDDEN_BITS`` directed hidden units; the top RBM must be small
        enough for :func:`genphys.rbm.log_partition_exact`.
    x : Tensor of shape (B, n_0)

    Returns
    -------
    Tensor of shape (B,)
        Not differentiable: computed without a graph, in blocks of at most
        ``CHUNK_ELEMENTS`` (row, state, unit) entries (:data:`genphys.enumeration.CHUNK_ELEMENTS`),
        so memory stays about 100 MiB whatever the width of the layers and the number of
        rows. Explained in {ref}`sec-dbn`.
    """
    dbn = _check_dbn(dbn)
    x = _check_data(dbn, "x", x)
    with torch.no_grad():
        return _exact_sums(dbn, x)[0]


def variational_bound_exact(dbn: DeepBeliefNetwork, x: object) -> torch.Tensor:
    """:math:`\\sum_h q(h \\mid x)[\\log p(x, h) - \\log q(h \\mid x)] \\le \\log p(x)`, eq. {eq}`eq-dbn-bound`, by enumeration.

    Parameters
    ----------
    dbn : DeepBeliefNetwork
    x : Tensor of shape (B, n_0)

    Returns
    -------
    Tensor of shape (B,)
        Differentiable. Without gradients memory is one block (about 100 MiB); with
        gradients the graph of every block is kept, and a sum that would need more than
        :data:`MAX_EXACT_GRAPH_BYTES` is refused. Explained in {ref}`sec-dbn`.
    """
    dbn = _check_dbn(dbn)
    x = _check_data(dbn, "x", x)
    return _exact_sums(dbn, x, need_log_px=False)[1]


class BoundEstimate(NamedTuple):
    """A Monte Carlo estimate of the bound per data row and its standard error.

    Attributes
    ----------
    estimate : Tensor of shape (B,)
    standard_error : Tensor of shape (B,)
        Sample standard deviation of the terms over :math:`\\sqrt{n_{\\mathrm{samples}}}`.
    """

    estimate: torch.Tensor
    standard_error: torch.Tensor


@torch.no_grad()
def variational_bound_sample(
    dbn: DeepBeliefNetwork,
    x: object,
    *,
    n_samples: int = 100,
    log_z_top: torch.Tensor | float | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> BoundEstimate:
    """Estimate of the bound: the mean of :math:`\\log p(x, h_s) - \\log q(h_s \\mid x)` over :math:`h_s \\sim q(h \\mid x)`.

    Parameters
    ----------
    dbn : DeepBeliefNetwork
    x : Tensor of shape (B, n_0)
    n_samples : int
        Draws per row, ``>= 2``.
    log_z_top : float or Tensor, optional
        :math:`\\log Z_{\\mathrm{top}}`, e.g. from :func:`genphys.ais.log_partition_ais` for
        a large top RBM; exact by default.
    seed, generator
        Exactly one.

    Returns
    -------
    BoundEstimate
        Explained in {ref}`sec-dbn`.
    """
    dbn = _check_dbn(dbn)
    x = _check_data(dbn, "x", x)
    n_samples = check_positive_int("n_samples", n_samples, minimum=2)
    g = make_generator(seed, generator, device=x.device)
    if log_z_top is None:
        log_z_top = log_partition_exact(dbn.top)
    repeated = x.repeat(n_samples, 1)  # (n_samples * B, n_0)
    layers = [repeated]
    for l in range(dbn.n_directed):
        p = torch.sigmoid(dbn.recognition_logits(l, layers[-1]))
        layers.append(torch.bernoulli(p, generator=g))
    log_p, log_q = _log_joint_and_recognition(dbn, layers, log_z_top)
    terms = (log_p - log_q).reshape(n_samples, x.shape[0])  # (n_samples, B)
    return BoundEstimate(terms.mean(0), terms.std(0, correction=1) / math.sqrt(n_samples))


# ---------------------------------------------------------------- wake-sleep
def wake_sleep_losses(
    dbn: DeepBeliefNetwork, x: torch.Tensor, *, k: int, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """The three surrogate losses of one up-down wake-sleep step; their gradients are the updates.

    * wake: :math:`-\\frac1B \\sum \\sum_l \\log p(h^{(l)} \\mid h^{(l+1)})` at
      :math:`h \\sim q(h \\mid x)` (the delta rule for the generative weights);
    * top: :math:`\\overline{F_{\\mathrm{top}}(h^{(L-1)})} - \\overline{F_{\\mathrm{top}}(\\tilde h^{(L-1)})}`
      with :math:`\\tilde h` after ``k`` Gibbs sweeps from :math:`h^{(L-1)}` (CD-k);
    * sleep: :math:`-\\frac1B \\sum \\sum_l \\log q(\\tilde h^{(l+1)} \\mid \\tilde h^{(l)})`
      on a fantasy generated down from :math:`\\tilde h^{(L-1)}` (the delta rule for the
      recognition weights).

    The sampled states carry no gradient, so the wake and top losses reach only the
    generative parameters and the sleep loss only the recognition ones. Explained in
    {ref}`sec-dbn`.

    Returns
    -------
    dict with ``"wake"``, ``"top"``, ``"sleep"``: Tensors of shape ()
    """
    top = dbn.top
    with torch.no_grad():  # up pass with the recognition weights
        up = [x]
        for l in range(dbn.n_directed):
            up.append(
                torch.bernoulli(
                    torch.sigmoid(dbn.recognition_logits(l, up[-1])), generator=generator
                )
            )
        v = up[-1]  # (B, n_{L-1})
        for _ in range(k):
            v = top.sample_x_given_h(
                top.sample_h_given_x(v, generator=generator), generator=generator
            )
        down = [v]  # the fantasy, top to bottom
        for l in reversed(range(dbn.n_directed)):
            p = torch.sigmoid(dbn.generative_logits(l, down[0]))
            down.insert(0, torch.bernoulli(p, generator=generator))
    B = x.shape[0]
    zero = x.new_zeros(())
    wake = (
        sum(
            (
                -log_bernoulli(up[l], dbn.generative_logits(l, up[l + 1])).sum()
                for l in range(dbn.n_directed)
            ),
            zero,
        )
        / B
    )
    sleep = (
        sum(
            (
                -log_bernoulli(down[l + 1], dbn.recognition_logits(l, down[l])).sum()
                for l in range(dbn.n_directed)
            ),
            zero,
        )
        / B
    )
    top_loss = top.free_energy(up[-1]).mean() - top.free_energy(v).mean()
    return {"wake": wake, "top": top_loss, "sleep": sleep}


def train_wake_sleep(
    dbn: DeepBeliefNetwork,
    data: object,
    *,
    n_epochs: int,
    k: int = 1,
    batch_size: int = 100,
    learning_rate: float = 1e-3,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> History:
    """Fine-tune ``dbn`` in place by up-down wake-sleep (Hinton et al. 1995; 2006) with Adam on :func:`wake_sleep_losses`.

    Parameters
    ----------
    dbn : DeepBeliefNetwork
        With at least one directed layer.
    data : Tensor of shape (n_samples, n_0)
        Binary.
    n_epochs, k, batch_size, learning_rate
        ``k`` Gibbs sweeps in the top RBM per step; Adam's learning rate.
    seed, generator
        Exactly one.
    progress : bool

    Returns
    -------
    genphys.fitting.History
        Columns ``wake`` (the negative generative log-likelihood of the recognised states,
        nats per example), ``top`` and ``sleep``. Explained in {ref}`sec-dbn`.

    Raises
    ------
    genphys.fitting.TrainingDivergedError
    """
    dbn = _check_dbn(dbn)
    if dbn.n_directed < 1:
        raise ValueError(
            "dbn must have at least one directed layer for wake-sleep. Got none instead."
        )
    x = _check_data(dbn, "data", data)
    n_epochs = check_positive_int("n_epochs", n_epochs)
    k = check_positive_int("k", k)
    batch_size = check_positive_int("batch_size", batch_size)
    learning_rate = check_positive_float("learning_rate", learning_rate)
    g = make_generator(seed, generator, device=x.device)
    optimizer = torch.optim.Adam(dbn.parameters(), lr=learning_rate)

    def step(batch: torch.Tensor) -> dict[str, float]:
        for name, p in dbn.named_parameters():  # the last update overflowed: fit stops
            if not bool(torch.isfinite(p).all()):
                return {name: math.nan}
        losses = wake_sleep_losses(dbn, batch, k=k, generator=g)
        optimizer.zero_grad()
        (losses["wake"] + losses["top"] + losses["sleep"]).backward()
        optimizer.step()
        return {name: float(value.detach()) for name, value in losses.items()}

    return fit(
        step,
        lambda epoch: minibatches(x, batch_size, generator=g),
        n_epochs=n_epochs,
        parameters=dbn,
        progress=progress,
        desc="wake-sleep",
        hint=f"try a smaller learning_rate (now {learning_rate})",
    )
