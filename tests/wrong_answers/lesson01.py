"""Wrong answers for lesson 01's checks, written as a learner might write them."""

from utils import bpe
from utils.bpe import BPETokenizer, get_pair_counts, merge, train_textbook

from . import WrongAnswer

# --- 1.1 pair_counts ---------------------------------------------------------------------------


def _tally(pairs):
    counts = {}
    for pair in pairs:
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def counts_by_twos(ids):
    return _tally(zip(ids[0::2], ids[1::2], strict=False))


def stops_a_pair_early(ids):
    return _tally((ids[i], ids[i + 1]) for i in range(len(ids) - 2))


def counts_the_ids(ids):
    return _tally(ids)


def sets_one(ids):
    return {(a, b): 1 for a, b in zip(ids, ids[1:], strict=False)}


def a_list_of_items(ids):
    return sorted(_tally(zip(ids, ids[1:], strict=False)).items())


# --- 1.2 merge_pair ----------------------------------------------------------------------------


def keeps_going_after_a_merge(ids, pair, new_id):
    out = []
    for i in range(len(ids)):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
        else:
            out.append(ids[i])
    return out


def loses_the_last_id(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids) - 1:
        if ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def ignores_the_order(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and {ids[i], ids[i + 1]} == set(pair):
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def returns_a_tuple(ids, pair, new_id):
    return tuple(bpe_free_merge(ids, pair, new_id))


def bpe_free_merge(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == tuple(pair):
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


# --- 1.3 encode_with_merges --------------------------------------------------------------------


def encodes_code_points(text, merges):
    ids = [ord(c) for c in text]
    for pair, new_id in merges.items():
        ids = bpe_free_merge(ids, pair, new_id)
    return ids


def applies_the_last_first(text, merges):
    ids = list(text.encode("utf-8"))
    for pair in sorted(merges, key=merges.get, reverse=True):
        ids = bpe_free_merge(ids, pair, merges[pair])
    return ids


def merges_the_most_frequent_first(text, merges):
    ids = list(text.encode("utf-8"))
    while True:
        known = {p: c for p, c in _tally(zip(ids, ids[1:], strict=False)).items() if p in merges}
        if not known:
            return ids
        pair = max(known, key=lambda p: (known[p], -merges[p]))
        ids = bpe_free_merge(ids, pair, merges[pair])


def starts_from_the_bytes_each_time(text, merges):
    data = list(text.encode("utf-8"))
    result = data
    for pair, new_id in merges.items():
        result = bpe_free_merge(data, pair, new_id)
    return result


def a_tokenizer_encodes(text, merges):
    tok = BPETokenizer()
    tok.pattern, tok.merges = None, dict(merges)
    tok._rebuild()
    return tok.encode(text)


# --- 1.4 decode_ids ----------------------------------------------------------------------------


def decodes_token_by_token(ids, vocab):
    return "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)


def drops_invalid_bytes(ids, vocab):
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="ignore")


def decodes_strictly(ids, vocab):
    return b"".join(vocab[i] for i in ids).decode("utf-8")


def a_tokenizer_decodes(ids, vocab):
    tok = BPETokenizer()
    tok.vocab = dict(vocab)
    return tok.decode(ids)


# --- 1.5 train_bpe -----------------------------------------------------------------------------


def trainer(tie="smallest", joined=False, count_once=False, stop=True, last=0):
    """A learner's training loop with one thing changed."""

    def train_bpe(chunks, vocab_size):
        pieces = [list(c.encode("utf-8")) for c in chunks]
        if joined:
            pieces = [sum(pieces, [])]
        merges, counts = {}, None
        for new_id in range(256, vocab_size + last):
            if counts is None or not count_once:
                counts = {}
                for piece in pieces:
                    for pair in zip(piece, piece[1:], strict=False):
                        counts[pair] = counts.get(pair, 0) + 1
            if not counts and stop:
                break
            top = max(counts.values())
            tied = [p for p in counts if counts[p] == top]
            pair = {"smallest": min(tied), "first": tied[0], "largest": max(tied)}[tie]
            if count_once:
                counts.pop(pair)
            merges[pair] = new_id
            pieces = [bpe_free_merge(piece, pair, new_id) for piece in pieces]
        return merges

    return train_bpe


WRONG = [
    WrongAnswer("1.1", "pairs by twos", counts_by_twos, "every other pair is missing"),
    WrongAnswer("1.1", "stops early", stops_a_pair_early, "the last pair of the list is missing"),
    WrongAnswer("1.1", "counts the ids", counts_the_ids, "the ids themselves were counted"),
    WrongAnswer("1.1", "sets 1", sets_one, "every pair got the count 1"),
    WrongAnswer("1.1", "a list of items", a_list_of_items, "expected a dict"),
    WrongAnswer("1.1", "utils.bpe", lambda ids: bpe.get_pair_counts(ids), "rules out"),
    WrongAnswer("1.1", "imported by name", lambda ids: get_pair_counts(ids), "rules out"),
    WrongAnswer("1.2", "no jump after a merge", keeps_going_after_a_merge, "used twice"),
    WrongAnswer("1.2", "loses the last id", loses_the_last_id, "the last id was lost"),
    WrongAnswer("1.2", "either order", ignores_the_order, "matched in both orders"),
    WrongAnswer("1.2", "a tuple", returns_a_tuple, "expected a list of ids"),
    WrongAnswer("1.2", "utils.bpe", lambda ids, pair, new_id: bpe.merge(ids, pair, new_id), "rules out"),
    WrongAnswer("1.2", "imported by name", lambda ids, pair, new_id: merge(ids, pair, new_id), "rules out"),
    WrongAnswer("1.3", "code points", encodes_code_points, "code points"),
    WrongAnswer("1.3", "last merge first", applies_the_last_first, "from the last learned to the first"),
    WrongAnswer("1.3", "most frequent first", merges_the_most_frequent_first, "the most frequent pair of the text"),
    WrongAnswer("1.3", "from the bytes each time", starts_from_the_bytes_each_time, "started again from the bytes"),
    WrongAnswer("1.3", "utils.bpe", lambda text, merges: bpe.apply_merges(list(text.encode()), merges), "rules out"),
    WrongAnswer("1.3", "a tokenizer", a_tokenizer_encodes, "rules out"),
    WrongAnswer("1.4", "token by token", decodes_token_by_token, "each token was decoded on its own"),
    WrongAnswer("1.4", "errors ignored", drops_invalid_bytes, "errors='ignore'"),
    WrongAnswer("1.4", "strict decoding", decodes_strictly, "must become the replacement character"),
    WrongAnswer("1.4", "chr of each id", lambda ids, vocab: "".join(map(chr, ids)), "character code"),
    WrongAnswer("1.4", "a tokenizer", a_tokenizer_decodes, "rules out"),
    WrongAnswer("1.5", "pairs across chunks", trainer(joined=True), "across the end of one chunk"),
    WrongAnswer("1.5", "tie to the first counted", trainer(tie="first"), "a tie went to the pair counted first"),
    WrongAnswer("1.5", "tie to the largest", trainer(tie="largest"), "a tie went to the largest pair"),
    WrongAnswer("1.5", "counted once", trainer(count_once=True), "counted once, before the first merge"),
    WrongAnswer("1.5", "never stops", trainer(stop=False), "training stops early"),
    WrongAnswer("1.5", "one merge too many", trainer(last=1), "one merge too many"),
    WrongAnswer("1.5", "one merge too few", trainer(last=-1), "one merge too few"),
    WrongAnswer("1.5", "train_textbook", lambda chunks, vocab_size: train_textbook(" ".join(chunks), vocab_size),
                "your code used utils.bpe.train_textbook"),
    WrongAnswer("1.5", "a tokenizer", lambda chunks, vocab_size: BPETokenizer().train(" ".join(chunks),
                vocab_size).merges, "rules out"),
]
