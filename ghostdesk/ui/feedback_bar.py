"""Feedback under a companion reply: 👍 👎 😂, a comment, a better reply, and signal chips.

The bar changes the moment it is clicked (👍 and 👎 exclude each other, 😂 goes with either)
and asks for the change to be saved through its signals; it never touches the database.
Whoever saves it answers with `set_state` (saved) or `revert` (the save failed).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

from ghostdesk.core.feedback.records import (
    ACTIVE,
    CONFIRMED,
    DISMISSED,
    FeedbackEventRecord,
    FeedbackState,
)

RATING_BUTTONS: tuple[tuple[str, str, str, str], ...] = (
    # kind, text, accessible name, tooltip
    ("up", "👍", "Good reply", "Good reply (👍)"),
    ("down", "👎", "Bad reply", "Not a good reply (👎)"),
    ("laugh", "😂", "Made me laugh", "That made me laugh (😂)"),
)
_EXCLUDES = {"up": "down", "down": "up"}

SIGNAL_LOOK: dict[str, tuple[str, str]] = {
    # kind: (icon, what it means)
    "laughter": ("😄", "laughter"),
    "understood": ("🤝", "feeling understood"),
    "scorn": ("😒", "scorn"),
    "continuation": ("↪", "you kept talking"),
    "abandoned": ("⏸", "you left right after this reply"),
}


def signal_text(event: FeedbackEventRecord) -> str:
    """The short label of a signal chip: its icon and the words that triggered it."""
    icon, meaning = SIGNAL_LOOK.get(event.kind, ("•", event.kind))
    return f"{icon} “{event.phrase}”" if event.phrase else f"{icon} {meaning}"


def signal_tooltip(event: FeedbackEventRecord) -> str:
    _icon, meaning = SIGNAL_LOOK.get(event.kind, ("•", event.kind))
    source = f"You wrote “{event.phrase}” after this reply" if event.phrase else "From the chat"
    status = {
        "pending": "Confirm it if it is right, dismiss it if not: dismissed signals are "
        "never trained on.",
        CONFIRMED: "You confirmed it.",
        ACTIVE: "Dismiss it if it is wrong: dismissed signals are never trained on.",
    }.get(event.status, "")
    return f"{source}: read as {meaning} ({event.weight:+g}).\n{status}"


class SignalChip(QFrame):
    """One implicit signal: its label, ✓ to confirm and ✕ to dismiss."""

    decided = Signal(str)
    """"confirmed" or "dismissed"."""

    def __init__(self, event: FeedbackEventRecord, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.record = event
        self.setObjectName("SignalChip")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.label = QLabel(signal_text(event), objectName="SignalChipLabel")
        self.confirm_button = _chip_button("✓", "Confirm: this signal is right")
        self.confirm_button.clicked.connect(lambda: self.decided.emit(CONFIRMED))
        self.dismiss_button = _chip_button("✕", "Dismiss: this signal is wrong")
        self.dismiss_button.clicked.connect(lambda: self.decided.emit(DISMISSED))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 1, 2, 1)
        layout.setSpacing(2)
        layout.addWidget(self.label)
        layout.addWidget(self.confirm_button)
        layout.addWidget(self.dismiss_button)
        self.set_status(event.status)

    def set_status(self, status: str) -> None:
        self.status = status
        self.setProperty("status", status)
        self.setToolTip(signal_tooltip(self.record))
        self.confirm_button.setVisible(status not in (CONFIRMED, ACTIVE))
        self.setVisible(status != DISMISSED)
        self.style().unpolish(self)
        self.style().polish(self)


def _chip_button(text: str, tip: str) -> QToolButton:
    button = QToolButton(objectName="SignalChipButton", text=text)
    button.setToolTip(tip)
    button.setAccessibleName(tip.split(":")[0])
    button.setCursor(Qt.CursorShape.PointingHandCursor)
    return button


class FeedbackBar(QWidget):
    """The rating buttons and written-feedback actions of one reply. Its signal chips live in
    `chips`, a separate row the bubble places above its footer."""

    rating_changed = Signal(str, bool)
    """(kind, on): the user pressed 👍, 👎 or 😂; the bar already shows the result."""
    text_requested = Signal(str)
    """"comment" or "better_reply": the user wants to write one."""
    signal_decided = Signal(int, str)
    """(event id, "confirmed" or "dismissed"); the chip already shows the result."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("FeedbackBar")
        self.saved_state: FeedbackState | None = None
        self.buttons: dict[str, QToolButton] = {}
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        for kind, text, name, tip in RATING_BUTTONS:
            button = QToolButton(objectName="RatingButton", text=text)
            button.setCheckable(True)
            button.setAccessibleName(name)
            button.setToolTip(tip)
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.clicked.connect(lambda checked, k=kind: self._on_rating_clicked(k, checked))
            layout.addWidget(button)
            self.buttons[kind] = button
        self.comment_button = _action("Comment…", _TIPS["Comment"])
        self.comment_button.clicked.connect(lambda: self.text_requested.emit("comment"))
        self.better_button = _action("Better reply…", _TIPS["Better reply"])
        self.better_button.clicked.connect(lambda: self.text_requested.emit("better_reply"))
        layout.addWidget(self.comment_button)
        layout.addWidget(self.better_button)

        self.chips = QWidget(objectName="SignalChips")
        self._chip_layout = QHBoxLayout(self.chips)
        self._chip_layout.setContentsMargins(0, 0, 0, 0)
        self._chip_layout.setSpacing(6)
        self._chip_layout.addStretch(1)
        self._chips: list[SignalChip] = []
        self.chips.setVisible(False)
        self.setVisible(False)  # until it knows which saved reply it belongs to

    # -- state ---------------------------------------------------------------------------

    @property
    def message_id(self) -> int | None:
        return self.saved_state.message_id if self.saved_state is not None else None

    def shown_ratings(self) -> frozenset[str]:
        """The buttons that look pressed right now."""
        return frozenset(k for k, b in self.buttons.items() if b.isChecked())

    def chip_widgets(self) -> list[SignalChip]:
        return list(self._chips)

    def set_state(self, state: FeedbackState, *, show: bool = True) -> None:
        """The reply's feedback as saved. `show=False` only remembers it (a newer change is
        still being saved), so a later failure reverts to the right thing."""
        self.saved_state = state
        self.setVisible(True)
        if show:
            self._show(state)

    def revert(self) -> None:
        """Show the saved feedback again, undoing what the user clicked since."""
        if self.saved_state is not None:
            self._show(self.saved_state)

    def _show(self, state: FeedbackState) -> None:
        for kind, button in self.buttons.items():
            button.setChecked(kind in state.ratings)
        _mark(self.comment_button, "Comment", state.comment, "Your comment")
        _mark(self.better_button, "Better reply", state.better_reply, "Your better reply")
        self._show_chips(state.signals)

    def _show_chips(self, signals: tuple[FeedbackEventRecord, ...]) -> None:
        current = {c.record.id: c for c in self._chips}
        if [c.record.id for c in self._chips] == [s.id for s in signals]:
            for event in signals:
                current[event.id].record = event
                current[event.id].set_status(event.status)
        else:
            for chip in self._chips:
                self._chip_layout.removeWidget(chip)
                chip.deleteLater()
            self._chips = []
            for event in signals:
                chip = SignalChip(event)
                chip.decided.connect(lambda status, c=chip: self._on_chip_decided(c, status))
                self._chip_layout.insertWidget(self._chip_layout.count() - 1, chip)
                self._chips.append(chip)
        self.chips.setVisible(any(c.status != DISMISSED for c in self._chips))

    # -- clicks --------------------------------------------------------------------------

    def _on_rating_clicked(self, kind: str, checked: bool) -> None:
        other = _EXCLUDES.get(kind)
        if checked and other is not None:
            self.buttons[other].setChecked(False)
        self.rating_changed.emit(kind, checked)

    def _on_chip_decided(self, chip: SignalChip, status: str) -> None:
        chip.set_status(status)
        self.chips.setVisible(any(c.status != DISMISSED for c in self._chips))
        self.signal_decided.emit(chip.record.id, status)


def _action(text: str, tip: str) -> QToolButton:
    button = QToolButton(objectName="BubbleAction", text=text)
    button.setToolTip(tip)
    button.setCursor(Qt.CursorShape.PointingHandCursor)
    return button


_TIPS = {
    "Comment": "Add a short comment on this reply",
    "Better reply": "Write the reply you would have liked",
}


def _mark(button: QToolButton, name: str, text: str | None, what: str) -> None:
    button.setText(f"{name} ✓" if text else f"{name}…")
    button.setProperty("filled", bool(text))
    button.style().unpolish(button)
    button.style().polish(button)
    if text:
        preview = text if len(text) <= 300 else text[:299] + "…"
        button.setToolTip(f"{what} (click to change):\n{preview}")
    else:
        button.setToolTip(_TIPS[name])
