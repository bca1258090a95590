"""The llama.cpp engine: streaming, stopping, the one-lane lock, and load failures."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ghostdesk.core.errors import ModelFileError, ModelLoadError
from ghostdesk.core.llm import engine as engine_mod
from ghostdesk.core.llm.engine import LlamaEngine, _LlamaFailure, _seed
from ghostdesk.core.llm.gguf_info import read_model_info
from ghostdesk.core.llm.gpu_probe import GpuDevice, GpuStatus
from ghostdesk.core.llm.types import (
    ChatEngineInfo,
    ChatMessage,
    GenerationStats,
    SamplingParams,
)
from ghostdesk.core.settings import ModelSettings

GIB = 1024**3


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaEngine]:
    eng = LlamaEngine.load(ModelSettings(n_ctx=1024), cache_dir=tmp_path_factory.mktemp("c"),
                           gpu=GpuStatus.cpu_only())
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def prompt(engine: LlamaEngine):
    return engine.render([ChatMessage("system", "You are Ghost, a friendly companion."),
                          ChatMessage("user", "Tell me about your favourite season.")])


def run(engine: LlamaEngine, prompt, params: SamplingParams, **kw: Any,
        ) -> tuple[list[str], GenerationStats]:
    stats = GenerationStats()
    return list(engine.stream(prompt, params, stats, **kw)), stats


@pytest.mark.model
def test_loaded_info(engine: LlamaEngine) -> None:
    info = engine.info
    assert info.model_name == "Gemma 3 270m"
    assert info.architecture == "gemma3"
    assert (info.n_ctx, info.n_layers, info.n_gpu_layers) == (1024, 18, 0)
    assert info.device_summary == "CPU"
    assert info.offload_reason == "This llama.cpp build has no GPU support; running on CPU."
    assert info.chat_format == "gemma"
    assert info.extra["n_threads"] >= 1
    assert engine.model_info.summary().startswith("Gemma 3 270m")


@pytest.mark.model
def test_stream_yields_text_and_stats(engine: LlamaEngine, prompt) -> None:
    pieces, stats = run(engine, prompt, SamplingParams.greedy(max_tokens=8))
    assert pieces and all(isinstance(p, str) and p for p in pieces)
    assert stats.prompt_tokens == engine.count_tokens(prompt.text)
    assert stats.finish_reason in ("length", "stop")
    if stats.finish_reason == "length":
        assert stats.completion_tokens == 8
    assert 0 < stats.completion_tokens <= 8
    assert stats.first_token_seconds is not None
    assert stats.seconds >= stats.first_token_seconds > 0
    assert not stats.stopped


@pytest.mark.model
def test_greedy_is_deterministic(engine: LlamaEngine, prompt) -> None:
    first, _ = run(engine, prompt, SamplingParams.greedy(max_tokens=10))
    second, _ = run(engine, prompt, SamplingParams.greedy(max_tokens=10))
    assert "".join(first) == "".join(second)


@pytest.mark.model
def test_stop_string_ends_the_reply(engine: LlamaEngine, prompt) -> None:
    pieces, _ = run(engine, prompt, SamplingParams.greedy(max_tokens=12))
    full = "".join(pieces)
    stop = next(p for p in pieces[2:] if p.strip())
    cut = full.index(stop)
    out, stats = run(engine, replace(prompt, stop=(stop,)), SamplingParams.greedy(12))
    assert "".join(out) == full[:cut]
    assert stats.finish_reason == "stop"
    # Counted: the tokens shown, not the one holding the stop string.
    shown, length = 0, 0
    for p in pieces:
        if length + len(p) > cut:
            break
        length += len(p)
        shown += 1
    assert stats.completion_tokens == shown


@pytest.mark.model
def test_should_stop_after_three_pieces(engine: LlamaEngine, prompt) -> None:
    seen: list[str] = []
    stats = GenerationStats()
    for piece in engine.stream(prompt, SamplingParams.greedy(max_tokens=40), stats,
                               should_stop=lambda: len(seen) >= 3):
        seen.append(piece)
    assert len(seen) == 3
    assert stats.stopped and stats.finish_reason == "stopped"
    assert stats.completion_tokens >= 3


@pytest.mark.model
def test_abandoned_stream_frees_the_lane(engine: LlamaEngine, prompt) -> None:
    stats = GenerationStats()
    it = engine.stream(prompt, SamplingParams.greedy(max_tokens=40), stats)
    next(it)
    it.close()
    assert stats.stopped and stats.finish_reason == "stopped"
    done: list[int] = []
    t = threading.Thread(target=lambda: done.append(engine.count_tokens("hello")))
    t.start()
    t.join(60)
    assert done and done[0] >= 1


@pytest.mark.model
def test_two_threads_are_served_one_after_the_other(engine: LlamaEngine, prompt) -> None:
    expected, _ = run(engine, prompt, SamplingParams.greedy(max_tokens=6))
    order: list[str] = []
    results: dict[str, str] = {}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            out = []
            for piece in engine.stream(prompt, SamplingParams.greedy(max_tokens=6),
                                       GenerationStats()):
                order.append(name)
                out.append(piece)
            results[name] = "".join(out)
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(n,)) for n in "AB"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert results == {"A": "".join(expected), "B": "".join(expected)}
    # One lane: all of one reply's pieces come before any of the other's.
    first = order[0]
    switch = order.index("B" if first == "A" else "A")
    assert set(order[:switch]) == {first} and first not in order[switch:]


@pytest.mark.model
def test_count_tokens(engine: LlamaEngine) -> None:
    assert engine.count_tokens("<start_of_turn>") == 1
    assert engine.count_tokens("<end_of_turn>") == 1
    assert engine.count_tokens("") == 0
    assert engine.count_tokens("Hello there, friend!") >= 3
    assert engine.tokenize("<bos>") == [engine.model_info.bos_token_id]


@pytest.mark.model
def test_counting_tokens_between_pieces_of_own_stream(engine: LlamaEngine, prompt) -> None:
    counts = []
    for piece in engine.stream(prompt, SamplingParams.greedy(max_tokens=3), GenerationStats()):
        counts.append(engine.count_tokens(piece))  # must not wait for its own lane
    assert counts


@pytest.mark.model
def test_prompt_longer_than_the_context(engine: LlamaEngine) -> None:
    huge = engine.render([ChatMessage("user", "word " * 2000)])
    stats = GenerationStats()
    with pytest.raises(ModelLoadError, match="does not fit in the model's 1024-token context"):
        list(engine.stream(huge, SamplingParams.greedy(4), stats))
    assert stats.finish_reason == "error"


@pytest.mark.model
def test_random_seed_differs_per_reply(engine: LlamaEngine, prompt) -> None:
    params = SamplingParams(temperature=1.5, top_k=0, top_p=1.0, min_p=0.0, max_tokens=12,
                            seed=-1)
    replies = {"".join(run(engine, prompt, params)[0]) for _ in range(3)}
    assert len(replies) > 1


@pytest.mark.model
def test_fixed_seed_repeats(engine: LlamaEngine, prompt) -> None:
    params = SamplingParams(temperature=1.0, max_tokens=8, seed=1234)
    assert run(engine, prompt, params)[0] == run(engine, prompt, params)[0]


def test_seed_choice() -> None:
    assert _seed(7) == 7
    assert len({_seed(-1) for _ in range(20)}) > 1


# --- loading without running llama.cpp -----------------------------------------------------

class FakeLlama:
    def __init__(self, **kw: Any) -> None:
        self.kw = kw
        self.closed = False

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        return list(range(len(text.split())))

    def close(self) -> None:
        self.closed = True


def fake_new_llama(fail_on_gpu: bool, calls: list[int]):
    def make(path: Path, n_ctx: int, n_gpu_layers: int, n_threads: int, n_batch: int):
        calls.append(n_gpu_layers)
        if fail_on_gpu and n_gpu_layers > 0:
            raise _LlamaFailure(ValueError("Failed to create llama_context"), [
                "ggml_backend_cuda_buffer_type_alloc_buffer: allocating 900.00 MiB on device "
                "0: cudaMalloc failed: out of memory"])
        return FakeLlama(n_ctx=n_ctx, n_gpu_layers=n_gpu_layers, n_threads=n_threads)
    return make


BIG_GPU = GpuStatus(True, [GpuDevice("Fake GPU", 8 * GIB, 8 * GIB)])


def test_auto_falls_back_to_cpu_when_the_gpu_load_fails(
        model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(engine_mod, "_new_llama", fake_new_llama(True, calls))
    eng = LlamaEngine.load(ModelSettings(path=str(model_path), n_ctx=2048), cache_dir=tmp_path,
                           gpu=BIG_GPU, probe=False)
    assert calls == [19, 0]
    assert eng.info.n_gpu_layers == 0 and eng.info.device_summary == "CPU"
    assert eng.plan is not None and eng.plan.fallback_to_cpu
    assert eng.info.offload_reason.startswith("Loading with 19 layers on the GPU failed")


def test_auto_uses_the_gpu_when_it_fits(model_path: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(engine_mod, "_new_llama", fake_new_llama(False, calls))
    eng = LlamaEngine.load(ModelSettings(path=str(model_path), n_ctx=999_999, n_threads=3),
                           cache_dir=tmp_path, gpu=BIG_GPU, probe=False)
    assert calls == [19]
    assert eng.info.device_summary == "GPU: 19/19 layers (Fake GPU)"
    assert eng.info.n_ctx == 32768  # capped at the trained context
    assert eng._llm.kw["n_threads"] == 3


def test_explicit_gpu_layers_that_do_not_fit(model_path: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_mod, "_new_llama", fake_new_llama(True, []))
    with pytest.raises(ModelLoadError) as err:
        LlamaEngine.load(ModelSettings(path=str(model_path), n_gpu_layers=5),
                         cache_dir=tmp_path, gpu=BIG_GPU, probe=False)
    assert err.value.message == ("Not enough memory to load Gemma 3 270m with 5 layers on "
                                 "the GPU; lower GPU layers or the context size.")
    assert "cudaMalloc failed" in (err.value.hint or "")


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="Model file not found"):
        LlamaEngine.load(ModelSettings(path=str(tmp_path / "gone.gguf")), cache_dir=tmp_path)


def test_file_llama_cpp_rejects_after_the_probe(tiny_gguf, tmp_path: Path) -> None:
    # The vocab-only check passes, the full load finds required hyperparameters missing.
    path = tiny_gguf("llama")
    with pytest.raises(ModelFileError) as err:
        LlamaEngine.load(ModelSettings(path=str(path), n_ctx=256), cache_dir=tmp_path,
                         gpu=GpuStatus.cpu_only())
    assert err.value.message.startswith("llama.cpp could not read tiny.gguf:")
    assert "key not found" in err.value.message


def test_closed_engine(model_path: Path) -> None:
    fake = FakeLlama()
    eng = LlamaEngine(fake, ChatEngineInfo("fake", "", n_ctx=64),
                      read_model_info(model_path))
    prompt = eng.render([ChatMessage("user", "hi")])
    assert eng.count_tokens("a b c") == 3
    eng.close()
    assert fake.closed and eng.closed
    with pytest.raises(ModelLoadError, match="unloaded"):
        eng.count_tokens("a")
    with pytest.raises(ModelLoadError, match="unloaded"):
        list(eng.stream(prompt, SamplingParams.greedy(4), GenerationStats()))
    eng.close()  # twice is fine


def test_the_reply_ends_where_the_base_model_opens_the_next_turn(engine: LlamaEngine) -> None:
    # Greedy, the bundled base model answers "Tell me a joke." by echoing it and then opening
    # a new turn (" mendatang" + "user\n"): the reply must end there, one turn only.
    prompt = engine.render([ChatMessage("user", "Tell me a joke.")])
    stats = GenerationStats()
    text = "".join(engine.stream(prompt, SamplingParams.greedy(60), stats))
    assert stats.finish_reason == "stop"
    assert "mendatang" not in text and "user\n" not in text
    assert stats.completion_tokens < 60


def test_llama_cpp_is_loaded_before_the_model_file_is_read(
        model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # With a CUDA build of llama.cpp, numpy (pulled in while reading the model file) loaded
    # before llama_cpp crashed the process at the first GPU load; llama_cpp must come first.
    order: list[str] = []
    real_load, real_read = engine_mod.load_llama_library, engine_mod.read_model_info

    def load_library() -> None:
        order.append("llama_cpp")
        real_load()

    def read(path: Any) -> Any:
        order.append("model file")
        return real_read(path)

    monkeypatch.setattr(engine_mod, "load_llama_library", load_library)
    monkeypatch.setattr(engine_mod, "read_model_info", read)
    monkeypatch.setattr(engine_mod, "_new_llama", fake_new_llama(False, []))
    LlamaEngine.load(ModelSettings(path=str(model_path)), cache_dir=tmp_path, gpu=BIG_GPU,
                     probe=False)
    assert order == ["llama_cpp", "model file"]
