"""Tests for utils/embeddings.py: the sinusoidal formula, the module's shapes, and its errors."""

from __future__ import annotations

import math

import pytest
import torch

from utils.embeddings import TokenAndPositionEmbedding, check_token_ids, sinusoidal_positions

# --- the sinusoidal table -----------------------------------------------------------------------------------


def test_sinusoidal_shape_and_dtype():
    p = sinusoidal_positions(7, 10)
    assert p.shape == (7, 10)
    assert p.dtype == torch.float32
    assert sinusoidal_positions(0, 4).shape == (0, 4)


def test_sinusoidal_position_zero_is_sin0_cos0():
    assert sinusoidal_positions(1, 8)[0].tolist() == [0.0, 1.0] * 4


def test_sinusoidal_known_values():
    p = sinusoidal_positions(101, 4)
    # The first pair has frequency 1: position 1 is (sin 1, cos 1).
    assert p[1, 0].item() == pytest.approx(math.sin(1), abs=1e-7)
    assert p[1, 1].item() == pytest.approx(math.cos(1), abs=1e-7)
    # d = 4: the second pair has frequency 1 / 10000^(2/4) = 1/100, so position 100 is (sin 1, cos 1).
    assert p[100, 2].item() == pytest.approx(math.sin(1), abs=1e-7)
    assert p[100, 3].item() == pytest.approx(math.cos(1), abs=1e-7)
    # Position 3, d = 6: pair i = 1 has frequency 10000^(-2/6).
    f = 10000 ** (-2 / 6)
    q = sinusoidal_positions(4, 6)
    assert q[3, 2].item() == pytest.approx(math.sin(3 * f), abs=1e-7)
    assert q[3, 3].item() == pytest.approx(math.cos(3 * f), abs=1e-7)


def test_sinusoidal_matches_the_formula_everywhere():
    n, d = 50, 16
    p = sinusoidal_positions(n, d)
    for t in (0, 7, 49):
        for col in range(d):
            two_i = col - col % 2
            angle = t / 10000 ** (two_i / d)
            want = math.sin(angle) if col % 2 == 0 else math.cos(angle)
            assert p[t, col].item() == pytest.approx(want, abs=1e-6)


def test_sinusoidal_far_positions_stay_accurate():
    # float32 arguments would lose digits at position 5000; the table is computed in float64.
    assert sinusoidal_positions(5001, 2)[5000, 0].item() == pytest.approx(math.sin(5000), abs=1e-6)


def test_sinusoidal_rows_have_norm_sqrt_half_d():
    # sin^2 + cos^2 = 1 for each of the d/2 pairs.
    p = sinusoidal_positions(30, 12)
    torch.testing.assert_close(p.norm(dim=1), torch.full((30,), math.sqrt(6)))


def test_sinusoidal_is_a_prefix_of_longer_tables():
    torch.testing.assert_close(sinusoidal_positions(10, 8), sinusoidal_positions(40, 8)[:10])


def test_sinusoidal_shift_is_a_rotation():
    # P[t + k] depends linearly on P[t]: each (sin, cos) pair turns by the angle k * frequency.
    n, d, k = 20, 8, 3
    p = sinusoidal_positions(n + k, d).double()
    freqs = 10000 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    rot = torch.zeros(d, d, dtype=torch.float64)
    for i, f in enumerate(freqs.tolist()):
        c, s = math.cos(k * f), math.sin(k * f)
        # (sin(a+b), cos(a+b)) = (sin a cos b + cos a sin b, cos a cos b - sin a sin b)
        rot[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    torch.testing.assert_close(p[:n] @ rot, p[k:], atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "n, d, error",
    [(-1, 4, ValueError), (4, 5, ValueError), (4, 0, ValueError), (2.5, 4, TypeError), (4, "8", TypeError)],
)
def test_sinusoidal_bad_input(n, d, error):
    with pytest.raises(error):
        sinusoidal_positions(n, d)


# --- TokenAndPositionEmbedding -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["learned", "sinusoidal"])
def test_module_shapes(kind):
    emb = TokenAndPositionEmbedding(vocab_size=11, d_model=6, context_length=9, kind=kind)
    ids = torch.randint(0, 11, (3, 5))
    assert emb(ids).shape == (3, 5, 6)
    assert emb(ids[0]).shape == (5, 6)  # a single sequence without a batch dim
    assert emb(ids[:, :0]).shape == (3, 0, 6)


@pytest.mark.parametrize("kind", ["learned", "sinusoidal"])
def test_module_is_token_row_plus_position_row(kind):
    torch.manual_seed(0)
    emb = TokenAndPositionEmbedding(vocab_size=7, d_model=4, context_length=6, kind=kind)
    ids = torch.tensor([[3, 0, 3, 6], [1, 1, 2, 5]])
    out = emb(ids)
    for b in range(2):
        for t in range(4):
            want = emb.token.weight[ids[b, t]] + emb.positions(6)[t]
            torch.testing.assert_close(out[b, t], want)
    # The same token at two positions gets two different vectors.
    assert not torch.allclose(out[0, 0], out[0, 2])


def test_sinusoidal_module_uses_the_formula_and_trains_no_positions():
    emb = TokenAndPositionEmbedding(vocab_size=5, d_model=8, context_length=12, kind="sinusoidal")
    torch.testing.assert_close(emb.positions(12), sinusoidal_positions(12, 8))
    assert emb.position is None
    assert sum(p.numel() for p in emb.parameters()) == 5 * 8  # only the token table
    assert "sinusoid" not in emb.state_dict()  # a formula needs no saving


def test_learned_module_parameters_and_gradients():
    emb = TokenAndPositionEmbedding(vocab_size=5, d_model=8, context_length=12, kind="learned")
    assert sum(p.numel() for p in emb.parameters()) == 5 * 8 + 12 * 8
    emb(torch.tensor([[4, 4, 1]])).sum().backward()
    # Only the rows that were used get a gradient: tokens 4 and 1, positions 0..2.
    used_tokens = emb.token.weight.grad.abs().sum(dim=1) > 0
    assert used_tokens.tolist() == [False, True, False, False, True]
    used_positions = emb.position.weight.grad.abs().sum(dim=1) > 0
    assert used_positions.tolist() == [True] * 3 + [False] * 9


@pytest.mark.parametrize("kind", ["learned", "sinusoidal"])
def test_start_offset_equals_the_matching_slice(kind):
    torch.manual_seed(0)
    emb = TokenAndPositionEmbedding(vocab_size=9, d_model=4, context_length=8, kind=kind)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    full = emb(ids)
    torch.testing.assert_close(emb(ids[:, 3:], start=3), full[:, 3:])


@pytest.mark.parametrize("kind", ["learned", "sinusoidal"])
def test_max_len_tokens_fit(kind):
    emb = TokenAndPositionEmbedding(vocab_size=3, d_model=4, context_length=5, kind=kind)
    assert emb(torch.zeros(2, 5, dtype=torch.long)).shape == (2, 5, 4)


@pytest.mark.parametrize("kind", ["learned", "sinusoidal"])
def test_too_long_a_sequence_is_a_clear_error(kind):
    emb = TokenAndPositionEmbedding(vocab_size=3, d_model=4, context_length=5, kind=kind)
    with pytest.raises(ValueError, match="context_length=5"):
        emb(torch.zeros(1, 6, dtype=torch.long))
    with pytest.raises(ValueError, match="context_length=5"):
        emb(torch.zeros(1, 2, dtype=torch.long), start=4)


def test_check_token_ids_names_the_range_and_the_ids():
    check_token_ids(torch.tensor([[0, 9]]), 10)
    check_token_ids(torch.zeros(0, dtype=torch.long), 10)  # nothing to look up, nothing wrong
    with pytest.raises(ValueError, match=r"^token ids must lie in 0\.\.9 \(vocab_size=10\); got ids from -1 to 10\. "
                       r"Was the text encoded with a different tokenizer\?$"):
        check_token_ids(torch.tensor([-1, 10]), 10)


def test_ids_out_of_range_are_a_clear_error():
    emb = TokenAndPositionEmbedding(vocab_size=10, d_model=4, context_length=8)
    with pytest.raises(ValueError, match=r"0\.\.9.*got ids from 0 to 10"):
        emb(torch.tensor([[0, 10]]))
    with pytest.raises(ValueError, match="got ids from -1"):
        emb(torch.tensor([[-1, 3]]))


@pytest.mark.parametrize(
    "ids", [torch.tensor([[0.0, 1.0]]), torch.tensor([[True, False]]), [[0, 1]]], ids=["float", "bool", "list"]
)
def test_ids_must_be_an_integer_tensor(ids):
    emb = TokenAndPositionEmbedding(vocab_size=10, d_model=4, context_length=8)
    with pytest.raises(TypeError, match="integer tensor"):
        emb(ids)


def test_ids_must_be_1d_or_2d():
    emb = TokenAndPositionEmbedding(vocab_size=10, d_model=4, context_length=8)
    with pytest.raises(ValueError, match=r"\(batch, n\)"):
        emb(torch.zeros(2, 2, 2, dtype=torch.long))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kind="rotary"), "kind must be one of"),
        (dict(kind="sinusoidal", d_model=5), "even d_model"),
        (dict(vocab_size=0), "vocab_size"),
        (dict(context_length=-3), "context_length"),
        (dict(d_model=2.0), "d_model"),
    ],
)
def test_bad_construction_is_a_clear_error(kwargs, match):
    args = dict(vocab_size=10, d_model=4, context_length=8) | kwargs
    with pytest.raises(ValueError, match=match):
        TokenAndPositionEmbedding(**args)


def test_module_moves_with_to():
    emb = TokenAndPositionEmbedding(vocab_size=4, d_model=4, context_length=3, kind="sinusoidal").to(torch.float64)
    assert emb(torch.tensor([0, 1])).dtype == torch.float64
