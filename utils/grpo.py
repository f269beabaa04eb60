"""Reinforcement learning with verifiable rewards, GRPO-style (Shao et al. 2024): the grader is the reward.

    history = train_grpo(model, reference, tok, train_tasks, steps=100, group=8)

Each step: a few prompts, a *group* of G replies sampled for each from the current policy, a reward for
each reply (1 if the grader accepts it, else 0), and each reply's advantage measured against its own group:

    A_i = (r_i - mean(r_1..r_G)) / (std(r_1..r_G) + eps)        (std: the sample standard deviation)

A reply better than its siblings is made more likely, a worse one less, and a group whose replies all
score the same teaches nothing (every A_i is 0): no value network is needed, the group is the baseline.
The loss over the reply's tokens t, with ratio_t = pi(y_t | ...) / pi_old(y_t | ...):

    loss = - mean_t [ min(ratio_t A, clip(ratio_t, 1 - eps, 1 + eps) A) ] + kl * mean_t KL_t(pi || pi_ref)

KL_t is estimated per token as exp(q) - q - 1 with q = log pi_ref - log pi (always >= 0). The clip stops
one batch from moving the policy far when it is reused for several updates; the KL term keeps it near the
reference, where the language it learned in pre-training still holds.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .chat import generate_until_end
from .chat_template import END, ChatTokenizer, prompt_ids, reply_example
from .sft import finetuning_optimizer, pad_batch
from .tasks import Task, grade


def group_advantages(rewards: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """(prompts, group) rewards -> advantages: each reward minus its group's mean, over its group's
    standard deviation (the sample one, divided by G - 1, as TRL's GRPOTrainer computes it) plus eps;
    0 for a group whose rewards are all equal."""
    if rewards.dim() != 2 or rewards.shape[1] < 2:
        raise ValueError(f"rewards must be (prompts, group) with a group of at least 2, got {tuple(rewards.shape)}")
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    return centred / (rewards.std(dim=1, keepdim=True) + eps)


def token_log_probs(model, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target token) at every position (batch, n); 0 where the target is -100."""
    log_probs = F.log_softmax(model(inputs)[0].float(), dim=-1)
    picked = log_probs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return picked * (targets != -100)


def grpo_loss(new: torch.Tensor, old: torch.Tensor, ref: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
              clip: float = 0.2, kl: float = 0.04) -> tuple[torch.Tensor, torch.Tensor]:
    """The clipped policy-gradient loss plus kl times the KL estimate, each averaged over a reply's tokens
    and then over the replies; and the mean KL. new, old, ref: (replies, n) token log-probabilities under
    the policy, the policy that sampled, and the reference; advantages (replies,); mask (replies, n) True on
    the reply's tokens."""
    ratio = torch.exp(new - old)
    a = advantages[:, None]
    surrogate = torch.minimum(ratio * a, ratio.clamp(1 - clip, 1 + clip) * a)
    q = ref - new
    kl_per_token = torch.exp(q) - q - 1
    per_token = -surrogate + kl * kl_per_token
    lengths = mask.sum(-1).clamp(min=1)
    loss = ((per_token * mask).sum(-1) / lengths).mean()
    mean_kl = ((kl_per_token * mask).sum(-1) / lengths).mean()
    return loss, mean_kl.detach()


@dataclass
class GRPOHistory:
    reward: list = field(default_factory=list)  # mean reward of each step's samples: training accuracy
    kl: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    useful: list = field(default_factory=list)  # share of the step's groups with both rewards (a signal)
    seconds: float = 0.0


def train_grpo(policy, reference, tok: ChatTokenizer, tasks: list[Task], steps: int, prompts_per_step: int = 16,
               group: int = 8, updates: int = 2, lr: float = 5e-5, clip: float = 0.2, kl: float = 0.04,
               temperature: float = 1.0, max_new_tokens: int = 24, seed: int = 0, progress: bool = True,
               callback=None) -> GRPOHistory:
    """GRPO on the tasks: every step samples a group per prompt, grades it, and makes `updates` gradient
    steps on the same samples (the clip matters from the second on). callback(step, history) after each."""
    from tqdm.auto import tqdm

    _check_grpo_args(tasks, steps, group, prompts_per_step)
    device = next(policy.parameters()).device
    optimizer = finetuning_optimizer(policy, lr)
    rng = random.Random(seed)
    generator = torch.Generator(device=device).manual_seed(seed)
    end = tok.id_of(END)
    history = GRPOHistory()
    # Dropout stays off throughout (eval mode, also while learning): the ratio pi / pi_old must be 1 before
    # the first update, and the log-probabilities of the policy, pi_old and the reference must be comparable.
    reference.eval()
    policy.eval()
    start = time.perf_counter()
    for step in tqdm(range(steps), desc="GRPO", disable=not progress):
        batch = rng.sample(tasks, prompts_per_step)
        prompts = [prompt_ids(tok, [{"role": "user", "content": t.prompt}]) for t in batch]
        repeated = [p for p in prompts for _ in range(group)]
        replies = generate_until_end(policy, tok, repeated, max_new_tokens, temperature, generator)
        rewards = torch.tensor([[float(grade(t.kind, tok.decode(r), t.answer))
                                 for r in replies[i * group:(i + 1) * group]] for i, t in enumerate(batch)])
        advantages = group_advantages(rewards).flatten().to(device)
        examples = [reply_example(p, r, end, max_new_tokens) for p, r in zip(repeated, replies, strict=True)]
        inputs, targets = pad_batch(examples, end, device)
        mask = targets != -100
        with torch.no_grad():
            old = token_log_probs(policy, inputs, targets)
            ref = token_log_probs(reference, inputs, targets)
        for _ in range(updates):
            loss, mean_kl = grpo_loss(token_log_probs(policy, inputs, targets), old, ref, advantages, mask, clip, kl)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
            optimizer.step()
        history.reward.append(rewards.mean().item())
        history.kl.append(mean_kl.item())
        history.loss.append(loss.item())
        history.useful.append(((rewards.max(1).values - rewards.min(1).values) > 0).float().mean().item())
        if callback:
            callback(step + 1, history)
    history.seconds = time.perf_counter() - start
    return history


def _check_grpo_args(tasks, steps: int, group: int, prompts_per_step: int) -> None:
    if len(tasks) < prompts_per_step:
        raise ValueError(f"{len(tasks)} tasks cannot fill a step of prompts_per_step={prompts_per_step}: give more "
                         "tasks or ask for fewer prompts a step")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if group < 2:
        raise ValueError(f"a group needs at least 2 replies to compare (group={group}); GRPO's baseline is the "
                         "group's mean")
