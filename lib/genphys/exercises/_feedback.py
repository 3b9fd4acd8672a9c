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

Three stages of inputs make a check hard to fool. The seeded ``cases`` come first,
then, when an exercise defines them, ``random_cases`` drawn afresh at every check (a
lookup table of the seeded cases fails there) and ``stress_cases``: adversarial
inputs, each a :class:`Stress` that names what makes it hard (values spread over
hundreds of nats, extreme weights, large batches), so that a numerically unstable
formula fails with a message that says why. With ``strict=True`` (what the exercise
pages use, through :func:`genphys.exercises.checks`) a check also rejects the
reference solution itself (compared by the content of its code, so a copy made with
``exec`` or ``code.replace`` is found too), a function that calls it on any thread, a
function that switches the watch off, and a notebook that has the reference solutions
in its namespace; an exercise also names the ready-made implementations of what it asks
(``forbidden_calls``: the library's own, NumPy's, SciPy's, torch's), which the student
must not call.

Every check also demands what a careful reader of the exercise would: the inputs are
left as they were (each is compared with an untouched copy after the call), the result
has the reference's kind (a tensor, not an array; its floating dtype; integers where
integers are asked), and no random number is drawn from the global generator. Float
tolerances follow the result's dtype (two rounding steps of float32 for a float32
result), so the same formula in another order passes. A wrong answer that no listed
mistake explains is compared with the reference after one typical edit (a sign, a
missing term, a factor ½, a mean for a sum, an index off by one, a missing transpose) and with simple
transformations of the right result (its negative, a multiple, a constant offset, a
permutation), so that the hint names the mistake rather than the size of the
discrepancy.

The last step of a project is a :class:`Goal`: the student's whole pipeline (a training
run, a Monte Carlo study) is called once and its result is judged by a number the library
computes exactly, within a tolerance stated with the goal (a margin or a standard error).

Derivations and concept questions are checked by :class:`Expression` (a formula,
compared numerically with the reference formula at random points) and
:class:`MultipleChoice` (with an explanation for every choice).

A check never raises on a student's answer, so a notebook runs from top to bottom
whatever state the exercises are in.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import dis
import functools
import html
import importlib
import inspect
import math
import re
import secrets
import sys
import textwrap
import threading
import types
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from ..seeding import make_generator

__all__ = [
    "Choice",
    "Exercise",
    "Expression",
    "Feedback",
    "Goal",
    "Mistake",
    "MultipleChoice",
    "StatisticalExercise",
    "Stress",
]

_ICONS = {"passed": "✅", "not implemented": "✍️", "incorrect": "❌", "error": "⚠️"}
_COLOURS = {
    "passed": "#e6f4ea",
    "not implemented": "#eef2f7",
    "incorrect": "#fdecea",
    "error": "#fff4e5",
}

LOOKUP_HINT = (
    "Does it only reproduce the fixed cases (a lookup table, hard-coded values or sizes)? "
    "It must compute the result from its arguments, for any input of the described shapes."
)
REFERENCE_HINT = (
    "this is the reference solution itself, not your own function. Write the function in "
    "the cell marked YOUR CODE HERE and pass that one."
)
CALLS_REFERENCE_HINT = (
    "your function calls the reference solution `{name}` instead of computing the result "
    "itself. Write the formula with torch operations."
)
FORBIDDEN_HINT = (
    "your function calls torch's `{name}`, which is what this exercise asks you to write. "
    "Build {exercise} from elementary torch operations."
)
FORBIDDEN_CALL_HINT = (
    "your function calls `{name}`, a ready-made implementation of what this exercise asks "
    "you to write. Build {exercise} yourself from elementary operations."
)
NAMESPACE_HINT = (
    "your notebook has the reference solutions in its namespace ({names}). Import only the "
    'checks, `checks = genphys.exercises.checks("chNN")`, restart the kernel and solve the '
    "exercise yourself."
)


def _code_spans(text: str) -> str:
    """Markdown code spans (`x`) of an escaped message as HTML ``<code>`` elements."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


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
            f"{_code_spans(html.escape(self.message))}</div>"
        )


@dataclass(frozen=True)
class Mistake:
    """A plausible wrong answer (same signature as the solution) and its hint."""

    answer: Callable[..., Any]
    hint: str


@dataclass(frozen=True)
class Stress:
    """An adversarial input: what makes it hard (``description``), and the arguments.

    ``hint`` (optional) is added to the feedback when a student's function fails on
    this input and no :class:`Mistake` matches, e.g. what to do against an overflow.
    """

    description: str
    args: tuple
    hint: str = ""


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


def _fresh_seed(seed: int | None, generator: torch.Generator | None) -> tuple[int | None, Any]:
    """The seed (drawn from the operating system when neither is given) and the generator."""
    if seed is None and generator is None:
        seed = secrets.randbits(31)
    return seed, make_generator(seed, generator)


# ------------------------------------------------------------- reference guards
def _unwrap(function: Any) -> Any:
    """Follow ``functools.partial`` and ``__wrapped__`` to the function underneath."""
    for _ in range(20):
        if isinstance(function, functools.partial):
            function = function.func
        elif hasattr(function, "__wrapped__"):
            function = function.__wrapped__
        else:
            break
    return function


def _code(function: Any) -> types.CodeType | None:
    return getattr(_unwrap(function), "__code__", None)


_SAME_OPCODE = {"LOAD_METHOD": "LOAD_ATTR"}
_JUMPS = set(dis.hasjrel) | set(dis.hasjabs)


def _code_key(code: types.CodeType) -> tuple:
    """What a code object computes, whatever its name, file or line: bytecode, constants, names.

    Two functions with the same key are the same function, however they were made
    (``exec`` of its source, ``code.replace(co_name=...)``, ``types.FunctionType``).
    """
    consts = tuple(
        _code_key(c) if isinstance(c, types.CodeType) else (type(c).__name__, repr(c))
        for c in code.co_consts
    )
    # instructions by name and argument, not raw bytes: the compiler writes a method call
    # as LOAD_ATTR or LOAD_METHOD (with caches of other lengths) depending on the module
    instructions = tuple(
        (
            _SAME_OPCODE.get(i.opname, i.opname),
            None if i.opcode in _JUMPS or i.opname == "LOAD_CONST" else repr(i.argval),
        )
        for i in dis.get_instructions(code)
        if i.opname not in ("CACHE", "NOP", "EXTENDED_ARG")
    )
    return (instructions, consts, code.co_names, code.co_varnames, code.co_argcount)


def _keys(codes: set) -> set:
    return {_code_key(c) for c in codes if c is not None}


def _is_reference(student: Any, solution: Callable[..., Any]) -> bool:
    """Whether ``student`` is the reference (the object, a wrapper of it, or a copy of its code)."""
    inner = _unwrap(student)
    code, mine = _code(solution), _code(inner)
    return inner is solution or (
        code is not None and mine is not None and _code_key(mine) == _code_key(code)
    )


def _exercise_module_names(namespace: Mapping[str, Any], codes: set) -> list[str]:
    """Names in a notebook namespace bound to an exercise module or a reference solution."""
    keys = _keys(codes)
    found = []
    for name, value in list(namespace.items()):
        if name.startswith("_"):
            continue
        if isinstance(value, types.ModuleType):
            if value.__name__.startswith((f"{__package__}.ch", f"{__package__}.project_")):
                found.append(name)
        elif callable(value):
            code = _code(value)
            if code is not None and _code_key(code) in keys:
                found.append(name)
    return found


def _resolve(dotted: str) -> Any:
    """The object named by a dotted path such as ``"scipy.special.logsumexp"``, or None."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for part in parts[i:]:
                obj = getattr(obj, part)
        except AttributeError:
            return None
        return obj
    return None


_TAMPER = {"setprofile", "settrace", "setprofile_all_threads", "settrace_all_threads"}
TAMPER_HINT = (
    "your function changes the checker's profile hook (`sys.setprofile`, `sys.settrace` or "
    "`threading.setprofile`). The check watches what your function calls; leave that alone "
    "and compute the result yourself."
)


class _CallWatch:
    """A profile function, on every thread, that notes calls the check does not allow.

    It notes a call of the reference solution (compared by the content of its code, so
    a copy made with ``exec`` or ``code.replace`` is found too), of a function in
    ``forbidden_calls`` (dotted names: Python functions by their code, C functions such as
    ``numpy.logaddexp.reduce`` or ``torch.logcumsumexp`` by name and owner), and any
    change of the profile hook itself.
    """

    def __init__(self, codes: set, forbidden_calls: Sequence[str] = ()) -> None:
        self.reference_keys = _keys(codes)
        #: the Python functions to wire on every thread (see _Tripwire)
        self.functions: dict[Any, tuple[str, str]] = {}
        self.python: dict[tuple, str] = {}
        self.c_calls: list[tuple[str, Any, str]] = []
        for dotted in forbidden_calls:
            obj = _resolve(dotted)
            if obj is None:
                continue
            obj = obj.fget if isinstance(obj, property) else obj
            code = _code(obj)
            if code is not None:
                self.python[_code_key(code)] = dotted
                self.functions[_unwrap(obj)] = ("forbidden", dotted)
            else:
                owner = getattr(obj, "__self__", None)
                if isinstance(owner, types.ModuleType) or dotted.startswith("torch."):
                    owner = None  # torch.f and Tensor.f are the same function
                self.c_calls.append(
                    (getattr(obj, "__name__", dotted.split(".")[-1]), owner, dotted)
                )
        self.seen: dict[types.CodeType, tuple[str, str] | None] = {}
        self.hit: str | None = None
        self.kind: str | None = None  # "reference", "forbidden" or "tamper"
        self.active = True

    def _note(self, kind: str, name: str) -> None:
        if self.hit is None:
            self.kind, self.hit = kind, name

    def __call__(self, frame: types.FrameType, event: str, arg: Any) -> None:
        if self.hit is not None or not self.active:
            return
        if event == "call":
            code = frame.f_code
            if code not in self.seen:
                key = _code_key(code)
                if key in self.reference_keys:
                    self.seen[code] = ("reference", code.co_name)
                elif key in self.python:
                    self.seen[code] = ("forbidden", self.python[key])
                else:
                    self.seen[code] = None
            found = self.seen[code]
            if found is not None:
                self._note(*found)
        elif event == "c_call":
            name = getattr(arg, "__name__", "")
            if name in _TAMPER and getattr(arg, "__module__", None) in ("sys", "threading"):
                self._note("tamper", name)
                return
            for forbidden, owner, dotted in self.c_calls:
                if name == forbidden and (owner is None or getattr(arg, "__self__", None) is owner):
                    self._note("forbidden", dotted)

    def hint(self, exercise: str) -> str:
        if self.kind == "process":
            return PROCESS_HINT.format(name=self.hit)
        if self.kind == "reference":
            return CALLS_REFERENCE_HINT.format(name=self.hit)
        if self.kind == "tamper":
            return TAMPER_HINT
        return FORBIDDEN_CALL_HINT.format(name=self.hit, exercise=exercise)


class _Tripwire:
    """While active, the watched Python functions note every call, on whatever thread.

    A profile hook sees only the threads it is installed on (before Python 3.12, the
    current one and those started later); a thread that existed before the check would
    go unseen. So the watched functions themselves (the reference, the forbidden library
    functions) are given, for the duration of the call, a code object that notes the call
    in ``watch`` and runs the original; the original code is restored afterwards.
    """

    _GLOBAL = "__genphys_check_tripwire__"

    def __init__(self, watch: _CallWatch, functions: Mapping[Any, tuple[str, str]]) -> None:
        self.watch = watch
        self.functions = {
            f: label
            for f, label in functions.items()
            if isinstance(f, types.FunctionType) and f.__closure__ is None
        }
        self.originals: dict[Any, types.CodeType] = {}

    def __enter__(self) -> _Tripwire:
        for function, (kind, name) in self.functions.items():
            original = function.__code__
            clone = types.FunctionType(
                original, function.__globals__, function.__name__, function.__defaults__
            )
            clone.__kwdefaults__ = function.__kwdefaults__
            namespace = {}
            exec(
                f"def _wired(*args, **kwargs):\n"
                f"    return {self._GLOBAL}[{id(function)}](*args, **kwargs)\n",
                {},
                namespace,
            )
            calls = function.__globals__.setdefault(self._GLOBAL, {})

            def wired(*args, _clone=clone, _kind=kind, _name=name, **kwargs):
                if self.watch.active:
                    self.watch._note(_kind, _name)
                return _clone(*args, **kwargs)

            calls[id(function)] = wired
            self.originals[function] = original
            function.__code__ = namespace["_wired"].__code__
        return self

    def __exit__(self, *exc: object) -> None:
        for function, original in self.originals.items():
            function.__code__ = original
            calls = function.__globals__.get(self._GLOBAL, {})
            calls.pop(id(function), None)
            if not calls:
                function.__globals__.pop(self._GLOBAL, None)
        self.originals.clear()


class _TorchWatch(TorchFunctionMode):
    """Notes the first call of a torch function whose name contains a forbidden name."""

    def __init__(self, forbidden: Sequence[str]) -> None:
        super().__init__()
        self.forbidden = tuple(forbidden)
        self.hit: str | None = None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if self.hit is None and any(f in name for f in self.forbidden):
            self.hit = name
        return func(*args, **(kwargs or {}))


PROCESS_HINT = (
    "your function starts another process or changes signal handling (`{name}`): the check "
    "watches this process only, under its own time limit. Compute the result in your function."
)
# the ways Python starts a process: fork (os, posix, multiprocessing), spawn and exec
_SPAWNERS = (
    *(("os", n) for n in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system", "popen")),
    *(("os", n) for n in ("spawnv", "spawnve", "spawnvp", "spawnvpe", "execv", "execve")),
    *(("posix", n) for n in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system")),
    *(("posix", n) for n in ("execv", "execve")),
    ("_posixsubprocess", "fork_exec"),
    # and the timers a check's time limit relies on
    *(("signal", n) for n in ("setitimer", "alarm", "signal", "pthread_sigmask")),
)


@contextlib.contextmanager
def no_new_processes(on_spawn: Callable[[str], None]):
    """While active, every way of starting a process or of changing the process's timers and
    signal handlers calls ``on_spawn(name)`` and fails.

    A profile hook and the tripwire see only this process: a student's function that forks
    and computes its result in the child (with the reference or a refused library call)
    would go unseen. ``on_spawn`` notes the attempt (and may raise); the replaced function
    then raises ``RuntimeError``.
    """
    import importlib

    saved = []
    for module_name, name in _SPAWNERS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        original = getattr(module, name, None)
        if original is None:
            continue

        def refuse(*args, _name=f"{module_name}.{name}", **kwargs):
            on_spawn(_name)
            raise RuntimeError(f"starting another process ({_name}) is not allowed in a check")

        saved.append((module, name, original))
        setattr(module, name, refuse)
    try:
        yield
    finally:
        for module, name, original in saved:
            setattr(module, name, original)


def _run(
    student: Callable[..., Any],
    args: tuple,
    watch: _CallWatch | None,
    torch_watch: _TorchWatch | None = None,
    *,
    copy_args: bool = True,
) -> Any:
    """Call the student's function on (a copy of) ``args``, watching every thread.

    The watch is installed on this thread and, through ``threading.setprofile`` (on
    Python >= 3.12 ``threading.setprofile_all_threads``), on the threads the function
    starts; after the call it must still be installed, else the watch notes tampering.
    """
    if copy_args:
        args = copy.deepcopy(args)
    with torch_watch if torch_watch is not None else contextlib.nullcontext():
        if watch is None:
            return student(*args)
        previous = sys.getprofile()
        previous_threads = threading.getprofile()
        set_all = getattr(threading, "setprofile_all_threads", None)
        if set_all is not None:
            set_all(watch)
        else:
            threading.setprofile(watch)
        watch.active = True
        sys.setprofile(watch)
        try:
            with (
                _Tripwire(watch, watch.functions),
                no_new_processes(lambda name: watch._note("process", name)),
            ):
                return student(*args)
        finally:
            installed = sys.getprofile() is watch and threading.getprofile() is watch
            watch.active = False
            if set_all is not None:
                set_all(previous)
            threading.setprofile(previous_threads)
            sys.setprofile(previous)
            if not installed:
                watch._note("tamper", "setprofile")


# ------------------------------------------------------------ result checks
_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth")


def _leaves(value: Any) -> list[Any]:
    """The leaves of a result (tensors, arrays, numbers), in the order of ``_to_arrays``."""
    if isinstance(value, (tuple, list)) and not (
        len(value) > 0 and all(isinstance(v, (int, float)) for v in value)
    ):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def _is_integer(leaf: Any) -> bool:
    if isinstance(leaf, torch.Tensor):
        return not leaf.dtype.is_floating_point and not leaf.dtype.is_complex
    if isinstance(leaf, np.ndarray):
        return np.issubdtype(leaf.dtype, np.integer) or leaf.dtype == bool
    return isinstance(leaf, (int, np.integer))


def _type_problem(got: Any, want: Any) -> str | None:
    """What is wrong with the kind of result (not its values): tensor vs array, dtype."""
    got_leaves, want_leaves = _leaves(got), _leaves(want)
    if len(got_leaves) != len(want_leaves):
        return None  # the value comparison reports it
    for i, (g, w) in enumerate(zip(got_leaves, want_leaves, strict=True)):
        which = "" if len(want_leaves) == 1 else f"the {_ORDINALS[min(i, 5)]} result: "
        if (
            isinstance(w, torch.Tensor)
            and isinstance(g, torch.Tensor)
            and w.requires_grad
            and not g.requires_grad
        ):
            return (
                f"{which}your result carries no gradient, but the reference's does on these "
                "inputs: training differentiates through it. Do not `.detach()` it, compute it "
                "under `torch.no_grad()`, or go through NumPy or `.item()`."
            )
        if isinstance(w, torch.Tensor) and isinstance(g, (int, float, np.generic)):
            return (
                f"{which}your function returns a Python or NumPy number ({type(g).__name__}), "
                "but a torch tensor is asked. Keep the result a tensor: do not call `.item()` "
                "or `float()` on it."
            )
        if isinstance(w, torch.Tensor) and isinstance(g, np.ndarray):
            return (
                f"{which}your function returns a NumPy array, but a torch tensor is asked. "
                "Compute with torch operations on the tensors you are given."
            )
        if getattr(w, "dtype", None) in (torch.bool, np.dtype(bool)) and not _is_integer(g):
            return (
                f"{which}your result has type {getattr(g, 'dtype', type(g).__name__)}, but "
                "booleans are asked (a comparison such as `log_u < log_ratio` gives them)."
            )
        if _is_integer(w) and not _is_integer(g):
            return (
                f"{which}your result is not an integer (it has type "
                f"{getattr(g, 'dtype', type(g).__name__)}), but integers are asked: an index "
                "or a count must have an integer dtype (e.g. torch.long)."
            )
        if (
            isinstance(w, torch.Tensor)
            and isinstance(g, torch.Tensor)
            and w.dtype.is_floating_point
            and g.dtype != w.dtype
        ):
            return (
                f"{which}your result has dtype {g.dtype}, but {w.dtype} is expected (the dtype "
                "of the inputs). Do not convert with `.float()` or create tensors with the "
                "default dtype: pass `dtype=` or use `torch.zeros_like`-style constructors."
            )
    return None


def _tolerances(leaf: Any, want: np.ndarray, scale: float, rtol: float, atol: float):
    """The tolerances for one result: the exercise's, widened to the rounding of its dtype.

    A float32 result differs by a rounding step or two (eps = 1.2e-7 relative to the size
    ``scale`` of the terms summed) from the same formula evaluated in another order.
    """
    dtype = getattr(leaf, "dtype", None)
    if isinstance(dtype, torch.dtype) and dtype.is_floating_point:
        eps = torch.finfo(dtype).eps
    elif isinstance(dtype, np.dtype) and np.issubdtype(dtype, np.floating):
        eps = float(np.finfo(dtype).eps)
    else:
        return rtol, atol
    size = max(scale, float(np.max(np.abs(want), initial=0.0)) if np.isfinite(want).all() else 0)
    return max(rtol, 2 * eps), max(atol, 2 * eps * size)


def _changed(before: Any, after: Any, depth: int = 0) -> bool:
    """Whether ``after`` (an input after the call) differs from the untouched ``before``."""
    if depth > 4:
        return False
    if isinstance(before, torch.Tensor):
        if not isinstance(after, torch.Tensor) or before.shape != after.shape:
            return True
        if before.dtype != after.dtype:
            return True
        b, a = before.detach(), after.detach()
        if b.dtype.is_floating_point or b.dtype.is_complex:
            return not torch.equal(torch.nan_to_num(b), torch.nan_to_num(a)) or not torch.equal(
                torch.isnan(b), torch.isnan(a)
            )
        return not torch.equal(b, a)
    if isinstance(before, np.ndarray):
        if not isinstance(after, np.ndarray) or before.shape != after.shape:
            return True
        try:
            return not np.array_equal(before, after, equal_nan=True)
        except TypeError:
            return not np.array_equal(before, after)
    if isinstance(before, torch.Generator):
        return False
    if isinstance(before, torch.nn.Module):
        b, a = before.state_dict(), after.state_dict()
        return b.keys() != a.keys() or any(_changed(b[k], a[k], depth + 1) for k in b)
    if isinstance(before, (list, tuple)):
        return len(before) != len(after) or any(
            _changed(b, a, depth + 1) for b, a in zip(before, after, strict=True)
        )
    if isinstance(before, dict):
        return before.keys() != after.keys() or any(
            _changed(before[k], after[k], depth + 1) for k in before
        )
    if hasattr(before, "__dict__") and not isinstance(before, (type, types.ModuleType)):
        return _changed(vars(before), vars(after), depth + 1)
    return False


def _global_rng_state() -> tuple:
    return torch.random.get_rng_state(), np.random.get_state()  # noqa: NPY002 (watched)


def _global_rng_changed(state: tuple) -> bool:
    torch_state, numpy_state = state
    now_torch, now_numpy = _global_rng_state()
    return not torch.equal(torch_state, now_torch) or any(
        not np.array_equal(a, b) for a, b in zip(numpy_state[1:3], now_numpy[1:3], strict=True)
    )


def _set_global_rng_state(state: tuple) -> None:
    torch.random.set_rng_state(state[0])
    np.random.set_state(state[1])  # noqa: NPY002 (restored)


GLOBAL_RNG_HINT = (
    "your function draws from the global random number generator (`torch.randn(...)`, "
    "`torch.rand(...)` or `np.random` without `generator=`). Draw every random number "
    "from the `generator` argument, e.g. `torch.randn(shape, generator=generator)`, so "
    "that the same generator gives the same result."
)
DRAW_ORDER_HINT = (
    "the result has the right shape but other random values. Draw the random numbers "
    "from `generator` in the order the exercise states (each draw advances the generator: "
    "one extra or reordered draw, or a different shape per draw, changes everything after it)."
)


def _has_generator(args: Any) -> bool:
    if isinstance(args, torch.Generator):
        return True
    if isinstance(args, (list, tuple)):
        return any(_has_generator(a) for a in args)
    return False


def _close_to(got: list[np.ndarray], want: list[np.ndarray], rtol: float, atol: float) -> bool:
    with np.errstate(all="ignore"):
        return len(got) == len(want) and all(
            g.shape == w.shape and np.allclose(g, w, rtol=rtol, atol=atol)
            for g, w in zip(got, want, strict=True)
        )


def _diagnose(got: list[np.ndarray], want: list[np.ndarray], args: tuple, rtol, atol) -> str:
    """A specific hint from how the values differ: sign, factor 2, sum vs mean, offset."""
    tol = dict(rtol=max(rtol, 1e-6), atol=max(atol, 1e-9))
    if len(got) > 1:
        wrong = [
            i
            for i, (g, w) in enumerate(zip(got, want, strict=True))
            if not (g.shape == w.shape and np.allclose(g, w, **tol))
        ]
        if len(wrong) < len(got):
            names = ", ".join(_ORDINALS[min(i, 5)] for i in wrong)
            inner = _diagnose([got[wrong[0]]], [want[wrong[0]]], args, rtol, atol)
            verb = "is" if len(wrong) == 1 else "are"
            inner = inner.removeprefix("Hint: ")
            return (
                f"Hint: the {names} of the returned values {verb} wrong, the others are right. "
                f"{inner}"
            ).strip()
        return ""
    g, w = got[0], want[0]
    if g.shape != w.shape or not np.isfinite(g).all() or not np.isfinite(w).all():
        return ""
    if np.allclose(w, 0, atol=tol["atol"]):
        return ""
    if np.allclose(g, -w, **tol):
        return "Hint: the sign is flipped: your result is minus the expected one."
    for factor, text in ((2.0, "twice"), (0.5, "half")):
        if np.allclose(g, factor * w, **tol):
            return (
                f"Hint: your result is {text} the expected one: a factor 1/2 (or 2) is "
                "missing or extra, e.g. in ½|x|², ½ log σ², or a variance 2·step."
            )
    sizes = set()
    for arg in args:
        if isinstance(arg, (torch.Tensor, np.ndarray)):
            sizes.update(int(s) for s in arg.shape if s > 1)
    for n in sorted(sizes):
        if np.allclose(g, n * w, **tol):
            return (
                f"Hint: your result is {n} times the expected one: a sum where a mean is asked "
                f"(divide by the {n} terms)."
            )
        if np.allclose(g * n, w, **tol):
            return (
                f"Hint: your result is the expected one divided by {n}: a mean where a sum is "
                "asked."
            )
    if w.size > 1 and np.allclose(g - w, (g - w).flat[0], **tol):
        return (
            f"Hint: your result differs from the expected one by the same constant "
            f"{float((g - w).flat[0]):.4g} everywhere: a term that does not depend on the "
            "input (a normalising constant, a bias, log 2π) is missing or extra."
        )
    if w.size > 1 and np.allclose(np.sort(g.ravel()), np.sort(w.ravel()), **tol):
        return (
            "Hint: your result holds the right numbers in the wrong places: check the layout "
            "(rows vs columns, a transposed matrix, the order of the outputs)."
        )
    return ""


# ----------------------------------------------- mistakes made from the reference itself
class _OneEdit(ast.NodeTransformer):
    """Make one typical edit to a function's source: at the ``target``-th place it can."""

    def __init__(self, kind: str, target: int) -> None:
        self.kind, self.target, self.count = kind, target, 0
        self.what: str | None = None

    def _hit(self) -> bool:
        self.count += 1
        return self.count - 1 == self.target

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if self.kind == "sign" and isinstance(node.op, (ast.Add, ast.Sub)) and self._hit():
            self.what = (
                f"the term `{ast.unparse(node.right)}` enters with the wrong sign "
                f"({'+' if isinstance(node.op, ast.Sub) else '-'} instead of "
                f"{'-' if isinstance(node.op, ast.Sub) else '+'})"
            )
            node.op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
        elif self.kind == "missing term" and isinstance(node.op, (ast.Add, ast.Sub)):
            if self._hit():
                self.what = f"the term `{ast.unparse(node.right)}` is missing"
                return node.left
            if self._hit():
                self.what = f"the term `{ast.unparse(node.left)}` is missing"
                return (
                    ast.UnaryOp(ast.USub(), node.right)
                    if isinstance(node.op, ast.Sub)
                    else node.right
                )
        elif (
            self.kind == "off by one"
            and isinstance(node.op, (ast.Sub, ast.Add))
            and isinstance(node.left, ast.Name)
            and isinstance(node.right, ast.Constant)
            and node.right.value in (1, 2)
            and self._hit()
        ):
            self.what = (
                f"an index is off by one: `{ast.unparse(node)}` is meant (check where the "
                "count starts, 0 or 1, and which entry of a schedule belongs to this step)"
            )
            shift = 1 if isinstance(node.op, ast.Sub) else -1
            value = node.right.value - shift
            return node.left if value == 0 else ast.BinOp(node.left, node.op, ast.Constant(value))
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if self.kind == "sign" and isinstance(node.op, ast.USub) and self._hit():
            self.what = f"the minus sign of `{ast.unparse(node)}` is missing"
            return node.operand
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if (
            self.kind == "factor"
            and not isinstance(node.value, bool)
            and node.value in (0.5, 2, 2.0, 4, 4.0)
            and self._hit()
        ):
            self.what = (
                f"a factor {node.value} of the formula is missing (a ½ of a Gaussian exponent "
                "or of a log-variance, a 2 of a variance 2η, ...)"
            )
            return ast.Constant(1.0)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if self.kind == "mean or sum" and node.attr in ("mean", "sum") and self._hit():
            other = "sum" if node.attr == "mean" else "mean"
            self.what = f"a {other} where a {node.attr} is asked (over the axis of `{ast.unparse(node)}(...)`)"
            node.attr = other
        elif self.kind == "transpose" and node.attr in ("T", "mT") and self._hit():
            self.what = f"a matrix is used untransposed where `{ast.unparse(node)}` is meant"
            return node.value
        return node


_EDIT_KINDS = ("sign", "missing term", "factor", "mean or sum", "off by one", "transpose")


@functools.lru_cache(maxsize=256)
def _reference_edits(solution: Callable[..., Any]) -> tuple[tuple[str, Callable[..., Any]], ...]:
    """The reference with one typical edit each, and what the edit means, for the hints."""
    try:
        source = textwrap.dedent(inspect.getsource(solution))
        ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return ()
    edits = []
    for kind in _EDIT_KINDS:
        for target in range(8):
            edit = _OneEdit(kind, target)
            tree = edit.visit(ast.parse(source))
            if edit.count <= target or edit.what is None:
                break
            namespace = dict(getattr(solution, "__globals__", {}))
            try:
                exec(compile(ast.fix_missing_locations(tree), "<edit>", "exec"), namespace)
            except Exception:  # an edit that does not compile is no mistake anyone makes
                continue
            function = namespace.get(getattr(solution, "__name__", ""))
            if callable(function):
                edits.append((edit.what, function))
    return tuple(edits[:40])


@dataclass(frozen=True)
class _Stage:
    """One group of inputs: the seeded cases, fresh random ones, or adversarial ones."""

    kind: str  # "seeded", "random" or "stress"
    cases: Sequence[tuple]
    stresses: Sequence[Stress] = ()
    seed: int | None = None

    def label(self, number: int) -> str:
        if self.kind == "seeded":
            return f"test case {number}"
        if self.kind == "random":
            seed = "" if self.seed is None else f", seed {self.seed}"
            return f"fresh random case {number}{seed}"
        return f"stress case {number} ({self.stresses[number - 1].description})"


@dataclass(frozen=True)
class Exercise:
    """One exercise: its reference solution, test inputs and typical mistakes.

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
    random_cases : callable, optional
        ``random_cases(generator) -> list of argument tuples``, drawn afresh at every
        check (a new seed each time unless ``check`` is given one): a function that
        only reproduces the seeded cases fails here.
    stress_cases : callable, optional
        ``stress_cases() -> list of Stress``: adversarial inputs (values spread over
        hundreds of nats, extreme weights, large batches, edge sizes), checked last.
    forbidden : sequence of str
        Names of torch functions the student must not call, because the exercise is to
        write them (e.g. ``"logsumexp"``, which also forbids ``Tensor.logsumexp`` and
        ``torch.special.logsumexp``).
    forbidden_calls : sequence of str
        Dotted names of ready-made implementations of the thing asked (the library's own,
        NumPy's, SciPy's, torch's: ``"scipy.special.logsumexp"``,
        ``"numpy.logaddexp.reduce"``, ``"genphys.rbm.BernoulliRBM.free_energy"``), refused
        when the student's function calls them on any thread (strict checks only).
    prepare : callable, optional
        ``prepare(args)`` changes the arguments in place before each call, the student's
        and the reference's alike: e.g. fills ``.grad`` with garbage so that a training
        step without ``zero_grad()`` fails.
    result_check : callable, optional
        ``result_check(result, args) -> str | None``: a further demand on the result (no
        gradient history, ...), the hint when it is not met.
    check_inputs : bool
        Compare every input after the call with an untouched copy (default): a function
        that changes an argument the reference leaves alone is rejected with its name.
    check_types : bool
        Require the reference's kind of result: a tensor (not an array), its floating
        dtype, integers where integers are asked.
    """

    name: str
    solution: Callable[..., Any]
    cases: Callable[[], Sequence[tuple]]
    mistakes: Sequence[Mistake] = field(default_factory=tuple)
    rtol: float = 1e-7
    atol: float = 1e-9
    random_cases: Callable[[torch.Generator], Sequence[tuple]] | None = None
    stress_cases: Callable[[], Sequence[Stress]] | None = None
    forbidden: Sequence[str] = ()
    forbidden_calls: Sequence[str] = ()
    prepare: Callable[[tuple], None] | None = None
    result_check: Callable[[Any, tuple], str | None] | None = None
    check_inputs: bool = True
    check_types: bool = True
    #: the result is differentiated in training: its gradients with respect to the float
    #: inputs (and a module's parameters) must equal the reference's on the first case
    differentiable: bool = False

    def check(
        self,
        student: Callable[..., Any],
        *,
        strict: bool = False,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Feedback:
        """Run ``student`` on the seeded, fresh random and stress cases; compare with the reference.

        Parameters
        ----------
        student : callable
            The student's function, with the signature of the solution.
        strict : bool
            Also reject the reference solution itself, a function that calls it, and a
            student namespace (the globals of ``student``) holding reference solutions.
            The exercise pages check strictly; the library's tests pass the reference.
        seed, generator
            The source of the fresh random cases. With neither (the default) a new seed
            is drawn from the operating system at every check and named in the feedback.
        """

        def verdict(status: str, message: str) -> Feedback:
            return Feedback(self.name, status, message)

        if not callable(student):
            return verdict(
                "error",
                f"expected the function {self.name} itself, "
                f"got a {type(student).__name__}. Pass it without calling it.",
            )
        watch = None
        if strict:
            if _is_reference(student, self.solution):
                return verdict("incorrect", f"Hint: {REFERENCE_HINT}")
            codes = {_code(self.solution)} - {None}
            namespace = getattr(_unwrap(student), "__globals__", None)
            if isinstance(namespace, dict):
                names = _exercise_module_names(namespace, codes)
                if names:
                    listed = ", ".join(f"`{n}`" for n in names)
                    return verdict("incorrect", "Hint: " + NAMESPACE_HINT.format(names=listed))
            watch = _CallWatch(codes, self.forbidden_calls)
            watch.functions[_unwrap(self.solution)] = ("reference", self.name)

        stages = [_Stage("seeded", list(self.cases()))]
        if self.random_cases is not None:
            used_seed, g = _fresh_seed(seed, generator)
            stages.append(_Stage("random", list(self.random_cases(g)), seed=used_seed))
        if self.stress_cases is not None:
            stresses = list(self.stress_cases())
            stages.append(_Stage("stress", [s.args for s in stresses], stresses))

        for stage in stages:
            for number, args in enumerate(stage.cases, start=1):
                feedback = self._check_case(student, args, stage, number, watch)
                if feedback is not None:
                    return feedback
        if self.differentiable:
            problem = self._gradient_problem(student, stages[0].cases[0], watch)
            if problem is not None:
                return verdict("incorrect", f"Hint: {problem}")
        return verdict("passed", self._passed_message(stages))

    def _gradient_problem(self, student: Callable[..., Any], args: tuple, watch) -> str | None:
        """Compare the gradients of a fixed random projection of the result with the reference's."""

        # with a network among the inputs, training differentiates with respect to its
        # parameters only (not the data, the noise or the schedule); otherwise with respect
        # to every float input
        def is_network(v: Any) -> bool:  # a module, or a callable holding its weights
            return isinstance(v, torch.nn.Module) or (
                callable(v)
                and not isinstance(v, torch.Tensor)
                and any(isinstance(w, torch.Tensor) for w in getattr(v, "__dict__", {}).values())
            )

        has_module = any(is_network(v) for v in args)

        def with_grad(values: tuple) -> tuple[tuple, list[torch.Tensor]]:
            values = copy.deepcopy(values)
            leaves: list[torch.Tensor] = []
            out = []
            for v in values:
                if isinstance(v, torch.nn.Module):
                    leaves.extend(p for p in v.parameters() if p.dtype.is_floating_point)
                elif is_network(v):
                    for name, w in list(vars(v).items()):
                        if isinstance(w, torch.Tensor) and w.dtype.is_floating_point:
                            w = w.detach().clone().requires_grad_(True)
                            setattr(v, name, w)
                            leaves.append(w)
                elif not has_module and isinstance(v, torch.Tensor) and v.dtype.is_floating_point:
                    v = v.detach().clone().requires_grad_(True)
                    leaves.append(v)
                out.append(v)
            return tuple(out), leaves

        def projected(result: Any) -> torch.Tensor | None:
            parts = [leaf for leaf in _leaves(result) if isinstance(leaf, torch.Tensor)]
            if not parts or not all(p.requires_grad for p in parts):
                return None
            g = torch.Generator().manual_seed(0)
            return sum((p * torch.randn(p.shape, generator=g, dtype=p.dtype)).sum() for p in parts)

        ref_args, ref_leaves = with_grad(args)
        ref_loss = projected(self.solution(*ref_args))
        if ref_loss is None:
            return None
        ref_grads = torch.autograd.grad(ref_loss, ref_leaves, allow_unused=True)
        given, leaves = with_grad(args)
        try:
            loss = projected(_run(student, given, watch, copy_args=False))
        except Exception:  # the value checks already ran this case
            return None
        if loss is None:
            return (
                "your result carries no gradient: training differentiates through it. Do not "
                "`.detach()` it, compute it under `torch.no_grad()`, or go through NumPy or "
                "`.item()`."
            )
        grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        for want, got in zip(ref_grads, grads, strict=True):
            want = torch.zeros(()) if want is None else want
            got = torch.zeros(()) if got is None else got
            if not torch.allclose(got.double(), want.double(), rtol=1e-5, atol=1e-8):
                return (
                    "your values are right but their gradient is not: part of the result is "
                    "cut from the graph (`.detach()`, `torch.no_grad()`, NumPy) or computed "
                    "from a copy of an input."
                )
        return None

    def _passed_message(self, stages: Sequence[_Stage]) -> str:
        if len(stages) == 1:
            return "Your function agrees with the reference on every test case."
        counts = {"seeded": "fixed", "random": "fresh random", "stress": "stress"}
        parts = [f"{len(s.cases)} {counts[s.kind]}" for s in stages]
        return (
            "Your function agrees with the reference on every test case (" + ", ".join(parts) + ")."
        )

    def _parameter_names(self) -> list[str]:
        try:
            return list(inspect.signature(self.solution).parameters)
        except (TypeError, ValueError):
            return []

    def _check_case(
        self,
        student: Callable[..., Any],
        args: tuple,
        stage: _Stage,
        number: int,
        watch: _CallWatch | None,
    ) -> Feedback | None:
        """Feedback for the first failure on this case, or None when it agrees."""

        def verdict(status: str, message: str) -> Feedback:
            if stage.kind == "random":
                message = (
                    "It passes the fixed test cases but not a fresh random one. "
                    + message
                    + " "
                    + LOOKUP_HINT
                )
            elif stage.kind == "stress":
                extra = stage.stresses[number - 1].hint
                message = message + (f" {extra}" if extra else "")
            return Feedback(self.name, status, message)

        label = stage.label(number)
        torch_watch = _TorchWatch(self.forbidden) if self.forbidden else None
        given = copy.deepcopy(args)
        untouched = copy.deepcopy(args)
        if self.prepare is not None:
            self.prepare(given)
        rng = _global_rng_state()
        try:
            out = _run(student, given, watch, torch_watch, copy_args=False)
        except NotImplementedError:
            return Feedback(
                self.name,
                "not implemented",
                "Not implemented yet: replace `raise NotImplementedError` with your code "
                "and run the check again.",
            )
        except Exception as exc:  # the student's code may raise anything
            if watch is not None and watch.hit is not None:
                return Feedback(self.name, "incorrect", f"Hint: {watch.hint(self.name)}")
            message = f"On {label} your function raised {type(exc).__name__}: {exc}"
            if isinstance(exc, (RuntimeError, TypeError)) and re.search(
                r"dtype|Double|Float|Half|expected scalar type", str(exc)
            ):
                message += (
                    " Hint: tensors of different dtypes meet here (e.g. a float32 schedule or "
                    "constant with float64 data). Convert with `.to(x.dtype)` to the dtype of "
                    "the data, and create new tensors with `dtype=x.dtype`."
                )
            return verdict("error", message)
        finally:
            student_drew = _global_rng_changed(rng)
            _set_global_rng_state(rng)
        if watch is not None and watch.hit is not None:
            return Feedback(self.name, "incorrect", f"Hint: {watch.hint(self.name)}")
        if torch_watch is not None and torch_watch.hit is not None:
            hint = FORBIDDEN_HINT.format(name=torch_watch.hit, exercise=self.name)
            return Feedback(self.name, "incorrect", f"Hint: {hint}")
        if out is None:
            return verdict("incorrect", "Your function returned None: did you forget `return`?")
        names = self._parameter_names()
        reference_args = copy.deepcopy(untouched)
        if self.prepare is not None:
            self.prepare(reference_args)
        reference = self.solution(*reference_args)
        reference_drew = _global_rng_changed(rng)
        _set_global_rng_state(rng)
        if student_drew and not reference_drew:
            return verdict("incorrect", f"Hint: {GLOBAL_RNG_HINT}")
        for i, (before, after) in enumerate(zip(untouched, given, strict=True)):
            if (
                self.check_inputs
                and _changed(before, after)
                and not _changed(before, reference_args[i])
            ):
                what = f"`{names[i]}`" if i < len(names) else f"number {i + 1}"
                return verdict(
                    "incorrect",
                    f"Hint: your function changed its input {what} (on {label}). It must "
                    "leave its arguments as they were: work on a copy (`x.clone()`, "
                    "`x = x + ...` instead of `x += ...`) or build new tensors.",
                )
        if self.result_check is not None:
            problem = self.result_check(out, given)
            if problem is not None:
                return verdict("incorrect", f"Hint: {problem}")
        want = _to_arrays(reference)
        try:
            got = _to_arrays(out)
        except (TypeError, ValueError):
            return verdict(
                "incorrect",
                f"Your function returned a {type(out).__name__}, which is not a number, "
                "array or tensor.",
            )
        scale = 0.0
        tolerances = [
            _tolerances(leaf, w, scale, self.rtol, self.atol)
            for leaf, w in zip(_leaves(reference), want, strict=False)
        ]
        if len(got) == len(want) and all(
            g.shape == w.shape and np.allclose(g, w, rtol=r, atol=a)
            for g, w, (r, a) in zip(got, want, tolerances, strict=False)
        ):
            problem = _type_problem(out, reference) if self.check_types else None
            return None if problem is None else verdict("incorrect", f"Hint: on {label} {problem}")
        rtol = max(r for r, _ in tolerances) if tolerances else self.rtol
        atol = max(a for _, a in tolerances) if tolerances else self.atol
        for mistake in self.mistakes:
            with np.errstate(all="ignore"):
                wrong = _to_arrays(mistake.answer(*copy.deepcopy(untouched)))
            if _close_to(got, wrong, rtol, atol) and (
                stage.kind != "stress" or self._agrees_on_stress(student, mistake, stage)
            ):
                return Feedback(self.name, "incorrect", f"Hint: {mistake.hint}")
        problem = _type_problem(out, reference) if self.check_types else None
        if problem is not None:
            return verdict("incorrect", f"Hint: on {label} {problem}")
        shapes_got = [g.shape for g in got]
        shapes_want = [w.shape for w in want]
        if shapes_got != shapes_want:
            shape = lambda s: s[0] if len(s) == 1 else s
            layout = ""
            if len(got) == len(want) and all(
                g.shape == w.shape[::-1] for g, w in zip(got, want, strict=True)
            ):
                layout = (
                    " The axes are reversed: a transposed layout. Check which axis holds the "
                    "samples (rows) and which the features or time steps."
                )
            elif len(got) == len(want) and all(
                g.size == w.size for g, w in zip(got, want, strict=True)
            ):
                layout = " The number of values is right: check the layout (reshape, axes)."
            elif len(got) != len(want):
                layout = f" Your function returns {len(got)} values, {len(want)} are expected."
            return verdict(
                "incorrect",
                f"On {label} the result has shape {shape(shapes_got)}, "
                f"but shape {shape(shapes_want)} was expected.{layout}",
            )
        if not all(np.isfinite(g).all() for g in got) and all(np.isfinite(w).all() for w in want):
            return verdict(
                "incorrect",
                f"On {label} your result contains NaN or infinite values where "
                "the reference is finite. Look for exp overflowing, log of zero (0 · log 0 "
                "should count as 0) or a division by zero.",
            )
        with np.errstate(all="ignore"):
            error = max(
                float(np.max(np.abs(g - w), initial=0.0)) for g, w in zip(got, want, strict=True)
            )
        specific = self._off_by_one(got, untouched, names, rtol, atol)
        if not specific:
            specific = self._edited_reference(got, untouched, rtol, atol)
        if not specific:
            specific = _diagnose(got, want, untouched, rtol, atol)
        if not specific and _has_generator(untouched):
            again = copy.deepcopy(untouched)
            try:
                second = _to_arrays(student(*again))
            except Exception:  # the student's code may raise anything
                second = got
            _set_global_rng_state(rng)
            if not _close_to(second, got, 0.0, 0.0):
                specific = (
                    "Hint: your function gives different results for the same generator: "
                    + GLOBAL_RNG_HINT.split(": ", 1)[-1]
                )
            else:
                specific = f"Hint: {DRAW_ORDER_HINT}"
        message = f"On {label} the values differ from the reference by up to {error:.3g}."
        if specific:
            return verdict("incorrect", f"{message} {specific}")
        return verdict("incorrect", f"{message} Check the formula term by term.")

    def _edited_reference(self, got, args: tuple, rtol, atol) -> str:
        """A hint when the reference with one typical edit (a sign, a factor ½, ...) gives ``got``."""
        rng = _global_rng_state()
        try:
            for what, edited in _reference_edits(self.solution):
                try:
                    with np.errstate(all="ignore"), warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        wrong = _to_arrays(edited(*copy.deepcopy(args)))
                except Exception:  # the edit may break the function: not this mistake
                    continue
                if _close_to(got, wrong, rtol, atol):
                    return f"Hint: {what}."
        finally:
            _set_global_rng_state(rng)
        return ""

    def _off_by_one(self, got, args: tuple, names: list[str], rtol, atol) -> str:
        """A hint when the reference with one integer argument off by one gives ``got``."""
        for i, arg in enumerate(args):
            if isinstance(arg, bool) or not isinstance(arg, int):
                continue
            for shift in (-1, 1):
                shifted = list(copy.deepcopy(args))
                shifted[i] = arg + shift
                try:
                    with np.errstate(all="ignore"):
                        wrong = _to_arrays(self.solution(*shifted))
                except Exception:  # an index out of range: not this mistake
                    continue
                if _close_to(got, wrong, rtol, atol):
                    what = names[i] if i < len(names) else f"argument {i + 1}"
                    return (
                        f"Hint: off by one: your result is the right one for {what} = "
                        f"{arg + shift}, not {arg}. Check where the index starts (0 or 1) and "
                        f"whether a schedule's entry {what} - 1 or {what} is meant."
                    )
        return ""

    def _agrees_on_stress(
        self, student: Callable[..., Any], mistake: Mistake, stage: _Stage
    ) -> bool:
        """Whether ``student`` agrees with ``mistake`` on every stress case.

        Unstable formulas all return inf on some stress case; agreeing there says little,
        so a mistake's hint is given only when the two agree on all of them.
        """
        for args in stage.cases:
            try:
                with np.errstate(all="ignore"):
                    got = _to_arrays(student(*copy.deepcopy(args)))
                    wrong = _to_arrays(mistake.answer(*copy.deepcopy(args)))
            except Exception:  # the student's code may raise anything
                return False
            if not _close(got, wrong, self.rtol, self.atol):
                return False
        return True

    def stub(self) -> Callable[..., Any]:
        """A function that, like the student's starting point, is not implemented."""

        def stub(*args: Any) -> Any:
            raise NotImplementedError

        stub.__name__ = self.name
        return stub


# ------------------------------------------------------------------ questions
def _not_answered(name: str, what: str) -> Feedback:
    return Feedback(
        name,
        "not implemented",
        f"Not answered yet: replace `None` with {what} and run the check again.",
    )


@dataclass(frozen=True)
class Choice:
    """One answer of a :class:`MultipleChoice` question and why it is right or wrong."""

    text: str
    why: str
    correct: bool = False


@dataclass(frozen=True)
class MultipleChoice:
    """A concept question: choices labelled ``"a"``, ``"b"``, ..., exactly one correct.

    ``check(letter)`` explains the chosen answer: why it is right, or why it is wrong.
    """

    name: str
    question: str
    choices: Sequence[Choice]

    def __post_init__(self) -> None:
        n_correct = sum(c.correct for c in self.choices)
        if len(self.choices) < 2 or n_correct != 1:
            raise ValueError(
                "choices must be at least two Choice objects, exactly one correct. "
                f"Got {len(self.choices)} choices with {n_correct} correct instead."
            )

    @property
    def letters(self) -> list[str]:
        return [chr(ord("a") + i) for i in range(len(self.choices))]

    @property
    def answer(self) -> str:
        """The letter of the correct choice."""
        return next(k for k, c in zip(self.letters, self.choices, strict=True) if c.correct)

    def check(self, letter: Any) -> Feedback:
        """Feedback on the chosen ``letter``: passed with the reason, or the reason it is wrong."""
        if letter is None or letter is Ellipsis:
            return _not_answered(self.name, 'the letter of your choice, e.g. "a"')
        key = str(letter).strip().strip("()").lower()
        if key not in self.letters:
            return Feedback(
                self.name,
                "error",
                f"answer must be one of {', '.join(repr(k) for k in self.letters)}. "
                f"Got {letter!r} instead.",
            )
        choice = self.choices[self.letters.index(key)]
        if choice.correct:
            return Feedback(self.name, "passed", f"({key}) is right: {choice.why}")
        return Feedback(self.name, "incorrect", f"({key}) is not right: {choice.why}")

    def markdown(self) -> str:
        """The question and its choices as Markdown."""
        lines = [self.question, ""]
        lines += [f"- ({k}) {c.text}" for k, c in zip(self.letters, self.choices, strict=True)]
        return "\n".join(lines)

    def solution_markdown(self) -> str:
        """The correct letter and the reason for every choice, as Markdown."""
        lines = [f"**Answer: ({self.answer}).**", ""]
        lines += [
            f"- ({k}) {'right' if c.correct else 'wrong'}: {c.why}"
            for k, c in zip(self.letters, self.choices, strict=True)
        ]
        return "\n".join(lines)


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "exp": np.exp,
    "log": np.log,
    "log1p": np.log1p,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "tanh": np.tanh,
    "sigmoid": lambda z: 0.5 * (1.0 + np.tanh(0.5 * z)),
    "softplus": lambda z: np.logaddexp(0.0, z),
}
_CONSTANTS = {"pi": math.pi, "e": math.e}
_NODES = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.Pow,
    ast.USub,
    ast.UAdd,
)


def _compile_formula(text: str, variables: Sequence[str]) -> Callable[..., np.ndarray]:
    """Parse a formula such as ``"0.5*(s2 + m**2 - 1 - log(s2))"`` into a NumPy function.

    Only numbers, the given variables, ``pi``, ``e``, + - * / ** and the functions
    of ``_FUNCTIONS`` are allowed; anything else raises ``ValueError`` saying what.
    """
    try:
        tree = ast.parse(text.replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"the formula is not valid Python syntax ({exc.msg}).") from None
    allowed = set(variables) | set(_FUNCTIONS) | set(_CONSTANTS)
    for node in ast.walk(tree):
        if not isinstance(node, _NODES):
            raise ValueError(
                f"the formula may only use numbers, + - * / **, the variables and functions; "
                f"it contains a {type(node).__name__}."
            )
        if isinstance(node, ast.Name) and node.id not in allowed:
            raise ValueError(
                f"unknown name `{node.id}`. The formula may use the variables "
                f"{', '.join(variables)}, the constants pi and e, and the functions "
                f"{', '.join(_FUNCTIONS)}."
            )
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)):
            raise ValueError(f"the formula contains {node.value!r}, which is not a number.")
        if isinstance(node, ast.Call) and (
            node.keywords or not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS
        ):
            raise ValueError("only the listed functions can be called, with plain arguments.")
    code = compile(tree, "<formula>", "eval")

    def formula(**values: np.ndarray) -> np.ndarray:
        scope = {**_FUNCTIONS, **_CONSTANTS, **values}
        return eval(code, {"__builtins__": {}}, scope)  # the AST was checked above

    return formula


@dataclass(frozen=True)
class Expression:
    """A derivation whose result is a formula, compared with the reference at random points.

    Parameters
    ----------
    name : str
        The name of the answer variable on the exercise page.
    question : str
        What to derive, in Markdown.
    variables : mapping of str to (low, high)
        The symbols the formula may use and the interval each is drawn from.
    solution : str
        The reference formula, in the syntax the student uses (``**`` for powers).
    mistakes : sequence of Mistake
        Wrong formulas (strings) with their hints.
    explanation : str
        The derivation, shown in the solution.
    """

    name: str
    question: str
    variables: Mapping[str, tuple[float, float]]
    solution: str
    mistakes: Sequence[Mistake] = ()
    explanation: str = ""
    rtol: float = 1e-8
    atol: float = 1e-10

    def _evaluate(self, answer: Any, points: Mapping[str, np.ndarray]) -> np.ndarray:
        if isinstance(answer, str):
            function = _compile_formula(answer, list(self.variables))
        else:
            function = answer
        with np.errstate(all="ignore"):
            value = function(**points)
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        return np.broadcast_to(
            np.asarray(value, dtype=np.float64), next(iter(points.values())).shape
        )

    def points(self, generator: torch.Generator, n: int = 24) -> dict[str, np.ndarray]:
        """``n`` random points, each variable uniform on its interval."""
        u = torch.rand(len(self.variables), n, generator=generator, dtype=torch.float64).numpy()
        return {
            name: low + (high - low) * row
            for (name, (low, high)), row in zip(self.variables.items(), u, strict=True)
        }

    def check(
        self,
        answer: Any,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Feedback:
        """Compare the formula ``answer`` (a string, or a function of the variables) at random points."""
        name = self.name
        if answer is None or answer is Ellipsis or (isinstance(answer, str) and not answer.strip()):
            return _not_answered(name, "your formula as a string, e.g. " + '"exp(z)"')
        if not isinstance(answer, str) and not callable(answer):
            return Feedback(
                name,
                "error",
                f"answer must be a formula in a string (or a function of "
                f"{', '.join(self.variables)}). Got a {type(answer).__name__} instead.",
            )
        used_seed, g = _fresh_seed(seed, generator)
        points = self.points(g)
        want = self._evaluate(self.solution, points)
        try:
            got = self._evaluate(answer, points)
        except Exception as exc:  # a student's formula may fail in any way
            return Feedback(name, "error", f"Your formula could not be evaluated: {exc}")
        if np.allclose(got, want, rtol=self.rtol, atol=self.atol):
            return Feedback(
                name,
                "passed",
                f"Your formula agrees with the reference at {len(want)} random points.",
            )
        for mistake in self.mistakes:
            wrong = self._evaluate(mistake.answer, points)
            if np.allclose(got, wrong, rtol=self.rtol, atol=self.atol):
                return Feedback(name, "incorrect", f"Hint: {mistake.hint}")
        bad = int(np.argmax(~np.isclose(got, want, rtol=self.rtol, atol=self.atol)))
        where = ", ".join(f"{k} = {v[bad]:.4g}" for k, v in points.items())
        return Feedback(
            name,
            "incorrect",
            f"At {where} (random point, seed {used_seed}) your formula gives {got[bad]:.6g}, "
            f"but the result is {want[bad]:.6g}. Check the derivation step by step.",
        )

    def markdown(self) -> str:
        """The question, the variables and the syntax, as Markdown."""
        names = ", ".join(f"`{v}`" for v in self.variables)
        return (
            f"{self.question}\n\nWrite the result as a string of Python syntax in the "
            f"variables {names}; you may use `+ - * / **`, `pi`, `e` and "
            f"{', '.join(f'`{f}`' for f in _FUNCTIONS)}."
        )

    def solution_markdown(self) -> str:
        """The reference formula and its derivation, as Markdown."""
        return f"**Answer:** `{self.solution}`\n\n{self.explanation}".strip()


@dataclass(frozen=True)
class StatisticalExercise(Exercise):
    """An :class:`Exercise` whose answer, once it matches on the seeded cases, must also pass a
    statistical test with fresh randomness (so it cannot be fitted to the seeded cases).

    ``statistic(student, seed)`` returns ``None`` when the test passes, else the message.
    """

    statistic: Callable[[Callable, int], str | None] | None = None
    #: What a passed statistical test shows, appended to the passed message.
    claim: str = "samples the exact stationary variance with fresh randomness"

    def check(
        self,
        student: Callable,
        *,
        strict: bool = False,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Feedback:
        """The checks of :meth:`Exercise.check`, then the statistical test (same ``seed`` replays it)."""
        feedback = super().check(student, strict=strict, seed=seed, generator=generator)
        if not feedback.passed or self.statistic is None:
            return feedback
        if seed is None:  # fresh: not the seeded cases
            seed = secrets.randbits(62)
        try:
            problem = self.statistic(student, seed)
        except Exception as exc:  # the student's code may raise anything
            return Feedback(
                self.name, "error", f"In the statistical test your function raised {exc!r}."
            )
        if problem is not None:
            return Feedback(self.name, "incorrect", problem)
        return Feedback(
            self.name,
            "passed",
            feedback.message.rstrip(".") + f" and {self.claim}.",
        )


# ---------------------------------------------------------------------- goals
@dataclass(frozen=True)
class Goal:
    """A project's final step: run the student's pipeline once and judge its result.

    ``check(student)`` calls ``student(*arguments())`` (e.g. a training function on the
    bundled digits) and hands the result to ``judge``, which compares a number computed
    from it exactly (an exact log-likelihood, exact thermodynamic averages) with the
    stated target and returns ``(passed, message)``. The guards of a strict
    :meth:`Exercise.check` apply: the reference itself, a function that calls it and a
    namespace that holds it are rejected.

    Parameters
    ----------
    name : str
        The name of the function the student writes.
    solution : callable
        The reference pipeline; the book displays its source and runs it once.
    arguments : callable
        ``arguments() -> tuple``: what ``student`` is called with.
    judge : callable
        ``judge(result) -> (bool, str)``: whether the result reaches the goal, and why.
    """

    name: str
    solution: Callable[..., Any]
    arguments: Callable[[], tuple]
    judge: Callable[[Any], tuple[bool, str]]

    def _refuse_early(
        self, student: Callable[..., Any], strict: bool, reference_codes: set
    ) -> Feedback | None:
        """The verdict before any run: not a function; in strict mode, the reference itself,
        or a namespace holding reference solutions (``reference_codes``). None to go on."""
        if not callable(student):
            return Feedback(
                self.name,
                "error",
                f"expected the function {self.name} itself, "
                f"got a {type(student).__name__}. Pass it without calling it.",
            )
        if not strict:
            return None
        if _is_reference(student, self.solution):
            return Feedback(self.name, "incorrect", f"Hint: {REFERENCE_HINT}")
        namespace = getattr(_unwrap(student), "__globals__", None)
        if isinstance(namespace, dict):
            names = _exercise_module_names(namespace, reference_codes)
            if names:
                listed = ", ".join(f"`{n}`" for n in names)
                return Feedback(
                    self.name, "incorrect", "Hint: " + NAMESPACE_HINT.format(names=listed)
                )
        return None

    def check(
        self,
        student: Callable[..., Any],
        *,
        strict: bool = False,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Feedback:
        """Run ``student`` on :attr:`arguments` and judge its result (``seed`` is not used)."""
        codes = {_code(self.solution)} - {None}
        refused = self._refuse_early(student, strict, codes)
        if refused is not None:
            return refused
        watch = _CallWatch(codes) if strict else None
        try:
            result = _run(student, self.arguments(), watch)
        except NotImplementedError:
            return Feedback(
                self.name,
                "not implemented",
                "Not implemented yet: replace `raise NotImplementedError` with your code "
                "and run the check again.",
            )
        except Exception as exc:  # the student's code may raise anything
            return Feedback(self.name, "error", f"Your function raised {type(exc).__name__}: {exc}")
        if watch is not None and watch.hit is not None:
            hint = CALLS_REFERENCE_HINT.format(name=watch.hit)
            return Feedback(self.name, "incorrect", f"Hint: {hint}")
        if result is None:
            return Feedback(
                self.name, "incorrect", "Your function returned None: did you forget `return`?"
            )
        try:
            passed, message = self.judge(result)
        except Exception as exc:  # a result of the wrong kind
            return Feedback(
                self.name,
                "error",
                f"Your result could not be judged ({type(exc).__name__}: {exc}).",
            )
        return Feedback(self.name, "passed" if passed else "incorrect", message)

    def stub(self) -> Callable[..., Any]:
        """A function that, like the student's starting point, is not implemented."""

        def stub(*args: Any) -> Any:
            raise NotImplementedError

        stub.__name__ = self.name
        return stub


def draw_int(generator: torch.Generator, low: int, high: int) -> int:
    """One integer uniform on ``low, ..., high`` (inclusive), for random test cases."""
    return int(torch.randint(low, high + 1, (), generator=generator))


def draw_float(generator: torch.Generator, low: float, high: float) -> float:
    """One float uniform on ``[low, high)``, for random test cases."""
    return low + (high - low) * float(torch.rand((), generator=generator, dtype=torch.float64))


def garbage_gradients(args: tuple) -> None:
    """Fill the ``.grad`` of every parameter of the modules in ``args`` with a large constant.

    Used as an exercise's ``prepare``: a training step must start with
    ``optimizer.zero_grad()``, else the garbage is added to its gradient and the step fails.
    """
    for arg in args:
        if isinstance(arg, torch.nn.Module):
            for parameter in arg.parameters():
                parameter.grad = torch.full_like(parameter, 1e3)
