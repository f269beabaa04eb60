"""Training the GPT on Tiny Shakespeare: batches, AdamW (or Muon) with warm-up and cosine decay.

From a notebook:

    trainer = Trainer.from_preset("cpu-quick")
    history = trainer.fit()                     # tqdm bar, periodic evaluation
    trainer.save("runs/cpu-quick")              # safetensors + JSON, resumable exactly

From the command line (utils/course/cli.py):

    python -m utils.train --preset cpu-quick [--device cpu] [--out runs/cpu-quick] [--resume]

One training step is the whole idea, in `Trainer.fit`:

    lr  = lr_at(step)                    warm-up, then cosine decay
    x,y = get_batch(train_data)          random windows, y = x shifted by one token
    loss = cross_entropy(model(x), y)
    loss.backward(); clip the gradient norm to 1; optimizer.step()

The checkpoint format lives in utils/checkpoint.py.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch

from . import checkpoint
from .course.device import get_device
from .course.seeding import set_seed
from .data import load_shakespeare
from .model import GPT, GPTConfig, check_field_types


@dataclass
class TrainConfig:
    """How a run trains: batch, schedule, optimizer, evaluation, tokenizer. Saved in every checkpoint."""

    batch_size: int = 12
    max_steps: int = 2000
    lr: float = 1e-3  # peak learning rate, reached after warm-up
    min_lr: float = 1e-4  # where the cosine decay ends
    warmup_steps: int = 100
    weight_decay: float = 0.1
    optimizer: str = "adamw"  # "adamw", or "muon": Muon for the blocks' weight matrices, AdamW for the rest
    momentum: float = 0.95  # Muon's momentum (unused by AdamW)
    beta1: float = 0.9
    beta2: float = 0.99  # a little lower than the usual 0.999: small batches give noisy gradients
    grad_clip: float = 1.0  # 0 = no clipping
    eval_interval: int = 250
    eval_iters: int = 20  # batches per loss estimate during training
    final_eval_iters: int = 200  # batches for the last, more precise estimate
    seed: int = 1337
    tokenizer: str = "char"  # "char", "bpe", or the path of a tokenizer saved as JSON (e.g. by lesson 01)
    bpe_vocab_size: int = 512
    val_fraction: float = 0.1  # the last 10% of the text is held out

    def __post_init__(self):
        check_field_types(self)
        _check_train_settings(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = sorted(f.name for f in fields(cls))
        unknown = sorted(set(values) - set(known))
        if unknown:  # a misspelt setting must not be dropped silently
            raise ValueError(f"unknown TrainConfig fields {unknown}; known fields: {known}")
        return cls(**values)


def _check_train_settings(cfg: TrainConfig) -> None:
    at_least = {"batch_size": 1, "max_steps": 1, "eval_interval": 1, "eval_iters": 1, "final_eval_iters": 1,
                "warmup_steps": 0, "bpe_vocab_size": 256, "min_lr": 0, "weight_decay": 0, "grad_clip": 0}
    for name, low in at_least.items():
        if getattr(cfg, name) < low:
            raise ValueError(f"TrainConfig.{name} must be >= {low}, got {getattr(cfg, name)}")
    if not cfg.lr > 0:
        raise ValueError(f"TrainConfig.lr must be > 0, got {cfg.lr}")
    for name in ("beta1", "beta2", "momentum"):
        if not 0 <= getattr(cfg, name) < 1:
            raise ValueError(f"TrainConfig.{name} must be in [0, 1), got {getattr(cfg, name)}")
    if not 0 < cfg.val_fraction < 1:
        raise ValueError(f"TrainConfig.val_fraction must be between 0 and 1, got {cfg.val_fraction}")
    if cfg.optimizer not in ("adamw", "muon"):
        raise ValueError(f"unknown optimizer {cfg.optimizer!r}: use 'adamw' or 'muon'")


# name -> (model settings, training settings). vocab_size is set from the tokenizer. How each was found
# is in lessons/06_training_gpt.md ("The presets"); benchmarks/bench_gpt.py measures them.
PRESETS: dict[str, tuple[dict, dict]] = {
    # nanoGPT's CPU recipe for Tiny Shakespeare, at twice its learning rate (val 1.797 against 1.897).
    "cpu-quick": (
        dict(n_layer=4, n_head=4, n_embd=128, context_length=64, dropout=0.0),
        dict(batch_size=12, max_steps=2000, lr=2e-3, min_lr=2e-4, warmup_steps=100, eval_interval=250),
    ),
    # The best found for about 5 minutes on 2 CPU cores: Muon on a narrower model (val 1.529 in 256 s).
    "cpu-5min": (
        dict(n_layer=4, n_head=4, n_embd=96, context_length=64, dropout=0.0),
        dict(batch_size=12, max_steps=4500, lr=6e-3, min_lr=6e-4, warmup_steps=100, eval_interval=500,
             optimizer="muon"),
    ),
    # cpu-5min under the name lesson 11 compares it by: GPT-2's pieces (LayerNorm, GELU MLP, learned positions).
    "cpu-5min-gpt2": (
        dict(n_layer=4, n_head=4, n_embd=96, context_length=64, dropout=0.0),
        dict(batch_size=12, max_steps=4500, lr=6e-3, min_lr=6e-4, warmup_steps=100, eval_interval=500,
             optimizer="muon"),
    ),
    # The same model with lesson 11's four pieces (RMSNorm, SwiGLU, RoPE, QK-norm), as many steps as fit in
    # 5 minutes on 2 cores. At equal time it is GPT-2's equal, not better: 1.5144 against 1.5213 with one seed,
    # 1.5174 against 1.5097 with another (benchmarks/bench_modern.py), so cpu-5min stays lesson 06's GPT-2.
    "cpu-5min-modern": (
        dict(n_layer=4, n_head=4, n_embd=96, context_length=64, dropout=0.0, norm="rmsnorm", mlp="swiglu",
             positions="rope", qk_norm=True),
        dict(batch_size=12, max_steps=5250, lr=6e-3, min_lr=6e-4, warmup_steps=100, eval_interval=500,
             optimizer="muon"),
    ),
    # nanoGPT's GPU recipe (config/train_shakespeare_char.py).
    "gpu": (
        dict(n_layer=6, n_head=6, n_embd=384, context_length=256, dropout=0.2),
        dict(batch_size=64, max_steps=5000, lr=1e-3, min_lr=1e-4, warmup_steps=100, eval_interval=250,
             eval_iters=200),
    ),
    # A few seconds: for tests and quick mode.
    "tiny": (
        dict(n_layer=2, n_head=2, n_embd=32, context_length=32, dropout=0.0),
        dict(batch_size=8, max_steps=50, lr=3e-3, min_lr=3e-4, warmup_steps=10, eval_interval=25,
             eval_iters=4, final_eval_iters=8),
    ),
}


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to cfg.lr, then cosine decay to cfg.min_lr at cfg.max_steps."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if step >= cfg.max_steps:
        return cfg.min_lr
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


def make_optimizer(model: GPT, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW (default) or Muon, with weight decay on matrices and embedding tables only."""
    # Weight decay on matrices and embedding tables (2-D), not on biases and LayerNorm gains (1-D),
    # as in nanoGPT: shrinking a gain or a bias towards 0 does not make the model simpler.
    named = list(model.named_parameters())  # a tied matrix appears once
    no_decay = [p for _, p in named if p.dim() < 2]
    if cfg.optimizer == "adamw":
        decay = [p for _, p in named if p.dim() >= 2]
        return torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
            # The fused kernel does each update in one pass over memory: about 3 ms of a 55 ms step on
            # 2 CPU cores. (MPS and other devices take the standard implementation.)
            fused=device.type in ("cuda", "cpu"),
        )
    if cfg.optimizer == "muon":
        from .muon import Muon

        # Muon for the weight matrices inside the blocks; the embedding table (= the output head)
        # and the LayerNorm gains stay with AdamW, as in every Muon recipe.
        matrices = [p for name, p in named if p.dim() == 2 and name.startswith("blocks.")]
        tables = [p for name, p in named if p.dim() == 2 and not name.startswith("blocks.")]
        return Muon(
            [{"params": matrices, "use_muon": True, "weight_decay": cfg.weight_decay},
             {"params": tables, "weight_decay": cfg.weight_decay},
             {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr, momentum=cfg.momentum, betas=(cfg.beta1, cfg.beta2),
        )
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}: use 'adamw' or 'muon'")


def get_batch(data: torch.Tensor, batch_size: int, context_length: int, generator: torch.Generator):
    """batch_size random windows of the token stream: inputs x and targets y = x shifted by one."""
    if len(data) <= context_length:
        raise ValueError(f"the data has {len(data)} tokens, fewer than context_length + 1 = {context_length + 1}")
    starts = torch.randint(len(data) - context_length, (batch_size,), generator=generator)
    rows = starts[:, None] + torch.arange(context_length + 1)  # (batch, context_length + 1) positions
    window = data[rows]  # one gather instead of 2 * batch_size slices
    return window[:, :-1], window[:, 1:]


def make_tokenizer(kind: str, text: str, bpe_vocab_size: int = 512):
    """The tokenizer a run uses: characters (default), the byte-level BPE of lesson 01 trained now,
    or a tokenizer saved earlier (a .json path)."""
    if str(kind).endswith(".json"):
        return checkpoint.tokenizer_from_file(kind)
    if kind == "char":
        from .char_tokenizer import CharTokenizer

        return CharTokenizer.train(text)
    if kind == "bpe":
        from .bpe import BPETokenizer

        tok = BPETokenizer()
        tok.train(text, bpe_vocab_size)
        return tok
    raise ValueError(f"unknown tokenizer {kind!r}: use 'char', 'bpe' or the path of a saved tokenizer (.json)")


@dataclass
class TrainHistory:
    """The losses of a run: every training step's, and the evaluations' on train and validation data."""

    steps: list = field(default_factory=list)  # step of every logged training loss
    train_loss: list = field(default_factory=list)
    eval_steps: list = field(default_factory=list)
    eval_train: list = field(default_factory=list)
    eval_val: list = field(default_factory=list)
    seconds: float = 0.0  # training time so far, summed over resumed runs
    grad_norm: list = field(default_factory=list)  # every step's gradient norm, before clipping

    def clipped_share(self, threshold: float, first: int = 0, last: int | None = None) -> float:
        """The share of steps first..last-1 (0-based) whose gradient norm exceeded `threshold`."""
        norms = self.grad_norm[first:last]
        if not norms:
            raise ValueError("no gradient norms recorded in that range of steps")
        return sum(n > threshold for n in norms) / len(norms)


def _autocast(device: torch.device):
    """bfloat16 autocast on CUDA cards that support it; full precision everywhere else."""
    # including_emulation=False: older cards (T4, V100) only emulate bfloat16, slower than float32.
    if device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


class Trainer:
    """A GPT, its data, tokenizer and optimizer, and the loop that trains it.

    Trainer(model_config, train_config) builds everything from the settings (the text defaults to Tiny
    Shakespeare, split into the first 90 % for training and the last 10 % for validation);
    Trainer.from_preset("cpu-quick") takes named settings. fit() trains, save() / load() write and read a
    checkpoint that resumes exactly. The attributes (model, optimizer, train_data, val_data, history,
    step) are there to be looked at.
    """

    def __init__(self, model_config: GPTConfig, train_config: TrainConfig, device=None, text: str | None = None,
                 tokenizer=None):
        self.train_config = train_config
        self.device = device if isinstance(device, torch.device) else get_device(device)
        set_seed(train_config.seed)
        self.text_name = "Tiny Shakespeare" if text is None else "a text of your own"
        text = load_shakespeare() if text is None else text
        self.text_sha256 = checkpoint.sha256_text(text)  # saved, so a resume on another text is refused
        self.tokenizer = tokenizer or make_tokenizer(train_config.tokenizer, text, train_config.bpe_vocab_size)
        ids = torch.tensor(self.tokenizer.encode(text), dtype=torch.long)
        cut = int(len(ids) * (1 - train_config.val_fraction))
        self.train_data, self.val_data = ids[:cut], ids[cut:]
        self.model_config = replace(model_config, vocab_size=self.tokenizer.vocab_size)
        self.model = GPT(self.model_config).to(self.device)
        self.optimizer = make_optimizer(self.model, train_config, self.device)
        self.batch_generator = torch.Generator().manual_seed(train_config.seed)
        self.step = 0
        self.history = TrainHistory()
        self.interrupted = False  # fit() stopped early by Ctrl-C (or the notebook's stop button)

    @classmethod
    def from_preset(cls, name: str, device=None, **overrides) -> Trainer:
        """A trainer with a named preset; overrides change model or training settings by name."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        model_kw, train_kw = (dict(d) for d in PRESETS[name])
        model_fields = {f.name for f in fields(GPTConfig)}
        for key, value in overrides.items():
            if key in model_fields:
                model_kw[key] = value
            elif key in {f.name for f in fields(TrainConfig)}:
                train_kw[key] = value
            else:
                raise ValueError(f"unknown setting {key!r}")
        return cls(GPTConfig(**model_kw), TrainConfig(**train_kw), device=device)

    @torch.no_grad()
    def estimate_loss(self, iters: int | None = None) -> dict[str, float]:
        """Mean loss over `iters` batches of train and of validation data.

        The batches come from a generator seeded the same way every time, so two evaluations of the
        same weights agree exactly and evaluating never disturbs the training batches.
        """
        iters = iters or self.train_config.eval_iters
        self.model.eval()
        out = {}
        for split, data in (("train", self.train_data), ("val", self.val_data)):
            gen = torch.Generator().manual_seed(12345)
            losses = []
            for _ in range(iters):
                x, y = get_batch(data, self.train_config.batch_size, self.model_config.context_length, gen)
                with _autocast(self.device):
                    _, loss, _ = self.model(x.to(self.device), y.to(self.device))
                losses.append(loss.item())
            out[split] = float(np.mean(losses))
        self.model.train()
        return out

    def fit(self, steps: int | None = None, progress: bool = True, callback=None, save_to=None,
            save_every: float = 60.0) -> TrainHistory:
        """Train until max_steps (or for `steps` more steps, to stop early and resume later).

        callback(trainer, losses) is called after every evaluation (e.g. to print a sample).
        save_to: a checkpoint folder, saved every `save_every` seconds of training (0: never in between)
        and at the end. Ctrl-C (or a notebook's stop button) ends the loop after the current step and
        sets self.interrupted: nothing is lost, and save() can be called at once.
        """
        if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps <= 0):
            raise ValueError(f"steps must be a positive number of steps, got {steps!r}")
        if save_to is not None:
            checkpoint.check_can_write(save_to)
        from tqdm.auto import tqdm

        cfg = self.train_config
        end = cfg.max_steps if steps is None else min(cfg.max_steps, self.step + steps)
        bar = tqdm(total=end - self.step, desc="training", disable=not progress, leave=True)
        self.model.train()
        self.interrupted = False
        started = last_save = time.perf_counter()
        with _stop_on_interrupt() as request:
            self._steps(end, bar, callback, request, save_to, save_every, last_save)
        self.history.seconds += time.perf_counter() - started
        if self.step >= cfg.max_steps and not self.interrupted:  # the last, more precise estimate
            self._evaluate_once(cfg.final_eval_iters, bar, callback)
        bar.close()
        if save_to is not None:
            self.save(save_to)
        return self.history

    def _steps(self, end: int, bar, callback, request, save_to, save_every: float, last_save: float) -> None:
        cfg = self.train_config
        while self.step < end:
            if self.step % cfg.eval_interval == 0:
                self._evaluate_once(cfg.eval_iters, bar, callback)
            lr = lr_at(self.step, cfg)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            x, y = get_batch(self.train_data, cfg.batch_size, self.model_config.context_length, self.batch_generator)
            with _autocast(self.device):
                _, loss, _ = self.model(x.to(self.device), y.to(self.device))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            # max_norm inf measures the norm without clipping (grad_clip 0 switches clipping off).
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip or math.inf)
            self.optimizer.step()
            self.step += 1
            self.history.steps.append(self.step)
            self.history.train_loss.append(loss.item())
            self.history.grad_norm.append(norm.item())
            bar.update(1)
            if request["stop"]:
                self.interrupted = True
                return
            if save_to is not None and save_every > 0 and time.perf_counter() - last_save >= save_every:
                self.save(save_to)
                last_save = time.perf_counter()

    def _evaluate_once(self, iters: int, bar, callback) -> None:
        """Evaluate and record, unless this step was evaluated already (a resumed run starts on one)."""
        if self.history.eval_steps and self.history.eval_steps[-1] == self.step:
            return
        losses = self.estimate_loss(iters)
        self.history.eval_steps.append(self.step)
        self.history.eval_train.append(losses["train"])
        self.history.eval_val.append(losses["val"])
        bar.set_postfix(val=f"{losses['val']:.3f}")
        if callback:
            callback(self, losses)

    # --- checkpoints (the format: utils/checkpoint.py) -------------------------------------------

    def save(self, folder):
        """Write a checkpoint that resumes exactly: weights, optimizer, random states, history.

        Atomic: a save cut short leaves the previous checkpoint in `folder` as it was."""
        meta = {"model": self.model_config.to_dict(), "train": asdict(self.train_config), "step": self.step,
                "history": asdict(self.history), "text": {"name": self.text_name, "sha256": self.text_sha256}}
        return checkpoint.save_training_state(folder, self.model, self.optimizer, self.tokenizer,
                                              self.batch_generator, meta)

    @classmethod
    def load(cls, folder, device=None, text: str | None = None) -> Trainer:
        """Rebuild a trainer from a checkpoint folder, ready to continue with fit().

        `text` must be the text the run was started on (default: Tiny Shakespeare); another is refused.
        """
        meta = checkpoint.read_meta(folder)
        path = Path(folder) / "config.json"
        if checkpoint.is_model_only(folder):
            raise ValueError(f"{folder} holds a model for use (utils.checkpoint.save_model), with no optimizer or "
                             "random states to resume training from: load it with utils.checkpoint.load_model")
        _check_same_text(meta["text"], load_shakespeare() if text is None else text, path)
        try:
            train_config = TrainConfig.from_dict(meta["train"])
            history = TrainHistory(**meta["history"])
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: the training settings are not valid: {error}") from None
        model_config = GPTConfig.from_dict(meta["model"])  # checked by read_meta
        tokenizer = checkpoint.tokenizer_from_file(Path(folder) / "tokenizer.json")
        checkpoint.check_tokenizer_fits(tokenizer, model_config, folder)
        trainer = cls(model_config, train_config, device=device, text=text, tokenizer=tokenizer)
        checkpoint.load_weights(trainer.model, folder)
        checkpoint.read_training_state(folder, trainer.optimizer, trainer.batch_generator, trainer.device)
        trainer.step = meta["step"]
        trainer.history = history
        trainer.text_name = meta["text"].get("name", trainer.text_name)
        return trainer


def _check_same_text(saved: dict, text: str, path) -> None:
    if checkpoint.sha256_text(text) != saved["sha256"]:
        raise ValueError(f"{path} was trained on {saved.get('name', 'another text')} (SHA-256 "
                         f"{saved['sha256'][:12]}...), not on the text given now: resuming would train on other "
                         "data. Pass the run's own text: Trainer.load(folder, text=...)")


@contextlib.contextmanager
def _stop_on_interrupt():
    """Inside the block, Ctrl-C (SIGINT) asks the loop to stop after the current step instead of
    raising in the middle of one; a second Ctrl-C stops at once. Yields a dict {"stop": bool}."""
    import signal
    import threading

    request = {"stop": False}
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield request
        return

    def handler(signum, frame):
        if request["stop"]:
            raise KeyboardInterrupt
        request["stop"] = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield request
    finally:
        signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":  # python -m utils.train
    from .course.cli import train_main

    train_main()
