"""The course's two command lines: training and sampling.

    python -m utils.train --preset cpu-quick [--device cpu] [--out runs/cpu-quick] [--resume] [--steps N]
    python -m utils.sample --checkpoint runs/cpu-quick --prompt "ROMEO:" [--tokens 300]
        [--temperature 0.8] [--top-k 50] [--top-p 0.95] [--seed 0] [--device cpu] [--no-cache]

A mistake on the command line (a wrong flag, a missing checkpoint) ends with one line that starts
with `error:` and says what to do, never with a traceback.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..checkpoint import check_can_write, load_model
from ..generation import generate
from ..train import PRESETS, Trainer
from .seeding import set_seed


class _Parser(argparse.ArgumentParser):
    """argparse, but every mistake is one line that starts with `error:` (no usage block, no traceback)."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    value = int(text)  # argparse turns a ValueError here into "invalid _positive_int value"
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def _finite_at_least_zero(what: str):
    """An argparse type: a finite number >= 0 (NaN and infinity fail), described as `what` in the error."""
    def parse(text: str) -> float:
        value = float(text)
        if not (math.isfinite(value) and value >= 0):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value
    return parse


_temperature = _finite_at_least_zero("a number >= 0 (0 = greedy)")
_seconds = _finite_at_least_zero("a number of seconds >= 0")


def _probability(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:  # NaN fails too
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1], got {text}")
    return value


LIBRARY_ERRORS = (RuntimeError, ValueError, TypeError, FileNotFoundError)


def train_main(argv=None) -> None:
    """python -m utils.train: train a preset, or resume a run, and save the checkpoint."""
    parser = _Parser(prog="python -m utils.train", description="Train the course's GPT on Tiny Shakespeare.")
    parser.add_argument("--preset", default="cpu-quick", choices=sorted(PRESETS))
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--out", default=None, help="checkpoint folder (default: runs/<preset>)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    parser.add_argument("--overwrite", action="store_true", help="start again even if --out holds a checkpoint")
    parser.add_argument("--steps", type=_positive_int, default=None,
                        help="stop after this many more steps (resume later)")
    parser.add_argument("--max-steps", type=_positive_int, default=None, help="override the preset's total steps")
    parser.add_argument("--save-every", type=_seconds, default=60.0,
                        help="save the checkpoint every this many seconds of training (default 60; 0 = only at "
                             "the end); it is also saved on Ctrl-C")
    parser.add_argument("--tokenizer", default=None,
                        help="char (default), bpe, or the path of a saved tokenizer .json")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)

    try:
        _train(args)
    except LIBRARY_ERRORS as error:  # say what is wrong, no traceback
        parser.exit(2, f"error: {error}\n")


def _train(args) -> None:
    out = Path(args.out or f"runs/{args.preset}")
    _check_out(out, args)
    if args.resume:
        trainer = Trainer.load(out, device=args.device)
        print(f"resuming {out} at step {trainer.step} of {trainer.train_config.max_steps}")
    else:
        overrides = {k: v for k, v in (("max_steps", args.max_steps), ("tokenizer", args.tokenizer),
                                       ("seed", args.seed)) if v is not None}
        trainer = Trainer.from_preset(args.preset, device=args.device, **overrides)
    cfg = trainer.model_config
    name = "model" if args.resume else f"preset {args.preset}"
    print(f"{name}: {cfg.n_layer} layers, {cfg.n_head} heads, {cfg.n_embd} dims, context "
          f"{cfg.context_length}, vocab {cfg.vocab_size}, {trainer.model.num_parameters():,} parameters, "
          f"device {trainer.device}")

    def report(t, losses):
        print(f"step {t.step:5d}  train {losses['train']:.4f}  val {losses['val']:.4f}", flush=True)

    if trainer.step >= trainer.train_config.max_steps:
        print(f"{out} has finished its {trainer.train_config.max_steps} steps already: nothing to do")
        return
    trainer.fit(steps=args.steps, callback=report, save_to=out, save_every=args.save_every)
    h = trainer.history
    if trainer.interrupted:
        print(f"\ninterrupted: saved {out} at step {trainer.step} of {trainer.train_config.max_steps}. "
              f"Continue with:\n  python -m utils.train --out {out} --resume", flush=True)
        raise SystemExit(130)  # the exit status of a program stopped by Ctrl-C
    print(f"saved {out} at step {trainer.step} of {trainer.train_config.max_steps}; last evaluation at step "
          f"{h.eval_steps[-1]}: val loss {h.eval_val[-1]:.4f}; {h.seconds:.1f} s of training in all "
          f"({1000 * h.seconds / max(1, trainer.step):.1f} ms per step, evaluations included)")
    print(f"sample: python -m utils.sample --checkpoint {out} --prompt 'ROMEO:'")


def _check_out(out: Path, args) -> None:
    """Everything about --out that can be known before training: a run must never be lost at the end."""
    if args.resume:
        fixed = [f"--{k.replace('_', '-')}" for k in ("max_steps", "tokenizer", "seed") if getattr(args, k) is not None]
        if fixed:
            raise ValueError(f"{', '.join(fixed)} cannot change when resuming: the run continues with the settings "
                             f"saved in {out}/config.json")
        if args.overwrite:
            raise ValueError("--resume continues the checkpoint in --out and --overwrite replaces it: choose one")
    elif (out / "config.json").exists() and not args.overwrite:
        raise ValueError(f"{out} holds a checkpoint already. Continue it with --resume, start again with "
                         "--overwrite, or choose another --out")
    check_can_write(out)


def sample_main(argv=None) -> None:
    """python -m utils.sample: write text with a trained GPT."""
    parser = _Parser(prog="python -m utils.sample", description="Write text with a trained GPT from the command line.")
    parser.add_argument("--checkpoint", required=True, help="a folder written by python -m utils.train")
    parser.add_argument("--prompt", default="\n", help="text to continue (default: a new line)")
    parser.add_argument("--tokens", type=_positive_int, default=300, help="how many new tokens to write")
    parser.add_argument("--temperature", type=_temperature, default=0.8, help="0 = greedy")
    parser.add_argument("--top-k", type=_positive_int, default=None)
    parser.add_argument("--top-p", type=_probability, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--no-cache", action="store_true", help="generate without the KV cache")
    args = parser.parse_args(argv)

    if args.prompt == "":
        parser.error("the prompt is empty: give at least one character (the default is a new line)")
    set_seed(args.seed)
    try:
        model, tokenizer = load_model(args.checkpoint, device=args.device)
    except LIBRARY_ERRORS as error:
        parser.exit(2, f"error: {error}\n")
    try:
        ids = tokenizer.encode(args.prompt)
    except ValueError as error:
        parser.error(f"cannot encode the prompt with this checkpoint's tokenizer: {error}")
    if len(ids) > model.config.context_length:
        print(f"(the prompt has {len(ids)} tokens; the model sees only the last {model.config.context_length})")
    out = generate(model, ids, args.tokens, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                   use_cache=not args.no_cache)
    print(tokenizer.decode(out[0]))
