"""`ghostdesk rate` and `ghostdesk feedback ...`, over a real database in a temp folder."""

from __future__ import annotations

import io
import json
import sqlite3

import pytest

from ghostdesk import cli
from ghostdesk.services import build_services


@pytest.fixture
def services(ghostdesk_home):
    services = build_services()
    yield services
    services.close()


@pytest.fixture
def chat(services):
    store = services.store
    cid = store.create_conversation().id
    store.add_message(cid, "user", "tell me a joke")
    first = store.add_message(cid, "assistant", "knock knock")
    user = store.add_message(cid, "user", "hahaha")
    services.ledger.observe_user_message(user)
    second = store.add_message(cid, "assistant", "glad you liked it")
    return {"cid": cid, "user": user.id, "first": first.id, "second": second.id}


def run(services, *argv: str) -> tuple[int, str]:
    args = cli.build_parser().parse_args(list(argv))
    out = io.StringIO()
    code = cli.dispatch(args, services, out)
    return code, out.getvalue()


def test_rate_prints_the_new_state(services, chat):
    code, text = run(services, "rate", str(chat["first"]), "up")
    assert code == 0
    assert text.startswith(f"Reply {chat['first']}: 👍 · reward +2.10")
    assert "1 signal to confirm" in text
    code, text = run(services, "rate", str(chat["first"]), "laugh", "--json")
    data = json.loads(text)
    assert data["ratings"] == ["up", "laugh"] and data["reward"] == pytest.approx(3.1)
    # Rating on the command line sets (it does not toggle): twice is still on.
    run(services, "rate", str(chat["first"]), "laugh")
    assert services.ledger.state_for([chat["first"]])[chat["first"]].laugh
    run(services, "rate", str(chat["first"]), "laugh", "--off")
    run(services, "rate", str(chat["first"]), "down")
    assert services.ledger.state_for([chat["first"]])[chat["first"]].ratings == {"down"}
    _, text = run(services, "rate", str(chat["first"]), "clear", "--json")
    assert json.loads(text)["ratings"] == []


def test_rating_an_unknown_or_user_message_is_a_clear_error(services, chat, capsys):
    code, text = run(services, "rate", "999", "up", "--json")
    assert code == 2
    assert json.loads(text)["error"] == "Message 999 does not exist."
    code, _ = run(services, "rate", str(chat["user"]), "down")
    assert code == 2
    assert "a message you wrote" in capsys.readouterr().err
    assert services.ledger.summary().explicit == {}


def test_feedback_list_confirm_and_dismiss(services, chat):
    code, text = run(services, "feedback", "list", "--pending")
    assert code == 0
    [line, _blank, hint] = text.splitlines()
    assert "laughter" in line and '"hahaha"' in line and "[pending]" in line
    assert "ghostdesk feedback confirm" in hint
    [event] = json.loads(run(services, "feedback", "list", "--pending", "--json")[1])
    assert event["kind"] == "laughter" and event["message_id"] == chat["first"]

    code, text = run(services, "feedback", "dismiss", str(event["id"]))
    assert code == 0 and "is dismissed" in text
    assert run(services, "feedback", "list", "--pending")[1] == "No signals to confirm.\n"
    _, text = run(services, "feedback", "confirm", str(event["id"]), "--json")
    assert json.loads(text)[0]["status"] == "confirmed"
    kinds = [e["kind"] for e in json.loads(run(services, "feedback", "list", "--json")[1])]
    assert sorted(kinds) == ["continuation", "laughter"]


def test_confirming_a_rating_or_unknown_event_is_refused(services, chat, capsys):
    run(services, "rate", str(chat["second"]), "up")
    rating = services.ledger.events(message_id=chat["second"])[0].event.id
    assert run(services, "feedback", "confirm", str(rating))[0] == 2
    assert "you gave yourself" in capsys.readouterr().err
    assert run(services, "feedback", "dismiss", "4242")[0] == 2
    assert "Feedback event 4242 does not exist" in capsys.readouterr().err


def test_export_each_format(services, chat, tmp_path):
    store, ledger = services.store, services.ledger
    ledger.rate(chat["second"], "up")
    other = store.add_message(chat["cid"], "assistant", "a pun", parent_id=chat["user"])
    ledger.rate(other.id, "down")
    ledger.set_better_reply(other.id, "a better pun")
    system = services.settings.persona.rendered_system_prompt()
    prompt = [
        {"role": "system", "content": system},
        {"role": "user", "content": "tell me a joke"},
        {"role": "assistant", "content": "knock knock"},
        {"role": "user", "content": "hahaha"},
    ]

    out = tmp_path / "dpo.jsonl"
    code, text = run(
        services, "feedback", "export", "--format", "dpo", "--out", str(out), "--split", "all"
    )
    assert code == 0 and text.startswith("Wrote 1 DPO pair (all split)")
    [record] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert record == {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": "glad you liked it"}],
        "rejected": [{"role": "assistant", "content": "a pun"}],
    }

    out = tmp_path / "sft.jsonl"
    _, text = run(
        services,
        "feedback",
        "export",
        "--format",
        "sft",
        "--out",
        str(out),
        "--split",
        "all",
        "--json",
    )
    assert json.loads(text) == {"format": "sft", "path": str(out), "records": 1, "split": "all"}
    [record] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert record["messages"] == prompt + [{"role": "assistant", "content": "a better pun"}]

    out = tmp_path / "kto.jsonl"
    run(
        services,
        "feedback",
        "export",
        "--format",
        "kto",
        "--out",
        str(out),
        "--split",
        "all",
        "--meta",
    )
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["completion"][0]["content"], r["label"]) for r in records] == [
        ("knock knock", True),
        ("glad you liked it", True),
        ("a pun", False),
    ]
    assert records[0]["meta"]["message_ids"] == [chat["first"]]


def test_exporting_with_no_data_writes_nothing(services, tmp_path, capsys):
    out = tmp_path / "kto.jsonl"
    code, text = run(services, "feedback", "export", "--format", "kto", "--out", str(out), "--json")
    assert code == 2
    data = json.loads(text)
    assert data["error"].startswith("Nothing to export") and "Rate some replies" in data["hint"]
    assert not out.exists()


def test_summary_and_weights(services, chat, capsys):
    run(services, "rate", str(chat["first"]), "up")
    code, text = run(services, "feedback", "summary")
    assert code == 0 and "👍 1" in text and "KTO desirable:" in text
    data = json.loads(run(services, "feedback", "summary", "--json")[1])
    assert data["pending"] == 1
    assert sum(data["examples"]["kto_desirable"].values()) == 1

    assert run(services, "feedback", "weights", "laugh", "0.5")[0] == 0
    assert json.loads(run(services, "feedback", "weights", "--json")[1])["laugh"] == 0.5
    assert run(services, "feedback", "weights", "laugh", "99")[0] == 2
    assert "out of range" in capsys.readouterr().err


def test_a_corrupted_weight_is_reported_and_the_rest_goes_on(services, chat, capsys):
    conn = sqlite3.connect(services.db.path)
    with conn:
        conn.execute("UPDATE reward_weights SET weight = 'many' WHERE kind = 'up'")
    conn.close()
    code, text = run(services, "rate", str(chat["first"]), "up")
    assert code == 0 and "reward +2.10" in text  # the default +1 was used
    run(services, "feedback", "list")
    assert "reward weight for 👍 ('many') is not a number" in capsys.readouterr().err


def test_comment_and_better_reply_from_the_command_line(services, chat):
    _, text = run(services, "feedback", "comment", str(chat["second"]), "cute")
    assert "comment: cute" in text
    _, text = run(services, "feedback", "better-reply", str(chat["second"]), "Glad! 😄", "--json")
    assert json.loads(text)["better_reply"] == "Glad! 😄"
