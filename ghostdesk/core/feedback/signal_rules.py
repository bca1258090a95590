"""What a rule table for implicit feedback is: its rows, their checks, and reading one from TOML.

A `SignalRule` row names a kind (laughter, understood, scorn), the reward weight a match
carries, a language tag and the regular expressions that find it. A `Blocker` row names the
cues that cancel a match: negation just before it ("you don't get me"), sarcasm right after
it ("haha very funny") or anywhere in the message ("呵呵"). A `RuleTable` holds the rows,
checks them and compiles their patterns once. The built-in rows are in
`default_signal_rules`; the code that matches them against a message is `message_signals`.

Patterns are matched against a normalized view of the message: NFKC (full-width letters
and punctuation become ASCII, "…" becomes "..."), case-folded, with curly apostrophes
folded to "'". So patterns are written in lower case with ASCII punctuation.

The table is extended without touching code: `RuleTable.extended()` with new rows, or
`RuleTable.from_toml()` / `load_rule_table()` for a TOML file of `[[rule]]` and
`[[blocker]]` tables (the field names are the dataclass field names; `id` is accepted for
`rule_id` / `blocker_id`, and a rule's `weight` defaults to the kind's default weight).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from ghostdesk.core.feedback.weights import ABANDONED, CONTINUATION, SIGNAL_WEIGHTS

LAUGHTER = "laughter"
UNDERSTOOD = "understood"
SCORN = "scorn"

TEXT_KINDS: tuple[str, ...] = (LAUGHTER, UNDERSTOOD, SCORN)
"""The kinds read from the words of a message (the others come from the conversation's course)."""

DEFAULT_WEIGHTS: dict[str, float] = SIGNAL_WEIGHTS
"""The default weight of each implicit kind (the reward weights table starts from these)."""

ANY_LANG = "*"

BlockerScope = Literal["before", "after", "message"]
_SCOPES: tuple[str, ...] = ("before", "after", "message")


@dataclass(frozen=True)
class SignalRule:
    """One row of the table: phrases of one kind, in one language, with one weight.

    `patterns` are regular expressions searched in the normalized message. A match is
    dropped when it lies inside quotes, a URL, a file name or inline code, when a
    `not_before` regex matches the 30 characters before it (anchor with `$`), when a
    `not_after` regex matches the text right after it (it is matched at that position),
    when `negatable` and a "before" `Blocker` of the same language fires, and when
    `question_cancels` and the clause it sits in ends with "?".
    `ascii_words` compiles with re.ASCII, so `\\b` treats CJK characters as non-letters
    ("哈哈lol" still finds "lol").
    """

    rule_id: str
    kind: str
    weight: float
    lang: str
    patterns: tuple[str, ...]
    negatable: bool = True
    question_cancels: bool = False
    not_before: tuple[str, ...] = ()
    not_after: tuple[str, ...] = ()
    ascii_words: bool = False
    note: str = ""


@dataclass(frozen=True)
class Blocker:
    """Cues that cancel matches of some kinds.

    scope "message": a cue anywhere in the message (outside quotes) cancels every match of
    `kinds` ("呵呵", "/s", "not funny").
    scope "after": a cue matched right after a phrase cancels it ("haha very funny").
    scope "before": a cue in the same clause within `window` characters before a phrase
    cancels it ("you don't get me"); it applies to rules of the same language (or any,
    with lang "*") and, when `negatable_only`, only to rules marked `negatable`.
    `except_patterns` are blanked out of the inspected text first ("can't believe" is not
    a negation of what follows).
    """

    blocker_id: str
    kinds: tuple[str, ...]
    scope: BlockerScope
    patterns: tuple[str, ...]
    lang: str = ANY_LANG
    except_patterns: tuple[str, ...] = ()
    window: int = 40
    negatable_only: bool = True
    ascii_words: bool = False
    note: str = ""


@dataclass(frozen=True)
class CompiledRule:
    rule: SignalRule
    patterns: tuple[re.Pattern[str], ...]
    not_before: tuple[re.Pattern[str], ...]
    not_after: tuple[re.Pattern[str], ...]


@dataclass(frozen=True)
class CompiledBlocker:
    blocker: Blocker
    patterns: tuple[re.Pattern[str], ...]
    except_patterns: tuple[re.Pattern[str], ...]


def _compile(owner: str, patterns: Iterable[str], ascii_words: bool) -> tuple[re.Pattern[str], ...]:
    flags = re.IGNORECASE | (re.ASCII if ascii_words else 0)
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern, flags))
        except re.error as err:
            raise ValueError(f"rule {owner!r}: invalid pattern {pattern!r}: {err}") from err
    return tuple(compiled)


@dataclass(frozen=True)
class RuleTable:
    """The rows the detector uses. Immutable: extending returns a new table."""

    rules: tuple[SignalRule, ...]
    blockers: tuple[Blocker, ...] = ()

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for row_id in [r.rule_id for r in self.rules] + [b.blocker_id for b in self.blockers]:
            if row_id in seen:
                raise ValueError(f"duplicate rule id {row_id!r}")
            seen.add(row_id)
        for blocker in self.blockers:
            if blocker.scope not in _SCOPES:
                raise ValueError(
                    f"blocker {blocker.blocker_id!r}: scope must be one of {_SCOPES}, "
                    f"not {blocker.scope!r}"
                )
        for rule in self.rules:
            if not rule.patterns:
                raise ValueError(f"rule {rule.rule_id!r} has no patterns")

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds this table can detect, in table order."""
        return tuple(dict.fromkeys(rule.kind for rule in self.rules))

    @property
    def langs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(rule.lang for rule in self.rules))

    def extended(
        self, rules: Iterable[SignalRule] = (), blockers: Iterable[Blocker] = ()
    ) -> RuleTable:
        """A new table with `rules` and `blockers` added after the existing rows."""
        return RuleTable(self.rules + tuple(rules), self.blockers + tuple(blockers))

    def merged(self, other: RuleTable) -> RuleTable:
        return self.extended(other.rules, other.blockers)

    def without(self, *row_ids: str) -> RuleTable:
        """A new table without the rules and blockers whose id is in `row_ids`."""
        drop = set(row_ids)
        return RuleTable(
            tuple(r for r in self.rules if r.rule_id not in drop),
            tuple(b for b in self.blockers if b.blocker_id not in drop),
        )

    def with_weight(self, kind: str, weight: float) -> RuleTable:
        """A new table where every rule of `kind` carries `weight`."""
        return RuleTable(
            tuple(replace(r, weight=weight) if r.kind == kind else r for r in self.rules),
            self.blockers,
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RuleTable:
        """Build a table from `{"rule": [...], "blocker": [...]}` (the TOML layout)."""
        unknown = set(data) - {"rule", "blocker"}
        if unknown:
            raise ValueError(f"unknown top-level keys in rule table: {sorted(unknown)}")
        rules = tuple(_rule_from_mapping(row) for row in data.get("rule", ()))
        blockers = tuple(_blocker_from_mapping(row) for row in data.get("blocker", ()))
        return cls(rules, blockers)

    @classmethod
    def from_toml(cls, text: str) -> RuleTable:
        return cls.from_mapping(tomllib.loads(text))

    @cached_property
    def compiled(self) -> tuple[tuple[CompiledRule, ...], tuple[CompiledBlocker, ...]]:
        rules = tuple(
            CompiledRule(
                rule,
                _compile(rule.rule_id, rule.patterns, rule.ascii_words),
                _compile(rule.rule_id, rule.not_before, rule.ascii_words),
                _compile(rule.rule_id, rule.not_after, rule.ascii_words),
            )
            for rule in self.rules
        )
        blockers = tuple(
            CompiledBlocker(
                blocker,
                _compile(blocker.blocker_id, blocker.patterns, blocker.ascii_words),
                _compile(blocker.blocker_id, blocker.except_patterns, blocker.ascii_words),
            )
            for blocker in self.blockers
        )
        return rules, blockers


def load_rule_table(path: str | Path) -> RuleTable:
    """Read a TOML rule file (see the module docstring for the layout)."""
    return RuleTable.from_toml(Path(path).read_text(encoding="utf-8"))


def _tuple_of_str(owner: str, key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{owner!r}: {key} must be a string or a list of strings")
    return tuple(value)


_TUPLE_FIELDS = {"patterns", "not_before", "not_after", "kinds", "except_patterns"}


def _row_kwargs(cls: type, id_field: str, row: Mapping[str, Any]) -> dict[str, Any]:
    row = dict(row)
    if "id" in row:
        row[id_field] = row.pop("id")
    owner = str(row.get(id_field, "?"))
    names = {f.name for f in fields(cls)}
    unknown = set(row) - names
    if unknown:
        raise ValueError(f"{owner!r}: unknown fields {sorted(unknown)}")
    for key in _TUPLE_FIELDS & set(row):
        row[key] = _tuple_of_str(owner, key, row[key])
    return row


def _rule_from_mapping(row: Mapping[str, Any]) -> SignalRule:
    kwargs = _row_kwargs(SignalRule, "rule_id", row)
    owner = kwargs.get("rule_id", "?")
    for required in ("rule_id", "kind", "patterns"):
        if required not in kwargs:
            raise ValueError(f"rule {owner!r}: missing {required!r}")
    if "weight" not in kwargs:
        if kwargs["kind"] not in DEFAULT_WEIGHTS:
            raise ValueError(f"rule {owner!r}: kind {kwargs['kind']!r} needs a weight")
        kwargs["weight"] = DEFAULT_WEIGHTS[kwargs["kind"]]
    kwargs["weight"] = float(kwargs["weight"])
    kwargs.setdefault("lang", ANY_LANG)
    return SignalRule(**kwargs)


def _blocker_from_mapping(row: Mapping[str, Any]) -> Blocker:
    kwargs = _row_kwargs(Blocker, "blocker_id", row)
    owner = kwargs.get("blocker_id", "?")
    for required in ("blocker_id", "kinds", "scope", "patterns"):
        if required not in kwargs:
            raise ValueError(f"blocker {owner!r}: missing {required!r}")
    return Blocker(**kwargs)


__all__ = [
    "ABANDONED",
    "ANY_LANG",
    "CONTINUATION",
    "DEFAULT_WEIGHTS",
    "LAUGHTER",
    "SCORN",
    "TEXT_KINDS",
    "UNDERSTOOD",
    "Blocker",
    "BlockerScope",
    "RuleTable",
    "SignalRule",
    "load_rule_table",
]
