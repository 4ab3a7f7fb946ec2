"""Memory of reading and writing a photo: a 100 MP photo is a 286 MB array, and `batch` reads the
next photo while it writes the last, so every whole copy load_image or save_image holds at once
counts."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from conftest import REPO
from core.image_io import load_image, read_source, save_image


@pytest.mark.parametrize("mode", ["RGB", "CMYK", "P"])
def test_load_image_holds_no_second_copy_of_the_pixels(tmp_path, mode):
    """load_image's array came from np.asarray(image), which goes through Pillow's tobytes(): the
    pixels in pieces and then joined, twice the array at once besides Pillow's own decode (950 MB
    at 100 MP). Python's allocations (the array, any bytes) now peak at the array and a band or two."""
    rng = np.random.default_rng(0)
    rgb = np.repeat(np.repeat(rng.integers(0, 256, (150, 200, 3), np.uint8), 10, 0), 10, 1)
    im = Image.fromarray(rgb)
    im = im.convert("CMYK") if mode == "CMYK" else im.quantize(64) if mode == "P" else im
    path = tmp_path / ("photo.png" if mode == "P" else "photo.jpg")
    im.save(path, **({} if mode == "P" else {"quality": 95}))
    with Image.open(path) as im:
        expected = np.asarray(im.convert("RGB"))
    tracemalloc.start()
    try:
        out = load_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(out, expected)
    assert out.flags["C_CONTIGUOUS"] and out.dtype == np.uint8
    # the bands the pixels come through are 1 MB each
    assert peak < out.nbytes + (4 << 20), f"load_image peaked at {peak / out.nbytes:.2f}x its array ({out.nbytes:,} bytes)"


# ---------------------------------------------------------------------------------------------
# Peak memory that Pillow's own images take (C allocations, which tracemalloc does not see):
# measured as resident memory in a fresh Python, its high-water mark reset just before the call.

def _peak_bytes(folder, setup: str, measured: str) -> int:
    """How far ``measured`` raises the resident memory above what ``setup`` left (Linux only);
    both run with ``folder`` (a str) for their files."""
    if not os.path.exists("/proc/self/clear_refs"):
        pytest.skip("needs Linux's /proc/self/clear_refs to reset the peak")
    code = f"folder = {str(folder)!r}\n" + textwrap.dedent('''
        import numpy as np
        from PIL import Image
        from core.image_io import load_image, read_source, save_image
        rng = np.random.default_rng(0)
        def photo(h, w, channels=3):
            """Photo-like pixels (8x8 blocks), quick to make at camera sizes."""
            small = rng.integers(0, 256, (h // 8, w // 8, channels), np.uint8)
            return np.ascontiguousarray(np.repeat(np.repeat(small, 8, 0), 8, 1)[..., :channels])
        ''') + textwrap.dedent(setup) + textwrap.dedent('''
        def status(key):
            with open("/proc/self/status") as f:
                return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))
        before = status("VmRSS:")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        ''') + textwrap.dedent(measured) + '\nprint(status("VmHWM:") - before)\n'
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    if r.returncode != 0 and "clear_refs" in r.stderr:
        pytest.skip("cannot reset the peak here: " + r.stderr.strip().splitlines()[-1])
    assert r.returncode == 0, r.stderr[-3000:]
    return int(r.stdout.split()[-1])


def test_bmp_export_holds_no_pillow_copy_of_the_photo(tmp_path):
    """A BMP went through Pillow's image of the photo, 4 bytes a pixel (76 MB at 20 MP, 380 MB at
    100 MP); now its rows go to the file a band at a time (under 0.01 bytes a pixel)."""
    h, w = 4000, 5000
    peak = _peak_bytes(tmp_path, f"rgb = photo({h}, {w}); save_image(folder + '/warm.bmp', rgb[:8, :8].copy())",
                       "save_image(folder + '/big.bmp', rgb)")
    assert peak < 0.5 * h * w, f"a BMP export peaked at {peak / (h * w):.2f} bytes a pixel over the photo"


def test_grey_export_holds_no_rgb_pillow_copy(tmp_path):
    """A grey photo's export made Pillow's RGB image (4 bytes a pixel) and then its grey one
    (1 more): 4.9 bytes a pixel; now the grey plane alone is made, band by band (1.0)."""
    h, w = 4000, 5000
    peak = _peak_bytes(tmp_path, f"rgb = photo({h}, {w}); save_image(folder + '/warm.jpg', rgb[:8, :8].copy(), gray=True)",
                       "save_image(folder + '/big.jpg', rgb, gray=True)")
    assert peak < 1.6 * h * w, f"a grey export peaked at {peak / (h * w):.2f} bytes a pixel over the photo"


def test_transparent_export_is_not_uncomposited_in_float_on_the_whole_photo(tmp_path):
    """Under a transparency the straight colour was worked out in float32 on the whole photo, then
    put in Pillow's RGB image and given the alpha: 41 bytes a pixel (3.3 GB at 80 MP). Now band by
    band into the RGBA array that Pillow's image shares: 4.1."""
    h, w = 2400, 3200
    peak = _peak_bytes(tmp_path, f"""
        rgb, alpha = photo({h}, {w}), photo({h}, {w}, 1)[..., 0]
        alpha[: {h} // 2] = 255
        save_image(folder + '/warm.tif', rgb[:8, :8].copy(), alpha=alpha[:8, :8].copy())
        """, "save_image(folder + '/big.tif', rgb, alpha=alpha)")
    assert peak < 5.5 * h * w, f"a transparent export peaked at {peak / (h * w):.2f} bytes a pixel over the photo"


@pytest.mark.parametrize("read", ["load_image", "read_source"])
def test_transparent_photo_is_read_without_float_copies(tmp_path, read):
    """load_image composited a transparent photo over white in float32 on the whole photo, after
    np.asarray's tobytes() copies: 60 bytes a pixel (a 100 MP photo: 5.7 GB); read_source's alpha
    plane and colour went through the image turned, converted and tobytes(): 23. Now band by band:
    Pillow's decoded image (4) and what is returned (3; 1 + the colour under the transparency)."""
    h, w = 2400, 3200
    peak = _peak_bytes(tmp_path, f"""
        alpha = photo({h}, {w}, 1)[..., 0]
        alpha[: {h} // 2] = 255
        Image.fromarray(np.dstack([photo({h}, {w}), alpha]), "RGBA").save(folder + '/rgba.png', compress_level=1)
        Image.fromarray(np.dstack([photo(16, 16), alpha[-16:, :16]]), "RGBA").save(folder + '/warm.png')
        del alpha
        {read}(folder + '/warm.png')
        """, f"{read}(folder + '/rgba.png')")
    assert peak < 8.0 * h * w, f"{read} peaked at {peak / (h * w):.2f} bytes a pixel on a transparent photo"


def test_exif_rotated_photo_is_read_without_a_turned_pillow_copy(tmp_path):
    """ImageOps.exif_transpose turned Pillow's decoded image into a second one (4 + 4 bytes a
    pixel: 8, where an upright photo peaks at 7 while it is copied into the array); now the bands
    are turned on their way into the array: 7.0, as upright."""
    h, w = 4000, 5000
    peak = _peak_bytes(tmp_path, f"""
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.fromarray(photo({h}, {w})).save(folder + '/turned.jpg', quality=90, exif=exif.tobytes())
        Image.fromarray(photo(16, 24)).save(folder + '/warm.jpg', exif=exif.tobytes())
        load_image(folder + '/warm.jpg')
        """, "load_image(folder + '/turned.jpg')")
    assert peak < 7.5 * h * w, f"an EXIF-rotated photo peaked at {peak / (h * w):.2f} bytes a pixel"


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA", "L", "P", "CMYK"])
def test_the_eight_exif_orientations_are_pillows_exif_transpose(tmp_path, mode):
    """Bands turned on their way into the array: the pixels (and read_source's alpha plane and
    colour) are those of ImageOps.exif_transpose, for every orientation of a non-square photo."""
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (37, 53, 4), np.uint8)
    rgba[..., 3][rgba[..., 3] > 180] = 255
    stored = Image.fromarray(rgba, "RGBA")
    stored = stored.convert("RGB").quantize(40) if mode == "P" else stored.convert(mode)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = tmp_path / f"o{orientation}.{'jpg' if mode == 'CMYK' else 'png'}"
        stored.save(path, exif=exif.tobytes())
        with Image.open(path) as im:
            upright = ImageOps.exif_transpose(im)
            expected = np.asarray(upright.convert("RGB"))
            if mode in ("RGBA", "LA"):   # over white, in float32 as load_image composites
                a = np.asarray(upright.getchannel("A")).astype(np.float32)[..., None] / 255
                c = expected.astype(np.float32) / 255
                expected = np.clip(np.rint((c * a + (1.0 - a)) * 255.0), 0, 255).astype(np.uint8)
                straight = np.asarray(upright.convert("RGBA"))
        out = load_image(path)
        assert out.flags["C_CONTIGUOUS"]
        np.testing.assert_array_equal(out, expected, err_msg=f"orientation {orientation}")
        if mode in ("RGBA", "LA"):
            source = read_source(path)
            see = straight[..., 3] < 255
            np.testing.assert_array_equal(source.alpha, straight[..., 3])
            np.testing.assert_array_equal(source.color, straight[..., :3][see])


# ---------------------------------------------------------------------------------------------
# The bands change no byte of what is written.

def _uncomposite_whole(arr, alpha, color, composite=None):
    """save_image's straight colour under a transparency, as it was worked out on the whole photo."""
    a = alpha.astype(np.float32)[..., None]
    straight = (arr.astype(np.float32) - (255.0 - a)) * 255.0 / np.maximum(a, 1.0)
    out = np.where(a > 0, np.clip(np.rint(straight), 0, 255), arr).astype(np.uint8)
    see = alpha < 255
    if color is not None and len(color) == int(np.count_nonzero(see)):
        if composite is None or len(composite) != len(color):
            c, af = color.astype(np.float32) / 255, alpha[see].astype(np.float32)[..., None] / 255
            composite = np.clip(np.rint((c * af + (1.0 - af)) * 255.0), 0, 255).astype(np.uint8)
        unedited = (composite == arr[see]).all(axis=1)
        part = out[see]
        part[unedited] = color[unedited]
        out[see] = part
    return out


@pytest.mark.parametrize("source", ["none", "color", "composite"])
def test_uncomposite_in_bands_is_the_whole_photo_formula(source):
    from core.image_io import _band_rows, _uncomposite
    rng = np.random.default_rng(4)
    w = 61
    rows = _band_rows(np.empty((1, w, 3)))
    h = 8 * rows + rows // 3   # several bands, the last one short
    alpha = rng.integers(0, 256, (h, w), np.uint8)
    alpha[rng.random((h, w)) < 0.3] = 255
    alpha[rows:2 * rows] = 255   # a band with nothing under 255
    color = rng.integers(0, 256, (int(np.count_nonzero(alpha < 255)), 3), np.uint8)
    rgb = rng.integers(0, 256, (h, w, 3), np.uint8)
    see = alpha < 255
    c, af = color.astype(np.float32) / 255, alpha[see].astype(np.float32)[..., None] / 255
    made = np.clip(np.rint((c * af + (1.0 - af)) * 255.0), 0, 255).astype(np.uint8)
    rgb[see] = np.where(rng.random((len(made), 1)) < 0.7, made, rgb[see])   # most still the source's
    composite = made.copy() if source == "composite" else None
    if composite is not None:
        composite[::7] ^= 1   # a 16-bit source's own composite differs from the recomputed one
    args = (None, None) if source == "none" else (color, composite)
    np.testing.assert_array_equal(_uncomposite(rgb, alpha, *args), _uncomposite_whole(rgb, alpha, *args))


def _pillows_file(path, rgb, fmt, gray=False, alpha=None, **meta):
    """The file Pillow's own writer makes of save_image's image with save_image's settings, the
    image made as save_image made it before (RGB, its grey, its alpha put on)."""
    import core.image_io as image_io
    im = Image.fromarray(rgb)
    im = im.convert("L") if gray else im
    if alpha is not None:
        im.putalpha(Image.fromarray(alpha, "L"))
    im.save(path, format=fmt, **image_io._save_options(fmt, 95, meta.get("exif"), meta.get("icc_profile"), gray=gray,
                                                      xmp=meta.get("xmp"), dpi=meta.get("dpi")))


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif", ".bmp"])
@pytest.mark.parametrize("case", ["plain", "gray", "alpha", "gray_alpha", "dpi_odd"])
def test_exports_are_byte_for_byte_pillows(tmp_path, suffix, case):
    """BMP rows written by hand, grey and transparent images made in shared arrays: the same file,
    metadata (EXIF, ICC, XMP, resolution) included, as Pillow's writer makes of the image before."""
    import core.image_io as image_io
    rng = np.random.default_rng(5)
    # BMP rows padded by 1, 0, 2, 1 and 3 bytes
    h, w = {"plain": (301, 517), "gray": (301, 516), "alpha": (301, 518), "gray_alpha": (301, 517),
            "dpi_odd": (97, 203)}[case]
    rgb = np.repeat(np.repeat(rng.integers(0, 256, (h // 3 + 1, w // 3 + 1, 3), np.uint8), 3, 0), 3, 1)[:h, :w]
    rgb = np.ascontiguousarray(rgb)
    exif = Image.Exif()
    exif[0x010F] = "FaderTestCam"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    meta = dict(exif=exif.tobytes(), icc_profile=icc, xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>",
                dpi=(72.5, 301.2) if case == "dpi_odd" else (300, 300))
    alpha = None
    if "alpha" in case:
        alpha = rng.integers(0, 256, (h, w), np.uint8)
        alpha[: h // 2] = 255
    fmt = image_io.SAVE_FORMATS[suffix]
    save_image(tmp_path / f"ours{suffix}", rgb, gray="gray" in case, alpha=alpha, **meta)
    keep = alpha if fmt in ("PNG", "TIFF") else None
    straight = rgb if keep is None else _uncomposite_whole(rgb, keep, None)
    _pillows_file(tmp_path / f"pillow{suffix}", straight, fmt, gray="gray" in case, alpha=keep,
                  **{k: v for k, v in meta.items() if k != "dpi" or "dpi" in image_io._KEEPS[fmt]})
    assert (tmp_path / f"ours{suffix}").read_bytes() == (tmp_path / f"pillow{suffix}").read_bytes()
