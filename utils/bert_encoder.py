"""BERT's encoder built from the course's own parts, able to run the packaged MiniLM's real weights.

    ids, token types -> word + position + token-type embeddings -> LayerNorm
                     -> n_layer x: x = LayerNorm(x + attention(x))     (post-LN, padding masked)
                                   x = LayerNorm(x + MLP(x))            (4x wide, exact GELU)
                     -> one vector per token (what transformers' BertModel calls last_hidden_state)

The layout is BERT's (Devlin et al. 2018): post-LN blocks, as in the original Transformer, where the
norm comes after each residual sum (our GPT puts it before). The attention is utils.attention's
MultiHeadAttention and the MLP utils.model's: `from_pretrained_bert` copies a transformers BertModel's
weights into them, and the hidden states agree within 1e-5 (tests/test_modern.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .attention import MultiHeadAttention, padding_mask
from .model import MLP


@dataclass
class EncoderConfig:
    """The shape of a BERT encoder (MiniLM-L6's by default). n_embd, mlp_hidden, bias and dropout are the
    names utils.model.MLP reads."""

    vocab_size: int = 30522
    context_length: int = 512
    type_vocab_size: int = 2
    n_layer: int = 6
    n_head: int = 12
    n_embd: int = 384
    layer_norm_eps: float = 1e-12
    bias: bool = True
    dropout: float = 0.0
    mlp_hidden: int = 1536  # BERT's intermediate_size: 4 n_embd in MiniLM and BERT itself


class EncoderLayer(nn.Module):
    """One post-LN block: attention and the MLP each add to x, then a LayerNorm."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.attn = MultiHeadAttention(config.n_embd, config.n_head, bias=True, dropout=config.dropout)
        self.ln1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.mlp = MLP(config)
        self.ln2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)

    def forward(self, x, mask):
        x = self.ln1(x + self.attn(x, mask=mask))
        return self.ln2(x + self.mlp(x))


class Encoder(nn.Module):
    """input_ids (batch, n) and attention_mask (batch, n; 1 = real token) -> hidden states (batch, n, n_embd)."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.pos_emb = nn.Embedding(config.context_length, config.n_embd)
        self.type_emb = nn.Embedding(config.type_vocab_size, config.n_embd)
        self.ln_emb = nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)
        self.layers = nn.ModuleList([EncoderLayer(config) for _ in range(config.n_layer)])

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        n = input_ids.shape[1]
        if n > self.config.context_length:
            raise ValueError(f"{n} tokens are more than this encoder's {self.config.context_length} positions: "
                             "truncate the input (the tokenizer's truncation=True does)")
        types = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        x = self.tok_emb(input_ids) + self.pos_emb(torch.arange(n, device=input_ids.device)) + self.type_emb(types)
        x = self.ln_emb(x)
        mask = None if attention_mask is None else padding_mask(attention_mask)
        for layer in self.layers:
            x = layer(x, mask)
        return x


@torch.no_grad()
def from_pretrained_bert(bert_model) -> Encoder:
    """Our Encoder with the weights of a transformers BertModel (e.g. utils.bert.load_encoder()), in eval mode."""
    c = bert_model.config
    if c.hidden_act != "gelu" or getattr(c, "position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"only BERT's own layout is built here (exact GELU, learned absolute positions); "
                         f"this model has hidden_act={c.hidden_act!r}")
    config = EncoderConfig(vocab_size=c.vocab_size, context_length=c.max_position_embeddings,
                           type_vocab_size=c.type_vocab_size, n_layer=c.num_hidden_layers,
                           n_head=c.num_attention_heads, n_embd=c.hidden_size, layer_norm_eps=c.layer_norm_eps,
                           mlp_hidden=c.intermediate_size)
    ours = Encoder(config)
    e = bert_model.embeddings
    for mine, theirs in [(ours.tok_emb, e.word_embeddings), (ours.pos_emb, e.position_embeddings),
                         (ours.type_emb, e.token_type_embeddings), (ours.ln_emb, e.LayerNorm)]:
        mine.load_state_dict(theirs.state_dict())
    for mine, theirs in zip(ours.layers, bert_model.encoder.layer, strict=True):
        a = theirs.attention
        for ours_proj, their_proj in [(mine.attn.q_proj, a.self.query), (mine.attn.k_proj, a.self.key),
                                      (mine.attn.v_proj, a.self.value), (mine.attn.out_proj, a.output.dense),
                                      (mine.ln1, a.output.LayerNorm), (mine.mlp.fc, theirs.intermediate.dense),
                                      (mine.mlp.proj, theirs.output.dense), (mine.ln2, theirs.output.LayerNorm)]:
            ours_proj.load_state_dict(their_proj.state_dict())
    return ours.eval()


class Classifier(nn.Module):
    """A fine-tuned BERT classifier on our Encoder: the [CLS] vector -> pooler (Linear, tanh) -> Linear
    -> one score per label. BertForSequenceClassification's head, so its trained weights fit."""

    def __init__(self, config: EncoderConfig, num_labels: int):
        super().__init__()
        self.encoder = Encoder(config)
        self.pooler = nn.Linear(config.n_embd, config.n_embd)
        self.classifier = nn.Linear(config.n_embd, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        cls = self.encoder(input_ids, attention_mask, token_type_ids)[:, 0]  # the first token: [CLS]
        return self.classifier(torch.tanh(self.pooler(cls)))


@torch.no_grad()
def from_pretrained_classifier(classifier_model) -> Classifier:
    """Our Classifier with every weight of a transformers BertForSequenceClassification (lesson 08's
    fine-tuned model, e.g. utils.bert.load_classifier(folder)), in eval mode."""
    if not hasattr(classifier_model, "bert") or not hasattr(classifier_model, "classifier"):
        raise ValueError(f"expected a BertForSequenceClassification (lesson 08's model), "
                         f"got {type(classifier_model).__name__}")
    if classifier_model.bert.pooler is None:
        raise ValueError("this BERT classifier has no pooler layer; BertForSequenceClassification has one")
    encoder = from_pretrained_bert(classifier_model.bert)
    ours = Classifier(encoder.config, classifier_model.config.num_labels)
    ours.encoder = encoder
    ours.pooler.load_state_dict(classifier_model.bert.pooler.dense.state_dict())
    ours.classifier.load_state_dict(classifier_model.classifier.state_dict())
    return ours.eval()
