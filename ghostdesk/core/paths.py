"""Where GhostDesk keeps its data: $GHOSTDESK_HOME if set, else the platform's user data dir."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "GhostDesk"
HOME_ENV = "GHOSTDESK_HOME"


def data_dir() -> Path:
    """The data folder, created if missing. Nothing else decides this location."""
    override = os.environ.get(HOME_ENV)
    if override:
        root = Path(override).expanduser()
    else:
        import platformdirs

        root = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False, roaming=True))
    root.mkdir(parents=True, exist_ok=True)
    return root


@dataclass(frozen=True)
class DataPaths:
    """Every file and folder inside one data folder."""

    root: Path

    @classmethod
    def default(cls) -> DataPaths:
        return cls(data_dir())

    @property
    def database(self) -> Path:
        return self.root / "ghostdesk.sqlite3"

    @property
    def settings(self) -> Path:
        return self.root / "settings.toml"

    @property
    def backups(self) -> Path:
        return self.root / "backups"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def ensure(self) -> DataPaths:
        for folder in (self.root, self.backups, self.logs, self.cache):
            folder.mkdir(parents=True, exist_ok=True)
        return self
