# Build GhostDesk-Setup-<version>.exe on Windows (run from the project root, in an environment
# where GhostDesk, pyinstaller and NSIS's makensis are installed).
#   powershell -ExecutionPolicy Bypass -File installers\windows\build.ps1 [-Suffix "-cuda"]
param([string]$Suffix = "", [switch]$SkipSmoke)
$ErrorActionPreference = "Stop"
$version = python -c "from importlib.metadata import version; print(version('ghostdesk'))"
python installers\common\make_icons.py build\icons
if ($LASTEXITCODE -ne 0) { throw "make_icons failed" }
pyinstaller --noconfirm --distpath dist --workpath build\pyinstaller installers\pyinstaller\ghostdesk.spec
if ($LASTEXITCODE -ne 0) { throw "pyinstaller failed" }

# The frozen app must start and load the bundled model (the probe runs ghostdesk-cli.exe -m).
# A CUDA build needs the NVIDIA driver to load at all, so it is skipped on machines without.
if (-not $SkipSmoke) {
    $env:QT_QPA_PLATFORM = "offscreen"
    & dist\GhostDesk\ghostdesk-cli.exe -m ghostdesk.ui.smoke --no-reply --timeout 300
    if ($LASTEXITCODE -ne 0) { throw "smoke test of the frozen app failed" }
    Remove-Item Env:\QT_QPA_PLATFORM
}

$out = "dist\GhostDesk-Setup-$version$Suffix.exe"
makensis /V3 "/DVERSION=$version" "/DDIST_DIR=dist\GhostDesk" "/DICON=build\icons\ghostdesk.ico" "/DOUT_FILE=$out" installers\windows\ghostdesk.nsi
if ($LASTEXITCODE -ne 0) { throw "makensis failed" }
Write-Output $out
