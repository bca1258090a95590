"""Measures the implicit-signal detector on labelled messages: precision, recall and F1 per kind.

A test helper, not part of GhostDesk: the tests hold the detector to its figures with it,
and docs/implicit-signals.md quotes its report. Run it on a TSV file of
`text<TAB>expected_kinds` rows to print the report, or with `--detect TEXT` to see the
signals of one message:

    python -m tests.core.feedback.detector_evaluation tests/core/feedback/implicit_messages.tsv
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ghostdesk.core.feedback.default_signal_rules import DEFAULT_RULES
from ghostdesk.core.feedback.message_signals import detect_signals
from ghostdesk.core.feedback.signal_rules import TEXT_KINDS, RuleTable

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
        prog="python -m tests.core.feedback.detector_evaluation",
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
