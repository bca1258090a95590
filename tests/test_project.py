"""Project-level promises: the README's set-up commands, CI running the same test command,
and the core/UI boundary."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    commands, inside = [], False
    for line in lines:
        if line.startswith("```"):
            if inside:
                inside = False
                if len(commands) == 2:
                    break
                continue
            inside = True
            continue
        if inside and line.strip():
            commands.append(line.strip())
    return commands


def test_readme_starts_with_the_two_setup_commands():
    commands = readme_commands()
    assert len(commands) == 2
    app, tests = commands
    assert app.endswith(".venv/bin/ghostdesk") and "pip install" in app
    assert "pytest" in tests and "pip install" in tests


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert readme_commands()[1] in ci.splitlines()


def test_the_core_never_imports_qt():
    result = subprocess.run([str(Path(sys.executable).parent / "lint-imports"),
                             "--config", str(ROOT / "pyproject.toml")],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_core_and_cli_run_headless_without_loading_qt_or_llama():
    code = (
        "import sys, ghostdesk.app, ghostdesk.cli, ghostdesk.core.companion;"
        "import ghostdesk.core.store.conversations, ghostdesk.core.llm.engine;"
        "bad = [m for m in ('PySide6', 'llama_cpp', 'torch') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_finds_nothing():
    result = subprocess.run([str(Path(sys.executable).parent / "ruff"), "check", "ghostdesk",
                             "tests"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
