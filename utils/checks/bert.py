"""Checks for the exercises of lesson 08 (BERT fine-tuning).

    from utils.checks.bert import check_attention_mask, check_pad_to_longest, check_scores, check_train_step

The references come from utils.bert, utils.metrics and PyTorch, never from the solution notebook.
"""

from __future__ import annotations

import torch

from ..bert import attention_mask_from_ids, pad_batch
from ..metrics import scores_from_confusion
from .core import Case, CheckFailed, run_cases, seeded_randint

__all__ = ["check_attention_mask", "check_pad_to_longest", "check_scores", "check_train_step", "CheckFailed"]


# --- Exercise 8.1 ----------------------------------------------------------------------------------


def check_attention_mask(attention_mask) -> None:
    """Exercise 8.1: a 0/1 attention mask from padded input ids and the pad id."""
    run_cases(
        "attention_mask",
        attention_mask,
        attention_mask_from_ids,
        [
            Case((torch.tensor([[101, 7592, 102, 0, 0], [101, 2088, 2003, 2204, 102]]), 0)),
            Case((torch.tensor([[101, 2748, 102]]), 0),
                 hint="A batch without padding gets a mask of all ones, with the same shape as the ids."),
            Case((torch.tensor([[0, 31414, 2], [0, 2, 1]]), 1),
                 hint="The pad id is an argument: RoBERTa pads with 1 (and uses 0 for its start token). "
                      "Compare with pad_id, not with a fixed 0."),
            Case((torch.tensor([[101, 102, 0, 0, 0, 0]]), 0)),
        ],
        hint="Compare every id with pad_id: (input_ids != pad_id) is True for real tokens. The mask must be "
             "1/0 integers (int64) of the same shape as input_ids: add .long() to a bool tensor.",
    )


# --- Exercise 8.2 ----------------------------------------------------------------------------------


def _pad_to_longest(sequences, pad_id):
    batch = pad_batch(sequences, pad_id)
    return batch["input_ids"], batch["attention_mask"]


def check_pad_to_longest(pad_to_longest) -> None:
    """Exercise 8.2: dynamic padding of a list of id lists to the longest one."""
    run_cases(
        "pad_to_longest",
        pad_to_longest,
        _pad_to_longest,
        [
            Case(([[101, 7592, 102], [101, 2088, 2003, 2204, 102]], 0)),
            Case(([[101, 102], [101, 2748, 2003, 102], [101, 5, 102]], 0),
                 hint="Pad on the right, up to the longest sequence of THIS batch (here 4), not to a fixed length."),
            Case(([[101, 2023, 102]], 0), hint="A single sequence needs no padding: its mask is all ones."),
            Case(([[0, 31414, 2], [0, 2]], 1), hint="Fill with pad_id (here 1), not with 0."),
        ],
        hint="Return (input_ids, attention_mask): two int64 tensors of shape (len(sequences), longest). "
             "Start from torch.full((batch, longest), pad_id) and torch.zeros((batch, longest)), then copy each "
             "sequence into its row and set the mask to 1 over its length.",
    )


# --- Exercise 8.3 ----------------------------------------------------------------------------------


def _precision_recall_f1(confusion):
    s = scores_from_confusion(confusion, positive=1)
    return (s.precision, s.recall, s.f1)


def check_scores(precision_recall_f1) -> None:
    """Exercise 8.3: precision, recall and F1 of class 1 from a 2x2 confusion matrix."""
    run_cases(
        "precision_recall_f1",
        precision_recall_f1,
        _precision_recall_f1,
        [
            Case(([[50, 10], [5, 35]],), hint="Rows are the true labels, columns the predictions: [[TN, FP], "
                                              "[FN, TP]]. precision = TP / (TP + FP), recall = TP / (TP + FN)."),
            Case(([[960, 6], [12, 137]],), hint="Precision looks down column 1 (everything predicted spam); recall "
                                                "looks along row 1 (everything that is spam)."),
            Case(([[90, 0], [10, 0]],),
                 hint="The model never predicts class 1, so TP + FP = 0: define precision (and then F1) as 0.0 "
                      "instead of dividing by zero. Check each denominator before dividing."),
            Case(([[95, 5], [0, 0]],), hint="No example is truly class 1, so TP + FN = 0: recall is 0.0."),
            Case(([[40, 0], [0, 60]],), hint="A perfect classifier: all three are 1.0."),
        ],
        hint="Return a tuple (precision, recall, f1) of floats; F1 = 2 * P * R / (P + R), or 0.0 when P + R = 0.",
    )


# --- Exercise 8.4 ----------------------------------------------------------------------------------


def _tiny_setup(seed: int, optimizer_name: str):
    """A 2-layer BERT classifier small enough to train in milliseconds, a padded batch and an optimizer."""
    from transformers import BertConfig, BertForSequenceClassification

    from ..bert import quiet_transformers

    quiet_transformers()
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32, num_labels=2,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForSequenceClassification(config).train()
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
    loss = torch.nn.functional.cross_entropy(output.logits, batch["labels"])
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def _run_steps(step, seed: int, optimizer_name: str, steps: int) -> dict:
    model, batch, optimizer = _tiny_setup(seed, optimizer_name)
    losses = []
    for _ in range(steps):
        loss = step(model, {k: v.clone() for k, v in batch.items()}, optimizer)
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            loss = loss.detach().item()
        if not isinstance(loss, (float, int)):
            raise TypeError(f"train_step returned {type(loss).__name__}, expected the loss as a float: "
                            "end with `return loss.item()`")
        losses.append(float(loss))
    parameters = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    return {"losses": losses, "parameters after the steps": parameters}


def check_train_step(train_step) -> None:
    """Exercise 8.4: one optimizer step on a batch (forward, loss, backward, step, zero_grad)."""
    if not callable(train_step):
        run_cases("train_step", train_step, _reference_step, [])  # raises the usual "pass the function" message
    run_cases(
        "train_step",
        lambda seed, optimizer, steps: _run_steps(train_step, seed, optimizer, steps),
        lambda seed, optimizer, steps: _run_steps(_reference_step, seed, optimizer, steps),
        [
            Case((0, "sgd", 1), label="one step with SGD on a tiny random BERT",
                 hint="The parameters did not move as one SGD step moves them. Did you call loss.backward() and "
                      "then optimizer.step()? The loss is model(**batch).loss (the batch holds the labels)."),
            Case((1, "adamw", 1), label="one step with AdamW"),
            Case((2, "sgd", 3), label="three steps in a row with SGD",
                 hint="One step is right but three are not: gradients ADD UP in PyTorch until they are cleared. "
                      "Call optimizer.zero_grad() after optimizer.step()."),
            Case((3, "adamw", 3), label="three steps in a row with AdamW"),
        ],
        hint="Forward the batch (model(**batch)), take .loss, call loss.backward(), optimizer.step(), "
             "optimizer.zero_grad(), and return loss.item() (a float).",
    )
