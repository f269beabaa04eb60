"""Wrong answers for lesson 12's checks (the loss mask, the DPO loss, GRPO's advantages, pass@k)."""

import math

import torch
import torch.nn.functional as F

from utils import dpo, grpo, metrics
from utils.chat_template import sft_example

from . import WrongAnswer


def _via_sft_example(ids, learn):
    sft_example(None, "", "")  # any call of the course's function is refused
    return []


WRONG = [
    WrongAnswer("12.1", "flags one position off",
                lambda ids, learn: [t if k else -100 for t, k in zip(ids[1:], learn[:-1], strict=True)],
                "one position off"),
    WrongAnswer("12.1", "no mask", lambda ids, learn: list(ids[1:]), "nothing was masked"),
    WrongAnswer("12.1", "not shifted", lambda ids, learn: [t if k else -100 for t, k in zip(ids, learn, strict=True)],
                "not shifted"),
    WrongAnswer("12.1", "masked with 0",
                lambda ids, learn: [t if k else 0 for t, k in zip(ids[1:], learn[1:], strict=True)], "-100"),
    WrongAnswer("12.1", "calls sft_example", _via_sft_example, "sft_example"),
    WrongAnswer("12.2", "no reference", lambda pw, pl, rw, rl, b: -F.logsigmoid(b * (pw - pl)).mean(), "reference"),
    WrongAnswer("12.2", "swapped", lambda pw, pl, rw, rl, b: -F.logsigmoid(b * ((pl - rl) - (pw - rw))).mean(),
                "swapped"),
    WrongAnswer("12.2", "beta outside", lambda pw, pl, rw, rl, b: -(b * F.logsigmoid((pw - rw) - (pl - rl))).mean(),
                "inside"),
    WrongAnswer("12.2", "sum", lambda pw, pl, rw, rl, b: -F.logsigmoid(b * ((pw - rw) - (pl - rl))).sum(), "mean"),
    WrongAnswer("12.2", "log of sigmoid",
                lambda pw, pl, rw, rl, b: -torch.log(torch.sigmoid(b * ((pw - rw) - (pl - rl)))).mean(), "logsigmoid"),
    WrongAnswer("12.2", "calls utils.dpo", lambda pw, pl, rw, rl, b: dpo.dpo_loss(pw, pl, rw, rl, b)[0], "dpo_loss"),
    WrongAnswer("12.3", "batch baseline", lambda r: (r - r.mean()) / (r.std() + 1e-4), "whole batch"),
    WrongAnswer("12.3", "not divided", lambda r: r - r.mean(1, keepdim=True), "not divided"),
    WrongAnswer("12.3", "population std",
                lambda r: (r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True, correction=0) + 1e-4), "population"),
    WrongAnswer("12.3", "no eps", lambda r: (r - r.mean(1, keepdim=True)) / r.std(1, keepdim=True), "1e-4"),
    WrongAnswer("12.3", "over prompts", lambda r: (r - r.mean(0, keepdim=True)) / (r.std(0, keepdim=True) + 1e-4),
                "dim 0"),
    WrongAnswer("12.3", "calls utils.grpo", lambda r: grpo.group_advantages(r), "group_advantages"),
    WrongAnswer("12.4", "pass@1", lambda n, c, k: c / n, "pass@1"),
    WrongAnswer("12.4", "with replacement", lambda n, c, k: 1 - (1 - c / n) ** k, "replacement"),
    WrongAnswer("12.4", "the complement", lambda n, c, k: math.comb(n - c, k) / math.comb(n, k) if n - c >= k else 0.0,
                "1 minus"),
    WrongAnswer("12.4", "calls utils.metrics", lambda n, c, k: metrics.pass_at_k(n, c, k), "pass_at_k"),
]
