"""The trained adapters on disk: what each is, which one the chat uses, and rollback.

Layout under `<data>/adapters/`:

    index.json            {"version", "active", "history", "adapters": {id: record}}
    <id>/adapter.json     the adapter's record (written before the folder gets its name)
    <id>/adapter.gguf     the llama.cpp LoRA the chat hot-swaps in
    <id>/peft/            the peft weights (safetensors), to measure it against later runs

An adapter folder is written as `.partial-<id>-<pid>` and renamed to `<id>` only when every
file in it is complete and synced, so a crash or kill while saving leaves the previous
adapters and the index untouched; leftovers are removed the next time the registry opens.
The training child writes only adapter folders; `index.json` (the active adapter and the
rollback history) is written by the app, atomically (temp file, fsync, rename). The index is
reconciled with the folders on every read, so an adapter saved by a child that the app never
heard of (it was closed meanwhile) is still listed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ghostdesk.core.errors import AdapterError, NotFoundError, StorageError

INDEX = "index.json"
RECORD = "adapter.json"
GGUF_NAME = "adapter.gguf"
PEFT_DIR = "peft"
_PARTIAL = ".partial-"
_VERSION = 1


@dataclass(frozen=True)
class AdapterRecord:
    """One trained adapter."""

    id: str
    method: str
    created: str
    """ISO 8601 local time."""
    base_sha256: str
    """SHA-256 of the chat GGUF it was trained for; it is refused on any other file."""
    base_name: str = ""
    architecture: str = ""
    data_counts: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    """Held-out accuracy and reward margin, and those of the adapter it would replace."""
    parent: str = ""
    """The adapter that was active when it was trained ("" for the base model)."""
    run_id: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    """The training knobs (method, rank, steps, learning rate, preset)."""
    path: str = ""
    """The adapter's folder (filled in when read)."""

    @property
    def gguf_path(self) -> Path:
        return Path(self.path) / GGUF_NAME

    @property
    def peft_path(self) -> Path:
        return Path(self.path) / PEFT_DIR

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("path")
        return d

    @classmethod
    def from_dict(cls, raw: dict[str, Any], path: Path) -> AdapterRecord:
        names = {f.name for f in fields(cls)} - {"path"}
        return cls(**{k: v for k, v in raw.items() if k in names}, path=str(path))


def new_adapter_id() -> str:
    """Sortable by creation time; unique without coordination."""
    return time.strftime("a%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def _storage_error(err: OSError, what: str, folder: Path) -> StorageError:
    if err.errno == errno.ENOSPC:
        return StorageError(f"The disk is full: {what} could not be saved, and nothing was "
                            "changed.", hint=f"Free some space on the disk holding {folder}.")
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StorageError(f"{what.capitalize()} could not be saved: the data folder is "
                            "read-only.", hint=f"Check the permissions of {folder}.")
    return StorageError(f"{what.capitalize()} could not be saved: {err.strerror or err}.",
                        hint=f"Folder: {folder}")


def _fsync_tree(folder: Path) -> None:
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":
        return  # Windows can't open a directory for fsync; its renames are journaled
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AdapterRegistry:
    """The adapters in one data folder. Thread-safe within a process."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._lock = threading.RLock()

    @classmethod
    def in_home(cls, home: str | Path) -> AdapterRegistry:
        return cls(Path(home) / "adapters")

    # --- reading ------------------------------------------------------------------------

    def list(self) -> list[AdapterRecord]:
        """Every complete adapter, newest first."""
        with self._lock:
            index = self._reconciled()
            return sorted((AdapterRecord.from_dict(r, self.folder / i)
                           for i, r in index["adapters"].items()),
                          key=lambda r: (r.created, r.id), reverse=True)

    def get(self, adapter_id: str) -> AdapterRecord:
        with self._lock:
            index = self._reconciled()
            raw = index["adapters"].get(adapter_id)
            if raw is None:
                raise NotFoundError(f"There is no adapter {adapter_id!r}.",
                                    hint="`ghostdesk adapters list` shows the adapters.")
            return AdapterRecord.from_dict(raw, self.folder / adapter_id)

    @property
    def active_id(self) -> str | None:
        with self._lock:
            return self._reconciled()["active"]

    def active(self) -> AdapterRecord | None:
        active = self.active_id
        return self.get(active) if active else None

    def history(self) -> list[str]:
        """Adapters that were active before the current one, oldest first."""
        with self._lock:
            return list(self._reconciled()["history"])

    # --- changing which one is active ----------------------------------------------------

    def set_active(self, adapter_id: str | None) -> AdapterRecord | None:
        """Mark an adapter as the one the chat uses (None: the base model). The caller swaps
        it into the engine (ghostdesk.core.llm.adapters.AdapterSlot)."""
        with self._lock:
            index = self._reconciled()
            if adapter_id is not None and adapter_id not in index["adapters"]:
                raise NotFoundError(f"There is no adapter {adapter_id!r}.")
            current = index["active"]
            if current == adapter_id:
                return self.get(adapter_id) if adapter_id else None
            if current:
                index["history"] = [h for h in index["history"] if h != current] + [current]
            index["active"] = adapter_id
            self._write_index(index)
            return self.get(adapter_id) if adapter_id else None

    def rollback_target(self) -> AdapterRecord | None:
        """The adapter `rollback()` would make active (None: the base model)."""
        with self._lock:
            index = self._reconciled()
            history = [h for h in index["history"] if h in index["adapters"]
                       and h != index["active"]]
            return self.get(history[-1]) if history else None

    def rollback(self) -> AdapterRecord | None:
        """Go back to the adapter that was active before the current one (or to the base
        model when there was none). Returns the new active adapter."""
        with self._lock:
            index = self._reconciled()
            history = [h for h in index["history"] if h in index["adapters"]
                       and h != index["active"]]
            previous = history.pop() if history else None
            index["history"] = history
            index["active"] = previous
            self._write_index(index)
            return self.get(previous) if previous else None

    def delete(self, adapter_id: str) -> None:
        """Remove an adapter that is not active."""
        with self._lock:
            index = self._reconciled()
            if adapter_id not in index["adapters"]:
                raise NotFoundError(f"There is no adapter {adapter_id!r}.")
            if index["active"] == adapter_id:
                raise AdapterError("This adapter is in use by the chat.",
                                   hint="Deactivate it or roll back first, then delete it.")
            target = self.folder / adapter_id
            trash = self.folder / f"{_PARTIAL}deleted-{adapter_id}-{os.getpid()}"
            try:
                os.replace(target, trash)  # one rename: gone from listings at once
            except OSError as err:
                raise _storage_error(err, "the change", self.folder) from err
            index["adapters"].pop(adapter_id, None)
            index["history"] = [h for h in index["history"] if h != adapter_id]
            self._write_index(index)
            shutil.rmtree(trash, ignore_errors=True)

    # --- saving a new adapter (the training child) ---------------------------------------

    def write_adapter(self, record: AdapterRecord,
                      write_files: Callable[[Path], None]) -> AdapterRecord:
        """Create adapter `record.id`: `write_files(folder)` fills a staging folder (the GGUF
        and the peft weights), then the record is added and the folder renamed into place.
        Any failure (a full disk included) removes the staging folder and raises
        StorageError or the error itself; existing adapters are never touched."""
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / record.id
        if final.exists():
            raise AdapterError(f"An adapter named {record.id} already exists.")
        staging = self.folder / f"{_PARTIAL}{record.id}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            staging.mkdir(parents=True)
            write_files(staging)
            with open(staging / RECORD, "w", encoding="utf-8") as fh:
                json.dump(record.to_dict(), fh, indent=2, ensure_ascii=False)
                fh.flush()
                os.fsync(fh.fileno())
            _fsync_tree(staging)
            os.replace(staging, final)
            _fsync_dir(self.folder)
        except OSError as err:
            shutil.rmtree(staging, ignore_errors=True)
            raise _storage_error(err, "the new adapter", self.folder) from err
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return AdapterRecord.from_dict(record.to_dict(), final)

    # --- the index ----------------------------------------------------------------------

    def _read_index(self) -> dict[str, Any]:
        try:
            raw = json.loads((self.folder / INDEX).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raw = {}
        except (OSError, ValueError):
            # A damaged index loses only which adapter was active: the records are
            # rebuilt from the folders.
            raw = {}
        if not isinstance(raw, dict):
            raw = {}
        adapters = raw.get("adapters") if isinstance(raw.get("adapters"), dict) else {}
        history = [h for h in raw.get("history", []) if isinstance(h, str)] if isinstance(
            raw.get("history"), list) else []
        active = raw.get("active") if isinstance(raw.get("active"), str) else None
        return {"version": _VERSION, "active": active, "history": history,
                "adapters": dict(adapters)}

    def _reconciled(self) -> dict[str, Any]:
        """The index, matched to the folders that exist (and saved when that changed)."""
        index = self._read_index()
        if not self.folder.is_dir():
            return index
        on_disk: dict[str, dict[str, Any]] = {}
        for entry in self.folder.iterdir():
            if entry.name.startswith(_PARTIAL):
                if not _owned_by_live_process(entry.name):
                    shutil.rmtree(entry, ignore_errors=True)  # an interrupted save or delete
                continue
            if not entry.is_dir() or entry.name.startswith("."):
                continue
            known = index["adapters"].get(entry.name)
            if known is not None:
                on_disk[entry.name] = known
                continue
            try:
                raw = json.loads((entry / RECORD).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(raw, dict) and raw.get("id") == entry.name:
                on_disk[entry.name] = raw
        changed = on_disk.keys() != index["adapters"].keys()
        index["adapters"] = on_disk
        if index["active"] and index["active"] not in on_disk:
            index["active"], changed = None, True
        kept = [h for h in index["history"] if h in on_disk]
        if kept != index["history"]:
            index["history"], changed = kept, True
        if changed:
            # Reading must work on a full or read-only disk too.
            with contextlib.suppress(StorageError):
                self._write_index(index)
        return index

    def _write_index(self, index: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / INDEX
        tmp = path.with_name(f".{INDEX}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(index, fh, indent=2, ensure_ascii=False)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            _fsync_dir(self.folder)
        except OSError as err:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise _storage_error(err, "the adapter list", self.folder) from err


def _owned_by_live_process(name: str) -> bool:
    """A staging folder named ...-<pid> belongs to a save still in progress when that
    process is alive (a training child writing while the app lists adapters)."""
    try:
        pid = int(name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return True
    try:
        import psutil

        return bool(psutil.pid_exists(pid))
    except Exception:
        return False


# --- keeping the registry and the running chat in step ----------------------------------------
# `slot` is a ghostdesk.core.llm.adapters.AdapterSlot (anything with activate/deactivate). The
# engine is changed first: when llama.cpp refuses an adapter, the registry is left as it was.


def activate_adapter(registry: AdapterRegistry, slot: Any, adapter_id: str) -> Any:
    """Swap adapter `adapter_id` into the chat and record it as active."""
    record = registry.get(adapter_id)
    active = slot.activate(record.gguf_path, adapter_id=record.id)
    registry.set_active(record.id)
    return active


def deactivate_adapter(registry: AdapterRegistry, slot: Any) -> None:
    """Back to the base model."""
    slot.deactivate()
    registry.set_active(None)


def rollback_adapter(registry: AdapterRegistry, slot: Any) -> AdapterRecord | None:
    """Swap back to the adapter that was active before the current one (or the base model)."""
    target = registry.rollback_target()
    if target is None:
        slot.deactivate()
    else:
        slot.activate(target.gguf_path, adapter_id=target.id)
    return registry.rollback()


def restore_active_adapter(registry: AdapterRegistry, slot: Any) -> tuple[Any, str]:
    """At start-up: swap the recorded active adapter into a freshly loaded model. Returns
    (the ActiveAdapter or None, a message when it could not be used, e.g. because another
    chat model is loaded now). The record stays active, so switching back to its model
    brings it back."""
    record = registry.active()
    if record is None:
        return None, ""
    try:
        return slot.activate(record.gguf_path, adapter_id=record.id), ""
    except AdapterError as err:
        return None, f"The active adapter {record.id} was not applied: {err.message}"
