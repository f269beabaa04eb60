"""Time the fine-tuning runs of lesson 08 and print their metrics.

    python benchmarks/bench_bert.py                        # every run (about 12 min on 2 idle cores)
    python benchmarks/bench_bert.py --runs sms_balanced    # one run
    python benchmarks/bench_bert.py --threads 1            # one thread: faster on a busy machine
    python benchmarks/bench_bert.py --runs sst2,sst2_scratch --save race   # the race lesson 08 quotes,
                                           # also written to benchmarks/results/bench_bert_race.txt

Runs (notebook 08's recipe: AdamW with a linearly decaying learning rate, batch 32, seed 0):
    sms_balanced   SMS spam, Raschka's protocol (747 + 747, 70/10/20), 1 epoch, lr 5e-5, cut at 128
                   tokens, batches bucketed within labels
    sms_full       SMS spam, all 5,574 messages (13% spam), stratified 70/10/20, half an epoch, lr 1e-4,
                   cut at 64 tokens, random batches
    sst2           SST-2 sentences, pretrained MiniLM, 0.85 epoch, lr 1e-4 with a 10% warm-up, batches
                   bucketed by length
    sst2_scratch   SST-2, the same architecture from random initialisation, the same training time as
                   sst2 (or --scratch-seconds), at each --scratch-lr (default 1e-4, sst2's rate)
    Both SST-2 runs also report their validation accuracy on 200 validation sentences every 30 steps
    (evaluation time does not count as training time).
    sst2_bow       SST-2, bag of words (TF-IDF of words and word pairs) + logistic regression

Every line reports test accuracy, F1 of the positive class, optimizer steps and seconds. Nothing is
downloaded (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import saved_output  # noqa: E402  (benchmarks/, beside this script)
import torch  # noqa: E402

from utils import bert, data, metrics, set_seed  # noqa: E402

RUNS = ["sms_balanced", "sms_full", "sst2", "sst2_scratch", "sst2_bow"]


def line(name: str, labels, predictions, steps=None, seconds=None) -> str:
    s = metrics.scores(labels, predictions)
    cost = f" | {steps} steps in {seconds:.0f} s" if steps is not None else ""
    return f"{name:<28} test accuracy {100 * s.accuracy:6.2f}% | F1 {s.f1:.4f}{cost}"


def finetune(name: str, splits, epochs: float, tokenizer, **kwargs):
    set_seed(0)
    model = kwargs.pop("model", None) or bert.load_classifier()
    history = bert.train_classifier(model, tokenizer, splits.train, epochs=epochs, progress=False, **kwargs)
    result = bert.evaluate(model, tokenizer, splits.test)
    print(line(name, result.labels, result.predictions, history.steps, history.seconds), flush=True)
    if history.val_curve:
        print(f"  validation accuracy ({len(kwargs['val_pairs'])} sentences) along the way: "
              + ", ".join(f"{100 * a:.0f}% at {t:.0f} s" for t, _, a in history.val_curve), flush=True)
    return history


def bag_of_words(splits) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    x_train = vectorizer.fit_transform([t for t, _ in splits.train])
    y_train = [y for _, y in splits.train]
    best = max((LogisticRegression(C=c, max_iter=2000).fit(x_train, y_train).score(
        vectorizer.transform([t for t, _ in splits.val]), [y for _, y in splits.val]), c) for c in (1, 3, 10, 30))
    model = LogisticRegression(C=best[1], max_iter=2000).fit(x_train, y_train)
    predictions = model.predict(vectorizer.transform([t for t, _ in splits.test])).tolist()
    print(line(f"sst2_bow (C={best[1]})", [y for _, y in splits.test], predictions, 0,
               time.perf_counter() - start), flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, from {RUNS}")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--scratch-seconds", type=float, default=None,
                        help="time budget of sst2_scratch (default: what sst2 took)")
    parser.add_argument("--scratch-lr", default="1e-4", help="comma-separated learning rates for sst2_scratch")
    parser.add_argument("--save", metavar="NAME",
                        help="also write the output to benchmarks/results/bench_bert_NAME.txt")
    args = parser.parse_args(argv)
    if args.save:
        with saved_output.saving(f"bench_bert_{args.save}"):
            run(args, parser)
    else:
        run(args, parser)


def run(args, parser) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = args.runs.split(",")
    unknown = set(runs) - set(RUNS)
    if unknown:
        parser.error(f"unknown runs {sorted(unknown)}; choose from {RUNS}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    tokenizer = bert.load_tokenizer()
    if "sms_balanced" in runs:
        finetune("sms_balanced (1 epoch)", data.load_sms_spam(balanced=True), 1, tokenizer, bucket=True,
                 mix_labels=True)
    if "sms_full" in runs:
        finetune("sms_full (half an epoch)", data.load_sms_spam(), 0.5, tokenizer, lr=1e-4, max_length=64)
    sst2 = data.load_sst2()
    curve = dict(val_pairs=sst2.val[:200], val_every=30)
    budget = args.scratch_seconds
    if "sst2" in runs:
        budget = budget or finetune("sst2 pretrained (0.85 epoch)", sst2, 0.85, tokenizer, lr=1e-4, warmup=0.1,
                                    bucket=True, **curve).seconds
    if "sst2_scratch" in runs:
        for lr in (float(x) for x in args.scratch_lr.split(",")):
            set_seed(0)
            finetune(f"sst2 scratch (lr {lr:g})", sst2, 100, tokenizer, model=bert.random_classifier(),
                     max_seconds=budget or 300, lr=lr, bucket=True, **curve)
    if "sst2_bow" in runs:
        bag_of_words(sst2)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
