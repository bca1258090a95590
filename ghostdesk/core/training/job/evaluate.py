"""Evaluate, the third phase of a run: the new adapter measured on held-out feedback against
the adapter it would replace (or the base model), the adopt decision, and side-by-side answers
of both to a few held-out prompts. Also scores saved adapters again (`ghostdesk adapters eval`).

The measures themselves are in ../evaluation.py; this is the part that needs the trained model.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.training import data as data_mod
from ghostdesk.core.training.events import Evaluated, Preparing, TrainingEvent
from ghostdesk.core.training.job.setup import Prepared
from ghostdesk.core.training.run_config import RunConfig, run_uses_cuda

Emit = Callable[[TrainingEvent], None]


def evaluate_new_adapter(cfg: RunConfig, ready: Prepared, model: Any, emit: Emit) -> Any:
    """Score the adapter just trained ("default" in `model`) and report an Evaluated event;
    returns the evaluation.EvaluationResult (save records it with the adapter)."""
    from ghostdesk.core.training import evaluation

    emit(Preparing(stage="Measuring the new adapter on held-out feedback…"))
    tokenizer = ready.tokenizer
    previous_loaded = _load_previous(cfg, ready.base_sha256, model)
    stop_ids = []
    for text in (ready.end_marker, tokenizer.eos_token):
        if text:
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(ids) == 1:
                stop_ids.append(ids[0])
    prompts = list({e.prompt: e for e in ready.eval_examples}.values())
    result = evaluation.evaluate(
        model, tokenizer, ready.eval_examples, cfg.method, beta=cfg.beta,
        mode=cfg.adopt, previous_adapter=cfg.parent_adapter,
        previous_loaded=previous_loaded, max_length=cfg.max_length)
    if prompts and cfg.eval_generations:
        result.samples = evaluation.side_by_side(
            model, tokenizer, prompts[:cfg.eval_generations], adapter="default",
            max_new_tokens=cfg.generation_max_tokens, stop_ids=stop_ids)
    if previous_loaded:
        model.delete_adapter("previous")
        model.set_adapter("default")
    emit(Evaluated(
        accuracy=round(result.candidate.accuracy, 4),
        reward_margin=round(result.candidate.reward_margin, 4),
        examples=result.candidate.examples,
        previous_accuracy=round(result.previous.accuracy, 4),
        previous_reward_margin=round(result.previous.reward_margin, 4),
        previous_adapter=result.previous_adapter, recommended=result.decision.recommended,
        adopt=result.decision.adopt, reason=result.decision.reason,
        samples=result.samples))
    return result


def _load_previous(cfg: RunConfig, base_sha256: str, model: Any) -> bool:
    """Load the adapter this run would replace as "previous", when it was trained for
    the same chat model; False when there is none or it can't be compared."""
    if not cfg.parent_adapter:
        return False
    from ghostdesk.core.training.registry import AdapterRegistry

    try:
        record = AdapterRegistry.in_home(cfg.home).get(cfg.parent_adapter)
    except GhostDeskError:
        return False
    if record.base_sha256 != base_sha256 or not record.peft_path.is_dir():
        return False
    try:
        model.load_adapter(str(record.peft_path), adapter_name="previous", is_trainable=False)
    except Exception as err:
        print(f"warning: could not load adapter {record.id} to compare: {err}",
              file=sys.stderr)
        return False
    model.set_adapter("default")
    return True


def evaluate_saved_adapter(home: str | Path, adapter_id: str, eval_file: str | Path, *,
                           chat_model: str | Path, compare_with: str = "", adopt: str = "ask",
                           base: str = "auto", device: str = "auto") -> Any:
    """Score a saved adapter on held-out feedback (`ghostdesk adapters eval`), optionally
    against another saved adapter; returns an evaluation.EvaluationResult. Runs torch in this
    process: a GUI should call it on a worker thread."""
    import torch

    from ghostdesk.core.errors import AdapterError
    from ghostdesk.core.llm.fingerprint import model_sha256
    from ghostdesk.core.llm.gguf_info import read_model_info
    from ghostdesk.core.training import base_model, evaluation
    from ghostdesk.core.training.registry import AdapterRegistry

    registry = AdapterRegistry.in_home(home)
    record = registry.get(adapter_id)
    other = registry.get(compare_with) if compare_with else None
    info = read_model_info(chat_model)
    sha = model_sha256(chat_model, Path(home) / "cache")
    for rec in (record, other):
        if rec is not None and rec.base_sha256 and rec.base_sha256 != sha:
            made_for = rec.base_name or "another model file"
            raise AdapterError(f"Adapter {rec.id} was trained for {made_for}, not "
                               f"{info.display_name}.",
                               hint="Load the chat model it was trained for.")
    examples = data_mod.load_examples(eval_file, record.method, info).examples
    tb = base_model.prepare_training_base(info, sha, base, home=home)
    cuda = run_uses_cuda(device, torch.cuda.is_available)
    model, tokenizer = base_model.load_base(tb, cuda=cuda, load_in_4bit=None)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    from peft import PeftModel

    model = PeftModel.from_pretrained(model, str(record.peft_path), adapter_name="default")
    if other is not None:
        model.load_adapter(str(other.peft_path), adapter_name="previous")
        model.set_adapter("default")
    return evaluation.evaluate(
        model, tokenizer, examples, record.method,
        beta=float(record.settings.get("beta", 0.1)), mode=adopt,
        previous_adapter=compare_with, previous_loaded=other is not None,
        max_length=int(record.settings.get("max_length", 512)))
