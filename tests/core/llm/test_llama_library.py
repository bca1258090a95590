"""Loading llama.cpp's libraries: never raising, and early only for a CUDA build."""

from __future__ import annotations

import pytest

from ghostdesk.core.llm import llama_library


def test_loading_the_llama_library_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    monkeypatch.delitem(sys.modules, "llama_cpp", raising=False)
    monkeypatch.setattr(importlib, "import_module",
                        lambda name: (_ for _ in ()).throw(OSError("libllama.so missing")))
    llama_library.load_llama_library()  # the load itself reports a broken install


def test_cuda_builds_are_loaded_before_numpy_and_cpu_builds_are_not(monkeypatch, tmp_path):
    import importlib.util
    from types import SimpleNamespace

    pkg = tmp_path / "llama_cpp"
    (pkg / "lib").mkdir(parents=True)
    (pkg / "lib" / "libggml-cpu.so").touch()
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: SimpleNamespace(submodule_search_locations=[str(pkg)]))
    loaded = []
    monkeypatch.setattr(llama_library, "load_llama_library", lambda: loaded.append(True))
    llama_library.preload_llama_for_cuda()
    assert not llama_library.llama_has_cuda() and loaded == []
    (pkg / "lib" / "libggml-cuda.so").touch()
    llama_library.preload_llama_for_cuda()
    assert llama_library.llama_has_cuda() and loaded == [True]
