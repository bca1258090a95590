"""User settings: typed dataclasses, saved as a human-readable TOML file in the data folder.

A bad value never stops the app: it is replaced by its default, reported as a problem the UI
shows, and the user's original file is kept beside it so nothing they wrote is lost.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghostdesk.core.errors import SettingsError, StorageError

DEFAULT_PERSONA_NAME = "Ghost"
DEFAULT_SYSTEM_PROMPT = (
    "You are {name}, a warm and curious companion who lives on this person's computer. "
    "You talk with them like a close friend: you listen, remember what matters to them, "
    "ask about their day, share a light joke when it fits, and answer honestly and kindly. "
    "Keep replies conversational and not too long."
)


@dataclass
class ModelSettings:
    """Which GGUF file to run and how to place it on the hardware."""

    path: str = ""
    """GGUF file to chat with; empty means the bundled small model."""
    n_ctx: int = 4096
    """Context window in tokens; older turns are dropped to stay inside it."""
    n_gpu_layers: str | int = "auto"
    """"auto" fits as many layers as free VRAM allows; 0 = CPU only; -1 = all layers."""
    n_threads: int = 0
    """CPU threads for decoding; 0 lets GhostDesk pick the physical core count."""
    n_batch: int = 512
    """Prompt-processing batch size in tokens."""


@dataclass
class SamplingSettings:
    """How the next token is chosen."""

    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    max_tokens: int = 512
    """Longest reply in tokens."""
    seed: int = -1
    """-1 = a new random seed per reply."""


@dataclass
class PersonaSettings:
    """Who the companion is."""

    name: str = DEFAULT_PERSONA_NAME
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    """May contain {name}, replaced by the companion's name."""

    def rendered_system_prompt(self) -> str:
        return self.system_prompt.replace("{name}", self.name)


@dataclass
class FeedbackSettings:
    """How feedback is read from the conversation."""

    abandon_after_minutes: float = 10.0
    """No message and nothing else in the chat this long after a reply: the user left it."""


@dataclass
class MemoryToggle:
    """Whether the companion keeps and recalls memory crystals."""

    enabled: bool = True


TRAINING_METHODS = ("auto", "kto", "dpo", "sft")
TRAINING_PRESETS = ("auto", "quick", "standard", "thorough")
ADOPT_MODES = ("ask", "auto", "never")
TRAINING_DEVICES = ("auto", "cpu", "cuda")
_ADVANCED = ("lora_r", "lora_alpha", "learning_rate", "max_steps", "max_length", "batch_size",
             "beta")


@dataclass
class TrainingSettings:
    """The Training pane's choices; 0 in an Advanced field means "the preset's value"."""

    method: str = "auto"
    """"auto" (chosen from the feedback there is, with the reason shown), "kto" (👍/👎),
    "dpo" (versions rated differently) or "sft" (rewritten replies)."""
    preset: str = "auto"
    """"auto" (by data size and device), "quick", "standard" or "thorough"."""
    adopt: str = "ask"
    """After a run: "auto" activates a better adapter, "ask" asks, "never" only keeps it."""
    base_model: str = "auto"
    """"auto" (dequantize the chat model) or the original Hugging Face model's folder."""
    device: str = "auto"
    """"auto", "cpu" or "cuda"."""
    lora_r: int = 0
    lora_alpha: float = 0.0
    learning_rate: float = 0.0
    max_steps: int = 0
    max_length: int = 0
    batch_size: int = 0
    beta: float = 0.0

    def validate(self) -> None:
        _check(self.method in TRAINING_METHODS, "training.method", " / ".join(TRAINING_METHODS))
        _check(self.preset in TRAINING_PRESETS, "training.preset", " / ".join(TRAINING_PRESETS))
        _check(self.adopt in ADOPT_MODES, "training.adopt", " / ".join(ADOPT_MODES))
        _check(self.device in TRAINING_DEVICES, "training.device", " / ".join(TRAINING_DEVICES))
        _check(bool(self.base_model.strip()), "training.base_model",
               '"auto" or a model folder')
        _check(0 <= self.lora_r <= 1024, "training.lora_r", "0 (preset) to 1024")
        _check(0 <= self.lora_alpha <= 4096, "training.lora_alpha", "0 (preset) to 4096")
        _check(0 <= self.learning_rate <= 1e-2, "training.learning_rate", "0 (preset) to 0.01")
        _check(0 <= self.max_steps <= 1_000_000, "training.max_steps", "0 (preset) or more")
        _check(self.max_length == 0 or 16 <= self.max_length <= 131072, "training.max_length",
               "0 (preset) or 16 to 131072 tokens")
        _check(0 <= self.batch_size <= 512, "training.batch_size", "0 (preset) to 512")
        _check(0 <= self.beta <= 10, "training.beta", "0 (preset) to 10")

    def overrides(self) -> dict[str, Any]:
        """The Advanced fields that were set, for build_run_config(overrides=...)."""
        return {n: getattr(self, n) for n in _ADVANCED if getattr(self, n)}


@dataclass
class Settings:
    model: ModelSettings = field(default_factory=ModelSettings)
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    persona: PersonaSettings = field(default_factory=PersonaSettings)
    feedback: FeedbackSettings = field(default_factory=FeedbackSettings)
    memory: MemoryToggle = field(default_factory=MemoryToggle)
    training: TrainingSettings = field(default_factory=TrainingSettings)

    def validate(self) -> None:
        """Raise SettingsError naming the first bad value and what is allowed."""
        m, s = self.model, self.sampling
        _check(m.n_ctx >= 256 and m.n_ctx <= 1_048_576, "model.n_ctx", "256 to 1048576 tokens")
        if isinstance(m.n_gpu_layers, str):
            _check(m.n_gpu_layers == "auto", "model.n_gpu_layers", '"auto" or a number >= -1')
        else:
            _check(m.n_gpu_layers >= -1, "model.n_gpu_layers", '"auto" or a number >= -1')
        _check(0 <= m.n_threads <= 512, "model.n_threads", "0 (automatic) to 512")
        _check(1 <= m.n_batch <= 8192, "model.n_batch", "1 to 8192")
        _check(0.0 <= s.temperature <= 5.0, "sampling.temperature", "0.0 to 5.0")
        _check(0.0 < s.top_p <= 1.0, "sampling.top_p", "above 0.0 up to 1.0")
        _check(s.top_k >= 0, "sampling.top_k", "0 (off) or more")
        _check(0.0 <= s.min_p <= 1.0, "sampling.min_p", "0.0 to 1.0")
        _check(0.5 <= s.repeat_penalty <= 2.0, "sampling.repeat_penalty", "0.5 to 2.0")
        _check(1 <= s.max_tokens <= 65536, "sampling.max_tokens", "1 to 65536")
        _check(s.seed >= -1, "sampling.seed", "-1 (random) or a number >= 0")
        _check(bool(self.persona.name.strip()), "persona.name", "a non-empty name")
        _check(
            1.0 <= self.feedback.abandon_after_minutes <= 1440.0,
            "feedback.abandon_after_minutes",
            "1 to 1440 minutes (a day)",
        )
        self.training.validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check(ok: bool, key: str, allowed: str) -> None:
    if not ok:
        raise SettingsError(f"Setting {key} is out of range.", hint=f"Allowed: {allowed}.")


_SECTIONS = {
    "model": ModelSettings,
    "sampling": SamplingSettings,
    "persona": PersonaSettings,
    "feedback": FeedbackSettings,
    "memory": MemoryToggle,
    "training": TrainingSettings,
}


def settings_from_dict(raw: dict[str, Any]) -> tuple[Settings, list[str]]:
    """Build Settings from parsed TOML. Unknown keys are ignored; bad values fall back to
    their defaults, and each fallback is described in the returned problem list."""
    problems: list[str] = []
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        values = raw.get(name, {})
        if not isinstance(values, dict):
            problems.append(f"[{name}] is not a table; using defaults for it.")
            values = {}
        defaults = cls()
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in values:
                continue
            value, default = values[f.name], getattr(defaults, f.name)
            if _same_kind(value, default, f.name):
                kwargs[f.name] = float(value) if isinstance(default, float) else value
            else:
                problems.append(
                    f"{name}.{f.name} = {value!r} is not valid; using the default {default!r}."
                )
        sections[name] = cls(**kwargs)
    settings = Settings(**sections)
    # Range checks: replace each out-of-range value by its default, one at a time.
    for _ in range(32):
        try:
            settings.validate()
            break
        except SettingsError as err:
            key = str(err.message).split()[1]
            section, attr = key.split(".")
            default = getattr(_SECTIONS[section](), attr)
            problems.append(f"{err.message} {err.hint} Using the default {default!r}.")
            setattr(getattr(settings, section), attr, default)
    return settings, problems


def _same_kind(value: Any, default: Any, name: str) -> bool:
    if name == "n_gpu_layers":
        return value == "auto" or (isinstance(value, int) and not isinstance(value, bool))
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


class SettingsFile:
    """Reads and atomically writes settings.toml."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[str] = []

    def load(self) -> Settings:
        """Load settings; never raises for a bad file. Problems are left in `self.problems`,
        and an unreadable file is copied aside (settings.toml.broken-<time>) before defaults
        are used, so what the user wrote is never lost."""
        self.problems = []
        if not self.path.exists():
            return Settings()
        try:
            raw = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            aside = self._set_aside()
            self.problems.append(
                f"The settings file could not be read ({err}); defaults are in use. "
                f"Your file was kept as {aside.name}."
            )
            return Settings()
        settings, problems = settings_from_dict(raw)
        if problems:
            self._set_aside()
        self.problems.extend(problems)
        return settings

    def save(self, settings: Settings) -> None:
        import tomli_w

        settings.validate()
        text = tomli_w.dumps(settings.to_dict(), multiline_strings=True)
        tmp: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".settings-", suffix=".toml", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write("# GhostDesk settings. Edit while the app is closed, or use Settings.\n")
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as err:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            raise StorageError(
                f"Could not save settings to {self.path}: {err.strerror or err}.",
                hint="Check that the disk has free space and the data folder is writable.",
            ) from err

    def _set_aside(self) -> Path:
        aside = self.path.with_name(f"{self.path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(self.path, aside)
        return aside
