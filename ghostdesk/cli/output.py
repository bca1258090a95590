"""How every CLI verb answers: JSON (`--json`) or text for people, and yes/no questions.

Text for people is made terminal-safe: messages, replies and memory texts are untrusted (a
reply or an imported file can hold escape sequences that clear the screen, set the window
title or ring the bell), so control characters are shown, never sent to the terminal.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any, TextIO

# C0 controls but tab and newline, DEL, C1 controls (a lone 0x9b is a CSI to some
# terminals), and the bidirectional overrides/isolates that reorder what is shown.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """`text` with every control character written out visibly (ESC → \\x1b, U+202E →
    <U+202E>), so printing it can't drive the terminal."""
    return _UNSAFE.sub(_visible, text)


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"<U+{code:04X}>"


def json_text(data: Any, **kwargs: Any) -> str:
    """`data` as JSON (non-ASCII text kept readable) with the control characters json.dumps
    leaves raw (DEL, C1, bidi controls) escaped as \\uXXXX: still the exact same JSON value,
    and safe on a terminal."""
    kwargs.setdefault("ensure_ascii", False)
    kwargs.setdefault("default", str)
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(data, **kwargs))


class TerminalSafeWriter:
    """A text stream that passes everything through `terminal_safe` (the CLI's text output)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(terminal_safe(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return bool(getattr(self._stream, "isatty", lambda: False)())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def as_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def emit(args: argparse.Namespace, out: TextIO, data: Any, text: str) -> int:
    """Print `data` as one JSON document with --json, else `text`; returns exit code 0."""
    print(json_text(data) if as_json(args) else text, file=out)
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
