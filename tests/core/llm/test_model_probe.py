"""The child-process model check: good files pass (and are remembered), bad files and
crashing or hanging loaders become clear errors while this process carries on."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from ghostdesk.core.errors import ModelFileError
from ghostdesk.core.llm import probe
from ghostdesk.core.llm.probe import CACHE_FILE, probe_model_file


@pytest.mark.model
def test_real_model_passes_and_is_cached(model_path: Path, tmp_path: Path) -> None:
    first = probe_model_file(model_path, cache_dir=tmp_path)
    assert first.ok and not first.cached
    assert first.architecture == "gemma3"
    assert first.n_vocab == 262_144 and first.n_layers == 18
    assert first.summary.startswith("Gemma 3 270m · gemma3")
    assert (tmp_path / CACHE_FILE).exists()
    second = probe_model_file(model_path, cache_dir=tmp_path)
    assert second.cached and second.architecture == "gemma3"


def test_a_changed_file_is_checked_again(tiny_gguf, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = tiny_gguf("llama")
    calls = []
    report = {"ok": True, "architecture": "llama", "name": "Tiny", "n_vocab": 5}
    monkeypatch.setattr(probe, "_probe_command", lambda p: calls.append(p) or [
        sys.executable, "-c", f"print({json.dumps(json.dumps(report))})"])
    cache = tmp_path / "cache"
    assert not probe_model_file(path, cache_dir=cache).cached
    assert probe_model_file(path, cache_dir=cache).cached
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert not probe_model_file(path, cache_dir=cache).cached
    assert len(calls) == 2


def test_a_damaged_cache_file_is_ignored(tiny_gguf, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / CACHE_FILE).write_text("{not json", encoding="utf-8")
    report = {"ok": True, "architecture": "llama"}
    monkeypatch.setattr(probe, "_probe_command", lambda p: [
        sys.executable, "-c", f"print({json.dumps(json.dumps(report))})"])
    assert probe_model_file(tiny_gguf(), cache_dir=tmp_path).architecture == "llama"
    assert json.loads((tmp_path / CACHE_FILE).read_text(encoding="utf-8"))


@pytest.mark.parametrize(("content", "words"), [
    (None, "Model file not found"),
    (b"", "is empty"),
    (b"\x00garbage" * 100, "is not a GGUF model file"),
])
def test_bad_files(tmp_path: Path, content: bytes | None, words: str) -> None:
    path = tmp_path / "bad.gguf"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelFileError, match=words):
        probe_model_file(path, cache_dir=tmp_path)
    assert not (tmp_path / CACHE_FILE).exists()


@pytest.mark.parametrize("cut", ["1mib", "90pct"])
def test_truncated_model(truncated_models: dict[str, Path], cut: str, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="looks truncated or damaged"):
        probe_model_file(truncated_models[cut], cache_dir=tmp_path)
    assert not (tmp_path / CACHE_FILE).exists()


def test_unknown_architecture(tiny_gguf) -> None:
    with pytest.raises(ModelFileError) as err:
        probe_model_file(tiny_gguf("notarealarch"))
    assert err.value.message.startswith("The model's architecture 'notarealarch' is not "
                                        "supported by this version of llama.cpp")


def test_known_architecture_with_missing_fields(tiny_gguf) -> None:
    # A llama-architecture file without the tensors and hyperparameters a real one has:
    # llama.cpp reports it, the message says which file, and nothing crashes.
    path = tiny_gguf("llama")
    try:
        result = probe_model_file(path)
    except ModelFileError as err:
        assert "tiny.gguf" in err.message
    else:
        assert result.architecture == "llama"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_loader_killed_by_a_signal(tiny_gguf, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe, "_probe_command", lambda p: [
        sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"])
    with pytest.raises(ModelFileError) as err:
        probe_model_file(tiny_gguf())
    assert err.value.message == ("The model file tiny.gguf crashed the loader (signal "
                                 "SIGSEGV); it is probably damaged.")


def test_loader_that_hangs_is_stopped(tiny_gguf, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe, "_probe_command", lambda p: [
        sys.executable, "-c", "import time; time.sleep(30)"])
    with pytest.raises(ModelFileError, match="took longer than 0.5 s"):
        probe_model_file(tiny_gguf(), timeout=0.5)


def test_loader_that_fails_without_a_report(tiny_gguf,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe, "_probe_command", lambda p: [
        sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"])
    with pytest.raises(ModelFileError, match=r"exit code 3") as err:
        probe_model_file(tiny_gguf())
    assert err.value.hint == "boom"


def test_child_entry_point_reports_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "x.gguf"
    path.write_bytes(b"nope")
    assert probe.main([str(path)]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and "not a GGUF model file" in report["error"]
    assert probe.main([]) == 64
