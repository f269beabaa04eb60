"""Lesson 13's exercise checks (utils/checks/practice.py): right answers written from the formulas pass, the
blank answer and every named mistake that a check holds fail it, each with its own diagnosis, and the course's
own functions are refused. (tests/wrong_answers/lesson13.py adds wrong answers written the way a learner would,
run by tests/test_check_mistakes.py.)"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from utils import calibration, costs, quantization, weat
from utils.checks import CheckFailed, practice


def training_days(n_params, tokens, devices, peak_flops, mfu):
    return 6 * n_params * tokens / (devices * peak_flops * mfu) / 86_400


def kv_cache_bytes(n_layer, n_kv_heads, head_dim, tokens, bytes_per_number=2, batch=1):
    return 2 * n_layer * n_kv_heads * head_dim * tokens * bytes_per_number * batch


def weat_effect_size(x, y, a, b):
    x, y, a, b = (F.normalize(t, dim=1) for t in (x, y, a, b))
    sx = (x @ a.T).mean(1) - (x @ b.T).mean(1)
    sy = (y @ a.T).mean(1) - (y @ b.T).mean(1)
    return (sx.mean() - sy.mean()) / torch.cat([sx, sy]).std(unbiased=False)  # a one-number tensor: accepted


def quantize_rows(weight):
    scale = weight.abs().amax(dim=1) / 127
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8), scale


def expected_calibration_error(confidence, correct, bins=15):
    which = (confidence * bins).long().clamp(max=bins - 1)
    counts = torch.bincount(which, minlength=bins).double()
    right = torch.zeros(bins, dtype=torch.float64).index_add_(0, which, correct.double())
    sure = torch.zeros(bins, dtype=torch.float64).index_add_(0, which, confidence.double())
    return ((right - sure).abs().sum() / counts.sum()).item()  # sum_m |B_m|/n |acc - conf| = sum_m |right - sure|/n


CHECKS = {
    "13.1": (practice.check_training_days, training_days),
    "13.2": (practice.check_kv_cache_bytes, kv_cache_bytes),
    "13.3": (practice.check_weat_effect_size, weat_effect_size),
    "13.4": (practice.check_quantize_rows, quantize_rows),
    "13.5": (practice.check_expected_calibration_error, expected_calibration_error),
}
COURSE_FUNCTIONS = {
    "13.1": lambda n, d, k, p, m: costs.run_cost(costs.training_flops(n, d), k, p, m).seconds / 86_400,
    "13.2": costs.kv_cache_bytes,
    "13.3": weat.effect_size,
    "13.4": quantization.quantize_int8,
    "13.5": calibration.expected_calibration_error,
}


def registered_mistakes(check) -> list:
    """The Mistakes a check hands to run_cases (it is called with run_cases swapped for a recorder)."""
    recorded = {}
    original = practice.run_cases
    practice.run_cases = lambda *args, **kwargs: recorded.update(kwargs)
    try:
        check(lambda *args, **kwargs: None)
    finally:
        practice.run_cases = original
    return list(recorded["mistakes"])


def test_every_exercise_of_the_lesson_is_here():
    from utils.checks.hints import all_exercises

    assert {n for n in all_exercises() if n.startswith("13.")} == set(CHECKS)
    assert all(check.exercise.number == number for number, (check, _) in CHECKS.items())


@pytest.mark.parametrize("number", CHECKS)
def test_a_right_answer_from_the_formula_passes(number, capsys):
    check, right = CHECKS[number]
    check(right)
    assert capsys.readouterr().out.startswith("✓ ")


@pytest.mark.parametrize("number", CHECKS)
def test_the_blank_answer_fails_as_not_written_yet(number):
    def blank(*args, **kwargs):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="is not written yet"):
        CHECKS[number][0](blank)


@pytest.mark.parametrize("number", CHECKS)
def test_the_course_function_is_refused_whether_called_or_passed(number):
    check = CHECKS[number][0]
    with pytest.raises(CheckFailed, match="which this exercise rules out"):
        check(COURSE_FUNCTIONS[number])


MISTAKES = [(number, index, mistake) for number, (check, _) in CHECKS.items()
            for index, mistake in enumerate(registered_mistakes(check))]


def test_every_check_names_at_least_four_mistakes():
    for number in CHECKS:
        assert sum(1 for n, _, _ in MISTAKES if n == number) >= 4, f"exercise {number}"


@pytest.mark.parametrize("number, index, mistake", MISTAKES, ids=lambda v: v if isinstance(v, str) else None)
def test_every_named_mistake_fails_its_check_with_its_own_diagnosis(number, index, mistake):
    with pytest.raises(CheckFailed) as info:
        CHECKS[number][0](mistake.answer)
    message = str(info.value)
    assert f"Likely mistake: {mistake.says}" in message, f"mistake {index} of {number}:\n{message}"
    assert f"hint({number!r})" in message


def test_the_references_give_the_lessons_figures():
    assert practice._training_days(174.6e9, 300e9, 1000, 125e12, 0.3) == pytest.approx(97, abs=0.5)
    assert practice._training_days(174.6e9, 300e9, 1000, 125e12, 0.5) == pytest.approx(58, abs=0.5)
    assert practice._cache_bytes(32, 32, 128, 4096, 2, 1) == 2**31  # Llama 2 7B: 2 GiB
    assert practice._cache_bytes(32, 8, 128, 4096) == 2**29  # Llama 3 8B: 512 MiB
    x, y = torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([[0.0, 1.0], [-1.0, 1.0]])
    assert practice._weat_reference(x, y, torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])) == pytest.approx(
        1.825, abs=1e-3)
    assert abs(practice._weat_reference(*practice._weat_case(3, 1, 3, 2, 8, planted=1.0).args)) == pytest.approx(2.0)
    cases = practice._ece_cases()
    assert practice._ece_reference(*cases[0].args) == pytest.approx(0.5167, abs=1e-4)
    assert practice._ece_reference(*cases[-1].args) == pytest.approx(0.0, abs=1e-12)


def test_quantize_check_accepts_any_tie_rule_and_any_positive_scale_for_a_row_of_zeros(capsys):
    def half_up(weight):  # rounds halves away from zero, where torch.round rounds them to even
        scale = weight.abs().amax(dim=1) / 127
        scale = torch.where(scale > 0, scale, torch.full_like(scale, 0.5))
        steps = weight / scale[:, None]
        return (steps.sign() * (steps.abs() + 0.5).floor()).clamp(-127, 127).to(torch.int8), scale.double()

    practice.check_quantize_rows(half_up)
    assert capsys.readouterr().out.startswith("✓ ")
    exact = torch.tensor([[127.0, 0.5, 1.5, -2.5]])  # scale 1: three exact ties
    assert practice._quantized_difference(practice._quantize_reference(exact), half_up(exact)) is None


def test_quantize_check_says_what_is_wrong_with_the_form():
    weight = torch.tensor([[0.4, -1.0, 0.25], [2.0, 0.1, -0.3]])
    expected = practice._quantize_reference(weight)
    q, scale = quantize_rows(weight)
    why = practice._quantized_difference
    assert "pair" in why(expected, q)
    assert "torch.int8" in why(expected, (q.float(), scale))
    assert "one number per row" in why(expected, (q, scale[:, None]))
    assert "-127 .. 127" in why(expected, (torch.where(q == -127, -128, q).to(torch.int8), scale))
    assert "more than half a step" in why(expected, (q, scale * 1.5))
    assert why(expected, (q, scale)) is None


def test_number_checks_take_a_one_number_tensor_but_not_a_bool_or_a_list():
    compare = practice._close_number(rel_tol=1e-6)
    assert compare(2.0, torch.tensor(2.0)) is None and compare(2.0, 2) is None
    assert "one number" in compare(1.0, True) and "one number" in compare(2.0, [2.0])
    assert "3 times" in compare(2.0, 6.0)
