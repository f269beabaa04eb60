"""Checks for the exercises of lesson 06 (training the GPT)."""

from __future__ import annotations

import torch

from ..model import GPT, GPTConfig
from ..train import TrainConfig, lr_at
from .core import Case, CheckFailed, run_cases, seeded_randint


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


def check_training_step(training_step) -> None:
    """Exercise 6.3: one step (forward, loss, backward, clip, optimizer step) moves the weights
    exactly as the reference step does."""
    cfg = GPTConfig(vocab_size=11, context_length=8, n_layer=1, n_head=2, n_embd=16)
    x = seeded_randint(0, 11, (3, 8), seed=0)
    y = seeded_randint(0, 11, (3, 8), seed=1)

    def fresh():
        torch.manual_seed(0)
        model = GPT(cfg)
        return model, torch.optim.AdamW(model.parameters(), lr=1e-2)

    def reference_step(model, optimizer, x, y, clip):
        _, loss, _ = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        return loss.item()

    for clip in (1.0, 0.01):
        ref_model, ref_opt = fresh()
        ref_loss = reference_step(ref_model, ref_opt, x, y, clip)
        reference_step(ref_model, ref_opt, x, y, clip)  # twice: a stale gradient would show
        model, opt = fresh()
        try:
            loss = training_step(model, opt, x, y, clip)
            training_step(model, opt, x, y, clip)
        except NotImplementedError:
            raise CheckFailed("training_step is not written yet: replace `raise NotImplementedError()` with your "
                              "code, run that cell, then run this check again.") from None
        if not isinstance(loss, float):
            raise CheckFailed(f"training_step should return the loss as a Python float (loss.item()), "
                              f"got {type(loss).__name__}")
        if abs(loss - ref_loss) > 1e-5:
            raise CheckFailed(f"with clip={clip}: the first step's loss is {loss:.5f}, expected {ref_loss:.5f}. "
                              "Hint: compute the loss with model(x, y) before changing anything.")
        for (name, p), q in zip(model.named_parameters(), ref_model.parameters(), strict=True):
            if not torch.allclose(p, q, atol=1e-6):
                hint = ("Hint: clear old gradients (optimizer.zero_grad()) before loss.backward(), or they add up."
                        if clip == 1.0 else
                        "Hint: clip with torch.nn.utils.clip_grad_norm_(model.parameters(), clip) after "
                        "backward() and before optimizer.step().")
                raise CheckFailed(f"with clip={clip}: after two steps, parameter {name} differs from the "
                                  f"reference step's.\n  {hint}")
    print("✓ training_step: the weights move exactly as the reference step moves them (2 clip settings).")


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
