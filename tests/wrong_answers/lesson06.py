"""Wrong answers for lesson 06's checks (a batch, the schedule, the training loop, one Muon update)."""

import math

import torch

from utils import train
from utils.muon import Muon, orthogonalize

from . import WrongAnswer


def _batch(shift=1, add_to_ids=False):
    def make_batch(data, starts, context_length):
        rows = starts[:, None] + torch.arange(context_length)
        return data[rows], (data[rows] + 1 if add_to_ids else data[rows + shift])
    return make_batch


def _batch_with_a_loop(data, starts, context_length):
    x = torch.stack([data[s:s + context_length] for s in starts])
    y = torch.stack([data[s + 1:s + 1 + context_length] for s in starts])
    return x, y


def _batch_as_int32(data, starts, context_length):
    rows = starts[:, None] + torch.arange(context_length)
    return data[rows].int(), data[rows + 1].int()


def _schedule(start=1, clamp=True, from_zero=False, floor=True):
    def learning_rate(step, lr, min_lr, warmup_steps, max_steps):
        if step < warmup_steps:
            return lr * (step + start) / warmup_steps
        if clamp and step >= max_steps:
            return min_lr
        p = step / max_steps if from_zero else (step - warmup_steps) / (max_steps - warmup_steps)
        low = min_lr if floor else 0.0
        return low + 0.5 * (1 + math.cos(math.pi * p)) * (lr - low)
    return learning_rate


def _schedule_from_utils(step, lr, min_lr, warmup_steps, max_steps):
    cfg = train.TrainConfig(lr=lr, min_lr=min_lr, warmup_steps=warmup_steps, max_steps=max_steps)
    return train.lr_at(step, cfg)


def _loop(batch_once=False, clear=True, clip="right", lr="right", eval_gen="own", final=True, eval_mode=True,
          back_to_train=True, no_grad=True, as_float=True):
    """A training loop as a learner might write it, with the mistakes chosen by the arguments."""

    def train_loop(model, optimizer, train_data, val_data, cfg, generator):
        context = model.config.context_length

        def evaluate():
            if eval_mode:
                model.eval()
            gen = generator if eval_gen == "training" else torch.Generator().manual_seed(0)
            total = 0.0
            with torch.no_grad() if no_grad else torch.enable_grad():
                for _ in range(cfg.eval_iters):
                    x, y = train.get_batch(val_data, cfg.batch_size, context, gen)
                    total += model(x, y)[1].item()
            if back_to_train:
                model.train()
            return total / cfg.eval_iters

        losses, val = [], {}
        first = train.get_batch(train_data, cfg.batch_size, context, generator) if batch_once else None
        for step in range(cfg.max_steps):
            if step % cfg.eval_interval == 0:
                val[step] = evaluate()
            if lr == "right":
                for group in optimizer.param_groups:
                    group["lr"] = train.lr_at(step, cfg)
            elif lr == "peak":
                for group in optimizer.param_groups:
                    group["lr"] = cfg.lr
            x, y = first if batch_once else train.get_batch(train_data, cfg.batch_size, context, generator)
            _, loss, _ = model(x, y)
            if clear:
                optimizer.zero_grad()
            loss.backward()
            if clip == "always" or (clip == "right" and cfg.grad_clip > 0):
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            if clip == "after" and cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            losses.append(loss.item() if as_float else loss)
        if final:
            val[cfg.max_steps] = evaluate()
        return losses, val

    return train_loop


def _muon(look_ahead=True, side=max, decay_after=False, old_momentum=False):
    def muon_update(weight, grad, momentum, lr, beta, weight_decay):
        m = beta * momentum + grad
        o = orthogonalize(grad + beta * m if look_ahead else m)
        step = lr * 0.2 * math.sqrt(side(weight.shape)) * o
        new = (weight - step) * (1 - lr * weight_decay) if decay_after else weight * (1 - lr * weight_decay) - step
        return new, momentum if old_momentum else m
    return muon_update


def _muon_by_the_optimizer(weight, grad, momentum, lr, beta, weight_decay):
    w = torch.nn.Parameter(weight.clone())
    w.grad = grad.clone()
    opt = Muon([{"params": [w], "use_muon": True}], lr=lr, weight_decay=weight_decay, momentum=beta)
    opt.state[w]["momentum"] = momentum.clone()
    opt.step()
    return w.detach(), opt.state[w]["momentum"]


WRONG = [
    WrongAnswer("6.1", "targets not shifted", _batch(shift=0), "the targets are the inputs themselves"),
    WrongAnswer("6.1", "targets shifted back", _batch(shift=-1), "shifted the wrong way"),
    WrongAnswer("6.1", "ids plus one", _batch(add_to_ids=True), "1 was added to the token ids"),
    WrongAnswer("6.1", "a Python loop", _batch_with_a_loop, "rules out Python loops"),
    WrongAnswer("6.1", "int32 ids", _batch_as_int32, "dtype is torch.int32, expected torch.int64"),
    WrongAnswer("6.2", "warm-up from zero", _schedule(start=0), "the warm-up starts at 0"),
    WrongAnswer("6.2", "no clamp after max_steps", _schedule(clamp=False), "the cosine turned back up"),
    WrongAnswer("6.2", "progress from step 0", _schedule(from_zero=True), "measured from step 0"),
    WrongAnswer("6.2", "decays to zero", _schedule(floor=False), "decays to 0 instead of min_lr"),
    WrongAnswer("6.2", "utils.train.lr_at", _schedule_from_utils, "utils.train.lr_at"),
    WrongAnswer("6.3", "clips when grad_clip is 0", _loop(clip="always"), "although grad_clip is 0"),
    WrongAnswer("6.3", "one batch for every step", _loop(batch_once=True), "every step trained on the same batch"),
    WrongAnswer("6.3", "no zero_grad", _loop(clear=False), "never cleared"),
    WrongAnswer("6.3", "no clipping", _loop(clip="none"), "the optimizer used unclipped gradients"),
    WrongAnswer("6.3", "clipping after the step", _loop(clip="after"), "before the optimizer step"),
    WrongAnswer("6.3", "no schedule", _loop(lr="none"), "the learning rate never changed"),
    WrongAnswer("6.3", "always the peak rate", _loop(lr="peak"), "the learning rate never changed"),
    WrongAnswer("6.3", "evaluates with the training generator", _loop(eval_gen="training"),
                "drew its batches from the training generator"),
    WrongAnswer("6.3", "no final evaluation", _loop(final=False), "the evaluation after the last step is missing"),
    WrongAnswer("6.3", "evaluates in training mode", _loop(eval_mode=False), "ran in training mode"),
    WrongAnswer("6.3", "stays in eval mode", _loop(back_to_train=False), "some training steps ran in eval mode"),
    WrongAnswer("6.3", "evaluates with gradients", _loop(no_grad=False), "ran with gradients on"),
    WrongAnswer("6.3", "returns loss tensors", _loop(as_float=False), "the losses are tensors"),
    WrongAnswer("6.4", "no look-ahead", _muon(look_ahead=False), "Nesterov"),
    WrongAnswer("6.4", "smaller side", _muon(side=min), "the smaller side"),
    WrongAnswer("6.4", "decay after the step", _muon(decay_after=True), "weight decay was applied after the step"),
    WrongAnswer("6.4", "old momentum returned", _muon(old_momentum=True), "the momentum that came back is the old one"),
    WrongAnswer("6.4", "utils.muon.Muon", _muon_by_the_optimizer, "your code used Muon.step"),
]
