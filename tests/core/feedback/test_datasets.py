"""Dataset builders: the exact records a small hand-made conversation tree gives.

The tree has versions (a regenerated reply rated three ways), an edited first message, a
better reply, dismissed signals, neutral replies, a failed reply and a reply whose prompt
left out older messages to fit the context window.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.feedback.dataset_selection import DatasetOptions
from ghostdesk.core.feedback.datasets import (
    build_records,
    count_examples,
    export_dataset,
    meta_records,
)
from ghostdesk.core.feedback.jsonl import write_jsonl
from ghostdesk.core.feedback.ledger_snapshot import load_snapshot
from ghostdesk.core.feedback.records import ImplicitSignal
from ghostdesk.core.feedback.split import held_out, split_of

SYSTEM = {"role": "system", "content": "You are Ghost."}
ALL = DatasetOptions(system_prompt="You are Ghost.", split="all")


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def _bot(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


@dataclass
class Tree:
    a: int
    b: int
    a1: int
    a2v1: int
    a2v2: int
    a2v3: int
    a1e: int
    b_r1: int
    b_r2: int
    b_r2_failed: int
    b_r3: int


@pytest.fixture
def tree(store, ledger) -> Tree:
    a = store.create_conversation().id
    store.add_message(a, "user", "Hi")
    a1 = store.add_message(a, "assistant", "Hello!").id
    ledger.rate(a1, "up")
    ledger.set_comment(a1, "nice")
    u2 = store.add_message(a, "user", "haha you get me")
    signals = {e.kind: e for e in ledger.observe_user_message(u2)}
    assert set(signals) == {"laughter", "understood", "continuation"}
    ledger.dismiss(signals["understood"].id)
    a2v1 = store.add_message(a, "assistant", "Boo.").id
    ledger.rate(a2v1, "down")
    a2v2 = store.add_message(a, "assistant", "Ha, glad!", parent_id=u2.id).id
    ledger.rate(a2v2, "laugh")
    a2v3 = store.add_message(a, "assistant", "Noted.", parent_id=u2.id).id
    # The first message edited: a new root, with its own reply and a better version of it.
    store.add_message(a, "user", "Hi there", parent_id=None)
    a1e = store.add_message(a, "assistant", "Hey you.").id
    ledger.set_better_reply(a1e, "Hey! Good to see you.")

    b = store.create_conversation().id
    store.add_message(b, "user", "one")
    b_r1 = store.add_message(b, "assistant", "r1").id
    scorn = ledger.record_implicit(b_r1, ImplicitSignal("scorn", -1.0, "robot", 0, 5, "test"))
    assert scorn is not None
    ledger.dismiss(scorn.id)
    b_u2 = store.add_message(b, "user", "two")
    b_r2 = store.add_message(b, "assistant", "r2").id
    failed = store.add_message(b, "assistant", "", parent_id=b_u2.id, status="error").id
    ledger.rate(failed, "down")
    store.add_message(b, "user", "three", parent_id=b_r2)
    b_r3 = store.add_message(b, "assistant", "r3", dropped_turns=2).id
    ledger.rate(b_r3, "up")
    return Tree(a, b, a1, a2v1, a2v2, a2v3, a1e, b_r1, b_r2, failed, b_r3)


def _records(db, fmt: str, options: DatasetOptions = ALL) -> list[dict]:
    snap = load_snapshot(db, confirmed_only=options.confirmed_only)
    return list(build_records(fmt, snap, options))


A2_PROMPT = [SYSTEM, _user("Hi"), _bot("Hello!"), _user("haha you get me")]


def test_kto_takes_every_reply_with_a_reward_and_leaves_neutral_ones_out(db, tree):
    assert _records(db, "kto") == [
        # 👍 +1, laughter +1 (pending counts), continued +0.1; "you get me" was dismissed.
        {
            "prompt": [SYSTEM, _user("Hi")],
            "completion": [_bot("Hello!")],
            "label": True,
            "weight": 2.1,
        },
        {"prompt": A2_PROMPT, "completion": [_bot("Boo.")], "label": False, "weight": 1.0},
        {"prompt": A2_PROMPT, "completion": [_bot("Ha, glad!")], "label": True, "weight": 1.0},
        # Two messages were left out of this reply's prompt to fit the context window.
        {
            "prompt": [SYSTEM, _user("two"), _bot("r2"), _user("three")],
            "completion": [_bot("r3")],
            "label": True,
            "weight": 1.0,
        },
    ]


def test_kto_with_confirmed_signals_only_leaves_pending_ones_out(db, tree):
    records = _records(db, "kto", DatasetOptions(split="all", confirmed_only=True))
    assert records[0]["completion"] == [_bot("Hello!")]
    assert records[0]["weight"] == 1.1
    assert records[0]["prompt"] == [_user("Hi")]  # no system prompt given


def test_dpo_pairs_every_two_versions_whose_rewards_differ(db, tree):
    assert _records(db, "dpo") == [
        {"prompt": A2_PROMPT, "chosen": [_bot("Ha, glad!")], "rejected": [_bot("Boo.")]},
        # An unrated version (reward 0) beats a 👎 and loses to a 😂.
        {"prompt": A2_PROMPT, "chosen": [_bot("Noted.")], "rejected": [_bot("Boo.")]},
        {"prompt": A2_PROMPT, "chosen": [_bot("Ha, glad!")], "rejected": [_bot("Noted.")]},
    ]


def test_sft_takes_better_replies_and_optionally_the_best_rated(db, tree):
    better = {"messages": [SYSTEM, _user("Hi there"), _bot("Hey! Good to see you.")]}
    assert _records(db, "sft") == [better]
    options = DatasetOptions(system_prompt="You are Ghost.", split="all", sft_min_reward=2.0)
    assert _records(db, "sft", options) == [
        {"messages": [SYSTEM, _user("Hi"), _bot("Hello!")]},
        better,
    ]


def test_a_better_reply_replaces_the_reply_it_improves(db, tree, ledger):
    ledger.rate(tree.a1e, "up")
    options = DatasetOptions(split="all", sft_min_reward=1.0)
    targets = [r["messages"][-1]["content"] for r in _records(db, "sft", options)]
    assert "Hey you." not in targets and "Hey! Good to see you." in targets


def test_meta_says_where_each_record_came_from(db, tree):
    snap = load_snapshot(db)
    [first, *_] = meta_records("dpo", snap, ALL)
    assert first["meta"] == {
        "message_ids": [tree.a2v2, tree.a2v1],
        "conversation_id": tree.a,
        "rewards": [1.0, -1.0],
        "split": split_of(tree.a),
    }
    assert first["chosen"] == [_bot("Ha, glad!")]


def test_counts_per_kind_and_side(db, tree):
    counts = count_examples(load_snapshot(db))
    side = split_of(tree.a)
    other = "eval" if side == "train" else "train"
    expected_a = {"kto_desirable": 2, "kto_undesirable": 1, "dpo_pairs": 3, "sft_examples": 1}
    for name, n in expected_a.items():
        got = getattr(counts, name)
        extra = 1 if name == "kto_desirable" and split_of(tree.b) == side else 0
        assert got[side] == n + extra, name
        if name != "kto_desirable" or split_of(tree.b) == side:
            assert got[other] == 0, name


# -- the held-out split ------------------------------------------------------------------------


def test_the_held_out_split_is_stable_and_about_a_tenth():
    ids = range(1, 5001)
    first = [held_out(cid) for cid in ids]
    assert first == [held_out(cid) for cid in ids]  # the same answer every time
    assert 0.08 < sum(first) / len(first) < 0.12
    assert held_out(26) and not held_out(1)  # pinned: a change would reshuffle every split
    assert not any(held_out(cid, fraction=0.0) for cid in range(1, 200))
    assert all(held_out(cid, fraction=1.0) for cid in range(1, 200))
    salted = [held_out(cid, salt="other") for cid in range(1, 200)]
    assert salted != [held_out(cid) for cid in range(1, 200)]


def test_train_and_eval_exports_split_by_conversation(db, store, ledger):
    ids = {}
    for n in range(40):
        cid = store.create_conversation().id
        store.add_message(cid, "user", f"hello {n}")
        reply = store.add_message(cid, "assistant", f"reply {n}").id
        ledger.rate(reply, "up")
        ids[f"reply {n}"] = cid
    train = _records(db, "kto", DatasetOptions(split="train", held_out_fraction=0.25))
    held = _records(db, "kto", DatasetOptions(split="eval", held_out_fraction=0.25))
    assert len(train) + len(held) == 40
    assert held
    for record in held:
        assert held_out(ids[record["completion"][0]["content"]], 0.25)
    for record in train:
        assert not held_out(ids[record["completion"][0]["content"]], 0.25)


# -- writing -----------------------------------------------------------------------------------


def test_text_is_written_as_is(db, store, ledger, tmp_path):
    cid = store.create_conversation().id
    store.add_message(cid, "user", 'Quote " backslash \\ tab\t 你好 😂\nnew line')
    reply = store.add_message(cid, "assistant", "\u2028 odd separators \x00").id
    ledger.rate(reply, "up")
    out = tmp_path / "kto.jsonl"
    export_dataset(db, "kto", out, ALL)
    text = out.read_text(encoding="utf-8")
    [line] = text.splitlines()  # one record, one line, even for splitlines()
    assert "\\u2028" in line
    record = json.loads(line)
    assert record["prompt"][1]["content"] == 'Quote " backslash \\ tab\t 你好 😂\nnew line'
    assert record["completion"][0]["content"] == "\u2028 odd separators \x00"


@pytest.mark.parametrize(("fmt", "count"), [("kto", 4), ("dpo", 3), ("sft", 1)])
def test_export_writes_json_lines(db, tree, tmp_path, fmt, count):
    out = tmp_path / f"{fmt}.jsonl"
    assert export_dataset(db, fmt, out, ALL) == count
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == _records(db, fmt)
    assert not (tmp_path / f"{fmt}.jsonl.part").exists()


def test_exporting_with_no_data_says_what_to_do_and_touches_nothing(db, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    out = folder / "dpo.jsonl"
    out.write_text("earlier export\n")
    with pytest.raises(GhostDeskError, match="no DPO examples") as caught:
        export_dataset(db, "dpo", out, DatasetOptions())
    assert "Regenerate a reply" in (caught.value.hint or "")
    assert out.read_text() == "earlier export\n"
    assert list(folder.iterdir()) == [out]


def test_writing_to_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(GhostDeskError, match="Could not write"):
        write_jsonl([{"messages": []}], tmp_path / "nowhere" / "x.jsonl")
