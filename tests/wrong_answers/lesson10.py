"""Wrong answers for lesson 10's checks (translation)."""

import torch
import torch.nn.functional as F

from utils.checks.translation import _bleu_with, _smoothed_with, _step_with

from . import WrongAnswer


def _real(source, pad_id):
    return (source != pad_id)[:, None, None, :]


def _causal(source, n_target, pad_id):
    tri = torch.ones(n_target, source.shape[1], dtype=torch.bool).tril()
    return _real(source, pad_id).expand(-1, 1, n_target, -1) & tri


def _library_loss(logits, targets, epsilon, ignore_index):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=ignore_index,
                           label_smoothing=epsilon)


def _sentence_mean_bleu(hypotheses, references):
    return _bleu_with(corpus=False)(hypotheses, references)


WRONG = [
    WrongAnswer("10.1", "adds a causal mask", _causal, "needs no causal mask"),
    WrongAnswer("10.1", "True marks padding", lambda s, n, p: ~_real(s, p).expand(-1, 1, n, -1), "swapped"),
    WrongAnswer("10.1", "compares with 0", lambda s, n, p: _real(s, 0).expand(-1, 1, n, -1), "not with pad_id"),
    WrongAnswer("10.1", "one query row", lambda s, n, p: _real(s, p), "n_target rows"),
    WrongAnswer("10.1", "a float mask", lambda s, n, p: _real(s, p).expand(-1, 1, n, -1).float(), "must be bool"),
    WrongAnswer("10.1", "padding on the queries", lambda s, n, p: (s != p)[:, None, :, None].expand(-1, 1, -1, n),
                "padding was put on the queries"),
    WrongAnswer("10.2", "spreads over the others", _smoothed_with(spread="others"), "other V - 1 tokens"),
    WrongAnswer("10.2", "counts padding", _smoothed_with(mean="all"), "padding positions were counted"),
    WrongAnswer("10.2", "sums", _smoothed_with(mean="sum"), "summed"),
    WrongAnswer("10.2", "forgets 1 - epsilon", _smoothed_with(spread="forgot"), "kept its full weight"),
    WrongAnswer("10.2", "log of softmax", _smoothed_with(log="unstable"), "use log_softmax"),
    WrongAnswer("10.2", "calls cross_entropy", _library_loss, "builds the loss itself"),
    WrongAnswer("10.3", "no clipping", _bleu_with(clip=False), "not clipped"),
    WrongAnswer("10.3", "no brevity penalty", _bleu_with(brevity="none"), "no brevity penalty"),
    WrongAnswer("10.3", "shortest reference", _bleu_with(brevity="shortest"), "shortest reference"),
    WrongAnswer("10.3", "arithmetic mean", _bleu_with(mean="arithmetic"), "geometric"),
    WrongAnswer("10.3", "mean of sentence BLEUs", _sentence_mean_bleu, "mean of sentence BLEUs"),
    WrongAnswer("10.3", "smoothed", _bleu_with(smooth=True), "no smoothing here"),
    WrongAnswer("10.4", "counts every ending", _step_with(count_all_endings=True), "outside the beam_width best"),
    WrongAnswer("10.4", "per-beam best", _step_with(per_beam=True), "rank the extensions of all beams together"),
    WrongAnswer("10.4", "raw finished score", _step_with(normalise=False), "raw sum"),
    WrongAnswer("10.4", "length counts bos", _step_with(length="with bos"), "counted <bos>"),
]
