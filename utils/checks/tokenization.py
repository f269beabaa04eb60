"""Checks for the exercises of lesson 01 (byte-pair encoding by hand).

The references come from utils.bpe (get_pair_counts, merge, apply_merges, train_textbook,
BPETokenizer), never from the solution notebook. Each exercise writes by hand what utils.bpe already
does, so the matching utils.bpe function is refused while the answer runs.
"""

from __future__ import annotations

import warnings

import regex

from .. import bpe
from ..bpe import BPETokenizer, apply_merges, get_pair_counts, merge, train_textbook
from .core import Case, Mistake, difference, run_cases
from .hints import exercise
from .rules import CourseFunctionsOff, NoAttribute

__all__ = ["check_pair_counts", "check_merge_pair", "check_encode_with_merges", "check_decode_ids", "check_train_bpe"]

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


# --- 1.1 -------------------------------------------------------------------------------------------


def _every_other_pair(ids):
    return _count(zip(ids[::2], ids[1::2], strict=False))


def _count(pairs):
    counts = {}
    for pair in pairs:
        counts[pair] = counts.get(pair, 0) + 1
    return counts


@exercise("1.1", "Count the pairs", "easy", 5, hints=(
    "A pair is two ids that stand next to each other. Every position of the list except the last one "
    "is the start of exactly one pair, and the same pair may occur several times.",
    "Walk through the positions one at a time (not two), form the pair of the id there and the id "
    "after it, and add 1 to that pair's count in a dict whose keys are tuples (a, b).",
    "zip(ids, ids[1:]) gives every neighbouring pair, overlaps included; count each one with "
    "counts.get(pair, 0) + 1. An empty list and a single id both give {}.",
))
def check_pair_counts(pair_counts) -> None:
    """Exercise 1.1: how often each pair of neighbouring ids occurs."""
    run_cases(
        "pair_counts",
        pair_counts,
        lambda ids: get_pair_counts(ids),
        [
            Case(
                ([1, 2, 1, 2, 3],),
                hint="The pairs here are (1, 2), (2, 1), (1, 2) again and (2, 3): four pairs from five ids.",
            ),
            Case(([1, 2, 3, 1, 2],)),
            Case(
                ([97, 97, 97],),
                hint="Pairs overlap: [a, a, a] holds the pair (a, a) twice, at positions 0-1 and 1-2.",
            ),
            Case(([5],), hint="One id has no neighbour, so there is no pair at all: an empty dict."),
            Case(([],), hint="An empty list has no pairs: an empty dict (look at no position of it)."),
            Case((list(b"aaabdaaabac"),)),
            Case(
                (list("子曰".encode()),),
                hint="These are the 6 UTF-8 bytes of two Chinese characters; every neighbouring pair "
                "counts, the one across the two characters too.",
            ),
        ],
        hint="Each position but the last starts one pair; the result counts every pair it sees.",
        compare=_compare_as(dict, "a dict {(a, b): count}"),
        exercise="1.1",
        mistakes=[
            Mistake(_every_other_pair, "the pairs were taken two positions at a time, so every other pair is "
                    "missing: pairs overlap, and each position but the last starts one."),
            Mistake(lambda ids: _count(zip(ids[:-2], ids[1:-1], strict=True)), "the last pair of the list is "
                    "missing: the loop stops one position too early."),
            Mistake(lambda ids: _count(ids), "the ids themselves were counted; the keys must be pairs (a, b) "
                    "of neighbouring ids."),
            Mistake(lambda ids: dict.fromkeys(zip(ids, ids[1:], strict=False), 1), "every pair got the count 1: "
                    "add 1 each time the pair occurs."),
        ],
        rules=[CourseFunctionsOff(bpe, ("get_pair_counts",), "count the pairs with your own loop.")],
    )


# --- 1.2 -------------------------------------------------------------------------------------------


def _merge_without_skipping(ids, pair, new_id):
    """Every position is visited, also the second id of a pair that was just merged."""
    return [new_id if tuple(ids[i:i + 2]) == tuple(pair) else ids[i] for i in range(len(ids))]


def _merge_dropping_the_last(ids, pair, new_id):
    """The scan stops before the last id and never copies it."""
    out, i = [], 0
    while i < len(ids) - 1:
        if (ids[i], ids[i + 1]) == tuple(pair):
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _merge_in_either_order(ids, pair, new_id):
    return merge(merge(ids, pair, new_id), (pair[1], pair[0]), new_id)


@exercise("1.2", "Merge one pair", "easy", 10, hints=(
    "Read the list from left to right and build a new one. Where the pair starts, the new list gets the "
    "single new id and both old ids are used up; anywhere else, the id is copied as it is.",
    "Use a position i that you move yourself (a while loop): after a merge it moves on by two, after a "
    "copy by one. Before looking at ids[i + 1], make sure there is one.",
    "while i < len(ids): if there is a next id and (ids[i], ids[i + 1]) equals pair, append new_id and "
    "add 2 to i; else append ids[i] and add 1. Return the new list.",
))
def check_merge_pair(merge_pair) -> None:
    """Exercise 1.2: replace every occurrence of one pair by a new id, left to right."""
    run_cases(
        "merge_pair",
        merge_pair,
        merge,
        [
            Case(([1, 2, 3, 1, 2], (1, 2), 4), hint="Both occurrences of (1, 2) become one 4 each."),
            Case(
                ([1, 2, 3], (1, 2), 9),
                hint="The last id, 3, is not part of the pair but must still be copied: does your scan "
                "reach the last position?",
            ),
            Case(
                ([5, 5, 5], (5, 5), 256),
                hint="Occurrences cannot overlap: once the first two 5s are merged they are used up, so "
                "the third 5 stays on its own.",
            ),
            Case(([5, 5, 5, 5], (5, 5), 256), hint="Four 5s hold two separate pairs, so two new ids."),
            Case(([3, 1, 2], (1, 2), 9), hint="The pair at the very end of the list must be found too."),
            Case(([3, 1, 2, 7], (2, 1), 9), hint="The order inside a pair matters: (2, 1) is not (1, 2)."),
            Case(([1, 3, 2], (1, 2), 9), hint="No occurrence: the list comes back unchanged."),
            Case(([], (1, 2), 9), hint="An empty list stays empty."),
            Case(([1], (1, 2), 9), hint="A single id cannot start a pair: it is copied as it is."),
        ],
        hint="Every id of the input ends up in the output, either copied or as half of a merged pair.",
        compare=_compare_as(list, "a list of ids"),
        exercise="1.2",
        mistakes=[
            Mistake(_merge_without_skipping, "after a merge the scan went on at the second id of the pair, "
                    "which was then used twice: a merged pair uses up both of its ids."),
            Mistake(_merge_dropping_the_last, "the last id was lost: the scan stops before the last position "
                    "and never copies it."),
            Mistake(_merge_in_either_order, "the pair was matched in both orders: (2, 1) is a different pair "
                    "from (1, 2)."),
        ],
        rules=[CourseFunctionsOff(bpe, ("merge",), "write the merge with your own loop.")],
    )


# --- 1.3 -------------------------------------------------------------------------------------------


def _encode_code_points(text, merges):
    return apply_merges([ord(c) for c in text], merges)


def _encode_in_reverse(text, merges):
    ids = list(text.encode("utf-8"))
    for pair, new_id in reversed(list(merges.items())):
        ids = merge(ids, pair, new_id)
    return ids


def _encode_from_the_bytes_each_time(text, merges):
    """Each merge applied to the original bytes instead of to the output of the merge before."""
    data = list(text.encode("utf-8"))
    ids = data
    for pair, new_id in merges.items():
        ids = merge(data, pair, new_id)
    return ids


def _encode_most_frequent_first(text, merges):
    """Merges chosen the way training chooses them: the most frequent known pair of the text first."""
    ids = list(text.encode("utf-8"))
    while True:
        counts = {p: c for p, c in get_pair_counts(ids).items() if p in merges}
        if not counts:
            return ids
        pair = max(counts, key=lambda p: (counts[p], -merges[p]))  # a tie: the one learned first
        ids = merge(ids, pair, merges[pair])


_OWN_LOOP = "apply the merges with your own loop."


@exercise("1.3", "Encode with learned merges", "medium", 15, hints=(
    "Encoding replays training: start from the text's bytes and apply the merges one after the other, "
    "in the order they were learned. A later merge may join tokens that an earlier merge made.",
    "Step 1: the UTF-8 bytes of the text as a list of ints. Step 2: for each merge, in the dict's order "
    "(the smallest new id first), replace every occurrence of its pair in the current list.",
    "Start from list(text.encode('utf-8')); loop over merges.items() and set the list to your "
    "merge_pair of the list, the pair and its new id; return the list at the end.",
))
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
                hint="Merge 258 joins 256 ('aa') and 257 ('ab'), so it can only apply after both of them "
                "have: the merges build on each other, in the order they were learned.",
            ),
            Case(("", dict(AAABDAAABAC_MERGES)), hint="An empty text has no bytes and no tokens."),
            Case(
                ("héllo", {(108, 108): 256}),
                hint="Start from the UTF-8 bytes of the text: 'é' is the two bytes 195, 169, while its "
                "code point, 233, is not a byte of the text.",
            ),
            Case(
                ("abc", {(98, 99): 256, (97, 98): 257}),
                hint="(b, c) was learned BEFORE (a, b), so it is applied first. Follow the order of the "
                "dict (the smallest new id first), not the order of the pairs in the text.",
            ),
            Case(
                ("abcbc", {(97, 98): 256, (98, 99): 257}),
                hint="(a, b) was learned first, so it is applied first, although (b, c) is more frequent "
                "in this text. Choosing by frequency is what training does; encoding follows the learned order.",
            ),
            Case(
                ("the cat and the dog sat on the mat.", dict(english.merges)),
                label="encode_with_merges('the cat and the dog sat on the mat.', <40 merges learned from a "
                "short English text>)",
                hint="Merges build on earlier merges (a merge may join two merged tokens): each one works on "
                "the result of the one before.",
            ),
        ],
        hint="The merges are applied one after the other, in the order learned, to the text's UTF-8 bytes.",
        compare=_compare_as(list, "a list of ids"),
        exercise="1.3",
        rules=[CourseFunctionsOff(bpe, ("apply_merges", "_apply_merges_heap"), _OWN_LOOP),
               NoAttribute(BPETokenizer, "encode", _OWN_LOOP)],
        mistakes=[
            Mistake(_encode_code_points, "the text became its code points (ord of each character), not its "
                    "UTF-8 bytes: a character outside ASCII is several bytes."),
            Mistake(_encode_most_frequent_first, "the most frequent pair of the text was merged first, as in "
                    "training; encoding applies the merges in the order they were learned."),
            Mistake(_encode_in_reverse, "the merges were applied from the last learned to the first: the first "
                    "learned comes first."),
            Mistake(_encode_from_the_bytes_each_time, "each merge started again from the bytes of the text: it "
                    "must work on the result of the merges before it."),
        ],
    )


# --- 1.4 -------------------------------------------------------------------------------------------


def _decode_with(ids, vocab) -> str:
    """The course tokenizer's decode, run over the given vocabulary."""
    tokenizer = BPETokenizer()
    tokenizer.vocab = dict(vocab)
    return tokenizer.decode(ids)


@exercise("1.4", "Decode ids to text", "easy", 5, hints=(
    "A token stands for bytes, not for characters: one character may be spread over two tokens. Get "
    "the text from all the bytes together.",
    "Look up the bytes of every id, put them together into one bytes object, and decode that once as "
    "UTF-8, with the error rule that turns invalid bytes into the replacement character.",
    "b''.join(...) over the vocab entries of the ids gives one bytes object; its .decode method takes "
    "the encoding and errors='replace'.",
))
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
            Case(([], small.vocab), label="decode_ids([], <vocab>)", hint="No ids: the empty string."),
            Case(
                (time_ids, chinese.vocab),
                label=f"decode_ids({time_ids}, <vocab in which '时' is split over two tokens>)",
                hint="'时' is three bytes, e6 97 b6, split here over two tokens, b'\\xe6' and b'\\x97\\xb6'. "
                "Neither is valid UTF-8 on its own; the three bytes together are.",
            ),
            Case(
                (time_ids[:1], chinese.vocab),
                label=f"decode_ids({time_ids[:1]}, <the same vocab>)",
                hint="Only the first byte of '时': not valid UTF-8. It must become the replacement "
                "character '\\ufffd', neither an error nor nothing.",
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
        hint="Every id stands for the bytes vocab[id]; the text is what those bytes say as UTF-8.",
        compare=_compare_as(str, "a str"),
        exercise="1.4",
        rules=[NoAttribute(BPETokenizer, name, "join and decode the bytes yourself.")
               for name in ("decode", "token_strings")],
        mistakes=[
            Mistake(lambda ids, vocab: "".join(vocab[i].decode("utf-8", errors="replace") for i in ids),
                    "each token was decoded on its own, so a character split over two tokens became "
                    "replacement characters: put all the bytes together first, then decode once."),
            Mistake(lambda ids, vocab: b"".join(vocab[i] for i in ids).decode("utf-8", errors="ignore"),
                    "invalid bytes were dropped (errors='ignore'); the statement asks for the replacement "
                    "character '\\ufffd' (errors='replace')."),
            Mistake(lambda ids, vocab: "".join(chr(i) for i in ids), "each id was read as a character code "
                    "(chr): an id is a token, and the vocab says which bytes it stands for."),
        ],
    )


# --- 1.5 -------------------------------------------------------------------------------------------

_CUT = "<|cut|>"  # a separator that no case's chunks contain


def _textbook_merges(chunks: list[str], vocab_size: int) -> dict[tuple[int, int], int]:
    """utils.bpe.train_textbook on chunks that are already cut.

    train_textbook cuts its text at special tokens and never counts a pair across one, so chunks joined
    by a special token train exactly as separate chunks. Its warning that training stopped early is
    for its own callers; here stopping early is part of the exercise.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train_textbook(_CUT.join(chunks), vocab_size, pattern=None, special_tokens=[_CUT])


def _wrong_trainer(tie: str = "smallest", across: bool = False, recount: bool = True, extra: int = 0):
    """A training loop as a learner might write it, with one thing changed by the arguments:
    tie ("smallest", "first", "largest"), pairs counted across chunks, counts never refreshed, or
    `extra` merges too many."""

    def pick(counts):
        top = max(counts.values())
        tied = [p for p, c in counts.items() if c == top]
        return {"smallest": min(tied), "first": tied[0], "largest": max(tied)}[tie]

    def train(chunks, vocab_size):
        seqs = [list(c.encode("utf-8")) for c in chunks]
        if across:
            seqs = [[i for s in seqs for i in s]]
        merges, counts = {}, None
        for new_id in range(256, vocab_size + extra):
            if recount or counts is None:
                counts = {}
                for s in seqs:
                    get_pair_counts(s, counts)
            if not counts:
                break
            pair = pick(counts)
            if not recount:
                del counts[pair]  # the next merge is the next pair of the first count
            merges[pair] = new_id
            seqs = [merge(s, pair, new_id) for s in seqs]
        return merges

    return train


_OWN_FUNCTIONS = ("utils.bpe's functions and trainers do this for you; write the loop with your own "
                  "pair_counts and merge_pair from exercises 1.1 and 1.2.")


@exercise("1.5", "Train BPE", "medium", 20, hints=(
    "Training repeats one round per new id: count every neighbouring pair in all the chunks together, "
    "take the most frequent pair, give it the next id and merge it everywhere. Pairs never cross from "
    "one chunk into the next, and after each merge the counts have changed.",
    "Keep every chunk as its own list of UTF-8 bytes. In each round add up the pair counts of all the "
    "chunks into one dict; if it is empty, stop; among the pairs with the largest count take the "
    "smallest pair; record it with the new id; then merge it in every chunk.",
    "Loop new_id over range(256, vocab_size). Add up pair_counts of each chunk (dict.get(pair, 0) + count); "
    "with top the largest count, min() of the pairs whose count is top is the tie rule; store the pair "
    "with new_id and replace each chunk by merge_pair of it.",
))
def check_train_bpe(train_bpe) -> None:
    """Exercise 1.5: the BPE training loop over chunks, with the course's tie rule and an early stop."""
    words = regex.findall(bpe.GPT4_PATTERN, _ENGLISH)
    run_cases(
        "train_bpe",
        train_bpe,
        _textbook_merges,
        [
            Case(
                (["ab", "ba"], 257),
                hint="(a, b) and (b, a) occur once each, a tie: it goes to the smallest pair, comparing the "
                "first ids and then the second ones.",
            ),
            Case(
                (["ba", "ab"], 257),
                hint="The same tie in the other order: the smallest pair wins wherever it occurs, first or "
                "last.",
            ),
            Case(
                (["aaabdaaabac"], 259),
                hint="The worked example of the notebook: three rounds, and the third merges two tokens that "
                "the first two rounds made. Count the pairs again after every merge.",
            ),
            Case((["aaabdaaabac"], 256), hint="vocab_size = 256 leaves room for no merge at all: an empty dict."),
            Case(
                (["ab", "ab"], 258),
                hint="Pairs never cross from one chunk into the next: after the first merge each chunk is one "
                "token, no pair is left, and training stops early with one merge.",
            ),
            Case(
                ([" the", " the", " then"], 262),
                hint="Pairs are counted in all the chunks together. After four merges every chunk is one "
                "token and training stops early: fewer merges than vocab_size allows, and no error.",
            ),
            Case(([], 260), hint="No chunks, no pairs: no merge."),
            Case((["子曰", "学而时习之"], 259), hint="Chunks are UTF-8 bytes: a Chinese character is three of them."),
            Case(
                (words, 256 + 12),
                label="train_bpe(<the 38 chunks of a short English text>, 268)",
                hint="Each round counts the pairs of every chunk again, on the chunks as the merges before left "
                "them.",
            ),
        ],
        hint="Each round counts the pairs of all chunks (never across two), merges the most frequent (ties: "
        "the smallest pair) and stops when no pair is left.",
        compare=_compare_as(dict, "a dict {(a, b): new_id}"),
        exercise="1.5",
        rules=[CourseFunctionsOff(bpe, ("get_pair_counts", "merge", "train_textbook"), _OWN_FUNCTIONS),
               NoAttribute(BPETokenizer, "train", _OWN_FUNCTIONS)],
        mistakes=[
            Mistake(_wrong_trainer(across=True), "pairs were counted across the end of one chunk and the start "
                    "of the next: chunks are separate, and a merge never crosses from one into another."),
            Mistake(_wrong_trainer(tie="first"), "a tie went to the pair counted first; the rule is that the "
                    "smallest pair wins (first ids compared, then second ids)."),
            Mistake(_wrong_trainer(tie="largest"), "a tie went to the largest pair; the rule is that the smallest "
                    "pair wins."),
            Mistake(_wrong_trainer(recount=False), "the pairs were counted once, before the first merge: a merge "
                    "changes the counts (and makes new pairs with the new token), so count again every round."),
            Mistake(_wrong_trainer(extra=1), "one merge too many: the new ids run from 256 to vocab_size - 1."),
            Mistake(lambda chunks, vocab_size: _textbook_merges(chunks, vocab_size - 1), "one merge too few: "
                    "the new ids run from 256 to vocab_size - 1, so there are vocab_size - 256 of them."),
        ],
    )
