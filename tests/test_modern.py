"""Lesson 11's pieces of today's open models, each against its reference: RMSNorm against torch.nn.RMSNorm
and Llama's LlamaRMSNorm, SwiGLU against Llama's LlamaMLP (tiny random configurations, no download), and
the GPT's switches, whose defaults must leave GPT-2's model and its checkpoints as they were."""

import pytest
import torch
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaMLP, LlamaRMSNorm

from utils.llama_weights import copy_llama_weights, gpt_config_from_llama, gpt_from_llama
from utils.model import GPT, MLP, MODERN_FIELDS, GPTConfig, RMSNorm, SwiGLU, swiglu_hidden
from utils.rope import apply_rope, rope_frequencies
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
    old = {k: v for k, v in GPTConfig().to_dict().items() if k not in MODERN_FIELDS}
    assert GPTConfig.from_dict(old) == GPTConfig()
    # and it prints as before (lesson 05 shows it); a switch that is set is shown
    assert repr(GPTConfig()) == ("GPTConfig(vocab_size=65, context_length=64, n_layer=4, n_head=4, n_embd=128, "
                                 "dropout=0.0, bias=False, tie_weights=True)")
    assert repr(GPTConfig(norm="rmsnorm")).endswith("tie_weights=True, norm='rmsnorm')")


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


def test_rope_scores_depend_only_on_the_offset_and_keep_lengths():
    torch.manual_seed(0)
    q, k = torch.randn(16), torch.randn(16)

    def score(m, n):
        return apply_rope(q[None], torch.tensor([m]))[0] @ apply_rope(k[None], torch.tensor([n]))[0]

    for m, n in [(3, 1), (10, 8), (52, 50)]:  # the same offset, 2, at three places
        torch.testing.assert_close(score(m, n), score(2, 0), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(score(3, 0), score(2, 0))  # another offset, another score
    x = torch.randn(7, 16)
    torch.testing.assert_close(apply_rope(x, torch.arange(7)).norm(dim=-1), x.norm(dim=-1))  # rotations
    torch.testing.assert_close(apply_rope(x, torch.zeros(7, dtype=torch.long)), x)  # position 0: no turn
    assert rope_frequencies(16)[0] == 1 and abs(rope_frequencies(16)[-1] - 10000 ** (-14 / 16)) < 1e-12


def test_rope_equals_llamas_rotary_code():
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, rotate_half

    from utils.rope import rope_angles
    from utils.rope import rotate_half as ours_rotate_half

    x = torch.randn(2, 4, 9, 8)
    torch.testing.assert_close(ours_rotate_half(x), rotate_half(x))
    cos, sin = rope_angles(torch.arange(9), 8, base=500000.0)
    theirs_q, _ = apply_rotary_pos_emb(x, x, cos[None], sin[None])
    torch.testing.assert_close(apply_rope(x, torch.arange(9), base=500000.0), theirs_q)


def test_bad_modern_settings_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="n_kv_head must be 0 .* or a divisor of n_head=4, got 3"):
        GPTConfig(n_head=4, n_kv_head=3)
    with pytest.raises(ValueError, match="n_embd / n_head must be even"):
        GPTConfig(n_embd=12, n_head=4, positions="rope")
    with pytest.raises(ValueError, match="positions must be one of 'learned', 'rope'"):
        GPTConfig(positions="alibi")
    with pytest.raises(ValueError, match="d_head must be a positive even number"):
        apply_rope(torch.randn(3, 5), torch.arange(3))


def test_a_modern_gpt_trains_and_resumes_from_its_checkpoint(tmp_path):
    model_kw, train_kw = (dict(d) for d in PRESETS["tiny"])
    train_kw.update(max_steps=30, eval_interval=10)
    model_kw["n_head"] = 4
    trainer = Trainer(GPTConfig(**model_kw, norm="rmsnorm", mlp="swiglu", positions="rope", n_kv_head=2,
                                qk_norm=True), TrainConfig(**train_kw), device="cpu", text=TEXT)
    assert trainer.model.pos_emb is None
    first = trainer.estimate_loss()["train"]
    trainer.fit(progress=False)
    assert trainer.estimate_loss()["train"] < first - 0.5
    folder = trainer.save(tmp_path / "modern")
    loaded = Trainer.load(folder, device="cpu", text=TEXT)
    assert loaded.model_config == trainer.model_config
    x = torch.randint(trainer.model_config.vocab_size, (1, 8))
    torch.testing.assert_close(loaded.model.eval()(x)[0], trainer.model.eval()(x)[0], rtol=0, atol=0)


# --- the whole model against Llama and Qwen 3 (tiny random configurations, no download) -------------------

def randomized(model):
    """Every parameter random, the norms' gains too (left at 1 they would hide a swapped norm)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3 if p.dim() == 1 else 0.1).add_(1.0 if p.dim() == 1 else 0.0)
    return model.eval()


@pytest.mark.parametrize("family", ["llama", "qwen3"])
@pytest.mark.parametrize("n_kv_head", [4, 2, 1])  # multi-head, grouped-query, multi-query
def test_our_gpt_in_a_modern_configuration_gives_the_logits_of_transformers(family, n_kv_head):
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM

    shape = dict(vocab_size=50, hidden_size=32, intermediate_size=swiglu_hidden(32), num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=n_kv_head, max_position_embeddings=64,
                 rms_norm_eps=1e-6, tie_word_embeddings=False, rope_parameters={"rope_type": "default",
                                                                                "rope_theta": 500000.0})
    if family == "llama":
        theirs = randomized(LlamaForCausalLM(LlamaConfig(**shape, attention_bias=False, mlp_bias=False)))
    else:
        theirs = randomized(Qwen3ForCausalLM(Qwen3Config(**shape, head_dim=8, attention_bias=False)))
    ours = gpt_from_llama(theirs)
    assert ours.config == GPTConfig(vocab_size=50, context_length=64, n_layer=2, n_head=4, n_embd=32,
                                    norm="rmsnorm", mlp="swiglu", mlp_hidden=swiglu_hidden(32), positions="rope",
                                    rope_base=500000.0, n_kv_head=n_kv_head, qk_norm=family == "qwen3",
                                    tie_weights=False, norm_eps=1e-6)
    idx = torch.randint(50, (2, 20))
    with torch.no_grad():
        expected = theirs(idx).logits
        torch.testing.assert_close(ours(idx)[0], expected, rtol=1e-5, atol=1e-5)
        caches = ours.new_caches()  # token by token through the KV cache: the rotations continue
        steps = [ours(idx[:, t:t + 1], caches=caches)[0] for t in range(idx.shape[1])]
        torch.testing.assert_close(torch.cat(steps, dim=1), expected, rtol=1e-5, atol=1e-5)
    assert caches[0].k.shape == (2, n_kv_head, 20, 8)  # the cache holds the key/value heads only


def test_our_gpt_in_its_default_configuration_gives_the_logits_of_transformers_gpt2():
    """GPT-2's layout is our default; with biases on and exact GELU (GPT-2 itself used the tanh form,
    `gelu_new`), transformers' GPT2LMHeadModel with the same weights gives the same logits."""
    from transformers import GPT2Config, GPT2LMHeadModel

    theirs = randomized(GPT2LMHeadModel(GPT2Config(
        vocab_size=50, n_positions=64, n_embd=32, n_layer=2, n_head=4, activation_function="gelu",
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5, tie_word_embeddings=True)))
    ours = GPT(GPTConfig(vocab_size=50, context_length=64, n_layer=2, n_head=4, n_embd=32, bias=True)).eval()
    p = dict(theirs.named_parameters())
    with torch.no_grad():
        ours.tok_emb.weight.copy_(p["transformer.wte.weight"])
        ours.pos_emb.weight.copy_(p["transformer.wpe.weight"])
        for i, block in enumerate(ours.blocks):
            h = f"transformer.h.{i}."
            # GPT-2's Conv1D stores (in, out): ours is nn.Linear's (out, in), so every matrix is transposed
            for name, part in zip(("q_proj", "k_proj", "v_proj"), range(3), strict=True):
                cut = slice(part * 32, (part + 1) * 32)
                getattr(block.attn, name).weight.copy_(p[h + "attn.c_attn.weight"][:, cut].T)
                getattr(block.attn, name).bias.copy_(p[h + "attn.c_attn.bias"][cut])
            pairs = [(block.attn.out_proj, "attn.c_proj"), (block.mlp.fc, "mlp.c_fc"), (block.mlp.proj, "mlp.c_proj")]
            for layer, name in pairs:
                layer.weight.copy_(p[h + name + ".weight"].T)
                layer.bias.copy_(p[h + name + ".bias"])
            for norm, name in [(block.ln1, "ln_1"), (block.ln2, "ln_2")]:
                norm.weight.copy_(p[h + name + ".weight"])
                norm.bias.copy_(p[h + name + ".bias"])
        ours.ln_f.weight.copy_(p["transformer.ln_f.weight"])
        ours.ln_f.bias.copy_(p["transformer.ln_f.bias"])
        idx = torch.randint(50, (2, 20))
        torch.testing.assert_close(ours(idx)[0], theirs(idx).logits, rtol=1e-5, atol=1e-5)


def test_our_encoder_runs_the_packaged_minilm_and_gives_bertmodels_hidden_states():
    from utils import bert
    from utils.bert_encoder import from_pretrained_bert

    theirs = bert.load_encoder()
    ours = from_pretrained_bert(theirs)
    tokenizer = bert.load_tokenizer()
    batch = tokenizer(["The film was not bad at all.", "A triumph of style over substance, sadly."],
                      padding=True, return_tensors="pt")
    assert batch["attention_mask"][0].sum() < batch["attention_mask"].shape[1]  # the first one is padded
    with torch.no_grad():
        expected = theirs(**batch).last_hidden_state
        got = ours(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    real = batch["attention_mask"].bool()  # padding positions' vectors mean nothing in either
    torch.testing.assert_close(got[real], expected[real], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="more than this encoder's 512 positions"):
        ours(torch.zeros(1, 513, dtype=torch.long))


def test_a_fine_tuned_classifier_gives_the_same_predictions_on_our_encoder():
    """Lesson 08's model, fine-tuned a few steps, and the same weights in our Classifier: same logits."""
    from utils import bert
    from utils.bert_encoder import from_pretrained_classifier

    tokenizer = bert.load_tokenizer()
    theirs = bert.load_classifier(labels=["ham", "spam"], device="cpu")
    pairs = [("WIN a FREE prize, call 09061 now", 1), ("see you at lunch", 0), ("Urgent! claim your cash", 1),
             ("running late, sorry", 0)] * 2
    bert.train_classifier(theirs, tokenizer, pairs, epochs=1, batch_size=4, lr=1e-3, device="cpu", progress=False)
    theirs.eval()
    ours = from_pretrained_classifier(theirs)
    texts = ["Congratulations! You've won a cruise. Reply YES.", "Can you pick up some milk?", "ok"]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = theirs(**batch).logits
        got = ours(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert got.argmax(-1).tolist() == bert.predict(theirs, tokenizer, texts).labels
    with pytest.raises(ValueError, match="expected a BertForSequenceClassification"):
        from_pretrained_classifier(bert.load_encoder())


def test_a_llama_our_gpt_cannot_express_is_refused_with_the_setting_named():
    from transformers import LlamaConfig, LlamaForCausalLM

    shape = dict(vocab_size=50, hidden_size=32, intermediate_size=80, num_hidden_layers=1, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5)
    # a real Llama's widths and eps (not our defaults) are carried over: Llama 3 8B's MLP is 3.5 d wide
    config = gpt_config_from_llama(LlamaConfig(**shape), context_length=16)
    assert (config.mlp_hidden, config.norm_eps, config.context_length, config.rope_base) == (80, 1e-5, 16, 10000.0)
    theirs = randomized(LlamaForCausalLM(LlamaConfig(**shape)))
    idx = torch.randint(50, (1, 9))
    with torch.no_grad():
        torch.testing.assert_close(gpt_from_llama(theirs)(idx)[0], theirs(idx).logits, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="attention_bias / mlp_bias = True: it needs no biases"):
        gpt_config_from_llama(LlamaConfig(**shape, attention_bias=True))
    with pytest.raises(ValueError, match="rope type = 'llama3'"):
        gpt_config_from_llama(LlamaConfig(**shape, rope_parameters={
            "rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 32}))
    with pytest.raises(ValueError, match="build ours with gpt_config_from_llama"):
        copy_llama_weights(GPT(GPTConfig(vocab_size=50, n_layer=1, n_head=4, n_embd=32, norm="rmsnorm",
                                         mlp="swiglu", positions="rope", n_kv_head=2)), theirs)
    with pytest.raises(ValueError, match="has no weights for our"):
        copy_llama_weights(GPT(GPTConfig(vocab_size=50, n_layer=1, n_head=4, n_embd=32, n_kv_head=2, mlp_hidden=80)),
                           theirs)
