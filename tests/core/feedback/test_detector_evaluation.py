"""Measuring the implicit-signal detector: the harness, and the figures the detector is held to
on the labelled messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghostdesk.core.feedback.signal_rules import LAUGHTER, SCORN, TEXT_KINDS, UNDERSTOOD
from tests.core.feedback.detector_evaluation import (
    LabelledMessage,
    evaluate,
    load_labelled,
    main,
    parse_labelled,
)

LABELLED = Path(__file__).with_name("implicit_messages.tsv")


def test_evaluate_counts_true_and_false_positives_and_negatives():
    report = evaluate(
        [
            ("haha", {LAUGHTER}),  # TP laughter
            ("you get me", set()),  # FP understood
            ("the weather is nice", {SCORN}),  # FN scorn
            ("你懂我 哈哈", {UNDERSTOOD, LAUGHTER}),  # 2 TP
        ]
    )
    assert (report.score(LAUGHTER).tp, report.score(LAUGHTER).fp) == (2, 0)
    assert (report.score(UNDERSTOOD).tp, report.score(UNDERSTOOD).fp) == (1, 1)
    assert report.score(SCORN).fn == 1
    assert (report.overall.tp, report.overall.fp, report.overall.fn) == (3, 1, 1)
    assert report.overall.precision == pytest.approx(0.75)
    assert report.overall.recall == pytest.approx(0.75)
    assert report.messages == 4 and report.exact == 2
    markdown = report.to_markdown()
    assert "| laughter | 2 | 2 | 0 | 0 | 1.000 | 1.000 | 1.000 |" in markdown
    assert "the weather is nice" in markdown


def test_parse_labelled_reads_sections_and_skips_header_and_comments():
    rows = parse_labelled(
        [
            "text\texpected_kinds\n",
            "# section: a\n",
            "haha\tlaughter\n",
            "\n",
            "# just a comment\n",
            "#lol\tlaughter\n",
            "# section: b\n",
            "plain\t-\n",
            "both\tlaughter, scorn\n",
        ]
    )
    assert rows == [
        LabelledMessage("haha", frozenset({LAUGHTER}), "a"),
        LabelledMessage("#lol", frozenset({LAUGHTER}), "a"),
        LabelledMessage("plain", frozenset(), "b"),
        LabelledMessage("both", frozenset({LAUGHTER, SCORN}), "b"),
    ]
    with pytest.raises(ValueError, match="line 1"):
        parse_labelled(["no tab here"])


def test_the_labelled_set_is_big_and_bilingual():
    rows = load_labelled(LABELLED)
    chinese = [r for r in rows if any("\u4e00" <= ch <= "\u9fff" for ch in r.text)]
    assert len(rows) >= 170
    assert len(chinese) >= 60
    for kind in TEXT_KINDS:
        assert sum(kind in r.expected for r in rows) >= 30, kind
        assert sum(kind in r.expected for r in chinese) >= 15, kind
    assert sum(not r.expected for r in rows) >= 100
    assert all(r.expected <= set(TEXT_KINDS) for r in rows)
    assert "held-out" in {r.section for r in rows}


def test_precision_and_recall_on_the_labelled_set():
    report = evaluate(load_labelled(LABELLED))
    assert report.overall.precision >= 0.98, report.to_markdown()
    assert report.overall.recall >= 0.95, report.to_markdown()
    for kind in TEXT_KINDS:
        assert report.score(kind).precision >= 0.97, report.to_markdown()
        assert report.score(kind).recall >= 0.93, report.to_markdown()


def test_precision_and_recall_on_the_held_out_section():
    """The held-out rows were written after the table was frozen and are not tuned on."""
    rows = [r for r in load_labelled(LABELLED) if r.section == "held-out"]
    report = evaluate(rows)
    assert report.overall.precision >= 0.95, report.to_markdown()
    assert report.overall.recall >= 0.85, report.to_markdown()


def test_the_command_prints_the_report(capsys):
    assert main([str(LABELLED), "--detect", "哈哈哈 you get me"]) == 0
    out = capsys.readouterr().out
    assert "laughter   +1.0  '哈哈哈'" in out
    assert "## Section: held-out" in out
    assert "**overall (micro)**" in out
