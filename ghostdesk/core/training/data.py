"""Training examples from TRL-format JSON Lines, rendered to the exact text the chat sends.

Input records (what `ghostdesk.core.feedback.datasets` writes; `meta` is optional):

- KTO: `{"prompt": [messages], "completion": [{"role": "assistant", ...}], "label": bool,
  "weight": float}`
- DPO: `{"prompt": [messages], "chosen": [...], "rejected": [...]}`
- SFT: `{"messages": [..., {"role": "assistant", ...}]}`

Prompts are rendered here with GhostDesk's own `render_chat`, the function the chat uses, and
handed to TRL as plain text: TRL never applies a template of its own, so the text a LoRA is
trained on is byte for byte the text llama.cpp is given when chatting. A reply is the text
the model writes after that prompt up to and including its end-of-turn marker (for Gemma
`...<end_of_turn>`), which is what teaches the model to end its turn.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ghostdesk.core.errors import TrainingError
from ghostdesk.core.llm.chat_format import TemplateSource, render_chat
from ghostdesk.core.llm.types import ChatMessage

_ROLES = ("system", "user", "assistant")
MAX_REPEAT = 3
"""A KTO example of weight w is seen round(w) times, at most this many (see `to_trl_rows`)."""


@dataclass(frozen=True)
class Example:
    """One training example as text. KTO: prompt, completion, label. DPO: prompt, chosen,
    rejected. SFT: prompt, completion."""

    prompt: str
    completion: str = ""
    label: bool | None = None
    chosen: str = ""
    rejected: str = ""
    weight: float = 1.0
    split: str = ""
    """"train" or "eval" when the record said so in its meta, else ""."""
    display_prompt: str = ""
    """The last user message, for showing side-by-side answers."""


def detect_format(record: dict[str, Any]) -> str:
    if "chosen" in record and "rejected" in record:
        return "dpo"
    if "label" in record and "completion" in record:
        return "kto"
    if "messages" in record or ("completion" in record and "prompt" in record):
        return "sft"
    raise ValueError("a record needs chosen/rejected (DPO), completion+label (KTO) or "
                     "messages (SFT)")


def _messages(value: Any, where: str) -> list[ChatMessage]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where} must be a non-empty list of messages")
    out = []
    for m in value:
        if not isinstance(m, dict) or m.get("role") not in _ROLES or not isinstance(
                m.get("content"), str):
            raise ValueError(f"{where} has a message without a valid role and text content")
        out.append(ChatMessage(m["role"], m["content"]))
    return out


def _reply_text(value: Any, where: str) -> str:
    """A completion given as [{"role": "assistant", ...}] or as a plain string."""
    if isinstance(value, str):
        return value
    msgs = _messages(value, where)
    if len(msgs) != 1 or msgs[0].role != "assistant":
        raise ValueError(f"{where} must be one assistant message")
    return msgs[0].content


def render_completion(messages: Sequence[ChatMessage], reply: str,
                      src: TemplateSource) -> tuple[str, str, str]:
    """(prompt, completion, end_marker): the prompt as the chat renders it and the reply as
    the same template renders it after that prompt, cut after the end-of-turn marker."""
    prompt = render_chat(messages, src)
    full = render_chat([*messages, ChatMessage("assistant", reply)], src).text
    stops = [s for s in (*prompt.stop, *prompt.stop_tokens) if s]
    if full.startswith(prompt.text):
        rest = full[len(prompt.text):]
        body = reply.strip()
        at = rest.find(body) if body else 0
        start = at + len(body) if at >= 0 else 0
        hits = [(rest.find(s, start), s) for s in stops if rest.find(s, start) >= 0]
        if hits:
            idx, marker = min(hits, key=lambda h: (h[0], -len(h[1])))
            return prompt.text, rest[:idx + len(marker)], marker
    # A template that renders a finished turn differently from an open one (e.g. dropping
    # reasoning blocks): the reply as written, ended by the first end-of-turn text.
    marker = stops[0] if stops else ""
    return prompt.text, reply + marker, marker


def _last_user(messages: Sequence[ChatMessage]) -> str:
    return next((m.content for m in reversed(messages) if m.role == "user"), "")


def _split_of(record: dict[str, Any]) -> str:
    meta = record.get("meta")
    if isinstance(meta, dict) and meta.get("split") in ("train", "eval"):
        return str(meta["split"])
    return ""


def example_from_record(record: dict[str, Any], method: str,
                        src: TemplateSource) -> tuple[Example, str]:
    """One record as an Example, and the end marker its completions use."""
    fmt = detect_format(record)
    if method == "kto" and fmt == "dpo":
        raise ValueError("this is a DPO pair; KTO training needs labelled single replies")
    if fmt != method and not (method == "sft" and fmt == "kto"):
        raise ValueError(f"this is a {fmt.upper()} record, not {method.upper()}")
    split = _split_of(record)
    if fmt == "sft":
        if "messages" in record:
            msgs = _messages(record["messages"], "messages")
            if msgs[-1].role != "assistant":
                raise ValueError("the last message must be the assistant's reply")
            prompt_msgs, reply = msgs[:-1], msgs[-1].content
        else:
            prompt_msgs = _messages(record["prompt"], "prompt")
            reply = _reply_text(record["completion"], "completion")
        prompt, completion, marker = render_completion(prompt_msgs, reply, src)
        return Example(prompt, completion, split=split,
                       display_prompt=_last_user(prompt_msgs)), marker
    prompt_msgs = _messages(record["prompt"], "prompt")
    if fmt == "kto":
        label = record["label"]
        if not isinstance(label, bool):
            raise ValueError("label must be true or false")
        weight = record.get("weight", 1.0)
        if not isinstance(weight, int | float) or isinstance(weight, bool) or not (
                math.isfinite(weight) and weight > 0):
            raise ValueError("weight must be a positive number")
        prompt, completion, marker = render_completion(
            prompt_msgs, _reply_text(record["completion"], "completion"), src)
        if method == "sft":  # liked replies as targets
            return Example(prompt, completion, split=split,
                           display_prompt=_last_user(prompt_msgs)), marker
        return Example(prompt, completion, label=label, weight=float(weight), split=split,
                       display_prompt=_last_user(prompt_msgs)), marker
    prompt, chosen, marker = render_completion(
        prompt_msgs, _reply_text(record["chosen"], "chosen"), src)
    _, rejected, _ = render_completion(prompt_msgs, _reply_text(record["rejected"], "rejected"),
                                       src)
    return Example(prompt, chosen=chosen, rejected=rejected, split=split,
                   display_prompt=_last_user(prompt_msgs)), marker


@dataclass(frozen=True)
class LoadedData:
    examples: list[Example]
    end_marker: str
    """The end-of-turn text completions end with; the trainer treats it as EOS."""
    skipped: int
    """Records left out (an SFT file with a non-liked KTO record, and the like)."""


def load_examples(path: str | Path, method: str, src: TemplateSource) -> LoadedData:
    """Read and render a JSONL file. A malformed line raises TrainingError naming it."""
    p = Path(path)
    examples: list[Example] = []
    markers: dict[str, int] = {}
    skipped = 0
    try:
        fh = p.open(encoding="utf-8")
    except OSError as err:
        raise TrainingError(f"Could not read the training data {p}: {err.strerror or err}.",
                            hint="Export the feedback again and restart training.") from err
    with fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("a line must hold one JSON object")
                if method == "sft" and "label" in record and record.get("label") is not True:
                    skipped += 1  # a disliked reply is no target to imitate
                    continue
                example, marker = example_from_record(record, method, src)
            except (ValueError, KeyError, TypeError) as err:
                raise TrainingError(
                    f"Line {number} of the training data {p.name} is not a valid "
                    f"{method.upper()} example: {err}.",
                    hint="Export the feedback again from GhostDesk; files from elsewhere "
                         "must use TRL's conversational format.") from err
            examples.append(example)
            markers[marker] = markers.get(marker, 0) + 1
    marker = max(markers, key=lambda k: markers[k]) if markers else ""
    return LoadedData(examples, marker, skipped)


def split_examples(train: list[Example], eval_: list[Example] | None, *,
                   fraction: float = 0.2, min_eval: int = 4) -> tuple[list[Example],
                                                                        list[Example]]:
    """(train, held-out). Given an eval file (`eval_` not None, even empty), that is the
    held-out side. Else records marked eval in their meta; else a stable slice of the prompts
    (by a hash of the prompt, so one conversation turn never lands on both sides)."""
    if eval_ is not None:
        return [e for e in train if e.split != "eval"], list(eval_)
    marked = [e for e in train if e.split == "eval"]
    if marked:
        return [e for e in train if e.split != "eval"], marked
    if len(train) < 2 * min_eval:
        return list(train), []
    ranked = sorted(train, key=lambda e: zlib.crc32(e.prompt.encode("utf-8")))
    n_eval = max(min_eval, round(len(train) * fraction))
    held = {id(e) for e in ranked[:n_eval]}
    return [e for e in train if id(e) not in held], [e for e in train if id(e) in held]


def counts(examples: Iterable[Example], method: str) -> dict[str, int]:
    out = {"examples": 0}
    if method == "kto":
        out.update(desirable=0, undesirable=0)
    for e in examples:
        out["examples"] += 1
        if method == "kto":
            out["desirable" if e.label else "undesirable"] += 1
    return out


def to_trl_rows(examples: Sequence[Example], method: str) -> list[dict[str, Any]]:
    """Rows for TRL's text (non-conversational) datasets.

    KTO has no per-example weight, so an example of weight w appears round(w) times (1 to
    MAX_REPEAT): a reply the user both liked and laughed at counts twice."""
    rows: list[dict[str, Any]] = []
    for e in examples:
        if method == "kto":
            times = min(MAX_REPEAT, max(1, round(e.weight)))
            rows.extend({"prompt": e.prompt, "completion": e.completion, "label": e.label}
                        for _ in range(times))
        elif method == "dpo":
            rows.append({"prompt": e.prompt, "chosen": e.chosen, "rejected": e.rejected})
        else:
            rows.append({"prompt": e.prompt, "completion": e.completion})
    if method == "kto":
        # KTO's KL estimate pairs each example with its batch neighbour's completion, and the
        # data is read in order: interleave the labels so batches are mixed.
        liked = [r for r in rows if r["label"]]
        disliked = [r for r in rows if not r["label"]]
        mixed: list[dict[str, Any]] = []
        for i in range(max(len(liked), len(disliked))):
            mixed.extend(x[i] for x in (liked, disliked) if i < len(x))
        rows = mixed
    return rows
