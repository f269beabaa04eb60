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
    check_softmax(lambda x: torch.exp(x - x.max()) / torch.exp(x - x.max()).sum())
    assert capsys.readouterr().out.count("✓") == 2
    with pytest.raises(CheckFailed, match="largest exponent exactly 0"):
        check_softmax(lambda x: torch.exp(x) / torch.exp(x).sum())
    with pytest.raises(CheckFailed, match="'T' and 't' are different"):
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


# --- The time limit --------------------------------------------------------------------------------


def test_an_endless_loop_is_stopped_with_a_clear_message():
    import signal
    import time

    def spin(x):
        while True:
            pass

    handler = signal.getsignal(signal.SIGALRM)
    started = time.monotonic()
    with pytest.raises(CheckFailed) as info:
        run_cases("square", spin, square, [Case((2,)), Case((3,))], time_limit=0.3)
    assert time.monotonic() - started < 2
    message = str(info.value)
    assert message.startswith("Case 1 of 2: square(2)\n")
    assert "your code ran for more than 0.3 s on this case and was stopped; the reference takes under 1 ms" \
        in message and "Look for a loop that never ends" in message and "restart" not in message
    # Nothing is left behind: the previous SIGALRM handler is back and no alarm is pending.
    assert signal.getsignal(signal.SIGALRM) is handler and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_loop_that_catches_every_exception_is_stopped_too():
    import time

    def sleepy(x):
        while True:
            try:
                time.sleep(0.01)
            except Exception:
                pass

    with pytest.raises(CheckFailed, match="ran for more than 0.2 s"):
        run_cases("square", sleepy, square, [Case((2,))], time_limit=0.2)


def test_a_slow_but_finished_answer_passes(capsys):
    import time

    def slow_reference(x):
        time.sleep(0.01)
        return x * x

    def slower(x):
        time.sleep(0.3)  # 30 times the reference, past time_limit but within the multiple of the reference
        return x * x

    run_cases("square", slower, slow_reference, [Case((2,))], time_limit=0.05)
    assert capsys.readouterr().out == "✓ square: all 1 cases pass.\n"


def test_outside_the_main_thread_the_answer_runs_in_a_thread_we_stop_waiting_for():
    import threading
    import time

    released = threading.Event()
    failures = []

    def waits(x):
        while not released.is_set():
            time.sleep(0.01)

    def check():
        try:
            run_cases("square", waits, square, [Case((2,))], time_limit=0.2)
        except CheckFailed as error:
            failures.append(str(error))
        try:  # the thread keeps the caller's grad mode; a right answer passes
            with torch.no_grad():
                run_cases("grad", lambda: torch.is_grad_enabled(), lambda: False, [Case()])
        except CheckFailed as error:
            failures.append(str(error))

    caller = threading.Thread(target=check)
    caller.start()
    caller.join(5)
    released.set()
    assert len(failures) == 1 and "ran for more than 0.2 s on this case;" in failures[0]
    assert "could not be stopped and may still be running" in failures[0] and "Kernel > Restart" in failures[0]


@pytest.mark.parametrize("limit", [0, -1.0, float("nan"), float("inf"), "10", True, None])
def test_the_time_limit_must_be_a_positive_number_of_seconds(limit):
    with pytest.raises(ValueError, match="time_limit must be a positive number of seconds"):
        run_cases("square", square, square, [Case((2,))], time_limit=limit)


# --- Exercise 6.3 ----------------------------------------------------------------------------------


def _loop(batch_once=False, clear=True, clip="right", schedule=True, eval_seed=0):
    """A training loop as a learner might write it, with one mistake chosen by the arguments."""
    from utils.train import get_batch, lr_at

    def train_loop(model, optimizer, train_data, val_data, cfg, generator):
        context = model.config.context_length

        def evaluate():
            model.eval()
            gen = generator if eval_seed is None else torch.Generator().manual_seed(eval_seed)
            with torch.no_grad():
                losses = [model(*get_batch(val_data, cfg.batch_size, context, gen))[1].item()
                          for _ in range(cfg.eval_iters)]
            model.train()
            return sum(losses) / len(losses)

        train_losses, val_losses = [], {}
        first = get_batch(train_data, cfg.batch_size, context, generator) if batch_once else None
        for step in range(cfg.max_steps):
            if step % cfg.eval_interval == 0:
                val_losses[step] = evaluate()
            if schedule:
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step, cfg)
            x, y = first if batch_once else get_batch(train_data, cfg.batch_size, context, generator)
            _, loss, _ = model(x, y)
            if clear:
                optimizer.zero_grad()
            loss.backward()
            if clip == "always" or (clip == "right" and cfg.grad_clip > 0):
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            train_losses.append(loss.item())
        val_losses[cfg.max_steps] = evaluate()
        return train_losses, val_losses

    return train_loop


def _loop_of_its_own(model, optimizer, train_data, val_data, cfg, generator):
    """Also right: its own batches, schedule and evaluation, gradients zeroed (not freed) after each step."""
    import math

    def batch(data, gen):
        starts = torch.randint(len(data) - model.config.context_length, (cfg.batch_size,), generator=gen)
        rows = starts[:, None] + torch.arange(model.config.context_length)
        return data[rows], data[rows + 1]

    def rate(step):
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        p = (step - cfg.warmup_steps) / (cfg.max_steps - cfg.warmup_steps)
        return cfg.min_lr + 0.5 * (1 + math.cos(math.pi * p)) * (cfg.lr - cfg.min_lr)

    def evaluate():
        model.eval()
        gen = torch.Generator().manual_seed(0)
        with torch.inference_mode():
            total = sum(model(*batch(val_data, gen))[1].item() for _ in range(cfg.eval_iters))
        model.train()
        return total / cfg.eval_iters

    losses, val = [], {}
    for step in range(cfg.max_steps):
        if step % cfg.eval_interval == 0:
            val[step] = evaluate()
        for group in optimizer.param_groups:
            group["lr"] = rate(step)
        loss = model(*batch(train_data, generator))[1]
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        model.zero_grad(set_to_none=False)
        losses.append(loss.item())
    val[cfg.max_steps] = evaluate()
    return losses, val


def test_training_loop_check_passes_right_answers(capsys):
    from utils.checks.training import check_training_loop

    torch.manual_seed(3)
    expected_next = torch.rand(2)
    torch.manual_seed(3)
    check_training_loop(_loop())
    check_training_loop(_loop_of_its_own)
    assert capsys.readouterr().out == "✓ train_loop: all 6 cases pass.\n" * 2
    assert torch.equal(torch.rand(2), expected_next), "the check changed the learner's global random state"


@pytest.mark.parametrize(
    ("mistake", "case", "reason", "diagnosis"),
    [
        (_loop(clip="always"), "Case 1 of 6", "no weight moved at all", "although grad_clip is 0"),
        (_loop(batch_once=True), "Case 2 of 6", "differ from step 1 on", "the same batch"),
        (_loop(clear=False), "Case 2 of 6", "differ from step 2 on", "never cleared"),
        (_loop(clip="none"), "Case 3 of 6", "differ from step 1 on", "unclipped gradients"),
        (_loop(schedule=False), "Case 4 of 6", "differ from step 1 on", "the learning rate never changed"),
        (_loop(eval_seed=None), "Case 1 of 6", "the loss of step 0 differs", "the training generator"),
        (_loop(eval_seed=1), "Case 1 of 6", "the validation loss at step 0 differs", "Hint: "),
    ],
    ids=["clips with grad_clip=0", "one batch", "no zero_grad", "no clipping", "no schedule",
         "evaluation moves the training batches", "evaluation seeded otherwise"],
)
def test_training_loop_check_names_each_mistake(mistake, case, reason, diagnosis):
    from utils.checks.training import check_training_loop

    with pytest.raises(CheckFailed) as info:
        check_training_loop(mistake)
    message = str(info.value)
    assert message.startswith(case) and reason in message and diagnosis in message, message
    assert "clip_grad_norm_" not in message and "zero_grad(" not in message and ".item()" not in message


def test_training_loop_check_reports_errors_and_blanks_through_the_framework():
    from utils.checks.training import check_training_loop

    def typo(model, optimizer, train_data, val_data, cfg, generator):
        for _ in range(cfg.max_steps):
            x, y = train_data[:8][None], train_data[1:9][None]
            model(x, y)[1].backwards()

    def blank(model, optimizer, train_data, val_data, cfg, generator):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match=r"(?s)Case 1 of 6: one step with SGD.*raised AttributeError.*Hint: "):
        check_training_loop(typo)
    with pytest.raises(CheckFailed, match="train_loop is not written yet"):
        check_training_loop(blank)
    with pytest.raises(CheckFailed, match="expected a function, got float"):
        check_training_loop(2.5)


# --- Lessons 07 to 09: the checks against the references of utils -----------------------------------


def test_lessons_07_to_09_checks_pass_the_utils_functions_and_leave_the_global_random_state_alone(capsys):
    """The references live in utils (tested there); here the checks' own machinery is tested: the wrappers
    that build fixed models, fresh generators and tiny networks for each case must let a right answer
    through, and must not move the learner's global random stream while they do it."""
    from utils import bert, generation, metrics
    from utils import head_scores as hs
    from utils.checks.bert import check_linear_probe, check_macro_scores, check_mask_tokens, check_truncate_and_pad
    from utils.checks.generation import check_beam_search, check_repetition_penalty
    from utils.checks.reading_attention import check_mean_ablation_loss, check_previous_token_scores

    def mean_ablation_loss(model, layer, head, batches):
        with hs.mean_ablate_heads(model, layer, head, hs.head_means(model, layer, batches)):
            return hs.mean_loss(model, batches)

    state = torch.random.get_rng_state()
    check_repetition_penalty(generation.repetition_penalty)
    check_beam_search(generation.beam_search)
    check_truncate_and_pad(lambda s, pad, m: tuple(bert.pad_batch(s, pad, max_length=m).values()))
    check_macro_scores(lambda y, p, k: tuple(metrics.macro_scores(y, p, k)))
    check_mask_tokens(lambda ids, special, mask, vocab, g, p=0.15: bert.mask_token_ids(ids, special, mask, vocab, p, g))
    check_linear_probe(lambda h, m, y, k, steps, lr: bert.fit_linear_probe(bert.mean_pool(h.detach(), m), y, k,
                                                                           steps, lr))
    check_previous_token_scores(hs.batch_previous_token_score)
    check_mean_ablation_loss(mean_ablation_loss)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert capsys.readouterr().out.count("✓") == 8


def test_the_answer_and_the_reference_each_draw_from_their_own_copy_of_a_generator(capsys):
    def draw(g):
        return torch.rand(3, generator=g)

    run_cases("draw", draw, draw, [Case((torch.Generator().manual_seed(4),))])  # shared: the two would differ
    assert "✓ draw" in capsys.readouterr().out
