"""Scoring attention heads: turn attention pictures into numbers, and test what a head is worth.

An attention head's weights for one text are an (n, n) matrix: row i says how much token i attends
to each token j, and every row sums to 1. A model gives one such matrix per layer and head. The
functions here reduce each matrix to one number that answers a question about the head:

    previous_token_score(w)        how much each token attends to the token just before it
    next_token_score(w)            ... to the token just after it
    self_score(w)                  ... to itself
    offset_score(w, k)             ... to the token k places away (the three above are k = -1, +1, 0)
    batch_offset_score(w, mask, k) the same over a padded batch of texts, padding left out
    score_to_positions(w, where)   ... to chosen positions ([CLS], [SEP], punctuation, spaces)
    score_to_targets(w, targets)   ... each to its own target (token i to targets[i], e.g. the last space)
    attention_entropy(w)           how spread out each row is, in nats (0 = all on one token)
    pattern_correlation(a, b)      how alike two maps are (Pearson correlation, 1 = the same shape)
    norm_weighted(w, vectors)      weight x size of what is moved: alpha_ij * ||f(x_j)||
    row_shares(m)                  each row divided by its sum

`w` may be one head's (n, n) matrix, a (heads, n, n) tensor for one layer, a (layers, heads, n, n)
tensor (what utils.bert.attention_weights returns), or a list with one tensor per layer, each
(1, heads, n, n) or (heads, n, n) (what our GPT returns with need_weights=True and a Hugging Face
model with output_attentions=True). The leading dims are kept: a (layers, heads, n, n) input gives a
(layers, heads) tensor of scores, one per head.

What a score cannot say is whether the head matters. For that, remove the head and measure:

    with ablate_heads(model, layer, head):   # our GPT, with one head's output set to zero
        loss = mean_loss(model, batches)
    ablation_losses(model, batches)         # (layers, heads): the loss with each head removed

Zero is an output the head never gives, so zero ablation also measures the shock of an unusual input
to the layers above. Mean ablation writes the head's average output instead: it removes what the
head says about *this* text and keeps what it says about every text.

    means = head_means(model, layer, batches)            # (heads, d_head)
    with mean_ablate_heads(model, layer, head, means):
        loss = mean_loss(model, batches)
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F

__all__ = [
    "as_weights",
    "per_layer",
    "offset_score",
    "batch_offset_score",
    "batch_previous_token_score",
    "previous_token_score",
    "next_token_score",
    "self_score",
    "score_to_positions",
    "score_to_targets",
    "attention_entropy",
    "pattern_correlation",
    "norm_weighted",
    "row_shares",
    "top_heads",
    "ablate_heads",
    "head_means",
    "mean_ablate_heads",
    "mean_loss",
    "ablation_losses",
]

ROW_SUM_TOLERANCE = 1e-3


def _floating(t: torch.Tensor) -> torch.Tensor:
    """A detached CPU copy in float32, or float64 if it already is (so exact tests stay exact)."""
    t = torch.as_tensor(t).detach().cpu()
    return t if t.dtype == torch.float64 else t.float()


def per_layer(attentions, batch_index: int | None = None, square: bool = True) -> list[torch.Tensor]:
    """What a model returns, one tensor per layer, as a list of (heads, n, n) tensors (detached, on the CPU).

    Each layer's tensor is (batch, heads, n, n) or (heads, n, n). batch_index picks one text of a batch;
    with None only a batch of one is accepted, so that a score never mixes texts silently.
    square=False accepts cross-attention, (heads, n_q, n_k) with n_q != n_k.
    Used by as_weights here and by the pictures of utils.views.attention_lines.
    """
    dims = "n, n" if square else "n_q, n_k"
    if not isinstance(attentions, (list, tuple)) or not attentions:
        raise ValueError("attentions must be a non-empty list or tuple with one tensor per layer")
    layers = []
    for i, a in enumerate(attentions):
        if a is None:
            raise ValueError(f"layer {i} has no attention weights (None). Ask the model for them: our GPT with "
                             "need_weights=True; a Hugging Face model loaded with attn_implementation='eager' "
                             "and called with output_attentions=True.")
        a = torch.as_tensor(a).detach().cpu()
        if a.dim() == 4:
            if batch_index is None and a.shape[0] != 1:
                raise ValueError(f"layer {i} holds a batch of {a.shape[0]} texts, shape {tuple(a.shape)}; "
                                 "score one text at a time: pass [a[b] for a in attentions] for text b")
            a = a[batch_index or 0]
        if a.dim() != 3 or (square and a.shape[1] != a.shape[2]):
            raise ValueError(f"layer {i}: expected (batch, heads, {dims}) or (heads, {dims}), got {tuple(a.shape)}")
        layers.append(a)
    if any(a.shape != layers[0].shape for a in layers):
        shapes = sorted({tuple(a.shape) for a in layers})
        raise ValueError(f"every layer must have the same shape (heads, {dims}); got {shapes}")
    return layers


def as_weights(attentions, check_rows: bool = True) -> torch.Tensor:
    """Attention weights as one float tensor (..., n, n), e.g. (layers, heads, n, n).

    Accepts a tensor whose last two dims are (n, n), or a list or tuple with one tensor per layer, each
    (1, heads, n, n) or (heads, n, n); the list is stacked into (layers, heads, n, n). With check_rows,
    every row must be non-negative and sum to 1 (within 1e-3), which catches scores passed before the
    softmax and maps cut out of a bigger one.
    """
    if isinstance(attentions, (list, tuple)):
        layers = per_layer(attentions)
        weights = torch.stack(layers)
    elif isinstance(attentions, torch.Tensor):
        weights = attentions
    else:
        raise ValueError(f"expected a tensor (..., n, n) or a list of per-layer tensors, "
                         f"got {type(attentions).__name__}")
    if weights.dim() < 2 or weights.shape[-1] != weights.shape[-2]:
        raise ValueError(f"attention weights must end in two equal dims (n, n): row = query, column = key; "
                         f"got shape {tuple(weights.shape)}")
    if weights.shape[-1] == 0:
        raise ValueError("the attention covers 0 tokens")
    weights = _floating(weights)
    if check_rows:
        if (weights < -1e-6).any():
            raise ValueError("attention weights must be >= 0: these look like scores before the softmax")
        sums = weights.sum(-1)
        worst = (sums - 1).abs().max().item()
        if worst > ROW_SUM_TOLERANCE:
            raise ValueError(f"every row of attention weights must sum to 1, but one sums to "
                             f"{sums.flatten()[(sums - 1).abs().flatten().argmax()].item():.4f}: pass the weights "
                             "after the softmax, and whole rows (not a block cut out of the matrix)")
    return weights


def offset_score(attentions, offset: int) -> torch.Tensor:
    """Mean weight from token i to token i + offset, over every i for which that token exists.

    offset -1: the previous token, 0: itself, +1: the next one. Returns a tensor of the leading shape,
    e.g. (layers, heads); a value of 1 means every token put all its weight on that neighbour.
    """
    weights = as_weights(attentions)
    n = weights.shape[-1]
    if not isinstance(offset, int) or abs(offset) >= n:
        raise ValueError(f"offset must be an integer with |offset| < n = {n}, got {offset!r}")
    # diagonal(offset=k) holds w[i, i + k]: k = -1 is the line just below the main diagonal.
    return torch.diagonal(weights, offset=offset, dim1=-2, dim2=-1).mean(-1)


def batch_offset_score(weights: torch.Tensor, attention_mask: torch.Tensor, offset: int) -> torch.Tensor:
    """offset_score over a padded batch: the mean weight from token i to token i + offset, over every
    pair (i, i + offset) of every text in which both tokens are real (attention_mask 1).

    weights: (batch, ..., n, n), e.g. (batch, heads, n, n); attention_mask: (batch, n), 1 for a real
    token and 0 for padding, on either side. Every pair counts once, so a long text weighs more than a
    short one. Returns the dims between batch and (n, n), e.g. (heads,).
    """
    weights = as_weights(weights)
    real = _checked_batch_mask(weights, attention_mask, offset)
    n = weights.shape[-1]
    line = torch.diagonal(weights, offset=offset, dim1=-2, dim2=-1)  # (batch, ..., n - |offset|): w[i, i + offset]
    queries = torch.arange(max(0, -offset), n - max(0, offset))
    pairs = (real[:, queries] & real[:, queries + offset]).to(line.dtype)  # (batch, n - |offset|)
    pairs = pairs.reshape(pairs.shape[0], *([1] * (line.dim() - 2)), pairs.shape[1])  # broadcast over heads
    return (line * pairs).sum(dim=(0, -1)) / pairs.sum()


def batch_previous_token_score(weights: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """batch_offset_score with offset -1: the previous-token score of each head over a padded batch."""
    return batch_offset_score(weights, attention_mask, -1)


def previous_token_score(attentions) -> torch.Tensor:
    """Mean weight from each token to the one just before it (tokens 1..n-1; token 0 has none)."""
    return offset_score(attentions, -1)


def next_token_score(attentions) -> torch.Tensor:
    """Mean weight from each token to the one just after it (tokens 0..n-2)."""
    return offset_score(attentions, 1)


def self_score(attentions) -> torch.Tensor:
    """Mean weight from each token to itself."""
    return offset_score(attentions, 0)


def _key_mask(positions, n: int) -> torch.Tensor:
    """positions (ints, negative ones from the end, or a bool mask of length n) -> bool mask (n,)."""
    if isinstance(positions, int):
        positions = [positions]
    positions = torch.as_tensor(positions)
    if positions.dtype == torch.bool:
        if positions.shape != (n,):
            raise ValueError(f"a bool mask of positions must have shape ({n},), got {tuple(positions.shape)}")
        return positions
    if positions.dim() != 1 or positions.is_floating_point():
        raise ValueError("positions must be an int, a list of ints, or a bool mask with one entry per token")
    if len(positions) and (int(positions.max()) >= n or int(positions.min()) < -n):
        raise ValueError(f"positions {positions.tolist()} do not all lie in 0..{n - 1} (or -{n}..-1)")
    mask = torch.zeros(n, dtype=torch.bool)
    mask[positions % n] = True
    return mask


def score_to_positions(attentions, positions, queries=None) -> torch.Tensor:
    """Mean over queries of the total weight that each query puts on the given key positions.

    positions: an int, a list of ints (negative ones count from the end: -1 is [SEP] in a BERT input),
    or a bool mask of length n. queries: which query rows to average over (same forms); default all.
    E.g. score_to_positions(w, 0) is the share of attention on [CLS].
    """
    weights = as_weights(attentions)
    n = weights.shape[-1]
    keys = _key_mask(positions, n)
    rows = torch.ones(n, dtype=torch.bool) if queries is None else _key_mask(queries, n)
    if not rows.any():
        raise ValueError("no query positions selected")
    return weights[..., rows, :][..., keys].sum(-1).mean(-1)


def score_to_targets(attentions, targets) -> torch.Tensor:
    """Mean weight from each query i to its own key targets[i], over the queries that have one.

    targets: a list or 1-d tensor of n key positions, one per query, with -1 (or None) where a query has
    no target (it is left out of the mean). E.g. for every character, the position of the last space
    before it; previous_token_score is the case targets = [-1, 0, 1, ..., n - 2].
    """
    weights = as_weights(attentions)
    n = weights.shape[-1]
    if not isinstance(targets, torch.Tensor):
        targets = [-1 if t is None else t for t in targets]
    targets = torch.as_tensor(targets, dtype=torch.long).cpu()
    if targets.shape != (n,):
        raise ValueError(f"targets must hold one key position per query, {n} in all, got shape {tuple(targets.shape)}")
    if int(targets.max()) >= n or int(targets.min()) < -1:
        raise ValueError(f"targets must lie in 0..{n - 1}, or be -1 for a query without a target")
    queries = (targets >= 0).nonzero().flatten()
    if len(queries) == 0:
        raise ValueError("no query has a target (all targets are -1)")
    return weights[..., queries, targets[queries]].mean(-1)


def attention_entropy(attentions) -> torch.Tensor:
    """Mean over query rows of the entropy -sum_j w_ij ln w_ij, in nats.

    0 when each row puts all its weight on one token; ln(k) when it spreads evenly over k tokens
    (ln n for the uniform row). In a causal model row i can only spread over i + 1 tokens.
    """
    weights = as_weights(attentions)
    # 0 * ln 0 is taken as 0 (the limit), which xlogy does without producing NaN.
    return -torch.special.xlogy(weights, weights).sum(-1).mean(-1) + 0.0  # + 0.0 turns -0.0 into 0.0


def pattern_correlation(a, b, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Pearson correlation between two attention maps of the same shape, per head.

    a, b: (..., n, n), e.g. one head's map on a sentence and on the same sentence shuffled. The entries
    of each (n, n) map are flattened (only those where `mask`, an (n, n) bool tensor, is True, e.g. the
    lower triangle of a causal model), centred, and correlated. 1: the same pattern up to scale; about 0:
    unrelated. Returns the leading shape, e.g. (layers, heads). A map with no variation (all entries
    equal) has no defined correlation: the result there is NaN.
    """
    a, b = as_weights(a, check_rows=False), as_weights(b, check_rows=False)
    dtype = a.dtype
    if a.shape != b.shape:
        raise ValueError(f"the two maps must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    n = a.shape[-1]
    if mask is not None:
        mask = torch.as_tensor(mask, dtype=torch.bool)
        if mask.shape != (n, n):
            raise ValueError(f"mask must have shape ({n}, {n}), got {tuple(mask.shape)}")
        a, b = a[..., mask], b[..., mask]
    else:
        a, b = a.flatten(-2), b.flatten(-2)
    a = a.double() - a.double().mean(-1, keepdim=True)
    b = b.double() - b.double().mean(-1, keepdim=True)
    r = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
    return r if dtype == torch.float64 else r.float()


def norm_weighted(attentions, vectors: torch.Tensor) -> torch.Tensor:
    """alpha_ij * ||f(x_j)||: how much of token j actually reaches token i (Kobayashi et al. 2020).

    Attention's output for token i is sum_j alpha_ij f(x_j), where f(x_j) is token j's value vector
    after the head's share of the output projection. A large weight on a tiny vector moves little.
    attentions: (..., n, n) weights; vectors: (..., n, d), the f(x_j) of the same head(s), with the
    same leading dims. Returns (..., n, n), not normalised (see row_shares).
    """
    weights = as_weights(attentions)
    vectors = _floating(vectors)
    n = weights.shape[-1]
    if vectors.dim() < 2 or vectors.shape[-2] != n or vectors.shape[:-2] != weights.shape[:-2]:
        raise ValueError(f"vectors must have shape {tuple(weights.shape[:-2]) + (n, 'd')} to match weights of "
                         f"shape {tuple(weights.shape)}, got {tuple(vectors.shape)}")
    return weights * vectors.norm(dim=-1).unsqueeze(-2)  # column j scaled by ||f(x_j)||


def row_shares(matrix: torch.Tensor) -> torch.Tensor:
    """Each row divided by its sum, so that it sums to 1 (e.g. norm_weighted(...) as shares)."""
    matrix = _floating(matrix)
    if matrix.dim() < 2:
        raise ValueError(f"row_shares needs at least a 2-d (n, n) matrix, got shape {tuple(matrix.shape)}")
    return matrix / matrix.sum(-1, keepdim=True)


def top_heads(scores: torch.Tensor, k: int = 3) -> list[tuple[int, int, float]]:
    """The k highest-scoring heads of a (layers, heads) score tensor, as (layer, head, score), best first."""
    scores = torch.as_tensor(scores)
    if scores.dim() != 2:
        raise ValueError(f"scores must have shape (layers, heads), got {tuple(scores.shape)}")
    flat = torch.nan_to_num(scores.flatten().float(), nan=-math.inf)
    best = flat.argsort(descending=True)[:k].tolist()
    return [(i // scores.shape[1], i % scores.shape[1], float(scores.flatten()[i])) for i in best]


# --- ablation: remove one head of our GPT and measure -------------------------------------------


@contextlib.contextmanager
def ablate_heads(model, layer: int, heads):
    """Inside the `with` block, the given head(s) of layer `layer` contribute nothing.

    Attention's output is concat(head_0, ..., head_H-1) W^O; head h's d_head features are the slice
    [h * d_head, (h + 1) * d_head) of the input of attn.out_proj. A forward pre-hook sets those slices
    to zero, so W^O receives nothing from the heads. Leaving the block removes the hook: the model is
    exactly as before. `heads` is one head index or several. Works on every model of the course whose
    `.blocks[layer].attn` is a utils.attention.MultiHeadAttention (our GPT, lesson 04's HeadsModel).
    """
    attn, heads = _check_heads(model, layer, heads)
    keep = torch.ones(attn.d_model)
    for h in heads:
        keep[h * attn.d_head:(h + 1) * attn.d_head] = 0.0

    def zero_slices(module, inputs):
        (x,) = inputs
        return (x * keep.to(x.device, x.dtype),)  # a new tensor: nothing else that uses x changes

    handle = attn.out_proj.register_forward_pre_hook(zero_slices)
    try:
        yield model
    finally:
        handle.remove()


@torch.no_grad()
def head_means(model, layer: int, batches) -> torch.Tensor:
    """(heads, d_head): each head's output in layer `layer`, averaged over every position of every batch.

    A head's output is its d_head slice of the input of attn.out_proj (see ablate_heads); every position
    of every text counts once. batches: (x, y) pairs as mean_loss takes them (y is not used). The model
    runs in eval mode and is left in the mode it was in.
    """
    attn, _ = _check_heads(model, layer, [])
    batches = _checked_batches(batches)
    outputs = []

    def keep(module, inputs):
        outputs.append(inputs[0].reshape(-1, attn.d_model))

    handle = attn.out_proj.register_forward_pre_hook(keep)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        for x, _ in batches:
            model(x.to(device))
    finally:
        handle.remove()
        model.train(was_training)
    return torch.cat(outputs).mean(dim=0).view(attn.n_heads, attn.d_head)


@contextlib.contextmanager
def mean_ablate_heads(model, layer: int, heads, means: torch.Tensor):
    """Inside the `with` block, the given head(s) of layer `layer` give their mean output everywhere.

    means: (heads, d_head), e.g. head_means(model, layer, batches). A forward pre-hook on attn.out_proj
    writes means[h] into head h's slice at every position: the head still adds its average message,
    but nothing that depends on the text. Leaving the block removes the hook.
    """
    attn, heads = _check_heads(model, layer, heads)
    means = torch.as_tensor(means)
    if tuple(means.shape) != (attn.n_heads, attn.d_head):
        raise ValueError(f"means must have shape (heads, d_head) = {(attn.n_heads, attn.d_head)}, as head_means "
                         f"returns it; got {tuple(means.shape)}")
    keep = torch.ones(attn.n_heads, attn.d_head)
    keep[heads] = 0.0
    keep, written = keep.flatten(), (means * (1 - keep)).flatten()  # (d_model,) each

    def write_means(module, inputs):
        (x,) = inputs
        return (x * keep.to(x.device, x.dtype) + written.to(x.device, x.dtype),)

    handle = attn.out_proj.register_forward_pre_hook(write_means)
    try:
        yield model
    finally:
        handle.remove()


def _checked_batch_mask(weights: torch.Tensor, attention_mask, offset: int) -> torch.Tensor:
    """attention_mask as a bool (batch, n) tensor that fits weights (batch, ..., n, n)."""
    n = weights.shape[-1]
    if weights.dim() < 3:
        raise ValueError(f"weights must be (batch, ..., n, n), e.g. (batch, heads, n, n); got {tuple(weights.shape)}")
    mask = torch.as_tensor(attention_mask).cpu()
    if tuple(mask.shape) != (weights.shape[0], n):
        raise ValueError(f"attention_mask must have shape (batch, n) = {(weights.shape[0], n)} to fit weights of "
                         f"shape {tuple(weights.shape)}, got {tuple(mask.shape)}")
    if not isinstance(offset, int) or abs(offset) >= n:
        raise ValueError(f"offset must be an integer with |offset| < n = {n}, got {offset!r}")
    real = mask.bool()
    queries = torch.arange(max(0, -offset), n - max(0, offset))
    if not (real[:, queries] & real[:, queries + offset]).any():
        raise ValueError(f"no pair of real tokens {abs(offset)} apart in the batch: nothing to average")
    return real


def _checked_batches(batches) -> list:
    batches = list(batches)
    if not batches:
        raise ValueError("no batches given: pass a list of (x, y) pairs")
    return batches


def _check_heads(model, layer: int, heads) -> tuple:
    blocks = getattr(model, "blocks", None)
    if blocks is None or not hasattr(blocks[0], "attn"):
        raise ValueError("ablate_heads works on the course's models (utils.model.GPT, lesson 04's HeadsModel): "
                         "a model with .blocks, each holding .attn with .out_proj")
    n_layers, n_heads = len(blocks), blocks[0].attn.n_heads
    if not 0 <= layer < n_layers:
        raise ValueError(f"layer must be in 0..{n_layers - 1}, got {layer}")
    heads = [heads] if isinstance(heads, int) else list(heads)
    for head in heads:
        if not 0 <= head < n_heads:
            raise ValueError(f"head must be in 0..{n_heads - 1}, got {head}")
    return blocks[layer].attn, heads


@torch.no_grad()
def mean_loss(model, batches) -> float:
    """Mean cross-entropy of our GPT over batches of (x, y) token ids, each (batch, n), in eval mode."""
    batches = _checked_batches(batches)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total = 0.0
    for x, y in batches:
        logits, _, _ = model(x.to(device))
        total += F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.to(device).reshape(-1)).item()
    model.train(was_training)
    return total / len(batches)


def ablation_losses(model, batches, progress: bool = False) -> torch.Tensor:
    """(layers, heads): the mean loss on `batches` with each head removed in turn (one at a time)."""
    from tqdm.auto import tqdm

    batches = list(batches)
    n_layers, n_heads = len(model.blocks), model.blocks[0].attn.n_heads
    losses = torch.zeros(n_layers, n_heads)
    pairs = [(layer, head) for layer in range(n_layers) for head in range(n_heads)]
    for layer, head in tqdm(pairs, desc="ablating heads", disable=not progress):
        with ablate_heads(model, layer, head):
            losses[layer, head] = mean_loss(model, batches)
    return losses
