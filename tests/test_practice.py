"""Lesson 13's pieces: the LSTM and its parameter formula, training on a budget, the cost arithmetic, int8
weights (against torch.ao's), ECE, WEAT and the scaling fit, each checked against its formula written out
or a reference implementation."""

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from utils import costs
from utils.attention import MultiHeadAttention
from utils.budget import loss_by_position, step_time, train_for
from utils.calibration import expected_calibration_error, reliability
from utils.model import GPT, GPTConfig
from utils.quantization import Int8Linear, dequantize_int8, error_bound, quantize_int8, quantize_linears, weight_bytes
from utils.recurrent import LSTMLanguageModel, lstm_parameters, width_for
from utils.scaling import bootstrap_alpha, fit_power_law
from utils.weat import association, effect_size, p_value

DATA = torch.randint(0, 20, (5_000,), generator=torch.Generator().manual_seed(0))


# --- the LSTM ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("width, vocab, layers", [(8, 20, 1), (230, 65, 1), (17, 3, 2)])
def test_lstm_parameter_formula_counts_the_real_model(width, vocab, layers):
    assert LSTMLanguageModel(vocab, width, layers).num_parameters() == lstm_parameters(width, vocab, layers)


def test_width_for_matches_the_gpt_of_lesson_06_within_one_width_step():
    gpt = GPT(GPTConfig(vocab_size=65, n_layer=4, n_head=4, n_embd=96, context_length=64))
    h = width_for(gpt.num_parameters(), 65)
    assert h == 230
    for other in (h - 1, h + 1):  # no other width is nearer
        assert abs(lstm_parameters(other, 65) - 455_616) >= abs(lstm_parameters(h, 65) - 455_616)


def test_lstm_is_causal_and_returns_the_gpt_interface():
    model = LSTMLanguageModel(20, 16).eval()
    x = torch.randint(0, 20, (2, 10))
    logits, loss, weights = model(x, x)
    assert logits.shape == (2, 10, 20) and loss.ndim == 0 and weights is None
    changed = x.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 20
    assert torch.allclose(model(changed)[0][:, :6], logits[:, :6])  # the future does not reach the past
    with pytest.raises(ValueError, match="non-empty"):
        model(torch.zeros(2, 0, dtype=torch.long))


# --- training on a budget ------------------------------------------------------------------------------


def test_train_for_a_number_of_steps_takes_them_and_learns():
    torch.manual_seed(0)
    model = LSTMLanguageModel(20, 16)
    before = loss_by_position(model, DATA, 16, windows=60)[0].mean()
    result = train_for(model, DATA, steps=60, batch_size=8, context_length=16, warmup_steps=5, log_every=10)
    assert result.steps == 60 and len(result.losses) == 6
    assert loss_by_position(model, DATA, 16, windows=60)[0].mean() < before


def test_train_for_seconds_stops_near_the_budget():
    result = train_for(LSTMLanguageModel(20, 8), DATA, seconds=0.3, batch_size=4, context_length=8)
    assert result.steps >= 1 and 0.3 <= result.seconds < 3


@pytest.mark.parametrize("kwargs", [{}, {"seconds": 1, "steps": 2}, {"seconds": 0}, {"steps": 0}, {"steps": 1.5}])
def test_train_for_wants_exactly_one_valid_budget(kwargs):
    with pytest.raises(ValueError):
        train_for(LSTMLanguageModel(20, 8), DATA, **kwargs)


def test_loss_by_position_is_the_cross_entropy_at_each_position():
    model = LSTMLanguageModel(20, 8).eval()
    mean, stderr = loss_by_position(model, DATA, 12, windows=7, seed=3)
    # the same windows by hand
    from utils.train import get_batch

    x, y = get_batch(DATA, 7, 12, torch.Generator().manual_seed(3))
    by_hand = F.cross_entropy(model(x)[0].transpose(1, 2), y, reduction="none")
    assert torch.allclose(mean, by_hand.mean(0)) and torch.allclose(stderr, by_hand.std(0) / math.sqrt(7))


def test_step_time_leaves_the_models_untouched():
    model = LSTMLanguageModel(20, 8)
    before = [p.clone() for p in model.parameters()]
    ms = step_time({"lstm": model}, DATA, 4, 8, steps=2, rounds=1)
    assert ms["lstm"] > 0 and all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


# --- costs ---------------------------------------------------------------------------------------------


def test_gpt3_compute_from_published_figures():
    flops = costs.training_flops(174.6e9, 300e9)
    assert flops == pytest.approx(3.1428e23, rel=1e-4)
    assert flops / costs.PETAFLOP_S_DAY == pytest.approx(3637.5, abs=1)  # Brown et al. report 3,640
    run = costs.run_cost(flops, devices=1000, peak_flops=125e12, mfu=0.3, watts=300, price_per_device_hour=2.0)
    assert run.seconds / 86400 == pytest.approx(97.0, abs=0.1)
    assert run.device_hours == pytest.approx(2.328e6, rel=1e-3)
    assert run.energy_kwh == pytest.approx(run.device_hours * 0.3) and run.money == pytest.approx(2 * run.device_hours)
    assert costs.inference_flops(10, 3) == 60 and costs.attention_share(12288, 2048) == pytest.approx(0.0139, abs=1e-4)


@pytest.mark.parametrize("bad", [dict(mfu=0), dict(mfu=1.5), dict(devices=0), dict(peak_flops=-1)])
def test_run_cost_refuses_impossible_inputs(bad):
    with pytest.raises(ValueError):
        costs.run_cost(**{**dict(flops=1e20, devices=8, peak_flops=1e14, mfu=0.4), **bad})


def test_kv_cache_formula_matches_a_real_cache_with_grouped_heads():
    config = GPTConfig(vocab_size=30, n_layer=3, n_head=4, n_kv_head=2, n_embd=32, context_length=32)
    model = GPT(config).eval()
    caches = model.new_caches()
    with torch.no_grad():
        model(torch.randint(0, 30, (2, 11)), caches=caches)
    expected = costs.kv_cache_bytes(3, 2, 8, 11, bytes_per_number=4, batch=2)
    assert costs.measured_cache_bytes(caches) == expected == 2 * 3 * 2 * 8 * 11 * 4 * 2
    assert costs.kv_cache_bytes(32, 32, 128, 4096) == 2 * 2**30  # Llama 2 7B: 2 GiB in float16
    with pytest.raises(ValueError, match="whole number"):
        costs.kv_cache_bytes(32, 8, 128, 0)


def test_measured_peak_is_a_plausible_speed():
    assert 1e8 < costs.matmul_flops_per_second(128, repeats=2) < 1e14


# --- int8 ----------------------------------------------------------------------------------------------


def test_quantize_int8_is_absmax_per_row_within_half_a_step():
    w = torch.randn(16, 40, generator=torch.Generator().manual_seed(1))
    w[3] *= 30  # an outlier row gets its own, coarser step
    w[5] = 0  # an all-zero row stays zero, with no division by zero
    q, scale = quantize_int8(w)
    assert q.dtype == torch.int8 and q.abs().max() == 127 and scale.shape == (16,)
    assert torch.allclose(scale[[0, 3]], w[[0, 3]].abs().amax(1) / 127)
    assert torch.equal(q[5], torch.zeros(40, dtype=torch.int8))
    error = (w - dequantize_int8(q, scale)).abs().amax(1)
    assert (error <= error_bound(w) + 1e-7).all()
    with pytest.raises(ValueError, match="2-D float"):
        quantize_int8(torch.ones(3))
    with pytest.raises(ValueError, match="inf or nan"):
        quantize_int8(torch.tensor([[1.0, float("nan")]]))


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")  # torch.ao: deprecated, works
def test_int8_linear_and_torch_ao_agree_with_float_within_the_bound():
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 32)
    x = torch.randn(5, 64)
    ours = Int8Linear(linear)(x)
    bound = (error_bound(linear.weight.detach())[None, :] * x.abs().sum(1, keepdim=True))  # (s_r / 2) ||x||_1
    assert ((ours - linear(x)).abs() <= bound + 1e-5).all()
    reference = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(linear), {torch.nn.Linear})
    # torch.ao also rounds the activations, so it is further off, but of the same order
    assert (ours - linear(x)).abs().max() < (reference(x) - linear(x)).abs().max() * 3 + 1e-3


def test_quantize_linears_keeps_the_model_and_shrinks_its_matrices():
    model = GPT(GPTConfig(vocab_size=30, n_layer=2, n_head=2, n_embd=32, context_length=16))
    small = quantize_linears(model)
    assert not any(isinstance(m, torch.nn.Linear) for m in small.modules())
    assert any(isinstance(m, torch.nn.Linear) for m in model.modules())  # the original is untouched
    x = torch.randint(0, 30, (2, 16))
    assert (small(x)[0] - model(x)[0]).abs().max() < 0.05
    linear_weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    # each matrix: 4 bytes a weight become 1, plus 4 bytes a row; the tied head gets its own int8 copy
    assert weight_bytes(small) < weight_bytes(model) - 2.5 * (linear_weights - 30 * 32)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_weight_bytes_counts_torch_ao_packed_weights():
    model = torch.nn.Sequential(torch.nn.Linear(100, 50))
    packed = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear})
    assert weight_bytes(model) == 4 * (100 * 50 + 50)
    assert 100 * 50 <= weight_bytes(packed) < 100 * 50 + 50 * 4 + 100


def test_attention_projections_are_plain_linears():
    # quantize_linears and torch.ao find the attention's matrices only because they are nn.Linear
    assert isinstance(MultiHeadAttention(16, 2).q_proj, torch.nn.Linear)


# --- calibration ---------------------------------------------------------------------------------------


def test_ece_by_hand():
    confidence = [0.95, 0.9, 0.65, 0.6, 0.2, 1.0]
    correct = [1, 0, 1, 1, 0, 1]
    # bins of 0.1: [0.9, 1.0] holds 0.95, 0.9, 1.0 (acc 2/3, conf 0.95); [0.6, 0.7) holds 0.65, 0.6 (1, 0.625);
    # [0.2, 0.3) holds 0.2 (0, 0.2)
    expected = (3 * abs(2 / 3 - 0.95) + 2 * abs(1 - 0.625) + abs(0 - 0.2)) / 6
    assert expected_calibration_error(confidence, correct, bins=10) == pytest.approx(expected)
    table = reliability(confidence, correct, bins=10)
    assert table.counts.sum() == 6 and table.counts[9] == 3 and math.isnan(table.accuracy[0])


def test_ece_is_zero_when_confidence_equals_accuracy_and_refuses_logits():
    assert expected_calibration_error([0.75] * 4, [1, 1, 1, 0]) == pytest.approx(0)
    with pytest.raises(ValueError, match="softmax"):
        expected_calibration_error([2.0], [1])
    with pytest.raises(ValueError, match="one confidence per prediction"):
        expected_calibration_error([0.5, 0.5], [1])


# --- WEAT ----------------------------------------------------------------------------------------------


def _weat_by_hand(x, y, a, b):
    def cos(u, v):
        return float(u @ v / (u.norm() * v.norm()))

    def s(w):
        return np.mean([cos(w, ai) for ai in a]) - np.mean([cos(w, bi) for bi in b])

    sx, sy = [s(w) for w in x], [s(w) for w in y]
    return (np.mean(sx) - np.mean(sy)) / np.std(sx + sy), sum(sx) - sum(sy), sx + sy


def test_weat_effect_size_and_exact_p_value_by_hand():
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(4, 6, generator=g).double() + 0.5, torch.randn(4, 6, generator=g).double()
    a, b = torch.randn(3, 6, generator=g).double() + 0.5, torch.randn(5, 6, generator=g).double()
    d, observed, s = _weat_by_hand(x, y, a, b)
    assert effect_size(x, y, a, b) == pytest.approx(d)
    assert torch.allclose(association(x, a, b), torch.tensor(s[:4], dtype=torch.float64))
    splits = [sum(s[i] for i in half) - sum(s[i] for i in range(8) if i not in half)
              for half in itertools.combinations(range(8), 4)]
    assert p_value(x, y, a, b) == pytest.approx(np.mean([v >= observed - 1e-12 for v in splits]))
    assert abs(effect_size(x, y, a, b)) <= 2


def test_weat_is_scale_free_and_antisymmetric():
    g = torch.Generator().manual_seed(4)
    x, y, a, b = (torch.randn(5, 8, generator=g) for _ in range(4))
    d = effect_size(x, y, a, b)
    assert effect_size(3 * x, y, 0.1 * a, b) == pytest.approx(d, abs=1e-6)
    assert effect_size(y, x, a, b) == pytest.approx(-d, abs=1e-6)
    assert effect_size(x, y, b, a) == pytest.approx(-d, abs=1e-6)
    with pytest.raises(ValueError, match="same size"):
        effect_size(x[:4], y, a, b)


def test_weat_sampled_p_value_finds_a_planted_association():
    g = torch.Generator().manual_seed(5)
    direction = torch.randn(16, generator=g)
    x = torch.randn(20, 16, generator=g) + direction
    y = torch.randn(20, 16, generator=g) - direction
    a, b = torch.randn(10, 16, generator=g) + direction, torch.randn(10, 16, generator=g) - direction
    assert effect_size(x, y, a, b) > 1.5
    p = p_value(x, y, a, b, samples=2000)
    assert 0 < p < 0.01  # sampled: the observed split counts, so p is never 0


# --- an assistant's confidence in its reply -----------------------------------------------------------


def test_reply_probability_is_the_product_of_the_reply_tokens_probabilities():
    from utils.chat import reply_probability
    from utils.chat_template import ChatTokenizer, prompt_ids

    tok = ChatTokenizer.train("abcdefghijklmnopqrstuvwxyz WhatRvs0123456789+?:")
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=16, context_length=64)).eval()
    question, reply = "What is 2 + 3?", "5"
    ids = prompt_ids(tok, [{"role": "user", "content": question}])
    written = tok.encode_text(reply) + [tok.id_of("<|end|>")]
    by_hand = 1.0
    with torch.no_grad():
        for token in written:
            by_hand *= model(torch.tensor([ids]))[0][0, -1].softmax(-1)[token].item()
            ids = ids + [token]
    assert reply_probability(model, tok, [question], [reply])[0] == pytest.approx(by_hand, rel=1e-4)
    with pytest.raises(ValueError, match="one reply per question"):
        reply_probability(model, tok, [question], [])


# --- the scaling fit -----------------------------------------------------------------------------------


def test_power_law_fit_recovers_known_constants():
    n = np.array([3e4, 1e5, 3e5, 1e6, 3e6])
    loss = 1.5 + 40 * n ** -0.35
    fixed = fit_power_law(n, loss, E=1.5)
    assert fixed.alpha == pytest.approx(0.35) and fixed.A == pytest.approx(40)
    free = fit_power_law(n, loss, grid=2000)
    assert free.E == pytest.approx(1.5, abs=0.01) and free.alpha == pytest.approx(0.35, abs=0.02)
    low, high = bootstrap_alpha(n, loss * (1 + 0.002 * np.array([1, -1, 1, -1, 1])), resamples=50)
    assert low <= 0.35 <= high


def test_power_law_fit_refuses_what_it_cannot_fit():
    with pytest.raises(ValueError, match="below every loss"):
        fit_power_law([1e4, 1e5], [2.0, 1.5], E=1.6)
    with pytest.raises(ValueError, match="at least three"):
        fit_power_law([1e4, 1e5], [2.0, 1.5])
