"""Loading llama.cpp's shared libraries into this process, and when: with a CUDA build they
must be loaded before anything imports numpy (see load_llama_library for what happens
otherwise); a CPU build is left to load on first use, so start-up stays fast."""

from __future__ import annotations

import contextlib
import importlib
from pathlib import Path


def load_llama_library() -> None:
    """Load llama.cpp's shared libraries now, before reading the model file pulls in numpy.

    With a CUDA build of llama-cpp-python 0.3.36 (built from source against CUDA 13.0 with
    gcc 13, on an H100), a process that had imported numpy before llama_cpp crashed with a
    segfault in libggml-cuda at the first load with GPU layers; imported first, it loaded
    and ran. Call this as early as possible in a process that will load a model. A broken
    install is not reported here but by the load itself, with its own message."""
    with contextlib.suppress(Exception):
        importlib.import_module("llama_cpp")


def llama_has_cuda() -> bool:
    """Whether the installed llama-cpp-python was built with CUDA (its lib folder holds
    ggml's CUDA backend); looked up on disk, without importing it."""
    import importlib.util

    with contextlib.suppress(Exception):
        spec = importlib.util.find_spec("llama_cpp")
        for folder in (spec.submodule_search_locations or []) if spec else []:
            lib = Path(folder) / "lib"
            if any(lib.glob("*ggml-cuda*")):
                return True
    return False


def preload_llama_for_cuda() -> None:
    """At process start: with a CUDA build, load llama.cpp before anything (the plots, the
    memory index, torch) pulls in numpy (see load_llama_library). CPU builds skip it, so
    start-up stays as fast as before."""
    if llama_has_cuda():
        load_llama_library()
