"""The sentences the window shows as memory changes ("Remembered.", "Imported notes.md: ...")."""

from __future__ import annotations

from typing import Any


def absorbed_notice(absorbed: list[Any]) -> str:
    """After texts were taken into memory (a list of Absorbed)."""
    if absorbed and all(a.merged for a in absorbed):
        return "Merged with an existing memory."
    if len(absorbed) > 1:
        return f"Remembered ({len(absorbed)} passages)."
    return "Remembered."


def import_notice(result: Any) -> str:
    """After a document was imported (a DocumentImport)."""
    return (f"Imported {result.name}: {count_of(result.passages, 'passage')} "
            f"({result.added} new, {result.merged} merged with existing memories).")


def crystallization_notice(result: Any) -> str | None:
    """After a crystallization (a Crystallization); None when it changed nothing."""
    added, merged = len(result.added), len(result.merged)
    if added:
        text = f"Remembered {count_of(added, 'new thing')} about you"
        if merged:
            text += f" (and updated {count_of(merged, 'memory', 'memories')})"
        return text
    if merged:
        return f"Updated {count_of(merged, 'memory', 'memories')} about you"
    return None


def count_of(count: int, singular: str, plural: str | None = None) -> str:
    """"1 memory", "3 memories"."""
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"
