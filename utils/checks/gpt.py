"""Checks for the exercises of lesson 05 (LayerNorm, the block pre-LN and post-LN, the parameter count,
the logit lens, gradient norms through depth).

The references come from torch and utils.model, never from the solution notebook. The modules the
checks hand to an answer have random weights (LayerNorm gains included), so that mixing up two
pieces changes the result. While an answer runs, the module it rebuilds cannot be called (neither
`block(x)` nor `Block.forward(block, x)`), so that it has to be built from the parts.
"""

from __future__ import annotations

import math
from unittest import mock

import torch
import torch.nn.functional as F
from torch import nn

from ..model import GPT, Block, GPTConfig
from .core import Case, Mistake, built_aside, run_cases, seeded_randint, seeded_randn
from .hints import exercise
from .rules import NoAttribute, NoTorchCall

__all__ = ["check_layer_norm", "check_block_forward", "check_count_parameters", "check_logit_lens",
           "check_block_gradient_norms"]

_NO_BLOCK = NoAttribute(Block, "forward", "build the block from its parts (block.ln1, block.attn, block.ln2, "
                        "block.mlp); calling the block itself is what the check compares with.")
_NO_GPT = NoAttribute(GPT, "forward", "build the pass from the model's parts (model.tok_emb, model.pos_emb, "
                      "model.blocks, model.ln_f, model.head).")


# --- 5.1 LayerNorm ---------------------------------------------------------------------------------


def _layer_norm(x, gamma, beta, eps):
    return F.layer_norm(x, (x.shape[-1],), gamma, beta, eps)


def _normalised(x, eps, correction=0, eps_inside=True, dim=-1):
    mean = x.mean(dim=dim, keepdim=True)
    var = x.var(dim=dim, keepdim=True, correction=correction)
    return (x - mean) / (torch.sqrt(var + eps) if eps_inside else torch.sqrt(var) + eps)


@exercise("5.1", "LayerNorm by hand", "easy", 10, hints=(
    "LayerNorm works on each vector on its own: subtract that vector's mean, divide by its standard deviation "
    "(with eps added to the variance, so that a constant vector does not divide by 0), then apply the gain "
    "gamma and the shift beta feature by feature.",
    "Take the mean and the variance over the last dim only, keeping that dim (keepdim=True) so that they "
    "broadcast against x. The variance divides by d, not d - 1: torch's .var() divides by d - 1 unless told "
    "otherwise (correction=0).",
    "With mean = x.mean(dim=-1, keepdim=True) and the variance of x - mean over the same dim, the result is "
    "gamma times (x - mean) divided by the square root of (var + eps), plus beta.",
))
def check_layer_norm(layer_norm) -> None:
    """Exercise 5.1: LayerNorm over the last dim, with gain gamma, shift beta and eps."""
    run_cases(
        "layer_norm",
        layer_norm,
        _layer_norm,
        [
            Case((torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.ones(4), torch.zeros(4), 1e-5),
                 hint="One vector of 4, gamma 1 and beta 0: its mean is 2.5 and its variance 1.25 (the squared "
                 "deviations divided by d = 4)."),
            Case((seeded_randn(3, 8, seed=1) * 5 + 3, seeded_randn(8, seed=2), seeded_randn(8, seed=3), 1e-5),
                 hint="Three vectors: each row is normalised with its own mean and variance, then every feature "
                 "gets its own gain and shift."),
            Case((seeded_randn(2, 4, 6, seed=4), seeded_randn(6, seed=5), seeded_randn(6, seed=6), 1e-5),
                 hint="x has shape (batch, n, d): the statistics are over the last dim only."),
            Case((torch.full((2, 5), 7.0), seeded_randn(5, seed=7), seeded_randn(5, seed=8), 1e-5),
                 hint="A constant vector has variance 0, so every x - mean is 0 and the answer is beta: eps is "
                 "what keeps this finite."),
            Case((seeded_randn(2, 6, seed=9) * 0.3, torch.ones(6), torch.zeros(6), 0.5),
                 hint="A large eps (0.5) on small vectors: it shows whether the eps you are given is used, and "
                 "where."),
        ],
        hint="Each vector: minus its own mean, divided by its own standard deviation with eps, then gain and shift.",
        atol=1e-5,
        exercise="5.1",
        rules=[NoTorchCall((F.layer_norm, torch.layer_norm, torch.native_layer_norm),
                           "compute the mean and the variance yourself (nn.LayerNorm calls F.layer_norm too).")],
        mistakes=[
            Mistake(lambda x, g, b, eps: g * _normalised(x, eps, correction=1) + b,
                    "the variance was divided by d - 1 (torch's default for .var() and .std()); LayerNorm "
                    "divides by d."),
            Mistake(lambda x, g, b, eps: g * _normalised(x, eps, eps_inside=False) + b,
                    "eps was added to the standard deviation; it belongs inside the square root, added to the "
                    "variance."),
            Mistake(lambda x, g, b, eps: g * _normalised(x, 0.0) + b,
                    "there is no eps: a constant vector has variance 0, and 0 / 0 gives NaN."),
            Mistake(lambda x, g, b, eps: g * _normalised(x, 1e-5) + b,
                    "eps is fixed at 1e-5 instead of the eps argument."),
            Mistake(lambda x, g, b, eps: b * _normalised(x, eps) + g, "gamma and beta are swapped: gamma multiplies, "
                    "beta is added."),
            Mistake(lambda x, g, b, eps: g * ((x - x.mean()) / torch.sqrt(x.var(correction=0) + eps)) + b,
                    "the mean and variance were taken over the whole tensor; each vector (each row of the last "
                    "dim) is normalised on its own."),
            Mistake(lambda x, g, b, eps: _normalised(x, eps),
                    "gamma and beta were not applied: after normalising, multiply by gamma and add beta."),
        ],
    )


# --- The modules the checks hand to answers ----------------------------------------------------------


@torch.no_grad()
def _randomise(module: nn.Module, seed: int) -> None:
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
    block = built_aside(lambda: Block(GPTConfig(n_embd=n_embd, n_head=n_head, bias=bias)))
    _randomise(block, seed)
    return block.eval()


def _gpt(seed: int, tie_weights: bool = True, **config) -> GPT:
    model = built_aside(lambda: GPT(GPTConfig(tie_weights=tie_weights, **config)))
    _randomise(model, seed)
    return model.eval()


# --- 5.2 the block, pre-LN and post-LN --------------------------------------------------------------


def _post_ln(block: Block, x: torch.Tensor) -> torch.Tensor:
    """The original Transformer's block, from utils.model's parts: LayerNorm after each residual sum."""
    x = block.ln1(x + block.attn(x))
    return block.ln2(x + block.mlp(x))


@torch.no_grad()
def _block_reference(block: Block, x: torch.Tensor, post_ln: bool = False) -> torch.Tensor:
    return _post_ln(block, x) if post_ln else Block.forward(block, x)[0]


def _pre_ln_variant(second_reads_old_x=False, swapped=False, attn_residual=True):
    def block_forward(block, x, post_ln=False):
        ln_a, ln_b = (block.ln2, block.ln1) if swapped else (block.ln1, block.ln2)
        h = (x if attn_residual else 0) + block.attn(ln_a(x))
        return h + block.mlp(ln_b(x if second_reads_old_x else h))
    return block_forward


def _post_ln_variant(norm_branch=False, second_reads_old_x=False, swapped=False):
    def block_forward(block, x, post_ln=False):
        if not post_ln:
            return _block_reference(block, x)
        ln_a, ln_b = (block.ln2, block.ln1) if swapped else (block.ln1, block.ln2)
        if norm_branch:  # the LayerNorm on the branch's output, the residual sum left alone
            h = x + ln_a(block.attn(x))
            return h + ln_b(block.mlp(h))
        h = ln_a(x + block.attn(x))
        return ln_b(h + block.mlp(x if second_reads_old_x else h))
    return block_forward


_PRE_AS_POST = ("post_ln=True gave the pre-LN block: in post-LN the LayerNorm comes after each residual sum, "
                "on the stream itself, and the branches read the stream un-normalised.")


@exercise("5.2", "The block, pre-LN and post-LN", "medium", 20, hints=(
    "Both arrangements have the same parts and two residual sums, attention first and the MLP second. They "
    "differ only in where each LayerNorm sits: pre-LN normalises the copy that enters a branch and adds the "
    "branch to the un-normalised stream; post-LN adds first and normalises the sum.",
    "Pre-LN: the stream plus attention of its normalised copy (ln1), then the new stream plus the MLP of its "
    "normalised copy (ln2). Post-LN: ln1 of the stream plus attention of the stream, then ln2 of that plus the "
    "MLP of it. In both, the MLP step reads the stream the attention step produced.",
    "Pre-LN: x = x + block.attn(block.ln1(x)), then the same with block.mlp and block.ln2. Post-LN: wrap each "
    "sum instead, block.ln1(x + block.attn(x)), then block.ln2(... + block.mlp(...)) of the result.",
))
def check_block_forward(block_forward) -> None:
    """Exercise 5.2: a block's output from its parts, pre-LN (utils.model.Block) or post-LN."""
    small = _block(16, 2, bias=False, seed=1)
    wide = _block(24, 3, bias=True, seed=2)
    one_head = _block(8, 1, bias=False, seed=3)
    run_cases(
        "block_forward",
        block_forward,
        _block_reference,
        [
            Case((small, seeded_randn(2, 5, 16, seed=4)),
                 label="block_forward(Block(n_embd=16, n_head=2), x of shape (2, 5, 16)): pre-LN",
                 hint="Pre-LN: each LayerNorm only prepares a branch's input; the residual adds the branch's "
                 "output to the stream itself, and the MLP step reads the stream after the attention step."),
            Case((small, seeded_randn(1, 1, 16, seed=5)),
                 label="block_forward(the same block, x of shape (1, 1, 16)): pre-LN, a single token"),
            Case((wide, seeded_randn(3, 7, 24, seed=6)),
                 label="block_forward(Block(n_embd=24, n_head=3, bias=True), x of shape (3, 7, 24)): pre-LN",
                 hint="Each sub-layer has its own LayerNorm (ln1 before attention, ln2 before the MLP), and "
                 "their gains differ here, so swapping them shows."),
            Case((one_head, seeded_randn(2, 6, 8, seed=7)),
                 label="block_forward(Block(n_embd=8, n_head=1), x of shape (2, 6, 8)): pre-LN"),
            Case((small, seeded_randn(2, 5, 16, seed=8)), {"post_ln": True},
                 label="block_forward(Block(n_embd=16, n_head=2), x of shape (2, 5, 16), post_ln=True)",
                 hint="Post-LN: the branches read the stream as it is, and each LayerNorm normalises the residual "
                 "sum, so the block's output is the output of ln2."),
            Case((wide, seeded_randn(3, 7, 24, seed=9)), {"post_ln": True},
                 label="block_forward(Block(n_embd=24, n_head=3, bias=True), x of shape (3, 7, 24), post_ln=True)",
                 hint="Post-LN with biases: ln1 after the attention sum, ln2 after the MLP sum; the MLP reads "
                 "the output of ln1."),
        ],
        hint="Compare the order of the steps with the statement: which tensor each branch reads, what the "
        "residual adds to, and where each LayerNorm sits.",
        exercise="5.2",
        rules=[_NO_BLOCK],
        mistakes=[
            Mistake(lambda block, x, post_ln=False: _post_ln(block, x),
                    "this is the post-LN block (a LayerNorm after each sum), but post_ln=False asks for pre-LN, "
                    "as in utils.model.Block: normalise the copy that enters each branch, not the sum."),
            Mistake(lambda block, x, post_ln=False: _block_reference(block, x), _PRE_AS_POST),
            Mistake(_pre_ln_variant(second_reads_old_x=True), "the MLP step read the block's input instead of "
                    "the stream after the attention step."),
            Mistake(_pre_ln_variant(swapped=True), "ln1 and ln2 are swapped: ln1 prepares attention's input, ln2 "
                    "the MLP's."),
            Mistake(_pre_ln_variant(attn_residual=False), "the attention step replaced the stream instead of adding "
                    "to it: the residual keeps x and adds the branch's output."),
            Mistake(_post_ln_variant(norm_branch=True), "post-LN normalises the residual sum, not the branch's "
                    "output: the LayerNorm goes around stream + branch."),
            Mistake(_post_ln_variant(second_reads_old_x=True), "in post-LN the MLP step read the block's input "
                    "instead of the output of ln1."),
            Mistake(_post_ln_variant(swapped=True), "ln1 and ln2 are swapped: ln1 normalises the attention sum, ln2 "
                    "the MLP sum."),
        ],
    )


# --- 5.3 the parameter count -----------------------------------------------------------------------


def _count_reference(vocab_size: int, context_length: int, n_layer: int, n_embd: int) -> int:
    config = GPTConfig(vocab_size=vocab_size, context_length=context_length, n_layer=n_layer, n_head=1, n_embd=n_embd,
                       bias=False)
    # Shapes only, on the meta device: GPT-2 small's 124 M numbers are never allocated. Its random init is
    # skipped too: normal_ on a meta tensor imports torch's compiler the first time, about 3 s.
    with torch.device("meta"), mock.patch.object(nn.init, "normal_", lambda tensor, *args, **kwargs: tensor):
        return GPT(config).num_parameters()


@exercise("5.3", "The parameter count", "easy", 10, hints=(
    "Go through the model part by part: the two embedding tables, each block (attention, MLP, two LayerNorms), "
    "the final LayerNorm and the head. With bias=False only weight matrices and LayerNorm gains remain.",
    "Attention has four d x d matrices; the MLP a d x 4d and a 4d x d matrix; a LayerNorm without a shift has "
    "d gains. The tables are V x d and T x d. The head is tied: it is the token table itself, counted once.",
    "Per block 12 d^2 + 2 d; around the blocks V d + T d for the tables and d for the final LayerNorm.",
))
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
            -4 * L * d * d: "each block's MLP holds 8 d^2 (d x 4d and 4d x d), twice its attention's 4 d^2",
            -L * d * d: "attention has four d x d matrices per block: W^Q, W^K, W^V and the output W^O",
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
            Case((50257, 1024, 12, 768),
                 hint="GPT-2 small's shape without biases: 124,337,664. (With biases it is the famous 124,439,808.)"),
        ],
        hint="Count every part once: two tables, four attention matrices and two MLP matrices per block, the "
        "LayerNorm gains, and a head that is the token table itself.",
        compare=compare,
        exercise="5.3",
        rules=[NoAttribute(nn.Module, "__init__", "count by formula: building the model and counting its "
                           "parameters is what the check does, not the exercise.")],
    )


# --- 5.4 the logit lens ------------------------------------------------------------------------------


def _readings(model: GPT, idx: torch.Tensor, read=None) -> torch.Tensor:
    """Logits read from the residual stream after the embeddings and after every block (the logit lens)."""
    read = read or (lambda x: model.head(model.ln_f(x)))
    n = idx.shape[1]
    x = model.tok_emb(idx) + model.pos_emb(torch.arange(n))
    readings = [read(x)]
    for block in model.blocks:
        x = Block.forward(block, x)[0]
        readings.append(read(x))
    return torch.stack(readings)


@torch.no_grad()
def _lens_reference(model: GPT, idx: torch.Tensor) -> torch.Tensor:
    return _readings(model, idx)


@exercise("5.4", "The logit lens", "medium", 20, hints=(
    "Run the model's forward pass from its parts, and at every stage of the residual stream (after the "
    "embeddings, after each block) read it out as the final layers would: the final LayerNorm, then the head.",
    "x starts as the token embedding plus the position embedding of positions 0 .. n-1; each block returns a "
    "pair, of which the first item is the new stream. Read out before the first block and after every block, "
    "n_layer + 1 readings, and stack them along a new first dim.",
    "Each reading is model.head(model.ln_f(x)); collect them in a list and torch.stack it. The positions are "
    "torch.arange(idx.shape[1]).",
))
def check_logit_lens(logit_lens) -> None:
    """Exercise 5.4: the logits the model would give after the embeddings and after every block."""
    model = _gpt(1, vocab_size=11, context_length=8, n_layer=2, n_head=2, n_embd=16)
    untied = _gpt(2, tie_weights=False, vocab_size=13, context_length=10, n_layer=3, n_head=2, n_embd=8)
    run_cases(
        "logit_lens",
        logit_lens,
        _lens_reference,
        [
            Case((model, seeded_randint(0, 11, (2, 8), seed=3)),
                 label="logit_lens(GPT(vocab 11, context 8, 2 layers, d 16), ids of shape (2, 8))",
                 hint="Three readings for two blocks: after the embeddings, after block 1 and after block 2, each "
                 "read through the final LayerNorm and the head. The last one is the model's own logits."),
            Case((model, seeded_randint(0, 11, (3, 5), seed=4)),
                 label="logit_lens(the same model, ids of shape (3, 5)): shorter than the context",
                 hint="A sequence of n tokens uses the position rows 0 .. n-1, not all context_length of them."),
            Case((model, seeded_randint(0, 11, (1, 1), seed=5)),
                 label="logit_lens(the same model, ids of shape (1, 1)): one token"),
            Case((untied, seeded_randint(0, 13, (2, 6), seed=6)),
                 label="logit_lens(GPT with tie_weights=False, 3 layers, d 8, ids of shape (2, 6))",
                 hint="An untied model: the scores come from model.head, which here is not the token table."),
        ],
        hint="Every reading goes through the same final LayerNorm and head; the readings are stacked in the "
        "order of the stream, embeddings first.",
        exercise="5.4",
        rules=[_NO_GPT],
        mistakes=[
            Mistake(lambda m, idx: _readings(m, idx, read=lambda x: m.head(x)),
                    "the readings skipped the final LayerNorm: read every stage as the model reads its last one, "
                    "through model.ln_f and then model.head."),
            Mistake(lambda m, idx: _readings(m, idx)[1:],
                    "the reading of the embeddings, before the first block, is missing: n_layer + 1 readings."),
            Mistake(lambda m, idx: _readings(m, idx, read=lambda x: m.ln_f(x) @ m.tok_emb.weight.T),
                    "the scores came from the token table (tok_emb.weight); use model.head, which is a different "
                    "matrix when the weights are untied."),
        ],
    )


# --- 5.5 gradient norms through depth, pre-LN against post-LN ---------------------------------------------


def _stack_loss(model: GPT, idx, targets, post_ln: bool, final_ln: bool = True, reduction: str = "mean"):
    x = model.tok_emb(idx) + model.pos_emb(torch.arange(idx.shape[1]))
    for block in model.blocks:
        x = _post_ln(block, x) if post_ln else Block.forward(block, x)[0]
    logits = model.head(model.ln_f(x) if final_ln else x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction=reduction)


def _block_grads(model: GPT, loss) -> list[list[torch.Tensor]]:
    """The gradient of the loss for each block's parameters, without touching any .grad."""
    params = [list(block.parameters()) for block in model.blocks]
    flat = torch.autograd.grad(loss, [p for block in params for p in block])
    out, at = [], 0
    for block in params:
        out.append(list(flat[at:at + len(block)]))
        at += len(block)
    return out


def _norms(grads, combine="total") -> torch.Tensor:
    if combine == "sum of norms":
        return torch.tensor([sum(g.norm().item() for g in block) for block in grads])
    squares = torch.tensor([sum(g.double().square().sum().item() for g in block) for block in grads])
    return (squares if combine == "squared" else squares.sqrt()).float()


def _norms_reference(model, idx, targets, post_ln=False, final_ln=True, reduction="mean", combine="total",
                     stale=False):
    loss = _stack_loss(model, idx, targets, post_ln, final_ln, reduction)
    grads = _block_grads(model, loss)
    if stale:  # what loss.backward() gives on top of gradients left in .grad
        grads = [[g + (p.grad if p.grad is not None else 0) for g, p in zip(block_g, block.parameters(), strict=True)]
                 for block_g, block in zip(grads, model.blocks, strict=True)]
    return _norms(grads, combine)


def _measured(answer, n_layer: int, post_ln: bool, seed: int, leftovers: bool, tie_weights: bool = True):
    """Call the answer on a fresh model (random weights, maybe old gradients in .grad) and a fresh batch."""
    model = _gpt(seed, tie_weights=tie_weights, vocab_size=13, context_length=8, n_layer=n_layer, n_head=2, n_embd=16)
    if leftovers:  # as if a training step had just run: gradients that are not this loss's
        for i, p in enumerate(model.parameters()):
            p.grad = seeded_randn(*p.shape, seed=100 * seed + i)
    idx, targets = seeded_randint(0, 13, (2, 8), seed=seed), seeded_randint(0, 13, (2, 8), seed=seed + 50)
    return answer(model, idx, targets, post_ln=post_ln)


def _measuring(answer):
    return lambda *spec: _measured(answer, *spec)


def _norms_case(n_layer, post_ln, seed, leftovers, tie_weights=True, hint=""):
    where = "post_ln=True" if post_ln else "pre-LN"
    label = (f"block_gradient_norms(GPT with {n_layer} blocks, ids and targets of shape (2, 8), {where})"
             + (", the model's .grad holding old gradients" if leftovers else "")
             + ("" if tie_weights else ", untied head"))
    return Case((n_layer, post_ln, seed, leftovers, tie_weights), label=label, hint=hint)


@exercise("5.5", "Gradient norms through depth, pre-LN against post-LN", "hard", 25, hints=(
    "Run the model from its parts with your block_forward of 5.2 (pre-LN or post-LN), take the mean "
    "cross-entropy of the logits against the targets, backpropagate once, and measure, block by block, how "
    "large the gradient of that block's weights is.",
    "The norm of a block's gradient is the norm of all its weights' gradients together: the square root of the "
    "sum of every squared entry of every tensor of the block, not the sum of the tensors' norms. Gradients "
    "left in .grad from earlier must not count: clear them before backward (or ask autograd for the gradients "
    "directly).",
    "After model.zero_grad() and loss.backward(), for each block: the square root of sum(p.grad.square().sum() "
    "for p in block.parameters()); collect the n_layer numbers in a float tensor.",
))
def check_block_gradient_norms(block_gradient_norms) -> None:
    """Exercise 5.5: the norm of the loss's gradient for each block's weights, pre-LN or post-LN."""
    if not callable(block_gradient_norms):
        run_cases("block_gradient_norms", block_gradient_norms, _norms_reference, [])  # "expected a function"
    run_cases(
        "block_gradient_norms",
        _measuring(block_gradient_norms),
        _measuring(_norms_reference),
        [
            _norms_case(1, False, 1, False,
                        hint="One pre-LN block, no old gradients: this case tests the forward pass (embeddings, the "
                        "block, the final LayerNorm, the head), the mean cross-entropy, and the norm of all the "
                        "block's gradients taken together."),
            _norms_case(3, False, 2, False, hint="Three blocks: one norm per block, in the order of the blocks."),
            _norms_case(3, True, 3, False,
                        hint="post_ln=True: every block is the post-LN block of 5.2; the embeddings, the final "
                        "LayerNorm and the head stay as they are."),
            _norms_case(2, False, 4, True,
                        hint="The model arrives with gradients in .grad from earlier work: backward() adds to them, "
                        "so they have to be cleared first, or the gradients asked for directly."),
            _norms_case(4, True, 5, True, tie_weights=False,
                        hint="Four post-LN blocks, old gradients, an untied head."),
        ],
        hint="Check the pieces in turn: the forward pass from the parts, the mean loss, one backward, and one "
        "norm per block over all its parameters together.",
        rtol=1e-4,
        atol=1e-6,
        exercise="5.5",
        rules=[_NO_GPT, _NO_BLOCK],
        mistakes=[
            Mistake(_measuring(lambda *a, post_ln=False: _norms_reference(*a, post_ln=post_ln, stale=True)),
                    "the gradients already in .grad were counted too: backward() adds the new gradients to "
                    "whatever .grad holds, so clear it first (or ask autograd for the gradients directly)."),
            Mistake(_measuring(lambda *a, post_ln=False: _norms_reference(*a, post_ln=post_ln, combine="sum of norms")),
                    "the norms of the block's tensors were added up; the norm of all of them together is the square "
                    "root of the sum of their squared norms."),
            Mistake(_measuring(lambda *a, post_ln=False: _norms_reference(*a, post_ln=post_ln, combine="squared")),
                    "these are squared norms: take the square root of the sum of squares."),
            Mistake(_measuring(lambda *a, post_ln=False: _norms_reference(*a, post_ln=post_ln, final_ln=False)),
                    "the final LayerNorm (model.ln_f) was skipped: it comes after the last block in both "
                    "arrangements."),
            Mistake(_measuring(lambda *a, post_ln=False: _norms_reference(*a, post_ln=post_ln, reduction="sum")),
                    "the loss was summed over the positions; use the mean cross-entropy, as GPT.forward does."),
            Mistake(_measuring(lambda *a, post_ln=False: _norms_reference(*a, post_ln=False)), _PRE_AS_POST),
            Mistake(_measuring(lambda *a, post_ln=False: _norms_reference(*a, post_ln=True)),
                    "the pre-LN case was run with post-LN blocks."),
        ],
    )
