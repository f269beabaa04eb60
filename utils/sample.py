"""Write text with a trained GPT from the command line.

    python -m utils.sample --checkpoint runs/cpu-quick --prompt "ROMEO:" [--tokens 300]
        [--temperature 0.8] [--top-k 50] [--top-p 0.95] [--seed 0] [--device cpu] [--no-cache]
"""

from __future__ import annotations

import argparse

import torch

from .generation import generate
from .seeding import set_seed
from .train import load_model


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m utils.sample", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a folder written by python -m utils.train")
    parser.add_argument("--prompt", default="\n", help="text to continue (default: a new line)")
    parser.add_argument("--tokens", type=int, default=300, help="how many new tokens to write")
    parser.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--no-cache", action="store_true", help="generate without the KV cache")
    args = parser.parse_args(argv)

    if args.prompt == "":
        parser.error("the prompt is empty: give at least one character (the default is a new line)")
    set_seed(args.seed)
    try:
        model, tokenizer = load_model(args.checkpoint, device=args.device)
    except (RuntimeError, ValueError, FileNotFoundError) as error:
        parser.exit(2, f"error: {error}\n")
    device = next(model.parameters()).device
    try:
        ids = tokenizer.encode(args.prompt)
    except ValueError as error:
        parser.error(f"cannot encode the prompt with this checkpoint's tokenizer: {error}")
    idx = torch.tensor([ids], dtype=torch.long, device=device)
    if idx.shape[1] > model.config.block_size:
        print(f"(the prompt has {idx.shape[1]} tokens; the model sees only the last {model.config.block_size})")
    out = generate(model, idx, args.tokens, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                   use_cache=not args.no_cache)
    print(tokenizer.decode(out[0].tolist()))


if __name__ == "__main__":
    main()
