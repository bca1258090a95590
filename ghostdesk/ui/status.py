"""The status bar line (model, device, speed, model state) and the non-modal notice banner."""

from __future__ import annotations

from enum import StrEnum

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QToolButton, QWidget

from ghostdesk.core.llm.types import ChatEngineInfo


class ModelState(StrEnum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class StatusPanel(QWidget):
    """Shows what is loaded and how fast it answers. Lives in the main window's status bar."""

    choose_model_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = ModelState.LOADING
        self.state_label = QLabel(objectName="ModelState")
        self.state_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.model_label = QLabel(objectName="ModelName")
        self.device_label = QLabel(objectName="Device")
        self.speed_label = QLabel(objectName="Speed")
        self.choose_model_button = QPushButton("Choose model…")
        self.choose_model_button.setVisible(False)
        self.choose_model_button.clicked.connect(self.choose_model_clicked)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.setSpacing(4)
        for w in (self.state_label, self.choose_model_button, self.model_label, self.device_label):
            layout.addWidget(w)
        layout.addStretch(1)
        layout.addWidget(self.speed_label)
        self.set_loading()

    def set_loading(self, what: str = "Loading model…") -> None:
        self._set_state(ModelState.LOADING, what)
        self.choose_model_button.setVisible(False)

    def set_ready(self, info: ChatEngineInfo) -> None:
        self._set_state(ModelState.READY, "Ready")
        self.choose_model_button.setVisible(False)
        self.model_label.setText(info.model_name)
        self.model_label.setToolTip(info.model_path or info.model_name)
        device = info.device_summary or "CPU"
        self.device_label.setText(f"· {device}")
        tip = f"Context: {info.n_ctx} tokens" if info.n_ctx else ""
        if info.offload_reason:
            tip = f"{info.offload_reason}\n{tip}".strip()
        self.device_label.setToolTip(tip)

    def set_failed(self, message: str) -> None:
        first_line = message.strip().splitlines()[0] if message.strip() else "No model"
        self._set_state(ModelState.FAILED, first_line)
        self.state_label.setToolTip(message)
        self.choose_model_button.setVisible(True)
        self.model_label.clear()
        self.device_label.clear()

    def show_live_speed(self, tokens: int, tokens_per_second: float) -> None:
        self.speed_label.setText(f"{_tokens(tokens)} · {tokens_per_second:.1f} tok/s")

    def show_reply_stats(
        self,
        tokens: int | None,
        tokens_per_second: float | None,
        first_token_seconds: float | None,
        stopped: bool = False,
    ) -> None:
        parts = [_tokens(tokens or 0)]
        if tokens_per_second:
            parts.append(f"{tokens_per_second:.1f} tok/s")
        if first_token_seconds is not None:
            parts.append(f"first token {first_token_seconds:.2f} s")
        if stopped:
            parts.append("stopped")
        self.speed_label.setText("Last reply: " + " · ".join(parts))

    def _set_state(self, state: ModelState, text: str) -> None:
        self.state = state
        self.state_label.setText(text)
        self.state_label.setToolTip("")
        self.state_label.setProperty("state", state.value)
        self.state_label.style().unpolish(self.state_label)
        self.state_label.style().polish(self.state_label)


def _tokens(n: int) -> str:
    return f"{n} token" if n == 1 else f"{n} tokens"


class NoticeBanner(QWidget):
    """A message above the chat that stays until closed; never blocks the window."""

    closed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Banner")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.message_label = QLabel(wordWrap=True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.action_button = QPushButton()
        self.action_button.setVisible(False)
        close = QToolButton(objectName="BannerClose", text="✕")
        close.setToolTip("Dismiss")
        close.clicked.connect(self._on_close_clicked)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 8, 8)
        layout.addWidget(self.message_label, 1)
        layout.addWidget(self.action_button)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self._action = None
        self.action_button.clicked.connect(self._on_action_clicked)
        self.setVisible(False)

    @property
    def text(self) -> str:
        return self.message_label.text() if not self.isHidden() else ""

    @property
    def kind(self) -> str:
        return str(self.property("kind") or "")

    def show_message(
        self, text: str, kind: str = "info", action: tuple[str, object] | None = None
    ) -> None:
        """Show `text`; kind is "info", "warning" or "error". `action` = (label, callable)."""
        self.message_label.setText(text)
        self.setProperty("kind", kind)
        self.style().unpolish(self)
        self.style().polish(self)
        for child in self.findChildren(QLabel):
            child.style().unpolish(child)
            child.style().polish(child)
        self._action = action[1] if action else None
        self.action_button.setText(action[0] if action else "")
        self.action_button.setVisible(action is not None)
        self.setVisible(True)

    def dismiss(self) -> None:
        self.setVisible(False)
        self._action = None

    def _on_close_clicked(self) -> None:
        self.dismiss()
        self.closed.emit()

    def _on_action_clicked(self) -> None:
        action = self._action
        if callable(action):
            action()
