"""The welcome wizard: every path (bundled, a file, a download from a local server), skip,
pause/resume, and opening it again from Settings."""

from __future__ import annotations

import os

import pytest
from PySide6.QtCore import QThreadPool, QTimer
from PySide6.QtWidgets import QApplication, QWizard

from ghostdesk.core.llm.gpu_probe import GpuDevice
from ghostdesk.core.models.catalogue import GIB, parse_catalogue
from ghostdesk.core.setup.first_run import first_run_needed, marker_path, models_dir
from ghostdesk.core.setup.hardware import HardwareInfo
from ghostdesk.ui import first_run as fr
from ghostdesk.ui.first_run import PAGE_DOWNLOAD, PAGE_MODEL, PAGE_PERSONA, FirstRunWizard
from ghostdesk.ui.settings_dialog import SettingsDialog
from tests.fake_hub import FakeHub

REPO, NAME = "someone/Tiny-GGUF", "tiny-Q4_K_M.gguf"
DATA = os.urandom(256 * 1024)


def catalogue():
    return parse_catalogue({
        "tiers": [
            {"id": "cpu", "title": "Processor", "min_vram_gib": 0, "description": "Small."},
            {"id": "gpu-8gb", "title": "8 GB", "min_vram_gib": 7, "description": "7B."},
        ],
        "models": [
            {"id": "tiny", "tier": "gpu-8gb", "name": "Tiny 7B", "repo_id": REPO,
             "filename": NAME, "size_bytes": len(DATA), "licence": "Apache-2.0",
             "quant": "Q4_K_M", "params_billion": 7.0},
            {"id": "small", "tier": "cpu", "name": "Small", "repo_id": "x/small",
             "filename": "small.gguf", "size_bytes": 1000, "licence": "MIT"},
        ],
    })


def gpu_machine() -> HardwareInfo:
    return HardwareInfo(8, 16, 32 * GIB, 16 * GIB,
                        (GpuDevice("NVIDIA GeForce RTX 3070", 7 * GIB, 8 * GIB),), True, "Linux")


def cpu_machine() -> HardwareInfo:
    return HardwareInfo(4, 8, 16 * GIB, 8 * GIB, (), False, "Linux")


@pytest.fixture
def hub(monkeypatch):
    server = FakeHub().start()
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    server.host(REPO, NAME, DATA)
    yield server
    server.stop()


@pytest.fixture
def small_chunks(monkeypatch):
    """Downloads read 16 KiB at a time, so a test can pause between chunks."""
    from ghostdesk.core.models.download import download_for

    monkeypatch.setattr(FirstRunWizard, "make_download", lambda self, model: download_for(
        model, models_dir(self.services.paths), chunk_bytes=16 * 1024, retries=0))


@pytest.fixture
def make_wizard(qtbot, themed_app, services):
    def make(detect=gpu_machine, **kw) -> FirstRunWizard:
        wizard = FirstRunWizard(services, catalogue=catalogue(), detect=detect, **kw)
        qtbot.addWidget(wizard)
        wizard.show()
        qtbot.waitUntil(lambda: wizard.welcome_page.isComplete(), timeout=5000)
        return wizard

    yield make
    assert QThreadPool.globalInstance().waitForDone(5000)


def to_model_page(wizard: FirstRunWizard) -> None:
    wizard.next()
    assert wizard.currentId() == PAGE_MODEL


def finish(wizard: FirstRunWizard, name: str = "Mira") -> None:
    assert wizard.currentId() == PAGE_PERSONA
    wizard.persona_page.name_edit.setText(name)
    wizard.button(QWizard.WizardButton.FinishButton).click()


def test_the_welcome_page_shows_the_hardware_and_the_recommendation(make_wizard):
    wizard = make_wizard()
    text = wizard.welcome_page.hardware_label.text()
    assert "8 cores (16 threads)" in text and "RTX 3070, 8.0 GiB (7.0 GiB free)" in text
    assert "Suggested: 7B." in wizard.welcome_page.recommendation_label.text()
    assert wizard.button(QWizard.WizardButton.CancelButton).text() == "Skip"


def test_the_bundled_model_path(make_wizard, services):
    wizard = make_wizard()
    services.settings.model.path = "/somewhere/else.gguf"
    to_model_page(wizard)
    assert wizard.model_page.download_radio.isChecked()  # a GPU: the download is suggested
    wizard.model_page.bundled_radio.setChecked(True)
    wizard.next()
    finish(wizard, "Mira")
    assert services.settings.model.path == "" and services.settings.persona.name == "Mira"
    assert services.paths.settings.is_file()
    assert '"finished"' in marker_path(services.paths).read_text()
    assert not first_run_needed(services.paths)


def test_no_gpu_suggests_the_bundled_model(make_wizard):
    wizard = make_wizard(detect=cpu_machine)
    to_model_page(wizard)
    assert wizard.model_page.bundled_radio.isChecked()
    assert wizard.model_page.model_combo.itemData(0) == "small"  # the processor tier first


def test_the_choose_a_file_path(make_wizard, services, tmp_path):
    model = tmp_path / "mine.gguf"
    model.write_bytes(b"GGUF")
    wizard = make_wizard()
    to_model_page(wizard)
    page = wizard.model_page
    page.file_radio.setChecked(True)
    page.path_edit.setText(str(tmp_path / "missing.gguf"))
    wizard.next()
    assert wizard.currentId() == PAGE_MODEL and "existing .gguf" in page.error_label.text()
    page.path_edit.setText(str(model))
    wizard.next()
    finish(wizard)
    assert services.settings.model.path == str(model.resolve())


def test_the_download_path_from_a_local_server(qtbot, make_wizard, services, hub):
    wizard = make_wizard()
    to_model_page(wizard)
    assert wizard.model_page.selected_model().id == "tiny"
    assert "Apache-2.0" in wizard.model_page.model_info_label.text()
    wizard.next()
    assert wizard.currentId() == PAGE_DOWNLOAD
    assert not wizard.button(QWizard.WizardButton.NextButton).isEnabled()
    page = wizard.download_page
    qtbot.waitUntil(lambda: page.isComplete())
    assert page.status_label.text() == "Downloaded and verified."
    wizard.next()
    finish(wizard)
    path = models_dir(services.paths) / NAME
    assert services.settings.model.path == str(path)
    assert path.read_bytes() == DATA
    assert sorted(p.name for p in path.parent.iterdir()) == [NAME]


def test_a_download_can_be_paused_and_resumed(qtbot, make_wizard, services, hub, small_chunks):
    hub.behaviour.send_slowly_s = 0.02
    wizard = make_wizard()
    to_model_page(wizard)
    wizard.next()
    page = wizard.download_page
    qtbot.waitUntil(lambda: " of " in page.status_label.text())
    page.pause_button.click()
    qtbot.waitUntil(lambda: not page.running)
    assert page.status_label.text().startswith("Paused at")
    assert page.pause_button.text() == "Resume" and not page.isComplete()
    part = models_dir(services.paths) / (NAME + ".part")
    assert 0 < part.stat().st_size < len(DATA)
    hub.behaviour.send_slowly_s = 0.0
    page.pause_button.click()
    qtbot.waitUntil(lambda: page.isComplete())
    assert (models_dir(services.paths) / NAME).read_bytes() == DATA
    assert hub.gets()[-1].range.startswith("bytes=")


def test_a_failed_download_says_why_and_can_be_retried(qtbot, make_wizard, hub, small_chunks):
    hub.behaviour.status_override = 500
    wizard = make_wizard()
    to_model_page(wizard)
    wizard.next()
    page = wizard.download_page
    qtbot.waitUntil(lambda: not page.running and page.error_label.isVisible())
    assert "HTTP 500" in page.error_label.text() and page.pause_button.text() == "Try again"
    hub.behaviour.status_override = None
    page.pause_button.click()
    qtbot.waitUntil(lambda: page.isComplete())


def test_going_back_pauses_the_download(qtbot, make_wizard, services, hub, small_chunks):
    hub.behaviour.send_slowly_s = 0.02
    wizard = make_wizard()
    to_model_page(wizard)
    wizard.next()
    qtbot.waitUntil(lambda: " of " in wizard.download_page.status_label.text())
    wizard.back()
    qtbot.waitUntil(lambda: not wizard.download_page.running)
    assert (models_dir(services.paths) / (NAME + ".part")).exists()


def test_skip_changes_nothing_but_is_remembered(make_wizard, services):
    before = services.settings.to_dict()
    wizard = make_wizard()
    wizard.button(QWizard.WizardButton.CancelButton).click()
    assert services.settings.to_dict() == before
    assert not services.paths.settings.exists()
    assert '"skipped"' in marker_path(services.paths).read_text()
    assert not first_run_needed(services.paths)


def test_first_launch_shows_the_wizard_once(qtbot, themed_app, services, monkeypatch):
    monkeypatch.setattr(fr, "_detect_hardware", cpu_machine)

    def skip_when_shown() -> None:
        modal = QApplication.activeModalWidget()
        if isinstance(modal, FirstRunWizard):
            modal.reject()
        else:
            QTimer.singleShot(10, skip_when_shown)

    QTimer.singleShot(0, skip_when_shown)
    assert fr.maybe_run_first_run(services) is True
    assert fr.maybe_run_first_run(services) is False  # the marker is there now


def test_settings_can_open_it_again_and_it_fills_the_dialog(qtbot, themed_app, services,
                                                            monkeypatch):
    monkeypatch.setattr(fr, "_detect_hardware", cpu_machine)
    monkeypatch.setattr(fr, "load_catalogue", catalogue)
    services.settings.model.path = "/models/old.gguf"
    dialog = SettingsDialog(services)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.setup_button.click()
    wizard = dialog.setup_wizard
    assert wizard.isVisible() and wizard.button(QWizard.WizardButton.CancelButton).text() == \
        "Cancel"
    qtbot.waitUntil(lambda: wizard.welcome_page.isComplete())
    to_model_page(wizard)
    assert wizard.model_page.file_radio.isChecked()  # it starts from the dialog's values
    assert wizard.model_page.path_edit.text() == "/models/old.gguf"
    wizard.model_page.bundled_radio.setChecked(True)
    wizard.next()
    finish(wizard, "Nova")
    assert dialog.path_edit.text() == "" and dialog.persona_name_edit.text() == "Nova"
    assert services.settings.persona.name != "Nova"  # nothing saved until the dialog's OK
    assert not marker_path(services.paths).exists()
    dialog.accept()
    assert services.settings.persona.name == "Nova" and services.settings.model.path == ""
    assert QThreadPool.globalInstance().waitForDone(5000)



def test_run_gui_greets_a_first_launch_before_the_window(qapp, services, engine, monkeypatch):
    from ghostdesk.ui.application import run_gui
    from ghostdesk.ui.main_window import MainWindow

    monkeypatch.setattr(fr, "_detect_hardware", cpu_machine)
    services.load_engine = lambda: engine
    seen: list[str] = []

    def drive() -> None:
        modal = QApplication.activeModalWidget()
        if isinstance(modal, FirstRunWizard):
            seen.append("wizard")
            modal.next()
            modal.model_page.bundled_radio.setChecked(True)
            modal.next()
            modal.persona_page.name_edit.setText("Wren")
            modal.accept()
        windows = [w for w in QApplication.topLevelWidgets()
                   if isinstance(w, MainWindow) and w.isVisible()]
        if windows and windows[0].is_model_ready:
            seen.append("window")
            windows[0].close()
            return
        QTimer.singleShot(10, drive)

    QTimer.singleShot(0, drive)
    guard = QTimer(singleShot=True, interval=10_000)
    guard.timeout.connect(qapp.quit)
    guard.start()
    assert run_gui(services, first_run=True) == 0
    guard.stop()
    assert seen[0] == "wizard" and seen[-1] == "window"
    assert services.settings.persona.name == "Wren"
    assert not first_run_needed(services.paths)


def test_the_menu_entry_saves_and_reports_old_and_new(qtbot, themed_app, services, monkeypatch):
    monkeypatch.setattr(fr, "_detect_hardware", cpu_machine)
    monkeypatch.setattr(fr, "load_catalogue", catalogue)
    from PySide6.QtWidgets import QWidget

    holder = QWidget()
    qtbot.addWidget(holder)
    applied = []
    wizard = fr.open_setup_wizard(services, holder, on_applied=lambda o, n: applied.append((o, n)))
    assert fr.open_setup_wizard(services, holder) is wizard  # one at a time
    qtbot.waitUntil(lambda: wizard.welcome_page.isComplete())
    to_model_page(wizard)
    wizard.model_page.bundled_radio.setChecked(True)
    wizard.next()
    finish(wizard, "Ash")
    (old, new), = applied
    assert old.persona.name != "Ash" and new.persona.name == "Ash"
    assert services.settings.persona.name == "Ash"
    again = fr.open_setup_wizard(services, holder)
    assert again is not wizard and wizard.parent() is None
    again.reject()
    assert QThreadPool.globalInstance().waitForDone(5000)


def test_time_left_reads_at_a_glance():
    from ghostdesk.ui.first_run_download import duration_text

    assert [duration_text(s) for s in (0.2, 45, 12 * 60, 90 * 60)] == [
        "1 s", "45 s", "12 min", "1.5 h"]
