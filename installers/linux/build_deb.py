"""Build ghostdesk_<version>_amd64.deb: GhostDesk and every dependency, installed offline.

    .venv/bin/python installers/linux/build_deb.py [--out dist] [--find-links DIR ...]
    .venv/bin/python installers/linux/build_deb.py --dry-run --out /tmp/plan

How the package is made
-----------------------
1. A wheelhouse: `pip wheel` of the project resolves the dependency list in pyproject.toml at
   build time (nothing here names a dependency) and collects a wheel for each: downloaded,
   taken from --find-links folders (the llama-cpp-python wheel compiled for this build, the
   CPU torch wheel), or built from source.
2. A private virtual environment at /opt/ghostdesk/venv is created *now*, from the wheelhouse
   alone (`pip install --no-index --find-links WHEELHOUSE`), in a staging folder, with the
   Debian interpreter the package will run on (/usr/bin/python3.X).
3. It is made relocatable to its final path: the scripts' #! lines, pyvenv.cfg and the
   activate scripts name /opt/ghostdesk/venv; byte-code is compiled with /opt/... as its
   source path, in "unchecked-hash" mode so it stays valid whatever dpkg does to file times.
   Any remaining mention of the staging folder fails the build.
4. The launcher (/usr/bin/ghostdesk), the .desktop entry, the icons (rendered from the SVG)
   and the documentation are added; Depends lists the interpreter, the system libraries the
   environment's native code links to (found with ldd and dpkg -S) and those Qt's xcb
   platform plugin and the emoji buttons need.
5. dpkg-deb builds the package with root ownership and md5sums.

Building the environment at package-build time rather than in postinst means installing is
only unpacking: no pip, no network, no compiler, nothing that can fail half-way on the user's
machine, every file is known to dpkg (dpkg -L / -V / clean removal), and the exact bytes that
were tested are the bytes installed. The cost is that the package is tied to one Python minor
version (the wheels are anyway: numpy, torch and friends are cp3XX builds), which Depends says.

No maintainer script touches the user's data folder (~/.local/share/GhostDesk): removing or
purging the package leaves it, and an upgrade keeps it (the app migrates its database on
start, with a backup first).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE.parent / "common"))

PACKAGE = "ghostdesk"
ARCH = "amd64"
PREFIX = "/opt/ghostdesk"
VENV = f"{PREFIX}/venv"
DEFAULT_PYTHON = "/usr/bin/python3.11"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
MAINTAINER = os.environ.get("DEB_MAINTAINER", "GhostDesk maintainers <packages@ghostdesk.invalid>")

# Needed at run time but not visible to ldd: Qt's xcb platform plugin and what it loads, the
# emoji font of the feedback buttons, OpenMP for llama.cpp's CPU backend.
BASE_DEPENDS = (
    "fonts-noto-color-emoji",
    "libgomp1",
    "libxcb-cursor0",
    "libxcb-icccm4",
    "libxcb-image0",
    "libxcb-keysyms1",
    "libxcb-randr0",
    "libxcb-render-util0",
    "libxcb-shape0",
    "libxcb-xinerama0",
    "libxcb-xkb1",
    "libxkbcommon-x11-0",
    "libxkbcommon0",
    "libegl1",
    "libgl1",
    "libfontconfig1",
    "libdbus-1-3",
    "libglib2.0-0",
)
# Wanted but not required: Qt's native Wayland platform plugin (without them Qt uses XWayland).
RECOMMENDS = ("libwayland-cursor0", "libwayland-egl1")
SYNOPSIS = "private desktop AI companion running a local language model"
LONG_DESCRIPTION = """\
GhostDesk is a private AI companion that lives on your desktop. It runs a
local GGUF language model through llama.cpp, keeps every conversation in a
SQLite database in your home folder, remembers what matters to you and learns
from your feedback.
.
Everything stays on this computer: no account, no telemetry, no network
traffic unless you ask for a model download. A small model is included, so
it works right after installation, with or without a GPU."""

DESKTOP_FILE = """\
[Desktop Entry]
Type=Application
Version=1.4
Name=GhostDesk
GenericName=AI Companion
Comment=A private AI companion that runs on this computer
Exec=ghostdesk
TryExec=ghostdesk
Icon=ghostdesk
Terminal=false
Categories=Utility;
Keywords=AI;companion;chat;assistant;LLM;
StartupNotify=true
StartupWMClass=ghostdesk
"""

LAUNCHER = f"""\
#!/bin/sh
# GhostDesk: runs the app from its private Python environment in {PREFIX}.
# Settings of another Python installation must not leak into it.
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP PYTHONUSERBASE
exec {VENV}/bin/ghostdesk "$@"
"""

POSTRM = f"""\
#!/bin/sh
# GhostDesk keeps each user's conversations, memories, settings and models in their own data
# folder (~/.local/share/GhostDesk). Nothing here touches it: not on remove, purge or upgrade.
set -e
case "$1" in
    remove|purge)
        # Files written inside the private environment after installation (none are
        # expected; byte-code ships in the package) would keep the folder alive.
        if [ -d {PREFIX} ]; then
            rm -rf {PREFIX}
        fi
        ;;
esac
exit 0
"""

COPYRIGHT = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: GhostDesk

Files: *
License: Apache-2.0

Files: opt/ghostdesk/venv/lib/*
Comment: Third-party Python packages, each under its own licence; see the license files
 in each package's *.dist-info folder.

License: Apache-2.0
 On Debian systems, the full text of the Apache License 2.0 can be found in
 /usr/share/common-licenses/Apache-2.0.
"""


@dataclass
class Project:
    root: Path
    name: str
    version: str
    description: str
    requires_python: str
    dependencies: list[str]
    variant: str = "cpu"
    """"cpu", or "cuda" for the package built with a CUDA llama-cpp-python wheel."""

    @property
    def package(self) -> str:
        return PACKAGE if self.variant == "cpu" else f"{PACKAGE}-{self.variant}"

    @property
    def deb_name(self) -> str:
        return f"{self.package}_{self.version}_{ARCH}.deb"


@dataclass
class BuildResult:
    deb: Path | None
    stage: Path
    control: dict[str, str]
    files: list[str]
    wheels: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


class BuildError(Exception):
    pass


# --- project metadata -----------------------------------------------------------------------

def read_project(root: Path) -> Project:
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    project = data["project"]
    return Project(root=root, name=project["name"], version=project["version"],
                   description=project.get("description", ""),
                   requires_python=project.get("requires-python", ""),
                   dependencies=list(project.get("dependencies", [])))


def python_version(python: str) -> tuple[int, int]:
    out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"],
                         check=True, capture_output=True, text=True).stdout.split()
    return int(out[0]), int(out[1])


def check_requires_python(project: Project, version: tuple[int, int]) -> None:
    for spec in filter(None, (s.strip() for s in project.requires_python.split(","))):
        match = re.fullmatch(r"(>=|<|<=|>|==)\s*(\d+)\.(\d+)", spec)
        if not match:
            continue
        op, want = match.group(1), (int(match.group(2)), int(match.group(3)))
        ok = {">=": version >= want, "<": version < want, "<=": version <= want,
              ">": version > want, "==": version == want}[op]
        if not ok:
            raise BuildError(f"Python {version[0]}.{version[1]} does not satisfy "
                             f"requires-python {project.requires_python!r}")


# --- the static part of the package ------------------------------------------------------------

def stage_static_files(project: Project, stage: Path) -> None:
    """Launcher, desktop entry, icons, documentation: everything but the environment."""
    from make_icons import make_icons  # installers/common/make_icons.py

    _write(stage / "usr/bin/ghostdesk", LAUNCHER, mode=0o755)
    _write(stage / "usr/share/applications/ghostdesk.desktop", DESKTOP_FILE)
    with tempfile.TemporaryDirectory() as tmp:
        made = make_icons(Path(tmp), REPO / "resources" / "ghostdesk.svg")
        for png in made["png"]:
            size = int(png.stem.rsplit("-", 1)[1])
            target = stage / f"usr/share/icons/hicolor/{size}x{size}/apps/ghostdesk.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(png, target)
    svg = stage / "usr/share/icons/hicolor/scalable/apps/ghostdesk.svg"
    svg.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / "resources" / "ghostdesk.svg", svg)
    doc = stage / "usr/share/doc/ghostdesk"
    _write(doc / "copyright", COPYRIGHT)
    readme = project.root / "README.md"
    if readme.is_file():
        shutil.copyfile(readme, doc / "README.md")
    _write(stage / "DEBIAN/postrm", POSTRM, mode=0o755)


def control_fields(project: Project, depends: list[str], installed_kib: int) -> dict[str, str]:
    fields = {
        "Package": project.package,
        "Version": project.version,
        "Architecture": ARCH,
        "Maintainer": MAINTAINER,
        "Installed-Size": str(installed_kib),
        "Depends": ", ".join(depends),
        "Recommends": ", ".join(RECOMMENDS),
    }
    # The variants install the same files: one replaces the other.
    others = [p for p in (PACKAGE, f"{PACKAGE}-cuda") if p != project.package]
    fields["Conflicts"] = ", ".join(others)
    fields["Replaces"] = ", ".join(others)
    if project.variant != "cpu":
        fields["Provides"] = PACKAGE
    description = LONG_DESCRIPTION
    if project.variant == "cuda":
        description += ("\n.\nThis build runs models on NVIDIA GPUs with CUDA; it needs the "
                        "NVIDIA driver\n(libcuda.so.1).")
    fields.update({
        "Section": "utils",
        "Priority": "optional",
        "Description": f"{SYNOPSIS}\n" + "\n".join(
            f" {line}" if line else " ." for line in description.splitlines()),
    })
    return fields


def write_control(stage: Path, fields: dict[str, str]) -> None:
    text = "".join(f"{key}: {value}\n" for key, value in fields.items())
    _write(stage / "DEBIAN/control", text)


def python_depends(version: tuple[int, int]) -> str:
    """The interpreter the environment links to (its pyvenv.cfg and bin/python point at
    /usr/bin/python3.X, and its compiled wheels are cp3X builds)."""
    return f"python{version[0]}.{version[1]}"


# --- wheelhouse and environment ------------------------------------------------------------------

def build_wheelhouse(project: Project, wheelhouse: Path, find_links: list[Path],
                     log: Path) -> list[Path]:
    wheelhouse.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "wheel", "--wheel-dir", str(wheelhouse),
           "--disable-pip-version-check", "--progress-bar", "off"]
    for folder in find_links:
        cmd += ["--find-links", str(folder)]
    cmd.append(str(project.root))
    _run(cmd, log)
    wheels = sorted(wheelhouse.glob("*.whl"))
    own = [w for w in wheels if w.name.startswith(f"{project.name}-{project.version}-")]
    if not own:
        raise BuildError(f"pip did not build a {project.name} {project.version} wheel")
    check_package_data(own[0], project.root / project.name.replace("-", "_"))
    return wheels


def check_package_data(wheel: Path, package_dir: Path) -> None:
    """Every non-Python file inside the package folder must be in the wheel (a data file
    forgotten in [tool.setuptools.package-data] would be missing only in installed copies)."""
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    missing = []
    for path in package_dir.rglob("*"):
        if not path.is_file() or "__pycache__" in path.parts or path.name.startswith("."):
            continue
        if path.suffix in (".py", ".pyc", ".pyo"):
            continue
        rel = path.relative_to(package_dir.parent).as_posix()
        if rel not in names:
            missing.append(rel)
    if missing:
        raise BuildError(
            "These package files are not in the wheel; add them to "
            "[tool.setuptools.package-data] in pyproject.toml: " + ", ".join(sorted(missing)))


def build_venv(project: Project, stage: Path, wheelhouse: Path, python: str, log: Path) -> Path:
    venv = stage / VENV.lstrip("/")
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    _run([python, "-m", "venv", "--without-pip", str(venv)], log)
    # Only the wheelhouse: no index, no configuration files that could add one.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    _run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
          "--no-index", "--find-links", str(wheelhouse), "--no-compile",
          "--no-warn-script-location", "--disable-pip-version-check", "--progress-bar", "off",
          f"{project.name}=={project.version}"], log, env=env)
    return venv


def relocate(venv: Path, final: str) -> list[str]:
    """Point every text mention of the staging folder at the final one; return the files
    changed. Fails if a binary file still names the staging folder."""
    old = str(venv).encode()
    changed: list[str] = []
    hits = subprocess.run(["grep", "-rlF", "--null", str(venv), str(venv)],
                          capture_output=True).stdout.split(b"\0")
    for raw in filter(None, hits):
        path = Path(raw.decode())
        data = path.read_bytes()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise BuildError(f"{path} names the staging folder and is not text") from err
        path.write_bytes(data.replace(old, final.encode()))
        changed.append(str(path.relative_to(venv)))
    return changed


def compile_bytecode(venv: Path, stage: Path, log: Path) -> None:
    lib = next((venv / "lib").glob("python3*"))
    _run([str(venv / "bin" / "python"), "-m", "compileall", "-q", "-j", "0",
          "--invalidation-mode", "unchecked-hash", "-s", str(stage), "-p", "/", str(lib)],
         log, check=False)  # a few test or template files in wheels are not valid Python


def scan_shared_libraries(venv: Path) -> tuple[set[str], set[str]]:
    """(Debian packages, unresolved library names) for the system libraries the native
    code in the environment links to. Qt plugins GhostDesk never loads (SQL drivers, print
    support, GTK themes, ...) are left out: Qt skips a plugin whose libraries are missing."""
    elves = [p for p in venv.rglob("*") if p.is_file() and not p.is_symlink()
             and (".so" in p.name or p.parent.name == "bin") and not _optional_plugin(p)
             and _is_elf(p)]
    resolved: set[str] = set()
    unresolved: set[str] = set()
    inside = str(venv)
    for i in range(0, len(elves), 64):
        out = subprocess.run(["ldd", *map(str, elves[i:i + 64])], capture_output=True,
                             text=True).stdout
        for line in out.splitlines():
            line = line.strip()
            if "=> not found" in line:
                unresolved.add(line.split()[0])
            elif "=>" in line:
                target = line.split("=>", 1)[1].split("(")[0].strip()
                if target and not target.startswith(inside):
                    resolved.add(target)
    # Libraries that other libraries of the environment provide are not missing.
    provided = {p.name for p in venv.rglob("*.so*")}
    unresolved -= provided
    return _packages_owning(resolved), unresolved


QT_PLUGINS_USED = {"platforms", "xcbglintegrations", "imageformats", "iconengines",
                   "platforminputcontexts", "tls", "generic", "networkinformation"}


def _optional_plugin(path: Path) -> bool:
    parts = path.parts
    for i, part in enumerate(parts[:-2]):
        if part == "plugins" and parts[i - 1] == "Qt":
            return parts[i + 1] not in QT_PLUGINS_USED
        if part == "qml" and parts[i - 1] == "Qt":
            return True
    return False


def _packages_owning(paths: set[str]) -> set[str]:
    candidates: dict[str, str] = {}
    for path in paths:
        for variant in {path, os.path.realpath(path), _toggle_usr(path),
                        _toggle_usr(os.path.realpath(path))}:
            candidates[variant] = path
    if not candidates or not shutil.which("dpkg"):
        return set()
    out = subprocess.run(["dpkg", "-S", *sorted(candidates)], capture_output=True,
                         text=True).stdout
    packages = set()
    for line in out.splitlines():
        if ": " in line:
            owners = line.split(": ", 1)[0]
            for owner in owners.split(", "):
                packages.add(owner.split(":")[0])
    return packages


def _toggle_usr(path: str) -> str:
    return path[4:] if path.startswith("/usr/") else "/usr" + path


def _is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


# --- packaging ----------------------------------------------------------------------------------

def normalise_permissions(stage: Path) -> None:
    for path in [stage, *stage.rglob("*")]:
        if path.is_symlink():
            continue
        if path.is_dir():
            path.chmod(0o755)
        else:
            executable = path.stat().st_mode & 0o111
            path.chmod(0o755 if executable else 0o644)


def installed_size_kib(stage: Path) -> int:
    total = 0
    for path in stage.rglob("*"):
        if "DEBIAN" in path.relative_to(stage).parts[:1]:
            continue
        if path.is_symlink():
            total += 1
        elif path.is_file():
            total += (path.stat().st_size + 1023) // 1024
        elif path.is_dir():
            total += 4
    return total


def write_md5sums(stage: Path) -> None:
    lines = []
    for path in sorted(stage.rglob("*")):
        rel = path.relative_to(stage)
        if rel.parts[0] == "DEBIAN" or path.is_symlink() or not path.is_file():
            continue
        digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
        lines.append(f"{digest}  {rel.as_posix()}\n")
    _write(stage / "DEBIAN/md5sums", "".join(lines))


def file_list(stage: Path) -> list[str]:
    """The package's paths as dpkg -c would show them (folders end with /)."""
    entries = []
    for path in sorted(stage.rglob("*")):
        rel = path.relative_to(stage)
        if rel.parts[0] == "DEBIAN":
            continue
        entries.append("/" + rel.as_posix() + ("/" if path.is_dir() and not path.is_symlink()
                                                else ""))
    return entries


def dpkg_deb(stage: Path, deb: Path, compression: str, log: Path) -> None:
    cmd = ["dpkg-deb", "--root-owner-group", f"-Z{compression}"]
    if compression == "zstd":
        cmd.append("-z9")
    cmd += ["--build", str(stage), str(deb)]
    _run(cmd, log)


# --- driver -------------------------------------------------------------------------------------

def build(source: Path, out: Path, work: Path, python: str, find_links: list[Path],
          dry_run: bool = False, compression: str = "zstd", variant: str = "cpu") -> BuildResult:
    os.umask(0o022)
    project = read_project(source)
    project.variant = variant
    version = python_version(python)
    check_requires_python(project, version)
    if not dry_run and (sys.version_info.major, sys.version_info.minor) != version:
        raise BuildError(f"run this script with a Python {version[0]}.{version[1]} (the "
                         f"wheels must match {python}); this one is "
                         f"{sys.version_info.major}.{sys.version_info.minor}")
    stage = work / "root"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    out.mkdir(parents=True, exist_ok=True)
    log = work / "build.log"
    timings: dict[str, float] = {}
    warnings: list[str] = []
    started = time.monotonic()

    stage_static_files(project, stage)
    depends = [python_depends(version), *BASE_DEPENDS]
    wheels: list[str] = []
    if not dry_run:
        t = time.monotonic()
        wheel_paths = build_wheelhouse(project, work / "wheelhouse", find_links, log)
        wheels = [w.name for w in wheel_paths]
        timings["wheelhouse_s"] = time.monotonic() - t
        t = time.monotonic()
        venv = build_venv(project, stage, work / "wheelhouse", python, log)
        relocate(venv, VENV)
        compile_bytecode(venv, stage, log)
        leftovers = subprocess.run(["grep", "-rlF", str(stage), str(venv)],
                                   capture_output=True, text=True).stdout.split()
        if leftovers:
            raise BuildError("the staging folder is still named in: " + ", ".join(leftovers[:5]))
        timings["environment_s"] = time.monotonic() - t
        t = time.monotonic()
        libs, unresolved = scan_shared_libraries(venv)
        depends += sorted(libs - set(depends) - {python_depends(version)})
        if unresolved:
            warnings.append("libraries no installed package provides (optional Qt plugins "
                            "load without them): " + ", ".join(sorted(unresolved)))
        timings["shlibs_s"] = time.monotonic() - t

    normalise_permissions(stage)
    fields = control_fields(project, _dedupe(depends), installed_size_kib(stage))
    write_control(stage, fields)
    files = file_list(stage)
    manifest = out / f"{project.package}_{project.version}_{ARCH}.files.txt"
    manifest.write_text("".join(f"{f}\n" for f in files), encoding="utf-8")
    plan = {
        "package": project.deb_name, "dry_run": dry_run, "control": fields,
        "requirements": project.dependencies, "wheels": wheels, "warnings": warnings,
        "venv": VENV, "python": python,
    }
    (out / f"{project.package}_{project.version}_{ARCH}.plan.json").write_text(
        json.dumps(plan, indent=2), encoding="utf-8")
    deb = None
    if not dry_run:
        t = time.monotonic()
        write_md5sums(stage)
        deb = out / project.deb_name
        dpkg_deb(stage, deb, compression, log)
        timings["dpkg_deb_s"] = time.monotonic() - t
    timings["total_s"] = time.monotonic() - started
    return BuildResult(deb, stage, fields, files, wheels, warnings, timings)


def _dedupe(items: list[str]) -> list[str]:
    seen: set[str] = set()
    return [i for i in items if not (i in seen or seen.add(i))]


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def _run(cmd: list[str], log: Path, env: dict[str, str] | None = None,
         check: bool = True) -> None:
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        done = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    if check and done.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise BuildError(f"{cmd[0]} {' '.join(cmd[1:3])} failed ({done.returncode}):\n{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the GhostDesk .deb (see the module doc).")
    parser.add_argument("--source", type=Path, default=REPO, help="project folder")
    parser.add_argument("--out", type=Path, default=REPO / "dist")
    parser.add_argument("--work", type=Path, help="build folder (default: build/deb)")
    parser.add_argument("--python", default=DEFAULT_PYTHON,
                        help="interpreter the package runs on (default: %(default)s)")
    parser.add_argument("--find-links", type=Path, action="append", default=[],
                        help="extra folder of wheels (e.g. a compiled llama-cpp-python)")
    parser.add_argument("--compression", default="zstd", choices=["zstd", "xz", "gzip", "none"])
    parser.add_argument("--variant", default="cpu", choices=["cpu", "cuda"],
                        help="cuda: package ghostdesk-cuda, for a CUDA llama-cpp-python wheel")
    parser.add_argument("--dry-run", action="store_true",
                        help="stage and describe the package without building wheels or the .deb")
    args = parser.parse_args(argv)
    work = args.work or args.source / "build" / "deb"
    try:
        result = build(args.source.resolve(), args.out.resolve(), work.resolve(), args.python,
                       [p.resolve() for p in args.find_links], args.dry_run, args.compression,
                       args.variant)
    except BuildError as err:
        print(f"build_deb: {err}", file=sys.stderr)
        return 1
    summary = {
        "deb": str(result.deb) if result.deb else None,
        "deb_bytes": result.deb.stat().st_size if result.deb else None,
        "installed_kib": int(result.control["Installed-Size"]),
        "files": len(result.files), "wheels": len(result.wheels),
        "depends": result.control["Depends"], "warnings": result.warnings,
        "timings_s": {k: round(v, 1) for k, v in result.timings.items()},
        "stage": str(result.stage),
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
