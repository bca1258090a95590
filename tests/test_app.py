"""The composition root: a loaded model gets the active adapter, and replies say which one
produced them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ghostdesk.core.companion import ReplySaved
from ghostdesk.core.llm.fingerprint import model_sha256
from ghostdesk.core.training.registry import GGUF_NAME, AdapterRecord
from ghostdesk.services import AppServices, build_services
from tests.core.llm.test_adapters import adapters  # noqa: F401
from tests.core.training.conftest import TinyLlama, tiny_llama  # noqa: F401


@pytest.fixture
def services(tiny_llama: TinyLlama) -> Iterator[AppServices]:  # noqa: F811
    services = build_services(model_path=str(tiny_llama.gguf))
    services.settings.model.n_ctx = 256
    services.settings.model.n_threads = 1
    services.settings.model.n_gpu_layers = 0
    services.settings.memory.enabled = False
    services.settings.persona.system_prompt = "Be kind."  # the tiny model's context is small
    services.settings.sampling.max_tokens = 8
    yield services
    services.close()


def _register(services: AppServices, adapter_id: str, gguf: Path, base_sha256: str) -> None:
    record = AdapterRecord(id=adapter_id, method="kto", created="2026-11-25T10:00:00+0000",
                           base_sha256=base_sha256, architecture="llama")
    services.adapters.write_adapter(record,
                                    lambda folder: shutil.copy(gguf, folder / GGUF_NAME))
    services.adapters.set_active(adapter_id)


def _reply_settings(services: AppServices, engine: object) -> dict:
    companion = services.make_companion(engine)
    cid = services.store.create_conversation().id
    saved = [e for e in companion.send(cid, "hello there") if isinstance(e, ReplySaved)]
    return saved[-1].message.generation_settings


@pytest.mark.model
def test_loading_the_model_applies_the_active_adapter_and_replies_record_it(
        services: AppServices, tiny_llama: TinyLlama,  # noqa: F811
        adapters: dict[str, Path]) -> None:  # noqa: F811
    _register(services, "one", adapters["one"], model_sha256(tiny_llama.gguf))
    engine = services.load_engine()
    try:
        assert services.adapter_slot.active.id == "one"
        assert _reply_settings(services, engine)["adapter"] == {"id": "one", "scale": 1.0}
        services.adapter_slot.deactivate()
        assert _reply_settings(services, engine)["adapter"] is None
    finally:
        services.adapter_slot.close()
        engine.close()


@pytest.mark.model
def test_an_adapter_for_another_model_file_is_not_applied_and_the_user_is_told(
        services: AppServices, adapters: dict[str, Path]) -> None:  # noqa: F811
    _register(services, "other", adapters["other_base"], "00" * 32)
    engine = services.load_engine()
    try:
        assert services.adapter_slot.active is None
        assert any("other was not applied" in n and "Some other model" in n
                   for n in services.notices)
        # Still the active one: loading the model it was made for brings it back.
        assert services.adapters.active_id == "other"
    finally:
        engine.close()
