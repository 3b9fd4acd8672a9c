"""Tests for genphys.plotting: node and edge counts, labels, determinism, background, errors;
and a scan of every page of the book: each figure has a caption and alt text."""

from __future__ import annotations

import ast
import io
import itertools
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import jupytext
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from genphys import plotting

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([*ROOT.glob("chapters/*.md"), *ROOT.glob("exercises/*.md")])


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _count(fig, prefix: str) -> int:
    return sum(gid.startswith(prefix) for gid in plotting.named_artists(fig))


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    return buffer.getvalue()


@pytest.mark.parametrize(("m", "n"), [(1, 1), (3, 2), (4, 3), (16, 5)])
def test_rbm_is_complete_bipartite(m, n):
    fig = plotting.draw_rbm(m, n)
    names = plotting.named_artists(fig)
    assert _count(fig, "node:x") == m
    assert _count(fig, "node:h") == n
    assert _count(fig, "edge:") == m * n  # every x_i to every h_j, none inside a layer
    for gid in names:
        if gid.startswith("edge:"):
            a, b = gid.removeprefix("edge:").split("-")
            assert a.startswith("x") and b.startswith("h")
    assert _count(fig, "bias:a") == m and _count(fig, "bias:b") == n
    assert names["label:x1"].get_text() == "$x_{1}$"
    assert names[f"label:h{n}"].get_text() == f"$h_{{{n}}}$"


def test_rbm_given_layer_is_shaded_and_biases_optional():
    fig = plotting.draw_rbm(3, 2, given="x", show_biases=False)
    names = plotting.named_artists(fig)
    assert _count(fig, "bias:") == 0
    shaded = names["node:x1"].get_facecolor()
    assert shaded != names["node:h1"].get_facecolor()
    assert all(names[f"node:x{i}"].get_facecolor() == shaded for i in (1, 2, 3))


@pytest.mark.parametrize("k", [1, 3, 6])
def test_gibbs_chain_alternates_layers(k):
    fig = plotting.draw_gibbs_chain(k)
    names = plotting.named_artists(fig)
    assert _count(fig, "node:x") == k + 1 and _count(fig, "node:h") == k + 1
    arrows = sorted(g.removeprefix("arrow:") for g in names if g.startswith("arrow:"))
    expected = sorted([f"x{t}->h{t}" for t in range(k + 1)] + [f"h{t}->x{t + 1}" for t in range(k)])
    assert arrows == expected  # up to h, down to x, never x -> x


@pytest.mark.parametrize("L", [2, 3, 4, 7])
@pytest.mark.parametrize("periodic", [True, False])
def test_ising_lattice_bond_count_and_checkerboard(L, periodic):
    fig = plotting.draw_ising_lattice(L, periodic=periodic)
    names = plotting.named_artists(fig)
    assert _count(fig, "node:") == L * L
    # Periodic: two bonds per site; for L = 2 the wrapping bond coincides with the direct one.
    expected = (2 * L * L if L > 2 else 4) if periodic else 2 * L * (L - 1)
    bonds = [g for g in names if g.startswith("edge:")]
    assert len(bonds) == expected
    assert len(set(bonds)) == len(bonds)
    for gid in bonds:  # every bond joins the two sublattices
        a, b = gid.removeprefix("edge:").removesuffix(":wrap").split("-")
        (i, j), (k, m) = (map(int, a.split(",")), map(int, b.split(",")))
        if L % 2 == 0 or not gid.endswith(":wrap"):
            assert names[f"node:{i},{j}"].get_facecolor() != names[f"node:{k},{m}"].get_facecolor()
    assert sum(g.endswith(":wrap") for g in bonds) == (2 * L if periodic and L > 2 else 0)
    texts = " ".join(text.get_text() for text in fig.axes[0].texts)
    assert ("no bond inside one colour" in texts) == (L % 2 == 0 or not periodic)


def test_spins_black_is_up():
    spins = np.array([[1, -1], [-1, 1]])
    image = plotting.named_artists(plotting.draw_spins(spins))["spins"]
    rgba = image.to_rgba(image.get_array())
    np.testing.assert_allclose(rgba[0, 0, :3], 0.0)  # +1 black
    np.testing.assert_allclose(rgba[0, 1, :3], 1.0)  # -1 white
    binary = plotting.named_artists(plotting.draw_spins(torch.tensor([[1.0, 0.0]])))["spins"]
    np.testing.assert_allclose(binary.get_array(), [[1.0, -1.0]])  # x = 1 is spin up
    assert plotting.SPIN_CMAP == "gray_r"


def test_autoencoder_layers_and_bottleneck():
    sizes = (6, 4, 2, 4, 6)
    fig = plotting.draw_autoencoder(sizes)
    names = plotting.named_artists(fig)
    assert _count(fig, "node:") == sum(sizes)
    assert _count(fig, "edge:") == sum(a * b for a, b in itertools.pairwise(sizes))
    code = names["node:L2u0"].get_facecolor()
    assert all(names[f"node:L{layer}u0"].get_facecolor() != code for layer in (0, 1, 3, 4))
    assert names["label:code"].get_text() == "code $h$"


def test_vae_graph_noise_enters_outside_the_gradient_path():
    names = plotting.named_artists(plotting.draw_vae_graph())
    for node in ["x", "encoder", "mean", "std", "eps", "h", "decoder", "recon", "kl", "elbo"]:
        assert f"node:{node}" in names
    forward = {g.removeprefix("arrow:") for g in names if g.startswith("arrow:")}
    grads = {g.removeprefix("grad:") for g in names if g.startswith("grad:")}
    assert not any(a.endswith("->eps") for a in forward)  # nothing computes eps
    assert "eps->h" in forward
    assert not any("eps" in g for g in grads)  # no gradient into the noise
    # the gradient reaches the encoder through h, the mean and the standard deviation
    for edge in ["decoder->h", "h->mean", "h->std", "mean->encoder", "std->encoder"]:
        assert edge in grads


@pytest.mark.parametrize("k", [2, 4, 8])
def test_diffusion_chain_has_both_directions(k):
    fig = plotting.draw_diffusion_chain(k)
    names = plotting.named_artists(fig)
    assert _count(fig, "node:") == k + 1 and "node:xT" in names
    assert _count(fig, "arrow:forward") == k and _count(fig, "arrow:reverse") == k
    # FancyArrowPatch keeps its end points (data coordinates) in _posA_posB
    (f0, _), (f1, _) = names["arrow:forward1"]._posA_posB
    (r0, _), (r1, _) = names["arrow:reverse1"]._posA_posB
    assert f0 < f1 and r0 > r1


def test_latent_variable_model_two_directions():
    names = plotting.named_artists(plotting.draw_latent_variable_model())
    assert {"node:h", "node:x", "arrow:h->x", "arrow:x->h"} <= set(names)
    assert names["arrow:x->h"].get_linestyle() == "--"  # inference is dashed
    assert "decoder" in names["arrowlabel:h->x"].get_text()
    assert "encoder" in names["arrowlabel:x->h"].get_text()


def test_gan_two_players():
    names = plotting.named_artists(plotting.draw_gan())
    arrows = {g.removeprefix("arrow:") for g in names if g.startswith("arrow:")}
    assert {"noise->generator", "generator->fake", "fake->discriminator",
            "data->discriminator", "discriminator->output"} == arrows  # fmt: skip
    assert "generator" in names["label:generator"].get_text()


def test_langevin_drift_points_downhill():
    names = plotting.named_artists(plotting.draw_langevin())
    x, energy = names["edge:energy"].get_data()
    particle = names["node:particle"].get_xdata()[0]
    slope = np.interp(particle, x[1:], np.diff(energy) / np.diff(x))
    start, end = names["arrow:drift"]._posA_posB
    assert np.sign(end[0] - start[0]) == -np.sign(slope) != 0
    assert "arrow:noise" in names


DRAWERS = [
    lambda: plotting.draw_rbm(4, 3),
    lambda: plotting.draw_gibbs_chain(2),
    lambda: plotting.draw_ising_lattice(4),
    lambda: plotting.draw_autoencoder(),
    plotting.draw_vae_graph,
    plotting.draw_latent_variable_model,
    lambda: plotting.draw_diffusion_chain(3),
    plotting.draw_gan,
    plotting.draw_langevin,
]


@pytest.mark.parametrize("draw", DRAWERS)
def test_deterministic_opaque_white(draw):
    first, second = draw(), draw()
    assert _png(first) == _png(second)  # no randomness
    assert first.patch.get_facecolor() == (1.0, 1.0, 1.0, 1.0)  # readable in dark mode


# The smallest text in a schematic, in points: tests/test_book_browser.py relies on it when it
# checks that the schematics are legible at a phone's width.
SMALLEST_FONT_PT = 8

ALL_SCHEMATICS = [
    *DRAWERS,
    lambda: plotting.draw_dbn(),
    plotting.draw_routes_around_z,
    lambda: plotting.draw_autoregressive(),
    lambda: plotting.draw_diffusion_chain(8),
    lambda: plotting.draw_gibbs_chain(6),
    lambda: plotting.draw_ising_lattice(7, periodic=False),
]


@pytest.mark.parametrize("draw", ALL_SCHEMATICS)
def test_no_text_smaller_than_8_points(draw):
    fig = draw()
    sizes = [text.get_fontsize() for text in fig.findobj(matplotlib.text.Text) if text.get_text()]
    assert sizes, "a schematic without labels"
    assert min(sizes) >= SMALLEST_FONT_PT, sorted(sizes)[:5]


def test_draws_on_a_given_axes():
    fig, (ax1, ax2) = plt.subplots(1, 2)
    assert plotting.draw_rbm(2, 2, ax=ax1) is fig
    assert plotting.draw_gan(ax=ax2) is fig
    assert _count(fig, "node:x") == 2 and "node:generator" in plotting.named_artists(fig)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: plotting.draw_rbm(0, 2), "n_visible must be an integer >= 1. Got 0 instead."),
        (lambda: plotting.draw_rbm(2, 17), "n_hidden must be an integer between 1 and 16"),
        (lambda: plotting.draw_rbm(2, 2, given="z"), "given must be None, 'x' or 'h'. Got"),
        (lambda: plotting.draw_rbm(2, 2, ax="axes"), "ax must be a matplotlib Axes or None"),
        (lambda: plotting.draw_gibbs_chain(2.5), "n_steps must be an integer >= 1. Got"),
        (lambda: plotting.draw_ising_lattice(1), "L must be an integer >= 2. Got 1 instead."),
        (lambda: plotting.draw_autoencoder((4, 2, 3)), "layer_sizes must have at least three"),
        (lambda: plotting.draw_autoencoder(5), "layer_sizes must be a sequence of integers"),
        (lambda: plotting.draw_diffusion_chain(9), "n_steps must be an integer between 2 and 8"),
        (lambda: plotting.draw_spins(np.array([1, -1])), "spins must be a two-dimensional"),
        (lambda: plotting.draw_spins(np.array([[2, 1]])), "spins must be a two-dimensional"),
        (lambda: plotting.named_artists("fig"), "fig must be a matplotlib Figure"),
    ],
)
def test_bad_input_raises_clearly(call, message):
    with pytest.raises((TypeError, ValueError), match=re.escape(message)):
        call()


# --- every figure of the book has a caption and alt text ---------------------------------------

# (a figure glued by name counts too; genphys.glue of a number does not)
_FIGURE_CALLS = re.compile(
    r"plt\.(subplots|figure)\(|plotting\.draw_|\.imshow\(|glue\([^,]+,\s*fig\b"
)


def _figure_cells(path: Path):
    notebook = jupytext.read(path)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and _FIGURE_CALLS.search(cell.source):
            yield index, cell


def test_page_scan_finds_figures():
    # Guard against a scan that silently checks nothing.
    assert len(PAGES) >= 10
    assert sum(1 for page in PAGES for _ in _figure_cells(page)) >= 20


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_figure_has_caption_and_alt_text(page):
    for index, cell in _figure_cells(page):
        meta = cell.metadata.get("mystnb", {})
        where = f"{page.name}, code cell {index}"
        caption = meta.get("figure", {}).get("caption", "")
        alt = meta.get("image", {}).get("alt", "")
        assert len(caption.split()) >= 5, f"{where}: figure without a caption"
        assert len(alt.split()) >= 5, f"{where}: figure without alt text"
        assert meta.get("figure", {}).get("name", "").startswith("fig-"), f"{where}: no fig- name"
        # One output per figure cell: a trailing expression (a Figure, a Text from set_title)
        # would be displayed as a second output under the same figure name.
        last = ast.parse(cell.source).body[-1]
        if isinstance(last, ast.Expr):
            call = ast.unparse(last)
            assert call in ("fig.tight_layout()", "plt.show()") or call.startswith(
                "fig.tight_layout("
            ), f"{where}: the last line {ast.unparse(last)!r} adds a second output"
    text = page.read_text()
    for match in re.finditer(r"!\[([^\]]*)\]\(", text):  # Markdown images
        assert match.group(1).strip(), f"{page.name}: image without alt text"
    for match in re.finditer(r"```\{figure\}[^\n]*\n(.*?)```", text, re.S):  # figure directives
        assert ":alt:" in match.group(1), f"{page.name}: figure directive without :alt:"


def test_every_chapter_opens_with_a_schematic():
    """Each chapter's first figure is a genphys.plotting schematic, before the first equation."""
    for page in sorted(ROOT.glob("chapters/*.md")):
        notebook = jupytext.read(page)
        first_math = first_schematic = None
        for index, cell in enumerate(notebook.cells):
            if (
                first_schematic is None
                and cell.cell_type == "code"
                and "plotting.draw_" in cell.source
            ):
                first_schematic = index
            if first_math is None and cell.cell_type == "markdown" and "$$" in cell.source:
                first_math = index
        assert first_schematic is not None, f"{page.name}: no schematic"
        assert first_math is None or first_schematic < first_math, f"{page.name}: equation first"


def test_draw_dbn_counts_directed_and_undirected_links():
    names = plotting.named_artists(plotting.draw_dbn((4, 3, 3, 2)))
    assert sum(k.startswith("node:") for k in names) == 12
    # DBN: the top pair is an RBM (3 x 2 edges), the two lower pairs are directed (12 + 9)
    assert sum(k.startswith("edge:") for k in names) == 6
    assert sum(k.startswith("arrow:h") for k in names) == 12 + 9
    assert "arrow:h1_1->x1" in names and "arrow:recognition" in names
    dbm = plotting.named_artists(plotting.draw_dbn((4, 3, 2), kind="dbm"))
    assert sum(k.startswith("edge:") for k in dbm) == 12 + 6
    assert not any(k.startswith("arrow:") for k in dbm)
    first, second = plotting.draw_dbn(), plotting.draw_dbn()
    assert _png(first) == _png(second)
    with pytest.raises(ValueError, match="kind must be 'dbn' or 'dbm'"):
        plotting.draw_dbn(kind="rbm")
    with pytest.raises(ValueError, match="layer_sizes must have 2 to 5 entries"):
        plotting.draw_dbn((3,))


def test_routes_around_z_only_maximum_likelihood_passes_through_z():
    names = plotting.named_artists(plotting.draw_routes_around_z())
    assert {"node:data", "node:model", "node:z", "node:noise"} <= set(names)
    assert {"arrow:ml", "arrow:pl", "arrow:sm", "arrow:nce"} <= set(names)
    assert names["arrow:ml"].get_linestyle() == "--"  # the route through Z is dashed
    for route in ("pl", "sm", "nce"):
        assert names[f"arrow:{route}"].get_linestyle() == "-"
    assert "cancels" in names["arrowlabel:pl"].get_text()
    first, second = plotting.draw_routes_around_z(), plotting.draw_routes_around_z()
    assert _png(first) == _png(second)
    assert first.patch.get_facecolor() == (1.0, 1.0, 1.0, 1.0)


def test_autoregressive_mask_is_strictly_lower_triangular():
    n = 5
    names = plotting.named_artists(plotting.draw_autoregressive(n))
    edges = {g.removeprefix("edge:") for g in names if g.startswith("edge:")}
    assert edges == {f"s{j}-q{i}" for i in range(1, n + 1) for j in range(1, i)}
    assert _count(names["node:s1"].figure, "node:q") == n
    assert {f"arrow:q{i}->s{i}" for i in range(1, n + 1)} <= set(names)
    first, second = plotting.draw_autoregressive(3), plotting.draw_autoregressive(3)
    assert _png(first) == _png(second)
    with pytest.raises(ValueError, match="n_spins must be an integer between 2 and 8"):
        plotting.draw_autoregressive(9)
