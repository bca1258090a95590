"""Set-up, the first phase of a run: the feedback to learn from, the device, the base model and
its tokenizer, checked against the chat's own tokenization.

Nothing here trains; it ends with everything fit.py needs, in one `Prepared`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ghostdesk.core.errors import TrainingError
from ghostdesk.core.training import data as data_mod
from ghostdesk.core.training.events import Preparing, TrainingEvent
from ghostdesk.core.training.run_config import (
    RunConfig,
    refuse_if_too_little_data,
    run_uses_cuda,
)

Emit = Callable[[TrainingEvent], None]
_TOKEN_CHECKS = 4
"""Training prompts compared with llama.cpp's tokenization of them at setup."""


@dataclass
class Prepared:
    """What set-up made ready for fit, evaluate and save."""

    model_info: Any
    """The chat model's GGUF header (ghostdesk.core.llm.gguf_info.ModelInfo)."""
    base_sha256: str
    """The chat model file's fingerprint: the adapter is made for exactly this file."""
    base: Any
    """Where the trainable weights come from (base_model.TrainingBase)."""
    model: Any
    tokenizer: Any
    train_examples: list[data_mod.Example]
    eval_examples: list[data_mod.Example]
    end_marker: str
    """The chat template's end-of-turn text, which ends every reply."""
    cuda: bool
    chat_tokens_checked: int
    """Training texts compared token by token with llama.cpp's tokenization of them."""
    chat_tokens_match: bool


def prepare(cfg: RunConfig, emit: Emit) -> Prepared:
    """Read the feedback (refusing too little), settle the device, then load the base model
    and tokenizer the way the chat reads text. Raises GhostDeskError for what a person can
    fix."""
    cfg.validate()
    from ghostdesk.core.llm.fingerprint import model_sha256
    from ghostdesk.core.llm.gguf_info import read_model_info

    emit(Preparing(stage="Reading the feedback…"))
    model_info = read_model_info(cfg.chat_model)
    loaded = data_mod.load_examples(cfg.train_file, cfg.method, model_info)
    # The feedback export writes no file when nothing is held out: then a slice of the
    # training examples is held out instead.
    held = (data_mod.load_examples(cfg.eval_file, cfg.method, model_info).examples
            if cfg.eval_file and Path(cfg.eval_file).exists() else None)
    train_examples, eval_examples = data_mod.split_examples(loaded.examples, held)
    n = data_mod.counts(train_examples, cfg.method)
    refuse_if_too_little_data(cfg.method, examples=n["examples"],
                              desirable=n.get("desirable"), undesirable=n.get("undesirable"))

    import torch

    from ghostdesk.core.llm.engine import physical_cores
    from ghostdesk.core.training import base_model

    torch.set_num_threads(cfg.threads or physical_cores())
    cuda = run_uses_cuda(cfg.device, torch.cuda.is_available)
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("Training on the GPU was asked for, but CUDA is not available.",
                            hint="Choose Auto or CPU in Settings → Training.")
    base_sha256 = model_sha256(cfg.chat_model, Path(cfg.home) / "cache")
    base = base_model.prepare_training_base(
        model_info, base_sha256, cfg.base, home=cfg.home,
        progress=lambda stage: emit(Preparing(stage=stage)))
    emit(Preparing(stage="Loading the model for training…"))
    model, tokenizer = base_model.load_base(base, cuda=cuda, load_in_4bit=cfg.load_in_4bit)
    use_end_marker_as_eos(tokenizer, loaded.end_marker)
    checked, match = compare_with_chat_tokens(tokenizer, cfg.chat_model, train_examples)
    return Prepared(model_info=model_info, base_sha256=base_sha256, base=base, model=model,
                    tokenizer=tokenizer, train_examples=train_examples,
                    eval_examples=eval_examples[:cfg.eval_max_examples],
                    end_marker=loaded.end_marker, cuda=cuda, chat_tokens_checked=checked,
                    chat_tokens_match=match)


def use_end_marker_as_eos(tokenizer: Any, marker: str) -> None:
    """The trainers append the tokenizer's EOS to each reply unless it already ends with
    it. A chat reply ends with the end-of-turn marker, not EOS: making the marker the
    EOS keeps the trained text identical to the chat's."""
    if marker and len(tokenizer(marker, add_special_tokens=False)["input_ids"]) == 1:
        tokenizer.eos_token = marker
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def compare_with_chat_tokens(tokenizer: Any, chat_model: str | Path,
                             examples: list[data_mod.Example]) -> tuple[int, bool]:
    """Tokenize a few training texts with llama.cpp (the chat's tokenizer) and with the
    training tokenizer; they must agree for the LoRA to learn what the chat shows.
    (how many were compared, whether all agreed)."""
    texts = [e.prompt + (e.completion or e.chosen) for e in examples[:_TOKEN_CHECKS]]
    chat = llama_cpp_tokens(chat_model, texts)
    if chat is None:
        return 0, True  # nothing to compare against; the run goes on
    match = all(ids == list(tokenizer(t, add_special_tokens=False)["input_ids"])
                for ids, t in zip(chat, texts, strict=True))
    if not match:
        print("warning: the training tokenizer splits the chat text differently from "
              "llama.cpp", file=sys.stderr)
    return len(texts), match


_LLAMA_TOKENS = (
    "import json, sys\n"
    "import llama_cpp\n"
    "a = json.loads(sys.stdin.read())\n"
    "llm = llama_cpp.Llama(model_path=a['model'], vocab_only=True, n_ctx=64, verbose=False)\n"
    "print(json.dumps([list(llm.tokenize(t.encode('utf-8'), add_bos=False, special=True))\n"
    "                  for t in a['texts']]))\n"
    "llm.close()\n")


def llama_cpp_tokens(model: str | Path, texts: list[str]) -> list[list[int]] | None:
    """llama.cpp's tokens for `texts` (special tokens parsed, no BOS added), or None when
    llama.cpp can't tell. Asked in a separate process that never loads torch: with a CUDA
    build of llama.cpp, loading it next to PyTorch's own CUDA libraries crashed the process
    (a segfault in libggml-cuda, seen with llama-cpp-python 0.3.36 and torch 2.11+cu130)."""
    try:
        done = subprocess.run([sys.executable, "-c", _LLAMA_TOKENS],
                              input=json.dumps({"model": str(model), "texts": texts}),
                              capture_output=True, text=True, encoding="utf-8", timeout=120)
        if done.returncode != 0:
            return None
        tokens = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None
    if not isinstance(tokens, list) or len(tokens) != len(texts):
        return None
    return [[int(i) for i in ids] for ids in tokens]
