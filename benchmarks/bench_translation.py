"""Measure the choices of lesson 10's translation preset on this machine and print the figures.

    python benchmarks/bench_translation.py --only size        # tokens per second, 128 against 256 dims (1 min)
    python benchmarks/bench_translation.py --only smoothing   # the cpu preset with and without label smoothing
    python benchmarks/bench_translation.py --only chinese     # Chinese characters against Chinese BPE
    python benchmarks/bench_translation.py --only smoothing --save   # also write benchmarks/results/...

1. size: training steps of the cpu preset's model (3 + 3 blocks, 128 dims) and of the same model at
   256 dims, on the same batches, the two taking turns step by step; real (not padding) tokens per
   second of each, and the ratio.
2. smoothing: the whole cpu preset trained twice, with label smoothing 0.1 (the paper's) and 0 (the preset); the
   validation loss (plain cross-entropy) and greedy BLEU and chrF on the 1,000 test sentences.
3. chinese: the cpu preset with Chinese characters (the preset) and with a Chinese BPE of 3,000 tokens,
   each for the preset's steps; validation loss is per token and so not comparable; BLEU and chrF are.
Run it on an otherwise idle machine. `--save` writes what it prints to benchmarks/results/, with the
date, cores, threads and load: the lesson quotes those files (`<!--bench:bench_translation_smoothing-->`).
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import saved_output  # noqa: E402  (benchmarks/, beside this script)

from utils import translation  # noqa: E402
from utils.transformer import Transformer, TransformerConfig  # noqa: E402


def _test_set(pairs):
    references = {}
    for english, chinese in pairs.test:
        references.setdefault(english, []).append(chinese)
    return list(references), list(references.values())


def train_and_score(name: str, pairs, **overrides) -> dict:
    trainer = translation.Trainer.from_preset("cpu", pairs=pairs, **overrides)
    history = trainer.fit(progress=False)
    english, references = _test_set(pairs)
    out = translation.translate_all(trainer.model, trainer.source, trainer.target, english)
    score = translation.scores(out, references)
    print(f"[{name}] {trainer.step} steps, {history.seconds:.0f} s, {history.tokens_per_second():,.0f} tokens/s, "
          f"val loss {history.val_loss[-1]:.3f}, greedy BLEU {score['bleu']:.2f}, chrF {score['chrf']:.2f}",
          flush=True)
    return score


def bench_size() -> None:
    pairs = translation.load_pairs()
    source, target = translation.build_vocabularies(pairs.train)
    encoded = translation.encode_pairs(pairs.train, source, target, translation.CONTEXT)
    order = translation.batches(encoded, translation.TrainSettings().batch_tokens, random.Random(0))
    models = {}
    for width in (128, 256):
        torch.manual_seed(0)
        model = Transformer(TransformerConfig(source.vocab_size, target.vocab_size, translation.CONTEXT, 3, 3, 4,
                                              width, 0.1)).train()
        models[width] = (model, torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True))
    seconds, tokens = {128: 0.0, 256: 0.0}, {128: 0, 256: 0}
    for i, index in enumerate(order[:60]):
        src, tin, tout = translation.to_tensors(encoded, index, "cpu")
        for width in (128, 256) if i % 2 == 0 else (256, 128):  # taking turns: drift hits both alike
            model, optimizer = models[width]
            began = time.perf_counter()
            _, loss = model(src, tin, tout, label_smoothing=0.1)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if i >= 5:  # the first steps warm up the allocator
                seconds[width] += time.perf_counter() - began
                tokens[width] += int((src != 0).sum() + (tout != 0).sum())
    rate = {w: tokens[w] / seconds[w] for w in seconds}
    for width in (128, 256):
        print(f"[size] {width} dims: {models[width][0].num_parameters():,} parameters, {rate[width]:,.0f} tokens/s "
              f"({1000 * seconds[width] / 55:.0f} ms per step)")
    print(f"[size] 128 dims read {rate[128] / rate[256]:.1f} times as many tokens per second as 256 dims")


def bench_smoothing() -> None:
    pairs = translation.load_pairs()
    with_it = train_and_score("label smoothing 0.1", pairs, label_smoothing=0.1)
    without = train_and_score("label smoothing 0", pairs, label_smoothing=0.0)  # the preset
    print(f"[smoothing] BLEU {with_it['bleu']:.2f} with, {without['bleu']:.2f} without; "
          f"chrF {with_it['chrf']:.2f} with, {without['chrf']:.2f} without")


def bench_chinese() -> None:
    pairs = translation.load_pairs()
    characters = train_and_score("Chinese characters", pairs)
    bpe = train_and_score("Chinese BPE 3,000", pairs, target_kind="bpe")
    print(f"[chinese] BLEU {characters['bleu']:.2f} with characters, {bpe['bleu']:.2f} with BPE")


BENCHES = {"size": bench_size, "smoothing": bench_smoothing, "chinese": bench_chinese}


def main() -> None:
    saved_output.main("bench_translation", __doc__.splitlines()[0], BENCHES)


if __name__ == "__main__":
    main()
