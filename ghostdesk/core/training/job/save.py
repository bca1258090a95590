"""Save, the last phase of a run: the trained LoRA written as peft weights and as a llama.cpp
GGUF adapter into a new registry folder (all or nothing, see registry.py), with a record of
how it was made and how it measured. The run's checkpoints are deleted afterwards."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ghostdesk.core.training import data as data_mod
from ghostdesk.core.training.events import Preparing, Saved, TrainingEvent
from ghostdesk.core.training.job.setup import Prepared
from ghostdesk.core.training.run_config import RunConfig

Emit = Callable[[TrainingEvent], None]


def save_adapter(cfg: RunConfig, ready: Prepared, model: Any, evaluation: Any, steps: int,
                 emit: Emit) -> Any:
    """Write the adapter ("default" in `model`) into the registry, report Saved, and return
    its registry.AdapterRecord. `evaluation` is the EvaluationResult (None: not measured)."""
    from ghostdesk.core.training.adapter_gguf import convert_peft_to_gguf
    from ghostdesk.core.training.registry import (
        GGUF_NAME,
        PEFT_DIR,
        AdapterRecord,
        AdapterRegistry,
        new_adapter_id,
    )

    info = ready.model_info
    emit(Preparing(stage="Saving the adapter…"))
    registry = AdapterRegistry.in_home(cfg.home)
    adapter_id = new_adapter_id()
    res = evaluation
    metrics: dict[str, Any] = {}
    if res is not None:
        metrics = {"accuracy": res.candidate.accuracy,
                   "reward_margin": res.candidate.reward_margin,
                   "eval_examples": res.candidate.examples,
                   "previous_accuracy": res.previous.accuracy,
                   "previous_reward_margin": res.previous.reward_margin,
                   "recommended": res.decision.recommended, "reason": res.decision.reason}
    counts = dict(cfg.data_counts) or {
        f"train_{k}": v for k, v in data_mod.counts(ready.train_examples, cfg.method).items()}
    counts.setdefault("eval_examples", len(ready.eval_examples))
    record = AdapterRecord(
        id=adapter_id, method=cfg.method, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        base_sha256=ready.base_sha256, base_name=info.display_name,
        architecture=info.architecture, data_counts=counts, metrics=metrics,
        parent=cfg.parent_adapter, run_id=cfg.run_id,
        settings={"preset": cfg.preset, "lora_r": cfg.lora_r, "lora_alpha": cfg.lora_alpha,
                  "learning_rate": cfg.learning_rate, "steps": steps,
                  "max_length": cfg.max_length, "beta": cfg.beta,
                  "base": ready.base.source})
    heads = info.head_count[0] if info.head_count else 0
    kv_heads = info.head_count_kv[0] if info.head_count_kv else heads

    def write_files(folder: Path) -> None:
        model.save_pretrained(folder / PEFT_DIR, safe_serialization=True,
                              selected_adapters=["default"])
        convert_peft_to_gguf(folder / PEFT_DIR, folder / GGUF_NAME,
                             architecture=info.architecture, n_layers=info.n_layers,
                             n_head=heads, n_head_kv=kv_heads,
                             base_sha256=ready.base_sha256, base_name=info.display_name,
                             adapter_id=adapter_id)

    saved = registry.write_adapter(record, write_files)
    emit(Saved(adapter_id=saved.id, path=saved.path, gguf=str(saved.gguf_path)))
    # The run is complete: its checkpoints only take space now.
    shutil.rmtree(cfg.checkpoint_dir, ignore_errors=True)
    return saved
