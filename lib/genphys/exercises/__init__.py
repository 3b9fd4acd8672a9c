"""Checkers for the book's exercises, one module per chapter (``ch02``, ``ch03``, ...).

Each module defines the reference solutions, an ``EXERCISES`` list of
:class:`~genphys.exercises._feedback.Exercise` and a ``check_<name>`` function for
each. A module may also define ``QUESTIONS``: derivations and concept questions
(:class:`~genphys.exercises._feedback.Expression`,
:class:`~genphys.exercises._feedback.MultipleChoice`).

An exercise page imports only the checks, never the module with the reference
solutions::

    checks = genphys.exercises.checks("ch05")
    checks.metropolis_acceptance(metropolis_acceptance)   # strict check of a function
    checks.ask("delta_e_bonds")                            # display a question
    checks.delta_e_bonds("a")                              # check its answer

and shows a solution, inside its collapsed box, with
``genphys.exercises.show_solution("ch05", "metropolis_acceptance")``, which binds no
name in the notebook.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from ._feedback import (
    Choice,
    Exercise,
    Expression,
    Feedback,
    Mistake,
    MultipleChoice,
    Stress,
)

__all__ = [
    "Checks",
    "Choice",
    "Exercise",
    "Expression",
    "Feedback",
    "Mistake",
    "MultipleChoice",
    "Stress",
    "all_exercises",
    "all_questions",
    "checks",
    "show_solution",
]


def _chapters() -> list[str]:
    return sorted(
        info.name for info in pkgutil.iter_modules(__path__) if info.name.startswith(("ch", "project_"))
    )


def _module(chapter: str):
    if chapter not in _chapters():
        raise ValueError(
            f"chapter must be one of {', '.join(_chapters())}. Got {chapter!r} instead."
        )
    return importlib.import_module(f"{__name__}.{chapter}")


def all_exercises() -> dict[str, list[Exercise]]:
    """Every chapter's ``EXERCISES``, keyed by module name (``"ch02"``, ...)."""
    found = {}
    for name in _chapters():
        module = importlib.import_module(f"{__name__}.{name}")
        found[name] = list(module.EXERCISES)
    return dict(sorted(found.items()))


def all_questions() -> dict[str, list[Expression | MultipleChoice]]:
    """Every chapter's ``QUESTIONS`` (derivations, concept questions), keyed by module name."""
    found = {}
    for name in _chapters():
        module = importlib.import_module(f"{__name__}.{name}")
        questions = list(getattr(module, "QUESTIONS", []))
        if questions:
            found[name] = questions
    return found


class Checks:
    """The strict checks of one chapter's exercises and questions, one attribute each.

    ``checks.<name>(answer)`` returns a :class:`Feedback`; ``checks.ask(name)`` displays a
    question. The object holds no attribute that is a reference solution.
    """

    def __init__(self, chapter: str) -> None:
        module = _module(chapter)
        self._chapter = chapter
        self._items: dict[str, Any] = {}
        for item in [*module.EXERCISES, *getattr(module, "QUESTIONS", [])]:
            self._items[item.name] = item

    def __getattr__(self, name: str):
        items = self.__dict__.get("_items", {})
        if name not in items:
            raise AttributeError(f"name must be one of {', '.join(items)}. Got {name!r} instead.")
        item = items[name]
        if isinstance(item, Exercise):

            def check(student, *, seed: int | None = None) -> Feedback:
                return item.check(student, strict=True, seed=seed)

        else:

            def check(answer, *, seed: int | None = None) -> Feedback:
                return (
                    item.check(answer, seed=seed)
                    if isinstance(item, Expression)
                    else (item.check(answer))
                )

        check.__name__ = f"check_{name}"
        check.__doc__ = f"Check your answer to `{name}` ({self._chapter})."
        return check

    def __dir__(self) -> list[str]:
        return [*self._items, "ask"]

    def __repr__(self) -> str:
        return f"Checks({self._chapter!r}: {', '.join(self._items)})"

    def ask(self, name: str):
        """Display the question ``name`` (its text, choices or allowed syntax) as Markdown."""
        from IPython.display import Markdown

        item = self._items.get(name)
        if not isinstance(item, (Expression, MultipleChoice)):
            raise ValueError(f"name must be the name of a question. Got {name!r} instead.")
        return Markdown(item.markdown())


def checks(chapter: str) -> Checks:
    """The strict checks of ``chapter`` (e.g. ``"ch05"``), without its reference solutions."""
    return Checks(chapter)


def show_solution(chapter: str, name: str):
    """Display the solution of ``name`` in ``chapter`` and prove that it passes its check.

    For a function exercise: the source of the reference solution (from ``lib/``) and
    the verdict of its check; for a question: the answer and the reason for it.
    """
    from IPython.display import Markdown

    from .._display import show_source

    module = _module(chapter)
    items = {item.name: item for item in [*module.EXERCISES, *getattr(module, "QUESTIONS", [])]}
    if name not in items:
        raise ValueError(f"name must be one of {', '.join(items)}. Got {name!r} instead.")
    item = items[name]
    if isinstance(item, Exercise):
        feedback = item.check(item.solution).assert_passed()
        return Markdown(f"{show_source(item.solution).data}\n\n{feedback}")
    if isinstance(item, MultipleChoice):
        item.check(item.answer).assert_passed()
    else:
        item.check(item.solution).assert_passed()
    return Markdown(item.solution_markdown())
