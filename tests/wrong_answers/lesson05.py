"""Wrong answers for lesson 05's checks (LayerNorm, the block, the parameter count, the logit lens,
gradient norms through depth)."""

import torch
import torch.nn.functional as F
from torch import nn

from utils.model import GPT, Block, GPTConfig

from . import WrongAnswer


def _norm(x, gamma, beta, eps, unbiased=False, eps_outside=False):
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, keepdim=True, unbiased=unbiased)
    scale = torch.sqrt(var) + eps if eps_outside else torch.sqrt(var + eps)
    return gamma * (x - mean) / scale + beta


def _pre(block, x):
    x = x + block.attn(block.ln1(x))
    return x + block.mlp(block.ln2(x))


def _post(block, x):
    x = block.ln1(x + block.attn(x))
    return block.ln2(x + block.mlp(x))


def _block(pre=_pre, post=_post):
    return lambda block, x, post_ln=False: post(block, x) if post_ln else pre(block, x)


def _mlp_reads_input(block, x):
    h = x + block.attn(block.ln1(x))
    return h + block.mlp(block.ln2(x))


def _post_on_branches(block, x):
    x = x + block.ln1(block.attn(x))
    return x + block.ln2(block.mlp(x))


def _count(V, T, L, d, head=0, position=True, shifts=False):
    return V * d + (T * d if position else 0) + L * (12 * d * d + 2 * d) + d + head + (shifts * (2 * L + 1) * d)


def _lens(read=None, first=True, table=False):
    def logit_lens(model, idx):
        def out(x):
            h = model.ln_f(x) if read is None else x
            return h @ model.tok_emb.weight.T if table else model.head(h)
        x = model.tok_emb(idx) + model.pos_emb(torch.arange(idx.shape[1]))
        readings = [out(x)] if first else []
        for block in model.blocks:
            x, _ = block(x)
            readings.append(out(x))
        return torch.stack(readings)
    return logit_lens


def _lens_positions_of_context(model, idx):
    x = model.tok_emb(idx) + model.pos_emb(torch.arange(model.config.context_length))
    readings = [model.head(model.ln_f(x))]
    for block in model.blocks:
        x, _ = block(x)
        readings.append(model.head(model.ln_f(x)))
    return torch.stack(readings)


def _gradient_norms(clear=True, combine="total", final_ln=True, reduction="mean", honour_post=True, block_call=None):
    def block_gradient_norms(model, idx, targets, post_ln=False):
        x = model.tok_emb(idx) + model.pos_emb(torch.arange(idx.shape[1]))
        for block in model.blocks:
            if block_call is not None:
                x = block_call(block, x)
            else:
                x = _post(block, x) if post_ln and honour_post else _pre(block, x)
        logits = model.head(model.ln_f(x) if final_ln else x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction=reduction)
        if clear:
            model.zero_grad()
        loss.backward()
        norms = []
        for block in model.blocks:
            grads = [p.grad for p in block.parameters()]
            if combine == "sum":
                norms.append(sum(g.norm() for g in grads))
            else:
                square = sum(g.square().sum() for g in grads)
                norms.append(square if combine == "squared" else square.sqrt())
        return torch.stack(norms)
    return block_gradient_norms


WRONG = [
    WrongAnswer("5.1", "F.layer_norm", lambda x, g, b, eps: F.layer_norm(x, x.shape[-1:], g, b, eps), "rules out"),
    WrongAnswer("5.1", "nn.LayerNorm", lambda x, g, b, eps: nn.LayerNorm(x.shape[-1], eps=eps)(x) * g + b,
                "your code called F.layer_norm"),
    WrongAnswer("5.1", "unbiased variance", lambda x, g, b, eps: _norm(x, g, b, eps, unbiased=True),
                "divided by d - 1"),
    WrongAnswer("5.1", "eps outside the root", lambda x, g, b, eps: _norm(x, g, b, eps, eps_outside=True),
                "inside the square root"),
    WrongAnswer("5.1", "no eps", lambda x, g, b, eps: _norm(x, g, b, 0.0), "0 / 0 gives NaN"),
    WrongAnswer("5.1", "eps fixed", lambda x, g, b, eps: _norm(x, g, b, 1e-5), "eps is fixed at 1e-5"),
    WrongAnswer("5.1", "gamma and beta swapped", lambda x, g, b, eps: _norm(x, b, g, eps),
                "gamma and beta are swapped"),
    WrongAnswer("5.1", "whole-tensor statistics",
                lambda x, g, b, eps: g * (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + eps) + b,
                "over the whole tensor"),
    WrongAnswer("5.2", "calls Block.forward", lambda block, x, post_ln=False: Block.forward(block, x)[0],
                "your code used Block.forward"),
    WrongAnswer("5.2", "calls the block", lambda block, x, post_ln=False: block(x)[0], "rules out"),
    WrongAnswer("5.2", "post-LN for pre-LN", _block(pre=_post), "this is the post-LN block"),
    WrongAnswer("5.2", "pre-LN for post-LN", _block(post=_pre), "post_ln=True gave the pre-LN block"),
    WrongAnswer("5.2", "MLP reads the input", _block(pre=_mlp_reads_input), "the MLP step read the block's input"),
    WrongAnswer("5.2", "LayerNorms swapped",
                _block(pre=lambda b, x: (lambda h: h + b.mlp(b.ln1(h)))(x + b.attn(b.ln2(x)))),
                "ln1 and ln2 are swapped"),
    WrongAnswer("5.2", "no attention residual",
                _block(pre=lambda b, x: (lambda h: h + b.mlp(b.ln2(h)))(b.attn(b.ln1(x)))), "replaced the stream"),
    WrongAnswer("5.2", "post-LN on the branches", _block(post=_post_on_branches), "not the branch's output"),
    WrongAnswer("5.2", "returns the pair", lambda block, x, post_ln=False: (_pre(block, x), None),
                "expected a torch.Tensor, got tuple"),
    WrongAnswer("5.3", "builds the model",
                lambda V, T, L, d: GPT(GPTConfig(V, T, L, 1, d, bias=False)).num_parameters(), "count by formula"),
    WrongAnswer("5.3", "tied head counted twice", lambda V, T, L, d: _count(V, T, L, d, head=V * d),
                "weight tying"),
    WrongAnswer("5.3", "no position table", lambda V, T, L, d: _count(V, T, L, d, position=False),
                "the position embedding"),
    WrongAnswer("5.3", "LayerNorm shifts counted", lambda V, T, L, d: _count(V, T, L, d, shifts=True),
                "gains only, no shifts"),
    WrongAnswer("5.3", "MLP of 4 d^2", lambda V, T, L, d: _count(V, T, L, d) - 4 * L * d * d, "each block's MLP"),
    WrongAnswer("5.4", "calls GPT.forward", lambda model, idx: GPT.forward(model, idx)[0][None],
                "your code used GPT.forward"),
    WrongAnswer("5.4", "calls the model", lambda model, idx: model(idx)[0][None], "rules out"),
    WrongAnswer("5.4", "no final LayerNorm", _lens(read="raw"), "skipped the final LayerNorm"),
    WrongAnswer("5.4", "no reading of the embeddings", _lens(first=False), "the reading of the embeddings"),
    WrongAnswer("5.4", "the token table as head", _lens(table=True), "use model.head"),
    WrongAnswer("5.4", "positions of the whole context", _lens_positions_of_context, "raised RuntimeError"),
    WrongAnswer("5.5", "old gradients kept", _gradient_norms(clear=False), "the gradients already in .grad"),
    WrongAnswer("5.5", "sum of the tensors' norms", _gradient_norms(combine="sum"), "were added up"),
    WrongAnswer("5.5", "squared norms", _gradient_norms(combine="squared"), "these are squared norms"),
    WrongAnswer("5.5", "no final LayerNorm", _gradient_norms(final_ln=False), "the final LayerNorm"),
    WrongAnswer("5.5", "summed loss", _gradient_norms(reduction="sum"), "the loss was summed"),
    WrongAnswer("5.5", "post_ln ignored", _gradient_norms(honour_post=False), "post_ln=True gave the pre-LN block"),
    WrongAnswer("5.5", "calls the blocks", _gradient_norms(block_call=lambda b, x: b(x)[0]), "rules out"),
    WrongAnswer("5.5", "calls GPT.forward",
                lambda model, idx, targets, post_ln=False: GPT.forward(model, idx, targets)[1], "GPT.forward"),
]
