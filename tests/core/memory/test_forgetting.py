"""Forgetting to cold storage, and "forget" meaning forgotten: with a hand-moved clock."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ghostdesk.core.errors import GhostDeskError, NotFoundError
from ghostdesk.core.memory.clock import ManualClock
from ghostdesk.core.memory.embedder import vector_to_bytes
from ghostdesk.core.memory.hnsw_file import HEADER
from ghostdesk.core.memory.service import MemoryService
from ghostdesk.core.paths import DataPaths
from ghostdesk.core.store.conversations import ConversationStore

# No words in common: with the hashing embedder they don't resonate with each other.
CELLO = "cello practice every evening"
GARDEN = "growing tomatoes in a small garden"
PIXEL = "grey cat called pixel"


def recalled(memory: MemoryService, text: str) -> list[str]:
    return [r.crystal.text for r in memory.recall_for(text, touch=False).crystals]


def test_unrecalled_crystals_move_to_the_archive_after_60_days(memory: MemoryService,
                                                                clock: ManualClock):
    cello = memory.add_crystal(CELLO).crystal
    garden = memory.add_crystal(GARDEN).crystal
    clock.advance(days=30)
    memory.recall_for(CELLO)  # resonates: its 60 days start again
    clock.advance(days=31)
    assert memory.run_forgetting() == [garden.id]
    assert memory.get(garden.id).archived and memory.get(garden.id).archived_at == clock()
    assert recalled(memory, GARDEN) == []
    assert recalled(memory, CELLO) == [CELLO]
    clock.advance(days=30)
    assert memory.run_forgetting() == [cello.id]
    assert memory.check_consistency().ok
    assert memory.crystals.count(archived=False) == 0
    assert memory.crystals.count(archived=True) == 2  # nothing was deleted


def test_pinned_crystals_never_fade(memory: MemoryService, clock: ManualClock):
    pinned = memory.pin(memory.add_crystal(PIXEL).crystal.id)
    assert pinned.pinned
    clock.advance(days=3650)
    assert memory.run_forgetting() == []
    assert recalled(memory, PIXEL) == [PIXEL]
    with pytest.raises(GhostDeskError, match="unpin"):
        memory.archive(pinned.id)


def test_archived_crystals_are_searchable_by_words_and_meaning(memory: MemoryService,
                                                               clock: ManualClock):
    ids = [memory.add_crystal(t).crystal.id for t in (CELLO, GARDEN, PIXEL)]
    clock.advance(days=61)
    assert sorted(memory.run_forgetting()) == sorted(ids)
    by_word = memory.search("tomatoes")
    assert [h.crystal.text for h in by_word] == [GARDEN] and by_word[0].text_match
    by_meaning = memory.search("cello practice every night", min_similarity=0.3)
    assert by_meaning[0].crystal.text == CELLO and not by_meaning[0].text_match
    assert memory.search("tomatoes", archived=False) == []


def test_restore_brings_a_crystal_back_into_recall(memory: MemoryService, clock: ManualClock):
    crystal = memory.add_crystal(CELLO).crystal
    memory.archive(crystal.id)
    assert recalled(memory, CELLO) == []
    restored = memory.restore(crystal.id)
    assert not restored.archived and restored.last_recalled_at == clock()
    assert recalled(memory, CELLO) == [CELLO]
    clock.advance(days=59)
    assert memory.run_forgetting() == []  # restoring counts as resonating
    assert memory.check_consistency().ok


def test_pinning_an_archived_crystal_restores_it(memory: MemoryService):
    crystal = memory.add_crystal(CELLO).crystal
    memory.archive(crystal.id)
    assert not memory.pin(crystal.id).archived
    assert recalled(memory, CELLO) == [CELLO]


def test_archive_survives_a_restart(make_memory, hashing, memory: MemoryService,
                                    clock: ManualClock):
    memory.add_crystal(CELLO)
    kept = memory.add_crystal(GARDEN).crystal
    clock.advance(days=61)
    memory.recall_for(GARDEN)
    memory.run_forgetting()
    memory.close()
    again = make_memory(hashing)
    assert again.last_index_load is not None and not again.last_index_load.rebuilt
    assert again.index.live_ids().tolist() == [kept.id]
    assert recalled(again, CELLO) == []


def test_edit_changes_what_resonates(memory: MemoryService):
    crystal = memory.add_crystal(CELLO).crystal
    edited = memory.edit(crystal.id, PIXEL)
    assert edited.text == PIXEL
    assert recalled(memory, PIXEL) == [PIXEL]
    assert recalled(memory, CELLO) == []


# -- "forget" means forgotten -----------------------------------------------------------------


def _data_files(paths: DataPaths) -> bytes:
    blobs = b""
    for path in [paths.database, *paths.database.parent.glob(paths.database.name + "-*"),
                 *(paths.root / "memory").iterdir()]:
        if path.is_file():
            blobs += path.read_bytes()
    return blobs


def _vectors_in_index_file(memory: MemoryService) -> np.ndarray:
    """Every vector stored in the saved hnswlib file, deleted entries included."""
    index = memory.index
    header = HEADER
    count = header.unpack_from(index.path.read_bytes())[2]
    links0 = 2 * index.M * 4 + 4
    per_element = links0 + index.dim * 4 + 8
    level0 = np.frombuffer(index.path.read_bytes(), np.uint8, count * per_element, header.size)
    rows = level0.reshape(count, per_element)[:, links0:links0 + index.dim * 4]
    return rows.copy().view("<f4")


def test_forget_leaves_nothing_recallable(memory: MemoryService, store: ConversationStore,
                                          paths: DataPaths, clock: ManualClock):
    cid = store.create_conversation().id
    told = store.add_message(cid, "user", "Remember my diary password, please.")
    secret = memory.remember_message(told.id, "my secret diary password is swordfish42")[0]
    secret = secret.crystal
    assert secret.source_message_ids == (told.id,)
    other = memory.add_crystal(PIXEL).crystal
    reply = store.add_message(cid, "assistant", "noted")
    memory.record_provenance(reply.id, memory.recall_for("secret diary password swordfish42"))
    assert [r.crystal.id for r in memory.recalled_for_message(reply.id)] == [secret.id]
    secret_vector = memory.crystals.get_many([secret.id])[secret.id][1]

    assert memory.forget(secret.id)

    assert recalled(memory, "my secret diary password is swordfish42") == []
    with pytest.raises(NotFoundError):
        memory.get(secret.id)
    assert memory.recalled_for_message(reply.id) == []
    assert memory.recalls.recall_count_rows(secret.id) == 0
    assert secret.id not in memory.index.live_ids().tolist()
    assert memory.search("swordfish42", archived=None) == []
    assert memory.check_consistency().ok
    # Not in the saved index (hnswlib keeps a deleted entry's vector: it was overwritten),
    # not in the database file or its WAL: neither the words nor the vector's bytes.
    assert memory.index.tombstones == 1
    assert float(np.max(_vectors_in_index_file(memory) @ secret_vector)) < 0.5
    on_disk = _data_files(paths)
    assert b"swordfish42" not in on_disk
    assert vector_to_bytes(secret_vector) not in on_disk
    assert store.get_message(told.id).content.startswith("Remember")  # the chat is kept
    assert memory.get(other.id).text == PIXEL
    assert not memory.forget(secret.id)  # forgetting twice is harmless


def test_forgetting_an_archived_crystal(memory: MemoryService, clock: ManualClock):
    crystal = memory.add_crystal(CELLO).crystal
    memory.archive(crystal.id)
    assert memory.forget(crystal.id)
    assert memory.search("cello", archived=None) == []
    # The tombstone's vector was overwritten before the index was saved.
    stored = _vectors_in_index_file(memory)
    _, vector = memory.crystals.get_many([crystal.id]).get(crystal.id, (None, None))
    assert vector is None
    assert float(np.max(stored @ memory.embedder.embed([CELLO])[0])) < 0.5
    assert memory.check_consistency().ok


def test_deleting_a_conversation_keeps_what_was_learned(memory: MemoryService,
                                                        store: ConversationStore):
    cid = store.create_conversation().id
    said = store.add_message(cid, "user", PIXEL)
    crystal = memory.remember_message(said.id)[0].crystal
    reply = store.add_message(cid, "assistant", "cute!")
    memory.record_provenance(reply.id, memory.recall_for(PIXEL))
    store.delete_conversation(cid)
    kept = memory.get(crystal.id)
    assert kept.source_message_ids == ()  # the messages are gone, the memory stays
    assert memory.recalls.recall_count_rows() == 0


def test_manual_memory_of_a_missing_message(memory: MemoryService):
    with pytest.raises(NotFoundError):
        memory.remember_message(12345)


def test_vectors_are_stored_as_float32_bytes(memory: MemoryService):
    crystal = memory.add_crystal(CELLO).crystal
    _, vector = memory.crystals.get_many([crystal.id])[crystal.id]
    assert vector.dtype == np.float32 and vector.shape == (memory.embedder.dim,)
    assert float(np.linalg.norm(vector)) == pytest.approx(1.0, abs=1e-5)


def test_memory_folder_is_inside_the_data_folder(memory: MemoryService, paths: DataPaths):
    assert memory.folder == paths.root / "memory"
    assert sorted(p.name for p in Path(memory.folder).iterdir()) == [
        "crystals.hnsw", "crystals.hnsw.json"]


def test_an_index_that_cannot_be_saved_never_fails_the_user(memory: MemoryService,
                                                            monkeypatch: pytest.MonkeyPatch):
    import errno

    def disk_full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(memory.index, "save", disk_full)
    crystal = memory.add_crystal(CELLO).crystal
    assert recalled(memory, CELLO) == [CELLO]
    assert memory.forget(crystal.id)
    assert len([n for n in memory.notices if "could not save" in n]) == 1
    memory.close()  # no exception either
