"""Wrong answers for lesson 00's checks."""

from collections import Counter

import torch

from . import WrongAnswer


def _exp_over_sum(shift):
    return lambda x: torch.exp(x - shift(x)) / torch.exp(x - shift(x)).sum()


def _loss_of(log_probs):
    return lambda x, t: -log_probs(x)[t].item()


def _log_sum(x):
    """log(sum_j exp(x_j)) computed after the shift but without adding it back."""
    return torch.log(torch.exp(x - x.max()).sum())


WRONG = [
    WrongAnswer("0.1", "lower-cased", lambda text: dict(Counter(text.lower())), "upper and lower case were merged"),
    WrongAnswer("0.1", "skips spaces", lambda text: dict(Counter(text.replace(" ", ""))), "spaces were left out"),
    WrongAnswer("0.1", "sets 1", lambda text: dict.fromkeys(text, 1), "every character got the count 1"),
    WrongAnswer("0.1", "a Counter's items", lambda text: list(Counter(text).items()), "expected"),
    WrongAnswer("0.2", "no shift", _exp_over_sum(lambda x: 0.0), "shift must make the largest exponent exactly 0"),
    WrongAnswer("0.2", "subtracts the min", _exp_over_sum(lambda x: x.min()), "largest exponent exactly 0"),
    WrongAnswer("0.2", "subtracts the mean", _exp_over_sum(lambda x: x.mean()), "largest exponent exactly 0"),
    WrongAnswer("0.2", "subtracts x[0]", _exp_over_sum(lambda x: x[0]), "largest exponent exactly 0"),
    WrongAnswer("0.2", "divides by the max", lambda x: torch.exp(x - x.max()) / torch.exp(x - x.max()).max(),
                "divide by the sum"),
    WrongAnswer("0.2", "torch.softmax", lambda x: torch.softmax(x, dim=0), "rules out"),
    WrongAnswer("0.2", "x.softmax", lambda x: x.softmax(0), "rules out"),
    WrongAnswer("0.3", "log of softmax", _loss_of(lambda x: torch.log(torch.exp(x - x.max()) / _log_sum(x).exp())),
                "the log of a softmax"),
    WrongAnswer("0.3", "sign flipped", lambda x, t: -(_log_sum(x) + x.max() - x[t]).item(), "the sign is flipped"),
    WrongAnswer("0.3", "shift not added back", lambda x, t: (_log_sum(x) - x[t]).item(), "not added back"),
    WrongAnswer("0.3", "returns a tensor", lambda x, t: _log_sum(x) + x.max() - x[t],
                "expected a Python float, got a tensor"),
    WrongAnswer("0.3", "F.cross_entropy",
                lambda x, t: torch.nn.functional.cross_entropy(x[None], torch.tensor([t])).item(), "rules out"),
    WrongAnswer("0.3", "torch.logsumexp", lambda x, t: (torch.logsumexp(x, 0) - x[t]).item(), "rules out"),
]
