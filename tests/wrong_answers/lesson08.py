"""Wrong answers for lesson 08's checks (BERT fine-tuning)."""

import torch
import torch.nn.functional as F

from . import WrongAnswer

# --- 8.2: truncate and pad ---------------------------------------------------------------------------


def _pad(cut=lambda s, m: s if len(s) <= m else s[:m - 1] + s[-1:], to_max=False, fill=None, mask_from_ids=False,
         dtype=torch.long):
    def truncate_and_pad(sequences, pad_id, max_length):
        rows = [cut(list(s), max_length) for s in sequences]
        n = max_length if to_max else max(len(r) for r in rows)
        ids = torch.zeros(len(rows), n, dtype=dtype) + (pad_id if fill is None else fill)
        mask = torch.zeros(len(rows), n, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r, dtype=dtype)
            mask[i, :len(r)] = 1
        return ids, (ids != pad_id).long() if mask_from_ids else mask

    return truncate_and_pad


# --- 8.3: macro scores -------------------------------------------------------------------------------


def _class_scores(labels, predictions, c):
    tp = sum(t == c == p for t, p in zip(labels, predictions, strict=True))
    predicted, actual = predictions.count(c), labels.count(c)
    p = tp / predicted if predicted else 0.0
    r = tp / actual if actual else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def _macro(labels, predictions, k, classes=None, nan=False, f1_of_means=False):
    rows = [_class_scores(labels, predictions, c) for c in (classes or range(k))]
    if nan:  # 0/0 left as NaN
        rows = [(p if predictions.count(c) else float("nan"), r, f) for c, (p, r, f) in enumerate(rows)]
    p, r, f = (sum(row[i] for row in rows) / len(rows) for i in range(3))
    return (p, r, 2 * p * r / (p + r)) if f1_of_means else (p, r, f)


def _micro(labels, predictions, k):
    share = sum(t == p for t, p in zip(labels, predictions, strict=True)) / len(labels)
    return share, share, share


# --- 8.4: one training step --------------------------------------------------------------------------


def _step(clear=True, step_first=False, returns="float", evaluates=False, no_step=False):
    def train_step(model, batch, optimizer):
        if evaluates == "eval":
            model.eval()
        elif evaluates == "train(False)":
            model.train(False)
        loss = model(**batch).loss
        if step_first:
            optimizer.step()
        loss.backward()
        if not step_first and not no_step:
            optimizer.step()
        if clear:
            optimizer.zero_grad()
        return {"float": lambda: loss.item(), "tensor": lambda: loss,
                "after": lambda: model(**batch).loss.item()}[returns]()

    return train_step


# --- 8.5: masking tokens -----------------------------------------------------------------------------


def _mask(labels_elsewhere=-100, labels_hold="original", special="ids", kinds=(0.8, 0.9), randint_first=False,
          above=False, use_generator=True, in_place=False):
    def mask_tokens(input_ids, special_ids, mask_id, vocab_size, generator, probability=0.15):
        g = generator if use_generator else None
        shape = input_ids.shape
        random_ids = torch.randint(vocab_size, shape, generator=g) if randint_first else None
        u, kind = torch.rand(shape, generator=g), torch.rand(shape, generator=g)
        if random_ids is None:
            random_ids = torch.randint(vocab_size, shape, generator=g)
        chosen = (u > 1 - probability) if above else (u < probability)
        if special == "ids":
            chosen = chosen & ~torch.isin(input_ids, torch.tensor(special_ids))
        elif special == "ends":
            chosen[:, 0] = chosen[:, -1] = False
        original = input_ids.clone()
        corrupted = input_ids if in_place else input_ids.clone()
        corrupted[chosen & (kind < kinds[0])] = mask_id
        random_here = chosen & (kind >= kinds[0]) & (kind < kinds[1])
        corrupted[random_here] = random_ids[random_here]
        truth = original if labels_hold == "original" else corrupted
        elsewhere = original if labels_elsewhere == "ids" else torch.full_like(original, labels_elsewhere)
        return corrupted, torch.where(chosen, truth, elsewhere)

    return mask_tokens


# --- 8.6: a linear probe -----------------------------------------------------------------------------


def _probe(pool="mean", detach=True, divide=True, bias=True, steps_off=0):
    def linear_probe(hidden, attention_mask, labels, num_classes, steps, lr):
        h = hidden.detach() if detach else hidden
        m = attention_mask[..., None].to(h.dtype)
        x = {"mean": lambda: (h * m).sum(1) / m.sum(1), "all": lambda: h.mean(1), "sum": lambda: (h * m).sum(1),
             "first": lambda: h[:, 0]}[pool]()
        weight = torch.zeros(num_classes, x.shape[1], requires_grad=True)
        b = torch.zeros(num_classes, requires_grad=bias)
        for _ in range(steps - steps_off):
            loss = F.cross_entropy(x @ weight.T + b, labels, reduction="mean" if divide else "sum")
            loss.backward()
            with torch.no_grad():
                weight -= lr * weight.grad
                weight.grad = None
                if bias:
                    b -= lr * b.grad
                    b.grad = None
        return weight.detach(), b.detach()

    return linear_probe


WRONG = [
    WrongAnswer("8.1", "int32 mask", lambda ids, pad: (ids != pad).int(), "the mask is int32"),
    WrongAnswer("8.1", "float mask", lambda ids, pad: (ids != pad).float(), "the mask is float"),
    WrongAnswer("8.1", "bool mask", lambda ids, pad: ids != pad, "the mask is bool"),
    WrongAnswer("8.1", "pad id fixed at 0", lambda ids, pad: (ids != 0).long(), "padding was taken to be id 0"),
    WrongAnswer("8.1", "inverted", lambda ids, pad: (ids == pad).long(), "the wrong way round"),
    WrongAnswer("8.2", "slices off [SEP]", _pad(cut=lambda s, m: s[:m]), "lost the last one, [SEP]"),
    WrongAnswer("8.2", "keeps the end", _pad(cut=lambda s, m: s[-m:]), "lost its start"),
    WrongAnswer("8.2", "no cut", _pad(cut=lambda s, m: s), "were not cut"),
    WrongAnswer("8.2", "pads to max_length", _pad(to_max=True), "padded to max_length"),
    WrongAnswer("8.2", "pads with 0", _pad(fill=0), "instead of pad_id"),
    WrongAnswer("8.2", "mask from the ids", _pad(mask_from_ids=True), "comparing ids with pad_id"),
    WrongAnswer("8.2", "float ids", _pad(dtype=torch.float32), "the ids are float"),
    WrongAnswer("8.3", "F1 of the means", lambda y, p, k: _macro(y, p, k, f1_of_means=True),
                "mean of the per-class F1"),
    WrongAnswer("8.3", "precision and recall swapped", lambda y, p, k: _macro(p, y, k), "swapped"),
    WrongAnswer("8.3", "absent classes left out",
                lambda y, p, k: _macro(y, p, k, classes=sorted(set(y) | set(p))), "never occur"),
    WrongAnswer("8.3", "micro average", _micro, "micro average"),
    WrongAnswer("8.3", "NaN for 0/0", lambda y, p, k: _macro(y, p, k, nan=True), "is NaN"),
    WrongAnswer("8.4", "returns the loss tensor", _step(returns="tensor"), "returned a tensor"),
    WrongAnswer("8.4", "model.eval() in the step", _step(evaluates="eval"), "rules out"),
    WrongAnswer("8.4", "model.train(False) in the step", _step(evaluates="train(False)"), "left in eval mode"),
    WrongAnswer("8.4", "no zero_grad", _step(clear=False), "never cleared"),
    WrongAnswer("8.4", "step before backward", _step(step_first=True), "no parameter moved"),
    WrongAnswer("8.4", "no optimizer step", _step(no_step=True), "no parameter moved"),
    WrongAnswer("8.4", "loss after the step", _step(returns="after"), "computed again after the step"),
    WrongAnswer("8.5", "labels keep the ids", _mask(labels_elsewhere="ids"), "must be -100 there"),
    WrongAnswer("8.5", "labels 0 elsewhere", _mask(labels_elsewhere=0), "0 is a real class"),
    WrongAnswer("8.5", "labels hold the corrupted ids", _mask(labels_hold="corrupted"), "ORIGINAL id"),
    WrongAnswer("8.5", "special tokens chosen", _mask(special="none"), "is never chosen"),
    WrongAnswer("8.5", "special tokens by position", _mask(special="ends"), "by position"),
    WrongAnswer("8.5", "everything [MASK]", _mask(kinds=(1.0, 1.0)), "only 80%"),
    WrongAnswer("8.5", "nothing kept", _mask(kinds=(0.8, 1.0)), "no chosen token stays"),
    WrongAnswer("8.5", "draws in another order", _mask(randint_first=True), "another order"),
    WrongAnswer("8.5", "chosen above 1 - p", _mask(above=True), "BELOW probability"),
    WrongAnswer("8.5", "the global random stream", _mask(use_generator=False), "never from the global random stream"),
    WrongAnswer("8.5", "writes into input_ids", _mask(in_place=True), "changed input_ids in place"),
    WrongAnswer("8.6", "padding averaged in", _probe(pool="all"), "padding positions were averaged in"),
    WrongAnswer("8.6", "summed", _probe(pool="sum"), "summed, not averaged"),
    WrongAnswer("8.6", "[CLS] only", _probe(pool="first"), "first vector"),
    WrongAnswer("8.6", "summed loss", _probe(divide=False), "SUM of the losses"),
    WrongAnswer("8.6", "no bias", _probe(bias=False), "bias never moved"),
    WrongAnswer("8.6", "one step too few", _probe(steps_off=1), "one step too few"),
    WrongAnswer("8.6", "not detached", _probe(detach=False), "were not detached"),
]
