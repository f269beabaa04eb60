"""Byte-level byte-pair encoding (BPE), the tokenizer family of GPT-2, GPT-4 and most LLMs since.

The idea
--------
Text is first turned into UTF-8 bytes, so every string is a sequence of ids 0..255 and nothing is ever
"unknown". Training then repeats one step: find the pair of neighbouring ids that occurs most often,
give it a new id (256, 257, ...) and replace every occurrence of the pair by the new id. Each such
*merge* makes the sequence shorter; after `vocab_size - 256` merges the vocabulary has `vocab_size`
tokens, and frequent pieces such as " the" or "ing" have become single tokens.

The two primitive steps are the functions `get_pair_counts` and `merge` below; `apply_merges` shows
how encoding uses the learned merges. The lesson uses them to run BPE by hand, step by step, and
`train_textbook` is that plain loop: count all pairs, merge the most frequent, repeat.
Ties: among pairs with the same count the smallest pair wins, comparing (first id, second id). Some
fixed rule is needed so that training is deterministic; both trainers use this one.

    tok = BPETokenizer()
    tok.train(text, vocab_size=512)          # learns 256 merges (Tiny Shakespeare: about a second)
    ids = tok.encode("To be, or not to be")  # [405, 308, 44, 32, 271, 325, 291, 308]
    tok.decode(ids)                          # "To be, or not to be"
    tok.token_strings(ids)                   # ['To', ' be', ',', ' ', 'or', ' not', ' to', ' be']

Chunks: merges stay inside words
--------------------------------
Before counting pairs the text is cut into chunks with a regular expression (the one of GPT-2 or of
GPT-4, `pattern="gpt2"` or `"gpt4"`): words with their leading space, runs of digits, punctuation,
whitespace. Pairs are only counted and merged inside a chunk, so no token spans "dog." or "the cat"
and the vocabulary is spent on reusable pieces. `pattern=None` treats the whole text as one chunk.

Fast training
-------------
Counting every pair of the whole text again after each merge would cost one pass over the text per
merge. Instead the trainer
  1. counts the distinct chunks once (" the" may occur 5,000 times but is stored once, with its count);
  2. counts the pairs once, weighting each chunk by its count, and keeps an index pair -> chunks that
     contain it;
  3. for each merge, visits only the chunks that contain the merged pair and adjusts the counts of the
     few pairs around each occurrence (the pair before it, the pair after it, and the new pairs with
     the new token); nothing else changes;
  4. finds the most frequent pair with a heap. Counts change all the time, so instead of updating
     entries inside the heap it pushes a new entry whenever a count changes and, when popping, skips
     the entries whose count is out of date ("lazy invalidation").
It learns exactly the merges of `train_textbook`, in the same order (`train(method="textbook")` uses
that one instead).

Special tokens in training: `train(text, vocab_size, special_tokens=["<|endoftext|>"])` cuts the text
at them first and never counts their characters, so no merge crosses or enters one; they are then
registered with the ids after the merges.

Encoding
--------
The text is cut into the same chunks; each distinct chunk is encoded once and remembered in a cache
(a text repeats the same words over and over). Inside a chunk the merges are applied in the order they
were learned (their rank): repeatedly merge the neighbouring pair that was learned first. That gives
exactly the tokens training would have produced.
`encode_file(path)` (or `encode_iter(pieces)`) gives the same ids as encoding the whole text while
reading it a piece at a time: each round encodes only what later text cannot change and carries the
rest over (the last chunk, which a word may continue, and a possible start of a special token).

Decoding
--------
Concatenate the bytes of the tokens and decode them as UTF-8 with errors="replace": a sequence that is
not valid UTF-8 (for example a single token that holds half of a Chinese character) decodes to the
replacement character U+FFFD instead of failing. `decode(encode(s)) == s` for every string `s`.

Special tokens such as "<|endoftext|>" are ids outside the merges, registered with
`register_special_tokens`; `encode` recognises them only when told to (`allowed_special`).

Saved files are one readable JSON file: format, version, pattern, the merges in order (merge i makes
token 256 + i) and the special tokens. The vocabulary is rebuilt from the merges on load.
"""

from __future__ import annotations

import heapq
import json
import re
import sys
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import pairwise
from pathlib import Path

import regex  # the `regex` package: unlike `re`, it knows \p{L} (any letter) and possessive quantifiers

from .char_tokenizer import read_tokenizer_file, token_id_list

# How GPT-2 cut text into chunks: contractions, words, numbers, punctuation, each with an optional
# leading space, and runs of whitespace.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# GPT-4's (cl100k_base): contractions in any case, numbers of at most 3 digits, newlines kept apart
# from the spaces that indent the next line.
GPT4_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)

PATTERNS = {"gpt2": GPT2_PATTERN, "gpt4": GPT4_PATTERN}

FORMAT = "utils.bpe.BPETokenizer"  # written into saved files so that load can recognise them
VERSION = 1

_CACHE_LIMIT = 200_000  # distinct chunks remembered by encode before the cache starts over
_CACHED_CHUNK_LEN = 200  # longer chunks are rare, so they are encoded without being remembered


# ---------------------------------------------------------------------------------------------------
# The two primitive steps of BPE, and encoding by hand with them
# ---------------------------------------------------------------------------------------------------


def get_pair_counts(ids: list[int], counts: dict | None = None) -> dict[tuple[int, int], int]:
    """How often each pair of neighbouring ids occurs: [1, 2, 3, 1, 2] -> {(1, 2): 2, (2, 3): 1, (3, 1): 1}.

    Pass `counts` to add to an existing dictionary (to count several chunks together).
    """
    counts = {} if counts is None else counts
    for pair in pairwise(ids):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of `pair` in `ids` by `new_id`, left to right.

    merge([1, 2, 3, 1, 2], (1, 2), 4) -> [4, 3, 4]. Occurrences cannot overlap: (5, 5) in [5, 5, 5]
    gives [new_id, 5].
    """
    out = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def apply_merges(ids: list[int], merges: dict[tuple[int, int], int]) -> list[int]:
    """Encode a sequence with learned merges: merge the pair learned first, again and again.

    `merges` maps a pair to its new id; ids are handed out in training order, so the smallest new id
    is the merge that was learned first. This is the definition of BPE encoding: simple, and fast
    enough for words, but each round scans the whole sequence, so a long chunk takes rounds x length.
    `BPETokenizer` uses `_apply_merges_heap`, which gives the same ids in time length x log(length).
    """
    ids = list(ids)
    while len(ids) >= 2:
        pair = min(pairwise(ids), key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break  # no neighbouring pair was ever merged: done
        ids = merge(ids, pair, merges[pair])
    return ids


def _apply_merges_heap(ids: list[int], merges: dict[tuple[int, int], int]) -> list[int]:
    """Same result as `apply_merges`, in time n log n instead of up to n * n: for very long chunks.

    The tokens form a linked list (next_/prev arrays over the original positions), and a heap holds
    (rank, position) for each mergeable neighbouring pair. Popping gives the earliest-learned pair and,
    among equal ones, the leftmost, which is the order `apply_merges` uses. A merge can only create
    pairs of a higher rank (they contain the new token), so popping in heap order never goes back.
    Entries whose pair has changed since they were pushed are skipped.
    """
    tokens: list[int | None] = list(ids)
    n = len(tokens)
    next_ = list(range(1, n + 1))  # position of the next live token; n means "none"
    prev = list(range(-1, n - 1))  # position of the previous live token; -1 means "none"
    heap = [(merges[p], i) for i, p in enumerate(pairwise(ids)) if p in merges]
    heapq.heapify(heap)
    while heap:
        rank, i = heapq.heappop(heap)
        j = next_[i]
        if tokens[i] is None or j >= n or merges.get((tokens[i], tokens[j])) != rank:
            continue  # out of date: this pair was already changed by an earlier merge
        tokens[i] = rank  # the new id of a merge is its rank
        tokens[j] = None  # j is absorbed into i
        k = next_[j]
        next_[i] = k
        if k < n:
            prev[k] = i
            if (r := merges.get((tokens[i], tokens[k]))) is not None:
                heapq.heappush(heap, (r, i))
        if (p := prev[i]) >= 0 and (r := merges.get((tokens[p], tokens[i]))) is not None:
            heapq.heappush(heap, (r, p))
    return [t for t in tokens if t is not None]


def _utf8(text: str) -> bytes:
    """text as UTF-8 bytes, with a clear error for strings that have no UTF-8 form."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        bad = text[e.start]
        raise ValueError(
            f"the text contains {bad!r} at position {e.start}, a lone surrogate: half of a UTF-16 pair, "
            f"not a character, so it has no UTF-8 bytes to tokenize. It usually comes from bytes decoded "
            f"with errors='surrogateescape' or from an emoji's UTF-16 pair cut in two (e.g. a JSON '\\ud83d' "
            f"escape on its own). Remove it, or replace it with "
            f"text.encode('utf-8', errors='replace').decode('utf-8')."
        ) from None


def _split(text: str, pattern: str | None) -> list[str]:
    """The chunks of text: pieces that merges never cross."""
    if pattern is None:
        return [text] if text else []
    return _compiled(pattern).findall(text)


_COMPILED: dict[str, regex.Pattern] = {}


def _compiled(pattern: str) -> regex.Pattern:
    if pattern not in _COMPILED:
        _COMPILED[pattern] = regex.compile(PATTERNS[pattern])
    return _COMPILED[pattern]


def _split_specials(text: str, specials: Iterable[str]) -> Iterator[tuple[str, bool]]:
    """(part, is_special) for the pieces of text: the special tokens in it, and the text between them."""
    found = _specials_regex(specials)
    if found is None:
        yield text, False
        return
    for n, part in enumerate(found.split(text)):
        if n % 2:  # split puts the captured separators (the special tokens) at odd positions
            yield part, True
        elif part:
            yield part, False


def _specials_regex(specials: Iterable[str]) -> re.Pattern | None:
    """A regular expression that finds the special tokens, None if there are none."""
    # Longest first, so that a special token that starts another one does not cut it short.
    alternatives = "|".join(re.escape(s) for s in sorted(specials, key=len, reverse=True))
    return re.compile(f"({alternatives})") if alternatives else None


def _training_chunks(text: str, pattern: str | None, special_tokens) -> list[str]:
    """The chunks training counts pairs in: text cut at the special tokens, which are left out, then
    cut by the pattern. So no merge can cross a special token or enter one."""
    _check_pattern(pattern)
    specials = _special_token_texts(special_tokens)
    _utf8(text)  # a clear error for lone surrogates before any work
    parts = [part for part, is_special in _split_specials(text, specials) if not is_special]
    return [chunk for part in parts for chunk in _split(part, pattern)]


def _special_start(text: str, specials: set[str]) -> int:
    """The first position from which the rest of text could still grow into a special token (the rest
    is a proper prefix of one); len(text) if there is none."""
    longest = max(map(len, specials), default=0)
    for i in range(max(0, len(text) - longest + 1), len(text)):
        rest = text[i:]
        if any(len(s) > len(rest) and s.startswith(rest) for s in specials):
            return i
    return len(text)


def _read_pieces(path: Path, chunk_chars: int) -> Iterator[str]:
    # newline="" reads the file as it is, without turning "\r\n" into "\n".
    with open(path, encoding="utf-8", newline="") as f:
        while piece := f.read(chunk_chars):
            yield piece


# --- checks of the arguments, kept apart so that the functions above and below read as the algorithm


def _check_vocab_size(vocab_size) -> None:
    if not isinstance(vocab_size, int) or vocab_size < 256:
        raise ValueError(
            f"vocab_size must be an integer >= 256 (the 256 byte values come first), got {vocab_size!r}"
        )


def _check_pattern(pattern) -> None:
    if pattern is not None and pattern not in PATTERNS:
        raise ValueError(f"unknown pattern {pattern!r}: use 'gpt4', 'gpt2' or None")


def _check_special_token(text) -> None:
    if not isinstance(text, str) or not text:
        raise ValueError(f"a special token must be a non-empty string, got {text!r}")
    _utf8(text)


def _special_token_texts(special_tokens) -> list[str]:
    """The special tokens given to training as a list: None is none, one string is one token."""
    if special_tokens is None:
        return []
    if isinstance(special_tokens, str):
        special_tokens = [special_tokens]
    if isinstance(special_tokens, dict):
        raise TypeError(
            "train gives special tokens the ids after the merges, so it takes their texts, e.g. "
            "['<|endoftext|>']; to choose the ids, call register_special_tokens({...}) after training"
        )
    special_tokens = list(special_tokens)
    for text in special_tokens:
        _check_special_token(text)
    return special_tokens


def _check_text(text) -> None:
    if not isinstance(text, str):
        raise TypeError(f"encode takes a str, got {type(text).__name__}")


def _check_chunk_chars(chunk_chars) -> None:
    if not isinstance(chunk_chars, int) or isinstance(chunk_chars, bool) or chunk_chars < 1:
        raise ValueError(f"chunk_chars must be an integer >= 1, got {chunk_chars!r}")


def _checked_file(path) -> Path:
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"cannot encode {path}: it {what}")
    return path


# ---------------------------------------------------------------------------------------------------
# Training, the textbook way: recount every pair after every merge
# ---------------------------------------------------------------------------------------------------


def train_textbook(
    text: str,
    vocab_size: int,
    pattern: str | None = "gpt4",
    *,
    special_tokens: Iterable[str] | None = None,
    verbose: bool = False,
) -> dict[tuple[int, int], int]:
    """BPE training as lesson 01 does it by hand: count all pairs, merge the most frequent one, repeat.

    Returns the merges {pair: new_id} in the order learned: exactly those of `BPETokenizer.train`, which
    gets them much faster. Here each merge recounts every pair of every chunk, one pass over the text
    per merge: fine for a few hundred merges on a few pages.
    Ties: among pairs with the same count the smallest pair (first id, then second id) wins. Any fixed
    rule would do; one is needed so that training is deterministic, the same text giving the same
    vocabulary whatever order the pairs happen to be counted in.
    Stops early, with a warning, when no pair is left. pattern, special_tokens, verbose: as for `train`.
    """
    _check_vocab_size(vocab_size)
    chunks = [list(chunk.encode("utf-8")) for chunk in _training_chunks(text, pattern, special_tokens)]
    merges = {}
    vocab = {i: bytes([i]) for i in range(256)}  # only for verbose printing
    for new_id in range(256, vocab_size):
        counts = {}
        for ids in chunks:
            get_pair_counts(ids, counts)  # pairs inside each chunk, never across two
        if not counts:
            _warn_stopped(len(merges), vocab_size)
            break
        top = max(counts.values())
        pair = min(p for p, c in counts.items() if c == top)  # the tie rule: the smallest pair
        merges[pair] = new_id
        chunks = [merge(ids, pair, new_id) for ids in chunks]
        if verbose:
            _print_merge(vocab, pair, new_id, vocab_size - 256, top)
    return merges


def _warn_stopped(num_merges: int, vocab_size: int) -> None:
    """Warn that no pair was left to merge, pointing at the first caller outside this module."""
    level, frame = 1, sys._getframe(0)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        level, frame = level + 1, frame.f_back
    warnings.warn(
        f"training stopped after {num_merges} merges: no pair of tokens is left to merge "
        f"(the text is too short for vocab_size {vocab_size})",
        stacklevel=level,
    )


def _render(token: bytes) -> str:
    """A token's bytes for display: text where they are valid UTF-8, \\xNN escapes where not."""
    return repr(token.decode("utf-8", errors="backslashreplace"))


def _print_merge(vocab: dict[int, bytes], pair, new_id: int, num_merges: int, count: int) -> None:
    vocab[new_id] = vocab[pair[0]] + vocab[pair[1]]
    print(f"merge {new_id - 255}/{num_merges}: {pair} -> {new_id} {_render(vocab[new_id])} ({count:,} occurrences)")


# ---------------------------------------------------------------------------------------------------
# Training, fast: incremental pair counts over distinct chunks
# ---------------------------------------------------------------------------------------------------


def _train_fast(text, vocab_size, pattern, *, special_tokens, verbose) -> dict[tuple[int, int], int]:
    """The same merges as `train_textbook`, counting each distinct chunk once (see "Fast training")."""
    _check_vocab_size(vocab_size)
    chunk_counts = Counter(_training_chunks(text, pattern, special_tokens))
    return _train_merges(chunk_counts, vocab_size - 256, verbose=verbose)


def _merge_chunk(chunk_id, ids, pair, new_id, freq, counts, where, changed):
    """Merge `pair` inside one chunk and update the pair counts around each occurrence.

    The chunk occurs `freq` times in the text, so every pair it gains or loses counts `freq` times.
    `where` (pair -> chunk ids) gains this chunk for each new pair; it is never pruned, so it may list
    chunks that no longer hold a pair, which then simply have no occurrence here. The pairs whose count
    changed go into `changed`. Returns the merged ids (the same list if the pair was not found).
    """
    a, b = pair
    n = len(ids)

    def add(p, amount):
        c = counts.get(p, 0) + amount
        if c:
            counts[p] = c
        else:
            del counts[p]
        changed.add(p)

    out = []
    new_positions = []  # where the new token lands in `out`
    copied = 0  # ids[:copied] are already in `out`
    search = 0
    prev_end = -2  # index of the `b` of the previous occurrence
    while True:
        try:
            j = ids.index(a, search, n - 1)  # list.index scans in C; an `a` in last place cannot start a pair
        except ValueError:
            break
        if ids[j + 1] != b:
            search = j + 1
            continue
        # Old pairs that disappear: (before, a), (a, b), (b, after). When two occurrences touch
        # (a b a b), the pair between them is removed once, as the "after" pair of the first one.
        if j > 0 and j - 1 != prev_end:
            add((ids[j - 1], a), -freq)
        add(pair, -freq)
        if j + 2 < n:
            add((b, ids[j + 2]), -freq)
        out.extend(ids[copied:j])
        out.append(new_id)
        new_positions.append(len(out) - 1)
        copied = search = j + 2
        prev_end = j + 1
    if not new_positions:
        return ids
    out.extend(ids[copied:])
    # New pairs: (before, new) and (new, after). A pair of two new tokens is counted once, as the
    # "before" pair of the second one.
    is_new = set(new_positions)
    for k in new_positions:
        if k > 0:
            p = (out[k - 1], new_id)
            add(p, freq)
            where.setdefault(p, set()).add(chunk_id)
        if k + 1 < len(out) and k + 1 not in is_new:
            p = (new_id, out[k + 1])
            add(p, freq)
            where.setdefault(p, set()).add(chunk_id)
    return out


def _train_merges(
    chunk_counts: dict[str, int], num_merges: int, verbose: bool = False
) -> dict[tuple[int, int], int]:
    """Learn up to `num_merges` merges from distinct chunks and how often each occurs.

    Returns {pair: new_id} in the order learned. Stops early (with a warning) when no pair is left.
    """
    chunks = [list(_utf8(c)) for c in chunk_counts]
    freqs = list(chunk_counts.values())

    counts: dict[tuple[int, int], int] = {}
    where: dict[tuple[int, int], set[int]] = {}  # pair -> chunks that (may) contain it
    for chunk_id, (ids, freq) in enumerate(zip(chunks, freqs, strict=True)):
        for p in pairwise(ids):
            counts[p] = counts.get(p, 0) + freq
            where.setdefault(p, set()).add(chunk_id)

    # Max-heap via negated counts; equal counts fall back to comparing the pairs, smallest first.
    heap = [(-c, p) for p, c in counts.items()]
    heapq.heapify(heap)

    merges: dict[tuple[int, int], int] = {}
    vocab = {i: bytes([i]) for i in range(256)}  # only for verbose printing
    for new_id in range(256, 256 + num_merges):
        while heap and counts.get(heap[0][1], 0) != -heap[0][0]:
            heapq.heappop(heap)  # stale: the count of this pair changed after the entry was pushed
        if not heap:
            _warn_stopped(len(merges), 256 + num_merges)
            break
        neg_count, pair = heapq.heappop(heap)
        merges[pair] = new_id

        changed: set[tuple[int, int]] = set()
        for chunk_id in where.pop(pair):
            chunks[chunk_id] = _merge_chunk(
                chunk_id, chunks[chunk_id], pair, new_id, freqs[chunk_id], counts, where, changed
            )
        for p in changed:
            if p in counts:
                heapq.heappush(heap, (-counts[p], p))

        if verbose:
            _print_merge(vocab, pair, new_id, num_merges, -neg_count)
    return merges


_TRAINERS = {"fast": _train_fast, "textbook": train_textbook}  # BPETokenizer.train(method=...)


def _trainer(method: str):
    if method not in _TRAINERS:
        raise ValueError(f"unknown method {method!r}: use 'fast' or 'textbook'")
    return _TRAINERS[method]


# ---------------------------------------------------------------------------------------------------
# The tokenizer
# ---------------------------------------------------------------------------------------------------


class BPETokenizer:
    """Byte-level BPE tokenizer with GPT-2/GPT-4 style chunking and special tokens.

    A new tokenizer has no merges: it encodes text as raw UTF-8 bytes (vocabulary of 256). Call
    `train` or `BPETokenizer.load` to get a useful one.

    Attributes:
        merges: {(a, b): new_id} in the order learned (new ids 256, 257, ...).
        vocab: {id: bytes} for every token, special tokens included (as their UTF-8 text).
        special_tokens: {text: id}, e.g. {"<|endoftext|>": 100257}.
        pattern: "gpt4", "gpt2" or None, the chunking used in training and encoding.
    """

    def __init__(self):
        self.pattern: str | None = "gpt4"
        self.merges: dict[tuple[int, int], int] = {}
        self.special_tokens: dict[str, int] = {}
        self.vocab: dict[int, bytes] = {}
        self._rebuild()

    def _rebuild(self) -> None:
        """Recompute the vocabulary from merges and special tokens, and forget cached encodings."""
        self.vocab = {i: bytes([i]) for i in range(256)}
        for (a, b), new_id in self.merges.items():
            self.vocab[new_id] = self.vocab[a] + self.vocab[b]
        for text, i in self.special_tokens.items():
            self.vocab[i] = text.encode("utf-8")
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        """Largest id + 1: the number of rows an embedding table needs to give every id a row.

        Equal to the number of tokens unless a special token was given an id beyond the merges.
        """
        return max(self.vocab) + 1

    # --- training ------------------------------------------------------------------------------------

    def train(
        self,
        text: str,
        vocab_size: int,
        pattern: str | None = "gpt4",
        verbose: bool = False,
        *,
        special_tokens: Iterable[str] | None = None,
        method: str = "fast",
    ):
        """Learn `vocab_size - 256` merges from `text`. Returns the tokenizer itself.

        Each merge joins the most frequent pair of neighbouring tokens; among pairs with the same count
        the smallest pair (first id, then second id) wins, so that training is deterministic.
        pattern: "gpt4" (default) or "gpt2" cut the text into chunks with that model's regular
        expression, so merges stay inside words. None makes the whole text one chunk, so merges cross
        spaces and punctuation; fine for a lesson-sized text, but it loses the speed-up of counting
        each distinct word once (all of Tiny Shakespeare to 512 tokens: seconds with a pattern, tens
        of seconds without). verbose prints every merge.
        special_tokens: texts such as ["<|endoftext|>"] that separate documents in `text`. Training
        cuts the text at them and never counts their characters, so no merge crosses or enters one
        (without this, "<|" soon becomes a token); they are then registered with the ids after the
        merges.
        method: "fast" (default) or "textbook" (`train_textbook`, the plain loop: the same merges,
        slower).
        Training starts from scratch and forgets earlier merges and special tokens.
        """
        specials = _special_token_texts(special_tokens)  # a list: it is used twice
        merges = _trainer(method)(text, vocab_size, pattern, special_tokens=specials, verbose=verbose)
        self.pattern = pattern
        self.merges = merges
        self.special_tokens = {}
        self._rebuild()
        self.register_special_tokens(specials)
        return self

    def truncated(self, vocab_size: int) -> BPETokenizer:
        """The tokenizer made of only the first `vocab_size - 256` merges (special tokens dropped).

        BPE learns merges one after the other, so this is exactly what training to `vocab_size` would
        have given: one training run yields every smaller vocabulary too.
        """
        if not isinstance(vocab_size, int) or not 256 <= vocab_size <= 256 + len(self.merges):
            raise ValueError(f"vocab_size must be an integer from 256 to {256 + len(self.merges)} "
                             f"(this tokenizer has {len(self.merges)} merges), got {vocab_size!r}")
        tok = BPETokenizer()
        tok.pattern = self.pattern
        tok.merges = dict(list(self.merges.items())[: vocab_size - 256])
        tok._rebuild()
        return tok

    # --- special tokens ------------------------------------------------------------------------------

    def register_special_tokens(self, tokens: dict[str, int] | Iterable[str]) -> dict[str, int]:
        """Add special tokens: {"<|endoftext|>": 100257} with chosen ids, or ["<|endoftext|>", ...] to
        give them the next free ids after the merges. Returns all special tokens {text: id}.
        """
        if isinstance(tokens, str):
            tokens = [tokens]
        if not isinstance(tokens, dict):
            tokens = {t: None for t in tokens}
        for text, i in tokens.items():
            _check_special_token(text)
            if i is None:
                i = self.special_tokens.get(text, self.vocab_size)
            if not isinstance(i, int) or isinstance(i, bool) or i < 0:
                raise ValueError(f"the id of special token {text!r} must be an integer >= 0, got {i!r}")
            if text in self.special_tokens:
                if self.special_tokens[text] != i:
                    raise ValueError(f"{text!r} is already a special token, id {self.special_tokens[text]}")
                continue
            if i in self.vocab:
                raise ValueError(
                    f"id {i} for special token {text!r} is already taken by {self.vocab[i]!r}; "
                    f"ids 0 to {255 + len(self.merges)} belong to bytes and merges"
                )
            self.special_tokens[text] = i
            self.vocab[i] = text.encode("utf-8")
        return dict(self.special_tokens)

    # --- encoding ------------------------------------------------------------------------------------

    def encode(self, text: str, allowed_special: str | set[str] = "none") -> list[int]:
        """The token ids of `text`.

        allowed_special: which special tokens written in the text become their special id:
        "none" (default: "<|endoftext|>" in the text is ordinary text, so that user text cannot
        smuggle in control tokens), "all", or a set of special token texts.
        A string with a lone surrogate (e.g. "\\ud800") has no UTF-8 form and raises ValueError.
        """
        _check_text(text)
        ids = []
        for part, is_special in _split_specials(text, self._allowed(allowed_special)):
            if is_special:
                ids.append(self.special_tokens[part])
            else:
                ids.extend(self._encode_ordinary(part))
        return ids

    def _allowed(self, allowed_special: str | set[str]) -> set[str]:
        """The special tokens that `allowed_special` lets encode recognise."""
        if allowed_special == "none":
            return set()
        if allowed_special == "all":
            return set(self.special_tokens)
        if isinstance(allowed_special, str):
            raise ValueError(
                f"allowed_special must be 'all', 'none' or a set of special tokens such as "
                f"{{{allowed_special!r}}}, got {allowed_special!r}"
            )
        allowed = set(allowed_special)
        unknown = allowed - set(self.special_tokens)
        if unknown:
            raise ValueError(
                f"not registered as special tokens: {sorted(unknown)}; registered: {sorted(self.special_tokens)}"
            )
        return allowed

    def _encode_ordinary(self, text: str) -> list[int]:
        _utf8(text)  # check once for the whole text, so the error can name the position
        return self._encode_chunks(_split(text, self.pattern))

    def _encode_chunks(self, chunks: Iterable[str]) -> list[int]:
        cache = self._cache
        ids: list[int] = []
        for chunk in chunks:
            chunk_ids = cache.get(chunk)
            if chunk_ids is None:
                chunk_ids = self._encode_chunk(chunk.encode("utf-8"))
                if len(chunk) <= _CACHED_CHUNK_LEN:
                    if len(cache) >= _CACHE_LIMIT:
                        cache.clear()  # crude, but keeps memory bounded on endless streams of new words
                    cache[chunk] = chunk_ids
            ids.extend(chunk_ids)
        return ids

    def _encode_chunk(self, data: bytes) -> list[int]:
        # The heap version of apply_merges: same tokens, and no slowdown on a chunk of 100,000 bytes.
        return _apply_merges_heap(list(data), self.merges)

    # --- encoding text that comes in pieces ------------------------------------------------------------

    def encode_iter(self, pieces: Iterable[str], allowed_special: str | set[str] = "none") -> Iterator[int]:
        """The ids of "".join(pieces), yielded while the pieces come in: the same ids as `encode` of the
        joined text, without ever holding all of it. A piece may end anywhere, inside a word or inside
        a special token. allowed_special: as for `encode`.
        """
        return self._encode_stream(pieces, self._allowed(allowed_special))

    def encode_file(
        self, path: str | Path, chunk_chars: int = 1 << 20, allowed_special: str | set[str] = "none"
    ) -> Iterator[int]:
        """The ids of a UTF-8 text file, read `chunk_chars` characters at a time, as an iterator.

        The same ids as `encode` of the whole file (read as it is: "\\r\\n" stays two characters), while
        holding only about `chunk_chars` characters of it: collect them with list(...) or
        np.fromiter(..., dtype=np.int32). With pattern=None the whole file is one chunk and is held.
        """
        _check_chunk_chars(chunk_chars)
        return self.encode_iter(_read_pieces(_checked_file(path), chunk_chars), allowed_special)

    def _encode_stream(self, pieces: Iterable[str], allowed: set[str]) -> Iterator[int]:
        # Encoding each piece on its own could give other ids than encoding the whole text: a word cut
        # in two becomes two chunks, half a special token becomes ordinary text. So each round encodes
        # only the start of the text that no later text can change, and carries the rest over.
        found = _specials_regex(allowed)
        carry = ""
        for piece in pieces:
            ids, carry = self._encode_settled(carry + piece, found, allowed)
            yield from ids
        yield from self.encode(carry, allowed)  # the end of the text: nothing can change it any more

    def _encode_settled(self, text: str, found: re.Pattern | None, allowed: set[str]) -> tuple[list[int], str]:
        """The ids of the start of `text` that more text after it cannot change, and the rest of `text`.

        What more text can change: the last chunk (a word may go on; with pattern=None the one chunk
        is everything) and an end of `text` that may be the start of a special token. The chunks
        before the last one are settled: the patterns end a chunk where the next character cannot
        continue it, so a chunk with more of `text` after it ends there in any longer text too (the
        tests check this on odd whitespace, digits, contractions and random cuts, for both patterns).
        """
        _utf8(text)
        hold = _special_start(text, allowed)  # from here on, text may be the start of a special token
        ids: list[int] = []
        start = 0  # text[:start] is encoded
        specials = found.finditer(text) if found else []
        for m in specials:
            if m.start() >= hold:
                break
            ids += self._encode_ordinary(text[start : m.start()])  # ends at a special token: settled
            ids.append(self.special_tokens[m.group()])
            start = m.end()
        if start >= hold:  # a special token reached into the held-back end
            return ids, text[start:]
        chunks = _split(text[start:hold], self.pattern)
        ids += self._encode_chunks(chunks[:-1])
        return ids, chunks[-1] + text[hold:]

    # --- decoding ------------------------------------------------------------------------------------

    def _token_bytes(self, ids) -> list[bytes]:
        ids = token_id_list(ids)
        self._check_known_ids(ids)
        return [self.vocab[i] for i in ids]

    def _check_known_ids(self, ids: list) -> None:
        for i in ids:
            if i not in self.vocab:
                raise ValueError(
                    f"id {i!r} is not in the vocabulary (vocab_size {self.vocab_size}: bytes 0-255, merges "
                    f"256-{255 + len(self.merges)}, special tokens {sorted(self.special_tokens.values())})"
                )

    def decode(self, ids: Iterable[int]) -> str:
        """The text of a list of ids (a 1-D tensor works too).

        Bytes that are not valid UTF-8 (a token holding half a character, or ids in an order a model
        made up) become the replacement character U+FFFD, as with bytes.decode(errors="replace").
        """
        return b"".join(self._token_bytes(ids)).decode("utf-8", errors="replace")

    def token_strings(self, ids: Iterable[int], errors: str = "backslashreplace") -> list[str]:
        """The text of each token on its own, for showing token boundaries.

        A token whose bytes are not valid UTF-8 on their own (e.g. the first two of the three bytes of
        a Chinese character) shows those bytes as escapes like '\\xe5\\xad' (errors="backslashreplace",
        the default), or as U+FFFD with errors="replace".
        """
        return [t.decode("utf-8", errors=errors) for t in self._token_bytes(ids)]

    # --- saving and loading --------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the tokenizer to one readable JSON file (one merge per line)."""
        header = {
            "format": FORMAT,
            "version": VERSION,
            "pattern": self.pattern,
            "special_tokens": self.special_tokens,
            "note": "merges[i] = [a, b] joins tokens a and b into token 256 + i; tokens 0-255 are the bytes",
        }
        lines = [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in header.items()]
        merges = ",\n".join(f"    [{a}, {b}]" for a, b in self.merges)
        text = "{\n" + "\n".join(lines) + '\n  "merges": [\n' + merges + "\n  ]\n}\n"
        Path(path).write_text(text, encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        """Read a tokenizer written by `save`; it encodes exactly as the saved one did."""
        data = read_tokenizer_file(path, FORMAT, VERSION, "BPETokenizer")
        if data.get("pattern") is not None and data["pattern"] not in PATTERNS:
            raise ValueError(f"{path} names an unknown pattern {data['pattern']!r}")
        tok = cls()
        tok.pattern = data.get("pattern")
        merges = {}
        for i, pair in enumerate(data.get("merges", [])):
            new_id = 256 + i
            ok = isinstance(pair, list) and len(pair) == 2
            ok = ok and all(type(x) is int and 0 <= x < new_id for x in pair)
            if not ok or tuple(pair) in merges:
                raise ValueError(f"{path}: merge {i} is {pair!r}; expected a new pair [a, b] of earlier ids")
            merges[tuple(pair)] = new_id
        tok.merges = merges
        tok._rebuild()
        tok.register_special_tokens(data.get("special_tokens", {}))
        return tok

    def __repr__(self) -> str:
        return (
            f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, "
            f"pattern={self.pattern!r}, special_tokens={len(self.special_tokens)})"
        )
