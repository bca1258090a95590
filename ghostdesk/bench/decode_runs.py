"""What the decode benchmarks share: the prompt whose reply they time, the steady decode rate,
and running two sides in alternation (ABBA order), so a slow spell of the machine hits both
sides alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

PROMPT = "Tell me a long, cosy story about a lighthouse keeper and her cat."

Run = TypeVar("Run")


def decode_rate(tokens: int, first_token_s: float, last_token_s: float) -> float:
    """Tokens per second from the first token to the last: the steady decode rate, without
    the prompt's evaluation (0.0 when there is too little to tell)."""
    span = last_token_s - first_token_s
    return (tokens - 1) / span if tokens > 1 and span > 0 else 0.0


def alternate(runs: int, a: Callable[[], Run], b: Callable[[], Run],
              ) -> tuple[list[Run], list[Run]]:
    """`runs` results of each side, in ABBA order: a b, b a, a b, ..."""
    out_a: list[Run] = []
    out_b: list[Run] = []
    for i in range(runs):
        for side in ("a", "b") if i % 2 == 0 else ("b", "a"):
            if side == "a":
                out_a.append(a())
            else:
                out_b.append(b())
    return out_a, out_b
