"""Questions with checkable answers, made by code: what lesson 12 teaches an assistant, and grades it on.

    train = make_tasks("add", "train")                # every question of the training side, shuffled
    held_out = make_tasks("add", "held_out", n=200)    # questions no training stage ever sees
    held_out[0]                                        # Task(kind='add', prompt='What is 38 + 45?', answer='83')
    grade("add", " 83 ", "83")                         # True: only the surrounding spaces are dropped
    grade("add", "083", "83")                          # False: a near miss is a miss

Five kinds, each with a seeded generator and a split made *before* any question is written, so that
no training question and no held-out question can share their content:

    add      What is 38 + 45?                      83          numbers 0-99; split by the unordered pair
    reverse  Reverse the word: gentle              eltneg      words of Tiny Shakespeare; split by word
    count    How many times is 'e' in 'gentle'?    2           the same words, the same split
    word     Complete the word: signi              signify     the same words, the same split
    name     Complete the speaker's name: GLOUC    GLOUCESTER  speakers of Tiny Shakespeare; split by name

The first three are skills; `word` and `name` are knowledge: their answers are in the text the base
model was pre-trained on, and for held-out questions nowhere in any fine-tuning data, so only
pre-training can supply them. `raw_text` writes the training side of the skills as plain text
("38 + 45 = 83"), the way such facts appear in a pre-training corpus, and `qa_text` the training questions
with their answers ("Q: What is 38 + 45?" then "A: 83"), the way a FAQ page has them: `pretraining_text`
mixes both into Tiny Shakespeare (putting such text into pre-training on purpose is called mid-training).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from functools import cache
from typing import NamedTuple

from . import data

KINDS = ("add", "reverse", "count", "word", "name")
SPLITS = ("train", "held_out")
# The held-out share of the pairs, words and names (word follows the words' split). Half the names: there are
# only 127, and the held-out side needs enough of them to measure.
HELD_OUT_SHARE = {"add": 0.2, "reverse": 0.2, "count": 0.2, "name": 0.5}
SEED = 0  # the split never changes with the seed of a run


class Task(NamedTuple):
    kind: str
    prompt: str  # the user's message
    answer: str  # the one exact answer the grader accepts


# --- grading ------------------------------------------------------------------------------------------

def normalise(kind: str, text: str) -> str:
    """What the grader compares: the response without surrounding spaces or newlines, and for `name`
    (speaker names are written in capitals) in capitals. Nothing else is forgiven: '083', '83.' and
    'eighty-three' are not '83'."""
    _check_kind(kind)
    text = text.strip()
    return text.upper() if kind == "name" else text


def grade(kind: str, response: str, answer: str) -> bool:
    """True when the response is the answer, up to what `normalise` forgives."""
    return normalise(kind, response) == normalise(kind, answer)


# --- the questions ------------------------------------------------------------------------------------

def make_tasks(kind: str, split: str, n: int | None = None, seed: int = 0) -> list[Task]:
    """The questions of one kind on one side of the split, in a seeded random order; the first n if given.

    The two sides share no number pair, word or name; which side holds what depends only on SEED,
    so every run and every stage of lesson 12 sees the same held-out questions.
    """
    _check_kind(kind)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    items = _sides(kind)[SPLITS.index(split)]
    tasks = [task for item in items for task in _questions(kind, item)]
    random.Random(f"{kind}-{split}-{seed}").shuffle(tasks)
    if n is not None:
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        if n > len(tasks):
            raise ValueError(f"{split} holds only {len(tasks)} {kind!r} questions; ask for at most that many")
        tasks = tasks[:n]
    return tasks


def mixed_tasks(split: str, n_per_kind: int, seed: int = 0) -> list[Task]:
    """n_per_kind questions of every kind (all of a kind that has fewer), interleaved (add, reverse, ...)."""
    per_kind = [make_tasks(kind, split, seed=seed)[:n_per_kind] for kind in KINDS]
    return [group[i] for i in range(n_per_kind) for group in per_kind if i < len(group)]


def raw_text(kinds=("add", "reverse", "count"), seed: int = 0) -> str:
    """The training side of the skills written as plain text, one fact a line: what a pre-training corpus
    holds ("38 + 45 = 83"), not questions and answers. Held-out pairs and words never appear in it."""
    lines = []
    for kind in kinds:
        if kind == "name":
            raise ValueError("the names are in Tiny Shakespeare itself; raw_text writes only the skills")
        lines += [RAW[kind].format(*_raw_fields(t)) for t in make_tasks(kind, "train", seed=seed)]
    random.Random(f"raw-{seed}").shuffle(lines)
    return "\n".join(lines) + "\n"


RAW = {"add": "{} = {}", "reverse": "{} backwards is {}", "count": "{}: {}"}


def qa_text(per_kind: int = 1000, name_repeats: int = 8, seed: int = 0) -> list[str]:
    """Training-side questions with their answers as plain text ("Q: What is 38 + 45?\nA: 83"), the way
    question-and-answer pages appear in web text: per_kind of each kind (repeating a kind that has fewer),
    each name name_repeats times (there are only 64). No chat template, no held-out question."""
    blocks = []
    for kind in KINDS:
        pool = make_tasks(kind, "train", seed=seed)
        n = name_repeats * len(pool) if kind == "name" else per_kind
        blocks += [QA.format(t.prompt, t.answer) for t in (pool * (n // len(pool) + 1))[:n]]
    random.Random(f"qa-{seed}").shuffle(blocks)
    return blocks


QA = "Q: {}\nA: {}"


def pretraining_text(block_lines: int = 8, qa_per_kind: int = 1000, seed: int = 0) -> str:
    """Tiny Shakespeare with raw_text's facts and qa_text's questions mixed in between the speeches (a block
    of block_lines facts, a block of 4 questions): the corpus of lesson 12's base model. Mixed evenly, so
    the last 10 % (the validation text) holds every kind of text. qa_per_kind=0 leaves the questions out."""
    speeches = data.load_shakespeare().split("\n\n")
    facts = raw_text(seed=seed).splitlines()
    questions = qa_text(qa_per_kind, seed=seed) if qa_per_kind else []
    blocks = [_blocks(facts, block_lines), _blocks(questions, 4)]
    out = []
    for i, speech in enumerate(speeches):
        out.append(speech)
        for kind_blocks in blocks:
            # block j goes after speech j * len(speeches) // len(blocks): spread over the whole text
            out += kind_blocks[i * len(kind_blocks) // len(speeches):(i + 1) * len(kind_blocks) // len(speeches)]
    return "\n\n".join(out)


def _blocks(lines: list[str], size: int) -> list[str]:
    return ["\n".join(lines[i:i + size]) for i in range(0, len(lines), size)]


def raw_prompt(task: Task, style: str = "facts") -> tuple[str, str, str]:
    """How to ask a base model a question in a form its pre-training text had: (the text to continue,
    the character that ends the answer, the text that starts the answer). style "facts" is the form of
    raw_text and of the play ("38 + 45 =", a name at the start of a line), "qa" that of qa_text
    ("Q: What is 38 + 45?\nA:"). `raw_answer` puts a continuation back into a reply for `grade`."""
    if style not in ("facts", "qa"):
        raise ValueError(f"unknown style {style!r}; choose 'facts' or 'qa'")
    if style == "qa":
        return "\n" + QA.format(task.prompt, ""), "\n", ""
    if task.kind == "name":
        prefix = task.prompt.removeprefix("Complete the speaker's name: ")
        return "\n\n" + prefix, ":", prefix  # a speaker's name starts a line and ends with a colon
    if task.kind == "word":
        prefix = task.prompt.removeprefix("Complete the word: ")
        return " " + prefix, " ", prefix
    question, _ = _raw_fields(task)
    return "\n" + RAW[task.kind].split(" {}")[0].format(question), "\n", ""


def raw_answer(task: Task, continuation: str, style: str = "facts") -> str:
    """The reply a base model's continuation of raw_prompt(task, style) amounts to: up to the end character,
    after the answer's start (for words in the facts style, anything but a letter ends it)."""
    _, stop, start = raw_prompt(task, style)
    text = continuation.split(stop)[0]
    if task.kind == "word" and style == "facts":
        text = re.match(r"[a-z]*", text).group()
    return start + text


def _raw_fields(task: Task) -> tuple[str, str]:
    if task.kind == "add":
        return task.prompt.removeprefix("What is ").removesuffix("?"), task.answer
    if task.kind == "reverse":
        return task.prompt.removeprefix("Reverse the word: "), task.answer
    letter, word = re.fullmatch(r"How many times is '(.)' in '(\w+)'\?", task.prompt).groups()
    return f"'{letter}' in '{word}'", task.answer


def _questions(kind: str, item) -> list[Task]:
    if kind == "add":
        a, b = item
        pairs = {(a, b), (b, a)}  # both orders on the same side: 45 + 38 must not teach 38 + 45
        return [Task(kind, f"What is {x} + {y}?", str(x + y)) for x, y in sorted(pairs)]
    if kind == "reverse":
        return [Task(kind, f"Reverse the word: {item}", item[::-1])]
    if kind == "count":
        # one letter of the word, and one it does not contain (the answer 0 must be learned too)
        rng = random.Random(f"count-{item}")
        present = rng.choice(sorted(set(item)))
        absent = rng.choice(sorted(set("abcdefghijklmnopqrstuvwxyz") - set(item)))
        return [Task(kind, f"How many times is '{c}' in '{item}'?", str(item.count(c))) for c in (present, absent)]
    if kind == "word":
        word, prefix = item
        return [Task(kind, f"Complete the word: {prefix}", word)]
    name, prefix = item
    return [Task(kind, f"Complete the speaker's name: {prefix}", name)]


@cache
def _sides(kind: str) -> tuple[tuple, tuple]:
    """(train items, held-out items) of a kind: number pairs, words, (word, prefix) or (name, prefix) pairs."""
    if kind == "word":  # the words' own split: a word held out of reverse and count is held out here too
        held = set(_sides("reverse")[1])
        prefixes = word_prefixes()
        return tuple(p for p in prefixes if p[0] not in held), tuple(p for p in prefixes if p[0] in held)
    if kind == "add":
        items = [(a, b) for a in range(100) for b in range(a, 100)]
    elif kind in ("reverse", "count"):
        items = shakespeare_words()
    else:
        items = speaker_prefixes()
    items = list(items)
    # reverse and count share one split of the words: a held-out word is held out of both
    family = "words" if kind in ("reverse", "count") else kind
    random.Random(f"split-{family}-{SEED}").shuffle(items)
    cut = round(len(items) * (1 - HELD_OUT_SHARE[kind]))
    return tuple(items[:cut]), tuple(items[cut:])


@cache
def shakespeare_words(min_count: int = 3, lengths=(3, 8)) -> tuple[str, ...]:
    """The lower-case words of Tiny Shakespeare of 3-8 letters that occur at least min_count times."""
    counts = Counter(re.findall(r"\b[a-z]+\b", data.load_shakespeare()))
    return tuple(sorted(w for w, c in counts.items() if c >= min_count and lengths[0] <= len(w) <= lengths[1]))


@cache
def word_prefixes(min_rest: int = 2) -> tuple[tuple[str, str], ...]:
    """(word, prefix) for the words of shakespeare_words() of 5 letters or more: the shortest prefix (of at
    least 3 letters) that no other word of shakespeare_words() starts with, kept when at least min_rest
    letters remain to write. (A rarer word may share the prefix: 'gentle' has 'gentleman' after it.)"""
    words = shakespeare_words()
    result = []
    for word in words:
        if len(word) < 5:
            continue
        length = 3
        while length < len(word) and len(_starting(words, word[:length])) > 1:
            length += 1
        if len(word) - length >= min_rest:
            result.append((word, word[:length]))
    return tuple(result)


def _starting(sorted_words, prefix: str) -> list[str]:
    import bisect

    i = bisect.bisect_left(sorted_words, prefix)
    j = bisect.bisect_left(sorted_words, prefix + "{")  # "{" sorts after "z"
    return sorted_words[i:j]


@cache
def speaker_prefixes(min_count: int = 5) -> tuple[tuple[str, str], ...]:
    """(name, prefix) for the speakers of Tiny Shakespeare who speak at least min_count times.

    The prefix is the name's first half (at least 3 letters), lengthened until no other speaker's name
    starts with it, so that exactly one answer is right: 'KING R' could be three kings.
    """
    counts = Counter(re.findall(r"(?m)^([A-Z][A-Z' ]*[A-Z]):$", data.load_shakespeare()))
    names = sorted(n for n, c in counts.items() if c >= min_count)
    everyone = list(counts)
    result = []
    for name in names:
        length = max(3, len(name) // 2)
        while length < len(name) and any(o != name and o.startswith(name[:length]) for o in everyone):
            length += 1
        if length < len(name):  # a name that is the start of another (YORK / YORKSHIRE) has no fair prefix
            result.append((name, name[:length]))
    return tuple(result)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown task kind {kind!r}; choose one of {KINDS}")
