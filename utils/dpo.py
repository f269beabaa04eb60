"""Direct preference optimisation (Rafailov et al. 2023): learning from pairs "this answer, not that one".

    pairs = preference_pairs(model, tok, tasks, samples=8)       # a right and a wrong reply of the model's own
    reference = copy.deepcopy(model).eval()                      # frozen: where the policy started
    history = train_dpo(model, reference, tok, pairs, steps=150, beta=0.1)

For a prompt x, a preferred reply y_w and a rejected one y_l, with pi the model being trained and
pi_ref the frozen model it started from:

    loss = -log sigmoid( beta * [ (log pi(y_w|x) - log pi_ref(y_w|x)) - (log pi(y_l|x) - log pi_ref(y_l|x)) ] )

beta * (log pi - log pi_ref) is the "implicit reward" of a reply: DPO raises the preferred reply's above
the rejected one's. It is the RLHF objective (maximise reward, minus beta times the KL divergence to
pi_ref) solved in closed form, so no reward model and no sampling are needed while training; lessons/12
derives it. A small beta lets the policy move far from the reference, a large one holds it close.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .chat import MAX_REPLY, generate_until_end
from .chat_template import END, ChatTokenizer, prompt_ids, reply_example
from .sft import finetuning_optimizer, pad_batch
from .tasks import Task, grade


class Pair(NamedTuple):
    task: Task
    prompt: list[int]  # the prompt's ids, ending in <|assistant|>
    chosen: list[int]  # the ids of a reply the grader accepts (as sampled, without <|end|>)
    rejected: list[int]  # the ids of a reply it refuses


def sequence_log_probs(model, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(reply | prompt) of every row: the sum of the log-probabilities of the target tokens that are
    not -100 (the reply and its <|end|>). (batch,)"""
    logits = model(inputs)[0]
    log_probs = F.log_softmax(logits.float(), dim=-1)
    keep = targets != -100
    picked = log_probs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * keep).sum(-1)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, reference_chosen: torch.Tensor,
             reference_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean DPO loss over a batch of pairs, and each pair's margin: the chosen reply's implicit reward
    minus the rejected one's, beta * [(pi_w - ref_w) - (pi_l - ref_l)] (positive = the pair is ranked
    right). Every argument is a (batch,) tensor of sequence log-probabilities."""
    margin = beta * ((policy_chosen - reference_chosen) - (policy_rejected - reference_rejected))
    return -F.logsigmoid(margin).mean(), margin.detach()


def preference_pairs(model, tok: ChatTokenizer, tasks: list[Task], samples: int = 8, temperature: float = 1.0,
                     max_new_tokens: int = MAX_REPLY, seed: int = 0) -> list[Pair]:
    """One (right, wrong) pair per task where the model's own samples hold both; tasks it always gets
    right or always gets wrong give no pair (there is nothing to prefer)."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    prompts = [prompt_ids(tok, [{"role": "user", "content": t.prompt}]) for t in tasks]
    replies = generate_until_end(model, tok, [p for p in prompts for _ in range(samples)], max_new_tokens,
                                 temperature, generator)
    rng = random.Random(seed)
    pairs = []
    for i, task in enumerate(tasks):
        group = replies[i * samples:(i + 1) * samples]
        right = [r for r in group if grade(task.kind, tok.decode(r), task.answer)]
        wrong = [r for r in group if not grade(task.kind, tok.decode(r), task.answer)]
        if right and wrong:
            pairs.append(Pair(task, prompts[i], rng.choice(right), rng.choice(wrong)))
    return pairs


def pair_batch(tok: ChatTokenizer, pairs: list[Pair], max_new_tokens: int = MAX_REPLY, device=None):
    """(inputs, targets) of the chosen replies and of the rejected ones, the prompt masked in both."""
    end = tok.id_of(END)
    chosen = [reply_example(p.prompt, p.chosen, end, max_new_tokens) for p in pairs]
    rejected = [reply_example(p.prompt, p.rejected, end, max_new_tokens) for p in pairs]
    return pad_batch(chosen, end, device), pad_batch(rejected, end, device)


@torch.no_grad()
def kl_to_reference(policy, reference, tok: ChatTokenizer, tasks: list[Task], samples: int = 4,
                    max_new_tokens: int = MAX_REPLY, seed: int = 0) -> float:
    """KL(policy || reference) per reply, in nats, estimated on replies sampled from the policy:
    the mean of log pi(y|x) - log pi_ref(y|x) over them (its expectation under pi is the KL)."""
    device = next(policy.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    prompts = [prompt_ids(tok, [{"role": "user", "content": t.prompt}]) for t in tasks for _ in range(samples)]
    replies = generate_until_end(policy, tok, prompts, max_new_tokens, 1.0, generator)
    end = tok.id_of(END)
    inputs, targets = pad_batch([reply_example(p, r, end, max_new_tokens) for p, r in zip(prompts, replies,
                                                                                            strict=True)], end, device)
    policy.eval()
    reference.eval()
    return (sequence_log_probs(policy, inputs, targets) - sequence_log_probs(reference, inputs, targets)).mean().item()


@dataclass
class DPOHistory:
    loss: list = field(default_factory=list)
    margin: list = field(default_factory=list)  # mean margin of each step's batch
    accuracy: list = field(default_factory=list)  # share of the batch's pairs with a positive margin
    seconds: float = 0.0


def train_dpo(policy, reference, tok: ChatTokenizer, pairs: list[Pair], steps: int, beta: float = 0.1,
              batch_size: int = 32, lr: float = 1e-4, nll: float = 0.0, seed: int = 0,
              progress: bool = True) -> DPOHistory:
    """Minimise dpo_loss over shuffled batches of pairs with AdamW; the reference never changes.

    nll > 0 adds nll times the chosen replies' mean token cross-entropy (the SFT loss on them), which keeps
    DPO from lowering the chosen replies' own probability while it widens the margin (Pang et al. 2024)."""
    from tqdm.auto import tqdm

    _check_dpo_args(pairs, steps, beta)
    device = next(policy.parameters()).device
    optimizer = finetuning_optimizer(policy, lr)
    rng = random.Random(seed)
    history = DPOHistory()
    # Dropout off in both (eval mode, also while learning): at the first step the policy is the reference,
    # and every margin must then be exactly 0.
    reference.eval()
    policy.eval()
    start = time.perf_counter()
    for _ in tqdm(range(steps), desc="DPO", disable=not progress):
        batch = rng.sample(pairs, min(batch_size, len(pairs)))
        (xw, yw), (xl, yl) = pair_batch(tok, batch, device=device)
        with torch.no_grad():
            ref_w, ref_l = sequence_log_probs(reference, xw, yw), sequence_log_probs(reference, xl, yl)
        chosen = sequence_log_probs(policy, xw, yw)
        loss, margin = dpo_loss(chosen, sequence_log_probs(policy, xl, yl), ref_w, ref_l, beta)
        if nll:
            loss = loss - nll * chosen.sum() / (yw != -100).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optimizer.step()
        history.loss.append(loss.item())
        history.margin.append(margin.mean().item())
        history.accuracy.append((margin > 0).float().mean().item())
    history.seconds = time.perf_counter() - start
    return history


def _check_dpo_args(pairs, steps: int, beta: float) -> None:
    if not pairs:
        raise ValueError("no preference pairs: the model's samples were all right or all wrong on every task; "
                         "sample more (samples=...) or at a higher temperature")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if not beta > 0:
        raise ValueError(f"beta must be > 0 (it scales the implicit reward), got {beta}")
