"""Supervised fine-tuning: a base model learns, from questions and answers in the chat template, to answer.

    history = finetune(model, tok, train_tasks, steps=600)        # the loss on the assistant's tokens only
    finetune(model, tok, train_tasks, steps=600, mask_prompt=False)  # every token, the question's too

The objective is the pre-training one, next-token cross-entropy, restricted to the tokens the assistant
writes: for a conversation x (the question) and y (the answer and its <|end|>),

    loss = - (1/|y|) sum_t log p(y_t | x, y_<t)

averaged, in a batch, over all the reply tokens of all its conversations (cross-entropy's mean over the
targets that are not -100). The question's tokens are inputs only (their targets are -100, which
cross-entropy skips), so none of the model's capacity goes to predicting what users ask. With
mask_prompt=False the question's tokens are targets too, and the mean runs over them as well.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import torch

from .chat_template import END, ChatTokenizer, sft_example
from .tasks import Task


@dataclass
class SFTHistory:
    steps: list = field(default_factory=list)
    loss: list = field(default_factory=list)  # the masked loss of every step's batch
    seconds: float = 0.0


def pad_batch(examples: list[tuple[list[int], list[int]]], pad_id: int,
              device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) of a batch of examples of different lengths, padded on the right: inputs with
    pad_id, targets with -100, so padding is read by nothing (it comes after every real token, and the
    attention is causal) and learned by nothing."""
    n = max(len(x) for x, _ in examples)
    inputs = torch.tensor([x + [pad_id] * (n - len(x)) for x, _ in examples], device=device)
    targets = torch.tensor([y + [-100] * (n - len(y)) for _, y in examples], device=device)
    return inputs, targets


def finetuning_optimizer(model, lr: float) -> torch.optim.Optimizer:
    """The optimizer of all three fine-tuning stages (SFT, DPO, GRPO): AdamW over every weight, no weight
    decay (a few hundred steps from a trained model should not pull it towards 0), beta2 0.99 as in
    pre-training (small, noisy batches)."""
    return torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.0)


def finetune(model, tok: ChatTokenizer, tasks: list[Task], steps: int, batch_size: int = 32, lr: float = 1e-3,
             mask_prompt: bool = True, seed: int = 0, progress: bool = True) -> SFTHistory:
    """Train on the tasks' (prompt, answer) pairs in the chat template with AdamW, a linear warm-up and a
    linear decay to zero; returns the loss of every step."""
    from tqdm.auto import tqdm

    _check_finetune_args(tasks, steps, batch_size)
    examples = [sft_example(tok, t.prompt, t.answer, mask_prompt) for t in tasks]
    device = next(model.parameters()).device
    optimizer = finetuning_optimizer(model, lr)
    warmup = min(20, steps)
    # a linear warm-up over `warmup` steps, then a linear decay that reaches 0 after the last step
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, (steps - s) / (steps - warmup + 1)))
    rng = random.Random(seed)
    order: list[int] = []
    history = SFTHistory()
    model.train()
    start = time.perf_counter()
    for step in tqdm(range(steps), desc="SFT", disable=not progress):
        if len(order) < batch_size:  # a new epoch, shuffled
            more = list(range(len(examples)))
            rng.shuffle(more)
            order += more
        batch, order = [examples[i] for i in order[:batch_size]], order[batch_size:]
        inputs, targets = pad_batch(batch, tok.id_of(END), device)
        loss = model(inputs, targets)[1]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        history.steps.append(step + 1)
        history.loss.append(loss.item())
    history.seconds = time.perf_counter() - start
    model.eval()
    return history


def _check_finetune_args(tasks, steps: int, batch_size: int) -> None:
    if not tasks:
        raise ValueError("no tasks to fine-tune on: give a list of utils.tasks.Task")
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be at least 1, got {steps} and {batch_size}")
