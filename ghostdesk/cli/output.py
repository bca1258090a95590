"""How every CLI verb answers: JSON (`--json`) or text for people, and yes/no questions."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO


def as_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def emit(args: argparse.Namespace, out: TextIO, data: Any, text: str) -> int:
    """Print `data` as one JSON document with --json, else `text`; returns exit code 0."""
    print(json.dumps(data, ensure_ascii=False, default=str) if as_json(args) else text,
          file=out)
    return 0


def stdin_is_tty() -> bool:
    try:
        return bool(sys.stdin and sys.stdin.isatty())
    except (AttributeError, ValueError):
        return False


def confirm(question: str, out: TextIO) -> bool:
    """Ask a yes/no question on a terminal; anything but y / yes is no."""
    print(f"{question} [y/N] ", end="", file=out, flush=True)
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def positive_int(text: str) -> int:
    """argparse type: a whole number of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, not {text!r}")
    return value


def duration(seconds: float | None) -> str:
    s = max(0, int(round(seconds or 0)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


def signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.3f}"


def one_line(text: str, limit: int = 160) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"
