"""Checks for the exercises of lesson 12 (from a language model to an assistant: the SFT loss mask, the DPO
loss, GRPO's group-normalised advantages, pass@k).

The references come from utils (chat_template, dpo, grpo, metrics), never from the solution notebook; the
course's own functions are switched off while the learner's answer runs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import chat_template as _template
from .. import dpo as _dpo
from .. import grpo as _grpo
from .. import metrics as _metrics
from .core import Case, Mistake, run_cases, seeded_randn
from .hints import exercise
from .rules import CourseFunctionsOff

__all__ = ["check_sft_targets", "check_dpo_loss", "check_group_advantages", "check_pass_at_k"]


# --- 12.1 the loss mask --------------------------------------------------------------------------------


def _sft_targets(ids, learn):
    return [t if keep else -100 for t, keep in zip(ids[1:], learn[1:], strict=True)]


def _mask_case(pieces, label):
    """ids and learn flags of a conversation written as (ids, learned?) pieces."""
    ids = [i for piece, _ in pieces for i in piece]
    learn = [keep for piece, keep in pieces for _ in piece]
    return Case((ids, learn), label=label)


@exercise("12.1", "The loss mask of a conversation", "easy", 10, hints=(
    "A model at position t predicts token t + 1, so targets has one entry fewer than ids, and entry t is about "
    "token t + 1: whether *that* token is one the assistant writes decides whether it is learned.",
    "Pair every token after the first with its flag (ids[1:] with learn[1:]); keep the id where the flag is True "
    "and put -100 (cross-entropy's ignore_index) where it is False.",
    "[t if keep else -100 for t, keep in zip(ids[1:], learn[1:])]",
))
def check_sft_targets(sft_targets) -> None:
    """Exercise 12.1: targets of ids for next-token training, -100 where the next token is not learned."""
    run_cases(
        "sft_targets",
        sft_targets,
        _sft_targets,
        [
            _mask_case([([80, 1, 2, 82], False), ([81], False), ([5, 82], True)],
                       "one question (ids 80, 1, 2, 82), <|assistant|> (81), the reply 5 and its <|end|> (82)"),
            _mask_case([([80, 1, 82], False), ([81], False), ([7, 8, 82], True), ([80, 3, 4, 82], False),
                        ([81], False), ([9, 82], True)], "two turns: only the two replies are learned"),
            _mask_case([([80, 1, 82], False), ([81], False), ([82], True)],
                       "an empty reply: only its <|end|> is learned"),
            _mask_case([([81], False), ([4, 4, 4, 82], True)], "a reply of a repeated token"),
        ],
        hint="targets[t] is ids[t + 1] when learn[t + 1] is True, else -100; len(targets) == len(ids) - 1.",
        exercise="12.1",
        rules=[CourseFunctionsOff(_template, ("encode_chat", "sft_example", "reply_example"),
                                  "write the mask yourself from ids and learn.")],
        mistakes=[
            Mistake(lambda ids, learn: [t if keep else -100 for t, keep in zip(ids[1:], learn[:-1], strict=True)],
                    "the flags are one position off: the target at t is token t + 1, so its flag is learn[t + 1]."),
            Mistake(lambda ids, learn: list(ids[1:]), "nothing was masked: the question's tokens are learned too."),
            Mistake(lambda ids, learn: [t if keep else -100 for t, keep in zip(ids, learn, strict=True)],
                    "the targets were not shifted: position t must predict the *next* token, ids[t + 1]."),
            Mistake(lambda ids, learn: [t if keep else 0 for t, keep in zip(ids[1:], learn[1:], strict=True)],
                    "masked tokens were set to 0, which is a real token id; cross-entropy skips only -100."),
        ],
    )


# --- 12.2 the DPO loss ---------------------------------------------------------------------------------


def _dpo_reference(policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta):
    return _dpo.dpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta)[0]


def _logps(seed, n=6):
    return -seeded_randn(n, seed=seed).abs() * 3 - 1  # log-probabilities of whole replies: negative


@exercise("12.2", "The DPO loss", "medium", 15, hints=(
    "Each reply's log-probability counts only relative to the reference: the implicit reward is beta times "
    "(policy log-prob - reference log-prob). The loss asks the chosen reply's reward to beat the rejected one's.",
    "margin = beta * ((policy_chosen - reference_chosen) - (policy_rejected - reference_rejected)); the loss of a "
    "pair is -log(sigmoid(margin)); return the mean over the batch. F.logsigmoid is exact where "
    "log(sigmoid(...)) underflows.",
    "-F.logsigmoid(beta * ((policy_chosen - reference_chosen) - (policy_rejected - reference_rejected))).mean()",
))
def check_dpo_loss(dpo_loss) -> None:
    """Exercise 12.2: the mean DPO loss of a batch of pairs from four (batch,) tensors of log-probabilities."""
    run_cases(
        "dpo_loss",
        dpo_loss,
        _dpo_reference,
        [
            Case((torch.tensor([-2.0]), torch.tensor([-3.0]), torch.tensor([-2.0]), torch.tensor([-3.0]), 0.1),
                 hint="The policy is the reference: every margin is 0 and the loss is log 2 = 0.693."),
            Case((torch.tensor([-1.0, -4.0]), torch.tensor([-3.0, -2.0]), torch.tensor([-2.0, -2.0]),
                  torch.tensor([-2.0, -2.0]), 0.5), hint="Two pairs, one ranked right and one wrong."),
            Case((_logps(1), _logps(2), _logps(3), _logps(4), 0.1), hint="Six pairs, beta 0.1."),
            Case((_logps(5), _logps(6), _logps(7), _logps(8), 2.0), hint="A large beta: it multiplies the margin."),
            Case((torch.tensor([-500.0]), torch.tensor([-1.0]), torch.tensor([-1.0]), torch.tensor([-400.0]), 1.0),
                 hint="A margin of -898: sigmoid underflows to 0 in float32 and log(0) is -inf; the loss is 898."),
        ],
        hint="The mean over pairs of -log sigmoid(beta * ((pi_w - ref_w) - (pi_l - ref_l))).",
        atol=1e-5,
        exercise="12.2",
        rules=[CourseFunctionsOff(_dpo, ("dpo_loss",), "write the loss from its formula.")],
        mistakes=[
            Mistake(lambda pw, pl, rw, rl, b: -F.logsigmoid(b * (pw - pl)).mean(),
                    "the reference was left out: DPO compares each reply's log-probability with the reference's."),
            Mistake(lambda pw, pl, rw, rl, b: -F.logsigmoid(b * ((pl - rl) - (pw - rw))).mean(),
                    "chosen and rejected are swapped: the chosen reply's reward must be the larger."),
            Mistake(lambda pw, pl, rw, rl, b: -(b * F.logsigmoid((pw - rw) - (pl - rl))).mean(),
                    "beta multiplies the log-sigmoid; it belongs inside, scaling the margin."),
            Mistake(lambda pw, pl, rw, rl, b: -F.logsigmoid(b * ((pw - rw) - (pl - rl))).sum(),
                    "the losses were summed; return their mean over the pairs."),
            Mistake(lambda pw, pl, rw, rl, b: -torch.log(torch.sigmoid(b * ((pw - rw) - (pl - rl)))).mean(),
                    "log(sigmoid(m)) underflows to -inf for a very negative margin: use F.logsigmoid."),
        ],
    )


# --- 12.3 group-normalised advantages ------------------------------------------------------------------


def _advantages(rewards):
    return _grpo.group_advantages(rewards)


@exercise("12.3", "GRPO's advantages", "easy", 10, hints=(
    "Each prompt's group is its own baseline: a reply is good or bad compared with its siblings, the other "
    "replies to the same prompt, never with the replies to other prompts.",
    "Work along dim 1 (the group): subtract the group's mean, divide by the group's sample standard "
    "deviation (torch's default, dividing by G - 1) plus 1e-4, keeping dim 1 so that it broadcasts.",
    "(rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-4)",
))
def check_group_advantages(group_advantages) -> None:
    """Exercise 12.3: (prompts, group) rewards -> advantages normalised within each group."""
    run_cases(
        "group_advantages",
        group_advantages,
        _advantages,
        [
            Case((torch.tensor([[1.0, 0.0, 0.0, 1.0]]),), hint="One group, two right of four: +-0.866."),
            Case((torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0]]),),
                 hint="Two groups: each is normalised with its own mean and spread."),
            Case((torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0]]),),
                 hint="A group whose replies are all right: every advantage is 0 (and not NaN)."),
            Case((seeded_randn(3, 8, seed=1),), hint="Rewards that are not 0 or 1: the same formula."),
        ],
        hint="(r - mean of its group) / (sample std of its group + 1e-4), group by group.",
        atol=1e-4,
        exercise="12.3",
        rules=[CourseFunctionsOff(_grpo, ("group_advantages",), "compute the advantages yourself.")],
        mistakes=[
            Mistake(lambda r: (r - r.mean()) / (r.std() + 1e-4),
                    "the mean and spread were taken over the whole batch; each prompt's group is its own baseline "
                    "(dim 1)."),
            Mistake(lambda r: r - r.mean(1, keepdim=True), "the advantages were not divided by the group's spread."),
            Mistake(lambda r: (r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True, correction=0) + 1e-4),
                    "that is the population standard deviation (dividing by G); use the sample one (G - 1)."),
            Mistake(lambda r: (r - r.mean(1, keepdim=True)) / r.std(1, keepdim=True),
                    "without the 1e-4 a group of equal rewards divides 0 by 0."),
            Mistake(lambda r: (r - r.mean(0, keepdim=True)) / (r.std(0, keepdim=True) + 1e-4),
                    "dim 0 runs over prompts; the group of one prompt's replies is dim 1."),
        ],
    )


# --- 12.4 pass@k ---------------------------------------------------------------------------------------


def _pass_at_k(n, correct, k):
    return _metrics.pass_at_k(n, correct, k)


def _same_number(expected, got) -> str | None:
    """None when got is the expected probability (a plain number), else why not."""
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return f"expected a number (a float), got {type(got).__name__}"
    return None if math.isclose(got, expected, abs_tol=1e-9) else f"off by {got - expected:+.3g}"


@exercise("12.4", "pass@k from n samples", "medium", 15, hints=(
    "pass@k asks: if you drew k of the n replies (without putting any back), how likely is at least one of them "
    "right? It is easier to count the draws that hold no right reply at all.",
    "The draws of k from the n - correct wrong replies, over all draws of k from n: math.comb(n - correct, k) / "
    "math.comb(n, k) is the chance of no right reply; pass@k is 1 minus that. When fewer than k replies are "
    "wrong, every draw holds a right one.",
    "1.0 if n - correct < k else 1 - math.comb(n - correct, k) / math.comb(n, k)",
))
def check_pass_at_k(pass_at_k) -> None:
    """Exercise 12.4: the unbiased pass@k estimate from n samples of which `correct` were right."""
    cases = [Case((10, 3, 1), hint="k = 1: pass@1 is the share of right samples, 3/10."),
             Case((5, 2, 2), hint="1 - C(3, 2) / C(5, 2) = 1 - 3/10."),
             Case((16, 4, 8), hint="n = 16, 4 right, k = 8."),
             Case((8, 0, 4), hint="No right sample: pass@k is 0."),
             Case((5, 4, 2), hint="Only one wrong reply, and k = 2: every draw of 2 holds a right one."),
             Case((200, 7, 50), hint="Large n: math.comb handles it exactly.")]
    run_cases(
        "pass_at_k", pass_at_k, _pass_at_k, cases,
        hint="1 - C(n - correct, k) / C(n, k), or 1 when n - correct < k.",
        compare=_same_number,
        exercise="12.4",
        rules=[CourseFunctionsOff(_metrics, ("pass_at_k",), "count the draws yourself.")],
        mistakes=[
            Mistake(lambda n, c, k: c / n,
                    "that is pass@1 whatever k is; with k tries the chance of a right one grows."),
            Mistake(lambda n, c, k: 1 - (1 - c / n) ** k,
                    "that draws with replacement (the same sample can come twice); the n samples are drawn from "
                    "without putting back, which the counts C(n - correct, k) / C(n, k) give."),
            Mistake(lambda n, c, k: math.comb(n - c, k) / math.comb(n, k) if n - c >= k else 0.0,
                    "that is the chance that none of the k is right; pass@k is 1 minus it."),
        ],
    )


