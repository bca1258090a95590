"""The .deb's metadata and file list, from a dry run (no wheels, no venv: seconds, not minutes).
The full build and install round trip is installers/linux/roundtrip.sh."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "installers" / "linux"))
sys.path.insert(0, str(ROOT / "installers" / "common"))

import build_deb  # noqa: E402


@pytest.fixture(scope="module")
def dry(tmp_path_factory):
    out = tmp_path_factory.mktemp("deb-out")
    work = tmp_path_factory.mktemp("deb-work")
    result = build_deb.build(ROOT, out, work, sys.executable, [], dry_run=True)
    return result, out


def test_the_dry_run_describes_the_package_from_pyproject(dry):
    result, out = dry
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    plan = json.loads((out / f"ghostdesk_{project['version']}_amd64.plan.json").read_text())
    assert plan["package"] == f"ghostdesk_{project['version']}_amd64.deb"
    assert plan["requirements"] == project["dependencies"]  # read at build time, not listed
    assert plan["venv"] == "/opt/ghostdesk/venv"
    fields = result.control
    assert fields["Package"] == "ghostdesk" and fields["Architecture"] == "amd64"
    assert fields["Version"] == project["version"]
    assert len(fields["Description"].splitlines()[0]) <= 80


def test_depends_name_the_interpreter_and_the_desktop_runtime(dry):
    result, _ = dry
    depends = [d.strip() for d in result.control["Depends"].split(",")]
    major, minor = sys.version_info[:2]
    assert depends[0] == f"python{major}.{minor}"
    for needed in ("fonts-noto-color-emoji", "libxcb-cursor0", "libgomp1",
                   "libxkbcommon-x11-0", "libxcb-xinerama0"):
        assert needed in depends
    assert len(depends) == len(set(depends))


def test_the_file_list_has_launcher_desktop_entry_and_icons(dry):
    result, out = dry
    files = set(result.files)
    assert "/usr/bin/ghostdesk" in files
    assert "/usr/share/applications/ghostdesk.desktop" in files
    assert "/usr/share/icons/hicolor/scalable/apps/ghostdesk.svg" in files
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        assert f"/usr/share/icons/hicolor/{size}x{size}/apps/ghostdesk.png" in files
    assert "/usr/share/doc/ghostdesk/copyright" in files
    version = result.control["Version"]
    listed = (out / f"ghostdesk_{version}_amd64.files.txt").read_text().split()
    assert set(listed) == files
    png = result.stage / "usr/share/icons/hicolor/48x48/apps/ghostdesk.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.read_bytes()[16:24] == (48).to_bytes(4, "big") * 2  # IHDR width, height


def test_the_desktop_entry_is_valid(dry):
    result, _ = dry
    entry = result.stage / "usr/share/applications/ghostdesk.desktop"
    text = entry.read_text()
    assert "Exec=ghostdesk\n" in text and "Icon=ghostdesk\n" in text
    assert "Terminal=false" in text
    validator = shutil.which("desktop-file-validate")
    if validator is None:
        pytest.skip("desktop-file-validate is not installed (Debian: desktop-file-utils)")
    done = subprocess.run([validator, str(entry)], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_the_launcher_runs_the_private_environment_only(dry):
    result, _ = dry
    launcher = result.stage / "usr/bin/ghostdesk"
    text = launcher.read_text()
    assert text.startswith("#!/bin/sh\n") and launcher.stat().st_mode & 0o111
    assert "exec /opt/ghostdesk/venv/bin/ghostdesk \"$@\"" in text
    assert "unset PYTHONPATH PYTHONHOME" in text


def test_maintainer_scripts_never_reach_the_network_nor_the_users_data(dry):
    result, _ = dry
    scripts = [p for p in (result.stage / "DEBIAN").iterdir()
               if p.name in ("preinst", "postinst", "prerm", "postrm")]
    assert scripts, "expected at least postrm"
    for script in scripts:
        text = script.read_text()
        assert script.stat().st_mode & 0o111
        for word in ("pip", "curl", "wget", "http://", "https://", "apt-get", "git "):
            assert word not in text, f"{script.name} mentions {word!r}"
        code = re.sub(r"#.*", "", text)
        assert "GhostDesk" not in code  # no data folder in the commands
        assert "$HOME" not in code and "/home" not in code and "~" not in code
        commands = [line for line in code.splitlines() if "rm " in line]
        assert all("/opt/ghostdesk" in line for line in commands)


def test_installs_use_only_the_wheelhouse(monkeypatch, tmp_path):
    """The environment is built with --no-index from the wheelhouse, config files ignored."""
    calls = []

    def fake_run(cmd, log, env=None, check=True):
        calls.append((cmd, env))

    monkeypatch.setattr(build_deb, "_run", fake_run)
    project = build_deb.read_project(ROOT)
    build_deb.build_venv(project, tmp_path / "stage", tmp_path / "wheels", sys.executable,
                         tmp_path / "log")
    install = next(cmd for cmd, _ in calls if "install" in cmd)
    env = next(env for cmd, env in calls if "install" in cmd)
    assert "--no-index" in install and "--find-links" in install
    assert install[install.index("--find-links") + 1] == str(tmp_path / "wheels")
    assert install[-1] == f"{project.name}=={project.version}"
    assert env["PIP_CONFIG_FILE"] == "/dev/null"
    assert not any(k.startswith("PIP_") and k != "PIP_CONFIG_FILE" for k in env)


def test_relocation_rewrites_text_and_refuses_binary_mentions(tmp_path):
    venv = tmp_path / "stage" / "opt" / "ghostdesk" / "venv"
    (venv / "bin").mkdir(parents=True)
    script = venv / "bin" / "ghostdesk"
    script.write_text(f"#!{venv}/bin/python\nimport sys\n")
    (venv / "pyvenv.cfg").write_text(f"home = /usr/bin\ncommand = python -m venv {venv}\n")
    changed = build_deb.relocate(venv, "/opt/ghostdesk/venv")
    assert sorted(changed) == ["bin/ghostdesk", "pyvenv.cfg"]
    assert script.read_text().startswith("#!/opt/ghostdesk/venv/bin/python\n")
    (venv / "lib.so").write_bytes(b"\x7fELF\xff\xfe" + str(venv).encode())
    with pytest.raises(build_deb.BuildError, match="not text"):
        build_deb.relocate(venv, "/opt/ghostdesk/venv")


def test_a_package_file_missing_from_the_wheel_fails_the_build(tmp_path):
    import zipfile

    pkg = tmp_path / "src" / "ghostdesk"
    (pkg / "core" / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "models" / "catalogue.toml").write_text("schema = 1\n")
    wheel = tmp_path / "ghostdesk-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("ghostdesk/__init__.py", "")
    with pytest.raises(build_deb.BuildError, match="catalogue.toml"):
        build_deb.check_package_data(wheel, pkg)
    with zipfile.ZipFile(wheel, "a") as zf:
        zf.writestr("ghostdesk/core/models/catalogue.toml", "schema = 1\n")
    build_deb.check_package_data(wheel, pkg)


def test_the_skeleton_is_a_valid_debian_package(dry, tmp_path):
    """dpkg-deb accepts the staged tree and lists the expected files."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    result, _ = dry
    deb = tmp_path / "skeleton.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Znone", "--build", str(result.stage),
                    str(deb)], check=True, capture_output=True)
    info = subprocess.run(["dpkg-deb", "--field", str(deb), "Package", "Depends"],
                          check=True, capture_output=True, text=True).stdout
    assert "Package: ghostdesk" in info and "fonts-noto-color-emoji" in info
    listing = subprocess.run(["dpkg-deb", "--contents", str(deb)], check=True,
                             capture_output=True, text=True).stdout
    assert "root/root" in listing and "./usr/bin/ghostdesk" in listing
    assert "-rwxr-xr-x root/root" in next(line for line in listing.splitlines()
                                         if line.endswith("./usr/bin/ghostdesk"))


def test_the_cuda_variant_replaces_the_cpu_package(tmp_path):
    result = build_deb.build(ROOT, tmp_path / "out", tmp_path / "work", sys.executable, [],
                             dry_run=True, variant="cuda")
    fields = result.control
    assert fields["Package"] == "ghostdesk-cuda" and fields["Provides"] == "ghostdesk"
    assert fields["Conflicts"] == fields["Replaces"] == "ghostdesk"
    assert "NVIDIA driver" in fields["Description"]
    assert (tmp_path / "out" / f"ghostdesk-cuda_{fields['Version']}_amd64.plan.json").is_file()


def test_the_cpu_package_conflicts_with_the_cuda_one(dry):
    result, _ = dry
    assert result.control["Conflicts"] == result.control["Replaces"] == "ghostdesk-cuda"
    assert "Provides" not in result.control
