"""Context fitting: oldest turns go first, whole exchanges at a time, never a crash."""

import pytest

from ghostdesk.core.context_window import ELISION, fit_to_context
from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.llm.types import ChatMessage
from tests.fakes import ScriptedEngine

ENGINE = ScriptedEngine()
SYSTEM = ChatMessage("system", "be kind")


def turns(n: int, words: int = 10) -> list[ChatMessage]:
    out = []
    for i in range(n):
        out.append(ChatMessage("user", f"question{i} " + "w " * words))
        out.append(ChatMessage("assistant", f"answer{i} " + "w " * words))
    return out


def fit(history, n_ctx, reply_budget=10):
    return fit_to_context(SYSTEM, history, render=ENGINE.render,
                          count_tokens=ENGINE.count_tokens, n_ctx=n_ctx,
                          reply_budget=reply_budget)


def test_everything_fits_keeps_everything():
    history = turns(3) + [ChatMessage("user", "now?")]
    fitted = fit(history, n_ctx=10_000)
    assert fitted.dropped_turns == 0
    assert fitted.messages == (SYSTEM, *history)
    assert fitted.prompt_tokens == ENGINE.count_tokens(fitted.prompt.text)


def test_oldest_exchanges_are_dropped_whole_and_system_stays():
    history = turns(20) + [ChatMessage("user", "what did I ask first?")]
    fitted = fit(history, n_ctx=120)
    assert fitted.dropped_turns > 0
    assert fitted.dropped_turns % 2 == 0, "a user/assistant pair is never split"
    kept = fitted.messages
    assert kept[0] == SYSTEM
    assert kept[1].role == "user"
    assert kept[-1] == history[-1]
    assert fitted.prompt_tokens <= 120 - 10
    # It keeps as much as fits: one more exchange would overflow.
    more = fit_to_context(SYSTEM, history[fitted.dropped_turns - 2:], render=ENGINE.render,
                          count_tokens=ENGINE.count_tokens, n_ctx=10_000, reply_budget=10)
    assert more.prompt_tokens > 120 - 10


def test_a_single_huge_message_is_cut_in_the_middle():
    huge = "start " + "filler " * 2000 + "end"
    fitted = fit([ChatMessage("user", huge)], n_ctx=300, reply_budget=50)
    assert fitted.truncated_last_message
    text = fitted.messages[-1].content
    assert text.startswith("start") and text.endswith("end") and ELISION in text
    assert fitted.prompt_tokens <= 300 - 50


def test_reply_budget_never_takes_more_than_half_the_window():
    fitted = fit([ChatMessage("user", "hi")], n_ctx=256, reply_budget=10_000)
    assert fitted.dropped_turns == 0


def test_impossible_fit_is_a_clear_error():
    with pytest.raises(GhostDeskError, match="context window"):
        fit_to_context(ChatMessage("system", "s " * 500), [ChatMessage("user", "hi")],
                       render=ENGINE.render, count_tokens=ENGINE.count_tokens, n_ctx=256,
                       reply_budget=10)
