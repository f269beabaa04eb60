"""Checks for the exercises of lesson 08 (BERT fine-tuning).

    from utils.checks.bert import check_attention_mask, check_truncate_and_pad, check_macro_scores, \
        check_train_step, check_mask_tokens, check_linear_probe

The references come from utils.bert, utils.metrics and PyTorch, never from the solution notebook. No check
runs a real BERT: 8.4 trains a tiny random one, 8.6 gets its encoder's vectors as tensors.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..bert import attention_mask_from_ids, fit_linear_probe, mask_token_ids, mean_pool, pad_batch
from ..metrics import macro_scores
from .core import Case, CheckFailed, Mistake, built_aside, difference, run_cases, seeded_randint, seeded_randn
from .hints import exercise
from .rules import NoAttribute, enforced

__all__ = ["check_attention_mask", "check_truncate_and_pad", "check_macro_scores", "check_train_step",
           "check_mask_tokens", "check_linear_probe", "CheckFailed"]


def _checked_callable(name: str, answer, number: str) -> None:
    """The usual "pass the function itself" failure, for checks that wrap the answer before run_cases sees it."""
    if not callable(answer):
        run_cases(name, answer, answer, [], exercise=number)


# --- Exercise 8.1 ----------------------------------------------------------------------------------


@exercise("8.1", "The attention mask", "easy", 5, hints=(
    "The mask says, for every position, whether a real token sits there: 1 for a token, 0 for padding. "
    "The pad id is given, and it is the only thing that tells padding apart.",
    "Compare every id with pad_id at once (a comparison of a tensor with a number gives a bool tensor of "
    "the same shape), then turn True/False into 1/0 integers of the type the model expects, int64.",
    "(input_ids != pad_id) is True for real tokens; .long() turns it into the int64 0/1 mask (not .int(), "
    "which is int32, nor .float()).",
))
def check_attention_mask(attention_mask) -> None:
    """Exercise 8.1: a 0/1 int64 attention mask from padded input ids and the pad id."""
    run_cases(
        "attention_mask",
        attention_mask,
        attention_mask_from_ids,
        [
            Case((torch.tensor([[101, 7592, 102, 0, 0], [101, 2088, 2003, 2204, 102]]), 0)),
            Case((torch.tensor([[101, 2748, 102]]), 0),
                 hint="A batch without padding gets a mask of all ones, with the same shape as the ids."),
            Case((torch.tensor([[0, 31414, 2], [0, 2, 1]]), 1),
                 hint="The pad id is an argument: RoBERTa pads with 1 and starts every text with the token 0, "
                      "which is a real token."),
            Case((torch.tensor([[101, 102, 0, 0, 0, 0]]), 0)),
        ],
        hint="1 where the id is a real token, 0 where it is pad_id; int64, shaped like input_ids.",
        exercise="8.1",
        mistakes=[
            Mistake(lambda ids, pad: (ids != pad).int(), "the mask is int32: attention masks, like token ids, are "
                    "int64 (long) in PyTorch and transformers, and an int32 mask fails where int64 is expected."),
            Mistake(lambda ids, pad: (ids != pad).float(), "the mask is float: it must be an int64 (long) tensor "
                    "of 0s and 1s; a float mask is read as additive scores by some attention code."),
            Mistake(lambda ids, pad: ids != pad, "the mask is bool: the model expects 1/0 integers, int64."),
            Mistake(lambda ids, pad: (ids != 0).long(), "padding was taken to be id 0: compare with pad_id, the "
                    "argument (RoBERTa pads with 1 and uses 0 for its first token)."),
            Mistake(lambda ids, pad: (ids == pad).long(), "the mask is the wrong way round: 1 marks a real token, "
                    "0 the padding."),
        ],
    )


# --- Exercise 8.2 ----------------------------------------------------------------------------------


def _truncate_and_pad(sequences, pad_id, max_length):
    batch = pad_batch(sequences, pad_id, max_length=max_length)
    return batch["input_ids"], batch["attention_mask"]


def _padded(cut, longest="batch", fill="pad_id", mask="lengths", dtype=torch.long):
    """truncate_and_pad with one mistake chosen by the arguments."""

    def truncate_and_pad(sequences, pad_id, max_length):
        cuts = [cut(list(s), max_length) for s in sequences]
        n = max(len(s) for s in cuts) if longest == "batch" else max_length
        value = pad_id if fill == "pad_id" else 0
        ids = torch.full((len(cuts), n), value, dtype=dtype)
        masks = torch.zeros(len(cuts), n, dtype=torch.long)
        for row, s in enumerate(cuts):
            ids[row, :len(s)] = torch.tensor(s, dtype=dtype)
            masks[row, :len(s)] = 1
        if mask == "ids":
            masks = (ids != pad_id).long()
        return ids, masks

    return truncate_and_pad


def _keep_last(s, m):
    return s if len(s) <= m else s[:m - 1] + s[-1:]


_SLICE = _padded(lambda s, m: s[:m])
_NO_CUT = _padded(lambda s, m: s)


@exercise("8.2", "Truncate and pad a batch", "medium", 15, hints=(
    "Two steps, in this order: cut every sequence that is too long, keeping its final token ([SEP] in "
    "BERT), then pad the batch to the longest sequence it now has, and build the mask from the lengths.",
    "A sequence longer than max_length keeps its first max_length - 1 ids and its last id. The batch is as "
    "long as its longest cut sequence (maybe less than max_length). Fill with pad_id, and set the mask to 1 "
    "over each sequence's own length: a real token may have the pad id (GPT-2 pads with its end-of-text "
    "token), so comparing ids with pad_id is not enough.",
    "Cut with s[:max_length - 1] + s[-1:] when len(s) > max_length; then start from torch.full((batch, "
    "longest), pad_id, dtype=torch.long) and a zero int64 mask, and copy each row in with its length.",
))
def check_truncate_and_pad(truncate_and_pad) -> None:
    """Exercise 8.2: cut each id list to max_length keeping its last id, then dynamic padding with a mask."""
    run_cases(
        "truncate_and_pad",
        truncate_and_pad,
        _truncate_and_pad,
        [
            Case(([[101, 7592, 102], [101, 2088, 2003, 2204, 102]], 0, 8),
                 hint="Nothing is longer than max_length = 8, so nothing is cut, and the batch is as long as its "
                 "longest sequence, 5: dynamic padding, not padding to max_length."),
            Case(([[101, 11, 12, 13, 14, 15, 102], [101, 9, 102]], 0, 5),
                 hint="The first sequence has 7 ids and max_length is 5: it keeps its first 4 ids and its last "
                 "one, [SEP] (102), which marks the end of the text for BERT."),
            Case(([[101, 1, 2, 3, 102], [101, 4, 5, 6, 7, 8, 102], [101, 9, 10, 11, 12, 102]], 0, 4),
                 hint="All three sequences are longer than 4: after the cut the batch is exactly 4 wide, and "
                 "every row still ends with 102."),
            Case(([[0, 31414, 232, 2], [0, 2]], 1, 16),
                 hint="RoBERTa pads with 1 (pad_id), not 0; its texts start with 0 and end with 2."),
            Case(([[464, 3797, 50256], [464, 50256]], 50256, 4),
                 hint="GPT-2 has no pad token, so it is often padded with its end-of-text token 50256, which each "
                 "text here also ends with, as a real token: the mask must come from the lengths, not from "
                 "comparing ids with pad_id."),
        ],
        hint="Return (input_ids, attention_mask), two int64 tensors (batch, longest sequence after the cut).",
        exercise="8.2",
        mistakes=[
            Mistake(_SLICE, "the cut kept the first max_length ids and lost the last one, [SEP]: keep the first "
                    "max_length - 1 ids and the last id."),
            Mistake(_padded(lambda s, m: s if len(s) <= m else s[-m:]), "the cut kept the end of the sequence and "
                    "lost its start, [CLS] included: keep the first max_length - 1 ids and the last one."),
            Mistake(_NO_CUT, "sequences longer than max_length were not cut."),
            Mistake(_padded(_keep_last, longest="max_length"), "the batch was padded to max_length: dynamic padding "
                    "pads to the longest sequence of this batch, after the cut."),
            Mistake(_padded(_keep_last, fill="zero"), "the padding is 0 instead of pad_id."),
            Mistake(_padded(_keep_last, mask="ids"), "the mask was built by comparing ids with pad_id, which also "
                    "hides real tokens that share the pad id: set it from each sequence's length."),
            Mistake(_padded(_keep_last, dtype=torch.float32), "the ids are float: token ids are int64 (long), "
                    "and an embedding table cannot be indexed with floats (torch.zeros and torch.full make floats "
                    "unless told dtype=torch.long)."),
        ],
    )


# --- Exercise 8.3 ----------------------------------------------------------------------------------


def _macro(labels, predictions, num_classes):
    return tuple(macro_scores(labels, predictions, num_classes))


def _per_class(labels, predictions, num_classes):
    """(precision, recall, f1) of every class, with 0.0 for an empty denominator."""
    rows = []
    for c in range(num_classes):
        tp = sum(t == c and p == c for t, p in zip(labels, predictions, strict=True))
        predicted, actual = sum(p == c for p in predictions), sum(t == c for t in labels)
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        rows.append((precision, recall, 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
                     actual + predicted))
    return rows


def _mean(values):
    return sum(values) / len(values)


def _f1_of_means(labels, predictions, k):
    p, r, _ = _macro(labels, predictions, k)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def _only_present(labels, predictions, k):
    rows = [row for row in _per_class(labels, predictions, k) if row[3]]
    return tuple(_mean([row[i] for row in rows]) for i in range(3))


def _micro(labels, predictions, k):
    share = sum(t == p for t, p in zip(labels, predictions, strict=True)) / len(labels)
    return share, share, share


def _weighted(labels, predictions, k):
    rows = _per_class(labels, predictions, k)
    support = [sum(t == c for t in labels) for c in range(k)]
    return tuple(sum(row[i] * s for row, s in zip(rows, support, strict=True)) / len(labels) for i in range(3))


def _compare_three_numbers(expected, got) -> str | None:
    if not isinstance(got, tuple | list) or len(got) != 3:
        return f"expected a tuple (precision, recall, f1), got {type(got).__name__}"
    for name, e, g in zip(("precision", "recall", "f1"), expected, got, strict=True):
        if isinstance(g, torch.Tensor) or isinstance(g, bool) or not isinstance(g, (int, float)):
            return f"{name}: expected a Python float, got {type(g).__name__}"
        if math.isnan(g):
            return f"{name} is NaN"
        if not math.isclose(g, e, rel_tol=1e-6, abs_tol=1e-9):
            return f"{name}: the numbers differ"
    return None


@exercise("8.3", "Macro-averaged precision, recall and F1", "medium", 15, hints=(
    "Score each class on its own, as if it were the positive class and every other class negative; the "
    "macro average is then the plain mean over the classes, so a rare class counts as much as a common one.",
    "For class c: TP = examples labelled c and predicted c, precision = TP / (everything predicted c), "
    "recall = TP / (everything labelled c), F1 from those two; each is 0.0 when its denominator is 0. "
    "Average the num_classes precisions, recalls and F1 scores separately, absent classes included.",
    "A (num_classes, num_classes) count table of (label, prediction) pairs has TP on its diagonal, the "
    "predicted totals in its column sums and the true totals in its row sums. Macro F1 is the mean of the "
    "per-class F1 scores, not the F1 of the two means.",
))
def check_macro_scores(macro_scores) -> None:
    """Exercise 8.3: macro precision, recall and F1 over num_classes classes, as three floats."""
    run_cases(
        "macro_scores",
        macro_scores,
        _macro,
        [
            Case(([0, 1, 2, 1, 0], [0, 1, 2, 1, 0], 3), hint="Every prediction is right: all three scores are 1.0."),
            Case(([0, 1, 2, 2], [0, 2, 2, 2], 3),
                 hint="Class 1 is never predicted: its precision is 0/0, defined as 0.0, and its recall 0. Class "
                 "2: precision 2/3, recall 1. The means are 0.556, 0.667 and 0.6."),
            Case(([0, 0, 0, 0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0, 0, 1, 0, 0], 2),
                 hint="Eight of ten are class 0 and the model is right on 7 of them: accuracy is 0.7, but class 1 "
                 "is never caught, and the macro scores give it the same weight as class 0."),
            Case(([0, 0, 1, 1, 1, 2], [0, 1, 1, 2, 2, 2], 3),
                 hint="Precision divides by what was PREDICTED as the class, recall by what truly IS the class: "
                 "here they differ for every class."),
            Case(([0, 1, 2, 0, 1, 2], [0, 2, 2, 0, 1, 1], 4),
                 hint="Class 3 never occurs, neither in the labels nor in the predictions. It still counts: its "
                 "scores are 0.0, so the means are over 4 classes."),
        ],
        hint="Return (precision, recall, f1): each a Python float, the mean over the classes 0..num_classes - 1 "
        "of that class's score.",
        compare=_compare_three_numbers,
        exercise="8.3",
        mistakes=[
            Mistake(_f1_of_means, "f1 is the F1 of the mean precision and recall: macro F1 is the mean of the "
                    "per-class F1 scores."),
            Mistake(lambda y, p, k: _macro(p, y, k), "precision and recall are swapped: precision divides by the "
                    "examples PREDICTED as the class, recall by the examples that truly are."),
            Mistake(_only_present, "classes that never occur were left out of the mean: every class 0..num_classes "
                    "- 1 counts, with 0.0 where it has no examples."),
            Mistake(_micro, "this is the micro average (over examples, which equals the accuracy here): macro "
                    "averages over classes, each with the same weight."),
            Mistake(_weighted, "each class was weighted by how often it occurs (the 'weighted' average): macro gives "
                    "every class the same weight."),
        ],
    )


# --- Exercise 8.4 ----------------------------------------------------------------------------------


def _tiny_setup(seed: int, optimizer_name: str):
    """A 2-layer BERT classifier small enough to train in milliseconds, a padded batch and an optimizer.

    Built aside (core.built_aside), so that the learner's global random state is left alone.
    """
    from transformers import BertConfig, BertForSequenceClassification

    from ..bert import quiet_transformers

    quiet_transformers()
    config = BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32, num_labels=2,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = built_aside(lambda: BertForSequenceClassification(config).train(), seed)
    input_ids = seeded_randint(5, 100, (4, 8), seed=seed + 1)
    lengths = torch.tensor([8, 6, 3, 8])
    attention_mask = (torch.arange(8) < lengths[:, None]).long()
    input_ids[attention_mask == 0] = 0
    batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": torch.tensor([1, 0, 0, 1])}
    if optimizer_name == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    return model, batch, optimizer


def _reference_step(model, batch, optimizer) -> float:
    output = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    loss = F.cross_entropy(output.logits, batch["labels"])
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


_WHY_NO_EVAL = ("a training step runs the model in training mode (dropout on); switching to eval mode belongs to "
                "evaluation, outside the step.")


def _no_eval() -> list[NoAttribute]:
    """model.eval() refused: transformers' models have their own eval, every other module nn.Module's."""
    from transformers import PreTrainedModel

    return [NoAttribute(PreTrainedModel, "eval", _WHY_NO_EVAL), NoAttribute(torch.nn.Module, "eval", _WHY_NO_EVAL)]


def _run_steps(step, rules=()):
    """The check's view of a training step: train a fresh tiny BERT with it and report what came back, the
    parameters after the steps, and the mode the model was left in."""

    def run(seed: int, optimizer_name: str, steps: int) -> dict:
        model, batch, optimizer = _tiny_setup(seed, optimizer_name)
        returned = []
        for _ in range(steps):
            with enforced(rules):
                returned.append(step(model, {k: v.clone() for k, v in batch.items()}, optimizer))
        parameters = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        return {"losses": returned, "parameters after the steps": parameters, "training": model.training}

    return run


def _compare_steps(expected, got) -> str | None:
    for loss in got["losses"]:
        if isinstance(loss, torch.Tensor):
            return ("train_step returned a tensor: return the loss as a Python float, a plain number (a tensor "
                    "keeps the step's whole graph alive)")
        if isinstance(loss, bool) or not isinstance(loss, (int, float)):
            return f"train_step returned {type(loss).__name__}: return the loss as a Python float"
    if not got["training"]:
        return "the model was left in eval mode: a training step must leave it in training mode"
    if got["losses"] and not math.isclose(got["losses"][0], expected["losses"][0], rel_tol=1e-5, abs_tol=1e-6):
        return "the loss returned is not the loss of the batch before the step"
    why = difference(expected["parameters after the steps"], got["parameters after the steps"], rtol=1e-4,
                     atol=1e-6)
    if why:
        return f"parameters after the steps: {why}"
    why = difference(expected["losses"], got["losses"], rtol=1e-5, atol=1e-6)
    return f"losses: {why}" if why else None


_NOTHING_MOVED = ("no parameter moved: backward() must compute the gradients first, then the optimizer's step "
                  "use them, and only after that may they be cleared. Check the order, and that the optimizer "
                  "steps at all.")


def _step_with(order=("forward", "backward", "step", "zero_grad"), returns="loss"):
    """A training step as a learner might write it, with its calls in the given order."""

    def train_step(model, batch, optimizer):
        loss = None
        for action in order:
            if action == "forward":
                loss = model(**batch).loss
            elif action == "backward":
                loss.backward()
            elif action == "step":
                optimizer.step()
            elif action == "zero_grad":
                optimizer.zero_grad()
        if returns == "after":
            return model(**batch).loss.item()
        return loss.item()

    return train_step


@exercise("8.4", "One training step", "medium", 15, hints=(
    "A training step is four things in a fixed order: compute the loss of the batch, compute the "
    "gradients, move the parameters, clear the gradients for the next step. Then report the loss.",
    "The model called on the batch (whose labels are in it) returns an output with a .loss. Gradients "
    "come from the loss's backward(); the optimizer uses them in its step and, because PyTorch adds new "
    "gradients to old ones, must clear them afterwards. The number returned is the loss before the step, "
    "as a Python float; the model stays in training mode.",
    "The loss is the .loss of what model(**batch) returns. The three calls after it belong to the loss "
    "(backward) and to the optimizer (step, then zero_grad); a one-element tensor's .item() is its number.",
))
def check_train_step(train_step) -> None:
    """Exercise 8.4: one optimizer step on a batch (forward, loss, backward, step, zero_grad), the loss as a
    float, the model left in training mode."""
    _checked_callable("train_step", train_step, "8.4")
    run_cases(
        "train_step",
        _run_steps(train_step, rules=_no_eval()),
        _run_steps(_reference_step),
        [
            Case((0, "sgd", 1), label="one step with SGD on a tiny random BERT"),
            Case((1, "adamw", 1), label="one step with AdamW"),
            Case((2, "sgd", 3), label="three steps in a row with SGD",
                 hint="One step is right but three are not: PyTorch adds new gradients to the old ones until "
                 "they are cleared, so every step must clear them after using them."),
            Case((3, "adamw", 3), label="three steps in a row with AdamW"),
        ],
        hint="One step: the loss of the batch, its gradients, the optimizer's step, the gradients cleared; "
        "return the loss as a float.",
        compare=_compare_steps,
        exercise="8.4",
        mistakes=[Mistake(_run_steps(step), says) for step, says in [
            (_step_with(("forward", "backward", "zero_grad")), _NOTHING_MOVED),
            (_step_with(("forward", "backward", "step")), "the gradients were never cleared, so each step used the "
             "sum of all gradients so far: clear them after every step."),
            (_step_with(returns="after"), "the loss returned was computed again after the step: return the loss of "
             "the batch that the step learned from."),
        ]],
    )


# --- Exercise 8.5 ----------------------------------------------------------------------------------


def _draws(seed: int):
    return torch.Generator().manual_seed(seed)


def _with_generator(mask_tokens, check_input=False):
    """The check's view of a masking function: call it twice with generators seeded alike (the results must
    be the same), keep the learner's global random state, and report a change of input_ids in place."""

    def run(input_ids, special_ids, mask_id, vocab_size, seed, probability):
        with torch.random.fork_rng(devices=[]):  # a draw from the global stream must not leak out
            given = input_ids.clone()
            first = mask_tokens(given, special_ids, mask_id, vocab_size, _draws(seed), probability)
            if check_input and not torch.equal(given, input_ids):
                return "changed in place"
            second = mask_tokens(input_ids.clone(), special_ids, mask_id, vocab_size, _draws(seed), probability)
        if isinstance(first, tuple | list) and isinstance(second, tuple | list) and len(first) == len(second) == 2:
            if all(isinstance(t, torch.Tensor) for t in (*first, *second)) and not (
                    torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])):
                return "not repeatable"
        return first

    return run


def _compare_masking(expected, got) -> str | None:
    if isinstance(got, str) and got == "changed in place":
        return "your function changed input_ids in place: build new tensors and leave input_ids as it was"
    if isinstance(got, str) and got == "not repeatable":
        return ("two calls with generators seeded alike gave different results: draw every random number from "
                "`generator` (generator=generator), never from the global random stream")
    if not isinstance(got, tuple | list) or len(got) != 2:
        return f"expected a tuple (corrupted, labels), got {type(got).__name__}"
    for name, e, g in zip(("corrupted", "labels"), expected, got, strict=True):
        why = difference(e, g)
        if why:
            return f"{name}: {why}"
    return None


def _masking(special="ids", labels="original", unchosen=-100, thresholds=(0.8, 0.9), order="rand, rand, randint",
             below=True):
    """mask_tokens with one mistake chosen by the arguments."""

    def mask_tokens(input_ids, special_ids, mask_id, vocab_size, generator, probability=0.15):
        shape = input_ids.shape
        if order == "randint first":
            random_ids = torch.randint(vocab_size, shape, generator=generator)
        first, kind = torch.rand(shape, generator=generator), torch.rand(shape, generator=generator)
        if order != "randint first":
            random_ids = torch.randint(vocab_size, shape, generator=generator)
        chosen = first < probability if below else first > 1 - probability
        if special == "ids":
            chosen &= ~torch.isin(input_ids, torch.tensor(list(special_ids)))
        elif special == "ends":
            chosen[..., 0] = chosen[..., -1] = False
        if thresholds == "all":
            to_mask, to_random = torch.ones_like(chosen), torch.zeros_like(chosen)
        else:
            to_mask, to_random = kind < thresholds[0], (kind >= thresholds[0]) & (kind < thresholds[1])
        corrupted = torch.where(chosen & to_mask, mask_id, input_ids)
        corrupted = torch.where(chosen & to_random, random_ids, corrupted)
        truth = {"original": input_ids, "corrupted": corrupted}[labels]
        return corrupted, torch.where(chosen, truth, input_ids if unchosen == "ids" else unchosen)

    return mask_tokens


def _reference_masking(input_ids, special_ids, mask_id, vocab_size, generator, probability=0.15):
    return mask_token_ids(input_ids, special_ids, mask_id, vocab_size, probability, generator)


_SPECIAL = [0, 101, 102, 103]  # [PAD], [CLS], [SEP], [MASK] of BERT's vocabulary


def _texts(lengths, n, seed):
    """[CLS] word ids [SEP], padded with 0 to n, one row per length. (With the draws' seeds of the cases,
    each masked case has tokens of all three kinds: [MASK], random and kept.)"""
    rows = []
    for i, length in enumerate(lengths):
        words = seeded_randint(1000, 1100, (length - 2,), seed=seed + i).tolist()
        rows.append([101] + words + [102] + [0] * (n - length))
    return torch.tensor(rows)


@exercise("8.5", "Masking tokens for pre-training", "hard", 25, hints=(
    "BERT's pre-training hides some tokens and asks the model to guess them back. Two random decisions per "
    "token: is it chosen (never a special token or padding), and if so, what does the model see in its "
    "place: [MASK] (80%), a random token (10%) or the token itself (10%). The labels say what to guess.",
    "Make exactly the three draws of the statement, in its order, each of input_ids' shape and each with "
    "generator=generator. A token is chosen where its first draw is below probability and its id is not in "
    "special_ids; the second draw decides the kind; the third gives the random ids. Labels: the original id "
    "where chosen, -100 everywhere else.",
    "torch.isin(input_ids, torch.tensor(special_ids)) marks the special tokens; build the corrupted ids "
    "with torch.where twice (first [MASK], then the random ids), never by writing into input_ids; labels "
    "with torch.where(chosen, input_ids, -100).",
))
def check_mask_tokens(mask_tokens) -> None:
    """Exercise 8.5: BERT's masked-language-model corruption with the 80/10/10 rule, from a given generator."""
    _checked_callable("mask_tokens", mask_tokens, "8.5")
    run_cases(
        "mask_tokens",
        _with_generator(mask_tokens, check_input=True),
        _with_generator(_reference_masking),
        [
            Case((_texts([6], 6, seed=1), _SPECIAL, 103, 2000, 0, 0.0),
                 label="probability 0.0: one text of 6 tokens, nothing may be chosen",
                 hint="With probability 0 no token is chosen: the ids come back unchanged and every label is "
                 "-100, the value cross-entropy ignores."),
            Case((_texts([12], 12, seed=2), _SPECIAL, 103, 2000, 3, 1.0),
                 label="probability 1.0: every ordinary token of one text of 12 is chosen",
                 hint="Every word is chosen, [CLS] and [SEP] never. The second draw decides each chosen token's "
                 "fate: below 0.8 [MASK] (103), from 0.8 to 0.9 the random id of the third draw, from 0.9 on "
                 "the token itself; its label is always the original id."),
            Case((_texts([10, 7, 4], 10, seed=3), _SPECIAL, 103, 2000, 13, 0.5),
                 label="probability 0.5: a padded batch of 3 texts (lengths 10, 7, 4, padding 0)",
                 hint="Padding (0) and the [SEP] of a shorter text sit in the middle of the rows: special tokens "
                 "are found by their ids (special_ids), not by their positions."),
            Case((_texts([16, 12, 16, 9], 16, seed=4), _SPECIAL, 103, 2000, 16, 0.15),
                 label="probability 0.15, BERT's own: a padded batch of 4 texts of up to 16 tokens"),
        ],
        hint="Return (corrupted, labels), two int64 tensors shaped like input_ids; the draws must come from "
        "`generator`, in the order the statement gives.",
        compare=_compare_masking,
        exercise="8.5",
        mistakes=[Mistake(_with_generator(wrong), says) for wrong, says in [
            (_masking(unchosen="ids"), "the labels hold the ids of the tokens that were not chosen: they must be "
             "-100 there, so that the loss counts the chosen tokens only."),
            (_masking(unchosen=0), "the labels are 0 where no token was chosen: 0 is a real class ([PAD]); "
             "cross-entropy skips -100."),
            (_masking(labels="corrupted"), "the labels hold what the model sees ([MASK] or the random token): they "
             "must hold the ORIGINAL id, the answer the model has to guess."),
            (_masking(special="none"), "special tokens ([CLS], [SEP], padding) were chosen: a token whose id is in "
             "special_ids is never chosen."),
            (_masking(special="ends"), "special tokens were left out by position (first and last): padding and the "
             "[SEP] of a shorter text sit elsewhere, so compare the ids with special_ids."),
            (_masking(thresholds="all"), "every chosen token became [MASK]: only 80% should; 10% become a random "
             "token and 10% stay as they are."),
            (_masking(thresholds=(0.8, 1.0)), "no chosen token stays as it is: from 0.9 on, the second draw keeps "
             "the original token."),
            (_masking(order="randint first"), "the random numbers were drawn in another order: the first torch.rand "
             "chooses, the second decides the kind, then torch.randint gives the random ids."),
            (_masking(below=False), "a token is chosen where its first draw is BELOW probability, not above "
             "1 - probability: the same share, but other tokens."),
        ]],
    )


# --- Exercise 8.6 ----------------------------------------------------------------------------------


def _probe_reference(hidden, attention_mask, labels, num_classes, steps, lr):
    return fit_linear_probe(mean_pool(hidden.detach(), attention_mask), labels, num_classes, steps, lr)


def _pooled_with(kind):
    """Pooling as a learner might get it wrong."""
    if kind == "all positions":
        return lambda h, m: h.mean(dim=1)
    if kind == "sum":
        return lambda h, m: (h * m[..., None]).sum(dim=1)
    return lambda h, m: h[:, 0]  # the first token only


def _probe_with(pool=mean_pool, steps_off=0, sum_loss=False, bias=True):
    """linear_probe with one mistake chosen by the arguments."""

    def linear_probe(hidden, attention_mask, labels, num_classes, steps, lr):
        features = pool(hidden.detach(), attention_mask)
        weight = features.new_zeros(num_classes, features.shape[1])
        b = features.new_zeros(num_classes)
        targets = F.one_hot(labels, num_classes).to(features.dtype)
        for _ in range(max(steps - steps_off, 0)):
            error = torch.softmax(features @ weight.T + b, dim=-1) - targets
            error = error if sum_loss else error / len(labels)
            weight = weight - lr * error.T @ features
            b = b - lr * error.sum(0) if bias else b
        return weight, b

    return linear_probe


def _frozen_features(batch: int, n: int, d: int, num_classes: int, seed: int) -> tuple:
    """(hidden, attention_mask, labels) as a frozen encoder would give them: each text's real tokens lie
    around its class's centre, its padding positions hold large vectors that belong to no class. hidden
    still requires grad, as an encoder's output does when it was not run under torch.no_grad()."""
    labels = seeded_randint(0, num_classes, (batch,), seed=seed)
    centres = 2 * seeded_randn(num_classes, d, seed=seed + 1)
    hidden = centres[labels][:, None, :] + seeded_randn(batch, n, d, seed=seed + 2)
    lengths = seeded_randint(2, n + 1, (batch,), seed=seed + 3)
    mask = (torch.arange(n) < lengths[:, None]).long()
    hidden = torch.where(mask[..., None] == 1, hidden, 5.0 + seeded_randn(batch, n, d, seed=seed + 4))
    return hidden.requires_grad_(), mask, labels


def _compare_probe(expected, got) -> str | None:
    if not isinstance(got, tuple | list) or len(got) != 2:
        return f"expected a tuple (weight, bias), got {type(got).__name__}"
    for name, e, g in zip(("weight", "bias"), expected, got, strict=True):
        why = difference(e, g, rtol=1e-4, atol=1e-5)
        if why:
            return f"{name}: {why}"
    return None


@exercise("8.6", "A linear probe on a frozen encoder", "medium", 20, hints=(
    "A probe asks what a frozen encoder's vectors already know: average each text's token vectors into one "
    "vector, then fit only a linear classifier on those vectors. The encoder's output is fixed input; only "
    "the classifier's weight and bias learn.",
    "Mean pooling averages over the REAL tokens of each text (attention_mask 1): padding vectors must not "
    "count, and each text divides by its own number of tokens. Then plain gradient descent from zeros: "
    "each step, the mean cross-entropy of features @ weight.T + bias over ALL examples, its gradient, and a "
    "step of -lr times it, for weight and bias. hidden still requires grad: detach it first (the encoder is "
    "frozen), or a second backward() fails.",
    "Multiply hidden.detach() by the mask with a trailing dim (mask[..., None]) so that padding becomes 0, "
    "sum over the tokens (dim 1) and divide by each text's number of real tokens. The gradient of the mean "
    "cross-entropy with respect to the logits is (softmax(logits) - one_hot(labels)) / N; the chain rule "
    "through features @ weight.T + bias gives the weight's and the bias's (or let autograd compute them on "
    "zero tensors that require grad, with F.cross_entropy and torch.optim.SGD).",
))
def check_linear_probe(linear_probe) -> None:
    """Exercise 8.6: mean-pool frozen hidden states over the real tokens and fit a linear classifier on them
    by full-batch gradient descent from zero; returns (weight (C, d), bias (C,))."""
    run_cases(
        "linear_probe",
        linear_probe,
        _probe_reference,
        [
            Case((*_frozen_features(6, 4, 3, 2, seed=1), 2, 1, 0.5),
                 label="one step (lr 0.5) from zero: 6 texts of up to 4 tokens, d = 3, 2 classes",
                 hint="From zero weights every class has probability 1/2, so one step moves the weight of each "
                 "class towards the mean feature vector of its own texts. The features are the means of each "
                 "text's real tokens only: the padding positions hold large vectors that belong to no class."),
            Case((*_frozen_features(12, 6, 4, 2, seed=2), 2, 30, 0.5),
                 label="30 steps (lr 0.5): 12 texts of up to 6 tokens, d = 4, 2 classes",
                 hint="Full-batch gradient descent: every step uses all 12 examples and the MEAN loss over them. "
                 "hidden still requires grad: if the second step fails, the features were not detached from it."),
            Case((*_frozen_features(15, 5, 4, 3, seed=3), 3, 20, 1.0),
                 label="20 steps (lr 1.0): 15 texts, 3 classes",
                 hint="weight has one row per class, (num_classes, d), like nn.Linear's weight; bias one number per "
                 "class."),
            Case((*_frozen_features(4, 3, 2, 2, seed=4), 2, 0, 0.5), label="0 steps: the starting point",
                 hint="With no steps the probe is where it starts: weight and bias all zeros, float tensors."),
        ],
        hint="Return (weight, bias): (num_classes, d) and (num_classes,), after `steps` steps of gradient descent "
        "from zero on the mean-pooled features.",
        compare=_compare_probe,
        exercise="8.6",
        mistakes=[
            Mistake(_probe_with(pool=_pooled_with("all positions")), "the padding positions were averaged in: mean "
                    "pooling counts the real tokens only (attention_mask 1), each text divided by its own length."),
            Mistake(_probe_with(pool=_pooled_with("sum")), "the token vectors were summed, not averaged: divide each "
                    "text's sum by its number of real tokens."),
            Mistake(_probe_with(pool=_pooled_with("first")), "only each text's first vector ([CLS]) was used: the "
                    "probe reads the mean of all its real tokens."),
            Mistake(_probe_with(sum_loss=True), "the gradient is that of the SUM of the losses, N times the mean's: "
                    "divide by the number of examples."),
            Mistake(_probe_with(bias=False), "the bias never moved: it learns too, with the gradient summed over "
                    "the examples."),
            Mistake(_probe_with(steps_off=1), "one step too few: take exactly `steps` steps."),
        ],
    )
