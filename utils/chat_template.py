"""The chat template: how a conversation becomes one sequence of tokens, and which of them the model learns.

    tok = ChatTokenizer.train(text)        # the characters of text, plus the template's three special tokens
    messages = [{"role": "user", "content": "What is 2 + 3?"}, {"role": "assistant", "content": "5"}]
    render(messages)                       # '<|user|>What is 2 + 3?<|end|><|assistant|>5<|end|>'
    ids, learn = encode_chat(tok, messages)  # learn[i] is True for the assistant's tokens and its <|end|>
    prompt = prompt_ids(tok, messages[:1])   # ... <|assistant|>: where the model starts to answer

Every turn is `<|role|>content<|end|>`. A special token is one id, not the characters of its name: the
model cannot confuse it with text, and a user who types "<|end|>" types seven characters (which this
character vocabulary does not even have), not the end of a turn. A language model becomes an assistant by
learning, from examples in this template, what follows `<|assistant|>`, and to stop with `<|end|>`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from .char_tokenizer import CharTokenizer, read_tokenizer_file, token_id_list

USER, ASSISTANT, END = "<|user|>", "<|assistant|>", "<|end|>"
SPECIALS = (USER, ASSISTANT, END)
ROLES = {"user": USER, "assistant": ASSISTANT}
FORMAT = "utils.chat_template.ChatTokenizer"
VERSION = 1


class ChatTokenizer(CharTokenizer):
    """A character tokenizer with special tokens registered after the characters: ids vocab..vocab+2."""

    def __init__(self, chars: Iterable[str], specials: Iterable[str] = SPECIALS):
        super().__init__(chars)
        self.specials = list(specials)
        if len(set(self.specials)) != len(self.specials) or any(len(s) < 2 for s in self.specials):
            raise ValueError(f"special tokens must be distinct names of two or more characters, got {self.specials}")
        first = len(self.chars)
        self.special_ids = {s: first + i for i, s in enumerate(self.specials)}
        self.itos.update({i: s for s, i in self.special_ids.items()})
        self._split = re.compile("(" + "|".join(re.escape(s) for s in self.specials) + ")")

    @classmethod
    def from_char_tokenizer(cls, tok: CharTokenizer, specials: Iterable[str] = SPECIALS) -> ChatTokenizer:
        """The base model's characters with the special tokens after them: every old id keeps its meaning."""
        return cls(tok.chars, specials)

    @classmethod
    def train(cls, text: str, specials: Iterable[str] = SPECIALS) -> ChatTokenizer:
        if not text:
            raise ValueError("cannot build a vocabulary from an empty text")
        return cls(sorted(set(text)), specials)

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + len(self.specials)

    def encode(self, text: str) -> list[int]:
        """Ids of text in which the special tokens' names stand for themselves (one id each)."""
        ids = []
        for piece in self._split.split(text):
            ids += [self.special_ids[piece]] if piece in self.special_ids else self.encode_text(piece)
        return ids

    def encode_text(self, text: str) -> list[int]:
        """Ids of plain text: only characters, so what a user types can never become a special token."""
        return super().encode(text)

    def id_of(self, special: str) -> int:
        return self.special_ids[special]

    def save(self, path: str | Path) -> None:
        data = {"format": FORMAT, "version": VERSION, "chars": self.chars, "specials": self.specials}
        lines = [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in data.items()]
        Path(path).write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> ChatTokenizer:
        data = read_tokenizer_file(path, FORMAT, VERSION, "ChatTokenizer")
        return cls(data["chars"], data["specials"])

    def decode(self, ids: Iterable[int]) -> str:
        ids = token_id_list(ids)
        self._check_known_ids(ids)
        return "".join(self.itos[i] for i in ids)

    def __repr__(self) -> str:
        return f"ChatTokenizer(vocab_size={self.vocab_size}: {len(self.chars)} characters + {self.specials})"


def add_chat_tokens(model, tok: CharTokenizer):
    """A base model and its character tokenizer -> (a copy of the model with room for the special tokens,
    the ChatTokenizer). The new tokens' embedding rows start as the mean of the old ones (a neutral
    start that fine-tuning moves); every other weight, and every old id, is unchanged, so the copy
    continues text exactly as the base model did."""
    import copy

    import torch

    from .model import GPT

    if isinstance(tok, ChatTokenizer):
        raise ValueError("this tokenizer has its chat tokens already")
    chat_tok = ChatTokenizer.from_char_tokenizer(tok)
    grown = GPT(replace(model.config, vocab_size=chat_tok.vocab_size)).to(next(model.parameters()).device)
    state = copy.deepcopy(model.state_dict())
    with torch.no_grad():
        for name in ("tok_emb.weight", "head.weight"):
            if name in state:
                old = state[name]
                state[name] = torch.cat([old, old.mean(0, keepdim=True).expand(len(chat_tok.specials), -1)])
    grown.load_state_dict(state)
    return grown.eval(), chat_tok


# --- the template -------------------------------------------------------------------------------------

def render(messages: list[dict]) -> str:
    """The conversation as text: every turn `<|role|>content<|end|>`."""
    _check_messages(messages)
    return "".join(f"{ROLES[m['role']]}{m['content']}{END}" for m in messages)


def encode_chat(tok: ChatTokenizer, messages: list[dict]) -> tuple[list[int], list[bool]]:
    """The conversation's ids, and for each id whether the model learns to produce it: True for the
    assistant's content and the <|end|> that closes it, False for the role tokens and the user's turns
    (the model is given those; it is not asked to write them)."""
    _check_messages(messages)
    ids, learn = [], []
    for m in messages:
        content = tok.encode_text(m["content"]) + [tok.id_of(END)]
        ids += [tok.id_of(ROLES[m["role"]])] + content
        learn += [False] + [m["role"] == "assistant"] * len(content)
    return ids, learn


def prompt_ids(tok: ChatTokenizer, messages: list[dict]) -> list[int]:
    """The conversation so far, then <|assistant|>: what the model continues to write its reply."""
    return encode_chat(tok, messages)[0] + [tok.id_of(ASSISTANT)] if messages else [tok.id_of(ASSISTANT)]


def sft_example(tok: ChatTokenizer, prompt: str, answer: str, mask_prompt: bool = True) -> tuple[list[int], list[int]]:
    """(inputs, targets) of one question and answer for supervised fine-tuning: targets[t] is the token
    after inputs[t], or -100 (cross-entropy ignores it) where the token is not the assistant's to write.
    mask_prompt=False learns every token, the question's included (the comparison lesson 12 measures)."""
    ids, learn = encode_chat(tok, [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}])
    # position t predicts token t + 1: the target of t is learned when token t + 1 is the assistant's
    targets = [t if (keep or not mask_prompt) else -100 for t, keep in zip(ids[1:], learn[1:], strict=True)]
    return ids[:-1], targets


def reply_example(prompt: list[int], reply: list[int], end_id: int, max_new_tokens: int) -> tuple[list[int], list[int]]:
    """(inputs, targets) of a reply the model itself wrote (ids, as generated) after its prompt: targets on
    the reply's tokens and on the <|end|> that closed it, -100 on the prompt. A reply cut off at
    max_new_tokens has no <|end|>, and none is learned. Ids, not text: a sampled reply may hold a special
    token, which re-encoding its text would not give back."""
    written = reply + [end_id] if len(reply) < max_new_tokens else reply
    ids = prompt + written
    return ids[:-1], [-100] * (len(prompt) - 1) + written


def trim_history(tok: ChatTokenizer, messages: list[dict], context_length: int,
                 reply_tokens: int) -> tuple[list[dict], int]:
    """The most recent turns whose prompt leaves reply_tokens of the context free, and how many turns
    were dropped. Whole turns go, oldest first, a user turn with the reply that followed it; the last
    user message always stays (if it alone is too long, ValueError says so)."""
    budget = context_length - reply_tokens
    kept = list(messages)
    while len(prompt_ids(tok, kept)) > budget and len(kept) > 1:
        kept = kept[2:] if len(kept) > 2 and kept[0]["role"] == "user" else kept[1:]
    if len(prompt_ids(tok, kept)) > budget:
        raise ValueError(f"the message is {len(tok.encode_text(kept[-1]['content']))} characters long, but the "
                         f"model's context of {context_length} tokens leaves room for a message of at most "
                         f"{budget - 3} with a reply of {reply_tokens}: write a shorter one")
    return kept, len(messages) - len(kept)


def _check_messages(messages: list[dict]) -> None:
    if not isinstance(messages, list):
        raise TypeError("messages must be a list of {'role': ..., 'content': ...} dicts, got "
                        f"{type(messages).__name__}")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise ValueError(f"message {i} must be a dict with 'role' ('user' or 'assistant') and 'content' "
                             f"(a string), got {m!r}")
