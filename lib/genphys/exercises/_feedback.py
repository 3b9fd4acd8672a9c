"""The mechanism behind every exercise: reference solution, typical mistakes, feedback.

An :class:`Exercise` holds one reference solution (the single source of truth that
the book shows in its collapsed solution), a function that builds seeded test
inputs, and a list of :class:`Mistake` s: plausible wrong answers, each with a hint.
``Exercise.check(student_function)`` runs the student's function on every input
and returns a :class:`Feedback` that is one of

* ``passed`` -- agrees with the reference on every input;
* ``not implemented`` -- the stub still raises ``NotImplementedError``;
* ``incorrect`` -- wrong, with the hint of the matching mistake when there is one,
  otherwise the shape or the size of the discrepancy;
* ``error`` -- the function raised; the message says what and on which input.

A check never raises on a student's function, so a notebook runs from top to bottom
whatever state the exercises are in.
"""

from __future__ import annotations

import copy
import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["Exercise", "Feedback", "Mistake"]

_ICONS = {"passed": "✅", "not implemented": "✍️", "incorrect": "❌", "error": "⚠️"}
_COLOURS = {
    "passed": "#e6f4ea",
    "not implemented": "#eef2f7",
    "incorrect": "#fdecea",
    "error": "#fff4e5",
}


@dataclass(frozen=True)
class Feedback:
    """The verdict of one check: ``status`` and a message for the student."""

    exercise: str
    status: str
    message: str

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def assert_passed(self) -> Feedback:
        """Return ``self`` if passed, else raise ``AssertionError`` with the message."""
        if not self.passed:
            raise AssertionError(str(self))
        return self

    def __str__(self) -> str:
        return f"{_ICONS[self.status]} {self.exercise}: {self.status}. {self.message}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return (
            f'<div style="background:{_COLOURS[self.status]};padding:0.6em 0.9em;'
            f'border-radius:6px;color:#1f2328">{_ICONS[self.status]} '
            f"<strong>{html.escape(self.exercise)}: {self.status}.</strong> "
            f"{html.escape(self.message)}</div>"
        )


@dataclass(frozen=True)
class Mistake:
    """A plausible wrong answer (same signature as the solution) and its hint."""

    answer: Callable[..., Any]
    hint: str


def _to_arrays(value: Any) -> list[np.ndarray]:
    """Flatten a result (tensor, array, number or tuple of them) to float64 arrays."""
    if isinstance(value, (tuple, list)) and not (
        len(value) > 0 and all(isinstance(v, (int, float)) for v in value)
    ):
        return [a for v in value for a in _to_arrays(v)]
    if isinstance(value, torch.Tensor):
        return [value.detach().cpu().to(torch.float64).numpy()]
    return [np.asarray(value, dtype=np.float64)]


def _close(got: list[np.ndarray], want: list[np.ndarray], rtol: float, atol: float) -> bool:
    return len(got) == len(want) and all(
        g.shape == w.shape and np.allclose(g, w, rtol=rtol, atol=atol)
        for g, w in zip(got, want, strict=True)
    )


@dataclass(frozen=True)
class Exercise:
    """One exercise: its reference solution, seeded test inputs and typical mistakes.

    Parameters
    ----------
    name : str
        The name of the function the student writes.
    solution : callable
        The reference solution; the book displays its source.
    cases : callable
        ``cases() -> list of argument tuples``; deterministic (seeded).
    mistakes : sequence of Mistake
        Plausible wrong answers, checked in order when the student's answer is wrong.
    rtol, atol : float
        Tolerances of ``numpy.allclose`` between the student's and the reference output.
    """

    name: str
    solution: Callable[..., Any]
    cases: Callable[[], Sequence[tuple]]
    mistakes: Sequence[Mistake] = field(default_factory=tuple)
    rtol: float = 1e-7
    atol: float = 1e-9

    def check(self, student: Callable[..., Any]) -> Feedback:
        """Run ``student`` on every case and compare with the reference solution."""

        def verdict(status: str, message: str) -> Feedback:
            return Feedback(self.name, status, message)

        if not callable(student):
            return verdict(
                "error",
                f"expected the function {self.name} itself, "
                f"got a {type(student).__name__}. Pass it without calling it.",
            )
        for number, args in enumerate(self.cases(), start=1):
            try:
                out = student(*copy.deepcopy(args))
            except NotImplementedError:
                return verdict(
                    "not implemented",
                    "Not implemented yet: replace `raise NotImplementedError` with your code "
                    "and run the check again.",
                )
            except Exception as exc:  # the student's code may raise anything
                return verdict(
                    "error",
                    f"On test case {number} your function raised {type(exc).__name__}: {exc}",
                )
            if out is None:
                return verdict("incorrect", "Your function returned None: did you forget `return`?")
            want = _to_arrays(self.solution(*copy.deepcopy(args)))
            try:
                got = _to_arrays(out)
            except (TypeError, ValueError):
                return verdict(
                    "incorrect",
                    f"Your function returned a {type(out).__name__}, which is not a number, "
                    "array or tensor.",
                )
            if _close(got, want, self.rtol, self.atol):
                continue
            for mistake in self.mistakes:
                wrong = _to_arrays(mistake.answer(*copy.deepcopy(args)))
                if _close(got, wrong, self.rtol, self.atol):
                    return verdict("incorrect", f"Hint: {mistake.hint}")
            shapes_got = [g.shape for g in got]
            shapes_want = [w.shape for w in want]
            if shapes_got != shapes_want:
                shape = lambda s: s[0] if len(s) == 1 else s
                return verdict(
                    "incorrect",
                    f"On test case {number} the result has shape {shape(shapes_got)}, "
                    f"but shape {shape(shapes_want)} was expected.",
                )
            if not all(np.isfinite(g).all() for g in got) and all(
                np.isfinite(w).all() for w in want
            ):
                return verdict(
                    "incorrect",
                    f"On test case {number} your result contains NaN or infinite values where "
                    "the reference is finite. Look for exp overflowing, log of zero (0 · log 0 "
                    "should count as 0) or a division by zero.",
                )
            error = max(
                float(np.max(np.abs(g - w), initial=0.0)) for g, w in zip(got, want, strict=True)
            )
            return verdict(
                "incorrect",
                f"On test case {number} the values differ from the reference by up to {error:.3g}. "
                "Check the formula term by term.",
            )
        return verdict("passed", "Your function agrees with the reference on every test case.")

    def stub(self) -> Callable[..., Any]:
        """A function that, like the student's starting point, is not implemented."""

        def stub(*args: Any) -> Any:
            raise NotImplementedError

        stub.__name__ = self.name
        return stub
