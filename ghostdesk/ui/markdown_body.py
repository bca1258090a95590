"""Message text as a column of Markdown sections, so a streaming reply re-lays out only its tail.

A QLabel with rich text lays out its whole document every time it changes, and the layout
system asks for its height several times per pass: one label holding a long reply costs tens
of milliseconds per repaint, growing with the reply. The text is cut at blank lines (outside
code fences, keeping list items together) and the blocks are packed into sections of about
SECTION_CHARS characters, one label each. While tokens arrive only the last section changes,
and Qt's layout keeps the sizes of the others. Few labels matter too: showing a new child
widget re-activates every layout up to the window.
"""

from __future__ import annotations

import re

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor, QTextDocument, QTextFormat
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from ghostdesk.ui.theme import current_theme

_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s")
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
CODE_CHUNK_LINES = 40
"""A long code block is shown as several adjacent blocks of at most this many lines."""
SECTION_CHARS = 1200
"""Blocks are packed into labels of about this many characters."""


def split_markdown_blocks(text: str) -> list[str]:
    """Cut Markdown into independently renderable blocks. Joining them with blank lines
    renders the same as the whole, except that a very long code block becomes several."""
    blocks: list[str] = []
    current: list[str] = []
    fence: str | None = None
    fence_open_line = ""
    fence_lines = 0

    def flush() -> None:
        if current:
            blocks.append("\n".join(current))
            current.clear()

    for line in text.split("\n"):
        if fence is not None:
            current.append(line)
            fence_lines += 1
            if line.strip().startswith(fence) and line.strip().strip(fence[0]) == "":
                fence = None
                if current == [fence_open_line, line] and blocks:
                    current.clear()  # the chunk before already holds the last line
                flush()
            elif fence_lines >= CODE_CHUNK_LINES:
                current.append(fence)  # close this chunk; the next one reopens the fence
                flush()
                current.append(fence_open_line)
                fence_lines = 0
            continue
        match = _FENCE.match(line)
        if match:
            flush()
            fence, fence_open_line, fence_lines = match.group(1), line, 0
            current.append(line)
            continue
        if not line.strip():
            flush()
            continue
        if not current and blocks and _continues(blocks[-1], line):
            current.extend([*blocks.pop().split("\n"), ""])
        current.append(line)
    flush()
    return blocks


_FEATURES = (
    QTextDocument.MarkdownFeature.MarkdownDialectGitHub
    | QTextDocument.MarkdownFeature.MarkdownNoHTML
)


def markdown_to_html(text: str, code_background: str) -> str:
    """Render Markdown to the rich text a QLabel shows, with tinted code. Raw HTML in the
    text is shown as written, never interpreted: the text comes from a model."""
    doc = QTextDocument()
    doc.setMarkdown(text, _FEATURES)
    background = QColor(code_background)
    code_blocks: list[int] = []
    code_spans: list[tuple[int, int]] = []
    block = doc.begin()
    while block.isValid():
        if block.blockFormat().hasProperty(QTextFormat.Property.BlockCodeFence):
            code_blocks.append(block.position())
        else:
            it = block.begin()
            while not it.atEnd():
                fragment = it.fragment()
                if fragment.charFormat().fontFixedPitch():
                    code_spans.append((fragment.position(), fragment.length()))
                it += 1
        block = block.next()
    cursor = QTextCursor(doc)
    for position in code_blocks:
        cursor.setPosition(position)
        fmt = cursor.blockFormat()
        fmt.setBackground(background)
        cursor.setBlockFormat(fmt)
    span = QTextCharFormat()
    span.setBackground(background)
    for position, length in code_spans:
        cursor.setPosition(position)
        cursor.setPosition(position + length, QTextCursor.MoveMode.KeepAnchor)
        cursor.mergeCharFormat(span)
    return doc.toHtml()


def pack_sections(blocks: list[str], limit: int = SECTION_CHARS) -> list[str]:
    """Join consecutive blocks into sections of at most `limit` characters (a longer block
    stands alone). Greedy from the start, so a growing text only ever changes its last
    sections."""
    sections: list[str] = []
    current: list[str] = []
    size = 0
    for block in blocks:
        if current and size + len(block) > limit:
            sections.append("\n\n".join(current))
            current, size = [], 0
        current.append(block)
        size += len(block) + 2
    if current:
        sections.append("\n\n".join(current))
    return sections


def _continues(previous: str, line: str) -> bool:
    """A line after a blank line that still belongs to the block before it: the next item
    of a loose list, or an indented continuation of a list item."""
    if _FENCE.match(previous):
        return False
    last = previous.rstrip("\n").split("\n")[-1]
    in_list = bool(_LIST_ITEM.match(last)) or (last[:1] in (" ", "\t") and _has_list(previous))
    return in_list and (bool(_LIST_ITEM.match(line)) or line[:1] in (" ", "\t"))


def _has_list(block: str) -> bool:
    return any(_LIST_ITEM.match(line) for line in block.split("\n"))


class SectionLabel(QLabel):
    """A word-wrapped label that remembers its height for a width until its text changes.

    Qt asks every label in a column for heightForWidth several times per layout pass and does
    not cache the answer; for rich text each answer is a full document layout. Without this,
    one new token costs a layout of the whole reply."""

    _CACHE_SIZE = 8

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._heights: dict[int, int] = {}

    def setText(self, text: str) -> None:  # noqa: N802 (Qt override)
        self._heights.clear()
        super().setText(text)

    def heightForWidth(self, width: int) -> int:  # noqa: N802 (Qt override)
        height = self._heights.get(width)
        if height is None:
            if len(self._heights) >= self._CACHE_SIZE:
                self._heights.clear()
            height = self._heights[width] = super().heightForWidth(width)
        return height

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt override)
        if event.type() in (
            QEvent.Type.FontChange,
            QEvent.Type.StyleChange,
            QEvent.Type.ContentsRectChange,
        ):
            self._heights.clear()
        super().changeEvent(event)


class MarkdownBody(QWidget):
    """Shows text as Markdown (or plain text) in one label per section."""

    def __init__(self, markdown: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.markdown = markdown
        self._text = ""
        self._blocks: list[str] = []
        self._labels: list[QLabel] = []
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(8)

    def text(self) -> str:
        return self._text

    def labels(self) -> list[QLabel]:
        return list(self._labels)

    def set_text(self, text: str) -> None:
        if text == self._text:
            return
        self._text = text
        blocks = pack_sections(split_markdown_blocks(text)) if self.markdown else [text]
        for i, block in enumerate(blocks):
            if i < len(self._blocks):
                if self._blocks[i] != block:
                    self._labels[i].setText(self._render(block))
            else:
                self._labels.append(self._new_label(self._render(block)))
        for label in self._labels[len(blocks) :]:
            self._layout.removeWidget(label)
            label.deleteLater()
        del self._labels[len(blocks) :]
        self._blocks = blocks

    def sections(self) -> list[str]:
        """The Markdown source shown by each label."""
        return list(self._blocks)

    def _render(self, block: str) -> str:
        if not self.markdown:
            return block
        return markdown_to_html(block, current_theme().code_background)

    def _new_label(self, text: str) -> QLabel:
        label = SectionLabel()
        label.setObjectName("BubbleBody")
        label.setWordWrap(True)
        label.setTextFormat(Qt.TextFormat.RichText if self.markdown else Qt.TextFormat.PlainText)
        label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.LinksAccessibleByMouse
        )
        label.setOpenExternalLinks(True)
        label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        label.setText(text)
        self._layout.addWidget(label)
        return label
