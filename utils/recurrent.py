"""A recurrent language model (an LSTM) to race our GPT: same parameter count, same data, same clock.

    x_t = E[token_t]                          the token's vector
    h_t, c_t = LSTM(x_t, h_{t-1}, c_{t-1})    one step: the state carries everything the past can tell
    logits_t = W h_t + b                      scores for the next token

Its parameter count as a function of its width h (embedding width = hidden size = h, vocabulary V,
an untied output layer with a bias; nn.LSTM keeps two bias vectors per gate):

    N(h) = V h  +  4 (2 h^2 + 2 h)  +  h V + V  =  8 h^2 + (2 V + 8) h + V

`width_for(n_params, V)` solves it for h. utils.budget trains it and the GPT with one loop on one clock.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class LSTMLanguageModel(nn.Module):
    """Token ids (batch, n) -> next-token logits, through n_layer LSTM layers of width `width`.

    forward returns (logits, loss, None) like utils.model.GPT, so the same loops drive both. The state
    starts at zero for every call: position t sees exactly tokens 0..t of its window, as in the GPT.
    """

    def __init__(self, vocab_size: int, width: int, n_layer: int = 1):
        super().__init__()
        if vocab_size < 2 or width < 1 or n_layer < 1:
            raise ValueError(f"need vocab_size >= 2, width >= 1, n_layer >= 1; got {vocab_size}, {width}, {n_layer}")
        self.vocab_size, self.width, self.n_layer = vocab_size, width, n_layer
        self.tok_emb = nn.Embedding(vocab_size, width)
        self.lstm = nn.LSTM(width, width, num_layers=n_layer, batch_first=True)
        self.head = nn.Linear(width, vocab_size)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, need_weights: bool = False):
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.shape[1] == 0:
            shape = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
            raise ValueError(f"token ids must be a non-empty (batch, n) integer tensor, got {shape}")
        hidden, _ = self.lstm(self.tok_emb(idx))  # the state runs left to right; zero at the window's start
        logits = self.head(hidden)
        loss = None if targets is None else F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss, None


def lstm_parameters(width: int, vocab_size: int, n_layer: int = 1) -> int:
    """N(h) of a LSTMLanguageModel, from the formula (a test checks it against the model)."""
    h, v = width, vocab_size
    return v * h + n_layer * 4 * (2 * h * h + 2 * h) + h * v + v


def width_for(n_params: int, vocab_size: int, n_layer: int = 1) -> int:
    """The width whose one-layer-per-n_layer LSTM model has the parameter count nearest n_params."""
    a, b, c = 8 * n_layer, 2 * vocab_size + 8 * n_layer, vocab_size - n_params
    root = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)  # the positive root of a h^2 + b h + c = 0
    candidates = [max(1, math.floor(root)), math.ceil(root)]
    return min(candidates, key=lambda h: abs(lstm_parameters(h, vocab_size, n_layer) - n_params))
