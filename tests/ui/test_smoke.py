"""`ghostdesk --smoke-test`: a start-up check that reports timings and fails loudly."""

from __future__ import annotations

import json

from ghostdesk.core.errors import ModelFileError
from ghostdesk.ui import smoke


def test_a_healthy_start_reports_each_stage_in_order(qapp, services, engine):
    engine.enqueue(["Hello", " there", "!"])
    result = smoke.run_smoke(services, prompt="Hi", timeout_s=20, engine_loader=lambda: engine)
    assert result["ok"] and result["exit_code"] == smoke.EXIT_OK
    assert result["platform"] == "offscreen"
    assert 0 <= result["window_visible_s"] <= result["model_ready_s"] <= result["reply_saved_s"]
    assert result["model_ready_s"] <= result["first_token_s"] <= result["reply_saved_s"]
    assert result["reply_text"] == "Hello there!" and result["device"] == "CPU"


def test_a_model_that_fails_to_load_is_exit_3(qapp, services):
    def broken():
        raise ModelFileError("The model file is truncated.")

    result = smoke.run_smoke(services, timeout_s=20, engine_loader=broken)
    assert not result["ok"] and result["exit_code"] == smoke.EXIT_MODEL_FAILED
    assert result["stage"] == "model" and "truncated" in result["error"]


def test_the_command_line_uses_a_scratch_data_folder_and_prints_json(qapp, monkeypatch, capsys,
                                                                     ghostdesk_home, engine):
    seen = {}

    def fake_run(services, **kw):
        seen["root"] = services.paths.root
        seen["prompt"] = kw["prompt"]
        return {"ok": True, "exit_code": 0}

    monkeypatch.setattr(smoke, "run_smoke", fake_run)
    assert smoke.main(["--no-reply"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True}
    assert seen["prompt"] is None
    assert seen["root"] != ghostdesk_home and not seen["root"].exists()  # removed afterwards
