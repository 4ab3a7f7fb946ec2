"""Opening a photo to edit and export (session 50b): image_io.open_photo gives load_image's pixels
and read_source's Source, the very same, from one decode, where e081ded kept load_image's 16-bit
decode in a module-wide cache for the next read_source; an 8-bit grey or RGB PNG's transparent key
(tRNS) is shown over white, as every other transparency (it showed the key's colour while its alpha
plane had it transparent); an 8-bit grey, palette or RGBA TIFF that its EXIF orientation turns
sideways opens upright (it kept its stored shape, its rows garbled)."""
from __future__ import annotations

import dataclasses
import itertools
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from core.image_io import export_photo, load_image, read_source


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png16(path: Path, values: np.ndarray, trns: bytes | None = None) -> None:
    """A 16-bit grey (H, W) or RGB (H, W, 3) PNG written by hand, with a tRNS chunk ``trns``."""
    h, w = values.shape[:2]
    raw = b"".join(b"\0" + values[y].astype(">u2").tobytes() for y in range(h))
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 0 if values.ndim == 2 else 2, 0, 0, 0))
                     + (_chunk(b"tRNS", trns) if trns is not None else b"")
                     + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Camera"
    return exif.tobytes()


def _upright(stored: np.ndarray, orientation: int) -> np.ndarray:
    """``stored`` turned as a viewer turns a photo with that EXIF orientation."""
    im = Image.fromarray(stored)
    im.info["exif"] = _exif(orientation)
    return np.asarray(ImageOps.exif_transpose(im))


# --------------------------------------------------------------------------------------------
# open_photo: the same pixels and Source as load_image and read_source
# --------------------------------------------------------------------------------------------

def _photos(d: Path) -> list:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (37, 53, 3)).astype(np.uint8)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(rgb).save(d / "turned.jpg", exif=_exif(6), icc_profile=icc, quality=90)
    _png16(d / "rgb16.png", rng.integers(0, 65536, (37, 53, 3)).astype(np.uint16))
    grey = rng.integers(0, 65536, (37, 53)).astype(np.uint16)
    grey[grey == 4000] = 4001
    grey[:5, :5] = 4000
    _png16(d / "grey16_key.png", grey, struct.pack(">H", 4000))
    rgba = rng.integers(0, 256, (37, 53, 4)).astype(np.uint8)
    rgba[:10, ..., 3] = 255
    Image.fromarray(rgba).save(d / "rgba.png", exif=_exif(8))
    # Pillow turns a TIFF itself when it decodes it (dropping its Orientation tag)
    Image.fromarray(rgba).save(d / "rgba_turned.tif", exif=_exif(6))
    Image.fromarray(rgb).save(d / "rgb_turned.tif", exif=_exif(6))
    return [d / n for n in ("turned.jpg", "rgb16.png", "grey16_key.png", "rgba.png", "rgba_turned.tif",
                            "rgb_turned.tif")]


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and bool((a == b).all()))
    return type(a) is type(b) and a == b


def test_open_photo_gives_what_load_image_and_read_source_give(tmp_path):
    """The window, `edit` and batch open a photo with open_photo: its pixels and every field of
    its Source (EXIF, colour profile, alpha plane and straight colours, 16-bit values, ...) are
    those load_image and read_source give, whichever of EXIF, alpha and 16 bits is asked for."""
    from core.image_io import open_photo
    for path in _photos(tmp_path):
        for exif, alpha, depth in itertools.product((True, False), repeat=3):
            photo, source = open_photo(path, exif=exif, alpha=alpha, depth=depth)
            want = read_source(path, exif=exif, alpha=alpha, depth=depth)
            assert _same(photo, load_image(path)), path.name
            differ = [f.name for f in dataclasses.fields(want)
                      if not _same(getattr(source, f.name), getattr(want, f.name))]
            assert not differ, (path.name, exif, alpha, depth, differ)
    # what they hold of each is there (not two empty results that agree)
    photo, source = open_photo(tmp_path / "grey16_key.png")
    assert source.alpha is not None and (source.alpha[:5, :5] == 0).all() and (photo[:5, :5] == 255).all()
    photo, source = open_photo(tmp_path / "turned.jpg")
    assert photo.shape == (53, 37, 3) and source.exif and source.icc
    assert open_photo(tmp_path / "rgb16.png")[1].deep.shape == (37, 53, 3)


def test_open_photo_says_what_load_image_says_of_a_damaged_photo(tmp_path):
    """A photo cut off is refused with load_image's message, also where a Source that cannot be
    read may be left out (source_required=False, the window's): there is no photo to open."""
    from core.errors import ImageError
    from core.image_io import open_photo
    src = _photos(tmp_path)[3]
    cut = tmp_path / "cut.png"
    cut.write_bytes(src.read_bytes()[:len(src.read_bytes()) // 2])
    with pytest.raises(ImageError) as want:
        load_image(cut)
    with pytest.raises(ImageError) as got:
        open_photo(cut, source_required=False)
    assert str(got.value) == str(want.value) and "truncated or corrupt" in str(got.value)


@pytest.mark.parametrize("name", ["rgba.png", "rgba_turned.tif", "rgb16.png"])
def test_open_photo_decodes_a_transparent_or_16bit_photo_once(tmp_path, monkeypatch, name):
    """One decode of the pixels (OpenCV's or Pillow's) for the photo and its Source. Before, the
    window read a transparent 8-bit photo twice (load_image, then read_source for its alpha plane)."""
    import cv2
    from PIL import ImageFile

    from core.image_io import open_photo
    path = {p.name: p for p in _photos(tmp_path)}[name]
    count = [0]
    imdecode, load = cv2.imdecode, ImageFile.ImageFile.load

    def counted_imdecode(*args, **kwargs):
        count[0] += 1
        return imdecode(*args, **kwargs)

    def counted_load(self):
        count[0] += bool(self.tile)
        return load(self)
    monkeypatch.setattr(cv2, "imdecode", counted_imdecode)
    monkeypatch.setattr(ImageFile.ImageFile, "load", counted_load)
    photo, source = open_photo(path)
    assert count[0] == 1
    assert source.alpha is not None or source.deep is not None


# --------------------------------------------------------------------------------------------
# an 8-bit PNG's transparent key
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["grey", "rgb"])
def test_an_8bit_png_transparent_key_opens_over_white(tmp_path, kind):
    """The pixels of an 8-bit grey or RGB PNG's key (tRNS) open white, as the same photo saved
    with an alpha channel opens, and as its alpha plane (0 there) says; the other pixels are
    unchanged. Before, they showed the key's colour in the window, its copy and the model's
    input, while every other transparency (palette, RGBA, 16-bit keys) was white."""
    rng = np.random.default_rng(3)
    if kind == "grey":
        pixels = rng.integers(0, 256, (30, 40)).astype(np.uint8)
        key, key_pixel = 77, 77
    else:
        pixels = rng.integers(0, 256, (30, 40, 3)).astype(np.uint8)
        key, key_pixel = (200, 10, 200), (200, 10, 200)
    clear = np.zeros((30, 40), bool)
    clear[:6, :6] = clear[20:, 30:] = True
    other = (pixels == key_pixel) if kind == "grey" else (pixels == key_pixel).all(axis=2)
    pixels[other] = 0                       # the key only where it is put below
    pixels[clear] = key_pixel
    src = tmp_path / "key.png"
    Image.fromarray(pixels).save(src, transparency=key)
    with_alpha = tmp_path / "alpha.png"
    rgba = np.dstack([np.asarray(Image.fromarray(pixels).convert("RGB")), np.where(clear, 0, 255).astype(np.uint8)])
    Image.fromarray(rgba).save(with_alpha)

    photo = load_image(src)
    assert (photo[clear] == 255).all()
    np.testing.assert_array_equal(photo, load_image(with_alpha))
    np.testing.assert_array_equal(photo[~clear], rgba[..., :3][~clear])
    np.testing.assert_array_equal(read_source(src).alpha, np.where(clear, 0, 255))
    # its PNG export keeps the key pixels transparent, the others as they were
    export_photo(src, tmp_path / "out.png", photo, read_source(src), unchanged=False)
    with Image.open(tmp_path / "out.png") as im:
        written = np.asarray(im.convert("RGBA"))
    np.testing.assert_array_equal(written[..., 3], np.where(clear, 0, 255))
    np.testing.assert_array_equal(written[..., :3][~clear], rgba[..., :3][~clear])
    # a key no pixel has: the photo as it is, no alpha plane
    pixels[clear] = 0
    Image.fromarray(pixels).save(src, transparency=key)
    np.testing.assert_array_equal(load_image(src), np.asarray(Image.fromarray(pixels).convert("RGB")))
    assert read_source(src).alpha is None


# --------------------------------------------------------------------------------------------
# an 8-bit TIFF turned sideways by its EXIF orientation
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_an_8bit_grey_tiff_with_a_sideways_orientation_opens_upright(tmp_path, orientation):
    """An 8-bit grey TIFF whose EXIF orientation (written by Pillow with exif=...) turns it a
    quarter opens upright, its pixels its own turned; a PNG export is the upright photo. Before,
    it opened in its stored shape with its rows garbled (Pillow read the file's rows at the
    turned width)."""
    grey = np.random.default_rng(orientation).integers(0, 256, (41, 67)).astype(np.uint8)
    src = tmp_path / "turned.tif"
    Image.fromarray(grey).save(src, exif=_exif(orientation))
    upright = _upright(grey, orientation)
    assert upright.shape == (67, 41)
    photo = load_image(src)
    np.testing.assert_array_equal(photo, np.repeat(upright[..., None], 3, axis=2))
    export_photo(src, tmp_path / "out.png", photo, read_source(src), unchanged=False)
    with Image.open(tmp_path / "out.png") as im:
        np.testing.assert_array_equal(np.asarray(im.convert("L")), upright)


@pytest.mark.parametrize("mode", ["P", "RGBA"])
def test_a_palette_or_rgba_tiff_turned_sideways_opens_upright(tmp_path, mode):
    """The same for a palette or RGBA TIFF (read the same way): upright pixels, and an RGBA one's
    alpha plane upright with them (both kept the stored shape, garbled)."""
    rng = np.random.default_rng(9)
    rgba = rng.integers(0, 256, (41, 67, 4)).astype(np.uint8)
    rgba[..., 3] = np.where(rng.random((41, 67)) < 0.3, 0, 255)
    stored = Image.fromarray(rgba).convert("RGB").quantize(64) if mode == "P" else Image.fromarray(rgba)
    src = tmp_path / "turned.tif"
    stored.save(src, exif=_exif(6))
    want = np.asarray(_turned(stored))
    photo = load_image(src)
    assert photo.shape == (67, 41, 3)
    if mode == "P":
        np.testing.assert_array_equal(photo, want[..., :3])
    else:
        alpha = want[..., 3]
        np.testing.assert_array_equal(read_source(src).alpha, alpha)
        np.testing.assert_array_equal(photo[alpha == 255], want[..., :3][alpha == 255])
        assert (photo[alpha == 0] == 255).all()


def _turned(im: Image.Image) -> Image.Image:
    """``im`` as RGB(A), turned a quarter as orientation 6 turns it."""
    return im.convert("RGBA" if im.mode == "RGBA" else "RGB").transpose(Image.Transpose.ROTATE_270)
