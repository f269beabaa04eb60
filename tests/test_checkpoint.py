"""Nothing a learner trains is lost, and no file can crash the process (issue 13, points 1-11).

Each test names the point it covers. "Sent" files are made consistent with their manifest first
(`rehash`), as a file someone prepared on purpose would be, so the checks behind the manifest are
reached too.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from utils import checkpoint
from utils.char_tokenizer import CharTokenizer
from utils.course.cli import sample_main, train_main
from utils.generation import generate
from utils.model import GPT, GPTConfig
from utils.train import PRESETS, TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[1]
TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 40


def tiny_trainer(steps_done: int = 0, **train) -> Trainer:
    model_kw, train_kw = (dict(d) for d in PRESETS["tiny"])
    train_kw.update({"max_steps": 20, "eval_interval": 10, **train})
    trainer = Trainer(GPTConfig(**model_kw), TrainConfig(**train_kw), device="cpu", text=TEXT)
    if steps_done:
        trainer.fit(steps=steps_done, progress=False)
    return trainer


@pytest.fixture
def saved(tmp_path) -> Path:
    trainer = tiny_trainer(steps_done=4)
    return trainer.save(tmp_path / "ckpt")


def rehash(folder: Path) -> None:
    """Rewrite the manifest to match the files, as a doctored checkpoint someone sends would."""
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["sha256"] = {name: checkpoint.sha256_of(folder / name) for name in checkpoint.FILES
                          if (folder / name).is_file()}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def run_cli(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


# --- 1. a bad --out is found before the first step ------------------------------------------------

@pytest.mark.parametrize("kind", ["existing file", "under a file", "cannot be created"])
def test_1_bad_out_is_refused_before_training(tmp_path, capsys, kind):
    (tmp_path / "a_file").write_text("x")
    out = {"existing file": tmp_path / "a_file", "under a file": tmp_path / "a_file" / "run",
           "cannot be created": Path("/proc/llm-course-no-such-folder/run")}[kind]
    started = time.perf_counter()
    with pytest.raises(SystemExit) as stop:
        train_main(["--preset", "tiny", "--out", str(out), "--max-steps", "5000"])
    assert stop.value.code == 2
    captured = capsys.readouterr()
    assert "error: cannot save a checkpoint to" in captured.err
    assert "step " not in captured.out  # not a single training step ran
    assert time.perf_counter() - started < 30


# --- 2. an existing checkpoint is never overwritten silently ---------------------------------------

def test_2_running_again_without_resume_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    train_main(["--preset", "tiny", "--out", str(out), "--max-steps", "30", "--save-every", "0"])
    with pytest.raises(SystemExit) as stop:
        train_main(["--preset", "tiny", "--out", str(out), "--max-steps", "5"])
    assert stop.value.code == 2
    refusal = "holds a checkpoint already. Continue it with --resume, start again with --overwrite"
    assert refusal in capsys.readouterr().err
    assert checkpoint.read_meta(out)["step"] == 30  # untouched
    train_main(["--preset", "tiny", "--out", str(out), "--max-steps", "5", "--overwrite"])
    assert checkpoint.read_meta(out)["step"] == 5
    with pytest.raises(SystemExit):
        train_main(["--out", str(out), "--resume", "--overwrite"])
    assert "choose one" in capsys.readouterr().err


# --- 3. periodic saves and Ctrl-C ---------------------------------------------------------------

def test_3_fit_saves_periodically_and_at_the_end(tmp_path, monkeypatch):
    trainer = tiny_trainer()
    saves = []
    real_save = Trainer.save
    monkeypatch.setattr(Trainer, "save", lambda self, folder: saves.append(self.step) or real_save(self, folder))
    trainer.fit(steps=5, progress=False, save_to=tmp_path / "run", save_every=1e-9)
    assert saves == [1, 2, 3, 4, 5, 5]  # after every step (save_every tiny), then the final save
    assert checkpoint.read_meta(tmp_path / "run")["step"] == 5


def test_3_the_command_line_saves_every_minute_by_default():
    from utils.course import cli

    parser_defaults = {}
    original = cli._train
    try:
        cli._train = lambda args: parser_defaults.update(vars(args))
        train_main(["--preset", "tiny"])
    finally:
        cli._train = original
    assert parser_defaults["save_every"] == 60.0


def test_3_ctrl_c_saves_and_says_how_to_resume(tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "utils.train", "--preset", "tiny", "--max-steps", "1000000",
                                "--out", str(out), "--save-every", "0"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stdout:  # wait until training is under way (an evaluation every 25 steps)
            if line.startswith("step    25"):
                break
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted: saved" in stdout and f"python -m utils.train --out {out} --resume" in stdout
    step = checkpoint.read_meta(out)["step"]
    assert step >= 25
    resumed = Trainer.load(out, device="cpu")
    assert resumed.step == step


def test_3_interrupt_stops_after_a_whole_step():
    """The flag is read between steps, so the saved state is always that of a finished step."""
    trainer = tiny_trainer()

    def interrupt_at_step_3(t, losses):
        pass

    calls = []
    real_step = trainer.optimizer.step

    def step_then_interrupt(*a, **k):
        real_step(*a, **k)
        calls.append(1)
        if len(calls) == 3:
            signal.raise_signal(signal.SIGINT)

    trainer.optimizer.step = step_then_interrupt
    # Whatever handler was there is put back: Python's default one, or SIG_IGN when the tests run in a
    # background job of a shell without job control (which starts every process with SIGINT ignored).
    before = signal.getsignal(signal.SIGINT)
    trainer.fit(steps=10, progress=False, callback=interrupt_at_step_3)
    assert trainer.interrupted and trainer.step == 3 == len(trainer.history.train_loss)
    assert signal.getsignal(signal.SIGINT) is before


# --- 4. non-positive step counts ---------------------------------------------------------------

@pytest.mark.parametrize("flag,value", [("--steps", "0"), ("--steps", "-3"), ("--max-steps", "0"),
                                        ("--steps", "ten")])
def test_4_non_positive_steps_are_refused(tmp_path, capsys, flag, value):
    with pytest.raises(SystemExit) as stop:
        train_main(["--preset", "tiny", "--out", str(tmp_path / "run"), flag, value])
    assert stop.value.code == 2
    line = one_line_error(capsys.readouterr().err)
    assert flag in line
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="steps must be a positive number"):
        tiny_trainer().fit(steps=0, progress=False)


# --- 5. an optimizer file of the wrong shapes cannot corrupt memory --------------------------------

def test_5_wrong_shaped_optimizer_state_is_an_error_not_a_crash(tmp_path):
    out = tmp_path / "run"
    assert run_cli("utils.train", "--preset", "tiny", "--out", str(out), "--max-steps", "10").returncode == 0
    tensors = load_file(out / "optimizer.safetensors")
    for name in [n for n in tensors if n.endswith("exp_avg")]:
        tensors[name] = torch.zeros(3)  # far too small: the fused AdamW would write past it
    save_file(tensors, out / "optimizer.safetensors")
    config = json.loads((out / "config.json").read_text())
    config["train"]["max_steps"] = 20
    (out / "config.json").write_text(json.dumps(config))
    rehash(out)
    done = run_cli("utils.train", "--out", str(out), "--resume")
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])  # -11 would be the segfault
    line = one_line_error(done.stderr)
    assert "optimizer.safetensors" in line and "has shape (3,)" in line and "belongs to another model" in line


# --- 6. saves are atomic, and a mixed checkpoint is refused ----------------------------------------

def test_6_a_save_cut_short_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    trainer = tiny_trainer(steps_done=3)
    folder = trainer.save(tmp_path / "ckpt")
    trainer.fit(steps=3, progress=False)
    calls = []

    def fail_on_second_file(tensors, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        return save_file(tensors, path, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "save_file", fail_on_second_file)
    with pytest.raises(OSError, match="disk full"):
        trainer.save(folder)
    assert checkpoint.read_meta(folder)["step"] == 3  # the old checkpoint, whole
    assert Trainer.load(folder, device="cpu", text=TEXT).step == 3


def test_6_a_mixed_checkpoint_is_refused(tmp_path):
    trainer = tiny_trainer(steps_done=3)
    early = trainer.save(tmp_path / "early")
    trainer.fit(steps=3, progress=False)
    late = trainer.save(tmp_path / "late")
    shutil.copy(early / "model.safetensors", late / "model.safetensors")
    with pytest.raises(ValueError, match=r"model\.safetensors is not the file this checkpoint saved"):
        Trainer.load(late, device="cpu", text=TEXT)
    with pytest.raises(ValueError, match="not the file this checkpoint saved"):
        checkpoint.load_model(late)
    (early / "manifest.json").unlink()
    with pytest.raises(ValueError, match="has no manifest.json: its last save did not finish"):
        checkpoint.load_model(early)


# --- 7. damaged or wrong-typed files name themselves --------------------------------------------

def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _edit_config(change):
    def edit(path: Path) -> None:
        config = json.loads(path.read_text())
        change(config)
        path.write_text(json.dumps(config))
    return edit


DAMAGE = {
    "model truncated": ("model.safetensors", _truncate, r"model\.safetensors cannot be read as safetensors"),
    "model empty": ("model.safetensors", lambda p: p.write_bytes(b""), "cannot be read as safetensors"),
    "optimizer truncated": ("optimizer.safetensors", _truncate, r"optimizer\.safetensors cannot be read"),
    "config truncated": ("config.json", _truncate, r"config\.json cannot be read as JSON"),
    "config a list": ("config.json", lambda p: p.write_text("[1, 2]"), r"config\.json should hold a JSON object"),
    "no history": ("config.json", _edit_config(lambda c: c.pop("history")), r"config\.json has no 'history'"),
    "history key": ("config.json", _edit_config(lambda c: c["history"].pop("eval_val")),
                    r"has no 'history\.eval_val'"),
    "step a string": ("config.json", _edit_config(lambda c: c.update(step="4")), "step should be an integer, got .4."),
    "width a string": ("config.json", _edit_config(lambda c: c["model"].update(n_embd="32")),
                       r"model settings are not valid: GPTConfig\.n_embd must be an int, got '32'"),
    "lr a string": ("config.json", _edit_config(lambda c: c["train"].update(lr="fast")),
                    r"training settings are not valid: TrainConfig\.lr must be a float"),
    "unknown setting": ("config.json", _edit_config(lambda c: c["train"].update(learning_rate=1.0)),
                        r"unknown TrainConfig fields \['learning_rate'\]"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_7_damaged_files_give_an_error_that_names_them(saved, case):
    name, damage, message = DAMAGE[case]
    damage(saved / name)
    with pytest.raises(ValueError, match="is not the file this checkpoint saved"):  # the manifest sees it
        Trainer.load(saved, device="cpu", text=TEXT)
    rehash(saved)  # and when someone made the manifest agree, the file's own check does
    with pytest.raises(ValueError, match=message):
        Trainer.load(saved, device="cpu", text=TEXT)


def test_7_a_folder_where_a_file_belongs(saved):
    (saved / "model.safetensors").unlink()
    (saved / "model.safetensors").mkdir()
    with pytest.raises(ValueError, match=r"model\.safetensors is missing \(or not a file\)"):
        checkpoint.load_model(saved)


# --- 8. the tokenizer and the text belong to the checkpoint --------------------------------------

def test_8_a_swapped_tokenizer_is_refused(saved, tmp_path):
    chars = CharTokenizer.load(saved / "tokenizer.json").chars
    CharTokenizer(list(reversed(chars))).save(saved / "tokenizer.json")  # same size, other order
    with pytest.raises(ValueError, match=r"tokenizer\.json is not the file this checkpoint saved"):
        checkpoint.load_model(saved)
    CharTokenizer(chars[:-1]).save(saved / "tokenizer.json")
    rehash(saved)
    with pytest.raises(ValueError, match="this tokenizer belongs to another model"):
        checkpoint.load_model(saved)


def test_8_resuming_on_another_text_is_refused(saved):
    with pytest.raises(ValueError, match="was trained on a text of your own .* not on the text given now"):
        Trainer.load(saved, device="cpu", text=TEXT.upper().lower() + "x")
    assert Trainer.load(saved, device="cpu", text=TEXT).step == 4
    with pytest.raises(ValueError, match="not on the text given now"):
        Trainer.load(saved, device="cpu")  # default: Tiny Shakespeare


# --- 9. the sampling command: every bad argument one line ---------------------------------------

@pytest.mark.parametrize("args", [["--tokens", "0"], ["--tokens", "-5"], ["--tokens", "many"],
                                  ["--temperature", "nan"], ["--temperature", "-1"], ["--temperature", "inf"],
                                  ["--top-k", "0"], ["--top-p", "0"], ["--top-p", "1.5"], ["--top-p", "nan"]])
def test_9_bad_sampling_arguments_are_one_line_errors(saved, capsys, args):
    with pytest.raises(SystemExit) as stop:
        sample_main(["--checkpoint", str(saved), *args])
    assert stop.value.code == 2
    assert args[0] in one_line_error(capsys.readouterr().err)


def test_9_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        sample_main(["--checkpoint", str(tmp_path / "nothing")])
    assert "is not a checkpoint folder" in one_line_error(capsys.readouterr().err)


# --- 10. everyday mistakes between the tokenizer and generate ------------------------------------

def test_10_generate_takes_a_list_and_restores_the_mode():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, context_length=16, n_layer=1, n_head=2, n_embd=16))
    ids = [1, 2, 3]
    from_list = generate(model, ids, 5, temperature=0)
    assert torch.equal(from_list, generate(model, torch.tensor([ids]), 5, temperature=0))
    with pytest.raises(TypeError, match=r"token ids \(ints\), e\.g\. generate\(model, tok\.encode"):
        generate(model, ["ROMEO"], 5)
    with pytest.raises(TypeError, match="the prompt must be token ids"):
        generate(model, "ROMEO:", 5)
    model.train()
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]"):
        generate(model, ids, 5, top_p=2.0)  # raises inside the loop
    assert model.training, "generate left the model in eval mode after an error"
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        generate(model, ids, 5, temperature=float("nan"))


# --- 11. settings of the wrong type or out of range ----------------------------------------------

@pytest.mark.parametrize("field,value,message", [
    ("n_embd", "32", r"GPTConfig\.n_embd must be an int, got '32'"),
    ("n_layer", 2.5, r"GPTConfig\.n_layer must be an int, got 2\.5"),
    ("context_length", True, r"GPTConfig\.context_length must be an int, got True"),
    ("bias", 1, r"GPTConfig\.bias must be a bool"),
])
def test_11_model_settings_of_the_wrong_type(field, value, message):
    with pytest.raises(TypeError, match=message):
        GPTConfig(**{field: value})


@pytest.mark.parametrize("field,value,message", [
    ("batch_size", 0, r"batch_size must be >= 1"), ("eval_interval", 0, r"eval_interval must be >= 1"),
    ("max_steps", -1, r"max_steps must be >= 1"), ("lr", 0.0, r"lr must be > 0"),
    ("lr", float("nan"), r"lr must be > 0"), ("optimizer", "sgd", "'adamw' or 'muon'"),
])
def test_11_training_settings_out_of_range(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


def test_11_unknown_training_settings_are_not_dropped():
    with pytest.raises(ValueError, match=r"unknown TrainConfig fields \['batchsize'\]"):
        TrainConfig.from_dict({"batchsize": 4})
