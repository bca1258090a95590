"""Importing text and Markdown files as passages."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghostdesk.core.memory.documents import DocumentError, read_document, split_passages
from ghostdesk.core.memory.service import MemoryService

VEG = [
    "tomatoes", "beans", "peas", "kale", "leeks", "chard", "onions", "garlic", "carrots",
    "beets", "radish", "squash", "lettuce", "spinach", "fennel", "celery", "turnips",
    "parsnips", "potatoes", "courgettes",
]
MONTHS = [
    "march", "april", "may", "june", "july", "august", "september", "october", "november",
    "december", "january", "february", "march", "april", "may", "june", "july", "august",
    "september", "october",
]
NOTES = """# Grandma's recipes

Dumplings: pork, chives, ginger. Fold twelve pleats.

Hot and sour soup needs black vinegar and white pepper.

## Garden

""" + " ".join(f"Bed {n} gets {veg} after the {month} frost."
          for n, (veg, month) in enumerate(zip(VEG, MONTHS, strict=True), 1)) + """

Basil likes the sunny corner.
"""


def test_passages_follow_paragraphs_and_keep_headings():
    passages = split_passages(NOTES)
    assert passages[0].startswith("Grandma's recipes\nDumplings")
    assert "black vinegar" in passages[0]
    assert passages[1].startswith("Garden\nBed 1 gets tomatoes")
    assert all(len(p) <= 800 for p in passages)
    assert passages[-1].endswith("Basil likes the sunny corner.")
    # Long paragraphs are cut between sentences.
    assert all(p.rstrip().endswith(".") for p in passages)


def test_a_giant_word_is_cut_too():
    passages = split_passages("x" * 2000)
    assert len(passages) >= 3 and all(len(p) <= 800 for p in passages)


def test_import_markdown(memory: MemoryService, tmp_path: Path):
    path = tmp_path / "notes.md"
    path.write_text(NOTES, encoding="utf-8")
    result = memory.import_document(path)
    assert result.passages == len(split_passages(NOTES)) == result.added
    docs = memory.list_crystals(kind="document")
    assert {c.source for c in docs} == {f"notes.md, passage {n}"
                                        for n in range(1, result.passages + 1)}
    assert all(c.importance == pytest.approx(0.4) for c in docs)
    # Importing again adds nothing new: every passage merges into itself.
    again = memory.import_document(path)
    assert again.added == 0 and again.merged == result.passages
    assert memory.check_consistency().ok


def test_pdf_and_binary_files_are_refused_clearly(tmp_path: Path):
    pdf = tmp_path / "book.pdf"
    pdf.write_bytes(b"%PDF-1.7")
    with pytest.raises(DocumentError, match="PDF"):
        read_document(pdf)
    binary = tmp_path / "data.txt"
    binary.write_bytes(b"\x00\x01\x02")
    with pytest.raises(DocumentError, match="text"):
        read_document(binary)
    with pytest.raises(DocumentError, match="could not be read"):
        read_document(tmp_path / "missing.md")
    with pytest.raises(DocumentError, match="not a text"):
        read_document(tmp_path / "image.png")


def test_text_with_a_bom_and_windows_newlines(tmp_path: Path):
    path = tmp_path / "a.txt"
    path.write_bytes("\ufeffFirst line.\r\n\r\nSecond paragraph.".encode())
    assert split_passages(read_document(path)) == ["First line.\nSecond paragraph."]
