"""Tests for lesson 04's helpers: the toy task, the small model, training, the explorer, and the
exercise checks of utils/checks/multi_head.py."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch

from utils import how_many_heads as hx
from utils.head_scores import ablate_heads
from utils.views.attention_heatmaps import AttentionExplorer
from utils.views.how_many_heads_plots import plot_experiment, plot_heads

matplotlib.use("Agg")


# --- the task ---------------------------------------------------------------------------------


def test_targets_on_a_hand_worked_row():
    # The example in the module docstring, worked out by hand.
    x = torch.tensor([[2, 0, 3, 2]])
    y = hx.targets_for(x)
    assert y.shape == (1, 4, 2)
    assert y[0, :, 0].tolist() == [3, 2, 2, 3]  # pointed: x[x[i]]
    assert y[0, :, 1].tolist() == [2, 2, 0, 3]  # previous: x[i-1], position 0 wraps to the end


def test_batches_are_what_the_task_says():
    g = torch.Generator().manual_seed(0)
    x, y = hx.make_batch(64, generator=g)
    assert x.shape == (64, hx.N) and y.shape == (64, hx.N, 2)
    assert x.dtype == torch.long and int(x.min()) >= 0 and int(x.max()) < hx.N
    for b in range(0, 64, 7):
        for i in range(hx.N):
            assert y[b, i, 0] == x[b, x[b, i]]
            assert y[b, i, 1] == x[b, (i - 1) % hx.N]
    # The two rules really pick different positions most of the time.
    pointer = x
    previous = (torch.arange(hx.N) - 1) % hx.N
    assert (pointer != previous).float().mean() > 0.8


def test_batches_are_seeded_and_the_evaluation_set_is_fixed():
    a = hx.make_batch(8, generator=torch.Generator().manual_seed(3))[0]
    b = hx.make_batch(8, generator=torch.Generator().manual_seed(3))[0]
    assert torch.equal(a, b)
    assert torch.equal(hx.evaluation_set()[0], hx.evaluation_set()[0])


def test_targets_reject_tokens_that_are_not_positions():
    with pytest.raises(ValueError, match="position"):
        hx.targets_for(torch.tensor([[0, 1, 4]]))


def test_rule_positions_and_example_rows():
    pointer, previous = hx.rule_positions([2, 0, 3, 2])
    assert pointer == [2, 0, 3, 2] and previous == [3, 0, 1, 2]
    rows = hx.example_rows()
    assert len(rows) >= 3
    assert all(len(r) == hx.N and all(0 <= t < hx.N for t in r) for r in rows.values())


# --- the model and training -------------------------------------------------------------------


@pytest.mark.parametrize("heads,layers,mlp", [(1, 1, False), (8, 1, False), (4, 2, False), (2, 1, True)])
def test_forward_shapes_and_weights(heads, layers, mlp):
    torch.manual_seed(0)
    model = hx.HeadsModel(heads, n_layers=layers, mlp=mlp)
    x, _ = hx.make_batch(3)
    assert model(x).shape == (3, hx.N, 2, hx.N)
    logits, weights = model(x, need_weights=True)
    assert logits.shape == (3, hx.N, 2, hx.N) and len(weights) == layers
    for w in weights:
        assert w.shape == (3, heads, hx.N, hx.N)
        torch.testing.assert_close(w.sum(-1), torch.ones(3, heads, hx.N))


def test_the_parameter_count_does_not_depend_on_the_heads():
    counts = {h: sum(p.numel() for p in hx.HeadsModel(h).parameters()) for h in (1, 2, 4, 8)}
    assert len(set(counts.values())) == 1


def test_model_rejects_a_row_of_the_wrong_length():
    with pytest.raises(ValueError, match="shape"):
        hx.HeadsModel(2)(torch.zeros(1, hx.N + 1, dtype=torch.long))


def test_a_few_training_steps_lower_the_loss():
    torch.manual_seed(0)
    model = hx.HeadsModel(2)
    data = hx.evaluation_set(size=200)
    before = hx.held_out_scores(model, data)[0]
    history = hx.train_heads_model(model, steps=40, eval_every=20, eval_data=data)
    assert history.steps == [0, 20, 40]
    assert history.loss[0] == pytest.approx(before)
    assert history.loss[-1] < before - 0.3


def test_loss_and_accuracy_counts_both_answers():
    targets = torch.tensor([[[1, 2], [0, 0]]])  # (batch 1, 2 positions, 2 answers)
    logits = torch.full((1, 2, 2, 3), -10.0)
    logits[0, 0, 0, 1] = logits[0, 0, 1, 2] = 10.0  # position 0: both right
    logits[0, 1, 0, 0] = logits[0, 1, 1, 1] = 10.0  # position 1: second answer wrong
    loss, acc = hx.loss_and_accuracy(logits, targets)
    assert acc == 0.5 and loss.item() > 1.0


def test_run_experiment_and_summary_and_plots():
    runs = hx.run_experiment(head_counts=(1, 2), seeds=(0, 1), steps=4, progress=False, eval_every=2,
                             eval_rows=50)
    assert [(r.heads, r.seed) for r in runs] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert runs[0].history.steps == [0, 2, 4]
    rows = hx.summarize(runs)
    assert [r["heads"] for r in rows] == [1, 2] and rows[1]["d_head"] == hx.D_MODEL // 2
    assert rows[0]["acc_min"] <= rows[0]["acc_mean"] <= rows[0]["acc_max"]
    assert torch.get_num_threads() >= 1  # the thread setting was restored (no exception on exit)
    fig = plot_experiment(runs)
    assert len(fig.axes) == 3
    plt.close(fig)
    fig = plot_heads(runs[-1].model, hx.example_rows()["random row A"])
    assert len(fig.axes) >= 2
    plt.close(fig)


def test_run_experiment_rejects_head_counts_that_do_not_divide_the_width():
    with pytest.raises(ValueError, match="divisible"):
        hx.run_experiment(head_counts=(3,), seeds=(0,), steps=1, progress=False)


def test_torch_threads_restores_the_setting():
    before = torch.get_num_threads()
    with hx.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_removing_a_head_changes_the_output_only_inside_the_block():
    torch.manual_seed(0)
    model = hx.HeadsModel(4).eval()
    x, _ = hx.make_batch(2)
    with torch.no_grad():
        full = model(x)
        with ablate_heads(model, 0, [1]):
            without = model(x)
        again = model(x)
    assert not torch.allclose(full, without)
    torch.testing.assert_close(full, again)


def test_weight_on_rules():
    row = [1, 2, 0]
    w = torch.zeros(3, 3)
    for i, j in enumerate(row):
        w[i, j] = 1.0  # a perfect pointer head
    on_pointer, on_previous = hx.weight_on_rules(w, row)
    assert on_pointer == 1.0 and on_previous == pytest.approx(0.0)


# --- the explorer -----------------------------------------------------------------------------


def make_explorer():
    torch.manual_seed(0)
    model = hx.HeadsModel(4, n_layers=2).eval()
    return AttentionExplorer(model, hx.example_rows(), marks=hx.rule_positions, describe=hx.describe_head)


def test_explorer_builds_with_a_choice_per_layer_and_head():
    explorer = make_explorer()
    assert len(explorer.layer_choice.options) == 2
    assert len(explorer.head_choice.options) == 4
    assert len(explorer.row_choice.options) == len(hx.example_rows())
    assert explorer.shown.shape == (hx.N, hx.N)
    assert "pointed" in explorer.caption and explorer.text.value == explorer.caption


def test_explorer_dropdowns_change_the_picture():
    explorer = make_explorer()
    seen = [explorer.shown.copy()]
    explorer.head_choice.value = 2
    seen.append(explorer.shown.copy())
    explorer.layer_choice.value = 1
    seen.append(explorer.shown.copy())
    explorer.row_choice.value = list(hx.example_rows())[2]
    seen.append(explorer.shown.copy())
    for a, b in zip(seen, seen[1:], strict=False):
        assert not (a == b).all()
    # What is shown is the model's own weights for that choice.
    row = hx.example_rows()[explorer.row_choice.value]
    with torch.no_grad():
        _, weights = explorer.model(torch.tensor([row]), need_weights=True)
    torch.testing.assert_close(torch.from_numpy(explorer.shown), weights[1][0, 2])


def test_explorer_needs_rows():
    with pytest.raises(ValueError, match="row"):
        AttentionExplorer(hx.HeadsModel(1), {})
