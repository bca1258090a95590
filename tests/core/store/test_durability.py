"""Kill -9 while writing: every message reported as saved survives, and the file stays sound."""

from __future__ import annotations

import os
import random
import select
import signal
import time
import traceback
from pathlib import Path

import pytest

from ghostdesk.core.paths import DataPaths
from ghostdesk.core.store.conversations import ConversationStore
from ghostdesk.core.store.db import Database

ROUNDS = 20


def _writer(db_path: Path, backups: Path, out: int, seed: int) -> None:
    """Runs in the child: opens the database and writes until killed.

    A message id is reported only after `add_message` returned, i.e. after the commit, just
    as the UI shows a message as saved only then.
    """
    rng = random.Random(seed)
    db = Database.open(db_path, backups)
    store = ConversationStore(db)
    cid = store.create_conversation().id
    while True:
        thread = store.thread(cid)
        if thread and rng.random() < 0.2:  # regenerate a reply somewhere
            target = rng.choice(thread)
            msg = store.add_message(cid, target.role, "again", parent_id=target.parent_id)
        elif thread and rng.random() < 0.1:
            store.select_version(rng.choice(thread).id)
            continue
        else:
            role = rng.choice(["user", "assistant"])
            msg = store.add_message(cid, role, "word " * rng.randint(1, 3000))
        os.write(out, f"{msg.id}\n".encode())


def _run_and_kill(paths: DataPaths, seed: int, lifetime: float) -> list[int]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into the test runner
        try:
            os.close(read_end)
            _writer(paths.database, paths.backups, write_end, seed)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(1)
    os.close(write_end)
    output = b""
    deadline = time.monotonic() + lifetime
    try:
        # Keep reading while the child runs so a full pipe never blocks it.
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([read_end], [], [], left)
            if ready:
                chunk = os.read(read_end, 65536)
                if not chunk:
                    break  # the child died by itself
                output += chunk
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        while chunk := os.read(read_end, 65536):
            output += chunk
    finally:
        os.close(read_end)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, "writer crashed"
    return [int(line) for line in output.decode().split()]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork() to start writers quickly")
def test_kill_9_loses_no_saved_message(paths: DataPaths) -> None:
    rng = random.Random(20261125)
    acknowledged: list[int] = []
    for round_ in range(ROUNDS):
        # Short lifetimes also kill during opening and migration of a brand-new file.
        lifetime = 0.01 if round_ == 0 else rng.uniform(0.05, 0.4)
        acknowledged += _run_and_kill(paths, seed=round_, lifetime=lifetime)

    assert len(acknowledged) > ROUNDS  # the test really wrote something
    with Database.open(paths.database, paths.backups) as db:
        assert db.notices == []
        assert db.integrity_check() == "ok"
        store = ConversationStore(db)
        for mid in acknowledged:
            store.get_message(mid)  # raises NotFoundError if lost
        for conv in store.list_conversations():
            thread = store.thread(conv.id)
            # The leaf and the message were committed together: never a dangling leaf.
            if conv.message_count:
                assert thread and thread[-1].id == conv.current_leaf_id
