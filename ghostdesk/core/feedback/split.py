"""The held-out split: which conversations are kept out of training, to evaluate adapters on.

A conversation's side is decided by a hash of its id with a fixed salt, so it never changes as
the ledger grows or between exports: a conversation held out today is held out next year, and
every reply of one conversation is on the same side (no near-duplicate turns leak across).
Conversation ids are never reused, so a deleted chat's id can't come back on the other side.
"""

from __future__ import annotations

import hashlib
from typing import Literal

HELD_OUT_FRACTION = 0.1
SPLIT_SALT = "ghostdesk.held-out.v1"
"""Changing the salt reshuffles every conversation: only with a new evaluation baseline."""

Split = Literal["train", "eval"]
SPLITS: tuple[str, ...] = ("train", "eval", "all")


def held_out(
    conversation_id: int, fraction: float = HELD_OUT_FRACTION, salt: str = SPLIT_SALT
) -> bool:
    """True when the conversation belongs to the evaluation side."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be within 0..1, not {fraction}")
    digest = hashlib.sha256(f"{salt}:{conversation_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < fraction * 2**64


def split_of(
    conversation_id: int, fraction: float = HELD_OUT_FRACTION, salt: str = SPLIT_SALT
) -> Split:
    return "eval" if held_out(conversation_id, fraction, salt) else "train"
