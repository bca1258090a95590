"""Reward weights: how much each kind of feedback adds to a reply's reward, kept in SQLite.

The `reward_weights` table holds one row per kind, seeded with the product's defaults
(👍 +1, 👎 −1, 😂 +1, laughter +1.0, "you get me" +2.0, scorn −1.0, each further turn +0.1,
abandoned −0.5). A row that is missing, not a number, not finite or out of range never stops
anything: the default is used instead, and the problem is reported so it can be shown.
The row itself is left as it is, so nothing the user wrote is lost.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

from ghostdesk.core.errors import SettingsError

RATING_KINDS: tuple[str, ...] = ("up", "down", "laugh")
"""The three buttons under a reply."""
TEXT_FEEDBACK_KINDS: tuple[str, ...] = ("comment", "better_reply")
"""Written feedback: it carries no reward of its own."""
CONTINUATION = "continuation"
ABANDONED = "abandoned"
# The implicit kinds' defaults (signal_rules.DEFAULT_WEIGHTS is this very dict).
SIGNAL_WEIGHTS: dict[str, float] = {
    "laughter": 1.0,
    "understood": 2.0,
    "scorn": -1.0,
    CONTINUATION: 0.1,
    ABANDONED: -0.5,
}
SIGNAL_KINDS: tuple[str, ...] = tuple(SIGNAL_WEIGHTS)
"""Implicit signals: laughter, understood, scorn, continuation, abandoned."""

DEFAULT_WEIGHTS: dict[str, float] = {"up": 1.0, "down": -1.0, "laugh": 1.0, **SIGNAL_WEIGHTS}
WEIGHTED_KINDS: tuple[str, ...] = tuple(DEFAULT_WEIGHTS)

WEIGHT_LIMIT = 10.0
"""A weight must lie in [-WEIGHT_LIMIT, WEIGHT_LIMIT]."""

KIND_LABELS: dict[str, str] = {
    "up": "👍",
    "down": "👎",
    "laugh": "😂",
    "comment": "comment",
    "better_reply": "better reply",
    "laughter": "laughter",
    "understood": "“you get me”",
    "scorn": "scorn",
    "continuation": "continued",
    "abandoned": "left after the reply",
}


def rating_marks(ratings: Iterable[str]) -> str:
    """The buttons that are on, as their marks in button order ("👍 😂"); "" for none."""
    on = set(ratings)
    return " ".join(KIND_LABELS[kind] for kind in RATING_KINDS if kind in on)


@dataclass(frozen=True)
class RewardWeights:
    """The weights in use, and what was wrong with the stored ones (empty when all is well)."""

    values: Mapping[str, float]
    problems: tuple[str, ...] = field(default=())

    def __getitem__(self, kind: str) -> float:
        return self.values.get(kind, 0.0)

    @classmethod
    def defaults(cls) -> RewardWeights:
        return cls(dict(DEFAULT_WEIGHTS))


def load_weights(session: Session) -> RewardWeights:
    """Read the table; every bad or missing row falls back to its default, with a problem."""
    # typeof(): SQLite keeps whatever was written into a REAL column, text included.
    rows = session.execute(text("SELECT kind, weight, typeof(weight) FROM reward_weights"))
    values = dict(DEFAULT_WEIGHTS)
    problems: list[str] = []
    seen: set[str] = set()
    for kind, raw, sql_type in rows:
        if kind not in DEFAULT_WEIGHTS:
            continue  # a kind from a newer GhostDesk, or a stray row: it weighs nothing here
        seen.add(kind)
        default = DEFAULT_WEIGHTS[kind]
        if sql_type not in ("real", "integer"):
            problems.append(_problem(kind, raw, "is not a number", default))
            continue
        value = float(raw)
        if not math.isfinite(value) or abs(value) > WEIGHT_LIMIT:
            problems.append(
                _problem(kind, raw, f"is outside -{WEIGHT_LIMIT:g}…{WEIGHT_LIMIT:g}", default)
            )
            continue
        values[kind] = value
    for kind in DEFAULT_WEIGHTS:
        if kind not in seen:
            problems.append(
                f"The reward weight for {KIND_LABELS[kind]} is missing from the database; "
                f"using the default {DEFAULT_WEIGHTS[kind]:+g}."
            )
    return RewardWeights(values, tuple(problems))


def _problem(kind: str, raw: object, why: str, default: float) -> str:
    return (
        f"The reward weight for {KIND_LABELS[kind]} ({raw!r}) {why}; using the default "
        f"{default:+g}. Fix it with: ghostdesk feedback weights {kind} VALUE"
    )


def check_weight(kind: str, value: float) -> float:
    """The weight to store for `kind`, or SettingsError naming what is allowed."""
    if kind not in DEFAULT_WEIGHTS:
        raise SettingsError(
            f"There is no reward weight called {kind!r}.",
            hint=f"Known kinds: {', '.join(WEIGHTED_KINDS)}.",
        )
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SettingsError(f"The reward weight for {kind} must be a number.")
    value = float(value)
    if not math.isfinite(value) or abs(value) > WEIGHT_LIMIT:
        raise SettingsError(
            f"The reward weight for {kind} is out of range.",
            hint=f"Allowed: -{WEIGHT_LIMIT:g} to {WEIGHT_LIMIT:g}.",
        )
    return value


def store_weight(session: Session, kind: str, value: float) -> None:
    """Insert or replace one weight (validated first)."""
    value = check_weight(kind, value)
    session.execute(
        text(
            "INSERT INTO reward_weights (kind, weight) VALUES (:kind, :weight) "
            "ON CONFLICT (kind) DO UPDATE SET weight = excluded.weight"
        ),
        {"kind": kind, "weight": value},
    )
