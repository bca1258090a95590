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

Everything is read in a few bulk queries into a `LedgerSnapshot` (`ledger_snapshot`); which
replies go in is decided in `dataset_selection`; this module builds the records, counts them
and exports them (`jsonl` writes the file). Records are generated lazily, so writing 100,000
of them holds one record at a time beyond the snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ghostdesk.core.errors import GhostDeskError
from ghostdesk.core.feedback.dataset_selection import (
    DatasetOptions,
    dpo_plan,
    kto_plan,
    sft_plan,
)
from ghostdesk.core.feedback.jsonl import write_jsonl
from ghostdesk.core.feedback.ledger_snapshot import LedgerSnapshot, load_snapshot
from ghostdesk.core.feedback.split import held_out
from ghostdesk.core.store.db import Database

Format = Literal["kto", "dpo", "sft"]
FORMATS: tuple[str, ...] = ("kto", "dpo", "sft")


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
    for mid, reward in kto_plan(snap, options):
        yield {
            "prompt": prompt_messages(snap, mid, options.system_prompt),
            "completion": _assistant(snap.messages[mid].content),
            "label": reward > 0,
            "weight": round(abs(reward), 6),
        }


def dpo_records(snap: LedgerSnapshot, options: DatasetOptions) -> Iterator[dict[str, Any]]:
    """`{"prompt": [...], "chosen": [...], "rejected": [...]}` per pair of versions."""
    for chosen, rejected in dpo_plan(snap, options):
        yield {
            "prompt": prompt_messages(snap, chosen, options.system_prompt),
            "chosen": _assistant(snap.messages[chosen].content),
            "rejected": _assistant(snap.messages[rejected].content),
        }


def sft_records(snap: LedgerSnapshot, options: DatasetOptions) -> Iterator[dict[str, Any]]:
    """`{"messages": [... prompt ..., {"role": "assistant", "content": target}]}`."""
    for mid, target in sft_plan(snap, options):
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
    plan: Iterable[Any] = {"kto": kto_plan, "dpo": dpo_plan, "sft": sft_plan}[fmt](snap, options)
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

    kto = list(kto_plan(snap, every))
    return DatasetCounts(
        kto_desirable=tally(mid for mid, r in kto if r > 0),
        kto_undesirable=tally(mid for mid, r in kto if r < 0),
        dpo_pairs=tally(chosen for chosen, _ in dpo_plan(snap, every)),
        sft_examples=tally(mid for mid, _ in sft_plan(snap, every)),
    )


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
