"""Training datasets from the reward ledger, in the conversational formats TRL trains on.

What goes in, and why:

- **KTO** (unpaired, binary): every reply whose reward is not 0. `prompt` is the
  conversation up to the reply as chat messages, `completion` is the reply, `label` is
  `reward > 0`, and `weight` is `|reward|` (a reply the user laughed at *and* liked weighs
  more than one that was merely continued). Replies with reward 0 are neutral: left out.
- **DPO** (pairs): versions of the same reply (regenerations: same conversation, same
  parent message) whose rewards differ. Every such pair is one record; the version with the
  higher reward is `chosen`. A version nobody rated has reward 0, so it loses to a 👍 and wins
  against a 👎.
- **SFT** (targets): every better reply the user wrote, as the answer to the reply's prompt;
  with `sft_min_reward`, also the replies whose reward is at least that (and that have no
  better reply, which replaces them).

Common rules: a reply counts only when it answers a user message, and (except as the reply
a better version replaces) has text and did not fail. Dismissed signals count nowhere; with
`confirmed_only`, pending signals don't either. The prompt is exactly what the model was
given at chat time: the persona's system prompt first, then the thread from its root down to
the user message the reply answers, minus the oldest messages that were left out to fit the
context window then (`dropped_turns`); system messages stored in the thread are not part of
it, as in `Companion.build_prompt`. The held-out side (`split.py`) is chosen per
conversation.

Everything is read in a few bulk queries into a `LedgerSnapshot`; records are generated
lazily, so writing 100,000 of them holds one record at a time beyond the snapshot.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.feedback.records import ACTIVE, CONFIRMED, PENDING
from ghostdesk.core.feedback.split import HELD_OUT_FRACTION, SPLIT_SALT, SPLITS, held_out
from ghostdesk.core.feedback.weights import RewardWeights, load_weights
from ghostdesk.core.store.db import Database

Format = Literal["kto", "dpo", "sft"]
FORMATS: tuple[str, ...] = ("kto", "dpo", "sft")
_EPSILON = 1e-9


class _Message(NamedTuple):
    id: int
    conversation_id: int
    parent_id: int | None
    role: str
    content: str
    status: str
    dropped_turns: int
    system_prompt: str | None
    """For replies: the exact system text given at chat time (persona + recalled memories);
    None for replies saved before it was recorded."""


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


@dataclass
class LedgerSnapshot:
    """The messages, rewards and better replies the builders need, read in bulk."""

    messages: dict[int, _Message]
    rewards: dict[int, float]
    """Reply id -> reward, for replies with at least one counted event."""
    better_replies: dict[int, str]
    weights: RewardWeights

    def reward(self, message_id: int) -> float:
        return self.rewards.get(message_id, 0.0)


def load_snapshot(
    db: Database, *, confirmed_only: bool = False, better_replies_only: bool = False
) -> LedgerSnapshot:
    """Read every conversation that has feedback, in three queries. `better_replies_only`
    reads only the conversations with a better reply (all an SFT export of them needs)."""
    statuses = (ACTIVE, CONFIRMED) if confirmed_only else (ACTIVE, PENDING, CONFIRMED)
    marks = ", ".join("?" for _ in statuses)
    with db.read_session() as s:
        weights = load_weights(s)
        # Plain sqlite3 rows: building ORM objects or SQLAlchemy Rows for a few hundred
        # thousand messages would cost more than the queries themselves.
        s.connection()  # begins the read transaction the raw cursor then runs in
        raw = s.connection().connection.driver_connection
        assert raw is not None
        rewards: dict[int, float] = defaultdict(float)
        for mid, kind, n in raw.execute(
            f"SELECT message_id, kind, count(*) FROM feedback_events WHERE status IN ({marks}) "
            "GROUP BY message_id, kind",
            statuses,
        ):
            rewards[mid] += weights[kind] * n
        better = dict(
            raw.execute(
                "SELECT message_id, text FROM feedback_events WHERE kind = 'better_reply' "
                "AND status = 'active' AND text IS NOT NULL ORDER BY id"
            )
        )
        having = (
            "e.kind = 'better_reply' AND e.status = 'active'"
            if better_replies_only
            else f"e.status IN ({marks})"
        )
        rows = raw.execute(
            "SELECT id, conversation_id, parent_id, role, content, status, dropped_turns, "
            "json_extract(generation_settings, '$.system_prompt') "
            "FROM messages WHERE conversation_id IN (SELECT DISTINCT m.conversation_id "
            f"FROM feedback_events AS e JOIN messages AS m ON m.id = e.message_id "
            f"WHERE {having})",
            () if better_replies_only else statuses,
        )
        make = _Message._make  # tuple.__new__ straight from the row: the fastest way in
        messages = {row[0]: make(row) for row in rows}
    return LedgerSnapshot(
        messages=messages,
        rewards={mid: round(r, 6) for mid, r in rewards.items()},
        better_replies=better,
        weights=weights,
    )


# -- which replies go in -----------------------------------------------------------------


def _answers_user(snap: LedgerSnapshot, message: _Message) -> bool:
    if message.role != "assistant" or message.parent_id is None:
        return False
    parent = snap.messages.get(message.parent_id)
    return parent is not None and parent.role == "user"


def _usable_reply(snap: LedgerSnapshot, message: _Message) -> bool:
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


def _kto_plan(snap: LedgerSnapshot, options: DatasetOptions) -> Iterator[tuple[int, float]]:
    for mid in sorted(snap.rewards):
        reward = snap.rewards[mid]
        message = snap.messages.get(mid)
        if message is None or abs(reward) <= _EPSILON or not _usable_reply(snap, message):
            continue
        if _in_split(message.conversation_id, options):
            yield mid, reward


def _dpo_plan(snap: LedgerSnapshot, options: DatasetOptions) -> Iterator[tuple[int, int]]:
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


def _sft_plan(snap: LedgerSnapshot, options: DatasetOptions) -> Iterator[tuple[int, str]]:
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


# -- records -----------------------------------------------------------------------------


def _prompt_ids(snap: LedgerSnapshot, reply_id: int) -> list[int]:
    """The messages (ids) the model was given to write reply `reply_id`, oldest first."""
    messages = snap.messages
    reply = messages[reply_id]
    path: list[int] = []
    node = reply.parent_id
    while node is not None:
        message = messages[node]
        if message.role != "system":
            path.append(node)
        node = message.parent_id
    path.reverse()
    dropped = min(max(reply.dropped_turns or 0, 0), max(len(path) - 1, 0))
    return path[dropped:]


def prompt_messages(
    snap: LedgerSnapshot, reply_id: int, system_prompt: str = ""
) -> list[dict[str, str]]:
    """The chat messages the model was given to write reply `reply_id`: the system text
    recorded with the reply when there is one (it holds the memories recalled for it), else
    `system_prompt` (the persona's)."""
    messages = snap.messages
    history = [
        {"role": messages[i].role, "content": messages[i].content}
        for i in _prompt_ids(snap, reply_id)
    ]
    recorded = messages[reply_id].system_prompt
    system = (recorded if recorded is not None else system_prompt).strip()
    return ([{"role": "system", "content": system}] if system else []) + history


def _assistant(content: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": content}]


def kto_records(snap: LedgerSnapshot, options: DatasetOptions) -> Iterator[dict[str, Any]]:
    """`{"prompt": [...], "completion": [...], "label": bool, "weight": float}` per reply."""
    for mid, reward in _kto_plan(snap, options):
        yield {
            "prompt": prompt_messages(snap, mid, options.system_prompt),
            "completion": _assistant(snap.messages[mid].content),
            "label": reward > 0,
            "weight": round(abs(reward), 6),
        }


def dpo_records(snap: LedgerSnapshot, options: DatasetOptions) -> Iterator[dict[str, Any]]:
    """`{"prompt": [...], "chosen": [...], "rejected": [...]}` per pair of versions."""
    for chosen, rejected in _dpo_plan(snap, options):
        yield {
            "prompt": prompt_messages(snap, chosen, options.system_prompt),
            "chosen": _assistant(snap.messages[chosen].content),
            "rejected": _assistant(snap.messages[rejected].content),
        }


def sft_records(snap: LedgerSnapshot, options: DatasetOptions) -> Iterator[dict[str, Any]]:
    """`{"messages": [... prompt ..., {"role": "assistant", "content": target}]}`."""
    for mid, target in _sft_plan(snap, options):
        yield {"messages": prompt_messages(snap, mid, options.system_prompt) + _assistant(target)}


_BUILDERS = {"kto": kto_records, "dpo": dpo_records, "sft": sft_records}


def build_records(
    fmt: str, snap: LedgerSnapshot, options: DatasetOptions
) -> Iterator[dict[str, Any]]:
    if fmt not in _BUILDERS:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    return _BUILDERS[fmt](snap, options)


def meta_records(
    fmt: str, snap: LedgerSnapshot, options: DatasetOptions
) -> Iterator[dict[str, Any]]:
    """The records with a "meta" entry each: which messages they came from, rewards, split."""
    records = build_records(fmt, snap, options)
    plan: Iterable[Any] = {"kto": _kto_plan, "dpo": _dpo_plan, "sft": _sft_plan}[fmt](snap, options)
    for record, item in zip(records, plan, strict=True):
        ids = list(item) if fmt == "dpo" else [item[0]]
        cid = snap.messages[ids[0]].conversation_id
        meta = {
            "message_ids": ids,
            "conversation_id": cid,
            "rewards": [snap.reward(i) for i in ids],
            "split": "eval" if held_out(cid, options.held_out_fraction, options.salt) else "train",
        }
        yield {**record, "meta": meta}


# Characters JSON allows raw in a string but that some readers take for a line break
# (str.splitlines, JavaScript): escaped, so one record is always exactly one line.
_LINE_SAFE = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"})


def _json_encoder() -> Any:
    encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
    return lambda value: encode(value).translate(_LINE_SAFE)


# -- counting and writing ----------------------------------------------------------------


@dataclass(frozen=True)
class DatasetCounts:
    """How many training examples of each kind the ledger gives, per side of the split."""

    kto_desirable: dict[str, int]
    kto_undesirable: dict[str, int]
    dpo_pairs: dict[str, int]
    sft_examples: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {name: dict(getattr(self, name)) for name in self.__dataclass_fields__}


def count_examples(snap: LedgerSnapshot, options: DatasetOptions | None = None) -> DatasetCounts:
    """Counts for the train and eval sides, without building any prompt."""
    base = options or DatasetOptions()
    every = DatasetOptions(
        split="all",
        sft_min_reward=base.sft_min_reward,
        held_out_fraction=base.held_out_fraction,
        salt=base.salt,
    )

    def side(mid: int) -> str:
        cid = snap.messages[mid].conversation_id
        return "eval" if held_out(cid, every.held_out_fraction, every.salt) else "train"

    def tally(ids: Iterable[int]) -> dict[str, int]:
        out = {"train": 0, "eval": 0}
        for mid in ids:
            out[side(mid)] += 1
        return out

    kto = list(_kto_plan(snap, every))
    return DatasetCounts(
        kto_desirable=tally(mid for mid, r in kto if r > 0),
        kto_undesirable=tally(mid for mid, r in kto if r < 0),
        dpo_pairs=tally(chosen for chosen, _ in _dpo_plan(snap, every)),
        sft_examples=tally(mid for mid, _ in _sft_plan(snap, every)),
    )


def write_jsonl(records: Iterable[dict[str, Any]], path: str | Path) -> int:
    """Write records as JSON Lines in UTF-8, atomically; returns how many were written. With
    no records nothing is written and an existing file is left as it was."""
    path = Path(path)
    part = path.with_name(path.name + ".part")
    count = 0
    try:
        with part.open("w", encoding="utf-8", newline="\n") as out:
            encode = _json_encoder()
            for record in records:
                out.write(encode(record))
                out.write("\n")
                count += 1
            out.flush()
            os.fsync(out.fileno())
        if count:
            os.replace(part, path)
    except OSError as err:
        raise GhostDeskError(
            f"Could not write {path}: {err.strerror or err}.",
            hint="Choose another file, or check the folder exists and the disk has space.",
        ) from err
    finally:
        part.unlink(missing_ok=True)
    return count


def export_dataset(
    db: Database, fmt: str, path: str | Path, options: DatasetOptions, *, meta: bool = False
) -> int:
    """Build one dataset from the ledger and write it to `path`; GhostDeskError when the
    ledger gives no example of that kind (the file is then not touched). With `meta`, each
    record says which messages it came from (see `meta_records`)."""
    snap = load_snapshot(
        db,
        confirmed_only=options.confirmed_only,
        better_replies_only=fmt == "sft" and options.sft_min_reward is None,
    )
    records = meta_records(fmt, snap, options) if meta else build_records(fmt, snap, options)
    count = write_jsonl(records, path)
    if count == 0:
        raise GhostDeskError(
            f"Nothing to export: the feedback so far gives no {fmt.upper()} examples"
            + ("" if options.split == "all" else f" in the {options.split} split")
            + ".",
            hint=_EMPTY_HINTS[fmt],
        )
    return count


_EMPTY_HINTS = {
    "kto": "Rate some replies with 👍, 👎 or 😂 first.",
    "dpo": "Regenerate a reply and rate its versions differently (for example 👍 one, 👎 another).",
    "sft": "Write a better version of a reply first, or include the best-rated replies "
    "with --best-replies MIN_REWARD.",
}
