"""Print the requirement pyproject.toml pins for one distribution (e.g. llama-cpp-python), so
CI builds the same version the project depends on without repeating the pin.

    python installers/ci/requirement.py llama-cpp-python   ->   llama-cpp-python==0.3.36
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def requirement(name: str, pyproject: Path = ROOT / "pyproject.toml") -> str:
    deps = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    wanted = re.sub(r"[-_.]+", "-", name).lower()
    for dep in deps:
        dist = re.split(r"[\s<>=!~;\[]", dep, maxsplit=1)[0]
        if re.sub(r"[-_.]+", "-", dist).lower() == wanted:
            return dep
    raise SystemExit(f"{name} is not a dependency in {pyproject}")


if __name__ == "__main__":
    print(requirement(sys.argv[1]))
