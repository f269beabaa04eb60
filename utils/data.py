"""The course's data sets, loaded from `data/` and checked before use.

Every file is verified against the sha256 recorded in data/SOURCES.md, so a lesson never
trains on a truncated or edited file without saying so. Splits are fixed and seeded: the
same call gives the same train/validation/test lists on every machine.

    text = load_shakespeare()                # str, 1,115,394 characters
    spam = load_sms_spam()                   # Splits(train, val, test) of (text, label)
    sst2 = load_sst2()                       # the standard SST-2 sentence splits
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from typing import NamedTuple

DATA_ENV = "LLM_COURSE_DATA"

# file (relative to data/) -> (sha256, size in bytes)
FILES = {
    "tinyshakespeare/input.txt": (
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed", 1_115_394),
    "sms_spam/SMSSpamCollection": (
        "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d", 477_907),
    "sst2_sentences/stsa.binary.train": (
        "71c04bcc41291fa47454dd670df701b14ee9249156babeaac404cfe2c8d74338", 738_844),
    "sst2_sentences/stsa.binary.dev": (
        "02fedc82855dbdcabe82c65ed1af6c6570788eaac51073cdb35ee8c7784426d1", 94_400),
    "sst2_sentences/stsa.binary.test": (
        "6a80dc9b9a0db2d3b37f2f809304febad31c90ab67a5b4157b7d9f881c53ef5b", 193_562),
    "lunyu/lunyu.txt": (
        "a132510d50a06cd9682aa4d31d6a2b30292f354f93522cd7c529da1007506691", 65_163),
    "cmn_eng/cmn.txt": (
        "74bd3c04dfe0ec75aaaf165597b2a83c6a733d34f46b184fc21ca6b552c268d3", 1_259_882),
}

SPAM, HAM = 1, 0
SMS_LABELS = {"ham": HAM, "spam": SPAM}


class DataFileError(RuntimeError):
    """A course data file is missing or is not the file the course was written for."""


class Splits(NamedTuple):
    train: list
    val: list
    test: list

    def sizes(self) -> str:
        return f"train {len(self.train):,} / val {len(self.val):,} / test {len(self.test):,}"


def data_dir() -> Path:
    """data/ next to this package, or $LLM_COURSE_DATA if set."""
    override = os.environ.get(DATA_ENV)
    return Path(override) if override else Path(__file__).resolve().parents[1] / "data"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _restore_hint(name: str) -> str:
    return (
        f"Restore it with `git checkout -- data/{name}` in the course folder "
        f"(or copy it again from a fresh clone of the course); data/SOURCES.md says where it comes from."
    )


def data_path(name: str, verify: bool = True) -> Path:
    """The path of a data file, after checking that it is there and intact."""
    if name not in FILES:
        raise KeyError(f"Unknown data file {name!r}. Known: {', '.join(sorted(FILES))}")
    path = data_dir() / name
    if not path.is_file():
        raise DataFileError(f"Data file missing: {path}. {_restore_hint(name)}")
    if verify:
        expected, _ = FILES[name]
        found = sha256_of(path)
        if found != expected:
            raise DataFileError(
                f"Data file altered: {path}\n  expected sha256 {expected}\n  found    sha256 {found}\n"
                f"The file is not the one the course was written for, so results would not match. "
                + _restore_hint(name)
            )
    return path


def verify_all() -> list[tuple[str, int, str]]:
    """Check every data file. Returns (name, size, status) rows; status is 'ok' or the problem."""
    rows = []
    for name in FILES:
        try:
            path = data_path(name)
            rows.append((name, path.stat().st_size, "ok"))
        except DataFileError as e:
            status = "MISSING" if "missing" in str(e) else "ALTERED (sha256 differs)"
            rows.append((name, 0, status))
    return rows


def _read_text(name: str) -> str:
    # newline="" keeps the bytes exactly as they are (no \r\n translation on Windows).
    with open(data_path(name), encoding="utf-8", newline="") as f:
        return f.read()


def split(items: list, fractions=(0.8, 0.1, 0.1), seed: int = 0, stratify: bool = False) -> Splits:
    """Shuffle with a fixed seed and cut into train/val/test by `fractions`.

    With stratify=True, items are (x, label) pairs and each label is cut separately, so every
    split keeps the same share of each label (spam is only 13% of the SMS data).
    """
    if abs(sum(fractions) - 1.0) > 1e-9 or len(fractions) != 3:
        raise ValueError(f"fractions must be three numbers that sum to 1, got {fractions}")
    groups = {}
    if stratify:
        for item in items:
            groups.setdefault(item[1], []).append(item)
    else:
        groups[None] = list(items)
    rng = random.Random(seed)
    parts = ([], [], [])
    for key in sorted(groups, key=str):
        group = groups[key]
        rng.shuffle(group)
        n_train = round(len(group) * fractions[0])
        n_val = round(len(group) * fractions[1])
        parts[0].extend(group[:n_train])
        parts[1].extend(group[n_train:n_train + n_val])
        parts[2].extend(group[n_train + n_val:])
    for part in parts:  # mix the labels again inside each split
        rng.shuffle(part)
    return Splits(*parts)


def load_shakespeare() -> str:
    """Tiny Shakespeare (Karpathy's char-rnn subset): one string of 1,115,394 characters."""
    return _read_text("tinyshakespeare/input.txt")


def load_analects() -> str:
    """The Analects of Confucius (论语) in simplified Chinese: 22,093 characters."""
    return _read_text("lunyu/lunyu.txt")


def load_sms_spam(seed: int = 0, fractions=(0.7, 0.1, 0.2), balanced: bool = False) -> Splits:
    """The SMS Spam Collection as (text, label) pairs, label 1 = spam, 0 = ham.

    Stratified, seeded 70/10/20 split by default. balanced=True first keeps all 747 spam and a
    seeded random 747 of the ham messages, as in Raschka's "LLMs from scratch" chapter 6.
    """
    pairs = []
    for line in _read_text("sms_spam/SMSSpamCollection").splitlines():
        label, text = line.split("\t", 1)
        pairs.append((text, SMS_LABELS[label]))
    if balanced:
        spam = [p for p in pairs if p[1] == SPAM]
        ham = [p for p in pairs if p[1] == HAM]
        ham = random.Random(seed).sample(ham, len(spam))
        pairs = spam + ham
    return split(pairs, fractions, seed=seed, stratify=True)


def _read_sst2(part: str) -> list[tuple[str, int]]:
    pairs = []
    for line in _read_text(f"sst2_sentences/stsa.binary.{part}").splitlines():
        label, text = line.split(" ", 1)  # "<label> <sentence>": split on the first space only
        pairs.append((text, int(label)))
    return pairs


def load_sst2() -> Splits:
    """SST-2 sentence-level sentiment (label 1 = positive): the standard 6,920 / 872 / 1,821 splits."""
    return Splits(_read_sst2("train"), _read_sst2("dev"), _read_sst2("test"))


def split_by_key(items: list, key, sizes: tuple[int, int], seed: int = 0) -> Splits:
    """Splits in which items with the same key(item) always stay together: sizes = (val, test) count
    distinct keys, chosen at random with a fixed seed; every other key's items are the training set.

    Tatoeba repeats an English sentence with different translations: split by the English sentence,
    a test sentence is never one the model saw in training under another translation.
    """
    n_val, n_test = sizes
    keys = sorted({key(item) for item in items})
    if n_val < 0 or n_test < 0 or n_val + n_test >= len(keys):
        raise ValueError(f"sizes {sizes} must be >= 0 and leave keys for training: there are {len(keys)} keys")
    random.Random(seed).shuffle(keys)
    part_of = {k: 1 for k in keys[:n_val]} | {k: 2 for k in keys[n_val:n_val + n_test]}
    parts = ([], [], [])
    for item in items:
        parts[part_of.get(key(item), 0)].append(item)
    return Splits(*parts)


def load_cmn_eng_pairs() -> list[tuple[str, str]]:
    """The 20,133 English-Chinese sentence pairs from Tatoeba, (english, chinese), in the file's order."""
    return [tuple(line.split("\t", 1)) for line in _read_text("cmn_eng/cmn.txt").splitlines()]


def load_cmn_eng(seed: int = 0, n_val: int = 500, n_test: int = 1000) -> Splits:
    """The Tatoeba pairs split by English sentence (see split_by_key): n_val and n_test distinct English
    sentences, with all their translations, for validation and test. utils.translation.load_pairs adds
    the script normalisation the translation lesson uses."""
    return split_by_key(load_cmn_eng_pairs(), key=lambda pair: pair[0], sizes=(n_val, n_test), seed=seed)
