"""What the CLI prints is safe for a terminal and says what a person needs to know: control
characters from messages are shown, never obeyed; start-up notices reach stderr; a closed
pipe is not an error."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ghostdesk import app
from ghostdesk.cli.output import terminal_safe
from ghostdesk.services import AppServices
from tests.fakes import ScriptedEngine

HOSTILE = "clear\x1b[2J\x1b]0;owned\x07 bell\x07 csi\x9b31m rtl\u202egnp.exe tab\tok"


@pytest.fixture
def engine(monkeypatch):
    engine = ScriptedEngine()
    monkeypatch.setattr(AppServices, "load_engine", lambda self: engine)
    return engine


def run(capsys, *argv):
    code = app.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_control_characters_are_written_out_visibly():
    safe = terminal_safe(HOSTILE)
    assert not any(ch in safe for ch in "\x1b\x07\x9b\u202e")
    assert "\\x1b[2J" in safe and "<U+202E>" in safe
    assert "tab\tok" in safe  # tab and newline are text, not controls
    assert terminal_safe("line one\nline two") == "line one\nline two"


def test_conversations_show_and_streamed_replies_never_reach_the_terminal_raw(capsys, engine):
    engine.enqueue(["a reply with ", "\x1b[2J", " in it"])
    code, out, _ = run(capsys, "chat", HOSTILE)
    assert code == 0 and "\x1b" not in out and "\\x1b[2J" in out
    code, out, _ = run(capsys, "conversations", "show", "1")
    assert code == 0
    assert not any(ch in out for ch in "\x1b\x07\x9b\u202e")
    assert "owned" in out  # the text is kept, only made visible


def test_json_output_keeps_the_exact_text(capsys, engine):
    engine.enqueue("fine")
    run(capsys, "chat", HOSTILE)
    code, out, _ = run(capsys, "conversations", "export", "1")
    data = json.loads(out)
    assert any(m["content"] == HOSTILE for m in data["messages"])


def test_startup_notices_go_to_stderr_once(capsys, engine, ghostdesk_home):
    (ghostdesk_home / "settings.toml").write_text("[sampling]\nmax_tokens = -5\n",
                                                  encoding="utf-8")
    code, out, err = run(capsys, "conversations", "list")
    assert code == 0
    notices = [line for line in err.splitlines() if line.startswith("notice:")]
    assert len(notices) == 1 and "max_tokens" in notices[0]
    assert "notice" not in out


def test_a_closed_pipe_is_not_a_traceback(ghostdesk_home):
    from ghostdesk.services import build_services

    services = build_services()
    try:  # more than a pipe's buffer of output, so the reader leaves while it is written
        for n in range(1500):
            services.store.create_conversation(f"A chat with a long enough title, number {n}")
    finally:
        services.close()
    env = {**os.environ, "GHOSTDESK_HOME": str(ghostdesk_home)}
    shell = f"{sys.executable} -m ghostdesk conversations list | head -1"
    done = subprocess.run(["bash", "-c", shell], env=env, capture_output=True, text=True,
                          timeout=300)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert done.stdout.count("\n") == 1
