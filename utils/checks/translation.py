"""Checks for the exercises of lesson 10 (translation: the cross-attention mask, the label-smoothed loss,
BLEU, one step of beam search).

The references come from torch, sacrebleu and utils.transformer, never from the solution notebook.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..transformer import EOS
from ..transformer import beam_step as _beam_step
from .core import Case, Mistake, difference, run_cases, seeded_randn
from .hints import exercise
from .rules import NoTorchCall

__all__ = ["check_cross_attention_mask", "check_smoothed_loss", "check_corpus_bleu", "check_beam_step"]


# --- Exercise 10.1 ---------------------------------------------------------------------------------

def _mask_reference(source: torch.Tensor, n_target: int, pad_id: int) -> torch.Tensor:
    real = source != pad_id  # (batch, n_source): the keys a query may read
    return real[:, None, None, :].expand(-1, 1, n_target, -1)


def _with_causal(source, n_target, pad_id):
    return _mask_reference(source, n_target, pad_id) & torch.ones(n_target, source.shape[1], dtype=torch.bool).tril()


@exercise("10.1", "The cross-attention mask from source padding", "easy", 10, hints=(
    "In cross-attention the queries are target positions and the keys are source tokens. Which keys may "
    "a query read? Every real source token, and no padding: nothing about the target limits it.",
    "Compare the source ids with pad_id to get (batch, n_source) of True/False, then give it a heads dim "
    "and a query dim so that every one of the n_target query rows is the same.",
    "(source != pad_id)[:, None, None, :] has shape (batch, 1, 1, n_source); .expand(-1, 1, n_target, -1) "
    "repeats it over the queries without copying.",
))
def check_cross_attention_mask(cross_attention_mask) -> None:
    """Exercise 10.1: the bool mask (batch, 1, n_target, n_source) of the source keys each query may read."""
    padded = torch.tensor([[7, 8, 9, 4, 2], [5, 6, 2, 0, 0]])
    run_cases(
        "cross_attention_mask",
        cross_attention_mask,
        _mask_reference,
        [
            Case((torch.tensor([[4, 5, 6, 2]]), 3, 0), hint="No padding at all: every query may read every source "
                 "token, so the mask is all True."),
            Case((padded, 4, 0), hint="The second source ends with 2 padding tokens (id 0): no query may read "
                 "them, and every query row of a sentence is the same."),
            Case((torch.tensor([[0, 3, 4, 9, 9], [6, 9, 9, 9, 9]]), 2, 9), hint="Here pad_id is 9 and 0 is an "
                 "ordinary token: compare the ids with pad_id, not with 0."),
            Case((padded, 7, 0), hint="More target positions (7) than source tokens (5): the mask is not square. "
                 "A target position may read every real source token, even the last one."),
            Case((padded, 1, 0), hint="One target position (the first step of translating)."),
        ],
        hint="Return a bool tensor of shape (batch, 1, n_target, n_source): True = this query may read this key.",
        exercise="10.1",
        mistakes=[
            Mistake(_with_causal, "a causal mask was combined in: the source is given whole before the first target "
                    "token is written, so cross-attention needs no causal mask, only the padding mask."),
            Mistake(lambda s, n, p: ~_mask_reference(s, n, p), "True and False are swapped: in this course True "
                    "means 'may attend', so real tokens are True and padding is False."),
            Mistake(lambda s, n, p: _mask_reference(s, n, 0), "the ids were compared with 0, not with pad_id."),
            Mistake(lambda s, n, p: (s != p)[:, None, None, :], "the mask has one query row: it must have n_target "
                    "rows, all the same (expand it over the query dim)."),
            Mistake(lambda s, n, p: _mask_reference(s, n, p).float(), "the mask holds numbers: it must be bool "
                    "(True = may attend)."),
            Mistake(lambda s, n, p: (s != p)[:, None, :, None].expand(-1, 1, -1, n),
                    "the padding was put on the queries (rows): it is the source tokens, the keys (columns), that "
                    "padding blocks."),
        ],
    )


# --- Exercise 10.2 ---------------------------------------------------------------------------------

def _smoothed_reference(logits, targets, epsilon, ignore_index):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=ignore_index,
                           label_smoothing=epsilon)


def _smoothed_with(spread="all", mean="kept", log="stable"):
    def loss(logits, targets, epsilon, ignore_index):
        logits, targets = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
        log_p = logits.log_softmax(-1) if log == "stable" else logits.softmax(-1).log()
        keep = targets != ignore_index
        safe = targets.clamp(min=0)
        picked = log_p.gather(1, safe[:, None]).squeeze(1)
        if spread == "all":
            per = -(1 - epsilon) * picked - epsilon * log_p.mean(-1)
        elif spread == "others":
            others = (log_p.sum(-1) - picked) / (log_p.shape[-1] - 1)
            per = -(1 - epsilon) * picked - epsilon * others
        else:  # "forgot 1 - epsilon"
            per = -picked - epsilon * log_p.mean(-1)
        if mean == "all":
            return (per * keep).sum() / len(per)
        if mean == "sum":
            return (per * keep).sum()
        return (per * keep).sum() / keep.sum()

    return loss


_NO_CROSS_ENTROPY = NoTorchCall(
    (F.cross_entropy, F.nll_loss, torch.nn.CrossEntropyLoss.forward, torch.nn.NLLLoss.forward),
    "this exercise builds the loss itself: use log_softmax and the formula, not cross_entropy or nll_loss",
)


@exercise("10.2", "The label-smoothed loss", "medium", 15, hints=(
    "Label smoothing changes the target distribution, not the model: instead of all the probability on the "
    "reference token, 1 - epsilon is on it and epsilon is spread evenly over the whole vocabulary (the "
    "reference token included). The loss is the cross-entropy against that distribution.",
    "Work with log-probabilities (log_softmax over the vocabulary, which stays finite for large logits). For "
    "each position: -(1 - epsilon) * log p(target) - epsilon * (the mean of log p over the vocabulary). Then "
    "average over the positions whose target is not ignore_index.",
    "Flatten logits to (positions, vocab) and targets to (positions,). Pick log p(target) with .gather(1, ...) "
    "(clamp ignored targets to a valid id first, then zero their loss), and divide the sum by the number "
    "of kept positions.",
))
def check_smoothed_loss(smoothed_loss) -> None:
    """Exercise 10.2: label-smoothed cross-entropy with ignored (padding) positions, without cross_entropy."""
    targets = torch.tensor([[4, 1, 3, 0], [2, 0, 0, 0]])
    run_cases(
        "smoothed_loss",
        smoothed_loss,
        _smoothed_reference,
        [
            Case((seeded_randn(5, 6, seed=1), torch.tensor([0, 5, 2, 2, 1]), 0.0, -100),
                 hint="epsilon = 0 is the plain cross-entropy: the mean of -log p(target)."),
            Case((seeded_randn(5, 6, seed=2), torch.tensor([0, 5, 2, 2, 1]), 0.1, -100),
                 hint="epsilon = 0.1: 0.9 of the target distribution on the reference token, 0.1 spread over all "
                 "6 tokens, the reference included (0.1 / 6 each)."),
            Case((seeded_randn(2, 4, 7, seed=3), targets, 0.1, 0),
                 hint="A batch of 2 targets of 4 positions, padded with 0 = ignore_index: the mean is over the 4 "
                 "positions that are not padding."),
            Case((seeded_randn(3, 5, seed=4) * 1000, torch.tensor([1, 2, 3]), 0.2, -100),
                 hint="Logits near 1000: softmax then log gives log(0) = -inf; log_softmax stays finite."),
        ],
        hint="Return a scalar tensor: the mean over the kept positions of the label-smoothed cross-entropy.",
        exercise="10.2",
        rules=[_NO_CROSS_ENTROPY],
        mistakes=[
            Mistake(_smoothed_with(spread="others"), "epsilon was spread over the other V - 1 tokens only: in "
                    "PyTorch and in Vaswani et al. it is spread over all V tokens, the reference included."),
            Mistake(_smoothed_with(mean="all"), "the padding positions were counted in the mean: average over the "
                    "positions whose target is not ignore_index."),
            Mistake(_smoothed_with(mean="sum"), "the losses were summed: return their mean over the kept positions."),
            Mistake(_smoothed_with(spread="forgot"), "the reference token kept its full weight 1: it gets 1 - epsilon, "
                    "and epsilon is spread over the vocabulary."),
            Mistake(_smoothed_with(log="unstable"), "log(softmax(...)) overflowed to -inf: use log_softmax, which "
                    "stays finite."),
        ],
    )


# --- Exercise 10.3 ---------------------------------------------------------------------------------

def _bleu_reference(hypotheses, references) -> float:
    import sacrebleu

    most = max(len(r) for r in references)
    streams = [[" ".join(r[k]) if k < len(r) else None for r in references] for k in range(most)]
    return sacrebleu.corpus_bleu([" ".join(h) for h in hypotheses], streams, tokenize="none",
                                 smooth_method="none").score


def _ngrams(tokens, n):
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def _bleu_with(clip=True, brevity="closest", mean="geometric", corpus=True, smooth=False):
    def bleu(hypotheses, references):
        if not corpus:
            return sum(_bleu_with(clip, brevity, mean)([h], [r]) for h, r in zip(hypotheses, references,
                                                                               strict=True)) / len(hypotheses)
        matched, total = [0] * 4, [0] * 4
        c = r = 0
        for hyp, refs in zip(hypotheses, references, strict=True):
            for n in range(1, 5):
                grams = _ngrams(hyp, n)
                for g in set(grams):
                    most = max(_ngrams(ref, n).count(g) for ref in refs)
                    matched[n - 1] += min(grams.count(g), most) if clip else (grams.count(g) if most else 0)
                total_n = len(grams)
                total[n - 1] += total_n
            c += len(hyp)
            lengths = [len(ref) for ref in refs]
            r += min(lengths) if brevity == "shortest" else min(lengths, key=lambda x: (abs(x - len(hyp)), x))
        if smooth:  # add one to every count of n >= 2: never 0
            matched = matched[:1] + [m + 1 for m in matched[1:]]
            total = total[:1] + [t + 1 for t in total[1:]]
        if min(matched) == 0:
            return 0.0
        precisions = [m / t for m, t in zip(matched, total, strict=True)]
        if mean == "geometric":
            score = math.exp(sum(math.log(p) for p in precisions) / 4)
        else:
            score = sum(precisions) / 4
        penalty = 1.0 if brevity == "none" or c >= r else math.exp(1 - r / c)
        return 100 * penalty * score

    return bleu


def _bleu_same(expected, got) -> str | None:
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, int | float):
        return f"expected a number (BLEU from 0 to 100), got {type(got).__name__}"
    return None if math.isclose(expected, got, rel_tol=1e-6, abs_tol=1e-6) else (
        f"BLEU {got:.4f} instead of {expected:.4f}")


def _chars(text):
    return list(text)


@exercise("10.3", "Modified n-gram precision and BLEU", "medium", 25, hints=(
    "BLEU is one number for the whole test set: it adds up the n-gram matches of all sentences before dividing "
    "(no average of sentence scores), clips each n-gram's count by the most times one reference has it, takes "
    "the geometric mean of the four precisions and multiplies by a brevity penalty.",
    "For n = 1..4 and each sentence: count each distinct n-gram of the hypothesis, clip the count by its "
    "largest count in any one reference, and add the clipped counts and the hypothesis's n-gram total to "
    "corpus sums. The brevity penalty uses c = the hypotheses' total length and r = the sum, over sentences, "
    "of the reference length closest to the hypothesis's (the shorter one on a tie): exp(1 - r / c) if c < r.",
    "BLEU = 100 * penalty * exp(mean of log(matched_n / total_n) for n = 1..4); if some matched_n is 0 the "
    "score is 0.0 (no smoothing). n-grams of a list: [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)].",
))
def check_corpus_bleu(corpus_bleu) -> None:
    """Exercise 10.3: corpus BLEU (4-grams, clipped, brevity penalty, no smoothing), checked against sacrebleu."""
    c = _chars
    run_cases(
        "corpus_bleu",
        corpus_bleu,
        _bleu_reference,
        [
            Case(([c("我很好。")], [[c("我很好。")]]), label="one sentence equal to its reference",
                 hint="A hypothesis equal to its reference scores 100."),
            Case(([c("我们去游泳吧吧吧。")], [[c("我们去游泳吧。")]]), label="a hypothesis that repeats a right word",
                 hint="Clipping: 吧 appears once in the reference, so at most one 吧 of the hypothesis counts."),
            Case(([c("他想喝点冷饮")], [[c("他想喝点冷饮料。")]]), label="a hypothesis shorter than its reference",
                 hint="Every n-gram of the hypothesis is right, but it is shorter: the brevity penalty "
                 "exp(1 - r / c) lowers the score."),
            Case(([c("汤姆昨天买了新车"), c("我很饿")], [[c("汤姆昨天买了一辆新车。"), c("汤姆昨天买了新车")],
                                                  [c("我饿了。"), c("我很饿。")]]),
                 label="two sentences with two references each, of different lengths",
                 hint="The brevity penalty's r adds, for each sentence, the reference length closest to the "
                 "hypothesis's length (not the shortest)."),
            Case(([c("他想喝点冷饮")], [[c("他要冷饮"), c("他想喝点冷饮料")]]),
                 label="a reference shorter and one longer than the hypothesis",
                 hint="The hypothesis has 6 characters; the references 4 and 7. The closest is 7, longer than the "
                 "hypothesis, so the brevity penalty applies (with the shortest, 4, it would not)."),
            Case(([c("这朵花很美"), c("我很饿了。"), c("他跑得很快，比我快。")],
                  [[c("这朵花很美，不是吗？")], [c("我饿了。")], [c("他跑得比我快。")]]),
                 label="three sentences: BLEU of the corpus, not the mean of sentence BLEUs",
                 hint="Add the matched and total n-gram counts of all sentences first, then take precisions: "
                 "BLEU is not an average of sentence scores."),
            Case(([c("你好")], [[c("早上好")]]), label="no 2-gram in common",
                 hint="With no matching 2-gram the geometric mean is 0, so BLEU is 0.0 (no smoothing here)."),
        ],
        hint="Return BLEU as a Python float from 0 to 100, like sacrebleu's score.",
        compare=_bleu_same,
        exercise="10.3",
        mistakes=[
            Mistake(_bleu_with(clip=False), "the n-gram counts were not clipped: an n-gram counts at most as often "
                    "as the reference that has it most often."),
            Mistake(_bleu_with(brevity="shortest"), "r used the shortest reference: use, for each sentence, the "
                    "reference length closest to the hypothesis's."),
            Mistake(_bleu_with(brevity="none"), "there is no brevity penalty: short outputs must pay exp(1 - r / c)."),
            Mistake(_bleu_with(mean="arithmetic"), "the four precisions were averaged: BLEU takes their geometric "
                    "mean, exp of the mean of their logs."),
            Mistake(_bleu_with(smooth=True), "the precisions were smoothed: no smoothing here, a precision of 0 "
                    "makes BLEU 0.0."),
            Mistake(_bleu_with(corpus=False), "this is the mean of sentence BLEUs: corpus BLEU adds up the counts "
                    "of every sentence before dividing."),
        ],
    )


# --- Exercise 10.4 ---------------------------------------------------------------------------------

def _step_with(count_all_endings=False, per_beam=False, normalise=True, length="written"):
    def step(beams, scores, log_probs, beam_width, length_penalty=1.0):
        totals = scores[:, None] + log_probs
        vocab = totals.shape[-1]
        if per_beam:
            top = totals.topk(min(2, vocab), dim=-1)
            order = sorted(((float(top.values[b, j]), b, int(top.indices[b, j])) for b in range(len(beams))
                            for j in range(top.values.shape[1])), reverse=True)
            ranked = [(b, t, s) for s, b, t in order]
        else:
            best = totals.flatten().topk(min(2 * beam_width, totals.numel()))
            ranked = list(zip((best.indices // vocab).tolist(), (best.indices % vocab).tolist(),
                              best.values.tolist(), strict=True))
        kept, finished = [], []
        for rank, (row, token, score) in enumerate(ranked):
            if token == EOS:
                if rank < beam_width or count_all_endings:
                    n = beams.shape[1] + (1 if length == "with bos" else 0)
                    finished.append((beams[row, 1:].tolist(), score / n ** length_penalty if normalise else score))
            elif len(kept) < beam_width:
                kept.append((row, token, score))
        rows = torch.tensor([r for r, _, _ in kept], dtype=torch.long)
        new = torch.cat([beams[rows], torch.tensor([[t] for _, t, _ in kept], dtype=torch.long)], dim=1)
        return new, torch.tensor([s for _, _, s in kept]), finished

    return step


def _same_step(expected, got) -> str | None:
    if not isinstance(got, tuple | list) or len(got) != 3:
        return "expected a tuple (beams, scores, finished)"
    beams, scores, finished = got
    why = difference(expected[0], beams) or difference(expected[1], scores, rtol=1e-5, atol=1e-5)
    if why:
        return why
    if not isinstance(finished, list | tuple) or len(finished) != len(expected[2]):
        return (f"finished holds {len(finished) if isinstance(finished, list | tuple) else finished!r} "
                f"ending(s), expected {len(expected[2])}")
    for (want_ids, want_score), item in zip(expected[2], finished, strict=True):
        if not isinstance(item, tuple | list) or len(item) != 2:
            return "each finished item must be (tokens as a list of ints, normalised score as a float)"
        ids, score = item
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        if ids != want_ids or not math.isclose(float(score), want_score, rel_tol=1e-5, abs_tol=1e-5):
            return f"finished item ({ids}, {float(score):.4f}) instead of ({want_ids}, {want_score:.4f})"
    return None


def _log_probs(rows):
    return torch.tensor(rows).log()


@exercise("10.4", "One step of beam search", "hard", 25, hints=(
    "A step scores every extension of every live beam (beam's score + the token's log-probability), ranks all "
    "of them together, sets aside the best ones that end with <eos> as finished, and keeps the best others as "
    "the new live beams.",
    "Rank the (beam, token) table flat and look at the 2 * beam_width best: there are always enough that do not "
    "end, even if beam_width of them do. An ending counts only if its rank is below beam_width. A finished "
    "beam's score is divided by (tokens written, <eos> included, <bos> not) ** length_penalty.",
    "totals = scores[:, None] + log_probs; best = totals.flatten().topk(min(2 * beam_width, totals.numel())); "
    "flat index i is beam i // vocab, token i % vocab. Tokens written after this step = beams.shape[1] (the "
    "beam holds <bos> and t - 1 tokens, plus the new one). Keep at most beam_width live extensions, best first.",
))
def check_beam_step(beam_step) -> None:
    """Exercise 10.4: one step of beam search with endings (EOS = 2) and length normalisation."""
    bos = 1
    two = torch.tensor([[bos, 5], [bos, 6]])
    ends_first = _log_probs([[0.01, 0.01, 0.5, 0.28, 0.2], [0.01, 0.01, 0.1, 0.08, 0.8]])
    ends_late = _log_probs([[0.01, 0.01, 0.08, 0.5, 0.4], [0.01, 0.01, 0.9, 0.04, 0.04]])
    mixed = _log_probs([[0.01, 0.01, 0.08, 0.5, 0.4], [0.01, 0.01, 0.08, 0.1, 0.8]])
    one_beam_wins = _log_probs([[0.01, 0.01, 0.02, 0.32, 0.34, 0.3], [0.01, 0.01, 0.02, 0.06, 0.1, 0.8]])
    run_cases(
        "beam_step",
        beam_step,
        _beam_step,
        [
            Case((torch.tensor([[bos]]), torch.zeros(1), _log_probs([[0.01, 0.01, 0.08, 0.3, 0.6]]), 1),
                 label="one beam, width 1, no ending among the best",
                 hint="Width 1 keeps the likeliest extension (token 4, log 0.6): greedy decoding."),
            Case((two, torch.tensor([-0.5, -1.0]), ends_first, 2), label="two beams, width 2: the best extension ends",
                 hint="Beam [1, 5] + <eos> is the best extension overall: it is finished (tokens [5], score divided "
                 "by 2 tokens written), and the two best extensions that do not end become the live beams."),
            Case((two, torch.tensor([-0.1, -3.0]), ends_late, 2), label="an ending ranked below the width",
                 hint="Beam [1, 6] ending has total log-probability -3.1: it is not among the 2 best extensions "
                 "of this step, so it does not count as finished."),
            Case((two, torch.tensor([-0.2, -0.3]), mixed, 3),
                 label="width 3: the best extensions of ALL beams together",
                 hint="Rank every (beam, token) extension together; a beam may give two of the kept ones, "
                 "another none."),
            Case((two, torch.tensor([-0.2, -2.0]), one_beam_wins, 3),
                 label="width 3: all three best extensions come from one beam",
                 hint="The three best extensions all extend beam [1, 5]; the other beam gives none. Keep the "
                 "best of the whole table, not the best of each beam."),
            Case((two, torch.tensor([-0.5, -1.0]), ends_first, 2, 0.0), label="length_penalty 0: the raw sum",
                 hint="With length_penalty 0 a finished score is the raw sum of log-probabilities "
                 "(length ** 0 = 1)."),
        ],
        hint="Return (beams (k', t + 1) int64, scores (k',) float, finished: a list of (tokens without <bos> and "
        "<eos>, normalised score)).",
        compare=_same_step,
        exercise="10.4",
        mistakes=[
            Mistake(_step_with(count_all_endings=True), "an ending outside the beam_width best extensions was counted "
                    "as finished: only endings ranked below beam_width count."),
            Mistake(_step_with(per_beam=True), "each beam kept its own best extensions: rank the extensions of all "
                    "beams together and keep the best overall."),
            Mistake(_step_with(normalise=False), "the finished score is the raw sum: divide it by the length ** "
                    "length_penalty."),
            Mistake(_step_with(length="with bos"), "the length counted <bos>: count the tokens written, <eos> "
                    "included, <bos> not (beams.shape[1])."),
        ],
    )
