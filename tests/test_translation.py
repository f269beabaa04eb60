"""Lesson 10's pipeline: the split, the vocabularies, the trainer's checkpoints, translating, the baselines."""

import json
import subprocess
import sys

import pytest
import torch

from utils import translation
from utils.transformer import BOS, EOS, PAD


@pytest.fixture(scope="module")
def pairs():
    return translation.load_pairs()


@pytest.fixture(scope="module")
def vocabularies(pairs):
    return translation.build_vocabularies(pairs.train[:3000], source_size=400)


def tiny(pairs, vocabularies, **settings):
    return translation.Trainer({"n_encoder": 1, "n_decoder": 1, "n_head": 2, "n_embd": 32, "dropout": 0.1},
                               translation.TrainSettings(**{"max_steps": 6, "eval_interval": 3, **settings}),
                               pairs=pairs, vocabularies=vocabularies)


def test_the_split_keeps_every_english_sentence_in_one_part(pairs):
    parts = [{english for english, _ in part} for part in pairs]
    assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
    assert (len(parts[1]), len(parts[2])) == (500, 1000)
    assert sum(map(len, pairs)) == 20_133
    assert len(pairs.test) >= 1000
    assert translation.load_pairs() == pairs  # seeded


def test_chinese_is_simplified():
    assert translation.to_simplified("我們這說") == "我们这说"
    raw, simple = translation.load_pairs(simplified=False), translation.load_pairs()
    assert [e for e, _ in raw.train] == [e for e, _ in simple.train]
    assert any("們" in z for _, z in raw.train) and not any("們" in z for _, z in simple.train)


@pytest.mark.parametrize("kind", ["bpe", "char"])
def test_vocabularies_round_trip_and_keep_the_special_ids(kind, pairs):
    texts = [z for _, z in pairs.train[:2000]]
    vocabulary = translation.Vocabulary.train(texts, kind, 400)
    sample = texts[123]
    ids = vocabulary.encode(sample)
    assert min(ids) >= translation.N_SPECIAL and vocabulary.decode(ids) == sample
    assert vocabulary.decode([BOS, *ids, EOS, PAD]) == sample
    again = translation.Vocabulary.from_dict(json.loads(json.dumps(vocabulary.to_dict())))
    assert again.encode(sample) == ids and again.vocab_size == vocabulary.vocab_size


def test_an_unseen_character_is_unknown():
    vocabulary = translation.Vocabulary.train(["我很好"], "char")
    assert vocabulary.encode("我很饿") == [vocabulary.char_ids["我"], vocabulary.char_ids["很"], translation.UNK]


def test_batches_cover_every_pair_once_and_respect_the_token_budget(pairs, vocabularies):
    encoded = translation.encode_pairs(pairs.train[:2000], *vocabularies, translation.CONTEXT)
    order = translation.batches(encoded, 600, __import__("random").Random(0))
    assert sorted(i for batch in order for i in batch) == list(range(len(encoded)))
    for batch in order:
        longest = max(len(encoded[i][0]) + len(encoded[i][1]) for i in batch)
        assert longest * len(batch) <= 600 or len(batch) == 1


def test_a_saved_run_resumes_exactly(pairs, vocabularies, tmp_path):
    straight = tiny(pairs, vocabularies)
    straight.fit(progress=False)
    halves = tiny(pairs, vocabularies)
    halves.fit(steps=3, progress=False)
    halves.save(tmp_path / "run")
    model, source, target = translation.load_model(tmp_path / "run")  # the weights for translating
    for name, p in model.state_dict().items():
        assert torch.equal(p, halves.model.state_dict()[name]), name
    assert source.to_dict() == vocabularies[0].to_dict() and target.to_dict() == vocabularies[1].to_dict()
    resumed = translation.Trainer.load(tmp_path / "run", pairs=pairs)
    resumed.fit(progress=False)
    assert resumed.history.train_loss == straight.history.train_loss
    assert resumed.history.val_loss == pytest.approx(straight.history.val_loss)


def test_a_damaged_or_foreign_checkpoint_says_so(pairs, vocabularies, tmp_path):
    trainer = tiny(pairs, vocabularies, max_steps=1)
    trainer.fit(progress=False)
    folder = trainer.save(tmp_path / "run")
    (folder / "config.json").write_text((folder / "config.json").read_text().replace('"step": 1', '"step": 2'))
    with pytest.raises(ValueError, match="SHA-256"):
        translation.load_model(folder)
    gpt = tmp_path / "gpt"
    gpt.mkdir()
    (gpt / "config.json").write_text(json.dumps({"version": 2, "model": {}}))
    with pytest.raises(ValueError, match="another model"):
        translation.load_model(gpt)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        translation.load_model(tmp_path / "nothing")


def test_translate_refuses_empty_and_overlong_input(pairs, vocabularies):
    model = tiny(pairs, vocabularies).model.eval()
    with pytest.raises(ValueError, match="empty"):
        translation.translate(model, *vocabularies, "   ")
    with pytest.raises(ValueError, match="shorter pieces"):
        translation.translate(model, *vocabularies, "word " * 80)
    assert isinstance(translation.translate(model, *vocabularies, "I am hungry.", beam_width=2), str)


def test_the_command_line_explains_a_missing_checkpoint(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:  # in this process: the same main() that python -m runs
        translation.main(["translate", "--checkpoint", str(tmp_path / "none"), "Hello."])
    error = capsys.readouterr().err
    assert stop.value.code == 2 and error.startswith("error:") and "no config.json" in error
    assert "Traceback" not in error


def test_retrieval_answers_with_the_nearest_training_sentence():
    train = [("I like cats.", "我喜欢猫。"), ("The train is late.", "火车晚点了。"), ("Good morning.", "早上好。")]
    retrieval = translation.Retrieval(train)
    assert retrieval.translate(["Is the train late?", "I like cats very much."]) == ["火车晚点了。", "我喜欢猫。"]


def test_the_decoder_only_line_learns_only_the_chinese(vocabularies):
    baseline = translation.DecoderOnly(*vocabularies, n_layer=1, n_head=2, n_embd=16)
    ids, targets = baseline.line("Hi.", "你好。")
    english, chinese = vocabularies
    prompt = [BOS, *english.encode("Hi."), baseline.sep]
    answer = [baseline.shift + i for i in chinese.encode("你好。")] + [baseline.shift + EOS]
    assert ids == (prompt + answer)[:-1]
    assert targets == [-100] * (len(prompt) - 1) + answer  # position t predicts token t + 1


def test_scores_use_every_reference():
    one = translation.scores(["我很好。"], [["我没事。"]])
    both = translation.scores(["我很好。"], [["我没事。", "我很好。"]])
    assert both["bleu"] == pytest.approx(100) and one["bleu"] < 50


def test_the_presets_are_valid_settings():
    for name, (model, settings) in translation.PRESETS.items():
        config = translation.TransformerConfig(source_vocab_size=100, target_vocab_size=100, **model)
        assert config.n_embd % config.n_head == 0, name
        translation.TrainSettings(**settings)
    with pytest.raises(ValueError, match="unknown preset"):
        translation.Trainer.from_preset("laptop")


def test_the_command_line_translates_and_refuses_an_empty_sentence(pairs, vocabularies, tmp_path, capsys):
    trainer = tiny(pairs, vocabularies, max_steps=1)
    trainer.fit(progress=False)
    folder = trainer.save(tmp_path / "run")
    command = [sys.executable, "-m", "utils.translation", "translate", "--checkpoint", str(folder), "--beam", "2"]
    ok = subprocess.run([*command, "I am hungry."], capture_output=True, text=True)  # python -m, for real
    assert ok.returncode == 0 and ok.stdout.startswith("I am hungry.\n  -> "), ok.stderr
    with pytest.raises(SystemExit) as stop:
        translation.main([*command[3:], " "])
    error = capsys.readouterr().err
    assert stop.value.code == 2 and error.startswith("error:") and "empty" in error
