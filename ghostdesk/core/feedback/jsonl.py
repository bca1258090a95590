"""JSON Lines files written atomically, one record per line whatever the text in it holds."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ghostdesk.core.errors import GhostDeskError

# Characters JSON allows raw in a string but that some readers take for a line break
# (str.splitlines, JavaScript): escaped, so one record is always exactly one line.
_LINE_SAFE = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


def _json_encoder() -> Any:
    encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
    return lambda value: encode(value).translate(_LINE_SAFE)


def write_jsonl(records: Iterable[dict[str, Any]], path: str | Path) -> int:
    """Write records as JSON Lines in UTF-8, atomically; returns how many were written. With
    no records nothing is written and an existing file is left as it was."""
    path = Path(path)
    part = path.with_name(path.name + ".part")
    count = 0
    try:
        with part.open("w", encoding="utf-8", newline="\n") as out:
            encode = _json_encoder()
            for record in records:
                out.write(encode(record))
                out.write("\n")
                count += 1
            out.flush()
            os.fsync(out.fileno())
        if count:
            os.replace(part, path)
    except OSError as err:
        raise GhostDeskError(
            f"Could not write {path}: {err.strerror or err}.",
            hint="Choose another file, or check the folder exists and the disk has space.",
        ) from err
    finally:
        part.unlink(missing_ok=True)
    return count
