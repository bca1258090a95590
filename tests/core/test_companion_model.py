"""The chat path end to end on the real bundled Gemma 3 270M: stream, persist, stop,
regenerate, reopen."""

import pytest

from ghostdesk.core.companion import ReplySaved, TokenReceived
from ghostdesk.core.llm.engine import LlamaEngine
from ghostdesk.core.llm.gpu_probe import GpuStatus
from ghostdesk.services import build_services

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from ghostdesk.core.settings import ModelSettings

    eng = LlamaEngine.load(ModelSettings(n_ctx=1024),
                           cache_dir=tmp_path_factory.mktemp("cache"), gpu=GpuStatus.cpu_only())
    yield eng
    eng.close()


@pytest.fixture
def services():
    services = build_services()
    services.settings.sampling.max_tokens = 24
    services.settings.persona.name = "Ghost"
    services.settings.persona.system_prompt = "You are {name}, a kind friend."
    yield services
    services.close()


def test_the_prompt_is_gemma_turns_byte_for_byte(services, engine):
    companion = services.make_companion(engine)
    conv = services.store.create_conversation()
    store = services.store
    first = store.add_message(conv.id, "user", "Hi there")
    store.add_message(conv.id, "assistant", "Hello! How are you?")
    second = store.add_message(conv.id, "user", "Great, thanks.")
    assert first.id != second.id
    fitted = companion.build_prompt(conv.id, second)
    assert fitted.prompt.text == (
        "<bos><start_of_turn>user\nYou are Ghost, a kind friend.\n\nHi there<end_of_turn>\n"
        "<start_of_turn>model\nHello! How are you?<end_of_turn>\n"
        "<start_of_turn>user\nGreat, thanks.<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    tokens = engine.tokenize(fitted.prompt.text)
    assert tokens.count(2) == 1 and tokens[0] == 2, "exactly one <bos>, at the start"


def test_a_streamed_turn_is_saved_and_survives_a_restart(services, engine):
    conv = services.store.create_conversation()
    events = list(services.make_companion(engine).send(conv.id, "Tell me about the sea."))
    streamed = "".join(e.text for e in events if isinstance(e, TokenReceived))
    saved = events[-1]
    assert isinstance(saved, ReplySaved)
    assert saved.message.content == streamed.strip() and streamed.strip()
    assert saved.message.model_name == "Gemma 3 270m"
    assert 0 < saved.message.completion_tokens <= 24
    services.close()

    reopened = build_services()
    try:
        thread = reopened.store.thread(conv.id)
        assert [m.role for m in thread] == ["user", "assistant"]
        assert thread[1].content == streamed.strip()
        assert thread[1].tokens_per_second > 0
    finally:
        reopened.close()


def test_stop_mid_reply_keeps_the_partial_text(services, engine):
    services.settings.sampling.max_tokens = 64
    conv = services.store.create_conversation()
    pieces = []
    for event in services.make_companion(engine).send(
            conv.id, "Describe a forest in detail.", should_stop=lambda: len(pieces) >= 3):
        if isinstance(event, TokenReceived):
            pieces.append(event.text)
    reply = services.store.thread(conv.id)[-1]
    assert reply.status == "stopped"
    assert reply.content == "".join(pieces).strip()
    assert len(pieces) == 3


def test_regenerate_keeps_both_versions(services, engine):
    companion = services.make_companion(engine)
    conv = services.store.create_conversation()
    first = list(companion.send(conv.id, "What is your favourite colour?"))[-1].message
    second = list(companion.regenerate(conv.id))[-1].message
    assert second.parent_id == first.parent_id
    versions = services.store.versions(second.id)
    assert [v.id for v in versions] == [first.id, second.id]
    assert services.store.thread(conv.id)[-1].id == second.id
