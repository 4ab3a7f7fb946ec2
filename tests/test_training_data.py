"""Data layouts, crops, the preprocessing cache and the CLI's bad-input paths (no real training)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import PHONE_HEIC

from training import cli
from training.cache import open_cache
from training.datasets import celeba_crop, exclude_images, load_training_crop, open_dataset, split_dataset

REPO = Path(__file__).resolve().parents[1]


def _img(path: Path, w=89, h=109, seed=0):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    return path


def _folders(root: Path, values=("no", "yes"), n=6) -> Path:
    for vi, v in enumerate(values):
        for i in range(n):
            _img(root / v / f"{v}_{i}.png", seed=vi * 100 + i)
    return root


def _celeba(root: Path, n=12, present=(1, 2, 3, 4, 5, 6, 7, 8)) -> Path:
    names = ["Smiling", "Male", "Young"]
    lines = [str(n), " ".join(names)]
    part = []
    for i in range(1, n + 1):
        vals = [1 if (i >> b) & 1 else -1 for b in range(3)]
        lines.append(f"{i:06d}.jpg " + " ".join(f"{v:2d}" for v in vals))
        part.append(f"{i:06d}.jpg {0 if i <= 5 else (1 if i <= 7 else 2)}")
    (root / "list_attr_celeba.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(part) + "\n")
    for i in present:
        _img(root / "img_align_celeba" / f"{i:06d}.jpg", 178, 218, seed=i)
    return root


def test_labeled_folders(tmp_path):
    root = _folders(tmp_path / "Eyeglasses", values=("yes", "no"))
    ds = open_dataset(root)
    assert ds.kind == "folders"
    assert [a.name for a in ds.attributes] == ["Eyeglasses"]
    assert ds.attributes[0].values == ("no", "yes")  # "no" first: alpha=1 means glasses
    assert len(ds.items) == 12
    assert all(it.labels == ((1,) if "/yes/" in it.path else (0,)) for it in ds.items)
    tr, va = split_dataset(ds, val_size=3)
    assert len(va) == 3 and len(tr) == 9 and not set(tr) & set(va)
    tr2, va2 = split_dataset(open_dataset(root), val_size=3)
    assert list(va) == list(va2)  # deterministic hold-out


def test_labeled_folders_take_a_phones_heic_photos(tmp_path, portrait_path):
    """A user's own labeled folders come from their phone: HEIC files are training images too,
    read upright like everywhere in the app."""
    import shutil
    root = _folders(tmp_path / "Smiling", n=3)
    shutil.copy(PHONE_HEIC, root / "yes" / "IMG_0001.HEIC")
    ds = open_dataset(root)
    heic = [it for it in ds.items if it.path.endswith("IMG_0001.HEIC")]
    assert len(ds.items) == 7 and len(heic) == 1 and heic[0].labels == (1,)
    from core.image_io import load_image
    assert load_image(heic[0].path).shape == (512, 384, 3)


def test_validation_split_survives_moving_the_data(tmp_path):
    """The hold-out is chosen by the paths inside the data, not where the data lies."""
    import shutil
    a = _folders(tmp_path / "a" / "Eyeglasses", n=20)
    b = tmp_path / "elsewhere" / "deeper" / "Eyeglasses"
    shutil.copytree(a, b)
    ds_a, ds_b = open_dataset(a), open_dataset(b)
    va_a = [Path(ds_a.items[i].path).relative_to(a) for i in split_dataset(ds_a, val_size=8)[1]]
    va_b = [Path(ds_b.items[i].path).relative_to(b) for i in split_dataset(ds_b, val_size=8)[1]]
    assert va_a == va_b and len(va_a) == 8
    assert split_dataset(ds_a, val_size=8, seed=1)[1].tolist() != split_dataset(ds_a, val_size=8)[1].tolist()
    # the same for CelebA's split-1 subset (by image id)
    c1, c2 = _celeba(tmp_path / "c1", n=30, present=range(1, 31)), tmp_path / "c2" / "x"
    shutil.copytree(c1, c2)
    names = [[Path(d.items[i].path).name for i in split_dataset(d, val_size=1)[1]]
             for d in (open_dataset(c1), open_dataset(c2))]
    assert names[0] == names[1]


def test_evaluation_on_a_listed_set_of_images(tmp_path, capsys):
    """`python -m training.evaluation --val-list FILE` measures exactly the listed images."""
    import json
    from conftest import make_tiny_model
    from training import evaluation
    model = make_tiny_model(tmp_path / "m.fader", attrs=(("Smiling", ("no", "yes"), (-1.0, 2.0)),
                                                         ("Male", ("no", "yes"), (-1.0, 2.0))))
    root = _celeba(tmp_path / "celeba", n=30, present=range(1, 31))
    listed = tmp_path / "val_ids.txt"
    listed.write_text("000002.jpg\n000006.jpg\n000007.jpg\n")  # a training image may be listed too
    common = ["--model", str(model), "--data", str(root / "img_align_celeba"), "--cache-dir", str(tmp_path / "cache")]
    assert evaluation.main(common + ["--val-list", str(listed), "--out", str(tmp_path / "r.json")]) == 0
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["n_images"] == 3 and res["split"] == f"the 3 images listed in {listed}"
    capsys.readouterr()
    listed.write_text("000002.jpg\n000099.jpg\n000011.jpg\n")  # 99 is absent, 11 in the official test split
    assert evaluation.main(common + ["--val-list", str(listed)]) == 2
    assert "2 of its 3 images are not in the data" in capsys.readouterr().err
    assert evaluation.main(common + ["--val-list", str(listed), "--val-size", "5"]) == 2
    assert "either --val-size or --val-list" in capsys.readouterr().err
    assert evaluation.main(common + ["--val-list", str(tmp_path / "none.txt")]) == 2
    assert "cannot read the image list" in capsys.readouterr().err


def test_multivalued_folders(tmp_path):
    root = _folders(tmp_path / "Hair", values=("black", "blond", "brown"), n=2)
    ds = open_dataset(root, "Hair")
    assert ds.attributes[0].values == ("black", "blond", "brown")
    assert sorted(set(it.labels[0] for it in ds.items)) == [0, 1, 2]


def test_csv_table(tmp_path):
    for i in range(6):
        _img(tmp_path / "imgs" / f"{i}.png", seed=i)
    rows = ["file,Smiling,Male,Hair"]
    for i in range(6):
        rows.append(f"imgs/{i}.png,{i % 2},{1 if i < 3 else -1},{['black', 'blond', 'brown'][i % 3]}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    ds = open_dataset(tmp_path)  # the folder holding one .csv
    assert [a.name for a in ds.attributes] == ["Smiling", "Male", "Hair"]
    assert ds.attributes[2].values == ("black", "blond", "brown")
    lab = ds.labels
    assert lab[:, 0].tolist() == [0, 1, 0, 1, 0, 1]
    assert lab[:, 1].tolist() == [1, 1, 1, 0, 0, 0]
    assert lab[:, 2].tolist() == [0, 1, 2, 0, 1, 2]
    ds2 = open_dataset(tmp_path / "labels.csv", "Male")
    assert [a.name for a in ds2.attributes] == ["Male"]


def test_celeba_layout(tmp_path):
    root = _celeba(tmp_path)
    ds = open_dataset(root, "Male,Smiling")
    assert [a.name for a in ds.attributes] == ["Male", "Smiling"]
    names = [Path(it.path).name for it in ds.items]
    assert names == [f"{i:06d}.jpg" for i in range(1, 8)]  # 9..12 absent, 8 is test split
    assert ds.items[0].labels == (0, 1) and ds.items[1].labels == (1, 0)
    tr, va = split_dataset(ds)
    assert [ds.items[i].split for i in tr] == [0] * 5 and [ds.items[i].split for i in va] == [1] * 2
    # the image folder itself is accepted too, and '*' means all attributes
    assert len(open_dataset(root / "img_align_celeba", "*").attributes) == 3


def test_excluded_images_stay_out_of_training_and_validation(tmp_path):
    """A held-out photo folder that shares ids with the aligned set (img_celeba) is left out."""
    root = _celeba(tmp_path)
    held_out = tmp_path / "img_celeba"
    _img(held_out / "000002.jpg", seed=2)
    _img(held_out / "000006.jpg", seed=6)
    listed = tmp_path / "ids.txt"
    listed.write_text("000003.jpg\n\n")
    ds, dropped = exclude_images(open_dataset(root), [held_out, listed])
    assert dropped == 3
    assert [Path(it.path).name for it in ds.items] == ["000001.jpg", "000004.jpg", "000005.jpg", "000007.jpg"]
    tr, va = split_dataset(ds)
    assert len(tr) == 3 and len(va) == 1
    with pytest.raises(Exception, match="no such file or folder"):
        exclude_images(open_dataset(root), [tmp_path / "missing"])


def test_celeba_crop_is_reference_crop(tmp_path):
    p = _img(tmp_path / "a.png", 178, 218, seed=3)
    rgb = cv2.imread(str(p))[:, :, ::-1]
    crop, why = load_training_crop(str(p), 64)
    assert why is None and crop.shape == (64, 64, 3)
    ref = cv2.resize(np.ascontiguousarray(rgb[20:198]), (64, 64), interpolation=cv2.INTER_AREA)
    assert np.abs(crop.astype(int) - ref).mean() < 2.0
    small = cv2.resize(np.ascontiguousarray(rgb), (89, 109), interpolation=cv2.INTER_AREA)
    # Same framing at half size gives (nearly) the same crop.
    assert np.abs(celeba_crop(small, 64).astype(int) - ref).mean() < 12.0


def test_unreadable_and_unframed_images_are_skipped(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    assert load_training_crop(str(bad), 32) == (None, "cannot read image: not a recognised image format")
    wide = _img(tmp_path / "wide.png", 300, 100)
    assert load_training_crop(str(wide), 32)[1].startswith("not aligned")
    square = _img(tmp_path / "sq.png", 50, 50)
    assert load_training_crop(str(square), 32)[0].shape == (32, 32, 3)
    # a decompression bomb (225 megapixels, a few KB on disk) is refused from its header
    from PIL import Image
    Image.new("1", (15000, 15000)).save(tmp_path / "huge.png")
    assert load_training_crop(str(tmp_path / "huge.png"), 32) == (None, "over 210 megapixels")
    # a 108 MP phone photo is read (as the app opens it): 12000x9000, one tone, aligned framing aside
    Image.new("L", (12000, 9000), 128).save(tmp_path / "phone.png")
    assert "megapixels" not in (load_training_crop(str(tmp_path / "phone.png"), 32)[1] or "")
    # ... decoded at half its size: a training crop needs no more, and a thread held 1.2 GB for 200 MP
    from training.datasets import read_rgb
    Image.new("RGB", (12000, 9000), (90, 120, 150)).save(tmp_path / "phone.jpg", quality=80)
    rgb, why = read_rgb(str(tmp_path / "phone.jpg"))
    assert why is None and rgb.shape == (4500, 6000, 3) and abs(int(rgb[100, 100, 2]) - 150) < 4


def test_grey_16bit_alpha_and_rotated_photos_become_rgb_crops(tmp_path):
    from PIL import Image
    grey = np.full((60, 60), 200, np.uint8)
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    deep = np.full((60, 60, 3), 65535, np.uint16)
    deep[:, :, 0] = 0  # blue channel off (OpenCV order)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    rgba = np.zeros((60, 60, 4), np.uint8)
    rgba[..., 2], rgba[..., 3] = 255, 0  # red, fully transparent
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    # transparent pixels over white, as the app shows and edits them (core.image_io)
    for name, want in (("grey.png", (200, 200, 200)), ("deep.png", (255, 255, 0)), ("rgba.png", (255, 255, 255))):
        crop, why = load_training_crop(str(tmp_path / name), 32)
        assert why is None and crop.dtype == np.uint8 and crop.shape == (32, 32, 3), name
        assert tuple(int(v) for v in crop[16, 16]) == want, name
    # stored landscape 218x178, EXIF orientation 6 (shown rotated 90 degrees): a CelebA-framed portrait
    stored = Image.fromarray(np.random.default_rng(0).integers(0, 255, (178, 218, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "rotated.jpg", exif=exif)
    crop, why = load_training_crop(str(tmp_path / "rotated.jpg"), 32)
    assert why is None and crop.shape == (32, 32, 3)
    stored.save(tmp_path / "plain.jpg")
    assert load_training_crop(str(tmp_path / "plain.jpg"), 32)[1].startswith("not aligned")


def test_cache_reuse(tmp_path):
    root = _folders(tmp_path / "Smiling")
    (root / "no" / "broken.png").write_bytes(b"\x89PNG broken")
    ds = open_dataset(root)
    paths = [it.path for it in ds.items]
    c1 = open_cache(paths, 32, cache_dir=tmp_path / "cache", workers=2, progress=False)
    assert not c1.reused and c1.images.shape == (13, 32, 32, 3)
    assert c1.n_valid == 12 and c1.skipped == {"cannot read image: not a recognised image format": 1}
    assert isinstance(c1.images, np.memmap)
    c2 = open_cache(paths, 32, cache_dir=tmp_path / "cache", progress=False)
    assert c2.reused and c2.path == c1.path
    assert np.array_equal(np.asarray(c1.images), np.asarray(c2.images))
    c3 = open_cache(paths, 64, cache_dir=tmp_path / "cache", progress=False)
    assert not c3.reused and c3.path != c1.path  # the size is part of the key


def test_cache_on_a_full_disk_is_a_clear_error(tmp_path, monkeypatch):
    """No space for the cache: a one-line error before any crop is written (a sparse memmap on a
    full disk would otherwise die with SIGBUS), and no half-built cache left behind."""
    import errno
    import os
    from core.errors import FaderError
    from training.cache import cache_key
    root = _folders(tmp_path / "Smiling")
    paths = [it.path for it in open_dataset(root).items]
    cache = tmp_path / "cache"
    dead = cache / f".{cache_key(paths, 32, False)}.999999999.partial"  # left by a killed build
    dead.mkdir(parents=True)

    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "posix_fallocate", no_space, raising=False)
    with pytest.raises(FaderError, match=r"cannot write the preprocessing cache \(No space left on device; "
                                         r"it needs 0\.0 MB\): free space there or give --cache-dir"):
        open_cache(paths, 32, cache_dir=cache, progress=False)
    assert list(cache.iterdir()) == []
    monkeypatch.undo()
    assert open_cache(paths, 32, cache_dir=cache, progress=False).n_valid == 12


@pytest.mark.parametrize("case", ["missing", "one_value", "csv_unknown_file", "bad_attr", "bad_number",
                                  "bad_size", "no_steps", "cuda", "celeba_attr",
                                  "clf_weight_attr", "clf_weight_value", "clf_blur", "edit_tv", "edit_chroma"])
def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys, case):
    import torch
    good = _folders(tmp_path / "Smiling", n=3)
    args = ["--data", str(good), "--img-size", "32", "--steps", "5", "--out", str(tmp_path / "run"),
            "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    if case == "missing":
        args[1] = str(tmp_path / "nope")
    elif case == "one_value":
        solo = tmp_path / "Bangs"
        _img(solo / "yes" / "a.png")
        args[1] = str(solo)
    elif case == "csv_unknown_file":
        _img(tmp_path / "t" / "a.png")
        (tmp_path / "t" / "labels.csv").write_text("file,Smiling\na.png,1\nb.png,0\n")
        args[1] = str(tmp_path / "t" / "labels.csv")
    elif case == "bad_attr":
        args += ["--attr", "Smiling,,Male"]
    elif case == "bad_number":
        args += ["--batch-size", "-3"]
    elif case == "bad_size":
        args[3] = "48"
    elif case == "no_steps":
        args = args[:4] + args[6:]
    elif case == "cuda":
        if torch.cuda.is_available():
            pytest.skip("CUDA is available here")
        args += ["--device", "cuda"]
    elif case == "celeba_attr":
        args[1] = str(_celeba(tmp_path / "celeba"))
        args += ["--attr", "Smiling,Wings"]
    elif case == "clf_weight_attr":
        args += ["--clf-weight", "Wings=2"]
    elif case == "clf_weight_value":
        args += ["--clf-weight", "Smiling=-1"]
    elif case == "clf_blur":
        args += ["--clf-blur", "-1"]
    elif case == "edit_tv":
        args += ["--lambda-edit-tv", "nan"]
    elif case == "edit_chroma":
        args += ["--lambda-edit-chroma", "-0.5"]
    code = cli.main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("fader-train: error: "), err
    assert "Traceback" not in err[0]
    assert not (tmp_path / "run" / "checkpoint_last.pt").exists()


def _tiny_run(run: Path, cache: Path) -> list:
    """fader-train options for a run of a few seconds: tiny networks, evaluations every 2 steps."""
    return ["--img-size", "32", "--eval-every", "2", "--out", str(run), "--classifier-steps", "2", "--n-layers", "3",
            "--init-fm", "8", "--max-fm", "32", "--hid-dim", "16", "--batch-size", "4", "--threads", "1", "--quiet",
            "--cache-dir", str(cache)]


def test_an_output_that_cannot_be_written_is_a_one_line_error(tmp_path, capsys):
    """A run folder where the preview cannot be written (here a folder stands in its way): one
    line naming the file, exit 2, and the run is left resumable."""
    good = _folders(tmp_path / "Smiling", n=6)
    run = tmp_path / "run"
    # a run's own folder (a folder of other files is refused outright, see test_out_must_be_...)
    assert cli.main(["--data", str(good), "--steps", "2", "--val-size", "2"] + _tiny_run(run, tmp_path / "cache")) == 0
    (run / "preview_latest.png").unlink()
    (run / "preview_latest.png").mkdir()
    capsys.readouterr()
    code = cli.main(["--data", str(good), "--steps", "4", "--resume"] + _tiny_run(run, tmp_path / "cache"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1] == f"fader-train: error: {run / 'preview_latest.png'}: Is a directory", err[-3:]
    assert (run / "checkpoint_last.pt").is_file() and (run / "model.fader").is_file()


def test_resume_keeps_the_runs_own_validation_images(tmp_path, capsys):
    """--resume validates on the images in the run's val_files.txt, even when the data has moved
    and the split would now be drawn otherwise (another --val-size, another version's split)."""
    import json
    good = _folders(tmp_path / "Smiling", n=6)
    run = tmp_path / "run"
    tiny = _tiny_run(run, tmp_path / "cache")
    assert cli.main(["--data", str(good), "--steps", "2", "--val-size", "4"] + tiny) == 0
    assert len((run / "val_files.txt").read_text().split()) == 4
    # as a run elsewhere, or an older version, would have recorded them
    (run / "val_files.txt").write_text("/old/place/Smiling/no/no_1.png\n/old/place/Smiling/yes/yes_2.png\n"
                                       "/old/place/Smiling/yes/yes_5.png\n")
    capsys.readouterr()
    assert cli.main(["--data", str(good), "--steps", "4", "--resume"] + tiny) == 0
    assert "9 train / 3 validation images (the run's own, from val_files.txt)" in capsys.readouterr().err
    last = json.loads((run / "log.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 4 and last["val"]["n_images"] == 3


def test_console_bad_option_and_help(capsys):
    py = sys.executable
    # a wrong option is answered before torch loads (it took 4 s, --help too)
    probe = ("import sys\nfrom training.cli import main\ntry:\n    main(['--steps', 'abc'])\n"
             "except SystemExit as e:\n    print('torch' in sys.modules, e.code)\n")
    r = subprocess.run([py, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.stdout.split() == ["False", "2"], (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fader-train: error:") and "abc" in lines[0]
    # --help in this process: the same parser, without a second ~4 s interpreter and torch start
    with pytest.raises(SystemExit) as h:
        cli.main(["--help"])
    assert h.value.code == 0
    usage = capsys.readouterr().out
    for opt in ("--data", "--attr", "--img-size", "--steps", "--epochs", "--out", "--resume", "--init", "--align",
                "--device", "--batch-size", "--eval-every", "--ckpt-every", "--val-size", "--lambda-schedule",
                "--n-layers", "--init-fm", "--max-fm", "--n-skip", "--deconv-method", "--instance-norm",
                "--dec-dropout", "--n-ptc-dis", "--lambda-ptc-dis", "--lambda-clf-dis", "--smooth-label",
                "--no-flip", "--classifier-steps", "--classifier", "--workers", "--seed", "--half-export",
                "--max-minutes", "--clf-blur", "--lambda-edit-tv", "--lambda-edit-chroma"):
        assert opt in usage, opt


def test_weighted_attribute_loss():
    import torch
    from core.attributes import Attribute
    from training.losses import attr_loss
    attrs = [Attribute("Smiling"), Attribute("Young")]
    torch.manual_seed(0)
    logits, y = torch.randn(8, 4), torch.randint(0, 2, (8, 2))
    ce = [torch.nn.functional.cross_entropy(logits[:, 2 * j:2 * j + 2], y[:, j]) for j in range(2)]
    assert torch.allclose(attr_loss(logits, y, attrs), ce[0] + ce[1])
    assert torch.allclose(attr_loss(logits, y, attrs, weights=[1.0, 3.0]), ce[0] + 3 * ce[1])


def test_gaussian_blur_matches_torchvision():
    """The classifier discriminator's blur (--clf-blur) without torchvision, which the packaged app leaves out."""
    import math
    import torch
    import torchvision.transforms.functional as TF
    from training.augment import gaussian_blur
    x = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    for sigma in (0.5, 1.0, 1.7):
        k = 2 * math.ceil(2 * sigma) + 1
        assert torch.allclose(gaussian_blur(x, sigma), TF.gaussian_blur(x, [k, k], [sigma, sigma]), atol=1e-6)


def test_training_options_reach_the_run_config(tmp_path):
    """--amp, --clf-weight, --clf-blur and the edit penalties end up in the checkpoint's config."""
    from training.trainer import CHECKPOINT_NAME, load_checkpoint
    data = _folders(tmp_path / "Smiling", n=4)
    out = tmp_path / "run"
    code = cli.main(["--data", str(data), "--img-size", "32", "--init-fm", "8", "--max-fm", "16", "--n-layers", "3",
                     "--hid-dim", "16", "--steps", "2", "--classifier-steps", "2", "--val-size", "2",
                     "--lambda-clf-dis", "0.01", "--clf-weight", "Smiling=2.5", "--clf-blur", "0.5",
                     "--lambda-edit-tv", "0.1", "--lambda-edit-chroma", "0.2", "--amp", "off",
                     "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    assert code == 0
    c = load_checkpoint(out / CHECKPOINT_NAME)["config"]
    assert (c["amp"], c["clf_weights"], c["clf_blur"], c["lambda_edit_tv"], c["lambda_edit_chroma"]) == \
        ("off", {"Smiling": 2.5}, 0.5, 0.1, 0.2)
    assert c["lambda_lat_dis"] == 1e-4 and c["n_critic"] == 0  # the reference's default; no critic unless asked
    # a resumed run takes a new latent weight and an image critic; what is not given stays
    code = cli.main(["--data", str(data), "--img-size", "32", "--steps", "3", "--resume", "--lambda-lat-dis", "5e-4",
                     "--lambda-critic-attr", "0.05", "--lambda-critic-hold", "0.5", "--single-edits", "0.25",
                     "--critic-warmup", "5",
                     "--critic-width", "8", "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    assert code == 0
    c = load_checkpoint(out / CHECKPOINT_NAME)["config"]
    assert (c["lambda_lat_dis"], c["n_critic"], c["lambda_critic_attr"], c["critic_width"], c["lambda_edit_tv"],
            c["lambda_critic_hold"], c["single_edits"], c["critic_warmup_until"]) == (5e-4, 1, 0.05, 8, 0.1, 0.5, 0.25, 7)


def test_critic_hold_and_single_edit_options_are_checked(tmp_path, capsys):
    data = _folders(tmp_path / "Smiling", n=4)
    base = ["--data", str(data), "--steps", "2", "--out", str(tmp_path / "run"), "--quiet"]
    for extra, msg in ((["--single-edits", "1.5"], "--single-edits must be in [0, 1], got 1.5"),
                       (["--lambda-critic-hold", "-1"], "--lambda-critic-hold must be >= 0, got -1.0"),
                       (["--lambda-critic-hold", "1", "--n-critic", "0"],
                        "--lambda-critic-adv/--lambda-critic-attr/--lambda-critic-hold need --n-critic > 0")):
        assert cli.main(base + extra) == 2
        assert capsys.readouterr().err.strip() == f"fader-train: error: {msg}"
    assert not (tmp_path / "run").exists()


def test_resume_from_a_bad_checkpoint_is_a_one_line_error(tmp_path, capsys):
    """Garbage, a torn file, another program's torch file and a pickle that would run code: each
    is refused in one line, and the code never runs (checkpoints load with weights_only)."""
    import os
    import pickle
    import torch
    good = _folders(tmp_path / "Smiling", n=3)
    run = tmp_path / "run"
    run.mkdir()
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    buf = tmp_path / "real.pt"
    torch.save({"format": "something else", "w": torch.zeros(1000)}, buf)
    cases = {"garbage": b"garbage\n", "torn": buf.read_bytes()[:600], "foreign": buf.read_bytes(),
             "code": pickle.dumps({"x": Payload()})}
    want = {"garbage": "damaged or not a fader-train checkpoint (only plain tensors",
            "torn": "damaged or not a fader-train checkpoint (", "foreign": "not a fader-train checkpoint",
            "code": "damaged or not a fader-train checkpoint (only plain tensors"}
    for name, data in cases.items():
        (run / "checkpoint_last.pt").write_bytes(data)
        code = cli.main(["--data", str(good), "--resume", "--out", str(run), "--quiet",
                         "--cache-dir", str(tmp_path / "cache")])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, (name, err)
        assert err[0].startswith(f"fader-train: error: {run / 'checkpoint_last.pt'}: {want[name]}"), (name, err)
        assert (run / "checkpoint_last.pt").read_bytes() == data  # left as it was
    assert not marker.exists()


# -- hostile and careless use (issue 18) --------------------------------------------------------

def test_csv_typo_in_a_numeric_column_is_an_error(tmp_path):
    """`abc` among 0/1 used to become a third value of the attribute, silently."""
    for i in range(6):
        _img(tmp_path / f"{i}.png", seed=i)
    rows = ["file,Smiling"] + [f"{i}.png,{'abc' if i == 3 else i % 2}" for i in range(6)]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    from core.errors import FaderError
    with pytest.raises(FaderError) as info:
        open_dataset(tmp_path / "labels.csv")
    assert str(info.value) == (f"{tmp_path / 'labels.csv'}: column 'Smiling' line 5: 'abc' is not a number, but the "
                               "column's other values are (0/1); use numbers or labels throughout")


def test_out_must_be_a_new_empty_or_run_folder(tmp_path, capsys):
    """--out on a folder of the user's files replaced its log.jsonl, command.txt, …; --out on a
    file said "File exists" only after preprocessing. Both are refused first, nothing touched."""
    good = _folders(tmp_path / "Smiling", n=6)
    theirs = tmp_path / "my_project"
    theirs.mkdir()
    (theirs / "log.jsonl").write_text("my own log\n")
    (theirs / "command.txt").write_text("my commands\n")
    cache = tmp_path / "cache"
    args = ["--data", str(good), "--steps", "2", "--val-size", "2"]
    assert cli.main(args + _tiny_run(theirs, cache)) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"fader-train: error: --out {theirs}: the folder holds files (command.txt, log.jsonl) and is not a "
        "fader-train run; choose a new or empty folder so that none of them is overwritten"]
    assert sorted(p.name for p in theirs.iterdir()) == ["command.txt", "log.jsonl"]
    assert (theirs / "log.jsonl").read_text() == "my own log\n"
    (tmp_path / "afile").write_text("x")
    assert cli.main(args + _tiny_run(tmp_path / "afile", cache)) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"fader-train: error: --out {tmp_path / 'afile'}: "
                                                            "exists and is not a folder"]
    assert not cache.exists()  # refused before the preprocessing cache was built
    # an empty folder is fine; the run marks it, so a later run there may resume or restart
    (tmp_path / "empty").mkdir()
    assert cli.main(args + _tiny_run(tmp_path / "empty", cache)) == 0
    assert (tmp_path / "empty" / cli.RUN_MARKER).is_file()
    assert cli.main(["--data", str(good), "--steps", "3", "--resume"] + _tiny_run(tmp_path / "empty", cache)) == 0


def test_batch_size_is_bounded_before_allocating(tmp_path, capsys):
    """--batch-size 100000 on a few dozen images grew to 18 GB and ignored Ctrl-C."""
    good = _folders(tmp_path / "Smiling", n=6)
    cache = tmp_path / "cache"
    tiny = _tiny_run(tmp_path / "run", cache)
    i = tiny.index("--batch-size")
    assert cli.main(["--data", str(good), "--steps", "2"] + tiny[:i + 1] + ["100000"] + tiny[i + 2:]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "fader-train: error: --batch-size must be at most 1024, got 100000"]
    assert cli.main(["--data", str(good), "--steps", "2"] + tiny + ["--threads", "100000"]) == 2
    assert "--threads must be at most 1024" in capsys.readouterr().err
    assert not cache.exists() and not (tmp_path / "run").exists()
    # larger than the data: the batch is the whole training set (a bigger one only repeats images)
    assert cli.main(["--data", str(good), "--steps", "2", "--val-size", "2"] + tiny[:i + 1] + ["500"] + tiny[i + 2:]) == 0
    assert "--batch-size 500 is more than the 10 training images; using 10" in capsys.readouterr().err
