"""Checks for the exercises of lesson 05 (LayerNorm, the transformer block, the whole GPT, its size).

The references come from torch and utils.model, never from the solution notebook. The modules the
checks hand to an answer have random weights (LayerNorm gains included), so that mixing up two
pieces changes the result, and their own forward is switched off, so that an answer has to be
built from the parts rather than call the module it is rebuilding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..model import GPT, Block, GPTConfig
from .core import Case, run_cases, seeded_randint, seeded_randn

__all__ = ["check_layer_norm", "check_block_forward", "check_count_parameters", "check_gpt_forward"]


def _layer_norm(x, gamma, beta, eps):
    return F.layer_norm(x, (x.shape[-1],), gamma, beta, eps)


def check_layer_norm(layer_norm) -> None:
    """Exercise 5.1: LayerNorm over the last dim, with gain gamma, shift beta and eps."""
    run_cases(
        "layer_norm",
        layer_norm,
        _layer_norm,
        [
            Case(
                (torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.ones(4), torch.zeros(4), 1e-5),
                hint="Mean 2.5 and variance 1.25: divide the squared deviations by d = 4, not by d - 1 = 3 "
                "(x.var(dim=-1) divides by d - 1 unless you pass unbiased=False or correction=0).",
            ),
            Case(
                (seeded_randn(3, 8, seed=1) * 5 + 3, seeded_randn(8, seed=2), seeded_randn(8, seed=3), 1e-5),
                hint="Each row (one token vector) is normalised on its own: take the mean and variance over "
                "the last dim with keepdim=True, so that they broadcast against x. Then multiply by gamma and "
                "add beta.",
            ),
            Case(
                (seeded_randn(2, 4, 6, seed=4), seeded_randn(6, seed=5), seeded_randn(6, seed=6), 1e-5),
                hint="x may have any number of leading dims (batch, n, d): reduce over dim=-1 only.",
            ),
            Case(
                (torch.full((2, 5), 7.0), seeded_randn(5, seed=7), seeded_randn(5, seed=8), 1e-5),
                hint="A constant vector has variance 0, so x - mean is 0 and the answer is beta. eps keeps the "
                "division finite: divide by sqrt(var + eps).",
            ),
            Case(
                (seeded_randn(2, 6, seed=9) * 0.3, torch.ones(6), torch.zeros(6), 0.5),
                hint="Use the eps you are given, inside the square root: sqrt(var + eps), not sqrt(var) + eps.",
            ),
        ],
        hint="mean and var over the last dim (keepdim=True, var divided by d); "
        "return gamma * (x - mean) / sqrt(var + eps) + beta.",
        atol=1e-5,
    )


def _refuse(what: str, parts: str):
    def forward(*args, **kwargs):
        raise RuntimeError(f"this exercise rebuilds {what}, so calling {what}(...) itself is switched off "
                           f"here: use its parts ({parts}).")
    return forward


@torch.no_grad()
def _randomise(module: torch.nn.Module, seed: int) -> None:
    """Random weights everywhere: LayerNorm gains near 1, shifts and biases near 0, matrices ~ 1/sqrt(fan_in)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in module.named_parameters():
        noise = torch.randn(p.shape, generator=g)
        if "ln" in name and name.endswith("weight"):
            p.copy_(1.0 + 0.3 * noise)
        elif p.dim() == 1:
            p.copy_(0.1 * noise)
        else:
            p.copy_(noise / math.sqrt(p.shape[-1]))


def _block(n_embd: int, n_head: int, bias: bool, seed: int) -> Block:
    with torch.random.fork_rng():  # building a module draws random numbers; keep the learner's stream intact
        block = Block(GPTConfig(n_embd=n_embd, n_head=n_head, bias=bias))
    _randomise(block, seed)
    block.eval()
    block.forward = _refuse("block", "block.ln1, block.attn, block.ln2, block.mlp")
    return block


def _block_reference(block: Block, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return Block.forward(block, x)[0]  # the class's forward, not the switched-off one


def check_block_forward(block_forward) -> None:
    """Exercise 5.2: the pre-LayerNorm block, x + attn(ln1(x)), then x + mlp(ln2(x))."""
    small = _block(16, 2, bias=False, seed=1)
    wide = _block(24, 3, bias=True, seed=2)
    one_head = _block(8, 1, bias=False, seed=3)
    run_cases(
        "block_forward",
        block_forward,
        _block_reference,
        [
            Case(
                (small, seeded_randn(2, 5, 16, seed=4)),
                label="block_forward(Block(n_embd=16, n_head=2), x of shape (2, 5, 16))",
                hint="Two residual steps, each adding to x: first x = x + block.attn(block.ln1(x)), then "
                "x = x + block.mlp(block.ln2(x)). The LayerNorm only prepares the branch's input; the residual "
                "adds the branch's output to x itself. The second step reads the x that the first one updated.",
            ),
            Case(
                (small, seeded_randn(1, 1, 16, seed=5)),
                label="block_forward(the same block, x of shape (1, 1, 16)): a single token",
            ),
            Case(
                (wide, seeded_randn(3, 7, 24, seed=6)),
                label="block_forward(Block(n_embd=24, n_head=3, bias=True), x of shape (3, 7, 24))",
                hint="Each sub-layer has its own LayerNorm: block.ln1 before attention, block.ln2 before the MLP. "
                "The LayerNorm goes inside the branch (pre-LN), not around the sum: x + f(ln(x)), not ln(x + f(x)).",
            ),
            Case(
                (one_head, seeded_randn(2, 6, 8, seed=7)),
                label="block_forward(Block(n_embd=8, n_head=1), x of shape (2, 6, 8))",
            ),
        ],
        hint="x = x + block.attn(block.ln1(x)); x = x + block.mlp(block.ln2(x)); return x (a tensor of the same "
        "shape as the input, not a tuple).",
    )


def _count_reference(vocab_size: int, context_length: int, n_layer: int, n_embd: int) -> int:
    config = GPTConfig(vocab_size=vocab_size, context_length=context_length, n_layer=n_layer, n_head=1, n_embd=n_embd,
                       bias=False)
    with torch.random.fork_rng():
        return GPT(config).num_parameters()


def check_count_parameters(count_parameters) -> None:
    """Exercise 5.3: the parameter count of a GPT with bias=False and tied weights, by formula."""
    shape = {}

    def reference(vocab_size, context_length, n_layer, n_embd):
        shape.update(V=vocab_size, T=context_length, L=n_layer, d=n_embd)  # for compare's diagnosis
        return _count_reference(vocab_size, context_length, n_layer, n_embd)

    def compare(expected, got):
        if isinstance(got, bool) or not isinstance(got, (int, float)) or got != int(got):
            return f"expected a whole number, got {got!r}"
        off = int(got) - expected
        if off == 0:
            return None
        V, T, L, d = shape["V"], shape["T"], shape["L"], shape["d"]
        known = {
            V * d: "the head shares the token embedding's V x d matrix (weight tying): count it once",
            -T * d: "the position embedding (context_length x n_embd) is missing",
            -V * d: "the token embedding (vocab_size x n_embd) is missing",
            -d: "the final LayerNorm's d gains are missing",
            -2 * L * d: "each block's two LayerNorms (d gains each) are missing",
            -(2 * L + 1) * d: "the LayerNorms are missing (two per block and a final one, d gains each)",
            (2 * L + 1) * d: "bias=False: the LayerNorms have gains only, no shifts",
        }
        return f"off by {off:+,}" + (f": {known[off]}" if off in known else "")

    run_cases(
        "count_parameters",
        count_parameters,
        reference,
        [
            Case((65, 64, 4, 128)),
            Case((10, 8, 1, 16)),
            Case((1000, 32, 2, 32)),
            Case((7, 100, 3, 8)),
            Case(
                (50257, 1024, 12, 768),
                hint="GPT-2 small's shape without biases: 124,337,664. (With biases it is the famous 124,439,808.)",
            ),
        ],
        hint="Per block: attention 4 d^2 (q, k, v and out, no biases), MLP 8 d^2 (d x 4d and 4d x d), two "
        "LayerNorm gains of d each. Around the blocks: token table V d, position table T d, final LayerNorm d; "
        "the head is the token table again.",
        compare=compare,
    )


def _gpt(seed: int, tie_weights: bool = True, **config) -> GPT:
    with torch.random.fork_rng():
        model = GPT(GPTConfig(tie_weights=tie_weights, **config))
    _randomise(model, seed)
    model.eval()
    model.forward = _refuse("model", "model.tok_emb, model.pos_emb, model.blocks, model.ln_f, model.head")
    return model


def _gpt_reference(model: GPT, idx: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return GPT.forward(model, idx)[0]


def check_gpt_forward(gpt_forward) -> None:
    """Exercise 5.4: the whole model's forward pass, token ids -> logits."""
    model = _gpt(1, vocab_size=11, context_length=8, n_layer=2, n_head=2, n_embd=16)
    untied = _gpt(2, tie_weights=False, vocab_size=13, context_length=10, n_layer=3, n_head=2, n_embd=8)
    run_cases(
        "gpt_forward",
        gpt_forward,
        _gpt_reference,
        [
            Case(
                (model, seeded_randint(0, 11, (2, 8), seed=3)),
                label="gpt_forward(GPT(vocab 11, context 8, 2 layers, d 16), ids of shape (2, 8))",
                hint="x = model.tok_emb(idx) + model.pos_emb(positions), then every block in model.blocks, "
                "then model.ln_f, then model.head. A block returns a pair (x, weights): keep x.",
            ),
            Case(
                (model, seeded_randint(0, 11, (3, 5), seed=4)),
                label="gpt_forward(the same model, ids of shape (3, 5)): shorter than the context",
                hint="A sequence of n tokens uses positions 0 .. n-1: model.pos_emb(torch.arange(n)) with "
                "n = idx.shape[1], not context_length.",
            ),
            Case(
                (model, seeded_randint(0, 11, (1, 1), seed=5)),
                label="gpt_forward(the same model, ids of shape (1, 1)): one token",
            ),
            Case(
                (untied, seeded_randint(0, 13, (2, 6), seed=6)),
                label="gpt_forward(GPT with tie_weights=False, 3 layers, d 8, ids of shape (2, 6))",
                hint="Use model.head for the scores. Here it is not tied to the token embedding, so "
                "x @ model.tok_emb.weight.T gives other numbers. And do not forget the final LayerNorm, model.ln_f.",
            ),
        ],
        hint="logits (batch, n, vocab_size) = model.head(model.ln_f(x)), where x went through "
        "tok_emb + pos_emb and every block.",
    )
