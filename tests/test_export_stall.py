"""Exports must leave the window running: File ▸ Export writes on a worker thread, but an encoder
that holds Python's lock for the whole image freezes the GUI thread just the same. Pillow's
libtiff coder did (bench/gui_latency.py --sizes 50 --exports tif: longest GUI stall 1.4-3.2 s at
50 MP); save_image now drives it through Pillow's encode_to_file, which releases the lock, and
the TIFF written is byte for byte the one written before. Pillow's WebP writer copied the photo
into libwebp holding the lock (130-200 ms at 50 MP); save_image calls that libwebp through
ctypes, which releases it, and writes byte for byte Pillow's file."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image, ImageCms

import core.image_io as image_io
from core import webp_writer
from core.atomic_write import atomic_file
from core.errors import ImageError
from core.image_io import load_image, save_image
from conftest import longest_pause_while as _longest_pause_while


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Photo-like pixels (4x4 blocks plus a little noise), quick to make at camera sizes."""
    rng = np.random.default_rng(seed)
    base = np.repeat(np.repeat(rng.integers(0, 252, (h // 4, w // 4, 3), np.uint8), 4, 0), 4, 1)
    return np.ascontiguousarray(base + rng.integers(0, 4, base.shape, np.uint8))


def _locked_atomic_file(path, replace=True, descriptor=False):
    """atomic_file as save_image used it before: no descriptor, so Pillow encodes the TIFF in
    memory in one call that holds Python's lock (the bytes the unlocked path must reproduce)."""
    return atomic_file(path, replace)


def test_tiff_export_leaves_other_threads_running(tmp_path):
    """A 12 MP TIFF: before, the other thread got no turn for ~90 % of the save (0.5-1 s here);
    now it keeps ticking (a few ms gaps; the margin is for a loaded 2-core machine)."""
    rgb = _photo(3000, 4000)
    tries = []
    for _ in range(3):   # a loaded machine can deschedule this thread once in a while
        gap, total = _longest_pause_while(lambda: save_image(tmp_path / "big.tif", rgb))
        tries.append((round(gap, 3), round(total, 3)))
        if gap < 0.3 * total:
            break
    else:
        pytest.fail(f"the GUI thread would stall for most of the TIFF export: (longest gap, export) s: {tries}")
    np.testing.assert_array_equal(load_image(tmp_path / "big.tif"), rgb)
    with Image.open(tmp_path / "big.tif") as im:
        assert im.info.get("compression") == "tiff_lzw" and im.mode == "RGB"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.tif"]


def _metadata() -> dict:
    exif = Image.Exif()
    exif[0x010F] = "FaderTestCam"          # Make
    exif[0x0110] = "Model 7"               # Model
    exif[0x0132] = "2024:05:01 10:00:00"   # DateTime
    exif[0x013B] = "Jane Doe"              # Artist
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta> '   # odd length
    iptc = b"\x1c\x02\x00\x00\x02\x00\x04\x1c\x02\x05\x00\x05Title"
    return dict(exif=exif.tobytes(), icc_profile=icc, xmp=xmp, iptc=iptc, dpi=(300, 300))


@pytest.mark.parametrize("case", ["plain", "metadata", "gray", "alpha", "one_row"])
def test_unlocked_tiff_is_byte_for_byte_the_locked_one(tmp_path, monkeypatch, case):
    rgb = _photo(4, 517, seed=1)[:1] if case == "one_row" else _photo(301, 517, seed=1)
    kwargs = {"metadata": _metadata(), "gray": {"gray": True, **_metadata()}}.get(case, {})
    if case == "gray":
        kwargs["icc_profile"] = None
    if case == "alpha":
        kwargs = {"alpha": np.random.default_rng(2).integers(0, 256, rgb.shape[:2], np.uint8), **_metadata()}
    save_image(tmp_path / "unlocked.tif", rgb, **kwargs)
    with monkeypatch.context() as m:
        m.setattr(image_io, "atomic_file", _locked_atomic_file)
        save_image(tmp_path / "locked.tif", rgb, **kwargs)
    assert (tmp_path / "unlocked.tif").read_bytes() == (tmp_path / "locked.tif").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locked.tif", "unlocked.tif"]


def test_the_unlocked_encoder_is_save_images_only(tmp_path):
    """Elsewhere in the process (Pillow's own saves, another thread's) libtiff is Pillow's as is."""
    rgb = _photo(64, 96)
    args = ("RGB", 0, str(tmp_path / "x.tif"), [], {})
    assert not isinstance(image_io._libtiff_encoder("RGB", *args), image_io._UnlockedLibTiff)
    with open(tmp_path / "x.tif", "wb") as f:
        assert not isinstance(image_io._libtiff_encoder("RGB", args[0], f.fileno(), *args[2:]),
                              image_io._UnlockedLibTiff)
        with image_io._tiff_unlocked():
            assert isinstance(image_io._libtiff_encoder("RGB", args[0], f.fileno(), *args[2:]),
                              image_io._UnlockedLibTiff)
            assert not isinstance(image_io._libtiff_encoder("RGB", *args), image_io._UnlockedLibTiff)
    Image.fromarray(rgb).save(tmp_path / "pillow.tif", compression="tiff_lzw")
    np.testing.assert_array_equal(load_image(tmp_path / "pillow.tif"), rgb)


def test_tiff_export_on_a_full_disk_names_the_cause_and_keeps_the_old_file(small_disk):
    """libtiff, writing to the descriptor, reports a failed write only as "encoder error -2": the
    export is written again through the checked write(), which says why; nothing is left."""
    from conftest import fill_disk
    (small_disk / "out.tif").write_bytes(b"the old file")
    fill_disk(small_disk, 96 << 10)
    with pytest.raises(ImageError, match="out.tif: cannot save image: no space left on device"):
        save_image(small_disk / "out.tif", _photo(400, 600))
    assert (small_disk / "out.tif").read_bytes() == b"the old file"
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler.bin", "out.tif"]
    os.unlink(small_disk / "filler.bin")
    save_image(small_disk / "out.tif", _photo(40, 60))
    np.testing.assert_array_equal(load_image(small_disk / "out.tif"), _photo(40, 60))


def _flat(h: int, w: int) -> np.ndarray:
    """Smooth gradients: as many pixels as a photo for libwebp to take in, quicker to encode.
    Channels x % 256, y % 256 and (x // 64 + y // 64) % 256, filled from one row and one column
    (uint8 sums wrap at 256): whole-image index arrays took 4 s of the test's 7 at 20 MP."""
    x, y = np.arange(w), np.arange(h)
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[..., 0] = (x % 256).astype(np.uint8)
    rgb[..., 1] = (y % 256).astype(np.uint8)[:, None]
    rgb[..., 2] = ((x // 64) % 256).astype(np.uint8) + ((y // 64) % 256).astype(np.uint8)[:, None]
    return rgb


def test_webp_export_leaves_other_threads_running(tmp_path):
    """Pillow's WebP writer copies the whole photo into libwebp holding Python's lock: 80-110 ms
    here at 20 MP during which the window could not repaint (130-200 ms at 50 MP); save_image
    now runs that copy and the encode with the lock released (a few ms gaps; the margin is for a
    loaded 2-core machine)."""
    rgb = _flat(4000, 5000)
    tries = []
    for _ in range(3):   # a loaded machine can deschedule this thread once in a while
        gap, total = _longest_pause_while(lambda: save_image(tmp_path / "big.webp", rgb, quality=80))
        tries.append((round(gap, 3), round(total, 3)))
        if gap < 0.05:
            break
    else:
        pytest.fail(f"the GUI thread would stall during the WebP export: (longest gap, export) s: {tries}")
    with Image.open(tmp_path / "big.webp") as im:
        assert im.size == (5000, 4000) and im.mode == "RGB"
        assert np.abs(np.asarray(im).astype(np.int16) - rgb).mean() < 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.webp"]


def _pillow_webp(path, rgb, gray=False, alpha=None, lossless=False, quality=95, **metadata):
    """The WebP Pillow's own writer makes with save_image's settings."""
    im = Image.fromarray(rgb)
    im = im.convert("L") if gray else im
    if alpha is not None:
        im.putalpha(Image.fromarray(alpha, "L"))
    settings = dict(lossless=True, exact=True) if lossless else dict(quality=quality)
    im.save(path, format="WEBP", method=4, **settings, **metadata)


@pytest.mark.parametrize("case", ["plain", "quality_1", "metadata", "exif_alone", "gray", "alpha", "alpha_metadata",
                                  "lossless", "lossless_metadata", "lossless_alpha", "gray_alpha", "one_row"])
def test_unlocked_webp_is_byte_for_byte_pillows(tmp_path, case):
    """The same library with the same settings, and the container (VP8X flags, ICCP, ALPH, EXIF
    and XMP chunks, odd sizes padded) as Pillow's mux lays it out: the same file."""
    rgb = _photo(4, 517, seed=1)[:1] if case == "one_row" else _photo(301, 517, seed=1)
    alpha = np.random.default_rng(2).integers(0, 256, rgb.shape[:2], np.uint8)
    alpha[: len(alpha) // 2] = 255
    meta = {k: v for k, v in _metadata().items() if k in ("exif", "icc_profile", "xmp")}
    kwargs = {"quality_1": {"quality": 1}, "metadata": meta, "exif_alone": {"exif": meta["exif"]},
              "gray": {"gray": True, "exif": meta["exif"], "xmp": meta["xmp"]}, "alpha": {"alpha": alpha},
              "alpha_metadata": {"alpha": alpha, **meta}, "lossless": {"lossless": True},
              "lossless_metadata": {"lossless": True, **meta}, "lossless_alpha": {"lossless": True, "alpha": alpha},
              "gray_alpha": {"gray": True, "alpha": alpha}, "one_row": meta}.get(case, {})
    save_image(tmp_path / "unlocked.webp", rgb, **kwargs)
    if "alpha" in kwargs:   # what save_image writes under the transparency
        kwargs["rgb"] = image_io._uncomposite(rgb, alpha, None)
    _pillow_webp(tmp_path / "pillow.webp", kwargs.pop("rgb", rgb), **kwargs)
    assert (tmp_path / "unlocked.webp").read_bytes() == (tmp_path / "pillow.webp").read_bytes()
    with Image.open(tmp_path / "unlocked.webp") as im:
        assert im.size == rgb.shape[1::-1]
        assert (im.info.get("icc_profile") == meta["icc_profile"]) == ("icc_profile" in kwargs)
        assert (im.info.get("xmp") == meta["xmp"]) == ("xmp" in kwargs)
        assert (im.getexif().get(0x010F) == "FaderTestCam") == ("exif" in kwargs)
        if kwargs.get("lossless"):
            assert image_io._webp_lossless(tmp_path / "unlocked.webp")
            assert np.array_equal(np.asarray(im.convert("RGB"))[alpha == 255] if "alpha" in kwargs else
                                  np.asarray(im), rgb[alpha == 255] if "alpha" in kwargs else rgb)


def test_a_webp_too_wide_is_refused_in_a_sentence(tmp_path):
    with pytest.raises(ImageError, match=r"wide.webp: cannot save image: a WebP image is at most 16383 pixels "
                                         r"wide and high, this one is 16400x2"):
        save_image(tmp_path / "wide.webp", np.zeros((2, 16400, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_without_pillows_libwebp_at_hand_pillow_writes_the_same_webp(tmp_path, monkeypatch):
    """A Pillow that links libwebp in (no library ctypes can load) or one of another version:
    save_image leaves the WebP to Pillow's writer, as before."""
    rgb = _photo(301, 517, seed=1)
    meta = {k: v for k, v in _metadata().items() if k in ("exif", "icc_profile", "xmp")}
    save_image(tmp_path / "unlocked.webp", rgb, **meta)
    monkeypatch.setattr(webp_writer, "_LIBWEBP", [None])
    save_image(tmp_path / "pillow.webp", rgb, **meta)
    assert (tmp_path / "unlocked.webp").read_bytes() == (tmp_path / "pillow.webp").read_bytes()
