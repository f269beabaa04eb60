"""Tests for utils/head_scores.py: head scores on hand-made attention maps, and head ablation on our GPT."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from utils import head_scores as hs
from utils.model import GPT, GPTConfig


def previous_token_map(n: int) -> torch.Tensor:
    """Exactly a previous-token head: token i puts all its weight on i - 1; token 0 on itself."""
    w = torch.zeros(n, n, dtype=torch.float64)
    w[0, 0] = 1.0
    for i in range(1, n):
        w[i, i - 1] = 1.0
    return w


def random_maps(*shape: int, seed: int = 0, causal: bool = False) -> torch.Tensor:
    """Random attention maps (..., n, n): each row a softmax of random scores."""
    scores = 2 * torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    if causal:
        n = shape[-1]
        scores = scores.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf"))
    return scores.softmax(-1)


# --- scores on hand-made maps ---------------------------------------------------------------------


def test_a_previous_token_head_scores_one_as_previous_and_low_on_everything_else():
    w = previous_token_map(6)
    assert hs.previous_token_score(w).item() == 1.0
    assert hs.next_token_score(w).item() == 0.0
    assert hs.self_score(w).item() == pytest.approx(1 / 6)  # only token 0, which has no previous token
    assert hs.score_to_positions(w, 0).item() == pytest.approx(2 / 6)  # tokens 0 and 1 look at position 0
    assert hs.attention_entropy(w).item() == 0.0  # every row is one-hot


def test_next_and_self_heads_score_one_on_their_own_function():
    n = 5
    following = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n - 1):
        following[i, i + 1] = 1.0
    following[n - 1, n - 1] = 1.0
    assert hs.next_token_score(following).item() == 1.0
    assert hs.previous_token_score(following).item() == 0.0
    itself = torch.eye(n, dtype=torch.float64)
    assert hs.self_score(itself).item() == 1.0
    assert hs.previous_token_score(itself).item() == 0.0 and hs.next_token_score(itself).item() == 0.0


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 9), offset=st.integers(-8, 8), seed=st.integers(0, 10_000))
def test_offset_score_equals_a_loop(n, offset, seed):
    if abs(offset) >= n:
        return
    w = random_maps(n, n, seed=seed)
    pairs = [(i, i + offset) for i in range(n) if 0 <= i + offset < n]
    expected = sum(w[i, j].item() for i, j in pairs) / len(pairs)
    assert hs.offset_score(w, offset).item() == pytest.approx(expected, rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 7), offset=st.integers(-3, 3), seed=st.integers(0, 10_000), left=st.booleans())
def test_batch_offset_score_equals_a_loop_over_the_real_pairs(n, offset, seed, left):
    if abs(offset) >= n:
        return
    w = random_maps(3, 2, n, n, seed=seed)  # (batch 3, heads 2, n, n)
    lengths = [n, max(abs(offset) + 1, n - 1), abs(offset) + 1]
    mask = torch.tensor([[1] * k + [0] * (n - k) for k in lengths])
    mask = mask.flip(-1) if left else mask  # padding on the left (decoders) or on the right (BERT)
    pairs = [(b, i, i + offset) for b in range(3) for i in range(n)
             if 0 <= i + offset < n and mask[b, i] and mask[b, i + offset]]
    expected = [sum(w[b, h, i, j].item() for b, i, j in pairs) / len(pairs) for h in range(2)]
    assert hs.batch_offset_score(w, mask, offset).tolist() == pytest.approx(expected, rel=1e-12)


def test_batch_previous_token_score_ignores_padding_and_without_padding_is_the_mean_score():
    w = random_maps(2, 3, 5, 5, seed=4)
    full = torch.ones(2, 5, dtype=torch.long)
    torch.testing.assert_close(hs.batch_previous_token_score(w, full), hs.previous_token_score(w).mean(0))
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    other = w.clone()
    other[0, :, 3:] = random_maps(3, 2, 5, seed=5)  # new padding rows: the score must not move
    torch.testing.assert_close(hs.batch_previous_token_score(other, mask), hs.batch_previous_token_score(w, mask))
    with pytest.raises(ValueError, match=r"shape \(batch, n\) = \(2, 5\)"):
        hs.batch_previous_token_score(w, full[:, :4])
    with pytest.raises(ValueError, match="no pair of real tokens"):
        hs.batch_previous_token_score(w, torch.tensor([[1, 0, 0, 0, 0], [0, 0, 0, 0, 1]]))


def test_scores_keep_the_leading_dims_and_score_every_head_on_its_own():
    w = random_maps(3, 4, 7, 7, seed=1)  # (layers, heads, n, n)
    scores = hs.previous_token_score(w)
    assert scores.shape == (3, 4)
    assert scores[2, 1].item() == pytest.approx(hs.previous_token_score(w[2, 1]).item(), rel=1e-12)
    for fn in (hs.self_score, hs.next_token_score, hs.attention_entropy):
        assert fn(w).shape == (3, 4)
    assert hs.score_to_positions(w, [0, -1]).shape == (3, 4)


def test_a_list_of_per_layer_tensors_gives_the_same_scores_as_the_stacked_tensor():
    w = random_maps(2, 3, 5, 5, seed=2)
    as_list = [w[layer][None] for layer in range(2)]  # each (1, heads, n, n), as the models return them
    assert torch.equal(hs.as_weights(as_list), w)
    assert torch.equal(hs.previous_token_score(as_list), hs.previous_token_score(w))
    assert torch.equal(hs.attention_entropy([w[0], w[1]]), hs.attention_entropy(w))


def test_score_to_positions_accepts_ints_negative_ints_and_bool_masks():
    n = 5
    uniform = torch.full((n, n), 1 / n, dtype=torch.float64)
    assert hs.score_to_positions(uniform, 0).item() == pytest.approx(1 / n)
    assert hs.score_to_positions(uniform, [0, -1]).item() == pytest.approx(2 / n)
    mask = torch.tensor([True, False, True, True, False])
    assert hs.score_to_positions(uniform, mask).item() == pytest.approx(3 / n)
    w = previous_token_map(n)
    # Only query 1 looks at position 0 (query 0 looks at itself, also position 0).
    assert hs.score_to_positions(w, 0, queries=[1, 2]).item() == pytest.approx(0.5)


def test_score_to_targets_with_previous_positions_is_the_previous_token_score():
    w = random_maps(2, 3, 6, 6, seed=3)
    targets = [-1] + list(range(5))
    assert torch.allclose(hs.score_to_targets(w, targets), hs.previous_token_score(w))
    assert torch.allclose(hs.score_to_targets(w, torch.tensor(targets)), hs.previous_token_score(w))
    own = [None, None, 0, 0, 3, 3]  # e.g. the last space before each character
    expected = (w[..., 2, 0] + w[..., 3, 0] + w[..., 4, 3] + w[..., 5, 3]) / 4
    assert torch.allclose(hs.score_to_targets(w, own), expected)


def test_entropy_is_log_k_for_a_row_spread_evenly_over_k_tokens():
    n = 8
    uniform = torch.full((n, n), 1 / n, dtype=torch.float64)
    assert hs.attention_entropy(uniform).item() == pytest.approx(math.log(n))
    causal_uniform = torch.ones(n, n, dtype=torch.float64).tril()
    causal_uniform /= causal_uniform.sum(-1, keepdim=True)
    expected = sum(math.log(i + 1) for i in range(n)) / n
    assert hs.attention_entropy(causal_uniform).item() == pytest.approx(expected)
    assert not torch.isnan(hs.attention_entropy(previous_token_map(4))).any()


def test_pattern_correlation_equals_numpy_and_ignores_scale():
    a, b = random_maps(6, 6, seed=4), random_maps(6, 6, seed=5)
    expected = np.corrcoef(a.numpy().ravel(), b.numpy().ravel())[0, 1]
    assert hs.pattern_correlation(a, b).item() == pytest.approx(expected, rel=1e-10)
    assert hs.pattern_correlation(a, a).item() == pytest.approx(1.0)
    assert hs.pattern_correlation(a, 3 * a + 0.5).item() == pytest.approx(1.0)
    assert hs.pattern_correlation(previous_token_map(6), previous_token_map(6).T).item() < 0.1


def test_pattern_correlation_per_head_and_with_a_mask():
    a, b = random_maps(2, 3, 5, 5, seed=6), random_maps(2, 3, 5, 5, seed=7)
    r = hs.pattern_correlation(a, b)
    assert r.shape == (2, 3)
    assert r[1, 2].item() == pytest.approx(hs.pattern_correlation(a[1, 2], b[1, 2]).item(), rel=1e-12)
    mask = torch.zeros(5, 5, dtype=torch.bool)
    mask[1:-1, 1:-1] = True
    inner = np.corrcoef(a[0, 0, 1:-1, 1:-1].numpy().ravel(), b[0, 0, 1:-1, 1:-1].numpy().ravel())[0, 1]
    assert hs.pattern_correlation(a, b, mask=mask)[0, 0].item() == pytest.approx(inner, rel=1e-10)


def test_norm_weighted_scales_each_column_by_the_length_of_its_vector():
    w = random_maps(4, 4, seed=8)
    vectors = torch.randn(4, 3, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    moved = hs.norm_weighted(w, vectors)
    for i in range(4):
        for j in range(4):
            # ||alpha_ij f(x_j)||, computed as the norm of the scaled vector itself
            assert moved[i, j].item() == pytest.approx((w[i, j] * vectors[j]).norm().item(), rel=1e-12)
    same_length = vectors / vectors.norm(dim=-1, keepdim=True)
    assert torch.allclose(hs.row_shares(hs.norm_weighted(w, same_length)), w)
    assert torch.allclose(hs.row_shares(moved).sum(-1), torch.ones(4, dtype=torch.float64))


def test_top_heads_are_sorted_best_first():
    scores = torch.tensor([[0.1, 0.9, 0.3], [0.5, float("nan"), 0.7]])
    assert [(layer, head) for layer, head, _ in hs.top_heads(scores, 3)] == [(0, 1), (1, 2), (1, 0)]
    assert hs.top_heads(scores, 1)[0][2] == pytest.approx(0.9)


# --- clear errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (torch.rand(4, 5), "two equal dims"),
        (torch.rand(5), "two equal dims"),
        (torch.randn(4, 4), "must be >= 0|sum to 1"),
        (torch.full((3, 3), 0.5), "sum to 1"),
        ([torch.rand(2, 2, 4, 4).softmax(-1)], "batch of 2"),
        ([torch.rand(2, 4, 4).softmax(-1), torch.rand(2, 5, 5).softmax(-1)], "same shape"),
        ([torch.rand(4, 4).softmax(-1)], "heads, n, n"),
        ([None], "None"),
        ([], "empty"),
        ("weights", "expected a tensor"),
    ],
)
def test_bad_weights_raise_a_value_error_that_names_the_problem(bad, message):
    with pytest.raises(ValueError, match=message):
        hs.previous_token_score(bad)


def test_bad_arguments_raise_value_errors():
    w = random_maps(5, 5, seed=10)
    with pytest.raises(ValueError, match="offset"):
        hs.offset_score(w, 5)
    with pytest.raises(ValueError, match=r"0\.\.4"):
        hs.score_to_positions(w, [7])
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        hs.score_to_positions(w, torch.tensor([True, False]))
    with pytest.raises(ValueError, match="one key position per query"):
        hs.score_to_targets(w, [0, 1])
    with pytest.raises(ValueError, match="same shape"):
        hs.pattern_correlation(w, random_maps(4, 4, seed=11))
    with pytest.raises(ValueError, match="vectors must have shape"):
        hs.norm_weighted(w, torch.randn(4, 3))
    with pytest.raises(ValueError, match="layers, heads"):
        hs.top_heads(torch.rand(5))


# --- ablation on our GPT ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpt_and_batches():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, context_length=12, n_layer=2, n_head=4, n_embd=16)).eval()
    # Larger output projections than the initialisation gives, so that every head matters visibly.
    with torch.no_grad():
        for block in model.blocks:
            block.attn.out_proj.weight.normal_(0, 0.3)
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randint(11, (3, 12), generator=g), torch.randint(11, (3, 12), generator=g)) for _ in range(2)]
    return model, batches


def test_ablating_a_head_changes_the_loss_and_leaving_the_block_restores_it_exactly(gpt_and_batches):
    model, batches = gpt_and_batches
    before = hs.mean_loss(model, batches)
    with hs.ablate_heads(model, 1, 2):
        ablated = hs.mean_loss(model, batches)
    after = hs.mean_loss(model, batches)
    assert ablated != before
    assert after == before
    assert not model.blocks[1].attn.out_proj._forward_pre_hooks  # the hook is gone


def test_ablation_equals_zeroing_the_heads_columns_of_the_output_projection(gpt_and_batches):
    model, batches = gpt_and_batches
    layer, head = 0, 3
    d_head = model.blocks[layer].attn.d_head
    edited = copy.deepcopy(model)
    with torch.no_grad():  # an independent way to remove the head: W^O no longer reads its features
        edited.blocks[layer].attn.out_proj.weight[:, head * d_head:(head + 1) * d_head] = 0
    with hs.ablate_heads(model, layer, head):
        ablated = hs.mean_loss(model, batches)
    assert ablated == pytest.approx(hs.mean_loss(edited, batches), abs=1e-6)


def test_head_means_are_the_mean_of_each_heads_attention_output(gpt_and_batches):
    """An independent route for layer 0: a head's output is its weights times its values, softmax(QK^T) V,
    computed here from the model's own weights (need_weights=True) and v_proj."""
    model, batches = gpt_and_batches
    attn = model.blocks[0].attn
    outputs = []
    with torch.no_grad():
        for x, _ in batches:
            _, _, weights = model(x, need_weights=True)
            pos = torch.arange(x.shape[1])
            h = model.blocks[0].ln1(model.tok_emb(x) + model.pos_emb(pos))
            v = attn.v_proj(h).view(*x.shape, attn.n_heads, attn.d_head).transpose(1, 2)  # (batch, heads, n, d)
            outputs.append((weights[0] @ v).transpose(1, 2).reshape(-1, attn.n_heads, attn.d_head))
    torch.testing.assert_close(hs.head_means(model, 0, batches), torch.cat(outputs).mean(0), atol=1e-6, rtol=1e-5)


def test_mean_ablation_equals_moving_the_head_into_the_bias_of_the_output_projection(gpt_and_batches):
    """Independently: a head whose output is the constant m adds W^O_h m to every position, which is
    the same as zeroing its columns of W^O and adding W^O_h m to the bias."""
    model, batches = gpt_and_batches
    layer, head = 1, 2
    means = hs.head_means(model, layer, batches)
    d_head = model.blocks[layer].attn.d_head
    edited = copy.deepcopy(model)
    old = edited.blocks[layer].attn.out_proj
    new = torch.nn.Linear(old.in_features, old.out_features, bias=True)  # the model has no bias: give it one
    with torch.no_grad():
        columns = old.weight[:, head * d_head:(head + 1) * d_head]
        new.bias.copy_(columns @ means[head] + (0 if old.bias is None else old.bias))
        columns.zero_()
        new.weight.copy_(old.weight)
    edited.blocks[layer].attn.out_proj = new
    before = hs.mean_loss(model, batches)
    with hs.mean_ablate_heads(model, layer, head, means):
        ablated = hs.mean_loss(model, batches)
    assert ablated == pytest.approx(hs.mean_loss(edited, batches), abs=1e-6)
    with hs.ablate_heads(model, layer, head):
        assert hs.mean_loss(model, batches) != pytest.approx(ablated, abs=1e-4)  # zero is another ablation
    assert hs.mean_loss(model, batches) == before and not model.blocks[layer].attn.out_proj._forward_pre_hooks


def test_mean_ablation_with_zero_means_is_zero_ablation_and_bad_means_are_refused(gpt_and_batches):
    model, batches = gpt_and_batches
    zeros = torch.zeros(4, 4)
    with hs.mean_ablate_heads(model, 0, [1, 3], zeros):
        mean_zero = hs.mean_loss(model, batches)
    with hs.ablate_heads(model, 0, [1, 3]):
        assert hs.mean_loss(model, batches) == pytest.approx(mean_zero, abs=1e-7)
    with pytest.raises(ValueError, match=r"means must have shape \(heads, d_head\) = \(4, 4\)"), \
            hs.mean_ablate_heads(model, 0, 1, torch.zeros(16)):
        pass


def test_ablation_losses_tries_every_head_once(gpt_and_batches):
    model, batches = gpt_and_batches
    losses = hs.ablation_losses(model, batches)
    assert losses.shape == (2, 4)
    with hs.ablate_heads(model, 1, 0):
        assert losses[1, 0].item() == pytest.approx(hs.mean_loss(model, batches), rel=1e-6)
    assert len(set(losses.flatten().tolist())) == 8  # each head removed makes its own difference


def test_the_hook_is_removed_even_when_the_block_raises(gpt_and_batches):
    model, _ = gpt_and_batches
    with pytest.raises(RuntimeError, match="inside"), hs.ablate_heads(model, 0, 0):
        raise RuntimeError("inside")
    assert not model.blocks[0].attn.out_proj._forward_pre_hooks


def test_mean_loss_keeps_the_training_mode(gpt_and_batches):
    model, batches = gpt_and_batches
    model.train()
    hs.mean_loss(model, batches)
    assert model.training
    model.eval()


def test_bad_heads_and_models_raise_value_errors(gpt_and_batches):
    model, batches = gpt_and_batches
    with pytest.raises(ValueError, match=r"layer must be in 0\.\.1"), hs.ablate_heads(model, 2, 0):
        pass
    with pytest.raises(ValueError, match=r"head must be in 0\.\.3"), hs.ablate_heads(model, 0, 4):
        pass
    with pytest.raises(ValueError, match="course's models"), hs.ablate_heads(torch.nn.Linear(2, 2), 0, 0):
        pass
    with pytest.raises(ValueError, match="no batches"):
        hs.mean_loss(model, [])


# --- the exercise checks of lesson 09 (they live here with the module they teach) -----------------


def test_the_lesson_09_checks_pass_the_utils_functions_and_name_the_usual_mistakes():
    """The checks' references are the functions of this module; each wrong answer is named (more of them in
    tests/wrong_answers/lesson09.py)."""
    from utils.checks import CheckFailed
    from utils.checks.reading_attention import (
        check_mean_ablation_loss,
        check_norm_shares,
        check_pattern_correlation,
        check_previous_token_scores,
    )

    def mean_ablation_loss(model, layer, head, batches):
        with hs.mean_ablate_heads(model, layer, head, hs.head_means(model, layer, batches)):
            return hs.mean_loss(model, batches)

    check_previous_token_scores(hs.batch_previous_token_score)
    check_pattern_correlation(lambda a, b: hs.pattern_correlation(a, b).item())
    check_norm_shares(lambda w, v: hs.row_shares(hs.norm_weighted(w, v)))
    check_mean_ablation_loss(mean_ablation_loss)

    with pytest.raises(CheckFailed, match="padding was counted"):
        check_previous_token_scores(lambda w, m: torch.diagonal(w, -1, -2, -1).mean((0, 2)))
    with pytest.raises(CheckFailed, match="cosine similarity"):
        check_pattern_correlation(lambda a, b: (a.flatten() @ b.flatten() / (a.norm() * b.norm())).item())
    with pytest.raises(CheckFailed, match="divide each row by its total"):
        check_norm_shares(lambda w, v: w * v.norm(dim=-1)[None])

    def zero_ablation(model, layer, head, batches):
        with hs.ablate_heads(model, layer, head):
            return hs.mean_loss(model, batches)

    with pytest.raises(CheckFailed, match="zero ablation"):
        check_mean_ablation_loss(zero_ablation)
    def blank(weights, values):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not written yet"):
        check_norm_shares(blank)


def test_per_layer_reads_what_models_return_and_refuses_what_would_mix_texts():
    w = random_maps(2, 3, 4, 4, seed=3).double()
    batch = torch.stack([w, w.flip(-1)], dim=1)  # (layers, batch=2, heads, n, n)
    layers = hs.per_layer([batch[0], batch[1]], batch_index=1)
    assert [tuple(a.shape) for a in layers] == [(3, 4, 4)] * 2
    assert torch.equal(layers[0], w[0].flip(-1)) and layers[0].dtype == torch.float64
    assert torch.equal(torch.stack(hs.per_layer([w[0][None], w[1][None]])), w)
    with pytest.raises(ValueError, match="batch of 2 texts"):
        hs.per_layer([batch[0], batch[1]])
    with pytest.raises(ValueError, match="layer 1 has no attention weights"):
        hs.per_layer([w[0], None])
    with pytest.raises(ValueError, match="same shape"):
        hs.per_layer([w[0], w[1][:2]])
    with pytest.raises(ValueError, match=r"layer 0: expected .* got \(3, 4, 5\)"):
        hs.per_layer([torch.rand(3, 4, 5)])
    with pytest.raises(ValueError, match="non-empty list"):
        hs.per_layer([])
