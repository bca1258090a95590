"""The chat engine that runs a GGUF model with llama.cpp (llama-cpp-python).

One lane for the model: every call into the `Llama` object (tokenize, completion, reset,
close) holds one lock, and a streamed reply holds it from its first to its last piece, so two
threads never drive the model at once.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ghostdesk.core.errors import ModelFileError, ModelLoadError
from ghostdesk.core.llm.chat_format import choose_format, render_chat
from ghostdesk.core.llm.gguf_info import ModelInfo, read_model_info
from ghostdesk.core.llm.gpu_probe import GpuStatus
from ghostdesk.core.llm.llama_library import load_llama_library
from ghostdesk.core.llm.offload import OffloadPlan, plan_offload
from ghostdesk.core.llm.types import (
    ChatEngineInfo,
    ChatMessage,
    GenerationStats,
    RenderedPrompt,
    SamplingParams,
)
from ghostdesk.core.settings import ModelSettings


def physical_cores() -> int:
    """Decoding is memory-bound; hyper-threads add contention rather than speed."""
    try:
        import psutil

        n = psutil.cpu_count(logical=False)
    except Exception:
        n = None
    return max(1, n or os.cpu_count() or 1)


def resolve_model_path(settings: ModelSettings) -> Path:
    """The model the settings name, or the bundled one when the path is empty."""
    if settings.path and settings.path.strip():
        return Path(settings.path.strip()).expanduser()
    from ghostdesk.core.llm.bundled import bundled_model_path

    return bundled_model_path()


class _TokenCounter:
    """A stopping criterion that never stops: llama-cpp-python calls it once per sampled
    token (and once more after the loop), which gives an exact token count without
    re-tokenizing the reply."""

    def __init__(self, stop_ids: frozenset[int] = frozenset()) -> None:
        self.calls = 0
        self.stop_ids = stop_ids

    def __call__(self, input_ids: Any, _logits: Any) -> bool:
        self.calls += 1
        # Control tokens such as <start_of_turn> decode to no text, so stop strings can't
        # see them: a model that opens a new turn instead of ending its own is stopped here.
        return bool(self.stop_ids) and len(input_ids) > 0 and int(input_ids[-1]) in self.stop_ids


class LlamaEngine:
    """A loaded model. Build it with `LlamaEngine.load(...)`; free it with `close()`."""

    def __init__(self, llm: Any, info: ChatEngineInfo, model_info: ModelInfo,
                 plan: OffloadPlan | None = None) -> None:
        self._llm = llm
        self.info = info
        self.model_info = model_info
        self.plan = plan
        self._lock = threading.Lock()
        self._owner: int | None = None
        """Thread consuming the open stream; it may tokenize between pieces."""

    # --- loading ---------------------------------------------------------------------

    @classmethod
    def load(cls, settings: ModelSettings, *, cache_dir: Path, gpu: GpuStatus | None = None,
             probe: bool = True) -> LlamaEngine:
        """Check, inspect, place and load the model. Raises ModelFileError for a bad file
        and ModelLoadError when llama.cpp cannot load a good one (e.g. out of memory)."""
        load_llama_library()
        path = resolve_model_path(settings)
        probed = None
        if probe:
            from ghostdesk.core.llm.probe import probe_model_file

            probed = probe_model_file(path, cache_dir=cache_dir)
        model_info = read_model_info(path)
        if gpu is None:
            from ghostdesk.core.llm.gpu_probe import detect_gpus

            gpu = detect_gpus()
        # Beyond the trained context a model degrades into noise; cap it there.
        n_ctx = int(settings.n_ctx)
        if model_info.context_length:
            n_ctx = min(n_ctx, model_info.context_length)
        plan = plan_offload(model_info, n_ctx, settings.n_gpu_layers, gpu)
        n_threads = int(settings.n_threads) or physical_cores()
        n_batch = max(1, min(int(settings.n_batch), n_ctx))

        try:
            llm = _new_llama(path, n_ctx, plan.n_gpu_layers, n_threads, n_batch)
        except _LlamaFailure as err:
            auto_gpu = settings.n_gpu_layers == "auto" and plan.n_gpu_layers > 0
            if err.is_file_problem or not auto_gpu:
                raise _load_error(model_info, n_ctx, plan, err) from err.err
            # The estimate was too optimistic (other programs took VRAM meanwhile, or the
            # compute buffers were larger): run on the CPU rather than not at all.
            cpu_reason = (f"Loading with {plan.n_gpu_layers} layers on the GPU failed, so "
                          f"the model runs on the CPU. ({plan.reason})")
            plan = OffloadPlan(0, "CPU", cpu_reason, True)
            try:
                llm = _new_llama(path, n_ctx, 0, n_threads, n_batch)
            except _LlamaFailure as err2:
                raise _load_error(model_info, n_ctx, plan, err2) from err2.err

        info = ChatEngineInfo(
            model_name=model_info.display_name, model_path=str(path),
            architecture=model_info.architecture, n_ctx=n_ctx,
            n_gpu_layers=plan.n_gpu_layers, n_layers=model_info.n_layers,
            device_summary=plan.device_summary, offload_reason=plan.reason,
            chat_format=choose_format(model_info),
            extra={
                "summary": model_info.summary(),
                "quantization": model_info.quantization,
                "parameters": model_info.parameter_count,
                "n_threads": n_threads,
                "n_batch": n_batch,
                "n_ctx_requested": int(settings.n_ctx),
                "probe_cached": bool(probed and probed.cached),
            },
        )
        return cls(llm, info, model_info, plan)

    # --- the ChatEngine protocol -----------------------------------------------------

    def render(self, messages: Sequence[ChatMessage]) -> RenderedPrompt:
        return render_chat(messages, self.model_info)

    def tokenize(self, text: str) -> list[int]:
        """Token ids of `text` as it appears inside a prompt: no BOS added, special token
        texts (like <start_of_turn>) parsed as the special tokens they name."""
        with self.lane() as llm:
            return list(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def _special_ids(self, llm: Any, texts: tuple[str, ...]) -> frozenset[int]:
        """Ids of the single special tokens named in `texts` (others are ignored)."""
        ids = set()
        for text in texts:
            tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
            if len(tokens) == 1:
                ids.add(int(tokens[0]))
        return frozenset(ids)

    def stream(self, prompt: RenderedPrompt, params: SamplingParams, stats: GenerationStats,
               should_stop: Callable[[], bool] | None = None) -> Iterator[str]:
        """Yield the reply's text pieces. The model's lane is held from the first piece
        until the iterator ends or is closed, so close() an abandoned iterator (a `for`
        loop that breaks does this through garbage collection in CPython)."""
        me = threading.get_ident()
        if self._owner == me:
            raise RuntimeError("A reply is already streaming on this thread; finish or "
                               "close it before starting another.")
        with self._lock:
            llm = self._require_open()
            self._owner = me
            pieces: Any = None
            counter = _TokenCounter(self._special_ids(llm, prompt.stop_tokens))
            finish = ""
            start = time.perf_counter()
            try:
                tokens = llm.tokenize(prompt.text.encode("utf-8"), add_bos=False, special=True)
                stats.prompt_tokens = len(tokens)
                room = self.info.n_ctx - len(tokens)
                if room < 1:
                    raise ModelLoadError(
                        f"This conversation ({len(tokens)} tokens) does not fit in the "
                        f"model's {self.info.n_ctx}-token context.",
                        hint="Start a new conversation, or raise the context size in "
                             "Settings.")
                import llama_cpp

                pieces = llm.create_completion(
                    prompt=tokens, max_tokens=max(1, min(params.max_tokens, room)),
                    temperature=params.temperature, top_p=params.top_p, top_k=params.top_k,
                    min_p=params.min_p, repeat_penalty=params.repeat_penalty,
                    seed=_seed(params.seed), stop=list(prompt.stop), stream=True,
                    stopping_criteria=llama_cpp.StoppingCriteriaList([counter]),
                )
                for chunk in pieces:
                    choice = chunk["choices"][0]
                    finish = choice.get("finish_reason") or finish
                    text = choice.get("text") or ""
                    if text:
                        now = time.perf_counter() - start
                        if stats.first_token_seconds is None:
                            stats.first_token_seconds = now
                        stats.seconds = now
                        stats.completion_tokens = counter.calls
                        yield text
                        self._owner = threading.get_ident()  # it may resume elsewhere
                    if should_stop is not None and should_stop():
                        stats.stopped = True
                        finish = "stopped"
                        break
                if finish in ("stop", "length"):
                    # Uncount the call after the loop, and for "stop" the end-of-turn
                    # token (or the token holding a stop string), which is never shown.
                    stats.completion_tokens = max(
                        0, counter.calls - 1 - (1 if finish == "stop" else 0))
                else:
                    stats.completion_tokens = counter.calls
                stats.finish_reason = finish or "stop"
            except GeneratorExit:
                # The consumer walked away mid-reply: the same as being asked to stop.
                stats.stopped = True
                stats.finish_reason = "stopped"
                stats.completion_tokens = counter.calls
                raise
            except ModelLoadError:
                stats.finish_reason = "error"
                raise
            except Exception as err:
                stats.finish_reason = "error"
                raise ModelLoadError(f"The model failed while writing its reply: {err}",
                                     hint="Try again; if it keeps failing, reload the model "
                                          "or lower the context size.") from err
            finally:
                if pieces is not None:
                    pieces.close()  # ends llama-cpp-python's generator at once
                stats.seconds = time.perf_counter() - start
                self._owner = None

    # --- the lane ----------------------------------------------------------------------

    @contextmanager
    def lane(self) -> Iterator[Any]:
        """Run calls on the raw `llama_cpp.Llama` (e.g. swapping a LoRA adapter) with the
        model to yourself. Between pieces of its own stream a thread may use the lane:
        the model is idle while the stream is suspended."""
        if self._owner == threading.get_ident():
            yield self._require_open()
            return
        with self._lock:
            yield self._require_open()

    def reset(self) -> None:
        """Forget the cached prompt state (needed after the weights change)."""
        with self.lane() as llm:
            llm.reset()

    def close(self) -> None:
        """Free the model. Waits for a reply that is streaming on another thread."""
        if self._owner == threading.get_ident():
            raise RuntimeError("Close the open reply stream before closing the engine.")
        with self._lock:
            llm, self._llm = self._llm, None
            if llm is not None:
                llm.close()

    @property
    def closed(self) -> bool:
        return self._llm is None

    def __enter__(self) -> LlamaEngine:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _require_open(self) -> Any:
        if self._llm is None:
            raise ModelLoadError("The model has been unloaded.",
                                 hint="Load a model before chatting.")
        return self._llm


def _seed(seed: int) -> int:
    # With seed=None llama-cpp-python derives each reply's seed from the previous one,
    # starting from a fixed value, so every app start would replay the same "random"
    # replies. A fresh seed per reply is what -1 promises.
    return secrets.randbelow(2**31) if seed < 0 else int(seed)


class _LlamaFailure(Exception):
    def __init__(self, err: Exception, log: list[str]) -> None:
        super().__init__(str(err))
        self.err, self.log = err, log

    @property
    def is_file_problem(self) -> bool:
        # "error loading model: ..." is llama.cpp rejecting the file's contents (missing
        # keys or tensors, bad shapes), which no other placement would fix.
        return any("error loading model" in line for line in self.log)

    @property
    def detail(self) -> str:
        return next((line for line in self.log if "alloc" in line or "memory" in line),
                    self.log[-1] if self.log else str(self.err))


def _new_llama(path: Path, n_ctx: int, n_gpu_layers: int, n_threads: int,
               n_batch: int) -> Any:
    try:
        import llama_cpp

        from ghostdesk.core.llm.probe import collect_llama_errors
    except Exception as err:  # a broken or half-installed build
        raise ModelLoadError(f"llama.cpp could not be started: {err}",
                             hint="Reinstall GhostDesk.") from err
    with collect_llama_errors() as log:
        try:
            return llama_cpp.Llama(
                model_path=str(path), n_ctx=n_ctx, n_gpu_layers=n_gpu_layers,
                n_threads=n_threads, n_threads_batch=n_threads, n_batch=n_batch,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError, MemoryError) as err:
            raise _LlamaFailure(err, list(log)) from err


def _load_error(info: ModelInfo, n_ctx: int, plan: OffloadPlan,
                failure: _LlamaFailure) -> ModelLoadError | ModelFileError:
    name = info.display_name
    if failure.is_file_problem:
        from ghostdesk.core.llm.probe import explain_load_failure

        message, hint = explain_load_failure(info.path, info.architecture, failure.log,
                                             failure.err)
        return ModelFileError(message, hint=hint)
    if plan.n_gpu_layers > 0:
        return ModelLoadError(
            f"Not enough memory to load {name} with {plan.n_gpu_layers} layers on the GPU; "
            "lower GPU layers or the context size.",
            hint=f"{plan.reason} (llama.cpp: {failure.detail})")
    return ModelLoadError(
        f"Not enough memory to load {name} with a {n_ctx}-token context; lower the context "
        "size or close other programs.",
        hint=f"llama.cpp: {failure.detail}")
