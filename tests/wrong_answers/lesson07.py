"""Wrong answers for lesson 07's checks (generation)."""

import math

import torch
import torch.nn.functional as F

from utils.attention import causal_mask, scaled_dot_product_attention

from . import WrongAnswer

# --- 7.2: a repetition penalty -----------------------------------------------------------------------


def _seen(logits, previous):
    return torch.zeros_like(logits, dtype=torch.bool).scatter(-1, previous, True)


def _penalised(logits, theta):
    return torch.where(logits > 0, logits / theta, logits * theta)


def _loop_penalty(logits, previous, theta):
    out = logits.clone()
    for row in range(len(logits)):
        for token in set(previous[row].tolist()):
            out[row, token] = _penalised(out[row, token], theta)
    return out


def _powers(logits, previous, theta):
    counts = torch.zeros_like(logits).scatter_add(-1, previous, torch.ones_like(previous, dtype=logits.dtype))
    return torch.where(logits > 0, logits / theta ** counts, logits * theta ** counts)


def _union(logits, previous, theta):
    return torch.where(_seen(logits, previous).any(0, keepdim=True), _penalised(logits, theta), logits)


# --- 7.3: one attention step with a KV cache ---------------------------------------------------------


def _cat(k_cache, v_cache, k_new, v_new):
    return torch.cat([k_cache, k_new], dim=2), torch.cat([v_cache, v_new], dim=2)


def _is_causal(q_new, k_cache, v_cache, k_new, v_new):
    k_all, v_all = _cat(k_cache, v_cache, k_new, v_new)
    return F.scaled_dot_product_attention(q_new, k_all, v_all, is_causal=True), k_all, v_all


def _no_mask(q_new, k_cache, v_cache, k_new, v_new):
    k_all, v_all = _cat(k_cache, v_cache, k_new, v_new)
    return scaled_dot_product_attention(q_new, k_all, v_all)[0], k_all, v_all


def _new_first(q_new, k_cache, v_cache, k_new, v_new):
    k_all, v_all = _cat(k_new, v_new, k_cache, v_cache)
    mask = causal_mask(q_new.shape[2], k_all.shape[2])
    return scaled_dot_product_attention(q_new, k_all, v_all, mask)[0], k_all, v_all


def _unscaled(q_new, k_cache, v_cache, k_new, v_new):
    k_all, v_all = _cat(k_cache, v_cache, k_new, v_new)
    scores = (q_new @ k_all.transpose(-2, -1)).masked_fill(~causal_mask(q_new.shape[2], k_all.shape[2]), -math.inf)
    return scores.softmax(-1) @ v_all, k_all, v_all


# --- 7.4: beam search --------------------------------------------------------------------------------


def _search(rank_by_total=True, copies=False, last_only=False, per_beam=False, pick=0, as_probability=False,
            as_tensor=False, width=None):
    def beam_search(log_probs, prompt, steps, beam_width):
        k = width or beam_width
        beams = prompt[None].repeat(k, 1) if copies else prompt[None]
        scores = torch.zeros(len(beams), dtype=torch.float64)
        for _ in range(steps):
            given = beams[:, -1:] if last_only else beams
            step = torch.cat([log_probs(row[None]) for row in given]) if per_beam else log_probs(given)
            totals = step + scores[:, None] if rank_by_total else step
            vocab = totals.shape[1]
            best = totals.flatten().topk(min(k, totals.numel()))
            beam, token = best.indices // vocab, best.indices % vocab
            scores = (scores[:, None] + step).flatten()[best.indices]
            beams = torch.cat([beams[beam], token[:, None]], dim=1)
        score = scores[pick].exp() if as_probability else scores[pick]
        return beams[pick], score if as_tensor else float(score)

    return beam_search


WRONG = [
    WrongAnswer("7.1", "divides the probabilities", lambda z, t: torch.softmax(z, -1) / t,
                "divided by T after the softmax"),
    WrongAnswer("7.1", "multiplies by T", lambda z, t: torch.softmax(z * t, -1), "multiplied by T"),
    WrongAnswer("7.1", "softmax over dim 0", lambda z, t: torch.softmax(z / t, dim=0), "ran over the first dim"),
    WrongAnswer("7.1", "no shift", lambda z, t: (z / t).exp() / (z / t).exp().sum(-1, keepdim=True), "exp overflowed"),
    WrongAnswer("7.1", "power without renormalising", lambda z, t: torch.softmax(z, -1) ** (1 / t),
                "not renormalised"),
    WrongAnswer("7.2", "divides negative logits", lambda z, p, t: torch.where(_seen(z, p), z / t, z),
                "Multiply negative logits"),
    WrongAnswer("7.2", "penalises every occurrence", _powers, "once per occurrence"),
    WrongAnswer("7.2", "one history for the batch", _union, "own history"),
    WrongAnswer("7.2", "penalises the unseen tokens", lambda z, p, t: torch.where(_seen(z, p), z, _penalised(z, t)),
                "the other way round"),
    WrongAnswer("7.2", "subtracts theta", lambda z, p, t: torch.where(_seen(z, p), z - t, z), "presence penalty"),
    WrongAnswer("7.2", "penalises everything", lambda z, p, t: _penalised(z, t), "only the tokens in previous change"),
    WrongAnswer("7.2", "a Python loop", _loop_penalty, "rules out Python loops"),
    WrongAnswer("7.3", "is_causal=True", _is_causal, "top-left corner"),
    WrongAnswer("7.3", "no mask", _no_mask, "no causal mask"),
    WrongAnswer("7.3", "new tokens first", _new_first, "the cache holds the earlier positions"),
    WrongAnswer("7.3", "no scaling", _unscaled, "sqrt(d_head)"),
    WrongAnswer("7.4", "greedy", _search(width=1), "greedy decoding"),
    WrongAnswer("7.4", "ranks by the newest token", _search(rank_by_total=False), "newest token alone"),
    WrongAnswer("7.4", "starts from copies", _search(copies=True), "copies of the prompt"),
    WrongAnswer("7.4", "one call per beam", _search(per_beam=True), "once per step"),
    WrongAnswer("7.4", "returns the last beam", _search(pick=-1), "the first beam is the best"),
    WrongAnswer("7.4", "passes the last token only", _search(last_only=True), "only the newest token of each beam"),
    WrongAnswer("7.4", "returns a probability", _search(as_probability=True), "not a probability"),
    WrongAnswer("7.4", "returns a tensor score", _search(as_tensor=True), "expected a Python float"),
]
