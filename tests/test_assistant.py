"""Lesson 12's pieces: the tasks and their grader, the chat template, and the three losses that turn a
language model into an assistant (SFT, DPO, GRPO), each checked against its formula written out."""

import math
import re

import pytest
import torch
import torch.nn.functional as F

from utils import tasks
from utils.chat import answer, generate_until_end
from utils.chat_template import (
    ASSISTANT,
    END,
    USER,
    ChatTokenizer,
    encode_chat,
    prompt_ids,
    render,
    reply_example,
    sft_example,
    trim_history,
)
from utils.checkpoint import tokenizer_from_file
from utils.dpo import dpo_loss, sequence_log_probs
from utils.generation import generate
from utils.grpo import group_advantages, grpo_loss, token_log_probs
from utils.metrics import pass_at_k, wilson_interval
from utils.model import GPT, GPTConfig
from utils.sft import finetune, pad_batch

CHARS = "\n !'+,.:=?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@pytest.fixture(scope="module")
def tok():
    return ChatTokenizer.train(CHARS)


def tiny_model(tok, seed=0, context_length=64):
    torch.manual_seed(seed)
    config = GPTConfig(vocab_size=tok.vocab_size, context_length=context_length, n_layer=1, n_head=2, n_embd=16,
                       dropout=0.0)
    return GPT(config).eval()


# --- tasks -------------------------------------------------------------------------------------------

def _content(task):
    """What a question is about: the unordered pair, the word or the name."""
    if task.kind == "add":
        return frozenset(int(x) for x in re.findall(r"\d+", task.prompt))
    if task.kind == "reverse":
        return task.prompt.split(": ")[1]
    if task.kind == "count":
        return re.findall(r"'(\w+)'", task.prompt)[1]
    return task.answer  # word and name: the word or name to complete


@pytest.mark.parametrize("kind", tasks.KINDS)
def test_train_and_held_out_share_no_content(kind):
    train = {_content(t) for t in tasks.make_tasks(kind, "train")}
    held = {_content(t) for t in tasks.make_tasks(kind, "held_out")}
    assert train and held and not train & held


def test_a_word_held_out_of_one_kind_is_held_out_of_all():
    words = ("reverse", "count", "word")
    train = {_content(t) for kind in words for t in tasks.make_tasks(kind, "train")}
    held = {_content(t) for kind in words for t in tasks.make_tasks(kind, "held_out")}
    assert not train & held


def test_every_word_prefix_names_one_frequent_word():
    frequent = tasks.shakespeare_words()
    for word, prefix in tasks.word_prefixes():
        assert len(word) - len(prefix) >= 2 and [w for w in frequent if w.startswith(prefix)] == [word]


def test_answers_are_right():
    for t in tasks.make_tasks("add", "held_out", n=50):
        a, b = map(int, re.findall(r"\d+", t.prompt))
        assert t.answer == str(a + b)
    for t in tasks.make_tasks("count", "train", n=50):
        letter, word = re.findall(r"'(\w+)'", t.prompt)
        assert t.answer == str(word.count(letter))
    for t in tasks.make_tasks("reverse", "train", n=50):
        assert t.answer == t.prompt.split(": ")[1][::-1]


def test_the_split_and_order_do_not_change_between_calls():
    assert tasks.make_tasks("reverse", "held_out", n=5) == tasks.make_tasks("reverse", "held_out", n=5)
    assert tasks.make_tasks("reverse", "held_out", n=5, seed=1) != tasks.make_tasks("reverse", "held_out", n=5)
    # another seed reorders the same questions; it never moves one across the split
    assert set(tasks.make_tasks("add", "held_out", seed=1)) == set(tasks.make_tasks("add", "held_out"))


def test_every_speaker_prefix_names_exactly_one_speaker():
    prefixes = tasks.speaker_prefixes()
    names = [n for n, _ in prefixes]
    assert len(prefixes) > 100
    for name, prefix in prefixes:
        assert len(prefix) < len(name) and [n for n in names if n.startswith(prefix)] == [name]


def test_the_pretraining_text_holds_the_training_facts_and_no_held_out_one():
    text = tasks.pretraining_text()
    assert "\nGLOUCESTER:\n" in text  # Tiny Shakespeare is all there
    lines = set(text.splitlines())
    for t in tasks.make_tasks("add", "train", n=20):
        assert f"{t.prompt[8:-1]} = {t.answer}" in lines
    for t in tasks.make_tasks("add", "held_out"):
        assert f"{t.prompt[8:-1]} = {t.answer}" not in lines
    for t in tasks.make_tasks("reverse", "held_out"):
        assert f"{t.prompt.split(': ')[1]} backwards is {t.answer}" not in lines


def test_the_pretraining_questions_are_training_questions_with_their_answers():
    text = tasks.pretraining_text()
    for kind in tasks.KINDS:
        for t in tasks.make_tasks(kind, "train", n=5):
            assert f"Q: {t.prompt}\nA: {t.answer}" in text  # the first per_kind of each kind are in it
        for t in tasks.make_tasks(kind, "held_out"):
            assert f"Q: {t.prompt}\n" not in text, t
    blocks = tasks.qa_text()
    assert len(blocks) == 4 * 1000 + 8 * len(tasks.make_tasks("name", "train"))
    assert "Q: " not in tasks.pretraining_text(qa_per_kind=0)


@pytest.mark.parametrize("style", ["facts", "qa"])
def test_raw_answer_reads_back_what_raw_prompt_asks(style):
    for kind in tasks.KINDS:
        t = tasks.make_tasks(kind, "held_out", n=1)[0]
        text, stop, start = tasks.raw_prompt(t, style)
        continuation = t.answer.removeprefix(start) + stop + "more text"
        assert tasks.grade(kind, tasks.raw_answer(t, continuation, style), t.answer), (kind, text)
        assert not tasks.grade(kind, tasks.raw_answer(t, "9" + stop, style), t.answer)
    with pytest.raises(ValueError, match="choose 'facts' or 'qa'"):
        tasks.raw_prompt(t, "chat")


@pytest.mark.parametrize(("kind", "response", "answer", "right"), [
    ("add", "83", "83", True),
    ("add", " 83\n", "83", True),  # only surrounding space is forgiven
    ("add", "083", "83", False),
    ("add", "83.", "83", False),
    ("add", "8 3", "83", False),
    ("add", "eighty-three", "83", False),
    ("add", "83 83", "83", False),
    ("reverse", "Eltneg", "eltneg", False),  # case is part of a reversed word
    ("name", "gloucester", "GLOUCESTER", True),  # names are capitals in the text; the case is not the answer
    ("name", "GLOUCESTE", "GLOUCESTER", False),
    ("count", "", "0", False),
])
def test_the_grader_forgives_only_what_it_should(kind, response, answer, right):
    assert tasks.grade(kind, response, answer) is right


def test_bad_task_requests_say_what_to_do():
    with pytest.raises(ValueError, match="choose one of"):
        tasks.make_tasks("multiply", "train")
    with pytest.raises(ValueError, match="choose one of"):
        tasks.make_tasks("add", "test")
    with pytest.raises(ValueError, match="at most"):
        tasks.make_tasks("name", "held_out", n=10_000)


# --- confidence intervals and pass@k -----------------------------------------------------------------

def test_wilson_interval_against_its_closed_form_and_its_edges():
    low, high = wilson_interval(40, 50)
    assert (round(low, 4), round(high, 4)) == (0.6696, 0.8876)  # the textbook values for 80 % of 50
    assert wilson_interval(0, 50)[0] == 0.0 and wilson_interval(0, 50)[1] > 0.05
    assert wilson_interval(50, 50)[1] == 1.0 and wilson_interval(50, 50)[0] < 0.95
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_pass_at_k_is_the_chance_that_k_of_the_n_samples_hold_a_right_one():
    assert pass_at_k(10, 0, 3) == 0.0 and pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    # by enumeration: 2 right of 5, draws of 2 without replacement: 1 - C(3,2)/C(5,2) = 0.7
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - math.comb(3, 2) / math.comb(5, 2))
    assert pass_at_k(5, 4, 2) == 1.0  # any 2 of 5 hold one of the 4 right ones
    with pytest.raises(ValueError):
        pass_at_k(4, 2, 5)


# --- the chat template -------------------------------------------------------------------------------

def test_special_tokens_are_one_id_each_and_typed_text_never_becomes_one(tok):
    assert tok.vocab_size == len(set(CHARS)) + 3
    ids = tok.encode(f"{USER}hi{END}")
    assert ids == [tok.id_of(USER), *tok.encode_text("hi"), tok.id_of(END)]
    assert tok.decode(ids) == f"{USER}hi{END}"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode_text(END)  # '<' and '|' are not characters of this vocabulary


def test_render_and_encode_agree_and_only_the_assistant_is_learned(tok):
    messages = [{"role": "user", "content": "What is 2 + 3?"}, {"role": "assistant", "content": "5"},
                {"role": "user", "content": "And 4 + 4?"}, {"role": "assistant", "content": "8"}]
    assert render(messages) == f"{USER}What is 2 + 3?{END}{ASSISTANT}5{END}{USER}And 4 + 4?{END}{ASSISTANT}8{END}"
    ids, learn = encode_chat(tok, messages)
    assert tok.decode(ids) == render(messages)
    learned = "".join(tok.decode([i]) for i, keep in zip(ids, learn, strict=True) if keep)
    assert learned == f"5{END}8{END}"
    assert tok.decode(prompt_ids(tok, messages[:1])) == f"{USER}What is 2 + 3?{END}{ASSISTANT}"


def test_sft_example_targets_are_the_next_tokens_of_the_reply_only(tok):
    inputs, targets = sft_example(tok, "What is 2 + 3?", "5")
    ids, _ = encode_chat(tok, [{"role": "user", "content": "What is 2 + 3?"}, {"role": "assistant", "content": "5"}])
    assert inputs == ids[:-1]
    assert [t for t in targets if t != -100] == tok.encode_text("5") + [tok.id_of(END)]
    assert targets[-2:] == ids[-2:]
    _, everything = sft_example(tok, "What is 2 + 3?", "5", mask_prompt=False)
    assert everything == ids[1:]


def test_trim_history_drops_the_oldest_turns_first_and_says_how_many(tok):
    messages = []
    for i in range(6):
        messages += [{"role": "user", "content": f"What is {i} + {i}?"}, {"role": "assistant", "content": str(2 * i)}]
    messages.append({"role": "user", "content": "What is 9 + 9?"})
    kept, dropped = trim_history(tok, messages, context_length=64, reply_tokens=8)
    assert kept == messages[dropped:] and dropped % 2 == 0 and dropped > 0
    assert len(prompt_ids(tok, kept)) <= 64 - 8 < len(prompt_ids(tok, messages[dropped - 2:]))
    assert trim_history(tok, messages[-3:], 64, 8) == (messages[-3:], 0)
    with pytest.raises(ValueError, match="shorter"):
        trim_history(tok, [{"role": "user", "content": "a" * 80}], 64, 8)


def test_the_chat_tokenizer_saves_loads_and_is_recognised(tok, tmp_path):
    tok.save(tmp_path / "tokenizer.json")
    back = tokenizer_from_file(tmp_path / "tokenizer.json")
    assert isinstance(back, ChatTokenizer) and back.chars == tok.chars and back.specials == tok.specials
    assert back.encode(f"{USER}hi") == tok.encode(f"{USER}hi")


def test_bad_messages_are_refused_clearly(tok):
    with pytest.raises(ValueError, match="'role'"):
        render([{"role": "system", "content": "hi"}])
    with pytest.raises(TypeError):
        render("hi")


# --- answering ---------------------------------------------------------------------------------------

def test_greedy_replies_match_generate_and_do_not_depend_on_the_batch(tok):
    model = tiny_model(tok)
    questions = ["What is 2 + 3?", "What is 12 + 30?", "Reverse the word: king", "What is 7 + 1?"]
    prompts = [prompt_ids(tok, [{"role": "user", "content": q}]) for q in questions]
    together = generate_until_end(model, tok, prompts, max_new_tokens=10)
    for p, reply in zip(prompts, together, strict=True):
        alone = generate(model, p, 10, temperature=0)[0, len(p):].tolist()  # lesson 07's generate, no stop
        end = tok.id_of(END)
        assert reply == (alone[:alone.index(end)] if end in alone else alone)
        assert generate_until_end(model, tok, [p], max_new_tokens=10) == [reply]
    assert answer(model, tok, questions[:2]) == [tok.decode(r) for r in generate_until_end(model, tok, prompts[:2])]


def test_a_prompt_that_leaves_no_room_for_the_reply_is_refused(tok):
    model = tiny_model(tok, context_length=32)
    with pytest.raises(ValueError, match="do not fit"):
        answer(model, tok, ["What is 12 + 30? " * 2])


# --- SFT ---------------------------------------------------------------------------------------------

def test_padding_is_neither_read_nor_learned(tok):
    model = tiny_model(tok)
    examples = [sft_example(tok, "What is 2 + 3?", "5"), sft_example(tok, "Reverse the word: king", "gnik")]
    inputs, targets = pad_batch(examples, tok.id_of(END))
    assert inputs.shape == targets.shape and (targets[0, len(examples[0][0]):] == -100).all()
    # the loss of the padded batch is the loss of the two examples' reply tokens, computed one by one
    losses = []
    for x, y in examples:
        logits = model(torch.tensor([x]))[0][0]
        keep = torch.tensor(y) != -100
        losses.append(F.cross_entropy(logits[keep], torch.tensor(y)[keep], reduction="sum"))
    n = int((targets != -100).sum())
    torch.testing.assert_close(model(inputs, targets)[1], sum(losses) / n)


def test_finetuning_lowers_the_loss_on_the_replies(tok):
    model = tiny_model(tok)
    train = tasks.make_tasks("add", "train", n=64)
    examples = [sft_example(tok, t.prompt, t.answer) for t in train]
    inputs, targets = pad_batch(examples, tok.id_of(END))
    before = model(inputs, targets)[1].item()
    history = finetune(model, tok, train, steps=60, batch_size=16, lr=3e-3, progress=False)
    after = model(inputs, targets)[1].item()
    assert len(history.loss) == 60 and after < before - 0.5


# --- DPO ---------------------------------------------------------------------------------------------

def test_sequence_log_probs_sum_the_reply_tokens_only(tok):
    model = tiny_model(tok)
    x, y = sft_example(tok, "What is 2 + 3?", "5")
    logp = F.log_softmax(model(torch.tensor([x]))[0][0], -1)
    by_hand = sum(logp[t, tok_id] for t, tok_id in enumerate(y) if tok_id != -100)
    torch.testing.assert_close(sequence_log_probs(model, torch.tensor([x]), torch.tensor([y]))[0], by_hand)


def test_dpo_loss_by_its_formula():
    pw, pl, rw, rl = torch.tensor([-1.0, -3.0]), torch.tensor([-2.0, -1.0]), torch.tensor([-1.5, -2.0]),\
        torch.tensor([-1.5, -2.0])
    loss, margin = dpo_loss(pw, pl, rw, rl, beta=0.5)
    expected_margin = 0.5 * torch.tensor([(-1.0 + 1.5) - (-2.0 + 1.5), (-3.0 + 2.0) - (-1.0 + 2.0)])
    torch.testing.assert_close(margin, expected_margin)
    torch.testing.assert_close(loss, torch.log1p(torch.exp(-expected_margin)).mean())
    # at the start the policy is the reference: every margin is 0 and the loss is log 2
    same = torch.tensor([-2.0, -4.0])
    assert dpo_loss(same, same + 1, same, same + 1, beta=0.1)[0].item() == pytest.approx(math.log(2))


def test_a_dpo_step_raises_the_chosen_reply_against_the_rejected_one(tok):
    import copy

    policy = tiny_model(tok)
    reference = copy.deepcopy(policy)
    xw, yw = (torch.tensor([v]) for v in sft_example(tok, "What is 2 + 3?", "5"))
    xl, yl = (torch.tensor([v]) for v in sft_example(tok, "What is 2 + 3?", "6"))
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.5)
    for _ in range(5):
        with torch.no_grad():
            ref_w, ref_l = sequence_log_probs(reference, xw, yw), sequence_log_probs(reference, xl, yl)
        loss, _ = dpo_loss(sequence_log_probs(policy, xw, yw), sequence_log_probs(policy, xl, yl), ref_w, ref_l,
                           beta=0.1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        gap_after = sequence_log_probs(policy, xw, yw) - sequence_log_probs(policy, xl, yl)
        gap_before = sequence_log_probs(reference, xw, yw) - sequence_log_probs(reference, xl, yl)
    assert gap_after.item() > gap_before.item() + 0.1


# --- GRPO --------------------------------------------------------------------------------------------

def test_group_advantages_are_centred_and_scaled_per_group():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0]])
    a = group_advantages(rewards)
    torch.testing.assert_close(a.mean(1), torch.zeros(3), atol=1e-6, rtol=0)
    # [1, 0, 0, 1]: mean 0.5, sample variance (4 * 0.25) / 3, so A = +-0.5 / sqrt(1/3) = +-0.866
    torch.testing.assert_close(a[0], torch.tensor([1.0, -1.0, -1.0, 1.0]) * 0.75 ** 0.5, atol=1e-3, rtol=0)
    assert (a[1] == 0).all()  # all right: nothing to learn from this group
    # [0, 0, 0, 1]: mean 0.25, sample variance (3 * 0.0625 + 0.5625) / 3 = 0.25, so A = -0.5 and 1.5
    torch.testing.assert_close(a[2], torch.tensor([-0.5, -0.5, -0.5, 1.5]), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="group of at least 2"):
        group_advantages(torch.ones(4, 1))


def test_grpo_loss_by_its_formula():
    torch.manual_seed(0)
    new, old, ref = torch.randn(3, 4) * 0.1 - 1, torch.randn(3, 4) * 0.1 - 1, torch.randn(3, 4) * 0.1 - 1
    adv = torch.tensor([1.0, -0.5, 2.0])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    loss, kl = grpo_loss(new, old, ref, adv, mask, clip=0.05, kl=0.1)
    total = 0.0
    for i in range(3):
        terms = []
        for t in range(4):
            if mask[i, t]:
                r, a = math.exp((new[i, t] - old[i, t]).item()), adv[i].item()
                surrogate = min(r * a, min(max(r, 0.95), 1.05) * a)
                q = (ref[i, t] - new[i, t]).item()
                terms.append(-surrogate + 0.1 * (math.exp(q) - q - 1))
        total += sum(terms) / len(terms)
    assert loss.item() == pytest.approx(total / 3, rel=1e-5)
    assert kl.item() >= 0
    # the policy where it sampled and at the reference: the loss is minus the mean advantage, the KL 0
    loss, kl = grpo_loss(old, old, old, adv, mask)
    assert loss.item() == pytest.approx(-adv.mean().item(), rel=1e-6) and kl.item() == pytest.approx(0, abs=1e-7)


def test_reply_example_learns_the_reply_and_its_end_only(tok):
    prompt, end = [5, 6, 7], tok.id_of(END)
    x, y = reply_example(prompt, [1, 2], end, max_new_tokens=4)
    assert x == [5, 6, 7, 1, 2] and y == [-100, -100, 1, 2, end]
    x, y = reply_example(prompt, [1, 2, 3, 4], end, max_new_tokens=4)  # cut off: no <|end|> to learn
    assert y == [-100, -100, 1, 2, 3, 4]
    model = tiny_model(tok)
    logp = token_log_probs(model, torch.tensor([x]), torch.tensor([y]))
    assert (logp[0, :2] == 0).all() and (logp[0, 2:] < 0).all()


# --- saving an assistant -------------------------------------------------------------------------------

def test_a_model_for_use_saves_loads_and_cannot_be_resumed(tok, tmp_path):
    from utils.checkpoint import load_model, read_meta, save_model
    from utils.train import Trainer

    model = tiny_model(tok)
    save_model(tmp_path / "assistant", model, tok, notes={"made by": "a test"})
    back, back_tok = load_model(tmp_path / "assistant")
    assert isinstance(back_tok, ChatTokenizer) and read_meta(tmp_path / "assistant")["notes"] == {"made by": "a test"}
    x = torch.tensor([tok.encode("What is 2 + 3?")])
    torch.testing.assert_close(back(x)[0], model(x)[0])
    with pytest.raises(ValueError, match="load_model"):
        Trainer.load(tmp_path / "assistant")
    (tmp_path / "assistant" / "tokenizer.json").write_text("{}")
    with pytest.raises(ValueError, match="SHA-256"):
        load_model(tmp_path / "assistant")


# --- registering the template in a base model, talking to it ---------------------------------------------

def test_adding_the_chat_tokens_keeps_the_base_model_and_its_ids():
    from utils.char_tokenizer import CharTokenizer
    from utils.chat_template import add_chat_tokens

    base_tok = CharTokenizer.train(CHARS)
    torch.manual_seed(0)
    base = GPT(GPTConfig(vocab_size=base_tok.vocab_size, context_length=32, n_layer=1, n_head=2, n_embd=16)).eval()
    grown, tok = add_chat_tokens(base, base_tok)
    assert tok.vocab_size == base_tok.vocab_size + 3 and tok.encode_text("hi") == base_tok.encode("hi")
    x = torch.tensor([base_tok.encode("What is 2 + 3?")])
    with torch.no_grad():
        torch.testing.assert_close(grown(x)[0][..., :base_tok.vocab_size], base(x)[0])  # old ids: the same scores
        mean = base.tok_emb.weight.mean(0)
        torch.testing.assert_close(grown.tok_emb.weight[tok.id_of(END)], mean)
    with pytest.raises(ValueError, match="already"):
        add_chat_tokens(grown, tok)


def test_a_conversation_refuses_bad_messages_without_losing_its_history(tok):
    from utils.char_tokenizer import CharTokenizer
    from utils.chat import Conversation, check_has_chat_template

    talk = Conversation(tiny_model(tok), tok)
    talk.say("What is 2 + 3?")
    before = list(talk.messages)
    for bad, message in (("", "empty"), ("   ", "empty"), ("What is 2 * 3?", "not in the vocabulary")):
        with pytest.raises(ValueError, match=message):
            talk.say(bad)
        assert talk.messages == before
    for i in range(6):
        talk.say(f"What is {i} + {i}?")
    assert talk.dropped > 0 and len(talk.messages) == 14  # all kept; only the prompt was trimmed
    with pytest.raises(ValueError, match="no chat template"):
        check_has_chat_template(CharTokenizer.train(CHARS))


def test_the_chat_command_answers_once_and_explains_a_base_checkpoint(tok, tmp_path, capsys):
    from utils.char_tokenizer import CharTokenizer
    from utils.chat import main
    from utils.checkpoint import save_model

    model = tiny_model(tok)
    save_model(tmp_path / "assistant", model, tok)
    assert main(["--checkpoint", str(tmp_path / "assistant"), "What is 2 + 3?"]) == 0
    assert capsys.readouterr().out.strip() == answer(model, tok, ["What is 2 + 3?"])[0].strip()
    assert main(["--checkpoint", str(tmp_path / "assistant"), " "]) == 2
    assert "empty" in capsys.readouterr().out
    base_tok = CharTokenizer.train(CHARS)
    save_model(tmp_path / "base", GPT(replace_vocab(model.config, base_tok.vocab_size)), base_tok)
    assert main(["--checkpoint", str(tmp_path / "base"), "hi"]) == 2
    assert "no chat template" in capsys.readouterr().out
    assert main(["--checkpoint", str(tmp_path / "nothing"), "hi"]) == 2
    assert "not a checkpoint folder" in capsys.readouterr().out


def replace_vocab(config, vocab_size):
    from dataclasses import replace

    return replace(config, vocab_size=vocab_size)


def test_the_chat_box_transcript_escapes_text_and_greys_what_the_model_no_longer_sees():
    from utils.views.chat_box import transcript_html

    page = transcript_html([{"role": "user", "content": "<b>hi</b>"}, {"role": "assistant", "content": ""},
                            {"role": "user", "content": "again"}], dropped=2)
    assert "&lt;b&gt;hi&lt;/b&gt;" in page and "<b>hi</b>" not in page
    assert page.count("opacity:0.45") == 2 and "(an empty reply)" in page


def test_a_reply_that_starts_another_turn_is_cut_there(tok, monkeypatch):
    import utils.chat as chat

    talk = chat.Conversation(tiny_model(tok), tok)
    made_up = tok.encode_text("5") + [tok.id_of(USER)] + tok.encode_text("hi")
    monkeypatch.setattr(chat, "generate_until_end", lambda *args, **kwargs: [made_up])
    assert talk.say("What is 2 + 3?") == "5"
    assert talk.say("And 3 + 3?") == "5"  # the history (with the cut reply) encodes again
