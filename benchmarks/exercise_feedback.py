"""How often the exercise checks reject a wrong answer, and how often they say why.

The corpus of wrong answers is made from every reference solution by the edits a student
typically makes, one edit per answer, each applied at one place of the source:

* ``sign``: a ``+`` becomes ``-`` or the other way round;
* ``mean/sum``: ``.mean(`` becomes ``.sum(`` and back;
* ``half``: a constant 0.5 becomes 1.0, a 2 or 2.0 becomes 1;
* ``off-by-one``: ``t - 1`` becomes ``t``, ``t - 2`` becomes ``t - 1``;
* ``transpose``: a ``.T`` is dropped;
* ``global RNG``: a ``generator=...`` keyword is dropped;
* ``in place``: ``.clone()`` is dropped;
* ``drop term``: ``a + b`` or ``a - b`` becomes ``a``;
* ``float32``: the returned value is converted with ``.float()``;
* ``axis``: ``dim=0`` becomes ``dim=1`` and back;
* ``no sqrt``: ``torch.sqrt(x)`` becomes ``x``;
* the exercise's own ``Mistake`` s (the typical mistakes the check knows by name).

The check itself makes the edits sign, drop term, mean/sum, half, off-by-one and transpose
to the reference to name a mistake, so its hints on those are not blind; the table
reports the other edits (held out) and the listed mistakes separately. The listed mistakes
are matched by construction; the held-out edits are the fair measure.

Each wrong answer is compiled in the module of its exercise (with another docstring, so it
is not the reference object) and checked strictly with a fixed seed. An edit that leaves the
function's results unchanged (an equivalent mutant, e.g. a sign flip inside ``x - x``) is
counted as accepted: the table lists the accepted answers so that they can be inspected.

Prints, per chapter and in total: the number of wrong answers, how many are rejected, and
the rate of rejections with a specific hint (a message with ``Hint:``, i.e. more than
"the values differ by up to X").

Usage::

    python benchmarks/exercise_feedback.py [--per-exercise 8] [--chapters ch02 ch05]
"""

from __future__ import annotations

import argparse
import ast
import collections
import inspect
import textwrap
import time
import types

import torch

from genphys.exercises import all_exercises
from genphys.exercises._feedback import Exercise


class _Edit(ast.NodeTransformer):
    """Apply edit ``kind`` at its ``target``-th opportunity (counting all of them)."""

    def __init__(self, kind: str, target: int) -> None:
        self.kind, self.target, self.count = kind, target, 0

    def _hit(self) -> bool:
        self.count += 1
        return self.count - 1 == self.target

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if self.kind == "sign" and isinstance(node.op, (ast.Add, ast.Sub)) and self._hit():
            node.op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
        elif self.kind == "drop term" and isinstance(node.op, (ast.Add, ast.Sub)) and self._hit():
            return node.left
        elif (
            self.kind == "off-by-one"
            and isinstance(node.op, ast.Sub)
            and isinstance(node.left, ast.Name)
            and node.left.id == "t"
            and isinstance(node.right, ast.Constant)
            and node.right.value in (1, 2)
            and self._hit()
        ):
            return (
                node.left
                if node.right.value == 1
                else ast.BinOp(node.left, ast.Sub(), ast.Constant(1))
            )
        return node

    def visit_Subscript(self, node):
        self.generic_visit(node)
        return node

    def visit_Constant(self, node):
        if self.kind == "half" and node.value in (0.5, 2, 2.0) and self._hit():
            return ast.Constant(1.0 if node.value == 0.5 else 1)
        return node

    def visit_Attribute(self, node):
        self.generic_visit(node)
        if self.kind == "mean/sum" and node.attr in ("mean", "sum") and self._hit():
            node.attr = "sum" if node.attr == "mean" else "mean"
        elif self.kind == "transpose" and node.attr == "T" and self._hit():
            return node.value
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        name = node.func.attr if isinstance(node.func, ast.Attribute) else ""
        if self.kind == "no sqrt" and name == "sqrt" and len(node.args) == 1 and self._hit():
            return node.args[0]
        if self.kind == "axis":
            for keyword in node.keywords:
                if (
                    keyword.arg == "dim"
                    and isinstance(keyword.value, ast.Constant)
                    and keyword.value.value in (0, 1)
                    and self._hit()
                ):
                    keyword.value = ast.Constant(1 - keyword.value.value)
            return node
        if self.kind == "global RNG":
            kept = [k for k in node.keywords if k.arg != "generator"]
            if len(kept) < len(node.keywords) and self._hit():
                node.keywords = kept
        elif (
            self.kind == "in place"
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "clone"
            and self._hit()
        ):
            return node.func.value
        return node

    def visit_Return(self, node):
        self.generic_visit(node)
        if self.kind == "float32" and node.value is not None and self._hit():
            node.value = ast.Call(ast.Attribute(node.value, "float", ast.Load()), [], [])
        return node


#: edits the check also makes to the reference to name a mistake (its hints are not blind)
SHARED = ("sign", "drop term", "mean/sum", "half", "off-by-one", "transpose")
#: edits the check does not make: how its hints do on mistakes it was not built from
HELD_OUT = ("axis", "no sqrt", "global RNG", "in place", "float32")
KINDS = SHARED + HELD_OUT


def wrong_answers(exercise: Exercise, per_exercise: int):
    """(kind, function) pairs: edited copies of the reference, then the listed mistakes."""
    solution = exercise.solution
    try:
        source = textwrap.dedent(inspect.getsource(solution))
    except (OSError, TypeError):
        return []
    tree = ast.parse(source)
    found = []
    for kind in KINDS:
        for target in range(3):
            edit = _Edit(kind, target)
            edited = edit.visit(ast.parse(source))
            if edit.count <= target:
                break
            function = edited.body[0]
            if function.body and isinstance(function.body[0], ast.Expr):
                function.body[0] = ast.Expr(ast.Constant(f"a wrong answer: {kind}"))
            edited = ast.fix_missing_locations(edited)
            namespace = dict(solution.__globals__)
            exec(compile(edited, f"<wrong {kind}>", "exec"), namespace)
            found.append((kind, namespace[solution.__name__]))
    del tree
    # spread the budget over the kinds
    by_kind = collections.defaultdict(list)
    for kind, function in found:
        by_kind[kind].append(function)
    chosen = []
    while len(chosen) < per_exercise and any(by_kind.values()):
        for kind in KINDS:
            if by_kind[kind] and len(chosen) < per_exercise:
                chosen.append((kind, by_kind[kind].pop(0)))
    chosen += [
        (
            "listed mistake",
            types.FunctionType(
                m.answer.__code__,
                m.answer.__globals__,
                "mine",
                m.answer.__defaults__,
                m.answer.__closure__,
            ),
        )
        for m in exercise.mistakes
    ]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-exercise", type=int, default=8)
    parser.add_argument("--chapters", nargs="*", default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    totals = collections.Counter()
    by_kind = collections.defaultdict(collections.Counter)
    accepted = []
    generic = []
    slowest = (0.0, "")
    print(
        f"{'chapter':18s} {'wrong':>6s} {'rejected':>9s} {'specific':>9s} {'generic':>8s} "
        f"{'error':>6s}"
    )
    for chapter, exercises in all_exercises().items():
        if args.chapters and chapter not in args.chapters:
            continue
        counts = collections.Counter()
        for exercise in exercises:
            for kind, answer in wrong_answers(exercise, args.per_exercise):
                start = time.perf_counter()
                feedback = exercise.check(answer, strict=True, seed=0)
                elapsed = time.perf_counter() - start
                slowest = max(slowest, (elapsed, f"{chapter}.{exercise.name}"))
                counts["wrong"] += 1
                by_kind[kind]["wrong"] += 1
                if feedback.passed:
                    accepted.append(f"{chapter}.{exercise.name} ({kind})")
                    continue
                counts["rejected"] += 1
                by_kind[kind]["rejected"] += 1
                if feedback.status == "error":
                    label = "error"
                elif "Hint:" in feedback.message:
                    label = "specific"
                else:
                    label = "generic"
                    generic.append(f"{chapter}.{exercise.name} ({kind}): {feedback.message[:150]}")
                counts[label] += 1
                by_kind[kind][label] += 1
        totals.update(counts)
        print(
            f"{chapter:18s} {counts['wrong']:6d} {counts['rejected']:9d} "
            f"{counts['specific']:9d} {counts['generic']:8d} {counts['error']:6d}"
        )
    print()
    print(f"{'edit':18s} {'wrong':>6s} {'rejected':>9s} {'specific':>9s}")
    for kind, counts in by_kind.items():
        print(f"{kind:18s} {counts['wrong']:6d} {counts['rejected']:9d} {counts['specific']:9d}")
    for group, kinds in (
        ("shared", SHARED),
        ("held out", HELD_OUT),
        ("listed mistake", ("listed mistake",)),
    ):
        group_counts = collections.Counter()
        for kind in kinds:
            group_counts.update(by_kind.get(kind, {}))
        judged = max(group_counts["specific"] + group_counts["generic"], 1)
        print(
            f"{group} edits: {group_counts['wrong']} wrong, {group_counts['rejected']} rejected, "
            f"specific hints on {100 * group_counts['specific'] / judged:.1f} % of the "
            "'incorrect' verdicts"
        )
    rejected = max(totals["rejected"], 1)
    incorrect = max(totals["specific"] + totals["generic"], 1)
    print(
        f"\n{totals['wrong']} wrong answers, {totals['rejected']} rejected "
        f"({100 * totals['rejected'] / max(totals['wrong'], 1):.1f} %): "
        f"{totals['specific']} with a specific hint, {totals['generic']} with only the size "
        f"of the discrepancy, {totals['error']} errors (the function raised, and the message "
        f"says what). Specific hints: {100 * totals['specific'] / incorrect:.1f} % of the "
        f"'incorrect' verdicts, {100 * (totals['specific'] + totals['error']) / rejected:.1f} % "
        "of all rejections counting errors as specific."
    )
    print(f"slowest check: {slowest[1]} in {slowest[0]:.1f} s")
    if generic:
        print("rejected without a specific hint:\n  " + "\n  ".join(generic))
    if accepted:
        print("accepted (equivalent edits or misses):\n  " + "\n  ".join(accepted))


if __name__ == "__main__":
    main()
