"""One training run, top to bottom: setup -> fit -> evaluate -> save.

Runs in a child process (`python -m ghostdesk.core.training run.json`) and reports through
`emit`, one event per line on stdout (see events.py). It stops at the next step boundary
when the run's STOP file appears or SIGTERM arrives, after saving a checkpoint; starting the
same run.json again resumes from the newest complete checkpoint. A completed run leaves an
adapter folder in the registry (see registry.py for why a crash can't leave half of one).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghostdesk.core.errors import GhostDeskError, TrainingError
from ghostdesk.core.training import data as data_mod
from ghostdesk.core.training.events import (
    Evaluated,
    Failed,
    Finished,
    Preparing,
    Saved,
    Started,
    Step,
    TrainingEvent,
)
from ghostdesk.core.training.run_config import RunConfig, planned_steps, refuse_if_too_little_data

Emit = Callable[[TrainingEvent], None]
_TOKEN_CHECKS = 4
"""Training prompts compared with llama.cpp's tokenization of them at setup."""


class StopSignal:
    """Set by SIGTERM/SIGINT or by the run's STOP file; read between steps."""

    def __init__(self, stop_file: Path | None = None) -> None:
        self.stop_file = stop_file
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def install_handlers(self) -> None:
        def handler(_signum: int, _frame: Any) -> None:
            self._event.set()

        for name in ("SIGTERM", "SIGINT", "SIGBREAK"):
            sig = getattr(signal, name, None)
            if sig is not None:
                # Off the main thread (tests) this fails; the STOP file still works.
                with contextlib.suppress(ValueError, OSError):
                    signal.signal(sig, handler)

    @property
    def requested(self) -> bool:
        if not self._event.is_set() and self.stop_file is not None and self.stop_file.exists():
            self._event.set()
        return self._event.is_set()


def peak_rss_mb() -> float:
    """The process's peak resident memory."""
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024
    except ImportError:  # Windows
        import psutil

        info = psutil.Process().memory_info()
        return getattr(info, "peak_wset", info.rss) / 2**20


def checkpoint_step(checkpoint: Path) -> int:
    """The step a `checkpoint-<step>` folder was saved at (ValueError for other names)."""
    prefix, _, step = checkpoint.name.partition("-")
    if prefix != "checkpoint":
        raise ValueError(f"not a checkpoint folder: {checkpoint.name}")
    return int(step)


def valid_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints, oldest first. transformers writes trainer_state.json last, so a
    checkpoint without a readable one was cut short (a kill while saving)."""
    found = []
    if not folder.is_dir():
        return found
    for entry in folder.iterdir():
        if not entry.is_dir() or not entry.name.startswith("checkpoint-"):
            continue
        try:
            step = checkpoint_step(entry)
            state = json.loads((entry / "trainer_state.json").read_text(encoding="utf-8"))
        except (ValueError, OSError):
            continue
        if isinstance(state, dict) and (entry / "adapter_model.safetensors").is_file():
            found.append((step, entry))
    return [p for _, p in sorted(found)]


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


def discard_incomplete_checkpoints(folder: Path) -> None:
    good = set(valid_checkpoints(folder))
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.is_dir() and entry.name.startswith("checkpoint-") and entry not in good:
                shutil.rmtree(entry, ignore_errors=True)


@dataclass
class _Progress:
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

    def tokens_per_second(self) -> float:
        elapsed = self.fit_seconds if self.fit_seconds is not None else (
            time.perf_counter() - self.started)
        return self.tokens / elapsed if elapsed > 0 else 0.0


class _CountingCollator:
    """Wraps the trainer's collator to count the real (unpadded) tokens it hands over."""

    def __init__(self, inner: Any, progress: _Progress) -> None:
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


def _step_callback(job: TrainingJob) -> Any:
    from transformers import TrainerCallback

    class StepEvents(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
            job.progress.step_done(int(state.global_step))
            if job.stop.requested and not job.progress.stopped:
                job.progress.stopped = True
                control.should_save = True  # a checkpoint at this very step
                control.should_training_stop = True
            return control

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
                   **kw: Any) -> Any:
            logs = logs or {}
            if "loss" not in logs:
                return control
            p = job.progress
            step = int(state.global_step)
            done = max(1, step - p.first_step)
            per_step = (time.perf_counter() - p.started) / done
            margin = logs.get("rewards/margins")
            job.emit(Step(step=step, max_steps=int(state.max_steps),
                          loss=float(logs["loss"]), lr=float(logs.get("learning_rate", 0.0)),
                          reward_margin=float(margin) if margin is not None else None,
                          tokens_per_second=round(p.tokens_per_second(), 2),
                          eta_s=round(per_step * max(0, int(state.max_steps) - step), 1),
                          epoch=round(float(logs.get("epoch", state.epoch or 0.0)), 4)))
            return control

    return StepEvents()


class TrainingJob:
    """setup() -> fit() -> evaluate() -> save(); run() does all four and reports."""

    def __init__(self, cfg: RunConfig, emit: Emit, stop: StopSignal | None = None) -> None:
        self.cfg = cfg
        self.emit = emit
        self.stop = stop or StopSignal(cfg.stop_file)
        self.progress = _Progress()
        self.trainer: Any = None
        self.model: Any = None
        self.tokenizer: Any = None
        self.train_examples: list[data_mod.Example] = []
        self.eval_examples: list[data_mod.Example] = []
        self.end_marker = ""
        self.model_info: Any = None
        self.base_sha256 = ""
        self.base: Any = None
        self.evaluation: Any = None
        self.resume_from: Path | None = None
        self.started_at = time.perf_counter()
        self.cuda = False

    # --- the whole run -----------------------------------------------------------------

    def run(self) -> int:
        """0 when the run completed or stopped as asked, 1 when it failed (a Failed event
        says why)."""
        try:
            self.setup()
            if self.stop.requested:
                return self._stopped()
            if not self.fit():
                return self._stopped()
            self.evaluate()
            record = self.save()
            self.emit(self._finished("completed", adapter_id=record.id))
            return 0
        except GhostDeskError as err:
            self.emit(Failed(reason=err.message, hint=err.hint or "",
                             detail=traceback.format_exc(limit=3)))
        except MemoryError:
            self.emit(Failed(reason="The computer ran out of memory while training.",
                             hint="Choose the Quick preset, a shorter maximum length or a "
                                  "smaller batch in Settings → Training → Advanced.",
                             detail=traceback.format_exc(limit=3)))
        except OSError as err:
            if err.errno == errno.ENOSPC:
                self.emit(Failed(reason="The disk is full; training stopped and nothing "
                                        "was half-written.",
                                 hint=f"Free some space on the disk holding {self.cfg.home}.",
                                 detail=str(err)))
            else:
                self.emit(Failed(reason=f"Training could not read or write a file: "
                                        f"{err.strerror or err}.",
                                 hint=f"File: {getattr(err, 'filename', '') or self.cfg.home}",
                                 detail=traceback.format_exc()))
        except Exception as err:
            name = type(err).__name__
            if "OutOfMemory" in name:
                self.emit(Failed(reason="The GPU ran out of memory while training.",
                                 hint="Choose a smaller batch or maximum length in Settings → "
                                      "Training → Advanced, or close other GPU programs.",
                                 detail=str(err)))
            else:
                self.emit(Failed(reason=f"Training failed unexpectedly ({name}: {err}).",
                                 hint=f"The details are in {self.cfg.log_file}.",
                                 detail=traceback.format_exc()))
        return 1

    def _stopped(self) -> int:
        ckpts = valid_checkpoints(self.cfg.checkpoint_dir)
        self.emit(self._finished("stopped", checkpoint=str(ckpts[-1]) if ckpts else ""))
        return 0

    def _finished(self, status: str, **kw: Any) -> Finished:
        p = self.progress
        train_seconds = p.fit_seconds if p.fit_seconds is not None else (
            time.perf_counter() - p.started)
        return Finished(status=status, step=p.last_step,
                        seconds=round(time.perf_counter() - self.started_at, 1),
                        train_seconds=round(train_seconds, 2), tokens=p.tokens,
                        tokens_per_second=round(p.tokens_per_second(), 2),
                        peak_rss_mb=round(peak_rss_mb(), 1), **kw)

    # --- setup ---------------------------------------------------------------------------

    def setup(self) -> None:
        cfg = self.cfg
        cfg.validate()
        from ghostdesk.core.llm.fingerprint import model_sha256
        from ghostdesk.core.llm.gguf_info import read_model_info

        self.emit(Preparing(stage="Reading the feedback…"))
        self.model_info = read_model_info(cfg.chat_model)
        loaded = data_mod.load_examples(cfg.train_file, cfg.method, self.model_info)
        # The feedback export writes no file when nothing is held out: then a slice of the
        # training examples is held out instead.
        held = (data_mod.load_examples(cfg.eval_file, cfg.method, self.model_info).examples
                if cfg.eval_file and Path(cfg.eval_file).exists() else None)
        self.train_examples, eval_examples = data_mod.split_examples(loaded.examples, held)
        self.eval_examples = eval_examples[:cfg.eval_max_examples]
        self.end_marker = loaded.end_marker
        n = data_mod.counts(self.train_examples, cfg.method)
        refuse_if_too_little_data(cfg.method, examples=n["examples"],
                                  desirable=n.get("desirable"), undesirable=n.get("undesirable"))

        import torch

        from ghostdesk.core.llm.engine import physical_cores
        from ghostdesk.core.training import base_model

        torch.set_num_threads(cfg.threads or physical_cores())
        self.cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
        if cfg.device == "cuda" and not torch.cuda.is_available():
            raise TrainingError("Training on the GPU was asked for, but CUDA is not available.",
                                hint="Choose Auto or CPU in Settings → Training.")
        self.base_sha256 = model_sha256(cfg.chat_model, Path(cfg.home) / "cache")
        self.base = base_model.prepare_training_base(
            self.model_info, self.base_sha256, cfg.base, home=cfg.home,
            progress=lambda stage: self.emit(Preparing(stage=stage)))
        self.emit(Preparing(stage="Loading the model for training…"))
        self.model, self.tokenizer = base_model.load_base(self.base, cuda=self.cuda,
                                                          load_in_4bit=cfg.load_in_4bit)
        self._use_end_marker_as_eos()
        checked, match = self._compare_with_chat_tokens()

        self.emit(Preparing(stage="Preparing the trainer…"))
        discard_incomplete_checkpoints(cfg.checkpoint_dir)
        ckpts = valid_checkpoints(cfg.checkpoint_dir)
        self.resume_from = ckpts[-1] if ckpts else None
        self.trainer = self._build_trainer()
        resumed = 0
        if self.resume_from is not None:
            resumed = int(self.resume_from.name.split("-", 1)[1])
        self.progress = _Progress(first_step=resumed, last_step=resumed,
                                  grad_accum=cfg.grad_accum)
        self.trainer.data_collator = _CountingCollator(self.trainer.data_collator, self.progress)
        self.emit(Started(run_id=cfg.run_id, method=cfg.method, preset=cfg.preset,
                          device="cuda" if self.cuda else "cpu", base=self.base.source,
                          train_examples=len(self.train_examples),
                          eval_examples=len(self.eval_examples),
                          max_steps=self.max_steps, resumed_from_step=resumed,
                          load_in_4bit=bool(getattr(self.model, "is_loaded_in_4bit", False)),
                          chat_tokens_checked=checked, chat_tokens_match=match))

    @property
    def max_steps(self) -> int:
        rows = len(data_mod.to_trl_rows(self.train_examples, self.cfg.method))
        return planned_steps(self.cfg, rows)

    def _use_end_marker_as_eos(self) -> None:
        """The trainers append the tokenizer's EOS to each reply unless it already ends with
        it. A chat reply ends with the end-of-turn marker, not EOS: making the marker the
        EOS keeps the trained text identical to the chat's."""
        marker = self.end_marker
        if marker and len(self.tokenizer(marker, add_special_tokens=False)["input_ids"]) == 1:
            self.tokenizer.eos_token = marker
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def _compare_with_chat_tokens(self) -> tuple[int, bool]:
        """Tokenize a few training texts with llama.cpp (the chat's tokenizer) and with the
        training tokenizer; they must agree for the LoRA to learn what the chat shows."""
        texts = [e.prompt + (e.completion or e.chosen) for e in self.train_examples[:_TOKEN_CHECKS]]
        chat = llama_cpp_tokens(self.cfg.chat_model, texts)
        if chat is None:
            return 0, True  # nothing to compare against; the run goes on
        match = all(ids == list(self.tokenizer(t, add_special_tokens=False)["input_ids"])
                    for ids, t in zip(chat, texts, strict=True))
        if not match:
            print("warning: the training tokenizer splits the chat text differently from "
                  "llama.cpp", file=sys.stderr)
        return len(texts), match

    def _target_modules(self) -> list[str]:
        present = {name.rsplit(".", 1)[-1] for name, _ in self.model.named_modules()}
        targets = [t for t in self.cfg.target_modules if t in present]
        if not targets:
            raise TrainingError(
                "None of the layers to train exist in this model "
                f"({', '.join(self.cfg.target_modules)}).",
                hint="Reset Settings → Training → Advanced → target layers.")
        return targets

    def _build_trainer(self) -> Any:
        from datasets import Dataset
        from peft import LoraConfig

        cfg = self.cfg
        lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=self._target_modules(), bias="none",
                          task_type="CAUSAL_LM")
        rows = data_mod.to_trl_rows(self.train_examples, cfg.method)
        dataset = Dataset.from_list(rows)
        common: dict[str, Any] = dict(
            output_dir=str(cfg.checkpoint_dir), per_device_train_batch_size=cfg.batch_size,
            gradient_accumulation_steps=cfg.grad_accum, learning_rate=cfg.learning_rate,
            max_steps=planned_steps(cfg, len(rows)), lr_scheduler_type="linear",
            warmup_steps=0, logging_steps=1, save_strategy="steps",
            save_steps=cfg.checkpoint_every, save_total_limit=2, report_to=[],
            seed=cfg.seed, data_seed=cfg.seed, disable_tqdm=True, dataloader_num_workers=0,
            bf16=bool(self.cuda and _bf16_ok()), fp16=False, use_cpu=not self.cuda,
            activation_checkpointing=self.cuda, max_length=cfg.max_length,
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
        trainer = trainer_cls(model=self.model, args=args, train_dataset=dataset,
                              processing_class=self.tokenizer, peft_config=lora,
                              callbacks=[_step_callback(self)])
        if len(trainer.train_dataset) == 0:
            # The trainers drop examples whose prompt alone fills max_length.
            raise TrainingError(
                f"Every training example is longer than the maximum length ({cfg.max_length} "
                "tokens), so there is nothing to learn from.",
                hint="Raise the maximum length in Settings → Training → Advanced.")
        return trainer

    # --- fit -----------------------------------------------------------------------------

    def fit(self) -> bool:
        """Train to the last step (True) or until asked to stop (False)."""
        self.progress.started = time.perf_counter()
        resume = str(self.resume_from) if self.resume_from else None
        self.trainer.train(resume_from_checkpoint=resume)
        self.progress.fit_seconds = time.perf_counter() - self.progress.started
        self.progress.last_step = int(self.trainer.state.global_step)
        return not self.progress.stopped

    # --- evaluate ------------------------------------------------------------------------

    def evaluate(self) -> None:
        from ghostdesk.core.training import evaluation

        cfg = self.cfg
        self.emit(Preparing(stage="Measuring the new adapter on held-out feedback…"))
        model = self.trainer.model
        previous_loaded = self._load_previous(model)
        stop_ids = []
        for text in (self.end_marker, self.tokenizer.eos_token):
            if text:
                ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
                if len(ids) == 1:
                    stop_ids.append(ids[0])
        prompts = list({e.prompt: e for e in self.eval_examples}.values())
        result = evaluation.evaluate(
            model, self.tokenizer, self.eval_examples, cfg.method, beta=cfg.beta,
            mode=cfg.adopt, previous_adapter=cfg.parent_adapter,
            previous_loaded=previous_loaded, max_length=cfg.max_length)
        if prompts and cfg.eval_generations:
            result.samples = evaluation.side_by_side(
                model, self.tokenizer, prompts[:cfg.eval_generations], adapter="default",
                max_new_tokens=cfg.generation_max_tokens, stop_ids=stop_ids)
        if previous_loaded:
            model.delete_adapter("previous")
            model.set_adapter("default")
        self.evaluation = result
        self.emit(Evaluated(
            accuracy=round(result.candidate.accuracy, 4),
            reward_margin=round(result.candidate.reward_margin, 4),
            examples=result.candidate.examples,
            previous_accuracy=round(result.previous.accuracy, 4),
            previous_reward_margin=round(result.previous.reward_margin, 4),
            previous_adapter=result.previous_adapter, recommended=result.decision.recommended,
            adopt=result.decision.adopt, reason=result.decision.reason,
            samples=result.samples))

    def _load_previous(self, model: Any) -> bool:
        """Load the adapter this run would replace as "previous", when it was trained for
        the same chat model; False when there is none or it can't be compared."""
        if not self.cfg.parent_adapter:
            return False
        from ghostdesk.core.training.registry import AdapterRegistry

        try:
            record = AdapterRegistry.in_home(self.cfg.home).get(self.cfg.parent_adapter)
        except GhostDeskError:
            return False
        if record.base_sha256 != self.base_sha256 or not record.peft_path.is_dir():
            return False
        try:
            model.load_adapter(str(record.peft_path), adapter_name="previous",
                               is_trainable=False)
        except Exception as err:
            print(f"warning: could not load adapter {record.id} to compare: {err}",
                  file=sys.stderr)
            return False
        model.set_adapter("default")
        return True

    # --- save ----------------------------------------------------------------------------

    def save(self) -> Any:
        from ghostdesk.core.training.adapter_gguf import convert_peft_to_gguf
        from ghostdesk.core.training.registry import (
            GGUF_NAME,
            PEFT_DIR,
            AdapterRecord,
            AdapterRegistry,
            new_adapter_id,
        )

        cfg, info = self.cfg, self.model_info
        self.emit(Preparing(stage="Saving the adapter…"))
        registry = AdapterRegistry.in_home(cfg.home)
        adapter_id = new_adapter_id()
        res = self.evaluation
        metrics: dict[str, Any] = {}
        if res is not None:
            metrics = {"accuracy": res.candidate.accuracy,
                       "reward_margin": res.candidate.reward_margin,
                       "eval_examples": res.candidate.examples,
                       "previous_accuracy": res.previous.accuracy,
                       "previous_reward_margin": res.previous.reward_margin,
                       "recommended": res.decision.recommended, "reason": res.decision.reason}
        counts = dict(cfg.data_counts) or {
            f"train_{k}": v for k, v in data_mod.counts(self.train_examples, cfg.method).items()}
        counts.setdefault("eval_examples", len(self.eval_examples))
        record = AdapterRecord(
            id=adapter_id, method=cfg.method, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            base_sha256=self.base_sha256, base_name=info.display_name,
            architecture=info.architecture, data_counts=counts, metrics=metrics,
            parent=cfg.parent_adapter, run_id=cfg.run_id,
            settings={"preset": cfg.preset, "lora_r": cfg.lora_r, "lora_alpha": cfg.lora_alpha,
                      "learning_rate": cfg.learning_rate, "steps": self.progress.last_step,
                      "max_length": cfg.max_length, "beta": cfg.beta,
                      "base": self.base.source})
        model = self.trainer.model
        heads = info.head_count[0] if info.head_count else 0
        kv_heads = info.head_count_kv[0] if info.head_count_kv else heads

        def write_files(folder: Path) -> None:
            model.save_pretrained(folder / PEFT_DIR, safe_serialization=True,
                                  selected_adapters=["default"])
            convert_peft_to_gguf(folder / PEFT_DIR, folder / GGUF_NAME,
                                 architecture=info.architecture, n_layers=info.n_layers,
                                 n_head=heads, n_head_kv=kv_heads,
                                 base_sha256=self.base_sha256, base_name=info.display_name,
                                 adapter_id=adapter_id)

        saved = registry.write_adapter(record, write_files)
        self.emit(Saved(adapter_id=saved.id, path=saved.path, gguf=str(saved.gguf_path)))
        # The run is complete: its checkpoints only take space now.
        shutil.rmtree(cfg.checkpoint_dir, ignore_errors=True)
        return saved


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
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
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


def _bf16_ok() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    except Exception:
        return False


def run_from_file(path: str | Path, emit: Emit) -> int:
    """Load run.json and run it (the child's entry point, minus the stdout plumbing)."""
    try:
        cfg = RunConfig.load(path)
    except GhostDeskError as err:
        emit(Failed(reason=err.message, hint=err.hint or ""))
        return 1
    # The launcher removes a STOP file left from an earlier attempt before starting us.
    stop = StopSignal(cfg.stop_file)
    stop.install_handlers()
    from ghostdesk.core.training.run_lock import hold_training_lock

    try:
        with hold_training_lock(cfg.home, cfg.run_id):
            return TrainingJob(cfg, emit, stop).run()
    except GhostDeskError as err:  # another run holds the data folder
        emit(Failed(reason=err.message, hint=err.hint or ""))
        return 1


def event_writer(stream: Any) -> Emit:
    """An emit function that writes each event as one flushed line."""
    from ghostdesk.core.training.events import encode

    lock = threading.Lock()

    def emit(event: TrainingEvent) -> None:
        line = encode(event) + "\n"
        with lock:
            stream.write(line)
            stream.flush()

    return emit


def child_main(argv: list[str]) -> int:
    """`python -m ghostdesk.core.training RUN.json`: events on stdout, all else on stderr."""
    if len(argv) != 1:
        print("usage: python -m ghostdesk.core.training RUN.json", file=sys.stderr)
        return 2
    # Keep the real stdout for events only; anything a library prints (progress bars,
    # warnings, native llama.cpp logs) goes to stderr, which the parent keeps as the log.
    events_fd = os.dup(1)
    os.dup2(2, 1)
    events = os.fdopen(events_fd, "w", encoding="utf-8", buffering=1)
    sys.stdout = sys.stderr
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the network from training
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("DISABLE_MLFLOW_INTEGRATION", "TRUE")
    os.environ.setdefault("WANDB_DISABLED", "true")
    try:
        return run_from_file(argv[0], event_writer(events))
    finally:
        events.flush()
