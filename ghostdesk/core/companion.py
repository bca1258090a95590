"""One conversational turn: build the prompt from the thread, stream the reply, persist it.

`Companion.send` and `Companion.regenerate` are generators of TurnEvents. The CLI prints them,
the GUI runs them on a worker thread and forwards them as signals, and the benchmarks time
them, so every front end goes through exactly this path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ghostdesk.core.context_window import FittedPrompt, fit_to_context
from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.llm.types import ChatEngine, ChatMessage, GenerationStats, SamplingParams
from ghostdesk.core.settings import Settings
from ghostdesk.core.store.conversations import ConversationStore
from ghostdesk.core.store.records import MessageRecord

if TYPE_CHECKING:
    from ghostdesk.core.memory import MemoryService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UserMessageSaved:
    """The user's message is committed to disk."""

    message: MessageRecord


@dataclass(frozen=True)
class ReplyStarted:
    parent_id: int
    dropped_messages: int
    """Earlier messages left out of the prompt to fit the context window."""
    truncated_last_message: bool


@dataclass(frozen=True)
class MemoriesRecalled:
    """The crystals that resonated with this turn and went into the prompt."""

    recall: Any
    """A ghostdesk.core.memory RecallResult (crystals with scores, the prompt block)."""
    problem: str = ""
    """Set when memory could not be consulted; the reply goes on without it."""


@dataclass(frozen=True)
class TokenReceived:
    text: str


@dataclass(frozen=True)
class ReplySaved:
    """The reply (complete or stopped) is committed to disk."""

    message: MessageRecord
    stats: GenerationStats


@dataclass(frozen=True)
class MemoriesCrystallized:
    """After the reply: the recent exchange was compressed into memory crystals."""

    result: Any
    """A ghostdesk.core.memory Crystallization (facts, what was added or merged)."""


TurnEvent = (UserMessageSaved | MemoriesRecalled | ReplyStarted | TokenReceived | ReplySaved
             | MemoriesCrystallized)
StopCheck = Callable[[], bool]
UserMessageHook = Callable[[MessageRecord], None]


class Companion:
    """Talks with the user through one engine and one conversation store."""

    def __init__(
        self,
        store: ConversationStore,
        engine: ChatEngine,
        settings: Callable[[], Settings],
        on_user_message: UserMessageHook | None = None,
        memory: MemoryService | None = None,
        active_adapter: Callable[[], Any] | None = None,
    ) -> None:
        self.store = store
        self.engine = engine
        # Which LoRA adapter is applied to the engine now (an ActiveAdapter or None): every
        # reply records it, so each reply says what produced it.
        self._active_adapter = active_adapter or (lambda: None)
        self._settings = settings
        self.memory = memory
        # --- feedback hook ---
        # Called with each saved user message, before the reply is written (on the turn's
        # thread); it reads implicit feedback on the reply before (core/feedback/observer.py)
        # and must not raise.
        self._on_user_message = on_user_message

    def send(
        self, conversation_id: int, text: str, should_stop: StopCheck | None = None
    ) -> Iterator[TurnEvent]:
        """Save the user's message, then stream and save the companion's reply to it."""
        text = text.strip()
        if not text:
            raise GhostDeskError("There is nothing to send: the message is empty.")
        user = self.store.add_message(conversation_id, "user", text)
        if self._on_user_message is not None:  # feedback hook
            self._on_user_message(user)
        yield UserMessageSaved(user)
        yield from self._reply(conversation_id, user, should_stop)

    def regenerate(
        self, conversation_id: int, should_stop: StopCheck | None = None
    ) -> Iterator[TurnEvent]:
        """Write a new version of the last reply. Earlier versions stay, as siblings."""
        thread = self.store.thread(conversation_id)
        if not thread:
            raise GhostDeskError("This chat has no message to reply to yet.")
        last = thread[-1]
        if last.role == "assistant":
            if last.parent_id is None:
                raise GhostDeskError("This reply has no message before it to answer.")
            user = self.store.get_message(last.parent_id)
        else:
            # The last reply failed or was never written: answer the last user message.
            user = last
        yield from self._reply(conversation_id, user, should_stop)


    def build_prompt(self, conversation_id: int, upto: MessageRecord,
                     memory_block: str = "") -> FittedPrompt:
        """The exact prompt the engine sees to answer `upto` (the newest kept message), with
        recalled memories (`memory_block`) after the persona's system prompt."""
        settings = self._settings()
        thread = self.store.thread(conversation_id)
        ids = [m.id for m in thread]
        # Answering a message on another branch (not on screen): rebuild its own path.
        thread = thread[: ids.index(upto.id) + 1] if upto.id in ids else self._path_to(upto)
        history = [ChatMessage(m.role, m.content) for m in thread if m.role != "system"]  # type: ignore[arg-type]
        system_text = settings.persona.rendered_system_prompt().strip()
        if memory_block:
            system_text = f"{system_text}\n\n{memory_block.strip()}".strip()
        system = ChatMessage("system", system_text) if system_text else None
        return fit_to_context(
            system,
            history,
            render=self.engine.render,
            count_tokens=self.engine.count_tokens,
            n_ctx=self.engine.info.n_ctx or settings.model.n_ctx,
            reply_budget=settings.sampling.max_tokens,
        )

    def _path_to(self, message: MessageRecord) -> list[MessageRecord]:
        path = [message]
        while path[-1].parent_id is not None:
            path.append(self.store.get_message(path[-1].parent_id))
        return path[::-1]

    def _reply(
        self, conversation_id: int, parent: MessageRecord, should_stop: StopCheck | None
    ) -> Iterator[TurnEvent]:
        settings = self._settings()
        recall = None
        if self.memory is not None:
            recall, problem = self._recall(conversation_id, parent)
            if problem or (recall is not None and recall.crystals):
                yield MemoriesRecalled(recall, problem)
        block = recall.prompt_block if recall is not None else ""
        fitted = self.build_prompt(conversation_id, parent, block)
        yield ReplyStarted(parent.id, fitted.dropped_turns, fitted.truncated_last_message)
        params = SamplingParams(**vars(settings.sampling))
        stats = GenerationStats()
        pieces: list[str] = []
        started = time.perf_counter()
        try:
            for piece in self.engine.stream(fitted.prompt, params, stats, should_stop):
                pieces.append(piece)
                yield TokenReceived(piece)
        except GeneratorExit:
            # The consumer walked away mid-reply (window closed, worker quit): keep what was
            # generated, exactly like Stop.
            stats.stopped = True
            stats.finish_reason = "stopped"
            saved = self._save_reply(conversation_id, parent, pieces, stats, fitted, params,
                                     started)
            self._remember(conversation_id, parent, saved, recall, crystallize=False)
            raise
        saved = self._save_reply(conversation_id, parent, pieces, stats, fitted, params, started)
        yield ReplySaved(saved, stats)
        # Memory work follows the saved reply, so it never delays what the user sees.
        due = self._remember(conversation_id, parent, saved, recall, crystallize=True)
        if due and self.memory is not None:
            # Still on the turn's thread and in the model's lane: the next turn waits for it.
            try:
                yield MemoriesCrystallized(self.memory.crystallize(conversation_id, self.engine))
            except GhostDeskError as err:
                log.warning("crystallization skipped: %s", err.message)

    def _recall(self, conversation_id: int, parent: MessageRecord) -> tuple[Any, str]:
        assert self.memory is not None
        try:
            return self.memory.recall_for(parent.content, conversation_id,
                                          count_tokens=self.engine.count_tokens), ""
        except GhostDeskError as err:
            # Memory is a help, not a gate: the companion still answers without it.
            log.warning("recall failed: %s", err.message)
            return None, str(err)

    def _remember(self, conversation_id: int, parent: MessageRecord, saved: MessageRecord,
                  recall: Any, *, crystallize: bool) -> bool:
        """Provenance of the reply and the state update; True when crystallizing is due."""
        if self.memory is None:
            return False
        try:
            if recall is not None and recall.crystals:
                self.memory.record_provenance(saved.id, recall)
            if not saved.content:
                return False
            turn = self.memory.remember_turn(conversation_id, parent.content, saved.content)
            return crystallize and turn.crystallize_due
        except GhostDeskError as err:
            log.warning("memory update skipped: %s", err.message)
            return False

    def _save_reply(
        self,
        conversation_id: int,
        parent: MessageRecord,
        pieces: list[str],
        stats: GenerationStats,
        fitted: FittedPrompt,
        params: SamplingParams,
        started: float,
    ) -> MessageRecord:
        if not stats.seconds:
            stats.seconds = time.perf_counter() - started
        info = self.engine.info
        return self.store.add_message(
            conversation_id,
            "assistant",
            "".join(pieces).strip(),
            parent_id=parent.id,
            status="stopped" if stats.stopped else "complete",
            model_name=info.model_name,
            generation_settings={
                "sampling": params.to_dict(),
                "n_ctx": info.n_ctx,
                "n_gpu_layers": info.n_gpu_layers,
                "chat_format": info.chat_format,
                "finish_reason": stats.finish_reason,
                "adapter": _adapter_record(self._active_adapter()),
                # The exact system text (persona + recalled memories): training rebuilds the
                # chat-time prompt from it byte for byte.
                "system_prompt": fitted.messages[0].content
                if fitted.messages and fitted.messages[0].role == "system" else "",
            },
            prompt_tokens=stats.prompt_tokens or fitted.prompt_tokens,
            completion_tokens=stats.completion_tokens,
            generation_seconds=stats.seconds,
            tokens_per_second=stats.tokens_per_second,
            first_token_seconds=stats.first_token_seconds,
            dropped_turns=fitted.dropped_turns,
        )


def _adapter_record(active: Any) -> dict[str, Any] | None:
    """The adapter a reply was produced with, as stored in its generation settings."""
    if active is None:
        return None
    return {"id": active.id, "scale": active.scale}
