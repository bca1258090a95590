"""Importing a text or Markdown file into memory as passages of about 500 characters.

Passages follow paragraph boundaries (a blank line); a Markdown heading starts a new passage
and stays with the text under it. A paragraph longer than `max_chars` is cut between
sentences, a sentence longer than that between words. PDF is not supported: reading it needs
a PDF library GhostDesk does not ship; the user gets a clear message instead.
"""

from __future__ import annotations

import re
from pathlib import Path

from ghostdesk.core.errors import GhostDeskError

TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown", ".mdown", ".mkd"})
MAX_FILE_BYTES = 5 * 1024 * 1024
TARGET_CHARS = 500
MAX_CHARS = 800

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")


class DocumentError(GhostDeskError):
    """A file that can't be imported into memory (type, size, encoding)."""


def read_document(path: Path) -> str:
    """The text of a .txt or .md file (UTF-8; other bytes replaced)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        raise DocumentError(
            f"{path.name} is a PDF, which GhostDesk can't read yet.",
            hint="Save or export it as a .txt or .md file, then import that.",
        )
    if suffix not in TEXT_SUFFIXES:
        raise DocumentError(
            f"{path.name} is not a text or Markdown file.",
            hint="GhostDesk imports .txt and .md files.",
        )
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DocumentError(
                f"{path.name} is {size / 2**20:.1f} MiB; GhostDesk imports files up to "
                f"{MAX_FILE_BYTES // 2**20} MiB.",
                hint="Split it into smaller files.",
            )
        data = path.read_bytes()
    except OSError as err:
        raise DocumentError(f"{path} could not be read: {err.strerror or err}",
                            hint="Check that the file exists and that you may read it.",
                            ) from err
    if b"\x00" in data[:4096]:
        raise DocumentError(f"{path.name} does not look like text.",
                            hint="GhostDesk imports .txt and .md files.")
    return data.decode("utf-8-sig", errors="replace")


def _paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks; a heading line is a block of its own."""
    blocks: list[str] = []
    current: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line.strip() or _HEADING.match(line):
            if current:
                blocks.append(" ".join(current))
                current = []
            if line.strip():
                blocks.append(line.strip())
            continue
        current.append(line.strip())
    if current:
        blocks.append(" ".join(current))
    return [" ".join(b.split()) for b in blocks if b.strip()]


def _cut(paragraph: str, target: int, max_chars: int) -> list[str]:
    """A long paragraph as pieces of at most max_chars, cut between sentences if possible."""
    if len(paragraph) <= max_chars:
        return [paragraph]
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(paragraph):
        while len(sentence) > max_chars:  # a run-on sentence: cut between words
            cut = sentence.rfind(" ", 0, target) if " " in sentence[:target] else target
            cut = cut if cut > 0 else target
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if current and len(current) + 1 + len(sentence) > target:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        pieces.append(current)
    return [p for p in pieces if p]


def split_passages(text: str, target: int = TARGET_CHARS, max_chars: int = MAX_CHARS,
                   ) -> list[str]:
    """Passages of about `target` characters (never above `max_chars`)."""
    passages: list[str] = []
    current = ""
    heading_only = False  # a heading stays with the text under it
    for block in _paragraphs(text):
        if _HEADING.match(block):
            if current and not heading_only:
                passages.append(current)
                current = ""
            current = f"{current}\n{_HEADING.sub('', block)}".strip()[:max_chars]
            heading_only = True
            continue
        for piece in _cut(block, target, max_chars):
            joined = f"{current}\n{piece}" if current else piece
            if current and not heading_only and len(joined) > target:
                passages.append(current)
                current = piece
            elif heading_only and len(joined) > max_chars:
                passages.append(joined[:max_chars].rsplit(" ", 1)[0])
                current = joined[len(passages[-1]):].strip()
            else:
                current = joined
            heading_only = False
    if current:
        passages.append(current)
    return [p for p in (p.strip() for p in passages) if p]
