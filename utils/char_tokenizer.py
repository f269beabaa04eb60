"""A character-level tokenizer: one token per character of the training text.

This is the simplest tokenizer there is, and the one the first models of the course use. Its vocabulary
is the set of distinct characters of a text, sorted by code point, and the id of a character is its
position in that sorted list:

    tok = CharTokenizer.train(text)      # vocabulary = the distinct characters of text
    ids = tok.encode("hello")           # one id per character
    tok.decode(ids) == "hello"

`CharTokenizer.train(text)` is the usual way to build one; `CharTokenizer(chars)` takes the vocabulary
directly (a sequence of distinct characters, id = position), which is what `load` uses.

The price of such a small vocabulary (65 characters for Tiny Shakespeare) is long sequences: a model
sees one character per position. Byte-pair encoding (utils/bpe.py) trades a larger vocabulary for
shorter sequences. A character tokenizer also cannot encode a character it never saw in training; it
says so with a ValueError instead of guessing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

FORMAT = "utils.char_tokenizer.CharTokenizer"  # written into saved files so load can recognise them
VERSION = 1


def read_tokenizer_file(path: str | Path, fmt: str, version: int, name: str) -> dict:
    """The JSON of a saved tokenizer, after checking it is a `name` file of the right version.

    Shared by CharTokenizer.load and BPETokenizer.load, so both explain a wrong file the same way.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a {name} file: it is not JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        found = data.get("format") if isinstance(data, dict) else None
        hint = f" (it says it is a {found!r} file)" if found else ""
        raise ValueError(f"{path} is not a {name} file{hint}; write one with {name}.save")
    if data.get("version") != version:
        raise ValueError(f"{path} has version {data.get('version')!r}; this code reads version {version}")
    return data


def token_id_list(ids) -> list:
    """Token ids as a flat list of ints: from a list, a 1-D tensor or array, or one row of generate's output.

    A batch (a 2-D tensor, or a list of lists) is refused with what to do: decode one row at a time.
    """
    # A torch tensor or numpy array becomes plain ints, which is what the vocabulary's dict knows.
    ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
    if ids and isinstance(ids[0], list):
        raise ValueError(f"decode takes one sequence of ids, got a batch of {len(ids)} rows (a 2-D tensor or a "
                         "list of lists, as generate returns): decode one row, e.g. tok.decode(out[0])")
    return ids


class CharTokenizer:
    """Maps each character of a fixed vocabulary to an integer id and back."""

    def __init__(self, chars: Iterable[str]):
        chars = list(chars)
        for c in chars:
            if not isinstance(c, str) or len(c) != 1:
                raise ValueError(f"the vocabulary must hold single characters, got {c!r}")
        if len(set(chars)) != len(chars):
            raise ValueError("the vocabulary holds a character twice; every character needs exactly one id")
        if not chars:
            raise ValueError("the vocabulary is empty; build the tokenizer from a non-empty text")
        self.chars = chars
        self.stoi = {c: i for i, c in enumerate(chars)}  # string -> id
        self.itos = dict(enumerate(chars))  # id -> string; a dict so that a negative id is an error too

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        """A tokenizer whose vocabulary is every distinct character of `text`, sorted by code point."""
        if not text:
            raise ValueError("cannot build a vocabulary from an empty text")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """The id of every character of `text`."""
        self._check_known_characters(text)
        return [self.stoi[c] for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        """The text of a list of ids (a 1-D tensor works too)."""
        ids = token_id_list(ids)
        self._check_known_ids(ids)
        return "".join([self.itos[i] for i in ids])

    def _check_known_characters(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"encode takes a string, got {type(text).__name__}")
        unknown = set(text) - self.stoi.keys()
        if unknown:
            position, c = next((p, c) for p, c in enumerate(text) if c in unknown)  # name the first one
            raise ValueError(
                f"character {c!r} (U+{ord(c):04X}) at position {position} is not in the vocabulary of "
                f"{self.vocab_size} characters this tokenizer was built from. Build the tokenizer from a "
                f"text that contains it, or remove or replace it before encoding."
            )

    def _check_known_ids(self, ids: list) -> None:
        for i in ids:
            if i not in self.itos:
                raise ValueError(f"id {i!r} is not in the vocabulary: the ids are 0 to {self.vocab_size - 1}")

    def save(self, path: str | Path) -> None:
        """Write the vocabulary to a readable JSON file (the characters in id order)."""
        # Lone surrogates cannot be written as UTF-8; only then fall back to \\u escapes.
        ascii_only = any(0xD800 <= ord(c) <= 0xDFFF for c in self.chars)
        data = {"format": FORMAT, "version": VERSION, "chars": self.chars}
        # One field per line, the characters on one line: short enough to read at a glance.
        lines = [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=ascii_only)}" for k, v in data.items()]
        Path(path).write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        """Read a tokenizer written by `save`."""
        data = read_tokenizer_file(path, FORMAT, VERSION, "CharTokenizer")
        return cls(data["chars"])

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"
