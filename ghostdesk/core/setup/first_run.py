"""Whether the welcome wizard is due, what the user chose in it, and the marker that says it
ran. The marker is a small file in the data folder; removing it shows the wizard again."""

from __future__ import annotations

import copy
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ghostdesk.core.paths import DataPaths
from ghostdesk.core.settings import Settings

MARKER_NAME = "first_run_done"
MODELS_FOLDER = "models"


def marker_path(paths: DataPaths) -> Path:
    return paths.root / MARKER_NAME


def models_dir(paths: DataPaths) -> Path:
    """Where downloaded models go: inside the data folder, so one folder holds everything."""
    return paths.root / MODELS_FOLDER


def first_run_needed(paths: DataPaths) -> bool:
    """True on a first launch: no marker yet and no settings file. A data folder from an
    earlier version (it has settings.toml) is not greeted as new."""
    return not marker_path(paths).exists() and not paths.settings.exists()


def mark_first_run_done(paths: DataPaths, outcome: str) -> None:
    """Record that the wizard ran (`outcome`: "finished" or "skipped"). Written atomically;
    a failure to write it only means the wizard shows again next time."""
    data = {"outcome": outcome, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    paths.root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".first-run-", dir=paths.root)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, marker_path(paths))
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class SetupChoice:
    """What the wizard settled. None leaves a setting as it is."""

    model_path: str | None = None
    """"" = the bundled model; a path = that GGUF file."""
    persona_name: str | None = None
    system_prompt: str | None = None
    downloaded_model_id: str | None = None
    """The catalogue id when the model was downloaded in the wizard."""


def apply_setup_choice(settings: Settings, choice: SetupChoice) -> Settings:
    """A copy of `settings` with the choice applied (validated by the caller when saved)."""
    new = copy.deepcopy(settings)
    if choice.model_path is not None:
        new.model.path = choice.model_path
    if choice.persona_name is not None and choice.persona_name.strip():
        new.persona.name = choice.persona_name.strip()
    if choice.system_prompt is not None and choice.system_prompt.strip():
        new.persona.system_prompt = choice.system_prompt
    return new
