"""The encoder-decoder of lesson 10: cross-attention, the cached decoder, padding, greedy and beam search."""

import itertools
import math

import pytest
import torch

from utils.attention import MultiHeadAttention
from utils.transformer import BOS, EOS, PAD, Transformer, TransformerConfig, beam_search, greedy


def tiny(seed=0, **changes):
    torch.manual_seed(seed)
    settings = dict(source_vocab_size=11, target_vocab_size=9, context_length=12, n_encoder=2, n_decoder=2,
                    n_head=2, n_embd=16, dropout=0.0) | changes
    return Transformer(TransformerConfig(**settings)).eval()


def sources(batch=3, n=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, 11, (batch, n), generator=g)


def test_cross_attention_equals_torch_multihead_attention():
    torch.manual_seed(0)
    ours = MultiHeadAttention(16, 4)
    theirs = torch.nn.MultiheadAttention(16, 4, batch_first=True)
    ours.load_from_torch(theirs)
    target, memory = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
    real = torch.tensor([[1] * 7, [1] * 4 + [0] * 3]).bool()  # the second source has 3 padding tokens
    got = ours(target, kv=memory, mask=real[:, None, None, :])
    want, _ = theirs(target, memory, memory, key_padding_mask=~real)  # torch: True = blocked
    torch.testing.assert_close(got, want)
    heads = ours.keys_values(memory)  # the keys and values a decoder computes once per source
    torch.testing.assert_close(ours(target, kv_heads=heads, mask=real[:, None, None, :]), want)


def test_cached_decoder_equals_the_whole_target_at_once():
    model = tiny()
    src = sources()
    src[1, 4:] = PAD
    target = torch.cat([torch.full((3, 1), BOS), torch.randint(3, 9, (3, 7))], dim=1)
    memory, keep, _ = model.encode(src)
    whole, weights = model.decode(target, memory, keep, need_weights=True)
    caches = model.new_caches(memory)
    steps = [model.decode(target[:, t:t + 1], memory, keep, caches)[0] for t in range(target.shape[1])]
    torch.testing.assert_close(torch.cat(steps, dim=1), whole)
    assert weights["cross"][0].shape == (3, 2, 8, 6)
    assert torch.all(weights["cross"][0][1, :, :, 4:] == 0)  # no target position reads a padding token


def test_padding_in_the_source_changes_nothing():
    model = tiny()
    src = sources(batch=1, n=5)
    padded = torch.cat([src, torch.full((1, 3), PAD)], dim=1)
    target = torch.tensor([[BOS, 4, 5, 6]])
    a, _ = model(src, target)
    b, _ = model(padded, target)
    torch.testing.assert_close(a, b)
    assert greedy(model, src) == greedy(model, padded)


def test_teacher_forcing_loss_ignores_padding_and_smooths():
    model = tiny()
    src = sources(batch=2)
    target_in = torch.tensor([[BOS, 4, 5, 6], [BOS, 7, PAD, PAD]])
    targets = torch.tensor([[4, 5, 6, EOS], [7, EOS, PAD, PAD]])
    logits, loss = model(src, target_in, targets)
    real = targets != PAD
    want = torch.nn.functional.cross_entropy(logits[real], targets[real])
    torch.testing.assert_close(loss, want)
    _, smoothed = model(src, target_in, targets, label_smoothing=0.1)
    log_p = logits[real].log_softmax(-1)
    by_hand = -(0.9 * log_p.gather(1, targets[real][:, None]).squeeze(1) + 0.1 * log_p.mean(-1)).mean()
    torch.testing.assert_close(smoothed, by_hand)


def test_greedy_is_beam_search_of_width_one():
    model = tiny(seed=3)
    for row in sources(batch=4, seed=5):
        ids, _ = beam_search(model, row[None], beam_width=1, length_penalty=0.0)
        assert ids == greedy(model, row[None])[0]


def all_targets(model, src, max_len, length_penalty):
    """Every target of up to max_len tokens that ends with EOS, scored as beam_search scores them."""
    memory, keep, _ = model.encode(src)
    best = (-math.inf, None)
    writable = range(EOS, model.config.target_vocab_size)
    for n in range(0, max_len):
        for body in itertools.product([t for t in writable if t != EOS], repeat=n):
            ids = torch.tensor([[BOS, *body, EOS]])
            log_p = model.decode(ids[:, :-1], memory, keep)[0].log_softmax(-1)
            log_p[..., [PAD, BOS]] = -math.inf
            log_p = log_p.log_softmax(-1)  # the same renormalised distribution beam search uses
            total = log_p[0].gather(1, ids[0, 1:, None]).sum().item()
            best = max(best, (total / (n + 1) ** length_penalty, list(body)), key=lambda b: b[0])
    return best


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_a_wide_beam_finds_the_best_target(length_penalty):
    model = tiny(seed=2, target_vocab_size=6)  # 3 writable tokens + EOS: few enough targets to list them all
    src = sources(batch=1, seed=7)
    score, body = all_targets(model, src, max_len=4, length_penalty=length_penalty)
    ids, got = beam_search(model, src, beam_width=64, length_penalty=length_penalty, max_len=4)
    assert ids == body and got == pytest.approx(score, abs=1e-5)


def test_bad_inputs_say_what_to_do():
    model = tiny()
    with pytest.raises(ValueError, match="one sentence"):
        beam_search(model, sources(batch=2))
    with pytest.raises(ValueError, match="context_length"):
        model.encode(torch.randint(3, 11, (1, 13)))
    with pytest.raises(ValueError, match="empty"):
        model.encode(torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="n_head"):
        TransformerConfig(n_embd=30, n_head=4)
