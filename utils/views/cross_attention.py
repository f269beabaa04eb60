"""Pictures for lesson 10: which source tokens each target character looked at, as heat maps.

    from utils.views.cross_attention import use_chinese_font, plot_cross_attention
    use_chinese_font()                       # once: Chinese characters instead of empty boxes
    plot_cross_attention(ax, weights, target_tokens, source_tokens)

matplotlib's own font (DejaVu Sans) has no Chinese characters. `use_chinese_font` puts a font that
has them behind it: Noto Sans CJK SC from the `mplfonts` package (SIL Open Font License, installed with
the course, so it works offline), or else one the computer has (Microsoft YaHei, PingFang SC, ...).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import matplotlib as mpl
import torch
from matplotlib import font_manager

SYSTEM_FONTS = ["Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", "Heiti SC",
                "WenQuanYi Zen Hei", "SimHei"]


def _packaged_font() -> Path | None:
    spec = importlib.util.find_spec("mplfonts")  # found without importing it: we only need its font file
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "fonts" / "NotoSansCJKsc-Regular.otf"
    return path if path.is_file() else None


def use_chinese_font() -> str | None:
    """Make matplotlib draw Chinese characters; returns the font's name, or None if none was found.

    DejaVu Sans stays first (Latin letters look as before); matplotlib falls back to the next family
    for any character the first one lacks.
    """
    packaged = _packaged_font()
    if packaged is not None:
        font_manager.fontManager.addfont(str(packaged))
    have = {f.name for f in font_manager.fontManager.ttflist}
    found = next((name for name in SYSTEM_FONTS if name in have), None)
    if found is not None:
        mpl.rcParams["font.family"] = ["DejaVu Sans", found]
    return found


def plot_cross_attention(ax, weights: torch.Tensor, target_tokens: list[str], source_tokens: list[str],
                         title: str = "") -> None:
    """A heat map of cross-attention weights (n_t, n_s): row t = where target token t looked in the source."""
    weights = torch.as_tensor(weights).detach().float().cpu()
    if weights.dim() != 2 or weights.shape != (len(target_tokens), len(source_tokens)):
        raise ValueError(f"weights must be (target tokens, source tokens) = ({len(target_tokens)}, "
                         f"{len(source_tokens)}), got {tuple(weights.shape)}; average or pick a head first")
    ax.imshow(weights.numpy(), cmap="Blues", vmin=0, vmax=max(float(weights.max()), 1e-9), aspect="auto")
    ax.set_xticks(range(len(source_tokens)), [t.replace(" ", "·") for t in source_tokens], rotation=90)
    ax.set_yticks(range(len(target_tokens)), target_tokens)
    ax.set_xlabel("source token (English): the keys")
    ax.set_ylabel("target token written (Chinese): the queries")
    if title:
        ax.set_title(title)
