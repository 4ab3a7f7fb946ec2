"""Tests for core.image_io: every image kind is generated here, nothing is read from outside."""

from __future__ import annotations

import errno
import os
import struct
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import PHONE_HEIC
from PIL import Image

from core.errors import ImageError
from core.image_io import IMAGE_SUFFIXES, check_header, export_suffix, format_name, load_image, read_exif, read_icc_profile, save_image

from conftest import display_p3_icc
from conftest import longest_pause_while as _longest_pause_while

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _pattern(h=24, w=32):
    y, x = np.mgrid[0:h, 0:w]
    return np.dstack([x * 7 % 256, y * 11 % 256, (x + y) * 5 % 256]).astype(np.uint8)


def _check_rgb(arr, shape):
    assert arr.dtype == np.uint8 and arr.shape == shape and arr.flags["C_CONTIGUOUS"]


# ------------------------------------------------------------------ formats and pixel modes

@pytest.mark.parametrize("suffix,kwargs", [(".png", {}), (".bmp", {}), (".tif", {}),
                                           (".webp", {"lossless": True})])
def test_lossless_formats_roundtrip(tmp_path, suffix, kwargs):
    rgb = _pattern()
    path = tmp_path / f"img{suffix}"
    Image.fromarray(rgb).save(path, **kwargs)
    out = load_image(path)
    _check_rgb(out, rgb.shape)
    np.testing.assert_array_equal(out, rgb)


def test_jpeg(tmp_path):
    rgb = np.full((16, 16, 3), (200, 40, 90), np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=95)
    out = load_image(tmp_path / "a.jpg")
    _check_rgb(out, rgb.shape)
    assert np.abs(out.astype(int) - rgb).max() <= 4


def test_gray_and_bilevel(tmp_path):
    g = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(g, "L").save(tmp_path / "g.png")
    out = load_image(tmp_path / "g.png")
    _check_rgb(out, (16, 16, 3))
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], g)
    Image.fromarray(g > 127).convert("1").save(tmp_path / "b.png")
    out = load_image(tmp_path / "b.png")
    assert set(np.unique(out)) == {0, 255}


def test_rgba_composited_over_white(tmp_path):
    rgba = np.zeros((4, 3, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[:, 0, 3] = 255   # opaque -> colour
    rgba[:, 1, 3] = 0     # transparent -> white
    rgba[:, 2, 3] = 128   # half -> blend
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    np.testing.assert_array_equal(out[0, 0], (10, 20, 30))
    np.testing.assert_array_equal(out[0, 1], (255, 255, 255))
    a = 128 / 255
    expect = np.rint(np.array([10, 20, 30]) * a + 255 * (1 - a))
    np.testing.assert_array_equal(out[0, 2], expect)
    # LA (grey + alpha) too
    la = Image.fromarray(rgba[..., [0, 3]], "LA")
    la.save(tmp_path / "la.png")
    out = load_image(tmp_path / "la.png")
    np.testing.assert_array_equal(out[0, 0], (10, 10, 10))
    np.testing.assert_array_equal(out[0, 1], (255, 255, 255))


def test_palette_with_and_without_transparency(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[:, :4] = (255, 0, 0)
    rgb[:, 4:] = (0, 0, 255)
    p = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    p.save(tmp_path / "p.png")
    np.testing.assert_array_equal(load_image(tmp_path / "p.png"), rgb)
    idx_blue = p.getpixel((7, 0))
    p.info["transparency"] = idx_blue
    p.save(tmp_path / "pt.png", transparency=idx_blue)
    out = load_image(tmp_path / "pt.png")
    np.testing.assert_array_equal(out[0, 0], (255, 0, 0))
    np.testing.assert_array_equal(out[0, 7], (255, 255, 255))


def test_16bit_gray_png(tmp_path):
    g = np.array([[0, 257 * 100, 65535, 65335]], np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), g)
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    out = load_image(tmp_path / "g16.png")
    # 65335/257 = 254.2 -> 254 (keeping only the high byte would give 255)
    np.testing.assert_array_equal(out[0, :, 0], [0, 100, 255, 254])


def test_32bit_integer_gray_tiff_keeps_its_range(tmp_path):
    """A 32-bit integer grey TIFF (Pillow mode I) has no conventional range: 0..255 values read as
    8-bit (scaled as 16-bit they loaded almost black), 0..65535 as 16-bit."""
    Image.fromarray(np.array([[0, 100, 200, 255]], np.int32)).save(tmp_path / "i8.tif")
    Image.fromarray(np.array([[0, 257 * 100, 65535, -5]], np.int32)).save(tmp_path / "i16.tif")
    assert Image.open(tmp_path / "i8.tif").mode == "I"
    np.testing.assert_array_equal(load_image(tmp_path / "i8.tif")[0, :, 0], [0, 100, 200, 255])
    np.testing.assert_array_equal(load_image(tmp_path / "i16.tif")[0, :, 0], [0, 100, 255, 0])


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_48bit_rgb_scaled_properly(tmp_path, suffix):
    rgb16 = np.zeros((2, 3, 3), np.uint16)
    rgb16[0, 0] = (65535, 257 * 100, 0)
    rgb16[0, 1] = (65335, 65335, 65335)  # rounding, not truncation: 254
    rgb16[0, 2] = (257 * 7, 257 * 8, 257 * 9)
    path = tmp_path / f"c48{suffix}"
    cv2.imwrite(str(path), rgb16[..., ::-1])  # OpenCV writes BGR
    out = load_image(path)
    _check_rgb(out, (2, 3, 3))
    np.testing.assert_array_equal(out[0, 0], (255, 100, 0))
    np.testing.assert_array_equal(out[0, 1], (254, 254, 254))
    np.testing.assert_array_equal(out[0, 2], (7, 8, 9))


def test_64bit_rgba_png(tmp_path):
    bgra = np.zeros((1, 2, 4), np.uint16)
    bgra[0, 0] = (0, 0, 65535, 65535)   # opaque red
    bgra[0, 1] = (0, 0, 65535, 0)       # transparent -> white
    cv2.imwrite(str(tmp_path / "c64.png"), bgra)
    out = load_image(tmp_path / "c64.png")
    np.testing.assert_array_equal(out[0, 0], (255, 0, 0))
    np.testing.assert_array_equal(out[0, 1], (255, 255, 255))


def test_cmyk_jpeg(tmp_path):
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    out = load_image(tmp_path / "cmyk.jpg")
    _check_rgb(out, (16, 16, 3))
    r, g, b = out[8, 8].astype(int)
    assert r > 200 and g < 60 and b < 60


def _oriented_jpeg(path, orientation=6):
    rgb = np.zeros((20, 40, 3), np.uint8)  # stored 40 wide x 20 high
    rgb[:, :20] = (255, 0, 0)
    rgb[:, 20:] = (0, 0, 255)
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = orientation
    exif[0x010F] = "FaderTestCam"  # Make
    im.save(path, exif=exif.tobytes(), quality=95)


def test_exif_orientation_rotates_pixels(tmp_path):
    _oriented_jpeg(tmp_path / "rot.jpg", 6)  # 6 = rotate 90 degrees clockwise to display
    out = load_image(tmp_path / "rot.jpg")
    assert out.shape == (40, 20, 3)
    top, bottom = out[5, 10].astype(int), out[35, 10].astype(int)
    assert top[0] > 200 and top[2] < 60      # stored left (red) is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_read_exif_resets_orientation(tmp_path):
    _oriented_jpeg(tmp_path / "rot.jpg", 6)
    data = read_exif(tmp_path / "rot.jpg")
    assert data is not None and data.startswith(b"Exif\x00\x00")
    exif = Image.Exif()
    exif.load(data)
    assert exif[0x0112] == 1 and exif[0x010F] == "FaderTestCam"
    Image.fromarray(_pattern()).save(tmp_path / "plain.png")
    assert read_exif(tmp_path / "plain.png") is None


# ------------------------------------------------------------------ failures

def _assert_image_error(path, match, **kw):
    with pytest.raises(ImageError, match=match) as info:
        load_image(path, **kw)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg
    return msg


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_pipe_or_device_is_refused_without_reading_it(tmp_path):
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)  # opening it to read would block until a writer comes
    _assert_image_error(fifo, "not a regular file")
    if Path("/dev/zero").exists():
        with pytest.raises(ImageError, match="not a regular file"):
            load_image("/dev/zero")


def test_missing_empty_dir_and_garbage(tmp_path):
    _assert_image_error(tmp_path / "nope.jpg", "not found")
    (tmp_path / "empty.png").write_bytes(b"")
    _assert_image_error(tmp_path / "empty.png", "empty")
    (tmp_path / "folder.jpg").mkdir()
    _assert_image_error(tmp_path / "folder.jpg", "folder")
    (tmp_path / "text.jpg").write_text("hello, I am not a picture\n" * 20)
    _assert_image_error(tmp_path / "text.jpg", "not a recognised image")


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp"])
def test_truncated(tmp_path, suffix):
    rng = np.random.default_rng(0)
    full = tmp_path / f"full{suffix}"
    Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(full)
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    # one wording for every format (a WebP said "could not create decoder object")
    _assert_image_error(cut, "cannot read image: the file is truncated or corrupt")
    cut.write_bytes(data[:40])   # cut inside the header (a JPEG said "Truncated File Read")
    _assert_image_error(cut, "cannot read image")


@pytest.mark.skipif(IS_ROOT or os.name == "nt", reason="root ignores file permissions")
def test_permission_denied(tmp_path):
    path = tmp_path / "secret.png"
    Image.fromarray(_pattern()).save(path)
    path.chmod(0)
    try:
        _assert_image_error(path, "permission denied")
    finally:
        path.chmod(0o644)


def _png_header_only(width, height):
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_a_200_megapixel_phone_photo_is_not_refused(tmp_path):
    """Phones write 108 and 200 MP photos (16320x12240); Pillow alone refuses over 179 MP, and
    this app refused over 100 MP before."""
    for w, h in ((12_000, 9_000), (16_320, 12_240)):
        p = tmp_path / f"{w}.png"
        p.write_bytes(_png_header_only(w, h))
        check_header(p)


def test_decompression_bomb_refused_from_header(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(100_000, 100_000))  # claims 10 gigapixels, 57 bytes
    _assert_image_error(bomb, "too large|exceeds")
    big = tmp_path / "big.png"
    big.write_bytes(_png_header_only(16_000, 14_000))     # 224 Mpx: over ours, under Pillow's hard limit
    msg = _assert_image_error(big, "exceeds the limit")
    assert "16000x14000" in msg and "reduce the image's size" in msg
    ok = tmp_path / "ok.png"
    Image.fromarray(_pattern(100, 100)).save(ok)
    _assert_image_error(ok, "exceeds the limit", max_pixels=5_000)
    assert load_image(ok, max_pixels=10_000).shape == (100, 100, 3)


# ------------------------------------------------------------------ saving

@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".tiff"])
def test_save_lossless_roundtrip(tmp_path, suffix):
    rgb = _pattern()
    path = tmp_path / f"out{suffix}"
    save_image(path, rgb)
    np.testing.assert_array_equal(load_image(path), rgb)
    assert os.listdir(tmp_path) == [path.name]


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".webp", ".JPG"])
def test_save_lossy(tmp_path, suffix):
    rgb = np.full((32, 32, 3), (30, 160, 220), np.uint8)
    path = tmp_path / f"out{suffix}"
    save_image(path, rgb, quality=90)
    assert np.abs(load_image(path).astype(int) - rgb).max() <= 6
    assert os.listdir(tmp_path) == [path.name]


def test_save_with_exif(tmp_path):
    _oriented_jpeg(tmp_path / "rot.jpg", 6)
    rgb = load_image(tmp_path / "rot.jpg")
    exif = read_exif(tmp_path / "rot.jpg")
    for name in ("out.jpg", "out.png", "out.webp"):
        save_image(tmp_path / name, rgb, exif=exif)
        # orientation 1 in the copy: the upright pixels are not rotated a second time
        assert load_image(tmp_path / name).shape == (40, 20, 3)
        e = Image.open(tmp_path / name).getexif()
        assert e.get(0x010F) == "FaderTestCam" and e.get(0x0112) == 1


def test_colour_profile_travels_into_every_format_that_holds_one(tmp_path):
    """A phone's Display P3 photo exported without its profile is read as sRGB: the whole photo
    looks duller. The profile travels into JPEG, PNG, WebP and TIFF; BMP has no place for it."""
    p3 = display_p3_icc()
    rgb = _pattern()
    Image.fromarray(rgb).save(tmp_path / "phone.jpg", quality=95, icc_profile=p3)
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "phone.png", icc_profile=p3)
    assert read_icc_profile(tmp_path / "phone.jpg") == p3
    assert read_icc_profile(tmp_path / "phone.png") == p3
    for name in ("out.jpg", "out.png", "out.webp", "out.tif"):
        save_image(tmp_path / name, rgb, icc_profile=read_icc_profile(tmp_path / "phone.jpg"))
        with Image.open(tmp_path / name) as im:
            assert im.info.get("icc_profile") == p3, name
        assert read_icc_profile(tmp_path / name) == p3
    save_image(tmp_path / "out.bmp", rgb, icc_profile=p3)
    np.testing.assert_array_equal(load_image(tmp_path / "out.bmp"), rgb)


def test_profiles_that_no_longer_describe_the_pixels_are_dropped(tmp_path):
    """CMYK and grey photos are converted to RGB on loading; their profiles, an RGB profile on a
    grey image, a Lab profile or a broken one would mislabel the exported colours."""
    from PIL import ImageCms
    p3 = display_p3_icc()
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    Image.fromarray(_pattern()).convert("CMYK").save(tmp_path / "print.jpg", icc_profile=p3)
    Image.fromarray(_pattern()[..., 0]).save(tmp_path / "grey.png", icc_profile=p3)
    Image.fromarray(_pattern()).save(tmp_path / "lab.png", icc_profile=lab)
    Image.fromarray(_pattern()).save(tmp_path / "broken.png", icc_profile=b"not a profile")
    Image.fromarray(_pattern()).save(tmp_path / "none.png")
    for name in ("print.jpg", "grey.png", "lab.png", "broken.png", "none.png"):
        assert read_icc_profile(tmp_path / name) is None, name
        load_image(tmp_path / name)  # and the photo itself still reads
    with pytest.raises(ImageError, match="not a recognised image format"):
        (tmp_path / "text.jpg").write_text("hello")
        read_icc_profile(tmp_path / "text.jpg")


def test_a_phones_heic_photo_reads_upright_with_its_exif_and_profile(portrait_path):
    """iPhones write HEIC by default. The vendored one is stored on its side with orientation 6:
    it reads upright (rotated once, not twice), with its camera EXIF and its Display P3 profile."""
    heic = PHONE_HEIC
    rgb = load_image(heic)
    _check_rgb(rgb, (512, 384, 3))
    want = load_image(portrait_path)[:, 64:448].astype(np.float32)
    assert np.abs(rgb - want).mean() < 4  # the same pixels, up to two lossy codecs
    exif = Image.Exif()
    exif.load(read_exif(heic))
    assert exif[0x010F] == "FaderTestPhone" and exif.get(0x0112, 1) == 1
    assert read_icc_profile(heic) == display_p3_icc()
    assert ".heic" in IMAGE_SUFFIXES and export_suffix(heic) == ".jpg"
    assert export_suffix("IMG_1.JPG") == ".JPG" and export_suffix("scan.tiff") == ".tiff"


def test_avif_photos_read(tmp_path, portrait_path):
    rgb = load_image(portrait_path)[:, :400]
    Image.fromarray(rgb).save(tmp_path / "photo.avif", quality=90)
    out = load_image(tmp_path / "photo.avif")
    _check_rgb(out, rgb.shape)
    assert np.abs(out.astype(int) - rgb).mean() < 4
    assert ".avif" in IMAGE_SUFFIXES and export_suffix(tmp_path / "photo.avif") == ".jpg"
    with pytest.raises(ImageError, match="unsupported file type '.heic'"):
        save_image(tmp_path / "out.heic", rgb)  # read, never written: a clear refusal


def test_save_refuses_unknown_suffix_and_bad_arrays(tmp_path):
    with pytest.raises(ImageError, match="unsupported file type '.gif'") as info:
        save_image(tmp_path / "x.gif", _pattern())
    assert str(tmp_path / "x.gif") in str(info.value)
    with pytest.raises(ImageError, match="uint8 H x W x 3"):
        save_image(tmp_path / "x.png", _pattern().astype(np.float32))
    with pytest.raises(ImageError, match="quality"):
        save_image(tmp_path / "x.jpg", _pattern(), quality=0)
    assert os.listdir(tmp_path) == []


def test_save_into_missing_folder(tmp_path):
    target = tmp_path / "missing" / "x.png"
    with pytest.raises(ImageError, match="does not exist") as info:
        save_image(target, _pattern())
    assert str(target) in str(info.value)


@pytest.mark.skipif(IS_ROOT or os.name == "nt", reason="root ignores folder permissions")
def test_save_into_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "x.png").write_bytes(b"original")
    ro.chmod(0o555)
    try:
        with pytest.raises(ImageError, match="permission denied"):
            save_image(ro / "x.png", _pattern())
    finally:
        ro.chmod(0o755)
    assert (ro / "x.png").read_bytes() == b"original"
    assert os.listdir(ro) == ["x.png"]


def test_save_failure_midway_keeps_original_and_cleans_up(tmp_path, monkeypatch):
    target = tmp_path / "photo.jpg"
    target.write_bytes(b"original bytes")

    def disk_full(self, fp, *args, **kwargs):
        fp.write(b"partial data")  # something was written before the disk filled up
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    with pytest.raises(ImageError, match="no space left on device") as info:
        save_image(target, _pattern())
    assert str(target) in str(info.value)
    assert target.read_bytes() == b"original bytes"
    assert os.listdir(tmp_path) == ["photo.jpg"]


def test_save_replaces_existing_file(tmp_path):
    target = tmp_path / "photo.png"
    save_image(target, _pattern())
    rgb2 = _pattern()[::-1].copy()
    save_image(target, rgb2)
    np.testing.assert_array_equal(load_image(target), rgb2)
    assert os.listdir(tmp_path) == ["photo.png"]


def _camera_jpeg(path):
    """A JPEG as cameras write it: EXIF with an Exif sub-IFD (exposure, date) and a GPS one."""
    im = Image.fromarray(_pattern())
    exif = Image.Exif()
    exif[0x010F] = "FaderTestCam"
    exif[0x0132] = "2024:05:01 10:00:00"
    exif.get_ifd(0x8769)[0x829A] = (1, 125)                 # ExposureTime
    exif.get_ifd(0x8769)[0x9003] = "2024:05:01 10:00:00"    # DateTimeOriginal
    exif.get_ifd(0x8825)[0x0001] = "N"                      # GPSLatitudeRef
    im.save(path, exif=exif.tobytes(), quality=95)


def test_camera_exif_into_tiff(tmp_path):
    """libtiff cannot write EXIF sub-IFD pointers (it raised "Error setting from dictionary"):
    the TIFF keeps the base tags; the other formats keep everything."""
    _camera_jpeg(tmp_path / "cam.jpg")
    rgb, exif = load_image(tmp_path / "cam.jpg"), read_exif(tmp_path / "cam.jpg")
    for name in ("out.tiff", "out.tif", "out.jpg", "out.png", "out.webp"):
        save_image(tmp_path / name, rgb, exif=exif)
        assert load_image(tmp_path / name).shape == rgb.shape
        assert Image.open(tmp_path / name).getexif().get(0x010F) == "FaderTestCam", name
    assert Image.open(tmp_path / "out.jpg").getexif().get_ifd(0x8769).get(0x9003) == "2024:05:01 10:00:00"


def test_save_under_a_file_names_the_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ImageError) as info:
        save_image(tmp_path / "afile" / "x.png", _pattern())
    assert str(info.value) == f"{tmp_path / 'afile' / 'x.png'}: cannot save image: {tmp_path / 'afile'} is not a folder"


def test_jpeg_on_a_full_disk_is_an_error_not_a_truncated_file(small_disk):
    """The issue's case: a photo-sized JPEG on a disk with less room than it needs. It used to be
    written truncated and reported as saved."""
    from conftest import fill_disk
    y, x = np.mgrid[0:700, 0:900].astype(np.float32)
    photo = np.clip(np.stack([x / 4, y / 3, (x + y) % 256], -1)
                    + np.random.default_rng(0).normal(0, 12, (700, 900, 3)), 0, 255).astype(np.uint8)
    fill_disk(small_disk, 96 << 10)
    for name in ("out.jpg", "out.png", "out.webp", "out.bmp", "out.tiff"):
        with pytest.raises(ImageError, match="no space left on device") as info:
            save_image(small_disk / name, photo)
        assert str(info.value).startswith(str(small_disk / name))
    assert sorted(os.listdir(small_disk)) == ["filler.bin"]


def test_save_unchanged_copies_the_file_or_keeps_the_pixels(tmp_path):
    from core.image_io import save_unchanged
    _camera_jpeg(tmp_path / "cam.jpg")
    rgb, exif = load_image(tmp_path / "cam.jpg"), read_exif(tmp_path / "cam.jpg")
    # same format: byte for byte (no second JPEG compression), whatever the suffix's spelling
    assert save_unchanged(tmp_path / "cam.jpg", tmp_path / "same.JPEG", rgb, exif=exif)
    assert (tmp_path / "same.JPEG").read_bytes() == (tmp_path / "cam.jpg").read_bytes()
    # another format: the decoded pixels exactly (PNG is lossless)
    assert not save_unchanged(tmp_path / "cam.jpg", tmp_path / "conv.png", rgb, exif=exif)
    assert np.array_equal(load_image(tmp_path / "conv.png"), rgb)
    # a file whose suffix lies about its format is re-encoded into the named one
    (tmp_path / "liar.jpg").write_bytes((tmp_path / "conv.png").read_bytes())
    assert not save_unchanged(tmp_path / "liar.jpg", tmp_path / "liar_out.jpg", rgb)
    assert Image.open(tmp_path / "liar_out.jpg").format == "JPEG"


# ------------------------------------------------------------------ TIFF sources (review of session 32)

def _tiff16(path, stored, orientation):
    """A minimal uncompressed 16-bit RGB(A) TIFF of ``stored`` (H, W, 3|4 uint16) with an
    Orientation tag: neither Pillow nor OpenCV writes one with both."""
    h, w, c = stored.shape
    data = stored.astype("<u2").tobytes()
    bits_at, pixels_at = 8, 8 + 2 * c
    tags = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, c, bits_at), (259, 3, 1, 1), (262, 3, 1, 2),
            (273, 4, 1, pixels_at), (274, 3, 1, orientation), (277, 3, 1, c), (278, 3, 1, h),
            (279, 4, 1, len(data)), (284, 3, 1, 1)] + ([(338, 3, 1, 2)] if c == 4 else [])
    out = bytearray(b"II*\x00" + struct.pack("<I", pixels_at + len(data)) + struct.pack(f"<{c}H", *[16] * c) + data)
    out += struct.pack("<H", len(tags))
    for tag, kind, count, value in tags:
        inline = kind == 3 and count == 1
        out += struct.pack("<HHIHH", tag, kind, count, value, 0) if inline else struct.pack("<HHII", tag, kind, count, value)
    path.write_bytes(bytes(out + struct.pack("<I", 0)))


@pytest.mark.parametrize("orientation", [3, 6])
@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_tiff_with_an_orientation_is_turned_upright_once(tmp_path, orientation, channels):
    """OpenCV's TIFF reader applies the Orientation tag itself to 16-bit data and the loader
    applied it again: a photo came out upside down (3) or turned the wrong way (6)."""
    from core.image_io import read_source
    upright = _pattern(24, 32)
    # stored so that a viewer applying the tag shows `upright` (3: turned 180; 6: turned 90 clockwise)
    stored = upright[::-1, ::-1] if orientation == 3 else np.rot90(upright, 1)
    stored = np.ascontiguousarray(stored).astype(np.uint16) * 257
    if channels == 4:
        alpha = np.full(upright.shape[:2], 65535, np.uint16)
        alpha[:6] = 0   # the upright image's top rows are transparent
        alpha = np.ascontiguousarray(alpha[::-1, ::-1] if orientation == 3 else np.rot90(alpha, 1))
        stored = np.dstack([stored, alpha])
    path = tmp_path / f"o{orientation}.tif"
    _tiff16(path, stored, orientation)
    rgb = load_image(path)
    _check_rgb(rgb, upright.shape)
    if channels == 3:
        assert np.array_equal(rgb, upright)
    else:
        assert (rgb[:6] == 255).all() and np.array_equal(rgb[6:], upright[6:])
        plane = read_source(path).alpha
        assert plane.shape == upright.shape[:2] and (plane[:6] == 0).all() and (plane[6:] == 255).all()


def _export_and_open(tmp_path, src, name):
    from core.image_io import export_photo, read_source
    rgb = load_image(src)
    _, notes = export_photo(src, tmp_path / name, rgb, read_source(src))
    with Image.open(tmp_path / name) as im:
        im.load()   # the whole file decodes
        return im.mode, im.size, notes


def test_tiff_sources_export_files_that_open(tmp_path):
    """A TIFF's own layout tags (CMYK colour type, 16-bit sample size, strip tables) were carried
    into the export as EXIF: the CMYK and 16-bit sources' TIFF exports could not be opened by
    anything (and were reported written), a TIFF of 9,000 strips could not be saved as JPEG."""
    Image.fromarray(_pattern(40, 30)).convert("CMYK").save(tmp_path / "cmyk.tif")
    cv2.imwrite(str(tmp_path / "deep.tif"), _pattern(40, 30).astype(np.uint16)[..., ::-1] * 257)
    tall = np.zeros((9000, 30, 3), np.uint8)
    tall[:40] = _pattern(40, 30)
    Image.fromarray(tall).save(tmp_path / "tall.tif", compression="tiff_lzw", strip_size=90)
    assert len(Image.open(tmp_path / "tall.tif").tag_v2[273]) >= 9000
    for src in ("cmyk.tif", "deep.tif", "tall.tif"):
        for out in ("out.tif", "out.jpg", "out.png", "out.webp"):
            mode, size, _ = _export_and_open(tmp_path, tmp_path / src, f"{Path(src).stem}_{out}")
            assert mode == "RGB" and size == Image.open(tmp_path / src).size, (src, out)


def test_exif_too_big_for_a_jpeg_is_trimmed_or_dropped_with_a_note(tmp_path):
    """A JPEG holds 64 KB of EXIF: a bigger block stopped the export ("EXIF data is too long")."""
    big_notes = Image.Exif()
    big_notes[0x010F] = "FaderTestCam"
    big_notes.get_ifd(0x8769)[0x927C] = b"\x01" * 70000         # a camera's MakerNote
    Image.fromarray(_pattern()).save(tmp_path / "notes.png", exif=big_notes.tobytes())
    mode, _, notes = _export_and_open(tmp_path, tmp_path / "notes.png", "notes.jpg")
    assert notes == ["EXIF maker notes dropped (over JPEG's 64 KB limit)"]
    assert Image.open(tmp_path / "notes.jpg").getexif().get(0x010F) == "FaderTestCam"
    huge = Image.Exif()
    huge[0x010E] = "x" * 70000                                   # one tag too big on its own
    Image.fromarray(_pattern()).save(tmp_path / "huge.png", exif=huge.tobytes())
    _, _, notes = _export_and_open(tmp_path, tmp_path / "huge.png", "huge.jpg")
    assert len(notes) == 1 and notes[0].startswith("EXIF metadata dropped")
    assert not Image.open(tmp_path / "huge.jpg").getexif()
    # the formats without the limit keep it whole
    _, _, notes = _export_and_open(tmp_path, tmp_path / "huge.png", "huge.webp")
    assert notes == [] and Image.open(tmp_path / "huge.webp").getexif().get(0x010E) == "x" * 70000


# ------------------------------------------------------------------ what exports keep (QA report)

def _edit(rgb):
    """An "edit": a small patch changed, the rest of the photo as it was."""
    out = rgb.copy()
    out[2:6, 2:6] = (250, 10, 10)
    return out


def test_a_lossless_webp_stays_lossless(tmp_path):
    """A lossless WebP was written lossy (VP8, quality 95) after an edit: 95 % of the pixels away
    from the face changed by up to 8 levels. It stays lossless (VP8L), bit-identical like PNG; a
    lossy one stays lossy."""
    from core.image_io import export_photo, read_source
    rgb = _pattern()
    Image.fromarray(rgb).save(tmp_path / "ll.webp", lossless=True)
    Image.fromarray(rgb).save(tmp_path / "lossy.webp", quality=90)
    # with a profile: the extended layout (VP8X, ICCP, then VP8L)
    Image.fromarray(rgb).save(tmp_path / "ll_x.webp", lossless=True, icc_profile=display_p3_icc())
    assert (tmp_path / "ll_x.webp").read_bytes()[12:16] == b"VP8X"
    for name in ("ll.webp", "ll_x.webp"):
        edited = _edit(load_image(tmp_path / name))
        export_photo(tmp_path / name, tmp_path / f"out_{name}", edited, read_source(tmp_path / name))
        np.testing.assert_array_equal(load_image(tmp_path / f"out_{name}"), edited)
        data = (tmp_path / f"out_{name}").read_bytes()
        assert b"VP8L" in data and b"VP8 " not in data, name
    export_photo(tmp_path / "lossy.webp", tmp_path / "out_lossy.webp", _edit(load_image(tmp_path / "lossy.webp")),
                 read_source(tmp_path / "lossy.webp"))
    assert (tmp_path / "out_lossy.webp").read_bytes()[12:16] == b"VP8 "


@pytest.mark.parametrize("suffix,kwargs", [(".png", {}), (".tif", {}), (".webp", {"lossless": True})])
def test_semi_transparent_pixels_keep_their_own_colour(tmp_path, suffix, kwargs):
    """Loading composites colour over white and saving took the white back out: not exact, so the
    colour of nearly transparent pixels changed by up to 105 levels, and every fully transparent
    pixel came out white. Where the pixel is not edited, the source's own colour is written."""
    from core.image_io import export_photo, read_source
    rgba = np.dstack([_pattern(), (np.arange(24 * 32).reshape(24, 32) * 37 % 256).astype(np.uint8)])
    rgba[..., 3][rgba[..., 3] > 200] = 255
    rgba[0, :8, 3] = (0, 1, 2, 3, 5, 9, 15, 200)
    src = tmp_path / f"a{suffix}"
    Image.fromarray(rgba, "RGBA").save(src, **kwargs)
    rgba = np.asarray(Image.open(src).convert("RGBA"))   # a WebP encoder may alter invisible colour
    source = read_source(src)
    edited = _edit(load_image(src))
    export_photo(src, tmp_path / f"out{suffix}", edited, source)
    out = np.asarray(Image.open(tmp_path / f"out{suffix}").convert("RGBA"))
    away = np.ones(rgba.shape[:2], bool)
    away[2:6, 2:6] = False
    np.testing.assert_array_equal(out[away], rgba[away])
    opaque = rgba[..., 3] == 255     # where the edit itself shows whole
    np.testing.assert_array_equal(load_image(tmp_path / f"out{suffix}")[opaque], edited[opaque])
    # grey with alpha too
    la = Image.fromarray(rgba[..., [0, 3]], "LA")
    la.save(tmp_path / "la.png")
    export_photo(tmp_path / "la.png", tmp_path / "la_out.png", _edit(load_image(tmp_path / "la.png")),
                 read_source(tmp_path / "la.png"))
    got = np.asarray(Image.open(tmp_path / "la_out.png"))
    assert Image.open(tmp_path / "la_out.png").mode == "LA"
    np.testing.assert_array_equal(got[away], rgba[..., [0, 3]][away])


def test_a_16bit_semi_transparent_photo_keeps_its_colour_where_unedited(tmp_path):
    """Review: a 16-bit source is composited from its 16 bits, which the 8-bit colour and alpha
    do not reproduce, so unedited pixels were not recognised and were un-composited approximately
    (up to 241 levels off). Its composite is kept and compared instead."""
    import cv2
    from core.image_io import export_photo, read_source
    rng = np.random.default_rng(3)
    bgra = rng.integers(0, 65536, (40, 50, 4), dtype=np.uint16)
    bgra[..., 3] = rng.integers(0, 65536, (40, 50), dtype=np.uint16) // 8     # mostly transparent
    src = tmp_path / "deep.png"
    cv2.imwrite(str(src), bgra)
    export_photo(src, tmp_path / "out.png", load_image(src), read_source(src))
    # unedited, written in its own 16 bits (test_export_16bit.py): every value as it was
    out = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, bgra)


def _jpeg_with_xmp_and_iptc(path, dpi=(300, 300)):
    """A JPEG as a photo agency's: XMP (APP1), IPTC (Photoshop APP13) and 300 dpi."""
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/>Rating 5</x:xmpmeta>'
    iptc = b"\x1c\x02\x78" + struct.pack(">H", 7) + b"caption"
    app13 = (b"Photoshop 3.0\0" + b"8BIM" + struct.pack(">H", 0x0404) + b"\0\0"
             + struct.pack(">I", len(iptc)) + iptc + b"\0" * (len(iptc) % 2))
    Image.fromarray(_pattern()).save(path, quality=95, xmp=xmp, dpi=dpi)
    data = path.read_bytes()
    path.write_bytes(data[:2] + b"\xff\xed" + struct.pack(">H", len(app13) + 2) + app13 + data[2:])
    return xmp, iptc


def test_xmp_iptc_text_and_resolution_travel_or_are_named(tmp_path):
    """XMP, IPTC, a PNG's text chunks and the resolution (300 dpi: the print size) were dropped
    silently. Each is kept where the output format can hold it, else named in the notes."""
    from PIL import PngImagePlugin

    from core.image_io import export_photo, read_source
    xmp, iptc = _jpeg_with_xmp_and_iptc(tmp_path / "agency.jpg")
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "A. Photographer")
    info.add_itxt("Copyright", "© 2024 A. Photographer", "en", "")
    info.add_itxt("XML:com.adobe.xmp", xmp.decode())
    Image.fromarray(_pattern()).save(tmp_path / "scan.png", pnginfo=info, dpi=(300, 300))
    Image.fromarray(_pattern()).save(tmp_path / "scan.tif", tiffinfo={700: xmp, 33723: iptc}, dpi=(300, 300))

    def export(src, name):
        source = read_source(tmp_path / src)
        _, notes = export_photo(tmp_path / src, tmp_path / name, _edit(load_image(tmp_path / src)), source)
        return Image.open(tmp_path / name), notes

    for src in ("agency.jpg", "scan.png", "scan.tif"):
        for fmt in ("jpg", "png", "webp", "tif", "bmp"):
            im, notes = export(src, f"{Path(src).stem}_out.{fmt}")
            assert im.info.get("xmp") == (None if fmt == "bmp" else xmp), (src, fmt)
            assert (fmt == "bmp") == any(n.startswith("XMP metadata dropped") for n in notes), (src, fmt, notes)
            if fmt != "webp":
                assert tuple(round(v) for v in im.info["dpi"]) == (300, 300), (src, fmt)
            else:   # WebP has no resolution of its own; a TIFF's EXIF holds one
                assert ("resolution (300 dpi) dropped (a WebP export cannot keep it)" in notes) != (
                    im.getexif().get(0x011A) == 300), (src, notes)
            if src != "scan.png":   # IPTC: only a TIFF export keeps it
                assert (fmt == "tif") != ("IPTC metadata dropped (a " + format_name(im.format) + " export cannot keep it)" in notes), (src, fmt, notes)
                if fmt == "tif":
                    assert im.tag_v2[33723] == iptc
    im, notes = export("scan.png", "scan_out2.png")
    assert im.text["Author"] == "A. Photographer" and im.text["Copyright"] == "© 2024 A. Photographer"
    assert notes == []
    _, notes = export("scan.png", "scan_out2.jpg")
    assert notes == ["PNG text (Author, Copyright) dropped (a JPEG export cannot keep it)"]
    # without EXIF (--no-exif, the window's choice) no other metadata goes either
    source = read_source(tmp_path / "agency.jpg", exif=False)
    assert source.xmp is None and source.iptc is None and source.dpi == (300, 300)


def test_tiff_and_bmp_exports_name_the_metadata_they_drop(tmp_path):
    """A TIFF export keeps only the base EXIF tags (libtiff cannot write the sub-IFDs) and a BMP
    none, nor a colour profile: both were silent."""
    from core.image_io import export_photo, read_source
    _camera_jpeg(tmp_path / "cam.jpg")
    Image.fromarray(_pattern()).save(tmp_path / "p3.png", icc_profile=display_p3_icc(), exif=Image.Exif().tobytes())
    rgb, source = load_image(tmp_path / "cam.jpg"), read_source(tmp_path / "cam.jpg")
    _, notes = export_photo(tmp_path / "cam.jpg", tmp_path / "cam.tif", rgb, source)
    assert notes == ["EXIF camera settings (exposure, lens, date taken) and GPS location dropped "
                     "(a TIFF export keeps only the base EXIF tags)"]
    _, notes = export_photo(tmp_path / "cam.jpg", tmp_path / "cam.bmp", rgb, source)
    assert notes == ["EXIF metadata dropped (a BMP export cannot keep it)"]
    _, notes = export_photo(tmp_path / "p3.png", tmp_path / "p3.bmp", load_image(tmp_path / "p3.png"),
                            read_source(tmp_path / "p3.png"))
    assert notes == ["colour profile dropped (a BMP export cannot keep it)"]
    _, notes = export_photo(tmp_path / "p3.png", tmp_path / "p3.tif", load_image(tmp_path / "p3.png"),
                            read_source(tmp_path / "p3.png"))
    assert notes == []


def _gray_icc() -> bytes:
    """A grey ICC profile ('GRAY' colour space, gamma 1.8: Apple's Gray Gamma 1.8 kind)."""
    from conftest import icc_profile, icc_xyz
    trc = b"curv" + bytes(4) + struct.pack(">IH", 1, 0x01CD) + bytes(2)
    return icc_profile(b"GRAY", [(b"wtpt", icc_xyz(0.9642, 1.0, 0.8249)), (b"kTRC", trc)], b"Gray Gamma 1.8 (tests)")


def test_a_grey_photos_grey_profile_travels_into_grey_exports(tmp_path):
    """A grey photo's own profile (Gray Gamma 1.8) was dropped although the export is still grey:
    its tones shifted in a colour-managed viewer. It goes where the output is grey, else a note."""
    from core.image_io import export_photo, read_source
    gray = _gray_icc()
    Image.fromarray(_pattern()[..., 0]).save(tmp_path / "g.png", icc_profile=gray)
    Image.fromarray(_pattern()[..., 0]).save(tmp_path / "g.jpg", icc_profile=gray, quality=95)
    assert read_icc_profile(tmp_path / "g.png") is None   # load_image's pixels are RGB
    for src in ("g.png", "g.jpg"):
        for fmt in ("png", "jpg", "tif"):
            out = tmp_path / f"{Path(src).stem}_{Path(src).suffix[1:]}_out.{fmt}"
            _, notes = export_photo(tmp_path / src, out, _edit(load_image(tmp_path / src)), read_source(tmp_path / src))
            with Image.open(out) as im:
                assert im.mode == "L" and im.info.get("icc_profile") == gray and notes == [], (src, fmt)
    _, notes = export_photo(tmp_path / "g.png", tmp_path / "g.webp", load_image(tmp_path / "g.png"), read_source(tmp_path / "g.png"))
    assert notes == ["grey colour profile dropped (WebP stores grey as colour)"]
    assert "icc_profile" not in Image.open(tmp_path / "g.webp").info


def test_unchanged_wording_says_whether_the_pixels_were_recompressed():
    from core.image_io import Source, unchanged_wording
    assert unchanged_wording("a.jpg", True) == "copied unchanged"
    assert unchanged_wording("a.jpg", False) == "converted to JPEG (re-compressed)"
    assert unchanged_wording("a.png", False) == "pixels unchanged, converted to PNG"
    assert unchanged_wording("a.webp", False, Source(lossless=True)) == "pixels unchanged, converted to WEBP"


@pytest.mark.parametrize("suffix", [".tif", ".png"])
def test_truncated_16bit_files_say_so(tmp_path, capfd, suffix):
    """A cut-off 16-bit TIFF said "not a recognised image format" (its tag directory is at the
    end), a cut-off 16-bit PNG let "libpng error: …" reach stderr."""
    cv2.imwrite(str(tmp_path / f"full{suffix}"), _pattern(64, 64).astype(np.uint16)[..., ::-1] * 257)
    data = (tmp_path / f"full{suffix}").read_bytes()
    (tmp_path / f"cut{suffix}").write_bytes(data[: len(data) * 9 // 10])
    capfd.readouterr()
    _assert_image_error(tmp_path / f"cut{suffix}", "cannot read image: the file is truncated or corrupt")
    assert "libpng" not in capfd.readouterr().err


def test_a_tiff_without_a_resolution_does_not_pass_on_one_dpi(tmp_path):
    """Pillow reads a TIFF without resolution tags as 1 dpi: carried into a JPEG, it printed a
    metre wide."""
    from core.image_io import export_photo, read_source
    Image.fromarray(_pattern()).save(tmp_path / "plain.tif")
    assert read_source(tmp_path / "plain.tif").dpi is None
    export_photo(tmp_path / "plain.tif", tmp_path / "out.jpg", load_image(tmp_path / "plain.tif"),
                 read_source(tmp_path / "plain.tif"))
    assert Image.open(tmp_path / "out.jpg").info.get("dpi") in (None, (72, 72))


def test_a_tiffs_iptc_stored_as_numbers_is_named_unreadable_not_unkeepable(tmp_path):
    """Review: Photoshop types a TIFF's IPTC tag LONG, which Pillow reads as one number; the note
    said a TIFF export "cannot keep" IPTC, which a TIFF can."""
    from PIL import TiffImagePlugin, TiffTags

    from core.image_io import export_photo, read_source
    rec = b"\x1c\x02\x00\x00\x02\x00\x04\x1c\x02\x78\x00\x09a caption"
    rec += b"\0" * (-len(rec) % 4)
    ifd = TiffImagePlugin.ImageFileDirectory_v2()
    ifd[33723] = rec
    ifd.tagtype[33723] = TiffTags.UNDEFINED
    src = tmp_path / "ps.tif"
    Image.fromarray(_pattern()).save(src, tiffinfo=ifd)
    data = bytearray(src.read_bytes())
    off = struct.unpack_from("<I", data, 4)[0]
    for k in range(struct.unpack_from("<H", data, off)[0]):
        entry = off + 2 + 12 * k
        if struct.unpack_from("<H", data, entry)[0] == 33723:
            struct.pack_into("<HI", data, entry + 2, 4, len(rec) // 4)   # LONG, as Photoshop writes it
    src.write_bytes(bytes(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _copied, notes = export_photo(src, tmp_path / "out.tif", load_image(src), read_source(src))
    assert "IPTC metadata dropped (it is stored in a form that cannot be read back)" in notes, notes
    assert not any("cannot keep" in n for n in notes), notes



def test_jpeg_export_leaves_other_threads_running(tmp_path):
    """The window exports off its GUI thread: the JPEG encoder must let that thread run (an
    optimized-Huffman encode held Python's lock for the whole image, 0.4 s at 50 MP)."""
    rng = np.random.default_rng(0)
    rgb = np.ascontiguousarray(np.repeat(np.repeat(rng.integers(0, 256, (500, 750, 3), np.uint8), 8, 0), 8, 1))
    tries = []
    for _ in range(3):   # a loaded machine can deschedule this thread once in a while
        gap, total = _longest_pause_while(lambda: save_image(tmp_path / "big.jpg", rgb, quality=95))
        tries.append((round(gap, 3), round(total, 3)))
        if gap < 0.4 * total:
            break
    else:
        pytest.fail(f"the GUI thread would stall for most of the export: (longest gap, export) s: {tries}")
    assert np.abs(load_image(tmp_path / "big.jpg").astype(int) - rgb).mean() < 3
