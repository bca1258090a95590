"""The hnswlib index as a rebuildable cache: saved atomically, checked before hnswlib reads
it, rebuilt from its source (SQLite) whenever it is missing, damaged or out of step."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ghostdesk.core.memory.embedder import normalize_rows
from ghostdesk.core.memory.hnsw_file import HEADER, IndexFileError, check_hnsw_file
from ghostdesk.core.memory.index_files import file_sha256
from ghostdesk.core.memory.vector_index import CrystalIndex

DIM = 16


class ListSource:
    """An IndexSource over a dict, standing in for the crystals table."""

    def __init__(self, vectors: dict[int, np.ndarray]) -> None:
        self.vectors = dict(vectors)

    def active_ids(self) -> np.ndarray:
        return np.array(sorted(self.vectors), dtype=np.int64)

    def iter_active_vectors(self, batch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        ids = sorted(self.vectors)
        for first in range(0, len(ids), batch):
            part = ids[first:first + batch]
            yield np.array(part, np.int64), np.stack([self.vectors[i] for i in part])


def random_vectors(n: int, seed: int = 0) -> np.ndarray:
    return normalize_rows(np.random.default_rng(seed).standard_normal((n, DIM)))


@pytest.fixture
def source() -> ListSource:
    vectors = random_vectors(300)
    return ListSource({i * 7 + 1: v for i, v in enumerate(vectors)})


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "memory"


def saved_index(folder: Path, source: ListSource) -> CrystalIndex:
    index = CrystalIndex(folder, DIM)
    load = index.open(source)
    assert load.rebuilt
    index.close()
    return CrystalIndex(folder, DIM)


def test_query_returns_nearest_with_cosine_similarity(folder: Path, source: ListSource):
    index = CrystalIndex(folder, DIM)
    index.open(source)
    some_id = 7 * 42 + 1
    ids, sims = index.query(source.vectors[some_id], 5)
    assert ids[0] == some_id and sims[0] == pytest.approx(1.0, abs=1e-5)
    assert list(sims) == sorted(sims, reverse=True)
    assert index.count == 300


def test_clean_reopen_loads_without_rebuild_and_sets_ef(folder: Path, source: ListSource):
    index = saved_index(folder, source)
    load = index.open(source)
    assert not load.rebuilt and load.notice is None and load.count == 300
    # ef is not stored in the file; with hnswlib's default (10) a k=100 query would fail.
    ids, _ = index.query(source.vectors[1], 100)
    assert len(ids) == 100


def test_removed_ids_never_come_back_and_survive_a_reopen(folder: Path, source: ListSource):
    index = CrystalIndex(folder, DIM)
    index.open(source)
    gone = [1, 8, 15]
    index.remove(gone)
    for g in gone:
        del source.vectors[g]
    index.close()
    reopened = CrystalIndex(folder, DIM)
    assert not reopened.open(source).rebuilt
    ids, _ = reopened.query(random_vectors(1, seed=5)[0], 299)
    assert not set(gone) & set(ids.tolist())
    assert reopened.live_ids().tolist() == sorted(source.vectors)
    assert reopened.tombstones == 3


def test_a_removed_id_can_be_added_back(folder: Path, source: ListSource):
    index = CrystalIndex(folder, DIM)
    index.open(source)
    index.remove([1])
    index.add([1], source.vectors[1][None, :])
    assert 1 in index.live_ids().tolist()
    assert index.query(source.vectors[1], 1)[0][0] == 1


def test_index_grows_past_its_capacity(folder: Path):
    index = CrystalIndex(folder, DIM)
    index.open(ListSource({}))
    vectors = random_vectors(2500, seed=3)
    for first in range(0, 2500, 500):
        index.add(np.arange(first, first + 500) + 1, vectors[first:first + 500])
    assert index.count == 2500
    assert index.query(vectors[2400], 1)[0][0] == 2401


# -- damage: every case is detected, rebuilt from the source, reported, and nothing crashes --


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {
    "deleted": lambda idx: idx.path.unlink(),
    "truncated": lambda idx: idx.path.write_bytes(idx.path.read_bytes()[:-1000]),
    "bit-flipped": lambda idx: _flip_byte(idx.path, idx.path.stat().st_size // 2),
    "sidecar deleted": lambda idx: idx.sidecar_path.unlink(),
    "sidecar garbage": lambda idx: idx.sidecar_path.write_text("{not json"),
    "emptied": lambda idx: idx.path.write_bytes(b""),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_index_is_rebuilt_with_a_notice(folder: Path, source: ListSource,
                                                damage: str):
    index = saved_index(folder, source)
    DAMAGE[damage](index)
    load = index.open(source)
    assert load.rebuilt and load.count == 300
    assert load.notice and "rebuilt from the database" in load.notice
    assert index.live_ids().tolist() == sorted(source.vectors)
    # ...and the rebuilt index is saved: the next start is clean.
    again = CrystalIndex(folder, DIM)
    assert not again.open(source).rebuilt


@pytest.mark.parametrize("change", ["added", "removed", "replaced"])
def test_index_out_of_step_with_the_source_is_rebuilt(folder: Path, source: ListSource,
                                                      change: str):
    index = saved_index(folder, source)
    if change in ("added", "replaced"):
        source.vectors[10_000] = random_vectors(1, seed=9)[0]
    if change in ("removed", "replaced"):
        del source.vectors[1]
    load = index.open(source)
    assert load.rebuilt and "out of step" in load.reason
    assert index.live_ids().tolist() == sorted(source.vectors)


def _rewrite_sidecar_to_match(index: CrystalIndex) -> None:
    meta = json.loads(index.sidecar_path.read_text())
    meta["file_bytes"] = index.path.stat().st_size
    meta["file_sha256"] = file_sha256(index.path)
    index.sidecar_path.write_text(json.dumps(meta))


@pytest.mark.parametrize("field_offset,value", [
    (8 * 3, 10**12),                         # size_data_per_element
    (8 * 6, 50),                             # maxlevel
    (8 * 6 + 4, 10**9),                      # entry point outside the index
    (8 * 6 + 8 + 8, 10**6),                  # maxM0
])
def test_crafted_file_with_a_matching_checksum_never_reaches_hnswlib(
        folder: Path, source: ListSource, monkeypatch: pytest.MonkeyPatch,
        field_offset: int, value: int):
    index = saved_index(folder, source)
    data = bytearray(index.path.read_bytes())
    width = 4 if field_offset in (8 * 6, 8 * 6 + 4) else 8
    data[field_offset:field_offset + width] = value.to_bytes(width, "little")
    index.path.write_bytes(bytes(data))
    _rewrite_sidecar_to_match(index)  # an attacker could write the sidecar as well

    import hnswlib

    def refuse(*_args, **_kwargs):
        raise AssertionError("hnswlib was given a file that failed the structure check")

    monkeypatch.setattr(hnswlib.Index, "load_index", refuse)
    load = index.open(source)
    assert load.rebuilt and "malformed" in load.reason
    assert index.count == 300


def test_crafted_neighbour_id_is_rejected(folder: Path, source: ListSource):
    index = saved_index(folder, source)
    data = bytearray(index.path.read_bytes())
    header = HEADER.size
    # element 0's first level-0 neighbour: after its uint16 count and two flag bytes
    struct.pack_into("<I", data, header + 4, 0xFFFFFF)
    index.path.write_bytes(bytes(data))
    with pytest.raises(IndexFileError, match="neighbour id"):
        check_hnsw_file(index.path, DIM, 16)


def test_check_accepts_what_hnswlib_writes(folder: Path, source: ListSource):
    index = saved_index(folder, source)
    info = check_hnsw_file(index.path, DIM, 16)
    assert info.elements == 300 and sorted(info.live_labels.tolist()) == sorted(source.vectors)
    with pytest.raises(IndexFileError):
        check_hnsw_file(index.path, DIM + 1, 16)  # another model's dimension


def test_settings_change_rebuilds(folder: Path, source: ListSource):
    saved_index(folder, source)
    other = CrystalIndex(folder, DIM, M=24)
    load = other.open(source)
    assert load.rebuilt and "other settings" in load.reason


def test_save_leaves_no_temporary_files(folder: Path, source: ListSource):
    index = CrystalIndex(folder, DIM)
    index.open(source)
    index.add([99_999], random_vectors(1, seed=4))
    assert index.save()
    assert not index.save()  # nothing changed since
    assert sorted(p.name for p in folder.iterdir()) == ["crystals.hnsw", "crystals.hnsw.json"]
