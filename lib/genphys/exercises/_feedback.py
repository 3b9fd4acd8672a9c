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
reference solution itself, a function that calls it, and a notebook that has the
reference solutions in its namespace; an exercise can also name torch functions
(``forbidden``) that the student is asked to write rather than call.

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
import functools
import html
import math
import secrets
import sys
import types
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
NAMESPACE_HINT = (
    "your notebook has the reference solutions in its namespace ({names}). Import only the "
    'checks, `checks = genphys.exercises.checks("chNN")`, restart the kernel and solve the '
    "exercise yourself."
)


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


def _is_reference(student: Any, solution: Callable[..., Any]) -> bool:
    """Whether ``student`` is the reference (the object, a wrapper of it, or its code)."""
    inner = _unwrap(student)
    code = _code(solution)
    return inner is solution or (code is not None and _code(inner) is code)


def _exercise_module_names(namespace: Mapping[str, Any], codes: set) -> list[str]:
    """Names in a notebook namespace bound to an exercise module or a reference solution."""
    found = []
    for name, value in list(namespace.items()):
        if name.startswith("_"):
            continue
        if isinstance(value, types.ModuleType):
            if value.__name__.startswith((f"{__package__}.ch", f"{__package__}.project_")):
                found.append(name)
        elif callable(value) and _code(value) in codes:
            found.append(name)
    return found


class _CallWatch:
    """A profile function that notes a call of any of the given code objects."""

    def __init__(self, codes: set) -> None:
        self.codes = codes
        self.hit: str | None = None

    def __call__(self, frame: types.FrameType, event: str, arg: Any) -> None:
        if event == "call" and self.hit is None and frame.f_code in self.codes:
            self.hit = frame.f_code.co_name


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


def _run(
    student: Callable[..., Any],
    args: tuple,
    watch: _CallWatch | None,
    torch_watch: _TorchWatch | None = None,
) -> Any:
    """Call the student's function on a copy of ``args``, watching for reference calls."""
    args = copy.deepcopy(args)
    with torch_watch if torch_watch is not None else contextlib.nullcontext():
        if watch is None:
            return student(*args)
        previous = sys.getprofile()
        sys.setprofile(watch)
        try:
            return student(*args)
        finally:
            sys.setprofile(previous)


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
            watch = _CallWatch(codes)

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
        return verdict("passed", self._passed_message(stages))

    def _passed_message(self, stages: Sequence[_Stage]) -> str:
        if len(stages) == 1:
            return "Your function agrees with the reference on every test case."
        counts = {"seeded": "fixed", "random": "fresh random", "stress": "stress"}
        parts = [f"{len(s.cases)} {counts[s.kind]}" for s in stages]
        return (
            "Your function agrees with the reference on every test case (" + ", ".join(parts) + ")."
        )

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
        try:
            out = _run(student, args, watch, torch_watch)
        except NotImplementedError:
            return Feedback(
                self.name,
                "not implemented",
                "Not implemented yet: replace `raise NotImplementedError` with your code "
                "and run the check again.",
            )
        except Exception as exc:  # the student's code may raise anything
            return verdict("error", f"On {label} your function raised {type(exc).__name__}: {exc}")
        if torch_watch is not None and torch_watch.hit is not None:
            hint = FORBIDDEN_HINT.format(name=torch_watch.hit, exercise=self.name)
            return Feedback(self.name, "incorrect", f"Hint: {hint}")
        if watch is not None and watch.hit is not None:
            hint = CALLS_REFERENCE_HINT.format(name=watch.hit)
            return Feedback(self.name, "incorrect", f"Hint: {hint}")
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
            return None
        for mistake in self.mistakes:
            with np.errstate(all="ignore"):
                wrong = _to_arrays(mistake.answer(*copy.deepcopy(args)))
            if _close(got, wrong, self.rtol, self.atol) and (
                stage.kind != "stress" or self._agrees_on_stress(student, mistake, stage)
            ):
                return Feedback(self.name, "incorrect", f"Hint: {mistake.hint}")
        shapes_got = [g.shape for g in got]
        shapes_want = [w.shape for w in want]
        if shapes_got != shapes_want:
            shape = lambda s: s[0] if len(s) == 1 else s
            return verdict(
                "incorrect",
                f"On {label} the result has shape {shape(shapes_got)}, "
                f"but shape {shape(shapes_want)} was expected.",
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
        return verdict(
            "incorrect",
            f"On {label} the values differ from the reference by up to {error:.3g}. "
            "Check the formula term by term.",
        )

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

    def check(
        self,
        student: Callable[..., Any],
        *,
        strict: bool = False,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Feedback:
        """Run ``student`` on :attr:`arguments` and judge its result (``seed`` is not used)."""
        if not callable(student):
            return Feedback(
                self.name,
                "error",
                f"expected the function {self.name} itself, "
                f"got a {type(student).__name__}. Pass it without calling it.",
            )
        watch = None
        if strict:
            if _is_reference(student, self.solution):
                return Feedback(self.name, "incorrect", f"Hint: {REFERENCE_HINT}")
            codes = {_code(self.solution)} - {None}
            namespace = getattr(_unwrap(student), "__globals__", None)
            if isinstance(namespace, dict):
                names = _exercise_module_names(namespace, codes)
                if names:
                    listed = ", ".join(f"`{n}`" for n in names)
                    return Feedback(
                        self.name, "incorrect", "Hint: " + NAMESPACE_HINT.format(names=listed)
                    )
            watch = _CallWatch(codes)
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
