"""The GPT, generation with and without the KV cache, and exact resume of training."""

import json
import subprocess
import sys

import pytest
import torch

from utils.checkpoint import load_model, load_weights, tokenizer_from_file
from utils.generation import generate, next_token, top_k_filter, top_p_filter
from utils.model import GPT, GPTConfig
from utils.train import PRESETS, TrainConfig, Trainer, TrainHistory, get_batch, lr_at, make_tokenizer

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 40


def tiny(**kw):
    base = dict(vocab_size=20, context_length=16, n_layer=2, n_head=2, n_embd=16)
    base.update(kw)
    torch.manual_seed(0)
    return GPT(GPTConfig(**base)).eval()


def test_shapes_loss_and_weights():
    model = tiny()
    idx = torch.randint(0, 20, (3, 10))
    logits, loss, weights = model(idx, idx, need_weights=True)
    assert logits.shape == (3, 10, 20)
    assert loss.item() == pytest.approx(torch.log(torch.tensor(20.0)).item(), abs=0.3)  # ~uniform at init
    assert len(weights) == 2 and weights[0].shape == (3, 2, 10, 10)
    assert torch.all(weights[0].triu(1) == 0)  # causal: nothing from the future


def test_fast_path_equals_weights_path():
    model = tiny()
    idx = torch.randint(0, 20, (2, 12))
    fast, _, _ = model(idx)
    slow, _, _ = model(idx, need_weights=True)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


def test_parameter_count_formula():
    model = tiny(bias=False)
    c = model.config
    per_block = 4 * c.n_embd ** 2 + 8 * c.n_embd ** 2 + 2 * c.n_embd  # attention + MLP + two LayerNorm gains
    expected = c.vocab_size * c.n_embd + c.context_length * c.n_embd + c.n_layer * per_block + c.n_embd
    assert model.num_parameters() == expected


def test_clear_errors():
    model = tiny()
    with pytest.raises(ValueError, match="longer than the model's context context_length=16"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="token ids must lie in 0..19"):
        model(torch.tensor([[3, 25]]))
    with pytest.raises(ValueError, match="empty"):
        model(torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"shape \(batch, n\)"):
        model(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="divisible by n_head"):
        GPTConfig(n_embd=30, n_head=4)


def test_kv_cache_gives_the_same_tokens_as_no_cache():
    model = tiny()
    prompt = torch.randint(0, 20, (2, 5))
    greedy_cached = generate(model, prompt, 30, temperature=0, use_cache=True)
    greedy_plain = generate(model, prompt, 30, temperature=0, use_cache=False)
    assert torch.equal(greedy_cached, greedy_plain)  # 35 tokens > block 16: the window slides too
    sampled = [generate(model, prompt, 12, temperature=1.0, top_k=5, use_cache=c,
                        generator=torch.Generator().manual_seed(7)) for c in (True, False)]
    assert torch.equal(*sampled)


def test_kv_cache_logits_match_full_forward():
    model = tiny()
    idx = torch.randint(0, 20, (2, 9))
    full, _, _ = model(idx)
    caches = model.new_caches()
    parts = [model(idx[:, :4], caches=caches)[0]] + [model(idx[:, i:i + 1], caches=caches)[0] for i in range(4, 9)]
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)


def test_long_prompt_is_cropped_or_refused():
    model = tiny()
    prompt = torch.randint(0, 20, (1, 40))
    assert generate(model, prompt, 3).shape == (1, 43)
    with pytest.raises(ValueError, match="context_length=16"):
        generate(model, prompt, 3, crop_prompt=False)


def test_sampling_filters():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0]])
    assert torch.isinf(top_k_filter(logits, 2)).tolist() == [[True, False, False, True]]
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    kept = ~torch.isinf(top_p_filter(probs.log(), 0.75))
    assert kept.tolist() == [[True, True, False, False]]  # 0.5 + 0.3 >= 0.75
    assert (~torch.isinf(top_p_filter(probs.log(), 1e-6))).sum() == 1  # only the top token
    assert next_token(logits, temperature=0).item() == 1
    with pytest.raises(ValueError, match="top_p"):
        top_p_filter(logits, 1.5)


def test_lr_schedule():
    c = TrainConfig(**PRESETS["cpu-quick"][1])
    assert lr_at(0, c) == pytest.approx(c.lr / c.warmup_steps)
    assert lr_at(c.warmup_steps, c) == pytest.approx(c.lr)
    assert lr_at(c.max_steps, c) == pytest.approx(c.min_lr)
    assert c.min_lr < lr_at((c.max_steps + c.warmup_steps) // 2, c) < c.lr


def test_batches_are_shifted_by_one():
    data = torch.arange(100)
    x, y = get_batch(data, 4, 8, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8)
    assert torch.equal(y, x + 1)


@pytest.fixture
def small_trainer():
    """Build a tiny trainer on a short text; keyword arguments change model or training settings."""

    def build(dropout=0.0, **kw):
        model_kw, train_kw = (dict(d) for d in PRESETS["tiny"])
        model_kw["dropout"] = dropout
        train_kw.update({"max_steps": 30, "eval_interval": 10, **kw})
        return Trainer(GPTConfig(**model_kw), TrainConfig(**train_kw), device="cpu", text=TEXT)

    return build


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_training_lowers_the_loss(small_trainer, optimizer):
    trainer = small_trainer(optimizer=optimizer)
    history = trainer.fit(progress=False)
    assert history.eval_val[-1] < history.eval_val[0] - 0.5


def test_unknown_optimizer_is_refused(small_trainer):
    with pytest.raises(ValueError, match="'adamw' or 'muon'"):
        small_trainer(optimizer="sgd")


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_resume_is_exact(small_trainer, tmp_path, optimizer):
    straight = small_trainer(optimizer=optimizer)
    straight.fit(progress=False)

    first = small_trainer(optimizer=optimizer)
    first.fit(steps=13, progress=False)
    first.save(tmp_path / "ckpt")
    del first
    torch.manual_seed(999)  # disturb the global generator: the checkpoint must restore it
    resumed = Trainer.load(tmp_path / "ckpt", device="cpu", text=TEXT)
    assert resumed.step == 13
    resumed.fit(progress=False)

    assert resumed.history.train_loss == straight.history.train_loss
    assert resumed.history.eval_val == straight.history.eval_val
    assert resumed.history.grad_norm == straight.history.grad_norm and len(straight.history.grad_norm) == 30
    for a, b in zip(resumed.model.state_dict().values(), straight.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_the_history_records_each_steps_gradient_norm_before_clipping(small_trainer):
    trainer = small_trainer(max_steps=2, grad_clip=1e-3)  # clipped norms would all be <= 1e-3
    trainer.fit(progress=False)
    assert len(trainer.history.grad_norm) == 2 and min(trainer.history.grad_norm) > 1e-2
    assert trainer.history.clipped_share(1e-3) == 1.0
    history = TrainHistory(grad_norm=[0.5, 2.0, 3.0, 0.9])
    assert history.clipped_share(1.0) == 0.5 and history.clipped_share(1.0, first=1, last=3) == 1.0
    with pytest.raises(ValueError, match="no gradient norms"):
        history.clipped_share(1.0, first=10)


def test_resume_is_exact_with_dropout(small_trainer, tmp_path):
    # Dropout draws from torch's global generator, so the checkpoint must carry its state too.
    straight = small_trainer(dropout=0.2)
    straight.fit(progress=False)
    first = small_trainer(dropout=0.2)
    first.fit(steps=7, progress=False)
    first.save(tmp_path / "ckpt")
    torch.manual_seed(4321)
    resumed = Trainer.load(tmp_path / "ckpt", device="cpu", text=TEXT)
    assert resumed.model_config.dropout == 0.2
    resumed.fit(progress=False)
    assert resumed.history.train_loss == straight.history.train_loss


def test_checkpoint_is_safetensors_and_json_and_loads_for_generation(small_trainer, tmp_path):
    trainer = small_trainer(max_steps=5)
    trainer.fit(progress=False)
    folder = trainer.save(tmp_path / "ckpt")
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json", "manifest.json", "model.safetensors", "optimizer.safetensors", "tokenizer.json"]
    meta = json.loads((folder / "config.json").read_text())
    assert meta["step"] == 5 and meta["model"]["vocab_size"] == trainer.tokenizer.vocab_size
    model, tokenizer = load_model(folder, device="cpu")
    out = generate(model, torch.tensor([tokenizer.encode("All:")]), 10, temperature=0)
    assert isinstance(tokenizer.decode(out[0].tolist()), str)


def test_checkpoint_from_another_config_is_refused(small_trainer, tmp_path):
    trainer = small_trainer(max_steps=1)
    trainer.save(tmp_path / "ckpt")
    other = GPT(GPTConfig(vocab_size=trainer.model_config.vocab_size, context_length=32, n_layer=2, n_head=2,
                          n_embd=48))
    with pytest.raises(ValueError, match="made for another model configuration"):
        load_weights(other, tmp_path / "ckpt")
    with pytest.raises(FileNotFoundError, match="not a checkpoint folder"):
        load_model(tmp_path / "nothing")


def test_trainer_takes_a_saved_tokenizer(tmp_path):
    from utils.bpe import BPETokenizer

    bpe = BPETokenizer().train(TEXT, 300)
    bpe.save(tmp_path / "bpe.json")
    again = make_tokenizer(str(tmp_path / "bpe.json"), TEXT)
    assert again.encode(TEXT[:200]) == bpe.encode(TEXT[:200])
    with pytest.raises(ValueError, match="not a tokenizer file"):
        (tmp_path / "x.json").write_text("{}")
        tokenizer_from_file(tmp_path / "x.json")


def test_bpe_truncated_equals_training_to_the_smaller_size():
    from utils.bpe import BPETokenizer

    big = BPETokenizer().train(TEXT, 300)  # this short text allows about 50 merges
    small = BPETokenizer().train(TEXT, 280)
    assert len(small.merges) == 24
    assert big.truncated(280).merges == small.merges
    assert big.truncated(280).encode(TEXT[:300]) == small.encode(TEXT[:300])
    with pytest.raises(ValueError, match=f"from 256 to {big.vocab_size}"):
        big.truncated(big.vocab_size + 1)


def test_command_line_train_resume_and_sample(tmp_path, capsys):
    from utils.course.cli import sample_main, train_main

    out = tmp_path / "run"
    train_main(["--preset", "tiny", "--out", str(out), "--steps", "10"])
    assert json.loads((out / "config.json").read_text())["step"] == 10
    train_main(["--out", str(out), "--resume"])
    assert json.loads((out / "config.json").read_text())["step"] == PRESETS["tiny"][1]["max_steps"]
    capsys.readouterr()
    sample_main(["--checkpoint", str(out), "--prompt", "ROMEO:", "--tokens", "20", "--temperature", "0"])
    assert capsys.readouterr().out.startswith("ROMEO:")
    with pytest.raises(SystemExit):
        sample_main(["--checkpoint", str(out), "--prompt", "€"])
    assert "not in the vocabulary" in capsys.readouterr().err


def test_python_dash_m_entry_points_still_work():
    """`python -m utils.train` and `python -m utils.sample` are shims over utils/course/cli.py."""
    for module, words in (("utils.train", "Train the course's GPT"), ("utils.sample", "Write text with a trained GPT")):
        done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and words in done.stdout, done.stderr


def test_the_checkpoint_format_does_not_import_the_trainer():
    code = "import sys, utils.checkpoint; print('utils.train' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr


def _same_state_dict(a, b, where="") -> None:
    """Equal values AND equal types, recursively (a tuple that comes back a list is a difference)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            _same_state_dict(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same_state_dict(x, y, f"{where}[{i}]")
    elif torch.is_tensor(a):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_optimizer_state_round_trips_exactly(small_trainer, tmp_path, optimizer):
    trainer = small_trainer(max_steps=6, optimizer=optimizer)
    trainer.fit(steps=3, progress=False)
    trainer.save(tmp_path / "ckpt")
    again = Trainer.load(tmp_path / "ckpt", device="cpu", text=TEXT)
    _same_state_dict(trainer.optimizer.state_dict(), again.optimizer.state_dict(), "state_dict")


def test_round_trip_check_can_fail():
    """The comparison above is strict about types: betas as a list is not betas as a tuple."""
    with pytest.raises(AssertionError, match="tuple != list"):
        _same_state_dict({"betas": (0.9, 0.99)}, {"betas": [0.9, 0.99]})


def test_gpt_and_the_embedding_module_refuse_bad_ids_in_the_same_words():
    from utils.embeddings import TokenAndPositionEmbedding

    bad = torch.tensor([[3, 25]])
    messages = []
    for module in (tiny(), TokenAndPositionEmbedding(vocab_size=20, d_model=16, context_length=16)):
        with pytest.raises(ValueError, match="Was the text encoded with a different tokenizer") as info:
            module(bad)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_tanh_gelu_differs_from_exact_gelu_as_lesson_05s_guide_says():
    """Guide 05: the tanh approximation differs from the exact GELU by at most 4.7e-4, near z = +-2.7."""
    z = torch.linspace(-10, 10, 200_001, dtype=torch.float64)
    gap = (torch.nn.functional.gelu(z, approximate="tanh") - torch.nn.functional.gelu(z)).abs()
    assert round(gap.max().item(), 5) == 0.00047
    assert abs(abs(z[gap.argmax()].item()) - 2.7) < 0.05
