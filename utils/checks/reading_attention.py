"""Checks for the exercises of lesson 09 (reading attention: scoring heads, what pictures miss, and
removing a head by its mean).

The references come from utils.head_scores, never from the solution notebook. 9.4 runs on a tiny seeded
GPT of utils.model, built for each case without touching the learner's random state.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import head_scores as hs
from ..model import GPT, GPTConfig
from .core import Case, Mistake, built_aside, difference, run_cases, seeded_randint, seeded_randn
from .hints import exercise

__all__ = ["check_previous_token_scores", "check_pattern_correlation", "check_norm_shares",
           "check_mean_ablation_loss"]


def _random_maps(*shape: int, seed: int, causal: bool = False, sharpness: float = 2.0) -> torch.Tensor:
    """Random attention maps (..., n, n): rows are softmaxes of random scores (masked above the diagonal)."""
    scores = sharpness * seeded_randn(*shape, seed=seed, dtype=torch.float64)
    if causal:
        n = shape[-1]
        scores = scores.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf"))
    return torch.softmax(scores, dim=-1)


def _shifted_map(n: int, offset: int, strength: float = 0.9) -> torch.Tensor:
    """Each row puts `strength` on token i + offset (where it exists) and spreads the rest evenly."""
    w = torch.full((n, n), (1 - strength) / (n - 1), dtype=torch.float64)
    for i in range(n):
        j = i + offset
        if 0 <= j < n:
            w[i, j] = strength
        else:
            w[i] = 1.0 / n
    return w


def _as_number(value):
    """A Python float from a float, an int, a numpy number or a one-element tensor; None otherwise."""
    if isinstance(value, torch.Tensor):
        return float(value.item()) if value.numel() == 1 else None
    if isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(value, bool):
        return float(value)
    return None


def _compare_number(expected: float, got) -> str | None:
    number = _as_number(got)
    if number is None:
        shape = f" of shape {tuple(got.shape)}" if isinstance(got, torch.Tensor) else ""
        return f"expected one number (a float), got {type(got).__name__}{shape}"
    if math.isnan(number):
        return "the result is NaN"
    return None if math.isclose(number, expected, rel_tol=1e-6, abs_tol=1e-9) else "the numbers differ"


# --- Exercise 9.1 ------------------------------------------------------------------------------


def _padded_batch(lengths, n: int, heads: int, seed: int, left: bool = False):
    """(weights (batch, heads, n, n), attention_mask (batch, n)): previous-token-like heads on the real
    tokens of each text; the padding rows look at the previous position too, so that counting them
    changes the score."""
    mask = torch.tensor([[1] * k + [0] * (n - k) for k in lengths])
    mask = mask.flip(-1) if left else mask
    weights = _random_maps(len(lengths), heads, n, n, seed=seed, sharpness=1.0)
    strength = torch.linspace(0.2, 0.9, heads, dtype=torch.float64)[:, None, None]
    previous = torch.diag(torch.ones(n - 1, dtype=torch.float64), -1)
    previous[0, 0] = 1.0
    return (1 - strength) * weights + strength * previous, mask


def _previous_scores(weights, attention_mask):
    return hs.batch_previous_token_score(weights, attention_mask)


def _line(w):
    return torch.diagonal(w, offset=-1, dim1=-2, dim2=-1)  # (batch, heads, n - 1): w[i, i - 1]


def _query_only(w, m):
    real = m[:, 1:].to(w.dtype)[:, None, :]
    return (_line(w) * real).sum((0, 2)) / real.sum()


def _mean_of_text_means(w, m):
    pairs = (m[:, 1:] * m[:, :-1]).to(w.dtype)[:, None, :]
    return ((_line(w) * pairs).sum(-1) / pairs.sum(-1)).mean(0)


def _over_n_minus_1(w, m):
    pairs = (m[:, 1:] * m[:, :-1]).to(w.dtype)[:, None, :]
    return ((_line(w) * pairs).sum(-1) / (w.shape[-1] - 1)).mean(0)


@exercise("9.1", "Previous-token scores of a padded batch", "medium", 10, hints=(
    "A head's previous-token score is its mean weight from a token to the token just before it. In a "
    "padded batch, only pairs of two REAL tokens count, and every such pair of every text counts once.",
    "The weights from each token to the previous one lie on the line just below the diagonal of each "
    "(n, n) map. Mark which of those n - 1 pairs join two real tokens (query i and key i - 1 both have "
    "mask 1; with padding on the left the first real token's previous one is padding), then divide the "
    "sum of the marked weights by the number of marked pairs, over all texts, separately for each head.",
    "torch.diagonal(weights, offset=-1, dim1=-2, dim2=-1) gives (batch, heads, n - 1): entry i - 1 is "
    "w[i, i - 1]. Slicing the mask from position 1 and up to position n - 1 gives the two tokens of every "
    "pair; their product marks the real pairs, and [:, None, :] lets it broadcast over the heads. Sum over "
    "the texts and the pairs, not over the heads.",
))
def check_previous_token_scores(previous_token_scores) -> None:
    """Exercise 9.1: each head's mean weight on the previous token over the real pairs of a padded batch."""
    exact = torch.diag(torch.ones(3, dtype=torch.float64), -1)[None, None].clone()
    exact[..., 0, 0] = 1.0
    run_cases(
        "previous_token_scores",
        previous_token_scores,
        _previous_scores,
        [
            Case((exact, torch.ones(1, 4, dtype=torch.long)),
                 label="one text of 4 tokens, no padding, one head that always looks at the previous token",
                 hint="Every token that has a previous token puts all its weight on it: the score is 1.0. Token 0 "
                 "has none, so the mean runs over the 3 tokens 1..3. Return a tensor with one score per head."),
            Case(_padded_batch([5, 3], 5, 2, seed=2),
                 label="2 texts (5 and 3 tokens), padding on the right, 2 heads",
                 hint="The padding rows of the short text also put weight on their previous position: those rows "
                 "are not tokens and must not count."),
            Case(_padded_batch([5, 3], 5, 2, seed=3, left=True),
                 label="2 texts (5 and 3 tokens), padding on the LEFT (as decoders pad), 2 heads",
                 hint="With padding on the left, the first real token of the short text has padding before it: a "
                 "pair counts only when both of its tokens are real."),
            Case(_padded_batch([7, 2, 4], 7, 4, seed=4),
                 label="3 texts (7, 2 and 4 tokens), 4 heads",
                 hint="Every real pair of every text counts once: the long text has 6 pairs, the short one 1. A "
                 "mean of per-text means would give the short text as much say as the long one."),
        ],
        hint="Return a float tensor (heads,): for each head, the mean of w[i, i - 1] over every pair of real "
        "tokens (i - 1, i) of every text.",
        exercise="9.1",
        no_loops="every text, head and token at once, with tensor operations",
        mistakes=[
            Mistake(lambda w, m: _line(w).mean((0, 2)), "padding was counted: only pairs of two real tokens "
                    "(attention_mask 1) enter the mean."),
            Mistake(_query_only, "only the token that looks was checked: a pair counts when both tokens are real, "
                    "and with padding on the left the first real token's previous position is padding."),
            Mistake(_mean_of_text_means, "this is a mean of per-text means: every real pair of every text counts "
                    "once, so a long text weighs more than a short one."),
            Mistake(_over_n_minus_1, "each text was divided by n - 1, padding included: divide by the number of "
                    "real pairs."),
            Mistake(lambda w, m: hs.batch_offset_score(w, m, 1), "that is the weight on the NEXT token, above the "
                    "diagonal: row i is the token that looks, so its previous token is column i - 1."),
            Mistake(lambda w, m: hs.batch_offset_score(w, m, 0), "that is the weight of each token on itself, the "
                    "main diagonal: the previous token is just below it."),
        ],
    )


# --- Exercise 9.2 ------------------------------------------------------------------------------


def _correlation_reference(a: torch.Tensor, b: torch.Tensor) -> float:
    return hs.pattern_correlation(a, b).item()


def _cosine(a, b):
    x, y = a.flatten(), b.flatten()
    return (x @ y / (x.norm() * y.norm())).item()


def _row_mean(a, b):
    return float(np.mean([np.corrcoef(x, y)[0, 1] for x, y in zip(a.numpy(), b.numpy(), strict=True)]))


@exercise("9.2", "Do two attention maps show the same pattern?", "medium", 10, hints=(
    "The Pearson correlation compares the SHAPES of two patterns: 1 when one map is the other up to scale and "
    "offset, about 0 for unrelated maps, negative for opposite ones. Treat each map as one long list of n * n "
    "numbers.",
    "Flatten both maps, subtract from each its own mean (this centring is what separates a correlation from "
    "a cosine similarity, which is high for any two attention maps because all their entries are positive), "
    "then divide the sum of the products by the product of the two lengths.",
    "Tensor.flatten() gives a map's n * n entries as one vector and .mean() their mean; after centring, "
    "Tensor.norm() of each vector gives one factor of the denominator, and the numerator is the sum of the "
    "entry-by-entry products. .item() turns a one-element tensor into a float.",
))
def check_pattern_correlation(pattern_correlation) -> None:
    """Exercise 9.2: Pearson correlation of two (n, n) attention maps, all n * n entries flattened."""
    previous, following = _shifted_map(6, -1), _shifted_map(6, +1)
    a, b = _random_maps(7, 7, seed=3), _random_maps(7, 7, seed=4)
    same = _random_maps(6, 6, seed=12)
    c = _random_maps(5, 5, seed=5, causal=True)
    run_cases(
        "pattern_correlation",
        pattern_correlation,
        _correlation_reference,
        [
            Case((same, same.clone()), label="a random 6-token map compared with itself",
                 hint="The same pattern correlates perfectly with itself: 1.0 (up to rounding)."),
            Case((a, b), label="two unrelated random 7-token maps",
                 hint="Two unrelated maps correlate weakly. Without centring (each map minus its own mean over "
                 "all n * n entries) the number is the cosine similarity, high for ANY two attention maps because "
                 "all their entries are positive."),
            Case((previous, following), label="previous-token map against next-token map",
                 hint="Opposite patterns give a negative correlation: no absolute value, no clamping."),
            Case((c, c.T.contiguous()), label="a causal 5-token map against its transpose",
                 hint="Correlate the two maps as two long vectors of n * n numbers: correlating row by row and "
                 "averaging gives a different number."),
        ],
        hint="One number, a float: the Pearson correlation of all n * n entries of a with those of b.",
        compare=_compare_number,
        exercise="9.2",
        mistakes=[
            Mistake(_cosine, "this is the cosine similarity: centre each map first (subtract its own mean over all "
                    "entries), or any two attention maps look alike."),
            Mistake(lambda a, b: abs(_correlation_reference(a, b)), "the absolute value was taken: opposite patterns "
                    "must give a negative correlation."),
            Mistake(_row_mean, "these are per-row correlations, averaged: correlate all n * n entries at once."),
            Mistake(lambda a, b: ((a - a.mean()) * (b - b.mean())).mean().item(), "this is the covariance: divide "
                    "by the two maps' spreads (the lengths of the centred vectors) to get a correlation."),
        ],
    )


# --- Exercise 9.3 ------------------------------------------------------------------------------


def _norm_shares_reference(weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    return hs.row_shares(hs.norm_weighted(weights, values))


def _vectors(n: int, d: int, seed: int, lengths=None) -> torch.Tensor:
    v = seeded_randn(n, d, seed=seed, dtype=torch.float64)
    if lengths is not None:
        v = v / v.norm(dim=-1, keepdim=True) * torch.tensor(lengths, dtype=torch.float64)[:, None]
    return v


def _shares(moved):
    return moved / moved.sum(-1, keepdim=True)


@exercise("9.3", "A weight is not an amount: norm-weighted attention", "medium", 15, hints=(
    "What token j sends to token i is the weight alpha_ij times the LENGTH of token j's vector: a large "
    "weight on a tiny vector moves little. The share is that amount divided by everything token i receives.",
    "One length per token, from its row of values (the norm over the last dim); each column j of the weights "
    "is scaled by token j's length; each row of the result is then divided by its own sum so that it sums "
    "to 1.",
    "torch.linalg.vector_norm(values, dim=-1) gives the n lengths; indexing them with [None, :] makes a "
    "(1, n) row that multiplies every row of the weights column by column; .sum(-1, keepdim=True) keeps each "
    "row's total as an (n, 1) column to divide by.",
))
def check_norm_shares(norm_shares) -> None:
    """Exercise 9.3: shares of ||alpha_ij f(x_j)|| = alpha_ij ||f(x_j)||, each row divided by its sum."""
    three = torch.tensor([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.5, 0.25, 0.25]], dtype=torch.float64)
    run_cases(
        "norm_shares",
        norm_shares,
        _norm_shares_reference,
        [
            Case((three, _vectors(3, 3, seed=6, lengths=[2.0, 2.0, 2.0])),
                 label="3 tokens whose value vectors all have length 2",
                 hint="When every vector has the same length, the lengths change nothing: the shares are the "
                 "weights themselves, and each row sums to 1."),
            Case((three, _vectors(3, 4, seed=7, lengths=[0.1, 1.0, 3.0])),
                 label="token 0 (like [CLS]) gets most weight but has a tiny vector (lengths 0.1, 1, 3)",
                 hint="The length of a vector, not its square. Token j's length scales what every token receives "
                 "FROM j (column j), not what token j receives: here token 0 keeps about 17% of row 0, not 80%."),
            Case((_random_maps(4, 4, seed=8), _vectors(4, 4, seed=9)), label="4 tokens with 4-dim vectors (n == d)",
                 hint="values is (n, d): one row per token, so each token's length is the norm of its row. With "
                 "n == d a norm down the columns has the right shape but the wrong numbers."),
            Case((_random_maps(6, 6, seed=10, causal=True), _vectors(6, 3, seed=11)),
                 label="a causal 6-token map, d = 3",
                 hint="Zero weights stay zero; every row of the result sums to 1."),
        ],
        hint="Return an (n, n) tensor: alpha_ij times the length of token j's vector, each row divided by its sum.",
        compare=lambda expected, got: difference(expected, got, rtol=1e-5, atol=1e-6),
        exercise="9.3",
        no_loops="every pair of tokens at once, by broadcasting",
        mistakes=[
            Mistake(lambda w, v: _shares(w * v.norm(dim=-1)[None] ** 2), "the lengths were squared: use the length "
                    "||f(x_j)|| itself, not its square."),
            Mistake(lambda w, v: w * v.norm(dim=-1)[None], "the rows were not normalised: divide each row by its "
                    "total, so that it sums to 1."),
            Mistake(lambda w, v: _shares(w * v.norm(dim=-1)[:, None]), "each ROW i was scaled by token i's length: "
                    "the length of token j scales COLUMN j, what the others receive from j."),
            Mistake(lambda w, v: _shares(w * v.norm(dim=0)[None]), "the norm was taken down the columns (dim 0): "
                    "each token's vector is a row of values, so take the norm over the last dim."),
        ],
    )


# --- Exercise 9.4 ------------------------------------------------------------------------------


def _tiny_gpt(n_head: int, seed: int) -> GPT:
    """A 2-layer GPT in float64 with large random weights, so that every head's output varies from position
    to position. Built aside: the learner's global random state is left alone."""
    config = GPTConfig(vocab_size=12, context_length=8, n_layer=2, n_head=n_head, n_embd=16)
    model = built_aside(lambda: GPT(config).double().eval(), seed)
    with torch.no_grad():
        for i, (name, p) in enumerate(model.named_parameters()):
            if ".ln" not in name and not name.startswith("ln"):
                p.copy_(0.5 * seeded_randn(*p.shape, seed=1000 * seed + i, dtype=torch.float64))
    return model


def _eval_batches(sizes, seed: int) -> list:
    """(x, y) pairs of token ids, (size, 8) each, one pair per size."""
    pairs = []
    for i, size in enumerate(sizes):
        x = seeded_randint(0, 12, (size, 8), seed=seed + 2 * i)
        pairs.append((x, seeded_randint(0, 12, (size, 8), seed=seed + 2 * i + 1)))
    return pairs


def _reference_ablation(model, layer, head, batches) -> float:
    means = hs.head_means(model, layer, batches)
    with hs.mean_ablate_heads(model, layer, head, means):
        return hs.mean_loss(model, batches)


def _ablating(answer):
    """The check's view of a mean-ablation function: run it on a fresh tiny GPT and report its loss and
    whether the model gives the same outputs afterwards (hooks removed, weights unchanged)."""

    def run(n_head, seed, layer, head, sizes):
        model, batches = _tiny_gpt(n_head, seed), _eval_batches(sizes, seed + 50)
        probe = batches[0][0]
        with torch.no_grad():
            before = model(probe)[0]
        loss = answer(model, layer, head, [(x.clone(), y.clone()) for x, y in batches])
        with torch.no_grad():
            unchanged = torch.equal(model(probe)[0], before)
        return {"loss": loss, "model unchanged": unchanged}

    return run


def _compare_ablation(expected, got) -> str | None:
    number = _as_number(got["loss"])
    if number is None or isinstance(got["loss"], torch.Tensor):
        return f"expected the loss as a Python float, got {type(got['loss']).__name__}"
    if not got["model unchanged"]:
        return ("after your function returned, the model no longer gives the same outputs: remove every hook you "
                "registered (the handle that registering returns has a .remove() method; use it even when an error "
                "interrupts), and change no weight")
    return None if math.isclose(number, expected["loss"], rel_tol=1e-7, abs_tol=1e-9) else "the losses differ"


def _head_outputs(model, layer, batches) -> torch.Tensor:
    """Every position's input of attn.out_proj: (batches, batch, n, d_model), equal sizes only."""
    outputs = []
    handle = model.blocks[layer].attn.out_proj.register_forward_pre_hook(lambda m, i: outputs.append(i[0]))
    with torch.no_grad():
        for x, _ in batches:
            model(x)
    handle.remove()
    return outputs


def _replace(model, layer, columns, value, batches) -> float:
    """mean_loss with the given input columns of attn.out_proj replaced by `value` (broadcast)."""

    def write(module, inputs):
        x = inputs[0].clone()
        x[..., columns] = value.to(x.dtype) if isinstance(value, torch.Tensor) else value
        return (x,)

    handle = model.blocks[layer].attn.out_proj.register_forward_pre_hook(write)
    try:
        return hs.mean_loss(model, batches)
    finally:
        handle.remove()


def _ablation_with(kind):
    """A mean ablation with one mistake chosen by `kind`."""

    def mean_ablation_loss(model, layer, head, batches):
        attn = model.blocks[layer].attn
        d = attn.d_head
        columns = list(range(head * d, (head + 1) * d))
        outputs = _head_outputs(model, layer, batches)
        flat = torch.cat([o.reshape(-1, attn.d_model) for o in outputs])
        if kind == "zero":
            with hs.ablate_heads(model, layer, head):
                return hs.mean_loss(model, batches)
        if kind == "no ablation":
            return hs.mean_loss(model, batches)
        if kind == "increase":
            return _reference_ablation(model, layer, head, batches) - hs.mean_loss(model, batches)
        if kind == "per position":
            value = torch.cat([o for o in outputs]).mean(0)[:, columns]  # (n, d_head): the mean over texts only
        elif kind == "scalar":
            value = flat[:, columns].mean()
        elif kind == "interleaved":
            columns = list(range(head, attn.d_model, attn.n_heads))
            value = flat[:, columns].mean(0)
        elif kind == "every head":
            columns, value = list(range(attn.d_model)), flat.mean(0)
        elif kind == "mean of batch means":
            value = torch.stack([o.reshape(-1, attn.d_model).mean(0) for o in outputs]).mean(0)[columns]
        elif kind == "first batch":
            value = outputs[0].reshape(-1, attn.d_model).mean(0)[columns]
        return _replace(model, layer, columns, value, batches)

    return mean_ablation_loss


@exercise("9.4", "Mean ablation of a head", "hard", 25, hints=(
    "Zero ablation asks what the model does without a head, but zero is an output the head never gives. "
    "Mean ablation replaces the head's output by its average over many positions: the head still sends its "
    "usual message, only the part that depends on the text is gone. Two passes: measure the mean, then "
    "measure the loss with the mean written in.",
    "A head's output is its d_head slice [head * d_head, (head + 1) * d_head) of the input of "
    "model.blocks[layer].attn.out_proj. Pass 1: a forward pre-hook that records that input on every batch; "
    "average the slice over every position of every text (each position counts once). Pass 2: a pre-hook "
    "that returns a copy of the input with the slice set to that mean, while hs.mean_loss runs. Remove each "
    "hook when its pass is done.",
    "handle = module.register_forward_pre_hook(fn): fn(module, inputs) gets inputs = (x,), x of shape "
    "(batch, n, d_model), and may return a new tuple (x_new,). Record with x.reshape(-1, d_model) and "
    "torch.cat(...).mean(0); in pass 2 clone x, assign the mean to x_new[..., start:stop], return (x_new,); "
    "call handle.remove() in a finally block.",
))
def check_mean_ablation_loss(mean_ablation_loss) -> None:
    """Exercise 9.4: the mean loss of a tiny GPT with one head replaced by its mean output."""
    if not callable(mean_ablation_loss):
        run_cases("mean_ablation_loss", mean_ablation_loss, _reference_ablation, [], exercise="9.4")
    run_cases(
        "mean_ablation_loss",
        _ablating(mean_ablation_loss),
        _ablating(_reference_ablation),
        [
            Case((4, 1, 0, 1, (3, 3)), label="layer 0, head 1 of a 2-layer, 4-head GPT; 2 batches of 3 x 8 tokens",
                 hint="The head's output is replaced by ONE d_head vector, its mean over every position of every "
                 "text, written at every position; the rest of the model runs as before."),
            Case((4, 2, 1, 3, (3, 3)), label="layer 1, head 3 (the last head of the second layer)",
                 hint="Head 3's features are the last d_head = 4 of the 16 inputs of out_proj, one contiguous "
                 "slice."),
            Case((2, 3, 1, 0, (2, 5)), label="a 2-head GPT, layer 1, head 0; batches of 2 and of 5 texts",
                 hint="The batches differ in size: every position counts once, so the mean is over all 56 "
                 "positions together, not a mean of the two batches' means."),
            Case((2, 4, 0, 1, (4,)), label="a 2-head GPT, layer 0, head 1; a single batch"),
        ],
        hint="Return a Python float: the mean loss over the batches (as hs.mean_loss computes it) with the head's "
        "output replaced by its mean, and leave the model as you found it.",
        compare=_compare_ablation,
        exercise="9.4",
        mistakes=[Mistake(_ablating(_ablation_with(kind)), says) for kind, says in [
            ("zero", "the head's output was set to zero (zero ablation): write its mean output instead."),
            ("no ablation", "this is the loss with nothing ablated: the head's output must be replaced by its mean "
             "while the loss is measured."),
            ("increase", "this is the increase of the loss: return the loss itself, with the head mean-ablated."),
            ("per position", "the mean was taken per position, over the texts only: it still tells each position "
             "apart. Average over every position of every text, to one d_head vector."),
            ("scalar", "the head's output was replaced by one number: the mean is a d_head vector, one mean per "
             "feature."),
            ("interleaved", "the head's features were taken every n_heads-th column: head h is the contiguous slice "
             "[h * d_head, (h + 1) * d_head)."),
            ("every head", "every head of the layer was replaced: only the given head's slice changes."),
            ("mean of batch means", "this is the mean of the batches' means: batches of different sizes make it "
             "differ from the mean over every position, where each position counts once."),
            ("first batch", "the mean came from the first batch only: average over every batch."),
        ]],
    )
