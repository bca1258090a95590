"""Fit, the second phase of a run: the TRL trainer (KTO, DPO or SFT) with its LoRA, its steps
reported as events, periodic checkpoints, a checkpoint and a clean stop when asked, and a
resume from the newest complete checkpoint.

Checkpoints are transformers' own (`<run>/checkpoints/checkpoint-<step>`); run_folders.py
says which are complete.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghostdesk.core.errors import TrainingError
from ghostdesk.core.training import data as data_mod
from ghostdesk.core.training.events import Step, TrainingEvent
from ghostdesk.core.training.job.setup import Prepared
from ghostdesk.core.training.job.stop import StopSignal
from ghostdesk.core.training.run_config import RunConfig, planned_steps
from ghostdesk.core.training.run_folders import (
    checkpoint_step,
    discard_incomplete_checkpoints,
    valid_checkpoints,
)

Emit = Callable[[TrainingEvent], None]


@dataclass
class Progress:
    """What the step callback tracks between steps."""

    tokens: int = 0
    """Tokens of the batches the optimizer steps of this attempt consumed."""
    batch_tokens: list[int] = field(default_factory=list)
    """Tokens of each batch the data loader produced, in order (it reads one batch ahead,
    so the last one may never be trained on)."""
    grad_accum: int = 1
    started: float = field(default_factory=time.perf_counter)
    first_step: int = 0
    last_step: int = 0
    stopped: bool = False
    fit_seconds: float | None = None
    """Training time of this attempt, once fit() returned."""

    def step_done(self, step: int) -> None:
        self.last_step = step
        consumed = max(0, step - self.first_step) * self.grad_accum
        self.tokens = sum(self.batch_tokens[:consumed])

    def train_seconds(self) -> float:
        """Time in the optimizer steps of this attempt (so far, while they go on)."""
        return self.fit_seconds if self.fit_seconds is not None else (
            time.perf_counter() - self.started)

    def tokens_per_second(self) -> float:
        elapsed = self.train_seconds()
        return self.tokens / elapsed if elapsed > 0 else 0.0


class Fitter:
    """The trainer for one attempt of a run, resuming from the newest complete checkpoint.
    Built at set-up (the Started event reports its steps); `fit()` trains."""

    def __init__(self, cfg: RunConfig, ready: Prepared, stop: StopSignal, emit: Emit) -> None:
        self.cfg, self.ready, self.stop, self.emit = cfg, ready, stop, emit
        discard_incomplete_checkpoints(cfg.checkpoint_dir)
        ckpts = valid_checkpoints(cfg.checkpoint_dir)
        self.resume_from: Path | None = ckpts[-1] if ckpts else None
        self.resumed_from_step = checkpoint_step(self.resume_from) if self.resume_from else 0
        rows = data_mod.to_trl_rows(ready.train_examples, cfg.method)
        self.max_steps = planned_steps(cfg, len(rows))
        self.progress = Progress(first_step=self.resumed_from_step,
                                 last_step=self.resumed_from_step, grad_accum=cfg.grad_accum)
        self.trainer = build_trainer(cfg, ready, rows, self.max_steps, self._step_callback())
        self.trainer.data_collator = CountingCollator(self.trainer.data_collator, self.progress)

    @property
    def model(self) -> Any:
        """The base model with its LoRA ("default"), as trained so far."""
        return self.trainer.model

    def fit(self) -> bool:
        """Train to the last step (True) or until asked to stop (False)."""
        p = self.progress
        p.started = time.perf_counter()
        resume = str(self.resume_from) if self.resume_from else None
        self.trainer.train(resume_from_checkpoint=resume)
        p.fit_seconds = time.perf_counter() - p.started
        p.last_step = int(self.trainer.state.global_step)
        return not p.stopped

    def _step_callback(self) -> Any:
        from transformers import TrainerCallback

        fitter = self

        class StepEvents(TrainerCallback):
            def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
                p = fitter.progress
                p.step_done(int(state.global_step))
                if fitter.stop.requested and not p.stopped:
                    p.stopped = True
                    control.should_save = True  # a checkpoint at this very step
                    control.should_training_stop = True
                return control

            def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
                       **kw: Any) -> Any:
                logs = logs or {}
                if "loss" not in logs:
                    return control
                p = fitter.progress
                step = int(state.global_step)
                done = max(1, step - p.first_step)
                per_step = (time.perf_counter() - p.started) / done
                margin = logs.get("rewards/margins")
                fitter.emit(Step(
                    step=step, max_steps=int(state.max_steps), loss=float(logs["loss"]),
                    lr=float(logs.get("learning_rate", 0.0)),
                    reward_margin=float(margin) if margin is not None else None,
                    tokens_per_second=round(p.tokens_per_second(), 2),
                    eta_s=round(per_step * max(0, int(state.max_steps) - step), 1),
                    epoch=round(float(logs.get("epoch", state.epoch or 0.0)), 4)))
                return control

        return StepEvents()


class CountingCollator:
    """Wraps the trainer's collator to count the real (unpadded) tokens it hands over."""

    def __init__(self, inner: Any, progress: Progress) -> None:
        self.inner, self.progress = inner, progress

    def __call__(self, features: Any) -> Any:
        batch = self.inner(features)
        mask = batch.get("attention_mask") if hasattr(batch, "get") else None
        ids = batch.get("input_ids") if hasattr(batch, "get") else None
        if mask is not None:
            self.progress.batch_tokens.append(int(mask.sum()))
        elif ids is not None:
            self.progress.batch_tokens.append(int(ids.numel()))
        return batch


def build_trainer(cfg: RunConfig, ready: Prepared, rows: list[dict[str, Any]], max_steps: int,
                  callback: Any) -> Any:
    """The TRL trainer of the run's method, with a LoRA on the layers the model has."""
    from datasets import Dataset
    from peft import LoraConfig

    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=target_modules(cfg, ready.model), bias="none",
                      task_type="CAUSAL_LM")
    dataset = Dataset.from_list(rows)
    cuda = ready.cuda
    common: dict[str, Any] = dict(
        output_dir=str(cfg.checkpoint_dir), per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.learning_rate,
        max_steps=max_steps, lr_scheduler_type="linear",
        warmup_steps=0, logging_steps=1, save_strategy="steps",
        save_steps=cfg.checkpoint_every, save_total_limit=2, report_to=[],
        seed=cfg.seed, data_seed=cfg.seed, disable_tqdm=True, dataloader_num_workers=0,
        bf16=bool(cuda and _bf16_ok()), fp16=False, use_cpu=not cuda,
        activation_checkpointing=cuda, max_length=cfg.max_length,
        save_only_model=False, dataset_num_proc=None)
    if cfg.method == "kto":
        from trl import KTOConfig, KTOTrainer

        n_des = sum(1 for r in rows if r["label"])
        n_und = len(rows) - n_des
        # KTO paper, eq. 8: weight the rarer kind so both sides pull equally hard.
        des_w = max(1.0, n_und / n_des) if n_des else 1.0
        und_w = max(1.0, n_des / n_und) if n_und else 1.0
        args = KTOConfig(beta=cfg.beta, desirable_weight=round(des_w, 3),
                         undesirable_weight=round(und_w, 3), **common)
        trainer_cls = KTOTrainer
    elif cfg.method == "dpo":
        from trl import DPOConfig, DPOTrainer

        args = DPOConfig(beta=cfg.beta, **common)
        trainer_cls = DPOTrainer
    else:
        from trl import SFTConfig, SFTTrainer

        common.pop("dataset_num_proc")
        args = SFTConfig(completion_only_loss=True, dataset_num_proc=None, **common)
        trainer_cls = SFTTrainer
    trainer = trainer_cls(model=ready.model, args=args, train_dataset=dataset,
                          processing_class=ready.tokenizer, peft_config=lora,
                          callbacks=[callback])
    if len(trainer.train_dataset) == 0:
        # The trainers drop examples whose prompt alone fills max_length.
        raise TrainingError(
            f"Every training example is longer than the maximum length ({cfg.max_length} "
            "tokens), so there is nothing to learn from.",
            hint="Raise the maximum length in Settings → Training → Advanced.")
    return trainer


def target_modules(cfg: RunConfig, model: Any) -> list[str]:
    """The layers to train that this model has (Phi-3 fuses some that others split)."""
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [t for t in cfg.target_modules if t in present]
    if not targets:
        raise TrainingError(
            "None of the layers to train exist in this model "
            f"({', '.join(cfg.target_modules)}).",
            hint="Reset Settings → Training → Advanced → target layers.")
    return targets


def _bf16_ok() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    except Exception:
        return False
