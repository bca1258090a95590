"""`ghostdesk bench decode`: the app's whole chat path against a bare llama-cpp-python loop.

Both run the same GGUF, the same rendered prompt, the same thread count and greedy sampling, in
alternating runs within one process, so machine noise hits both alike. The app path is
Companion.send: SQLite commit of the user message, prompt building and context fitting,
streaming through the engine, and the commit of the reply.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ghostdesk.bench.decode_runs import PROMPT, alternate, decode_rate
from ghostdesk.bench.report import BenchReport
from ghostdesk.core.llm.types import ChatMessage, SamplingParams

if TYPE_CHECKING:
    from ghostdesk.services import AppServices


@dataclass
class RunTiming:
    first_token_s: float
    last_token_s: float
    total_s: float
    """Until the reply is complete (for the app: saved to disk)."""
    tokens: int
    text: str

    @property
    def decode_tps(self) -> float:
        """Tokens per second from the first token to the last: the steady decode rate."""
        return decode_rate(self.tokens, self.first_token_s, self.last_token_s)

    @property
    def overall_tps(self) -> float:
        return self.tokens / self.total_s if self.total_s > 0 else 0.0


def _bare_run(llm, prompt_text: str, stop: list[str], params: SamplingParams) -> RunTiming:
    start = time.perf_counter()
    tokens = llm.tokenize(prompt_text.encode("utf-8"), add_bos=False, special=True)
    first = last = None
    count = 0
    pieces = []
    for chunk in llm.create_completion(
        prompt=tokens, max_tokens=params.max_tokens, temperature=0.0, top_k=1, top_p=1.0,
        min_p=0.0, repeat_penalty=1.0, seed=0, stop=stop, stream=True,
    ):
        last = time.perf_counter() - start
        if first is None:
            first = last
        count += 1
        pieces.append(chunk["choices"][0]["text"])
    total = time.perf_counter() - start
    return RunTiming(first or 0.0, last or 0.0, total, count, "".join(pieces))


def _app_run(services: AppServices, companion) -> RunTiming:
    from ghostdesk.core.companion import ReplySaved, TokenReceived

    conversation = services.store.create_conversation(title="bench")
    start = time.perf_counter()
    first = last = None
    saved: ReplySaved | None = None
    total = 0.0
    for event in companion.send(conversation.id, PROMPT):
        if isinstance(event, TokenReceived):
            last = time.perf_counter() - start
            if first is None:
                first = last
        elif isinstance(event, ReplySaved):
            saved = event
            total = time.perf_counter() - start
            break  # what follows (memory upkeep) is not part of the reply
    assert saved is not None
    services.store.delete_conversation(conversation.id)
    return RunTiming(first or 0.0, last or 0.0, total, saved.stats.completion_tokens,
                     saved.message.content)


def run_decode_bench(services: AppServices, tokens: int = 128, runs: int = 5) -> BenchReport:
    import llama_cpp

    settings = services.settings
    settings.sampling.max_tokens = tokens
    greedy = SamplingParams.greedy(tokens)
    for key, value in greedy.to_dict().items():
        setattr(settings.sampling, key, value)
    engine = services.load_engine()
    companion = services.make_companion(engine)
    info = engine.info
    bare = llama_cpp.Llama(model_path=info.model_path, n_ctx=info.n_ctx,
                           n_gpu_layers=info.n_gpu_layers, n_threads=info.extra["n_threads"],
                           n_batch=settings.model.n_batch, verbose=False)
    system = settings.persona.rendered_system_prompt()
    prompt = engine.render([ChatMessage("system", system), ChatMessage("user", PROMPT)])

    # Warm both (page cache, first-call allocations), then alternate.
    _bare_run(bare, prompt.text, list(prompt.stop), greedy)
    _app_run(services, companion)
    bare_runs, app_runs = alternate(
        runs, lambda: _bare_run(bare, prompt.text, list(prompt.stop), greedy),
        lambda: _app_run(services, companion))
    bare.close()

    def med(values: list[float]) -> float:
        return statistics.median(values)

    same_text = all(a.text.strip() == b.text.strip()
                    for a, b in zip(app_runs, bare_runs, strict=True))
    # Chunks are not tokens (llama-cpp-python sends empty chunks while it holds back text that
    # may start a stop string), so both sides are rated with the app's exact token count;
    # with identical greedy text they decoded the same tokens, and the ratio is one of times.
    tokens_each = app_runs[0].tokens
    for run in bare_runs:
        run.tokens = tokens_each
    app_tps = med([r.decode_tps for r in app_runs])
    bare_tps = med([r.decode_tps for r in bare_runs])
    app_all = med([r.overall_tps for r in app_runs])
    bare_all = med([r.overall_tps for r in bare_runs])
    overhead_ms = (med([r.first_token_s for r in app_runs])
                   - med([r.first_token_s for r in bare_runs])) * 1000
    report = BenchReport(f"Decode: app chat path vs bare llama-cpp-python ({info.model_name})")
    report.rows = [
        ("model / device", f"{info.model_name} / {info.device_summary}, n_ctx {info.n_ctx}"),
        ("runs (ABBA order, after warm-up)", f"{runs} each, {tokens} max tokens, greedy"),
        ("tokens per reply (exact, both sides)", str(tokens_each)),
        ("decode tokens/s, median (app / bare)", f"{app_tps:.1f} / {bare_tps:.1f}"),
        ("decode ratio app ÷ bare", f"{app_tps / bare_tps:.3f}" if bare_tps else "n/a"),
        ("end-to-end tokens/s incl. prompt + saving (app / bare)",
         f"{app_all:.1f} / {bare_all:.1f}"),
        ("end-to-end ratio app ÷ bare", f"{app_all / bare_all:.3f}" if bare_all else "n/a"),
        ("first-token overhead of the app, median", f"{overhead_ms:.1f} ms"),
        ("identical greedy text", "yes" if same_text else "no"),
    ]
    ratio = app_tps / bare_tps if bare_tps else 0.0
    report.verdicts = [
        f"decode ratio {ratio:.3f} {'meets' if ratio >= 0.97 else 'misses'} the ≥ 0.97 target",
        f"first-token overhead {overhead_ms:.1f} ms "
        f"{'meets' if overhead_ms <= 20 else 'misses'} the ≤ 20 ms target",
    ]
    report.data = {"app_decode_tps": app_tps, "bare_decode_tps": bare_tps, "ratio": ratio,
                   "app_overall_tps": app_all, "bare_overall_tps": bare_all,
                   "first_token_overhead_ms": overhead_ms, "identical_text": same_text}
    engine.close()
    return report

