"""Render resources/ghostdesk.svg into the icon files the installers need.

    python installers/common/make_icons.py OUT_DIR [--svg resources/ghostdesk.svg]

writes OUT_DIR/png/ghostdesk-<size>.png for the Linux icon theme sizes, OUT_DIR/ghostdesk.ico
(Windows: 16–256 px) and OUT_DIR/ghostdesk.icns (macOS: 16–1024 px). Rendering uses Qt's SVG
renderer (PySide6 is a GhostDesk dependency, so every build machine has it); the .ico and
.icns containers are written here directly, with PNG-compressed images inside, which every
supported Windows and macOS version reads.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SVG = ROOT / "resources" / "ghostdesk.svg"
LINUX_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# icns element types holding PNG data, by pixel size (the @2x types reuse the larger image).
ICNS_TYPES = (
    (b"icp4", 16), (b"icp5", 32), (b"icp6", 64), (b"ic07", 128), (b"ic08", 256),
    (b"ic09", 512), (b"ic10", 1024), (b"ic11", 32), (b"ic12", 64), (b"ic13", 512),
    (b"ic14", 1024),
)


def render_png(svg: Path, size: int) -> bytes:
    """The SVG drawn into a size x size transparent PNG."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _ensure_gui_app()
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"not a valid SVG: {svg}")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return bytes(data.data())


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """An .ico holding one PNG per size (ICONDIR + ICONDIRENTRYs + images)."""
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = 6 + 16 * len(sizes)
    entries, images = b"", b""
    for size in sizes:
        png = pngs[size]
        dim = 0 if size >= 256 else size  # 0 means 256
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(png), offset)
        images += png
        offset += len(png)
    return header + entries + images


def icns_bytes(pngs: dict[int, bytes]) -> bytes:
    body = b""
    for kind, size in ICNS_TYPES:
        png = pngs[size]
        body += kind + struct.pack(">I", 8 + len(png)) + png
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def make_icons(out: Path, svg: Path = DEFAULT_SVG) -> dict[str, list[Path]]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "png").mkdir(exist_ok=True)
    wanted = sorted(set(LINUX_SIZES) | set(ICO_SIZES) | {s for _, s in ICNS_TYPES})
    pngs = {size: render_png(svg, size) for size in wanted}
    written: dict[str, list[Path]] = {"png": []}
    for size in LINUX_SIZES:
        path = out / "png" / f"ghostdesk-{size}.png"
        path.write_bytes(pngs[size])
        written["png"].append(path)
    (out / "ghostdesk.ico").write_bytes(ico_bytes({s: pngs[s] for s in ICO_SIZES}))
    (out / "ghostdesk.icns").write_bytes(icns_bytes(pngs))
    written["ico"] = [out / "ghostdesk.ico"]
    written["icns"] = [out / "ghostdesk.icns"]
    return written


_app = None


def _ensure_gui_app() -> None:
    """Qt needs an application object to render; a QApplication (not the smaller
    QGuiApplication), so that widgets still work in a process that goes on to use them."""
    global _app
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is None:
        if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        _app = QApplication([sys.argv[0]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--svg", type=Path, default=DEFAULT_SVG)
    args = parser.parse_args(argv)
    written = make_icons(args.out, args.svg)
    for paths in written.values():
        for path in paths:
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
