"""The one family of errors a person must see, each with a message they can act on.

Anything that is not a GhostDeskError is a bug: it is logged with context, not shown as advice.
"""


class GhostDeskError(Exception):
    """An error the user can understand and act on. `str(err)` is the message to show."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class ModelFileError(GhostDeskError):
    """The model file is missing, unreadable, not a GGUF, truncated or unsupported."""


class ModelLoadError(GhostDeskError):
    """llama.cpp could not load or run a model that looked valid (e.g. out of memory)."""


class StorageError(GhostDeskError):
    """The data folder or database can't be read or written (disk full, read-only, corrupt)."""


class SettingsError(GhostDeskError):
    """A settings value is invalid; the message names the setting and the allowed values."""


class NotFoundError(GhostDeskError):
    """A conversation or message id that does not exist."""


class TrainingError(GhostDeskError):
    """A training run can't start or go on (too little feedback, a base model that doesn't
    match the chat model, a full disk); the message says what to do."""


class AdapterError(GhostDeskError):
    """A LoRA adapter can't be converted, saved or loaded (wrong base model, unsupported
    kind, pickled weights)."""
