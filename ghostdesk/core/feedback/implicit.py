"""Implicit feedback: reward signals read from what the user writes and how the chat goes on.

`detect_signals(text)` finds laughter ("haha", "lol", "哈哈哈"), feeling understood ("you
get me", "你懂我") and scorn ("you zombie", "你这个僵尸") in one user message, using the
rule table in `signal_rules`. Each signal carries the exact substring of the original
message that triggered it, so the user can see why and confirm or dismiss it.

`continuation_signal()` and `abandonment_signal()` read the conversation's course: the
user writing again after a reply, or leaving right after it.

`evaluate()` measures the detector on a labelled set; run this module on a TSV file of
`text<TAB>expected_kinds` rows to print the report:

    python -m ghostdesk.core.feedback.implicit tests/core/feedback/implicit_messages.tsv
"""

from __future__ import annotations

import argparse
import re
import sys
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ghostdesk.core.feedback.signal_rules import (
    ABANDONED,
    ANY_LANG,
    CONTINUATION,
    DEFAULT_RULES,
    DEFAULT_WEIGHTS,
    TEXT_KINDS,
    CompiledBlocker,
    CompiledRule,
    RuleTable,
)

ABANDON_TIMEOUT_S = 600.0
"""No user message and no activity in the chat this long after a reply: the reply was abandoned."""

CONVERSATION_RULE_IDS = {
    CONTINUATION: "conversation.continuation",
    ABANDONED: "conversation.abandoned",
}


@dataclass(frozen=True)
class ImplicitSignal:
    """One implicit reward signal.

    For signals read from a message, `phrase` is `text[start:end]` of the original text.
    For signals read from the conversation's course (continuation, abandoned) `phrase` is
    "" and `start == end == 0`.
    """

    kind: str
    weight: float
    phrase: str
    start: int
    end: int
    rule_id: str


# ---------------------------------------------------------------------------------------
# The normalized view of a message
# ---------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------
# Signals from the conversation's course
# ---------------------------------------------------------------------------------------


def continuation_signal(
    turn_index_after_reply: int,
    weight: float = DEFAULT_WEIGHTS[CONTINUATION],
    *,
    max_turns: int | None = None,
) -> ImplicitSignal | None:
    """The reward for the user's `turn_index_after_reply`-th message after a reply.

    1 is the user's first message after the reply, 2 the next one, and so on: each further
    turn of a continuing conversation earns `weight` once. 0 or less (no further turn yet)
    gives None, and so do turns after `max_turns` when a cap is given.
    """
    if turn_index_after_reply < 1:
        return None
    if max_turns is not None and turn_index_after_reply > max_turns:
        return None
    return ImplicitSignal(CONTINUATION, weight, "", 0, 0, CONVERSATION_RULE_IDS[CONTINUATION])


Instant = datetime | float


def _seconds(moment: Instant) -> float:
    return moment.timestamp() if isinstance(moment, datetime) else float(moment)


def abandonment_signal(
    reply_time: Instant,
    next_user_time: Instant | None,
    now: Instant,
    last_activity_in_chat: Instant | None,
    timeout_s: float = ABANDON_TIMEOUT_S,
    weight: float = DEFAULT_WEIGHTS[ABANDONED],
) -> ImplicitSignal | None:
    """The penalty for a reply the user left the conversation on, or None.

    A reply is abandoned when `timeout_s` has passed since `reply_time` (by the caller's
    clock, `now`), the user wrote nothing within `timeout_s` after it (`next_user_time`: the
    user's next message in this chat, None when there is none) and there was no other
    activity in the chat after it (`last_activity_in_chat`: the latest rating, regeneration,
    edit or typing in this chat, None when there is none). Before the timeout it is too early
    to tell: None. Times are datetimes or epoch seconds, all of one sort.
    """
    reply = _seconds(reply_time)
    deadline = reply + timeout_s
    if _seconds(now) < deadline:
        return None
    if next_user_time is not None:
        answered = _seconds(next_user_time)
        if reply <= answered <= deadline:
            return None
    if last_activity_in_chat is not None and _seconds(last_activity_in_chat) > reply:
        return None
    return ImplicitSignal(ABANDONED, weight, "", 0, 0, CONVERSATION_RULE_IDS[ABANDONED])


# ---------------------------------------------------------------------------------------
# Measuring the detector
# ---------------------------------------------------------------------------------------

NO_KINDS = "-"


_SECTION = re.compile(r"#\s*section:\s*(.+?)\s*$")


@dataclass(frozen=True)
class LabelledMessage:
    text: str
    expected: frozenset[str]
    section: str = ""


def parse_labelled(lines: Iterable[str]) -> list[LabelledMessage]:
    """Rows of `text<TAB>expected_kinds` (comma-separated kinds, or "-" for none).

    A header row `text<TAB>expected_kinds` and blank lines are skipped. A line starting
    with "#" that holds no tab is a comment; `# section: NAME` puts the rows below it in
    section NAME.
    """
    rows = []
    section = ""
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        if line.startswith("#") and "\t" not in line:
            if found := _SECTION.match(line):
                section = found.group(1)
            continue
        text, tab, kinds = line.rpartition("\t")
        if not tab:
            raise ValueError(f"line {number}: expected text<TAB>expected_kinds")
        if number == 1 and (text, kinds) == ("text", "expected_kinds"):
            continue
        expected = frozenset(
            k.strip() for k in kinds.split(",") if k.strip() and k.strip() != NO_KINDS
        )
        rows.append(LabelledMessage(text, expected, section))
    return rows


def load_labelled(path: str | Path) -> list[LabelledMessage]:
    with open(path, encoding="utf-8") as handle:
        return parse_labelled(handle)


@dataclass(frozen=True)
class KindScore:
    kind: str
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 1.0 when nothing was predicted."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 1.0 when nothing was expected."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def support(self) -> int:
        return self.tp + self.fn


@dataclass(frozen=True)
class Miss:
    text: str
    expected: frozenset[str]
    predicted: frozenset[str]

    @property
    def false_positives(self) -> frozenset[str]:
        return self.predicted - self.expected

    @property
    def false_negatives(self) -> frozenset[str]:
        return self.expected - self.predicted


@dataclass(frozen=True)
class EvaluationReport:
    kinds: tuple[KindScore, ...]
    overall: KindScore
    messages: int
    exact: int
    misses: tuple[Miss, ...]

    def score(self, kind: str) -> KindScore:
        for score in self.kinds:
            if score.kind == kind:
                return score
        raise KeyError(kind)

    def to_markdown(self, misses: bool = True) -> str:
        def row(score: KindScore, label: str) -> str:
            return (
                f"| {label} | {score.support} | {score.tp} | {score.fp} | {score.fn} "
                f"| {score.precision:.3f} | {score.recall:.3f} | {score.f1:.3f} |"
            )

        lines = [
            f"Messages: {self.messages}; all kinds right: {self.exact} "
            f"({self.exact / self.messages:.1%})."
            if self.messages
            else "Messages: 0.",
            "",
            "| kind | expected | TP | FP | FN | precision | recall | F1 |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            *(row(score, score.kind) for score in self.kinds),
            row(self.overall, "**overall (micro)**"),
        ]
        if misses and self.misses:
            lines += [
                "",
                f"Misses ({len(self.misses)}):",
                "",
                "| message | expected | detected |",
                "| --- | --- | --- |",
            ]
            for miss in self.misses:
                text = miss.text.replace("|", "\\|")
                lines.append(
                    f"| {text} | {_kinds_label(miss.expected)} | {_kinds_label(miss.predicted)} |"
                )
        return "\n".join(lines) + "\n"


def _kinds_label(kinds: Iterable[str]) -> str:
    return ", ".join(sorted(kinds)) or NO_KINDS


def evaluate(
    rows: Iterable[LabelledMessage | tuple[str, Iterable[str]]],
    rules: RuleTable = DEFAULT_RULES,
    kinds: Sequence[str] | None = None,
) -> EvaluationReport:
    """Precision, recall and F1 of `detect_signals` per kind and overall (micro-averaged).

    A detected kind that is expected is a true positive, one that is not expected a false
    positive; an expected kind not detected is a false negative.
    """
    counted = tuple(kinds) if kinds is not None else TEXT_KINDS
    tally = {kind: [0, 0, 0] for kind in counted}
    misses: list[Miss] = []
    messages = exact = 0
    for row in rows:
        if isinstance(row, LabelledMessage):
            text, expected = row.text, row.expected
        else:
            text, expected = row[0], frozenset(row[1])
        expected = frozenset(k for k in expected if k in tally)
        predicted = frozenset(s.kind for s in detect_signals(text, rules) if s.kind in tally)
        messages += 1
        for kind in predicted & expected:
            tally[kind][0] += 1
        for kind in predicted - expected:
            tally[kind][1] += 1
        for kind in expected - predicted:
            tally[kind][2] += 1
        if predicted == expected:
            exact += 1
        else:
            misses.append(Miss(text, expected, predicted))
    scores = tuple(KindScore(kind, *tally[kind]) for kind in counted)
    overall = KindScore(
        "overall",
        sum(s.tp for s in scores),
        sum(s.fp for s in scores),
        sum(s.fn for s in scores),
    )
    return EvaluationReport(scores, overall, messages, exact, tuple(misses))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ghostdesk.core.feedback.implicit",
        description="Measure implicit-signal detection on a labelled TSV, or detect in messages.",
    )
    parser.add_argument("labelled", nargs="?", help="TSV file of text<TAB>expected_kinds rows")
    parser.add_argument(
        "--detect",
        metavar="TEXT",
        action="append",
        default=[],
        help="print the signals found in TEXT (may be repeated)",
    )
    args = parser.parse_args(argv)
    if not args.labelled and not args.detect:
        parser.error("give a labelled TSV file or --detect TEXT")
    for text in args.detect:
        signals = detect_signals(text)
        print(f"{text!r}:")
        for s in signals:
            print(f"  {s.kind:<10} {s.weight:+.1f}  {s.phrase!r} [{s.start}:{s.end}]  {s.rule_id}")
        if not signals:
            print("  (none)")
    if args.labelled:
        rows = load_labelled(args.labelled)
        sections = list(dict.fromkeys(row.section for row in rows))
        if len(sections) > 1:
            for section in sections:
                print(f"## Section: {section or '(none)'}\n")
                sys.stdout.write(evaluate(r for r in rows if r.section == section).to_markdown())
                print()
            print("## All sections\n")
            sys.stdout.write(evaluate(rows).to_markdown(misses=False))
        else:
            sys.stdout.write(evaluate(rows).to_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
