"""Render resources/icons/app.svg into the platform icons the packages need (run once, outputs committed).

    python packaging/make_icons.py      # -> packaging/icons/fader-desktop.{png,ico,icns} (+ .svg copy)

Linux uses the SVG (hicolor/scalable) and the 256 px PNG; Windows the .ico (16..256 px); macOS the
.icns (installer.spec picks the one for the platform). Needs PySide6 (QtSvg) and Pillow.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SVG = ROOT / "resources" / "icons" / "app.svg"
OUT = ROOT / "packaging" / "icons"


def render(size: int):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer
    from PIL import Image
    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    img = QImage(size, size, QImage.Format.Format_RGBA8888)
    img.fill(Qt.GlobalColor.transparent)
    painter = QPainter(img)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    QSvgRenderer(str(SVG)).render(painter)
    painter.end()
    return Image.frombytes("RGBA", (size, size), bytes(img.constBits()))


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    OUT.mkdir(parents=True, exist_ok=True)
    big = render(1024)
    render(256).save(OUT / "fader-desktop.png", optimize=True)
    ico_sizes = [16, 24, 32, 48, 64, 128, 256]
    render(256).save(OUT / "fader-desktop.ico", sizes=[(s, s) for s in ico_sizes])
    big.save(OUT / "fader-desktop.icns")
    shutil.copyfile(SVG, OUT / "fader-desktop.svg")
    for f in sorted(OUT.iterdir()):
        print(f"{f.relative_to(ROOT)}: {f.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
