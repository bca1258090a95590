"""A benchmark result that prints as Markdown and appends itself to docs/benchmarks.md."""

from __future__ import annotations

import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def machine_line() -> str:
    import os

    import psutil

    ram = psutil.virtual_memory().total / 2**30
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} logical CPUs, "
            f"{ram:.0f} GiB RAM, Python {platform.python_version()}")


@dataclass
class BenchReport:
    title: str
    rows: list[tuple[str, str]] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    command: str = field(default_factory=lambda: "ghostdesk " + shlex.join(sys.argv[1:]))

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "command": self.command, **self.data,
                "verdicts": self.verdicts}

    def to_markdown(self) -> str:
        lines = [f"### {self.title}", "",
                 f"- Command: `{self.command}`",
                 f"- Date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
                 f"- Machine: {machine_line()}", "",
                 "| measure | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in self.rows]
        if self.verdicts:
            lines += [""] + [f"- {v}" for v in self.verdicts]
        return "\n".join(lines) + "\n"

    def append_to(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write("\n" + self.to_markdown())
