"""Constraints an exercise states ("without F.layer_norm", "no Python loops", "do not build the
model"), enforced while the learner's answer runs, so that a check cannot pass on a way around them.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import textwrap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from torch.overrides import TorchFunctionMode


class RuleBroken(Exception):
    """The answer did something its exercise rules out; the message says what and why."""


@dataclass(frozen=True)
class NoTorchCall:
    """Rules out torch functions while the answer runs, e.g. (F.layer_norm, torch.layer_norm).

    Every route into them is caught (nn.LayerNorm calls F.layer_norm), because torch hands each call
    to the active TorchFunctionMode first. `when(args)` narrows the rule to some calls only.
    """

    functions: tuple
    why: str
    when: Callable[[tuple], bool] | None = None


@dataclass(frozen=True)
class NoAttribute:
    """Rules out one attribute of a class or module while the answer runs, e.g. (Block, "forward")."""

    owner: object
    name: str
    why: str


@dataclass(frozen=True)
class CourseFunctionsOff:
    """Rules out functions of a course module while the answer runs, under every name it can reach them
    by: the module's attribute (`utils.bpe.merge`, or an import inside the answer), any name in the
    answer's own globals bound to the same object (a notebook's `from utils.bpe import merge as m` at the
    top), and the function itself handed to the check as the answer. An exercise that writes by hand
    what the course already has uses this: otherwise calling the course's version would pass.
    """

    module: object
    names: tuple[str, ...]
    why: str

    def refusal(self, name: str) -> Callable:
        label = f"{self.module.__name__}.{name}"

        def refuse(*args, **kwargs):
            raise RuleBroken(f"your code used {label}, which this exercise rules out: {self.why}")

        return refuse


class _Refuse(TorchFunctionMode):
    def __init__(self, rules: Sequence[NoTorchCall]):
        super().__init__()
        self.rules = rules

    def __torch_function__(self, func, types, args=(), kwargs=None):
        for rule in self.rules:
            if func in rule.functions and (rule.when is None or rule.when(args)):
                raise RuleBroken(f"your code called {_name(func)}, which this exercise rules out: {rule.why}")
        return func(*args, **(kwargs or {}))


def _name(func) -> str:
    """How the learner wrote the call: F.softmax, torch.softmax or x.softmax(...)."""
    name = getattr(func, "__name__", repr(func))
    qualname = getattr(func, "__qualname__", name)
    if name == "__getitem__":
        return "indexing (tensor[...])"
    if getattr(func, "__module__", "") in ("torch.nn.functional", "torch._C._nn"):
        return f"F.{name}"
    if qualname.startswith(("TensorBase.", "Tensor.")):
        return f"the tensor method .{name}()"
    return f"torch.{name}"


Rule = NoTorchCall | NoAttribute | CourseFunctionsOff


@contextlib.contextmanager
def enforced(rules: Sequence[Rule], answer: Callable | None = None) -> Iterator[None]:
    """Apply the rules for the duration of the block (the answer's call), then restore everything.
    `answer` is the learner's function: CourseFunctionsOff also reaches into its globals."""
    calls = [r for r in rules if isinstance(r, NoTorchCall)]
    attributes = [r for r in rules if isinstance(r, NoAttribute)]
    offs = [r for r in rules if isinstance(r, CourseFunctionsOff)]
    for off in offs:
        for name in off.names:
            if getattr(off.module, name) is answer:
                off.refusal(name)()
    saved = [(r.owner, r.name, r.owner.__dict__[r.name] if r.name in vars(r.owner) else None) for r in attributes]
    swaps = _course_swaps(offs, getattr(answer, "__globals__", None) or {})
    try:
        for rule in attributes:
            setattr(rule.owner, rule.name, _refusal(rule))
        for space, key, _, refusal in swaps:
            _assign(space, key, refusal)
        with _Refuse(calls) if calls else contextlib.nullcontext():
            yield
    finally:
        for space, key, original, _ in reversed(swaps):
            _assign(space, key, original)
        for owner, name, original in saved:
            if original is None:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


def _course_swaps(offs: Sequence[CourseFunctionsOff], answer_globals: dict) -> list[tuple]:
    """(where, key, original, refusal) for every name by which the answer could reach a ruled-out
    function: the course module's attribute and each global of the answer bound to the same object."""
    swaps = []
    for off in offs:
        for name in off.names:
            original = getattr(off.module, name)
            swaps.append((off.module, name, original, off.refusal(name)))
            swaps += [(answer_globals, key, value, off.refusal(name)) for key, value in answer_globals.items()
                      if value is original]
    return swaps


def _assign(space, key: str, value) -> None:
    if isinstance(space, dict):
        space[key] = value
    else:
        setattr(space, key, value)


def _refusal(rule: NoAttribute):
    label = f"{getattr(rule.owner, '__name__', type(rule.owner).__name__)}.{rule.name}"

    def refuse(*args, **kwargs):
        raise RuleBroken(f"your code used {label}, which this exercise rules out: {rule.why}")

    return refuse


_LOOPS = {ast.For: "a `for` loop", ast.While: "a `while` loop", ast.ListComp: "a list comprehension",
          ast.SetComp: "a set comprehension", ast.DictComp: "a dict comprehension",
          ast.GeneratorExp: "a generator expression", ast.AsyncFor: "an `async for` loop"}


def python_loop(function: Callable) -> str | None:
    """'a `for` loop on line 3' if the function's source has a Python loop, else None.

    Jupyter keeps each cell's source, so this works for answers written in a notebook. Where the
    source cannot be read (a function built at run time), no loop can be seen and None comes back.
    """
    try:
        source = textwrap.dedent(inspect.getsource(function))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    for node in ast.walk(tree):
        kind = _LOOPS.get(type(node))
        if kind:
            return f"{kind} on line {node.lineno} of the function"
    return None
