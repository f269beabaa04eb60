"""Choosing where tensors live: a CUDA GPU, an Apple GPU (MPS) or the CPU."""

from __future__ import annotations

import os

import torch

DEVICE_ENV = "LLM_COURSE_DEVICE"
KNOWN = ("cuda", "mps", "cpu")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """The devices this machine can use, best first."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if _mps_available():
        found.append("mps")
    found.append("cpu")
    return found


def get_device(name: str | None = None) -> torch.device:
    """Pick a device: `name` if given, else $LLM_COURSE_DEVICE, else cuda, then mps, then cpu.

    Asking for a device this machine does not have is an error that says what to do,
    rather than a silent fall-back that would make a learner think a GPU was used.
    """
    requested = name if name is not None else os.environ.get(DEVICE_ENV) or None
    if requested is None or str(requested).lower() == "auto":
        return torch.device(available_devices()[0])
    requested = str(requested).lower()
    kind = requested.split(":")[0]
    if kind not in KNOWN:
        raise ValueError(f"Unknown device {requested!r}. Use one of 'cuda', 'mps', 'cpu' or 'auto'.")
    if kind not in available_devices():
        source = f"${DEVICE_ENV}={requested}" if name is None else f"device={requested!r}"
        build = "a CPU-only build" if torch.version.cuda is None else f"a CUDA {torch.version.cuda} build"
        why = {
            "cuda": f"torch {torch.__version__} ({build}) sees no CUDA GPU",
            "mps": "this is not an Apple-silicon Mac with MPS available",
        }[kind]
        raise RuntimeError(
            f"You asked for {source}, but {why}. Use device='cpu' (every notebook runs on the CPU), "
            f"unset {DEVICE_ENV}, or see README 'Using a GPU'. Available here: {', '.join(available_devices())}."
        )
    if kind == "cuda" and ":" in requested:
        index = int(requested.split(":")[1])
        if index >= torch.cuda.device_count():
            raise RuntimeError(
                f"You asked for {requested}, but this machine has {torch.cuda.device_count()} CUDA device(s)."
            )
    return torch.device(requested)
