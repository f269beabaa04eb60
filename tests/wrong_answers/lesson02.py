"""Wrong answers for lesson 02's checks, written as a learner might write them."""

import math

import torch
import torch.nn.functional as F

import utils.embeddings
from utils.embeddings import TokenAndPositionEmbedding, sinusoidal_positions

from . import WrongAnswer

# --- 2.1 embed_one_hot -------------------------------------------------------------------------


def indexes_the_table(ids, table):
    return table[ids]


def row_by_row(ids, table):
    return torch.stack([table[i] for i in ids.reshape(-1).tolist()]).reshape(*ids.shape, -1)


def one_hot_from_the_ids(ids, table):
    return F.one_hot(ids).to(table.dtype) @ table  # as many columns as the largest id + 1


def integer_one_hot(ids, table):
    return F.one_hot(ids, num_classes=table.shape[0]) @ table


def always_float32(ids, table):
    return F.one_hot(ids, num_classes=table.shape[0]).float() @ table


# --- 2.2 sinusoidal ----------------------------------------------------------------------------


def pair_by_pair(n, d):
    table = torch.zeros(n, d)
    t = torch.arange(n, dtype=torch.float32)
    for i in range(d // 2):
        table[:, 2 * i] = torch.sin(t / 10000 ** (2 * i / d))
        table[:, 2 * i + 1] = torch.cos(t / 10000 ** (2 * i / d))
    return table


def by_comprehension(n, d):
    rows = [[math.sin(t / 10000 ** (j - j % 2) / d) if j % 2 == 0 else math.cos(t / 10000 ** ((j - 1) / d))
             for j in range(d)] for t in range(n)]
    return torch.tensor(rows)


def _angles(n, d, exponent):
    return torch.arange(n, dtype=torch.float32)[:, None] / 10000 ** exponent


def cosine_first(n, d):
    angle = _angles(n, d, torch.arange(0, d, 2) / d)
    table = torch.zeros(n, d)
    table[:, 0::2], table[:, 1::2] = angle.cos(), angle.sin()
    return table


def blocks_not_interleaved(n, d):
    angle = _angles(n, d, torch.arange(0, d, 2) / d)
    return torch.cat([angle.sin(), angle.cos()], dim=1)


def exponent_i_over_d(n, d):
    angle = _angles(n, d, torch.arange(d // 2) / d)
    table = torch.zeros(n, d)
    table[:, 0::2], table[:, 1::2] = angle.sin(), angle.cos()
    return table


def column_index_exponent(n, d):
    columns = torch.arange(d)
    angle = _angles(n, d, columns / d)
    return torch.where(columns % 2 == 0, angle.sin(), angle.cos())


def multiplies(n, d):
    angle = torch.arange(n, dtype=torch.float32)[:, None] * 10000 ** (torch.arange(0, d, 2) / d)
    table = torch.zeros(n, d)
    table[:, 0::2], table[:, 1::2] = angle.sin(), angle.cos()
    return table


def through_the_module(n, d):
    return TokenAndPositionEmbedding(1, d, max(n, 1), kind="sinusoidal").positions(n)


# --- 2.3 add_positions -------------------------------------------------------------------------


def loops_over_the_batch(x, position_table):
    if x.dim() == 2:
        return x + position_table[: x.shape[0]]
    return torch.stack([seq + position_table[: seq.shape[0]] for seq in x])


def every_row(x, position_table):
    return x + position_table


def from_position_one(x, position_table):
    n = x.shape[-2]
    return x + position_table[1 : n + 1]


def by_the_batch_size(x, position_table):
    return x + position_table[: len(x)]


def concatenates(x, position_table):
    n = x.shape[-2]
    return torch.cat([x, position_table[:n].expand(*x.shape[:-1], -1)], dim=-1)


# --- 2.4 table_gradient ------------------------------------------------------------------------


def overwrites(ids, grad_out, vocab_size):
    grad = torch.zeros(vocab_size, grad_out.shape[-1], dtype=grad_out.dtype)
    grad[ids] = grad_out
    return grad


def averages(ids, grad_out, vocab_size):
    flat = F.one_hot(ids.reshape(-1), vocab_size).to(grad_out.dtype)
    total = flat.T @ grad_out.reshape(-1, grad_out.shape[-1])
    return total / flat.sum(0).clamp(min=1)[:, None]


def per_position(ids, grad_out, vocab_size):
    return grad_out


def by_autograd(ids, grad_out, vocab_size):
    table = torch.zeros(vocab_size, grad_out.shape[-1], dtype=grad_out.dtype, requires_grad=True)
    F.embedding(ids, table).backward(grad_out)
    return table.grad


def with_a_loop(ids, grad_out, vocab_size):
    grad = torch.zeros(vocab_size, grad_out.shape[-1], dtype=grad_out.dtype)
    for i, g in zip(ids.reshape(-1).tolist(), grad_out.reshape(-1, grad_out.shape[-1]), strict=True):
        grad[i] += g
    return grad


def not_flattened(ids, grad_out, vocab_size):
    return F.one_hot(ids, vocab_size).to(grad_out.dtype).transpose(-2, -1) @ grad_out


WRONG = [
    WrongAnswer("2.1", "table[ids]", indexes_the_table, "rules out"),
    WrongAnswer("2.1", "row by row", row_by_row, "rules out"),
    WrongAnswer("2.1", "F.embedding", lambda ids, table: F.embedding(ids, table), "rules out"),
    WrongAnswer("2.1", "index_select", lambda ids, table: table.index_select(0, ids.reshape(-1)).reshape(
        *ids.shape, -1), "rules out"),
    WrongAnswer("2.1", "nn.Embedding", lambda ids, table: torch.nn.Embedding.from_pretrained(table)(ids), "rules out"),
    WrongAnswer("2.1", "num_classes from the ids", one_hot_from_the_ids, "one entry per row of the table"),
    WrongAnswer("2.1", "integer one-hot", integer_one_hot, "F.one_hot returns integers"),
    WrongAnswer("2.1", "always float32", always_float32, "the table's own dtype"),
    WrongAnswer("2.2", "a for loop", pair_by_pair, "rules out Python loops"),
    WrongAnswer("2.2", "a comprehension", by_comprehension, "a list comprehension"),
    WrongAnswer("2.2", "cosine first", cosine_first, "sine and cosine are swapped"),
    WrongAnswer("2.2", "not interleaved", blocks_not_interleaved, "all the sines came first"),
    WrongAnswer("2.2", "i over d", exponent_i_over_d, "the exponent is i/d"),
    WrongAnswer("2.2", "column-index exponent", column_index_exponent, "share one angle"),
    WrongAnswer("2.2", "multiplied", multiplies, "the angle is the position divided by it"),
    WrongAnswer("2.2", "the reference by name", lambda n, d: sinusoidal_positions(n, d), "rules out"),
    WrongAnswer("2.2", "the reference in its module", lambda n, d: utils.embeddings.sinusoidal_positions(n, d),
                "rules out"),
    WrongAnswer("2.2", "the module", through_the_module, "rules out"),
    WrongAnswer("2.3", "a loop over the batch", loops_over_the_batch, "rules out Python loops"),
    WrongAnswer("2.3", "every row", every_row, "first 3 rows of the table"),
    WrongAnswer("2.3", "from position 1", from_position_one, "the positions start at 1"),
    WrongAnswer("2.3", "by the batch size", by_the_batch_size, "sliced by the batch size"),
    WrongAnswer("2.3", "concatenated", concatenates, "concatenated"),
    WrongAnswer("2.4", "overwrites", overwrites, "an assignment overwrites"),
    WrongAnswer("2.4", "averages", averages, "averaged"),
    WrongAnswer("2.4", "per position", per_position, "one row per id of the vocabulary"),
    WrongAnswer("2.4", "autograd", by_autograd, "rules out"),
    WrongAnswer("2.4", "a loop", with_a_loop, "rules out Python loops"),
    WrongAnswer("2.4", "batch not flattened", not_flattened, "treat all the positions as one list"),
]
