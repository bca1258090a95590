"""Scripted stand-ins for the expensive parts (the model), for tests where the model's
words don't matter. Replies are enqueued like `engine.enqueue(["Hel", "lo"])`."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence

from ghostdesk.core.llm.types import (
    ChatEngineInfo,
    ChatMessage,
    GenerationStats,
    RenderedPrompt,
    SamplingParams,
)


class ScriptedEngine:
    """A ChatEngine whose replies are queued by the test. Renders a simple, visible format
    and counts one token per whitespace-separated word (plus one per message)."""

    def __init__(self, n_ctx: int = 4096, delay: float = 0.0) -> None:
        self.info = ChatEngineInfo(model_name="scripted", model_path="", architecture="test",
                                   n_ctx=n_ctx, device_summary="CPU", chat_format="scripted")
        self.delay = delay
        self.replies: deque[list[str]] = deque()
        self.prompts: list[RenderedPrompt] = []
        self._lock = threading.Lock()
        self.gate: threading.Event | None = None
        """If set, streaming waits on it before each piece (lets tests act mid-reply)."""

    def enqueue(self, *replies: Sequence[str] | str) -> None:
        for reply in replies:
            self.replies.append([reply] if isinstance(reply, str) else list(reply))

    def render(self, messages: Sequence[ChatMessage]) -> RenderedPrompt:
        text = "".join(f"<{m.role}>{m.content}</{m.role}>" for m in messages) + "<assistant>"
        return RenderedPrompt(text, stop=("</assistant>",), format_name="scripted")

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + text.count("</")

    def stream(self, prompt: RenderedPrompt, params: SamplingParams, stats: GenerationStats,
               should_stop=None) -> Iterator[str]:
        with self._lock:
            self.prompts.append(prompt)
            pieces = self.replies.popleft() if self.replies else ["(no scripted reply)"]
            stats.prompt_tokens = self.count_tokens(prompt.text)
            start = time.perf_counter()
            for piece in pieces[: params.max_tokens]:
                if self.gate is not None:
                    self.gate.wait(5)
                if should_stop is not None and should_stop():
                    stats.stopped, stats.finish_reason = True, "stopped"
                    break
                if self.delay:
                    time.sleep(self.delay)
                if stats.first_token_seconds is None:
                    stats.first_token_seconds = time.perf_counter() - start
                stats.completion_tokens += 1
                yield piece
            else:
                stats.finish_reason = "stop"
            stats.seconds = time.perf_counter() - start
