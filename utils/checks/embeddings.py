"""Checks for the exercises of lesson 02 (embeddings and positions).

The references come from torch and utils.embeddings, never from the solution notebook.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .. import embeddings
from ..embeddings import sinusoidal_positions
from .core import Case, Mistake, run_cases, seeded_randint, seeded_randn
from .hints import exercise
from .rules import CourseFunctionsOff, NoTorchCall

__all__ = ["check_embed_one_hot", "check_sinusoidal", "check_add_positions", "check_table_gradient"]


# --- 2.1 -------------------------------------------------------------------------------------------

_NO_LOOKUP = "the exercise writes the lookup as a product of one-hot vectors and the table."


def _reads_a_table(tables: list[torch.Tensor]) -> Callable[[tuple], bool]:
    """True when a call works on one of the cases' tables (or an equal copy of it): indexing or
    slicing the ids or the one-hot matrix stays allowed."""

    def when(args) -> bool:
        x = args[0] if args else None
        return isinstance(x, torch.Tensor) and any(x.shape == t.shape and torch.equal(x, t) for t in tables)

    return when


@exercise("2.1", "The lookup as a matrix product", "easy", 5, hints=(
    "A one-hot vector is all zeros except one 1, at the position of the id. Multiplying it by the "
    "table keeps exactly one row, the row of that id, because every other row is multiplied by 0.",
    "Build one one-hot vector per id, with one entry per row of the table (not per id that happens "
    "to occur), in the table's dtype; then one matrix product multiplies all of them by the table.",
    "F.one_hot(ids, num_classes=...) gives integers with a new last dim; convert them with "
    ".to(table.dtype) and use @ with the table, which works for any leading dims.",
))
def check_embed_one_hot(embed_one_hot) -> None:
    """Exercise 2.1: an embedding lookup written as one-hot vectors times the table."""
    cases = [
        Case(
            (torch.tensor([2, 0, 1]), torch.arange(12.0).reshape(3, 4)),
            hint="Row t of the answer is row ids[t] of the table. F.one_hot returns integers (torch.long), "
            "and a matrix product needs both sides in the same dtype.",
        ),
        Case(
            (torch.tensor([4, 4, 1]), seeded_randn(6, 3, seed=1)),
            hint="The table has 6 rows but the ids go only up to 4: a one-hot vector needs one entry per row "
            "of the table, not per id that this text uses.",
        ),
        Case(
            (torch.tensor([[0, 3], [3, 2]]), seeded_randn(5, 4, seed=2)),
            hint="A batch of ids (batch, n) must give (batch, n, d): the one-hot dim comes last, and a matrix "
            "product multiplies over it whatever dims come before.",
        ),
        Case(
            (torch.tensor([1]), seeded_randn(2, 5, seed=3).double()),
            hint="This table is float64: the one-hot vectors must take the table's own dtype, not always "
            "float32.",
        ),
    ]
    tables = [case.args[1] for case in cases]
    run_cases(
        "embed_one_hot",
        embed_one_hot,
        F.embedding,  # the lookup itself: row ids[...] of the table
        cases,
        hint="The answer must equal the lookup: row ids[t] of the table at every position t.",
        exercise="2.1",
        rules=[
            NoTorchCall((F.embedding, torch.embedding, F.embedding_bag, torch.index_select, torch.Tensor.index_select,
                         torch.gather, torch.Tensor.gather, torch.take, torch.Tensor.take, torch.take_along_dim,
                         torch.Tensor.take_along_dim), _NO_LOOKUP),
            NoTorchCall((torch.Tensor.__getitem__, torch.Tensor.select, torch.select, torch.Tensor.unbind,
                         torch.unbind, torch.Tensor.narrow, torch.narrow, torch.Tensor.split, torch.Tensor.chunk,
                         torch.Tensor.tolist, torch.Tensor.numpy),
                        "reading rows of the table (table[ids], table[i], ...) is the lookup itself; "
                        + _NO_LOOKUP, when=_reads_a_table(tables)),
        ],
    )


# --- 2.2 -------------------------------------------------------------------------------------------


def _angles(n: int, d: int, exponent: torch.Tensor) -> torch.Tensor:
    """t / 10000 ** exponent for every position t and every entry of exponent: (n, len(exponent))."""
    return torch.arange(n, dtype=torch.float64)[:, None] / 10000 ** exponent


def _interleaved(sines: torch.Tensor, cosines: torch.Tensor) -> torch.Tensor:
    return torch.stack([sines, cosines], dim=-1).flatten(-2).float()


def _sines_then_cosines(n, d):
    angle = _angles(n, d, torch.arange(0, d, 2) / d)
    return torch.cat([angle.sin(), angle.cos()], dim=-1).float()


def _exponent_i_over_d(n, d):
    angle = _angles(n, d, torch.arange(d // 2) / d)
    return _interleaved(angle.sin(), angle.cos())


def _cosines_first(n, d):
    angle = _angles(n, d, torch.arange(0, d, 2) / d)
    return _interleaved(angle.cos(), angle.sin())


def _times_the_power(n, d):
    angle = torch.arange(n, dtype=torch.float64)[:, None] * 10000 ** (torch.arange(0, d, 2) / d)
    return _interleaved(angle.sin(), angle.cos())


def _column_exponents(n, d):
    """Column j uses the exponent j / d, so a pair's cosine gets another frequency than its sine."""
    return _interleaved(_angles(n, d, torch.arange(0, d, 2) / d).sin(), _angles(n, d, torch.arange(1, d, 2) / d).cos())


_NO_TABLE = "build the table from the formula yourself."


@exercise("2.2", "The sinusoidal table, without a loop", "medium", 15, hints=(
    "Every entry is a sine or a cosine of one angle, the position t divided by a power of 10000 that "
    "depends only on the column pair. Build all the angles at once as a table, then take sin and cos.",
    "Make a column of positions, shape (n, 1), and a row of d/2 frequencies, one per column pair "
    "(2i = 0, 2, 4, ...). Dividing one by the other broadcasts to the (n, d/2) angles. Then fill the even "
    "columns of an (n, d) table with the sines and the odd columns with the cosines.",
    "torch.arange(n) as a column ([:, None]) and torch.arange(0, d, 2) / d as the exponent of 10000; "
    "write into table[:, 0::2] and table[:, 1::2] of a torch.zeros(n, d).",
))
def check_sinusoidal(sinusoidal) -> None:
    """Exercise 2.2: the sinusoidal position table (n, d), built without a Python loop."""
    run_cases(
        "sinusoidal",
        sinusoidal,
        sinusoidal_positions,
        [
            Case((1, 2), hint="Position 0 is [sin 0, cos 0] = [0, 1]: the sine comes first in each pair."),
            Case((5, 2), hint="With d = 2 there is one pair, of frequency 1: row t is [sin t, cos t]."),
            Case(
                (4, 8),
                hint="Interleave: even columns 0, 2, 4, ... hold sines, odd columns 1, 3, 5, ... cosines, "
                "not all sines then all cosines. Columns 2i and 2i+1 share the frequency of pair i, "
                "1 / 10000^(2i/d), where 2i = 0, 2, 4, ... (not i).",
            ),
            Case(
                (50, 16),
                hint="Check the exponent: pair i turns at 1 / 10000^(2i/d), for i = 0 .. d/2 - 1, and the "
                "angle is the position divided by 10000^(2i/d).",
            ),
            Case((3, 6)),
        ],
        hint="P[t, 2i] = sin(t / 10000^(2i/d)) and P[t, 2i+1] = cos of the same angle.",
        atol=1e-5,
        exercise="2.2",
        no_loops="broadcasting a column of positions against a row of frequencies makes every angle at once",
        mistakes=[
            Mistake(_cosines_first, "sine and cosine are swapped: the even columns (0, 2, ...) hold the sines, "
                    "the odd columns the cosines, so position 0 is [0, 1, 0, 1, ...]."),
            Mistake(_column_exponents, "the cosine of a pair has another frequency than its sine: columns 2i "
                    "and 2i+1 share one angle, with the exponent 2i/d for both."),
            Mistake(_sines_then_cosines, "all the sines came first, then all the cosines: they interleave, a "
                    "sine in each even column and the cosine of the same angle right after it."),
            Mistake(_exponent_i_over_d, "the exponent is i/d where it must be 2i/d (i counts the pairs, "
                    "2i = 0, 2, 4, ... is the pair's first column): the slow pairs turn too fast."),
            Mistake(_times_the_power, "the positions were multiplied by 10000^(2i/d): the angle is the "
                    "position divided by it."),
        ],
        rules=[CourseFunctionsOff(embeddings, ("sinusoidal_positions",), _NO_TABLE)],
    )


# --- 2.3 -------------------------------------------------------------------------------------------


def _add_positions(x: torch.Tensor, position_table: torch.Tensor) -> torch.Tensor:
    return x + position_table[: x.shape[-2]]


@exercise("2.3", "Add positions to token vectors", "easy", 10, hints=(
    "The token at position t gets the vector of position t, row t of the table. A sequence of n tokens "
    "needs rows 0 .. n-1, and every sequence of the batch needs the same ones.",
    "Find n, the length of the sequences, from the shape of x: it is the second-to-last dim, with or "
    "without a batch dim. Take that many rows from the top of the table; broadcasting adds an (n, d) "
    "tensor to every sequence of a (batch, n, d) one.",
    "n = x.shape[-2]; slice the first n rows of position_table and add them to x with +.",
))
def check_add_positions(add_positions) -> None:
    """Exercise 2.3: add the first n rows of a position table to token vectors (batch, n, d)."""
    run_cases(
        "add_positions",
        add_positions,
        _add_positions,
        [
            Case(
                (torch.zeros(1, 3, 4), seeded_randn(5, 4, seed=4)),
                hint="A sequence of n = 3 tokens needs the position vectors of positions 0, 1, 2: the first "
                "3 rows of the table (it has context_length = 5 rows), each added to its own token.",
            ),
            Case(
                (seeded_randn(2, 3, 4, seed=11), seeded_randn(5, 4, seed=12)),
                hint="Two sequences of 3 tokens: both get the same 3 position vectors.",
            ),
            Case(
                (seeded_randn(6, 4, seed=5).reshape(3, 2, 4), seeded_randn(6, 4, seed=6)),
                hint="Here batch = 3 and n = 2: take as many table rows as the sequences are long, not as many "
                "as there are sequences.",
            ),
            Case(
                (seeded_randn(10, 2, seed=7).reshape(2, 5, 2), seeded_randn(5, 2, seed=8)),
                hint="A sequence as long as the table (n = context_length) uses every row.",
            ),
            Case(
                (seeded_randn(3, 4, seed=9), seeded_randn(6, 4, seed=10)),
                hint="A single sequence (n, d) without a batch dim: its length is the second-to-last dim, "
                "which here is the first one.",
            ),
        ],
        hint="Row t of the table goes to the token at position t, in every sequence of the batch.",
        exercise="2.3",
        no_loops="broadcasting adds the same position vectors to every sequence at once",
        mistakes=[
            Mistake(lambda x, table: x + table[: x.shape[0]], "the table was sliced by the batch size (the first "
                    "dim), not by the length of the sequences (the second-to-last dim)."),
            Mistake(lambda x, table: x + table[1 : x.shape[-2] + 1], "the positions start at 1: the first token "
                    "is at position 0 and gets row 0 of the table."),
            Mistake(lambda x, table: torch.cat([x, table[: x.shape[-2]].expand_as(x)], dim=-1),
                    "the position vectors were put next to the token vectors (concatenated); they are added."),
        ],
    )


# --- 2.4 -------------------------------------------------------------------------------------------


def _table_gradient(ids: torch.Tensor, grad_out: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """The gradient that autograd gives the table when the vectors table[ids] receive grad_out."""
    table = torch.zeros(vocab_size, grad_out.shape[-1], dtype=grad_out.dtype, requires_grad=True)
    with torch.enable_grad():
        F.embedding(ids, table).backward(grad_out)
    return table.grad


def _assigned(ids, grad_out, vocab_size):
    """Each row set to the gradient of one position of its id (an assignment keeps one of them)."""
    grad = torch.zeros(vocab_size, grad_out.shape[-1], dtype=grad_out.dtype)
    grad[ids] = grad_out
    return grad


def _averaged(ids, grad_out, vocab_size):
    counts = torch.bincount(ids.reshape(-1), minlength=vocab_size).clamp(min=1)
    return _table_gradient(ids, grad_out, vocab_size) / counts[:, None].to(grad_out.dtype)


@exercise("2.4", "The gradient of the table", "medium", 15, hints=(
    "The lookup copies row v of the table to every position where the id v stands, so a change of row v "
    "changes all those vectors at once: the gradient of row v adds up the gradients of all those positions.",
    "Think of the lookup as exercise 2.1's product, one_hot @ table. For a product A @ B the gradient of B "
    "is A transposed times the gradient of the result. Put all positions in one list first (flatten the "
    "batch dim), so that the one-hot matrix is (positions, vocab_size).",
    "Reshape ids to (-1,) and grad_out to (-1, d); make the one-hot matrix with vocab_size columns in "
    "grad_out's dtype and multiply its transpose by grad_out. (index_add_ with the flat ids does the "
    "same, in place on a zero table.)",
))
def check_table_gradient(table_gradient) -> None:
    """Exercise 2.4: the gradient of the embedding table from the gradient of the looked-up vectors."""
    run_cases(
        "table_gradient",
        table_gradient,
        _table_gradient,
        [
            Case(
                (torch.tensor([1, 0, 1]), torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), 3),
                hint="Id 1 stands at positions 0 and 2, so row 1 gets the gradients of both added up; id 2 does "
                "not occur, so row 2 stays 0.",
            ),
            Case(
                (torch.tensor([3, 0]), seeded_randn(2, 4, seed=20), 5),
                hint="The gradient has one row per token of the vocabulary (vocab_size rows), not one per "
                "position; rows of ids that do not occur are 0.",
            ),
            Case(
                (torch.tensor([[0, 2, 2], [2, 1, 0]]), seeded_randn(2, 3, 4, seed=21), 4),
                hint="A batch (batch, n): an id adds up its gradients over every position of every sequence, "
                "so treat all the positions as one list.",
            ),
            Case(
                (torch.tensor([0, 0, 0]), seeded_randn(3, 2, seed=22).double(), 2),
                hint="float64 gradients: the one-hot matrix, if you use one, must take their dtype.",
            ),
            Case(
                (seeded_randint(0, 50, (4, 16), seed=23), seeded_randn(4, 16, 8, seed=24), 50),
                label="table_gradient(<ids (4, 16) from a vocabulary of 50>, <grad_out (4, 16, 8)>, 50)",
            ),
        ],
        hint="Row v of the answer is the sum of grad_out over the positions where ids == v.",
        exercise="2.4",
        no_loops="one product (or one index_add_) adds up the positions of every id at once",
        rules=[NoTorchCall((torch.Tensor.backward, torch.autograd.backward, torch.autograd.grad),
                           "compute the gradient from the lookup yourself, without autograd.")],
        mistakes=[
            Mistake(_assigned, "an id that occurs more than once kept the gradient of only one of its positions "
                    "(an assignment overwrites): the gradients of all its positions add up."),
            Mistake(_averaged, "the gradients of a repeated id were averaged; they add up, because the row is "
                    "used at each of those positions."),
            Mistake(lambda ids, grad_out, vocab_size: grad_out, "that is the gradient of each position, one row "
                    "per token of the text; the table's gradient has one row per id of the vocabulary."),
        ],
    )
