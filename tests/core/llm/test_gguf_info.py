"""GGUF header reading: the real bundled model's facts, and clear errors for bad files."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from ghostdesk.core.errors import ModelFileError
from ghostdesk.core.llm.gguf_info import format_count, read_model_info


def test_real_model_facts(model_path: Path) -> None:
    info = read_model_info(model_path)
    assert info.architecture == "gemma3"
    assert info.name == "Gemma 3 270m"
    assert info.gguf_version == 3
    assert info.parameter_count == 268_098_176
    assert info.quantization == "Q4_K_M"
    assert info.context_length == 32768
    assert info.n_layers == 18
    assert info.embedding_length == 640
    assert info.head_count == (4,) * 18
    assert info.head_count_kv == (1,) * 18
    assert (info.key_length, info.value_length) == (256, 256)
    assert info.kv_bytes_per_token_layer == (1024,) * 18  # 1 head * (256 + 256) * 2 bytes
    assert info.file_size == model_path.stat().st_size
    assert not info.has_chat_template and info.chat_template is None
    assert (info.bos_token_id, info.bos_text) == (2, "<bos>")
    assert (info.eos_token_id, info.eos_text) == (1, "<eos>")
    assert info.add_bos_token is True
    assert info.vocab_size == 262_144
    assert info.vocab_markers == {"<start_of_turn>", "<end_of_turn>"}
    assert info.tensor_count == 236
    assert len(info.layer_bytes) == 18 and all(b > 3_000_000 for b in info.layer_bytes)
    # The tied embedding (Q8_0, 262144 x 640) is the output layer; plus output_norm (f32).
    assert info.output_bytes == 178_257_920 + 640 * 4
    assert info.non_layer_bytes == info.output_bytes
    tensor_bytes = sum(info.layer_bytes) + info.non_layer_bytes
    assert info.file_size - 8 * 1024 * 1024 < tensor_bytes < info.file_size
    assert info.summary() == "Gemma 3 270m · gemma3 · 268M params · Q4_K_M · ctx 32768 · 241 MiB"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="Model file not found: .*nope.gguf"):
        read_model_info(tmp_path / "nope.gguf")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="is a folder, not a model file"):
        read_model_info(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty"):
        read_model_info(path)


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "random.gguf"
    path.write_bytes(b"\x13\x37" + os.urandom(4094))
    with pytest.raises(ModelFileError) as err:
        read_model_info(path)
    assert "random.gguf is not a GGUF model file (it starts with b'\\x137" in err.value.message
    assert err.value.message.endswith("GhostDesk runs .gguf files.")


@pytest.mark.parametrize(("head", "guess"), [
    (b"<!DOCTYPE html><html>", "web page"),
    (b"PK\x03\x04rest-of-zip", "ZIP archive"),
    (struct.pack("<Q", 100) + b'{"__metadata__"', "safetensors"),
])
def test_common_mixups_are_named(tmp_path: Path, head: bytes, guess: str) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(head)
    with pytest.raises(ModelFileError, match=guess):
        read_model_info(path)


def test_truncated_inside_header(truncated_models: dict[str, Path]) -> None:
    with pytest.raises(ModelFileError, match="cut-1mib.gguf looks truncated or damaged") as err:
        read_model_info(truncated_models["1mib"])
    assert "Download it again." in err.value.message


def test_truncated_inside_tensor_data(truncated_models: dict[str, Path], model_path: Path,
                                      ) -> None:
    cut = truncated_models["90pct"]
    with pytest.raises(ModelFileError) as err:
        read_model_info(cut)
    assert err.value.message == (
        f"cut-90pct.gguf looks truncated or damaged: expected {model_path.stat().st_size} "
        f"bytes, file has {cut.stat().st_size}. Download it again.")


def test_absurd_counts_are_refused_without_allocating(tmp_path: Path) -> None:
    path = tmp_path / "huge.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 1, 2**60) + b"\0" * 64)
    with pytest.raises(ModelFileError, match="truncated or damaged"):
        read_model_info(path)


def test_string_longer_than_file(tmp_path: Path) -> None:
    path = tmp_path / "long.gguf"
    key = struct.pack("<Q", 2**40) + b"general.architecture"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + key)
    with pytest.raises(ModelFileError, match="truncated or damaged"):
        read_model_info(path)


def test_old_and_future_versions(tmp_path: Path) -> None:
    for version, words in ((1, "too old"), (4, "newer")):
        path = tmp_path / f"v{version}.gguf"
        path.write_bytes(b"GGUF" + struct.pack("<IQQ", version, 0, 0))
        with pytest.raises(ModelFileError, match=words):
            read_model_info(path)


@pytest.mark.parametrize("big_endian", [False, True])
def test_agrees_with_gguf_reader(tiny_gguf, big_endian: bool) -> None:
    import gguf

    path = tiny_gguf("llama", big_endian=big_endian, template="{{ bos_token }}hi")
    info = read_model_info(path)
    reader = gguf.GGUFReader(path)
    assert info.tensor_count == len(reader.tensors)
    assert info.parameter_count == sum(int(t.n_elements) for t in reader.tensors)
    assert sum(info.layer_bytes) + info.non_layer_bytes == sum(int(t.n_bytes)
                                                               for t in reader.tensors)
    assert info.architecture == reader.fields["general.architecture"].contents() == "llama"
    assert info.chat_template == "{{ bos_token }}hi"
    assert (info.bos_text, info.eos_text) == ("<s>", "</s>")
    assert info.n_layers == 2 and info.layer_bytes == ((64 + 128) * 4,) * 2
    assert info.output_bytes == (5 * 8 + 8) * 4  # tied embedding + output_norm
    assert info.quantization == "F32"  # no general.file_type: the dominant tensor type
    assert info.key_length == 4  # embedding 8 / 2 heads


def test_per_layer_head_counts(tiny_gguf) -> None:
    info = read_model_info(tiny_gguf("openelm", n_layers=3, head_count=[2, 4, 8],
                                     head_count_kv=[1, 2, 0]))
    assert info.head_count == (2, 4, 8)
    assert info.head_count_kv == (1, 2, 0)
    assert info.key_length == 1  # embedding 8 / the largest head count
    assert info.kv_bytes_per_token_layer == (4, 8, 0)


def test_file_type_names_the_quantization(tiny_gguf) -> None:
    assert read_model_info(tiny_gguf(file_type=15)).quantization == "Q4_K_M"
    assert read_model_info(tiny_gguf(file_type=0, filename="f32.gguf")).quantization == "F32"


@pytest.mark.parametrize(("n", "text"), [
    (104, "104"), (12_345, "12K"), (268_098_176, "268M"), (7_241_732_096, "7.2B"),
    (27_000_000_000, "27B"),
])
def test_format_count(n: int, text: str) -> None:
    assert format_count(n) == text
