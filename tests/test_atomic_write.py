"""core.atomic_write: the target is either the old file or the complete new one; no temp file stays."""
import os
import stat

import pytest

from core.atomic_write import TEMP_NAME_RE, atomic_file, atomic_path, temp_path, write_bytes_atomic


def test_replaces_the_file_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    write_bytes_atomic(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_error_inside_the_block_keeps_the_old_file(tmp_path):
    target = tmp_path / "photo.jpg"
    target.write_bytes(b"the original")
    with pytest.raises(RuntimeError, match="encoder failed"):
        with atomic_file(target) as f:
            f.write(b"half a file")
            raise RuntimeError("encoder failed")
    assert target.read_bytes() == b"the original"
    assert [p.name for p in tmp_path.iterdir()] == ["photo.jpg"]


def test_atomic_path_for_writers_that_need_a_name(tmp_path):
    target = tmp_path / "anim.gif"
    with atomic_path(target, keep_suffix=True) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".gif" and TEMP_NAME_RE.match(tmp.name)
        tmp.write_bytes(b"GIF89a")
    assert target.read_bytes() == b"GIF89a"
    # a writer that fails before creating its file: the target never appears
    with pytest.raises(ValueError):
        with atomic_path(tmp_path / "never.mp4", keep_suffix=True):
            raise ValueError("no frames")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anim.gif"]


def test_missing_folder_is_an_oserror_and_the_temp_name_pattern(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_bytes_atomic(tmp_path / "no" / "such" / "file.png", b"x")
    m = TEMP_NAME_RE.match(temp_path(tmp_path / "a.b.png").name)
    assert m and m.group("name") == "a.b.png"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_new_files_get_the_umask_permissions_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        write_bytes_atomic(tmp_path / "model.fader", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "model.fader").stat().st_mode) == 0o644
