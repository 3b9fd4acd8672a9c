"""Checkers for the book's exercises, one module per chapter (``ch02``, ``ch03``, ...).

Each module defines the reference solutions, an ``EXERCISES`` list of
:class:`~genphys.exercises._feedback.Exercise` and a ``check_<name>`` function for
each, which an exercise notebook calls on the student's function.
"""

from __future__ import annotations

import importlib
import pkgutil

from ._feedback import Exercise, Feedback, Mistake

__all__ = ["Exercise", "Feedback", "Mistake", "all_exercises"]


def all_exercises() -> dict[str, list[Exercise]]:
    """Every chapter's ``EXERCISES``, keyed by module name (``"ch02"``, ...)."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("ch"):
            module = importlib.import_module(f"{__name__}.{info.name}")
            found[info.name] = list(module.EXERCISES)
    return dict(sorted(found.items()))
