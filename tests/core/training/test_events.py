"""Training events as JSON lines: round trip, non-finite numbers, stray lines."""

from __future__ import annotations

import json
import math

import pytest

from ghostdesk.core.training.events import (
    Evaluated,
    Failed,
    Finished,
    Preparing,
    Started,
    Step,
    encode,
    parse_event,
)


@pytest.mark.parametrize("event", [
    Preparing(stage="Converting…"),
    Started(run_id="r", method="kto", preset="quick", device="cpu", base="gguf",
            train_examples=16, eval_examples=8, max_steps=3),
    Step(step=1, max_steps=3, loss=0.5, lr=1e-4, reward_margin=None, tokens_per_second=12.5,
         eta_s=20.0, epoch=0.1),
    Evaluated(accuracy=0.9, reward_margin=2.0, examples=8, previous_accuracy=0.5,
              previous_reward_margin=0.0, previous_adapter="", recommended=True, adopt=None,
              reason="better", samples=[{"prompt": "Tea? 🙂", "base": "a", "adapter": "b"}]),
    Finished(status="stopped", step=4, checkpoint="/x/checkpoint-4"),
    Failed(reason="The disk is full.", hint="Free space."),
])
def test_round_trip(event: object) -> None:
    line = encode(event)  # type: ignore[arg-type]
    assert "\n" not in line
    assert json.loads(line)["event"] == event.kind  # type: ignore[attr-defined]
    assert parse_event(line) == event
    assert parse_event(line.encode()) == event


def test_nan_becomes_null_and_unknown_fields_are_ignored() -> None:
    line = encode(Step(step=1, max_steps=2, loss=math.nan, lr=0.0))
    assert json.loads(line)["loss"] is None
    raw = json.loads(encode(Failed(reason="x")))
    raw["added_later"] = 1
    assert parse_event(json.dumps(raw)) == Failed(reason="x")


@pytest.mark.parametrize("line", ["", "Loading weights: 100%", "[1, 2]", '{"event": "nope"}'])
def test_stray_lines_are_not_events(line: str) -> None:
    with pytest.raises(ValueError):
        parse_event(line)
