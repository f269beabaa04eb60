"""Lesson 11's pieces of today's open models, each against its reference: RMSNorm against torch.nn.RMSNorm
and Llama's LlamaRMSNorm, SwiGLU against Llama's LlamaMLP (tiny random configurations, no download), and
the GPT's switches, whose defaults must leave GPT-2's model and its checkpoints as they were."""

import pytest
import torch
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaMLP, LlamaRMSNorm

from utils.model import GPT, MLP, GPTConfig, RMSNorm, SwiGLU, swiglu_hidden
from utils.train import PRESETS, TrainConfig, Trainer

TEXT = "To be, or not to be, that is the question. " * 40


def test_rmsnorm_by_its_formula_and_against_torch_and_llama():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 16) * 4 + 1  # not centred: RMSNorm, unlike LayerNorm, keeps the mean
    ours = RMSNorm(16)
    with torch.no_grad():
        ours.weight.copy_(torch.rand(16) + 0.5)
    by_formula = x / torch.sqrt((x**2).mean(-1, keepdim=True) + 1e-6) * ours.weight
    torch_norm = torch.nn.RMSNorm(16, eps=1e-6)
    llama_norm = LlamaRMSNorm(16, eps=1e-6)
    with torch.no_grad():
        torch_norm.weight.copy_(ours.weight)
        llama_norm.weight.copy_(ours.weight)
    torch.testing.assert_close(ours(x), by_formula, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ours(x), torch_norm(x), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ours(x), llama_norm(x), rtol=1e-6, atol=1e-6)
    # with a gain of 1 every output vector has a root-mean-square of 1, whatever the input's scale
    plain = RMSNorm(16)(x * 100)
    torch.testing.assert_close(plain.pow(2).mean(-1), torch.ones(3, 5), rtol=1e-4, atol=1e-4)


def test_rmsnorm_in_half_precision_computes_its_statistic_in_float32():
    x = torch.randn(2, 8).to(torch.bfloat16) * 300  # squares of 300 in bfloat16 lose digits, float32 does not
    out = RMSNorm(8).to(torch.bfloat16)(x)
    assert out.dtype == torch.bfloat16
    llama = LlamaRMSNorm(8).to(torch.bfloat16)
    assert torch.equal(out, llama(x))
    torch.testing.assert_close(out.float(), RMSNorm(8)(x.float()), rtol=1e-2, atol=1e-2)


def test_swiglu_hidden_size_follows_llamas_rule():
    assert swiglu_hidden(4096, multiple_of=256) == 11008  # Llama 7B (Touvron et al. 2023)
    assert swiglu_hidden(128) == 352 and swiglu_hidden(96) == 256
    for n_embd in (64, 96, 128, 384):  # three matrices of 8/3 d hold what two of 4 d do, but for the rounding
        config = GPTConfig(n_embd=n_embd, n_head=4)
        gated = sum(p.numel() for p in SwiGLU(config).parameters())
        plain = sum(p.numel() for p in MLP(config).parameters())
        assert plain <= gated < plain + 3 * n_embd * 32, (n_embd, gated, plain)


def test_swiglu_equals_llamas_mlp_with_the_same_weights():
    torch.manual_seed(0)
    config = GPTConfig(n_embd=32, n_head=4, mlp="swiglu")
    ours = SwiGLU(config).eval()
    llama = LlamaMLP(LlamaConfig(hidden_size=32, intermediate_size=swiglu_hidden(32), hidden_act="silu",
                                 mlp_bias=False)).eval()
    with torch.no_grad():
        llama.gate_proj.weight.copy_(ours.gate.weight)
        llama.up_proj.weight.copy_(ours.up.weight)
        llama.down_proj.weight.copy_(ours.proj.weight)
    x = torch.randn(2, 7, 32)
    torch.testing.assert_close(ours(x), llama(x), rtol=1e-5, atol=1e-6)
    # by its formula: proj(SiLU(gate x) * up x), SiLU(z) = z sigmoid(z)
    gate = x @ ours.gate.weight.T
    by_formula = (gate * torch.sigmoid(gate) * (x @ ours.up.weight.T)) @ ours.proj.weight.T
    torch.testing.assert_close(ours(x), by_formula, rtol=1e-5, atol=1e-6)


def test_the_defaults_are_gpt2s_model_unchanged():
    names = [name for name, _ in GPT(GPTConfig(n_layer=1)).named_parameters()]
    assert names == ["tok_emb.weight", "pos_emb.weight", "blocks.0.ln1.weight", "blocks.0.attn.q_proj.weight",
                     "blocks.0.attn.k_proj.weight", "blocks.0.attn.v_proj.weight", "blocks.0.attn.out_proj.weight",
                     "blocks.0.ln2.weight", "blocks.0.mlp.fc.weight", "blocks.0.mlp.proj.weight", "ln_f.weight"]
    assert all(isinstance(m, torch.nn.LayerNorm) for m in (GPT(GPTConfig()).ln_f, GPT(GPTConfig()).blocks[0].ln1))
    # a checkpoint's config.json from before the switches existed has neither field: it loads as GPT-2
    old = {k: v for k, v in GPTConfig().to_dict().items() if k not in ("norm", "mlp")}
    assert GPTConfig.from_dict(old) == GPTConfig()


def test_the_switches_build_the_modern_pieces_and_refuse_unknown_names():
    model = GPT(GPTConfig(n_layer=2, norm="rmsnorm", mlp="swiglu"))
    assert isinstance(model.ln_f, RMSNorm) and isinstance(model.blocks[1].ln2, RMSNorm)
    assert isinstance(model.blocks[0].mlp, SwiGLU)
    # GPT-2's scaled initialisation reaches the gated MLP's output projection too
    assert model.blocks[0].mlp.proj.weight.std() < 0.6 * model.blocks[0].mlp.gate.weight.std()
    with pytest.raises(ValueError, match="norm must be one of 'layernorm', 'rmsnorm', got 'batchnorm'"):
        GPTConfig(norm="batchnorm")
    with pytest.raises(ValueError, match="mlp must be one of 'gelu', 'swiglu'"):
        GPTConfig(mlp="relu")


def test_a_modern_gpt_trains_and_resumes_from_its_checkpoint(tmp_path):
    model_kw, train_kw = (dict(d) for d in PRESETS["tiny"])
    train_kw.update(max_steps=30, eval_interval=10)
    trainer = Trainer(GPTConfig(**model_kw, norm="rmsnorm", mlp="swiglu"), TrainConfig(**train_kw),
                      device="cpu", text=TEXT)
    first = trainer.estimate_loss()["train"]
    trainer.fit(progress=False)
    assert trainer.estimate_loss()["train"] < first - 0.5
    folder = trainer.save(tmp_path / "modern")
    loaded = Trainer.load(folder, device="cpu", text=TEXT)
    assert loaded.model_config.norm == "rmsnorm" and loaded.model_config.mlp == "swiglu"
    x = torch.randint(trainer.model_config.vocab_size, (1, 8))
    torch.testing.assert_close(loaded.model.eval()(x)[0], trainer.model.eval()(x)[0], rtol=0, atol=0)
