"""Checks for the exercises of lesson 06 (training the GPT)."""

from __future__ import annotations

import math

import torch

from ..model import GPT, GPTConfig
from ..train import TrainConfig, lr_at
from .core import Case, difference, run_cases, seeded_randint


def _batch_reference(data, starts, context_length):
    x = torch.stack([data[s:s + context_length] for s in starts])
    y = torch.stack([data[s + 1:s + 1 + context_length] for s in starts])
    return x, y


def check_make_batch(make_batch) -> None:
    """Exercise 6.1: the windows at `starts`, and the targets shifted by one."""
    data = torch.arange(100, 140)
    run_cases(
        "make_batch",
        make_batch,
        _batch_reference,
        [
            Case((data, [0, 5], 4)),
            Case((data, [30], 8), hint="The last window may end right at the end of the data: y needs one more."),
            Case((data, [3, 3, 10], 1), hint="context_length 1: each x is one token, each y the token after it."),
        ],
        hint="x = data[s : s + context_length] and y = data[s + 1 : s + 1 + context_length] for each start s, "
        "stacked with torch.stack into (batch, context_length).",
    )


def check_lr_at(learning_rate) -> None:
    """Exercise 6.2: warm-up then cosine decay, as a function of (step, lr, min_lr, warmup, max_steps)."""

    def reference(step, lr, min_lr, warmup_steps, max_steps):
        cfg = TrainConfig(lr=lr, min_lr=min_lr, warmup_steps=warmup_steps, max_steps=max_steps)
        return lr_at(step, cfg)

    cases = [Case((s, 1e-3, 1e-4, 100, 2000)) for s in (0, 49, 99, 100)]
    cases[0].hint = "Warm-up is linear and starts above zero: at step 0 use lr * (step + 1) / warmup_steps."
    cases += [
        Case((1050, 1e-3, 1e-4, 100, 2000), hint="Halfway through the decay the cosine term is 0.5: "
             "min_lr + 0.5 * (lr - min_lr)."),
        Case((2000, 1e-3, 1e-4, 100, 2000), hint="At max_steps (and after) the rate is min_lr."),
        Case((5000, 1e-3, 1e-4, 100, 2000), hint="After max_steps the rate stays at min_lr."),
        Case((700, 6e-4, 0.0, 10, 1000)),
    ]
    run_cases("learning_rate", learning_rate, reference, cases, rtol=1e-6, atol=1e-12,
              hint="progress = (step - warmup) / (max_steps - warmup); "
                   "lr(step) = min_lr + 0.5 * (1 + cos(pi * progress)) * (lr - min_lr).")


# --- Exercise 6.3 ----------------------------------------------------------------------------------

_TINY = GPTConfig(vocab_size=11, context_length=8, n_layer=1, n_head=2, n_embd=16)


def _reference_step(model, optimizer, x, y, clip):
    _, loss, _ = model(x, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    return loss.item()


class _Moves(dict):
    """How far each weight moved, name -> tensor; a message shows it as one number."""

    def total(self) -> float:
        return math.sqrt(sum(t.double().square().sum().item() for t in self.values()))

    def __repr__(self) -> str:
        return f"the weights move {self.total():.4g} in all (the norm of every change together)"


def _kind(value) -> str:
    if isinstance(value, float):
        return "a Python float"
    if value is None:
        return "None (nothing was returned)"
    kind = type(value)
    return f"a {kind.__name__}" if kind.__module__ == "builtins" else f"a {kind.__module__}.{kind.__name__}"


def _run_steps(step, look_at: str, optimizer_name: str, clip: float, steps: int):
    """`steps` steps of a fresh tiny GPT, one batch each; returns what the case looks at: the kind of
    value the first step returned, that value, or how far every weight moved."""
    with torch.random.fork_rng(devices=[]):  # the same start every time, and the learner's seed left alone
        torch.manual_seed(0)
        model = GPT(_TINY)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    if optimizer_name == "sgd":  # SGD moves by the gradient itself, so a missing clip or a stale gradient shows
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    returned = []
    for i in range(steps):
        x, y = seeded_randint(0, 11, (3, 8), seed=2 * i), seeded_randint(0, 11, (3, 8), seed=2 * i + 1)
        returned.append(step(model, optimizer, x, y, clip))
    if look_at == "kind":
        return _kind(returned[0])
    if look_at == "loss":
        return returned[0]
    return _Moves({name: p.detach() - before[name] for name, p in model.named_parameters()})


def _step_difference(expected, got) -> str | None:
    if isinstance(expected, str):
        return None if got == expected else "the loss should come back as a Python float"
    if not isinstance(expected, _Moves):
        return difference(expected, got, rtol=1e-5, atol=1e-6)
    if any(torch.isnan(t).any() for t in got.values()):
        return "some weights became NaN"
    if got.total() == 0:
        return "no weight moved at all"
    ratio = got.total() / expected.total()
    if not math.isclose(ratio, 1, rel_tol=1e-3):
        return f"the weights moved {ratio:.3g} times as far as expected"
    scale = max(t.abs().max().item() for t in expected.values())
    for name, move in expected.items():
        if not torch.allclose(got[name], move, rtol=1e-4, atol=1e-4 * scale):
            return f"{name} moved differently"
    return None


def check_training_step(training_step) -> None:
    """Exercise 6.3: one step (forward, loss, backward, clip, optimizer step) on a tiny GPT moves the
    weights exactly as the reference step does, and returns the loss as a float."""
    if not callable(training_step):
        run_cases("training_step", training_step, _reference_step, [])  # raises the usual "pass the function"
    no_clip = 1e6  # far above any gradient norm here: clipping changes nothing
    run_cases(
        "training_step",
        lambda *args: _run_steps(training_step, *args),
        lambda *args: _run_steps(_reference_step, *args),
        [
            Case(("moves", "sgd", no_clip, 1), label="one step with SGD (clip too large to matter): how far "
                 "each weight moves",
                 hint="Order matters: optimizer.step() uses the gradients that backward() leaves in each "
                      "weight's .grad, so it comes after backward(), with no clearing of the gradients in "
                      "between. If no weight moved, the step came too early or found no gradients. Step the "
                      "optimizer you are given, not a new one."),
            Case(("kind", "sgd", no_clip, 1), label="one step: what training_step returns",
                 hint="Return the loss as a plain Python float: a tensor would keep the whole graph of the "
                      "step (and its memory) alive. A one-element tensor has a method that gives its number. "
                      "None means the function has no return."),
            Case(("loss", "sgd", no_clip, 1), label="one step: the loss it returns",
                 hint="Return the loss of (x, y) at the weights the step started from, the one you "
                      "backpropagated, not a loss computed again after optimizer.step()."),
            Case(("moves", "sgd", no_clip, 2), label="two steps in a row with SGD, on two batches",
                 hint="One step is right but two are not: backward() adds the new gradients to those already "
                      "in .grad, so the second step also used the first batch's. Clear the old gradients in "
                      "every step, before backward()."),
            Case(("moves", "sgd", 0.01, 1), label="one step with SGD and clip=0.01",
                 hint="With clip=0.01 the gradients must be scaled down before the step: clip their total "
                      "norm (all weights together, not each value) to the clip argument, after backward() has "
                      "made them and before optimizer.step() uses them."),
            Case(("moves", "adamw", 1.0, 2), label="two steps with AdamW and clip=1.0, as in the course's "
                 "training loop"),
            Case(("moves", "adamw", 0.01, 2), label="two steps with AdamW and clip=0.01"),
        ],
        hint="Each step: one forward pass model(x, y) for the loss, clear the old gradients, backward(), clip "
             "the total gradient norm to clip, then the step of the optimizer you are given; return the loss "
             "as a Python float.",
        compare=_step_difference,
    )


def check_muon_update(muon_update) -> None:
    """Exercise 6.4: one Muon update of one weight matrix, compared with utils.muon.Muon."""
    from ..muon import Muon

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
                 hint="Start from the momentum: m = beta * momentum + grad, and return it with the new weights."),
            Case((rand(6, 6), rand(6, 6), rand(6, 6), 0.01, 0.95, 0.0),
                 hint="Nesterov: orthogonalize grad + beta * m (with the new m), not m alone."),
            Case((rand(4, 10), rand(4, 10), rand(4, 10), 0.02, 0.9, 0.0),
                 hint="The step is scaled by 0.2 * sqrt(max(rows, cols)): the larger side of the matrix."),
            Case((rand(10, 4), rand(10, 4), rand(10, 4), 0.02, 0.9, 0.0),
                 hint="A tall matrix: the scale still uses the larger side, max(rows, cols)."),
            Case((rand(5, 8), rand(5, 8), rand(5, 8), 0.05, 0.9, 0.1),
                 hint="Weight decay shrinks the old weights: weight * (1 - lr * weight_decay), then the step."),
        ],
        hint="m = beta * momentum + grad; o = orthogonalize(grad + beta * m); "
             "new weight = weight * (1 - lr * weight_decay) - lr * 0.2 * sqrt(max(rows, cols)) * o.",
    )
