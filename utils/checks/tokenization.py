"""Checks for the exercises of lesson 01 (byte-pair encoding by hand).

The references come from utils.bpe (get_pair_counts, merge, apply_merges, BPETokenizer), never from
the solution notebook.
"""

from __future__ import annotations

from ..bpe import BPETokenizer, apply_merges, get_pair_counts, merge
from .core import Case, difference, run_cases

__all__ = ["check_pair_counts", "check_merge_pair", "check_encode_with_merges", "check_decode_ids"]

# The worked example of the lesson guide: the three merges BPE learns from "aaabdaaabac".
AAABDAAABAC_MERGES = {(97, 97): 256, (97, 98): 257, (256, 257): 258}

# A few lines to train a small tokenizer on inside the checks (no data file needed).
_ENGLISH = (
    "the cat sat on the mat. the dog sat on the log. then the cat and the dog sat together "
    "on the mat by the log, and that was the end of the matter."
)


def _compare_as(kind: type, description: str):
    """A compare function that first checks the type of the result, then its value."""

    def compare(expected, got):
        if not isinstance(got, kind):
            return f"expected {description}, got {type(got).__name__}"
        return difference(expected, got)

    return compare


def check_pair_counts(pair_counts) -> None:
    """Exercise 1.1: how often each pair of neighbouring ids occurs."""
    run_cases(
        "pair_counts",
        pair_counts,
        lambda ids: get_pair_counts(ids),
        [
            Case(
                ([1, 2, 3, 1, 2],),
                hint="Every position but the last starts a pair: (1, 2), (2, 3), (3, 1), (1, 2), so (1, 2) "
                "occurs twice.",
            ),
            Case(
                ([97, 97, 97],),
                hint="Pairs overlap: [a, a, a] holds the pair (a, a) twice, at positions 0-1 and 1-2. "
                "Step through the list one position at a time, not two.",
            ),
            Case(([5],), hint="One id has no neighbour, so no pair: return an empty dict."),
            Case(([],), hint="An empty list has no pairs: return an empty dict (and do not index ids[0])."),
            Case((list(b"aaabdaaabac"),)),
            Case(
                (list("子曰".encode()),),
                hint="These are the 6 UTF-8 bytes of two Chinese characters; every neighbouring pair "
                "counts, also the pair across the two characters.",
            ),
        ],
        hint="Loop over the neighbouring pairs (ids[i], ids[i + 1]) for i in range(len(ids) - 1), or "
        "zip(ids, ids[1:]), and count each one in a dict whose keys are tuples.",
        compare=_compare_as(dict, "a dict {(a, b): count}"),
    )


def check_merge_pair(merge_pair) -> None:
    """Exercise 1.2: replace every occurrence of one pair by a new id, left to right."""
    run_cases(
        "merge_pair",
        merge_pair,
        merge,
        [
            Case(([1, 2, 3, 1, 2], (1, 2), 4), hint="Both occurrences of (1, 2) become 4: [4, 3, 4]."),
            Case(
                ([1, 2, 3], (1, 2), 9),
                hint="The last id, 3, is not part of the pair but must still be copied: [9, 3]. Check that your "
                "loop reaches the last position.",
            ),
            Case(
                ([5, 5, 5], (5, 5), 256),
                hint="Occurrences cannot overlap: once ids[0] and ids[1] are merged, continue at ids[2]. "
                "[5, 5, 5] becomes [256, 5], not [256, 256].",
            ),
            Case(([5, 5, 5, 5], (5, 5), 256), hint="Four 5s hold two separate pairs: [256, 256]."),
            Case(
                ([3, 1, 2], (1, 2), 9),
                hint="The pair at the very end must be found too: [3, 1, 2] becomes [3, 9].",
            ),
            Case(([3, 1, 2, 7], (2, 1), 9), hint="The order inside a pair matters: (2, 1) is not (1, 2)."),
            Case(([1, 3, 2], (1, 2), 9), hint="No occurrence: the list comes back unchanged."),
            Case(([], (1, 2), 9), hint="An empty list stays empty."),
            Case(([1], (1, 2), 9), hint="A single id cannot start a pair: [1] stays [1]."),
        ],
        hint="Walk with an index i: if ids[i], ids[i + 1] is the pair, append new_id and jump by 2; "
        "otherwise append ids[i] and step by 1. Build a new list.",
        compare=_compare_as(list, "a list of ids"),
    )


def check_encode_with_merges(encode_with_merges) -> None:
    """Exercise 1.3: UTF-8 bytes first, then the merges in the order they were learned."""
    english = BPETokenizer().train(_ENGLISH, 256 + 40, pattern=None)
    run_cases(
        "encode_with_merges",
        encode_with_merges,
        lambda text, merges: apply_merges(list(text.encode("utf-8")), merges),
        [
            Case(
                ("aaabdaaabac", dict(AAABDAAABAC_MERGES)),
                hint="The answer is [258, 100, 258, 97, 99]. Merge 258 joins 256 ('aa') and 257 ('ab'), so it can "
                "only apply after them: apply the merges in the order learned (the order of the dict), each to "
                "the whole sequence.",
            ),
            Case(("", dict(AAABDAAABAC_MERGES)), hint="An empty text has no bytes and no tokens: []."),
            Case(
                ("héllo", {(108, 108): 256}),
                hint="Start from the UTF-8 bytes, list(text.encode('utf-8')), not from ord(c): 'é' is the two "
                "bytes 195, 169, and ord('é') = 233 is not a byte of the text.",
            ),
            Case(
                ("abc", {(98, 99): 256, (97, 98): 257}),
                hint="Order matters: (b, c) was learned BEFORE (a, b), so it is applied first and 'abc' becomes "
                "[97, 256]. Take the merges in the order of the dict (the smallest new id first), not the pair "
                "that comes first in the text, nor the one that occurs most often in it.",
            ),
            Case(
                ("abcbc", {(97, 98): 256, (98, 99): 257}),
                hint="(a, b) was learned first, so it is applied first, although (b, c) is more frequent in this "
                "text: [256, 99, 257]. Picking the most frequent pair is what training does; encoding follows "
                "the learned order.",
            ),
            Case(
                ("the cat and the dog sat on the mat.", dict(english.merges)),
                label="encode_with_merges('the cat and the dog sat on the mat.', <40 merges learned from a "
                "short English text>)",
                hint="Merges build on earlier merges (a merge may join two merged tokens), so apply them one "
                "after the other, each to the output of the one before.",
            ),
        ],
        hint="ids = list(text.encode('utf-8')); then for each (pair, new_id) in merges.items(), in order, "
        "replace every occurrence of pair by new_id (your merge_pair does that).",
        compare=_compare_as(list, "a list of ids"),
    )


def _decode_with(ids, vocab) -> str:
    """The course tokenizer's decode, run over the given vocabulary."""
    tokenizer = BPETokenizer()
    tokenizer.vocab = dict(vocab)
    return tokenizer.decode(ids)


def check_decode_ids(decode_ids) -> None:
    """Exercise 1.4: ids back to text through the bytes of each token."""
    small = BPETokenizer().train("aaabdaaabac", 256 + 3, pattern=None)
    # Trained on "时" (bytes e6 97 b6) and friends: the first merge joins the last two bytes of "时",
    # so "时" becomes two tokens, [230, 256], and neither is a character on its own.
    chinese = BPETokenizer().train("时间，时代，时候", 256 + 1, pattern=None)
    chinese.register_special_tokens(["<|endoftext|>"])
    time_ids = chinese.encode("时间")
    run_cases(
        "decode_ids",
        decode_ids,
        _decode_with,
        [
            Case(([258, 100, 258, 97, 99], small.vocab), label="decode_ids([258, 100, 258, 97, 99], <vocab of "
                 "the worked example>)", hint="Token 258 stands for the bytes b'aaab'."),
            Case(([], small.vocab), label="decode_ids([], <vocab>)", hint="No ids: the empty string ''."),
            Case(
                (time_ids, chinese.vocab),
                label=f"decode_ids({time_ids}, <vocab in which '时' is split over two tokens>)",
                hint="'时' is three bytes, e6 97 b6, and here it is split over two tokens, b'\\xe6' and "
                "b'\\x97\\xb6'. Neither decodes on its own: join the bytes of ALL the tokens first "
                "(b''.join(...)), then decode once.",
            ),
            Case(
                (time_ids[:1], chinese.vocab),
                label=f"decode_ids({time_ids[:1]}, <the same vocab>)",
                hint="Only the first byte of '时': not valid UTF-8. Use .decode('utf-8', errors='replace'), "
                "which gives the replacement character '\\ufffd' instead of raising.",
            ),
            Case(
                ([240, 159, 153, 130, 33], small.vocab),
                label="decode_ids([240, 159, 153, 130, 33], <vocab>)",
                hint="The four bytes f0 9f 99 82 are one emoji, 🙂; then '!'.",
            ),
            Case(
                (chinese.encode("时间<|endoftext|>", allowed_special="all"), chinese.vocab),
                label="decode_ids(<ids of '时间<|endoftext|>'>, <vocab with a special token>)",
                hint="A special token is in the vocab like any other: its bytes are its text.",
            ),
        ],
        hint="text = b''.join(vocab[i] for i in ids).decode('utf-8', errors='replace').",
        compare=_compare_as(str, "a str"),
    )
