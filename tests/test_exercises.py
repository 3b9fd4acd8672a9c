"""Every exercise's checker accepts its solution, reports a stub and catches each mistake.

The exercises are discovered from ``genphys.exercises.all_exercises()``, so a new
chapter's ``EXERCISES`` list is tested without editing this file.
"""

from __future__ import annotations

import pytest

from genphys.exercises import Exercise, Feedback, Mistake, all_exercises

CASES = [(chapter, ex) for chapter, exercises in all_exercises().items() for ex in exercises]
IDS = [f"{chapter}-{ex.name}" for chapter, ex in CASES]
MISTAKES = [(chapter, ex, i) for chapter, ex in CASES for i in range(len(ex.mistakes))]
MISTAKE_IDS = [f"{chapter}-{ex.name}-mistake{i}" for chapter, ex, i in MISTAKES]


def test_every_chapter_with_exercises_has_at_least_two():
    for chapter, exercises in all_exercises().items():
        assert len(exercises) >= 2, chapter


@pytest.mark.parametrize(("chapter", "exercise"), CASES, ids=IDS)
def test_solution_passes(chapter, exercise):
    feedback = exercise.check(exercise.solution)
    assert feedback.passed, str(feedback)


@pytest.mark.parametrize(("chapter", "exercise"), CASES, ids=IDS)
def test_stub_is_reported_not_implemented(chapter, exercise):
    feedback = exercise.check(exercise.stub())
    assert feedback.status == "not implemented"
    assert "Not implemented yet" in feedback.message


@pytest.mark.parametrize(("chapter", "exercise"), CASES, ids=IDS)
def test_every_exercise_has_a_mistake(chapter, exercise):
    assert len(exercise.mistakes) >= 1


@pytest.mark.parametrize(("chapter", "exercise", "index"), MISTAKES, ids=MISTAKE_IDS)
def test_each_mistake_is_rejected_with_its_own_hint(chapter, exercise, index):
    mistake = exercise.mistakes[index]
    feedback = exercise.check(mistake.answer)
    assert feedback.status == "incorrect", str(feedback)
    assert feedback.message == f"Hint: {mistake.hint}", str(feedback)


@pytest.mark.parametrize(("chapter", "exercise"), CASES, ids=IDS)
def test_check_never_raises_on_broken_functions(chapter, exercise):
    def raises(*args):
        raise ZeroDivisionError("boom")

    def returns_none(*args):
        return None

    def returns_text(*args):
        return "not a number"

    assert exercise.check(raises).status == "error"
    assert "ZeroDivisionError: boom" in exercise.check(raises).message
    assert exercise.check(returns_none).status == "incorrect"
    assert "forget `return`" in exercise.check(returns_none).message
    assert exercise.check(returns_text).status == "incorrect"
    assert exercise.check(42).status == "error"


def _square_exercise():
    return Exercise(
        name="square",
        solution=lambda v: v**2,
        cases=lambda: [(2.0,), (3.0,)],
        mistakes=(Mistake(lambda v: 2 * v, "square, do not double."),),
    )


def test_unknown_wrong_answer_reports_the_discrepancy():
    feedback = _square_exercise().check(lambda v: v**2 + 0.5)
    assert feedback.status == "incorrect"
    assert "differ from the reference by up to 0.5" in feedback.message


def test_non_finite_answer_is_reported_as_such():
    feedback = _square_exercise().check(lambda v: float("nan"))
    assert feedback.status == "incorrect"
    assert "NaN or infinite" in feedback.message


def test_wrong_shape_is_reported():
    feedback = _square_exercise().check(lambda v: [v**2, v**2])
    assert feedback.status == "incorrect"
    assert "shape" in feedback.message


def test_mistake_that_agrees_on_some_cases_is_still_found():
    # 2v equals v**2 at v = 2 (the first case): the hint must come from the second case.
    feedback = _square_exercise().check(lambda v: 2 * v)
    assert feedback.message == "Hint: square, do not double."


def test_feedback_rendering_and_assert_passed():
    ok = Feedback("square", "passed", "fine")
    bad = Feedback("square", "incorrect", "Hint: <b>")
    assert ok.assert_passed() is ok
    with pytest.raises(AssertionError, match="square: incorrect"):
        bad.assert_passed()
    assert "&lt;b&gt;" in bad._repr_html_()
    assert str(ok).startswith("✅")
