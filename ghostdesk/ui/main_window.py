"""The main window: chats on the left, the conversation in the middle, the composer below.

The window only arranges widgets and forwards user actions to the core. Loading the model
and every turn with it run on pool threads (see workers.py); their results come back as
queued signals, so the GUI thread never waits on the model. Store reads for switching chats
are small and run here.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ghostdesk.core.companion import ReplySaved, ReplyStarted, TokenReceived, UserMessageSaved
from ghostdesk.core.errors import GhostDeskError, NotFoundError
from ghostdesk.ui.chat_list import ChatList
from ghostdesk.ui.chat_view import ChatView
from ghostdesk.ui.composer import Composer
from ghostdesk.ui.feedback_controller import FeedbackController
from ghostdesk.ui.memory_controller import MemoryController
from ghostdesk.ui.settings_dialog import SettingsDialog
from ghostdesk.ui.status import ModelState, NoticeBanner, StatusPanel
from ghostdesk.ui.training_session import TrainingSession
from ghostdesk.ui.workers import StopFlag, WorkFailed, call_in_background, stream_in_background

if TYPE_CHECKING:
    from ghostdesk.core.store.records import MessageRecord
    from ghostdesk.services import AppServices

log = logging.getLogger("ghostdesk.ui")

REPAINT_INTERVAL_MS = 33
"""Streamed tokens are batched into one repaint per interval (about 30 per second)."""
NEW_CHAT_TITLE = "New chat"
ABANDON_CHECK_MS = 60_000
"""How often the window looks for replies the user left (a cheap query, off the GUI thread)."""


@dataclass
class _Turn:
    """One send or regenerate in flight. Only one runs at a time: the model has one lane."""

    conversation_id: int
    kind: str
    stop: StopFlag = field(default_factory=StopFlag)
    draft: str = ""
    user_saved: bool = False
    reply_started: bool = False
    parent_id: int | None = None
    dropped: int = 0
    text: str = ""
    pending: list[str] = field(default_factory=list)
    tokens: int = 0
    first_token_at: float | None = None
    saved: MessageRecord | None = None
    error: Exception | None = None
    worker: Any = None


class MainWindow(QMainWindow):
    """GhostDesk's window. Test hooks: `chat_list`, `chat_view`, `composer`, `send_button`,
    `status`, `banner`; signals `model_ready`, `model_failed`, `turn_finished`."""

    model_ready = Signal()
    model_failed = Signal(str)
    memory_warmed = Signal()
    """The memory embedder is loaded (or there is none): the first recall won't wait for it."""
    turn_started = Signal(int)
    turn_finished = Signal(int)
    """A send or regenerate ended (saved, stopped or failed); carries the conversation id."""
    conversation_shown = Signal(int)

    def __init__(
        self,
        services: AppServices,
        engine_loader: Callable[[], Any] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.services = services
        self.store = services.store
        self._engine_loader = engine_loader or services.load_engine
        self.engine: Any = None
        self.companion: Any = None
        self._loading = False
        self._reload_pending = False
        self._close_pending = False
        self._load_error = ""
        self._turn: _Turn | None = None
        self._current_id: int | None = None
        self.settings_dialog: SettingsDialog | None = None
        self.feedback_view: Any = None
        self.text_feedback_dialog: Any = None
        self._typed_at: dict[int, datetime] = {}
        self._resting = False
        self._rest_done: Callable[[], None] | None = None
        self._unloading = False
        self._wake_after_unload = False
        self._adoption_text = ""

        self.setWindowTitle("GhostDesk")
        self.resize(1120, 740)
        self._build_widgets()
        self._build_menus()
        self._flush_timer = QTimer(self, singleShot=True, interval=REPAINT_INTERVAL_MS)
        self._flush_timer.timeout.connect(self._on_flush_timer_timeout)
        self._notice_timer = QTimer(self, singleShot=True, interval=6000)
        self._notice_timer.timeout.connect(self._on_notice_timer_timeout)
        self._abandon_timer = QTimer(self, interval=ABANDON_CHECK_MS)
        self._abandon_timer.timeout.connect(self._on_abandon_timer_timeout)
        self._abandon_timer.start()

        self.refresh_chat_list()
        ids = self.chat_list.ids()
        if ids:
            self.show_conversation(ids[0])
        else:
            self._show_empty()
        if services.notices:
            self.banner.show_message("\n".join(services.notices), "warning")
        self.memory.start()
        self._update_actions()
        self.composer.edit.setFocus()

    # -- construction -----------------------------------------------------------------------

    def _build_widgets(self) -> None:
        self.chat_list = ChatList()
        self.chat_view = ChatView()
        self.composer = Composer()
        self.send_button = self.composer.send_button
        self.banner = NoticeBanner()
        self.status = StatusPanel()
        self.statusBar().addPermanentWidget(self.status, 1)
        self.statusBar().setSizeGripEnabled(False)

        center = QWidget()
        column = QVBoxLayout(center)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        banner_box = QVBoxLayout()
        banner_box.setContentsMargins(24, 10, 24, 4)
        banner_box.addWidget(self.banner)
        column.addLayout(banner_box)
        column.addWidget(self.chat_view, 1)
        column.addWidget(self.composer)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.chat_list)
        splitter.addWidget(center)
        splitter.setStretchFactor(1, 1)
        splitter.setCollapsible(1, False)
        splitter.setHandleWidth(1)
        splitter.setSizes([260, 860])
        self.chat_list.setMinimumWidth(200)
        self.setCentralWidget(splitter)

        self.chat_list.conversation_selected.connect(self._on_chat_list_conversation_selected)
        self.chat_list.new_chat_requested.connect(self.new_chat)
        self.chat_list.rename_requested.connect(self._on_chat_list_rename_requested)
        self.chat_list.delete_requested.connect(self._on_chat_list_delete_requested)
        self.chat_view.regenerate_requested.connect(self.regenerate)
        self.chat_view.version_step_requested.connect(self._on_chat_view_version_step_requested)
        self.composer.send_requested.connect(self.send_message)
        self.composer.stop_requested.connect(self.stop_reply)
        self.status.choose_model_clicked.connect(self.choose_model)

        self.feedback = FeedbackController(
            self.services.ledger, self.chat_view, self._report_error, self
        )
        self.chat_view.rating_requested.connect(self.feedback.rate)
        self.chat_view.signal_decision_requested.connect(self.feedback.decide)
        self.chat_view.text_feedback_requested.connect(self.edit_text_feedback)
        self.composer.edit.textChanged.connect(self._on_composer_text_changed)
        self.memory = MemoryController(self, self._report_error)

        # The learning loop outlives the Settings dialog, whose Training tab is its view.
        self.training = TrainingSession(self, self.services, self)
        self.training.changed.connect(self._on_training_changed)
        self.training.notice.connect(self._on_training_notice)
        self.training.adoption_requested.connect(self._on_training_adoption_requested)
        self.training.adoption_settled.connect(self._on_training_adoption_settled)
        self.training.run_action_failed.connect(self._on_training_failed)
        self.training.adapter_action_failed.connect(self._on_training_failed)
        self.learning_button = QToolButton(objectName="LearningStatus", autoRaise=True)
        self.learning_button.setToolTip("Open Settings ▸ Training")
        self.learning_button.setVisible(False)
        self.learning_button.clicked.connect(self.open_training)
        self.statusBar().addPermanentWidget(self.learning_button)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.new_chat_action = self._action(
            file_menu, "&New chat", self.new_chat, QKeySequence.StandardKey.New
        )
        self.choose_model_action = self._action(file_menu, "Choose &model…", self.choose_model)
        self.setup_action = self._action(file_menu, "Setup &assistant…", self.open_setup_assistant)
        self.export_action = self._action(
            file_menu, "&Export chat…", self.export_chat, QKeySequence("Ctrl+E")
        )
        file_menu.addSeparator()
        self.settings_action = self._action(
            file_menu, "&Settings…", self.open_settings, QKeySequence("Ctrl+,")
        )
        self.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        file_menu.addSeparator()
        self.quit_action = self._action(
            file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit
        )
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)

        chat_menu = self.menuBar().addMenu("&Chat")
        self.regenerate_action = self._action(
            chat_menu, "&Regenerate reply", self.regenerate, QKeySequence("Ctrl+R")
        )
        self.stop_action = self._action(
            chat_menu, "S&top reply", self.stop_reply, QKeySequence("Esc")
        )
        chat_menu.addSeparator()
        self.rename_action = self._action(
            chat_menu, "Re&name chat", self._on_rename_triggered, QKeySequence("F2")
        )
        self.delete_action = self._action(chat_menu, "&Delete chat…", self._on_delete_triggered)

        view_menu = self.menuBar().addMenu("&View")
        self.feedback_action = self._action(
            view_menu, "&Feedback…", self.open_feedback_view, QKeySequence("Ctrl+Shift+F")
        )
        self.memory_action = self._action(
            view_menu, "&Memory…", self.memory.open_pane, QKeySequence("Ctrl+Shift+M")
        )
        self.training_action = self._action(view_menu, "&Training…", self.open_training)

    def _action(self, menu, text: str, slot: Callable[[], Any], shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(lambda _checked=False: slot())
        menu.addAction(action)
        return action

    # -- state ------------------------------------------------------------------------------

    @property
    def model_state(self) -> ModelState:
        return self.status.state

    @property
    def is_model_ready(self) -> bool:
        return self.companion is not None and self.status.state == ModelState.READY

    @property
    def is_replying(self) -> bool:
        return self._turn is not None

    @property
    def is_model_loading(self) -> bool:
        return self._loading

    @property
    def is_model_resting(self) -> bool:
        """The chat model is unloaded while a training run uses the GPU."""
        return self._resting

    def adapter_slot(self) -> Any:
        """The loaded model's LoRA slot (None while no model is ready)."""
        return self.services.adapter_slot if self.is_model_ready else None

    @property
    def current_conversation_id(self) -> int | None:
        return self._current_id

    def persona_name(self, conversation_id: int | None = None) -> str:
        name = ""
        if conversation_id is not None:
            try:
                name = self.store.get_conversation(conversation_id).persona_name
            except GhostDeskError:
                name = ""
        return name or self.services.settings.persona.name

    def _update_actions(self) -> None:
        turn = self._turn
        ready = self.is_model_ready
        viewing_turn = turn is not None and turn.conversation_id == self._current_id
        self.composer.set_streaming(viewing_turn)
        if not ready:
            if self._resting:
                reason = (f"{self.persona_name()} is resting while it learns; the chat comes "
                          "back when the training ends.")
            elif self.status.state == ModelState.FAILED:
                reason = "No model is loaded. Choose a model (File ▸ Choose model…)."
            else:
                reason = "The model is still loading; you can type meanwhile."
            self.composer.set_send_allowed(False, reason)
        elif turn is not None and not viewing_turn:
            self.composer.set_send_allowed(
                False,
                "Wait until the reply in the other chat is "
                "finished (the model writes one at a time).",
            )
        else:
            self.composer.set_send_allowed(True)
        can_regenerate = ready and turn is None
        reason = (
            ""
            if can_regenerate
            else ("Wait until the current reply is finished" if turn else "No model is ready yet")
        )
        self.chat_view.set_actions_enabled(can_regenerate, reason, chat_idle=not viewing_turn)
        has_chat = self._current_id is not None
        self.regenerate_action.setEnabled(can_regenerate and has_chat)
        self.stop_action.setEnabled(turn is not None)
        self.export_action.setEnabled(has_chat)
        self.rename_action.setEnabled(has_chat)
        self.delete_action.setEnabled(has_chat)

    # -- model ------------------------------------------------------------------------------

    def load_model(self) -> None:
        """Load the configured model on a pool thread; the window stays usable meanwhile."""
        if self._loading:
            return
        old, self.engine, self.companion = self.engine, None, None
        self._loading = True
        self._reload_pending = False
        if self._load_error and self.banner.text == self._load_error:
            self.banner.dismiss()  # the last failure is being retried
        self._load_error = ""
        self.status.set_loading("Reloading model…" if old is not None else "Loading model…")
        self._update_actions()
        loader, services = self._engine_loader, self.services

        def load() -> Any:
            if old is not None:
                _close_engine(old)  # frees the old model's memory before the new one loads
            engine = loader()
            _ = services.memory  # opened here, never on the GUI thread by make_companion
            return engine

        call_in_background(load, self._on_engine_loaded)

    def reload_model(self) -> None:
        """Load again with the current settings, once the reply being written (if any) is
        saved; the reply is asked to stop. While the model rests for training, the settings
        apply when it wakes."""
        if self._resting:
            return
        if self._turn is not None:
            self._reload_pending = True
            self._turn.stop.request()
            return
        if self._loading:
            self._reload_pending = True
            return
        self.load_model()

    def _on_engine_loaded(self, result: Any) -> None:
        self._loading = False
        if self._close_pending:
            _close_engine(result)
            return
        if self._resting:  # training started while this one was loading: unload it again
            self.engine = None if isinstance(result, WorkFailed) else result
            self._unload_for_rest()
            return
        if self._reload_pending:  # settings changed while this one was loading
            self.engine = None if isinstance(result, WorkFailed) else result
            self.load_model()
            return
        if isinstance(result, WorkFailed):
            self._on_model_load_failed(result.error)
            return
        self.engine = result
        self.companion = self.services.make_companion(result)
        self.status.set_ready(result.info)
        if getattr(result.info, "offload_reason", ""):
            # Said once at load (and kept in the device tooltip): placement never changes
            # silently, but a CPU-only machine is not warned at every start either.
            self.notify(result.info.offload_reason)
        self._update_actions()
        self._refresh_empty_text()
        self.model_ready.emit()
        self._warm_memory()

    def _warm_memory(self) -> None:
        """Load the memory embedder now, while the person types, not at their first message:
        importing sentence-transformers and torch takes ~10 s on a small laptop. After the
        chat model, never before it: torch loaded ahead of a CUDA build of llama.cpp crashed
        its model load."""
        embedder = getattr(self.services._memory, "embedder", None)
        if embedder is None or getattr(embedder, "loaded", True):
            self.memory_warmed.emit()
            return
        call_in_background(embedder.load, self._on_memory_warmed)

    def _on_memory_warmed(self, result: Any) -> None:
        if isinstance(result, WorkFailed):
            # The first recall tries again and reports it through the usual path.
            log.warning("loading the memory model failed: %s", result.error)
        self.memory_warmed.emit()

    def _on_model_load_failed(self, error: Exception) -> None:
        if isinstance(error, GhostDeskError):
            message = str(error)
            log.warning("model did not load: %s", message)
        else:
            log.error("loading the model failed", exc_info=error)
            message = f"Something went wrong while loading the model: {error}"
        self._load_error = message
        self.status.set_failed(message)
        self.banner.show_message(message, "error", ("Choose model…", self.choose_model))
        self._update_actions()
        self._refresh_empty_text()
        self.model_failed.emit(message)

    def choose_model(self) -> None:
        start = self.services.settings.model.path or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a GGUF model", start, "GGUF models (*.gguf);;All files (*)"
        )
        if path:
            self.use_model_file(path)

    def use_model_file(self, path: str) -> None:
        """Save `path` as the model to use and load it in the background."""
        settings = copy.deepcopy(self.services.settings)
        settings.model.path = path
        try:
            self.services.save_settings(settings)
        except GhostDeskError as err:
            self._report_error(err, "saving the chosen model")
            return
        self.reload_model()

    # -- conversations ----------------------------------------------------------------------

    def refresh_chat_list(self) -> None:
        try:
            conversations = self.store.list_conversations()
        except Exception as err:
            self._report_error(err, "listing conversations")
            return
        self.chat_list.set_conversations(conversations, self._current_id)

    def show_conversation(self, conversation_id: int) -> None:
        """Show a conversation's current thread (and the reply streaming into it, if any)."""
        try:
            conversation = self.store.get_conversation(conversation_id)
            thread = self.store.thread(conversation_id)
        except NotFoundError:
            self.refresh_chat_list()
            return
        except Exception as err:
            self._report_error(err, f"opening conversation {conversation_id}")
            return
        self._current_id = conversation_id
        persona = conversation.persona_name or self.services.settings.persona.name
        self.chat_view.show_thread(thread, persona)
        self.feedback.load(m.id for m in thread if m.role == "assistant")
        self._check_abandonment()
        turn = self._turn
        if turn is not None and turn.conversation_id == conversation_id and turn.reply_started:
            bubble = self.chat_view.begin_reply(persona, turn.parent_id)
            bubble.set_dropped_turns(turn.dropped)
            self.chat_view.set_streaming_text(turn.text + "".join(turn.pending))
        if self.chat_list.current_id() != conversation_id:
            self.chat_list.list.blockSignals(True)
            self.chat_list.select(conversation_id)
            self.chat_list.list.blockSignals(False)
        self.setWindowTitle(f"{conversation.title} — GhostDesk")
        self._refresh_empty_text()
        self._update_actions()
        self.conversation_shown.emit(conversation_id)

    def _show_empty(self) -> None:
        self._current_id = None
        self.chat_view.clear()
        self.setWindowTitle("GhostDesk")
        self._refresh_empty_text()
        self._update_actions()

    def _refresh_empty_text(self) -> None:
        name = self.persona_name(self._current_id)
        text = f"Say hello to {name}."
        if self._resting:
            text += f"\n{name} is resting while it learns."
        elif self.status.state == ModelState.LOADING:
            text += "\nThe model is loading; you can start typing."
        elif self.status.state == ModelState.FAILED:
            text += "\nFirst choose a model to talk with (File ▸ Choose model…)."
        self.chat_view.set_empty_text(text)

    def new_chat(self) -> None:
        """Start a conversation; an empty one that is already open is reused."""
        if self._current_id is not None:
            try:
                if self.store.get_conversation(self._current_id).message_count == 0:
                    self.composer.edit.setFocus()
                    return
            except GhostDeskError:
                pass
        try:
            conversation = self.store.create_conversation(
                NEW_CHAT_TITLE, persona_name=self.services.settings.persona.name
            )
        except Exception as err:
            self._report_error(err, "creating a conversation")
            return
        self._current_id = conversation.id
        self.refresh_chat_list()
        self.show_conversation(conversation.id)
        self.composer.edit.setFocus()

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        try:
            self.store.rename_conversation(conversation_id, title)
        except Exception as err:
            self._report_error(err, f"renaming conversation {conversation_id}")
        # Rebuilding the list inside the item editor's commit would delete the item it is
        # still writing to: refresh once control is back in the event loop.
        QTimer.singleShot(0, self._after_rename)

    def _after_rename(self) -> None:
        if self._current_id is not None:
            self._on_conversation_changed(self._current_id)
        else:
            self.refresh_chat_list()

    def delete_conversation(self, conversation_id: int, confirm: bool = True) -> bool:
        """Delete after asking; returns whether it was deleted."""
        if self._turn is not None and self._turn.conversation_id == conversation_id:
            self.banner.show_message(
                "This chat is still being answered. Stop the reply first, then delete the chat.",
                "info",
            )
            return False
        try:
            conversation = self.store.get_conversation(conversation_id)
        except Exception as err:
            self._report_error(err, f"reading conversation {conversation_id}")
            return False
        if confirm:
            answer = QMessageBox.question(
                self,
                "Delete chat",
                f"Delete “{conversation.title}” and all its messages?\nThis cannot be undone.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No,
            )
            if answer != QMessageBox.StandardButton.Yes:
                return False
        try:
            self.store.delete_conversation(conversation_id)
        except Exception as err:
            self._report_error(err, f"deleting conversation {conversation_id}")
            return False
        if conversation_id == self._current_id:
            self._current_id = None
        self.refresh_chat_list()
        if self._current_id is None:
            ids = self.chat_list.ids()
            if ids:
                self.show_conversation(ids[0])
            else:
                self._show_empty()
        return True

    def export_chat(self) -> None:
        if self._current_id is None:
            return
        title = self.store.get_conversation(self._current_id).title
        default = str(Path.home() / f"{_file_stem(title)}.json")
        path, _ = QFileDialog.getSaveFileName(self, "Export chat", default, "JSON (*.json)")
        if path:
            self.export_conversation_to(self._current_id, Path(path))

    def export_conversation_to(self, conversation_id: int, path: Path) -> None:
        """Write the conversation (every version of every message) as JSON, off the GUI
        thread."""
        store = self.store

        def write() -> Path:
            data = store.export_conversation(conversation_id)
            tmp = path.with_name(path.name + ".part")
            tmp.write_text(
                json.dumps(data, ensure_ascii=False, indent=2, default=str), encoding="utf-8"
            )
            tmp.replace(path)
            return path

        call_in_background(write, self._on_export_written)

    def _on_export_written(self, result: Any) -> None:
        if isinstance(result, WorkFailed):
            err = result.error
            if isinstance(err, OSError):
                err = GhostDeskError(
                    f"Could not write the export: {err.strerror or err}.",
                    hint="Choose another folder, or check free disk space.",
                )
            self._report_error(err, "exporting a conversation")
        else:
            self.notify(f"Chat exported to {result}")

    # -- turns ------------------------------------------------------------------------------

    def send_message(self, text: str) -> None:
        """Send `text` in the current conversation (a new one if none is open)."""
        text = text.strip()
        if not text or self._turn is not None or not self.is_model_ready:
            return
        if self._current_id is None:
            self.new_chat()
            if self._current_id is None:
                return
        cid, companion = self._current_id, self.companion
        turn = _Turn(cid, "send", draft=text)
        self.composer.clear()
        self._start_turn(turn, lambda: companion.send(cid, text, should_stop=turn.stop))

    def regenerate(self) -> None:
        """Write another version of the last reply in the current conversation."""
        if self._current_id is None or self._turn is not None or not self.is_model_ready:
            return
        cid, companion = self._current_id, self.companion
        turn = _Turn(cid, "regenerate")
        self._start_turn(turn, lambda: companion.regenerate(cid, should_stop=turn.stop))

    def stop_reply(self) -> None:
        """Ask the reply being written to stop; what it wrote so far is saved."""
        if self._turn is not None:
            self._turn.stop.request()

    def _start_turn(self, turn: _Turn, make: Callable[[], Iterator[Any]]) -> None:
        self._turn = turn
        self._update_actions()
        self.turn_started.emit(turn.conversation_id)
        turn.worker = stream_in_background(make, self._on_turn_event, self._on_turn_finished)

    def _viewing(self, turn: _Turn) -> bool:
        return turn.conversation_id == self._current_id

    def _on_turn_event(self, event: Any) -> None:
        turn = self._turn
        if turn is None:
            return
        if isinstance(event, TokenReceived):
            if turn.first_token_at is None:
                turn.first_token_at = time.perf_counter()
            turn.pending.append(event.text)
            turn.tokens += 1
            if not self._flush_timer.isActive():
                self._flush_timer.start()
        elif isinstance(event, UserMessageSaved):
            turn.user_saved = True
            if self._viewing(turn):
                self.chat_view.add_message(event.message, self.persona_name(turn.conversation_id))
                if event.message.parent_id is not None:
                    # The message was just read for signals about the reply before it.
                    self.feedback.load([event.message.parent_id])
            self._on_conversation_changed(turn.conversation_id)
        elif isinstance(event, ReplyStarted):
            turn.reply_started = True
            turn.parent_id = event.parent_id
            turn.dropped = event.dropped_messages
            if self._viewing(turn):
                bubble = self.chat_view.begin_reply(
                    self.persona_name(turn.conversation_id), event.parent_id
                )
                bubble.set_dropped_turns(event.dropped_messages)
            if event.dropped_messages > 0:
                self.notify(
                    f"This chat is longer than the model's context: the oldest "
                    f"{event.dropped_messages} messages were left out of the prompt."
                )
            self.status.show_live_speed(0, 0.0)
        elif isinstance(event, ReplySaved):
            self._flush_tokens()
            turn.saved = event.message
            if self._viewing(turn):
                self.chat_view.finish_reply(event.message)
            m = event.message
            self.status.show_reply_stats(
                m.completion_tokens,
                m.tokens_per_second,
                m.first_token_seconds,
                m.status == "stopped",
            )
        elif isinstance(event, WorkFailed):
            self._flush_tokens()
            turn.error = event.error
            self._report_error(
                event.error, f"writing a reply in conversation {turn.conversation_id}"
            )
        self.memory.on_turn_event(event, self._viewing(turn))

    def _on_flush_timer_timeout(self) -> None:
        self._flush_tokens()

    def _flush_tokens(self) -> None:
        turn = self._turn
        if turn is None or not turn.pending:
            return
        turn.text += "".join(turn.pending)
        turn.pending.clear()
        if self._viewing(turn):
            self.chat_view.set_streaming_text(turn.text)
        if turn.first_token_at is not None:
            elapsed = time.perf_counter() - turn.first_token_at
            rate = (turn.tokens - 1) / elapsed if elapsed > 0 and turn.tokens > 1 else 0.0
            self.status.show_live_speed(turn.tokens, rate)

    def _on_turn_finished(self) -> None:
        turn = self._turn
        if turn is None:
            return
        self._flush_timer.stop()
        self._flush_tokens()
        self._turn = None
        if self._viewing(turn):
            if turn.saved is None:
                # Failed before the reply was saved: show what the store really holds.
                self.show_conversation(turn.conversation_id)
            if turn.error is not None and not turn.user_saved and not self.composer.text():
                self.composer.set_text(turn.draft)  # nothing was saved: keep what they typed
        self.refresh_chat_list()
        self._update_actions()
        self.turn_finished.emit(turn.conversation_id)
        if self._close_pending:
            self.close()
        elif self._resting and self._rest_done is not None:
            self._unload_for_rest()
        elif self._reload_pending:
            self.load_model()

    def _on_conversation_changed(self, conversation_id: int) -> None:
        """The store may have renamed the chat (first message) and reordered the list."""
        self.refresh_chat_list()
        if conversation_id == self._current_id:
            try:
                title = self.store.get_conversation(conversation_id).title
            except GhostDeskError:
                return
            self.setWindowTitle(f"{title} — GhostDesk")

    # -- versions ---------------------------------------------------------------------------

    def _on_chat_view_version_step_requested(self, message_id: int, delta: int) -> None:
        self.step_version(message_id, delta)

    def step_version(self, message_id: int, delta: int) -> None:
        """Show the previous (-1) or next (+1) version of a reply."""
        turn = self._turn
        if turn is not None and turn.conversation_id == self._current_id:
            return
        try:
            versions = self.store.versions(message_id)
            ids = [v.id for v in versions]
            index = ids.index(message_id) + delta
            if not 0 <= index < len(ids):
                return
            self.store.select_version(ids[index])
        except Exception as err:
            self._report_error(err, f"switching to another version of message {message_id}")
            return
        if self._current_id is not None:
            self.show_conversation(self._current_id)

    # -- settings ---------------------------------------------------------------------------

    def open_settings(self) -> SettingsDialog:
        """Open the settings dialog (window-modal, non-blocking) and return it."""
        if self.settings_dialog is not None and self.settings_dialog.isVisible():
            self.settings_dialog.raise_()
            return self.settings_dialog
        dialog = SettingsDialog(self.services, self, training=self.training)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        dialog.settings_saved.connect(self._on_settings_dialog_settings_saved)
        dialog.destroyed.connect(self._on_settings_dialog_destroyed)
        self.settings_dialog = dialog
        dialog.open()
        return dialog

    def _on_settings_dialog_destroyed(self) -> None:
        self.settings_dialog = None

    # -- learning (ghostdesk/ui/training_session.py) ----------------------------------------

    def open_training(self) -> Any:
        """Settings ▸ Training; returns its pane."""
        return self.open_settings().show_training()

    def chat_gpu_layers(self) -> int:
        """Layers of the chat model on the GPU now (-1: all, 0: none or no model); while it
        loads, what the settings ask for ("auto" may use the GPU)."""
        if self.engine is not None:
            return int(getattr(self.engine.info, "n_gpu_layers", 0) or 0)
        if self._loading:
            wanted = self.services.settings.model.n_gpu_layers
            return -1 if wanted == "auto" else int(wanted)
        return 0

    def rest_model(self, on_rested: Callable[[], None]) -> None:
        """Unload the chat model so that a training run can have the GPU; sending is off
        until wake_model(). A reply being written is stopped (and saved) first."""
        self._resting = True
        self._rest_done = on_rested
        name = self.persona_name()
        self.status.set_loading(f"{name} is resting while it learns")
        self._notice_timer.stop()
        self.banner.show_message(
            f"{name} is resting while it learns: the chat model is unloaded so that the "
            "training can use the GPU. It comes back when the training ends.",
            "info",
        )
        self._update_actions()
        self._refresh_empty_text()
        if self._turn is not None:
            self._turn.stop.request()  # goes on in _on_turn_finished
        elif not self._loading:  # else it goes on in _on_engine_loaded
            self._unload_for_rest()

    def _unload_for_rest(self) -> None:
        engine, self.engine, self.companion = self.engine, None, None
        slot, self.services.adapter_slot = self.services.adapter_slot, None
        self._unloading = True

        def unload() -> None:
            if slot is not None:
                slot.close()
            if engine is not None:
                _close_engine(engine)

        call_in_background(unload, self._on_model_unloaded)

    def _on_model_unloaded(self, result: Any) -> None:
        self._unloading = False
        if isinstance(result, WorkFailed):
            log.error("unloading the model for training failed", exc_info=result.error)
        done, self._rest_done = self._rest_done, None
        if done is not None:
            done()
        if self._wake_after_unload:
            self._wake_after_unload = False
            self.wake_model()

    def wake_model(self) -> None:
        """Load the chat model again after a training run (however the run ended)."""
        if not self._resting:
            return
        if self._unloading:
            self._wake_after_unload = True
            return
        self._resting = False
        self._rest_done = None
        if self.banner.text.startswith(f"{self.persona_name()} is resting"):
            self.banner.dismiss()
        if self._close_pending:
            return
        self.load_model()

    def _on_training_changed(self) -> None:
        text = self.training.status_text()
        self.learning_button.setText(text)
        self.learning_button.setVisible(bool(text))
        if self._close_pending and not self.training.busy and not self.isVisible():
            QTimer.singleShot(0, self.close)  # quitting waited for the run to stop

    def _on_training_notice(self, text: str, kind: str) -> None:
        # Kept until dismissed: a run can end while nobody is looking.
        self._notice_timer.stop()
        action = None if kind == "info" else ("Details…", self.open_training)
        self.banner.show_message(text, kind, action)

    def _on_training_adoption_requested(self, adapter_id: str) -> None:
        self._notice_timer.stop()
        ev = self.training.runner.evaluated
        how = ("measured better than what the chat uses now" if ev is not None and ev.recommended
               else "could not be compared surely with what the chat uses now")
        self._adoption_text = (
            f"{self.persona_name()} learned from your feedback, and the new adapter {how}. "
            "Use it?"
        )
        self.banner.show_message(
            self._adoption_text, "info", ("Use it", lambda: self.training.adopt(adapter_id))
        )

    def _on_training_failed(self, error: Exception) -> None:
        if self.settings_dialog is None:  # else the Training tab shows it
            self._report_error(error, "training or changing the adapter")

    def _on_training_adoption_settled(self) -> None:
        if self._adoption_text and self.banner.text == self._adoption_text:
            self.banner.dismiss()
        self._adoption_text = ""

    def _on_settings_dialog_settings_saved(self, old: Any, new: Any) -> None:
        if old.model != new.model:
            self.notify("Model settings changed: reloading the model in the background…")
            self.reload_model()
        if self._current_id is not None:
            self.show_conversation(self._current_id)
        else:
            self._refresh_empty_text()

    # -- feedback ---------------------------------------------------------------------------

    def edit_text_feedback(self, message_id: int, which: str) -> None:
        """Open the comment ("comment") or better-reply ("better_reply") editor for a reply."""
        from ghostdesk.ui.feedback_text_dialog import TextFeedbackDialog

        bubble = self.chat_view.bubble_for(message_id)
        if bubble is None or bubble.feedback is None:
            return
        state = bubble.feedback.saved_state
        current = None if state is None else getattr(state, which)
        dialog = TextFeedbackDialog(which, current, bubble.text(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        dialog.text_saved.connect(lambda text: self.feedback.set_text(message_id, which, text))
        self.text_feedback_dialog = dialog
        dialog.open()

    def open_feedback_view(self) -> Any:
        """Open (or raise) the Feedback window and return it."""
        from ghostdesk.ui.feedback_view import FeedbackView

        if self.feedback_view is not None and self.feedback_view.isVisible():
            self.feedback_view.raise_()
            self.feedback_view.refresh()
            return self.feedback_view
        view = FeedbackView(self.services.ledger, self.feedback, self)
        view.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        view.reply_activated.connect(self.open_reply)
        view.destroyed.connect(self._on_feedback_view_destroyed)
        self.feedback_view = view
        view.show()
        return view

    def _on_feedback_view_destroyed(self) -> None:
        self.feedback_view = None

    def open_reply(self, message_id: int, conversation_id: int) -> None:
        """Show a reply in its chat, switching to its version if another one is shown."""
        if self._turn is not None and self._turn.conversation_id == conversation_id:
            self.show_conversation(conversation_id)
            return
        try:
            thread_ids = {m.id for m in self.store.thread(conversation_id)}
            if message_id not in thread_ids:
                self.store.select_version(message_id)
        except Exception as err:
            self._report_error(err, f"opening reply {message_id}")
            return
        self.show_conversation(conversation_id)
        self.refresh_chat_list()
        bubble = self.chat_view.bubble_for(message_id)
        if bubble is not None:
            self.chat_view.ensureWidgetVisible(bubble)

    def _check_abandonment(self) -> None:
        self.feedback.check_abandonment(self.services.abandon_after_s(), dict(self._typed_at))

    def _on_abandon_timer_timeout(self) -> None:
        self._check_abandonment()

    def _on_composer_text_changed(self) -> None:
        # Typing is activity: a reply the user is answering has not been abandoned.
        if self._current_id is not None:
            self._typed_at[self._current_id] = datetime.now(UTC)

    # -- messages to the user ---------------------------------------------------------------

    def notify(self, text: str) -> None:
        """A short informational notice that goes away by itself."""
        self.banner.show_message(text, "info")
        self._notice_timer.start()

    def _on_notice_timer_timeout(self) -> None:
        if self.banner.kind == "info":
            self.banner.dismiss()

    def _report_error(self, err: BaseException, context: str) -> None:
        self._notice_timer.stop()
        if isinstance(err, GhostDeskError):
            log.warning("%s: %s", context, err)
            self.banner.show_message(str(err), "error")
        else:
            log.error("error while %s", context, exc_info=err)
            self.banner.show_message(f"Something went wrong: {err}", "error")

    # -- slots ------------------------------------------------------------------------------

    def _on_chat_list_conversation_selected(self, conversation_id: int) -> None:
        if conversation_id != self._current_id:
            self.show_conversation(conversation_id)

    def _on_chat_list_rename_requested(self, conversation_id: int, title: str) -> None:
        self.rename_conversation(conversation_id, title)

    def _on_chat_list_delete_requested(self, conversation_id: int) -> None:
        self.delete_conversation(conversation_id)

    def _on_rename_triggered(self) -> None:
        if self._current_id is not None:
            self.chat_list.start_rename(self._current_id)

    def _on_delete_triggered(self) -> None:
        if self._current_id is not None:
            self.delete_conversation(self._current_id)

    # -- closing ----------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        if self.training.busy:
            if not self._close_pending and not self._confirm_quit_while_learning():
                event.ignore()
                return
            # The run stops after its current step (with a checkpoint); then the window
            # closes (_on_training_changed).
            self._close_pending = True
            self.training.stop()
            if self._turn is not None:
                self._turn.stop.request()
            self.hide()
            event.ignore()
            return
        if self._turn is not None:
            # Let the reply stop and be saved first; the window closes when it is.
            self._close_pending = True
            self._turn.stop.request()
            self.hide()
            event.ignore()
            return
        self._close_pending = True
        super().closeEvent(event)

    def open_setup_assistant(self) -> Any:
        """The welcome wizard again: hardware, a suitable model, the persona."""
        from ghostdesk.ui.first_run import open_setup_wizard

        return open_setup_wizard(self.services, self,
                                 on_applied=self._on_settings_dialog_settings_saved)

    def _confirm_quit_while_learning(self) -> bool:
        step = self.training.runner.last_step
        where = f" (step {step.step} of {step.max_steps})" if step is not None else ""
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "GhostDesk is learning",
            f"A training run is in progress{where}. Quit anyway?\n\nThe run stops after its "
            "current step and saves a checkpoint, so you can resume it later from "
            "Settings ▸ Training.",
            parent=self,
        )
        quit_button = box.addButton("Stop and quit", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Keep learning", QMessageBox.ButtonRole.RejectRole)
        box.exec()
        return box.clickedButton() is quit_button

    def shutdown(self) -> None:
        """Finish saving feedback and free the model. Call after the event loop has ended."""
        self.training.shutdown()
        self._abandon_timer.stop()
        self.feedback.shutdown()
        self.memory.shutdown()
        engine, self.engine, self.companion = self.engine, None, None
        if engine is not None:
            _close_engine(engine)


def _close_engine(engine: Any) -> None:
    close = getattr(engine, "close", None)
    if callable(close):
        try:
            close()
        except Exception:
            log.exception("closing the model failed")


def _file_stem(title: str) -> str:
    stem = re.sub(r"[^\w\- ]+", "", title).strip().replace(" ", "-")
    return stem[:60] or "chat"
