"""Muon: Newton-Schulz orthogonalization, the update rule, and its AdamW groups."""

import math

import pytest
import torch

from utils.muon import Muon, orthogonalize


@pytest.mark.parametrize("shape", [(16, 40), (40, 16), (24, 24)])
def test_orthogonalize_sets_singular_values_near_one(shape):
    g = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    g[:, 0] *= 50  # one dominant direction, as in a real gradient
    s_in = torch.linalg.svdvals(g)
    s_out = torch.linalg.svdvals(orthogonalize(g))
    assert s_in.max() / s_in.min() > 20
    # Muon's coefficients trade exactness for speed: values land around 0.7-1.2, and a direction
    # with almost no weight (the smallest singular value of a square random matrix) only part way.
    assert s_out.max() < 1.3 and 0.7 < s_out.median() < 1.2
    assert s_out.max() / s_out.min() < 4
    # same singular directions: U V^T of g, up to that spread of singular values
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    cos = torch.nn.functional.cosine_similarity(orthogonalize(g).flatten(), (u @ vh).flatten(), dim=0)
    assert cos > 0.95


def test_orthogonalize_a_stack_equals_one_by_one():
    g = torch.randn(3, 8, 20, generator=torch.Generator().manual_seed(1))
    stacked = orthogonalize(g)
    for i in range(3):
        torch.testing.assert_close(stacked[i], orthogonalize(g[i]), rtol=1e-5, atol=1e-6)


def test_orthogonalize_refuses_vectors():
    with pytest.raises(ValueError, match="matrix"):
        orthogonalize(torch.randn(5))


def test_muon_step_by_hand():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(6, 10))
    start = w.detach().clone()
    opt = Muon([{"params": [w], "use_muon": True}], lr=0.1, weight_decay=0.5, momentum=0.9)
    grads = [torch.randn(6, 10), torch.randn(6, 10)]
    expected, m = start.clone(), torch.zeros(6, 10)
    for g in grads:
        w.grad = g.clone()
        opt.step()
        m = 0.9 * m + g
        expected = expected * (1 - 0.1 * 0.5) - 0.1 * 0.2 * math.sqrt(10) * orthogonalize(g + 0.9 * m)
    torch.testing.assert_close(w.detach(), expected)


def test_muon_groups_without_use_muon_are_adamw():
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(7, 3))
    b = torch.nn.Parameter(a.detach().clone())
    mine = Muon([{"params": [a]}], lr=0.01, weight_decay=0.1, betas=(0.9, 0.99))
    ref = torch.optim.AdamW([b], lr=0.01, weight_decay=0.1, betas=(0.9, 0.99))
    for _ in range(5):
        g = torch.randn(7, 3)
        a.grad, b.grad = g.clone(), g.clone()
        mine.step()
        ref.step()
    torch.testing.assert_close(a.detach(), b.detach())


def test_muon_refuses_vectors_in_a_muon_group():
    with pytest.raises(ValueError, match="2-D"):
        Muon([{"params": [torch.nn.Parameter(torch.ones(4))], "use_muon": True}])


def test_muon_state_round_trips():
    w = torch.nn.Parameter(torch.randn(4, 4))
    v = torch.nn.Parameter(torch.randn(4))
    opt = Muon([{"params": [w], "use_muon": True}, {"params": [v]}], lr=0.01)
    w.grad, v.grad = torch.randn(4, 4), torch.randn(4)
    opt.step()
    again = Muon([{"params": [w], "use_muon": True}, {"params": [v]}], lr=0.01)
    again.load_state_dict(opt.state_dict())
    assert torch.equal(again.state[w]["momentum"], opt.state[w]["momentum"])
    assert torch.equal(again.state[v]["exp_avg_sq"], opt.state[v]["exp_avg_sq"])
