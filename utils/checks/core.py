"""The small framework behind every exercise check.

A check runs the learner's answer and the reference on several cases. If all agree it prints
one line; otherwise it raises `CheckFailed` naming the case, what was expected, what came back,
and a diagnosis: the likely mistake when the answer behaves like a known wrong one (a `Mistake`),
else the case's hint. It never shows the answer; `hint("5.2")` gives more, in tiers (hints.py).
The constraints an exercise states are enforced while the answer runs (rules.py).
"""

from __future__ import annotations

import functools
import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .rules import NoAttribute, NoTorchCall, RuleBroken, enforced, python_loop


class CheckFailed(AssertionError):
    """Raised by a check when the answer is not right yet; the message says how to fix it.

    Jupyter shows str(exception) under the traceback, so the message is the whole story.
    """


def seeded_randn(*shape: int, seed: int, dtype: torch.dtype | None = None) -> torch.Tensor:
    """torch.randn(*shape) from a generator of its own: the same numbers on every run and machine,
    and the learner's global random state is left alone."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def seeded_randint(low: int, high: int, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """torch.randint(low, high, shape) from a generator of its own, like seeded_randn."""
    return torch.randint(low, high, shape, generator=torch.Generator().manual_seed(seed))


def built_aside(build: Callable, seed: int | None = None):
    """build(), e.g. a tiny model for a case, without moving the learner's global random stream (building
    a module draws its initial weights from it). With a seed, those draws come from
    torch.manual_seed(seed), so the same seed builds the same model on every run."""
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        return build()


@dataclass
class Case:
    """One call of the answer: args (and kwargs), plus an optional hint for this case only."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    hint: str = ""
    label: str = ""

    def describe(self, name: str) -> str:
        if self.label:
            return self.label
        parts = [_short(a) for a in self.args] + [f"{k}={_short(v)}" for k, v in self.kwargs.items()]
        return f"{name}({', '.join(parts)})"


@dataclass
class Mistake:
    """A wrong answer learners often write, as a function, and the diagnosis to show when the learner's
    result on the failing case equals this function's result there."""

    answer: Callable
    says: str


def _rounded(values):
    """Nested lists of numbers with floats cut to 4 significant digits, for readable messages."""
    if isinstance(values, list):
        return [_rounded(v) for v in values]
    return float(f"{values:.4g}") if isinstance(values, float) else values


def _short(value, limit: int = 70) -> str:
    if isinstance(value, torch.Tensor):
        if value.numel() <= 8:
            text = f"tensor({_rounded(value.tolist())})"
        else:
            text = f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}"
    elif isinstance(value, np.ndarray):
        text = f"array of shape {value.shape}" if value.size > 8 else f"array({value.tolist()})"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _clone(value):
    """Give the answer its own copy, so an answer that edits its input cannot spoil the reference."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, list):
        return [_clone(v) for v in value]
    if isinstance(value, tuple):  # a case's args are a tuple: every item gets its own copy
        items = [_clone(v) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, torch.Generator):  # the answer draws from its own copy, in the same state
        copy = torch.Generator(device=value.device)
        copy.set_state(value.get_state())
        return copy
    return value


def difference(expected, got, rtol: float = 1e-5, atol: float = 1e-6) -> str | None:
    """None when `got` matches `expected`, else a short reason. Tensors compare by shape then values."""
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"expected a torch.Tensor, got {type(got).__name__}"
        if tuple(got.shape) != tuple(expected.shape):
            return f"shape is {tuple(got.shape)}, expected {tuple(expected.shape)}"
        why = _dtype_difference(expected.dtype, got.dtype)
        if why:
            return why
        if expected.dtype == torch.bool:
            return None if torch.equal(got, expected) else "some entries differ"
        got_f, exp_f = got.detach().double().cpu(), expected.detach().double().cpu()
        if torch.isnan(got_f).any() and not torch.isnan(exp_f).any():
            return "the result contains NaN"
        if torch.isinf(exp_f).any() or torch.isinf(got_f).any():
            # -inf marks removed entries (masks, top-k): they must sit in the same places.
            if not torch.equal(torch.isinf(got_f) & (got_f > 0), torch.isinf(exp_f) & (exp_f > 0)) or \
                    not torch.equal(torch.isinf(got_f) & (got_f < 0), torch.isinf(exp_f) & (exp_f < 0)):
                return "the infinite entries (e.g. -inf for removed ones) are not in the expected places"
            finite = torch.isfinite(exp_f)
            got_f, exp_f = got_f[finite], exp_f[finite]
        if not torch.allclose(got_f, exp_f, rtol=rtol, atol=atol, equal_nan=True):
            worst = (got_f - exp_f).abs().max().item()
            return f"values differ (largest difference {worst:.3g})"
        return None
    if isinstance(expected, np.ndarray):
        return difference(torch.as_tensor(expected), torch.as_tensor(np.asarray(got)), rtol, atol)
    if isinstance(expected, float) and isinstance(got, (int, float, np.floating)):
        if math.isnan(got) and not math.isnan(expected):
            return "the result is NaN"
        return None if math.isclose(got, expected, rel_tol=rtol, abs_tol=atol) else "the numbers differ"
    if isinstance(expected, (list, tuple)) and isinstance(got, (list, tuple)):
        if len(got) != len(expected):
            return f"length is {len(got)}, expected {len(expected)}"
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            why = difference(e, g, rtol, atol)
            if why:
                return f"item {i}: {why}"
        return None
    if isinstance(expected, dict) and isinstance(got, dict):
        missing = [k for k in expected if k not in got]
        extra = [k for k in got if k not in expected]
        if missing or extra:
            return f"missing keys {missing[:5]}, unexpected keys {extra[:5]}"
        for k in expected:
            why = difference(expected[k], got[k], rtol, atol)
            if why:
                return f"key {k!r}: {why}"
        return None
    return None if got == expected else "not equal"


def _dtype_difference(expected: torch.dtype, got: torch.dtype) -> str | None:
    """Masks and ids must have exactly the expected dtype (a float mask or int32 ids break the code they
    feed); a float result may have any float precision (float64 from NumPy is as right as float32)."""
    if expected.is_floating_point:
        return None if got.is_floating_point else f"dtype is {got}, expected a float tensor ({expected})"
    return None if got == expected else f"dtype is {got}, expected {expected}"


# An answer may run this many times as long as the reference on a case (or run_cases's time_limit,
# if that is longer) before it is stopped: far more than a slow but finished answer ever needs.
SLOWER_THAN_REFERENCE = 100


class _TimeUp(BaseException):
    """The answer ran past its time limit; args[0] says whether it was stopped. A BaseException, like
    KeyboardInterrupt, so that an `except Exception:` inside the learner's loop cannot swallow it."""


def _call_with_limit(call: Callable, seconds: float):
    """call(), or _TimeUp once it has run for `seconds`.

    On POSIX in the main thread, where Jupyter runs cells, a SIGALRM handler raises inside the answer
    itself: Python runs it between two bytecodes, so `while True: pass` or a loop of sleeps stops and
    the kernel is free again, and the answer keeps the caller's thread (its grad mode, its device).
    One long C call (a huge matmul) cannot be cut short; the alarm takes effect when it returns.
    Elsewhere (Windows, a check called from another thread) no signal can reach the answer, so it
    runs in a daemon thread that we stop waiting for; a thread cannot be killed and may go on running.
    """
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return _call_in_thread(call, seconds)

    def stop(signum, frame):
        raise _TimeUp(True)

    previous = signal.signal(signal.SIGALRM, stop)
    started = time.monotonic()
    outer = (0.0, 0.0)
    try:
        try:
            outer = signal.setitimer(signal.ITIMER_REAL, seconds)
            return call()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)  # one-shot alarm: it fires at most once, here or above
    finally:
        signal.signal(signal.SIGALRM, previous)
        if outer[0]:  # someone else's alarm (pytest-timeout, say) was set: give it back its remaining time
            signal.setitimer(signal.ITIMER_REAL, max(outer[0] - (time.monotonic() - started), 1e-3), outer[1])


def _call_in_thread(call: Callable, seconds: float):
    """_call_with_limit where no signal can reach the answer: wait for a daemon thread that long."""
    result = {}
    grad_enabled = torch.is_grad_enabled()  # grad mode belongs to each thread: keep the caller's

    def work():
        try:
            with torch.set_grad_enabled(grad_enabled):
                result["value"] = call()
        except BaseException as error:  # handed to the caller's thread below
            result["error"] = error

    worker = threading.Thread(target=work, name="exercise check", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise _TimeUp(False)
    if "error" in result:
        raise result["error"]
    return result["value"]


def _duration(seconds: float) -> str:
    return "under 1 ms" if seconds < 1e-3 else f"{seconds:.2g} s"


def run_cases(
    name: str,
    answer: Callable,
    reference: Callable,
    cases: Sequence[Case],
    hint: str = "",
    compare: Callable | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    time_limit: float = 10.0,
    exercise: str | None = None,
    mistakes: Sequence[Mistake] = (),
    rules: Sequence[NoTorchCall | NoAttribute] = (),
    no_loops: str | None = None,
) -> None:
    """Run `answer` and `reference` on every case; print one success line or raise CheckFailed.

    The answer may run on a case for `time_limit` seconds, or SLOWER_THAN_REFERENCE times as long as
    the reference took there if that is longer; then it is stopped (a loop that never ends). The
    floor is in seconds, not only a multiple, so that a right answer never fails on a busy machine.

    `exercise` ("5.2") adds a pointer to hint("5.2") to every failure. `mistakes` are known wrong
    answers: a failing result equal to one of theirs is diagnosed by its text. `rules` are enforced
    while the answer runs; `no_loops`, if given, says why the answer may not contain a Python loop.
    """
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or not 0 < time_limit < math.inf:
        raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
    more = f"\n  More help: hint({exercise!r})" if exercise else ""
    if not callable(answer):
        raise CheckFailed(f"{name}: expected a function, got {type(answer).__name__}. Pass the function itself, "
                          f"without calling it: check_...({name}), not check_...({name}(...)).")
    if no_loops:
        loop = python_loop(answer)
        if loop:
            raise CheckFailed(f"{name}: this exercise rules out Python loops ({no_loops}), and your code has "
                              f"{loop}. Let one tensor operation handle every position at once.{more}")
    for number, case in enumerate(cases, start=1):
        where = f"Case {number} of {len(cases)}: {case.describe(name)}"
        started = time.perf_counter()
        expected = reference(*_clone(case.args), **_clone(case.kwargs))
        took = time.perf_counter() - started
        limit = max(time_limit, SLOWER_THAN_REFERENCE * took)
        args, kwargs = _clone(case.args), _clone(case.kwargs)
        try:
            with enforced(rules, answer):
                got = _call_with_limit(functools.partial(answer, *args, **kwargs), limit)
        except RuleBroken as broken:
            raise CheckFailed(f"{where}\n  {broken}{more}") from None
        except NotImplementedError:
            raise CheckFailed(
                f"{name} is not written yet: replace `raise NotImplementedError()` with your code, "
                f"run that cell, then run this check again."
            ) from None
        except Exception as error:  # the learner's code failed: say where, keep the cause attached
            raise CheckFailed(
                f"{where}\n  your code raised {type(error).__name__}: {error}"
                + (f"\n  Hint: {case.hint or hint}" if (case.hint or hint) else "") + more
            ) from error
        except _TimeUp as late:
            stopped = late.args[0]
            raise CheckFailed(
                f"{where}\n  your code ran for more than {limit:.3g} s on this case"
                + (" and was stopped" if stopped else "")
                + f"; the reference takes {_duration(took)}.\n  Look for a loop that never ends: a `while` "
                "whose condition never turns False, or a step that never moves on."
                + ("" if stopped else "\n  It could not be stopped and may still be running: if the kernel "
                   "stays busy, restart it (Kernel > Restart) and run your cells again.")
            ) from None
        same = compare or functools.partial(difference, rtol=rtol, atol=atol)
        why = same(expected, got)
        if why:
            lines = [
                where,
                f"  expected: {_short(expected, 200)}",
                f"  got:      {_short(got, 200)}",
                f"  ({why})",
            ]
            known = _matching_mistake(mistakes, case, expected, got, same)
            if known:
                lines.append(f"  Likely mistake: {known}")
            elif case.hint or hint:
                lines.append(f"  Hint: {case.hint or hint}")
            raise CheckFailed("\n".join(lines) + more)
    print(f"✓ {name}: all {len(cases)} cases pass.")


def _matching_mistake(mistakes: Sequence[Mistake], case: Case, expected, got, same: Callable) -> str | None:
    """The diagnosis of the first known mistake whose result on this case equals the answer's (and
    differs from the right result: on some cases a mistake happens to give the right answer)."""
    for mistake in mistakes:
        try:
            wrong = mistake.answer(*_clone(case.args), **_clone(case.kwargs))
        except Exception:  # a mistake that cannot run on this case cannot be the one made
            continue
        if same(wrong, got) is None and same(expected, wrong) is not None:
            return mistake.says
    return None
