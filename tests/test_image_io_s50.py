"""16-bit PNG and TIFF opening (session 50): a grey PNG's transparent key (tRNS) is compared at 16
bits, so a key above 255 makes its pixels transparent as any transparency is (over white in the
photo, 0 in its alpha plane), where before it was lost (or took every pixel from 255 up with it);
opening a 16-bit photo with its Source (open_photo, as the window, `edit` and `batch` do)
decodes it once, where before OpenCV decoded it twice and Pillow twice more (for its EXIF);
a 16-bit grey TIFF with an EXIF orientation opens upright (it came out garbled)."""
from __future__ import annotations

import gc
import struct
import tracemalloc
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from core.image_io import export_photo, load_image, open_photo, read_source

DEPTH_NOTE = "more than 8 bits per channel, written with 8"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _exif_orientation(value: int) -> bytes:
    """A little-endian EXIF block (TIFF header, one IFD) holding only the orientation."""
    return b"II*\0" + struct.pack("<IHHHIHHI", 8, 1, 0x0112, 3, 1, value, 0, 0)


def _png16(path: Path, values: np.ndarray, trns: bytes | None = None, exif: int | None = None,
           exif_after_pixels: bool = False) -> None:
    """A 16-bit PNG written by hand (zlib and struct): ``values`` (H, W) grey or (H, W, 3) RGB,
    with a tRNS chunk ``trns`` and an eXIf chunk of orientation ``exif``, before or after IDAT."""
    h, w = values.shape[:2]
    color_type = 0 if values.ndim == 2 else 2
    raw = b"".join(b"\0" + values[y].astype(">u2").tobytes() for y in range(h))
    eXIf = _chunk(b"eXIf", _exif_orientation(exif)) if exif else b""
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))
                     + (_chunk(b"tRNS", trns) if trns is not None else b"")
                     + (eXIf if not exif_after_pixels else b"") + _chunk(b"IDAT", zlib.compress(raw))
                     + (eXIf if exif_after_pixels else b"") + _chunk(b"IEND", b""))


def _as_8bit(values: np.ndarray) -> np.ndarray:
    """What load_image makes of opaque 16-bit values: scaled with rounding."""
    return np.rint(values / 257.0).astype(np.uint8)


def _grey(h: int = 40, w: int = 60, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 65536, (h, w)).astype(np.uint16)


@pytest.mark.parametrize("key", [4000, 255, 65535])
def test_a_16bit_grey_png_with_a_transparent_key_is_transparent_there_only(tmp_path, key):
    """Pixels whose grey is the 16-bit key are transparent: white in the opened photo (as an RGBA
    photo's transparency is composited), alpha 0 in its plane and in a PNG export; every other
    pixel is opaque, those with the key's 8-bit reading too (4001 beside 4000), and a key of 255
    leaves the brighter pixels alone. Before, Pillow compared the key with the grey clamped to 8
    bits: 4000 was lost, and 255 or 65535 made every pixel from 255 up transparent."""
    grey = _grey()
    grey[grey == key] = 1000                      # the key only where it is put below
    grey[:8, :8] = key
    grey[8:10, :8] = min(key + 1, 65534)          # its 8-bit neighbours stay opaque
    grey[10:12, :8] = max(key - 1, 1)
    src = tmp_path / "key.png"
    _png16(src, grey, struct.pack(">H", key))
    clear = grey == key

    photo = load_image(src)
    assert (photo[clear] == 255).all()
    np.testing.assert_array_equal(photo[~clear], np.repeat(_as_8bit(grey[~clear])[:, None], 3, axis=1))

    source = read_source(src)
    assert source.alpha is not None
    np.testing.assert_array_equal(source.alpha, np.where(clear, 0, 255))

    copied, notes = export_photo(src, tmp_path / "out.png", photo, source)
    with Image.open(tmp_path / "out.png") as im:
        written = np.asarray(im.convert("LA"))
    np.testing.assert_array_equal(written[..., 1], np.where(clear, 0, 255))
    np.testing.assert_array_equal(written[..., 0][~clear], _as_8bit(grey[~clear]))
    assert DEPTH_NOTE in notes   # its 16 bits have no alpha channel to go with: written with 8, said


def test_a_16bit_rgb_png_with_a_transparent_colour_key(tmp_path):
    """A 16-bit RGB PNG's 6-byte key colour: its pixels (all three values equal) transparent,
    others opaque, those one value off or with the same 8-bit reading too; a PNG export keeps the
    16 bits and the transparency."""
    rgb = np.random.default_rng(1).integers(0, 65536, (30, 50, 3)).astype(np.uint16)
    key = (4000, 1234, 50000)
    rgb[:6, :6] = key
    rgb[6:8, :6] = (4000, 1234, 50001)
    rgb[8:10, :6] = (4001, 1234, 50000)
    src = tmp_path / "rgbkey.png"
    _png16(src, rgb, struct.pack(">HHH", *key))
    clear = (rgb == key).all(axis=2)
    assert clear.sum() == 36

    photo = load_image(src)
    assert (photo[clear] == 255).all()
    np.testing.assert_array_equal(photo[~clear], _as_8bit(rgb[~clear]))
    source = read_source(src)
    np.testing.assert_array_equal(source.alpha, np.where(clear, 0, 255))

    copied, notes = export_photo(src, tmp_path / "out.png", photo, source)
    assert not copied and DEPTH_NOTE not in notes
    written = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint16 and written.shape == (30, 50, 4)
    np.testing.assert_array_equal(written[..., 3], np.where(clear, 0, 65535))
    np.testing.assert_array_equal(written[..., 2::-1][~clear], rgb[~clear])


@pytest.fixture
def decodes(monkeypatch):
    """Counts the decodes of whole images: OpenCV's, and Pillow's (a load with tiles to decode)."""
    count = {"n": 0}
    imdecode, load = cv2.imdecode, ImageFile.ImageFile.load

    def counted_imdecode(*args, **kwargs):
        count["n"] += 1
        return imdecode(*args, **kwargs)

    def counted_load(self):
        if self.tile:
            count["n"] += 1
        return load(self)
    monkeypatch.setattr(cv2, "imdecode", counted_imdecode)
    monkeypatch.setattr(ImageFile.ImageFile, "load", counted_load)
    return count


@pytest.mark.parametrize("kind", ["rgb", "grey", "grey key"])
def test_opening_a_16bit_png_decodes_it_once(tmp_path, decodes, kind):
    """The window opens a photo with open_photo (its pixels, and its Source: alpha plane and
    16-bit values): one decode for both, with the very pixels load_image and read_source give (the
    file's own 16-bit values, their 8-bit reading). Before, a 16-bit RGB PNG was decoded four
    times (OpenCV in load_image and in read_source, and Pillow in each to reach its EXIF): a 24 MP
    one took 3.8-4.4 s of CPU, now 1.3-1.7 s."""
    values = np.random.default_rng(2).integers(0, 65536, (120, 90, 3) if kind == "rgb" else (120, 90)).astype(np.uint16)
    if kind == "grey key":
        values[values == 500] = 501
        values[:4, :4] = 500
    src = tmp_path / "deep.png"
    _png16(src, values, struct.pack(">H", 500) if kind == "grey key" else None)

    photo, source = open_photo(src)
    assert decodes["n"] == 1
    np.testing.assert_array_equal(photo, load_image(src))
    alone = read_source(src)
    for got, want in ((source.deep, alone.deep), (source.alpha, alone.alpha)):
        assert (got is None and want is None) or np.array_equal(got, want)

    clear = values == 500 if kind == "grey key" else np.zeros(values.shape[:2], bool)
    eight = _as_8bit(values) if kind == "rgb" else np.repeat(_as_8bit(values)[..., None], 3, axis=2)
    np.testing.assert_array_equal(photo[~clear], eight[~clear])
    if kind == "grey key":
        assert source.deep is None and source.alpha is not None   # written with 8 bits and its alpha
    else:
        np.testing.assert_array_equal(source.deep, values if kind == "rgb" else values[..., None])
        assert source.alpha is None


def test_an_opened_16bit_photo_holds_no_more_than_what_is_returned(tmp_path):
    """load_image of a 16-bit photo holds its 8-bit array only (training and the benchmarks open
    thousands of photos), open_photo its array and Source: with depth=False (`edit` or batch to a
    JPEG) nothing of the 16-bit decode, else the 16-bit values the export writes (Source.deep).
    Before, load_image's decode stayed held as long as its array, for a read_source that might
    never come (in `edit`: through the model run)."""
    path = tmp_path / "deep.png"
    _png16(path, np.random.default_rng(5).integers(0, 65536, (400, 500, 3)).astype(np.uint16))
    rgb = 400 * 500 * 3            # 0.6 MB (counted: the measure sees it); the 16-bit decode 1.2 MB
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        photo = load_image(path)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base
        assert rgb <= held < rgb + 100_000, held
        del photo
        photo, source = open_photo(path, depth=False)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base
        assert rgb <= held < rgb + 100_000 and source.deep is None, held
        del photo, source
        photo, source = open_photo(path)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base
        assert 3 * rgb <= held < 3 * rgb + 100_000 and source.deep.nbytes == 2 * rgb, held
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("after_pixels", [False, True])
def test_a_16bit_png_keeps_its_exif_orientation(tmp_path, after_pixels):
    """Its EXIF orientation (an eXIf chunk before or after the pixels, the latter read by Pillow
    only with a decode) turns the opened photo upright, as before."""
    grey = _grey(30, 50, seed=6)
    src = tmp_path / "turned.png"
    _png16(src, grey, exif=6, exif_after_pixels=after_pixels)
    upright = np.rot90(grey, -1)
    np.testing.assert_array_equal(load_image(src)[..., 0], _as_8bit(upright))
    source = read_source(src)
    np.testing.assert_array_equal(source.deep[..., 0], upright)
    assert source.exif is not None


def test_a_16bit_grey_tiff_with_an_orientation_opens_upright(tmp_path):
    """A 16-bit grey TIFF whose EXIF orientation turns it (6: a quarter turn) opens upright, its
    pixels its own values turned, and a PNG export keeps them in 16 bits. Before, the opened photo
    kept the stored shape with its rows garbled (Pillow turned it while decoding, under the stored
    size) and the export fell back to 8 bits."""
    grey = _grey(41, 67, seed=7)
    src = tmp_path / "turned.tif"
    Image.fromarray(grey).save(src, tiffinfo={274: 6})
    upright = np.rot90(grey, -1)
    photo = load_image(src)
    np.testing.assert_array_equal(photo[..., 0], _as_8bit(upright))
    copied, notes = export_photo(src, tmp_path / "out.png", photo, read_source(src))
    assert DEPTH_NOTE not in notes
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED), upright)
