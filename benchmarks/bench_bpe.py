"""How fast the course's byte-level BPE trains, encodes and decodes, and how much it compresses.

Run:  python benchmarks/bench_bpe.py

Setting: all of Tiny Shakespeare (1.1 MB), GPT-4 chunking pattern, vocabularies of 512 and 4,096.

Train: wall-clock time of one `train` call, splitting the text into chunks included.
Encode: MB of UTF-8 text per second for the whole file. "cold" is the first call, when every distinct
chunk must still be encoded; "warm" is the best of 3 later calls, when most chunks come from the cache
(what happens once a tokenizer has seen a text like this one).
Decode: MB of text per second turning all the ids back into the file (best of 3).
Bytes per token: UTF-8 bytes of the file / number of tokens; 1.0 would be no compression.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere without installing
from utils.bpe import BPETokenizer  # noqa: E402

VOCAB_SIZES = [512, 4096]


def best_of(n: int, fn, *args):
    """Smallest wall-clock time of n calls fn(*args), and the last result."""
    best, result = float("inf"), None
    for _ in range(n):
        start = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    with open(ROOT / "data" / "tinyshakespeare" / "input.txt", encoding="utf-8") as f:
        text = f.read()
    mb = len(text.encode("utf-8")) / 1e6
    print(f"Tiny Shakespeare: {mb:.2f} MB, {len(text):,} characters; pattern gpt4\n")
    print(
        f"{'vocab':>6} {'train s':>8} {'encode cold MB/s':>17} {'encode warm MB/s':>17} "
        f"{'decode MB/s':>12} {'tokens':>10} {'bytes/token':>12}"
    )
    for vocab_size in VOCAB_SIZES:
        tok = BPETokenizer()
        train_s, _ = best_of(1, tok.train, text, vocab_size, "gpt4")
        cold_s, ids = best_of(1, tok.encode, text)  # cache empty: every distinct chunk is new
        warm_s, _ = best_of(3, tok.encode, text)
        decode_s, decoded = best_of(3, tok.decode, ids)
        assert decoded == text, "round trip failed"
        print(
            f"{vocab_size:>6} {train_s:>8.2f} {mb / cold_s:>17.2f} {mb / warm_s:>17.2f} "
            f"{mb / decode_s:>12.1f} {len(ids):>10,} {mb * 1e6 / len(ids):>12.2f}"
        )


if __name__ == "__main__":
    main()
