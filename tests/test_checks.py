"""The exercise-check framework: success is one line, failure says case, expected, got and a hint."""

import pytest
import torch

from utils.checks import Case, CheckFailed, check_count_characters, check_softmax, run_cases


def square(x):
    return x * x


def test_success_prints_one_line(capsys):
    run_cases("square", square, square, [Case((2,)), Case((3,))])
    assert capsys.readouterr().out == "✓ square: all 2 cases pass.\n"


def test_failure_names_case_expected_got_and_hint():
    with pytest.raises(CheckFailed) as info:
        run_cases("square", lambda x: x + x, square, [Case((2,)), Case((3,), hint="multiply")], hint="general")
    message = str(info.value)
    assert "Case 2 of 2: square(3)" in message
    assert "expected: 9" in message and "got:      6" in message
    assert "Hint: multiply" in message


def test_blank_answer_says_it_is_not_written_yet():
    def blank(x):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not written yet"):
        run_cases("square", blank, square, [Case((2,))])


def test_an_error_in_the_answer_is_reported_with_the_case():
    with pytest.raises(CheckFailed, match=r"(?s)Case 1 of 1.*raised ZeroDivisionError"):
        run_cases("square", lambda x: x / 0, square, [Case((2,))])


def test_passing_a_result_instead_of_the_function():
    with pytest.raises(CheckFailed, match="expected a function"):
        run_cases("square", 4, square, [Case((2,))])


def test_answer_cannot_spoil_the_reference_by_editing_its_input():
    def in_place(t):
        t.mul_(0)
        return t

    with pytest.raises(CheckFailed, match="values differ"):
        run_cases("double", in_place, lambda t: t * 2, [Case((torch.ones(3),))])


def test_tensor_shape_mismatch_is_named():
    with pytest.raises(CheckFailed, match=r"shape is \(3, 1\), expected \(3,\)"):
        run_cases("f", lambda t: t[:, None], lambda t: t, [Case((torch.ones(3),))])


def test_warmup_checks_pass_on_right_answers_and_fail_on_wrong_ones(capsys):
    from collections import Counter

    check_count_characters(lambda text: dict(Counter(text)))
    check_softmax(lambda x: torch.softmax(x, dim=-1))
    assert capsys.readouterr().out.count("✓") == 2
    with pytest.raises(CheckFailed, match="Subtract x.max"):
        check_softmax(lambda x: torch.exp(x) / torch.exp(x).sum())
    with pytest.raises(CheckFailed, match="'T' and 't' differ"):
        check_count_characters(lambda text: dict(Counter(text.lower())))


def test_seeded_random_tensors_repeat_and_leave_the_global_stream_alone():
    from utils.checks.core import seeded_randint, seeded_randn

    torch.manual_seed(0)
    expected_next = torch.rand(3)
    torch.manual_seed(0)
    a = seeded_randn(2, 3, seed=5)
    ids = seeded_randint(0, 7, (4, 2), seed=5)
    assert torch.equal(torch.rand(3), expected_next)
    assert torch.equal(a, torch.randn(2, 3, generator=torch.Generator().manual_seed(5)))
    assert torch.equal(seeded_randn(2, 3, seed=5), a)
    assert seeded_randn(4, seed=1, dtype=torch.float64).dtype == torch.float64
    assert torch.equal(ids, torch.randint(0, 7, (4, 2), generator=torch.Generator().manual_seed(5)))


def test_check_failed_is_an_assertion_error_carrying_its_message():
    error = CheckFailed("Case 1 of 1: f()")
    assert isinstance(error, AssertionError)
    assert str(error) == "Case 1 of 1: f()" and error.args == ("Case 1 of 1: f()",)
