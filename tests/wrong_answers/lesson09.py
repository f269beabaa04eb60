"""Wrong answers for lesson 09's checks (reading attention)."""

import numpy as np
import torch

from utils import head_scores as hs

from . import WrongAnswer

# --- 9.1: previous-token scores of a padded batch ---------------------------------------------------


def _below(w):
    return torch.diagonal(w, offset=-1, dim1=-2, dim2=-1)


def _pairs(m):
    return (m[:, 1:] * m[:, :-1]).to(torch.float64)[:, None, :]


def _loop_scores(w, m):
    total, count = torch.zeros(w.shape[1], dtype=w.dtype), 0
    for b in range(w.shape[0]):
        for i in range(1, w.shape[-1]):
            if m[b, i] and m[b, i - 1]:
                total += w[b, :, i, i - 1]
                count += 1
    return total / count


# --- 9.2 and 9.3 -------------------------------------------------------------------------------------


def _centred(a):
    return a.flatten() - a.mean()


def _pearson(a, b):
    x, y = _centred(a), _centred(b)
    return (x @ y / (x.norm() * y.norm())).item()


def _per_row(a, b):
    return float(np.mean([np.corrcoef(x, y)[0, 1] for x, y in zip(a.numpy(), b.numpy(), strict=True)]))


def _shares(moved):
    return moved / moved.sum(-1, keepdim=True)


def _loop_shares(w, v):
    out = torch.zeros_like(w)
    for i in range(len(w)):
        moved = w[i] * v.norm(dim=-1)
        out[i] = moved / moved.sum()
    return out


# --- 9.4: mean ablation ------------------------------------------------------------------------------


def _ablation(mean_over="everything", zero=False, keep_hook=False, width="slice", as_tensor=False):
    def mean_ablation_loss(model, layer, head, batches):
        attn = model.blocks[layer].attn
        d = attn.d_head
        where = slice(head * d, (head + 1) * d) if width == "slice" else slice(head, None, attn.n_heads)
        seen = []
        handle = attn.out_proj.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]))
        with torch.no_grad():
            for x, _ in batches:
                model(x)
        handle.remove()
        if mean_over == "everything":
            mean = torch.cat([s.reshape(-1, attn.d_model) for s in seen]).mean(0)[where]
        elif mean_over == "texts":
            mean = torch.cat(seen).mean(0)[:, where]
        else:  # one mean per batch, then their mean
            mean = torch.stack([s.reshape(-1, attn.d_model).mean(0) for s in seen]).mean(0)[where]

        def write(module, inputs):
            x = inputs[0].clone()
            x[..., where] = 0.0 if zero else mean
            return (x,)

        handle = attn.out_proj.register_forward_pre_hook(write)
        loss = hs.mean_loss(model, batches)
        if not keep_hook:
            handle.remove()
        return torch.tensor(loss) if as_tensor else loss

    return mean_ablation_loss


WRONG = [
    WrongAnswer("9.1", "padding counted", lambda w, m: _below(w).mean((0, 2)), "padding was counted"),
    WrongAnswer("9.1", "query mask only", lambda w, m: (_below(w) * m[:, None, 1:]).sum((0, 2)) / m[:, 1:].sum(),
                "a pair counts when both tokens are real"),
    WrongAnswer("9.1", "mean of per-text means",
                lambda w, m: ((_below(w) * _pairs(m)).sum(-1) / _pairs(m).sum(-1)).mean(0), "mean of per-text means"),
    WrongAnswer("9.1", "divides by n - 1", lambda w, m: ((_below(w) * _pairs(m)).sum(-1) / (w.shape[-1] - 1)).mean(0),
                "divided by n - 1"),
    WrongAnswer("9.1", "next token", lambda w, m: hs.batch_offset_score(w, m, 1), "weight on the NEXT token"),
    WrongAnswer("9.1", "a Python loop", _loop_scores, "rules out Python loops"),
    WrongAnswer("9.2", "cosine similarity", lambda a, b: (a.flatten() @ b.flatten() / (a.norm() * b.norm())).item(),
                "cosine similarity"),
    WrongAnswer("9.2", "absolute value", lambda a, b: abs(_pearson(a, b)), "absolute value"),
    WrongAnswer("9.2", "per-row correlations", _per_row, "per-row correlations"),
    WrongAnswer("9.2", "torch.corrcoef of one map", lambda a, b: torch.corrcoef(a), "expected one number"),
    WrongAnswer("9.2", "covariance", lambda a, b: (_centred(a) * _centred(b)).mean().item(), "covariance"),
    WrongAnswer("9.3", "squared norms", lambda w, v: _shares(w * (v ** 2).sum(-1)[None]), "not its square"),
    WrongAnswer("9.3", "rows not normalised", lambda w, v: w * v.norm(dim=-1)[None], "divide each row by its total"),
    WrongAnswer("9.3", "rows scaled", lambda w, v: _shares(w * v.norm(dim=-1)[:, None]), "scales COLUMN j"),
    WrongAnswer("9.3", "norm over dim 0", lambda w, v: _shares(w * v.norm(dim=0)[None]), "over the last dim"),
    WrongAnswer("9.3", "a Python loop", _loop_shares, "rules out Python loops"),
    WrongAnswer("9.4", "zero ablation", _ablation(zero=True), "zero ablation"),
    WrongAnswer("9.4", "mean over the texts only", _ablation(mean_over="texts"), "per position"),
    WrongAnswer("9.4", "mean of the batch means", _ablation(mean_over="batches"), "mean of the batches' means"),
    WrongAnswer("9.4", "every n_heads-th feature", _ablation(width="interleaved"), "contiguous slice"),
    WrongAnswer("9.4", "hook left in place", _ablation(keep_hook=True), "remove every hook"),
    WrongAnswer("9.4", "returns a tensor", _ablation(as_tensor=True), "as a Python float"),
]
