"""Lesson 12's comparisons that the notebook does not run: what the loss mask, pre-training, the questions in
the pre-training text, DPO's beta and GRPO's KL term change, on held-out questions.

    python benchmarks/bench_assistant.py --only mask --save     # SFT with and without the mask (about 11 min)
    python benchmarks/bench_assistant.py --only scratch --save  # SFT of a model never pre-trained (about 3 min)
    python benchmarks/bench_assistant.py --only midtrain --save # without questions in pre-training (about 8 min)
    python benchmarks/bench_assistant.py --only beta --save     # DPO at four betas (about 5 min)
    python benchmarks/bench_assistant.py --only kl --save       # GRPO with and without its KL term (about 8 min)

Every part starts from the notebook's recipe: the base model of section 2 (pre-trained here once and kept
in runs/bench-assistant-base-<digest>, 5 minutes), SFT as in section 4 (1,500 steps), DPO as in section 5. Each
line gives greedy exact-match accuracy on the notebook's held-out questions (200 of each kind, 63 names)
with Wilson's 95 % interval. Accuracy does not depend on the machine's speed, so runs need not take turns;
the seconds are for scale only. Run it on an otherwise idle machine all the same.
"""

from __future__ import annotations

import copy
import hashlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import saved_output  # noqa: E402  (benchmarks/, beside this script)
import torch  # noqa: E402

from utils import set_seed, tasks  # noqa: E402
from utils.chat import accuracy  # noqa: E402
from utils.chat_template import add_chat_tokens  # noqa: E402
from utils.checkpoint import load_model  # noqa: E402
from utils.dpo import kl_to_reference, preference_pairs, train_dpo  # noqa: E402
from utils.grpo import train_grpo  # noqa: E402
from utils.metrics import wilson_interval  # noqa: E402
from utils.model import GPT, GPTConfig  # noqa: E402
from utils.sft import finetune  # noqa: E402
from utils.train import TrainConfig, Trainer  # noqa: E402

RUNS = Path(__file__).resolve().parents[1] / "runs"
BASE_CONFIG = GPTConfig(n_layer=4, n_head=4, n_embd=128, context_length=128, dropout=0.0, norm="rmsnorm",
                        mlp="swiglu", positions="rope", qk_norm=True)
PRETRAIN = TrainConfig(batch_size=8, max_steps=3000, lr=6e-3, min_lr=6e-4, warmup_steps=100, eval_interval=500,
                       optimizer="muon", final_eval_iters=50)
SFT_STEPS = 1500


def held_out() -> list:
    return [t for kind in tasks.KINDS for t in tasks.make_tasks(kind, "held_out")[:200]]


def sft_data() -> list:
    data = []
    for kind in tasks.KINDS:
        pool = tasks.make_tasks(kind, "train")
        n = 8 * len(pool) if kind == "name" else 2000
        data += (pool * (n // len(pool) + 1))[:n]
    return data


def base_model(qa_per_kind: int = 1000):
    """The notebook's base model and tokenizer (pre-trained once, then read from runs/; the folder is named
    by the corpus's digest, so a changed corpus is pre-trained afresh). qa_per_kind=0: a corpus without
    the questions and answers."""
    corpus = tasks.pretraining_text(qa_per_kind=qa_per_kind)
    base = RUNS / f"bench-assistant-base-{hashlib.sha256(corpus.encode()).hexdigest()[:8]}"
    if not base.exists():
        started = time.perf_counter()
        trainer = Trainer(BASE_CONFIG, PRETRAIN, device="cpu", text=corpus)
        trainer.fit(progress=False)
        trainer.save(base)
        print(f"[base] pre-trained {trainer.step} steps in {time.perf_counter() - started:.0f} s, "
              f"validation loss {trainer.history.eval_val[-1]:.3f}", flush=True)
    return load_model(base, device="cpu")


def row(label: str, table: dict, extra: str = "") -> None:
    cells = []
    for kind, (right, n) in table.items():
        low, high = wilson_interval(right, n)
        cells.append(f"{kind} {right:3d}/{n:<3d} {100 * right / n:5.1f}% [{100 * low:4.1f}, {100 * high:5.1f}]")
    print(f"  {label:<30} " + "  ".join(cells) + (f"  {extra}" if extra else ""), flush=True)


def sft(model, tok, mask_prompt: bool = True):
    history = finetune(model, tok, sft_data(), steps=SFT_STEPS, lr=2e-3, mask_prompt=mask_prompt, progress=False)
    return history.seconds


def bench_mask() -> None:
    base, char_tok = base_model()
    print(f"\n[mask] SFT {SFT_STEPS} steps from the same base model, the loss on the reply only or on every token")
    for label, mask in (("loss on the reply (masked)", True), ("loss on every token", False)):
        model, tok = add_chat_tokens(base, char_tok)
        seconds = sft(model, tok, mask)
        row(label, accuracy(model, tok, held_out()), f"{seconds:.0f} s")


def bench_scratch() -> None:
    base, char_tok = base_model()
    model, tok = add_chat_tokens(base, char_tok)
    set_seed(0)
    scratch = GPT(model.config)  # the same architecture and vocabulary, random weights
    print(f"\n[scratch] SFT {SFT_STEPS} steps, masked, of a model that was never pre-trained")
    seconds = sft(scratch, tok)
    row("no pre-training", accuracy(scratch, tok, held_out()), f"{seconds:.0f} s")


def bench_beta() -> None:
    base, char_tok = base_model()
    model, tok = add_chat_tokens(base, char_tok)
    sft(model, tok)
    reference = copy.deepcopy(model).eval()
    pairs = preference_pairs(model, tok, tasks.mixed_tasks("train", 250, seed=1), samples=8)
    kl_tasks = tasks.mixed_tasks("held_out", 40)
    print(f"\n[beta] DPO 150 steps from the SFT model ({len(pairs)} pairs, nll 1.0, lr 5e-5); KL per reply to the "
          "SFT model, on sampled replies to held-out questions")
    row("SFT (the reference)", accuracy(model, tok, held_out()))
    for beta in (0.03, 0.1, 0.3, 1.0):
        policy = copy.deepcopy(reference)
        history = train_dpo(policy, reference, tok, pairs, steps=150, beta=beta, lr=5e-5, nll=1.0, progress=False)
        margin = sum(history.margin[-10:]) / 10
        kl = kl_to_reference(policy, reference, tok, kl_tasks)
        row(f"beta {beta}", accuracy(policy, tok, held_out()), f"margin {margin:.3f}, KL {kl:.3f} nats, "
            f"{history.seconds:.0f} s")


def bench_midtrain() -> None:
    print(f"\n[midtrain] the same pre-training and SFT ({SFT_STEPS} steps), the corpus with and without its "
          "questions and answers (tasks.qa_text)")
    for label, qa in (("with questions (the notebook's)", 1000), ("facts and Shakespeare only", 0)):
        base, char_tok = base_model(qa)
        model, tok = add_chat_tokens(base, char_tok)
        seconds = sft(model, tok)
        row(label, accuracy(model, tok, held_out()), f"{seconds:.0f} s")


def bench_kl() -> None:
    base, char_tok = base_model()
    model, tok = add_chat_tokens(base, char_tok)
    sft(model, tok)
    reference = copy.deepcopy(model).eval()
    prompts = [t for t in tasks.mixed_tasks("train", 400, seed=2) if t.kind == "count"]
    kl_tasks = tasks.mixed_tasks("held_out", 40)
    print("\n[kl] GRPO 100 steps on training counts from the SFT model (16 questions x 8 samples, lr 2e-4), with "
          "and without the KL term; KL per reply to the SFT model, on sampled replies to held-out questions of "
          "every kind")
    row("SFT (the reference)", accuracy(model, tok, held_out()))
    for kl_weight in (0.0, 0.04, 0.2):
        policy = copy.deepcopy(reference)
        history = train_grpo(policy, reference, tok, prompts, steps=100, prompts_per_step=16, lr=2e-4, kl=kl_weight,
                             progress=False)
        kl = kl_to_reference(policy, reference, tok, kl_tasks)
        reward = sum(history.reward[-10:]) / 10
        row(f"kl {kl_weight}", accuracy(policy, tok, held_out()), f"reward {history.reward[0]:.2f} -> {reward:.2f}, "
            f"KL {kl:.3f} nats, {history.seconds:.0f} s")


BENCHES = {"mask": bench_mask, "scratch": bench_scratch, "midtrain": bench_midtrain, "beta": bench_beta,
           "kl": bench_kl}


def main() -> None:
    torch.set_num_threads(2)
    saved_output.main("bench_assistant", __doc__.splitlines()[0], BENCHES, list(BENCHES))


if __name__ == "__main__":
    main()
