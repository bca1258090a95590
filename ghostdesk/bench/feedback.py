"""`ghostdesk bench feedback`: how fast a rating shows in the window, and how fast the
training datasets are built from a large ledger.

Everything runs on a throwaway data folder (your own chats are not touched):

1. `replies` rated companion replies are written straight into a fresh database, in chats of
   four turns where every other turn was regenerated once (two versions), with the kinds of
   feedback a person leaves: 👍 / 👎 / 😂, laughter and "you get me" read from the next
   message (some dismissed), continuation, a few better replies.
2. KTO, DPO and SFT are each exported from it to JSON Lines, as `ghostdesk feedback export`
   does (snapshot read + records + file), timed; then once more under tracemalloc for the
   peak of Python memory each needs.
3. A window is opened (in a child process, ghostdesk.ui.bench_rating: this side never imports
   Qt) on a data folder of its own, on a chat of ten turns, and a rating button of
   its last reply is clicked `clicks` times. Measured per click: from the mouse click to the
   button's repaint (what the user sees), and to the commit of the rating in SQLite (which
   runs on the feedback writer thread, off the GUI thread).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ghostdesk.bench.report import BenchReport
from ghostdesk.core.feedback.datasets import FORMATS, DatasetOptions, export_dataset
from ghostdesk.core.store.db import Database

_TEXT = (
    "tea rain window quiet story cat lighthouse morning coffee walk music garden letter train "
    "book river laugh friend dream bread candle city night ocean"
)
_WORD_LIST = tuple(_TEXT.split())


def run_feedback_bench(
    replies: int = 100_000, clicks: int = 40, gui_replies: int = 2_000
) -> BenchReport:
    with tempfile.TemporaryDirectory(prefix="ghostdesk-bench-feedback-") as tmp:
        folder = Path(tmp)
        services = _services(folder / "ledger")
        try:
            started = time.perf_counter()
            made = generate_rated_replies(services.db, replies)
            generated_s = time.perf_counter() - started
            builds = time_dataset_builds(services.db, folder)
            memory = peak_memory_of_builds(services.db, folder)
        finally:
            services.close()
        # The window gets a data folder of its own, of a size one person's chat list has:
        # the chat list shows every chat, and tens of thousands of them is not what this
        # measures.
        services = _services(folder / "window")
        try:
            gui_made = generate_rated_replies(services.db, gui_replies)
        finally:
            services.close()
        gui = time_rating_clicks(folder / "window", clicks)

    report = BenchReport("Feedback: rating latency in the window, datasets from rated replies")
    total_s = sum(b["seconds"] for b in builds.values())
    report.rows = [
        (
            "rated replies in the ledger",
            f"{made['replies']:,} in {made['conversations']:,} chats"
            f" ({made['events']:,} feedback events; written in {generated_s:.1f} s)",
        ),
        (
            "window: platform, data",
            f"{gui['platform']}, {gui_made['conversations']:,} chats "
            f"with {gui_made['replies']:,} rated replies, rating the last reply of a 10-turn chat",
        ),
        ("clicks timed", str(gui["clicks"])),
        ("click → button repainted, median / p95 / max", _ms3(gui["repaint_ms"])),
        (
            "GUI thread busy in the click handler, median / max",
            f"{statistics.median(gui['handler_ms']):.2f} / {max(gui['handler_ms']):.2f} ms",
        ),
        (
            "click → rating committed to SQLite (writer thread), median / p95 / max",
            _ms3(gui["saved_ms"]),
        ),
    ]
    for fmt in FORMATS:
        b, peak = builds[fmt], memory[fmt]
        report.rows.append(
            (
                f"{fmt.upper()} export: records, time, peak Python memory",
                f"{b['records']:,} records, {b['seconds']:.2f} s, {peak / 2**20:.0f} MiB "
                f"({b['bytes'] / 2**20:.0f} MiB file)",
            )
        )
    report.rows.append(("all three exports", f"{total_s:.2f} s"))
    worst_repaint = max(gui["repaint_ms"])
    report.verdicts = [
        f"rating repaint {statistics.median(gui['repaint_ms']):.1f} ms median, "
        f"{worst_repaint:.1f} ms worst: "
        f"{'meets' if worst_repaint <= 50 else 'misses'} the ≤ 50 ms target",
        f"all three datasets from {made['replies']:,} rated replies in {total_s:.2f} s: "
        f"{'meets' if total_s <= 10 else 'misses'} the < 10 s aim",
    ]
    report.data = {
        "ledger": made,
        "generate_s": generated_s,
        "builds": builds,
        "peak_bytes": memory,
        "gui": gui,
    }
    return report


def _ms3(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} / {_p95(values):.1f} / {max(values):.1f} ms"


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _services(home: Path) -> Any:
    from ghostdesk.core.feedback.ledger import RewardLedger
    from ghostdesk.core.paths import DataPaths
    from ghostdesk.core.settings import Settings, SettingsFile
    from ghostdesk.core.store.conversations import ConversationStore
    from ghostdesk.services import AppServices

    paths = DataPaths(home).ensure()
    db = Database.open(paths.database, paths.backups)
    return AppServices(
        paths, SettingsFile(paths.settings), Settings(), db, ConversationStore(db), RewardLedger(db)
    )


# -- a large ledger ------------------------------------------------------------------------


def generate_rated_replies(db: Database, replies: int, seed: int = 7) -> dict[str, int]:
    """Write `replies` rated replies (and their chats) in one transaction, with plain SQL."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    conversations: list[tuple[Any, ...]] = []
    messages: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    mid = eid = 0
    made = 0
    cid = 0

    def stamp(seconds: int) -> str:
        return (start + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S.%f")

    def sentence(n: int) -> str:
        return " ".join(rng.choice(_WORD_LIST) for _ in range(n)).capitalize() + "."

    def event(
        message_id: int,
        kind: str,
        source: str,
        weight: float,
        status: str,
        at: str,
        phrase: str | None = None,
        text: str | None = None,
    ) -> None:
        nonlocal eid
        eid += 1
        events.append((eid, message_id, kind, source, weight, status, phrase, text, at, at, None))

    while made < replies:
        cid += 1
        t = cid * 600
        parent: int | None = None
        leaf = 0
        for turn in range(4):
            mid += 1
            user_id = mid
            t += 30
            messages.append((user_id, cid, parent, "user", sentence(8), stamp(t), "complete", 0))
            versions = 2 if turn % 2 == 0 else 1
            reply_ids = []
            for _ in range(versions):
                if made >= replies:
                    break
                mid += 1
                t += 5
                reply_ids.append(mid)
                messages.append(
                    (mid, cid, user_id, "assistant", sentence(18), stamp(t), "complete", 0)
                )
                made += 1
                at = stamp(t + 2)
                roll = rng.random()
                if roll < 0.45:
                    event(mid, "up", "explicit", 1.0, "active", at)
                elif roll < 0.65:
                    event(mid, "down", "explicit", -1.0, "active", at)
                if rng.random() < 0.15:
                    event(mid, "laugh", "explicit", 1.0, "active", at)
                if rng.random() < 0.03:
                    event(mid, "better_reply", "explicit", 0.0, "active", at, text=sentence(16))
            if not reply_ids:
                break
            chosen = reply_ids[-1]
            parent, leaf = chosen, chosen
            if turn < 3:  # the next user message reads signals about the chosen version
                at = stamp(t + 20)
                event(chosen, "continuation", "implicit", 0.1, "active", at)
                if rng.random() < 0.2:
                    status = "dismissed" if rng.random() < 0.25 else "pending"
                    event(chosen, "laughter", "implicit", 1.0, status, at, phrase="haha")
                if rng.random() < 0.05:
                    event(chosen, "understood", "implicit", 2.0, "pending", at, phrase="you get me")
            if made >= replies:
                break
        conversations.append((cid, f"Chat {cid}", stamp(cid * 600), stamp(t), leaf, "Ghost"))

    with db.session() as s:
        raw = s.connection().connection.driver_connection
        assert raw is not None
        raw.executemany(
            "INSERT INTO conversations (id, title, created_at, updated_at, current_leaf_id, "
            "persona_name) VALUES (?, ?, ?, ?, ?, ?)",
            conversations,
        )
        raw.executemany(
            "INSERT INTO messages (id, conversation_id, parent_id, role, content, created_at, "
            "status, dropped_turns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            messages,
        )
        raw.executemany(
            "INSERT INTO feedback_events (id, message_id, kind, source, weight, status, phrase, "
            "text, created_at, updated_at, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            events,
        )
    return {
        "replies": made,
        "conversations": len(conversations),
        "messages": len(messages),
        "events": len(events),
    }


# -- datasets ------------------------------------------------------------------------------

_OPTIONS = DatasetOptions(system_prompt="You are Ghost, a warm and curious companion.", split="all")


def _export(db: Database, fmt: str, out: Path) -> int:
    return export_dataset(db, fmt, out, _OPTIONS)


def time_dataset_builds(db: Database, folder: Path) -> dict[str, dict[str, float]]:
    results = {}
    for fmt in FORMATS:
        out = folder / f"{fmt}.jsonl"
        started = time.perf_counter()
        count = _export(db, fmt, out)
        seconds = time.perf_counter() - started
        results[fmt] = {"records": count, "seconds": seconds, "bytes": out.stat().st_size}
        out.unlink()
    return results


def peak_memory_of_builds(db: Database, folder: Path) -> dict[str, int]:
    """Peak bytes allocated by Python while exporting each format (tracemalloc)."""
    peaks = {}
    for fmt in FORMATS:
        out = folder / f"{fmt}-traced.jsonl"
        tracemalloc.start()
        try:
            _export(db, fmt, out)
            peaks[fmt] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        out.unlink(missing_ok=True)
    return peaks


# -- the window (in a child process) ---------------------------------------------------------


def time_rating_clicks(home: Path, clicks: int) -> dict[str, Any]:
    """Click a rating button of the last reply `clicks` times in a window opened on the data
    folder `home` (by ghostdesk.ui.bench_rating in a child process); per-click timings."""
    env = dict(os.environ)
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    done = subprocess.run([sys.executable, "-m", "ghostdesk.ui.bench_rating", str(home),
                           str(clicks)], env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"rating bench child failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
