"""Training the GPT on Tiny Shakespeare: batches, AdamW with warm-up and cosine decay, checkpoints.

From a notebook:

    trainer = Trainer.from_preset("cpu-quick")
    history = trainer.fit()                     # tqdm bar, periodic evaluation
    trainer.save("runs/cpu-quick")              # safetensors + JSON, resumable exactly

From the command line:

    python -m utils.train --preset cpu-quick [--device cpu] [--out runs/cpu-quick] [--resume]

A checkpoint folder holds model.safetensors (weights), optimizer.safetensors (AdamW's moments and
the random-generator states), config.json (model and training settings, step, loss history, the
Python and NumPy random states) and tokenizer.json. Nothing is pickled, so loading a checkpoint
someone sends you cannot run code.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .data import load_shakespeare
from .device import get_device
from .model import GPT, GPTConfig
from .seeding import set_seed

CHECKPOINT_VERSION = 1


@dataclass
class TrainConfig:
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

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


# name -> (model settings, training settings). vocab_size is set from the tokenizer.
PRESETS: dict[str, tuple[dict, dict]] = {
    # nanoGPT's CPU recipe for Tiny Shakespeare (its README's "I only have a macbook" settings), with twice
    # its learning rate: 2,000 steps are too few for 1e-3 to get far. Measured (benchmarks/bench_gpt.py):
    # validation loss 1.797 against 1.897 at 1e-3 (nanoGPT reports 1.87 for its own run at 1e-3).
    "cpu-quick": (
        dict(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0),
        dict(batch_size=12, max_steps=2000, lr=2e-3, min_lr=2e-4, warmup_steps=100, eval_interval=250),
    ),
    # The best found for about 5 minutes on 2 CPU cores: Muon (utils/muon.py) instead of AdamW, on a
    # narrower model (96 dims) whose steps are cheap enough for 4,500 of them. Measured
    # (benchmarks/bench_gpt.py, and /tmp runs of 2,000 steps at 96 dims): Muon 1.649 against AdamW 1.831
    # at lr 3e-3; Muon at lr 6e-3 1.607, at 1.2e-2 1.616. AdamW's best in about 5 minutes was about 1.59
    # (96 dims, 7,000 steps, 327 s); the cpu-quick model with AdamW for 8,000 steps reached 1.56 in 474 s.
    # Tried and worse with AdamW: dropout 0.1 (1.625 at 8,000 steps), context 128 with batch 6.
    "cpu-5min": (
        dict(n_layer=4, n_head=4, n_embd=96, block_size=64, dropout=0.0),
        dict(batch_size=12, max_steps=4500, lr=6e-3, min_lr=6e-4, warmup_steps=100, eval_interval=500,
             optimizer="muon"),
    ),
    # nanoGPT's GPU recipe (config/train_shakespeare_char.py).
    "gpu": (
        dict(n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2),
        dict(batch_size=64, max_steps=5000, lr=1e-3, min_lr=1e-4, warmup_steps=100, eval_interval=250,
             eval_iters=200),
    ),
    # A few seconds: for tests and quick mode.
    "tiny": (
        dict(n_layer=2, n_head=2, n_embd=32, block_size=32, dropout=0.0),
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


def get_batch(data: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator):
    """batch_size random windows of the token stream: inputs x and targets y = x shifted by one."""
    if len(data) <= block_size:
        raise ValueError(f"the data has {len(data)} tokens, fewer than block_size + 1 = {block_size + 1}")
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    rows = starts[:, None] + torch.arange(block_size + 1)  # (batch, block_size + 1) positions
    window = data[rows]  # one gather instead of 2 * batch_size slices
    return window[:, :-1], window[:, 1:]


def make_tokenizer(kind: str, text: str, bpe_vocab_size: int = 512):
    """The tokenizer a run uses: characters (default), the byte-level BPE of lesson 01 trained now,
    or a tokenizer saved earlier (a .json path)."""
    if str(kind).endswith(".json"):
        return load_tokenizer(kind)
    if kind == "char":
        from .char_tokenizer import CharTokenizer

        return CharTokenizer.train(text)
    if kind == "bpe":
        from .bpe import BPETokenizer

        tok = BPETokenizer()
        tok.train(text, bpe_vocab_size)
        return tok
    raise ValueError(f"unknown tokenizer {kind!r}: use 'char', 'bpe' or the path of a saved tokenizer (.json)")


def load_tokenizer(path):
    """A CharTokenizer or BPETokenizer from its JSON file (the file says which it is)."""
    from .bpe import FORMAT as BPE_FORMAT
    from .bpe import BPETokenizer
    from .char_tokenizer import FORMAT as CHAR_FORMAT
    from .char_tokenizer import CharTokenizer

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer file {path} not found (lesson 01 saves one; or use 'char' / 'bpe')")
    try:
        kind = json.loads(path.read_text(encoding="utf-8")).get("format")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        kind = None
    if kind == CHAR_FORMAT:
        return CharTokenizer.load(path)
    if kind == BPE_FORMAT:
        return BPETokenizer.load(path)
    raise ValueError(f"{path} is not a tokenizer file of this course (format {kind!r})")


@dataclass
class History:
    steps: list = field(default_factory=list)  # step of every logged training loss
    train_loss: list = field(default_factory=list)
    eval_steps: list = field(default_factory=list)
    eval_train: list = field(default_factory=list)
    eval_val: list = field(default_factory=list)
    seconds: float = 0.0  # training time so far, summed over resumed runs


def _autocast(device: torch.device):
    """bfloat16 autocast on CUDA cards that support it; full precision everywhere else."""
    # including_emulation=False: older cards (T4, V100) only emulate bfloat16, slower than float32.
    if device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


class Trainer:
    def __init__(self, model_config: GPTConfig, train_config: TrainConfig, device=None, text: str | None = None,
                 tokenizer=None):
        self.train_config = train_config
        self.device = device if isinstance(device, torch.device) else get_device(device)
        set_seed(train_config.seed)
        text = load_shakespeare() if text is None else text
        self.tokenizer = tokenizer or make_tokenizer(train_config.tokenizer, text, train_config.bpe_vocab_size)
        ids = torch.tensor(self.tokenizer.encode(text), dtype=torch.long)
        cut = int(len(ids) * (1 - train_config.val_fraction))
        self.train_data, self.val_data = ids[:cut], ids[cut:]
        self.model_config = replace(model_config, vocab_size=self.tokenizer.vocab_size)
        self.model = GPT(self.model_config).to(self.device)
        self.optimizer = make_optimizer(self.model, train_config, self.device)
        self.batch_generator = torch.Generator().manual_seed(train_config.seed)
        self.step = 0
        self.history = History()

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
                x, y = get_batch(data, self.train_config.batch_size, self.model_config.block_size, gen)
                with _autocast(self.device):
                    _, loss, _ = self.model(x.to(self.device), y.to(self.device))
                losses.append(loss.item())
            out[split] = float(np.mean(losses))
        self.model.train()
        return out

    def _evaluate(self, iters=None) -> dict[str, float]:
        losses = self.estimate_loss(iters)
        self.history.eval_steps.append(self.step)
        self.history.eval_train.append(losses["train"])
        self.history.eval_val.append(losses["val"])
        return losses

    def fit(self, steps: int | None = None, progress: bool = True, callback=None) -> History:
        """Train until max_steps (or for `steps` more steps, to stop early and resume later).

        callback(trainer, losses) is called after every evaluation (e.g. to print a sample).
        """
        from tqdm.auto import tqdm

        cfg = self.train_config
        end = cfg.max_steps if steps is None else min(cfg.max_steps, self.step + steps)
        self.model.train()
        bar = tqdm(total=end - self.step, desc="training", disable=not progress, leave=True)
        started = time.perf_counter()
        while self.step < end:
            if self.step % cfg.eval_interval == 0 and (not self.history.eval_steps
                                                       or self.history.eval_steps[-1] != self.step):
                losses = self._evaluate()
                bar.set_postfix(val=f"{losses['val']:.3f}")
                if callback:
                    callback(self, losses)
            lr = lr_at(self.step, cfg)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            x, y = get_batch(self.train_data, cfg.batch_size, self.model_config.block_size, self.batch_generator)
            x, y = x.to(self.device), y.to(self.device)
            with _autocast(self.device):
                _, loss, _ = self.model(x, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            self.step += 1
            self.history.steps.append(self.step)
            self.history.train_loss.append(loss.item())
            bar.update(1)
        self.history.seconds += time.perf_counter() - started
        if self.step >= cfg.max_steps and (not self.history.eval_steps or self.history.eval_steps[-1] != self.step):
            losses = self._evaluate(cfg.final_eval_iters)
            bar.set_postfix(val=f"{losses['val']:.3f}")
            if callback:
                callback(self, losses)
        bar.close()
        return self.history

    # --- checkpoints -------------------------------------------------------------------------

    def save(self, folder) -> Path:
        """Write a checkpoint that resumes exactly: weights, optimizer, random states, history."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        if self.model_config.tie_weights:
            state.pop("head.weight", None)  # the same tensor as tok_emb.weight; stored once
        save_file(state, folder / "model.safetensors")
        tensors, groups = _optimizer_to_tensors(self.optimizer)
        tensors["rng.batches"] = self.batch_generator.get_state()
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available():  # dropout on a GPU draws from the CUDA generators
            for i, state in enumerate(torch.cuda.get_rng_state_all()):
                tensors[f"rng.cuda.{i}"] = state
        save_file(tensors, folder / "optimizer.safetensors")
        self.tokenizer.save(folder / "tokenizer.json")
        meta = {
            "version": CHECKPOINT_VERSION,
            "model": self.model_config.to_dict(),
            "train": asdict(self.train_config),
            "step": self.step,
            "optimizer_groups": groups,
            "history": asdict(self.history),
            "rng_python": _python_state_to_json(random.getstate()),
            "rng_numpy": _numpy_state_to_json(np.random.get_state()),
        }
        (folder / "config.json").write_text(json.dumps(meta, indent=1) + "\n")
        return folder

    @classmethod
    def load(cls, folder, device=None, text: str | None = None) -> Trainer:
        """Rebuild a trainer from a checkpoint folder, ready to continue with fit().

        `text` must be the text the run was started on (default: Tiny Shakespeare).
        """
        meta, folder = read_checkpoint_meta(folder)
        model_config = GPTConfig.from_dict(meta["model"])
        train_config = TrainConfig.from_dict(meta["train"])
        tokenizer = load_tokenizer(folder / "tokenizer.json")
        trainer = cls(model_config, train_config, device=device, text=text, tokenizer=tokenizer)
        load_weights(trainer.model, folder)
        tensors = load_file(folder / "optimizer.safetensors")
        _optimizer_from_tensors(trainer.optimizer, tensors, meta["optimizer_groups"], trainer.device)
        trainer.batch_generator.set_state(tensors["rng.batches"])
        torch.set_rng_state(tensors["rng.torch"])
        cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
        if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        random.setstate(_python_state_from_json(meta["rng_python"]))
        np.random.set_state(_numpy_state_from_json(meta["rng_numpy"]))
        trainer.step = meta["step"]
        trainer.history = History(**meta["history"])
        return trainer


def read_checkpoint_meta(folder) -> tuple[dict, Path]:
    folder = Path(folder)
    path = folder / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a checkpoint folder: it has no config.json "
                                f"(train one with `python -m utils.train --preset cpu-quick --out {folder}`)")
    meta = json.loads(path.read_text())
    if meta.get("version") != CHECKPOINT_VERSION or "model" not in meta:
        raise ValueError(f"{path} is not a checkpoint of this course (version {meta.get('version')!r})")
    return meta, folder


def load_weights(model: GPT, folder) -> GPT:
    """Load model.safetensors into `model`, saying clearly when the shapes do not match."""
    state = load_file(Path(folder) / "model.safetensors")
    if model.config.tie_weights:
        state["head.weight"] = state["tok_emb.weight"]
    own = model.state_dict()
    problems = [f"{k}: checkpoint {tuple(v.shape)}, model {tuple(own[k].shape)}"
                for k, v in state.items() if k in own and own[k].shape != v.shape]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if problems or missing or unexpected:
        raise ValueError(
            f"the checkpoint in {folder} was made for another model configuration. "
            + (f"Shape mismatches: {problems[:3]}. " if problems else "")
            + (f"Missing: {missing[:3]}. " if missing else "")
            + (f"Unexpected: {unexpected[:3]}. " if unexpected else "")
            + "Build the model from the checkpoint's own config.json (load_model(folder)) instead."
        )
    model.load_state_dict(state)
    return model


def load_model(folder, device=None):
    """A trained GPT and its tokenizer from a checkpoint folder, ready for generation."""
    meta, folder = read_checkpoint_meta(folder)
    config = GPTConfig.from_dict(meta["model"])
    model = load_weights(GPT(config), folder).to(get_device(device)).eval()
    tokenizer = load_tokenizer(folder / "tokenizer.json")
    return model, tokenizer


# --- plain-data forms of optimizer and random states (so nothing needs pickle) ---------------

def _optimizer_to_tensors(optimizer) -> tuple[dict, list]:
    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            value = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"state.{index}.{key}"] = value.detach().cpu().contiguous()
    return tensors, state["param_groups"]


def _optimizer_from_tensors(optimizer, tensors: dict, groups: list, device) -> None:
    state: dict = {}
    for name, value in tensors.items():
        if not name.startswith("state."):
            continue
        _, index, key = name.split(".", 2)
        # AdamW keeps 'step' as a CPU tensor (unless fused on CUDA); moments live with the params.
        state.setdefault(int(index), {})[key] = value if key == "step" else value.to(device)
    if state and device.type == "cuda" and isinstance(optimizer, torch.optim.AdamW):
        for values in state.values():  # the fused CUDA AdamW keeps its step count on the card
            values["step"] = values["step"].to(device)
    # How the update runs (fused kernel or not) belongs to this machine, not to the checkpoint.
    runtime = [{k: g[k] for k in ("fused", "foreach", "capturable", "differentiable") if k in g}
               for g in optimizer.param_groups]
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    for group, settings in zip(optimizer.param_groups, runtime, strict=True):
        group.update(settings)


def _python_state_to_json(state):
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _python_state_from_json(value):
    version, internal, gauss = value
    return (version, tuple(internal), gauss)


def _numpy_state_to_json(state):
    kind, keys, pos, has_gauss, cached = state
    return [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _numpy_state_from_json(value):
    kind, keys, pos, has_gauss, cached = value
    return (kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached)


# --- command line ------------------------------------------------------------------------------

def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m utils.train", description="Train the course's GPT on Tiny Shakespeare.")
    parser.add_argument("--preset", default="cpu-quick", choices=sorted(PRESETS))
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--out", default=None, help="checkpoint folder (default: runs/<preset>)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    parser.add_argument("--steps", type=int, default=None, help="stop after this many more steps (resume later)")
    parser.add_argument("--max-steps", type=int, default=None, help="override the preset's total steps")
    parser.add_argument("--tokenizer", default=None,
                        help="char (default), bpe, or the path of a saved tokenizer .json")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)

    try:
        run(args)
    except (RuntimeError, ValueError, FileNotFoundError) as error:  # say what is wrong, no traceback
        parser.exit(2, f"error: {error}\n")


def run(args) -> None:
    out = Path(args.out or f"runs/{args.preset}")
    if args.resume:
        fixed = [f"--{k.replace('_', '-')}" for k in ("max_steps", "tokenizer", "seed") if getattr(args, k) is not None]
        if fixed:
            raise ValueError(f"{', '.join(fixed)} cannot change when resuming: the run continues with the settings "
                             f"saved in {out}/config.json")
        trainer = Trainer.load(out, device=args.device)
        print(f"resuming {out} at step {trainer.step} of {trainer.train_config.max_steps}")
    else:
        overrides = {k: v for k, v in (("max_steps", args.max_steps), ("tokenizer", args.tokenizer),
                                       ("seed", args.seed)) if v is not None}
        trainer = Trainer.from_preset(args.preset, device=args.device, **overrides)
    cfg = trainer.model_config
    name = "model" if args.resume else f"preset {args.preset}"
    print(f"{name}: {cfg.n_layer} layers, {cfg.n_head} heads, {cfg.n_embd} dims, context "
          f"{cfg.block_size}, vocab {cfg.vocab_size}, {trainer.model.num_parameters():,} parameters, "
          f"device {trainer.device}")

    def report(t, losses):
        print(f"step {t.step:5d}  train {losses['train']:.4f}  val {losses['val']:.4f}", flush=True)

    trainer.fit(steps=args.steps, callback=report)
    trainer.save(out)
    h = trainer.history
    print(f"saved {out} at step {trainer.step} of {trainer.train_config.max_steps}; last evaluation at step "
          f"{h.eval_steps[-1]}: val loss {h.eval_val[-1]:.4f}; {h.seconds:.1f} s of training in all "
          f"({1000 * h.seconds / max(1, trainer.step):.1f} ms per step, evaluations included)")
    print(f"sample: python -m utils.sample --checkpoint {out} --prompt 'ROMEO:'")


if __name__ == "__main__":
    main()
