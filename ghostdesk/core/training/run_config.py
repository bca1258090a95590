"""What one training run does: the method, the data, the base model and every knob, with presets.

A run is described by one `RunConfig`, saved as `run.json` in the run's folder; the child
process (`python -m ghostdesk.core.training run.json`) reads nothing else, so a stopped or
killed run resumes by starting the same file again.

Presets are chosen from the amount of feedback and the device: *Quick* on a CPU (minutes for
the bundled model), *Standard* and *Thorough* on a GPU as the feedback grows. Every field can
be overridden (the "Advanced" part of the Training pane).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ghostdesk.core.errors import SettingsError, TrainingError

METHODS = ("kto", "dpo", "sft")
PRESETS = ("quick", "standard", "thorough")
ADOPT_MODES = ("ask", "auto", "never")
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
                   # fused projections of Phi-3-style models; only names a model has are used
                   "qkv_proj", "gate_up_proj")

# Fewest training examples a run starts with. Below these a LoRA learns noise: a handful of
# ratings can't separate the person's taste from the topics they happened to talk about.
MIN_EXAMPLES = {"kto": 16, "dpo": 8, "sft": 8}
MIN_PER_LABEL = 4
"""KTO needs both kinds of rating: at least this many 👍 and this many 👎."""

_PRESET_VALUES: dict[str, dict[str, Any]] = {
    # A few minutes on a laptop CPU for the bundled model.
    "quick": {"lora_r": 8, "lora_alpha": 16.0, "learning_rate": 2e-4, "epochs": 1.0,
              "step_cap": 60, "max_length": 256, "batch_size": 2, "grad_accum": 1,
              "checkpoint_every": 10},
    "standard": {"lora_r": 16, "lora_alpha": 32.0, "learning_rate": 1e-4, "epochs": 2.0,
                 "step_cap": 400, "max_length": 512, "batch_size": 4, "grad_accum": 2,
                 "checkpoint_every": 25},
    "thorough": {"lora_r": 32, "lora_alpha": 64.0, "learning_rate": 5e-5, "epochs": 3.0,
                 "step_cap": 2000, "max_length": 1024, "batch_size": 4, "grad_accum": 4,
                 "checkpoint_every": 50},
}


@dataclass
class RunConfig:
    """One training run. Paths are absolute strings so the file can be read by a child."""

    method: str = "kto"
    """"kto": 👍/👎 on single replies (unpaired). "dpo": two versions of one reply rated
    differently. "sft": replies the user rewrote."""
    train_file: str = ""
    """JSON Lines in TRL's conversational format (see ghostdesk.core.feedback.datasets)."""
    eval_file: str = ""
    """Held-out examples in the same format; empty: records marked `"meta": {"split": "eval"}`
    in the train file, else a slice of the train file."""
    chat_model: str = ""
    """The GGUF file the chat runs; the adapter is made for exactly this file."""
    base: str = "auto"
    """"auto": dequantize the chat GGUF into a float model (cached). Otherwise a folder with the
    original Hugging Face model of the same architecture (trained 4-bit on CUDA)."""
    home: str = ""
    """The data folder (GHOSTDESK_HOME); adapters, caches and runs live under it."""
    run_id: str = ""
    """Folder name of this run under <home>/training/."""
    preset: str = "quick"
    """The preset the values below came from ("quick", "standard", "thorough"), for display."""

    lora_r: int = 8
    """LoRA rank: the adapter's capacity. Higher learns more and costs more memory."""
    lora_alpha: float = 16.0
    """LoRA scale numerator; the update is scaled by alpha / r."""
    lora_dropout: float = 0.0
    """Dropout on the LoRA input; 0 for the short runs of one person's feedback."""
    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    """Linear layers that get a LoRA; names the model does not have are skipped."""

    learning_rate: float = 2e-4
    """AdamW learning rate for the LoRA weights."""
    epochs: float = 1.0
    """Passes over the training examples (used when max_steps is 0)."""
    max_steps: int = 0
    """Optimizer steps; 0: from epochs, capped by step_cap."""
    step_cap: int = 60
    """Upper bound on optimizer steps when they are computed from epochs."""
    batch_size: int = 2
    """Examples per forward pass (KTO needs at least 2: its KL term pairs examples)."""
    grad_accum: int = 1
    """Forward passes per optimizer step."""
    max_length: int = 256
    """Tokens per example (prompt + reply); longer prompts lose their oldest part."""
    beta: float = 0.1
    """KTO/DPO: how far the adapter may move from the base model (higher: less far)."""
    seed: int = 0
    """Seed for the LoRA initialisation and the data order."""
    checkpoint_every: int = 10
    """Save a resumable checkpoint every this many steps (and when stopped)."""

    eval_max_examples: int = 64
    """Held-out examples scored after training (more: a surer verdict, a slower end)."""
    eval_generations: int = 2
    """Held-out prompts answered side by side by the base and the adapter."""
    generation_max_tokens: int = 40
    """Length limit of those side-by-side answers."""
    adopt: str = "ask"
    """After evaluation: "auto" activates a better adapter, "ask" leaves the choice to the
    user, "never" only keeps it."""
    parent_adapter: str = ""
    """Id of the adapter this run would replace (the active one), measured on the same
    held-out feedback; empty: the base model."""
    data_counts: dict[str, int] = field(default_factory=dict)
    """How many examples of each kind the caller exported (recorded with the adapter)."""

    device: str = "auto"
    """"auto" (CUDA when present), "cpu" or "cuda"."""
    load_in_4bit: bool | None = None
    """QLoRA: load the base in 4 bits (needs CUDA and bitsandbytes). None: when the base is
    a Hugging Face folder and CUDA is present."""
    threads: int = 0
    """CPU threads for torch; 0: the physical cores."""

    # --- paths derived from home and run_id ----------------------------------------------

    @property
    def run_dir(self) -> Path:
        return Path(self.home) / "training" / self.run_id

    @property
    def stop_file(self) -> Path:
        """Created by the parent to ask the run to stop after the current step."""
        return self.run_dir / "STOP"

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "training.log"

    @property
    def config_file(self) -> Path:
        return self.run_dir / "run.json"

    # --- checks and files ---------------------------------------------------------------

    def validate(self) -> None:
        """Raise SettingsError naming the first bad value and what is allowed."""
        _check(self.method in METHODS, "method", " / ".join(METHODS))
        _check(self.preset in PRESETS, "preset", " / ".join(PRESETS))
        _check(self.adopt in ADOPT_MODES, "adopt", " / ".join(ADOPT_MODES))
        _check(self.device in DEVICES, "device", " / ".join(DEVICES))
        _check(1 <= self.lora_r <= 1024, "lora_r", "1 to 1024")
        _check(0 < self.lora_alpha <= 4096, "lora_alpha", "above 0, at most 4096")
        _check(0 <= self.lora_dropout < 1, "lora_dropout", "0 to below 1")
        _check(bool(self.target_modules), "target_modules", "at least one layer name")
        _check(0 < self.learning_rate <= 1e-2, "learning_rate", "above 0, at most 0.01")
        _check(0 < self.epochs <= 100, "epochs", "above 0, at most 100")
        _check(0 <= self.max_steps <= 1_000_000, "max_steps", "0 (from epochs) or more")
        _check(1 <= self.step_cap <= 1_000_000, "step_cap", "1 or more")
        _check(1 <= self.batch_size <= 512, "batch_size", "1 to 512")
        _check(self.method != "kto" or self.batch_size >= 2, "batch_size",
               "2 or more for KTO (its KL estimate pairs the examples of a batch)")
        _check(1 <= self.grad_accum <= 1024, "grad_accum", "1 to 1024")
        _check(16 <= self.max_length <= 131072, "max_length", "16 to 131072 tokens")
        _check(0 < self.beta <= 10, "beta", "above 0, at most 10")
        _check(1 <= self.checkpoint_every <= 1_000_000, "checkpoint_every", "1 or more")
        _check(0 <= self.eval_max_examples <= 100_000, "eval_max_examples", "0 or more")
        _check(0 <= self.eval_generations <= 32, "eval_generations", "0 to 32")
        _check(1 <= self.generation_max_tokens <= 4096, "generation_max_tokens", "1 to 4096")
        _check(bool(self.train_file), "train_file", "a JSON Lines file of examples")
        _check(bool(self.chat_model), "chat_model", "the chat model's .gguf file")
        _check(bool(self.home), "home", "the data folder")
        _check(bool(self.run_id) and "/" not in self.run_id and "\\" not in self.run_id
               and self.run_id not in (".", ".."), "run_id", "a plain folder name")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["target_modules"] = list(self.target_modules)
        return d

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise SettingsError(f"Unknown training setting(s): {', '.join(unknown)}.",
                                hint=f"Known settings: {', '.join(sorted(known))}.")
        values = dict(raw)
        if "target_modules" in values:
            values["target_modules"] = tuple(values["target_modules"])
        return cls(**values)

    def save(self) -> Path:
        """Write run.json into the run folder (atomically) and return its path."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.config_file
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise TrainingError(f"Could not read the training run file {path}: {err}",
                                hint="Start the training again from the Training pane.") from err
        if not isinstance(raw, dict):
            raise TrainingError(f"The training run file {path} is not a settings object.")
        return cls.from_dict(raw)


def _check(ok: bool, key: str, allowed: str) -> None:
    if not ok:
        raise SettingsError(f"Training setting {key} is out of range.", hint=f"Allowed: {allowed}.")


def new_run_id() -> str:
    """Sortable by start time, unique without coordination."""
    return time.strftime("run-%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def new_run_folder(home: str | Path, run_id: str = "") -> tuple[str, Path, Path]:
    """(run_id, train file, eval file) for a new run: export the feedback into these two
    files, so that resuming the run trains on the very same examples."""
    run_id = run_id or new_run_id()
    folder = Path(home) / "training" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    return run_id, folder / "train.jsonl", folder / "eval.jsonl"


_CUDA_PROBE = "import torch; print(bool(torch.cuda.is_available()))"
_cuda_answer: bool | None = None


def cuda_available() -> bool:
    """Whether training can use CUDA here. A process that already holds torch (the training
    child) asks it directly; any other asks a short child process once (seconds: it imports
    torch), because PyTorch's CUDA libraries loaded next to a CUDA build of llama.cpp (the
    chat model) can crash the process, and torch costs hundreds of MB."""
    global _cuda_answer
    if "torch" in sys.modules:
        try:
            return bool(sys.modules["torch"].cuda.is_available())
        except Exception:
            return False
    if _cuda_answer is None:
        try:
            done = subprocess.run([sys.executable, "-c", _CUDA_PROBE], capture_output=True,
                                  text=True, timeout=120, stdin=subprocess.DEVNULL)
            lines = done.stdout.strip().splitlines()
            _cuda_answer = done.returncode == 0 and bool(lines) and lines[-1] == "True"
        except (OSError, subprocess.SubprocessError):
            _cuda_answer = False
    return _cuda_answer


def recommend_preset(n_train: int, *, cuda: bool) -> str:
    """Quick on a CPU (anything longer takes hours); on a GPU, Standard until the feedback
    is large enough that three passes with a bigger adapter pay off."""
    if not cuda:
        return "quick"
    return "thorough" if n_train >= 1000 else "standard"


def resolve_preset(preset: str, n_train: int, *, cuda: bool) -> str:
    """The preset a run uses: `preset` itself, or for "auto" the one recommended for this
    much feedback on this device."""
    return recommend_preset(n_train, cuda=cuda) if preset == "auto" else preset


def run_uses_cuda(device: str, cuda: Callable[[], bool] | None = None) -> bool:
    """Whether a run set to `device` ("auto", "cpu", "cuda") trains on the GPU. `cuda`
    (default: cuda_available, which imports torch in a child process: seconds) is only
    asked for "auto"."""
    if device == "cuda":
        return True
    if device == "cpu":
        return False
    return bool((cuda or cuda_available)())


def preset_values(preset: str) -> dict[str, Any]:
    if preset not in _PRESET_VALUES:
        raise SettingsError(f"Unknown training preset {preset!r}.",
                            hint=f"Allowed: {' / '.join(PRESETS)}.")
    return dict(_PRESET_VALUES[preset])


def preset_config(preset: str, n_train: int, *, cuda: bool,
                  overrides: dict[str, Any] | None = None) -> RunConfig:
    """The knobs a run with `preset` ("auto" resolved for this much feedback on this device)
    and these Advanced overrides trains with, for showing them before a run is planned."""
    chosen = resolve_preset(preset, n_train, cuda=cuda)
    return replace(RunConfig(preset=chosen), **{**preset_values(chosen), **(overrides or {})})


def build_run_config(*, method: str, train_file: str | Path, chat_model: str | Path,
                     home: str | Path, n_train: int, eval_file: str | Path = "",
                     preset: str = "auto", device: str = "auto", base: str = "auto",
                     adopt: str = "ask", parent_adapter: str = "",
                     data_counts: dict[str, int] | None = None,
                     overrides: dict[str, Any] | None = None,
                     run_id: str = "") -> RunConfig:
    """A validated RunConfig: the preset for this much data on this device, then the
    Advanced overrides on top (unknown names raise SettingsError)."""
    chosen = resolve_preset(preset, n_train, cuda=run_uses_cuda(device))
    values = preset_values(chosen)
    if method == "kto":
        values["batch_size"] = max(2, values["batch_size"])
    cfg = RunConfig(method=method, train_file=str(train_file), eval_file=str(eval_file or ""),
                    chat_model=str(chat_model), base=base, home=str(home),
                    run_id=run_id or new_run_id(), preset=chosen, device=device, adopt=adopt,
                    parent_adapter=parent_adapter, data_counts=dict(data_counts or {}),
                    **values)
    if overrides:
        known = {f.name for f in fields(RunConfig)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise SettingsError(f"Unknown training setting(s): {', '.join(unknown)}.",
                                hint=f"Known settings: {', '.join(sorted(known))}.")
        cfg = replace(cfg, **overrides)
        if "target_modules" in overrides:
            cfg.target_modules = tuple(cfg.target_modules)
    cfg.validate()
    return cfg


def planned_steps(cfg: RunConfig, n_train: int) -> int:
    """Optimizer steps the run will take for `n_train` training examples."""
    if cfg.max_steps > 0:
        return cfg.max_steps
    per_epoch = max(1, -(-n_train // (cfg.batch_size * cfg.grad_accum)))
    return max(1, min(cfg.step_cap, round(per_epoch * cfg.epochs)))


def missing_examples(method: str, *, examples: int, desirable: int | None = None,
                     undesirable: int | None = None) -> int:
    """How many more examples a run needs before it can start (0: enough)."""
    need = max(0, MIN_EXAMPLES.get(method, 8) - examples)
    if method == "kto" and desirable is not None and undesirable is not None:
        need = max(need, MIN_PER_LABEL - desirable, MIN_PER_LABEL - undesirable)
    return need


def refuse_if_too_little_data(method: str, *, examples: int, desirable: int | None = None,
                              undesirable: int | None = None) -> None:
    """Raise TrainingError saying how many more rated replies are needed."""
    refusal = too_little_data(method, examples=examples, desirable=desirable,
                              undesirable=undesirable)
    if refusal is not None:
        raise refusal


def too_little_data(method: str, *, examples: int, desirable: int | None = None,
                    undesirable: int | None = None) -> TrainingError | None:
    """The refusal of a run with this much feedback ("Training needs N more …" and what to
    do about it), None when there is enough."""
    need = missing_examples(method, examples=examples, desirable=desirable,
                            undesirable=undesirable)
    if not need:
        return None
    if method == "kto":
        parts = [f"Training needs {need} more rated {'reply' if need == 1 else 'replies'}"]
        have = f"it has {examples}"
        if desirable is not None and undesirable is not None:
            have += f" ({desirable} 👍, {undesirable} 👎)"
        parts.append(f": {have}, and needs at least {MIN_EXAMPLES['kto']}, with at least "
                     f"{MIN_PER_LABEL} 👍 and {MIN_PER_LABEL} 👎.")
        hint = "Rate more replies with 👍, 👎 or 😂, then start training again."
    elif method == "dpo":
        parts = [f"Training needs {need} more {'pair' if need == 1 else 'pairs'} of rated "
                 f"versions: it has {examples}, and needs at least {MIN_EXAMPLES['dpo']}."]
        hint = "Regenerate replies and rate the versions differently (👍 one, 👎 another)."
    else:
        parts = [f"Training needs {need} more rewritten "
                 f"{'reply' if need == 1 else 'replies'}: it has {examples}, and needs at "
                 f"least {MIN_EXAMPLES['sft']}."]
        hint = "Write better versions of some replies, then start training again."
    return TrainingError("".join(parts), hint=hint)


# The Training pane's choices are a settings section (ghostdesk.core.settings).
from ghostdesk.core.settings import TrainingSettings  # noqa: E402,F401
