"""A Llama-family model of `transformers` (LlamaForCausalLM, Qwen3ForCausalLM, ...) as our GPT.

Lesson 11's switches make our GPT the same network as Llama's: RMSNorm, SwiGLU, rotary positions,
grouped-query attention and (for Qwen 3) QK-norm. `gpt_config_from_llama` reads their configuration
into a GPTConfig, and `gpt_from_llama` builds that GPT and copies every weight across by name (the
table below). With the same weights, the two give the same logits within 1e-5 (tests/test_modern.py).
"""

from __future__ import annotations

import torch

from .model import GPT, GPTConfig

# (their name, ours); {i} is the layer. Their q/k/v/o projections keep their meaning in ours: both
# split the features into heads the same way, and both rotate pairs (i, i + d_head/2) (utils.rope).
LLAMA_NAMES = [
    ("model.embed_tokens.weight", "tok_emb.weight"),
    ("model.norm.weight", "ln_f.weight"),
    ("lm_head.weight", "head.weight"),
    ("model.layers.{i}.input_layernorm.weight", "blocks.{i}.ln1.weight"),
    ("model.layers.{i}.post_attention_layernorm.weight", "blocks.{i}.ln2.weight"),
    ("model.layers.{i}.self_attn.q_proj.weight", "blocks.{i}.attn.q_proj.weight"),
    ("model.layers.{i}.self_attn.k_proj.weight", "blocks.{i}.attn.k_proj.weight"),
    ("model.layers.{i}.self_attn.v_proj.weight", "blocks.{i}.attn.v_proj.weight"),
    ("model.layers.{i}.self_attn.o_proj.weight", "blocks.{i}.attn.out_proj.weight"),
    ("model.layers.{i}.self_attn.q_norm.weight", "blocks.{i}.attn.q_norm.weight"),  # Qwen 3's QK-norm
    ("model.layers.{i}.self_attn.k_norm.weight", "blocks.{i}.attn.k_norm.weight"),
    ("model.layers.{i}.mlp.gate_proj.weight", "blocks.{i}.mlp.gate.weight"),
    ("model.layers.{i}.mlp.up_proj.weight", "blocks.{i}.mlp.up.weight"),
    ("model.layers.{i}.mlp.down_proj.weight", "blocks.{i}.mlp.proj.weight"),
]


def gpt_config_from_llama(hf_config, context_length: int | None = None) -> GPTConfig:
    """The GPTConfig of a Llama-family configuration (LlamaConfig, Qwen3Config, MistralConfig).

    context_length defaults to the model's max_position_embeddings. What our GPT cannot express is
    refused with the setting named: biases, a head width other than hidden_size / heads, an activation
    other than SiLU, and rotary scalings other than the plain one (e.g. Llama 3.1's "llama3")."""
    c = hf_config
    rope = getattr(c, "rope_parameters", None) or getattr(c, "rope_scaling", None) or {}
    base = rope.get("rope_theta", getattr(c, "rope_theta", 10000.0))
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    _refuse_unless(getattr(c, "hidden_act", "silu") == "silu", "hidden_act", c.hidden_act, "'silu' (SwiGLU)")
    _refuse_unless(not getattr(c, "attention_bias", False) and not getattr(c, "mlp_bias", False),
                   "attention_bias / mlp_bias", True, "no biases")
    _refuse_unless(head_dim * c.num_attention_heads == c.hidden_size, "head_dim", head_dim,
                   f"hidden_size / num_attention_heads = {c.hidden_size // c.num_attention_heads}")
    _refuse_unless(rope.get("rope_type", "default") == "default", "rope type", rope.get("rope_type"), "'default'")
    _refuse_unless(not getattr(c, "num_experts", 0), "num_experts", getattr(c, "num_experts", 0),
                   "one MLP per block (no mixture of experts)")
    qk_norm = getattr(c, "model_type", "") == "qwen3"  # Qwen 3 normalises every query and key head
    return GPTConfig(vocab_size=c.vocab_size, context_length=context_length or c.max_position_embeddings,
                     n_layer=c.num_hidden_layers, n_head=c.num_attention_heads, n_embd=c.hidden_size,
                     bias=False, tie_weights=bool(getattr(c, "tie_word_embeddings", False)), norm="rmsnorm",
                     mlp="swiglu", mlp_hidden=c.intermediate_size, positions="rope", rope_base=float(base),
                     n_kv_head=c.num_key_value_heads or c.num_attention_heads, qk_norm=qk_norm,
                     norm_eps=float(c.rms_norm_eps))


@torch.no_grad()
def copy_llama_weights(ours: GPT, theirs) -> GPT:
    """Every weight of a Llama-family model into our GPT of the same shape, by name (LLAMA_NAMES). Every
    weight of ours must be filled and every shape must match; returns ours, in eval mode."""
    their_params = dict(theirs.named_parameters())
    our_params = dict(ours.named_parameters())  # a tied head appears once, as tok_emb.weight
    filled = set()
    for i in range(ours.config.n_layer):
        for their_name, our_name in LLAMA_NAMES:
            their_name, our_name = their_name.format(i=i), our_name.format(i=i)
            if their_name in their_params and our_name in our_params:
                if our_params[our_name].shape != their_params[their_name].shape:
                    raise ValueError(f"{their_name} is {tuple(their_params[their_name].shape)}, our {our_name} "
                                     f"is {tuple(our_params[our_name].shape)}: build ours with gpt_config_from_llama")
                our_params[our_name].copy_(their_params[their_name])
                filled.add(our_name)
    missing = sorted(set(our_params) - filled)
    if missing:
        raise ValueError(f"the model given has no weights for our {missing[:4]}{' ...' if len(missing) > 4 else ''}: "
                         "is it a Llama-family model built with the same settings?")
    return ours.eval()


def gpt_from_llama(theirs, context_length: int | None = None) -> GPT:
    """Our GPT, built from a Llama-family model's configuration and holding its weights."""
    return copy_llama_weights(GPT(gpt_config_from_llama(theirs.config, context_length)), theirs)


def _refuse_unless(ok: bool, name: str, value, wanted: str) -> None:
    if not ok:
        raise ValueError(f"our GPT cannot express this model's {name} = {value!r}: it needs {wanted}")
