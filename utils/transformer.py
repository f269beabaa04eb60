"""The whole Transformer of Vaswani et al. (2017): an encoder, a decoder, and cross-attention between them.

    source ids -> source embedding + sinusoidal positions
               -> encoder: n_encoder x EncoderBlock(x):   x = x + self-attention(LN(x))   (every token sees
                                                          x = x + MLP(LN(x))               every real token)
               -> LN  = memory, one vector per source token
    target ids -> target embedding + sinusoidal positions
               -> decoder: n_decoder x DecoderBlock(y):   y = y + causal self-attention(LN(y))
                                                          y = y + cross-attention(LN(y), memory)
                                                          y = y + MLP(LN(y))
               -> LN -> linear head (its weights are the target embedding's) -> next-token logits

Cross-attention is the only new piece: its queries come from the target tokens and its keys and values
from the memory, so each target position reads the source sentence as a weighted average. It needs no
causal mask (the whole source is known before the first target token is written), only the source's
padding mask. The blocks are the GPT's (lesson 05): the same MultiHeadAttention and MLP, pre-LayerNorm.
The original put each LayerNorm after its residual sum; before it (as in GPT-2) trains without warm-up
tricks, lesson 05 measured why.

Source and target have separate embeddings: English BPE tokens and Chinese characters share almost
nothing, so one table would only be bigger. The target table is also the output head (tied, as in the
paper), because the decoder reads and writes the same vocabulary.

Generation: `encode` once, then `decode` one target token at a time with `new_caches(memory)`: each
decoder layer keeps the target's keys and values (a KVCache, lesson 07) and the memory's keys and values,
projected once per sentence. `greedy` and `beam_search` below are the two ways to choose the tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .attention import KVCache, MultiHeadAttention, padding_mask
from .embeddings import check_token_ids, sinusoidal_positions
from .model import MLP, SettingsFile, check_field_types

PAD, BOS, EOS = 0, 1, 2  # the special ids of both vocabularies (utils.translation builds them so)


@dataclass
class TransformerConfig(SettingsFile):
    """The shape of an encoder-decoder: Transformer(config) builds one; checkpoints keep it as JSON.

    Fields:
        source_vocab_size, target_vocab_size: tokens of each language; ids 0, 1, 2 are PAD, BOS, EOS.
        context_length: the longest source and the longest target (in tokens, BOS/EOS included).
        n_encoder, n_decoder: blocks in each stack.
        n_head: attention heads per attention; must divide n_embd.
        n_embd: d_model, the width of every token vector.
        dropout: probability of zeroing an activation while training, in [0, 1).
        bias: biases in the Linear and LayerNorm layers.
    """

    source_vocab_size: int = 1000
    target_vocab_size: int = 1000
    context_length: int = 64
    n_encoder: int = 3
    n_decoder: int = 3
    n_head: int = 4
    n_embd: int = 256
    dropout: float = 0.1
    bias: bool = False

    def __post_init__(self):
        check_field_types(self)
        for name in ("source_vocab_size", "target_vocab_size", "context_length", "n_encoder", "n_decoder",
                     "n_head", "n_embd"):
            if getattr(self, name) <= 0:
                raise ValueError(f"TransformerConfig.{name} must be a positive integer, got {getattr(self, name)}")
        if min(self.source_vocab_size, self.target_vocab_size) <= EOS:
            raise ValueError("each vocabulary needs more than the three special tokens PAD, BOS, EOS")
        if self.n_embd % self.n_head or self.n_embd % 2:
            raise ValueError(f"n_embd={self.n_embd} must be even and divisible by n_head={self.n_head}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")



class EncoderBlock(nn.Module):
    """Self-attention in which every source token sees every real source token, then the MLP."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = MultiHeadAttention(config.n_embd, config.n_head, bias=config.bias, dropout=config.dropout)
        self.ln2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x, keep: torch.Tensor, need_weights: bool = False):
        a = self.attn(self.ln1(x), mask=keep, need_weights=need_weights)
        a, weights = a if need_weights else (a, None)
        x = x + self.drop(a)
        return x + self.mlp(self.ln2(x)), weights


class DecoderCache:
    """What one decoder layer keeps while it writes a sentence token by token: the target's own keys and
    values so far (grown by one position a step) and the memory's keys and values (computed once)."""

    def __init__(self, memory_kv: tuple[torch.Tensor, torch.Tensor]):
        self.target = KVCache()
        self.memory_kv = memory_kv

    def __len__(self) -> int:
        return len(self.target)

    def select(self, rows: torch.Tensor) -> None:
        """Keep the given batch rows, in that order (beam search reorders its beams every step)."""
        self.target.k, self.target.v = self.target.k[rows], self.target.v[rows]
        k, v = self.memory_kv
        self.memory_kv = (k[rows], v[rows])


class DecoderBlock(nn.Module):
    """Causal self-attention over the target so far, cross-attention to the memory, then the MLP."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.self_attn = MultiHeadAttention(config.n_embd, config.n_head, bias=config.bias,
                                            dropout=config.dropout, causal=True)
        self.ln2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.cross_attn = MultiHeadAttention(config.n_embd, config.n_head, bias=config.bias,
                                             dropout=config.dropout)
        self.ln3 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, y, memory, keep: torch.Tensor, cache: DecoderCache | None = None,
                need_weights: bool = False):
        a = self.self_attn(self.ln1(y), cache=None if cache is None else cache.target, need_weights=need_weights)
        a, self_weights = a if need_weights else (a, None)
        y = y + self.drop(a)
        # Queries from the target, keys and values from the source: no causal mask, only padding.
        h = self.ln2(y)
        if cache is None:
            c = self.cross_attn(h, kv=memory, mask=keep, need_weights=need_weights)
        else:
            c = self.cross_attn(h, kv_heads=cache.memory_kv, mask=keep, need_weights=need_weights)
        c, cross_weights = c if need_weights else (c, None)
        y = y + self.drop(c)
        return y + self.mlp(self.ln3(y)), self_weights, cross_weights


class Transformer(nn.Module):
    """An encoder-decoder translation model: source ids (batch, n_s), target ids (batch, n_t) -> logits.

    Attributes: config, source_emb, target_emb (also the head's weight), encoder and decoder
    (nn.ModuleLists of blocks), encoder_ln and decoder_ln (the final LayerNorms), head, and the buffer
    positions, the sinusoidal table of lesson 02 (fixed, as in the paper: nothing to learn).
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.source_emb = nn.Embedding(config.source_vocab_size, config.n_embd)
        self.target_emb = nn.Embedding(config.target_vocab_size, config.n_embd)
        self.register_buffer("positions", sinusoidal_positions(config.context_length, config.n_embd),
                             persistent=False)
        self.drop = nn.Dropout(config.dropout)
        self.encoder = nn.ModuleList([EncoderBlock(config) for _ in range(config.n_encoder)])
        self.encoder_ln = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.decoder = nn.ModuleList([DecoderBlock(config) for _ in range(config.n_decoder)])
        self.decoder_ln = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.head = nn.Linear(config.n_embd, config.target_vocab_size, bias=False)
        self.apply(self._init_weights)
        self.head.weight = self.target_emb.weight  # tied: read and write the same target vocabulary
        depth = config.n_encoder + config.n_decoder
        for name, p in self.named_parameters():  # GPT-2's scaled init of each residual branch's last layer
            if name.endswith(("out_proj.weight", "mlp.proj.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * depth))

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            # Vaswani et al. multiply embeddings by sqrt(d_model); with entries of size 1/sqrt(d_model)
            # the product has unit size, like the sinusoids it is added to.
            nn.init.normal_(module.weight, mean=0.0, std=self.config.n_embd ** -0.5)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())  # the tied matrix counts once

    def _embed(self, table: nn.Embedding, ids: torch.Tensor, start: int = 0) -> torch.Tensor:
        n = ids.shape[1]
        return self.drop(table(ids) * math.sqrt(self.config.n_embd) + self.positions[start:start + n])

    def encode(self, source: torch.Tensor, need_weights: bool = False):
        """Source ids (batch, n_s), right-padded with PAD -> (memory (batch, n_s, d), keep, weights).

        keep = padding_mask(source != PAD), (batch, 1, 1, n_s): the keys every attention on the source
        may look at. weights: one (batch, heads, n_s, n_s) tensor per encoder block, if asked for.
        """
        self._check_ids(source, self.config.source_vocab_size, "source")
        keep = padding_mask(source != PAD)
        x = self._embed(self.source_emb, source)
        weights = []
        for block in self.encoder:
            x, w = block(x, keep, need_weights)
            weights.append(w)
        return self.encoder_ln(x), keep, (weights if need_weights else None)

    def decode(self, target: torch.Tensor, memory: torch.Tensor, keep: torch.Tensor,
               caches: list[DecoderCache] | None = None, need_weights: bool = False):
        """Next-token logits (batch, n_t, target_vocab_size) for target ids that start with BOS.

        With caches (new_caches(memory)), target holds only the new tokens; their positions continue
        after what the caches hold. need_weights adds {"self": [...], "cross": [...]}, one tensor per
        block: (batch, heads, n_t, n_t so far) and (batch, heads, n_t, n_s).
        """
        past = len(caches[0]) if caches else 0
        self._check_ids(target, self.config.target_vocab_size, "target", past)
        y = self._embed(self.target_emb, target, start=past)
        self_weights, cross_weights = [], []
        for i, block in enumerate(self.decoder):
            y, s, c = block(y, memory, keep, None if caches is None else caches[i], need_weights)
            self_weights.append(s)
            cross_weights.append(c)
        logits = self.head(self.decoder_ln(y))
        return logits, ({"self": self_weights, "cross": cross_weights} if need_weights else None)

    def forward(self, source: torch.Tensor, target_in: torch.Tensor, targets: torch.Tensor | None = None,
                label_smoothing: float = 0.0):
        """Teacher forcing: the decoder reads the reference shifted right (BOS, y_1 .. y_{n-1}) and is
        scored on predicting y_1 .. y_n, EOS at every position at once. Returns (logits, loss); PAD
        targets are left out of the loss; label_smoothing as in torch's cross_entropy (0.1 in the paper)."""
        memory, keep, _ = self.encode(source)
        logits, _ = self.decode(target_in, memory, keep)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                   ignore_index=PAD, label_smoothing=label_smoothing)
        return logits, loss

    def new_caches(self, memory: torch.Tensor) -> list[DecoderCache]:
        """One DecoderCache per decoder block, with the memory's keys and values computed once."""
        return [DecoderCache(block.cross_attn.keys_values(memory)) for block in self.decoder]

    def _check_ids(self, ids, vocab_size: int, name: str, past: int = 0) -> None:
        if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.dtype not in (torch.long, torch.int):
            shape = tuple(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__
            raise ValueError(f"{name} ids must be an integer tensor of shape (batch, n), got {shape}")
        if ids.shape[1] == 0:
            raise ValueError(f"the {name} is empty: give at least one token id")
        if past + ids.shape[1] > self.config.context_length:
            raise ValueError(f"the {name} has {past + ids.shape[1]} tokens, more than the model's context_length="
                             f"{self.config.context_length}: shorten the sentence (or split it)")
        check_token_ids(ids, vocab_size)


# --- choosing the target tokens ----------------------------------------------------------------------

@torch.no_grad()
def greedy(model: Transformer, source: torch.Tensor, max_len: int | None = None) -> list[list[int]]:
    """The most likely next token at every step, for a batch of sources at once; stops at EOS.

    Returns each sentence's target ids without BOS and EOS. max_len caps the target tokens written
    (default: as many as the context allows).
    """
    model.eval()
    limit = _max_new(model, max_len)
    memory, keep, _ = model.encode(source)
    caches = model.new_caches(memory)
    batch = source.shape[0]
    token = torch.full((batch, 1), BOS, dtype=torch.long, device=source.device)
    out = torch.empty(batch, 0, dtype=torch.long, device=source.device)
    done = torch.zeros(batch, dtype=torch.bool, device=source.device)
    for _ in range(limit):
        logits, _ = model.decode(token, memory, keep, caches)
        token = writable(logits[:, -1]).argmax(-1, keepdim=True)
        token[done] = PAD  # a finished sentence only pads
        out = torch.cat([out, token], dim=1)
        done |= token[:, 0] == EOS
        if done.all():
            break
    return [_until_eos(row) for row in out.tolist()]


def beam_step(beams: torch.Tensor, scores: torch.Tensor, log_probs: torch.Tensor, beam_width: int,
              length_penalty: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, list[tuple[list[int], float]]]:
    """One step of beam search: extend every live beam by every token and keep the best.

    beams (k, t) are the live beams' tokens so far (BOS first), scores (k,) the sums of their tokens'
    log-probabilities, log_probs (k, vocab) each beam's next-token log-probabilities.
    Returns (beams (k', t + 1), scores (k',), finished): the beam_width best extensions that do not end
    with EOS, and a list of the extensions that do, as (tokens without BOS and EOS, normalised score).
    An ending counts only if it is among the beam_width best extensions of this step. Its score is
    divided by its length ** length_penalty (the tokens written, EOS included): sums of log-probabilities
    favour short outputs, since every token lowers them.
    """
    totals = scores[:, None] + log_probs  # (k, vocab): each beam extended by each token
    vocab = totals.shape[-1]
    best = totals.flatten().topk(min(2 * beam_width, totals.numel()))  # room for endings among the best
    rows, tokens = (best.indices // vocab).tolist(), (best.indices % vocab).tolist()
    kept, finished = [], []
    for rank, (row, token, score) in enumerate(zip(rows, tokens, best.values.tolist(), strict=True)):
        if token == EOS:
            if rank < beam_width:
                finished.append((beams[row, 1:].tolist(), score / beams.shape[1] ** length_penalty))
        elif len(kept) < beam_width:
            kept.append((row, token, score))
    if not kept:
        return beams[:0, :0], scores[:0], finished
    rows_t = torch.tensor([r for r, _, _ in kept], device=beams.device)
    new_tokens = torch.tensor([[t] for _, t, _ in kept], device=beams.device)
    return (torch.cat([beams[rows_t], new_tokens], dim=1), torch.tensor([s for _, _, s in kept], device=beams.device),
            finished)


@torch.no_grad()
def beam_search(model: Transformer, source: torch.Tensor, beam_width: int = 4, length_penalty: float = 1.0,
                max_len: int | None = None) -> tuple[list[int], float]:
    """The target that beam search finds for ONE source sentence (1, n_s), and its normalised score.

    A beam is a partial target with a score, the sum of its tokens' log-probabilities; beam_step extends
    and prunes them. Finished beams (they wrote EOS) are set aside and compared by
    score / length ** length_penalty: 0 = the raw sum, 1 = the mean per token. The search stops when
    beam_width beams have finished or max_len tokens are written. Returns (ids without BOS/EOS, score).
    """
    _check_beam(source, beam_width, length_penalty)
    model.eval()
    limit = _max_new(model, max_len)
    memory, keep, _ = model.encode(source)
    caches = model.new_caches(memory)
    beams = torch.full((1, 1), BOS, dtype=torch.long, device=source.device)  # (live beams, tokens so far)
    scores = torch.zeros(1, device=source.device)
    finished: list[tuple[list[int], float]] = []
    for _ in range(limit):
        logits, _ = model.decode(beams[:, -1:], memory, keep, caches)
        previous = beams
        beams, scores, ended = beam_step(beams, scores, writable(logits[:, -1]).log_softmax(-1), beam_width,
                                         length_penalty)
        finished += ended
        if len(finished) >= beam_width or len(beams) == 0:
            break
        rows = _parent_rows(previous, beams)
        for cache in caches:
            cache.select(rows)
    if not finished:  # nothing ended within max_len: take the live beams as they are
        finished = [(b[1:], s / (len(b) - 1) ** length_penalty) for s, b in
                    zip(scores.tolist(), beams.tolist(), strict=True)]
    return max(finished, key=lambda f: f[1])


def _parent_rows(previous: torch.Tensor, beams: torch.Tensor) -> torch.Tensor:
    """For each new beam, the row of the old beam it extends (its tokens minus the last one)."""
    prefixes = beams[:, :-1]
    match = (prefixes[:, None, :] == previous[None, :, :]).all(-1)  # (new, old)
    return match.float().argmax(-1)


def writable(logits: torch.Tensor) -> torch.Tensor:
    """Logits with PAD and BOS ruled out: the decoder never writes them (they only ever come first or last)."""
    logits = logits.clone()
    logits[:, [PAD, BOS]] = float("-inf")
    return logits


def _until_eos(ids: list[int]) -> list[int]:
    return ids[:ids.index(EOS)] if EOS in ids else [i for i in ids if i != PAD]


def _max_new(model: Transformer, max_len: int | None) -> int:
    room = model.config.context_length - 1  # BOS takes one position
    if max_len is None:
        return room
    if not isinstance(max_len, int) or isinstance(max_len, bool) or not 1 <= max_len <= room:
        raise ValueError(f"max_len must be an int in 1..{room} (the context minus BOS), got {max_len!r}")
    return max_len


def _check_beam(source, beam_width, length_penalty) -> None:
    if not isinstance(source, torch.Tensor) or source.dim() != 2 or source.shape[0] != 1:
        shape = tuple(source.shape) if isinstance(source, torch.Tensor) else type(source).__name__
        raise ValueError(f"beam_search translates one sentence: source must have shape (1, n_s), got {shape}. "
                         "For a batch use greedy(), or loop over the sentences.")
    if not isinstance(beam_width, int) or isinstance(beam_width, bool) or beam_width < 1:
        raise ValueError(f"beam_width must be a positive int, got {beam_width!r}")
    if not isinstance(length_penalty, int | float) or not 0 <= length_penalty <= 2:
        raise ValueError(f"length_penalty must be a number in [0, 2], got {length_penalty!r}")
