"""The repetition penalty and beam search of utils/generation.py, against transformers' own versions,
a brute-force search and greedy decoding (the sampling filters and the generation loop are tested in
test_gpt.py, with the model)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from utils.generation import beam_search, generate, next_token_log_probs, repetition_penalty
from utils.model import GPT, GPTConfig


def markov_log_probs(vocab: int, seed: int, sharpness: float = 2.0):
    """A fixed 'model': the next token's log-probabilities depend on the last token and on the sum of
    all ids so far (so a search that loses the beams' history goes wrong)."""
    g = torch.Generator().manual_seed(seed)
    by_last = sharpness * torch.randn(vocab, vocab, generator=g, dtype=torch.float64)
    by_sum = sharpness * torch.randn(3, vocab, generator=g, dtype=torch.float64)

    def log_probs(ids):
        return torch.log_softmax(by_last[ids[:, -1]] + by_sum[ids.sum(-1) % 3], dim=-1)

    return log_probs


def brute_force(log_probs, prompt, steps, vocab):
    """The most probable continuation, by trying every one."""
    best, best_score = None, -math.inf
    for tail in itertools.product(range(vocab), repeat=steps):
        ids, score = prompt, 0.0
        for token in tail:
            score += log_probs(ids[None])[0, token].item()
            ids = torch.cat([ids, torch.tensor([token])])
        if score > best_score:
            best, best_score = ids, score
    return best, best_score


# --- repetition penalty -----------------------------------------------------------------------------


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits_of_seen_tokens_once():
    logits = torch.tensor([[2.0, -1.0, 0.5, 0.0, 3.0]])
    previous = torch.tensor([[0, 1, 1, 3]])  # token 1 twice: still penalised once
    out = repetition_penalty(logits, previous, 2.0)
    assert out.tolist() == [[1.0, -2.0, 0.5, 0.0, 3.0]]
    assert logits.tolist() == [[2.0, -1.0, 0.5, 0.0, 3.0]]  # the input is left alone
    assert repetition_penalty(logits, previous, 0.5).tolist() == [[4.0, -0.5, 0.5, 0.0, 3.0]]
    assert torch.equal(repetition_penalty(logits, previous, 1.0), logits)
    assert torch.equal(repetition_penalty(logits, previous[:, :0], 1.3), logits)  # nothing seen yet


@pytest.mark.parametrize("penalty", [1.3, 0.7])
def test_repetition_penalty_equals_transformers(penalty):
    from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor

    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(4, 50, generator=g)
    previous = torch.randint(0, 50, (4, 30), generator=g)
    theirs = RepetitionPenaltyLogitsProcessor(penalty)(previous, logits.clone())
    torch.testing.assert_close(repetition_penalty(logits, previous, penalty), theirs)


def test_repetition_penalty_refuses_bad_input():
    logits = torch.zeros(2, 5)
    with pytest.raises(ValueError, match="positive number"):
        repetition_penalty(logits, torch.zeros(2, 1, dtype=torch.long), 0.0)
    with pytest.raises(TypeError, match="token ids"):
        repetition_penalty(logits, torch.zeros(2, 1), 1.2)
    with pytest.raises(ValueError, match="same leading dims"):
        repetition_penalty(logits, torch.zeros(3, 1, dtype=torch.long), 1.2)
    with pytest.raises(ValueError, match=r"0\.\.4"):
        repetition_penalty(logits, torch.tensor([[5], [0]]), 1.2)


# --- beam search ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_a_beam_as_wide_as_every_continuation_finds_the_brute_force_best(seed):
    log_probs, prompt = markov_log_probs(4, seed), torch.tensor([1, 2])
    ids, score = beam_search(log_probs, prompt, 3, beam_width=4 ** 3)
    best, best_score = brute_force(log_probs, prompt, 3, 4)
    assert torch.equal(ids, best) and score == pytest.approx(best_score, rel=1e-12)


def test_the_score_is_the_sum_of_the_log_probabilities_of_the_new_tokens():
    log_probs, prompt = markov_log_probs(6, seed=7), torch.tensor([0])
    ids, score = beam_search(log_probs, prompt, 4, beam_width=3)
    total = sum(log_probs(ids[None, :i])[0, ids[i]].item() for i in range(1, len(ids)))
    assert len(ids) == 5 and torch.equal(ids[:1], prompt)
    assert score == pytest.approx(total, rel=1e-12)


def test_a_wider_beam_can_beat_greedy():
    """A hand-made trap: token 0 is the likelier first token, but everything after it is unlikely."""
    table = torch.tensor([[0.34, 0.33, 0.33], [0.9, 0.05, 0.05], [0.1, 0.1, 0.8]]).log()  # row = last token

    def log_probs(ids):
        first = torch.tensor([0.6, 0.4, 0.0]).clamp_min(1e-9).log()
        return first.expand(len(ids), 3) if ids.shape[1] == 1 else table[ids[:, -1]]

    prompt = torch.tensor([2])
    greedy, greedy_score = beam_search(log_probs, prompt, 2, beam_width=1)
    wide, wide_score = beam_search(log_probs, prompt, 2, beam_width=2)
    assert greedy.tolist() == [2, 0, 0] and wide.tolist() == [2, 1, 0]
    assert wide_score > greedy_score


def test_width_one_is_greedy_generation_with_our_gpt():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=13, context_length=8, n_layer=2, n_head=2, n_embd=16)).eval()
    prompt = torch.tensor([3, 1, 4])
    ids, _ = beam_search(next_token_log_probs(model), prompt, 10, beam_width=1)  # 13 tokens > context 8
    assert torch.equal(ids, generate(model, prompt, 10, temperature=0, use_cache=False)[0])


@pytest.mark.parametrize("seed", range(3))
def test_beam_search_equals_transformers_beam_search(seed):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=7, n_positions=16, n_embd=8, n_layer=1, n_head=2, bos_token_id=None,
                        eos_token_id=None, pad_token_id=0)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(20)  # peaked distributions, so that beams and greedy part ways

    @torch.no_grad()
    def log_probs(ids):
        return model(ids).logits[:, -1].double().log_softmax(-1)

    prompt = torch.tensor([1, 2])
    theirs = model.generate(prompt[None], attention_mask=torch.ones(1, 2, dtype=torch.long), num_beams=3,
                            max_new_tokens=4, do_sample=False, length_penalty=0.0)[0]
    ours, _ = beam_search(log_probs, prompt, 4, beam_width=3)
    assert torch.equal(ours, theirs)


def test_no_steps_give_the_prompt_with_score_zero_and_bad_arguments_are_refused():
    log_probs = markov_log_probs(3, seed=0)
    ids, score = beam_search(log_probs, torch.tensor([2]), 0, beam_width=2)
    assert ids.tolist() == [2] and score == 0.0
    with pytest.raises(ValueError, match="1-d tensor of token ids"):
        beam_search(log_probs, torch.tensor([[2]]), 1, 2)
    with pytest.raises(ValueError, match="beam_width must be a whole number >= 1"):
        beam_search(log_probs, torch.tensor([2]), 1, 0)
    with pytest.raises(ValueError, match="steps must be a whole number >= 0"):
        beam_search(log_probs, torch.tensor([2]), -1, 2)
