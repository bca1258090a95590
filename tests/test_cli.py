"""The headless CLI over the same core objects as the window."""

import json
import subprocess
import sys

import pytest

from ghostdesk import app
from ghostdesk.services import AppServices
from tests.fakes import ScriptedEngine


@pytest.fixture
def engine(monkeypatch):
    engine = ScriptedEngine()
    monkeypatch.setattr(AppServices, "load_engine", lambda self: engine)
    return engine


def run(capsys, *argv):
    code = app.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_one_shot_chat_streams_and_saves(capsys, engine):
    engine.enqueue(["Hi", " friend"])
    code, out, _ = run(capsys, "chat", "hello")
    assert code == 0 and out == "Hi friend\n"
    code, out, _ = run(capsys, "conversations", "list", "--json")
    [conv] = json.loads(out)
    assert conv["title"] == "hello" and conv["message_count"] == 2


def test_json_chat_events_and_regenerate(capsys, engine):
    engine.enqueue("first", "second")
    code, out, _ = run(capsys, "chat", "question?", "--json")
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event"] for e in events] == ["user_message_saved", "token", "reply_saved"]
    cid = events[-1]["conversation_id"]
    code, out, _ = run(capsys, "chat", "--conversation", str(cid), "--regenerate", "--json")
    saved = json.loads(out.splitlines()[-1])
    assert (saved["text"], saved["version"], saved["versions"]) == ("second", 2, 2)


def test_interactive_chat_reads_stdin(capsys, engine, monkeypatch):
    import io

    engine.enqueue("one", "two")
    monkeypatch.setattr(sys, "stdin", io.StringIO("first line\n\nsecond line\n/quit\n"))
    code, out, _ = run(capsys, "chat")
    assert code == 0 and "one" in out and "two" in out


def test_conversations_show_export_rename_delete(capsys, engine, tmp_path):
    engine.enqueue("reply")
    run(capsys, "chat", "a question")
    code, out, _ = run(capsys, "conversations", "show", "1")
    assert "a question" in out and "reply" in out
    target = tmp_path / "chat.json"
    code, _, _ = run(capsys, "conversations", "export", "1", "--out", str(target))
    assert code == 0 and json.loads(target.read_text())["conversation"]["title"] == "a question"
    assert run(capsys, "conversations", "rename", "1", "Sea talk")[0] == 0
    code, out, err = run(capsys, "conversations", "delete", "1")
    assert code == 2 and "--yes" in err, "no silent delete without a terminal to confirm"
    assert run(capsys, "conversations", "delete", "1", "--yes")[0] == 0
    code, out, err = run(capsys, "conversations", "show", "1")
    assert code == 2 and "does not exist" in err


@pytest.mark.parametrize("content", [b"", b"not a model at all", b"GGUF\x03\x00\x00\x00"])
def test_model_info_on_bad_files_is_a_clear_error(capsys, tmp_path, content):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(content)
    code, _, err = run(capsys, "model", "info", str(bad))
    assert code == 2 and "bad.gguf" in err and "Traceback" not in err


def test_model_info_missing_file(capsys, tmp_path):
    code, _, err = run(capsys, "model", "info", str(tmp_path / "nope.gguf"))
    assert code == 2 and "not found" in err


@pytest.mark.model
def test_model_info_of_the_bundled_model(capsys):
    code, out, _ = run(capsys, "model", "info", "--json")
    info = json.loads(out)
    assert code == 0
    assert (info["architecture"], info["quantization"], info["n_layers"]) == ("gemma3",
                                                                             "Q4_K_M", 18)


@pytest.mark.model
def test_one_shot_chat_in_a_fresh_process_on_the_bundled_model(ghostdesk_home):
    # A short reply keeps this quick on a busy machine; memory (real MiniLM) stays on.
    (ghostdesk_home / "settings.toml").write_text("[sampling]\nmax_tokens = 16\n",
                                                  encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "ghostdesk", "chat", "Hello!", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    saved = json.loads(result.stdout.splitlines()[-1])
    assert saved["event"] == "reply_saved" and saved["status"] == "complete"
    assert (ghostdesk_home / "ghostdesk.sqlite3").exists()
