"""The training child through a QProcess: events, progress, evaluation, stopping, dying.

The child here is a small script that prints scripted event lines (made with
`events.encode`), so a whole run takes a fraction of a second; the real child is tested in
tests/core/training.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from ghostdesk.core.training import events as ev
from ghostdesk.core.training.planner import (
    DataSummary,
    MethodData,
    PlannedRun,
    choose_method,
)
from ghostdesk.core.training.registry import AdapterRegistry
from ghostdesk.core.training.run_config import RunConfig, build_run_config
from ghostdesk.ui.training_run import TrainingRunner

FAKE_CHILD = r"""
import json, signal, sys, time
from pathlib import Path

ops = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
stop_file = Path(sys.argv[2])
for op, arg in ops:
    if op == "out":
        print(arg, flush=True)
    elif op == "err":
        print(arg, file=sys.stderr, flush=True)
    elif op == "sleep":
        time.sleep(arg)
    elif op == "ignore_term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    elif op == "wait_stop":
        deadline = time.monotonic() + arg
        while not stop_file.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    elif op == "adapter":
        from ghostdesk.core.training.registry import AdapterRecord, AdapterRegistry
        record = AdapterRecord(**arg["record"])
        AdapterRegistry(Path(arg["folder"])).write_adapter(
            record, lambda folder: (folder / "adapter.gguf").write_bytes(b"GGUF"))
    elif op == "exit":
        sys.exit(arg)
"""


def out(event: Any) -> list[Any]:
    return ["out", ev.encode(event)]


def fake_command(folder: Path, cfg: RunConfig, ops: list[list[Any]]) -> list[str]:
    """The command line of a fake child that performs `ops` in order."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "fake_child.py"
    script.write_text(FAKE_CHILD, encoding="utf-8")
    plan = folder / f"ops-{len(list(folder.glob('ops-*.json')))}.json"
    plan.write_text(json.dumps(ops), encoding="utf-8")
    return [sys.executable, str(script), str(plan), str(cfg.stop_file)]


def make_cfg(
    home: Path,
    *,
    device: str = "cpu",
    method: str = "kto",
    adopt: str = "ask",
    run_id: str = "run-20260301-140203-abc123",
) -> RunConfig:
    folder = home / "training" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    train = folder / "train.jsonl"
    train.write_text("{}\n", encoding="utf-8")
    return build_run_config(
        method=method,
        train_file=train,
        chat_model=home / "chat.gguf",
        home=home,
        n_train=20,
        device=device,
        adopt=adopt,
        run_id=run_id,
        data_counts={"train_examples": 20},
    )


def summary_of(kto: tuple[int, int] = (12, 9), dpo: int = 3, sft: int = 0) -> DataSummary:
    return DataSummary(
        kto=MethodData("kto", sum(kto), 4, desirable=kto[0], undesirable=kto[1]),
        dpo=MethodData("dpo", dpo, 1),
        sft=MethodData("sft", sft, 0),
    )


class FakePlanner:
    """TrainingPlanner's interface with a fixed summary and a prepared RunConfig."""

    def __init__(self, cfg: RunConfig | None, summary: DataSummary | None = None) -> None:
        self.cfg = cfg
        self._summary = summary or summary_of()
        self.plans = 0
        self.asked: list[dict[str, Any]] = []

    def summary(self) -> DataSummary:
        return self._summary

    def resolve_method(self, method: str, summary: DataSummary | None = None):
        return choose_method(summary or self._summary) if method == "auto" else (method, "")

    def plan(self, **kw: Any) -> PlannedRun:
        self.plans += 1
        self.asked.append(kw)
        assert self.cfg is not None
        if kw.get("device"):
            self.cfg.device = kw["device"]
        method, reason = choose_method(self._summary)
        return PlannedRun(self.cfg, reason, self._summary.of(method))


def full_run(
    cfg: RunConfig,
    *,
    steps: int = 6,
    adapter_id: str = "a20260301-141000-aaaaaa",
    adopt: bool | None = None,
    recommended: bool = True,
    step_sleep: float = 0.0,
) -> list[list[Any]]:
    """The events of a run that trains, measures, saves an adapter and finishes."""
    ops: list[list[Any]] = [
        out(ev.Preparing(stage="Reading the feedback…")),
        ["err", "some library chatter on stderr"],
        ["out", "a stray line on stdout that is not an event"],
        out(ev.Preparing(stage="Loading the model for training…")),
        out(
            ev.Started(
                run_id=cfg.run_id,
                method=cfg.method,
                preset=cfg.preset,
                device="cpu",
                base="gguf",
                train_examples=20,
                eval_examples=4,
                max_steps=steps,
                chat_tokens_checked=4,
                chat_tokens_match=True,
            )
        ),
    ]
    for i in range(1, steps + 1):
        ops.append(
            out(
                ev.Step(
                    step=i,
                    max_steps=steps,
                    loss=0.69 - 0.05 * i,
                    lr=2e-4,
                    reward_margin=0.1 * i - 0.05 * (i % 2),
                    tokens_per_second=5.2,
                    eta_s=20.0 * (steps - i),
                    epoch=i / steps,
                )
            )
        )
        if step_sleep:
            ops.append(["sleep", step_sleep])
    ops += [
        out(ev.Preparing(stage="Measuring the new adapter on held-out feedback…")),
        out(
            ev.Evaluated(
                accuracy=0.75,
                reward_margin=1.25,
                examples=8,
                previous_accuracy=0.5,
                previous_reward_margin=0.0,
                previous_adapter="",
                recommended=recommended,
                adopt=adopt,
                reason="The new adapter is better: held-out preference accuracy 75% vs 50% for "
                "the base model, on 8 examples.",
                samples=[
                    {
                        "prompt": "How was your day?",
                        "base": "It was a day.",
                        "adapter": "Lovely, thanks for asking! How was yours?",
                    },
                    {
                        "prompt": "Tell me a joke",
                        "base": "Why did the chicken cross <road>?",
                        "adapter": "What do you call a ghost's mistake? A boo-boo.",
                    },
                ],
            )
        ),
        [
            "adapter",
            {
                "folder": str(Path(cfg.home) / "adapters"),
                "record": {
                    "id": adapter_id,
                    "method": cfg.method,
                    "created": "2026-03-01T14:10:00+0000",
                    "base_sha256": "x",
                    "metrics": {"accuracy": 0.75, "previous_accuracy": 0.5},
                    "data_counts": {"train_examples": 20},
                    "run_id": cfg.run_id,
                },
            },
        ],
        out(
            ev.Saved(
                adapter_id=adapter_id,
                path=str(Path(cfg.home) / "adapters" / adapter_id),
                gguf="adapter.gguf",
            )
        ),
        out(ev.Finished(status="completed", adapter_id=adapter_id, step=steps, seconds=95.0)),
    ]
    return ops


@pytest.fixture
def runner(qtbot):
    r = TrainingRunner(stop_grace_ms=300, kill_grace_ms=300)
    yield r
    if r.running:
        r.shutdown(2000)


@pytest.fixture(autouse=True)
def quit_without_asking(monkeypatch):
    """A test that fails mid-run must not leave a question open when its window closes."""
    from ghostdesk.ui.main_window import MainWindow

    monkeypatch.setattr(MainWindow, "_confirm_quit_while_learning", lambda self: True)


# -- the runner on its own ------------------------------------------------------------------


def test_the_runner_turns_stdout_lines_into_events_and_ignores_the_rest(
    runner, qtbot, ghostdesk_home, tmp_path
):
    cfg = make_cfg(ghostdesk_home)
    progress: list[tuple[int, int, float]] = []
    runner.progress_changed.connect(lambda *a: progress.append(a))
    with qtbot.waitSignal(runner.run_finished, timeout=10_000) as finished:
        runner.start(cfg, fake_command(tmp_path, cfg, full_run(cfg, steps=3)))
    outcome = finished.args[0]
    assert (outcome.status, outcome.adapter_id) == ("completed", "a20260301-141000-aaaaaa")
    kinds = [e.kind for e in runner.events]
    assert kinds == [
        "preparing",
        "preparing",
        "started",
        "step",
        "step",
        "step",
        "preparing",
        "evaluated",
        "saved",
        "finished",
    ]
    assert progress == [(1, 3, 40.0), (2, 3, 20.0), (3, 3, 0.0)]
    assert runner.evaluated.accuracy == 0.75 and runner.saved.adapter_id == outcome.adapter_id
    assert not runner.running
    log = cfg.log_file.read_text(encoding="utf-8")
    assert "--- start" in log and "some library chatter on stderr" in log  # stderr → the log
    assert (cfg.run_dir / "run.json").is_file()  # prepare_run wrote it for the child


def test_stop_creates_the_stop_file_and_the_child_finishes_as_stopped(
    runner, qtbot, ghostdesk_home, tmp_path
):
    cfg = make_cfg(ghostdesk_home)
    ops = [
        out(ev.Step(step=1, max_steps=60, loss=0.7, lr=2e-4)),
        ["wait_stop", 20],
        out(ev.Finished(status="stopped", step=1, checkpoint="checkpoint-1")),
    ]
    with qtbot.waitSignal(runner.progress_changed, timeout=10_000):
        runner.start(cfg, fake_command(tmp_path, cfg, ops))
    with qtbot.waitSignal(runner.run_finished, timeout=10_000) as finished:
        runner.stop()
        assert cfg.stop_file.exists()
        assert runner.stopping
    assert finished.args[0].status == "stopped" and finished.args[0].step == 1
    assert finished.args[0].reason == ""  # it stopped by itself, in time


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is a hard kill on Windows")
@pytest.mark.parametrize("ignores_sigterm", [False, True])
def test_a_child_that_does_not_stop_in_time_is_terminated_then_killed(
    runner, qtbot, ghostdesk_home, tmp_path, ignores_sigterm
):
    cfg = make_cfg(ghostdesk_home)
    ops: list[list[Any]] = [["ignore_term", None]] if ignores_sigterm else []
    ops += [out(ev.Step(step=3, max_steps=60, loss=0.7, lr=2e-4)), ["sleep", 60]]
    with qtbot.waitSignal(runner.progress_changed, timeout=10_000):
        runner.start(cfg, fake_command(tmp_path, cfg, ops))
    with qtbot.waitSignal(runner.run_finished, timeout=10_000) as finished:
        runner.stop()
    outcome = finished.args[0]
    assert cfg.stop_file.exists()
    assert outcome.status == "stopped" and outcome.step == 3
    assert "did not stop in time" in outcome.reason
    assert "Start the training again" in outcome.hint  # no checkpoint to resume from
    assert [e.kind for e in runner.events] == ["step"]  # no made-up Finished event


def test_a_child_that_dies_without_a_last_word_is_a_failure_with_the_log_tail(
    runner, qtbot, ghostdesk_home, tmp_path
):
    cfg = make_cfg(ghostdesk_home)
    ops = [
        out(ev.Step(step=1, max_steps=60, loss=0.7, lr=2e-4)),
        ["err", "Traceback (most recent call last):\nRuntimeError: CUDA error: boom"],
        ["exit", 3],
    ]
    with qtbot.waitSignal(runner.run_finished, timeout=10_000) as finished:
        runner.start(cfg, fake_command(tmp_path, cfg, ops))
    outcome = finished.args[0]
    assert outcome.status == "failed"
    assert outcome.reason == "The training process crashed (exit code 3)."
    assert "CUDA error: boom" in outcome.detail
    last = runner.events[-1]
    assert last.kind == "failed" and "CUDA error: boom" in last.detail


def test_a_child_that_cannot_start_is_a_failure(runner, qtbot, ghostdesk_home):
    cfg = make_cfg(ghostdesk_home)
    with qtbot.waitSignal(runner.run_finished, timeout=10_000) as finished:
        runner.start(cfg, [str(ghostdesk_home / "no-such-program")])
    assert finished.args[0].status == "failed"
    assert "could not start" in finished.args[0].reason
    assert not runner.running


# -- the whole loop in the window -------------------------------------------------------------


@pytest.fixture
def learning_window(window, services, ghostdesk_home, tmp_path):
    """A ready window whose training session plans `cfg` and runs a fake child."""
    cfg = make_cfg(ghostdesk_home)
    planner = FakePlanner(cfg)
    session = window.training
    session.planner_for = lambda: planner
    session.cuda_probe = lambda: False
    session.ops = full_run(cfg)
    session.command_for = lambda c: fake_command(tmp_path / "child", c, session.ops)
    window.test_cfg = cfg
    return window


def _open_pane(window, qtbot):
    pane = window.open_training()
    qtbot.waitUntil(lambda: pane.overview_loaded > 0, timeout=5000)
    return pane


def test_a_run_fills_progress_plots_log_result_and_asks_to_adopt(learning_window, qtbot, services):
    window = learning_window
    pane = _open_pane(window, qtbot)
    assert pane.choices.start_button.isEnabled()
    assert "KTO: 12 👍 and 9 👎" in pane.choices.method_hint.text()  # Auto says what it would pick
    with qtbot.waitSignal(window.training.runner.run_finished, timeout=10_000):
        qtbot.mouseClick(pane.choices.start_button, Qt.MouseButton.LeftButton)

    assert pane.progress.value() == 6 and pane.progress.maximum() == 6
    assert pane.progress.format() == "step 6 / 6"
    xs, ys = pane.plots.loss_curve.getData()
    assert list(xs) == [1, 2, 3, 4, 5, 6] and ys[0] == pytest.approx(0.64)
    mxs, _ = pane.plots.margin_curve.getData()
    assert len(mxs) == 6
    log = pane.log_view.toPlainText()
    assert "Reading the feedback…" in log and "Step 6/6 · loss 0.3900" in log
    assert "Saved adapter a20260301-141000-aaaaaa." in log
    assert "stray line" not in log
    result = pane.result_label.text()
    assert "Better" in result and "75%" in result and "was 50%" in result
    assert "+1.25" in result
    samples = pane.samples_view.toPlainText()
    assert "How was your day?" in samples and "A boo-boo." in samples
    assert "cross <road>?" in samples  # shown as text, not markup
    assert pane.adopt_frame.isVisible()
    assert "75% against 50%" in pane.adopt_label.text()
    assert "Finished in 2 min" in pane.state_label.text()
    # The window asks too (the dialog may be closed by then).
    assert "Use it?" in window.banner.text and "measured better" in window.banner.text

    qtbot.mouseClick(pane.use_button, Qt.MouseButton.LeftButton)
    registry = AdapterRegistry.in_home(services.paths.root)
    qtbot.waitUntil(lambda: registry.active_id == "a20260301-141000-aaaaaa", timeout=3000)
    assert not pane.adopt_frame.isVisible()
    assert window.banner.text == ""
    qtbot.waitUntil(
        lambda: pane.adapters.marked_active() == ["a20260301-141000-aaaaaa"], timeout=3000
    )


def test_auto_adopt_activates_and_never_only_keeps(learning_window, qtbot, services):
    window = learning_window
    session = window.training
    cfg = window.test_cfg
    session.ops = full_run(cfg, adopt=True)
    registry = AdapterRegistry.in_home(services.paths.root)
    with qtbot.waitSignal(session.runner.run_finished, timeout=10_000):
        session.start()
    assert registry.active_id == "a20260301-141000-aaaaaa"
    assert session.pending_adoption is None
    assert "the chat now uses the new adapter" in window.banner.text

    session.ops = full_run(
        cfg, adopt=False, recommended=False, adapter_id="a20260301-151000-bbbbbb"
    )
    with qtbot.waitSignal(session.runner.run_finished, timeout=10_000):
        session.start()
    assert registry.active_id == "a20260301-141000-aaaaaa"  # kept, not used
    assert "kept but is not used" in window.banner.text


def test_closing_the_dialog_keeps_the_run_and_the_status_bar_shows_it(learning_window, qtbot):
    window = learning_window
    session = window.training
    cfg = window.test_cfg
    session.ops = [
        out(ev.Step(step=2, max_steps=60, loss=0.7, lr=2e-4, eta_s=300)),
        ["wait_stop", 20],
        out(ev.Finished(status="stopped", step=2)),
    ]
    pane = _open_pane(window, qtbot)
    with qtbot.waitSignal(session.runner.progress_changed, timeout=10_000):
        qtbot.mouseClick(pane.choices.start_button, Qt.MouseButton.LeftButton)
    assert pane.state_label.text() == "Learning: step 2 of 60"
    assert "about 5 min left" in pane.detail_label.text()
    assert not pane.choices.start_button.isEnabled() and pane.choices.stop_button.isEnabled()

    window.settings_dialog.reject()
    qtbot.waitUntil(lambda: window.settings_dialog is None, timeout=3000)
    assert session.runner.running
    assert window.learning_button.isVisible()
    assert window.learning_button.text() == "Learning… step 2/60"
    assert window.is_model_ready  # a CPU run: the chat goes on

    # Opening it again shows the run from its start.
    pane = _open_pane(window, qtbot)
    assert "Step 2/60" in pane.log_view.toPlainText()
    assert list(pane.plots.loss_curve.getData()[0]) == [2]
    with qtbot.waitSignal(session.runner.run_finished, timeout=10_000):
        qtbot.mouseClick(pane.choices.stop_button, Qt.MouseButton.LeftButton)
    assert cfg.stop_file.exists()
    assert not window.learning_button.isVisible()
    assert pane.state_label.text().startswith("Stopped at step 2")
    assert "Resume it from Settings ▸ Training" in window.banner.text


def test_a_failed_run_shows_why_and_the_log_tail(learning_window, qtbot):
    window = learning_window
    session = window.training
    session.ops = [
        out(ev.Preparing(stage="Loading the model for training…")),
        ["err", "MemoryError: out of memory while loading"],
        ["exit", 1],
    ]
    pane = _open_pane(window, qtbot)
    with qtbot.waitSignal(session.runner.run_finished, timeout=10_000):
        qtbot.mouseClick(pane.choices.start_button, Qt.MouseButton.LeftButton)
    assert pane.state_label.text() == "Failed: The training process crashed (exit code 1)."
    assert "out of memory while loading" in pane.log_view.toPlainText()
    assert pane.tabs.currentIndex() == 1  # the log
    assert window.banner.kind == "error" and "Training failed" in window.banner.text
    assert pane.choices.start_button.isEnabled()  # it can be tried again
