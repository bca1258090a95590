"""Asking the chat model for facts: the crystallization prompt, and a forgiving parser of the
answer (crystallization.py decides when, and takes the facts into memory).

The model is asked for one fact per line, each with an importance from 1 to 5, greedy and
with a small token limit. Small models answer sloppily (numbering, echoes of the chat, the
example copied back, repeated lines, no importance), so `parse_facts` keeps only lines that
look like a fact and drops the rest. The answer is started for the model ("- The user"),
which keeps even the bundled 270M model on the format.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ghostdesk.core.llm.types import (
    ChatEngine,
    ChatMessage,
    GenerationStats,
    RenderedPrompt,
    SamplingParams,
)

EXAMPLE_FACT = "The user's brother is called Tom."
ANSWER_PREFIX = "- The user"
DEFAULT_IMPORTANCE = 3
INSTRUCTIONS = (
    "Write the facts about the user worth remembering, one per line, each ending with an "
    "importance from 1 to 5, like:\n- " + EXAMPLE_FACT + " (4)"
)
SYSTEM = "You keep short notes about the user."

_BULLET = re.compile(r"^\s*(?:[-*•·>]+|\(?\d{1,2}[.)]|#+)\s*")
_SPECIAL = re.compile(r"<[^<>\s]{1,40}>")
_TRAILING_IMPORTANCE = [
    re.compile(r"[\s(\[{]*(?:importance|imp\.?|priority)?\s*[:=]?\s*([1-5])\s*(?:/\s*5)?"
               r"\s*[)\]}]\s*\.?$", re.I),
    re.compile(r"\s*[|:;,–—-]\s*(?:importance|imp\.?|priority)?\s*[:=]?\s*([1-5])"
               r"\s*(?:/\s*5)?\s*\.?$", re.I),
    re.compile(r"\s*(?:importance|priority)\s*[:=]?\s*([1-5])\s*(?:/\s*5)?\s*\.?$", re.I),
]
_SPEAKER = re.compile(r"^\s*[\w ]{1,30}:\s")
_HEADER_WORDS = ("fact", "here are", "note", "summary", "conversation", "importance")
# Words that say nothing on their own: "The user is a user." is not a fact.
_EMPTY_WORDS = frozenset((
    "the", "user", "users", "user's", "a", "an", "is", "are", "was", "be", "been", "has",
    "have", "had", "and", "or", "of", "to", "in", "on", "it", "they", "he", "she", "them",
    "his", "her", "their", "this", "that", "very", "also",
))


@dataclass(frozen=True)
class Fact:
    text: str
    importance: float
    """0.2 (1 of 5) .. 1.0 (5 of 5)."""


@dataclass(frozen=True)
class TurnText:
    """A message offered to crystallization."""

    message_id: int
    role: str
    content: str


def _norm_key(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def parse_facts(output: str, *, max_facts: int = 8, min_chars: int = 8, max_chars: int = 200,
                speakers: Sequence[str] = ("user", "companion", "assistant")) -> list[Fact]:
    """Facts from the model's answer; anything that does not look like one is dropped."""
    facts: list[Fact] = []
    position: dict[str, int] = {}
    ignored = {_norm_key(EXAMPLE_FACT)}
    lowered_speakers = {s.lower() for s in speakers}
    for raw in output.splitlines():
        line = _SPECIAL.sub(" ", raw).strip()
        for _ in range(3):  # "- 1. fact", "* - fact"
            line = _BULLET.sub("", line, count=1).strip()
        if not line:
            continue
        speaker = _SPEAKER.match(line)
        if speaker and speaker.group(0).strip().rstrip(":").strip().lower() in lowered_speakers:
            continue  # an echo of the conversation
        importance = DEFAULT_IMPORTANCE
        for pattern in _TRAILING_IMPORTANCE:
            found = pattern.search(line)
            if found:
                importance = int(found.group(1))
                line = line[: found.start()].strip()
                break
        line = line.strip(" \"'`*_").rstrip(",;:-–— ").strip()
        if not line or line.endswith("?"):
            continue
        lowered = line.lower()
        if line.endswith(":") or (len(line.split()) <= 4 and lowered.startswith(_HEADER_WORDS)):
            continue
        if lowered in ("none", "n/a", "nothing", "no facts"):
            continue
        if len(line) < min_chars or len(line.split()) < 3 or len(line) > max_chars:
            continue
        if not re.search(r"[^\W\d_]", line):
            continue
        if all(w in _EMPTY_WORDS for w in re.findall(r"[\w']+", line.lower())):
            continue
        if line[-1] not in ".!。":
            line += "."
        line = line[0].upper() + line[1:]
        key = _norm_key(line)
        if key in position:  # said twice: once, with the higher importance
            kept = facts[position[key]]
            facts[position[key]] = Fact(kept.text, max(kept.importance, importance / 5.0))
            continue
        if key in ignored or len(facts) >= max_facts:
            continue
        position[key] = len(facts)
        facts.append(Fact(line, importance / 5.0))
    return facts


def join_prefix(output: str) -> str:
    """The answer with the words we started it with, if the model continued them
    ("'s sister…", " works…"); the model's text alone if it started afresh."""
    if output[:1] in ("'", "’") or (output[:1].isspace() and output[:1] != "\n"):
        return ANSWER_PREFIX + output
    return output


def transcript(turns: Sequence[TurnText], companion_name: str, *, per_message_chars: int = 600,
               ) -> str:
    lines = []
    for t in turns:
        who = "User" if t.role == "user" else companion_name
        text = " ".join(t.content.split())
        if len(text) > per_message_chars:
            text = text[: per_message_chars - 1].rsplit(" ", 1)[0] + "…"
        lines.append(f"{who}: {text}")
    return "\n".join(lines)


def build_prompt(engine: ChatEngine, turns: Sequence[TurnText], *, companion_name: str,
                 max_tokens: int) -> tuple[RenderedPrompt, list[TurnText]]:
    """The prompt, with the oldest turns left out until it fits the model's context.
    Returns the prompt and the turns it contains."""
    n_ctx = engine.info.n_ctx or 2048
    kept = list(turns)
    while True:
        body = f"Conversation:\n{transcript(kept, companion_name)}\n\n{INSTRUCTIONS}"
        rendered = engine.render([ChatMessage("system", SYSTEM), ChatMessage("user", body)])
        prompt = RenderedPrompt(rendered.text + ANSWER_PREFIX, rendered.stop,
                                rendered.format_name)
        if len(kept) <= 1 or engine.count_tokens(prompt.text) + max_tokens + 8 <= n_ctx:
            return prompt, kept
        kept = kept[1:]


def extract_facts(engine: ChatEngine, turns: Sequence[TurnText], *,
                  companion_name: str = "Companion", max_tokens: int = 120,
                  max_facts: int = 8) -> tuple[list[Fact], str]:
    """Ask the model for facts about the user in these turns. Returns (facts, raw answer)."""
    prompt, _kept = build_prompt(engine, turns, companion_name=companion_name,
                                 max_tokens=max_tokens)
    stats = GenerationStats()
    pieces = list(engine.stream(prompt, SamplingParams.greedy(max_tokens), stats))
    answer = join_prefix("".join(pieces))
    facts = parse_facts(answer, max_facts=max_facts,
                        speakers=("user", "companion", "assistant", companion_name))
    return facts, answer
