"""Checkpoints: a trained GPT, its optimizer and its random states in files that cannot run code.

A checkpoint is a folder:

    model.safetensors      the weights (a tied output head is stored once, as tok_emb.weight)
    optimizer.safetensors  the optimizer's tensors (AdamW's moments, Muon's momentum) and the states
                           of the random generators (batches, torch, CUDA)
    config.json            the model and training settings, the step, the loss history, the
                           optimizer's settings, the Python and NumPy random states, and which text
                           the run trained on (its name and SHA-256)
    tokenizer.json         the tokenizer, so text turns into the same ids
    manifest.json          written last: the step and the SHA-256 of each file above

safetensors holds only tensors and JSON holds only plain data: nothing is pickled, so loading a
checkpoint someone sends you cannot run code. Everything read from the files is checked against the
model and the optimizer before it is used (shapes, dtypes, counts, the type of every setting), so a
damaged or doctored file gives a clear error that names it, never a crash. Everything needed to
continue a run bit for bit is there: `Trainer.load(folder).fit()` gives exactly the losses an
uninterrupted run would have given.

A checkpoint is written whole or not at all: into a hidden folder beside the target, then renamed
into place. A save cut short leaves the previous checkpoint as it was, and the manifest tells a
mixed or edited folder from a real one.

    model, tokenizer = load_model("runs/cpu-quick")   # for generation
    meta = read_meta("runs/cpu-quick")                # the settings and the history, as a dict

A model kept for use only (lesson 12's assistants) is the same folder without optimizer.safetensors,
its config.json holding the settings and notes on how it was made: `save_model`, read by `load_model`.

Writing and reading the training state is `save_training_state` / `read_training_state`;
`utils.train.Trainer.save` and `Trainer.load` use them. This module knows nothing of the trainer.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .course.device import get_device
from .data import sha256_of
from .model import GPT, GPTConfig

CHECKPOINT_VERSION = 2
FILES = ("model.safetensors", "optimizer.safetensors", "config.json", "tokenizer.json")
MODEL_FILES = ("model.safetensors", "config.json", "tokenizer.json")  # a model for use (save_model): no resuming
MANIFEST = "manifest.json"


# --- writing --------------------------------------------------------------------------------------

def save_training_state(folder, model: GPT, optimizer: torch.optim.Optimizer, tokenizer,
                        batch_generator: torch.Generator, meta: dict) -> Path:
    """Write a checkpoint that resumes exactly: weights, optimizer, every random state, and `meta`
    (the settings, step, history and text, plain JSON data) into config.json. Atomic: see above."""
    folder = Path(folder)
    staging = _staging(folder)
    _save_weights(model, staging)
    tensors, groups = optimizer_to_tensors(optimizer)
    tensors["rng.batches"] = batch_generator.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():  # dropout on a GPU draws from the CUDA generators
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    save_file(tensors, staging / "optimizer.safetensors")
    tokenizer.save(staging / "tokenizer.json")
    config = {"version": CHECKPOINT_VERSION, **meta, "optimizer_groups": groups,
              "rng_python": _python_state_to_json(random.getstate()),
              "rng_numpy": _numpy_state_to_json(np.random.get_state())}
    (staging / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    manifest = {"version": CHECKPOINT_VERSION, "step": meta["step"],
                "sha256": {name: sha256_of(staging / name) for name in FILES}}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")

    _swap_into_place(staging, folder)
    return folder


def save_model(folder, model: GPT, tokenizer, notes: dict | None = None) -> Path:
    """Write a model for use, not for resuming: weights, tokenizer and settings, and `notes` (plain JSON
    data: how it was made, e.g. "SFT 600 steps on utils.tasks"). What lesson 12's assistants are saved as;
    load_model reads it, Trainer.load refuses it (it has no optimizer or random states to resume)."""
    folder = Path(folder)
    staging = _staging(folder)
    _save_weights(model, staging)
    tokenizer.save(staging / "tokenizer.json")
    config = {"version": CHECKPOINT_VERSION, "kind": "model", "model": model.config.to_dict(), "notes": notes or {}}
    (staging / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    manifest = {"version": CHECKPOINT_VERSION, "kind": "model",
                "sha256": {name: sha256_of(staging / name) for name in MODEL_FILES}}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    _swap_into_place(staging, folder)
    return folder


def _staging(folder: Path) -> Path:
    """An empty hidden folder beside `folder`, where a checkpoint is written before it is swapped in."""
    check_can_write(folder)
    staging = folder.parent / f".{folder.name}.saving-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def _save_weights(model: GPT, staging: Path) -> None:
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_weights:
        weights.pop("head.weight", None)  # the same tensor as tok_emb.weight; stored once
    save_file(weights, staging / "model.safetensors")


def _swap_into_place(staging: Path, folder: Path) -> None:
    # A rename is atomic; a folder cannot replace a folder in one rename, so the old one steps aside
    # first. Should the process die between the two renames, the old checkpoint is in `.old-*`.
    if folder.exists():
        old = folder.parent / f".{folder.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
        staging.rename(folder)
        shutil.rmtree(old)
    else:
        staging.rename(folder)


def check_can_write(folder) -> None:
    """Fail now, with what to do, if a checkpoint cannot be written at `folder` (before hours of training)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"cannot save a checkpoint to {folder}: it is a file, not a folder. Choose another --out.")
    for parent in folder.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"cannot save a checkpoint to {folder}: {parent} is a file, not a folder")
            break
    try:  # the only sure test of writing is to write
        folder.parent.mkdir(parents=True, exist_ok=True)
        probe = folder.parent / f".{folder.name}.probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ValueError(f"cannot save a checkpoint to {folder}: {error.strerror or error}. "
                         "Choose a folder you can write to (--out).") from None


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- reading --------------------------------------------------------------------------------------

def read_meta(folder) -> dict:
    """The contents of a checkpoint's config.json (settings, step, history), checked to be ours, whole
    (the manifest's checksums) and well-formed (every field of the right type)."""
    folder = Path(folder)
    _check_is_checkpoint(folder)
    _verify_manifest(folder)
    meta = _read_json(folder / "config.json")
    if is_model_only(folder):
        _config_from(meta, folder / "config.json")  # a model for use: settings, no training state
        return meta
    _check_meta(meta, folder / "config.json")
    return meta


def is_model_only(folder) -> bool:
    """True for a checkpoint written by save_model (a model for use, with nothing to resume)."""
    return _read_json(Path(folder) / MANIFEST).get("kind") == "model"


def read_training_state(folder, optimizer: torch.optim.Optimizer, batch_generator: torch.Generator,
                        device: torch.device) -> dict:
    """Put the saved optimizer state and every random state back; returns the checkpoint's meta.

    The optimizer must be a new one built for the checkpoint's model (same parameters, same order).
    """
    meta = read_meta(folder)
    path = Path(folder) / "optimizer.safetensors"
    tensors = _read_safetensors(path)
    optimizer_from_tensors(optimizer, tensors, meta["optimizer_groups"], device, path)
    _restore_random_states(tensors, meta, batch_generator, path)
    return meta


def load_weights(model: GPT, folder) -> GPT:
    """Load model.safetensors into `model`, saying clearly when the shapes do not match."""
    state = _read_safetensors(Path(folder) / "model.safetensors")
    if model.config.tie_weights and "tok_emb.weight" in state:
        state["head.weight"] = state["tok_emb.weight"]
    _check_weights_fit(model, state, folder)
    model.load_state_dict(state)
    return model


def load_model(folder, device=None) -> tuple[GPT, object]:
    """A trained GPT (in eval mode) and its tokenizer from a checkpoint folder, ready for generation."""
    meta = read_meta(folder)
    config = _config_from(meta, Path(folder))
    tokenizer = tokenizer_from_file(Path(folder) / "tokenizer.json")
    check_tokenizer_fits(tokenizer, config, folder)
    model = load_weights(GPT(config), folder).to(get_device(device)).eval()
    return model, tokenizer


def check_tokenizer_fits(tokenizer, config: GPTConfig, folder) -> None:
    if tokenizer.vocab_size != config.vocab_size:
        raise ValueError(f"{Path(folder) / 'tokenizer.json'} has {tokenizer.vocab_size} tokens but the model in "
                         f"{folder} was trained with {config.vocab_size}: this tokenizer belongs to another model")


def tokenizer_from_file(path):
    """A CharTokenizer, ChatTokenizer or BPETokenizer from its JSON file (the file says which it is)."""
    from .bpe import FORMAT as BPE_FORMAT
    from .bpe import BPETokenizer
    from .char_tokenizer import FORMAT as CHAR_FORMAT
    from .char_tokenizer import CharTokenizer
    from .chat_template import FORMAT as CHAT_FORMAT
    from .chat_template import ChatTokenizer

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
    if kind == CHAT_FORMAT:
        return ChatTokenizer.load(path)
    raise ValueError(f"{path} is not a tokenizer file of this course (format {kind!r})")


# --- checks of what was read ----------------------------------------------------------------------

def _check_is_checkpoint(folder: Path) -> None:
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not a checkpoint folder: it has no config.json "
                                f"(train one with `python -m utils.train --preset cpu-quick --out {folder}`)")
    if not (folder / MANIFEST).is_file():
        version = _read_json(folder / "config.json").get("version")
        if version == 1:
            raise ValueError(f"{folder} was saved by an older version of the course (checkpoint version 1), "
                             "which this code no longer reads: train it again")
        raise ValueError(f"{folder} has no {MANIFEST}: its last save did not finish, or the folder was put "
                         "together by hand. Use a complete checkpoint, or train again.")


def _verify_manifest(folder: Path) -> None:
    manifest = _read_json(folder / MANIFEST)
    sums = manifest.get("sha256")
    files = MODEL_FILES if manifest.get("kind") == "model" else FILES
    if manifest.get("version") != CHECKPOINT_VERSION or not isinstance(sums, dict) or set(sums) != set(files):
        raise ValueError(f"{folder / MANIFEST} is not a manifest of this course's checkpoints (version "
                         f"{CHECKPOINT_VERSION}, one SHA-256 for each of {', '.join(files)})")
    for name in files:
        path = folder / name
        if not path.is_file():
            raise ValueError(f"{path} is missing (or not a file): the checkpoint is incomplete")
        if sha256_of(path) != sums[name]:
            raise ValueError(f"{path} is not the file this checkpoint saved (its SHA-256 differs from "
                             f"{MANIFEST}): it was changed, damaged, or copied from another checkpoint. "
                             "Use a complete checkpoint as it was saved, or train again.")


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} cannot be read as JSON ({type(error).__name__}: {error}); "
                         "the checkpoint is damaged") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} should hold a JSON object {{...}}, not a {type(data).__name__}")
    return data


def _read_safetensors(path: Path) -> dict:
    if not path.is_file():
        raise ValueError(f"{path} is missing (or not a file): the checkpoint is incomplete")
    try:
        return load_file(path)
    except Exception as error:  # safetensors raises its own error type, or OSError, for a damaged file
        raise ValueError(f"{path} cannot be read as safetensors ({type(error).__name__}: {error}); "
                         "the file is damaged or was not written by this course") from None


# The fields of config.json and the JSON types they must have.
META_FIELDS = {"version": int, "model": dict, "train": dict, "step": int, "history": dict,
               "optimizer_groups": list, "rng_python": list, "rng_numpy": list, "text": dict}
HISTORY_FIELDS = {"steps": list, "train_loss": list, "eval_steps": list, "eval_train": list,
                  "eval_val": list, "seconds": (int, float)}


JSON_KINDS = {int: "an integer", dict: "an object {...}", list: "a list [...]"}


def _check_meta(meta: dict, path: Path) -> None:
    if meta.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path} is not a checkpoint of this course (version {meta.get('version')!r})")
    _check_json_fields(meta, META_FIELDS, path, "")
    _check_json_fields(meta["history"], HISTORY_FIELDS, path, "history.")
    if meta["step"] < 0:
        raise ValueError(f"{path}: step must be >= 0, got {meta['step']}")
    if not isinstance(meta["text"].get("sha256"), str):
        raise ValueError(f"{path}: text.sha256 is missing")
    _config_from(meta, path)  # the model settings, with the type of every field


def _check_json_fields(values: dict, expected: dict, path: Path, prefix: str) -> None:
    for key, kind in expected.items():
        if key not in values:
            raise ValueError(f"{path} has no '{prefix}{key}': the file is damaged or not a checkpoint of this course")
        value = values[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"{path}: {prefix}{key} should be {JSON_KINDS.get(kind, 'a number')}, "
                             f"got {value!r}"[:300])


def _config_from(meta: dict, path: Path) -> GPTConfig:
    try:
        return GPTConfig.from_dict(meta["model"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: the model settings are not valid: {error}") from None


def _check_weights_fit(model: GPT, state: dict, folder) -> None:
    own = model.state_dict()
    problems = [f"{k}: checkpoint {tuple(v.shape)}, model {tuple(own[k].shape)}"
                for k, v in state.items() if k in own and own[k].shape != v.shape]
    problems += [f"{k}: checkpoint {v.dtype}, model {own[k].dtype}"
                 for k, v in state.items() if k in own and own[k].shape == v.shape and own[k].dtype != v.dtype]
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


def optimizer_from_tensors(optimizer: torch.optim.Optimizer, tensors: dict, groups: list, device,
                           path="optimizer.safetensors") -> None:
    """Load what optimizer_to_tensors wrote (groups read back from JSON) into `optimizer`, after
    checking every tensor against the parameter it belongs to."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state = _optimizer_state(tensors, params, path)
    for values in state.values():  # moments live with the parameters ('step' stays on the CPU)
        for key, value in values.items():
            values[key] = value if key == "step" else value.to(device)
    if state and device.type == "cuda" and isinstance(optimizer, torch.optim.AdamW):
        for values in state.values():  # the fused CUDA AdamW keeps its step count on the card
            values["step"] = values["step"].to(device)
    # How the update runs (fused kernel or not) belongs to this machine, not to the checkpoint.
    runtime = [{k: g[k] for k in ("fused", "foreach", "capturable", "differentiable") if k in g}
               for g in optimizer.param_groups]
    _check_groups(groups, optimizer, path)
    optimizer.load_state_dict({"state": state, "param_groups": _groups_from_json(groups, optimizer)})
    for group, settings in zip(optimizer.param_groups, runtime, strict=True):
        group.update(settings)


def _optimizer_state(tensors: dict, params: list, path) -> dict:
    """{param index: {key: tensor}} from the file's named tensors, each checked against its parameter:
    a moment of the wrong shape would make the fused update write past its buffers."""
    state: dict = {}
    for name, value in tensors.items():
        if not name.startswith("state."):
            continue
        parts = name.split(".", 2)
        if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) >= len(params):
            raise ValueError(f"{path}: {name!r} names no parameter of this model ({len(params)} parameters): "
                             "the optimizer state belongs to another model")
        index, key = int(parts[1]), parts[2]
        param = params[index]
        if key == "step":
            if value.numel() != 1 or not (value.is_floating_point() or value.dtype == torch.int64):
                raise ValueError(f"{path}: {name} should be a single number, got shape {tuple(value.shape)}")
        elif value.shape != param.shape or value.dtype != param.dtype:
            raise ValueError(f"{path}: {name} has shape {tuple(value.shape)} and dtype {value.dtype}, but parameter "
                             f"{index} has shape {tuple(param.shape)} and dtype {param.dtype}: the optimizer state "
                             "belongs to another model")
        state.setdefault(index, {})[key] = value
    return state


def _check_groups(groups: list, optimizer: torch.optim.Optimizer, path) -> None:
    own = optimizer.param_groups
    sizes_differ = any(not isinstance(g, dict) or not isinstance(g.get("params"), list)
                       or len(g["params"]) != len(o["params"]) for g, o in zip(groups, own, strict=False))
    if len(groups) != len(own) or sizes_differ:
        raise ValueError(f"the optimizer settings saved beside {path} have {len(groups)} parameter groups of other "
                         f"sizes than this optimizer's {[len(o['params']) for o in own]}: the checkpoint belongs "
                         "to another model or optimizer")


def _groups_from_json(groups: list, optimizer: torch.optim.Optimizer) -> list:
    """JSON has no tuples: give back a tuple (AdamW's betas) wherever the optimizer holds one."""
    return [{key: tuple(value) if isinstance(own.get(key), tuple) and isinstance(value, list) else value
             for key, value in group.items()}
            for group, own in zip(groups, optimizer.param_groups, strict=True)]


def _restore_random_states(tensors: dict, meta: dict, batch_generator: torch.Generator, path) -> None:
    try:  # every state is tried on a spare generator first, so that a bad one changes nothing
        batches, cpu = tensors["rng.batches"], tensors["rng.torch"]
        python_state = _python_state_from_json(meta["rng_python"])
        numpy_state = _numpy_state_from_json(meta["rng_numpy"])
        torch.Generator().set_state(batches)  # refuses a state of the wrong size or type
        torch.Generator().set_state(cpu)
        random.Random().setstate(python_state)
        np.random.RandomState().set_state(numpy_state)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"the random-generator states in {path} and config.json cannot be restored "
                         f"({type(error).__name__}: {error}); the checkpoint is damaged") from None
    batch_generator.set_state(batches)
    torch.set_rng_state(cpu)
    random.setstate(python_state)
    np.random.set_state(numpy_state)
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)


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
