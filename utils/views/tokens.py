"""Seeing tokens: coloured spans with their ids, and an interactive explorer.

A tokenizer here is anything with `encode(text) -> ids` plus a way to show each id as text. The
adapters below cover the course's own tokenizers and Hugging Face ones, so one explorer can put
them side by side.
"""

from __future__ import annotations

import html
from collections.abc import Callable

# Soft colours that stay readable with dark text; neighbouring tokens always differ.
PALETTE = ["#ffd6a5", "#caffbf", "#9bf6ff", "#bdb2ff", "#ffc6ff", "#fdffb6", "#a0c4ff", "#ffadad"]

Pieces = list[tuple[str, int]]  # (text shown for the token, token id)


def pieces_from(tokenizer, text: str) -> Pieces:
    """Token pieces of `text` for the course's tokenizers and for Hugging Face tokenizers."""
    if hasattr(tokenizer, "token_strings"):  # utils.bpe.BPETokenizer
        ids = tokenizer.encode(text)
        return list(zip(tokenizer.token_strings(ids), ids, strict=True))
    if hasattr(tokenizer, "convert_ids_to_tokens"):  # transformers tokenizers (WordPiece, ...)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return list(zip(tokenizer.convert_ids_to_tokens(ids), ids, strict=True))
    if hasattr(tokenizer, "encode") and hasattr(tokenizer, "id_to_token"):  # tokenizers.Tokenizer
        enc = tokenizer.encode(text)
        return [(text[a:b], i) for (a, b), i in zip(enc.offsets, enc.ids, strict=True)]
    if hasattr(tokenizer, "encode") and hasattr(tokenizer, "decode"):  # utils.char_tokenizer and similar
        ids = tokenizer.encode(text)
        return [(tokenizer.decode([i]), i) for i in ids]
    raise TypeError(f"Do not know how to show tokens of a {type(tokenizer).__name__}: it needs encode().")


def _visible(piece: str) -> str:
    # Show the characters that would otherwise vanish in a span.
    return html.escape(piece).replace(" ", "·").replace("\n", "↵<br>").replace("\t", "→")


def tokens_html(pieces: Pieces, show_ids: bool = True) -> str:
    """HTML with one coloured span per token (id underneath when show_ids), plus a count."""
    spans = []
    for n, (piece, token_id) in enumerate(pieces):
        colour = PALETTE[n % len(PALETTE)]
        label = f"<sub style='color:#555'>{token_id}</sub>" if show_ids else ""
        spans.append(
            f"<span title='id {token_id}' style='background:{colour};border-radius:3px;padding:1px 2px;"
            f"margin:1px;display:inline-block;font-family:monospace;white-space:pre'>{_visible(piece)}{label}</span>"
        )
    return (
        "<div class='token-view' style='line-height:2.1'>" + "".join(spans) + "</div>"
        f"<div style='color:#555;font-size:90%'>{len(pieces)} tokens</div>"
    )


def show_tokens(tokenizer, text: str, show_ids: bool = True):
    """Display the tokens of `text` in a notebook."""
    from IPython.display import HTML, display

    display(HTML(tokens_html(pieces_from(tokenizer, text), show_ids)))


def token_explorer(tokenizers: dict[str, object | Callable[[], object]], text: str = "Hello, world!"):
    """An ipywidgets explorer: type text, pick a tokenizer, see its coloured tokens and ids.

    `tokenizers` maps a name to a tokenizer, or to a function that builds one the first time it is
    picked (so a slow tokenizer costs nothing until someone asks for it).
    """
    import ipywidgets as widgets

    names = list(tokenizers)
    box = widgets.Textarea(value=text, description="text", layout=widgets.Layout(width="95%", height="70px"))
    choice = widgets.Dropdown(options=names, value=names[0], description="tokenizer")
    ids = widgets.Checkbox(value=True, description="show ids")
    out = widgets.HTML()
    built: dict[str, object] = {}

    def get(name):
        if name not in built:
            item = tokenizers[name]
            built[name] = item() if callable(item) and not hasattr(item, "encode") else item
        return built[name]

    def update(change=None):
        text_now = box.value
        try:
            pieces = pieces_from(get(choice.value), text_now)
        except Exception as error:  # show the tokenizer's own message, e.g. an unknown character
            out.value = f"<pre style='color:#b00'>{html.escape(str(error))}</pre>"
            return
        n_bytes = len(text_now.encode("utf-8"))
        ratio = f"{n_bytes / len(pieces):.2f} bytes per token" if pieces else "no tokens"
        out.value = tokens_html(pieces, ids.value) + f"<div style='color:#555;font-size:90%'>{ratio}</div>"

    for widget in (box, choice, ids):
        widget.observe(update, names="value")
    update()
    return widgets.VBox([box, widgets.HBox([choice, ids]), out])
