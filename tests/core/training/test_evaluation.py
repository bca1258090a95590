"""Scoring held-out feedback by implicit reward, and the adopt decision."""

from __future__ import annotations

import pytest

from ghostdesk.core.training.evaluation import (
    PreferenceScore,
    decide_adoption,
    score_paired,
    score_targets,
    score_unpaired,
)


def test_unpaired_accuracy_is_pairwise_and_base_is_chance() -> None:
    labels = [True, True, False, False]
    assert score_unpaired([0.0] * 4, labels) == PreferenceScore(0.5, 0.0, 4)  # the base
    s = score_unpaired([2.0, 1.0, -1.0, 0.5], labels)
    assert s.accuracy == 1.0 and s.reward_margin == pytest.approx(1.75)
    s = score_unpaired([2.0, -2.0, -1.0, 0.5], labels)  # one liked reply scored low
    assert s.accuracy == 0.5
    s = score_unpaired([1.0, 1.0, 1.0, 0.0], labels)  # two ties of four pairs: half a win each
    assert s.accuracy == pytest.approx(3 / 4)
    only_liked = score_unpaired([1.0, -1.0], [True, True])
    assert only_liked.accuracy == 0.5 and only_liked.examples == 2
    assert score_unpaired([], []).examples == 0


def test_paired_and_targets() -> None:
    s = score_paired([1.0, 0.0, 2.0], [0.0, 1.0, 2.0])
    assert s.accuracy == pytest.approx(1.5 / 3) and s.reward_margin == 0.0
    t = score_targets([0.2, -0.1, 0.3, 0.0])
    assert t.accuracy == pytest.approx(2.5 / 4) and t.reward_margin == pytest.approx(0.1)


def test_adopt_only_when_better_and_as_the_setting_says() -> None:
    base = PreferenceScore(0.5, 0.0, 8)
    good = PreferenceScore(0.9, 2.0, 8)
    worse = PreferenceScore(0.4, -0.5, 8)
    d = decide_adoption(good, base, "auto")
    assert (d.recommended, d.adopt) == (True, True)
    assert d.reason == ("The new adapter is better: held-out preference accuracy 90% vs 50% "
                        "for the base model, on 8 examples.")
    assert decide_adoption(good, base, "ask").adopt is None  # the user decides
    assert decide_adoption(good, base, "never").adopt is False
    d = decide_adoption(worse, base, "auto")
    assert (d.recommended, d.adopt) == (False, False) and "not better" in d.reason
    assert decide_adoption(worse, base, "ask").adopt is False  # nothing to ask about
    # measured against the adapter it would replace: same accuracy, larger margin wins
    prev = PreferenceScore(0.9, 1.0, 8)
    d = decide_adoption(good, prev, "auto", previous_name="adapter a1")
    assert d.recommended and "for adapter a1" in d.reason
    assert not decide_adoption(PreferenceScore(0.9, 0.5, 8), prev, "auto").recommended
    empty = decide_adoption(PreferenceScore(0.5, 0.0, 0), base, "auto")
    assert (empty.recommended, empty.adopt) == (False, False)
    assert "no held-out feedback" in empty.reason


@pytest.mark.parametrize("n", [1, 3])
def test_too_few_held_out_examples_give_no_verdict(n: int) -> None:
    base = PreferenceScore(0.5, 0.0, n)
    lucky = PreferenceScore(1.0, 1.2, n)
    auto = decide_adoption(lucky, base, "auto")
    assert (auto.recommended, auto.adopt) == (False, False)
    assert f"Only {n} held-out example" in auto.reason and "too few to tell" in auto.reason
    assert decide_adoption(lucky, base, "ask").adopt is None  # the person decides
    assert decide_adoption(PreferenceScore(1.0, 1.2, 4), base, "auto").adopt is True
