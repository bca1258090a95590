"""Settings ▸ Training: what the feedback allows, the choices, paused runs, the adapter list,
and lending the GPU to a run (the chat model rests and comes back)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from ghostdesk.core.errors import AdapterError, GhostDeskError, TrainingError
from ghostdesk.core.training import events as ev
from ghostdesk.core.training.registry import AdapterRecord, AdapterRegistry
from ghostdesk.core.training.run_config import run_uses_cuda
from ghostdesk.ui.status import ModelState
from ghostdesk.ui.training_session import model_must_rest
from tests.ui.test_training_run import FakePlanner, fake_command, full_run, make_cfg, out


def _seed(services, up: int, down: int) -> None:
    """Rated replies, one conversation each (so both sides of the held-out split get some)."""
    for action, n in (("up", up), ("down", down)):
        for i in range(n):
            cid = services.store.create_conversation(f"{action} {i}").id
            services.store.add_message(cid, "user", f"{action} question {i}")
            reply = services.store.add_message(
                cid,
                "assistant",
                f"{action} answer {i}",
                generation_settings={"system_prompt": "Hi."},
            )
            services.ledger.rate(reply.id, action)


def _open_pane(window, qtbot):
    window.training.cuda_probe = lambda: False
    pane = window.open_training()
    qtbot.waitUntil(lambda: pane.overview_loaded > 0, timeout=5000)
    return pane


def _reloaded(pane, qtbot) -> None:
    seen = pane.overview_loaded
    qtbot.waitUntil(lambda: pane.overview_loaded > seen, timeout=5000)


@pytest.fixture(autouse=True)
def quit_without_asking(monkeypatch):
    """A test that fails mid-run must not leave a question open when its window closes."""
    from ghostdesk.ui.main_window import MainWindow

    monkeypatch.setattr(MainWindow, "_confirm_quit_while_learning", lambda self: True)


# -- what the feedback allows ----------------------------------------------------------------


def test_too_little_feedback_says_how_many_more_and_start_is_off(window, qtbot, services):
    _seed(services, 3, 2)
    pane = _open_pane(window, qtbot)
    kto = pane.overview.summary.kto
    assert kto.missing > 0
    assert pane.choices.needs_frame.isVisible()
    text = pane.choices.needs_label.text()
    assert text.startswith(f"Training needs {kto.missing} more rated replies")
    assert "Rate more replies" in text  # the hint: what to do
    assert pane.choices.data_labels["kto"][1].text() == f"needs {kto.missing} more"
    assert pane.choices.data_labels["dpo"][1].text() == "needs 8 more"
    assert not pane.choices.start_button.isEnabled()
    assert "No method has enough feedback yet" in pane.choices.method_hint.text()


def test_enough_feedback_enables_start_and_auto_says_why(window, qtbot, services):
    _seed(services, 14, 14)
    pane = _open_pane(window, qtbot)
    assert pane.choices.data_labels["kto"][1].text() == "ready"
    assert not pane.choices.needs_frame.isVisible()
    assert pane.choices.start_button.isEnabled()
    assert pane.choices.method_hint.text().startswith("KTO: ")
    assert "it learns from your 👍 and 👎 ratings" in pane.choices.method_hint.text()
    assert pane.choices.preset_hint.text().startswith("Quick (no CUDA GPU found): rank 8")
    assert pane.choices.lora_r_spin.specialValueText() == "Preset (8)"

    # Choosing a method without enough data says so and turns Start off.
    pane.choices.method_combo.setCurrentIndex(pane.choices.method_combo.findData("dpo"))
    assert pane.choices.needs_frame.isVisible()
    assert pane.choices.needs_label.text().startswith("Training needs 8 more pairs")
    assert not pane.choices.start_button.isEnabled()
    pane.choices.method_combo.setCurrentIndex(pane.choices.method_combo.findData("kto"))
    pane.choices.preset_combo.setCurrentIndex(pane.choices.preset_combo.findData("standard"))
    assert pane.choices.preset_hint.text().startswith("Standard: rank 16")
    pane.choices.lora_r_spin.setValue(4)
    assert pane.choices.preset_hint.text().startswith("Standard: rank 4")


def test_the_choices_are_saved_on_ok_and_bad_values_refused(window, qtbot, services, tmp_path):
    window.training.cuda_probe = lambda: False
    dialog = window.open_settings()
    pane = dialog.show_training()
    assert dialog.tabs.currentWidget().layout().indexOf(pane) == 0
    qtbot.waitUntil(lambda: pane.overview_loaded > 0, timeout=5000)
    pane.choices.max_length_spin.setValue(8)  # below the 16 tokens a run needs
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and "training.max_length" in dialog.error_text

    pane.choices.max_length_spin.setValue(0)
    pane.choices.method_combo.setCurrentIndex(pane.choices.method_combo.findData("kto"))
    pane.choices.preset_combo.setCurrentIndex(pane.choices.preset_combo.findData("thorough"))
    pane.choices.adopt_combo.setCurrentIndex(pane.choices.adopt_combo.findData("auto"))
    pane.choices.device_combo.setCurrentIndex(pane.choices.device_combo.findData("cpu"))
    pane.choices.base_edit.setText(str(tmp_path))
    pane.choices.lora_r_spin.setValue(16)
    pane.choices.learning_rate_spin.setValue(0.0003)
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible())
    saved = tomllib.loads(services.paths.settings.read_text(encoding="utf-8"))["training"]
    assert (saved["method"], saved["preset"], saved["adopt"], saved["device"]) == (
        "kto",
        "thorough",
        "auto",
        "cpu",
    )
    assert saved["base_model"] == str(tmp_path)
    assert (saved["lora_r"], saved["learning_rate"]) == (16, 0.0003)

    pane = window.open_training()
    assert pane.choices.advanced_box.isVisibleTo(pane)  # Advanced values set: shown open
    assert pane.edited_training() == services.settings.training


def test_start_saves_the_choices_and_shows_a_refusal(window, qtbot, services):
    class Refusing(FakePlanner):
        def plan(self, **_kw):
            raise TrainingError(
                "Training needs 3 more rated replies.", hint="Rate more replies with 👍, 👎 or 😂."
            )

    window.training.planner_for = lambda: Refusing(None)
    pane = _open_pane(window, qtbot)
    pane.choices.lora_r_spin.setValue(12)
    assert pane.choices.start_button.isEnabled()
    with qtbot.waitSignal(window.training.run_action_failed, timeout=5000):
        qtbot.mouseClick(pane.choices.start_button, Qt.MouseButton.LeftButton)
    assert services.settings.training.lora_r == 12  # saved before planning
    assert pane.choices.error_label.isVisible()
    assert pane.choices.error_label.text() == (
        "Training needs 3 more rated replies.\nRate more replies with 👍, 👎 or 😂."
    )
    assert not window.training.busy and pane.choices.start_button.isEnabled()


# -- paused runs -----------------------------------------------------------------------------


def _paused_run(home: Path, step: int = 20, max_steps: int = 60):
    cfg = make_cfg(home, run_id="run-20260301-140203-abc123")
    cfg.save()
    ckpt = cfg.checkpoint_dir / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text(
        json.dumps({"global_step": step, "max_steps": max_steps}), encoding="utf-8"
    )
    (ckpt / "adapter_model.safetensors").write_bytes(b"x")
    return cfg


def test_a_paused_run_resumes_or_is_discarded(
    window, qtbot, services, ghostdesk_home, tmp_path, monkeypatch
):
    cfg = _paused_run(ghostdesk_home)
    session = window.training
    session.command_for = lambda c: fake_command(
        tmp_path,
        c,
        [
            out(
                ev.Started(
                    run_id=c.run_id,
                    method="kto",
                    preset="quick",
                    device="cpu",
                    base="gguf",
                    train_examples=20,
                    eval_examples=4,
                    max_steps=60,
                    resumed_from_step=20,
                )
            ),
            out(ev.Step(step=21, max_steps=60, loss=0.5, lr=2e-4)),
            ["exit", 1],
        ],
    )
    pane = _open_pane(window, qtbot)
    assert pane.choices.paused_box.isVisible()
    assert pane.choices.paused_label.text() == (
        "KTO run from 2026-03-01 14:02, stopped at step 20 of 60."
    )
    assert pane.choices.resume_button.isEnabled()

    with qtbot.waitSignal(session.runner.run_finished, timeout=10_000):
        qtbot.mouseClick(pane.choices.resume_button, Qt.MouseButton.LeftButton)
    assert session.runner.cfg.run_id == cfg.run_id
    assert "resumed from step 20" in pane.log_view.toPlainText()
    _reloaded(pane, qtbot)

    answers = iter([QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes])
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: next(answers))
    qtbot.mouseClick(pane.choices.discard_button, Qt.MouseButton.LeftButton)
    assert cfg.run_dir.exists()  # "No" keeps it
    qtbot.mouseClick(pane.choices.discard_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not pane.choices.paused_box.isVisibleTo(pane), timeout=5000)
    assert not cfg.run_dir.exists()


# -- the adapter list ------------------------------------------------------------------------


class RecordingSlot:
    """Stands in for the loaded model's AdapterSlot; refuses paths containing "bad"."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def activate(self, path, scale: float = 1.0, *, adapter_id: str = ""):
        if "bad" in str(path):
            raise AdapterError(
                "This adapter was trained for another model.",
                hint="Load the model it was trained for.",
            )
        self.calls.append(("activate", adapter_id))
        return adapter_id

    def deactivate(self) -> None:
        self.calls.append(("deactivate", ""))

    def close(self) -> None:
        self.calls.append(("close", ""))


def _adapters(home: Path, *ids: str) -> AdapterRegistry:
    registry = AdapterRegistry.in_home(home)
    for n, adapter_id in enumerate(ids):
        registry.write_adapter(
            AdapterRecord(
                id=adapter_id,
                method="kto",
                created=f"2026-03-0{n + 1}T10:00:00",
                base_sha256="x",
                metrics={"accuracy": 0.75, "previous_accuracy": 0.5},
                data_counts={"train_examples": 20},
            ),
            lambda folder: (folder / "adapter.gguf").write_bytes(b"GGUF"),
        )
    return registry


def _click_in_list(pane, qtbot, name: str, adapter_id: str | None = None) -> None:
    if adapter_id is not None:
        pane.adapters.select(adapter_id)
    button = getattr(pane.adapters, f"{name}_button")
    assert button.isEnabled(), name
    seen = pane.overview_loaded
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: pane.overview_loaded > seen and not window_busy(pane), timeout=5000)


def window_busy(pane) -> bool:
    return pane.session.adapter_busy


def test_adapter_list_actions_go_through_the_slot_and_the_registry(
    window, qtbot, services, ghostdesk_home, monkeypatch
):
    registry = _adapters(ghostdesk_home, "a1", "a2", "a3")
    slot = RecordingSlot()
    services.adapter_slot = slot
    pane = _open_pane(window, qtbot)
    assert pane.tabs.tabText(2) == "Adapters (3)"
    assert pane.adapters.ids() == ["a3", "a2", "a1"]  # newest first
    assert pane.adapters.marked_active() == []
    assert not pane.adapters.base_button.isEnabled()  # already the base model

    _click_in_list(pane, qtbot, "use", "a1")
    assert slot.calls == [("activate", "a1")] and registry.active_id == "a1"
    assert pane.adapters.marked_active() == ["a1"]
    assert not pane.adapters.delete_button.isEnabled()  # the one in use

    _click_in_list(pane, qtbot, "use", "a2")
    assert "a1" in pane.adapters.rollback_button.toolTip()
    _click_in_list(pane, qtbot, "rollback")
    assert slot.calls[-1] == ("activate", "a1") and registry.active_id == "a1"

    _click_in_list(pane, qtbot, "base")
    assert slot.calls[-1] == ("deactivate", "") and registry.active_id is None

    answers = iter([QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes])
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: next(answers))
    pane.adapters.select("a3")
    qtbot.mouseClick(pane.adapters.delete_button, Qt.MouseButton.LeftButton)
    assert [r.id for r in registry.list()] == ["a3", "a2", "a1"]  # "No"
    _click_in_list(pane, qtbot, "delete", "a3")
    assert [r.id for r in registry.list()] == ["a2", "a1"]
    assert pane.adapters.ids() == ["a2", "a1"]
    assert slot.calls[-1] == ("deactivate", "")  # deleting never touches the model


def test_an_adapter_the_model_refuses_says_why_and_nothing_changes(
    window, qtbot, services, ghostdesk_home
):
    registry = _adapters(ghostdesk_home, "a1", "bad-one")
    slot = RecordingSlot()
    services.adapter_slot = slot
    pane = _open_pane(window, qtbot)
    _click_in_list(pane, qtbot, "use", "bad-one")
    assert registry.active_id is None and slot.calls == []
    assert pane.adapters_error.isVisible()
    assert "trained for another model" in pane.adapters_error.text()
    assert pane.tabs.currentIndex() == 2


def test_with_no_model_loaded_only_the_record_changes(make_window, qtbot, services, ghostdesk_home):
    def fail():
        raise GhostDeskError("No model here.")

    window = make_window(loader=fail)
    with qtbot.waitSignal(window.model_failed, timeout=3000):
        window.load_model()
    registry = _adapters(ghostdesk_home, "a1")
    slot = RecordingSlot()
    services.adapter_slot = slot  # a stale slot must not be used
    pane = _open_pane(window, qtbot)
    _click_in_list(pane, qtbot, "use", "a1")
    assert registry.active_id == "a1" and slot.calls == []


# -- lending the GPU to a run ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "cuda", "gpu_layers", "rests"),
    [
        ("cuda", True, 28, True),
        ("cuda", True, -1, True),  # -1: every layer on the GPU
        ("cuda", False, 28, True),  # asked for CUDA: the run will use it (or fail saying so)
        ("auto", True, 28, True),
        ("auto", False, 28, False),  # no CUDA: training on the CPU, the chat keeps its GPU
        ("auto", True, 0, False),  # the chat runs on the CPU
        ("cpu", True, 28, False),
        ("cuda", True, None, False),  # no model loaded
    ],
)
def test_the_chat_model_rests_only_when_both_want_the_gpu(device, cuda, gpu_layers, rests):
    asked: list[int] = []

    def probe() -> bool:
        asked.append(1)
        return cuda

    assert model_must_rest(run_uses_cuda(device, probe), gpu_layers) is rests
    assert asked == ([1] if device == "auto" else [])  # torch is imported only for "auto"


@pytest.fixture
def gpu_window(window, engine, ghostdesk_home, tmp_path):
    """A ready window whose chat model holds 28 layers on the GPU; runs use a fake child."""
    engine.info.n_gpu_layers = 28
    loads: list[int] = []
    window._engine_loader = lambda: loads.append(1) or engine
    window.loads = loads
    session = window.training
    session.cuda_probe = lambda: True
    session.ops = []
    session.command_for = lambda c: fake_command(tmp_path / "child", c, session.ops)
    return window


def _use_cfg(window, home: Path, device: str) -> FakePlanner:
    """The Training setting `device`; the planner gets the device the session settled."""
    window.services.settings.training.device = device
    planner = FakePlanner(make_cfg(home, device=device))
    window.training.planner_for = lambda: planner
    return planner


@pytest.mark.parametrize("ending", ["stopped", "failed", "completed"])
def test_a_gpu_run_rests_the_chat_model_and_brings_it_back(
    gpu_window, qtbot, ghostdesk_home, ending
):
    window, session = gpu_window, gpu_window.training
    planner = _use_cfg(window, ghostdesk_home, "auto")
    session.ops = [out(ev.Step(step=1, max_steps=60, loss=0.7, lr=2e-4)), ["wait_stop", 20]]
    if ending == "failed":
        session.ops.append(["exit", 1])
    elif ending == "stopped":
        session.ops.append(out(ev.Finished(status="stopped", step=1)))
    else:
        # measured, saved and finished once the step is done
        session.ops += full_run(make_cfg(ghostdesk_home), adopt=False)[-5:]
    with qtbot.waitSignal(session.runner.progress_changed, timeout=10_000):
        session.start()

    # "auto" was settled by the probe before planning: no torch in this process.
    assert planner.asked == [{"device": "cuda"}]
    assert window.is_model_resting and window.engine is None
    assert not window.is_model_ready
    assert not window.send_button.isEnabled()
    assert "Ghost is resting while it learns" in window.send_button.toolTip()
    assert window.status.state_label.text() == "Ghost is resting while it learns"
    assert window.banner.text.startswith("Ghost is resting while it learns")
    assert window.learning_button.text() == "Learning… step 1/60"
    assert window.loads == []

    with qtbot.waitSignal(window.model_ready, timeout=10_000):
        session.stop()
    assert session.last_outcome.status == ending
    assert window.loads == [1]  # loaded again
    assert not window.is_model_resting and window.is_model_ready
    assert window.status.state == ModelState.READY
    assert window.send_button.isEnabled() or window.composer.text() == ""
    assert "resting" not in window.banner.text


def test_a_cpu_run_leaves_the_gpu_chat_alone(gpu_window, qtbot, ghostdesk_home):
    window, session = gpu_window, gpu_window.training
    _use_cfg(window, ghostdesk_home, "cpu")
    session.ops = [
        out(ev.Step(step=1, max_steps=60, loss=0.7, lr=2e-4)),
        ["wait_stop", 20],
        out(ev.Finished(status="stopped", step=1)),
    ]
    with qtbot.waitSignal(session.runner.progress_changed, timeout=10_000):
        session.start()
    assert not window.is_model_resting and window.is_model_ready
    with qtbot.waitSignal(session.runner.run_finished, timeout=10_000):
        session.stop()
    assert window.loads == []


def test_quitting_during_a_run_asks_then_stops_it_first(
    gpu_window, qtbot, ghostdesk_home, monkeypatch
):
    window, session = gpu_window, gpu_window.training
    _use_cfg(window, ghostdesk_home, "cpu")
    session.ops = [
        out(ev.Step(step=1, max_steps=60, loss=0.7, lr=2e-4)),
        ["wait_stop", 20],
        out(ev.Finished(status="stopped", step=1)),
    ]
    with qtbot.waitSignal(session.runner.progress_changed, timeout=10_000):
        session.start()
    answers = iter([False, True])
    monkeypatch.setattr(window, "_confirm_quit_while_learning", lambda: next(answers))
    window.close()
    assert window.isVisible() and session.runner.running  # "Keep learning"

    window.close()  # "Stop and quit"
    assert not window.isVisible()
    assert session.runner.stopping
    qtbot.waitUntil(lambda: not session.busy, timeout=10_000)
    qtbot.wait(50)
    assert session.last_outcome.status == "stopped"
    assert window.loads == []  # nothing is loaded again on the way out


def test_the_tab_is_built_when_first_shown_and_pyqtgraph_loads_only_then(window, qtbot):
    window.training.cuda_probe = lambda: False
    dialog = window.open_settings()
    assert dialog.tabs.tabText(3) == "Training"
    assert dialog.training_pane is None
    dialog.tabs.setCurrentIndex(3)
    assert dialog.training_pane is not None
    qtbot.waitUntil(lambda: dialog.training_pane.overview_loaded > 0, timeout=5000)

    probe = (
        "import sys, ghostdesk.ui.main_window, ghostdesk.ui.settings_dialog; "
        "print('pyqtgraph' in sys.modules, 'torch' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert done.stdout.split() == ["False", "False"], done.stderr


def test_a_run_started_elsewhere_holds_start_back(window, qtbot, services, ghostdesk_home):
    from ghostdesk.core.training.run_lock import hold_training_lock

    _seed(services, 14, 14)
    with hold_training_lock(ghostdesk_home, "run-20260301-090000-cli000"):
        pane = _open_pane(window, qtbot)
        assert pane.choices.ready
        assert not pane.choices.start_button.isEnabled()
        assert "in progress in this data folder" in pane.choices.start_button.toolTip()
        assert pane.state_label.text().startswith(
            "Training run run-20260301-090000-cli000 is in progress outside this window"
        )
    pane.reload()
    _reloaded(pane, qtbot)
    assert pane.choices.start_button.isEnabled()
    assert pane.state_label.text() == "Not training."



def test_a_reply_being_written_is_stopped_and_saved_before_the_model_rests(
    gpu_window, qtbot, engine, services, ghostdesk_home
):
    from tests.ui.conftest import StepGate

    window, session = gpu_window, gpu_window.training
    _use_cfg(window, ghostdesk_home, "cuda")
    session.ops = [
        out(ev.Step(step=1, max_steps=60, loss=0.7, lr=2e-4)),
        ["wait_stop", 20],
        out(ev.Finished(status="stopped", step=1)),
    ]
    gate = StepGate()
    engine.gate = gate
    engine.enqueue(["Once ", "upon ", "a ", "time"])
    window.send_message("tell me a story")
    gate.step()
    qtbot.waitUntil(lambda: len(window.chat_view.bubbles()) == 2, timeout=3000)

    session.start()
    qtbot.waitUntil(lambda: window.is_model_resting, timeout=3000)
    assert window.engine is not None  # still writing: unloaded once the reply is saved
    with qtbot.waitSignal(session.runner.progress_changed, timeout=10_000):
        gate.set()
    assert window.engine is None
    reply = services.store.thread(window.current_conversation_id)[-1]
    assert reply.role == "assistant" and reply.status == "stopped"
    with qtbot.waitSignal(window.model_ready, timeout=10_000):
        session.stop()
    assert window.is_model_ready
