"""One training run, top to bottom: setup -> fit -> evaluate -> save, each phase in a module of
its own, and every way it can fail turned into a Failed event a person can act on.

Runs in a child process (`python -m ghostdesk.core.training run.json`, see child.py) and
reports through `emit`, one event per line on stdout (see events.py). It stops at the next
step boundary when the run's STOP file appears or SIGTERM arrives, after saving a checkpoint;
starting the same run.json again resumes from the newest complete checkpoint. A completed run
leaves an adapter folder in the registry (see registry.py for why a crash can't leave half of
one).
"""

from __future__ import annotations

import errno
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.training.events import Failed, Finished, Preparing, Started, TrainingEvent
from ghostdesk.core.training.job import evaluate, fit, save, setup
from ghostdesk.core.training.job.stop import StopSignal
from ghostdesk.core.training.run_config import RunConfig
from ghostdesk.core.training.run_folders import valid_checkpoints

Emit = Callable[[TrainingEvent], None]


class TrainingJob:
    """setup() -> fit() -> evaluate() -> save(); run() does all four and reports."""

    def __init__(self, cfg: RunConfig, emit: Emit, stop: StopSignal | None = None) -> None:
        self.cfg = cfg
        self.emit = emit
        self.stop = stop or StopSignal(cfg.stop_file)
        self.started_at = time.perf_counter()
        self.ready: setup.Prepared | None = None
        self.fitter: fit.Fitter | None = None
        self.progress = fit.Progress()
        self.evaluation: Any = None

    # --- the whole run -----------------------------------------------------------------

    def run(self) -> int:
        """0 when the run completed or stopped as asked, 1 when it failed (a Failed event
        says why)."""
        try:
            self.setup()
            if self.stop.requested:
                return self._stopped()
            if not self.fit():
                return self._stopped()
            self.evaluate()
            record = self.save()
            self.emit(self._finished("completed", adapter_id=record.id))
            return 0
        except GhostDeskError as err:
            self.emit(Failed(reason=err.message, hint=err.hint or "",
                             detail=traceback.format_exc(limit=3)))
        except MemoryError:
            self.emit(Failed(reason="The computer ran out of memory while training.",
                             hint="Choose the Quick preset, a shorter maximum length or a "
                                  "smaller batch in Settings → Training → Advanced.",
                             detail=traceback.format_exc(limit=3)))
        except OSError as err:
            if err.errno == errno.ENOSPC:
                self.emit(Failed(reason="The disk is full; training stopped and nothing "
                                        "was half-written.",
                                 hint=f"Free some space on the disk holding {self.cfg.home}.",
                                 detail=str(err)))
            else:
                self.emit(Failed(reason=f"Training could not read or write a file: "
                                        f"{err.strerror or err}.",
                                 hint=f"File: {getattr(err, 'filename', '') or self.cfg.home}",
                                 detail=traceback.format_exc()))
        except Exception as err:
            name = type(err).__name__
            if "OutOfMemory" in name:
                self.emit(Failed(reason="The GPU ran out of memory while training.",
                                 hint="Choose a smaller batch or maximum length in Settings → "
                                      "Training → Advanced, or close other GPU programs.",
                                 detail=str(err)))
            else:
                self.emit(Failed(reason=f"Training failed unexpectedly ({name}: {err}).",
                                 hint=f"The details are in {self.cfg.log_file}.",
                                 detail=traceback.format_exc()))
        return 1

    # --- the four phases -----------------------------------------------------------------

    def setup(self) -> None:
        """The feedback, the device, the base model and tokenizer (setup.py), and the trainer
        that will fit them, resuming from the newest checkpoint (fit.py)."""
        cfg = self.cfg
        self.ready = ready = setup.prepare(cfg, self.emit)
        self.emit(Preparing(stage="Preparing the trainer…"))
        self.fitter = fitter = fit.Fitter(cfg, ready, self.stop, self.emit)
        self.progress = fitter.progress
        self.emit(Started(run_id=cfg.run_id, method=cfg.method, preset=cfg.preset,
                          device="cuda" if ready.cuda else "cpu", base=ready.base.source,
                          train_examples=len(ready.train_examples),
                          eval_examples=len(ready.eval_examples),
                          max_steps=fitter.max_steps, resumed_from_step=fitter.resumed_from_step,
                          load_in_4bit=bool(getattr(ready.model, "is_loaded_in_4bit", False)),
                          chat_tokens_checked=ready.chat_tokens_checked,
                          chat_tokens_match=ready.chat_tokens_match))

    def fit(self) -> bool:
        """Train to the last step (True) or until asked to stop (False)."""
        assert self.fitter is not None
        return self.fitter.fit()

    def evaluate(self) -> None:
        assert self.ready is not None and self.fitter is not None
        self.evaluation = evaluate.evaluate_new_adapter(self.cfg, self.ready, self.fitter.model,
                                                        self.emit)

    def save(self) -> Any:
        """The adapter in the registry (a registry.AdapterRecord)."""
        assert self.ready is not None and self.fitter is not None
        return save.save_adapter(self.cfg, self.ready, self.fitter.model, self.evaluation,
                                 self.progress.last_step, self.emit)

    # --- the last word -------------------------------------------------------------------

    def _stopped(self) -> int:
        ckpts = valid_checkpoints(self.cfg.checkpoint_dir)
        self.emit(self._finished("stopped", checkpoint=str(ckpts[-1]) if ckpts else ""))
        return 0

    def _finished(self, status: str, **kw: Any) -> Finished:
        p = self.progress
        return Finished(status=status, step=p.last_step,
                        seconds=round(time.perf_counter() - self.started_at, 1),
                        train_seconds=round(p.train_seconds(), 2), tokens=p.tokens,
                        tokens_per_second=round(p.tokens_per_second(), 2),
                        peak_rss_mb=round(peak_rss_mb(), 1), **kw)


def peak_rss_mb() -> float:
    """The process's peak resident memory."""
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024
    except ImportError:  # Windows
        import psutil

        info = psutil.Process().memory_info()
        return getattr(info, "peak_wset", info.rss) / 2**20
