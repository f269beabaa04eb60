"""Tests for utils/bert.py: the offline BERT loaders, batching, training, prediction, saving, attentions.

The packaged MiniLM is loaded once per module; training is tested on a tiny random BERT so the file
stays fast.
"""

from __future__ import annotations

import os
import re
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # these tests must never reach the network

import pytest  # noqa: E402
import torch  # noqa: E402
from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerBase  # noqa: E402

from utils import bert, set_seed  # noqa: E402

TEXTS = ["Free entry in a weekly competition! Text WIN to 80086 now.", "Ok, see you at lunch."]


@pytest.fixture(scope="module")
def tokenizer():
    return bert.load_tokenizer()


@pytest.fixture(scope="module")
def classifier():
    set_seed(0)
    return bert.load_classifier(labels=["ham", "spam"])


@pytest.fixture(scope="module")
def eager_classifier():
    set_seed(0)
    return bert.load_classifier(attentions=True)


@pytest.fixture
def offline(monkeypatch):
    """Make sure the Hub is not asked, even if huggingface_hub was imported before HF_HUB_OFFLINE was set."""
    import huggingface_hub.constants as constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.delenv(bert.BERT_ENV, raising=False)


def tiny_model(seed=0, num_labels=2):
    """A 2-layer BERT with 32-dim vectors on the real vocabulary: trains in a blink."""
    set_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=num_labels)
    return BertForSequenceClassification(config)


# --- loading ---------------------------------------------------------------------------------------


def test_loads_offline_with_the_right_classes(tokenizer, classifier):
    assert isinstance(tokenizer, PreTrainedTokenizerBase)
    assert type(tokenizer).__name__.startswith("BertTokenizer")
    assert tokenizer.vocab_size == 30522 and tokenizer.pad_token_id == 0
    assert isinstance(classifier, BertForSequenceClassification)
    assert classifier.config.num_labels == 2 and classifier.config.id2label == {0: "ham", 1: "spam"}
    assert (classifier.config.num_hidden_layers, classifier.config.hidden_size) == (6, 384)
    assert not classifier.training


def test_default_head_has_two_labels(offline):
    set_seed(0)
    assert bert.load_classifier().config.num_labels == 2


def test_made_up_name_gives_a_helpful_message(offline):
    name = "no-such-user/made-up-bert-for-the-course"
    with pytest.raises(bert.ModelNotAvailable) as info:
        bert.load_classifier(name)
    message = str(info.value)
    assert name in message and "HF_HUB_OFFLINE" in message
    assert "leave the name out" in message and "packaged MiniLM" in message
    with pytest.raises(bert.ModelNotAvailable, match="made-up-bert"):
        bert.load_tokenizer(name)


def test_the_environment_variable_chooses_the_model(offline, monkeypatch):
    monkeypatch.setenv(bert.BERT_ENV, "no-such-user/from-the-environment")
    with pytest.raises(bert.ModelNotAvailable, match="from-the-environment"):
        bert.load_tokenizer()
    assert bert.resolve_name("explicit") == "explicit"  # an argument wins over the variable


def test_missing_folder_says_it_is_not_a_saved_model(offline, tmp_path):
    with pytest.raises(bert.ModelNotAvailable, match="no such folder"):
        bert.load_classifier(tmp_path / "nothing-here")
    with pytest.raises(bert.ModelNotAvailable, match="exists but is not a saved model"):
        bert.load_classifier(tmp_path)


def test_random_classifier_has_the_same_shape_but_new_weights(classifier):
    set_seed(0)
    scratch = bert.random_classifier()
    assert scratch.config.hidden_size == classifier.config.hidden_size
    assert bert.count_parameters(scratch) == bert.count_parameters(classifier)
    word = "bert.embeddings.word_embeddings.weight"
    assert not torch.equal(scratch.state_dict()[word], classifier.state_dict()[word])


# --- batches ---------------------------------------------------------------------------------------


def test_pad_batch_pads_to_the_longest_and_masks_the_padding():
    batch = bert.pad_batch([[101, 7, 102], [101, 102], [101, 5, 6, 8, 102]], pad_id=0)
    assert batch["input_ids"].shape == (3, 5) and batch["attention_mask"].shape == (3, 5)
    assert batch["input_ids"][1].tolist() == [101, 102, 0, 0, 0]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["attention_mask"].dtype == torch.long


def test_truncate_ids_cuts_like_the_tokenizer_and_keeps_sep(tokenizer):
    text = "Pre-training reads a great deal of ordinary text and hides some of the words."
    whole = tokenizer(text)["input_ids"]
    for max_length in (2, 5, 9, len(whole), len(whole) + 3):
        assert bert.truncate_ids(whole, max_length) == tokenizer(text, truncation=True, max_length=max_length)[
            "input_ids"]
    with pytest.raises(ValueError, match=">= 2"):
        bert.truncate_ids(whole, 1)


def test_pad_batch_with_max_length_truncates_then_pads_to_the_longest():
    batch = bert.pad_batch([[101, 5, 6, 7, 8, 102], [101, 102]], pad_id=0, max_length=4)
    assert batch["input_ids"].tolist() == [[101, 5, 6, 102], [101, 102, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    short = bert.pad_batch([[101, 5, 102], [101, 102]], pad_id=0, max_length=10)  # nothing to cut: no extra padding
    assert short["input_ids"].shape == (2, 3)


def test_attention_mask_from_ids():
    ids = torch.tensor([[101, 5, 102, 0], [101, 102, 0, 0]])
    assert bert.attention_mask_from_ids(ids, 0).tolist() == [[1, 1, 1, 0], [1, 1, 0, 0]]


def test_make_batches_dynamic_padding(tokenizer):
    pairs = [("short", 0), ("a somewhat longer message than the first one", 1), ("mid length text", 0)] * 5
    batches = bert.make_batches(pairs, tokenizer, batch_size=4)
    assert [len(b["labels"]) for b in batches] == [4, 4, 4, 3]
    lengths = [len(ids) for ids in tokenizer([t for t, _ in pairs])["input_ids"]]
    for i, b in enumerate(batches):
        n = b["input_ids"].shape[1]
        assert n == max(lengths[4 * i: 4 * i + 4])  # padded to this batch's longest, not to 128
        assert b["attention_mask"].sum(1).tolist() == lengths[4 * i: 4 * i + 4]
        assert (b["input_ids"][b["attention_mask"] == 0] == tokenizer.pad_token_id).all()
        assert b["labels"].tolist() == [label for _, label in pairs[4 * i: 4 * i + 4]]


def test_bucketing_keeps_every_example_once_and_pads_less(tokenizer):
    pairs = [("word " * (i % 17 + 1), i % 2) for i in range(200)]
    plain = bert.make_batches(pairs, tokenizer, batch_size=8, shuffle=True, seed=1)
    bucketed = bert.make_batches(pairs, tokenizer, batch_size=8, shuffle=True, bucket=True, seed=1)
    padding = [sum(int((b["attention_mask"] == 0).sum()) for b in batches) for batches in (plain, bucketed)]
    assert padding[1] < padding[0] / 4
    order = bert.batch_order([len(t) for t, _ in pairs], 8, shuffle=True, bucket=True, seed=1)
    assert sorted(i for batch in order for i in batch) == list(range(200))


def test_bucketing_within_labels_keeps_each_batchs_mix_and_still_pads_little():
    # Length goes with the label, as in SMS spam: label 1 is long, label 0 short; one in five is 1.
    labels = [int(i % 5 == 0) for i in range(400)]
    lengths = [(40 if y else 10) + i % 7 for i, y in enumerate(labels)]
    plain = bert.batch_order(lengths, 20, shuffle=True, bucket=True, seed=3)
    mixed = bert.batch_order(lengths, 20, shuffle=True, bucket=True, seed=3, labels=labels)
    assert sorted(i for b in mixed for i in b) == list(range(400))
    share = [sum(labels[i] for i in b) / len(b) for b in mixed]
    assert min(share) >= 0.15 and max(share) <= 0.25  # 4 of 20 in every batch, give or take rounding
    assert any(sum(labels[i] for i in b) == 0 for b in plain)  # plain bucketing makes one-label batches
    spread = [max(lengths[i] for i in b if labels[i] == y) - min(lengths[i] for i in b if labels[i] == y)
              for b in mixed for y in (0, 1)]
    assert max(spread) <= 2  # within each label, a batch holds neighbours in length
    with pytest.raises(ValueError, match="pass bucket=True"):
        bert.batch_order(lengths, 20, labels=labels)
    with pytest.raises(ValueError, match="one label per example"):
        bert.batch_order(lengths, 20, bucket=True, labels=labels[:-1])


def test_max_length_truncates(tokenizer):
    batch = bert.make_batches([("word " * 500, 1)], tokenizer, max_length=128)[0]
    assert batch["input_ids"].shape == (1, 128)
    assert batch["input_ids"][0, -1].item() == tokenizer.sep_token_id  # [SEP] is kept at the end


# --- predicting, evaluating, saving ----------------------------------------------------------------


def test_predict_returns_labels_and_probabilities(classifier, tokenizer):
    labels, probs = bert.predict(classifier, tokenizer, TEXTS)
    assert len(labels) == 2 and set(labels) <= {0, 1}
    assert probs.shape == (2, 2)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2))
    assert labels == probs.argmax(-1).tolist()
    assert bert.predict(classifier, tokenizer, TEXTS[0]).probabilities.shape == (1, 2)


def test_evaluate_keeps_the_order_of_the_pairs(classifier, tokenizer):
    pairs = [(TEXTS[1], 0), (TEXTS[0], 1), ("hi", 0)]
    result = bert.evaluate(classifier, tokenizer, pairs)
    one_by_one = torch.cat([bert.predict(classifier, tokenizer, [t]).probabilities for t, _ in pairs])
    torch.testing.assert_close(result.probabilities, one_by_one, atol=1e-5, rtol=1e-4)
    assert result.labels == [0, 1, 0] and 0 <= result.accuracy <= 1 and result.loss > 0


def test_save_and_load_give_identical_logits(classifier, tokenizer, tmp_path):
    folder = bert.save_classifier(classifier, tokenizer, tmp_path / "spam-bert")
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    again = bert.load_classifier(folder)
    tokenizer_again = bert.load_tokenizer(folder)
    assert again.config.id2label == {0: "ham", 1: "spam"}
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    assert torch.equal(batch["input_ids"], tokenizer_again(TEXTS, padding=True, return_tensors="pt")["input_ids"])
    with torch.no_grad():
        assert torch.equal(classifier(**batch).logits, again(**batch).logits)


# --- attentions ------------------------------------------------------------------------------------


def test_attentions_come_back_with_eager(eager_classifier, tokenizer):
    tokens, weights = bert.attention_weights(eager_classifier, tokenizer, "The animal was tired.")
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert weights.shape == (6, 12, len(tokens), len(tokens))
    torch.testing.assert_close(weights.sum(-1), torch.ones(6, 12, len(tokens)))


def test_attentions_need_eager(classifier, tokenizer):
    with pytest.raises(ValueError, match="eager"):
        bert.attention_weights(classifier, tokenizer, "hello")


def test_cls_vectors(classifier, tokenizer):
    vectors = bert.cls_vectors(classifier, tokenizer, TEXTS + ["hi"])
    assert vectors.shape == (3, 384)
    batch = tokenizer(["hi"], return_tensors="pt")
    with torch.no_grad():
        expected = classifier.bert(**batch).last_hidden_state[0, 0]
    torch.testing.assert_close(vectors[2], expected, atol=1e-5, rtol=1e-4)


def test_mean_vectors_average_the_real_tokens_only(classifier, tokenizer):
    texts = ["hi", "a much longer text, so that the first one is padded in the batch"]
    vectors = bert.mean_vectors(classifier, tokenizer, texts)
    assert vectors.shape == (2, 384)
    for row, text in zip(vectors, texts, strict=True):  # each text alone: no padding at all
        with torch.no_grad():
            alone = classifier.bert(**tokenizer([text], return_tensors="pt")).last_hidden_state[0].mean(0)
        torch.testing.assert_close(row, alone, atol=1e-5, rtol=1e-4)
    assert bert.mean_vectors(classifier, tokenizer, []).shape == (0, 384)


# --- bad input: a clear error at the call the learner made -----------------------------------------


def test_no_texts_give_empty_results_and_an_empty_text_is_read(classifier, tokenizer):
    labels, probs = bert.predict(classifier, tokenizer, [])
    assert labels == [] and probs.shape == (0, 2)
    assert bert.cls_vectors(classifier, tokenizer, []).shape == (0, 384)
    assert bert.encode_texts(tokenizer, []) == [] and bert.make_batches([], tokenizer) == []
    assert bert.encode_texts(tokenizer, [""]) == [[tokenizer.cls_token_id, tokenizer.sep_token_id]]
    assert bert.predict(classifier, tokenizer, ["", "hi"]).probabilities.shape == (2, 2)


def test_texts_must_be_strings(classifier, eager_classifier, tokenizer):
    with pytest.raises(TypeError, match=r"texts\[0\] is \('hi', 0\), a tuple, not a string.*evaluate"):
        bert.predict(classifier, tokenizer, [("hi", 0)])
    with pytest.raises(TypeError, match=r"got one string, 'hello'. For one text, pass \[text\]"):
        bert.encode_texts(tokenizer, "hello")  # used to encode each character as a text
    with pytest.raises(TypeError, match="reads one text, a string"):
        bert.attention_weights(eager_classifier, tokenizer, ["a", "b"])


@pytest.mark.parametrize("max_length", [513, 1000])
def test_max_length_beyond_the_model_is_refused(classifier, tokenizer, max_length):
    pairs = [("hi", 0), ("hello there", 1)]
    calls = [lambda: bert.encode_texts(tokenizer, ["hi"], max_length=max_length),
             lambda: bert.make_batches(pairs, tokenizer, max_length=max_length),
             lambda: bert.predict(classifier, tokenizer, ["hi"], max_length=max_length),
             lambda: bert.evaluate(classifier, tokenizer, pairs, max_length=max_length),
             lambda: bert.cls_vectors(classifier, tokenizer, ["hi"], max_length=max_length),
             lambda: bert.mean_vectors(classifier, tokenizer, ["hi"], max_length=max_length)]
    for call in calls:
        with pytest.raises(ValueError, match=rf"max_length={max_length} is too long: .*at most 512 tokens.*"
                                             r"Pass max_length=512 or less"):
            call()
    with pytest.raises(ValueError, match=r"model.config.max_position_embeddings=512"):
        bert.predict(classifier, tokenizer, ["hi"], max_length=max_length)
    with pytest.raises(ValueError, match=r"at most 128 tokens \(model.config.max_position_embeddings=128\)"):
        bert.train_classifier(tiny_model(), tokenizer, pairs, max_length=200, progress=False)


def test_max_length_up_to_the_model_still_works(classifier, tokenizer):
    assert bert.predict(classifier, tokenizer, ["hi"], max_length=512).probabilities.shape == (1, 2)
    assert bert.encode_texts(tokenizer, ["hello world"], max_length=2) == [[tokenizer.cls_token_id,
                                                                          tokenizer.sep_token_id]]


@pytest.mark.parametrize("max_length", [1, 0, -5])
def test_max_length_needs_room_for_cls_and_sep(classifier, tokenizer, max_length):
    with pytest.raises(ValueError, match=rf"max_length={max_length} leaves no room.*\[CLS\].*\[SEP\].*at least 2"):
        bert.encode_texts(tokenizer, ["hi"], max_length=max_length)
    with pytest.raises(ValueError, match="at least 2"):
        bert.predict(classifier, tokenizer, ["hi"], max_length=max_length)


def test_attention_weights_refuses_a_text_longer_than_the_model(eager_classifier, tokenizer):
    with pytest.raises(ValueError, match=r"the text is 602 tokens long .* at most 512 tokens.*shorter piece"):
        bert.attention_weights(eager_classifier, tokenizer, "word " * 600)


@pytest.mark.parametrize("label, why", [
    (2, r"has the label 2, but labels must be the ints 0\.\.1: the model has num_labels=2 classes"),
    (-1, r"has the label -1, which is negative.*num_labels=2"),
    (1.0, r"has the label 1\.0, a float.*num_labels=2.*int\(label\)"),
    ("spam", r"has the label 'spam', a str.*num_labels=2.*label2id"),
])
def test_labels_must_be_classes_of_the_model(classifier, tokenizer, label, why):
    pairs = [("hi", 0), ("hello there", label)]
    with pytest.raises(ValueError, match=r"^pairs\[1\] " + why):
        bert.evaluate(classifier, tokenizer, pairs)
    model = tiny_model()
    with pytest.raises(ValueError, match=r"^train_pairs\[1\] " + why):
        bert.train_classifier(model, tokenizer, pairs, progress=False)
    with pytest.raises(ValueError, match=r"^val_pairs\[1\] " + why):
        bert.train_classifier(model, tokenizer, [("hi", 0)], val_pairs=pairs, progress=False)
    if label != 2:  # without a model, make_batches knows only that a label is an int >= 0
        with pytest.raises(ValueError, match=r"^pairs\[1\] has the label"):
            bert.make_batches(pairs, tokenizer)


def test_integer_labels_of_any_kind_are_kept(tokenizer):
    import numpy as np

    pairs = [("a", np.int64(1)), ("b", True), ("c", torch.tensor(0))]
    assert bert.make_batches(pairs, tokenizer)[0]["labels"].tolist() == [1, 1, 0]


@pytest.mark.parametrize("pairs, why", [
    (["a text", "another text"], r"\[0\] is a bare text, 'a text', not a \(text, label\) pair"),
    (("a text", 1), r"got one pair, \('a text', 1\)\. Put it in a list: \[\(text, label\)\]"),
    ("a text", r"got one string, 'a text'"),
    ([(1, "a text")], r"written \(label, text\)\? The text comes first"),
    ([("a", 0, "b")], r"\[0\] is \('a', 0, 'b'\), not a \(text, label\) pair"),
    ({"a text": 1}, r"got a dict\. If it maps texts to labels, pass list\((train_)?pairs\.items\(\)\)"),
])
def test_pairs_must_be_a_list_of_text_label_pairs(classifier, tokenizer, pairs, why):
    form = r"\[\(text, label\), \.\.\.\]"
    for call in (lambda: bert.make_batches(pairs, tokenizer), lambda: bert.evaluate(classifier, tokenizer, pairs),
                 lambda: bert.train_classifier(tiny_model(), tokenizer, pairs, progress=False)):
        with pytest.raises(TypeError, match=form) as info:
            call()
        assert re.search(why, str(info.value)), str(info.value)


@pytest.mark.parametrize("arguments, why", [
    ({"epochs": 0}, r"epochs=0: epochs must be > 0.*call evaluate"),
    ({"epochs": -1}, r"epochs=-1: epochs must be > 0"),
    ({"epochs": float("inf")}, r"epochs=inf: .*max_seconds"),
    ({"lr": 0}, r"lr \(the learning rate\) must be a positive number \(the recipe uses 5e-05\), got 0"),
    ({"lr": -1e-5}, r"lr \(the learning rate\) must be a positive number"),
    ({"batch_size": 0}, r"batch_size must be a positive whole number .*got 0"),
    ({"batch_size": -8}, r"batch_size must be a positive whole number .*got -8"),
])
def test_training_refuses_non_positive_epochs_lr_and_batch_size(tokenizer, arguments, why):
    model = tiny_model()
    before = model.classifier.weight.clone()
    with pytest.raises(ValueError, match=why):
        bert.train_classifier(model, tokenizer, [("good", 1), ("bad", 0)], progress=False, **arguments)
    assert torch.equal(model.classifier.weight, before)  # refused before any step


def test_reading_and_batching_refuse_a_non_positive_batch_size(classifier, tokenizer):
    with pytest.raises(ValueError, match="batch_size must be a positive whole number"):
        bert.predict(classifier, tokenizer, ["hi"], batch_size=0)
    with pytest.raises(ValueError, match="batch_size must be a positive whole number"):
        bert.make_batches([("hi", 0)], tokenizer, batch_size=0)


# --- training --------------------------------------------------------------------------------------


def test_training_learns_a_toy_task(tokenizer):
    torch.set_num_threads(1)
    pairs = [("great wonderful film", 1), ("awful boring mess", 0), ("wonderful acting", 1), ("boring plot", 0)] * 8
    model = tiny_model()
    before = bert.evaluate(model, tokenizer, pairs).loss
    history = bert.train_classifier(model, tokenizer, pairs, epochs=10, lr=1e-2, batch_size=8, progress=False)
    assert history.steps == 40 == history.planned_steps and len(history.losses) == 40
    assert history.examples == 320 and not history.stopped_by_time and not model.training
    after = bert.evaluate(model, tokenizer, pairs)
    assert after.loss < before / 2 and after.accuracy == 1.0


def test_training_stops_at_max_steps_and_max_seconds(tokenizer):
    pairs = [("good", 1), ("bad", 0)] * 16
    history = bert.train_classifier(tiny_model(), tokenizer, pairs, epochs=5, max_steps=3, batch_size=4,
                                    progress=False)
    assert history.steps == 3
    history = bert.train_classifier(tiny_model(), tokenizer, pairs, max_seconds=0.0, progress=False)
    assert history.steps == 0 and history.stopped_by_time
    history = bert.train_classifier(tiny_model(), tokenizer, pairs, max_seconds=60, max_steps=5, batch_size=4,
                                    val_pairs=pairs[:4], progress=False)
    assert history.steps == 5 and len(history.val_accuracy) == 1


def test_val_every_records_a_curve_from_step_0_and_the_clock_stops_while_it_evaluates(tokenizer, monkeypatch):
    pairs = [("good", 1), ("bad", 0)] * 16
    history = bert.train_classifier(tiny_model(), tokenizer, pairs, epochs=2, batch_size=4, val_pairs=pairs[:4],
                                    val_every=3, progress=False)
    assert [steps for _, steps, _ in history.val_curve] == [0, 3, 6, 9, 12, 15, 16]
    assert all(0.0 <= accuracy <= 1.0 for _, _, accuracy in history.val_curve)
    assert [t for t, _, _ in history.val_curve] == sorted(t for t, _, _ in history.val_curve)
    real_evaluate = bert.evaluate

    def slow_evaluate(*args, **kwargs):  # an evaluation that takes far longer than the training budget
        time.sleep(0.3)
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(bert, "evaluate", slow_evaluate)
    began = time.perf_counter()
    history = bert.train_classifier(tiny_model(), tokenizer, pairs, epochs=1000, max_seconds=0.4, batch_size=4,
                                    val_pairs=pairs[:4], val_every=10, progress=False)
    wall = time.perf_counter() - began
    evaluations = len(history.val_curve) + len(history.val_accuracy)
    assert history.stopped_by_time and history.seconds >= 0.4  # the whole budget went to training,
    assert history.seconds <= wall - 0.3 * evaluations + 0.05  # and none of the evaluations' time counted


@pytest.mark.parametrize("val_every, val_pairs, says", [
    (0, [("good", 1)], "whole number of steps"), (2.5, [("good", 1)], "whole number of steps"),
    (5, None, "needs val_pairs"),
])
def test_val_every_is_checked(tokenizer, val_every, val_pairs, says):
    with pytest.raises(ValueError, match=says):
        bert.train_classifier(tiny_model(), tokenizer, [("good", 1)], val_pairs=val_pairs, val_every=val_every,
                              progress=False)


def test_linear_decay():
    assert [bert.linear_decay(s, 4) for s in range(6)] == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]


def test_mask_tokens_follows_the_bert_recipe(tokenizer):
    ids = torch.tensor([[tokenizer.cls_token_id] + [2000 + i % 500 for i in range(4000)] + [tokenizer.sep_token_id]])
    corrupted, labels = bert.mask_tokens(ids, tokenizer, generator=torch.Generator().manual_seed(0))
    chosen = labels != -100
    assert not chosen[0, 0] and not chosen[0, -1]  # [CLS] and [SEP] are never chosen
    assert 0.13 < chosen.float().mean() < 0.17
    assert torch.equal(labels[chosen], ids[chosen])
    masked = (corrupted == tokenizer.mask_token_id)[chosen].float().mean()
    kept = (corrupted == ids)[chosen].float().mean()
    assert 0.75 < masked < 0.85 and 0.06 < kept < 0.15
    assert torch.equal(corrupted[~chosen], ids[~chosen])


def test_mask_token_ids_makes_exactly_the_three_documented_draws():
    ids = torch.tensor([[101, 7, 8, 9, 10, 102, 0, 0], [101, 11, 12, 13, 14, 15, 16, 102]])
    special = [0, 101, 102, 103]
    corrupted, labels = bert.mask_token_ids(ids, special, 103, 50, 0.5, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    choose, kind, random_ids = torch.rand(ids.shape, generator=g), torch.rand(ids.shape, generator=g), \
        torch.randint(50, ids.shape, generator=g)
    for b in range(2):
        for i in range(8):
            token = ids[b, i].item()
            if token in special or choose[b, i] >= 0.5:
                assert (corrupted[b, i], labels[b, i]) == (token, -100)
            else:
                shown = 103 if kind[b, i] < 0.8 else random_ids[b, i] if kind[b, i] < 0.9 else token
                assert (corrupted[b, i], labels[b, i]) == (shown, token)
    assert ids[0, :6].tolist() == [101, 7, 8, 9, 10, 102]  # the input is left alone
    assert corrupted.dtype == labels.dtype == torch.long


def test_mask_token_ids_agrees_with_the_rates_of_transformers_data_collator(tokenizer):
    """transformers' DataCollatorForLanguageModeling documents the same rule (15% chosen, 80% [MASK],
    10% random, 10% kept, special tokens never, labels -100 elsewhere) with draws of its own: the
    shares must agree within the noise of 40,000 tokens."""
    from transformers import DataCollatorForLanguageModeling

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(2000, 3000, (100, 400), generator=g)
    ids[:, 0], ids[:, -1], ids[:, -50:-1] = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    ours = bert.mask_tokens(ids, tokenizer, generator=g)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=0)
    batch = collator.torch_mask_tokens(ids.clone(), special_tokens_mask=torch.isin(
        ids, torch.tensor(tokenizer.all_special_ids)))
    for corrupted, labels in (ours, batch):
        chosen = labels != -100
        assert not chosen[:, 0].any() and not chosen[:, -50:].any()  # [CLS], [SEP] and padding never
        assert torch.equal(labels[chosen], ids[chosen]) and torch.equal(corrupted[~chosen], ids[~chosen])
    shares = []
    for corrupted, labels in (ours, batch):
        chosen = labels != -100
        masked = (corrupted == tokenizer.mask_token_id)[chosen].float().mean()
        kept = (corrupted == ids)[chosen].float().mean()
        shares.append(torch.tensor([chosen[:, 1:-50].float().mean(), masked, kept]))
    assert torch.allclose(shares[0], torch.tensor([0.15, 0.8, 0.1]), atol=0.02)
    assert torch.allclose(shares[0], shares[1], atol=0.02)


def test_mask_token_ids_refuses_bad_input():
    with pytest.raises(TypeError, match="int64"):
        bert.mask_token_ids(torch.zeros(2, 3), [0], 103, 10)
    with pytest.raises(ValueError, match="from 0 to 1"):
        bert.mask_token_ids(torch.zeros(2, 3, dtype=torch.long), [0], 103, 10, probability=1.5)


def test_mean_pool_averages_the_real_tokens_only():
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(3, 5, 4, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]])
    by_loop = torch.stack([hidden[b, : int(mask[b].sum())].mean(0) for b in range(3)])
    torch.testing.assert_close(bert.mean_pool(hidden, mask), by_loop)
    noisy = hidden.masked_fill(mask[..., None] == 0, 1e6)  # what sits in the padding does not matter
    torch.testing.assert_close(bert.mean_pool(noisy, mask), by_loop)
    with pytest.raises(ValueError, match="no real token"):
        bert.mean_pool(hidden, torch.zeros(3, 5, dtype=torch.long))


def test_fit_linear_probe_equals_sgd_on_a_zero_initialised_linear_layer():
    g = torch.Generator().manual_seed(1)
    features = torch.randn(20, 6, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 3, (20,), generator=g)
    weight, bias = bert.fit_linear_probe(features, labels, 3, steps=25, lr=0.7)
    layer = torch.nn.Linear(6, 3).double()  # an independent route: autograd and torch.optim
    torch.nn.init.zeros_(layer.weight)
    torch.nn.init.zeros_(layer.bias)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.7)
    for _ in range(25):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(layer(features), labels).backward()
        optimizer.step()
    torch.testing.assert_close(weight, layer.weight.detach())
    torch.testing.assert_close(bias, layer.bias.detach())


def test_fit_linear_probe_separates_separable_classes_and_refuses_bad_input():
    g = torch.Generator().manual_seed(2)
    labels = torch.arange(40) % 2
    features = torch.randn(40, 3, generator=g) + 3 * labels[:, None].float()
    weight, bias = bert.fit_linear_probe(features, labels, 2, steps=200, lr=0.5)
    assert ((features @ weight.T + bias).argmax(-1) == labels).all()
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.1"):
        bert.fit_linear_probe(features, labels + 1, 2, steps=1, lr=0.1)
    with pytest.raises(ValueError, match="int64 tensor of shape"):
        bert.fit_linear_probe(features, labels.float(), 2, steps=1, lr=0.1)
