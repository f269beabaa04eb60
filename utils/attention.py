"""Attention, written out by hand: the one operation that lets tokens look at each other.

    attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

Each query row of Q scores every key row of K (a dot product), softmax turns a row of scores into
weights that are >= 0 and sum to 1, and the output is that weighted average of the rows of V.

Shapes use these names throughout:

    batch   sequences processed together
    heads   attention heads (independent attentions side by side)
    n_q     number of queries (tokens asking)      n_k   number of keys/values (tokens answered)
    d_k     size of a query/key vector              d_v   size of a value vector
    d_model size of a token vector in the model     d_head = d_model // heads

Masks: every mask in this module is a bool tensor where True = "this query may attend to this key"
and False = "blocked". That is the same convention as PyTorch's F.scaled_dot_product_attention when
it is given a bool `attn_mask`, and as Hugging Face's `attention_mask` (1 = real token). It is the
OPPOSITE of torch.nn.MultiheadAttention, whose bool `attn_mask` and `key_padding_mask` mean
True = blocked: pass `~mask` there.

Contents:
    scaled_dot_product_attention  the formula above, returning the output and the weights
    causal_mask, padding_mask     the two masks a language model needs
    split_heads, merge_heads      (batch, n, d_model) <-> (batch, heads, n, d_head)
    MultiHeadAttention            the nn.Module a transformer block uses
"""

from __future__ import annotations

import math
import operator

import torch
import torch.nn.functional as F
from torch import nn

from .rope import rope_table, rotate

__all__ = [
    "scaled_dot_product_attention",
    "causal_mask",
    "padding_mask",
    "split_heads",
    "merge_heads",
    "MultiHeadAttention",
    "KVCache",
    "repeat_kv",
]


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout: nn.Module | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(d_k)) v, step by step, returning the output and the attention weights.

    Args:
        q: queries, (..., n_q, d_k).
        k: keys, (..., n_k, d_k). Same d_k as q: a query and a key meet in a dot product.
        v: values, (..., n_k, d_v). One value per key.
           The leading dims "..." (e.g. batch, heads) must broadcast against each other.
        mask: optional bool tensor broadcastable to (..., n_q, n_k). True = the query may attend to
            that key, False = blocked (its weight is exactly 0). Same convention as
            torch.nn.functional.scaled_dot_product_attention with a bool attn_mask.
        dropout: optional module applied to the weights before they mix the values, usually an
            nn.Dropout (which is a no-op in eval mode). The returned weights are the ones before
            dropout, so each row still sums to 1.

    Returns:
        output: (..., n_q, d_v), the weighted averages of the value rows.
        weights: (..., n_q, n_k), each row sums to 1 over the keys it may attend to.

    Fully masked rows: a query that may attend to no key at all gets weights of all zeros and an
    output of zeros (not NaN). PyTorch's own function does the same in recent versions. Such rows
    appear, for example, for padding queries under left padding plus a causal mask.
    """
    _check_attention_args(q, k, v, mask, dropout)
    d_k = q.shape[-1]
    # Dividing by sqrt(d_k) keeps the scores' spread about 1 whatever d_k is: a dot product of d_k
    # unit-variance numbers has variance d_k, and large scores would make softmax nearly one-hot.
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)  # (..., n_q, n_k)

    if mask is None:
        weights = scores.softmax(dim=-1)
    else:
        # -inf becomes exactly 0 after softmax: blocked keys get no weight at all.
        scores = scores.masked_fill(~mask, float("-inf"))
        # A row of only -inf would give 0/0 = NaN. Give such rows harmless scores instead, then zero
        # every blocked weight below, which zeroes those rows entirely (and keeps gradients finite).
        has_key = mask.any(dim=-1, keepdim=True)
        scores = scores.masked_fill(~has_key, 0.0)
        weights = scores.softmax(dim=-1).masked_fill(~mask, 0.0)

    mixing = weights if dropout is None else dropout(weights)
    return mixing @ v, weights


def causal_mask(
    n_q: int, n_k: int | None = None, *, device: torch.device | str | None = None
) -> torch.Tensor:
    """Bool mask (n_q, n_k): True where a query may attend to a key without looking ahead.

    causal_mask(n) is the usual (n, n) lower-triangular mask: token i sees tokens 0..i.

    causal_mask(n_q, n_k) with n_q <= n_k is for a KV cache: the queries are the LAST n_q of the
    n_k positions (the new tokens), so query i sits at position n_k - n_q + i and sees keys
    0..n_k - n_q + i. Its rows equal the last n_q rows of causal_mask(n_k).

    Note: PyTorch's F.scaled_dot_product_attention(..., is_causal=True) aligns the triangle to the
    top-left instead when n_q != n_k (query i sees keys 0..i), which is wrong for a KV cache; pass
    this mask as attn_mask there.

    Example: causal_mask(2, 4) ->
        [[ True,  True,  True, False],
         [ True,  True,  True,  True]]
    """
    n_q, n_k = _check_causal_sizes(n_q, n_k)
    ones = torch.ones(n_q, n_k, dtype=torch.bool, device=device)
    # tril keeps j <= i + diagonal; diagonal = n_k - n_q shifts the triangle to the bottom-right.
    return ones.tril(diagonal=n_k - n_q)


def padding_mask(
    lengths_or_mask: torch.Tensor | list[int],
    n: int | None = None,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Bool mask (batch, 1, 1, n) that blocks padding keys: True = real token, False = padding.

    Accepts either
        lengths (batch,) of ints: sequence b is real in positions 0..lengths[b]-1 (right padding);
            `n` is the padded length, default max(lengths); or
        an attention mask (batch, n) of 0/1 or bool, 1 = real token (Hugging Face's convention), which
            also covers left padding.

    The two singleton dims let it broadcast against attention scores (batch, heads, n_q, n_k): the
    same keys are blocked for every head and every query. Only keys are masked; queries at padding
    positions still produce (meaningless but finite) outputs, which the loss should ignore.
    """
    t = torch.as_tensor(lengths_or_mask, device=device)
    n = _check_padding_input(t, n)
    if t.dim() == 1:  # lengths: position j of sequence b is real while j < lengths[b]
        keep = torch.arange(n, device=t.device) < t[:, None]  # (batch, n)
    else:  # an attention mask, 1 = real token
        keep = t.bool()
    return keep[:, None, None, :]


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(batch, n, d_model) -> (batch, heads, n, d_head): cut each token vector into n_heads pieces.

    Head h gets features h*d_head .. (h+1)*d_head - 1. Heads move in front of n so that the
    attention matmuls treat (batch, heads) as independent batch dims.
    """
    _check_split_input(x, n_heads)
    batch, n, d_model = x.shape
    return x.view(batch, n, n_heads, d_model // n_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(batch, heads, n, d_head) -> (batch, n, heads * d_head): the inverse of split_heads."""
    _check_merge_input(x)
    batch, heads, n, d_head = x.shape
    # After transpose the memory is no longer in (batch, n, ...) order, so reshape (which copies
    # when needed) rather than view.
    return x.transpose(1, 2).reshape(batch, n, heads * d_head)


def repeat_kv(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(batch, n_kv_heads, n, d_head) -> (batch, n_heads, n, d_head): each key/value head repeated for the
    n_heads / n_kv_heads query heads of its group, in order (query heads 0, 1, .. share key head 0)."""
    groups = n_heads // x.shape[1]
    return x if groups == 1 else x.repeat_interleave(groups, dim=1)


class KVCache:
    """The keys and values one attention layer has already computed, kept for the next step.

    When a language model generates, each new token needs the keys and values of every earlier
    token. Without a cache they are recomputed from scratch at every step (work that grows with
    the length of the text); with it, each step computes k and v for the new token only and
    appends them here. Shapes: (batch, heads, n_so_far, d_head).
    """

    def __init__(self):
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.k is None else self.k.shape[2]

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add the new positions' keys and values; return all keys and values so far."""
        if self.k is None:
            self.k, self.v = k, v
        else:
            self.k = torch.cat([self.k, k], dim=2)
            self.v = torch.cat([self.v, v], dim=2)
        return self.k, self.v


class MultiHeadAttention(nn.Module):
    """Multi-head attention: n_heads attentions of size d_head = d_model // n_heads, side by side.

        Q = x W^Q,  K = kv W^K,  V = kv W^V          (kv = x for self-attention)
        head_h = attention(Q_h, K_h, V_h)             Q_h = the h-th d_head slice of Q's features
        output = concat(head_1..head_H) W^O

    The projections are four nn.Linear layers, q_proj, k_proj, v_proj and out_proj (W^O).
    Keeping q, k and v separate makes cross-attention read naturally (queries from x, keys and
    values from kv); fusing them into one (d_model, 3*d_model) matmul is only a speed-up.

    Args:
        d_model: size of the token vectors in and out.
        n_heads: number of heads; must divide d_model.
        bias: whether the four projections have biases.
        dropout: probability of dropping attention weights while training.
        causal: if True every query only sees keys at its own position or earlier (a language
            model). With n_q < n_k the queries are taken to be the last n_q positions (KV cache).
        n_kv_heads: heads of keys and values (lesson 11). None = n_heads (multi-head attention);
            fewer, dividing n_heads, = grouped-query attention (each key/value head serves
            n_heads / n_kv_heads query heads; 1 = multi-query). The KV cache holds only these.
        rope_base: None = no positions here (GPT-2 adds them to the embeddings); a number = rotary
            positions (utils.rope) with that base, applied to queries and keys (self-attention).
        qk_norm: RMSNorm on every query and key head before the scores, with eps norm_eps (Qwen 3; OLMo 2
            normalises the whole query and key projections instead, before the split into heads).
    """

    def __init__(
        self, d_model: int, n_heads: int, bias: bool = True, dropout: float = 0.0, causal: bool = False,
        n_kv_heads: int | None = None, rope_base: float | None = None, qk_norm: bool = False,
        norm_eps: float = 1e-6,
    ):
        super().__init__()
        _check_head_count(d_model, n_heads)
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        _check_kv_heads(n_heads, n_kv_heads)
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_kv_heads = n_kv_heads
        self.d_head = d_model // n_heads
        self.dropout = dropout
        self.causal = causal
        self.rope_base = rope_base
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, n_kv_heads * self.d_head, bias=bias)
        self.v_proj = nn.Linear(d_model, n_kv_heads * self.d_head, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self.attn_dropout = nn.Dropout(dropout)
        self.q_norm = self.k_norm = None
        if qk_norm:
            from .model import RMSNorm  # utils.model builds its blocks from this module

            self.q_norm, self.k_norm = RMSNorm(self.d_head, norm_eps), RMSNorm(self.d_head, norm_eps)

    def extra_repr(self) -> str:
        extra = "" if self.n_kv_heads == self.n_heads else f", n_kv_heads={self.n_kv_heads}"
        extra += "" if self.rope_base is None else f", rope_base={self.rope_base:g}"
        return (f"d_model={self.d_model}, n_heads={self.n_heads}, d_head={self.d_head}, causal={self.causal}"
                + extra)

    def forward(
        self,
        x: torch.Tensor,
        kv: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        need_weights: bool = False,
        use_fused: bool = True,
        cache: KVCache | None = None,
        kv_heads: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Attend from x to kv (or to x itself when kv is None).

        Args:
            x: (batch, n_q, d_model), the tokens that ask (queries).
            kv: (batch, n_k, d_model), the tokens that answer (keys and values); None = x, i.e.
                self-attention. Giving it makes this cross-attention.
            mask: bool, True = may attend; (n_q, n_k) or (batch | 1, heads | 1, n_q | 1, n_k), e.g.
                padding_mask(...). Combined (AND) with the causal mask when causal=True.
                A (batch, n_k) attention mask must go through padding_mask first: as a 2-D mask it
                would be read as (n_q, n_k), which goes unnoticed when batch == n_q.
            need_weights: also return the attention weights. They come from the hand-written path.
            use_fused: when weights are not needed, use PyTorch's fused
                F.scaled_dot_product_attention (same numbers, faster, never stores the n_q x n_k
                weights). False = always the hand-written path.
            cache: a KVCache (self-attention only). The keys and values of x are appended to it and
                x attends to everything cached so far; with causal=True, x is taken to be the last
                n_q positions.
            kv_heads: the keys and values of kv already computed by keys_values(kv), instead of kv:
                a translation model's decoder attends to the same encoder output at every step, so it
                projects it once (cross-attention with a fixed source).

        Returns:
            output (batch, n_q, d_model) when need_weights is False, otherwise
            (output, weights) with per-head weights (batch, heads, n_q, n_k).
        """
        _check_mha_inputs(x, kv, cache, self.d_model, kv_heads)
        past = len(cache) if cache is not None else 0
        q = split_heads(self.q_proj(x), self.n_heads)  # (batch, heads, n_q, d_head)
        if self.q_norm is not None:
            q = self.q_norm(q)
        if kv_heads is None:
            k, v = self.keys_values(x if kv is None else kv)  # x itself answers in self-attention
        else:
            k, v = kv_heads
        if self.rope_base is not None:
            if kv is not None or kv_heads is not None:
                raise ValueError("rotary positions are for self-attention: this layer was built with rope_base")
            # positions past, past + 1, ...: after the cached ones (utils.rope.apply_rope, its table kept)
            cos, sin = rope_table(past, x.shape[1], q.shape[-1], self.rope_base)
            q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        if cache is not None:
            k, v = cache.append(k, v)  # now every position so far (the n_kv_heads only: GQA's saving)
        k, v = repeat_kv(k, self.n_heads), repeat_kv(v, self.n_heads)
        batch, n_q, n_k = x.shape[0], x.shape[1], k.shape[2]

        weights = None
        if need_weights or not use_fused:
            full = self._full_mask(mask, batch, n_q, n_k, x.device)
            heads, weights = scaled_dot_product_attention(q, k, v, full, dropout=self.attn_dropout)
        else:
            p = self.dropout if self.training else 0.0
            if self.causal and mask is None and n_q == n_k:
                # is_causal=True lets PyTorch pick kernels that skip the blocked half entirely
                # (and flash attention on GPUs, which takes no explicit mask).
                heads = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
            else:
                full = self._full_mask(mask, batch, n_q, n_k, x.device)
                heads = F.scaled_dot_product_attention(q, k, v, attn_mask=full, dropout_p=p)

        output = self.out_proj(merge_heads(heads))  # (batch, n_q, d_model)
        return (output, weights) if need_weights else output

    def keys_values(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The keys and values of source (batch, n_k, d_model), each (batch, n_kv_heads, n_k, d_head)
        (QK-norm applied to the keys; rotary positions are not: they depend on where source sits)."""
        k = split_heads(self.k_proj(source), self.n_kv_heads)
        if self.k_norm is not None:
            k = self.k_norm(k)
        return k, split_heads(self.v_proj(source), self.n_kv_heads)

    def _full_mask(
        self, mask: torch.Tensor | None, batch: int, n_q: int, n_k: int, device
    ) -> torch.Tensor | None:
        """The user's mask checked and combined with the causal mask; None if nothing is blocked."""
        if mask is not None:
            _check_heads_mask(mask, (batch, self.n_heads, n_q, n_k))
        if self.causal:
            if n_q > n_k:
                raise ValueError(f"causal attention needs n_q <= n_k, got n_q={n_q}, n_k={n_k}")
            causal = causal_mask(n_q, n_k, device=device)
            mask = causal if mask is None else mask & causal
        return mask

    @torch.no_grad()
    def load_from_torch(self, mha: nn.MultiheadAttention) -> MultiHeadAttention:
        """Copy the weights of a torch.nn.MultiheadAttention into this module; returns self.

        PyTorch stores W^Q, W^K, W^V stacked in one in_proj_weight of shape (3*d_model, d_model),
        in that order, and W^O in out_proj. batch_first does not change the weights. Only the
        weights are copied; dropout and causal stay as this module was built.
        Remember PyTorch's bool masks mean True = blocked, the opposite of ours.
        """
        if mha.embed_dim != self.d_model or mha.num_heads != self.n_heads:
            raise ValueError(
                f"shapes differ: torch module has embed_dim={mha.embed_dim}, num_heads={mha.num_heads}; "
                f"this one has d_model={self.d_model}, n_heads={self.n_heads}"
            )
        if not mha._qkv_same_embed_dim or mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError(
                "only plain nn.MultiheadAttention (no kdim/vdim, add_bias_kv, add_zero_attn) is supported"
            )
        if (mha.in_proj_bias is not None) != (self.q_proj.bias is not None):
            raise ValueError(
                f"bias differs: torch module bias={mha.in_proj_bias is not None}, "
                f"this one bias={self.q_proj.bias is not None}"
            )
        w_q, w_k, w_v = mha.in_proj_weight.chunk(3, dim=0)
        self.q_proj.weight.copy_(w_q)
        self.k_proj.weight.copy_(w_k)
        self.v_proj.weight.copy_(w_v)
        self.out_proj.weight.copy_(mha.out_proj.weight)
        if mha.in_proj_bias is not None:
            b_q, b_k, b_v = mha.in_proj_bias.chunk(3, dim=0)
            self.q_proj.bias.copy_(b_q)
            self.k_proj.bias.copy_(b_k)
            self.v_proj.bias.copy_(b_v)
            self.out_proj.bias.copy_(mha.out_proj.bias)
        return self


# --- Input checks ------------------------------------------------------------------------------
# Kept apart from the maths above: each one turns a mistake that would surface later as a cryptic
# shape error (or, worse, as silent broadcasting) into a message that says what to pass instead.


def _check_attention_args(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, dropout: nn.Module | None
) -> None:
    if q.dim() < 2 or k.dim() < 2 or v.dim() < 2:
        raise ValueError(
            "q, k and v need at least 2 dims, (..., n, d); "
            f"got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k must have the same last dim d_k (they meet in a dot product); "
            f"got q {tuple(q.shape)} with d_k={q.shape[-1]} and k {tuple(k.shape)} with d_k={k.shape[-1]}"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"k and v must have the same length n_k (one value per key); "
            f"got k {tuple(k.shape)} with n_k={k.shape[-2]} and v {tuple(v.shape)} with n_k={v.shape[-2]}"
        )
    try:
        lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(
            "the leading dims of q, k and v must broadcast together; "
            f"got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        ) from None
    if mask is not None:
        _check_mask(mask, (*lead, q.shape[-2], k.shape[-2]))
    if dropout is not None and not callable(dropout):
        raise TypeError(
            f"dropout must be a module such as nn.Dropout(p), got {dropout!r}; "
            "a module knows whether it is training, a bare number does not"
        )


def _check_bool_mask(mask: torch.Tensor) -> None:
    if mask.dtype != torch.bool:
        raise TypeError(
            f"mask must be a bool tensor (True = may attend, False = blocked), got dtype {mask.dtype}. "
            "If it holds 1 for 'keep' and 0 for 'blocked', pass mask.bool(); for a (batch, n) "
            "attention mask of 0/1 use padding_mask(attention_mask). Float masks are added to the "
            "scores in PyTorch and are not accepted here."
        )


def _check_mask(mask: torch.Tensor, scores_shape: tuple[int, ...]) -> None:
    """The mask must broadcast to the scores' shape without making them bigger."""
    _check_bool_mask(mask)
    try:
        fits = torch.broadcast_shapes(mask.shape, scores_shape) == scores_shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} is not broadcastable to the scores' shape "
            f"(..., n_q, n_k) = {scores_shape}"
        )


def _check_heads_mask(mask: torch.Tensor, want: tuple[int, int, int, int]) -> None:
    """A MultiHeadAttention mask must broadcast to want = (batch, heads, n_q, n_k)."""
    _check_bool_mask(mask)
    # A 3-D mask (batch, n_q, n_k) would line its batch dim up with the heads dim and
    # broadcast wrongly (silently, when batch == heads), so only 2-D and 4-D are accepted.
    try:
        fits = mask.dim() in (2, 4) and torch.broadcast_shapes(mask.shape, want) == want
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"mask has shape {tuple(mask.shape)}, which does not broadcast to "
            f"(batch, heads, n_q, n_k) = {want}. Use (n_q, n_k), padding_mask(...) "
            "-> (batch, 1, 1, n_k), or (batch, 1 or heads, n_q, n_k); for a (batch, n_q, n_k) "
            "mask add the heads dim with mask[:, None]."
        )


def _check_causal_sizes(n_q, n_k) -> tuple[int, int]:
    """n_q and n_k as ints (n_k defaults to n_q), with 0 <= n_q <= n_k."""
    try:
        n_q = operator.index(n_q)
        n_k = n_q if n_k is None else operator.index(n_k)
    except TypeError:
        raise TypeError(
            f"n_q and n_k must be ints, got n_q={n_q!r}, n_k={n_k!r}; pass the device as device=..."
        ) from None
    if n_q < 0 or n_q > n_k:
        raise ValueError(
            f"need 0 <= n_q <= n_k (the queries are the last n_q of n_k positions); got n_q={n_q}, n_k={n_k}"
        )
    return n_q, n_k


def _check_padding_input(t: torch.Tensor, n: int | None) -> int:
    """Check lengths (batch,) or a 0/1 attention mask (batch, n); return the padded length n."""
    if t.dim() == 1:
        if t.is_floating_point() or t.dtype == torch.bool:
            raise TypeError(f"lengths must be integers, got dtype {t.dtype}")
        longest = int(t.max()) if t.numel() else 0
        n = longest if n is None else operator.index(n)
        if t.numel() and (int(t.min()) < 0 or longest > n):
            raise ValueError(f"lengths must lie in 0..n={n}; got {t.tolist()}")
        return n
    if t.dim() == 2:
        if n is not None and n != t.shape[1]:
            raise ValueError(f"attention mask has length {t.shape[1]} but n={n} was given")
        if t.dtype != torch.bool and not ((t == 0) | (t == 1)).all():
            raise ValueError("an attention mask (batch, n) must hold only 0 (padding) and 1 (real token)")
        return t.shape[1]
    raise ValueError(
        "expected lengths (batch,) or an attention mask (batch, n) of 0/1; "
        f"got a tensor of shape {tuple(t.shape)}"
    )


def _check_split_input(x: torch.Tensor, n_heads: int) -> None:
    if x.dim() != 3:
        raise ValueError(f"split_heads expects (batch, n, d_model), got shape {tuple(x.shape)}")
    if x.shape[-1] % n_heads != 0:
        raise ValueError(f"d_model={x.shape[-1]} is not divisible by n_heads={n_heads}")


def _check_merge_input(x: torch.Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"merge_heads expects (batch, heads, n, d_head), got shape {tuple(x.shape)}")


def _check_head_count(d_model: int, n_heads: int) -> None:
    if d_model <= 0 or n_heads <= 0:
        raise ValueError(
            f"d_model and n_heads must be positive, got d_model={d_model}, n_heads={n_heads}"
        )
    if d_model % n_heads != 0:
        valid = [h for h in range(1, d_model + 1) if d_model % h == 0]
        raise ValueError(
            f"d_model={d_model} is not divisible by n_heads={n_heads}: each head gets "
            f"d_model / n_heads features. Valid head counts for d_model={d_model}: {valid}"
        )


def _check_kv_heads(n_heads: int, n_kv_heads: int) -> None:
    if not isinstance(n_kv_heads, int) or n_kv_heads <= 0 or n_heads % n_kv_heads:
        raise ValueError(f"n_kv_heads must be a positive divisor of n_heads={n_heads} (each key/value head serves "
                         f"a group of query heads of the same size), got {n_kv_heads}")


def _check_mha_inputs(x: torch.Tensor, kv: torch.Tensor | None, cache: KVCache | None, d_model: int,
                      kv_heads=None) -> None:
    for name, t in [("x", x)] + ([] if kv is None else [("kv", kv)]):
        if t.dim() != 3 or t.shape[-1] != d_model:
            raise ValueError(f"{name} must have shape (batch, n, d_model={d_model}), got {tuple(t.shape)}")
    if kv_heads is not None:
        if kv is not None or cache is not None:
            raise ValueError("kv_heads are the keys and values of kv: pass kv_heads alone, without kv or cache")
        k, v = kv_heads
        if k.dim() != 4 or k.shape != v.shape or k.shape[0] != x.shape[0]:
            raise ValueError("kv_heads must be (k, v) from keys_values(kv), each (batch, heads, n_k, d_head) with "
                             f"x's batch size {x.shape[0]}; got {tuple(k.shape)} and {tuple(v.shape)}")
    if kv is not None:
        if kv.shape[0] != x.shape[0]:
            raise ValueError(f"x and kv must have the same batch size, got {x.shape[0]} and {kv.shape[0]}")
        if cache is not None:
            raise ValueError("a KV cache is for self-attention; do not pass kv together with cache")
