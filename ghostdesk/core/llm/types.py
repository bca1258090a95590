"""Plain data passed between the engine, the companion, the CLI and the UI."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from ghostdesk.core.settings import SamplingSettings

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass
class SamplingParams(SamplingSettings):
    """How the tokens of one reply are chosen. The fields (and their defaults) are the
    sampling settings' (`ghostdesk.core.settings.SamplingSettings`), defined once there; a
    reply gets a copy, so a change in Settings never reaches a reply under way."""

    @classmethod
    def greedy(cls, max_tokens: int = 128) -> SamplingParams:
        return cls(temperature=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0,
                   max_tokens=max_tokens, seed=0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    first_token_seconds: float | None = None
    stopped: bool = False
    """True when the caller asked to stop before the model finished."""
    finish_reason: str = ""
    """"stop" (end of turn), "length" (max_tokens), "stopped" (user) or "error"."""

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class RenderedPrompt:
    """A chat rendered to the exact text the model sees. `text` already contains the BOS
    token's text where the format wants one, so it is tokenized with add_bos=False and
    special tokens parsed."""

    text: str
    stop: tuple[str, ...] = ()
    format_name: str = ""
    stop_tokens: tuple[str, ...] = ()
    """Special tokens (by text) that end the reply when generated; they decode to no text,
    so `stop` strings can't catch them."""


@dataclass
class ChatEngineInfo:
    """What is loaded, for the status bar and message provenance."""

    model_name: str
    model_path: str
    architecture: str = ""
    n_ctx: int = 0
    n_gpu_layers: int = 0
    n_layers: int = 0
    device_summary: str = "CPU"
    """e.g. "CPU" or "GPU: 28/49 layers (NVIDIA ...)"."""
    offload_reason: str = ""
    chat_format: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class ChatEngine(Protocol):
    """Anything that turns chat messages into streamed text. The real one is
    `ghostdesk.core.llm.engine.LlamaEngine`; tests use scripted fakes."""

    info: ChatEngineInfo

    def render(self, messages: Sequence[ChatMessage]) -> RenderedPrompt: ...

    def count_tokens(self, text: str) -> int: ...

    def stream(
        self, prompt: RenderedPrompt, params: SamplingParams, stats: GenerationStats,
        should_stop: Any = None,
    ) -> Iterator[str]:
        """Yield text pieces as they are decoded. Fills `stats` as it goes. `should_stop`
        is a callable returning True to stop early (checked between tokens); stopping
        sets stats.stopped and ends the iterator normally. All calls into one model are
        serialized by the engine."""
        ...
