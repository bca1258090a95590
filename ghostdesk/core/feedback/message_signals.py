"""Reads implicit feedback from the words of one user message: laughter, feeling understood, scorn.

`detect_signals(text)` finds laughter ("haha", "lol", "哈哈哈"), feeling understood ("you
get me", "你懂我") and scorn ("you zombie", "你这个僵尸") using a rule table (by default
`default_signal_rules.DEFAULT_RULES`; what a table is: `signal_rules`). Each signal carries
the exact substring of the original message that triggered it, so the user can see why and
confirm or dismiss it. How well it does on labelled messages: docs/implicit-signals.md.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Sequence

from ghostdesk.core.feedback.default_signal_rules import DEFAULT_RULES
from ghostdesk.core.feedback.records import ImplicitSignal
from ghostdesk.core.feedback.signal_rules import (
    ANY_LANG,
    CompiledBlocker,
    CompiledRule,
    RuleTable,
)

# Folded after NFKC and case-folding; each maps one character to one character.
_FOLD = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00b4": "'", "\u2032": "'"})

# Clause boundaries in the normalized text (full-width punctuation is ASCII after NFKC).
_CLAUSE_BOUNDARIES = frozenset(",.!?;\n。、~")

_MASKED = re.compile(
    r"```.*?```"  # fenced code
    r"|`[^`\n]*`"  # inline code
    r"|(?:https?://|www\.)\S+"  # URLs
    r"|[\w.+-]+@[\w-]+\.[\w.]+"  # e-mail addresses
    r"|\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|io|cn|dev|app|co|ai|gov|edu)(?:/\S*)?\b"
    r"|\b[\w-]+(?:\.[\w-]+)*\.(?:py|js|ts|txt|md|json|toml|ya?ml|html?|css|png|jpe?g|gif|"
    r"mp[34]|exe|zip|pdf|docx?|xlsx?|csv|sh|rs|go|java|cpp|log)\b",
    re.DOTALL | re.ASCII,
)

_QUOTE_PAIRS = re.compile(
    r'"[^"\n]+"'
    r"|\u201c[^\u201d\n]+\u201d"  # “ ”
    r"|\u300c[^\u300d\n]+\u300d"  # 「 」
    r"|\u300e[^\u300f\n]+\u300f"  # 『 』
    r"|\u00ab[^\u00bb\n]+\u00bb"  # « »
    r"|\u300a[^\u300b\n]+\u300b"  # 《 》
    r"|(?<![\w])'[^\n]+?'(?![\w])"  # 'single quotes', not the apostrophe in "don't"
)


class _View:
    """The message normalized for matching, with a map back to the original characters."""

    def __init__(self, text: str) -> None:
        chars: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        i, n = 0, len(text)
        while i < n:
            j = i + 1
            while j < n and unicodedata.combining(text[j]):
                j += 1
            normalized = unicodedata.normalize("NFKC", text[i:j]).casefold().translate(_FOLD)
            for ch in normalized:
                chars.append(ch)
                starts.append(i)
                ends.append(j)
            i = j
        self.original = text
        self.text = "".join(chars)
        self._starts = starts
        self._ends = ends
        self.masked = [m.span() for m in _MASKED.finditer(self.text)]
        self.quoted = [m.span() for m in _QUOTE_PAIRS.finditer(self.text)]
        hidden = list(self.text)
        for a, b in self.masked + self.quoted:
            hidden[a:b] = " " * (b - a)
        self.unquoted = "".join(hidden)
        self._boundaries = [k for k, ch in enumerate(self.text) if ch in _CLAUSE_BOUNDARIES]

    def original_span(self, a: int, b: int) -> tuple[int, int]:
        return self._starts[a], self._ends[b - 1]

    def hidden(self, a: int, b: int) -> bool:
        """True when [a, b) overlaps masked text or lies inside a quotation."""
        if any(a < me and b > ms for ms, me in self.masked):
            return True
        return any(qs < a and b < qe for qs, qe in self.quoted)

    def clause_before(self, a: int) -> str:
        k = bisect_left(self._boundaries, a)
        start = self._boundaries[k - 1] + 1 if k > 0 else 0
        return self.text[start:a]

    def clause_ends_with_question(self, b: int) -> bool:
        k = bisect_left(self._boundaries, b)
        return k < len(self._boundaries) and self.text[self._boundaries[k]] == "?"


def _blocked_before(
    view: _View, a: int, rule: CompiledRule, blockers: Sequence[CompiledBlocker]
) -> bool:
    clause = view.clause_before(a)
    for blocker in blockers:
        b = blocker.blocker
        if rule.rule.kind not in b.kinds:
            continue
        if b.negatable_only and not rule.rule.negatable:
            continue
        if b.lang != ANY_LANG and rule.rule.lang != ANY_LANG and b.lang != rule.rule.lang:
            continue
        window = clause[-b.window :] if b.window > 0 else clause
        for exception in blocker.except_patterns:
            window = exception.sub(lambda m: " " * len(m.group()), window)
        if any(p.search(window) for p in blocker.patterns):
            return True
    return False


def _accepts(
    view: _View,
    a: int,
    b: int,
    rule: CompiledRule,
    before: Sequence[CompiledBlocker],
    after: Sequence[CompiledBlocker],
) -> bool:
    if view.hidden(a, b):
        return False
    text = view.text
    preceding = text[max(0, a - 30) : a]
    if any(p.search(preceding) for p in rule.not_before):
        return False
    if any(p.match(text, b) for p in rule.not_after):
        return False
    if any(
        rule.rule.kind in blocker.blocker.kinds and any(p.match(text, b) for p in blocker.patterns)
        for blocker in after
    ):
        return False
    if rule.rule.question_cancels and view.clause_ends_with_question(b):
        return False
    return not _blocked_before(view, a, rule, before)


def detect_signals(text: str, rules: RuleTable = DEFAULT_RULES) -> list[ImplicitSignal]:
    """The implicit signals in one user message, at most one per kind, in text order.

    When several phrases of one kind match, the one with the largest absolute weight wins,
    then the earliest. Matching is case-insensitive and NFKC-normalized (full-width text
    matches); `phrase`, `start` and `end` refer to the original `text`.
    """
    if not text:
        return []
    compiled_rules, compiled_blockers = rules.compiled
    view = _View(text)
    by_scope: dict[str, list[CompiledBlocker]] = {"before": [], "after": [], "message": []}
    for blocker in compiled_blockers:
        by_scope[blocker.blocker.scope].append(blocker)
    silenced = {
        kind
        for blocker in by_scope["message"]
        if any(p.search(view.unquoted) for p in blocker.patterns)
        for kind in blocker.blocker.kinds
    }

    best: dict[str, tuple[tuple[float, int, int], ImplicitSignal]] = {}
    for rule in compiled_rules:
        kind = rule.rule.kind
        if kind in silenced:
            continue
        for pattern in rule.patterns:
            for match in pattern.finditer(view.text):
                a, b = match.span()
                if a == b:
                    continue
                if not _accepts(view, a, b, rule, by_scope["before"], by_scope["after"]):
                    continue
                start, end = view.original_span(a, b)
                signal = ImplicitSignal(
                    kind=kind,
                    weight=rule.rule.weight,
                    phrase=text[start:end],
                    start=start,
                    end=end,
                    rule_id=rule.rule.rule_id,
                )
                key = (-abs(signal.weight), start, -(end - start))
                if kind not in best or key < best[kind][0]:
                    best[kind] = (key, signal)
                break  # the first accepted match of a pattern is its earliest
    return sorted((signal for _, signal in best.values()), key=lambda s: (s.start, s.kind))
