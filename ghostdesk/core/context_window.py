"""Fit a conversation into the model's context window by leaving out the oldest turns.

The system prompt and the newest user message always stay. Older turns are dropped as whole
user/assistant pairs, oldest first, so the model never sees half of an exchange. When even the
newest message alone is too long, its middle is cut (the start and end of a long paste usually
carry the question) and the caller is told.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.llm.types import ChatMessage, RenderedPrompt

ELISION = "\n\n[…]\n\n"


@dataclass(frozen=True)
class FittedPrompt:
    prompt: RenderedPrompt
    messages: tuple[ChatMessage, ...]
    prompt_tokens: int
    dropped_turns: int
    """Earlier messages left out of the prompt (0 when the whole thread fits)."""
    truncated_last_message: bool = False


def fit_to_context(
    system: ChatMessage | None,
    history: Sequence[ChatMessage],
    *,
    render: Callable[[Sequence[ChatMessage]], RenderedPrompt],
    count_tokens: Callable[[str], int],
    n_ctx: int,
    reply_budget: int,
) -> FittedPrompt:
    """Return the longest suffix of `history` whose rendered prompt leaves `reply_budget`
    tokens free in an `n_ctx` window. `history` ends with the message to answer."""
    if not history:
        raise ValueError("history must end with the message to answer")
    budget = n_ctx - min(reply_budget, n_ctx // 2)
    head = (system,) if system else ()

    def measure(msgs: Sequence[ChatMessage]) -> tuple[RenderedPrompt, int]:
        prompt = render(head + tuple(msgs))
        return prompt, count_tokens(prompt.text)

    # Binary search the first kept index over turn boundaries: rendering is linear in the
    # text, so this costs O(log n) renders instead of one per dropped turn.
    starts = _turn_starts(history)
    lo, hi = 0, len(starts) - 1
    best: tuple[int, RenderedPrompt, int] | None = None
    while lo <= hi:
        mid = (lo + hi) // 2
        prompt, tokens = measure(history[starts[mid] :])
        if tokens <= budget:
            best, hi = (starts[mid], prompt, tokens), mid - 1
        else:
            lo = mid + 1
    if best is not None:
        first, prompt, tokens = best
        return FittedPrompt(prompt, head + tuple(history[first:]), tokens, first)

    # Only the newest message, and even it is too long: cut its middle until it fits.
    last = history[-1]
    text = last.content
    for _ in range(40):
        overshoot = measure([ChatMessage(last.role, text)])[1] - budget
        if overshoot <= 0:
            msgs = [ChatMessage(last.role, text)]
            prompt, tokens = measure(msgs)
            return FittedPrompt(prompt, head + tuple(msgs), tokens, len(history) - 1, True)
        # ~4 characters per token, plus a margin so the loop converges quickly.
        cut = max(overshoot * 5, len(text) // 10, 16)
        keep = len(text) - cut
        if keep <= 32:
            break
        text = text[: keep // 2] + ELISION + text[-(keep // 2) :]
    raise GhostDeskError(
        "This message does not fit in the model's context window, even on its own.",
        hint="Raise the context size in Settings → Model, or send a shorter message.",
    )


def _turn_starts(history: Sequence[ChatMessage]) -> list[int]:
    """Indices where a kept suffix may begin: at a user message, newest always allowed."""
    starts = [i for i, m in enumerate(history) if m.role == "user"]
    last = len(history) - 1
    if not starts or starts[-1] != last:
        starts.append(last)
    return starts
