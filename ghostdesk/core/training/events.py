"""The training child's progress, one JSON object per line on its stdout.

Each line is `{"event": KIND, ...fields}`. The child writes them with `encode`; the parent
(the launcher, or the GUI's QProcess) turns each line back into a dataclass with
`parse_event`. Anything else a library prints goes to the child's stderr (the run's log), so
stdout carries only these lines.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Preparing:
    """Set-up work before the first step (loading data, converting the base model)."""

    stage: str
    """What is happening, in words ("Converting the chat model for training…")."""
    kind = "preparing"


@dataclass(frozen=True)
class Started:
    run_id: str
    method: str
    preset: str
    device: str
    base: str
    """Where the trainable weights came from: "gguf" (dequantized chat model) or "hf-folder"."""
    train_examples: int
    eval_examples: int
    max_steps: int
    resumed_from_step: int = 0
    load_in_4bit: bool = False
    chat_tokens_checked: int = 0
    """Training prompts compared token by token with llama.cpp's tokenization of them."""
    chat_tokens_match: bool = True
    """Whether all of those were identical (what the model sees when chatting)."""
    kind = "started"


@dataclass(frozen=True)
class Step:
    step: int
    max_steps: int
    loss: float
    lr: float
    reward_margin: float | None = None
    """KTO/DPO: mean implicit reward of liked minus disliked replies in this step's batch."""
    tokens_per_second: float = 0.0
    """Training tokens (prompt + reply, no padding) per second since the run (re)started."""
    eta_s: float = 0.0
    epoch: float = 0.0
    kind = "step"


@dataclass(frozen=True)
class Evaluated:
    accuracy: float
    """Held-out preference accuracy of the new adapter (0.5 = chance, the base model)."""
    reward_margin: float
    examples: int
    previous_accuracy: float
    """The same measure for the adapter it would replace (0.5 for the base model)."""
    previous_reward_margin: float
    previous_adapter: str
    """Id of that adapter, "" for the base model."""
    recommended: bool
    """Whether the new adapter measured better than the one it would replace."""
    adopt: bool | None
    """The decision under the adopt setting: True (auto), False (never, or not better),
    None (ask the user)."""
    reason: str
    samples: list[dict[str, str]] = field(default_factory=list)
    """Side-by-side answers: {"prompt", "base", "adapter"}."""
    kind = "evaluated"


@dataclass(frozen=True)
class Saved:
    adapter_id: str
    path: str
    """The adapter's folder (holding adapter.gguf and the peft weights)."""
    gguf: str
    """The llama.cpp LoRA file to hot-swap into the chat."""
    kind = "saved"


@dataclass(frozen=True)
class Finished:
    status: str
    """"completed" (an adapter was saved) or "stopped" (paused at a checkpoint; start the
    same run again to resume)."""
    adapter_id: str = ""
    step: int = 0
    seconds: float = 0.0
    """Wall time of this attempt, set-up and evaluation included."""
    train_seconds: float = 0.0
    """Time spent in the optimizer steps of this attempt."""
    tokens: int = 0
    """Training tokens (prompt + reply, no padding) processed in those steps."""
    tokens_per_second: float = 0.0
    peak_rss_mb: float = 0.0
    """Peak resident memory of the training process."""
    checkpoint: str = ""
    """The checkpoint a stopped run resumes from."""
    kind = "finished"


@dataclass(frozen=True)
class Failed:
    reason: str
    """What went wrong, for a person."""
    hint: str = ""
    """What to do about it."""
    detail: str = ""
    """The technical error, for the log."""
    kind = "failed"


TrainingEvent = Preparing | Started | Step | Evaluated | Saved | Finished | Failed
_KINDS: dict[str, type] = {cls.kind: cls for cls in (Preparing, Started, Step, Evaluated, Saved,
                                                     Finished, Failed)}
TERMINAL = ("finished", "failed")


def encode(event: TrainingEvent) -> str:
    """One line of JSON (no newline). NaN and infinities become null."""
    body = {"event": event.kind, **{k: _clean(v) for k, v in asdict(event).items()}}
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def parse_event(line: str | bytes) -> TrainingEvent:
    """The event a line holds. Raises ValueError for anything else (a stray print)."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    raw = json.loads(line)
    if not isinstance(raw, dict) or raw.get("event") not in _KINDS:
        raise ValueError(f"not a training event: {line[:200]!r}")
    cls = _KINDS[raw["event"]]
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in raw.items() if k in names})


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value
