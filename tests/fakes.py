"""Scripted stand-ins for the expensive parts (the chat model, the embedding model), for tests
where the model's words don't matter. Replies are enqueued like `engine.enqueue(["Hel", "lo"])`."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence

import numpy as np

from ghostdesk.core.llm.types import (
    ChatEngineInfo,
    ChatMessage,
    GenerationStats,
    RenderedPrompt,
    SamplingParams,
)
from ghostdesk.core.memory.embedder import normalize_rows


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


_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """Deterministic bag-of-words vectors (signed feature hashing of words and word pairs).

    Texts sharing words get a positive cosine; identical word sets get 1.0. Instant and with
    no model, for tests (and quick benchmark runs) where the meaning of words does not matter.
    """

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim
        self.name = f"hashing-{dim}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            features = words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
            for feature in features:
                # Four signed slots per feature: a chance collision adds a little noise
                # instead of making two unrelated words identical.
                digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=16).digest()
                for part in range(4):
                    value = int.from_bytes(digest[part * 4:part * 4 + 4], "little")
                    out[row, value % self.dim] += 1.0 if (value >> 31) else -1.0
            if not features:
                out[row, 0] = 1.0  # an empty text still gets a unit vector
        return normalize_rows(out)
