"""Theorems and lemmas (sphinx-proof) that the PDF can number and cross-reference.

sphinx-proof 0.4 writes each numbered directive in LaTeX as ``\\label{<docname>:<label>}``, where
it finds ``<docname>`` by walking up the doctree to a section whose names contain the
document's title (``sphinx_proof.nodes.find_parent``). In the single LaTeX document of the book
that walk can miss: for chapter 12 it returned ``None``, so the PDF had ``\\label{None:lem-gibbs}``
and ``Lemma  (Gibbs' inequality)`` without its number, while ``{prf:ref}`` and the proof index
point at ``chapters/12_variational_autoencoders:lem-gibbs``: two unresolved references ("??")
in the PDF.

The LaTeX writer knows which document it is writing: ``curfilestack[-1]``, pushed at each
document's ``start_of_file`` node. These visitors are sphinx-proof's LaTeX visitors with that
document name; the HTML visitors are sphinx-proof's own.
"""

from __future__ import annotations

from typing import Any

from docutils.nodes import Node


def _docname(translator: Any) -> str:
    """The document the LaTeX writer is in (``start_of_file`` pushes it on ``curfilestack``)."""
    return translator.curfilestack[-1]


def _label(translator: Any, node: Node) -> str:
    # the same target text as sphinx-proof's, which {prf:ref} and the proof index point at
    return "\\label{" + f"{_docname(translator)}:{node.attributes['label']}" + "}"


def visit_enumerable_latex(self: Any, node: Node) -> None:
    from sphinx_proof.nodes import latex_admonition_start

    self.body.append(_label(self, node))
    self.body.append(latex_admonition_start)


def depart_enumerable_latex(self: Any, node: Node) -> None:
    from sphinx_proof.nodes import _, latex_admonition_end, latex_admonition_start, list_rindex

    countertype = node.attributes.get("countertype", "")
    realtype = node.attributes.get("realtype", "")
    numbers = self.builder.env.toc_fignumbers.get(_docname(self), {})
    number = ".".join(map(str, numbers.get(countertype, {}).get(node["ids"][0], ())))
    idx = list_rindex(self.body, latex_admonition_start) + 2
    self.body.insert(idx, f"{_(realtype.title())} {number}")
    self.body.append(latex_admonition_end)


def visit_unenumerable_latex(self: Any, node: Node) -> None:
    from sphinx_proof.nodes import latex_admonition_start

    self.body.append(_label(self, node))
    self.body.append(latex_admonition_start)


def setup(app: Any) -> dict[str, Any]:
    app.setup_extension("sphinx_proof")  # register after sphinx-proof, so that these win
    from sphinx_proof import nodes as proof_nodes
    from sphinx_proof.nodes import NODE_TYPES
    from sphinx_proof.proof_type import PROOF_TYPES

    for name in PROOF_TYPES:
        app.add_node(
            NODE_TYPES[name],
            override=True,
            html=(proof_nodes.visit_enumerable_node, proof_nodes.depart_enumerable_node),
            latex=(visit_enumerable_latex, depart_enumerable_latex),
        )
    app.add_node(
        proof_nodes.unenumerable_node,
        override=True,
        html=(proof_nodes.visit_unenumerable_node, proof_nodes.depart_unenumerable_node),
        latex=(visit_unenumerable_latex, proof_nodes.depart_unenumerable_node),
    )
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
