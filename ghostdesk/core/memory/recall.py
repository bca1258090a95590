"""Resonance recall: which crystals come back into the prompt, in which order, in what words.

A crystal resonates when the cosine similarity between the recall query and its vector is at
least `threshold`. Those that do are ordered by

    score = similarity + importance_weight·(importance − 0.5) + recency_weight·2^(−age/half_life)

(age: days since it last resonated), the best `top_k` are kept, and as many of them as fit
`token_budget` are written into the prompt block. The similarity decides *whether* a crystal
is recalled; importance and recency only break near-ties, so they are kept small.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ghostdesk.core.memory.crystal_record import CrystalRecord

BLOCK_HEADER = "Things you remember about the user:"
CountTokens = Callable[[str], int]


def approx_tokens(text: str) -> int:
    """About four characters per token: a fallback when no tokenizer is at hand."""
    return max(1, (len(text) + 3) // 4)


@dataclass(frozen=True)
class RecallParams:
    top_k: int = 5
    threshold: float = 0.30
    importance_weight: float = 0.10
    recency_weight: float = 0.05
    recency_half_life_days: float = 30.0
    token_budget: int = 300


@dataclass(frozen=True)
class RecalledCrystal:
    crystal: CrystalRecord
    similarity: float
    """Cosine similarity between the recall query and the crystal (from SQLite's vector)."""
    score: float
    """The ranking score (similarity with the importance and recency terms)."""
    rank: int
    """1 = first in the prompt block."""


@dataclass(frozen=True)
class RecallResult:
    crystals: tuple[RecalledCrystal, ...] = ()
    """What went into the prompt, best first."""
    prompt_block: str = ""
    """"Things you remember about the user:\\n- …", or "" when nothing resonated."""
    block_tokens: int = 0
    left_out: tuple[RecalledCrystal, ...] = ()
    """Resonated and ranked, but did not fit the token budget."""
    seconds: float = 0.0

    @property
    def crystal_ids(self) -> list[int]:
        return [r.crystal.id for r in self.crystals]


def score(crystal: CrystalRecord, similarity: float, now: datetime, params: RecallParams,
          ) -> float:
    age_days = max(0.0, (now - crystal.last_resonated_at).total_seconds() / 86400.0)
    recency = 2.0 ** (-age_days / params.recency_half_life_days)
    return (similarity + params.importance_weight * (crystal.importance - 0.5)
            + params.recency_weight * recency)


def rank(candidates: Sequence[tuple[CrystalRecord, float]], now: datetime,
         params: RecallParams) -> list[RecalledCrystal]:
    """Candidates (crystal, similarity) over the threshold, best first, at most top_k."""
    kept = [(c, sim, score(c, sim, now, params)) for c, sim in candidates
            if sim >= params.threshold]
    kept.sort(key=lambda item: (-item[2], -item[1], item[0].id))
    return [RecalledCrystal(c, float(sim), float(sc), i)
            for i, (c, sim, sc) in enumerate(kept[: params.top_k], 1)]


def bullet(text: str) -> str:
    return "- " + " ".join(text.split())


def render_block(ranked: Sequence[RecalledCrystal], count_tokens: CountTokens,
                 token_budget: int, header: str = BLOCK_HEADER,
                 ) -> tuple[str, int, list[RecalledCrystal], list[RecalledCrystal]]:
    """The prompt block of as many ranked crystals as fit the budget, in rank order (a long
    one that does not fit is skipped, a shorter one after it may still fit).
    Returns (text, its tokens, included renumbered 1.., left out)."""
    lines: list[str] = []
    included: list[RecalledCrystal] = []
    left_out: list[RecalledCrystal] = []
    tokens = 0
    for item in ranked:
        candidate = "\n".join([header, *lines, bullet(item.crystal.text)])
        cost = count_tokens(candidate)
        if cost <= token_budget:
            lines.append(bullet(item.crystal.text))
            included.append(item)
            tokens = cost
        else:
            left_out.append(item)
    if not included:
        return "", 0, [], left_out
    renumbered = [RecalledCrystal(r.crystal, r.similarity, r.score, i)
                  for i, r in enumerate(included, 1)]
    return "\n".join([header, *lines]), tokens, renumbered, left_out
