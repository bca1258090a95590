"""`ghostdesk bench gui`: time from launch to a visible window, and the longest GUI-thread
stall while a reply streams from the real model.

Each measurement runs in a fresh child process (a real cold start of the interpreter and Qt,
ghostdesk.ui.bench_startup), timed from the child's own process creation, so nothing the
parent imported helps it; this side never imports Qt.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING

from ghostdesk.bench.report import BenchReport

if TYPE_CHECKING:
    from ghostdesk.services import AppServices

PROMPT = "Tell me a long story about a fox who learns to sail."


def run_gui_bench(services: AppServices, tokens: int = 200, launches: int = 3) -> BenchReport:
    env = dict(os.environ)
    if not env.get("DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    results = []
    model = services.settings.model.path
    for _ in range(launches):
        with tempfile.TemporaryDirectory(prefix="ghostdesk-bench-") as home:
            env["GHOSTDESK_HOME"] = home
            cmd = [sys.executable, "-m", "ghostdesk.ui.bench_startup", str(tokens), model]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                raise RuntimeError(f"GUI bench child failed:\n{done.stderr[-2000:]}")
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    visible = statistics.median(r["visible_s"] for r in results)
    ready = statistics.median(r["model_ready_s"] for r in results)
    stall = max(r["max_stall_ms"] for r in results)
    report = BenchReport("GUI: start-up and GUI-thread stalls while streaming")
    report.rows = [
        ("platform", results[0]["platform"]),
        ("launches (fresh processes)", str(launches)),
        ("launch → window visible, median", f"{visible:.2f} s"),
        ("launch → model ready, median", f"{ready:.2f} s"),
        ("tokens streamed per launch", ", ".join(str(r["tokens"]) for r in results)),
        ("stream tokens/s (in the window)",
         ", ".join(f"{r['tokens_per_second']:.1f}" for r in results)),
        ("longest GUI-thread stall while streaming (5 ms heartbeat), worst launch",
         f"{stall:.1f} ms"),
        ("memory model loaded after the chat model (idle window), median",
         f"{statistics.median(r['memory_warm_s'] for r in results):.2f} s"),
        ("longest GUI-thread stall while the chat and memory models load, worst launch",
         f"{max(r['memory_warm_stall_ms'] for r in results):.1f} ms"),
    ]
    report.verdicts = [
        f"window visible in {visible:.2f} s {'meets' if visible <= 2 else 'misses'} "
        "the ≤ 2 s target",
        f"longest stall {stall:.1f} ms {'meets' if stall <= 50 else 'misses'} the ≤ 50 ms target",
    ]
    report.data = {"visible_s": visible, "model_ready_s": ready, "max_stall_ms": stall,
                   "launches": results}
    return report
