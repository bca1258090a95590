"""AdapterSlot: hot-swapping LoRA adapters into a running LlamaEngine, and refusing the ones
that don't fit (another architecture, another model file, pickles, mismatched tensors)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghostdesk.core.errors import AdapterError
from ghostdesk.core.llm.adapters import AdapterSlot, read_adapter_header
from ghostdesk.core.llm.engine import LlamaEngine
from ghostdesk.core.llm.fingerprint import model_sha256
from ghostdesk.core.llm.gpu_probe import GpuStatus
from ghostdesk.core.llm.types import ChatMessage, GenerationStats, SamplingParams
from ghostdesk.core.settings import ModelSettings
from ghostdesk.core.training.adapter_gguf import convert_peft_to_gguf
from tests.core.training.conftest import N_HEAD, N_HEAD_KV, TinyLlama, tiny_llama  # noqa: F401
from tests.core.training.test_adapter_gguf import _random_lora


@pytest.fixture(scope="module")
def adapters(tiny_llama: TinyLlama, tmp_path_factory: pytest.TempPathFactory,  # noqa: F811
             ) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("adapters")
    sha = model_sha256(tiny_llama.gguf)
    kw = dict(architecture="llama", n_layers=2, n_head=N_HEAD, n_head_kv=N_HEAD_KV)
    out = {}
    for name, seed in (("one", 1), ("two", 2)):
        peft = _random_lora(tiny_llama.hf_dir, folder / f"peft-{name}", scale=0.2, seed=seed)
        out[name] = convert_peft_to_gguf(peft, folder / f"{name}.gguf", base_sha256=sha,
                                         base_name="Tiny llama", adapter_id=name, **kw)
    other = _random_lora(tiny_llama.hf_dir, folder / "peft-other", scale=0.2, seed=3)
    out["other_base"] = convert_peft_to_gguf(other, folder / "other.gguf",
                                             base_sha256="00" * 32, base_name="Some other model",
                                             **kw)
    return out


@pytest.fixture
def engine(tiny_llama: TinyLlama, tmp_path: Path) -> LlamaEngine:  # noqa: F811
    eng = LlamaEngine.load(ModelSettings(path=str(tiny_llama.gguf), n_ctx=128, n_threads=1),
                           cache_dir=tmp_path, gpu=GpuStatus.cpu_only(), probe=False)
    yield eng
    eng.close()


def _slot(engine: LlamaEngine, tiny: TinyLlama) -> AdapterSlot:
    return AdapterSlot(engine, model_sha256=lambda: model_sha256(tiny.gguf))


def _reply(engine: LlamaEngine) -> str:
    prompt = engine.render([ChatMessage("user", "hello there")])
    return "".join(engine.stream(prompt, SamplingParams.greedy(16), GenerationStats()))


def test_swap_changes_output_and_deactivate_restores_it(engine: LlamaEngine,
                                                        tiny_llama: TinyLlama,  # noqa: F811
                                                        adapters: dict[str, Path]) -> None:
    slot = _slot(engine, tiny_llama)
    base = _reply(engine)
    one = slot.activate(adapters["one"])
    assert one.id == "one" and slot.active == one and one.seconds < 1.0
    with_one = _reply(engine)
    two = slot.activate(adapters["two"], scale=0.5, adapter_id="custom")  # frees "one"
    assert (two.id, two.scale) == ("custom", 0.5)
    with_two = _reply(engine)
    assert slot.activate(adapters["one"]).id == "one"
    assert _reply(engine) == with_one  # the same adapter gives the same reply again
    slot.deactivate()
    assert slot.active is None
    assert _reply(engine) == base
    assert len({base, with_one, with_two}) == 3


def test_adapter_for_another_model_file_is_refused(engine: LlamaEngine,
                                                   tiny_llama: TinyLlama,  # noqa: F811
                                                   adapters: dict[str, Path]) -> None:
    slot = _slot(engine, tiny_llama)
    slot.activate(adapters["one"])
    with pytest.raises(AdapterError) as err:
        slot.activate(adapters["other_base"])
    assert str(err.value).startswith("This adapter was trained for Some other model, not the "
                                     "loaded model file tiny-llama.gguf.")
    assert slot.active is not None and slot.active.id == "one"  # unchanged


def test_adapter_for_another_architecture_is_refused(engine: LlamaEngine, tmp_path: Path,
                                                     tiny_llama: TinyLlama) -> None:  # noqa: F811
    import gguf
    import numpy as np

    path = tmp_path / "gemma-adapter.gguf"
    w = gguf.GGUFWriter(str(path), "gemma3")
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 16.0)
    w.add_tensor("blk.0.attn_q.weight.lora_a", np.zeros((8, 640), np.float32))
    w.add_tensor("blk.0.attn_q.weight.lora_b", np.zeros((1024, 8), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(AdapterError) as err:
        _slot(engine, tiny_llama).activate(path)
    assert str(err.value).startswith("This adapter was trained for a gemma3 model, not Tiny "
                                     "llama (llama), the loaded model.")


def test_mismatched_tensors_are_refused_by_llama_cpp(engine: LlamaEngine, tmp_path: Path,
                                                     tiny_llama: TinyLlama) -> None:  # noqa: F811
    import numpy as np
    from safetensors.numpy import save_file

    peft = tmp_path / "peft"
    peft.mkdir()
    (peft / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 4, "lora_alpha": 8, '
                                              '"target_modules": ["q_proj"]}')
    save_file({"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight":
               np.ones((4, 32), np.float32),  # the model's hidden size is 64
               "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight":
               np.ones((64, 4), np.float32)}, str(peft / "adapter_model.safetensors"))
    path = convert_peft_to_gguf(peft, tmp_path / "wrong.gguf", architecture="llama",
                                n_layers=2, n_head=N_HEAD, n_head_kv=N_HEAD_KV)
    slot = _slot(engine, tiny_llama)
    with pytest.raises(AdapterError, match="llama.cpp could not load the adapter wrong.gguf"):
        slot.activate(path)
    assert slot.active is None
    assert _reply(engine)  # the engine still works


def test_pickles_and_model_files_are_refused(tmp_path: Path,
                                             tiny_llama: TinyLlama) -> None:  # noqa: F811
    folder = tmp_path / "peft"
    folder.mkdir()
    (folder / "adapter_model.bin").write_bytes(b"PK\x03\x04")
    for target in (folder, folder / "adapter_model.bin"):
        with pytest.raises(AdapterError) as err:
            read_adapter_header(target)
        assert "PyTorch pickle" in str(err.value)
    with pytest.raises(AdapterError, match="is a model file, not a LoRA adapter"):
        read_adapter_header(tiny_llama.gguf)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf at all")
    with pytest.raises(AdapterError, match="not a usable LoRA adapter"):
        read_adapter_header(junk)


def test_closing_the_engine_first_is_safe(tiny_llama: TinyLlama, tmp_path: Path,  # noqa: F811
                                          adapters: dict[str, Path]) -> None:
    eng = LlamaEngine.load(ModelSettings(path=str(tiny_llama.gguf), n_ctx=128, n_threads=1),
                           cache_dir=tmp_path, gpu=GpuStatus.cpu_only(), probe=False)
    slot = _slot(eng, tiny_llama)
    slot.activate(adapters["one"])
    eng.close()  # llama.cpp frees the model's adapters with it
    slot.deactivate()
    assert slot.active is None
