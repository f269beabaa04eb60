"""Checks for the exercises of lesson 06 (training the GPT).

The references come from torch and utils.train (get_batch, lr_at, TrainConfig), utils.muon, never from
the solution notebook. The training loop of 6.3 runs on a tiny GPT and a tiny piece of Tiny Shakespeare,
with the same seeds for the reference and the answer, in a fraction of a second; the learner's global
random state is saved and restored around every run.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from .. import train
from ..char_tokenizer import CharTokenizer
from ..data import load_shakespeare
from ..model import GPT, GPTConfig
from ..muon import Muon
from ..train import TrainConfig, get_batch, lr_at
from .core import Case, Mistake, run_cases, seeded_randint
from .hints import exercise
from .rules import CourseFunctionsOff, NoAttribute

__all__ = ["check_make_batch", "check_lr_at", "check_training_loop", "check_muon_update"]


# --- 6.1 a batch without a loop ------------------------------------------------------------------------


def _batch_reference(data, starts, context_length):
    windows = data.unfold(0, context_length + 1, 1)[starts]  # (batch, context_length + 1), torch's sliding view
    return windows[:, :-1], windows[:, 1:]


def _batch_variant(target_shift=1, input_shift=0, add_to_ids=False, swap=False):
    def make_batch(data, starts, context_length):
        rows = starts[:, None] + torch.arange(context_length)
        x = data[rows + input_shift]
        y = data[rows] + 1 if add_to_ids else data[rows + target_shift]
        return (y, x) if swap else (x, y)
    return make_batch


@exercise("6.1", "A batch without a loop", "easy", 10, hints=(
    "Every window is the same pattern of positions moved to its own start. Build the whole table of positions "
    "at once, one row per start, and index the data with it: one gather gives every window.",
    "The positions of row i are starts[i], starts[i] + 1, ..., starts[i] + context_length - 1: a column of "
    "starts plus a row of offsets, added with broadcasting. The targets use the same table moved one position "
    "further (not the token ids plus one).",
    "starts[:, None] is a column; adding torch.arange(context_length), a row, broadcasts to the (batch, "
    "context_length) table of positions, and indexing data with a tensor of positions gives a tensor of that shape.",
))
def check_make_batch(make_batch) -> None:
    """Exercise 6.1: the windows at `starts` and their targets, shifted by one, with one indexing operation."""
    data = torch.arange(100, 140)
    run_cases(
        "make_batch",
        make_batch,
        _batch_reference,
        [
            Case((data, torch.tensor([0, 5]), 4),
                 hint="Two windows of 4: x holds data[0:4] and data[5:9], y the same windows one token later."),
            Case((data, torch.tensor([31]), 8),
                 hint="The last possible window: its targets end on the last token of the data."),
            Case((data, torch.tensor([3, 3, 10]), 1),
                 hint="context_length 1, a start repeated: each x is one token, each y the token after it."),
            Case((seeded_randint(0, 65, (60,), seed=1), seeded_randint(0, 50, (6,), seed=2), 9),
                 label="make_batch(60 random token ids, 6 random starts, 9)",
                 hint="Token ids that are not in order: y must hold the next tokens, which are not x + 1."),
            Case((data, torch.zeros(0, dtype=torch.long), 3),
                 hint="No starts at all: x and y are empty, of shape (0, context_length) and dtype int64."),
        ],
        hint="Row i of x is the window at starts[i]; row i of y is that window shifted one token to the right.",
        exercise="6.1",
        no_loops="one indexing operation fetches every window at once, as utils.train.get_batch does",
        mistakes=[
            Mistake(_batch_variant(target_shift=0), "the targets are the inputs themselves: y must be the same "
                    "window shifted one token to the right, the next token at every position."),
            Mistake(_batch_variant(target_shift=-1), "the targets were shifted the wrong way: y[i, t] is the token "
                    "after x[i, t], one position later in the data, not one earlier."),
            Mistake(_batch_variant(add_to_ids=True), "1 was added to the token ids instead of to the positions: "
                    "the next token is the one at the next position, whatever its id."),
            Mistake(_batch_variant(swap=True), "x and y are swapped: x is the window itself, y the window shifted "
                    "by one."),
            Mistake(_batch_variant(input_shift=1, target_shift=2), "every window starts one position too late: "
                    "x begins at starts[i] itself."),
        ],
    )


# --- 6.2 the learning-rate schedule --------------------------------------------------------------------


def _schedule_variant(warmup_from_zero=False, clamp=True, progress_from_zero=False, floor=True, half=True,
                      warmup_inclusive=False):
    def learning_rate(step, lr, min_lr, warmup_steps, max_steps):
        warming = step <= warmup_steps if warmup_inclusive else step < warmup_steps
        if warming:
            return lr * (step if warmup_from_zero else step + 1) / warmup_steps
        if clamp and step >= max_steps:
            return min_lr
        p = step / max_steps if progress_from_zero else (step - warmup_steps) / (max_steps - warmup_steps)
        low = min_lr if floor else 0.0
        return low + (0.5 if half else 1.0) * (1 + math.cos(math.pi * p)) * (lr - low)
    return learning_rate


_NO_LR_AT = CourseFunctionsOff(train, ("lr_at",), "write the schedule yourself; utils.train.lr_at is what the "
                               "check compares with.")


@exercise("6.2", "The learning-rate schedule", "medium", 15, hints=(
    "Three regimes by step: a linear warm-up that starts above zero, a half cosine that falls from lr to "
    "min_lr between the end of the warm-up and max_steps, and min_lr from max_steps on.",
    "The warm-up's first step already gets one warmup_steps-th of lr (step + 1, not step). The cosine's "
    "progress p runs from 0 at the end of the warm-up to 1 at max_steps, so it is measured from warmup_steps, "
    "over max_steps - warmup_steps steps; at p = 0.5 the rate is halfway between lr and min_lr.",
    "Check step < warmup_steps first, then step >= max_steps; in between use "
    "min_lr + 0.5 * (1 + math.cos(math.pi * p)) * (lr - min_lr).",
))
def check_lr_at(learning_rate) -> None:
    """Exercise 6.2: warm-up then cosine decay, as a function of (step, lr, min_lr, warmup, max_steps)."""

    def reference(step, lr, min_lr, warmup_steps, max_steps):
        cfg = TrainConfig(lr=lr, min_lr=min_lr, warmup_steps=warmup_steps, max_steps=max_steps)
        return lr_at(step, cfg)

    cases = [Case((s, 1e-3, 1e-4, 100, 2000)) for s in (0, 49, 99, 100)]
    cases[0].hint = "Step 0 is the first warm-up step: it already trains, with a small rate above zero."
    cases[3].hint = "Step 100 = warmup_steps is the first step of the decay, where the cosine starts at lr."
    cases += [
        Case((1050, 1e-3, 1e-4, 100, 2000), hint="Halfway through the decay: the rate is halfway between lr and "
             "min_lr."),
        Case((2000, 1e-3, 1e-4, 100, 2000), hint="At max_steps the rate is min_lr."),
        Case((5000, 1e-3, 1e-4, 100, 2000), hint="After max_steps the rate stays at min_lr."),
        Case((700, 6e-4, 0.0, 10, 1000)),
    ]
    run_cases("learning_rate", learning_rate, reference, cases, rtol=1e-6, atol=1e-12, rules=[_NO_LR_AT],
              hint="Find which regime the step is in (warm-up, decay, after max_steps) and compare with the "
                   "statement's formula for it.",
              exercise="6.2",
              mistakes=[
                  Mistake(_schedule_variant(warmup_from_zero=True), "the warm-up starts at 0, so step 0 would not "
                          "train at all: the first warm-up step already gets one warmup_steps-th of lr."),
                  Mistake(_schedule_variant(warmup_inclusive=True), "the warm-up ran one step too long: at step "
                          "warmup_steps the decay begins, at lr itself."),
                  Mistake(_schedule_variant(clamp=False), "after max_steps the cosine turned back up: from "
                          "max_steps on the rate stays at min_lr."),
                  Mistake(_schedule_variant(progress_from_zero=True), "the decay's progress was measured from "
                          "step 0; it runs from 0 at the end of the warm-up to 1 at max_steps."),
                  Mistake(_schedule_variant(floor=False), "the rate decays to 0 instead of min_lr."),
                  Mistake(_schedule_variant(half=False), "the cosine term lacks its factor 1/2: 1 + cos runs from "
                          "2 to 0, so without the half the rate starts at twice the distance from min_lr."),
              ])


# --- 6.3 the training loop -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _tiny_text_ids() -> tuple[torch.Tensor, torch.Tensor, int]:
    """The first 3,000 characters of Tiny Shakespeare as ids: 90% to train on, 10% to validate on."""
    text = load_shakespeare()[:3000]
    tokenizer = CharTokenizer.train(text)
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    cut = int(0.9 * len(ids))
    return ids[:cut], ids[cut:], tokenizer.vocab_size


@dataclass(frozen=True)
class _Run:
    """The settings of one case: a tiny GPT trained for a few steps."""

    steps: int
    optimizer: str = "sgd"  # SGD moves by the gradient itself, so a missing clip or a stale gradient shows
    lr: float = 0.5
    min_lr: float = 0.5  # = lr with no warm-up: a constant rate
    warmup: int = 0
    clip: float = 0.0  # 0 = no clipping, as TrainConfig says
    eval_interval: int = 100
    dropout: float = 0.0

    def config(self) -> TrainConfig:
        return TrainConfig(batch_size=4, max_steps=self.steps, lr=self.lr, min_lr=self.min_lr,
                           warmup_steps=self.warmup, grad_clip=self.clip, eval_interval=self.eval_interval,
                           eval_iters=2)


class _Modes:
    """Counts the model's forward passes by (training mode, gradients on), through a forward hook."""

    def __init__(self, model: torch.nn.Module):
        self.counts = {(True, True): 0, (True, False): 0, (False, True): 0, (False, False): 0}
        self._handle = model.register_forward_hook(self._seen)

    def _seen(self, module, inputs, output):
        self.counts[module.training, torch.is_grad_enabled()] += 1

    def remove(self) -> None:
        self._handle.remove()


@dataclass
class _Outcome:
    """What one run of a training loop gave: its return value, how far the weights moved, its forward passes."""

    returned: object
    moved: float
    moves: dict
    modes: dict
    steps: int

    def __repr__(self) -> str:
        returned = self.returned
        if isinstance(returned, (tuple, list)) and len(returned) == 2:
            losses, val = returned
            shown = (f"training losses {_few(losses)}, validation {_few(val)}" if isinstance(losses, list)
                     else f"({type(losses).__name__}, {type(val).__name__})")
        else:
            shown = f"a {type(returned).__name__}"
        return f"{shown}; the weights move {self.moved:.4g} in all"


def _few(values) -> str:
    if isinstance(values, dict):
        return "{" + ", ".join(f"{k}: {_number(v)}" for k, v in list(values.items())[:6]) + "}"
    if isinstance(values, list):
        return "[" + ", ".join(_number(v) for v in values[:6]) + (", ..." if len(values) > 6 else "") + "]"
    return type(values).__name__


def _number(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else f"a {type(v).__name__}"


def _trained(loop, run: _Run) -> _Outcome:
    """Run a training loop on a fresh tiny GPT; the global random state is the same for every loop (dropout
    draws from it) and is given back afterwards, so the learner's own stream is left alone."""
    train_data, val_data, vocab = _tiny_text_ids()
    cfg = run.config()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=vocab, context_length=8, n_layer=1, n_head=2, n_embd=16,
                              dropout=run.dropout))
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        if run.optimizer == "sgd":
            optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr)
        else:
            optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.1)
        modes = _Modes(model)
        try:
            batches = torch.Generator().manual_seed(1)
            returned = loop(model, optimizer, train_data.clone(), val_data.clone(), cfg, batches)
        finally:
            modes.remove()
    moves = {name: p.detach() - before[name] for name, p in model.named_parameters()}
    moved = math.sqrt(sum(t.double().square().sum().item() for t in moves.values()))
    return _Outcome(returned, moved, moves, modes.counts, cfg.max_steps)


def _loop_variant(same_batch=False, zero_grad=True, clip="right", schedule="right", eval_generator="own",
                  final_eval=True, eval_mode=True, back_to_train=True, no_grad=True, item=True):
    """A training loop; with no argument changed it is the reference, built from utils.train's pieces.
    Each argument makes one known mistake, for the diagnoses."""

    def train_loop(model, optimizer, train_data, val_data, cfg, generator):
        context = model.config.context_length
        shared = torch.Generator().manual_seed(0)

        def evaluate():
            if eval_mode:
                model.eval()
            g = {"own": torch.Generator().manual_seed(0), "shared": shared, "training": generator}[eval_generator]
            with torch.no_grad() if no_grad else torch.enable_grad():
                losses = [model(*get_batch(val_data, cfg.batch_size, context, g))[1].item()
                          for _ in range(cfg.eval_iters)]
            if back_to_train:
                model.train()
            return sum(losses) / len(losses)

        def set_lr(step):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, cfg)

        train_losses, val_losses = [], {}
        batch = get_batch(train_data, cfg.batch_size, context, generator) if same_batch else None
        for step in range(cfg.max_steps):
            if step % cfg.eval_interval == 0:
                val_losses[step] = evaluate()
            if schedule == "right":
                set_lr(step)
            x, y = batch or get_batch(train_data, cfg.batch_size, context, generator)
            _, loss, _ = model(x, y)
            if zero_grad:
                optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip == "always" or (clip == "right" and cfg.grad_clip > 0):
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            if schedule == "late":
                set_lr(step)
            train_losses.append(loss.item() if item else loss)
        if final_eval:
            val_losses[cfg.max_steps] = evaluate()
        return train_losses, val_losses

    return train_loop


_reference_loop = _loop_variant()


def _loop_difference(expected: _Outcome, got: _Outcome) -> str | None:
    return (_returned_difference(got) or _modes_difference(got) or _still_difference(expected, got)
            or _losses_difference(expected, got) or _moves_difference(expected, got))


def _returned_difference(got: _Outcome) -> str | None:
    returned = got.returned
    if not isinstance(returned, (tuple, list)) or len(returned) != 2:
        return f"expected a pair (train_losses, val_losses), got {type(returned).__name__}"
    losses, val = returned
    if not isinstance(losses, list) or not isinstance(val, dict):
        return (f"expected train_losses as a list and val_losses as a dict, got a {type(losses).__name__} and "
                f"a {type(val).__name__}")
    values = list(losses) + list(val.values())
    if any(isinstance(v, torch.Tensor) for v in values):
        return ("the losses are tensors: record each as a Python float (a loss tensor keeps its step's whole "
                "graph, and its memory, alive)")
    if not all(isinstance(v, float) for v in values):
        return "every loss must be a Python float"
    if not all(isinstance(k, int) and not isinstance(k, bool) for k in val):
        return "the keys of val_losses must be the steps, as ints"
    return None


def _modes_difference(got: _Outcome) -> str | None:
    train_mode, eval_with_grad, eval_in_train = got.modes[True, True], got.modes[False, True], got.modes[True, False]
    if eval_with_grad and train_mode < got.steps:
        return ("some training steps ran in eval mode: after evaluating, switch the model back to training mode "
                "(dropout on again) before the next step")
    if eval_with_grad:
        return ("the evaluation ran with gradients on: nothing is learned from it, so run it without gradients "
                "(it saves the memory of every graph)")
    if eval_in_train:
        return "the evaluation ran in training mode (dropout on): switch the model to eval mode to evaluate"
    return None


def _losses_difference(expected: _Outcome, got: _Outcome) -> str | None:
    want, have = expected.returned, got.returned
    if len(have[0]) != len(want[0]):
        return f"{len(have[0])} training losses, expected one per step: {len(want[0])}"
    for step, (e, g) in enumerate(zip(want[0], have[0], strict=True)):
        if not math.isclose(e, g, rel_tol=1e-4, abs_tol=1e-6):
            return ("the loss of step 0 differs: the first batch, or the loss of the model on it, is not the "
                    "expected one" if step == 0 else
                    f"the training losses agree up to step {step - 1} and differ from step {step} on: what "
                    "happens between steps (the update, the learning rate, the next batch) is not as expected")
    if sorted(have[1]) != sorted(want[1]):
        return f"evaluations at steps {sorted(have[1])}, expected at steps {sorted(want[1])}"
    for step in sorted(want[1]):
        if not math.isclose(want[1][step], have[1][step], rel_tol=1e-4, abs_tol=1e-6):
            return f"the validation loss at step {step} differs"
    return None


def _still_difference(expected: _Outcome, got: _Outcome) -> str | None:
    return "no weight moved at all" if got.moved == 0 and expected.moved > 0 else None


def _moves_difference(expected: _Outcome, got: _Outcome) -> str | None:
    if got.moved == expected.moved == 0:
        return None
    ratio = got.moved / expected.moved
    if not math.isclose(ratio, 1, rel_tol=1e-3):
        return f"the weights moved {ratio:.3g} times as far as expected"
    scale = max(t.abs().max().item() for t in expected.moves.values())
    for name, move in expected.moves.items():
        if not torch.allclose(got.moves[name], move, rtol=1e-4, atol=1e-4 * scale):
            return f"{name} moved differently"
    return None


def _training(loop):
    return lambda run: _trained(loop, run)


def _loop_case(label: str, hint: str = "", **run) -> Case:
    return Case((_Run(**run),), label=label, hint=hint)


@exercise("6.3", "The training loop", "hard", 30, hints=(
    "Each step: evaluate first if the step is a multiple of eval_interval, set the step's learning rate, draw a "
    "fresh batch, then forward, clear the old gradients, backward, clip (unless grad_clip is 0), optimizer "
    "step, and record the loss. After the last step, evaluate once more.",
    "The learning rate lives in optimizer.param_groups: set every group's 'lr' before the step. The training "
    "batches all come from the generator you are given; the evaluation draws from a generator of its own, "
    "seeded 0 afresh each time, so it sees the same batches every time and never moves the training batches "
    "on. Evaluate in eval mode and without gradients, then switch back to training mode.",
    "Per step: lr_at(step, cfg) into each param group; get_batch(train_data, cfg.batch_size, "
    "model.config.context_length, generator); _, loss, _ = model(x, y); zero_grad, backward, "
    "clip_grad_norm_(model.parameters(), cfg.grad_clip) if cfg.grad_clip > 0, step; loss.item().",
))
def check_training_loop(train_loop) -> None:
    """Exercise 6.3: a whole training run (fresh batches, schedule, clipping, evaluations) on a tiny GPT,
    compared loss by loss and weight by weight with a reference run with the same seeds."""
    if not callable(train_loop):
        run_cases("train_loop", train_loop, _reference_loop, [])  # raises the usual "pass the function"
    run_cases(
        "train_loop",
        _training(train_loop),
        _training(_reference_loop),
        [
            _loop_case("one step with SGD, a constant learning rate, grad_clip=0 (no clipping)", steps=1,
                       hint="One step: the weights must move by the step's gradient, and grad_clip=0 means no "
                       "clipping at all (clipping to a norm of 0 would wipe the gradients out). Return "
                       "(train_losses, val_losses): val_losses has the evaluations at step 0 and after the last "
                       "step."),
            _loop_case("four steps with SGD, constant learning rate, no clipping", steps=4,
                       hint="Step 0 is right but later steps are not: each step needs a fresh batch from the "
                       "generator, and the gradients of the previous step must be cleared before backward(), "
                       "which adds to what .grad holds."),
            _loop_case("four steps with SGD and grad_clip=0.05", steps=4, clip=0.05,
                       hint="With grad_clip=0.05 the gradients' total norm is scaled down to 0.05 after "
                       "backward() has made them and before the optimizer uses them."),
            _loop_case("six steps with SGD, 2 warm-up steps, then cosine decay from 0.5 to 0.05", steps=6,
                       warmup=2, min_lr=0.05,
                       hint="The learning rate changes every step: each step sets its own rate (6.2's schedule) "
                       "in every param group before the optimizer step."),
            _loop_case("six steps with SGD, evaluating every 2 steps", steps=6, eval_interval=2,
                       hint="Evaluations at steps 0, 2 and 4 (before that step's update) and after the last "
                       "step. Each draws its batches from a generator of its own seeded 0, never from the "
                       "training generator, so evaluating does not change which batches training sees."),
            _loop_case("six steps with AdamW, dropout 0.2, warm-up, grad_clip=1, evaluating every 3 steps",
                       steps=6, optimizer="adamw", lr=0.01, min_lr=0.001, warmup=2, clip=1.0, eval_interval=3,
                       dropout=0.2,
                       hint="With dropout the modes matter: evaluate in eval mode, without gradients, and train "
                       "in training mode."),
        ],
        hint="Compare each step with the statement's order: evaluation, learning rate, fresh batch, forward, "
        "clear, backward, clip, step, record.",
        compare=_loop_difference,
        exercise="6.3",
        mistakes=[
            Mistake(_training(_loop_variant(clip="always")), "the gradients were clipped although grad_clip is 0: "
                    "0 means no clipping, and clipping to a norm of 0 wipes every gradient out."),
            Mistake(_training(_loop_variant(same_batch=True)), "every step trained on the same batch: draw a fresh "
                    "one from the generator at every step."),
            Mistake(_training(_loop_variant(zero_grad=False)), "the old gradients were never cleared, so "
                    "backward() added each step's gradients to all the earlier ones."),
            Mistake(_training(_loop_variant(clip="none")), "the optimizer used unclipped gradients: with "
                    "grad_clip > 0, scale their total norm down to grad_clip after backward() and before the "
                    "optimizer step (clipping after the step comes too late)."),
            Mistake(_training(_loop_variant(schedule="none")), "the learning rate never changed: set each step's "
                    "rate from the schedule in every param group."),
            Mistake(_training(_loop_variant(schedule="late")), "each step's learning rate was set after its "
                    "optimizer step, so every step used the previous step's rate."),
            Mistake(_training(_loop_variant(eval_generator="training")), "the evaluation drew its batches from the "
                    "training generator, which moved the training batches on: evaluate with a generator of its "
                    "own, seeded 0 each time."),
            Mistake(_training(_loop_variant(eval_generator="shared")), "the evaluation generator was seeded once "
                    "for the whole run, so each evaluation saw other batches: seed a new one at every evaluation."),
            Mistake(_training(_loop_variant(final_eval=False)), "the evaluation after the last step is missing."),
        ],
    )


# --- 6.4 one Muon update ---------------------------------------------------------------------------------


def _muon_variant(nesterov=True, side=max, scale=True, decay_first=True, new_momentum=True, ema=False):
    from ..muon import orthogonalize

    def muon_update(weight, grad, momentum, lr, beta, weight_decay):
        m = beta * momentum + ((1 - beta) * grad if ema else grad)
        o = orthogonalize(grad + beta * m if nesterov else m)
        step = lr * (0.2 * math.sqrt(side(weight.shape)) if scale else 1.0) * o
        new = weight * (1 - lr * weight_decay) - step if decay_first else (weight - step) * (1 - lr * weight_decay)
        return new, (m if new_momentum else momentum)
    return muon_update


@exercise("6.4", "One Muon update", "medium", 15, hints=(
    "Three moves: update the momentum with the new gradient, orthogonalize a Nesterov look-ahead (the gradient "
    "plus beta times the new momentum), then shrink the old weights by the weight decay and step against the "
    "orthogonalized direction, scaled to the size of an AdamW step.",
    "The momentum is a plain running sum, beta times the old momentum plus the gradient (no 1 - beta). The "
    "scale is 0.2 times the square root of the larger side of the matrix, for tall and wide ones alike. Weight "
    "decay multiplies the old weights, before the step is subtracted. Return the new momentum too.",
    "m = beta * momentum + grad; o = orthogonalize(grad + beta * m); the new weight is weight * (1 - lr * "
    "weight_decay) minus lr * 0.2 * sqrt(max(weight.shape)) * o; return it and m.",
))
def check_muon_update(muon_update) -> None:
    """Exercise 6.4: one Muon update of one weight matrix, compared with utils.muon.Muon."""

    def reference(weight, grad, momentum, lr, beta, weight_decay):
        w = torch.nn.Parameter(weight.clone())
        w.grad = grad.clone()
        opt = Muon([{"params": [w], "use_muon": True}], lr=lr, weight_decay=weight_decay, momentum=beta)
        opt.state[w]["momentum"] = momentum.clone()
        opt.step()
        return w.detach(), opt.state[w]["momentum"]

    gen = torch.Generator().manual_seed(6)

    def rand(*shape):
        return torch.randn(*shape, generator=gen)

    run_cases(
        "muon_update",
        muon_update,
        reference,
        [
            Case((rand(6, 6), rand(6, 6), torch.zeros(6, 6), 0.01, 0.9, 0.0),
                 hint="Momentum starts at zero here: the new momentum is the gradient itself, and it comes back "
                 "as the second item of the pair."),
            Case((rand(6, 6), rand(6, 6), rand(6, 6), 0.01, 0.95, 0.0),
                 hint="With a momentum already there, the direction to orthogonalize is the Nesterov look-ahead "
                 "made from the gradient and the new momentum."),
            Case((rand(4, 10), rand(4, 10), rand(4, 10), 0.02, 0.9, 0.0),
                 hint="A wide matrix: the step's scale comes from the larger of its two sides."),
            Case((rand(10, 4), rand(10, 4), rand(10, 4), 0.02, 0.9, 0.0),
                 hint="A tall matrix: the scale still comes from the larger side."),
            Case((rand(5, 8), rand(5, 8), rand(5, 8), 0.05, 0.9, 0.1),
                 hint="Weight decay shrinks the old weights, before the step is subtracted."),
        ],
        hint="Compare the three moves with the statement: the momentum, the direction, the scaled step with decay.",
        exercise="6.4",
        rules=[NoAttribute(Muon, "step", "write the update yourself; utils.muon.Muon is what the check compares "
                           "with.")],
        mistakes=[
            Mistake(_muon_variant(nesterov=False), "the momentum itself was orthogonalized; Muon looks one step "
                    "ahead (Nesterov) and orthogonalizes the gradient plus beta times the new momentum."),
            Mistake(_muon_variant(side=min), "the scale used the smaller side of the matrix; it comes "
                    "from the larger one, for wide and tall matrices alike."),
            Mistake(_muon_variant(scale=False), "the step is not scaled: the orthogonalized direction needs "
                    "the statement's scale (from the larger side of the matrix) to be as large as an AdamW step."),
            Mistake(_muon_variant(decay_first=False), "weight decay was applied after the step, to the new weights; "
                    "it shrinks the old weights, and then the step is subtracted."),
            Mistake(_muon_variant(new_momentum=False), "the momentum that came back is the old one: return the "
                    "updated momentum."),
            Mistake(_muon_variant(ema=True), "the momentum was averaged with a factor 1 - beta on the gradient; "
                    "Muon's momentum is a plain running sum: beta times the old momentum, plus the whole gradient."),
        ],
    )
