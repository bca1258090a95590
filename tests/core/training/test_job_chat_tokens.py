"""The llama.cpp side of the set-up's tokenization check runs in a process of its own."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ghostdesk.core.llm.bundled import bundled_model_path
from ghostdesk.core.training.job.setup import llama_cpp_tokens

TEXTS = ["<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\nHello 🙂<end_of_turn>",
         "plain words"]


def test_tokens_are_llama_cpps_own() -> None:
    import llama_cpp

    model = bundled_model_path()
    llm = llama_cpp.Llama(model_path=str(model), vocab_only=True, n_ctx=64, verbose=False)
    try:
        expected = [list(llm.tokenize(t.encode("utf-8"), add_bos=False, special=True))
                    for t in TEXTS]
    finally:
        llm.close()
    assert llama_cpp_tokens(model, TEXTS) == expected


def test_llama_cpp_is_never_loaded_into_the_training_process(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A CUDA build of llama.cpp loaded next to torch's CUDA libraries crashed the process;
    # here an import of llama_cpp in this process would fail, the separate one still answers.
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    tokens = llama_cpp_tokens(bundled_model_path(), TEXTS)
    assert tokens is not None and len(tokens) == 2 and all(tokens)


def test_no_answer_is_none(tmp_path: Path) -> None:
    assert llama_cpp_tokens(tmp_path / "missing.gguf", TEXTS) is None
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 60)
    assert llama_cpp_tokens(bad, TEXTS) is None
