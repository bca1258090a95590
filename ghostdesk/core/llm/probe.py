"""Checks an unknown GGUF file in a child process before the app loads it.

llama.cpp's GGUF parser runs in native code; a malformed file can abort or crash the whole
process there (several CVEs). So a file is first opened by `python -m
ghostdesk.core.llm.probe PATH`, which reads the header and loads the vocabulary with llama.cpp
(vocab_only: fast, but it parses everything and checks every tensor's bounds), then prints
one JSON line. If the child dies, only the child dies, and the app explains what happened.

Files that passed are remembered in a small JSON cache keyed by path, size, modification time
and llama-cpp-python version, so a known-good model is not checked again at every start.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ghostdesk.core.errors import ModelFileError

CACHE_FILE = "model-probes.json"
_CACHE_LIMIT = 64


@dataclass(frozen=True)
class ProbeResult:
    path: str
    ok: bool = True
    architecture: str = ""
    name: str = ""
    n_vocab: int = 0
    n_layers: int = 0
    summary: str = ""
    seconds: float = 0.0
    cached: bool = False


def probe_model_file(path: str | Path, timeout: float = 120, *,
                     cache_dir: Path | None = None) -> ProbeResult:
    """Check `path` in a child process. Returns a ProbeResult for a usable model; raises
    ModelFileError with a clear message for anything else, including a crashed or hung
    child. With `cache_dir`, a file already checked (same size and mtime) returns at once."""
    from ghostdesk.core.llm.gguf_info import check_file

    p = Path(path).expanduser().absolute()
    check_file(p)  # missing, empty or not GGUF: no need for a child process to say so
    key = _cache_key(p)
    if cache_dir is not None and key is not None:
        hit = _read_cache(cache_dir).get(key)
        if isinstance(hit, dict):
            with contextlib.suppress(TypeError):
                return ProbeResult(**{**hit, "cached": True})

    start = time.monotonic()
    try:
        done = subprocess.run(
            _probe_command(p), capture_output=True, text=True, timeout=timeout,
            env=_child_env(), encoding="utf-8", errors="replace", check=False,
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
    except subprocess.TimeoutExpired as err:
        raise ModelFileError(
            f"Checking the model file {p.name} took longer than {timeout:g} s and was stopped.",
            hint="The file may be damaged, or on a slow or disconnected drive.",
        ) from err
    except OSError as err:
        raise ModelFileError(f"Could not start the model check: {err}") from err

    report = _last_json_line(done.stdout)
    if report is not None and not report.get("ok"):
        raise ModelFileError(str(report.get("error") or "The model file could not be read."),
                             hint=report.get("hint") or None)
    if done.returncode != 0 or report is None:
        raise _death_error(p, done.returncode, done.stderr)
    result = ProbeResult(
        path=str(p), architecture=str(report.get("architecture", "")),
        name=str(report.get("name", "")), n_vocab=int(report.get("n_vocab", 0)),
        n_layers=int(report.get("n_layers", 0)), summary=str(report.get("summary", "")),
        seconds=round(time.monotonic() - start, 3),
    )
    if cache_dir is not None and key is not None:
        _write_cache(cache_dir, key, result)
    return result


def _probe_command(path: Path) -> list[str]:
    return [sys.executable, "-m", "ghostdesk.core.llm.probe", str(path)]


def _child_env() -> dict[str, str]:
    # The child must import this same ghostdesk, also when it runs from a source checkout.
    import ghostdesk

    root = str(Path(ghostdesk.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def _last_json_line(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def _death_error(p: Path, rc: int, stderr: str) -> ModelFileError:
    tail = " ".join(stderr.strip().splitlines()[-3:])[-400:]
    if rc < 0:
        try:
            sig = signal.Signals(-rc).name
        except ValueError:
            sig = f"signal {-rc}"
        return ModelFileError(
            f"The model file {p.name} crashed the loader (signal {sig}); it is probably "
            "damaged.", hint="Download it again, or choose another model file.")
    if rc >= 0xC0000000:  # a Windows exception code, e.g. 0xC0000005 access violation
        return ModelFileError(
            f"The model file {p.name} crashed the loader (exception 0x{rc:08X}); it is "
            "probably damaged.", hint="Download it again, or choose another model file.")
    return ModelFileError(f"The model check failed (exit code {rc}) for {p.name}.",
                          hint=tail or None)


# --- cache -------------------------------------------------------------------------------

def _cache_key(p: Path) -> str | None:
    try:
        st = p.stat()
    except OSError:
        return None
    try:
        from importlib.metadata import version

        llama_version = version("llama-cpp-python")
    except Exception:
        llama_version = "?"
    return f"{p}|{st.st_size}|{st.st_mtime_ns}|{llama_version}"


def _read_cache(cache_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((cache_dir / CACHE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # a missing or damaged cache only costs a re-check
    return data if isinstance(data, dict) else {}


def _write_cache(cache_dir: Path, key: str, result: ProbeResult) -> None:
    entries = _read_cache(cache_dir)
    entries.pop(key, None)
    entries[key] = {k: v for k, v in asdict(result).items() if k != "cached"}
    entries = dict(list(entries.items())[-_CACHE_LIMIT:])  # newest last; drop the oldest
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".probes-", suffix=".json", dir=cache_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(entries, fh, indent=1)
        os.replace(tmp, cache_dir / CACHE_FILE)
    except OSError:
        pass  # the cache is an optimisation; failing to write it changes nothing else


# --- child side --------------------------------------------------------------------------

def check_in_this_process(path: str | Path) -> dict[str, Any]:
    """The child's work: header checks, then a vocab-only load with llama.cpp. Returns the
    report that is printed as JSON. Run it only in a throwaway process."""
    from ghostdesk.core.llm.gguf_info import read_model_info

    p = Path(path)
    try:
        info = read_model_info(p)
    except ModelFileError as err:
        return {"ok": False, "error": err.message, "hint": err.hint}

    import llama_cpp

    with collect_llama_errors() as errors:
        try:
            llm = llama_cpp.Llama(model_path=str(p), vocab_only=True, verbose=False)
        except Exception as err:
            message, hint = explain_load_failure(p, info.architecture, errors, err)
            return {"ok": False, "error": message, "hint": hint, "log": errors[-5:]}
    report = {
        "ok": True, "architecture": info.architecture, "name": info.display_name,
        "n_vocab": llm.n_vocab(), "n_layers": info.n_layers, "summary": info.summary(),
    }
    llm.close()
    return report


@contextlib.contextmanager
def collect_llama_errors() -> Iterator[list[str]]:
    """Collect llama.cpp's error log lines while the block runs. llama-cpp-python only
    raises "Failed to load model from file"; the reason is in the log."""
    import ctypes

    import llama_cpp
    from llama_cpp import _logger

    errors: list[str] = []

    @llama_cpp.llama_log_callback
    def collect(level: int, text: bytes, _user: Any) -> None:
        if level == 4:  # GGML_LOG_LEVEL_ERROR in this llama.cpp
            errors.append(text.decode("utf-8", errors="replace").strip())

    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
    try:
        yield errors
    finally:
        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


def explain_load_failure(p: Path, arch: str, log_errors: list[str],
                         err: Exception) -> tuple[str, str | None]:
    """Turn llama.cpp's error log lines into a message and a hint."""
    text = " ".join(log_errors)
    if "unknown model architecture" in text:
        from importlib.metadata import version

        return (f"The model's architecture '{arch}' is not supported by this version of "
                f"llama.cpp (llama-cpp-python {version('llama-cpp-python')}).",
                "Update GhostDesk, or choose a model of a supported family "
                "(Gemma, Llama, Qwen, Mistral, Phi and others).")
    if "not within the file bounds" in text or "corrupted or incomplete" in text:
        return (f"{p.name} looks truncated or damaged: llama.cpp found tensor data past the "
                "end of the file. Download it again.", f"File: {p}")
    detail = next((e for e in reversed(log_errors) if "error loading model" in e),
                  log_errors[-1] if log_errors else str(err))
    detail = detail.split("error loading model:", 1)[-1].strip()
    return f"llama.cpp could not read {p.name}: {detail}", f"File: {p}"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m ghostdesk.core.llm.probe MODEL.gguf", file=sys.stderr)
        return 64
    try:
        report = check_in_this_process(argv[0])
    except Exception as err:  # anything unexpected still becomes one readable line
        report = {"ok": False, "error": f"The model check failed: {type(err).__name__}: {err}"}
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    return 0 if report.get("ok") else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
