"""Checkpoints: a trained GPT, its optimizer and its random states in files that cannot run code.

A checkpoint is a folder:

    model.safetensors      the weights (a tied output head is stored once, as tok_emb.weight)
    optimizer.safetensors  the optimizer's tensors (AdamW's moments, Muon's momentum) and the states
                           of the random generators (batches, torch, CUDA)
    config.json            the model and training settings, the step, the loss history, the
                           optimizer's settings and the Python and NumPy random states
    tokenizer.json         the tokenizer, so text turns into the same ids

safetensors holds only tensors and JSON holds only plain data: nothing is pickled, so loading a
checkpoint someone sends you cannot run code. Everything needed to continue a run bit for bit is
there: `Trainer.load(folder).fit()` gives exactly the losses an uninterrupted run would have given.

    model, tokenizer = load_model("runs/cpu-quick")   # for generation
    meta = read_meta("runs/cpu-quick")                # the settings and the history, as a dict

Writing and reading the training state is `save_training_state` / `read_training_state`;
`utils.train.Trainer.save` and `Trainer.load` use them. This module knows nothing of the trainer.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .course.device import get_device
from .model import GPT, GPTConfig

CHECKPOINT_VERSION = 1


# --- writing --------------------------------------------------------------------------------------

def save_training_state(folder, model: GPT, optimizer: torch.optim.Optimizer, tokenizer,
                        batch_generator: torch.Generator, meta: dict) -> Path:
    """Write a checkpoint that resumes exactly: weights, optimizer, every random state, and `meta`
    (the settings, step and history, plain JSON data) into config.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_weights:
        weights.pop("head.weight", None)  # the same tensor as tok_emb.weight; stored once
    save_file(weights, folder / "model.safetensors")

    tensors, groups = optimizer_to_tensors(optimizer)
    tensors["rng.batches"] = batch_generator.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():  # dropout on a GPU draws from the CUDA generators
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    save_file(tensors, folder / "optimizer.safetensors")
    tokenizer.save(folder / "tokenizer.json")

    config = {
        "version": CHECKPOINT_VERSION,
        **meta,
        "optimizer_groups": groups,
        "rng_python": _python_state_to_json(random.getstate()),
        "rng_numpy": _numpy_state_to_json(np.random.get_state()),
    }
    (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    return folder


# --- reading --------------------------------------------------------------------------------------

def read_meta(folder) -> dict:
    """The contents of a checkpoint's config.json (settings, step, history), checked to be ours."""
    path = _config_path(folder)
    meta = json.loads(path.read_text())
    if meta.get("version") != CHECKPOINT_VERSION or "model" not in meta:
        raise ValueError(f"{path} is not a checkpoint of this course (version {meta.get('version')!r})")
    return meta


def read_training_state(folder, optimizer: torch.optim.Optimizer, batch_generator: torch.Generator,
                        device: torch.device) -> dict:
    """Put the saved optimizer state and every random state back; returns the checkpoint's meta.

    The optimizer must be a new one built for the checkpoint's model (same parameters, same order).
    """
    meta = read_meta(folder)
    tensors = load_file(Path(folder) / "optimizer.safetensors")
    optimizer_from_tensors(optimizer, tensors, meta["optimizer_groups"], device)
    batch_generator.set_state(tensors["rng.batches"])
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    random.setstate(_python_state_from_json(meta["rng_python"]))
    np.random.set_state(_numpy_state_from_json(meta["rng_numpy"]))
    return meta


def load_weights(model: GPT, folder) -> GPT:
    """Load model.safetensors into `model`, saying clearly when the shapes do not match."""
    state = load_file(Path(folder) / "model.safetensors")
    if model.config.tie_weights:
        state["head.weight"] = state["tok_emb.weight"]
    _check_weights_fit(model, state, folder)
    model.load_state_dict(state)
    return model


def load_model(folder, device=None) -> tuple[GPT, object]:
    """A trained GPT (in eval mode) and its tokenizer from a checkpoint folder, ready for generation."""
    meta = read_meta(folder)
    config = GPTConfig.from_dict(meta["model"])
    model = load_weights(GPT(config), folder).to(get_device(device)).eval()
    return model, tokenizer_from_file(Path(folder) / "tokenizer.json")


def tokenizer_from_file(path):
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


def _config_path(folder) -> Path:
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a checkpoint folder: it has no config.json "
                                f"(train one with `python -m utils.train --preset cpu-quick --out {folder}`)")
    return path


def _check_weights_fit(model: GPT, state: dict, folder) -> None:
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


# --- plain-data forms of the optimizer and the random states (so nothing needs pickle) -----------

def optimizer_to_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict, list]:
    """The optimizer's state as named tensors ("state.<param index>.<key>") and its param_groups."""
    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            value = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"state.{index}.{key}"] = value.detach().cpu().contiguous()
    return tensors, state["param_groups"]


def optimizer_from_tensors(optimizer: torch.optim.Optimizer, tensors: dict, groups: list, device) -> None:
    """Load what optimizer_to_tensors wrote (groups read back from JSON) into `optimizer`."""
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
    optimizer.load_state_dict({"state": state, "param_groups": _groups_from_json(groups, optimizer)})
    for group, settings in zip(optimizer.param_groups, runtime, strict=True):
        group.update(settings)


def _groups_from_json(groups: list, optimizer: torch.optim.Optimizer) -> list:
    """JSON has no tuples: give back a tuple (AdamW's betas) wherever the optimizer holds one."""
    return [{key: tuple(value) if isinstance(own.get(key), tuple) and isinstance(value, list) else value
             for key, value in group.items()}
            for group, own in zip(groups, optimizer.param_groups, strict=False)]


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
