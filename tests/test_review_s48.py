"""A review of the s48 startup and model card commits: the X display check in a packaged app
installed under a folder with a space, startup where no temporary folder can be written, one name
for the packaged program, and the model card's words (no fader-train, no option names)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_startup_s48 import _clean_env, _free_display, _xcb_usable, linux_only, xvfb

REPO = Path(__file__).resolve().parents[1]
UNREACHABLE = ("the window cannot start: the X11 display :{n} (from DISPLAY) cannot be reached: no X server "
               "answers there; run it in a desktop session, or run it with QT_QPA_PLATFORM=wayland in a "
               "Wayland session (QT_QPA_PLATFORM=offscreen starts it without a window, e.g. for tests)")


# ---- 1. ldd's paths with a space (the packaged app under "/opt/Fader Desktop") -------------------
def test_ldd_lines_whose_path_has_a_space_are_read():
    from fader_desktop.platform_check import parse_ldd
    text = ("\tlinux-vdso.so.1 (0x00007ffc5f5e8000)\n"
            "\tlibxcb.so.1 => /opt/Fader Desktop/_internal/libxcb.so.1 (0x00007f2a1c2b1000)\n"
            "\tlibxcb-cursor.so.0 => not found\n"
            "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2a1bf00000)\n")
    assert parse_ldd(text) == {"libxcb.so.1": Path("/opt/Fader Desktop/_internal/libxcb.so.1"),
                               "libxcb-cursor.so.0": None,
                               "libc.so.6": Path("/lib/x86_64-linux-gnu/libc.so.6")}


def _libxcb_in_a_folder_with_a_space(tmp_path: Path) -> Path:
    """A folder named as the packaged app's, holding a copy of the libxcb the plugin loads."""
    from fader_desktop.platform_check import resolved_libraries, xcb_plugin
    _xcb_usable()
    system = resolved_libraries(xcb_plugin({}))["libxcb.so.1"]
    folder = tmp_path / "Fader Desktop" / "_internal"
    folder.mkdir(parents=True)
    shutil.copy(system, folder / "libxcb.so.1")
    return folder


@linux_only
def test_the_display_is_checked_with_a_libxcb_under_a_folder_with_a_space(tmp_path, monkeypatch):
    """The packaged app's libraries resolve inside its own folder: installed under '/opt/Fader
    Desktop', ldd's line for libxcb was not read, the display check was skipped and Qt aborted with
    a core dump on an unreachable DISPLAY."""
    from fader_desktop.platform_check import resolved_libraries, xcb_plugin
    folder = _libxcb_in_a_folder_with_a_space(tmp_path)
    monkeypatch.setenv("LD_LIBRARY_PATH", str(folder))   # as the packaged app's loader searches its folder
    assert resolved_libraries(xcb_plugin({}))["libxcb.so.1"] == folder / "libxcb.so.1"
    n = _free_display()
    r = subprocess.run([sys.executable, "-m", "fader_desktop"], cwd=tmp_path, capture_output=True, text=True,
                       env=_clean_env(tmp_path, DISPLAY=f":{n}", LD_LIBRARY_PATH=str(folder)), timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert r.stderr.strip().splitlines() == [f"fader-desktop: error: {UNREACHABLE.format(n=n)}"]


# ---- 2. no folder for temporary files -----------------------------------------------------------
def _without_temporary_folders(command: list) -> list:
    """`command` where Python finds no writable temporary folder: /tmp and /var/tmp read-only (a
    mount namespace of this user's own), TMPDIR a missing folder, the working folder read-only."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode:
        pytest.skip("needs unshare (user and mount namespaces)")
    script = ("mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp && "
              "mount --bind /var/tmp /var/tmp && mount -o remount,bind,ro /var/tmp && exec \"$@\"")
    return ["unshare", "-rm", "sh", "-c", script, "sh", *command]


@linux_only
def test_no_writable_temporary_folder_still_gives_the_one_line_and_a_reachable_display_starts(
        tmp_path, tiny_model_path):
    """The display check caught libxcb's stderr in a temporary file: where none could be made (TMPDIR
    a missing folder, /tmp not writable) startup ended in a traceback instead of the one line, and
    the window did not start on a display that works."""
    _xcb_usable()
    probe = subprocess.run(_without_temporary_folders([sys.executable, "-c", "import tempfile; tempfile.mkstemp()"]),
                           cwd=tmp_path, capture_output=True, text=True, timeout=60,
                           env=_clean_env(tmp_path, TMPDIR="/nonexistent"))
    assert probe.returncode != 0 and "No usable temporary directory" in probe.stderr, probe.stderr[-2000:]
    n = _free_display()
    r = subprocess.run(_without_temporary_folders([sys.executable, "-m", "fader_desktop"]), cwd=tmp_path,
                       capture_output=True, text=True, timeout=120,
                       env=_clean_env(tmp_path, DISPLAY=f":{n}", TMPDIR="/nonexistent"))
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert r.stderr.strip().splitlines() == [f"fader-desktop: error: {UNREACHABLE.format(n=n)}"]

    if shutil.which("Xvfb") is None:
        pytest.skip("needs Xvfb")
    n = _free_display()
    with xvfb(n):
        r = subprocess.run(_without_temporary_folders([sys.executable, "-m", "fader_desktop.frozen_entry",
                                                       "--smoke-test", "--model", str(tiny_model_path)]),
                           cwd=tmp_path, capture_output=True, text=True, timeout=300,
                           env=_clean_env(tmp_path, DISPLAY=f":{n}", TMPDIR="/nonexistent", QT_QPA_PLATFORM="xcb"))
    assert r.returncode == 0 and '"smoke": "ok"' in r.stdout, r.stdout + r.stderr[-2000:]


# ---- 4. one name for the packaged program --------------------------------------------------------
def test_the_app_and_its_trainer_take_the_packaged_programs_name_from_one_place(monkeypatch):
    from core.run_files import program_name, train_program
    from fader_desktop import cli
    assert (program_name(), cli.program_name(), train_program()) == (None, "fader-desktop", "fader-train")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    for started, name in (("/opt/Fader Desktop/FaderDesktop", "FaderDesktop"),
                          ("/home/u/.local/bin/fader-desktop", "fader-desktop"), ("", "FaderDesktop")):
        monkeypatch.setattr(sys, "argv", [started])
        assert (program_name(), cli.program_name(), train_program()) == (name, name, f"{name} train")
    monkeypatch.setattr(sys, "argv", ["/opt/Fader Desktop/FaderDesktop"])
    assert train_program(full=True) == "'/opt/Fader Desktop/FaderDesktop' train"


# ---- 5. the model card needs no command-line module ----------------------------------------------
def test_the_model_card_imports_no_command_line_module():
    from test_module_graph import _graph
    graph = _graph()
    assert "core.model_file" in graph["fader_desktop.cmd_info"]   # the graph was read
    assert [d for d in graph["fader_desktop.dialogs"] if d.startswith("fader_desktop.cmd_")] == []


# ---- 6. the model card's words ---------------------------------------------------------------------
def _card_text(qapp) -> str:
    from core.model_file import default_model_path, load_model, model_summary
    from fader_desktop.dialogs import ModelCardDialog
    path = default_model_path()
    dialog = ModelCardDialog(model_summary(load_model(path)), path)
    try:
        return dialog.browser.toPlainText().replace("\n", " ")
    finally:
        dialog.deleteLater()


def test_the_model_card_names_the_trainer_as_the_app_runs_it_and_no_option(qapp, monkeypatch):
    """The packaged app's card said 'Recipe (fader-train's settings)', a program it does not have,
    and showed the option name '(--exclude …)' for the images a run left out."""
    text = _card_text(qapp)
    assert "Recipe (the settings of fader-train):" in text
    assert "27 images (by the run's exclude list: ../shared/data/celeba/img_celeba)" in text
    assert "--exclude" not in text
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "argv", ["/opt/Fader Desktop/FaderDesktop"])
    text = _card_text(qapp)
    assert "Recipe (the settings of FaderDesktop train):" in text and "fader-train" not in text
