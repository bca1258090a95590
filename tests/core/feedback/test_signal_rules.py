"""The rule table: the built-in rows and their weights, and extending a table as data."""

from __future__ import annotations

import pytest

from ghostdesk.core.feedback.default_signal_rules import DEFAULT_RULES
from ghostdesk.core.feedback.message_signals import detect_signals
from ghostdesk.core.feedback.signal_rules import (
    ABANDONED,
    CONTINUATION,
    DEFAULT_WEIGHTS,
    LAUGHTER,
    SCORN,
    TEXT_KINDS,
    UNDERSTOOD,
    Blocker,
    RuleTable,
    SignalRule,
    load_rule_table,
)


def kinds(text: str, rules: RuleTable = DEFAULT_RULES) -> set[str]:
    return {signal.kind for signal in detect_signals(text, rules)}


def test_default_table_has_the_product_weights():
    assert DEFAULT_WEIGHTS == {
        LAUGHTER: 1.0,
        UNDERSTOOD: 2.0,
        SCORN: -1.0,
        CONTINUATION: 0.1,
        ABANDONED: -0.5,
    }
    for rule in DEFAULT_RULES.rules:
        assert rule.weight == DEFAULT_WEIGHTS[rule.kind], rule.rule_id
    assert set(DEFAULT_RULES.kinds) == set(TEXT_KINDS)
    assert {"en", "zh"} <= set(DEFAULT_RULES.langs)


SPANISH_TOML = r"""
[[rule]]
id = "es.laughter.jaja"
kind = "laughter"
lang = "es"
patterns = ['\bj+a+(?:j+a+)+\b']
negatable = false
ascii_words = true

[[rule]]
id = "es.understood.me_entiendes"
kind = "understood"
lang = "es"
patterns = ['\bme entiendes\b']
question_cancels = true

[[blocker]]
id = "es.negation"
kinds = ["understood"]
scope = "before"
lang = "es"
patterns = ['\bno\b', '\bnunca\b']
"""


def test_a_new_language_is_added_through_data(tmp_path):
    path = tmp_path / "es.toml"
    path.write_text(SPANISH_TOML, encoding="utf-8")
    table = DEFAULT_RULES.merged(load_rule_table(path))

    assert kinds("jajaja qué risa", table) == {LAUGHTER}
    assert kinds("JAJAJA", table) == {LAUGHTER}
    (signal,) = detect_signals("de verdad me entiendes", table)
    assert (signal.kind, signal.weight, signal.phrase) == (UNDERSTOOD, 2.0, "me entiendes")
    assert signal.rule_id == "es.understood.me_entiendes"
    assert kinds("tú no me entiendes", table) == set()
    assert kinds("¿me entiendes?", table) == set()
    # the default table does not know Spanish
    assert kinds("jajaja") == set()


def test_rows_can_be_added_and_removed_as_dataclasses():
    table = DEFAULT_RULES.extended(
        rules=[
            SignalRule("fr.laughter.mdr", LAUGHTER, 1.0, "fr", (r"\bmdr+\b",), ascii_words=True)
        ],
        blockers=[Blocker("fr.pas_drole", (LAUGHTER,), "message", (r"pas drôle",))],
    )
    assert kinds("mdrrr", table) == {LAUGHTER}
    assert kinds("mdr, pas drôle", table) == set()
    assert kinds("lol", table.without("en.laughter.lol")) == set()
    assert {s.weight for s in detect_signals("lol", table.with_weight(LAUGHTER, 0.5))} == {0.5}


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[rule]]\nid = "x"\nkind = "laughter"\npatterns = ["(unclosed"]', "invalid pattern"),
        ('[[rule]]\nid = "x"\nkind = "laughter"\npatterns = ["a"]\ncolour = "red"', "unknown"),
        ('[[rule]]\nid = "x"\nkind = "joy"\npatterns = ["a"]', "needs a weight"),
        ('[[rule]]\nid = "x"\nkind = "laughter"', "missing"),
        ('[[blocker]]\nid = "b"\nkinds = ["laughter"]\nscope = "later"\npatterns = ["a"]', "scope"),
        ('[[rule]]\nid = "en.laughter.lol"\nkind = "laughter"\npatterns = ["a"]', "duplicate"),
        ("[[rules]]\nid = 1", "top-level"),
    ],
)
def test_bad_rule_data_is_rejected_with_the_reason(toml, message):
    with pytest.raises(ValueError, match=message):
        table = DEFAULT_RULES.merged(RuleTable.from_toml(toml))
        detect_signals("x", table)
