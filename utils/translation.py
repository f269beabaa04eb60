"""Translating English to Chinese with the Transformer of utils.transformer: data, tokens, training, use.

    pairs = load_pairs()                          # Tatoeba, split by English sentence, Chinese simplified
    source, target = build_tokenizers(pairs.train)
    trainer = Trainer.from_preset("cpu", pairs=pairs)
    trainer.fit()                                 # tqdm bar, validation loss, label smoothing
    trainer.save("runs/translation")              # safetensors + JSON, resumes exactly
    translate(trainer.model, source, target, "I am hungry.")

From the command line:

    python -m utils.translation train --preset cpu --out runs/translation [--resume]
    python -m utils.translation translate --checkpoint runs/translation "I am hungry." [--beam 4]

One training step is teacher forcing: the decoder reads the reference shifted right (BOS, y1 .. y_n-1)
and learns to predict (y1 .. y_n, EOS) at every position at once, with label-smoothed cross-entropy.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from functools import cache
from pathlib import Path

import torch

from . import checkpoint, data
from .bpe import BPETokenizer
from .model import check_field_types
from .transformer import BOS, EOS, PAD, Transformer, TransformerConfig, beam_search, greedy

UNK = 3  # the id of a character the target vocabulary never saw
N_SPECIAL = 4  # ids 0-3: PAD, BOS, EOS, UNK; a language's own tokens start at 4
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
CONTEXT = 64  # the longest source and target, in tokens (the longest training sentence is cut)


# --- data ---------------------------------------------------------------------------------------------

@cache
def _converter():
    import opencc  # the OpenCC project's converter, from PyPI: tables of traditional -> simplified

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional Chinese characters turned into simplified ones (們 -> 们, 說 -> 说); the rest unchanged.

    Tatoeba's Chinese mixes the two scripts, often for the same English sentence. A model cannot know
    which script a reference will use, so both training targets and references are simplified.
    """
    return _converter().convert(text)


def load_pairs(simplified: bool = True, n_val: int = 500, n_test: int = 1000, seed: int = 0) -> data.Splits:
    """The English-Chinese pairs, split by English sentence: n_test and n_val distinct English sentences
    (with every translation each has) for test and validation, the rest for training, chosen at random
    with a fixed seed. No test sentence's English is ever seen in training."""
    pairs = data.load_cmn_eng_pairs()
    if simplified:
        pairs = [(english, to_simplified(chinese)) for english, chinese in pairs]
    return data.split_by_key(pairs, key=lambda pair: pair[0], sizes=(n_val, n_test), seed=seed)


# --- tokens -------------------------------------------------------------------------------------------

class Vocabulary:
    """Text <-> ids for one language, with ids 0-3 for PAD, BOS, EOS, UNK and the language's tokens after.

    kind "bpe": our byte-level BPE (lesson 01), every text encodes, nothing is unknown.
    kind "char": one id per character seen in training; an unseen character is UNK.
    """

    def __init__(self, kind: str, bpe: BPETokenizer | None = None, chars: list[str] | None = None):
        if kind not in ("bpe", "char"):
            raise ValueError(f"kind must be 'bpe' or 'char', got {kind!r}")
        self.kind, self.bpe, self.chars = kind, bpe, chars
        if kind == "char":
            self.char_ids = {c: i + N_SPECIAL for i, c in enumerate(chars)}

    @classmethod
    def train(cls, texts: list[str], kind: str, vocab_size: int | None = None) -> Vocabulary:
        """kind "bpe": BPE with vocab_size tokens (bytes and merges); kind "char": every character of texts."""
        joined = "\n".join(texts)
        if kind == "bpe":
            return cls("bpe", bpe=BPETokenizer().train(joined, vocab_size=vocab_size or 1000))
        return cls("char", chars=sorted(set(joined) - {"\n"}))

    @property
    def vocab_size(self) -> int:
        return N_SPECIAL + (self.bpe.vocab_size if self.kind == "bpe" else len(self.chars))

    def encode(self, text: str) -> list[int]:
        if self.kind == "bpe":
            return [i + N_SPECIAL for i in self.bpe.encode(text)]
        return [self.char_ids.get(c, UNK) for c in text]

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids if int(i) not in (PAD, BOS, EOS)]
        if self.kind == "bpe":
            return self.bpe.decode([i - N_SPECIAL for i in ids if i >= N_SPECIAL])
        return "".join("\ufffd" if i == UNK else self.chars[i - N_SPECIAL] for i in ids)

    def tokens(self, ids) -> list[str]:
        """Each id's text on its own (for the axes of attention maps)."""
        out = []
        for i in (int(i) for i in ids):
            if i < N_SPECIAL:
                out.append(SPECIALS[i])
            elif self.kind == "bpe":
                out.append(self.bpe.token_strings([i - N_SPECIAL])[0])
            else:
                out.append(self.chars[i - N_SPECIAL])
        return out

    def to_dict(self) -> dict:
        if self.kind == "bpe":
            return {"kind": "bpe", "pattern": self.bpe.pattern, "merges": [list(p) for p in self.bpe.merges]}
        return {"kind": "char", "chars": self.chars}

    @classmethod
    def from_dict(cls, values: dict) -> Vocabulary:
        if values.get("kind") == "bpe":
            bpe = BPETokenizer()
            bpe.pattern = values["pattern"]
            bpe.merges = {tuple(pair): 256 + i for i, pair in enumerate(values["merges"])}
            bpe._rebuild()
            return cls("bpe", bpe=bpe)
        if values.get("kind") == "char" and isinstance(values.get("chars"), list):
            return cls("char", chars=values["chars"])
        raise ValueError("not a saved Vocabulary: expected kind 'bpe' with merges or 'char' with chars")


def build_vocabularies(train_pairs, source_size: int = 2000, target_kind: str = "char",
                       target_size: int = 3000) -> tuple[Vocabulary, Vocabulary]:
    """English BPE with source_size tokens and the Chinese vocabulary (characters, or BPE), from training pairs."""
    english = Vocabulary.train([e for e, _ in train_pairs], "bpe", source_size)
    chinese = Vocabulary.train([z for _, z in train_pairs], target_kind, target_size)
    return english, chinese


def encode_pairs(pairs, source: Vocabulary, target: Vocabulary, context_length: int):
    """Each pair as (source ids + EOS, BOS + target ids + EOS), cut to fit the context."""
    out = []
    for english, chinese in pairs:
        s = source.encode(english)[: context_length - 1] + [EOS]
        t = [BOS] + target.encode(chinese)[: context_length - 2] + [EOS]
        out.append((s, t))
    return out


def pad(rows: list[list[int]]) -> torch.Tensor:
    """Right-pad rows of ids with PAD into one (batch, longest) tensor."""
    longest = max(len(r) for r in rows)
    return torch.tensor([r + [PAD] * (longest - len(r)) for r in rows], dtype=torch.long)


def batches(encoded, batch_tokens: int, generator: random.Random, shuffle: bool = True):
    """Lists of pair indices holding about batch_tokens source+target tokens each, of similar lengths
    (little padding), in random order when shuffle."""
    order = sorted(range(len(encoded)), key=lambda i: (len(encoded[i][0]), generator.random()))
    out, current, longest = [], [], 0
    for i in order:
        size = len(encoded[i][0]) + len(encoded[i][1])
        if current and max(longest, size) * (len(current) + 1) > batch_tokens:
            out.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, size)
    if current:
        out.append(current)
    if shuffle:
        generator.shuffle(out)
    return out


def to_tensors(encoded, index, device):
    src = pad([encoded[i][0] for i in index]).to(device)
    tgt = pad([encoded[i][1] for i in index]).to(device)
    return src, tgt[:, :-1], tgt[:, 1:]


# --- training -----------------------------------------------------------------------------------------

@dataclass
class TrainSettings:
    """How a translation run trains; saved in every checkpoint. The defaults are the cpu preset's."""

    max_steps: int = 3200
    batch_tokens: int = 1000  # source + target tokens per batch (padding included)
    lr: float = 3e-3  # peak learning rate, after warm-up; small models take large rates
    warmup_steps: int = 300
    min_lr: float = 1e-5  # where the cosine decay ends
    weight_decay: float = 0.01
    label_smoothing: float = 0.0  # 0.1 in the paper; in minutes of training it did not help (lesson 10)
    grad_clip: float = 1.0  # 0 = no clipping
    eval_interval: int = 400
    source_vocab: int = 2000  # English BPE tokens
    target_kind: str = "char"  # Chinese: "char" (one token per character) or "bpe"
    seed: int = 0

    def __post_init__(self):
        check_field_types(self)
        for name in ("max_steps", "batch_tokens", "eval_interval", "source_vocab"):
            if getattr(self, name) <= 0:
                raise ValueError(f"TrainSettings.{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.label_smoothing < 1 or self.lr <= 0 or self.warmup_steps < 0:
            raise ValueError("label_smoothing must be in [0, 1), lr > 0 and warmup_steps >= 0")
        if self.target_kind not in ("char", "bpe"):
            raise ValueError(f"target_kind must be 'char' or 'bpe', got {self.target_kind!r}")


def lr_at(step: int, s: TrainSettings) -> float:
    """Linear warm-up to s.lr, then cosine decay to s.min_lr at s.max_steps."""
    if step < s.warmup_steps:
        return s.lr * (step + 1) / s.warmup_steps
    progress = min(1.0, (step - s.warmup_steps) / max(1, s.max_steps - s.warmup_steps))
    return s.min_lr + 0.5 * (s.lr - s.min_lr) * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def val_loss(model: Transformer, encoded, device="cpu", batch_tokens: int = 4000) -> float:
    """Mean cross-entropy per target token (no label smoothing) over encoded pairs."""
    was = model.training
    model.eval()
    total, count = 0.0, 0
    for index in batches(encoded, batch_tokens, random.Random(0), shuffle=False):
        src, tin, tout = to_tensors(encoded, index, device)
        logits, _ = model(src, tin)
        n = int((tout != PAD).sum())
        total += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tout.reshape(-1),
                                                   ignore_index=PAD, reduction="sum").item()
        count += n
    model.train(was)
    return total / count


def translate_all(model: Transformer, source: Vocabulary, target: Vocabulary, sentences: list[str],
                  beam_width: int = 1, length_penalty: float = 1.0, batch_size: int = 64, device="cpu",
                  max_len: int | None = None) -> list[str]:
    """Chinese for every English sentence: greedy in batches (beam_width 1) or beam search one by one.
    max_len caps the tokens written (default: as many as the context allows)."""
    n = model.config.context_length
    ids = [source.encode(s)[: n - 1] + [EOS] for s in sentences]
    out = [None] * len(sentences)
    if beam_width == 1:
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            for i, row in zip(chunk, greedy(model, pad([ids[i] for i in chunk]).to(device), max_len), strict=True):
                out[i] = target.decode(row)
    else:
        for i, row in enumerate(ids):
            best, _ = beam_search(model, torch.tensor([row], device=device), beam_width, length_penalty, max_len)
            out[i] = target.decode(best)
    return out


def translate(model: Transformer, source: Vocabulary, target: Vocabulary, sentence: str, beam_width: int = 4,
              length_penalty: float = 1.0) -> str:
    """One English sentence in Chinese (beam search; beam_width=1 is greedy)."""
    if not isinstance(sentence, str) or not sentence.strip():
        raise ValueError("the sentence is empty: give some English text to translate")
    ids = source.encode(sentence.strip()) + [EOS]
    limit = model.config.context_length
    if len(ids) > limit:
        raise ValueError(f"the sentence is {len(ids)} tokens long (end token included) and this model reads at "
                         f"most {limit}: translate it in shorter pieces")
    device = next(model.parameters()).device
    best, _ = beam_search(model, torch.tensor([ids], device=device), beam_width, length_penalty)
    return target.decode(best)


def scores(hypotheses: list[str], references: list[list[str]]) -> dict:
    """BLEU and chrF (sacrebleu, its Chinese tokenizer for BLEU) of hypotheses against reference lists."""
    import sacrebleu

    most = max(len(r) for r in references)
    streams = [[r[k] if k < len(r) else None for r in references] for k in range(most)]
    bleu = sacrebleu.corpus_bleu(hypotheses, streams, tokenize="zh")
    chrf = sacrebleu.corpus_chrf(hypotheses, streams)
    return {"bleu": bleu.score, "chrf": chrf.score}



# --- the two baselines ------------------------------------------------------------------------------

class Retrieval:
    """Translation by memory: the training pair whose English is nearest (TF-IDF of words and word pairs,
    cosine similarity) gives its Chinese. It can only ever answer with a sentence it has seen."""

    def __init__(self, train_pairs):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        self.matrix = self.vectorizer.fit_transform([e for e, _ in train_pairs])
        self.pairs = list(train_pairs)

    def nearest(self, sentences: list[str]) -> list[int]:
        similarity = self.vectorizer.transform(sentences) @ self.matrix.T  # rows are unit vectors: cosines
        return [int(row.argmax()) for row in similarity.toarray()] if similarity.shape[1] else []

    def translate(self, sentences: list[str]) -> list[str]:
        return [self.pairs[i][1] for i in self.nearest(sentences)]


class DecoderOnly:
    """The same task for a GPT (lesson 05): each pair is one line, BOS english SEP chinese EOS, and the model
    learns to continue after SEP. The loss counts only the Chinese tokens and EOS, as the Transformer's does.

    ids: the English vocabulary's ids as they are (0-3 are PAD, BOS, EOS, UNK), then the Chinese ones
    shifted by the English vocabulary's size, then SEP.
    """

    def __init__(self, source: Vocabulary, target: Vocabulary, n_layer: int, n_head: int, n_embd: int,
                 dropout: float = 0.0, context_length: int = 2 * CONTEXT, device=None):
        from .course.device import get_device
        from .model import GPT, GPTConfig

        self.source, self.target = source, target
        self.shift = source.vocab_size
        self.sep = source.vocab_size + target.vocab_size
        self.device = get_device(device)
        self.config = GPTConfig(vocab_size=self.sep + 1, context_length=context_length, n_layer=n_layer,
                                n_head=n_head, n_embd=n_embd, dropout=dropout, tie_weights=True)
        self.model = GPT(self.config).to(self.device)

    def line(self, english: str, chinese: str | None = None) -> tuple[list[int], list[int]]:
        """(ids, targets) of one line; targets are -100 (ignored) where nothing is to be learned."""
        prompt = [BOS] + self.source.encode(english)[: CONTEXT - 1] + [self.sep]
        if chinese is None:
            return prompt, []
        answer = [self.shift + i for i in self.target.encode(chinese)[: CONTEXT - 2]] + [self.shift + EOS]
        ids = prompt + answer
        targets = [-100] * (len(prompt) - 1) + answer  # position t predicts token t + 1
        return ids[:-1], targets

    def fit(self, train_pairs, seconds: float, settings: TrainSettings, progress: bool = True) -> History:
        """Train for `seconds` of wall-clock time; the learning rate follows lr_at over the time used."""
        from tqdm.auto import tqdm

        lines = [self.line(e, z) for e, z in train_pairs]
        encoded = [(ids, targets) for ids, targets in lines]
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        rest = [p for p in self.model.parameters() if p.dim() < 2]
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": settings.weight_decay},
                                       {"params": rest, "weight_decay": 0.0}], lr=settings.lr, betas=(0.9, 0.98),
                                      fused=True)
        history, epoch = History(), 0
        bar = tqdm(total=round(seconds), desc="decoder-only", unit="s", disable=not progress)
        start = time.perf_counter()
        self.model.train()
        while time.perf_counter() - start < seconds:
            order = batches([(a, []) for a, _ in encoded], settings.batch_tokens,
                            random.Random(f"gpt-{settings.seed}-{epoch}"))
            for index in order:
                used = time.perf_counter() - start
                if used >= seconds:
                    break
                # The schedule runs on time: after a share f of the time, the lr of step f * max_steps.
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(int(used / seconds * settings.max_steps), settings)
                ids = pad([encoded[i][0] for i in index]).to(self.device)
                targets = torch.tensor([t + [-100] * (ids.shape[1] - len(t)) for t in (encoded[i][1] for i in index)],
                                       device=self.device)
                _, loss, _ = self.model(ids, targets)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), settings.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                history.train_loss.append(loss.item())
                history.tokens += int((ids != PAD).sum())
                bar.n = min(round(time.perf_counter() - start), round(seconds))
                bar.refresh()
            epoch += 1
        bar.close()
        history.seconds = time.perf_counter() - start
        self.model.eval()
        return history

    @torch.no_grad()
    def translate(self, sentences: list[str], max_len: int | None = None) -> list[str]:
        """Greedy continuation after SEP until EOS (or max_len tokens), one sentence at a time with the KV cache."""
        self.model.eval()
        out = []
        for sentence in sentences:
            prompt, _ = self.line(sentence)
            caches = self.model.new_caches()
            ids = torch.tensor([prompt], device=self.device)
            written = []
            for _ in range(max_len or CONTEXT - 1):
                logits, _, _ = self.model(ids, caches=caches)
                scores = logits[0, -1, self.shift:self.sep].clone()  # only Chinese tokens may follow SEP
                scores[[PAD, BOS]] = float("-inf")
                token = int(scores.argmax())
                if token == EOS:
                    break
                written.append(token)
                ids = torch.tensor([[self.shift + token]], device=self.device)
            out.append(self.target.decode(written))
        return out


# --- the lesson's trainer: presets, history, checkpoints that resume exactly -------------------------

PRESETS = {
    # cpu: measured on 2 CPU cores (lesson 10, benchmarks/bench_translation.py): about 8 minutes.
    # No dropout and no label smoothing: in these minutes the model reads each training pair about six times,
    # too few to overfit, and both regularisers only slowed it down (benchmarks/bench_translation.py).
    "cpu": (dict(n_encoder=3, n_decoder=3, n_head=4, n_embd=128, dropout=0.0), dict()),
    # gpu: the paper's base model (6 + 6 blocks, 512 dims, 8 heads) with larger batches; not measured here.
    "gpu": (dict(n_encoder=6, n_decoder=6, n_head=8, n_embd=512, dropout=0.1),
            dict(max_steps=8000, batch_tokens=8000, lr=7e-4, warmup_steps=800, eval_interval=500)),
}
KIND = "utils.translation"  # written into config.json: a translation checkpoint, not a GPT one
FILES = ("model.safetensors", "optimizer.safetensors", "config.json", "vocabularies.json")


@dataclass
class History:
    """What fit() saw: the loss of every step, validation loss at each evaluation, time and tokens."""

    train_loss: list = field(default_factory=list)
    eval_steps: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    seconds: float = 0.0
    tokens: int = 0  # real (not padding) source + target tokens trained on

    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


class Trainer:
    """Owns a Transformer, its vocabularies, an AdamW optimizer and the batches; fit() trains it."""

    def __init__(self, model_config: dict, settings: TrainSettings, pairs: data.Splits | None = None,
                 vocabularies: tuple[Vocabulary, Vocabulary] | None = None, device=None):
        from .course.device import get_device

        self.settings = settings
        self.pairs = pairs if pairs is not None else load_pairs()
        self.device = get_device(device)
        self.source, self.target = vocabularies or build_vocabularies(
            self.pairs.train, settings.source_vocab, settings.target_kind)
        self.config = TransformerConfig(self.source.vocab_size, self.target.vocab_size, CONTEXT, **model_config)
        torch.manual_seed(settings.seed)
        self.model = Transformer(self.config).to(self.device)
        decay = [p for p in self.model.parameters() if p.dim() >= 2]  # matrices; not biases or norms
        rest = [p for p in self.model.parameters() if p.dim() < 2]
        self.optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": settings.weight_decay},
                                            {"params": rest, "weight_decay": 0.0}], lr=settings.lr,
                                           betas=(0.9, 0.98), fused=True)
        self.train_data = encode_pairs(self.pairs.train, self.source, self.target, CONTEXT)
        self.val_data = encode_pairs(self.pairs.val, self.source, self.target, CONTEXT)
        self.step = 0
        self.history = History()

    @classmethod
    def from_preset(cls, name: str, pairs=None, device=None, vocabularies=None, **overrides) -> Trainer:
        """A trainer with a named preset ("cpu", "gpu"); overrides change settings (max_steps=50, ...).
        vocabularies (source, target) saves building them again when you have them already."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        model_config, settings = PRESETS[name]
        model_fields = {f.name for f in fields(TransformerConfig)}
        model_config = {**model_config, **{k: v for k, v in overrides.items() if k in model_fields}}
        settings = TrainSettings(**{**settings, **{k: v for k, v in overrides.items() if k not in model_fields}})
        return cls(model_config, settings, pairs=pairs, vocabularies=vocabularies, device=device)

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        # Each epoch's order follows from (seed, epoch) alone, so a resumed run finds its place again.
        return batches(self.train_data, self.settings.batch_tokens, random.Random(f"{self.settings.seed}-{epoch}"))

    def passes(self) -> float:
        """How many times the steps so far have gone over the training pairs (epochs, fractional)."""
        return self.step / len(self._epoch_batches(0))

    def _position(self) -> tuple[int, int]:
        """(epoch, batch within it) of the next step."""
        epoch, left = 0, self.step
        while left >= len(self._epoch_batches(epoch)):
            left -= len(self._epoch_batches(epoch))
            epoch += 1
        return epoch, left

    def fit(self, steps: int | None = None, progress: bool = True) -> History:
        """Train up to settings.max_steps (or `steps` more); evaluate every eval_interval steps."""
        from tqdm.auto import tqdm

        s = self.settings
        end = s.max_steps if steps is None else min(s.max_steps, self.step + steps)
        bar = tqdm(total=end, initial=self.step, desc="training", unit="step", disable=not progress)
        self.model.train()
        epoch, offset = self._position()
        started = time.perf_counter()
        while self.step < end:
            for index in self._epoch_batches(epoch)[offset:]:
                if self.step >= end:
                    break
                self._train_step(index)
                bar.update(1)
                bar.set_postfix(loss=f"{self.history.train_loss[-1]:.3f}")
                if self.step % s.eval_interval == 0 or self.step == s.max_steps:
                    self.history.eval_steps.append(self.step)
                    self.history.val_loss.append(val_loss(self.model, self.val_data, self.device))
            epoch, offset = epoch + 1, 0
        bar.close()
        self.history.seconds += time.perf_counter() - started
        self.model.eval()
        return self.history

    def _train_step(self, index: list[int]) -> None:
        s = self.settings
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.step, s)
        src, tin, tout = to_tensors(self.train_data, index, self.device)
        _, loss = self.model(src, tin, tout, label_smoothing=s.label_smoothing)
        loss.backward()
        if s.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.history.train_loss.append(loss.item())
        self.history.tokens += int((src != PAD).sum()) + int((tout != PAD).sum())
        self.step += 1

    # --- checkpoints ----------------------------------------------------------------------------------

    def save(self, folder) -> Path:
        """Weights, optimizer, random state, settings, history and vocabularies; written whole or not at all."""
        return save_checkpoint(folder, self)

    @classmethod
    def load(cls, folder, pairs=None, device=None) -> Trainer:
        """The trainer saved in folder, ready to fit() on exactly as the saved one would have."""
        return load_checkpoint(folder, pairs=pairs, device=device)


def save_checkpoint(folder, trainer: Trainer) -> Path:
    from safetensors.torch import save_file

    folder = Path(folder)
    checkpoint.check_can_write(folder)
    staging = folder.parent / f".{folder.name}.saving-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in trainer.model.state_dict().items() if k != "head.weight"}
    save_file(weights, staging / "model.safetensors")  # the tied head is target_emb.weight: stored once
    tensors, groups = checkpoint.optimizer_to_tensors(trainer.optimizer)
    tensors["rng.torch"] = torch.get_rng_state()  # dropout's random numbers
    save_file(tensors, staging / "optimizer.safetensors")
    meta = {"kind": KIND, "model": trainer.config.to_dict(), "train": asdict(trainer.settings),
            "step": trainer.step, "history": asdict(trainer.history), "optimizer_groups": groups,
            "data_sha256": _pairs_digest(trainer.pairs.train)}
    (staging / "config.json").write_text(json.dumps(meta, indent=1) + "\n")
    vocabularies = {"source": trainer.source.to_dict(), "target": trainer.target.to_dict()}
    (staging / "vocabularies.json").write_text(json.dumps(vocabularies, ensure_ascii=False) + "\n", encoding="utf-8")
    manifest = {"kind": KIND, "step": trainer.step, "sha256": {n: data.sha256_of(staging / n) for n in FILES}}
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    checkpoint._swap_into_place(staging, folder)
    return folder


def _pairs_digest(pairs) -> str:
    return checkpoint.sha256_text("\n".join(f"{e}\t{z}" for e, z in pairs))


def read_checkpoint(folder) -> tuple[dict, Vocabulary, Vocabulary]:
    """(config.json, source vocabulary, target vocabulary) of a translation checkpoint, checked whole."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not a checkpoint folder: it has no config.json (train one with "
                                f"`python -m utils.translation train --out {folder}`)")
    meta = checkpoint._read_json(folder / "config.json")
    if meta.get("kind") != KIND:
        raise ValueError(f"{folder} holds a checkpoint of another model (a GPT of lesson 06, read it with "
                         "utils.checkpoint.load_model), not a translation Transformer")
    manifest = checkpoint._read_json(folder / "manifest.json") if (folder / "manifest.json").is_file() else {}
    sums = manifest.get("sha256", {})
    for name in FILES:
        if not (folder / name).is_file() or sums.get(name) != data.sha256_of(folder / name):
            raise ValueError(f"{folder / name} is missing or not the file this checkpoint saved (its SHA-256 "
                             "differs from manifest.json): use the checkpoint as it was saved, or train again")
    vocab = checkpoint._read_json(folder / "vocabularies.json")
    return meta, Vocabulary.from_dict(vocab["source"]), Vocabulary.from_dict(vocab["target"])


def load_checkpoint(folder, pairs=None, device=None) -> Trainer:
    folder = Path(folder)
    meta, source, target = read_checkpoint(folder)
    config = TransformerConfig.from_dict(meta["model"])
    model_config = {k: v for k, v in meta["model"].items()
                    if k not in ("source_vocab_size", "target_vocab_size", "context_length")}
    trainer = Trainer(model_config, TrainSettings(**meta["train"]), pairs=pairs, vocabularies=(source, target),
                      device=device)
    if trainer.config != config:
        raise ValueError(f"{folder}: its vocabularies do not fit its model settings; the checkpoint is damaged")
    if _pairs_digest(trainer.pairs.train) != meta["data_sha256"]:
        raise ValueError(f"{folder} was trained on other sentence pairs than the ones given: pass the same pairs")
    _load_weights(trainer.model, folder / "model.safetensors")
    tensors = checkpoint._read_safetensors(folder / "optimizer.safetensors")
    checkpoint.optimizer_from_tensors(trainer.optimizer, tensors, meta["optimizer_groups"], trainer.device,
                                      folder / "optimizer.safetensors")
    torch.set_rng_state(tensors["rng.torch"])
    trainer.step = meta["step"]
    trainer.history = History(**meta["history"])
    return trainer


def _load_weights(model: Transformer, path) -> None:
    state = checkpoint._read_safetensors(path)
    state["head.weight"] = state.get("target_emb.weight")
    own = model.state_dict()
    wrong = [f"{k}: file {tuple(v.shape)}, model {tuple(own[k].shape)}"
             for k, v in state.items() if k in own and v is not None and v.shape != own[k].shape]
    if wrong or set(own) != set(state):
        raise ValueError(f"{path} does not fit this model: " + "; ".join(wrong or [
            f"missing {sorted(set(own) - set(state))}, unexpected {sorted(set(state) - set(own))}"]))
    model.load_state_dict(state)


def load_model(folder, device=None) -> tuple[Transformer, Vocabulary, Vocabulary]:
    """A trained translation model (eval mode) and its two vocabularies, for translating."""
    from .course.device import get_device

    meta, source, target = read_checkpoint(folder)
    config = TransformerConfig.from_dict(meta["model"])
    if (config.source_vocab_size, config.target_vocab_size) != (source.vocab_size, target.vocab_size):
        raise ValueError(f"{folder}: its vocabularies do not fit its model settings; the checkpoint is damaged")
    model = Transformer(config)
    _load_weights(model, Path(folder) / "model.safetensors")
    return model.to(get_device(device)).eval(), source, target

__all__ = ["to_simplified", "load_pairs", "Vocabulary", "build_vocabularies", "TrainSettings", "lr_at",
           "translate_all", "translate", "scores", "Trainer", "History", "PRESETS", "load_model", "Retrieval",
           "DecoderOnly"]


def main(argv=None) -> None:
    """python -m utils.translation train | translate: the lesson's model from the command line."""
    import argparse

    from .course.cli import LIBRARY_ERRORS, _Parser, _positive_int

    parser = _Parser(prog="python -m utils.translation", description="Train or use lesson 10's translation model.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train = commands.add_parser("train", help="train a model and save checkpoints")
    train.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    train.add_argument("--out", default="runs/translation", help="the checkpoint folder")
    train.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    train.add_argument("--steps", type=_positive_int, default=None, help="train at most this many steps now")
    train.add_argument("--max-steps", type=_positive_int, default=None, help="the run's length (new runs only)")
    train.add_argument("--device", default=None)
    use = commands.add_parser("translate", help="translate English sentences with a checkpoint")
    use.add_argument("sentences", nargs="+", help="English sentences, each in quotes")
    use.add_argument("--checkpoint", default="runs/translation")
    use.add_argument("--beam", type=_positive_int, default=4, help="beam width (1 = greedy)")
    use.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "translate":
            model, source, target = load_model(args.checkpoint, device=args.device)
            for sentence in args.sentences:
                print(f"{sentence}\n  -> {translate(model, source, target, sentence, args.beam)}")
            return
        out = Path(args.out)
        if args.resume:
            if args.max_steps is not None:
                raise ValueError("--max-steps cannot change when resuming: the run keeps its saved settings")
            trainer = Trainer.load(out, device=args.device)
        else:
            if (out / "config.json").exists():
                raise ValueError(f"{out} holds a checkpoint already: continue it with --resume or choose another --out")
            overrides = {} if args.max_steps is None else {"max_steps": args.max_steps}
            trainer = Trainer.from_preset(args.preset, device=args.device, **overrides)
        checkpoint.check_can_write(out)
        print(f"{trainer.model.num_parameters():,} parameters, step {trainer.step} of {trainer.settings.max_steps}, "
              f"device {trainer.device}")
        history = trainer.fit(steps=args.steps)
        trainer.save(out)
        print(f"saved {out} at step {trainer.step}: val loss {history.val_loss[-1]:.3f}, "
              f"{history.tokens_per_second():,.0f} tokens/s")
    except LIBRARY_ERRORS as error:
        parser.exit(2, f"error: {error}\n")
    except argparse.ArgumentError as error:
        parser.error(str(error))


if __name__ == "__main__":
    main()
