"""How many heads? A toy task that needs two things at once, a small model, and the experiment.

The task, "pointer and previous": a row of n numbers, each between 0 and n-1, so every number
can also be read as a position in the row (a pointer). At each position i the model must give
two answers:

    pointed   x[x[i]]    the number at the position that x[i] points to  (found by content)
    previous  x[i-1]     the number just before position i               (found by position)

The row is read as a circle: position 0's previous is position n-1. Example with n = 4:

    position   0  1  2  3
    x          2  0  3  2
    pointed    3  2  2  3     (x[2], x[0], x[3], x[2])
    previous   2  2  0  3     (x[3], x[0], x[1], x[2])

Every position needs two other positions at once, chosen by two different rules. One head
computes one weighted average of value vectors per position, so a single head must blend the
two tokens into one vector; a layer with two heads can fetch one each and keep them apart.

The model is deliberately small: token and position embeddings, n_layers attention layers
(utils.attention.MultiHeadAttention, no mask: every position sees the whole row) with residual
connections, an optional MLP, and a linear readout with two answers per position. With
mlp=False nothing but attention moves information between positions or untangles it, which is
what the experiment wants to isolate.

    run_experiment(head_counts=(1, 2, 4, 8), seeds=(0, 1, 2), steps=400)  -> list[Run]
    summarize(runs); the pictures: utils/views/how_many_heads_plots.py (plot_experiment, plot_heads)
"""

from __future__ import annotations

import contextlib
import statistics
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .attention import MultiHeadAttention

N = 16  # length of a row, and the number of distinct tokens (every token is also a position)
D_MODEL = 32  # the model width used in the lesson; divisible by 1, 2, 4 and 8
ANSWERS = ("pointed", "previous")


# --- the task ----------------------------------------------------------------------------------


def targets_for(x: torch.Tensor) -> torch.Tensor:
    """The two right answers for every position of x (batch, n): (batch, n, 2) = (pointed, previous)."""
    if x.dim() != 2:
        raise ValueError(f"x must have shape (batch, n), got {tuple(x.shape)}")
    n = x.shape[1]
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= n):
        raise ValueError(f"every token must be a position of the row, 0..{n - 1}; got {x.min()}..{x.max()}")
    pointed = torch.gather(x, 1, x)  # pointed[b, i] = x[b, x[b, i]]
    previous = torch.roll(x, shifts=1, dims=1)  # previous[b, i] = x[b, i - 1], wrapping around
    return torch.stack([pointed, previous], dim=-1)


def rule_positions(row: torch.Tensor | list[int]) -> tuple[list[int], list[int]]:
    """For one row, the position each rule picks for every i: (x[i], i - 1 wrapping around)."""
    row = torch.as_tensor(row)
    n = len(row)
    return [int(p) for p in row], [(i - 1) % n for i in range(n)]


def make_batch(
    batch_size: int, n: int = N, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random rows x (batch, n) of tokens 0..n-1, uniformly drawn, and their targets (batch, n, 2)."""
    x = torch.randint(0, n, (batch_size, n), generator=generator)
    return x, targets_for(x)


def evaluation_set(size: int = 500, n: int = N, seed: int = 1234) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed held-out set, drawn from its own generator so training never changes it."""
    return make_batch(size, n, torch.Generator().manual_seed(seed))


def example_rows(n: int = N, seed: int = 7) -> dict[str, list[int]]:
    """Named rows for pictures and the explorer: two random ones and three whose pointers form a
    pattern that is easy to recognise in an attention map."""
    g = torch.Generator().manual_seed(seed)
    return {
        "random row A": torch.randint(0, n, (n,), generator=g).tolist(),
        "random row B": torch.randint(0, n, (n,), generator=g).tolist(),
        "x[i] = i: every token points to itself": list(range(n)),
        "x[i] = i+1: every token points to the next": [(i + 1) % n for i in range(n)],
        f"x[i] = {n - 1}-i: pointers reversed": list(range(n - 1, -1, -1)),
    }


# --- the model ---------------------------------------------------------------------------------


class AttentionLayer(nn.Module):
    """x + attention(LayerNorm(x)), then optionally x + MLP(LayerNorm(x)): a transformer block
    whose MLP can be switched off."""

    def __init__(self, d_model: int, n_heads: int, mlp: bool):
        super().__init__()
        self.ln = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, n_heads)  # no mask: each position sees the whole row
        self.mlp = None
        if mlp:
            self.mlp = nn.Sequential(
                nn.LayerNorm(d_model), nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model)
            )

    def forward(self, x: torch.Tensor, need_weights: bool = False):
        if need_weights:
            a, weights = self.attn(self.ln(x), need_weights=True)
        else:
            a, weights = self.attn(self.ln(x)), None
        x = x + a
        if self.mlp is not None:
            x = x + self.mlp(x)
        return x, weights


class HeadsModel(nn.Module):
    """Embeddings -> n_layers attention layers -> LayerNorm -> two answers per position.

    forward(x) takes tokens (batch, n) and returns logits (batch, n, 2, n): for every position,
    scores over the n tokens for the pointed answer ([..., 0, :]) and the previous one ([..., 1, :]).
    With need_weights=True it also returns a list with each layer's attention weights
    (batch, heads, n, n).
    """

    def __init__(self, n_heads: int, d_model: int = D_MODEL, n_layers: int = 1, mlp: bool = False, n: int = N):
        super().__init__()
        self.n, self.d_model, self.n_heads, self.n_layers = n, d_model, n_heads, n_layers
        self.tok_emb = nn.Embedding(n, d_model)
        self.pos_emb = nn.Embedding(n, d_model)
        self.blocks = nn.ModuleList([AttentionLayer(d_model, n_heads, mlp) for _ in range(n_layers)])
        self.ln_f = nn.LayerNorm(d_model)
        self.readout = nn.Linear(d_model, len(ANSWERS) * n)  # a linear map: it cannot untangle a blend

    def forward(self, x: torch.Tensor, need_weights: bool = False):
        if x.dim() != 2 or x.shape[1] != self.n:
            raise ValueError(f"x must have shape (batch, {self.n}), got {tuple(x.shape)}")
        h = self.tok_emb(x) + self.pos_emb.weight
        all_weights = []
        for layer in self.blocks:
            h, weights = layer(h, need_weights=need_weights)
            all_weights.append(weights)
        logits = self.readout(self.ln_f(h)).view(x.shape[0], self.n, len(ANSWERS), self.n)
        return (logits, all_weights) if need_weights else logits


def loss_and_accuracy(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Cross-entropy summed over the two answers (averaged over positions), and the fraction of
    positions where BOTH answers are right."""
    n_classes = logits.shape[-1]
    loss = F.cross_entropy(logits.reshape(-1, n_classes), targets.reshape(-1)) * len(ANSWERS)
    both_right = (logits.argmax(-1) == targets).all(dim=-1)
    return loss, both_right.float().mean().item()


@torch.no_grad()
def held_out_scores(model: HeadsModel, data: tuple[torch.Tensor, torch.Tensor]) -> tuple[float, float]:
    """(loss, accuracy) on a fixed set, in eval mode."""
    was_training = model.training
    model.eval()
    loss, acc = loss_and_accuracy(model(data[0]), data[1])
    model.train(was_training)
    return loss.item(), acc


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with n CPU threads, then restore. The matrices here are tiny (16 x 32): on a
    2-core machine that is also busy, one thread was 2.7 times faster than two (benchmarks/bench_gpt.py
    --only busy), because the threads spend longer waiting for each other than computing."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class HeadsHistory:
    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)


def train_heads_model(
    model: HeadsModel,
    steps: int,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    eval_every: int = 25,
    eval_data: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> HeadsHistory:
    """Train on fresh random rows every step (an endless supply, so nothing can be memorised).

    Returns the held-out loss and accuracy at step 0, every eval_every steps, and at the end.
    """
    eval_data = eval_data if eval_data is not None else evaluation_set(n=model.n)
    g = torch.Generator().manual_seed(seed)  # the batches depend on the seed only
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    history = HeadsHistory()

    def record(step):
        loss, acc = held_out_scores(model, eval_data)
        history.steps.append(step)
        history.loss.append(loss)
        history.accuracy.append(acc)

    model.train()
    record(0)
    for step in range(1, steps + 1):
        x, y = make_batch(batch_size, model.n, g)
        loss, _ = loss_and_accuracy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % eval_every == 0 or step == steps:
            record(step)
    model.eval()
    return history


# --- the experiment ----------------------------------------------------------------------------


@dataclass
class Run:
    heads: int
    seed: int
    history: HeadsHistory
    model: HeadsModel

    @property
    def final_accuracy(self) -> float:
        return self.history.accuracy[-1]

    @property
    def final_loss(self) -> float:
        return self.history.loss[-1]


def run_experiment(
    head_counts=(1, 2, 4, 8),
    seeds=(0, 1, 2),
    steps: int = 400,
    d_model: int = D_MODEL,
    n_layers: int = 1,
    mlp: bool = False,
    progress: bool = True,
    threads: int | None = 1,
    eval_rows: int = 500,
    **train_kwargs,
) -> list[Run]:
    """Train one model per (head count, seed) at the same width d_model and return every run.

    Only the number of heads changes between models: same width, same data, same steps, same
    learning rate, and the same parameter count (4 d_model^2 + 4 d_model per attention layer,
    whatever the number of heads). Seed s fixes both the initial weights and the batches.
    Accuracy and loss are measured on the same eval_rows held-out rows for every run.
    """
    from tqdm.auto import tqdm

    for h in head_counts:
        if d_model % h:
            raise ValueError(f"d_model={d_model} is not divisible by {h} heads; pick a width divisible by all counts")
    jobs = [(h, s) for h in head_counts for s in seeds]
    runs = []
    eval_data = evaluation_set(eval_rows)
    with torch_threads(threads):
        for h, s in tqdm(jobs, desc="training", disable=not progress):
            torch.manual_seed(s)
            model = HeadsModel(h, d_model=d_model, n_layers=n_layers, mlp=mlp)
            history = train_heads_model(model, steps, seed=s, eval_data=eval_data, **train_kwargs)
            runs.append(Run(h, s, history, model))
    return runs


def summarize(runs: list[Run]) -> list[dict]:
    """One row per head count: mean, min and max over seeds of the final accuracy and loss."""
    rows = []
    for h in sorted({r.heads for r in runs}):
        mine = [r for r in runs if r.heads == h]
        acc = [r.final_accuracy for r in mine]
        loss = [r.final_loss for r in mine]
        rows.append(dict(heads=h, d_head=mine[0].model.d_model // h, seeds=len(mine),
                         acc_mean=statistics.fmean(acc), acc_min=min(acc), acc_max=max(acc),
                         loss_mean=statistics.fmean(loss), loss_min=min(loss), loss_max=max(loss),
                         steps_to_99=[steps_to_reach(r, 0.99) for r in mine]))
    return rows


def print_summary(runs: list[Run]) -> None:
    """The table of summarize(): accuracy and loss after training, and how soon each seed reached 99%."""
    print("heads  d_head   both answers right          held-out loss           step where each seed")
    print("                mean   (min - max)          mean   (min - max)      first reached 99%")
    for r in summarize(runs):
        reached = ", ".join("never" if s is None else str(s) for s in r["steps_to_99"])
        print(f"{r['heads']:>5}  {r['d_head']:>6}  {r['acc_mean']:>6.1%}  ({r['acc_min']:.1%} - {r['acc_max']:.1%})"
              f"  {r['loss_mean']:>7.3f}  ({r['loss_min']:.3f} - {r['loss_max']:.3f})    {reached}")


def steps_to_reach(run: Run, level: float = 0.99) -> int | None:
    """The first evaluated step at which the held-out accuracy reached `level` (None if never)."""
    for step, acc in zip(run.history.steps, run.history.accuracy, strict=True):
        if acc >= level:
            return step
    return None


def weight_on_rules(weights, row) -> tuple[float, float]:
    """How much of one head's attention (n, n) goes where each rule looks, averaged over queries:
    (share on the position x[i] points to, share on the previous position). When both rules pick
    the same position, that weight counts for both."""
    w = torch.as_tensor(weights)
    pointer, previous = rule_positions(row)
    i = torch.arange(w.shape[0])
    return w[i, pointer].mean().item(), w[i, previous].mean().item()


def describe_head(weights, row, logits) -> str:
    """One line of HTML for the explorer: where this head looks and how the model answers this row."""
    on_pointer, on_previous = weight_on_rules(weights, row)
    right = (logits.argmax(-1) == targets_for(torch.as_tensor(row).view(1, -1))[0]).sum(0)
    n = len(row)
    return (f"This head puts on average <b>{on_pointer:.0%}</b> of its weight on the position x[i] points to "
            f"(○) and <b>{on_previous:.0%}</b> on the previous position (×).<br>"
            f"The model's answers on this row: pointed {int(right[0])}/{n} right, previous {int(right[1])}/{n} right.")


@torch.no_grad()
def answer_accuracy(model: HeadsModel, data: tuple[torch.Tensor, torch.Tensor]) -> tuple[float, float]:
    """Accuracy of each answer on its own: (pointed right, previous right)."""
    model.eval()
    right = (model(data[0]).argmax(-1) == data[1]).float()  # (batch, n, 2)
    return right[..., 0].mean().item(), right[..., 1].mean().item()
