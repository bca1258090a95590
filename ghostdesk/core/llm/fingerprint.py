"""The SHA-256 of a model file, remembered by path, size and modification time.

An adapter is tied to the exact model file it was trained from, and the converted training
base is cached under that file's hash. Hashing reads the whole file (about 20 s for a 20 GB
model), so each answer is kept in a small JSON file in the cache folder and reused while the
file's size and mtime are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

_CACHE_NAME = "fingerprints.json"
_lock = threading.Lock()


def sha256_file(path: str | Path, *, chunk: int = 8 * 1024 * 1024) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def model_sha256(path: str | Path, cache_dir: str | Path | None = None) -> str:
    """SHA-256 of `path`; with `cache_dir`, remembered across runs."""
    p = Path(path).expanduser().resolve()
    st = p.stat()
    key = f"{p}|{st.st_size}|{st.st_mtime_ns}"
    cache_file = Path(cache_dir) / _CACHE_NAME if cache_dir is not None else None
    with _lock:
        known = _read(cache_file)
        if key in known:
            return known[key]
    digest = sha256_file(p)
    if cache_file is not None:
        with _lock:
            known = _read(cache_file)
            # Entries for older versions of the same file are dropped.
            known = {k: v for k, v in known.items() if not k.startswith(f"{p}|")}
            known[key] = digest
            _write(cache_file, known)
    return digest


def _read(cache_file: Path | None) -> dict[str, str]:
    if cache_file is None:
        return {}
    try:
        data = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # a missing or damaged cache only costs a re-hash
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write(cache_file: Path, data: dict[str, str]) -> None:
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, cache_file)
    except OSError:
        pass  # the cache is an optimisation; a full or read-only disk must not fail the caller
