"""Which replies go into each training dataset (KTO, DPO, SFT), and on which side of the split.

A reply counts only when it answers a user message, and (except as the reply a better
version replaces) has text and did not fail. KTO takes every reply whose reward is not 0;
DPO every pair of versions of one reply whose rewards differ; SFT every better reply, and
with `sft_min_reward` the replies rewarded at least that much. The held-out side (`split`)
is chosen per conversation. Each plan yields message ids only; `datasets` turns them into
records.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from ghostdesk.core.feedback.ledger_snapshot import LedgerSnapshot, SnapshotMessage
from ghostdesk.core.feedback.split import HELD_OUT_FRACTION, SPLIT_SALT, SPLITS, held_out

_EPSILON = 1e-9


@dataclass(frozen=True)
class DatasetOptions:
    """What to build and from which feedback."""

    system_prompt: str = ""
    """The persona's rendered system prompt, the first message of every prompt ("" for none)."""
    split: str = "train"
    """"train", "eval" (the held-out conversations) or "all"."""
    confirmed_only: bool = False
    """Count implicit signals only once the user confirmed them (pending ones are left out)."""
    sft_min_reward: float | None = None
    """Also put replies with at least this reward into SFT (None: only better replies)."""
    held_out_fraction: float = HELD_OUT_FRACTION
    salt: str = SPLIT_SALT

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {self.split!r}")


def _answers_user(snap: LedgerSnapshot, message: SnapshotMessage) -> bool:
    if message.role != "assistant" or message.parent_id is None:
        return False
    parent = snap.messages.get(message.parent_id)
    return parent is not None and parent.role == "user"


def _usable_reply(snap: LedgerSnapshot, message: SnapshotMessage) -> bool:
    """A reply that can be an example as it stands: it answers a user message, has text and
    did not fail."""
    return (
        _answers_user(snap, message) and message.status != "error" and bool(message.content.strip())
    )


def _in_split(conversation_id: int, options: DatasetOptions) -> bool:
    if options.split == "all":
        return True
    out = held_out(conversation_id, options.held_out_fraction, options.salt)
    return out if options.split == "eval" else not out


def kto_plan(snap: LedgerSnapshot, options: DatasetOptions) -> Iterator[tuple[int, float]]:
    for mid in sorted(snap.rewards):
        reward = snap.rewards[mid]
        message = snap.messages.get(mid)
        if message is None or abs(reward) <= _EPSILON or not _usable_reply(snap, message):
            continue
        if _in_split(message.conversation_id, options):
            yield mid, reward


def dpo_plan(snap: LedgerSnapshot, options: DatasetOptions) -> Iterator[tuple[int, int]]:
    slots: dict[int, list[int]] = defaultdict(list)
    for mid in snap.rewards:
        message = snap.messages.get(mid)
        if message is not None and _answers_user(snap, message):
            slots[message.parent_id] = []  # type: ignore[index]
    for mid, message in snap.messages.items():
        if message.parent_id in slots and _usable_reply(snap, message):
            slots[message.parent_id].append(mid)
    for parent_id in sorted(slots):
        versions = sorted(slots[parent_id])
        if len(versions) < 2:
            continue
        if not _in_split(snap.messages[parent_id].conversation_id, options):
            continue
        for i, a in enumerate(versions):
            for b in versions[i + 1 :]:
                ra, rb = snap.reward(a), snap.reward(b)
                if abs(ra - rb) <= _EPSILON:
                    continue
                yield (a, b) if ra > rb else (b, a)


def sft_plan(snap: LedgerSnapshot, options: DatasetOptions) -> Iterator[tuple[int, str]]:
    candidates = set(snap.better_replies)
    if options.sft_min_reward is not None:
        candidates.update(
            mid for mid, r in snap.rewards.items() if r + _EPSILON >= options.sft_min_reward
        )
    for mid in sorted(candidates):
        message = snap.messages.get(mid)
        if message is None or not _in_split(message.conversation_id, options):
            continue
        better = snap.better_replies.get(mid)
        if better is not None:
            if _answers_user(snap, message):
                yield mid, better
        elif _usable_reply(snap, message):
            yield mid, message.content
