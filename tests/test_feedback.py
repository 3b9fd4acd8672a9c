"""The checkers cannot be fooled: unstable formulas, lookup tables and the reference itself fail.

Each rejection is proved on a concrete wrong answer that passes the seeded cases alone,
and each must fail with its own message. The derivation questions (formulas compared at
random points, multiple choice) are tested here too.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import itertools
import math
import sys
import types

import numpy as np
import pytest
import torch

from genphys.exercises import (
    Checks,
    Choice,
    Exercise,
    Expression,
    Feedback,
    Mistake,
    MultipleChoice,
    Stress,
    all_exercises,
    all_questions,
    checks,
    show_solution,
)
from genphys.exercises._feedback import (
    CALLS_REFERENCE_HINT,
    LOOKUP_HINT,
    REFERENCE_HINT,
    TAMPER_HINT,
    _resolve,
    _to_arrays,
)

CASES = [(chapter, ex) for chapter, exercises in all_exercises().items() for ex in exercises]
IDS = [f"{chapter}-{ex.name}" for chapter, ex in CASES]
QUESTIONS = [(chapter, q) for chapter, questions in all_questions().items() for q in questions]
QUESTION_IDS = [f"{chapter}-{q.name}" for chapter, q in QUESTIONS]
EXPRESSION_MISTAKES = [
    (chapter, q, i)
    for chapter, q in QUESTIONS
    if isinstance(q, Expression)
    for i in range(len(q.mistakes))
]

# Chapters on the robust checkers: every one of their exercises must have fresh random
# and stress cases. A chapter added later joins this list once its exercises have them.
ROBUST_CHAPTERS = (
    "ch02",
    "ch03",
    "ch04",
    "ch05",
    "ch06",
    "ch07",
    "ch08",
    "ch09",
    "ch10",
    "ch11",
    "ch12",
    "ch13",
    "ch14",
    "ch15",
    "ch16",
    "ch17",
    "ch18",
    "project_ddpm",
    "project_ising_mc",
    "project_langevin",
    "project_rbm",
    "project_vae",
)


def _exercise(chapter: str, name: str) -> Exercise:
    return next(ex for ex in all_exercises()[chapter] if ex.name == name)


def _notebook(source: str) -> dict:
    """Run ``source`` in a fresh namespace, like the cells of an exercise notebook."""
    namespace: dict = {"torch": torch, "math": math}
    exec(source, namespace)
    return namespace


# ------------------------------------------------------- unstable formulas fail
CORRECT_LOGSUMEXP = """
def logsumexp(v):
    m = v.max()
    return m + torch.log(torch.exp(v - m).sum())
"""

CORRECT_IWAE = """
def iwae_bound(log_w):
    m = log_w.max(dim=0).values
    return m + torch.log(torch.exp(log_w - m).mean(dim=0))
"""


def test_correct_student_solutions_pass_strictly():
    for source, chapter, name in [
        (CORRECT_LOGSUMEXP, "ch02", "logsumexp"),
        (CORRECT_IWAE, "ch13", "iwae_bound"),
    ]:
        student = _notebook(source)[name]
        feedback = getattr(checks(chapter), name)(student)
        assert feedback.passed, str(feedback)
        assert "fresh random" in feedback.message and "stress" in feedback.message


def test_logsumexp_shifted_by_the_mean_fails_with_its_own_hint():
    student = _notebook(
        "def logsumexp(v):\n    m = v.mean()\n    return m + torch.log(torch.exp(v - m).sum())\n"
    )["logsumexp"]
    # it passes the seeded cases: only the stress cases reveal it
    exercise = _exercise("ch02", "logsumexp")
    seeded_only = Exercise(exercise.name, exercise.solution, exercise.cases)
    assert seeded_only.check(student).passed
    feedback = checks("ch02").logsumexp(student)
    assert feedback.status == "incorrect"
    assert "shifting by the mean" in feedback.message


def test_logsumexp_shifted_by_the_first_element_fails_with_its_own_hint():
    student = _notebook(
        "def logsumexp(v):\n    m = v[0]\n    return m + torch.log(torch.exp(v - m).sum())\n"
    )["logsumexp"]
    exercise = _exercise("ch02", "logsumexp")
    assert Exercise(exercise.name, exercise.solution, exercise.cases).check(student).passed
    feedback = checks("ch02").logsumexp(student)
    assert feedback.status == "incorrect"
    assert "shifting by the first value" in feedback.message


def test_iwae_shifted_by_a_global_maximum_fails_with_its_own_hint():
    student = _notebook(
        "def iwae_bound(log_w):\n"
        "    m = log_w.max()\n"
        "    return m + torch.log(torch.exp(log_w - m).mean(dim=0))\n"
    )["iwae_bound"]
    exercise = _exercise("ch13", "iwae_bound")
    assert Exercise(exercise.name, exercise.solution, exercise.cases).check(student).passed
    feedback = checks("ch13").iwae_bound(student)
    assert feedback.status == "incorrect"
    assert "one global maximum is not enough" in feedback.message


def test_an_unlisted_unstable_formula_is_told_what_the_stress_case_is():
    # shifting by the median is no listed mistake: the stress case names the problem
    student = _notebook(
        "def logsumexp(v):\n    m = v.median()\n    return m + torch.log(torch.exp(v - m).sum())\n"
    )["logsumexp"]
    feedback = checks("ch02").logsumexp(student)
    assert feedback.status == "incorrect"
    assert "stress case" in feedback.message and "nats" in feedback.message
    assert "Shift by the maximum" in feedback.message


# answers that pass every fixed case of chapters 10 and 14 and fail only a stress case
PASSES_FIXED_FAILS_STRESS = [
    (
        "ch10",
        "ula_step",
        "def ula_step(x, score, eta, g):\n"
        "    xi = torch.randn(x.shape, generator=g, dtype=torch.float64)\n"
        "    return x + eta * score(x) + math.sqrt(2 * eta) * xi\n",
        "dtype=x.dtype",
    ),
    (
        "ch10",
        "replay_starts",
        "def replay_starts(buffer, n, f, g):\n"
        "    index = torch.randint(buffer.shape[0], (n,), generator=g)\n"
        "    fresh = torch.rand(n, generator=g) < f\n"
        "    noise = 2 * torch.rand(n, buffer.shape[1], generator=g, dtype=torch.float64) - 1\n"
        "    return torch.where(fresh[:, None], noise, buffer[index])\n",
        "dtype=buffer.dtype",
    ),
    (
        "ch11",
        "kl_sparsity_penalty",
        "def kl_sparsity_penalty(h, rho):\n"
        "    rho_hat = h.mean(dim=0)\n"
        "    kl = rho * torch.log(rho / rho_hat)"
        " + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))\n"
        "    return kl.sum()\n",
        "log ρ - log ρ̂",
    ),
    (
        "ch14",
        "reverse_mean_from_eps",
        "def reverse_mean_from_eps(x_t, eps, t, betas):\n"
        "    ab = torch.cumprod(1 - betas, 0)[t - 1]\n"
        "    beta = betas[t - 1]\n"
        "    return (x_t - beta / torch.sqrt(1 - ab) * eps) / torch.sqrt(1 - beta)\n",
        "expm1",
    ),
    (
        "ch17",
        "independence_acceptance",
        "def independence_acceptance(energy, log_q, energy_proposed, log_q_proposed, beta):\n"
        "    w = torch.exp(-beta * energy) / torch.exp(log_q)\n"
        "    w_proposed = torch.exp(-beta * energy_proposed) / torch.exp(log_q_proposed)\n"
        "    return torch.clamp(w_proposed / w, max=1.0)\n",
        "log-weights",
    ),
]


@pytest.mark.parametrize(
    ("chapter", "name", "source", "hint"),
    PASSES_FIXED_FAILS_STRESS,
    ids=[f"{c}-{n}" for c, n, _, _ in PASSES_FIXED_FAILS_STRESS],
)
def test_careless_answers_of_the_later_chapters_fail_on_a_stress_case(chapter, name, source, hint):
    student = _notebook(source)[name]
    exercise = _exercise(chapter, name)
    seeded_only = Exercise(exercise.name, exercise.solution, exercise.cases)
    assert seeded_only.check(student).passed
    feedback = getattr(checks(chapter), name)(student)
    assert feedback.status == "incorrect"
    assert "stress case" in feedback.message and hint in feedback.message, str(feedback)


def test_stable_gan_losses_from_logsigmoid_pass_strictly():
    student = _notebook(
        "import torch.nn.functional as F\n"
        "def discriminator_loss(r, f):\n"
        "    return -F.logsigmoid(r).mean() - F.logsigmoid(-f).mean()\n"
        "def generator_loss_non_saturating(f):\n"
        "    return -F.logsigmoid(f).mean()\n"
    )
    for name in ("discriminator_loss", "generator_loss_non_saturating"):
        feedback = getattr(checks("ch16"), name)(student[name])
        assert feedback.passed, str(feedback)
        assert "fresh random" in feedback.message and "stress" in feedback.message


def test_the_statistical_ula_check_replays_with_its_seed():
    student = _notebook(
        "def ula_step(x, score, eta, g):\n"
        "    xi = torch.randn(x.shape, generator=g, dtype=x.dtype)\n"
        "    return x + eta * score(x) + math.sqrt(2 * eta) * xi\n"
    )["ula_step"]
    first = checks("ch10").ula_step(student, seed=7)
    assert first.passed and "stationary variance" in first.message
    assert checks("ch10").ula_step(student, seed=7) == first


# ---------------------------------------------- lookup tables and the reference
def _fingerprint(value) -> list:
    """An argument as float64 arrays, to compare inputs by value (what a lookup table does).

    Tensors and numbers as they are; an RBM by its parameters; a generator by its state; a
    callable object (a toy network) by its tensor attributes; a function by its name.
    """
    if isinstance(value, torch.Generator):
        return [value.get_state().numpy().astype("float64")]
    if hasattr(value, "W") and hasattr(value, "a"):
        return _to_arrays((value.W, value.a, value.b))
    if isinstance(value, torch.optim.Optimizer):  # by its kind and learning rates
        kind = np.frombuffer(type(value).__name__.encode(), dtype=np.uint8).astype("float64")
        return [kind, np.array([group["lr"] for group in value.param_groups])]
    if isinstance(value, torch.nn.Module):  # a network by its parameters
        return _to_arrays([p.detach().clone() for p in value.parameters()])
    if callable(value) and not isinstance(value, torch.Tensor):
        tensors = [v for _, v in sorted(vars(value).items()) if isinstance(v, torch.Tensor)]
        if tensors and not isinstance(value, type(_fingerprint)):
            return _to_arrays(tensors)
        name = getattr(value, "__qualname__", type(value).__qualname__)
        return [np.frombuffer(name.encode(), dtype=np.uint8).astype("float64")]
    return _to_arrays(value)


def _lookup_table(exercise: Exercise):
    """An answer that replays the reference outputs of the seeded cases, matched by value."""
    # fingerprints first: the reference consumes the generators among the arguments
    table = [
        ([_fingerprint(a) for a in args], exercise.solution(*args)) for args in exercise.cases()
    ]

    def same(got, want) -> bool:
        return len(got) == len(want) and all(
            g.shape == w.shape and (g == w).all() for g, w in zip(got, want, strict=True)
        )

    def lookup(*args):
        for stored, out in table:
            if all(same(_fingerprint(x), y) for x, y in zip(args, stored, strict=True)):
                return out
        raise KeyError("this input is not in my table")

    return lookup


def test_lookup_table_of_the_seeded_cases_passes_them_but_fails_with_its_own_hint():
    exercise = _exercise("ch02", "logsumexp")
    lookup = _lookup_table(exercise)
    assert Exercise(exercise.name, exercise.solution, exercise.cases).check(lookup).passed
    feedback = checks("ch02").logsumexp(lookup)
    assert not feedback.passed
    assert LOOKUP_HINT in feedback.message
    assert "passes the fixed test cases but not a fresh random one" in feedback.message


@pytest.mark.parametrize(("chapter", "exercise"), CASES, ids=IDS)
def test_every_robust_exercise_rejects_a_lookup_table(chapter, exercise):
    if exercise.random_cases is None:
        assert chapter not in ROBUST_CHAPTERS, f"{chapter}-{exercise.name} has no random cases"
        pytest.skip(f"{chapter}-{exercise.name} has no fresh random cases yet")
    feedback = exercise.check(_lookup_table(exercise), strict=True, seed=1)
    assert not feedback.passed
    assert LOOKUP_HINT in feedback.message, str(feedback)


def test_order_replaying_table_fails_too():
    # a table that returns the seeded outputs in the order the checker asks for them
    exercise = _exercise("ch13", "iwae_bound")
    outputs = [exercise.solution(*args) for args in exercise.cases()]
    counter = itertools.count()
    feedback = exercise.check(lambda log_w: outputs[min(next(counter), len(outputs) - 1)])
    assert not feedback.passed and LOOKUP_HINT in feedback.message


@pytest.mark.parametrize(("chapter", "exercise"), CASES, ids=IDS)
def test_the_reference_object_itself_is_rejected_with_its_own_hint(chapter, exercise):
    feedback = getattr(checks(chapter), exercise.name)(exercise.solution)
    assert feedback.status == "incorrect"
    assert feedback.message == f"Hint: {REFERENCE_HINT}"


@pytest.mark.parametrize(("chapter", "exercise"), CASES, ids=IDS)
def test_a_wrapper_that_calls_the_reference_is_rejected_with_its_own_hint(chapter, exercise):
    reference = exercise.solution

    def wrapper(*args):
        return reference(*args)

    feedback = getattr(checks(chapter), exercise.name)(wrapper)
    assert feedback.status == "incorrect"
    assert feedback.message == "Hint: " + CALLS_REFERENCE_HINT.format(name=reference.__name__)


def test_calling_torch_logsumexp_in_the_logsumexp_exercise_is_rejected():
    for source in (
        "def logsumexp(v):\n    return torch.logsumexp(v, dim=0)\n",
        "def logsumexp(v):\n    return v.logsumexp(0)\n",
        "def logsumexp(v):\n    return torch.special.logsumexp(v, 0)\n",
    ):
        feedback = checks("ch02").logsumexp(_notebook(source)["logsumexp"])
        assert feedback.status == "incorrect"
        assert "which is what this exercise asks you to write" in feedback.message
    # the IWAE exercise allows it
    assert (
        checks("ch13")
        .iwae_bound(
            _notebook("def iwae_bound(w):\n    return torch.logsumexp(w, 0) - math.log(len(w))\n")[
                "iwae_bound"
            ]
        )
        .passed
    )


def test_the_reference_inside_functools_partial_or_renamed_is_rejected():
    import functools

    exercise = _exercise("ch02", "logsumexp")
    for disguised in (functools.partial(exercise.solution),):
        assert checks("ch02").logsumexp(disguised).message == f"Hint: {REFERENCE_HINT}"


def test_a_notebook_that_imported_the_reference_solutions_is_rejected():
    for source in (
        "from genphys.exercises import ch02\n" + CORRECT_LOGSUMEXP,
        "from genphys.exercises.ch02 import logsumexp as reference\n" + CORRECT_LOGSUMEXP,
    ):
        student = _notebook(source)["logsumexp"]
        feedback = checks("ch02").logsumexp(student)
        assert feedback.status == "incorrect"
        assert "namespace" in feedback.message and "restart the kernel" in feedback.message
    # the checks object and the genphys package are allowed
    clean = _notebook(
        "import genphys\nchecks = genphys.exercises.checks('ch02')\n" + CORRECT_LOGSUMEXP
    )
    assert clean["checks"].logsumexp(clean["logsumexp"]).passed


def test_the_non_strict_check_still_accepts_the_reference():
    # the library's own tests (tests/test_exercises.py) pass the reference object
    for _, exercise in CASES:
        assert exercise.check(exercise.solution).passed


# --------------------------------------------------- fresh and adversarial cases
@pytest.mark.parametrize(("chapter", "exercise"), CASES, ids=IDS)
def test_robust_exercises_have_random_and_stress_cases(chapter, exercise):
    if chapter not in ROBUST_CHAPTERS:
        pytest.skip(f"{chapter} is not yet on the robust checkers")
    assert exercise.random_cases is not None and exercise.stress_cases is not None
    stresses = exercise.stress_cases()
    assert len(stresses) >= 1 and all(isinstance(s, Stress) and s.description for s in stresses)


@pytest.mark.parametrize(("chapter", "exercise"), CASES, ids=IDS)
def test_random_cases_are_reproducible_by_seed_and_fresh_otherwise(chapter, exercise):
    if exercise.random_cases is None:
        pytest.skip("no random cases")

    def arrays(seed):
        cases = exercise.random_cases(torch.Generator().manual_seed(seed))
        out = []
        for args in cases:
            for a in args:
                out += _fingerprint(a)
        return out

    same = [(x == y).all() for x, y in zip(arrays(3), arrays(3), strict=True)]
    assert all(same)
    other = arrays(4)
    first = arrays(3)
    assert len(first) != len(other) or any(
        x.shape != y.shape or not (x == y).all() for x, y in zip(first, other, strict=True)
    )


@pytest.mark.parametrize(("chapter", "exercise"), CASES, ids=IDS)
def test_the_reference_is_finite_on_every_stress_case(chapter, exercise):
    # "NaN or infinite where the reference is finite" needs a finite reference
    if exercise.stress_cases is None:
        pytest.skip("no stress cases")
    for stress in exercise.stress_cases():
        for value in _to_arrays(exercise.solution(*stress.args)):
            assert value.size == 0 or bool((value == value).all()), stress.description
            assert bool(abs(value).max(initial=0.0) < float("inf")), stress.description


def test_failure_on_a_random_case_names_the_seed_and_replays():
    exercise = _exercise("ch02", "energy")
    student = _lookup_table(exercise)
    first = exercise.check(student, seed=12345)
    again = exercise.check(student, seed=12345)
    assert "seed 12345" in first.message and first == again


def test_stress_hint_is_added_only_when_no_mistake_matches():
    exercise = Exercise(
        name="square",
        solution=lambda v: v**2,
        cases=lambda: [(torch.tensor([2.0]),)],
        mistakes=(Mistake(lambda v: 2 * v, "square, do not double."),),
        stress_cases=lambda: [Stress("a huge value", (torch.tensor([1e3]),), "Mind the size.")],
    )
    unknown = exercise.check(lambda v: v**2 + (v > 100).to(v.dtype))
    assert "stress case 1 (a huge value)" in unknown.message
    assert unknown.message.endswith("Mind the size.")
    assert exercise.check(lambda v: 2 * v).message == "Hint: square, do not double."


# --------------------------------------------------------- derivation questions
@pytest.mark.parametrize(("chapter", "question"), QUESTIONS, ids=QUESTION_IDS)
def test_question_solution_passes_and_none_is_not_answered(chapter, question):
    answer = question.answer if isinstance(question, MultipleChoice) else question.solution
    assert question.check(answer).passed
    assert getattr(checks(chapter), question.name)(answer).passed
    assert question.check(None).status == "not implemented"
    assert "Not answered yet" in question.check(None).message


@pytest.mark.parametrize(
    ("chapter", "question", "index"),
    EXPRESSION_MISTAKES,
    ids=[f"{c}-{q.name}-mistake{i}" for c, q, i in EXPRESSION_MISTAKES],
)
def test_each_wrong_formula_gets_its_own_hint(chapter, question, index):
    mistake = question.mistakes[index]
    feedback = question.check(mistake.answer)
    assert feedback.status == "incorrect"
    assert feedback.message == f"Hint: {mistake.hint}"


@pytest.mark.parametrize(("chapter", "question"), QUESTIONS, ids=QUESTION_IDS)
def test_every_wrong_choice_is_explained(chapter, question):
    if not isinstance(question, MultipleChoice):
        pytest.skip("not a multiple-choice question")
    for letter, choice in zip(question.letters, question.choices, strict=True):
        feedback = question.check(letter)
        assert feedback.passed == choice.correct
        assert choice.why in feedback.message


def test_formula_is_compared_at_random_points_not_by_its_text():
    question = Expression("q", "?", {"z": (-2.0, 2.0)}, "1 + exp(z)")
    assert question.check("exp(z) + 1").passed
    assert question.check("1 + e**z").passed
    assert question.check(lambda z: 1 + math.e**z).passed
    wrong = question.check("1 + exp(z) + 1e-3")
    assert wrong.status == "incorrect" and "random point, seed" in wrong.message


@pytest.mark.parametrize(
    "formula",
    ["__import__('os').system('true')", "z.real", "[z]", "open('x')", "exp(z, out=z)", "'a'"],
)
def test_formula_cannot_run_arbitrary_code(formula):
    question = Expression("q", "?", {"z": (-2.0, 2.0)}, "1 + exp(z)")
    feedback = question.check(formula)
    assert feedback.status == "error", str(feedback)


def test_formula_with_unknown_name_says_which_names_exist():
    feedback = Expression("q", "?", {"z": (-2.0, 2.0)}, "z").check("y + 1")
    assert feedback.status == "error" and "unknown name `y`" in feedback.message
    assert "variables z" in feedback.message


def test_multiple_choice_validates_its_input_and_its_definition():
    question = MultipleChoice(
        "mc", "?", (Choice("yes", "because", correct=True), Choice("no", "not so"))
    )
    assert question.check("(A)").passed
    bad = question.check("c")
    assert bad.status == "error" and "answer must be one of 'a', 'b'" in bad.message
    with pytest.raises(ValueError, match="exactly one correct"):
        MultipleChoice("mc", "?", (Choice("yes", "x"), Choice("no", "y")))


# ------------------------------------------------------------- the page helpers
def test_checks_object_lists_exercises_and_questions_but_no_solution():
    chapter_checks = checks("ch05")
    assert isinstance(chapter_checks, Checks)
    assert "metropolis_acceptance" in dir(chapter_checks) and "delta_e_bonds" in dir(chapter_checks)
    assert "Checks('ch05'" in repr(chapter_checks)
    assert chapter_checks.metropolis_acceptance is not _exercise("ch05", "metropolis_acceptance")
    with pytest.raises(AttributeError, match="name must be one of"):
        _ = chapter_checks.not_an_exercise
    with pytest.raises(ValueError, match="chapter must be one of"):
        checks("ch99")
    assert "(a)" in chapter_checks.ask("delta_e_bonds").data


@pytest.mark.parametrize(("chapter", "exercise"), CASES, ids=IDS)
def test_show_solution_displays_the_source_and_its_verdict(chapter, exercise):
    shown = show_solution(chapter, exercise.name).data
    assert f"def {exercise.solution.__name__}(" in shown and "passed" in shown


@pytest.mark.parametrize(("chapter", "question"), QUESTIONS, ids=QUESTION_IDS)
def test_show_solution_of_a_question_gives_the_answer(chapter, question):
    assert "**Answer" in show_solution(chapter, question.name).data


# ------------------------------------------------------------ project goals
def test_a_goal_runs_the_pipeline_judges_its_result_and_guards_the_reference():
    from genphys.exercises import Goal

    def reference(n):
        """Sum 0 + 1 + ... + (n - 1)."""
        return n * (n - 1) // 2

    goal = Goal(
        "total",
        reference,
        lambda: (10,),
        lambda result: (result == 45, f"got {result}, want 45"),
    )
    assert goal.check(lambda n: sum(range(n)), strict=True).passed
    wrong = goal.check(lambda n: sum(range(n + 1)), strict=True)
    assert wrong.status == "incorrect" and wrong.message == "got 55, want 45"
    assert goal.check(goal.stub()).status == "not implemented"
    assert goal.check(lambda n: None).message.startswith("Your function returned None")
    assert goal.check(lambda n: 1 / 0).status == "error"
    assert goal.check(reference, strict=True).message == f"Hint: {REFERENCE_HINT}"
    wrapper = goal.check(lambda n: reference(n), strict=True)
    assert wrapper.message == "Hint: " + CALLS_REFERENCE_HINT.format(name="reference")
    assert goal.check(reference).passed  # the library's own tests pass the reference


def test_project_pages_check_their_goals_through_the_checks_object():
    from genphys.exercises import all_goals

    goals = all_goals()
    assert {"project_rbm", "project_ising_mc"} <= set(goals)
    assert {"project_langevin", "project_vae", "project_ddpm"} <= set(goals)
    for chapter, items in goals.items():
        for goal in items:
            assert goal.name in dir(checks(chapter))
            assert getattr(checks(chapter), goal.name)(goal.stub()).status == "not implemented"


# ------------------------------------------------ shortcuts a graded course must stop
def _student_copy(function):
    """A correct answer that is not the reference object: its code with another docstring."""
    code = function.__code__
    consts = ("my own solution", *code.co_consts[1:])
    return types.FunctionType(code.replace(co_consts=consts), function.__globals__, "mine")


def _calls(dotted: str, student):
    """``student`` that also calls ``dotted`` (arguments bound, body free to raise)."""
    target = _resolve(dotted)
    target = target.fget if isinstance(target, property) else target
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):  # a C function: the call is seen before its arguments
        parameters = []
    required = [p for p in parameters if p.default is inspect.Parameter.empty]
    n_args = len([p for p in required if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])
    keywords = {p.name: None for p in required if p.kind == p.KEYWORD_ONLY}

    def answer(*args):
        try:
            target(*([None] * n_args), **keywords)
        except Exception:
            pass
        return student(*args)

    return answer


FORBIDDEN_CASES = [
    (chapter, exercise.name, dotted)
    for chapter, exercises in all_exercises().items()
    for exercise in exercises
    for dotted in exercise.forbidden_calls
]

# The ready-made implementations a determined student reached for (each must be refused).
SHORTCUTS = {
    ("ch02", "logsumexp", "scipy.special.logsumexp"),
    ("ch02", "logsumexp", "numpy.logaddexp.reduce"),
    ("ch02", "logsumexp", "torch.logcumsumexp"),
    ("ch02", "logsumexp", "torch.log_softmax"),
    ("ch02", "energy", "genphys.rbm.BernoulliRBM.energy"),
    ("ch03", "free_energy", "genphys.rbm.BernoulliRBM.free_energy"),
    ("ch04", "log_likelihood_gradient", "genphys.rbm.log_likelihood_gradient_exact"),
    ("ch09", "log_pseudo_likelihood", "genphys.pseudolikelihood.log_pseudo_likelihood"),
    ("ch09", "nce_loss", "genphys.nce.nce_loss"),
    ("ch09", "gaussian_score_matching", "genphys.score_matching.score_matching_loss"),
    ("ch14", "posterior_mean_variance", "genphys.diffusion.forward_posterior"),
    ("ch14", "reverse_mean_from_eps", "genphys.diffusion.reverse_mean"),
    ("ch16", "discriminator_loss", "genphys.gan.discriminator_loss"),
    ("ch16", "optimal_discriminator", "genphys.gan.optimal_discriminator"),
    ("ch16", "generator_loss_non_saturating", "genphys.gan.generator_loss_non_saturating"),
    ("ch18", "js_divergence_tables", "genphys.grid.js_divergence"),
    ("project_rbm", "gibbs_chain", "genphys.mcmc.gibbs_chain"),
    ("project_ddpm", "ddpm_sample", "genphys.diffusion_samplers.ddpm_sample"),
    ("project_langevin", "ula_step", "genphys.langevin.ula_step"),
    ("project_langevin", "mala_step", "genphys.langevin.mala_step"),
}


def test_every_shortcut_a_student_tried_is_on_its_exercise_list():
    assert SHORTCUTS <= set(FORBIDDEN_CASES)


@pytest.mark.parametrize(
    ("chapter", "name", "dotted"),
    FORBIDDEN_CASES,
    ids=[f"{c}-{n}-{d}" for c, n, d in FORBIDDEN_CASES],
)
def test_calling_a_ready_made_implementation_is_refused_and_named(chapter, name, dotted):
    exercise = _exercise(chapter, name)
    feedback = getattr(checks(chapter), name)(_calls(dotted, _student_copy(exercise.solution)))
    assert feedback.status == "incorrect", str(feedback)
    assert f"`{dotted}`" in feedback.message


LOGSUMEXP_SHORTCUTS = {
    "scipy.special.logsumexp": (
        "def logsumexp(v):\n"
        "    import scipy.special\n"
        "    return torch.as_tensor(scipy.special.logsumexp(v.numpy()))\n"
    ),
    "numpy.logaddexp.reduce": (
        "def logsumexp(v):\n    return torch.as_tensor(np.logaddexp.reduce(v.numpy()))\n"
    ),
    "torch.logcumsumexp": "def logsumexp(v):\n    return torch.logcumsumexp(v, 0)[-1]\n",
    "torch.log_softmax": "def logsumexp(v):\n    return v[0] - torch.log_softmax(v, 0)[0]\n",
}


@pytest.mark.parametrize("dotted", list(LOGSUMEXP_SHORTCUTS))
def test_logsumexp_through_numpy_scipy_or_torch_is_refused(dotted):
    namespace = _notebook("import numpy as np\n" + LOGSUMEXP_SHORTCUTS[dotted])
    feedback = checks("ch02").logsumexp(namespace["logsumexp"])
    assert feedback.status == "incorrect" and f"`{dotted}`" in feedback.message, str(feedback)


def test_lower_level_helpers_stay_allowed():
    from genphys.ising import jackknife
    from genphys.mcmc import effective_sample_size

    for chapter, name, helper in [
        ("project_ising_mc", "mean_and_error", effective_sample_size),
        ("project_ising_mc", "specific_heat_jackknife", jackknife),
        ("ch18", "jackknife_specific_heat", jackknife),
        ("ch16", "discriminator_loss", torch.nn.functional.binary_cross_entropy_with_logits),
    ]:
        solution = _student_copy(_exercise(chapter, name).solution)

        def student(*args, solution=solution, helper=helper):
            try:
                helper(torch.zeros(8, dtype=torch.float64), torch.zeros(8, dtype=torch.float64))
            except Exception:
                pass
            return solution(*args)

        feedback = getattr(checks(chapter), name)(student)
        assert feedback.passed, str(feedback)


def _hidden_reference():
    return _exercise("ch02", "logsumexp").solution


def test_reference_rebuilt_from_its_source_or_code_is_rejected():
    reference = _hidden_reference()
    namespace: dict = {"torch": torch}
    exec(inspect.getsource(reference), namespace)
    renamed = types.FunctionType(reference.__code__.replace(co_name="mine"), {"torch": torch})
    for student in (namespace["logsumexp"], renamed):
        feedback = checks("ch02").logsumexp(student)
        assert feedback.status == "incorrect" and REFERENCE_HINT in feedback.message


def test_reference_called_on_another_thread_is_caught():
    from concurrent.futures import ThreadPoolExecutor

    reference = _hidden_reference()

    def logsumexp(v):
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(reference, v).result()

    feedback = checks("ch02").logsumexp(logsumexp)
    assert feedback.status == "incorrect"
    assert CALLS_REFERENCE_HINT.format(name="logsumexp") in feedback.message


def test_switching_off_the_watch_is_caught():
    reference = _hidden_reference()

    def logsumexp(v):
        sys.setprofile(None)
        return reference(v)

    def logsumexp_restored(v):
        hook = sys.getprofile()
        sys.setprofile(None)
        result = reference(v)
        sys.setprofile(hook)
        return result

    for student in (logsumexp, logsumexp_restored):
        feedback = checks("ch02").logsumexp(student)
        assert feedback.status == "incorrect" and TAMPER_HINT in feedback.message, str(feedback)
    assert sys.getprofile() is None


def test_ex18_imports_only_the_checks():
    from pathlib import Path

    page = (Path(__file__).parents[1] / "exercises" / "ex18_capstone.md").read_text()
    assert "import ch18" not in page and "ch18.state_index" not in page
    assert 'checks = genphys.exercises.checks("ch18")' in page
    namespace = {"ch18": importlib.import_module("genphys.exercises.ch18")}
    exec("state_index = ch18.state_index", namespace)
    assert not checks("ch18").state_index(namespace["state_index"]).passed


def _mutating(function, index):
    """A correct answer that then changes its argument number ``index`` in place."""

    def answer(*args):
        result = function(*copy.deepcopy(args))
        target = args[index]
        if isinstance(target, torch.nn.Module):
            target = next(target.parameters())
        with torch.no_grad():
            if target.dtype == torch.bool:
                target.logical_not_()
            else:
                target.add_(1)
        return result

    return answer


MUTATIONS = [
    ("ch04", "gradient_ascent_step", 0, "rbm"),
    ("project_ising_mc", "metropolis_sweep", 0, None),
    ("ch05", "ising_delta_e", 0, None),
    ("ch08", "mean_field_sweep", 1, None),
    ("ch10", "replay_starts", 0, None),
    ("ch13", "reparameterize", 0, None),
    ("project_rbm", "gibbs_chain", 0, None),
]


@pytest.mark.parametrize(("chapter", "name", "index", "argument"), MUTATIONS)
def test_changing_an_input_in_place_is_rejected_with_its_name(chapter, name, index, argument):
    exercise = _exercise(chapter, name)
    argument = argument or list(inspect.signature(exercise.solution).parameters)[index]
    feedback = exercise.check(_mutating(exercise.solution, index))
    assert feedback.status == "incorrect", str(feedback)
    assert f"your function changed its input `{argument}`" in feedback.message


@pytest.mark.parametrize(
    ("chapter", "name", "wrap", "expected"),
    [
        ("ch02", "energy", lambda r: r.float(), "dtype torch.float32"),
        ("ch02", "logsumexp", lambda r: r.float(), "dtype torch.float32"),
        ("ch05", "metropolis_acceptance", lambda r: r.float(), "dtype torch.float32"),
        ("ch02", "energy", lambda r: r.numpy(), "NumPy array"),
        ("ch18", "state_index", lambda r: r.double(), "integers are asked"),
    ],
)
def test_results_of_the_wrong_kind_are_rejected(chapter, name, wrap, expected):
    solution = _student_copy(_exercise(chapter, name).solution)
    feedback = getattr(checks(chapter), name)(lambda *args: wrap(solution(*args)))
    assert feedback.status == "incorrect" and expected in feedback.message, str(feedback)


def _without_line(chapter: str, name: str, line: str):
    """The reference's source without ``line``, compiled in its module (a student's edit)."""
    module = importlib.import_module(f"genphys.exercises.{chapter}")
    source = inspect.getsource(getattr(module, name))
    assert line in source
    namespace = dict(vars(module))
    exec(source.replace(line, ""), namespace)
    return namespace[name]


@pytest.mark.parametrize("chapter", ["project_ddpm", "project_vae"])
def test_a_training_step_without_zero_grad_fails(chapter):
    student = _without_line(chapter, "training_step", "    optimizer.zero_grad()\n")
    feedback = _exercise(chapter, "training_step").check(student)
    assert feedback.status == "incorrect", str(feedback)


def test_ula_step_with_gradient_history_fails():
    solution = _student_copy(_exercise("project_langevin", "ula_step").solution)

    def ula_step(x, log_prob, step_size, generator):
        return solution(x, log_prob, step_size, generator) + 0 * x.requires_grad_(True).sum()

    feedback = _exercise("project_langevin", "ula_step").check(ula_step, seed=0)
    assert feedback.status == "incorrect" and "gradient history" in feedback.message


def test_correct_answers_of_the_questions_are_not_all_a():
    answers = {q.answer for _, q in QUESTIONS if isinstance(q, MultipleChoice)}
    assert len(answers) > 1


ULA_REORDERED = [
    "def ula_step(x, grad_log_prob, step_size, generator):\n"
    "    xi = torch.randn(x.shape, generator=generator, dtype=x.dtype)\n"
    "    return x + (step_size * grad_log_prob(x) + math.sqrt(2 * step_size) * xi)\n",
    "def ula_step(x, grad_log_prob, step_size, generator):\n"
    "    xi = torch.randn(x.shape, generator=generator, dtype=x.dtype)\n"
    "    return math.sqrt(2 * step_size) * xi + x + step_size * grad_log_prob(x)\n",
    "def ula_step(x, grad_log_prob, step_size, generator):\n"
    "    xi = torch.randn(x.shape, generator=generator, dtype=x.dtype)\n"
    "    x = x.clone()\n"
    "    x += step_size * grad_log_prob(x) + math.sqrt(2 * step_size) * xi\n"
    "    return x\n",
]


@pytest.mark.parametrize("source", ULA_REORDERED)
def test_ula_step_in_another_order_passes_in_float32(source):
    feedback = checks("ch10").ula_step(_notebook(source)["ula_step"])
    assert feedback.passed, str(feedback)


def test_global_rng_is_named_in_the_feedback():
    def gibbs_chain(x0, W, a, b, k, generator):
        x = x0
        for _ in range(k):
            h = torch.bernoulli(torch.sigmoid(x @ W + b))
            x = torch.bernoulli(torch.sigmoid(h @ W.T + a))
        return x

    state = torch.random.get_rng_state()
    feedback = _exercise("project_rbm", "gibbs_chain").check(gibbs_chain)
    assert feedback.status == "incorrect" and "generator" in feedback.message
    assert "global random number generator" in feedback.message
    assert torch.equal(state, torch.random.get_rng_state())


def test_generic_hints_name_the_typical_mistake():
    exercise = Exercise(
        name="mean_square",
        solution=lambda x: (x**2).mean(0),
        cases=lambda: [(torch.arange(1.0, 13.0, dtype=torch.float64).reshape(4, 3),)],
    )
    for wrong, words in [
        (lambda x: -(x**2).mean(0), "sign"),
        (lambda x: 0.5 * (x**2).mean(0), "half"),
        (lambda x: (x**2).sum(0), "sum where a mean"),
        (lambda x: (x**2).mean(0) + 1, "constant"),
        (lambda x: (x**2).mean(0).flip(0), "wrong places"),
    ]:
        feedback = exercise.check(wrong)
        assert feedback.status == "incorrect" and words in feedback.message, str(feedback)


def test_mala_without_acceptance_test_is_told_so():
    ula = _student_copy(_exercise("project_langevin", "ula_step").solution)

    def mala_step(x, log_prob, step_size, generator):
        x_new = ula(x, log_prob, step_size, generator)
        return x_new, torch.ones(x.shape[0], dtype=torch.bool)

    feedback = _exercise("project_langevin", "mala_step").check(mala_step, seed=0)
    assert feedback.status == "incorrect" and "accept/reject test is missing" in feedback.message


def test_mean_and_error_with_the_wrong_layout_is_told_about_the_layout():
    from genphys.mcmc import effective_sample_size

    def mean_and_error(series):
        n_eff = effective_sample_size(series.T)  # steps first: the wrong layout
        return series.mean(), torch.sqrt(series.var() / n_eff)

    feedback = _exercise("project_ising_mc", "mean_and_error").check(mean_and_error)
    assert feedback.status == "incorrect" and "(n_chains, n_steps)" in feedback.message


def test_reinforce_with_the_leave_one_out_sum_passes():
    source = (
        "def reinforce_gradient(f, score):\n"
        "    n = f.shape[0]\n"
        "    b = (f.sum() - f) / (n - 1)\n"
        "    return ((f - b)[:, None] * score).mean(0)\n"
    )
    feedback = checks("ch17").reinforce_gradient(_notebook(source)["reinforce_gradient"])
    assert feedback.passed, str(feedback)


def test_a_transposed_result_is_told_about_the_layout():
    exercise = Exercise(
        name="outer",
        solution=lambda x, y: x[:, None] * y[None, :],
        cases=lambda: [(torch.arange(3.0), torch.arange(4.0))],
    )
    feedback = exercise.check(lambda x, y: y[:, None] * x[None, :])
    assert feedback.status == "incorrect" and "transposed layout" in feedback.message


def test_the_edited_reference_names_the_wrong_term():
    def energy(x, h, W, a, b):
        return -(x @ a) + (h @ b) - ((x @ W) * h).sum(dim=1)

    feedback = _exercise("ch02", "energy").check(energy)
    assert feedback.status == "incorrect" and "`h @ b`" in feedback.message, str(feedback)


def test_feedback_html_renders_code_spans():
    html_text = Feedback("x", "incorrect", "call `x.clone()` first")._repr_html_()
    assert "<code>x.clone()</code>" in html_text and "`" not in html_text


def test_the_ising_bond_question_reads_the_same_in_every_renderer():
    """No ASCII math, no HTML-like `Σ_<kl>`, no TeX that a plain Markdown output would leave
    raw, and no character the PDF's fonts lack (such as the subscript k)."""
    question = next(q for c, q in QUESTIONS if q.name == "delta_e_bonds")
    text = question.markdown() + question.solution_markdown()
    assert "Σ_<" not in text and "s_ij" not in text and "$" not in text and "ₖ" not in text
    assert "L × L" in text and "`" not in question.solution_markdown()


def test_a_dtype_clash_is_explained():
    def training_step(model, optimizer, x0, t, eps, betas):
        ab = torch.cumprod(1 - betas, 0)[t - 1].float()[:, None]
        x_t = torch.sqrt(ab) * x0.float() + torch.sqrt(1 - ab) * eps.float()
        loss = ((eps - model(x_t, t)) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.detach(), torch.nn.utils.parameters_to_vector(model.parameters()).detach()

    feedback = _exercise("project_ddpm", "training_step").check(training_step)
    assert feedback.status == "error" and "`.to(x.dtype)`" in feedback.message, str(feedback)


def test_reference_called_on_a_thread_started_before_the_check_is_caught():
    from concurrent.futures import ThreadPoolExecutor

    reference = _hidden_reference()
    pool = ThreadPoolExecutor(1)
    pool.submit(lambda: None).result()  # the worker thread exists before the check starts

    def logsumexp(v):
        return pool.submit(reference, v).result()

    try:
        feedback = checks("ch02").logsumexp(logsumexp)
    finally:
        pool.shutdown()
    assert feedback.status == "incorrect"
    assert CALLS_REFERENCE_HINT.format(name="logsumexp") in feedback.message
    assert reference.__code__.co_name == "logsumexp"  # the original code is back
    assert _exercise("ch02", "logsumexp").check(reference).passed


def test_a_forbidden_library_function_on_an_old_thread_is_caught():
    from concurrent.futures import ThreadPoolExecutor

    from genphys import gan

    pool = ThreadPoolExecutor(1)
    pool.submit(lambda: None).result()

    def discriminator_loss(real_logits, fake_logits):
        return pool.submit(gan.discriminator_loss, real_logits, fake_logits).result()

    try:
        feedback = checks("ch16").discriminator_loss(discriminator_loss)
    finally:
        pool.shutdown()
    assert feedback.status == "incorrect" and "`genphys.gan.discriminator_loss`" in feedback.message


# ------------------------------------------------ shortcuts found by a determined student
def _in_fork(f):
    """Run ``f`` in a forked child and return its result: unseen by an in-process watch."""
    import os
    import pickle

    def g(*args):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            os.write(write, pickle.dumps(f(*args)))
            os._exit(0)
        os.close(write)
        data = b""
        while chunk := os.read(read, 1 << 20):
            data += chunk
        os.waitpid(pid, 0)
        return pickle.loads(data)

    return g


def test_work_done_in_another_process_is_refused():
    from genphys.rbm import BernoulliRBM

    c = checks("ch02")
    library = _in_fork(lambda x, h, W, a, b: BernoulliRBM.from_parameters(W, a, b).energy(x, h))
    feedback = c.energy(library)
    assert feedback.status == "incorrect" and "another process" in feedback.message
    # and the process functions are given back after the check
    import os

    assert os.fork.__name__ == "fork"


def test_a_result_without_its_gradient_is_refused():
    c = checks("ch13")
    detached = c.reparameterize(lambda m, l, e: (m + torch.exp(0.5 * l) * e).detach())
    assert detached.status == "incorrect" and "no gradient" in detached.message
    assert c.reparameterize(lambda m, l, e: m + torch.exp(0.5 * l) * e).passed
    half = checks("ch10").contrastive_loss(
        lambda er, ef, al: (
            er.mean() - ef.detach().mean() + al * (er.pow(2).mean() + ef.detach().pow(2).mean())
        )
    )
    assert half.status == "incorrect" and "gradient is not" in half.message


def test_a_python_number_where_a_tensor_is_asked_is_refused():
    def logsumexp(v):
        m = v.max()
        return float(m + torch.log(torch.exp(v - m).sum()))

    feedback = checks("ch02").logsumexp(logsumexp)
    assert feedback.status == "incorrect" and "torch tensor is asked" in feedback.message


def test_more_library_equivalents_of_logsumexp_are_refused():
    import torch.nn.functional as F

    c = checks("ch02")
    for shortcut in (
        lambda v: v[0] - torch.special.log_softmax(v, 0)[0],
        lambda v: F.cross_entropy(v[None], torch.tensor([0])) + v[0],
    ):
        assert c.logsumexp(shortcut).status == "incorrect"
