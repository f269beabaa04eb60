"""The character tokenizer and the byte-level BPE: round trips for every string, clear errors, saved files,
special tokens (in training too), a fast trainer that matches the textbook one merge for merge, and
encoding a file in pieces with the same ids as encoding it whole."""

import itertools
import json
import re
import time
import warnings
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utils.bpe import (
    PATTERNS,
    BPETokenizer,
    _apply_merges_heap,
    _split,
    apply_merges,
    get_pair_counts,
    merge,
    train_textbook,
)
from utils.char_tokenizer import CharTokenizer

DATA = Path(__file__).resolve().parents[1] / "data"
SHAKESPEARE = (DATA / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
LUNYU = (DATA / "lunyu" / "lunyu.txt").read_text(encoding="utf-8")
SMALL_TEXT = SHAKESPEARE[:20_000] + LUNYU[:4_000]  # English and Chinese, so merges join UTF-8 bytes too

# Every code point but the surrogates, which are not characters and have no UTF-8 form.
any_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]))


@pytest.fixture(scope="module")
def tok():
    return BPETokenizer().train(SMALL_TEXT, 512)


@pytest.fixture(scope="module", params=["gpt4", "gpt2", None])
def tok_any_pattern(request):
    return BPETokenizer().train(SMALL_TEXT[:8_000] + LUNYU[:1_000], 320, pattern=request.param)


# --- the primitive steps and a hand-checked example ------------------------------------------------------


def test_pair_counts_and_merge():
    assert get_pair_counts([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert get_pair_counts([7]) == {} and get_pair_counts([]) == {}
    assert get_pair_counts([1, 2], {(1, 2): 5}) == {(1, 2): 6}
    assert merge([1, 2, 3, 1, 2], (1, 2), 4) == [4, 3, 4]
    assert merge([5, 5, 5], (5, 5), 9) == [9, 5]  # occurrences do not overlap, left one first
    assert merge([5, 5, 5, 5], (5, 5), 9) == [9, 9]


def test_hand_checked_example():
    # "aaabdaaabac": aa occurs 4 times (overlaps count) -> 256. Then (256, a) and (a, b) both occur
    # twice; the tie goes to the smaller pair (97, 98) -> 257. Then (256, 257) twice -> 258.
    tok = BPETokenizer().train("aaabdaaabac", 259, pattern=None)
    assert tok.merges == {(97, 97): 256, (97, 98): 257, (256, 257): 258}
    assert tok.vocab[258] == b"aaab"
    assert tok.encode("aaabdaaabac") == [258, ord("d"), 258, ord("a"), ord("c")]
    assert tok.token_strings(tok.encode("aaabdaaabac")) == ["aaab", "d", "aaab", "a", "c"]


def reference_merges(text, num_merges, pattern):
    """The textbook trainer written again here, over distinct chunks, to check `train_textbook` too."""
    chunks = Counter(_split(text, pattern))
    seqs = {c: list(c.encode("utf-8")) for c in chunks}
    merges = {}
    for new_id in range(256, 256 + num_merges):
        counts = {}
        for c, freq in chunks.items():
            for pair, n in get_pair_counts(seqs[c]).items():
                counts[pair] = counts.get(pair, 0) + n * freq
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        merges[best] = new_id
        seqs = {c: merge(s, best, new_id) for c, s in seqs.items()}
    return merges


@pytest.mark.parametrize("pattern", ["gpt4", "gpt2", None])
def test_fast_trainer_matches_the_textbook_one(pattern):
    text = SHAKESPEARE[:3_000] + LUNYU[:500] + "aaaa abab ababab  \n\n\n 1234567 ...!!"
    expected = reference_merges(text, 60, pattern)
    assert BPETokenizer().train(text, 256 + 60, pattern=pattern).merges == expected
    assert train_textbook(text, 256 + 60, pattern=pattern) == expected


@pytest.mark.parametrize(
    "text, pattern, num_merges",
    [
        (SHAKESPEARE[:20_000], "gpt4", 200),
        (SHAKESPEARE[20_000:40_000], "gpt2", 120),
        (SHAKESPEARE[:4_000], None, 150),
        (LUNYU[:3_000], "gpt4", 200),
    ],
    ids=["shakespeare-gpt4", "shakespeare-gpt2", "shakespeare-no-pattern", "analects-gpt4"],
)
def test_textbook_and_fast_trainers_learn_the_same_merges_on_real_text(text, pattern, num_merges):
    # The textbook loop makes one pass over the text per merge: a few seconds for 20 kB and 200 merges.
    textbook = train_textbook(text, 256 + num_merges, pattern=pattern)
    fast = BPETokenizer().train(text, 256 + num_merges, pattern=pattern)
    assert len(textbook) == num_merges
    assert list(fast.merges.items()) == list(textbook.items())  # same merges, in the same order


def test_train_can_use_the_textbook_trainer():
    text = SHAKESPEARE[:3_000]
    tok = BPETokenizer().train(text, 300, method="textbook", special_tokens=["<|endoftext|>"])
    assert list(tok.merges.items()) == list(train_textbook(text, 300).items())
    assert tok.vocab == BPETokenizer().train(text, 300, special_tokens=["<|endoftext|>"]).vocab


@given(st.text(alphabet="ab \n", max_size=40), st.integers(1, 12))
@settings(max_examples=100, deadline=None)
def test_fast_trainer_matches_the_textbook_one_on_repetitive_text(text, num_merges):
    # Few letters mean many overlapping and touching occurrences (aaaa, abab): the hard cases for
    # incremental counting.
    for pattern in ("gpt4", None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # short texts run out of pairs: tested elsewhere
            got = BPETokenizer().train(text, 256 + num_merges, pattern=pattern).merges
            textbook = train_textbook(text, 256 + num_merges, pattern=pattern)
        assert got == textbook == reference_merges(text, num_merges, pattern)


def test_training_is_deterministic():
    a = BPETokenizer().train(SMALL_TEXT, 400)
    b = BPETokenizer().train(SMALL_TEXT, 400)
    assert list(a.merges.items()) == list(b.merges.items())


def test_training_arguments_are_checked():
    with pytest.raises(ValueError, match="vocab_size must be an integer >= 256"):
        BPETokenizer().train("hello", 100)
    with pytest.raises(ValueError, match="unknown pattern 'gpt3'"):
        BPETokenizer().train("hello", 300, pattern="gpt3")
    with pytest.raises(ValueError, match="lone surrogate"):
        BPETokenizer().train("hello \ud800", 300)
    with pytest.raises(ValueError, match="unknown method 'slow': use 'fast' or 'textbook'"):
        BPETokenizer().train("hello", 300, method="slow")
    with pytest.raises(ValueError, match="vocab_size must be an integer >= 256"):
        train_textbook("hello", 100)
    with pytest.raises(ValueError, match="unknown pattern 'gpt3'"):
        train_textbook("hello", 300, pattern="gpt3")
    for method in ("fast", "textbook"):
        with pytest.warns(UserWarning, match="stopped after 1 merges") as caught:
            tok = BPETokenizer().train("ab", 300, method=method)
        assert tok.vocab_size == 257
        assert caught[0].filename == __file__  # the warning points at the caller's line, not into utils/bpe.py
        assert BPETokenizer().train("hello", 256, method=method).merges == {}
    with pytest.warns(UserWarning, match="stopped after 1 merges") as caught:
        assert train_textbook("ab", 300) == {(97, 98): 256}
    assert caught[0].filename == __file__


def test_verbose_training_prints_each_merge(capsys):
    BPETokenizer().train("aaabdaaabac", 259, pattern=None, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and "(97, 97) -> 256" in lines[0] and "'aa'" in lines[0]
    BPETokenizer().train("aaabdaaabac", 259, pattern=None, verbose=True, method="textbook")
    assert capsys.readouterr().out.splitlines() == lines


def test_vocab_is_built_from_the_merges(tok):
    assert len(tok.merges) == 256 and tok.vocab_size == len(tok.vocab) == 512
    for (a, b), new_id in tok.merges.items():
        assert tok.vocab[new_id] == tok.vocab[a] + tok.vocab[b]


def test_merges_stay_inside_words_with_a_pattern():
    text = SHAKESPEARE[:20_000]
    letter_then_space = re.compile(rb"[A-Za-z][ ,.]")  # a token that ends one word and starts the next
    with_pattern = BPETokenizer().train(text, 400, pattern="gpt4")
    without = BPETokenizer().train(text, 400, pattern=None)
    assert not any(letter_then_space.search(t) for t in with_pattern.vocab.values())
    assert any(letter_then_space.search(t) for t in without.vocab.values())


# --- round trips ---------------------------------------------------------------------------------------


@given(any_text)
@settings(max_examples=300, deadline=None)
def test_round_trip_any_string(tok, text):
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert all(0 <= i < tok.vocab_size for i in ids)


@given(any_text)
@settings(max_examples=100, deadline=None)
def test_round_trip_every_pattern(tok_any_pattern, text):
    assert tok_any_pattern.decode(tok_any_pattern.encode(text)) == text


@given(any_text)
@settings(max_examples=200, deadline=None)
def test_chunks_cover_the_whole_text(text):
    for pattern in PATTERNS:
        assert "".join(_split(text, pattern)) == text


@given(st.text(alphabet="abcde fghij\n,.的子曰", max_size=300))
@settings(max_examples=200, deadline=None)
def test_heap_encoding_equals_the_definition(tok, text):
    ids = list(text.encode("utf-8"))
    assert _apply_merges_heap(ids, tok.merges) == apply_merges(ids, tok.merges)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "\n\n",
        "\t \r\n  \n",
        "🙂👍🏽👨‍👩‍👧‍👦 🇫🇷",
        LUNYU[:2_000],
        "e\u0301 n\u0303 \u0915\u094d\u0937 Z\u0351\u0352\u0353",  # combining marks
        "Hello, 世界! Привет мир. مرحبا 123456789 'll 'VE",
        "\ufffd replacement char and \x00 NUL",
        "<|endoftext|>",
    ],
)
def test_round_trip_examples(tok, text):
    assert tok.decode(tok.encode(text)) == text
    assert tok.decode(tok.encode(text, allowed_special="all")) == text


def test_a_100_000_character_line(tok):
    line = SHAKESPEARE[:120_000].replace("\n", " ")[:100_000]
    assert len(line) == 100_000
    assert tok.decode(tok.encode(line)) == line
    # One single chunk of 100,000 characters (letters only, no space): the heap keeps this quick.
    word = ("abcdefghij" * 10_000) + ("子曰学而" * 2_500)
    start = time.perf_counter()
    ids = tok.encode(word)
    assert time.perf_counter() - start < 5
    assert tok.decode(ids) == word


def test_encoding_compresses_and_uses_the_cache(tok):
    text = SHAKESPEARE[:10_000]
    ids = tok.encode(text)
    assert len(text.encode("utf-8")) / len(ids) > 1.8  # about 2 bytes per token at this small vocab
    assert tok.encode(text) == ids  # second time from the cache: same ids


# --- errors --------------------------------------------------------------------------------------------


def test_lone_surrogate_is_a_clear_error(tok):
    with pytest.raises(ValueError, match=r"'\\ud800' at position 3, a lone surrogate.*Remove it"):
        tok.encode("abc\ud800def")


def test_unknown_ids_are_a_clear_error(tok):
    with pytest.raises(ValueError, match=r"id 512 is not in the vocabulary \(vocab_size 512"):
        tok.decode([65, 512])
    with pytest.raises(ValueError, match=r"id -1 is not in the vocabulary"):
        tok.decode([-1])
    with pytest.raises(ValueError, match=r"id 'a' is not in the vocabulary"):
        tok.token_strings(["a"])


def test_invalid_utf8_decodes_with_replacement(tok):
    first_byte = "子".encode()[:1]
    assert tok.decode([first_byte[0]]) == "\ufffd"
    assert tok.decode([first_byte[0], ord("a")]) == "\ufffda"
    assert tok.token_strings([first_byte[0]]) == ["\\xe5"]
    assert tok.token_strings([first_byte[0]], errors="replace") == ["\ufffd"]


def test_token_strings_join_back_to_ascii_text(tok):
    text = "First Citizen:\nBefore we proceed any further, hear me speak."
    pieces = tok.token_strings(tok.encode(text))
    assert "".join(pieces) == text and len(pieces) < len(text)


def test_decode_accepts_a_tensor(tok):
    torch = pytest.importorskip("torch")
    ids = tok.encode("To be, or not to be")
    assert tok.decode(torch.tensor(ids)) == "To be, or not to be"


# --- special tokens ------------------------------------------------------------------------------------


def test_special_tokens():
    tok = BPETokenizer().train(SMALL_TEXT[:5_000], 300)
    assert tok.register_special_tokens(["<|endoftext|>"]) == {"<|endoftext|>": 300}  # next free id
    tok.register_special_tokens({"<|pad|>": 100_257})
    assert tok.vocab_size == 100_258
    text = "the end<|endoftext|>a new start<|pad|>"
    ids = tok.encode(text, allowed_special="all")
    assert ids.count(300) == 1 and ids[-1] == 100_257
    assert tok.decode(ids) == text
    assert tok.token_strings(ids)[-1] == "<|pad|>"
    # Not allowed: the same characters are ordinary text, so user text cannot inject control tokens.
    assert 300 not in tok.encode(text) and tok.decode(tok.encode(text)) == text
    assert tok.encode(text, allowed_special="none") == tok.encode(text)
    only_eot = tok.encode(text, allowed_special={"<|endoftext|>"})
    assert 300 in only_eot and 100_257 not in only_eot
    with pytest.raises(ValueError, match="not registered as special tokens"):
        tok.encode(text, allowed_special={"<|unknown|>"})
    with pytest.raises(ValueError, match="allowed_special must be 'all', 'none' or a set"):
        tok.encode(text, allowed_special="<|endoftext|>")
    with pytest.raises(ValueError, match="already taken"):
        tok.register_special_tokens({"<|x|>": 65})
    with pytest.raises(ValueError, match="already taken"):
        tok.register_special_tokens({"<|x|>": 300})
    with pytest.raises(ValueError, match="non-empty string"):
        tok.register_special_tokens({"": 400})


def test_overlapping_special_tokens_prefer_the_longest():
    tok = BPETokenizer()
    tok.register_special_tokens({"<|a|>": 300, "<|a|><|b|>": 301})
    assert tok.encode("x<|a|><|b|>y", allowed_special="all") == [ord("x"), 301, ord("y")]


EOT = "<|endoftext|>"
DOCS = SHAKESPEARE[:12_000].split("\n\n")  # 85 speeches: documents to join with EOT
DOCS_TEXT = EOT.join(DOCS)


def merged_tokens(tok):
    return [tok.vocab[i] for i in tok.merges.values()]


@pytest.mark.parametrize("pattern", ["gpt4", None])
def test_training_with_special_tokens_keeps_merges_out_of_them(pattern):
    num_merges = 150
    tok = BPETokenizer().train(DOCS_TEXT, 256 + num_merges, pattern=pattern, special_tokens=[EOT])
    assert tok.special_tokens == {EOT: 256 + num_merges}  # registered after the merges
    assert tok.merges == train_textbook(DOCS_TEXT, 256 + num_merges, pattern=pattern, special_tokens=[EOT])
    # Every merged token was learned inside one document: none holds a piece of EOT or spans one.
    inside_documents = b"\0".join(d.encode("utf-8") for d in DOCS)  # \0 is in no document
    for token in merged_tokens(tok):
        assert token in inside_documents, token
        assert not any(piece in token for piece in (b"<|", b"|>", b"endoftext", b"t|", b"|e")), token
    ids = tok.encode(DOCS_TEXT, allowed_special="all")
    assert tok.decode(ids) == DOCS_TEXT
    expected = list(itertools.chain.from_iterable(tok.encode(d) + [tok.special_tokens[EOT]] for d in DOCS))[:-1]
    assert ids == expected  # the special id exactly at each separator, the documents encoded as themselves


@pytest.mark.parametrize("pattern", ["gpt4", None])
def test_training_without_special_tokens_learns_pieces_of_them(pattern):
    # The same text as above, trained as before: "<|" is frequent, so it becomes a token. This shows
    # that the test above can fail.
    tok = BPETokenizer().train(DOCS_TEXT, 256 + 150, pattern=pattern)
    assert tok.special_tokens == {}
    assert any(b"<|" in token for token in merged_tokens(tok))


def test_training_special_tokens_arguments():
    text = "ab ab<|x|>ab ab<|y|>cd"
    tok = BPETokenizer().train(text, 258, special_tokens="<|x|>")  # one string is one special token
    assert tok.special_tokens == {"<|x|>": 258}
    tok.train(text, 258, special_tokens=["<|x|>", "<|y|>"])
    assert tok.special_tokens == {"<|x|>": 258, "<|y|>": 259}
    tok.train(text, 258)  # training again forgets them
    assert tok.special_tokens == {}
    with pytest.raises(ValueError, match="a special token must be a non-empty string, got ''"):
        BPETokenizer().train(text, 300, special_tokens=[""])
    with pytest.raises(TypeError, match="call register_special_tokens"):
        BPETokenizer().train(text, 300, special_tokens={"<|x|>": 1000})


# --- encoding a file in pieces ------------------------------------------------------------------------

# Whitespace runs that the patterns cut in subtle ways, long digit runs, Chinese, emoji, CRLF, special
# tokens next to each other, inside words and half-written.
ODD_TEXT = (
    "First Citizen:\n\n   \nBefore we proceed  \n\t\r\n  1234567890 12 3456789<|endoftext|>"
    "子曰：学而时习之，不亦说乎？<|endoftext|><|endoftext|>  🙂👍🏽👨‍👩‍👧‍👦 they'LL we've<|endoftext|>\n"
    "<|endof<|pad|><|endoftext|  <|pad|>word<|pad|><|endoftext|>trailing   \n\n  "
)


@pytest.fixture(scope="module")
def tok_special(tok):
    tok = tok.truncated(tok.vocab_size)  # a copy: the shared fixture keeps no special tokens
    tok.register_special_tokens(["<|endoftext|>", "<|pad|>", "<|pad|><|endoftext|>"])
    return tok


def write(tmp_path, text):
    path = tmp_path / "text.txt"
    path.write_bytes(text.encode("utf-8"))  # bytes as they are: no newline translation
    return path


@pytest.mark.parametrize("chunk_chars", [1, 2, 3, 7, 64, 1000])
def test_encode_file_equals_encode(tok, tok_special, tmp_path, chunk_chars):
    text = SHAKESPEARE[:30_000]
    assert list(tok.encode_file(write(tmp_path, text), chunk_chars)) == tok.encode(text)
    path = write(tmp_path, ODD_TEXT * 3)
    for allowed in ("none", "all", {"<|endoftext|>"}):
        expected = tok_special.encode(ODD_TEXT * 3, allowed_special=allowed)
        assert list(tok_special.encode_file(path, chunk_chars, allowed_special=allowed)) == expected


def test_encode_file_on_the_whole_book(tok):
    path = DATA / "tinyshakespeare" / "input.txt"
    expected = tok.encode(SHAKESPEARE)
    assert list(tok.encode_file(path)) == expected  # default chunk_chars, 1 MiB: two pieces
    assert list(tok.encode_file(path, chunk_chars=50_000)) == expected


def test_encode_file_with_every_pattern(tok_any_pattern, tmp_path):
    text = SHAKESPEARE[:5_000] + ODD_TEXT
    for chunk_chars in (1, 7, 1000):
        assert list(tok_any_pattern.encode_file(write(tmp_path, text), chunk_chars)) == tok_any_pattern.encode(text)


@given(
    st.lists(st.sampled_from(["a", "b", "1", " ", "  ", "\n", "\r\n", "\t", "'s", "'LL", ".", "子", "🙂",
                              "<|", "|>", "<|pad|>", "<|endoftext|>", "<|end"]), max_size=30),
    st.lists(st.integers(0, 200), max_size=8),
)
@settings(max_examples=300, deadline=None)
def test_encode_iter_equals_encode_wherever_the_pieces_end(tok_special, fragments, cuts):
    text = "".join(fragments)
    cuts = sorted(c for c in cuts if c <= len(text))
    pieces = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    for allowed in ("none", "all"):
        assert list(tok_special.encode_iter(pieces, allowed)) == tok_special.encode(text, allowed_special=allowed)


def test_encode_file_holds_one_piece_and_a_short_carry(tok_special, tmp_path, monkeypatch):
    text = (SHAKESPEARE[:100_000] + "<|endoftext|>") * 2
    longest_chunk = max(map(len, _split(text, "gpt4")))
    longest_special = max(map(len, tok_special.special_tokens))
    held = []
    encode_settled = BPETokenizer._encode_settled

    def spy(self, text, *args):  # the text of one round: the carry and the new piece
        held.append(len(text))
        return encode_settled(self, text, *args)

    monkeypatch.setattr(BPETokenizer, "_encode_settled", spy)
    ids = list(tok_special.encode_file(write(tmp_path, text), chunk_chars=1000, allowed_special="all"))
    assert ids == tok_special.encode(text, allowed_special="all")
    assert len(held) == len(text) // 1000 + 1
    assert max(held) <= 1000 + longest_chunk + longest_special - 1

    # Lazy: the first ids come after the first pieces, not after reading everything.
    read = []

    def pieces():
        for i in range(0, len(text), 1000):
            read.append(i)
            yield text[i : i + 1000]

    first = list(itertools.islice(tok_special.encode_iter(pieces()), 100))
    assert first == tok_special.encode(text[:2000])[:100] and len(read) <= 2


def test_encode_file_errors(tok, tmp_path):
    missing = tmp_path / "no_such_file.txt"
    with pytest.raises(FileNotFoundError, match=re.escape(f"cannot encode {missing}: it does not exist")):
        tok.encode_file(missing)  # at once, not when the ids are first asked for
    with pytest.raises(FileNotFoundError, match="is a directory"):
        tok.encode_file(tmp_path)
    path = write(tmp_path, "hello")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="chunk_chars must be an integer >= 1"):
            tok.encode_file(path, chunk_chars=bad)
    with pytest.raises(ValueError, match="allowed_special must be 'all', 'none' or a set"):
        tok.encode_file(path, allowed_special="<|endoftext|>")
    with pytest.raises(ValueError, match="not registered as special tokens"):
        tok.encode_iter(["hello"], allowed_special={"<|endoftext|>"})
    assert list(tok.encode_file(write(tmp_path, ""))) == [] and list(tok.encode_iter([])) == []


# --- saving and loading --------------------------------------------------------------------------------


def test_save_and_load_give_identical_encodings(tok, tmp_path):
    tok2 = BPETokenizer().train(SMALL_TEXT, 400, pattern="gpt2")
    tok2.register_special_tokens({"<|endoftext|>": 100_257})
    for t in (tok, tok2):
        path = tmp_path / "tok.json"
        t.save(path)
        data = json.loads(path.read_text(encoding="utf-8"))  # one plain JSON file
        assert data["version"] == 1 and data["pattern"] == t.pattern and len(data["merges"]) == len(t.merges)
        loaded = BPETokenizer.load(path)
        assert loaded.merges == t.merges and loaded.vocab == t.vocab
        assert loaded.special_tokens == t.special_tokens
        sample = SHAKESPEARE[-5_000:] + LUNYU[-1_000:] + "<|endoftext|>"
        assert loaded.encode(sample, allowed_special="all") == t.encode(sample, allowed_special="all")


def test_loading_something_else_is_a_clear_error(tmp_path):
    not_json = tmp_path / "notes.txt"
    not_json.write_text("hello", encoding="utf-8")
    with pytest.raises(ValueError, match="is not a BPETokenizer file: it is not JSON"):
        BPETokenizer.load(not_json)
    other_json = tmp_path / "config.json"
    other_json.write_text('{"lr": 0.001}', encoding="utf-8")
    with pytest.raises(ValueError, match="is not a BPETokenizer file; write one with BPETokenizer.save"):
        BPETokenizer.load(other_json)
    char_file = tmp_path / "char.json"
    CharTokenizer.train("abc").save(char_file)
    with pytest.raises(ValueError, match="it says it is a 'utils.char_tokenizer.CharTokenizer' file"):
        BPETokenizer.load(char_file)
    bad_merge = tmp_path / "bad.json"
    bad_merge.write_text(
        '{"format": "utils.bpe.BPETokenizer", "version": 1, "pattern": "gpt4", "merges": [[97, 300]]}',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="merge 0 is"):
        BPETokenizer.load(bad_merge)


def test_untrained_tokenizer_is_plain_bytes():
    tok = BPETokenizer()
    assert tok.vocab_size == 256 and tok.encode("hé") == list("hé".encode())
    assert "vocab_size=256" in repr(tok)


# --- character tokenizer -------------------------------------------------------------------------------


def test_char_tokenizer_round_trip_and_vocabulary():
    text = SHAKESPEARE[:50_000]
    tok = CharTokenizer.train(text)
    assert tok.vocab_size == len(set(text)) and tok.chars == sorted(set(text))
    assert tok.encode(text) == [tok.stoi[c] for c in text]
    assert tok.decode(tok.encode(text)) == text
    assert tok.encode("") == [] and tok.decode([]) == ""
    chinese = CharTokenizer.train(LUNYU)
    assert chinese.decode(chinese.encode(LUNYU[:1_000])) == LUNYU[:1_000]


def test_char_tokenizer_errors():
    tok = CharTokenizer.train("hello world")
    with pytest.raises(ValueError, match=r"character 'z' \(U\+007A\) at position 6 is not in the vocabulary"):
        tok.encode("hello zorro")
    with pytest.raises(ValueError, match="id 99 is not in the vocabulary: the ids are 0 to 7"):
        tok.decode([0, 99])
    with pytest.raises(ValueError, match="id -1 is not in the vocabulary"):
        tok.decode([-1])
    with pytest.raises(ValueError, match="empty text"):
        CharTokenizer.train("")
    with pytest.raises(ValueError, match="twice"):
        CharTokenizer(["a", "a"])


def test_char_tokenizer_save_and_load(tmp_path):
    tok = CharTokenizer.train(SHAKESPEARE[:5_000] + LUNYU[:500] + "🙂\n\t")
    path = tmp_path / "chars.json"
    tok.save(path)
    assert json.loads(path.read_text(encoding="utf-8"))["chars"] == tok.chars
    assert CharTokenizer.load(path).chars == tok.chars
    bpe_file = tmp_path / "bpe.json"
    BPETokenizer().save(bpe_file)
    with pytest.raises(ValueError, match="not a CharTokenizer file"):
        CharTokenizer.load(bpe_file)


@pytest.mark.parametrize("make", [lambda: CharTokenizer.train("hello world"),
                                  lambda: BPETokenizer().train("hello world " * 20, 260)])
def test_decoding_a_batch_says_to_take_one_row(make):
    """generate returns (batch, n): decoding it whole used to fail with "unhashable type: 'list'"."""
    import torch

    tok = make()
    batch = torch.tensor([tok.encode("hello"), tok.encode("hello")])
    with pytest.raises(ValueError, match=r"batch of 2 rows.*decode one row, e\.g\. tok\.decode\(out\[0\]\)"):
        tok.decode(batch)
    with pytest.raises(ValueError, match="batch of 2 rows"):
        tok.decode(batch.tolist())
    assert tok.decode(batch[0]) == "hello"
