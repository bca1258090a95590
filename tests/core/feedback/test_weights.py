"""Reward weights: seeded defaults, and damaged rows that fall back without losing anything."""

from __future__ import annotations

import sqlite3

import pytest

from ghostdesk.core.errors import SettingsError
from ghostdesk.core.feedback.weights import DEFAULT_WEIGHTS
from ghostdesk.services import build_services


def _sql(db, *statements: str) -> list[tuple]:
    conn = sqlite3.connect(db.path)
    try:
        with conn:
            rows: list[tuple] = []
            for sql in statements:
                rows = conn.execute(sql).fetchall()
            return rows
    finally:
        conn.close()


def test_the_product_defaults_are_seeded(ledger):
    weights = ledger.weights()
    assert dict(weights.values) == {
        "up": 1.0,
        "down": -1.0,
        "laugh": 1.0,
        "laughter": 1.0,
        "understood": 2.0,
        "scorn": -1.0,
        "continuation": 0.1,
        "abandoned": -0.5,
    }
    assert weights.problems == ()


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("'lots'", "is not a number"),
        ("''", "is not a number"),
        ("1e999", "outside"),
        ("42", "outside"),
        ("X'00'", "is not a number"),
    ],
)
def test_a_damaged_weight_falls_back_to_its_default_and_says_so(ledger, db, reply, bad, why):
    _sql(db, f"UPDATE reward_weights SET weight = {bad} WHERE kind = 'up'")
    ledger.rate(reply, "up")  # still works
    weights = ledger.weights()
    assert weights["up"] == 1.0
    [problem] = weights.problems
    assert "👍" in problem and why in problem and "ghostdesk feedback weights up" in problem
    assert ledger.reward_for(reply) == 1.0
    assert ledger.summary().weight_problems == weights.problems
    # The damaged row is left for the user to see and fix: nothing they wrote is lost.
    assert _sql(db, "SELECT count(*) FROM reward_weights WHERE kind = 'up'") == [(1,)]


def test_a_missing_weight_uses_the_default(ledger, db):
    _sql(db, "DELETE FROM reward_weights WHERE kind = 'understood'")
    weights = ledger.weights()
    assert weights["understood"] == 2.0
    assert any("missing" in p for p in weights.problems)


def test_an_unknown_kind_in_the_table_is_ignored(ledger, db):
    _sql(db, "INSERT INTO reward_weights (kind, weight) VALUES ('sigh', 3.0)")
    weights = ledger.weights()
    assert weights["sigh"] == 0.0 and weights.problems == ()


def test_setting_a_weight_validates_it(ledger, reply):
    ledger.rate(reply, "down")
    assert ledger.set_weight("down", -2)["down"] == -2.0
    assert ledger.reward_for(reply) == -2.0
    with pytest.raises(SettingsError, match="out of range"):
        ledger.set_weight("down", 11)
    with pytest.raises(SettingsError, match="no reward weight called 'meh'"):
        ledger.set_weight("meh", 1)
    with pytest.raises(SettingsError, match="must be a number"):
        ledger.set_weight("up", True)  # type: ignore[arg-type]
    assert ledger.weights()["down"] == -2.0


def test_a_repaired_weight_is_used_again(ledger, db):
    _sql(db, "UPDATE reward_weights SET weight = 'x' WHERE kind = 'laugh'")
    assert ledger.weights().problems
    weights = ledger.set_weight("laugh", 0.75)
    assert weights["laugh"] == 0.75 and weights.problems == ()


def test_start_up_tells_the_user_about_a_damaged_weight(ghostdesk_home):
    services = build_services()
    try:
        _sql(services.db, "UPDATE reward_weights SET weight = 'oops' WHERE kind = 'scorn'")
    finally:
        services.close()
    services = build_services()
    try:
        assert any("scorn" in n and "'oops'" in n for n in services.notices)
    finally:
        services.close()


def test_every_kind_has_a_default():
    assert set(DEFAULT_WEIGHTS) == {"up", "down", "laugh", "laughter", "understood", "scorn"} | {
        "continuation",
        "abandoned",
    }
