"""`ghostdesk train ...`, `ghostdesk adapters ...` and the learning benches, over a real
database and adapter registry in a temp folder. The training child is scripted: a real run
on the bundled model takes minutes on a CPU (tests/core/training covers the child itself)."""

from __future__ import annotations

import io
import json
import sys
import types
from pathlib import Path

import pytest

from ghostdesk import cli
from ghostdesk.core.feedback.split import split_of
from ghostdesk.core.training.events import (
    Evaluated,
    Failed,
    Finished,
    Preparing,
    Saved,
    Started,
    Step,
)
from ghostdesk.core.training.launcher import ChildRun, TrainingProcess
from ghostdesk.core.training.registry import AdapterRecord, AdapterRegistry
from ghostdesk.core.training.run_folders import resumable_runs
from ghostdesk.services import build_services


@pytest.fixture
def chat_model(tmp_path: Path) -> Path:
    # The planner only needs the chat model to exist; the scripted child never reads it.
    path = tmp_path / "models" / "chat.gguf"
    path.parent.mkdir()
    path.write_bytes(b"GGUF not really a model")
    return path


@pytest.fixture
def services(ghostdesk_home, chat_model):
    services = build_services(model_path=str(chat_model))
    yield services
    services.close()


@pytest.fixture(autouse=True)
def no_terminal(monkeypatch):
    """stdin is not a terminal unless a test says so."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(services, *argv: str) -> tuple[int, str]:
    args = cli.build_parser().parse_args(list(argv))
    out = io.StringIO()
    code = cli.dispatch(args, services, out)
    return code, out.getvalue()


def rate_replies(services, up: int, down: int) -> dict[str, dict[str, int]]:
    """One conversation per rated reply; returns the 👍 / 👎 counts on each side of the
    held-out split (a conversation's side is fixed by its id)."""
    sides = {"train": {"up": 0, "down": 0}, "eval": {"up": 0, "down": 0}}
    for i, rating in enumerate(["up"] * up + ["down"] * down):
        cid = services.store.create_conversation().id
        services.store.add_message(cid, "user", f"question {i}")
        reply = services.store.add_message(cid, "assistant", f"answer {i}")
        services.ledger.rate(reply.id, rating, on=True)
        sides[split_of(cid)][rating] += 1
    return sides


def rate_pairs(services, n: int) -> dict[str, int]:
    """Conversations whose reply has two versions, 👍 one and 👎 the other (a DPO pair each)."""
    sides = {"train": 0, "eval": 0}
    for i in range(n):
        cid = services.store.create_conversation().id
        user = services.store.add_message(cid, "user", f"question {i}")
        first = services.store.add_message(cid, "assistant", f"warm answer {i}")
        second = services.store.add_message(cid, "assistant", f"curt answer {i}",
                                            parent_id=user.id)
        services.ledger.rate(first.id, "up", on=True)
        services.ledger.rate(second.id, "down", on=True)
        sides[split_of(cid)] += 1
    return sides


def _record(adapter_id: str, created: str, **kw) -> AdapterRecord:
    kw.setdefault("base_sha256", "ab" * 32)
    return AdapterRecord(id=adapter_id, method="kto", created=created, base_name="Tiny",
                         architecture="llama",
                         data_counts={"train_examples": 16, "desirable": 9, "undesirable": 7,
                                      "eval_examples": 4},
                         metrics={"accuracy": 0.8, "previous_accuracy": 0.5}, **kw)


def _files(folder: Path) -> None:
    (folder / "adapter.gguf").write_bytes(b"GGUF fake")
    (folder / "peft").mkdir()
    (folder / "peft" / "adapter_model.safetensors").write_bytes(b"w")


def saved_by_child(adapter_id: str):
    """A script step: the child writes its adapter folder, then reports Saved."""

    def save(cfg) -> Saved:
        record = AdapterRegistry.in_home(cfg.home).write_adapter(
            _record(adapter_id, "2026-03-01T12:00:00", run_id=cfg.run_id), _files)
        return Saved(adapter_id=record.id, path=record.path, gguf=str(record.gguf_path))

    return save


def write_checkpoint(cfg, step: int) -> None:
    """What the trainer leaves when it stops: a complete checkpoint folder."""
    folder = cfg.checkpoint_dir / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (folder / "adapter_model.safetensors").write_bytes(b"w")


class ScriptedProcess:
    """Stands in for TrainingProcess: events() plays the script (exceptions in it are raised,
    callables are called with the run's config); after stop(), events() plays `after_stop`
    (the last words still in the child's pipe). The run is followed by the real ChildRun,
    as if the scripted child exited with code 0 at the end of its script."""

    def __init__(self, cfg, script, after_stop, on_stop) -> None:
        self.cfg = cfg
        self.run = ChildRun(cfg)
        self.script = list(script)
        self.after_stop = list(after_stop)
        self.on_stop = on_stop
        self.stop_calls = 0
        self.killed = False
        self._played = 0

    @property
    def outcome(self):
        return self.run.outcome

    def events(self):
        items = self.script if self._played == 0 else self.after_stop
        self._played += 1
        for item in items:
            if isinstance(item, BaseException) or (
                    isinstance(item, type) and issubclass(item, BaseException)):
                raise item
            event = item(self.cfg) if callable(item) else item
            self.run.record(event)
            yield event
        stand_in = self.run.end(0)
        if stand_in is not None:
            yield stand_in

    def stop(self, timeout: float = 120.0) -> int:
        self.stop_calls += 1
        self.run.stop_requested = True
        if self.on_stop is not None:
            self.on_stop(self.cfg)
        return 0

    def kill(self) -> int:
        self.killed = True
        return -9

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


@pytest.fixture
def child(monkeypatch):
    """`child(script, after_stop=..., on_stop=...)` makes the next training runs play it;
    the started processes are in `child.started`."""

    class Child:
        started: list[ScriptedProcess] = []

        def __call__(self, script, *, after_stop=(), on_stop=None) -> Child:
            def start(cfg, **_kw):
                proc = ScriptedProcess(cfg, script, after_stop, on_stop)
                self.started.append(proc)
                return proc

            monkeypatch.setattr(TrainingProcess, "start", staticmethod(start))
            return self

    return Child()


def _started(cfg_steps: int = 5) -> Started:
    return Started(run_id="r", method="kto", preset="quick", device="cpu", base="gguf",
                   train_examples=20, eval_examples=3, max_steps=cfg_steps)


def _evaluated(adopt: bool | None, recommended: bool = True, reason: str = "") -> Evaluated:
    return Evaluated(accuracy=0.75, reward_margin=1.25, examples=8, previous_accuracy=0.5,
                     previous_reward_margin=0.0, previous_adapter="", recommended=recommended,
                     adopt=adopt,
                     reason=reason or "The new adapter is better: held-out preference "
                                      "accuracy 75% vs 50% for the base model, on 8 examples.",
                     samples=[{"prompt": "I'm a bit cold.", "base": "Whatever.",
                               "adapter": "A warm cup of tea 🙂"}])


def _completed(adapter_id: str) -> Finished:
    return Finished(status="completed", adapter_id=adapter_id, step=5, seconds=200.0,
                    tokens=900, tokens_per_second=4.5, peak_rss_mb=2097.0)


def _run_dirs(home: Path) -> list[Path]:
    folder = home / "training"
    return sorted(folder.iterdir()) if folder.is_dir() else []


# --- train --status --------------------------------------------------------------------------

def test_status_counts_each_method_and_the_auto_choice(services):
    sides = rate_replies(services, up=14, down=9)
    code, text = run(services, "train", "--status", "--json")
    assert code == 0
    data = json.loads(text)
    kto = data["methods"]["kto"]
    train_n = sides["train"]["up"] + sides["train"]["down"]
    assert (kto["train"], kto["eval"]) == (train_n, sides["eval"]["up"] + sides["eval"]["down"])
    assert (kto["desirable"], kto["undesirable"]) == (sides["train"]["up"],
                                                     sides["train"]["down"])
    assert kto["missing"] == max(0, 16 - train_n, 4 - sides["train"]["up"],
                                 4 - sides["train"]["down"])
    assert data["methods"]["dpo"] == {"method": "dpo", "train": 0, "eval": 0,
                                      "desirable": None, "undesirable": None, "missing": 8}
    assert data["methods"]["sft"]["missing"] == 8
    assert data["auto"]["method"] == "kto"
    assert data["resumable"] == [] and data["active_adapter"] is None

    code, text = run(services, "train", "--status")
    assert code == 0
    lines = text.splitlines()
    assert lines[0] == "Training data (train / held out):"
    assert lines[1].split()[:3] == ["KTO", str(train_n), "/"]
    assert "DPO" in lines[2] and "needs 8 more" in lines[2]
    assert "SFT" in lines[3] and "needs 8 more" in lines[3]
    if kto["missing"] == 0:
        assert "ready" in lines[1]
        assert f"Auto would train KTO: {sides['train']['up']} 👍 and {sides['train']['down']}" \
               " 👎" in text
    assert "it learns from your 👍 and 👎 ratings" in text
    assert "Active adapter: none (the base model)" in text


def test_status_prefers_pairs_when_both_are_ready(services):
    pairs = rate_pairs(services, 12)
    data = json.loads(run(services, "train", "--status", "--json")[1])
    assert data["methods"]["dpo"]["train"] == pairs["train"]
    assert data["methods"]["kto"]["train"] == 2 * pairs["train"]
    assert data["auto"]["method"] == "dpo" and data["auto"]["ready"]
    assert "KTO would have" in data["auto"]["reason"]


def test_status_without_enough_feedback_names_the_closest_method(services):
    rate_replies(services, up=2, down=1)
    text = run(services, "train", "--status")[1]
    assert "Auto: No method has enough feedback yet; KTO is closest" in text


# --- refusals --------------------------------------------------------------------------------

def test_too_little_feedback_is_refused_and_leaves_no_run(services, capsys, ghostdesk_home,
                                                          child):
    sides = rate_replies(services, up=3, down=3)
    child([])
    code, _ = run(services, "train", "--device", "cpu")
    assert code == 2
    err = capsys.readouterr().err
    n = sides["train"]["up"] + sides["train"]["down"]
    need = max(16 - n, 4 - sides["train"]["up"], 4 - sides["train"]["down"])
    assert f"Training needs {need} more rated replies: it has {n}" in err
    assert "Rate more replies" in err
    assert child.started == [] and _run_dirs(ghostdesk_home) == []

    code, text = run(services, "train", "--method", "dpo", "--json")
    assert code == 2
    assert json.loads(text)["error"].startswith("Training needs 8 more pairs")
    assert _run_dirs(ghostdesk_home) == []


def test_options_of_a_new_run_are_refused_with_resume(services, capsys):
    assert run(services, "train", "--resume", "run-x", "--method", "kto")[0] == 2
    assert "--method can't be combined with --resume" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--steps", "0"])
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--status", "--resume", "x"])


def test_a_base_folder_that_does_not_exist_is_refused(services, capsys, ghostdesk_home):
    rate_replies(services, up=12, down=12)
    assert run(services, "train", "--base", "/no/such/folder")[0] == 2
    assert "--base /no/such/folder: there is no such folder" in capsys.readouterr().err
    assert _run_dirs(ghostdesk_home) == []


# --- a run, scripted -------------------------------------------------------------------------

def test_completed_run_with_auto_adopt_activates_the_adapter(services, child, ghostdesk_home):
    rate_replies(services, up=12, down=12)
    child([Preparing(stage="Reading the feedback…"), _started(),
           Step(step=1, max_steps=5, loss=0.6931, lr=2e-4, reward_margin=0.12,
                tokens_per_second=5.2, eta_s=200.0),
           Step(step=5, max_steps=5, loss=0.5, lr=1e-4, reward_margin=None,
                tokens_per_second=5.0, eta_s=0.0),
           _evaluated(adopt=True), saved_by_child("a-new"), _completed("a-new")])
    code, text = run(services, "train", "--adopt", "auto", "--steps", "5", "--device", "cpu")
    assert code == 0, text
    [proc] = child.started
    cfg = proc.cfg
    assert (cfg.method, cfg.max_steps, cfg.adopt, cfg.device) == ("kto", 5, "auto", "cpu")
    assert Path(cfg.train_file).is_file() and cfg.run_dir.parent == ghostdesk_home / "training"
    assert f"Training run {cfg.run_id}: KTO on " in text
    assert "Auto chose KTO:" in text
    assert f"Log: {cfg.log_file}" in text
    assert "· Reading the feedback…" in text
    assert "step 1/5  loss 0.6931  reward margin +0.120  5.2 tok/s  ETA 3 min 20 s" in text
    assert "step 5/5  loss 0.5000  5.0 tok/s  ETA 0 s" in text
    assert "accuracy 75.0 % (vs 50.0 % for the base model)" in text
    assert "The new adapter is better" in text
    assert "prompt:  I'm a bit cold." in text and "adapter: A warm cup of tea 🙂" in text
    assert "Finished in 3 min 20 s: 5 steps" in text
    assert "Adapter a-new is now active" in text
    assert services.adapters.active_id == "a-new"


def test_ask_without_a_terminal_says_how_to_activate(services, child):
    rate_replies(services, up=12, down=12)
    child([_started(), _evaluated(adopt=None), saved_by_child("a-ask"), _completed("a-ask")])
    code, text = run(services, "train", "--device", "cpu")
    assert code == 0
    assert "Use the new adapter now?" not in text
    assert "Adapter a-ask is saved but not active" in text
    assert "ghostdesk adapters activate a-ask" in text
    assert services.adapters.active_id is None


def test_ask_on_a_terminal_activates_on_yes(services, child, monkeypatch):
    rate_replies(services, up=12, down=12)
    child([_started(), _evaluated(adopt=None), saved_by_child("a-yes"), _completed("a-yes")])
    monkeypatch.setattr(sys, "stdin", _Terminal("y\n"))
    code, text = run(services, "train", "--device", "cpu")
    assert code == 0
    assert "Use the new adapter now? [y/N]" in text
    assert services.adapters.active_id == "a-yes"


def test_keep_says_why_it_was_not_activated(services, child):
    rate_replies(services, up=12, down=12)
    reason = ("The new adapter is not better: held-out preference accuracy 50% vs 50% for "
              "the base model, on 8 examples.")
    child([_started(), _evaluated(adopt=False, recommended=False, reason=reason),
           saved_by_child("a-keep"), _completed("a-keep")])
    code, text = run(services, "train", "--device", "cpu", "--adopt", "auto")
    assert code == 0
    assert f"Adapter a-keep was kept but not activated: {reason}" in text
    assert "ghostdesk adapters activate a-keep" in text
    assert services.adapters.active_id is None
    assert [r.id for r in services.adapters.list()] == ["a-keep"]

    child([_started(), _evaluated(adopt=False), saved_by_child("a-never"),
           _completed("a-never")])
    code, text = run(services, "train", "--device", "cpu", "--adopt", "never")
    assert code == 0 and child.started[-1].cfg.adopt == "never"
    assert 'Adapter a-never was kept but not activated as the adopt setting is "never": ' \
           "The new adapter is better" in text
    assert services.adapters.active_id is None


def test_failed_run_exits_1_with_reason_hint_and_log(services, child, capsys):
    rate_replies(services, up=12, down=12)
    child([Preparing(stage="Reading the feedback…"),
           Failed(reason="The computer ran out of memory while training.",
                  hint="Choose the Quick preset, a shorter maximum length or a smaller batch.",
                  detail="Traceback …")])
    code, _ = run(services, "train", "--device", "cpu")
    assert code == 1
    err = capsys.readouterr().err
    cfg = child.started[0].cfg
    assert "Training failed: The computer ran out of memory while training." in err
    assert "Choose the Quick preset" in err
    assert f"The log: {cfg.log_file}" in err
    assert services.adapters.list() == []


def test_a_child_that_ends_without_a_word_is_a_failure(services, child, capsys):
    rate_replies(services, up=12, down=12)
    child([Preparing(stage="Reading the feedback…")])
    assert run(services, "train", "--device", "cpu")[0] == 1
    assert "ended without reporting a result" in capsys.readouterr().err


def test_the_real_child_reports_a_bad_chat_model(services, capsys):
    # The real launcher and child process: the child reads the chat model before anything
    # heavy and fails on this one (not a GGUF), which the CLI reports with exit code 1.
    rate_replies(services, up=12, down=12)
    code, text = run(services, "train", "--device", "cpu", "--json")
    assert code == 1
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[-2]["event"] == "failed" and lines[-1]["status"] == "failed"
    assert lines[-1]["reason"] == lines[-2]["reason"] and "chat.gguf" in lines[-1]["reason"]


_PAUSING_CHILD = """
import json, os, signal, sys, time
from ghostdesk.core.training.events import Finished, Started, Step, encode
from ghostdesk.core.training.run_config import RunConfig

cfg = RunConfig.load(sys.argv[1])
stopping = []
signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
print(encode(Started(run_id=cfg.run_id, method=cfg.method, preset=cfg.preset, device="cpu",
                     base="gguf", train_examples=20, eval_examples=3, max_steps=60)),
      flush=True)
print(encode(Step(step=1, max_steps=60, loss=0.69, lr=2e-4)), flush=True)
os.kill(os.getppid(), signal.SIGINT)  # the person presses Ctrl+C in the CLI's terminal
for _ in range(600):
    if stopping or cfg.stop_file.exists():
        ckpt = cfg.checkpoint_dir / "checkpoint-1"
        ckpt.mkdir(parents=True)
        (ckpt / "trainer_state.json").write_text("{}")
        (ckpt / "adapter_model.safetensors").write_bytes(b"w")
        print(encode(Finished(status="stopped", step=1, checkpoint=str(ckpt))), flush=True)
        sys.exit(0)
    time.sleep(0.05)
sys.exit(3)
"""


def test_ctrl_c_stops_the_real_child_gracefully(services, monkeypatch, tmp_path):
    from ghostdesk.core.training import launcher

    script = tmp_path / "child.py"
    script.write_text(_PAUSING_CHILD)
    monkeypatch.setattr(launcher, "training_command",
                        lambda cfg, python=None: [sys.executable, str(script),
                                                  str(cfg.config_file)])
    rate_replies(services, up=12, down=12)
    code, text = run(services, "train", "--device", "cpu", "--json")
    assert code == 0
    lines = [json.loads(line) for line in text.splitlines()]
    assert [e["event"] for e in lines] == ["started", "step", "finished", "summary"]
    assert lines[2]["status"] == "stopped"
    summary = lines[-1]
    assert summary["status"] == "stopped" and summary["step"] == 1
    assert summary["resume"] == f"ghostdesk train --resume {summary['run_id']}"
    [paused] = resumable_runs(services.paths.root)
    assert paused.run_id == summary["run_id"]


_STUCK_CHILD = """
import os, signal, sys, time
from ghostdesk.core.training.events import Step, encode
from ghostdesk.core.training.run_config import RunConfig

cfg = RunConfig.load(sys.argv[1])
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # deep in a long step: it can't stop now
ckpt = cfg.checkpoint_dir / "checkpoint-10"  # a periodic checkpoint from earlier
ckpt.mkdir(parents=True)
(ckpt / "trainer_state.json").write_text("{}")
(ckpt / "adapter_model.safetensors").write_bytes(b"w")
print(encode(Step(step=12, max_steps=60, loss=0.69, lr=2e-4)), flush=True)
os.kill(os.getppid(), signal.SIGINT)
time.sleep(0.5)
os.kill(os.getppid(), signal.SIGINT)  # the person loses patience
time.sleep(60)
"""


def test_a_second_ctrl_c_ends_the_child_at_once(services, monkeypatch, tmp_path):
    from ghostdesk.core.training import launcher

    script = tmp_path / "child.py"
    script.write_text(_STUCK_CHILD)
    monkeypatch.setattr(launcher, "training_command",
                        lambda cfg, python=None: [sys.executable, str(script),
                                                  str(cfg.config_file)])
    rate_replies(services, up=12, down=12)
    code, text = run(services, "train", "--device", "cpu")
    assert code == 0
    assert "Paused at a checkpoint (step 10)" in text
    [paused] = resumable_runs(services.paths.root)
    assert f"ghostdesk train --resume {paused.run_id}" in text


def test_ctrl_c_pauses_at_a_checkpoint_and_resume_goes_on(services, child, ghostdesk_home):
    rate_replies(services, up=12, down=12)
    child([_started(), Step(step=1, max_steps=5, loss=0.69, lr=2e-4, tokens_per_second=5.0,
                            eta_s=80.0), KeyboardInterrupt],
          after_stop=[Finished(status="stopped", step=2, checkpoint="…/checkpoint-2")],
          on_stop=lambda cfg: write_checkpoint(cfg, 2))
    code, text = run(services, "train", "--device", "cpu")
    assert code == 0
    [proc] = child.started
    assert proc.stop_calls == 1 and not proc.killed
    run_id = proc.cfg.run_id
    assert "Paused at a checkpoint (step 2)" in text
    assert f"ghostdesk train --resume {run_id}" in text
    assert [c.run_id for c in resumable_runs(ghostdesk_home)] == [run_id]

    status = json.loads(run(services, "train", "--status", "--json")[1])
    assert status["resumable"] == [{"run_id": run_id, "method": "kto", "preset": "quick",
                                    "step": 2, "resume": f"ghostdesk train --resume {run_id}"}]

    child([_evaluated(adopt=True), saved_by_child("a-resumed"), _completed("a-resumed")])
    code, text = run(services, "train", "--resume", run_id)
    assert code == 0
    resumed = child.started[-1].cfg
    assert resumed.run_id == run_id and resumed.train_file == proc.cfg.train_file
    assert f"Resuming run {run_id} (KTO, quick preset) from its checkpoint at step 2." in text
    assert services.adapters.active_id == "a-resumed"


def test_ctrl_c_before_the_first_checkpoint_leaves_nothing_to_resume(services, child,
                                                                     ghostdesk_home):
    rate_replies(services, up=12, down=12)
    child([Preparing(stage="Converting the chat model for training…"), KeyboardInterrupt],
          after_stop=[Finished(status="stopped")])
    code, text = run(services, "train", "--device", "cpu")
    assert code == 0 and child.started[0].stop_calls == 1
    assert "nothing to resume" in text
    assert _run_dirs(ghostdesk_home) == []


def test_json_prints_each_event_then_a_summary(services, child):
    rate_replies(services, up=12, down=12)
    child([_started(), Step(step=1, max_steps=5, loss=0.7, lr=2e-4), _evaluated(adopt=None),
           saved_by_child("a-json"), _completed("a-json")])
    code, text = run(services, "train", "--device", "cpu", "--json")
    assert code == 0
    lines = [json.loads(line) for line in text.splitlines()]
    assert [e["event"] for e in lines] == ["started", "step", "evaluated", "saved", "finished",
                                           "summary"]
    summary = lines[-1]
    assert summary["status"] == "completed" and summary["adapter_id"] == "a-json"
    assert summary["decision"] == "ask" and summary["active"] is False
    assert summary["activate"] == "ghostdesk adapters activate a-json"
    assert summary["run_id"] == child.started[0].cfg.run_id


def test_resume_of_an_unknown_run_lists_the_ones_that_can(services, child, capsys):
    assert run(services, "train", "--resume", "run-nope")[0] == 2
    err = capsys.readouterr().err
    assert "There is no paused run 'run-nope' to resume." in err
    assert "No run can resume" in err

    rate_replies(services, up=12, down=12)
    child([KeyboardInterrupt], after_stop=[Finished(status="stopped")],
          on_stop=lambda cfg: write_checkpoint(cfg, 1))
    run(services, "train", "--device", "cpu")
    paused = child.started[0].cfg.run_id
    assert run(services, "train", "--resume", "run-nope")[0] == 2
    assert f"Runs that can resume: {paused}." in capsys.readouterr().err


def test_discard_deletes_a_paused_run(services, child, capsys, ghostdesk_home):
    rate_replies(services, up=12, down=12)
    child([KeyboardInterrupt], after_stop=[Finished(status="stopped")],
          on_stop=lambda cfg: write_checkpoint(cfg, 3))
    run(services, "train", "--device", "cpu")
    run_id = child.started[0].cfg.run_id
    assert run(services, "train", "--discard", run_id)[0] == 2
    assert "needs confirmation" in capsys.readouterr().err
    code, text = run(services, "train", "--discard", run_id, "--yes")
    assert code == 0 and text == f"Discarded run {run_id}.\n"
    assert resumable_runs(ghostdesk_home) == [] and _run_dirs(ghostdesk_home) == []
    assert run(services, "train", "--discard", run_id, "--yes")[0] == 2
    assert run(services, "train", "--discard", "..", "--yes")[0] == 2


# --- adapters --------------------------------------------------------------------------------

@pytest.fixture
def registry(services) -> AdapterRegistry:
    reg = services.adapters
    reg.write_adapter(_record("a1", "2026-01-01T10:00:00"), _files)
    reg.write_adapter(_record("a2", "2026-01-02T10:00:00", parent="a1"), _files)
    return reg


def test_adapters_list_when_there_are_none(services):
    assert run(services, "adapters", "list") == (0, "No adapters yet. Train one with: "
                                                    "ghostdesk train\n")
    assert json.loads(run(services, "adapters", "list", "--json")[1]) == []


def test_adapters_list_activate_deactivate_rollback(services, registry, capsys):
    code, text = run(services, "adapters", "activate", "a1")
    assert code == 0 and "Adapter a1 is now active" in text
    # Trained for another model file than the configured one: said, and activated anyway.
    assert "was trained for Tiny, not chat.gguf" in capsys.readouterr().err
    run(services, "adapters", "activate", "a2")
    assert registry.active_id == "a2"

    code, text = run(services, "adapters", "list")
    assert code == 0
    first, second = text.splitlines()[:2]
    assert first.startswith("* a2  2026-01-02 10:00  KTO")
    assert "16 examples (9 👍 / 7 👎), 4 held out" in first
    assert "accuracy 80 % (was 50 %)" in first and "after a1" in first
    assert second.startswith("  a1 ") and "after the base model" in second
    assert "Rollback goes to a1." in text
    listed = json.loads(run(services, "adapters", "list", "--json")[1])
    assert [(r["id"], r["active"]) for r in listed] == [("a2", True), ("a1", False)]
    assert listed[0]["metrics"] == {"accuracy": 0.8, "previous_accuracy": 0.5}

    code, text = run(services, "adapters", "rollback")
    assert code == 0 and "Rolled back from adapter a2 to adapter a1" in text
    assert registry.active_id == "a1"
    code, text = run(services, "adapters", "deactivate", "--json")
    assert json.loads(text) == {"active": None, "was": "a1"}
    assert registry.active_id is None
    code, text = run(services, "adapters", "rollback")
    assert "to adapter a1" in text and registry.active_id == "a1"
    run(services, "adapters", "rollback")
    assert registry.active_id is None
    assert "nothing to roll back" in run(services, "adapters", "rollback")[1]


def test_activating_an_adapter_made_for_this_model_warns_of_nothing(services, chat_model,
                                                                    capsys):
    from ghostdesk.core.llm.fingerprint import sha256_file

    services.adapters.write_adapter(
        _record("mine", "2026-01-01T10:00:00", base_sha256=sha256_file(chat_model)), _files)
    data = json.loads(run(services, "adapters", "activate", "mine", "--json")[1])
    assert data["id"] == "mine" and data["active"] and data["warning"] is None
    assert "warning" not in capsys.readouterr().err


def test_activating_an_unknown_adapter_is_refused(services, registry, capsys):
    assert run(services, "adapters", "activate", "nope")[0] == 2
    err = capsys.readouterr().err
    assert "There is no adapter 'nope'." in err and "ghostdesk adapters list" in err
    assert registry.active_id is None


def test_deleting_the_active_adapter_is_refused(services, registry, capsys):
    registry.set_active("a2")
    code, text = run(services, "adapters", "delete", "a2", "--yes", "--json")
    assert code == 2
    error = json.loads(text)
    assert error["error"] == "Adapter a2 is the active one, so it can't be deleted."
    assert "ghostdesk adapters rollback" in error["hint"]
    assert (registry.folder / "a2").is_dir() and registry.active_id == "a2"

    assert run(services, "adapters", "delete", "a1")[0] == 2  # no --yes, no terminal
    assert "needs confirmation" in capsys.readouterr().err
    assert run(services, "adapters", "delete", "a1", "--yes") == (0, "Deleted adapter a1.\n")
    assert [r.id for r in registry.list()] == ["a2"] and not (registry.folder / "a1").exists()
    assert run(services, "adapters", "delete", "a1", "--yes")[0] == 2


def test_delete_asks_on_a_terminal(services, registry, monkeypatch):
    monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))
    code, text = run(services, "adapters", "delete", "a1")
    assert code == 1 and text.endswith("Kept.\n")
    monkeypatch.setattr(sys, "stdin", _Terminal("yes\n"))
    assert run(services, "adapters", "delete", "a1")[0] == 0
    assert [r.id for r in registry.list()] == ["a2"]


def test_eval_scores_on_the_held_out_feedback(services, registry, monkeypatch):
    from ghostdesk.core.training.evaluation import (
        AdoptionDecision,
        EvaluationResult,
        PreferenceScore,
    )

    calls = []

    def fake_evaluate(home, adapter_id, eval_file, *, chat_model, compare_with="", **kw):
        records = [json.loads(line) for line in Path(eval_file).read_text().splitlines()]
        calls.append((Path(home), adapter_id, len(records), chat_model, compare_with))
        return EvaluationResult(PreferenceScore(0.75, 1.5, len(records)),
                                PreferenceScore(0.5, 0.2, len(records)), compare_with,
                                AdoptionDecision(True, None, "The new adapter is better."))

    from ghostdesk.core.training.job import evaluate as job_evaluate

    monkeypatch.setattr(job_evaluate, "evaluate_saved_adapter", fake_evaluate)
    code, _ = run(services, "adapters", "eval", "a2")
    assert code == 2  # no held-out feedback yet

    sides = rate_replies(services, up=20, down=20)
    held = sides["eval"]["up"] + sides["eval"]["down"]
    assert held, "40 conversations hold some out"
    code, text = run(services, "adapters", "eval", "a2", "--against", "a1")
    assert code == 0
    assert calls == [(services.paths.root, "a2", held,
                      str(services.settings.model.path), "a1")]
    assert f"Adapter a2: accuracy 75.0 %, reward margin +1.500 on {held}" in text
    assert "Adapter a1: accuracy 50.0 %" in text
    data = json.loads(run(services, "adapters", "eval", "a2", "--json")[1])
    assert data["against"] is None and data["better"] is True and data["examples"] == held
    assert run(services, "adapters", "eval", "a2", "--against", "a2")[0] == 2


# --- benches ---------------------------------------------------------------------------------

def test_bench_learning_records_its_report(services, monkeypatch, tmp_path):
    from ghostdesk.bench import learning
    from ghostdesk.bench.report import BenchReport

    seen = {}

    def fake_bench(real_home, **kw):
        seen.update(kw, home=real_home)
        return BenchReport(title="Learning", rows=[("training tokens/s", "5.2")])

    monkeypatch.setattr(learning, "run_learning_bench", fake_bench)
    record = tmp_path / "benchmarks.md"
    code, text = run(services, "bench", "learning", "--steps", "2", "--record", str(record))
    assert code == 0 and "| training tokens/s | 5.2 |" in text
    assert seen["steps"] == 2 and seen["runs"] == 1 and seen["home"] == services.paths.root
    assert "### Learning" in record.read_text()


def test_bench_gpu_hands_its_arguments_over(services, monkeypatch):
    got = []
    module = types.ModuleType("ghostdesk.bench.gpu")
    module.main = lambda argv, prog: got.append((prog, argv)) or 0
    monkeypatch.setitem(sys.modules, "ghostdesk.bench.gpu", module)
    code, _ = run(services, "bench", "gpu", "--stages", "probe", "--json", "r.json")
    assert code == 0
    assert got == [("ghostdesk bench gpu", ["--stages", "probe", "--json", "r.json"])]
    run(services, "--model", "/m/big.gguf", "bench", "gpu", "--record", "x.md")
    assert got[-1][1] == ["--chat-model", "/m/big.gguf", "--record", "x.md"]


def test_bench_gpu_help_is_its_own(services, capsys):
    with pytest.raises(SystemExit) as exit_:
        run(services, "bench", "gpu", "--help")
    assert exit_.value.code == 0
    assert "usage: ghostdesk bench gpu" in capsys.readouterr().out
