"""Project goals that only doing the project passes: hidden draws, raw results, refused shortcuts.

A :class:`ProjectGoal` is a :class:`~genphys.exercises._feedback.Goal` whose arguments are
drawn from a seed the student does not see (training data from a moved mixture, a hidden
permutation of the pixels, a hidden seed), whose judge sees those arguments as well as the
result (so that it can compare generated samples with the training set, or recompute error
bars from the raw series), and which refuses, while the student's function runs, the
library's own trainers and samplers for that very task and every reference solution of
the project. The refusal is a profile hook installed in the calling thread and in every
thread started during the call (``threading.setprofile``); it recognises a refused function
by its code object and by the content of its code (the names, attributes, constants and
operators it uses, in order), so that a copy made with ``exec(inspect.getsource(f))`` or
``types.FunctionType(f.__code__, ...)`` is recognised too; a refused call stops the student's
function at once. It notes any call of ``sys.setprofile``, ``sys.getprofile`` or
``threading.setprofile`` made while it watches: touching the watcher is itself a failure.
Threads that were already running before the check are not watched (Python 3.11 has no way
to reach them). A goal may also count the calls of one of the student's own functions
(:attr:`ProjectGoal.spy`: the sweeps of the Ising study, the DDPM training steps).
"""

from __future__ import annotations

import copy
import dis
import functools
import secrets
import sys
import threading
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ._feedback import (
    Feedback,
    Goal,
    _code,
    _unwrap,
    no_new_processes,
)

__all__ = ["ProjectGoal", "memorisation", "moved_mixture", "nearest_distances", "refused_codes"]

SHORTCUT_HINT = (
    "your function calls `{name}`, {why} The goal asks for your own pipeline, built from the "
    "steps above: write the loop yourself."
)
TAMPER_HINT = (
    "your function changed the profile hook with which the check watches for refused calls "
    "(`{name}`). Leave sys.setprofile and threading.setprofile alone."
)


def _functions(item: Any) -> Iterable[types.FunctionType]:
    """The plain functions behind a function, method, property or class (its methods)."""
    item = _unwrap(item)
    if isinstance(item, type):
        for value in vars(item).values():
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, property):
                value = value.fget
            if isinstance(value, types.FunctionType):
                yield value
    elif isinstance(item, types.MethodType):
        yield item.__func__
    elif isinstance(item, types.FunctionType):
        yield item


_UNSEEN = object()


def _content(code: types.CodeType) -> tuple | None:
    """What a copy of a function keeps, or None for a function too short to tell apart.

    The names, attributes, constants and operators the code uses, in order, without the
    details that depend on how it was compiled (line numbers, ``LOAD_METHOD`` against
    ``LOAD_ATTR``, the docstring's indentation).
    """
    steps = []
    for ins in dis.get_instructions(code):
        family = ins.opname.split("_")[0]
        if ins.opname in ("LOAD_CONST", "RETURN_CONST") and isinstance(ins.argval, types.CodeType):
            steps.append(("CODE", _content(ins.argval)))
        elif family in ("LOAD", "STORE", "DELETE", "BINARY", "COMPARE", "IMPORT"):
            steps.append((family, ins.argrepr.replace("NULL + ", "").replace(" + NULL", "")))
    return (code.co_name, code.co_argcount, tuple(steps)) if len(steps) >= 8 else None


def refused_codes(items: Iterable[Any]) -> dict[types.CodeType, str]:
    """The code objects of ``items`` (functions, methods, classes), each with its dotted name."""
    found = {}
    for item in items:
        for function in _functions(item):
            name = f"{function.__module__}.{function.__qualname__}"
            found[function.__code__] = name
            for const in function.__code__.co_consts:  # nested helpers of the function
                if isinstance(const, types.CodeType):
                    found[const] = name
    return found


class _Refused(BaseException):
    """Raised into the student's code at the call of a refused function (not an Exception,
    so that ``except Exception`` does not swallow it)."""


class _Watch:
    """A profile function: notes the first call of a refused code, and any change of the hook."""

    _TAMPER_IDS: ClassVar = frozenset(id(f) for f in (sys.setprofile, sys.getprofile, sys.settrace))
    _TAMPER_CODES: ClassVar = {
        f.__code__: f"threading.{f.__name__}"
        for f in (threading.setprofile, threading.getprofile, threading.settrace)
    }

    def __init__(
        self, refused: dict[types.CodeType, str], exact_only: frozenset = frozenset()
    ) -> None:
        self.refused = refused
        # copies are recognised by content, except of the codes in ``exact_only`` (the
        # project's step solutions: a student's own two-line step may equal them)
        self.contents = {
            _content(code): name for code, name in refused.items() if code not in exact_only
        }
        self.contents.pop(None, None)
        # the names a copy keeps too: only a code that uses the same names is disassembled
        self.names = {code.co_names for code in refused}
        self.seen: dict[types.CodeType, str | None] = {}
        self.hit: str | None = None
        self.tampered: str | None = None
        self.active = True
        self.spy: types.CodeType | None = None
        self.recorder: Callable[[dict], Any] | None = None
        self.records: list = []

    def __call__(self, frame: types.FrameType, event: str, arg: Any) -> None:
        if event == "call":
            if not self.active:
                return
            code = frame.f_code
            name = self.seen.get(code, _UNSEEN)
            if name is _UNSEEN:
                name = self.refused.get(code)
                if name is None and code.co_names in self.names:
                    key = _content(code)
                    name = None if key is None else self.contents.get(key)
                self.seen[code] = name
            if code in self._TAMPER_CODES and self.tampered is None:
                self.tampered = self._TAMPER_CODES[code]
            if code is self.spy:
                self.records.append(self.recorder(frame.f_locals))
            if name is not None and self.hit is None:
                self.hit = name
                raise _Refused(name)  # stop at once; the profile hook is then removed
        elif event == "c_call" and id(arg) in self._TAMPER_IDS and self.active:
            if self.tampered is None:
                self.tampered = f"{getattr(arg, '__module__', None) or 'sys'}.{arg.__name__}"


@functools.cache
def _warm_up() -> None:
    """Import what torch imports lazily on a first optimizer step (torch._dynamo, sympy: about
    800 modules), outside the watch, where importing them would take tens of seconds."""
    p = torch.zeros(1, requires_grad=True)
    for optimizer in (torch.optim.Adam([p], lr=0.1), torch.optim.SGD([p], lr=0.1)):
        optimizer.zero_grad()
        (p**2).sum().backward()
        optimizer.step()


@dataclass(frozen=True)
class ProjectGoal(Goal):
    """A :class:`Goal` judged on hidden draws, with the task's library shortcuts refused.

    Parameters
    ----------
    name, solution : see :class:`Goal`.
    arguments : callable
        ``arguments(generator) -> (args, context)``: ``args`` is the tuple ``student`` is
        called with, drawn from a generator seeded with a seed the student does not see
        (replayable with ``seed=``); ``context`` is what the judge needs besides the result
        (the hidden distribution, the training set).
    judge : callable
        ``judge(result, context) -> (bool, str)``: for a memorisation test, or error bars
        recomputed from raw series.
    refused : tuple
        ``(callable, why)``: functions and classes that may not run while the student's
        function runs (the library's trainer or sampler for this very task).
    references : tuple
        The project's other reference solutions (its steps); refused like :attr:`solution`.
    error_hints : tuple
        ``(text, hint)``: an exception whose message contains ``text`` gets ``hint``.
    spy : tuple
        ``(name, recorder)``: every call of the student's own function ``name`` (from the
        namespace of their pipeline, e.g. the sweep of step 1) made during the run is
        recorded as ``recorder(arguments)``, and the records go to the judge as its third
        argument, ``judge(result, context, records)``: the check counts the work done.
    """

    refused: tuple = ()
    references: tuple = ()
    error_hints: tuple = ()
    spy: tuple = ()

    def _refused(self, strict: bool) -> tuple[dict[types.CodeType, str], dict[str, str]]:
        codes, why = {}, {}
        for item, reason in self.refused:
            found = refused_codes([item])
            codes.update(found)
            for name in found.values():
                why[name] = reason
        for item in (self.solution, *self.references) if strict else ():
            found = refused_codes([item])
            codes.update(found)
            for name in found.values():
                why[name] = "a reference solution of this project."
        return codes, why

    def _steps(self) -> frozenset:
        """The code objects of the project's step solutions (refused by identity only)."""
        return frozenset(refused_codes(self.references))

    def check(
        self,
        student: Callable[..., Any],
        *,
        strict: bool = False,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Feedback:
        """Run ``student`` on hidden draws (seed ``seed``, fresh when None) and judge the result."""
        reference_codes = {_code(f) for f in (self.solution, *self.references)} - {None}
        refused = self._refuse_early(student, strict, reference_codes)
        if refused is not None:
            return refused
        codes, why = self._refused(strict)
        if generator is None:
            seed = secrets.randbits(31) if seed is None else int(seed)
            generator = torch.Generator().manual_seed(seed)
        arguments, context = self.arguments(generator)
        _warm_up()
        watch = _Watch(codes, self._steps())
        if self.spy:
            spy_name, watch.recorder = self.spy
            namespace = getattr(_unwrap(student), "__globals__", {})
            watch.spy = _code(namespace.get(spy_name)) if isinstance(namespace, dict) else None
        previous, previous_threads = sys.getprofile(), threading.getprofile()
        threading.setprofile(watch)
        sys.setprofile(watch)

        def spawned(name: str) -> None:
            why[name] = "another process, which the check cannot watch."
            if watch.hit is None:
                watch.hit = name
            raise _Refused(name)

        try:
            with no_new_processes(spawned):
                result = student(*copy.deepcopy(arguments))
        except _Refused:
            result = None
        except NotImplementedError:
            return Feedback(
                self.name,
                "not implemented",
                "Not implemented yet: replace `raise NotImplementedError` with your code "
                "and run the check again.",
            )
        except Exception as exc:  # the student's code may raise anything
            if watch.hit is not None:
                hint = SHORTCUT_HINT.format(name=watch.hit, why=why.get(watch.hit, "refused."))
                return Feedback(self.name, "incorrect", f"Hint: {hint}")
            message = f"Your function raised {type(exc).__name__}: {exc}"
            for text, hint in self.error_hints:
                if text in str(exc):
                    message += f". Hint: {hint}"
                    break
            return Feedback(self.name, "error", message)
        finally:
            watch.active = False
            still = sys.getprofile() is watch
            sys.setprofile(previous)
            threading.setprofile(previous_threads)
        if watch.hit is not None:
            hint = SHORTCUT_HINT.format(name=watch.hit, why=why.get(watch.hit, "refused here."))
            return Feedback(self.name, "incorrect", f"Hint: {hint}")
        if watch.tampered is not None or not still:
            name = watch.tampered or "sys.setprofile"
            return Feedback(self.name, "incorrect", "Hint: " + TAMPER_HINT.format(name=name))
        if result is None:
            return Feedback(
                self.name, "incorrect", "Your function returned None: did you forget `return`?"
            )
        if self.spy and watch.spy is None:
            spy_name = self.spy[0]
            return Feedback(
                self.name,
                "incorrect",
                f"The check counts the calls of your own `{spy_name}` from the step above: "
                f"define `{spy_name}` in the notebook and call it from `{self.name}`.",
            )
        try:
            if self.spy:
                passed, message = self.judge(result, context, watch.records)
            else:
                passed, message = self.judge(result, context)
        except Exception as exc:  # a result of the wrong kind
            return Feedback(
                self.name,
                "error",
                f"Your result could not be judged ({type(exc).__name__}: {exc}).",
            )
        if not passed and seed is not None:
            message += f" (Hidden draws from seed {seed}: pass `seed={seed}` to replay them.)"
        return Feedback(self.name, "passed" if passed else "incorrect", message)


# ------------------------------------------------------------ hidden draws and judges
def moved_mixture(mixture: Any, generator: torch.Generator, shift: float = 0.3) -> Any:
    """``mixture`` (2D) rotated by a random angle about the origin, shifted by up to ``shift`` per
    axis, with its weights permuted among the components: a target the student cannot sample
    without learning it from the data (or the log-density) the check hands over."""
    from ..mixtures import GaussianMixture

    dtype = mixture.means.dtype
    angle = 2 * torch.pi * torch.rand((), generator=generator, dtype=dtype)
    c, s = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([c, -s]), torch.stack([s, c])])  # (2, 2)
    offset = shift * (2 * torch.rand(2, generator=generator, dtype=dtype) - 1)  # (2,)
    order = torch.randperm(mixture.weights.shape[0], generator=generator)
    return GaussianMixture(
        mixture.weights[order], mixture.means @ rotation.T + offset, mixture.stds, dtype=dtype
    )


def nearest_distances(points: torch.Tensor, data: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    """Distance from each row of ``points`` (n, d) to its nearest row of ``data`` (m, d)."""
    points, data = points.detach().to(torch.float64), data.detach().to(torch.float64)
    out = [
        torch.cdist(points[i : i + chunk], data).min(1).values for i in range(0, len(points), chunk)
    ]
    return torch.cat(out)  # (n,)


def memorisation(samples: torch.Tensor, training: torch.Tensor, fresh: torch.Tensor) -> str | None:
    """Why ``samples`` look copied from ``training``, or None.

    Compares each sample's distance to its nearest training point with the same for
    ``fresh`` exact samples of the data distribution: more than 1 % exact copies (distance
    below 10⁻⁶, where a continuous distribution gives none), or a median distance below half
    that of fresh samples, means the samples are the training set, or the training set with
    a little noise, not a model of it.
    """
    mine = nearest_distances(samples, training)
    theirs = nearest_distances(fresh, training)
    copies = float((mine < 1e-6).double().mean())
    ratio = float(mine.median() / theirs.median())
    if copies > 0.01:
        return (
            f"{100 * copies:.0f} % of your samples are copies of training points (fresh samples "
            "of the distribution contain none): a generative model must make new points, not "
            "return its training data."
        )
    if ratio < 0.5:
        return (
            f"your samples sit {ratio:.2f} times as close to their nearest training point as "
            "fresh samples of the distribution do: they reproduce the training set instead of "
            "the distribution behind it."
        )
    return None
