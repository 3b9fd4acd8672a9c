"""The last step of a project: a result (samples, a trained model) judged against a stated number.

A :class:`Target` is checked like a question (``checks.<name>(result)``) but its answer is
what the student's own code produced: samples from their sampler, a model trained with
their training step. ``evaluate(result)`` measures it with the library (a divergence to
the exact density, an IWAE bound on held-out data) and compares with a threshold that
is derived from a standard error or stated with its margin; the feedback gives the
measured number and the threshold. The reference result (``solution``) is built on
first use and cached, so that the page's solution box and the tests share one run.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ._feedback import Exercise, Feedback

__all__ = ["StatisticalStep", "Target"]


@dataclass(frozen=True)
class StatisticalStep(Exercise):
    """An :class:`Exercise` that, once it agrees with the reference, must pass a statistical test.

    ``statistic(student, seed)`` runs the student's function with fresh randomness (the
    same ``seed`` replays it) and returns ``None`` when the result agrees with an exact
    value within a tolerance derived from a standard error, else the message; ``passed``
    is what a passed test adds to the feedback.
    """

    statistic: Callable[[Callable, int], str | None] | None = None
    passed: str = ""

    def check(
        self,
        student: Callable,
        *,
        strict: bool = False,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Feedback:
        """The checks of :meth:`Exercise.check`, then the statistical test."""
        feedback = super().check(student, strict=strict, seed=seed, generator=generator)
        if not feedback.passed or self.statistic is None:
            return feedback
        if seed is None:  # fresh: not the seeded cases
            seed = random.SystemRandom().randrange(2**31)
        try:
            problem = self.statistic(student, seed)
        except Exception as exc:  # the student's code may raise anything
            return Feedback(
                self.name, "error", f"In the statistical test your function raised {exc!r}."
            )
        if problem is not None:
            return Feedback(self.name, "incorrect", problem)
        return Feedback(self.name, "passed", feedback.message.rstrip(".") + " " + self.passed)


@dataclass(frozen=True)
class Target:
    """A result judged by a number: ``evaluate(result) -> (passed, message)``.

    Parameters
    ----------
    name : str
        The name of the check on the page (``checks.<name>``).
    question : str
        What the student must hand in.
    reference : callable
        ``reference() -> result``: the reference result, built with the reference
        solutions (cache it: it may train a model).
    evaluate : callable
        ``evaluate(result) -> (passed, message)``; raises ``ValueError`` or ``TypeError``
        on a result of the wrong kind, with a message for the student.
    explanation : str
        What the reference does and why it passes, shown in the solution box.
    """

    name: str
    question: str
    reference: Callable[[], Any]
    evaluate: Callable[[Any], tuple[bool, str]]
    explanation: str

    @property
    def solution(self) -> Any:
        """The reference result (built on first use)."""
        return self.reference()

    def check(self, result: Any) -> Feedback:
        """Measure ``result`` and compare with the target; never raises."""
        if result is None or result is Ellipsis:
            return Feedback(
                self.name,
                "not implemented",
                f"Not answered yet: {self.question} Run the cells above first.",
            )
        try:
            passed, message = self.evaluate(result)
        except Exception as exc:  # the student's result may be anything
            return Feedback(self.name, "error", f"Could not evaluate your result: {exc}")
        return Feedback(self.name, "passed" if passed else "incorrect", message)

    def markdown(self) -> str:
        return self.question

    def solution_markdown(self) -> str:
        _, message = self.evaluate(self.solution)
        return f"**Answer.** {self.explanation}\n\nThe reference: {message}"
