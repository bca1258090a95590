"""AdapterRegistry: records, the active adapter, rollback, delete, and saves that crash."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ghostdesk.core.errors import AdapterError, NotFoundError, StorageError
from ghostdesk.core.training.registry import AdapterRecord, AdapterRegistry


def _record(adapter_id: str, created: str = "2026-01-01T10:00:00", **kw: object) -> AdapterRecord:
    return AdapterRecord(id=adapter_id, method="kto", created=created, base_sha256="ab" * 32,
                         base_name="Tiny", architecture="llama",
                         data_counts={"train_examples": 16}, metrics={"accuracy": 0.8}, **kw)


def _files(content: bytes = b"GGUF fake"):
    def write(folder: Path) -> None:
        (folder / "adapter.gguf").write_bytes(content)
        (folder / "peft").mkdir()
        (folder / "peft" / "adapter_model.safetensors").write_bytes(b"w")

    return write


def test_write_list_activate_rollback_delete(tmp_path: Path) -> None:
    reg = AdapterRegistry(tmp_path / "adapters")
    assert reg.list() == [] and reg.active() is None
    a = reg.write_adapter(_record("a1", "2026-01-01T10:00:00"), _files(b"one"))
    b = reg.write_adapter(_record("a2", "2026-01-02T10:00:00", parent="a1"), _files(b"two"))
    assert [r.id for r in reg.list()] == ["a2", "a1"]  # newest first
    assert a.gguf_path.read_bytes() == b"one" and Path(b.path).name == "a2"
    got = reg.get("a2")
    assert got.parent == "a1" and got.metrics == {"accuracy": 0.8}
    assert got.data_counts == {"train_examples": 16} and got.base_sha256 == "ab" * 32

    reg.set_active("a1")
    reg.set_active("a2")
    assert reg.active_id == "a2" and reg.history() == ["a1"]
    with pytest.raises(AdapterError, match="in use"):
        reg.delete("a2")
    assert reg.rollback().id == "a1"
    assert reg.active_id == "a1"
    assert reg.rollback() is None  # back to the base model
    assert reg.active_id is None
    reg.delete("a2")
    assert [r.id for r in reg.list()] == ["a1"] and not (reg.folder / "a2").exists()
    with pytest.raises(NotFoundError):
        reg.get("a2")
    with pytest.raises(NotFoundError):
        reg.set_active("nope")

    index = json.loads((reg.folder / "index.json").read_text())
    assert set(index) == {"version", "active", "history", "adapters"}
    assert set(index["adapters"]) == {"a1"}
    assert not [p for p in reg.folder.iterdir() if p.name.endswith(".tmp")]


def test_adapter_saved_by_another_process_is_listed(tmp_path: Path) -> None:
    reg = AdapterRegistry(tmp_path / "adapters")
    reg.write_adapter(_record("a1"), _files())
    reg.set_active("a1")
    # The training child saves while the app holds its own registry object.
    AdapterRegistry(reg.folder).write_adapter(_record("a2", "2026-02-01T00:00:00"), _files())
    assert [r.id for r in reg.list()] == ["a2", "a1"] and reg.active_id == "a1"


def test_damaged_index_keeps_the_adapters(tmp_path: Path) -> None:
    reg = AdapterRegistry(tmp_path / "adapters")
    reg.write_adapter(_record("a1"), _files())
    reg.set_active("a1")
    (reg.folder / "index.json").write_text('{"active": "a1", "adapt')
    assert [r.id for r in reg.list()] == ["a1"]
    assert reg.active_id is None  # only the choice is lost; the user picks again


def test_disk_full_while_saving_leaves_nothing(tmp_path: Path) -> None:
    reg = AdapterRegistry(tmp_path / "adapters")
    reg.write_adapter(_record("a1"), _files(b"keep"))

    def half_then_full(folder: Path) -> None:
        (folder / "adapter.gguf").write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(StorageError) as err:
        reg.write_adapter(_record("a2"), half_then_full)
    assert err.value.message.startswith("The disk is full")
    assert [p.name for p in reg.folder.iterdir() if p.name != "index.json"] == ["a1"]
    assert reg.get("a1").gguf_path.read_bytes() == b"keep"


@pytest.mark.parametrize("moment", ["before_rename", "while_writing"])
def test_kill_during_save_leaves_previous_adapter_intact(tmp_path: Path, moment: str) -> None:
    """A process killed (SIGKILL) while saving an adapter: the previous one is untouched and
    still active, the half-saved one never appears, its leftovers are removed."""
    reg = AdapterRegistry(tmp_path / "adapters")
    reg.write_adapter(_record("a1"), _files(b"previous"))
    reg.set_active("a1")
    index_before = (reg.folder / "index.json").read_bytes()
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from ghostdesk.core.training import registry as r

        def die(*_a, **_k):
            os.kill(os.getpid(), signal.SIGKILL)

        def write(folder):
            (folder / "adapter.gguf").write_bytes(b"new" * 1000)
            if {moment!r} == "while_writing":
                die()

        if {moment!r} == "before_rename":
            r.os.replace = die  # everything is written; the kill lands before the rename
        rec = r.AdapterRecord(id="a2", method="kto", created="2026-03-01", base_sha256="x")
        r.AdapterRegistry(Path({str(reg.folder)!r})).write_adapter(rec, write)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()
    leftovers = [p.name for p in reg.folder.iterdir() if p.name.startswith(".partial-")]
    assert leftovers  # the staging folder of the killed save
    assert (reg.folder / "index.json").read_bytes() == index_before

    fresh = AdapterRegistry(reg.folder)
    assert [r.id for r in fresh.list()] == ["a1"] and fresh.active_id == "a1"
    assert fresh.get("a1").gguf_path.read_bytes() == b"previous"
    assert not [p for p in reg.folder.iterdir() if p.name.startswith(".partial-")]


class FakeSlot:
    """Stands in for AdapterSlot; refuses paths containing "bad"."""

    def __init__(self) -> None:
        self.active: str | None = None

    def activate(self, path: Path, adapter_id: str = "") -> str:
        if "bad" in str(path):
            raise AdapterError("This adapter was trained for another model.")
        self.active = adapter_id
        return adapter_id

    def deactivate(self) -> None:
        self.active = None


def test_engine_and_registry_stay_in_step(tmp_path: Path) -> None:
    from ghostdesk.core.training.registry import (
        activate_adapter,
        deactivate_adapter,
        restore_active_adapter,
        rollback_adapter,
    )

    reg = AdapterRegistry(tmp_path / "adapters")
    for i in (1, 2):
        reg.write_adapter(_record(f"a{i}", f"2026-01-0{i}T00:00:00"), _files())
    reg.write_adapter(_record("bad", "2026-01-03T00:00:00"), _files())
    slot = FakeSlot()
    activate_adapter(reg, slot, "a1")
    activate_adapter(reg, slot, "a2")
    assert (slot.active, reg.active_id) == ("a2", "a2")
    with pytest.raises(AdapterError):
        activate_adapter(reg, slot, "bad")
    assert (slot.active, reg.active_id) == ("a2", "a2")  # nothing changed
    assert reg.rollback_target().id == "a1"
    assert rollback_adapter(reg, slot).id == "a1"
    assert (slot.active, reg.active_id) == ("a1", "a1")
    assert rollback_adapter(reg, slot) is None
    assert (slot.active, reg.active_id) == (None, None)
    activate_adapter(reg, slot, "a2")
    deactivate_adapter(reg, slot)
    assert (slot.active, reg.active_id) == (None, None)

    # start-up: the recorded adapter is applied to the freshly loaded model
    activate_adapter(reg, slot, "a2")
    fresh = FakeSlot()
    assert restore_active_adapter(reg, fresh) == ("a2", "")
    reg.set_active("bad")
    active, message = restore_active_adapter(reg, FakeSlot())
    assert active is None and message.startswith("The active adapter bad was not applied")
    assert reg.active_id == "bad"
