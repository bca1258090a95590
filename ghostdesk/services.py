"""Composition root: builds every long-lived core object and wires them together; nothing
else does. The CLI, the window and the benchmarks all start from `build_services()`.

Imports the core only (an import-linter contract): the entry point (ghostdesk.app) is the one
place that knows about both the CLI and the UI.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.feedback.ledger import RewardLedger
from ghostdesk.core.paths import DataPaths
from ghostdesk.core.settings import Settings, SettingsFile
from ghostdesk.core.store.conversations import ConversationStore
from ghostdesk.core.store.db import Database

log = logging.getLogger("ghostdesk")


@dataclass
class AppServices:
    """The long-lived core objects one running GhostDesk uses."""

    paths: DataPaths
    settings_file: SettingsFile
    settings: Settings
    db: Database
    store: ConversationStore
    ledger: RewardLedger
    notices: list[str] = field(default_factory=list)
    """Things the user should be told at start-up (settings repaired, database restored…)."""
    _memory: Any = field(default=None, repr=False)
    _memory_tried: bool = field(default=False, repr=False)
    _memory_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    adapter_slot: Any = field(default=None, repr=False)
    """The LoRA slot of the loaded chat model (ghostdesk.core.llm.adapters.AdapterSlot);
    None until a model is loaded."""

    @property
    def memory(self):  # -> MemoryService | None
        """Memory crystals, opened on first use (its index load and the embedder are slow,
        so the window never waits for them). None when memory is off or could not open; the
        reason is added to `notices`."""
        with self._memory_lock:
            if not self._memory_tried:
                self._memory_tried = True
                self._memory = self._open_memory()
            return self._memory

    def _open_memory(self):
        if not self.settings.memory.enabled:
            return None
        from ghostdesk.core.memory import MemoryService

        try:
            memory = MemoryService.open(self.db, self.paths.root / "memory",
                                        embedder=make_embedder(),
                                        companion_name=self.settings.persona.name)
        except GhostDeskError as err:
            log.warning("memory unavailable: %s", err.message)
            self.notices.append(f"Memory is unavailable: {err}")
            return None
        self.notices.extend(memory.notices)
        memory.run_forgetting()
        return memory

    def current_settings(self) -> Settings:
        return self.settings

    def save_settings(self, settings: Settings) -> None:
        """Validate and persist new settings, then make them current."""
        self.settings_file.save(settings)
        self.settings = settings

    def load_engine(self):  # -> LlamaEngine; imported lazily: llama_cpp is heavy
        """Probe and load the configured model, then apply the active adapter (when it was
        trained for this model file). Slow: call it off the GUI thread."""
        from ghostdesk.core.llm.engine import LlamaEngine

        engine = LlamaEngine.load(self.settings.model, cache_dir=self.paths.cache)
        self.attach_adapters(engine)
        return engine

    @property
    def adapters(self):  # -> AdapterRegistry
        """Every trained adapter, and which one is active (cheap to open: one JSON file)."""
        from ghostdesk.core.training.registry import AdapterRegistry

        return AdapterRegistry.in_home(self.paths.root)

    def attach_adapters(self, engine):  # -> AdapterSlot
        """Give a freshly loaded engine its adapter slot and swap the active adapter in. An
        adapter made for another model file is left active in the registry (switching back
        to that model brings it back) and a notice says why it was not applied."""
        from ghostdesk.core.llm.adapters import AdapterSlot
        from ghostdesk.core.llm.fingerprint import model_sha256
        from ghostdesk.core.training.registry import restore_active_adapter

        cache = self.paths.cache
        slot = AdapterSlot(engine, model_sha256=lambda: model_sha256(engine.info.model_path,
                                                                     cache))
        _, message = restore_active_adapter(self.adapters, slot)
        if message:
            log.warning("%s", message)
            self.notices.append(message)
        self.adapter_slot = slot
        return slot

    def training_planner(self):  # -> TrainingPlanner
        from ghostdesk.core.llm.engine import resolve_model_path
        from ghostdesk.core.training.planner import TrainingPlanner

        return TrainingPlanner(
            self.db, self.paths.root, settings=self.current_settings, registry=self.adapters,
            chat_model=lambda: str(resolve_model_path(self.settings.model)))

    def make_companion(self, engine):
        from ghostdesk.core.companion import Companion
        from ghostdesk.core.feedback.observer import ConversationObserver

        observer = ConversationObserver(self.ledger, self.abandon_after_s)
        slot = self.adapter_slot
        return Companion(self.store, engine, self.current_settings, on_user_message=observer,
                         memory=self.memory,
                         active_adapter=(lambda: slot.active) if slot is not None else None)

    def abandon_after_s(self) -> float:
        """How long after a reply, with nothing happening, the user counts as having left."""
        return self.settings.feedback.abandon_after_minutes * 60.0

    def close(self) -> None:
        if self._memory is not None:
            self._memory.close()
        self.db.close()


def make_embedder():
    """The sentence embedder for memory (the bundled MiniLM unless configured); loads lazily."""
    from ghostdesk.core.memory.embedder import SentenceEmbedder

    return SentenceEmbedder()


def build_services(paths: DataPaths | None = None, model_path: str | None = None) -> AppServices:
    """Open the data folder: settings, then the database (migrated, with a backup first)."""
    paths = (paths or DataPaths.default()).ensure()
    _configure_logging(paths.logs)
    settings_file = SettingsFile(paths.settings)
    settings = settings_file.load()
    notices = list(settings_file.problems)
    if model_path is not None:
        settings.model.path = str(Path(model_path).expanduser().resolve())
    db = Database.open(paths.database, paths.backups)
    notices.extend(getattr(db, "notices", []))
    store = ConversationStore(db)
    ledger = RewardLedger(db)
    notices.extend(ledger.weights().problems)
    return AppServices(paths, settings_file, settings, db, store, ledger, notices)


def _configure_logging(folder: Path) -> None:
    if logging.getLogger().handlers:
        return
    from logging.handlers import RotatingFileHandler

    handler = RotatingFileHandler(folder / "ghostdesk.log", maxBytes=2_000_000, backupCount=3,
                                  encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
