"""From the feedback in the store to a run ready to start: the same steps for the CLI and the
Training pane.

`TrainingPlanner.summary()` counts the examples each method would get (train and held-out
sides) and how many more each needs; `choose_method` picks one for "Auto" and says why;
`plan()` exports the feedback into a new run folder and returns the validated RunConfig
(the folder is removed again when anything fails, so no half-made run is left to resume).
`AdoptionTracker` follows a run's events and says what to do with its adapter.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ghostdesk.core.errors import GhostDeskError, TrainingError
from ghostdesk.core.training.run_config import (
    METHODS,
    MIN_EXAMPLES,
    RunConfig,
    build_run_config,
    missing_examples,
    new_run_folder,
    too_little_data,
)

# A DPO pair carries two ratings of the same prompt: the sharpest signal of what the person
# prefers. When methods tie on weighted examples, the earlier one here wins.
_PREFERENCE_ORDER = ("dpo", "kto", "sft")
_PAIR_WEIGHT = 2


@dataclass(frozen=True)
class MethodData:
    """The examples one method would train and be measured on."""

    method: str
    train: int
    eval: int
    desirable: int | None = None
    """KTO only: 👍 (and 😂) replies on the training side."""
    undesirable: int | None = None
    """KTO only: 👎 replies on the training side."""

    @property
    def missing(self) -> int:
        """How many more training examples a run needs (0: enough)."""
        return missing_examples(self.method, examples=self.train, desirable=self.desirable,
                                undesirable=self.undesirable)

    @property
    def ready(self) -> bool:
        return self.missing == 0

    def describe(self) -> str:
        """In words, e.g. "12 👍 and 9 👎 (4 held out)"."""
        held = f" ({self.eval} held out)" if self.eval else ""
        if self.method == "kto":
            return f"{self.desirable} 👍 and {self.undesirable} 👎{held}"
        if self.method == "dpo":
            return f"{_n(self.train, 'pair')} of versions rated differently{held}"
        return f"{_n(self.train, 'rewritten reply', 'rewritten replies')}{held}"

    def shortfall(self) -> TrainingError | None:
        """Why a run can't start on this yet ("Training needs N more …" with what to do),
        None when it can."""
        return too_little_data(self.method, examples=self.train, desirable=self.desirable,
                               undesirable=self.undesirable)

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "train": self.train, "eval": self.eval,
                "desirable": self.desirable, "undesirable": self.undesirable,
                "missing": self.missing}


@dataclass(frozen=True)
class DataSummary:
    kto: MethodData
    dpo: MethodData
    sft: MethodData

    def of(self, method: str) -> MethodData:
        if method not in METHODS:
            raise TrainingError(f"Unknown training method {method!r}.",
                                hint="Choose auto, kto, dpo or sft.")
        return getattr(self, method)

    def to_json(self) -> dict[str, Any]:
        return {m: self.of(m).to_json() for m in METHODS}


def summarize(counts: Any) -> DataSummary:
    """A DataSummary from ghostdesk.core.feedback.datasets.DatasetCounts."""
    return DataSummary(
        kto=MethodData("kto", counts.kto_desirable["train"] + counts.kto_undesirable["train"],
                       counts.kto_desirable["eval"] + counts.kto_undesirable["eval"],
                       desirable=counts.kto_desirable["train"],
                       undesirable=counts.kto_undesirable["train"]),
        dpo=MethodData("dpo", counts.dpo_pairs["train"], counts.dpo_pairs["eval"]),
        sft=MethodData("sft", counts.sft_examples["train"], counts.sft_examples["eval"]),
    )


def choose_method(summary: DataSummary) -> tuple[str, str]:
    """(method, why) for "Auto": among the methods with enough data, the one with the most
    ratings behind it (a pair counts twice); with none ready, the one closest to ready."""
    ready = [summary.of(m) for m in _PREFERENCE_ORDER if summary.of(m).ready]
    if ready:
        best = max(ready, key=lambda d: (d.train * (_PAIR_WEIGHT if d.method == "dpo" else 1),
                                         -_PREFERENCE_ORDER.index(d.method)))
        why = {"kto": "it learns from your 👍 and 👎 ratings",
               "dpo": "pairs of versions you rated differently show most clearly what "
                      "you prefer",
               "sft": "it learns to write like the replies you rewrote"}[best.method]
        others = [d for d in ready if d is not best]
        also = ""
        if others:
            also = " (" + "; ".join(f"{d.method.upper()} would have {d.describe()}"
                                    for d in others) + ")"
        return best.method, (f"{best.method.upper()}: {best.describe()}; {why}{also}.")
    # Ties go to KTO: a 👍 or 👎 is the quickest feedback to give.
    closest = min((summary.of(m) for m in METHODS),
                  key=lambda d: (d.missing / MIN_EXAMPLES[d.method], METHODS.index(d.method)))
    return closest.method, (f"No method has enough feedback yet; {closest.method.upper()} is "
                            f"closest ({closest.describe()}).")


@dataclass(frozen=True)
class PlannedRun:
    cfg: RunConfig
    method_reason: str
    """Why this method (for Auto) or "" when the user chose it."""
    data: MethodData


class TrainingPlanner:
    """Counts the feedback and prepares runs for one data folder."""

    def __init__(self, db: Any, home: str | Path, *, settings: Callable[[], Any],
                 registry: Any, chat_model: Callable[[], str]) -> None:
        self.db = db
        self.home = Path(home)
        self._settings = settings
        self.registry = registry
        self._chat_model = chat_model

    def _options(self, split: str) -> Any:
        from ghostdesk.core.feedback.datasets import DatasetOptions

        persona = self._settings().persona
        return DatasetOptions(system_prompt=persona.rendered_system_prompt(), split=split)

    def summary(self) -> DataSummary:
        from ghostdesk.core.feedback.datasets import count_examples, load_snapshot

        return summarize(count_examples(load_snapshot(self.db), self._options("all")))

    def resolve_method(self, method: str, summary: DataSummary | None = None
                       ) -> tuple[str, str]:
        if method == "auto":
            return choose_method(summary or self.summary())
        if method not in METHODS:
            raise TrainingError(f"Unknown training method {method!r}.",
                                hint="Choose auto, kto, dpo or sft.")
        return method, ""

    def plan(self, *, method: str | None = None, preset: str | None = None,
             steps: int | None = None, adopt: str | None = None, base: str | None = None,
             device: str | None = None) -> PlannedRun:
        """Export the feedback into a new run folder and return its config. None means the
        Training settings' choice. Raises TrainingError (too little data: how much more is
        needed) or SettingsError (a bad Advanced value) and then leaves nothing behind."""
        from ghostdesk.core.feedback.datasets import export_dataset

        ts = self._settings().training
        summary = self.summary()
        chosen, reason = self.resolve_method(method or ts.method, summary)
        data = summary.of(chosen)
        shortfall = data.shortfall()
        if shortfall is not None:
            raise shortfall
        chat_model = self._chat_model()
        if not chat_model or not Path(chat_model).is_file():
            raise TrainingError("The chat model file is missing, so there is nothing to "
                                "train an adapter for.",
                                hint="Choose a model in Settings → Model first.")
        base = base or ts.base_model
        if base != "auto":
            # run.json is read again on resume, maybe from another working folder.
            base = str(Path(base).expanduser().resolve())
        overrides = ts.overrides()
        if steps:
            overrides["max_steps"] = steps
        run_id, train_file, eval_file = new_run_folder(self.home)
        folder = train_file.parent
        try:
            n_train = export_dataset(self.db, chosen, train_file, self._options("train"))
            try:
                n_eval = export_dataset(self.db, chosen, eval_file, self._options("eval"))
            except GhostDeskError:
                n_eval = 0  # no held-out example of this kind: the job holds out a slice
            counts = {"train_examples": n_train, "eval_examples": n_eval}
            if chosen == "kto":
                counts.update(desirable=data.desirable or 0, undesirable=data.undesirable or 0)
            cfg = build_run_config(
                method=chosen, train_file=train_file, eval_file=eval_file if n_eval else "",
                chat_model=chat_model, home=self.home, n_train=n_train,
                preset=preset or ts.preset, device=device or ts.device,
                base=base, adopt=adopt or ts.adopt,
                parent_adapter=self.registry.active_id or "", data_counts=counts,
                overrides=overrides, run_id=run_id)
            cfg.save()
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return PlannedRun(cfg, reason, data)


def _n(count: int, noun: str, plural: str | None = None) -> str:
    return f"{count} {noun if count == 1 else (plural or noun + 's')}"


@dataclass
class AdoptionTracker:
    """Follows one run's events to what should happen to its adapter at the end.

    The job emits Evaluated (with the decision under the adopt setting), then Saved (the
    adapter is in the registry), then Finished. `decision` is None until both arrived; then
    "activate" (auto and better), "ask" (the person decides) or "keep" (only kept)."""

    evaluated: Any = None
    saved: Any = None

    def feed(self, event: Any) -> str | None:
        """Record an event; returns the decision once the adapter is saved."""
        if event.kind == "evaluated":
            self.evaluated = event
        elif event.kind == "saved":
            self.saved = event
            return self.decision
        return None

    @property
    def decision(self) -> str | None:
        if self.saved is None:
            return None
        adopt = None if self.evaluated is None else self.evaluated.adopt
        return {True: "activate", None: "ask", False: "keep"}[adopt]

    @property
    def adapter_id(self) -> str:
        return self.saved.adapter_id if self.saved is not None else ""
