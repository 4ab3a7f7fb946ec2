"""No module under core/ or training/ (nor the command-line entry points) imports Qt.

A subprocess imports every one of them and lists the PySide6 modules that got loaded: a Qt import
anywhere in that code, direct or through another module, fails this test.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import importlib, json, pkgutil, sys
names = []
for package in ("core", "training"):
    pkg = importlib.import_module(package)
    names.append(package)
    for info in pkgutil.walk_packages(pkg.__path__, package + "."):
        if not info.name.endswith(".__main__"):   # running it is not importing it
            names.append(info.name)
names += ["fader_desktop.cli", "fader_desktop.platform_check"]
names += [f"fader_desktop.{m.name}" for m in pkgutil.iter_modules(importlib.import_module("fader_desktop").__path__)
          if m.name.startswith("cmd_")]
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except Exception as e:
        failed[name] = f"{type(e).__name__}: {e}"
print(json.dumps({"imported": names, "failed": failed,
                  "qt": sorted(m for m in sys.modules if m == "PySide6" or m.startswith(("PySide6.", "shiboken6")))}))
"""


def test_core_training_and_the_commands_import_no_qt():
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=600,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert not seen["failed"], seen["failed"]
    imported = set(seen["imported"])
    # the walk found the modules (an empty walk would pass vacuously)
    assert {"core.photo_edit", "core.edit_session", "core.batch", "training.trainer", "training.losses",
            "training.batches", "training.small_map_conv", "fader_desktop.cmd_edit", "fader_desktop.cmd_info"} <= imported
    assert seen["qt"] == [], f"Qt was imported by core/training/the commands: {seen['qt']}"
