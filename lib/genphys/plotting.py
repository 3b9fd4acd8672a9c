"""Schematics of the book's models, drawn by code so that every chapter shows the same picture.

Drawing only, no mathematics: each function places labelled nodes, edges and arrows on a
matplotlib Axes and returns its Figure. The drawings are deterministic (no randomness) and
have an opaque white background, so they read the same in the light and the dark page theme.

Every artist that carries meaning has a ``gid`` (``"node:x1"``, ``"edge:x1-h2"``,
``"arrow:x->encoder"``, ...), which :func:`named_artists` collects; the tests count nodes and
edges through it.

Explained in {ref}`sec-generative-models` and at the top of every chapter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ._validation import check_positive_int, describe

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "SPIN_CMAP",
    "draw_autoencoder",
    "draw_autoregressive",
    "draw_dbn",
    "draw_diffusion_chain",
    "draw_gan",
    "draw_gibbs_chain",
    "draw_ising_lattice",
    "draw_langevin",
    "draw_latent_variable_model",
    "draw_rbm",
    "draw_routes_around_z",
    "draw_spins",
    "draw_vae_graph",
    "named_artists",
]

#: Colour map for spin configurations everywhere in the book: black is spin up (s = +1,
#: x = 1), white is spin down (s = -1, x = 0), the same as ink on paper for digits.
SPIN_CMAP = "gray_r"

_INK = "#222222"
_VISIBLE = "#9ecae1"  # light blue
_HIDDEN = "#fdae6b"  # light orange
_OBSERVED = "#bdbdbd"  # grey: a layer that is given (conditioned on)
_NOISE = "#a1d99b"  # light green: where randomness enters
_BOX = "#f0f0f0"
_GRADIENT = "#cb181d"  # red, dashed: gradients
_SUBLATTICE = ("#6baed6", "#fd8d3c")  # checkerboard colours A and B
_RADIUS = 0.3


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """The Axes to draw on: ``ax`` if given, else a new figure with a white background."""
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    elif not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None. Got {describe(ax)} instead.")
    fig = ax.figure
    fig.patch.set_facecolor("white")
    fig.patch.set_alpha(1.0)
    ax.set_facecolor("white")
    ax.set_aspect("equal")
    ax.set_axis_off()
    return fig, ax


def _check_count(name: str, value: object, maximum: int, minimum: int = 1) -> int:
    value = check_positive_int(name, value, minimum=minimum)
    if value > maximum:
        raise ValueError(
            f"{name} must be an integer between {minimum} and {maximum} (a readable drawing). "
            f"Got {value} instead."
        )
    return value


def _node(ax, xy, label, name, color, radius=_RADIUS, fontsize=11):
    from matplotlib.patches import Circle

    ax.add_patch(
        Circle(xy, radius, facecolor=color, edgecolor=_INK, lw=1.2, zorder=3, gid=f"node:{name}")
    )
    ax.text(*xy, label, ha="center", va="center", fontsize=fontsize, color=_INK, zorder=4,
            gid=f"label:{name}")  # fmt: skip


def _box(ax, xy, text, name, width=1.6, height=0.7, color=_BOX, fontsize=10):
    from matplotlib.patches import FancyBboxPatch

    x, y = xy
    ax.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - height / 2), width, height,
            boxstyle="round,pad=0.02,rounding_size=0.12",
            facecolor=color, edgecolor=_INK, lw=1.2, zorder=3, gid=f"node:{name}",
        )
    )  # fmt: skip
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, color=_INK, zorder=4,
            gid=f"label:{name}")  # fmt: skip


def _edge(ax, p, q, name, color=_INK, lw=1.0, ls="-", alpha=1.0):
    ax.plot([p[0], q[0]], [p[1], q[1]], color=color, lw=lw, ls=ls, alpha=alpha, zorder=1,
            gid=f"edge:{name}")  # fmt: skip


def _arrow(ax, p, q, name, *, color=_INK, ls="-", shrink=(0.0, 0.0), rad=0.0, kind="arrow",
           label=None, label_offset=(0.0, 0.15), fontsize=9):  # fmt: skip
    """An arrow from p to q, shortened by ``shrink`` (data units) at both ends."""
    from matplotlib.patches import FancyArrowPatch

    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    unit = (q - p) / np.linalg.norm(q - p)
    start, end = p + shrink[0] * unit, q - shrink[1] * unit
    ax.add_patch(
        FancyArrowPatch(
            tuple(start), tuple(end), arrowstyle="-|>", mutation_scale=12, color=color, lw=1.2,
            ls=ls, connectionstyle=f"arc3,rad={rad}", zorder=2, gid=f"{kind}:{name}",
        )
    )  # fmt: skip
    if label is not None:
        mid = (start + end) / 2 + np.asarray(label_offset)
        ax.text(*mid, label, ha="center", va="center", fontsize=fontsize, color=color, zorder=4,
                gid=f"arrowlabel:{name}")  # fmt: skip


def _row(n: int, y: float, spacing: float = 1.0) -> list[tuple[float, float]]:
    """n points on the horizontal line at height y, centred on x = 0."""
    return [((i - (n - 1) / 2) * spacing, y) for i in range(n)]


def named_artists(fig: Figure) -> dict[str, object]:
    """Map ``gid -> artist`` for every artist with a gid on the figure's axes.

    Parameters
    ----------
    fig : Figure
        A figure returned by one of the ``draw_*`` functions.

    Returns
    -------
    dict of str to Artist
        For example ``{"node:x1": Circle, "edge:x1-h1": Line2D, ...}``.
    """
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure. Got {describe(fig)} instead.")
    found = {}
    for ax in fig.axes:
        for artist in ax.get_children():
            gid = artist.get_gid()
            if gid is not None:
                found[gid] = artist
    return found


def draw_rbm(
    n_visible: int = 4,
    n_hidden: int = 3,
    *,
    given: str | None = None,
    show_biases: bool = True,
    ax: Axes | None = None,
) -> Figure:
    """Draw an RBM as a bipartite graph: M visible units x_i, N hidden units h_j, couplings W_ij.

    Every visible unit is joined to every hidden unit (M N edges) and there are no edges
    within a layer. Biases ``a_i`` and ``b_j`` are written next to their units.

    Parameters
    ----------
    n_visible, n_hidden : int
        Number of visible (M) and hidden (N) units, between 1 and 16.
    given : {None, "x", "h"}
        Shade this layer grey, to show a conditional ``p(h | x)`` or ``p(x | h)``.
    show_biases : bool
        Write the biases ``a_i``, ``b_j`` next to the units.
    ax : Axes, optional
        Where to draw; a new figure if None.

    Returns
    -------
    Figure
        Nodes ``node:x{i}``, ``node:h{j}``; edges ``edge:x{i}-h{j}`` (1-based indices).

    Explained in {ref}`sec-partition-function`.
    """
    m = _check_count("n_visible", n_visible, 16)
    n = _check_count("n_hidden", n_hidden, 16)
    if given not in (None, "x", "h"):
        raise ValueError(f"given must be None, 'x' or 'h'. Got {describe(given)} instead.")
    width = max(m, n)
    top = max(2.0, 0.3 * width)  # height of the hidden layer: wide machines get taller
    fig, ax = _axes(ax, (max(4.0, 0.9 * width + 2.4), 1.6 + 0.8 * top))
    xs, hs = _row(m, 0.0), _row(n, top)
    for i, p in enumerate(xs, 1):
        for j, q in enumerate(hs, 1):
            _edge(ax, p, q, f"x{i}-h{j}", lw=0.9, alpha=0.7)
    for i, p in enumerate(xs, 1):
        _node(ax, p, f"$x_{{{i}}}$", f"x{i}", _OBSERVED if given == "x" else _VISIBLE)
        if show_biases:
            ax.text(p[0], p[1] - 0.5, f"$a_{{{i}}}$", ha="center", va="center", fontsize=9,
                    color=_INK, gid=f"bias:a{i}")  # fmt: skip
    for j, q in enumerate(hs, 1):
        _node(ax, q, f"$h_{{{j}}}$", f"h{j}", _OBSERVED if given == "h" else _HIDDEN)
        if show_biases:
            ax.text(q[0], q[1] + 0.5, f"$b_{{{j}}}$", ha="center", va="center", fontsize=9,
                    color=_INK, gid=f"bias:b{j}")  # fmt: skip
    left = -(width - 1) / 2 - 0.8
    ax.text(left, top, "hidden $h$", ha="right", va="center", fontsize=10, color=_INK)
    ax.text(left, 0.0, "visible $x$", ha="right", va="center", fontsize=10, color=_INK)
    right = (width - 1) / 2 + 0.6
    ax.text(right, top / 2, f"$W$: {m} × {n}\ncouplings $W_{{ij}}$", ha="left", va="center",
            fontsize=9, color=_INK)  # fmt: skip
    if given is not None:
        ax.text(0, -0.95 if given == "x" else top + 0.95, f"given {given} (grey)", ha="center",
                va="center", fontsize=9, color=_INK)  # fmt: skip
    ax.set_xlim(left - 1.6, right + 1.8)
    ax.set_ylim(-1.2, top + 1.2)
    return fig


def draw_gibbs_chain(n_steps: int = 3, *, ax: Axes | None = None) -> Figure:
    """Draw block Gibbs sampling of an RBM: x^(0) -> h^(0) -> x^(1) -> ... -> x^(k) -> h^(k).

    Each arrow up samples the whole hidden layer from ``p(h | x)``, each arrow down the whole
    visible layer from ``p(x | h)``.

    Parameters
    ----------
    n_steps : int
        Number of full steps k (between 1 and 6).
    ax : Axes, optional
        Where to draw; a new figure if None.

    Returns
    -------
    Figure
        Nodes ``node:x{t}``, ``node:h{t}`` for t = 0..k; arrows ``arrow:x{t}->h{t}`` and
        ``arrow:h{t}->x{t+1}``.

    Explained in {ref}`sec-mcmc`.
    """
    k = _check_count("n_steps", n_steps, 6)
    fig, ax = _axes(ax, (1.6 * k + 3.0, 2.6))
    for t in range(k + 1):
        px, ph = (2.0 * t, 0.0), (2.0 * t + 1.0, 1.6)
        _node(ax, px, f"$x^{{({t})}}$", f"x{t}", _VISIBLE, radius=0.4)
        _node(ax, ph, f"$h^{{({t})}}$", f"h{t}", _HIDDEN, radius=0.4)
        up_label = r"$p(h \mid x)$" if t == 0 else None
        _arrow(ax, px, ph, f"x{t}->h{t}", shrink=(0.45, 0.45), label=up_label,
               label_offset=(-0.55, 0.15))  # fmt: skip
        if t < k:
            down_label = r"$p(x \mid h)$" if t == 0 else None
            _arrow(ax, ph, (2.0 * t + 2.0, 0.0), f"h{t}->x{t + 1}", shrink=(0.45, 0.45),
                   label=down_label, label_offset=(0.55, 0.15))  # fmt: skip
    ax.text(0.0, -0.75, "start\n(data or chain)", ha="center", va="top", fontsize=8, color=_INK)
    ax.set_xlim(-1.2, 2.0 * k + 2.2)
    ax.set_ylim(-1.5, 2.3)
    return fig


def draw_ising_lattice(
    L: int = 4,
    *,
    periodic: bool = True,
    checkerboard: bool = True,
    ax: Axes | None = None,
) -> Figure:
    """Draw the L x L Ising lattice: spins s_k on sites, couplings J on nearest-neighbour bonds.

    With ``checkerboard`` the two sublattices (i + j even / odd) have two colours: for even L,
    or open boundaries, no bond joins two sites of the same colour, so all sites of one colour
    can be updated at once (odd periodic lattices need three colours; the wrapping bonds then
    join equal colours, and the note under the drawing is left out). With
    ``periodic`` the bonds that wrap around are drawn as dashed stubs leaving the edge.

    Parameters
    ----------
    L : int
        Linear size, between 2 and 10.
    periodic : bool
        Periodic boundary conditions (2 L^2 bonds for L >= 3) or open ones (2 L (L - 1)).
    checkerboard : bool
        Colour the two sublattices differently.
    ax : Axes, optional
        Where to draw; a new figure if None.

    Returns
    -------
    Figure
        Nodes ``node:{i},{j}``; bonds ``edge:{i},{j}-{k},{l}`` (wrapping bonds end in
        ``:wrap``).

    Explained in {ref}`sec-mcmc`.
    """
    size = _check_count("L", L, 10, minimum=2)
    fig, ax = _axes(ax, (0.75 * size + 1.8, 0.75 * size + 1.4))
    bonds = set()
    for i in range(size):
        for j in range(size):
            for di, dj in ((0, 1), (1, 0)):
                k, m = i + di, j + dj
                wraps = k == size or m == size
                if wraps and not periodic:
                    continue
                k, m = k % size, m % size
                key = tuple(sorted([(i, j), (k, m)]))
                if key in bonds:  # L = 2: the wrapping bond is the direct one
                    continue
                bonds.add(key)
                p = (j, size - 1 - i)
                if wraps:
                    q = (p[0] + 0.5 * dj, p[1] - 0.5 * di)
                    name = f"{i},{j}-{k},{m}:wrap"
                    _edge(ax, p, q, name, ls="--", lw=1.0)
                    back = (m - 0.5 * dj, size - 1 - k + 0.5 * di)
                    ax.plot([m, back[0]], [size - 1 - k, back[1]], color=_INK, ls="--", lw=1.0,
                            zorder=1)  # fmt: skip
                else:
                    _edge(ax, p, (m, size - 1 - k), f"{i},{j}-{k},{m}", lw=1.4)
    for i in range(size):
        for j in range(size):
            color = _SUBLATTICE[(i + j) % 2] if checkerboard else _VISIBLE
            _node(ax, (j, size - 1 - i), "", f"{i},{j}", color, radius=0.2)
    ax.text(0.5, size - 1 + 0.22, "$J$", ha="center", va="bottom", fontsize=11, color=_INK,
            gid="label:J")  # fmt: skip
    note = "sites: spins $s_k = \\pm 1$; bonds: coupling $J$"
    if checkerboard and (size % 2 == 0 or not periodic):
        note += "\ntwo sublattices: no bond inside one colour"
    ax.text((size - 1) / 2, -0.75, note, ha="center", va="top", fontsize=9, color=_INK)
    ax.set_xlim(-0.9, size - 0.1)
    ax.set_ylim(-1.6, size - 0.2)
    return fig


def draw_spins(spins, *, ax: Axes | None = None) -> Figure:
    """Show one spin configuration with the book's colours: black s = +1 (up), white s = -1.

    Parameters
    ----------
    spins : Tensor or array of shape (L, L)
        Values +1 and -1, or 1 and 0 (binary units x = (s + 1) / 2).
    ax : Axes, optional
        Where to draw; a new figure if None.

    Returns
    -------
    Figure

    Explained in {ref}`sec-mcmc`.
    """
    values = np.asarray(spins.detach().cpu() if hasattr(spins, "detach") else spins, dtype=float)
    if values.ndim != 2 or not np.all(np.isin(values, (-1.0, 0.0, 1.0))):
        raise ValueError(
            "spins must be a two-dimensional array of +1/-1 (or 1/0) values. "
            f"Got {describe(spins)} instead."
        )
    if np.any(values == 0) and np.any(values == -1):
        raise ValueError(
            f"spins must be either +1/-1 or 1/0, not both. Got {describe(spins)} instead."
        )
    if not np.any(values == -1):
        values = 2 * values - 1  # binary units x = 1 is spin up
    fig, ax = _axes(ax, (3.0, 3.0))
    ax.imshow(values, cmap=SPIN_CMAP, vmin=-1, vmax=1, interpolation="nearest", gid="spins")
    return fig


def draw_autoencoder(
    layer_sizes: Sequence[int] = (6, 4, 2, 4, 6), *, ax: Axes | None = None
) -> Figure:
    """Draw an autoencoder x -> encoder -> code h (the bottleneck) -> decoder -> x hat.

    Consecutive layers are fully connected. The narrowest layer is the code.

    Parameters
    ----------
    layer_sizes : sequence of int
        Units per layer from input to output, at least three layers of 1 to 10 units; the
        first and last must be equal (the output reconstructs the input).
    ax : Axes, optional
        Where to draw; a new figure if None.

    Returns
    -------
    Figure
        Nodes ``node:L{layer}u{unit}``; edges ``edge:L{l}u{i}-L{l+1}u{j}``.

    Explained in {ref}`sec-autoencoders`.
    """
    if isinstance(layer_sizes, (str, bytes)) or not isinstance(layer_sizes, Sequence):
        raise TypeError(
            f"layer_sizes must be a sequence of integers. Got {describe(layer_sizes)} instead."
        )
    sizes = [_check_count(f"layer_sizes[{i}]", s, 10) for i, s in enumerate(layer_sizes)]
    if len(sizes) < 3 or sizes[0] != sizes[-1]:
        raise ValueError(
            "layer_sizes must have at least three layers with equal first and last sizes. "
            f"Got {describe(layer_sizes)} instead."
        )
    code = int(np.argmin(sizes))
    fig, ax = _axes(ax, (1.3 * len(sizes) + 1.5, 0.55 * max(sizes) + 1.6))
    columns = [[(1.5 * layer, y) for y, _ in _row(s, 0.0, 0.8)] for layer, s in enumerate(sizes)]
    for layer in range(len(sizes) - 1):
        for i, p in enumerate(columns[layer]):
            for j, q in enumerate(columns[layer + 1]):
                _edge(ax, p, q, f"L{layer}u{i}-L{layer + 1}u{j}", lw=0.6, alpha=0.6)
    for layer, column in enumerate(columns):
        color = _HIDDEN if layer == code else _VISIBLE if layer in (0, len(sizes) - 1) else _BOX
        for i, p in enumerate(column):
            _node(ax, p, "", f"L{layer}u{i}", color, radius=0.2)
    top = 0.4 * max(sizes) + 0.2
    ax.text(0.0, top, "input $x$", ha="center", va="bottom", fontsize=10, color=_INK)
    ax.text(1.5 * code, top, "code $h$", ha="center", va="bottom", fontsize=10, color=_INK,
            gid="label:code")  # fmt: skip
    ax.text(1.5 * (len(sizes) - 1), top, r"output $\hat x$", ha="center", va="bottom",
            fontsize=10, color=_INK)  # fmt: skip
    ax.text(0.75 * code, -top, "encoder $f$", ha="center", va="top", fontsize=10, color=_INK)
    ax.text(0.75 * (code + len(sizes) - 1), -top, "decoder $g$", ha="center", va="top",
            fontsize=10, color=_INK)  # fmt: skip
    ax.set_xlim(-0.8, 1.5 * (len(sizes) - 1) + 0.8)
    ax.set_ylim(-top - 0.7, top + 0.7)
    return fig


def draw_latent_variable_model(*, ax: Axes | None = None) -> Figure:
    """Draw a latent-variable model p(x) = integral of p(x | h) p(h) dh with its encoder q(h | x).

    The generative direction (solid) draws h from the prior and x from the decoder; the
    inference direction (dashed) is the encoder, an approximation of the posterior p(h | x).

    Parameters
    ----------
    ax : Axes, optional
        Where to draw; a new figure if None.

    Returns
    -------
    Figure
        Nodes ``node:h``, ``node:x``; arrows ``arrow:h->x`` (decoder) and ``arrow:x->h``
        (encoder).

    Explained in {ref}`sec-vae`.
    """
    fig, ax = _axes(ax, (7.0, 2.8))
    _node(ax, (0.0, 0.0), "$h$", "h", _HIDDEN, radius=0.42)
    _node(ax, (4.0, 0.0), "$x$", "x", _VISIBLE, radius=0.42)
    _arrow(ax, (0.0, 0.0), (4.0, 0.0), "h->x", shrink=(0.45, 0.45), rad=-0.35,
           label=r"decoder $p(x \mid h)$", label_offset=(0.0, 0.72))  # fmt: skip
    _arrow(ax, (4.0, 0.0), (0.0, 0.0), "x->h", shrink=(0.45, 0.45), rad=-0.35, ls="--",
           color=_GRADIENT, label=r"encoder $q(h \mid x) \approx p(h \mid x)$",
           label_offset=(0.0, -0.72))  # fmt: skip
    ax.text(0.0, -0.6, "latent\n" r"$h \sim p(h) = \mathcal{N}(0, I)$", ha="center", va="top",
            fontsize=9, color=_INK)  # fmt: skip
    ax.text(4.0, -0.6, "data\n" r"$p(x) = \int p(x \mid h)\, p(h)\, dh$", ha="center",
            va="top", fontsize=9, color=_INK)  # fmt: skip
    ax.set_xlim(-1.6, 5.8)
    ax.set_ylim(-1.5, 1.3)
    return fig


def draw_vae_graph(*, ax: Axes | None = None) -> Figure:
    """Draw the VAE's computational graph with the reparameterisation h = m + s * eps.

    The noise eps ~ N(0, I) enters from the side; h is a deterministic function of the
    encoder's outputs m(x), s(x) = exp(l(x) / 2) and eps, so gradients of the ELBO (dashed red) flow back through h into
    the encoder, and none flows into eps.

    Parameters
    ----------
    ax : Axes, optional
        Where to draw; a new figure if None.

    Returns
    -------
    Figure
        Nodes ``node:x``, ``node:encoder``, ``node:mean``, ``node:std``, ``node:eps``,
        ``node:h``, ``node:decoder``, ``node:recon``, ``node:kl``, ``node:elbo``; forward
        arrows ``arrow:a->b``; gradient arrows ``grad:a->b``.

    Explained in {ref}`sec-vae`.
    """
    fig, ax = _axes(ax, (10.0, 3.8))
    pos = {
        "x": (0.0, 1.0), "encoder": (1.9, 1.0), "mean": (3.8, 1.6), "std": (3.8, 0.4),
        "eps": (5.6, -0.9), "h": (5.6, 1.0), "decoder": (7.4, 1.0), "recon": (9.4, 1.0),
        "kl": (5.6, 2.7), "elbo": (9.4, 2.7),
    }  # fmt: skip
    _node(ax, pos["x"], "$x$", "x", _VISIBLE, radius=0.35)
    _box(ax, pos["encoder"], "encoder\n" + r"$q(h \mid x)$", "encoder", width=1.5, height=0.9)
    _node(ax, pos["mean"], "$m$", "mean", _BOX, radius=0.33)
    _node(ax, pos["std"], "$s$", "std", _BOX, radius=0.33)
    _node(ax, pos["eps"], r"$\varepsilon$", "eps", _NOISE, radius=0.35)
    _box(ax, pos["h"], r"$h = m + s \odot \varepsilon$", "h", width=1.9, height=0.6)
    _box(ax, pos["decoder"], "decoder\n" + r"$p(x \mid h)$", "decoder", width=1.5, height=0.9)
    _box(ax, pos["recon"], r"$\log p(x \mid h)$", "recon", width=1.6, height=0.6)
    _box(ax, pos["kl"], r"$-\mathrm{KL}(q(h \mid x)\,\|\,p(h))$", "kl", width=2.8, height=0.6)
    _box(ax, pos["elbo"], r"ELBO $\mathcal{L}(x)$", "elbo", width=1.6, height=0.6,
         color=_HIDDEN)  # fmt: skip
    forward = [
        ("x", "encoder", (0.36, 0.76)), ("encoder", "mean", (0.8, 0.35)),
        ("encoder", "std", (0.8, 0.35)), ("mean", "h", (0.35, 0.95)),
        ("std", "h", (0.35, 0.95)), ("eps", "h", (0.37, 0.32)),
        ("h", "decoder", (0.95, 0.76)), ("decoder", "recon", (0.76, 0.8)),
        ("mean", "kl", (0.35, 0.55)), ("std", "kl", (0.35, 0.7)),
        ("recon", "elbo", (0.3, 0.3)), ("kl", "elbo", (1.4, 0.8)),
    ]  # fmt: skip
    for a, b, shrink in forward:
        _arrow(ax, pos[a], pos[b], f"{a}->{b}", shrink=shrink)
    ax.text(pos["eps"][0] + 0.5, pos["eps"][1], r"$\varepsilon \sim \mathcal{N}(0, I)$"
            "\nnoise enters here,\nno gradient needed", ha="left", va="center", fontsize=9,
            color=_INK)  # fmt: skip
    offset = np.array([0.0, -0.22])
    backward = [("recon", "decoder", (0.8, 0.76)), ("decoder", "h", (0.76, 0.95)),
                ("h", "mean", (0.95, 0.35)), ("h", "std", (0.95, 0.35)),
                ("mean", "encoder", (0.35, 0.8)), ("std", "encoder", (0.35, 0.8))]  # fmt: skip
    for a, b, shrink in backward:
        _arrow(ax, np.add(pos[a], offset), np.add(pos[b], offset), f"{a}->{b}", kind="grad",
               color=_GRADIENT, ls="--", shrink=shrink, rad=0.0)  # fmt: skip
    ax.text(8.4, 0.05, r"$\nabla$ ELBO (dashed)", ha="center", va="center", fontsize=9,
            color=_GRADIENT)  # fmt: skip
    ax.set_xlim(-0.6, 10.4)
    ax.set_ylim(-1.5, 3.3)
    return fig


def draw_diffusion_chain(n_steps: int = 4, *, ax: Axes | None = None) -> Figure:
    """Draw a diffusion model's chains: forward noising q(x_t | x_{t-1}), learned reverse p(x_{t-1} | x_t).

    Parameters
    ----------
    n_steps : int
        Number of arrows drawn in each direction (between 2 and 8); the last node is x_T.
    ax : Axes, optional
        Where to draw; a new figure if None.

    Returns
    -------
    Figure
        Nodes ``node:x{t}`` (the last one is ``node:xT``); arrows ``arrow:forward{t}`` and
        ``arrow:reverse{t}`` for t = 1..n_steps.
    """
    k = _check_count("n_steps", n_steps, 8, minimum=2)
    fig, ax = _axes(ax, (1.7 * k + 2.0, 2.8))
    names = [f"x{t}" for t in range(k)] + ["xT"]
    labels = [f"$x_{{{t}}}$" for t in range(k)] + ["$x_T$"]
    colors = [_VISIBLE] + [_BOX] * (k - 1) + [_NOISE]
    for t, (name, label, color) in enumerate(zip(names, labels, colors, strict=True)):
        _node(ax, (1.8 * t, 0.0), label, name, color, radius=0.38)
    for t in range(1, k + 1):
        p, q = (1.8 * (t - 1), 0.0), (1.8 * t, 0.0)
        ls = ":" if t == k else "-"
        _arrow(ax, p, q, f"forward{t}", shrink=(0.42, 0.42), rad=-0.45, ls=ls)
        _arrow(ax, q, p, f"reverse{t}", shrink=(0.42, 0.42), rad=-0.45, ls=ls, color=_GRADIENT)
    mid = 0.9 * k
    ax.text(mid, 0.95, r"forward (fixed): add noise, $q(x_t \mid x_{t-1})$", ha="center",
            va="center", fontsize=10, color=_INK, gid="label:forward")  # fmt: skip
    ax.text(mid, -0.95, r"reverse (learned): denoise, $p_\theta(x_{t-1} \mid x_t)$",
            ha="center", va="center", fontsize=10, color=_GRADIENT,
            gid="label:reverse")  # fmt: skip
    ax.text(0.0, -0.55, "data", ha="center", va="top", fontsize=8, color=_INK)
    ax.text(1.8 * k, -0.55, "noise", ha="center", va="top", fontsize=8, color=_INK)
    ax.set_xlim(-0.8, 1.8 * k + 0.8)
    ax.set_ylim(-1.3, 1.3)
    return fig


def draw_gan(*, ax: Axes | None = None) -> Figure:
    """Draw a GAN's two players: generator G(z) against discriminator D(x) in (0, 1).

    Parameters
    ----------
    ax : Axes, optional
        Where to draw; a new figure if None.

    Returns
    -------
    Figure
        Nodes ``node:noise``, ``node:generator``, ``node:fake``, ``node:data``,
        ``node:discriminator``, ``node:output``; arrows ``arrow:a->b``.
    """
    fig, ax = _axes(ax, (8.5, 3.4))
    pos = {
        "noise": (0.0, 0.0), "generator": (2.0, 0.0), "fake": (4.0, 0.0),
        "data": (4.0, 2.0), "discriminator": (6.0, 1.0), "output": (8.0, 1.0),
    }  # fmt: skip
    _node(ax, pos["noise"], "$z$", "noise", _NOISE, radius=0.35)
    _box(ax, pos["generator"], "generator\n$G(z)$", "generator", width=1.4, height=0.9,
         color=_HIDDEN)  # fmt: skip
    _box(ax, pos["fake"], r"$\tilde x = G(z)$", "fake", width=1.5, height=0.6)
    _box(ax, pos["data"], r"$x \sim p_{\mathrm{data}}$", "data", width=1.5, height=0.6,
         color=_VISIBLE)  # fmt: skip
    _box(ax, pos["discriminator"], "discriminator\n$D(x)$", "discriminator", width=1.7,
         height=0.9, color=_HIDDEN)  # fmt: skip
    _box(ax, pos["output"], "P(real)\nin (0, 1)", "output", width=1.3, height=0.8)
    for a, b, shrink in [("noise", "generator", (0.36, 0.72)), ("generator", "fake", (0.72, 0.76)),
                         ("fake", "discriminator", (0.6, 1.05)),
                         ("data", "discriminator", (0.6, 1.05)),
                         ("discriminator", "output", (0.87, 0.67))]:  # fmt: skip
        _arrow(ax, pos[a], pos[b], f"{a}->{b}", shrink=shrink)
    ax.text(0.0, -0.6, r"$z \sim p(z)$", ha="center", va="top", fontsize=9, color=_INK)
    ax.text(2.0, -0.75, "minimises: fool D", ha="center", va="top", fontsize=9, color=_INK)
    ax.text(6.0, 0.3, "maximises: tell real\nfrom generated", ha="center", va="top",
            fontsize=9, color=_INK)  # fmt: skip
    ax.set_xlim(-0.6, 8.9)
    ax.set_ylim(-1.4, 2.6)
    return fig


def draw_langevin(*, ax: Axes | None = None) -> Figure:
    """Draw one Langevin step in an energy landscape: x' = x - eps grad E(x) + sqrt(2 eps) xi.

    A particle on a double-well energy E(x) moves down the gradient (drift) and is kicked by
    Gaussian noise of width sqrt(2 eps); the shaded curve is the density e^{-E(x)} it samples.

    Parameters
    ----------
    ax : Axes, optional
        Where to draw; a new figure if None.

    Returns
    -------
    Figure
        Nodes ``node:particle``; arrows ``arrow:drift`` (pointing downhill) and
        ``arrow:noise``; lines ``edge:energy`` and ``edge:density``.
    """
    fig, ax = _axes(ax, (7.0, 3.6))
    ax.set_aspect("auto")
    grid = np.linspace(-2.0, 2.0, 401)  # (G,)
    energy = (grid**2 - 1.0) ** 2 + 0.25 * grid  # (G,) a tilted double well
    density = np.exp(-2.0 * energy)  # (G,) drawn at beta = 2 to show the two modes
    density = 0.9 * density / density.max()
    ax.plot(grid, energy, color=_INK, lw=1.8, gid="edge:energy")
    ax.fill_between(grid, -0.95, -0.95 + density, color=_NOISE, alpha=0.8, lw=0)
    ax.plot(grid, -0.95 + density, color="#31a354", lw=1.2, gid="edge:density")
    x0 = -0.45
    e0 = (x0**2 - 1.0) ** 2 + 0.25 * x0
    slope = 4 * x0 * (x0**2 - 1.0) + 0.25  # dE/dx at x0
    ax.plot([x0], [e0 + 0.08], "o", ms=13, mfc=_HIDDEN, mec=_INK, zorder=3, gid="node:particle")
    step = -0.5 * np.sign(slope)
    _arrow(ax, (x0, e0 + 0.28), (x0 + step, e0 + 0.28), "drift", color=_INK,
           label=r"drift $-\eta\,\nabla E(x)$", label_offset=(0.0, 0.2))  # fmt: skip
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(
        FancyArrowPatch((x0 - 0.35, e0 - 0.35), (x0 + 0.35, e0 - 0.35), arrowstyle="<|-|>",
                        mutation_scale=10, color=_GRADIENT, lw=1.2, gid="arrow:noise")
    )  # fmt: skip
    ax.text(x0, e0 - 0.55, r"noise $\sqrt{2\eta}\,\xi$", ha="center", va="center",
            fontsize=9, color=_GRADIENT)  # fmt: skip
    ax.text(1.05, 1.75, r"$x' = x - \eta \nabla E(x) + \sqrt{2\eta}\,\xi$"
            "\n" r"$\xi \sim \mathcal{N}(0, I)$", ha="center", va="center", fontsize=10,
            color=_INK)  # fmt: skip
    ax.text(1.9, -0.75, r"$\propto e^{-E(x)}$", ha="right", va="bottom", fontsize=9,
            color="#31a354")  # fmt: skip
    ax.text(0.0, 1.3, "energy $E(x)$", ha="center", va="center", fontsize=10, color=_INK)
    ax.set_xlim(-2.05, 2.05)
    ax.set_ylim(-1.0, 2.4)
    return fig


def draw_dbn(
    layer_sizes: Sequence[int] = (4, 3, 3, 2), *, kind: str = "dbn", ax: Axes | None = None
) -> Figure:
    """Draw a deep belief network or a deep Boltzmann machine as stacked layers x, h1, h2, ...

    In a DBN (``kind="dbn"``) the top two layers are joined by undirected edges (an RBM)
    and every lower layer hangs below by directed, generative arrows
    :math:`p(h^{(l)} \\mid h^{(l+1)})`; a dashed arrow on the side marks the recognition
    pass :math:`q(h^{(l+1)} \\mid h^{(l)})`. In a DBM (``kind="dbm"``) every pair of adjacent
    layers is joined by undirected edges.

    Parameters
    ----------
    layer_sizes : sequence of int
        Units per layer, visible first; 2 to 5 layers of 1 to 8 units.
    kind : {"dbn", "dbm"}
    ax : Axes, optional
        Where to draw; a new figure if None.

    Returns
    -------
    Figure
        Nodes ``node:x{i}`` and ``node:h{l}_{i}`` (1-based units, layers from 1); undirected
        edges ``edge:{a}-{b}``; directed ``arrow:{a}->{b}`` (from the upper unit to the lower
        one); ``arrow:recognition`` in a DBN.

    Explained in {ref}`sec-dbn`.
    """
    if kind not in ("dbn", "dbm"):
        raise ValueError(f"kind must be 'dbn' or 'dbm'. Got {describe(kind)} instead.")
    if isinstance(layer_sizes, str) or not isinstance(layer_sizes, Sequence):
        raise TypeError(
            f"layer_sizes must be a sequence of integers. Got {describe(layer_sizes)} instead."
        )
    if not 2 <= len(layer_sizes) <= 5:
        raise ValueError(f"layer_sizes must have 2 to 5 entries. Got {len(layer_sizes)} instead.")
    sizes = [_check_count(f"layer_sizes[{l}]", n, 8) for l, n in enumerate(layer_sizes)]
    width, depth = max(sizes), len(sizes)
    fig, ax = _axes(ax, (max(4.5, 0.9 * width + 3.4), 1.2 + 1.5 * depth))
    rows = [_row(n, 1.6 * l) for l, n in enumerate(sizes)]

    def name(l: int, i: int) -> str:
        return f"x{i}" if l == 0 else f"h{l}_{i}"

    for l in range(depth - 1):
        undirected = kind == "dbm" or l == depth - 2
        for i, p in enumerate(rows[l], 1):
            for j, q in enumerate(rows[l + 1], 1):
                if undirected:
                    _edge(ax, p, q, f"{name(l, i)}-{name(l + 1, j)}", lw=0.9, alpha=0.7)
                else:
                    _arrow(ax, q, p, f"{name(l + 1, j)}->{name(l, i)}", shrink=(_RADIUS, _RADIUS),
                           color="#555555")  # fmt: skip
    for l, row in enumerate(rows):
        for i, p in enumerate(row, 1):
            label = f"$x_{{{i}}}$" if l == 0 else f"$h^{{({l})}}_{{{i}}}$"
            _node(ax, p, label, name(l, i), _VISIBLE if l == 0 else _HIDDEN, fontsize=9)
    left = -(width - 1) / 2 - 0.7
    for l in range(depth):
        text = "visible $x$" if l == 0 else f"hidden $h^{{({l})}}$"
        ax.text(left, 1.6 * l, text, ha="right", va="center", fontsize=10, color=_INK)
    right = (width - 1) / 2 + 0.7
    if kind == "dbn":
        ax.text(right, 1.6 * (depth - 1.5), "RBM\n(undirected)", ha="left", va="center",
                fontsize=9, color=_INK)  # fmt: skip
        if depth > 2:
            ax.text(right, 0.8 * (depth - 2), "directed\n$p(h^{(l)} \\mid h^{(l+1)})$",
                    ha="left", va="center", fontsize=9, color=_INK)  # fmt: skip
            _arrow(ax, (right + 2.3, 0.0), (right + 2.3, 1.6 * (depth - 2)), "recognition",
                   color=_GRADIENT, ls="--", label="recognition\n$q$", label_offset=(0.85, 0.0))  # fmt: skip
    else:
        ax.text(right, 0.8 * (depth - 1), "every layer pair\nundirected", ha="left",
                va="center", fontsize=9, color=_INK)  # fmt: skip
    ax.set_xlim(left - 2.0, right + 3.9)
    ax.set_ylim(-0.7, 1.6 * (depth - 1) + 0.7)
    return fig


def draw_routes_around_z(*, ax: Axes | None = None) -> Figure:
    """Draw maximum likelihood's route through Z and three routes that avoid it.

    Data points on the left, the model :math:`p_\\theta = e^{-E_\\theta}/Z_\\theta` on the
    right. The direct route (maximum likelihood) passes through the partition function, whose
    gradient needs samples of the model; pseudo-likelihood (conditionals, Z cancels), score
    matching (the gradient in x, Z drops out) and noise-contrastive estimation (a classifier
    against known noise, log Z learned as a number) go around it.

    Parameters
    ----------
    ax : Axes, optional
        Where to draw; a new figure if None.

    Returns
    -------
    Figure
        Nodes ``node:data``, ``node:model``, ``node:z``, ``node:noise``; arrows
        ``arrow:ml`` (through Z, dashed), ``arrow:pl``, ``arrow:sm``, ``arrow:nce`` and
        ``arrow:noise->model``.
    """
    fig, ax = _axes(ax, (8.6, 4.4))
    data, model, z, noise = (0.0, 0.0), (7.0, 0.0), (3.5, 0.0), (6.3, -2.35)
    _box(ax, data, "data\n$x_1, \\dots, x_n$", "data", width=1.6, height=0.9, color=_VISIBLE)
    _box(ax, model, "model\n$e^{-E_\\theta(x)}/Z_\\theta$", "model", width=1.9, height=0.9,
         color=_HIDDEN)  # fmt: skip
    _box(ax, z, "$Z_\\theta = \\int e^{-E_\\theta}$\nneeds samples\nof the model", "z",
         width=1.9, height=1.0, color="#fcbba1")  # fmt: skip
    _box(ax, noise, "known noise $q(y)$", "noise", width=2.0, height=0.55, color=_NOISE)
    _arrow(ax, data, z, "ml", ls="--", shrink=(0.82, 0.97), color=_GRADIENT,
           label="maximum\nlikelihood", label_offset=(0.0, 0.38))  # fmt: skip
    _arrow(ax, z, model, "ml-out", ls="--", shrink=(0.97, 0.97), color=_GRADIENT)
    _arrow(ax, (0.0, 0.45), (7.0, 0.45), "pl", shrink=(0.0, 0.0), rad=-0.45,
           label="pseudo-likelihood: $\\prod_i p(x_i \\mid x_{-i})$, $Z$ cancels",
           label_offset=(0.0, 1.85))  # fmt: skip
    _arrow(ax, (0.3, 0.45), (6.7, 0.45), "sm", shrink=(0.0, 0.0), rad=-0.25,
           label="score matching: $\\nabla_x \\log p_\\theta = -\\nabla_x E_\\theta$, no $Z$",
           label_offset=(0.0, 1.05))  # fmt: skip
    _arrow(ax, (0.3, -0.45), (6.7, -0.45), "nce", shrink=(0.0, 0.0), rad=0.3,
           label="NCE: tell data from noise,\n$\\log Z$ learned as a number $c$",
           label_offset=(-0.9, -1.55))  # fmt: skip
    _arrow(ax, noise, (5.6, -1.22), "noise->model", shrink=(0.3, 0.0), color=_INK, ls=":")
    ax.set_xlim(-1.0, 8.2)
    ax.set_ylim(-2.8, 2.5)
    return fig


def draw_autoregressive(n_spins: int = 5, *, ax: Axes | None = None) -> Figure:
    """Draw the masked connections of an autoregressive model q(s) = prod_i q(s_i | s_<i).

    The spins s_1..s_n (bottom row, in raster order of the lattice) feed the conditionals
    q(s_i | s_<i) (top row); input j is connected to output i only if j < i, the strictly
    lower-triangular mask of a MADE layer, so output 1 has no input and is a plain bias.
    Dashed arrows show sampling: s_i is drawn from output i and fed back as an input.

    Parameters
    ----------
    n_spins : int
        Number of spins drawn, between 2 and 8.
    ax : Axes, optional
        Where to draw; a new figure if None.

    Returns
    -------
    Figure
        Nodes ``node:s1`` ... (inputs) and ``node:q1`` ... (conditionals); edges
        ``edge:s{j}-q{i}`` for every j < i; arrows ``arrow:q{i}->s{i}`` (sampling).
    """
    n_spins = check_positive_int("n_spins", n_spins, minimum=2)
    if n_spins > 8:
        raise ValueError(f"n_spins must be an integer between 2 and 8. Got {n_spins} instead.")
    fig, ax = _axes(ax, (1.3 * n_spins + 1.8, 3.6))
    inputs, outputs = _row(n_spins, 0.0, 1.3), _row(n_spins, 2.2, 1.3)
    for i, (p, q) in enumerate(zip(inputs, outputs, strict=True), start=1):
        _node(ax, p, f"$s_{i}$", f"s{i}", _VISIBLE)
        _node(ax, q, f"$q_{i}$", f"q{i}", _HIDDEN)
        for j in range(1, i):
            _edge(ax, inputs[j - 1], q, f"s{j}-q{i}", lw=0.9, alpha=0.8)
        _arrow(ax, (q[0] + 0.32, q[1] - 0.2), (p[0] + 0.32, p[1] + 0.2), f"q{i}->s{i}",
               color=_GRADIENT, ls="--", rad=-0.25)  # fmt: skip
    left = inputs[0][0] - 0.6
    ax.text(left, 0.0, "spins\n(raster order)", ha="right", va="center", fontsize=9, color=_INK)
    ax.text(left, 2.2, r"$q(s_i \mid s_{<i})$", ha="right", va="center", fontsize=10,
            color=_INK)  # fmt: skip
    ax.text(0.0, 3.0, r"$q(s) = \prod_i q(s_i \mid s_{<i})$: input $j$ feeds output $i$ only if $j < i$",
            ha="center", va="center", fontsize=10, color=_INK)  # fmt: skip
    ax.text(0.0, -0.65, "dashed: draw $s_i$ from $q_i$, then feed it to the later outputs",
            ha="center", va="center", fontsize=9, color=_GRADIENT)  # fmt: skip
    ax.set_xlim(left - 1.9, inputs[-1][0] + 0.8)
    ax.set_ylim(-0.95, 3.3)
    return fig
