"""An assistant answering: the chat template's prompt in, tokens out until <|end|>.

    replies = answer(model, tok, ["What is 2 + 3?", "Reverse the word: king"])   # greedy, in batches
    samples = sample_replies(model, tok, prompt_ids, n=8, temperature=1.0)        # for DPO pairs and RL

From the command line, a conversation with a checkpoint that has a chat template:

    python -m utils.chat --checkpoint runs/assistant
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .chat_template import END, ChatTokenizer, prompt_ids

MAX_REPLY = 24  # tokens: the longest answer of utils.tasks is 16 characters and <|end|>


@torch.no_grad()
def generate_until_end(model, tok: ChatTokenizer, prompts: list[list[int]], max_new_tokens: int = MAX_REPLY,
                       temperature: float = 0.0, generator: torch.Generator | None = None) -> list[list[int]]:
    """The reply ids of each prompt (a list of ids), without the <|end|> that closes it.

    Prompts of the same length run as one batch with a KV cache; a batch stops as soon as every row has
    written <|end|> (or after max_new_tokens). temperature 0 is greedy.
    """
    end = tok.id_of(END)
    replies: list[list[int] | None] = [None] * len(prompts)
    by_length: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        by_length.setdefault(len(p), []).append(i)
    was_training = model.training
    model.eval()
    try:
        for length, rows in by_length.items():
            _check_fits(model, length, max_new_tokens)
            idx = torch.tensor([prompts[i] for i in rows], device=next(model.parameters()).device)
            caches = model.new_caches()
            logits = model(idx, caches=caches)[0][:, -1]
            out = torch.empty(len(rows), 0, dtype=torch.long, device=idx.device)
            done = torch.zeros(len(rows), dtype=torch.bool, device=idx.device)
            for _ in range(max_new_tokens):
                new = _choose(logits, temperature, generator)
                out = torch.cat([out, new[:, None]], dim=1)
                done |= new == end
                if done.all():
                    break
                logits = model(new[:, None], caches=caches)[0][:, -1]
            for row, ids in zip(rows, out.tolist(), strict=True):
                replies[row] = ids[: ids.index(end)] if end in ids else ids
    finally:
        model.train(was_training)
    return replies


def answer(model, tok: ChatTokenizer, questions: list[str], temperature: float = 0.0,
           generator: torch.Generator | None = None) -> list[str]:
    """The assistant's reply to each question, each asked as a fresh one-turn conversation."""
    prompts = [prompt_ids(tok, [{"role": "user", "content": q}]) for q in questions]
    return [tok.decode(r) for r in generate_until_end(model, tok, prompts, temperature=temperature,
                                                      generator=generator)]


def score(replies, tasks) -> dict[str, tuple[int, int]]:
    """{kind: (right, asked)} of replies to tasks, graded by utils.tasks.grade."""
    from .tasks import grade

    table: dict[str, list[int]] = {}
    for reply, task in zip(replies, tasks, strict=True):
        right_asked = table.setdefault(task.kind, [0, 0])
        right_asked[0] += grade(task.kind, reply, task.answer)
        right_asked[1] += 1
    return {kind: (r, n) for kind, (r, n) in table.items()}


def accuracy(model, tok: ChatTokenizer, tasks) -> dict[str, tuple[int, int]]:
    """{kind: (right, asked)}: the assistant's greedy replies to the tasks' prompts, graded."""
    return score(answer(model, tok, [t.prompt for t in tasks]), tasks)


def right_counts(model, tok: ChatTokenizer, tasks, samples: int, temperature: float = 1.0, seed: int = 0) -> list[int]:
    """For each task, how many of `samples` sampled replies the grader accepts (what pass@k is computed from)."""
    from .tasks import grade

    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    prompts = [prompt_ids(tok, [{"role": "user", "content": t.prompt}]) for t in tasks for _ in range(samples)]
    replies = generate_until_end(model, tok, prompts, temperature=temperature, generator=generator)
    return [sum(grade(t.kind, tok.decode(r), t.answer) for r in replies[i * samples:(i + 1) * samples])
            for i, t in enumerate(tasks)]


@torch.no_grad()
def continue_raw(model, tok, tasks, max_new_tokens: int = 18, style: str = "facts") -> list[str]:
    """A base model's replies when each task is put the way its pre-training text had it, greedy
    (utils.tasks.raw_prompt: style "facts" is "38 + 45 =" or a name at the start of a line, "qa" is
    "Q: What is 38 + 45?\nA:")."""
    from .generation import generate
    from .tasks import raw_answer, raw_prompt

    replies = [""] * len(tasks)
    by_length: dict[int, list[int]] = {}
    encoded = [tok.encode(raw_prompt(t, style)[0]) for t in tasks]
    for i, ids in enumerate(encoded):
        by_length.setdefault(len(ids), []).append(i)
    for length, rows in by_length.items():
        out = generate(model, [encoded[i] for i in rows], max_new_tokens, temperature=0)[:, length:]
        for i, ids in zip(rows, out.tolist(), strict=True):
            replies[i] = raw_answer(tasks[i], tok.decode(ids), style)
    return replies


def _choose(logits: torch.Tensor, temperature: float, generator) -> torch.Tensor:
    if temperature == 0:
        return logits.argmax(-1)
    probs = F.softmax(logits / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def _check_fits(model, length: int, max_new_tokens: int) -> None:
    context = model.config.context_length
    if length + max_new_tokens > context:
        raise ValueError(f"a prompt of {length} tokens and a reply of up to {max_new_tokens} do not fit the model's "
                         f"context of {context} tokens: shorten the question (or trim the conversation with "
                         "utils.chat_template.trim_history)")


# --- a conversation ------------------------------------------------------------------------------------

class Conversation:
    """A multi-turn conversation with an assistant: the history, trimmed to the context before each reply.

        talk = Conversation(model, tok)
        talk.say("What is 2 + 3?")      # '5'
        talk.dropped                     # how many earlier turns the last reply could not see
    """

    def __init__(self, model, tok, temperature: float = 0.0, max_new_tokens: int = MAX_REPLY, seed: int = 0):
        check_has_chat_template(tok)
        self.model, self.tok, self.temperature, self.max_new_tokens = model, tok, temperature, max_new_tokens
        self.messages: list[dict] = []
        self.dropped = 0
        self.generator = torch.Generator().manual_seed(seed)

    def say(self, message: str) -> str:
        from .chat_template import trim_history

        if not isinstance(message, str) or not message.strip():
            raise ValueError("the message is empty: type a question first")
        self.tok.encode_text(message)  # a character the model does not know is refused before anything changes
        messages = self.messages + [{"role": "user", "content": message}]
        kept, self.dropped = trim_history(self.tok, messages, self.model.config.context_length, self.max_new_tokens)
        ids = generate_until_end(self.model, self.tok, [prompt_ids(self.tok, kept)], self.max_new_tokens,
                                 self.temperature, self.generator)[0]
        # A reply ends at <|end|>; one that starts another turn (<|user|>, <|assistant|>) ends there too, so that
        # the history holds only text, which the template can encode again.
        specials = set(self.tok.special_ids.values())
        ids = ids[:next((i for i, t in enumerate(ids) if t in specials), len(ids))]
        reply = self.tok.decode(ids)
        self.messages = messages + [{"role": "assistant", "content": reply}]
        return reply

    def reset(self) -> None:
        self.messages, self.dropped = [], 0


def check_has_chat_template(tok) -> None:
    if not isinstance(tok, ChatTokenizer):
        raise ValueError(f"this model's tokenizer ({type(tok).__name__}) has no chat template: it is a base language "
                         "model, which continues text instead of answering. Fine-tune it first (lesson 12, "
                         "utils.sft.finetune) and save the result, or pass the checkpoint of an assistant")


def main(argv=None) -> int:
    import argparse

    from .checkpoint import load_model

    parser = argparse.ArgumentParser(prog="python -m utils.chat", description="Talk to an assistant of lesson 12.")
    parser.add_argument("--checkpoint", required=True, help="the folder of an assistant checkpoint (lesson 12)")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 (default) answers greedily")
    parser.add_argument("message", nargs="*", help="one question to answer and exit (default: a conversation)")
    args = parser.parse_args(argv)
    try:
        model, tok = load_model(args.checkpoint, device="cpu")
        talk = Conversation(model, tok, temperature=args.temperature)
    except (OSError, ValueError) as error:
        print(f"error: {error}")
        return 2
    if args.message:
        try:
            print(talk.say(" ".join(args.message)))
        except ValueError as error:
            print(f"error: {error}")
            return 2
        return 0
    print(f"Talking to {args.checkpoint} (context {model.config.context_length} tokens). /reset starts again, "
          "/quit or Ctrl-D ends.")
    while True:
        try:
            line = input("you> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if line.strip() == "/quit":
            return 0
        if line.strip() == "/reset":
            talk.reset()
            continue
        try:
            reply = talk.say(line)
        except ValueError as error:
            print(f"  ({error})")
            continue
        if talk.dropped:
            print(f"  ({talk.dropped} earlier turns no longer fit the context and were left out)")
        print(f"assistant> {reply}")


if __name__ == "__main__":
    raise SystemExit(main())


@torch.no_grad()
def reply_probability(model, tok: ChatTokenizer, questions: list[str], replies: list[str]) -> list[float]:
    """p(reply, then <|end|> | question) under the model: the product of the reply's token probabilities,
    the assistant's own confidence in a whole answer (lesson 13 checks whether it is calibrated)."""
    from .chat_template import sft_example
    from .dpo import sequence_log_probs

    if len(questions) != len(replies):
        raise ValueError(f"one reply per question: got {len(questions)} questions and {len(replies)} replies")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for question, reply in zip(questions, replies, strict=True):
        inputs, targets = sft_example(tok, question, reply)
        log_p = sequence_log_probs(model, torch.tensor([inputs], device=device), torch.tensor([targets], device=device))
        out.append(float(log_p.exp()))
    model.train(was_training)
    return out
