"""The settings dialog saves valid settings, refuses invalid ones, and reloads the model."""

from __future__ import annotations

import tomllib

from PySide6.QtCore import Qt

from ghostdesk.core.settings import DEFAULT_SYSTEM_PROMPT
from ghostdesk.ui.settings_dialog import BUNDLED_DESCRIPTION


def _saved(services) -> dict:
    return tomllib.loads(services.paths.settings.read_text(encoding="utf-8"))


def test_ok_saves_changed_settings(window, qtbot, services):
    loads: list[int] = []
    window._engine_loader = lambda: loads.append(1) or window.engine
    dialog = window.open_settings()
    assert dialog.isVisible()
    assert dialog.tabs.count() == 4 and dialog.tabs.tabText(3) == "Training"
    assert dialog.model_info_label.text() == BUNDLED_DESCRIPTION
    dialog.temperature_spin.setValue(0.3)
    dialog.persona_name_edit.setText("Casper")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(lambda: not dialog.isVisible())
    saved = _saved(services)
    assert saved["sampling"]["temperature"] == 0.3
    assert saved["persona"]["name"] == "Casper"
    assert services.settings.persona.name == "Casper"
    assert window.chat_view.empty_label.text().startswith("Say hello to Casper")
    assert loads == []  # nothing about the model changed: no reload
    assert window.is_model_ready


def test_an_invalid_value_is_shown_inline_and_nothing_is_saved(window, qtbot, services):
    dialog = window.open_settings()
    dialog.persona_name_edit.setText("   ")
    dialog.temperature_spin.setValue(1.5)
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible()
    assert dialog.error_label.isVisible()
    assert "persona.name" in dialog.error_text
    assert not services.paths.settings.exists()
    assert services.settings.sampling.temperature == 0.8

    dialog.persona_name_edit.setText("Ghost")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    assert _saved(services)["sampling"]["temperature"] == 1.5


def test_a_missing_model_file_is_refused(window, qtbot, services, tmp_path):
    dialog = window.open_settings()
    dialog.path_edit.setText(str(tmp_path / "missing.gguf"))
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert "does not exist" in dialog.error_text
    assert not services.paths.settings.exists()


def test_changing_the_model_settings_reloads_the_model(window, qtbot, services, engine):
    closed: list[int] = []
    engine.close = lambda: closed.append(1)
    dialog = window.open_settings()
    dialog.n_ctx_spin.setValue(2048)
    dialog.gpu_auto_check.setChecked(False)
    dialog.gpu_layers_spin.setValue(0)
    with qtbot.waitSignal(window.model_ready, timeout=3000):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert closed == [1]  # the old model was freed before the new one loaded
    assert services.settings.model.n_ctx == 2048
    assert _saved(services)["model"]["n_gpu_layers"] == 0


def test_restore_default_prompt(window, qtbot):
    dialog = window.open_settings()
    dialog.tabs.setCurrentIndex(2)
    dialog.system_prompt_edit.setPlainText("Be terse.")
    qtbot.mouseClick(dialog.restore_prompt_button, Qt.MouseButton.LeftButton)
    assert dialog.system_prompt_edit.toPlainText() == DEFAULT_SYSTEM_PROMPT
    dialog.reject()


def test_model_info_is_read_off_the_gui_thread(window, qtbot, tmp_path):
    fake = tmp_path / "not-a-model.gguf"
    fake.write_bytes(b"this is not a gguf file at all")
    dialog = window.open_settings()
    dialog.path_edit.setText(str(fake))
    dialog.path_edit.editingFinished.emit()
    qtbot.waitUntil(lambda: dialog.model_info_label.text() != "Reading the model file…")
    assert "not-a-model.gguf" in dialog.model_info_label.text()
    dialog.bundled_button.click()
    assert dialog.path_edit.text() == ""
    assert dialog.model_info_label.text() == BUNDLED_DESCRIPTION
    dialog.reject()


def test_closing_the_dialog_while_a_model_file_is_read(window, qtbot, tmp_path, monkeypatch):
    import threading

    from PySide6.QtCore import QThreadPool

    from ghostdesk.ui import settings_dialog

    release = threading.Event()

    def slow_describe(path: str) -> str:
        release.wait(5)
        return "a model"

    monkeypatch.setattr(settings_dialog, "describe_model_file", slow_describe)
    dialog = window.open_settings()
    dialog.path_edit.setText(str(tmp_path / "big.gguf"))
    dialog.path_edit.editingFinished.emit()
    with qtbot.waitSignal(dialog.destroyed, timeout=3000):
        dialog.reject()
    release.set()
    assert QThreadPool.globalInstance().waitForDone(3000)
    qtbot.wait(20)  # the result arrives for a dialog that is gone: nothing happens
    assert window.settings_dialog is None
