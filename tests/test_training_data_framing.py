"""Data read wrongly without a word, from a QA pass: square whole photos (1080x1080 crops of
half-body photos) trained as aligned face crops; CSV tables whose file column is not the first, or
with Excel's trailing empty column. Real CelebA images from ../shared/data (skipped where absent)."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.errors import FaderError
from training import cli
from training.datasets import open_dataset

TINY = ["--img-size", "32", "--init-fm", "8", "--max-fm", "16", "--n-layers", "3", "--hid-dim", "16",
        "--classifier-steps", "2", "--quiet", "--threads", "1", "--workers", "1", "--batch-size", "4",
        "--steps", "2", "--val-size", "2"]
WHOLE = "these look like whole photos, not face crops"
MAYBE = "may not be face crops"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _square_crop(src: Path, dst: Path, size: int) -> Path:
    """An aligned 178x218 crop cut to its square as training does (rows 20..198), at `size` px."""
    sq = cv2.imread(str(src))[20:198]
    dst.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(dst), sq if size == 178 else cv2.resize(sq, (size, size), interpolation=cv2.INTER_CUBIC))
    return dst


def _square_photo(src: Path, dst: Path, size: int = 1080) -> Path:
    """A whole photo centre-cropped square and enlarged, as an Instagram-style post."""
    im = cv2.imread(str(src))
    h, w = im.shape[:2]
    s = min(h, w)
    sq = im[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    dst.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(dst), cv2.resize(sq, (size, size), interpolation=cv2.INTER_CUBIC))
    return dst


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


def _train(data: Path, tmp_path: Path, capsys) -> tuple:
    code = cli.main([*TINY, "--data", str(data), "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")])
    return code, capsys.readouterr().err


# -- 1. square whole photos ------------------------------------------------------------------------

def test_square_whole_photos_are_refused_with_the_fix(tmp_path, capsys, celeba_wild):
    """16 img_celeba photos centre-cropped to 1080x1080 trained silently as face crops."""
    data = tmp_path / "Insta"
    for i, f in enumerate(sorted(celeba_wild.glob("*.jpg"))[:16]):
        _square_photo(f, data / ("yes" if i % 2 else "no") / f.name)
    code, err = _train(data, tmp_path, capsys)
    assert code == 2
    assert WHOLE in err and "of the 16 square images looked at" in err
    assert "add --align (in the training window: 'Detect and align faces')" in err
    assert not (tmp_path / "run").exists()
    # refused before the photos were preprocessed (the wait, and a cache of them nobody uses)
    assert "preprocessing" not in err and not any((tmp_path / "cache").glob("*")), err


def test_aligned_square_crops_of_any_size_train_without_a_word(tmp_path, capsys, celeba_aligned):
    data = tmp_path / "Smiling"
    for i, f in enumerate(sorted(celeba_aligned.glob("*.jpg"))[:18]):
        _square_crop(f, data / ("yes" if i % 2 else "no") / f.name, (178, 256, 1024)[i % 3])
    code, err = _train(data, tmp_path, capsys)
    assert code == 0, err
    assert WHOLE not in err and MAYBE not in err
    assert (tmp_path / "run" / "model.fader").is_file()


def test_a_few_whole_photos_among_crops_are_a_warning(tmp_path, capsys, celeba_aligned, celeba_wild):
    """Not a refusal: 4 of 24 images off could be crops the detector reads badly."""
    data = tmp_path / "Smiling"
    for f in sorted(celeba_aligned.glob("*.jpg"))[:12]:
        _square_crop(f, data / "no" / f.name, 256)
    for f in sorted(celeba_aligned.glob("*.jpg"))[12:20]:
        _square_crop(f, data / "yes" / f"b_{f.name}", 256)
    for name in ("000149.jpg", "000678.jpg", "000985.jpg", "004052.jpg"):   # faces far from the middle
        _square_photo(_require(celeba_wild / name), data / "yes" / f"a_{name}")
    code, err = _train(data, tmp_path, capsys)
    assert code == 0, err
    warning = next(line for line in err.splitlines() if MAYBE in line)
    assert "4 of the 24 square images looked at" in warning and "a_000149.jpg" in warning
    assert "if they are whole photos, add --align" in warning and WHOLE not in err


def test_square_images_without_any_face_are_a_warning(tmp_path, capsys):
    data = tmp_path / "Smiling"
    rng = np.random.default_rng(0)
    for v in ("no", "yes"):
        (data / v).mkdir(parents=True)
        for i in range(8):
            cv2.imwrite(str(data / v / f"{i}.png"), rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    code, err = _train(data, tmp_path, capsys)
    assert code == 0, err
    assert "10 of the 10 square images looked at may not be face crops (10 without a face found" in err


# -- 8. CSV tables: where the file column is, empty columns ----------------------------------------

def _images(tmp_path: Path, celeba_aligned: Path, n: int = 6) -> list:
    (tmp_path / "imgs").mkdir()
    names = []
    for f in sorted(celeba_aligned.glob("*.jpg"))[:n]:
        shutil.copy(f, tmp_path / "imgs" / f.name)
        names.append(f"imgs/{f.name}")
    return names


@pytest.mark.parametrize("header", ["Smiling,file", "Smiling,Filename", "Smiling,IMAGE", "Smiling,path",
                                    "Smiling,image_id", "Smiling,pic"])
def test_csv_file_column_is_found_wherever_it_is(tmp_path, celeba_aligned, header):
    """`Smiling,file` read the labels as file names: "40 listed file(s) not found ..., e.g. '1'"."""
    names = _images(tmp_path, celeba_aligned)
    table = tmp_path / "labels.csv"
    table.write_text(header + "\n" + "".join(f"{i % 2},{n}\n" for i, n in enumerate(names)))
    ds = open_dataset(table)
    assert [a.name for a in ds.attributes] == ["Smiling"]
    assert [Path(it.path).name for it in ds.items] == [Path(n).name for n in names]
    assert ds.labels[:, 0].tolist() == [i % 2 for i in range(len(names))]


def test_csv_file_column_in_the_middle(tmp_path, celeba_aligned):
    names = _images(tmp_path, celeba_aligned)
    table = tmp_path / "labels.csv"
    table.write_text("Male,File Name,Smiling\n" + "".join(f"{i // 3},{n},{i % 2}\n" for i, n in enumerate(names)))
    ds = open_dataset(table)
    assert [a.name for a in ds.attributes] == ["Male", "Smiling"]
    assert ds.labels.tolist() == [[i // 3, i % 2] for i in range(len(names))]


def test_csv_excel_trailing_empty_column_is_ignored(tmp_path, celeba_aligned):
    """`file,Smiling,` (rows `a.jpg,1,`) gave the generic "header must be 'file,attr1,...'"."""
    names = _images(tmp_path, celeba_aligned)
    table = tmp_path / "labels.csv"
    table.write_bytes(("file,Smiling,\r\n" + "".join(f"{n},{i % 2},\r\n" for i, n in enumerate(names))).encode())
    ds = open_dataset(table)
    assert [a.name for a in ds.attributes] == ["Smiling"] and len(ds.items) == len(names)


@pytest.mark.parametrize("header, cell, error", [
    ("file,Smiling,", lambda i: "x" if i == 2 else "",
     "column 3 (C) has no name in the header line but holds values (line 4: 'x'); name it in the header "
     "line, or delete the column"),
    ("file,Smiling,Smiling", lambda i: str(i // 3),
     "columns 2 (B) and 3 (C) are both named 'Smiling'; give each column its own name")])
def test_csv_a_column_without_a_name_of_its_own_is_named_in_the_error(tmp_path, celeba_aligned, header, cell, error):
    names = _images(tmp_path, celeba_aligned)
    table = tmp_path / "labels.csv"
    table.write_text(header + "\n" + "".join(f"{n},{i % 2},{cell(i)}\n" for i, n in enumerate(names)))
    with pytest.raises(FaderError) as info:
        open_dataset(table)
    assert str(info.value) == f"{table}: {error}"
