"""A TIFF export keeps the photo's EXIF beside its XMP and IPTC. Pillow writes a TIFF's EXIF only
when it is given no other tags, so a photo with XMP or IPTC (an agency's, a Lightroom export)
exported as TIFF lost its camera, model and date, in 8 bits and in 16 (whose tags are those of
Pillow's 8-bit TIFF). Real files, made with Pillow; `edit` with the tiny model; read back."""
from __future__ import annotations

import dataclasses
import os
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, TiffImagePlugin, TiffTags

from conftest import display_p3_icc
from core.image_io import export_photo, load_image, read_source

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MAKE, MODEL, DATE = "FaderTestCam", "Model 7", "2024:05:01 10:00:00"
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/>Rating 5</x:xmpmeta>'
IPTC = b"\x1c\x02\x78" + struct.pack(">H", 7) + b"caption"
BASE_TAGS = {0x010F: MAKE, 0x0110: MODEL, 0x0132: DATE, 0x013B: "A. Photographer"}


def _camera_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    for tag, value in BASE_TAGS.items():
        exif[tag] = value
    exif[0x0112] = orientation
    exif.get_ifd(0x8769)[0x9003] = DATE    # DateTimeOriginal (Exif sub-IFD)
    return exif


def _agency_jpeg(path: Path, rgb: np.ndarray, orientation: int = 1) -> None:
    """A JPEG as a camera and a photo agency leave it: EXIF (with an orientation), XMP, IPTC
    (Photoshop APP13), a Display P3 profile, 300 dpi."""
    app13 = (b"Photoshop 3.0\0" + b"8BIM" + struct.pack(">H", 0x0404) + b"\0\0"
             + struct.pack(">I", len(IPTC)) + IPTC + b"\0" * (len(IPTC) % 2))
    Image.fromarray(rgb).save(path, quality=95, exif=_camera_exif(orientation).tobytes(), xmp=XMP,
                              icc_profile=display_p3_icc(), dpi=(300, 300))
    data = path.read_bytes()
    path.write_bytes(data[:2] + b"\xff\xed" + struct.pack(">H", len(app13) + 2) + app13 + data[2:])


def _tiff_tags(color_tags: dict) -> TiffImagePlugin.ImageFileDirectory_v2:
    """The metadata tags of the sources below: camera EXIF, XMP, IPTC, 300 dpi (and ``color_tags``)."""
    ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=b"II")
    for tag, value in BASE_TAGS.items():
        ifd[tag] = value
    for tag, value, kind in ((700, XMP, TiffTags.BYTE), (33723, IPTC, TiffTags.UNDEFINED),
                             (282, 300.0, TiffTags.RATIONAL), (283, 300.0, TiffTags.RATIONAL),
                             (296, 2, TiffTags.SHORT), *((t, v, k) for t, (v, k) in color_tags.items())):
        ifd[tag] = value
        ifd.tagtype[tag] = kind
    return ifd


def _tiff16_rgb(path: Path, rgb16: np.ndarray) -> None:
    """A 16-bit RGB TIFF with the tags of _tiff_tags and a Display P3 profile, laid out with
    Pillow's tag writer (Pillow writes no 16-bit colour TIFF)."""
    h, w, _ = rgb16.shape
    data = rgb16.astype("<u2").tobytes()
    ifd = _tiff_tags({34675: (display_p3_icc(), TiffTags.UNDEFINED)})
    for tag, value, kind in ((256, w, TiffTags.LONG), (257, h, TiffTags.LONG), (258, (16, 16, 16), TiffTags.SHORT),
                             (259, 1, TiffTags.SHORT), (262, 2, TiffTags.SHORT), (277, 3, TiffTags.SHORT),
                             (278, h, TiffTags.LONG), (284, 1, TiffTags.SHORT),
                             (273, (0,), TiffTags.LONG), (279, (len(data),), TiffTags.LONG)):
        ifd[tag] = value
        ifd.tagtype[tag] = kind
    # the strip offset is counted from the end of the directory (Pillow's tobytes adds it)
    path.write_bytes(b"II*\0" + struct.pack("<I", 8) + ifd.tobytes(8) + data)


def _deep(rgb8: np.ndarray, seed: int = 0) -> np.ndarray:
    """16-bit values whose 8-bit reading is ``rgb8``, with low bits of their own."""
    noise = np.random.default_rng(seed).integers(-120, 121, rgb8.shape)
    return np.clip(rgb8.astype(np.int64) * 257 + noise, 0, 65535).astype(np.uint16)


def _pattern(h=40, w=56) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.dstack([x * 7 % 256, y * 11 % 256, (x + y) * 5 % 256]).astype(np.uint8)


def _kept(path: Path, icc: bytes | None = None) -> Image.Exif:
    """Assert the export at ``path`` is a TIFF with the camera's EXIF, the XMP, the IPTC, 300 dpi
    (and ``icc``) and upright pixels' orientation; its EXIF."""
    with Image.open(path) as im:
        assert im.format == "TIFF"
        exif = im.getexif()
        for tag, value in BASE_TAGS.items():
            assert exif.get(tag) == value, (hex(tag), exif.get(tag))
        assert exif.get(0x0112, 1) == 1      # the pixels are written upright
        assert bytes(im.tag_v2.get(700, b"")) == XMP
        assert bytes(im.tag_v2.get(33723, b"")) == IPTC
        assert im.info.get("dpi") == pytest.approx((300, 300))
        assert im.info.get("icc_profile") == icc
    return exif


def test_edit_to_tiff_keeps_the_cameras_exif_beside_xmp_iptc_profile_and_dpi(tmp_path, capsys, portrait_path,
                                                                             tiny_model_path):
    """The photo stored turned (Orientation 6), as a phone writes it: the TIFF of its edit keeps
    Make, Model, date and artist as the JPEG export does, says Orientation 1 over upright pixels."""
    from fader_desktop.cli import main
    upright = load_image(portrait_path)
    src = tmp_path / "agency.jpg"
    _agency_jpeg(src, np.ascontiguousarray(np.rot90(upright, 1)), orientation=6)
    for name in ("out.tif", "out.jpg"):
        rc = main(["edit", str(src), "-o", str(tmp_path / name), "--model", str(tiny_model_path), "--device", "cpu",
                   "--set", "Smiling=2", "--face", "0"])
        assert rc == 0, capsys.readouterr().err
    tiff = _kept(tmp_path / "out.tif", display_p3_icc())
    got = load_image(tmp_path / "out.tif").astype(int)
    assert np.abs(got - upright).mean() < np.abs(got - np.rot90(upright, 1)).mean() / 4   # upright
    with Image.open(tmp_path / "out.jpg") as jpeg:
        assert {t: tiff.get(t) for t in BASE_TAGS} == {t: jpeg.getexif().get(t) for t in BASE_TAGS}
        assert jpeg.getexif().get(0x0112) == tiff.get(0x0112) == 1


def test_an_8bit_tiff_with_xmp_and_iptc_exports_to_tiff_with_its_exif(tmp_path):
    src = tmp_path / "scan.tif"
    Image.fromarray(_pattern()).save(src, tiffinfo=_tiff_tags({}), compression="tiff_lzw")
    export_photo(src, tmp_path / "out.tif", load_image(src), read_source(src))
    _kept(tmp_path / "out.tif")
    np.testing.assert_array_equal(load_image(tmp_path / "out.tif"), _pattern())


@pytest.mark.parametrize("kind", ["rgb", "grey"])
def test_a_16bit_tiff_with_xmp_and_iptc_exports_to_tiff_with_its_exif_and_16_bits(tmp_path, kind):
    """The 16-bit TIFF writer takes the tags Pillow writes for the 8-bit export: the EXIF was lost
    there too. Colour (with a Display P3 profile) and grey (written by Pillow as I;16)."""
    src = tmp_path / "deep.tif"
    if kind == "rgb":
        values = _deep(_pattern(), seed=1)
        _tiff16_rgb(src, values)
        icc = display_p3_icc()
    else:
        values = _deep(_pattern()[..., 1], seed=2)
        Image.fromarray(values).save(src, tiffinfo=_tiff_tags({}))
        values, icc = values[..., None], None
    source = read_source(src)
    assert source.deep is not None
    out = tmp_path / "out.tif"
    export_photo(src, out, load_image(src), source)
    _kept(out, icc)
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    got = got[..., None] if got.ndim == 2 else got[..., ::-1]
    np.testing.assert_array_equal(got, values)   # still its own 16 bits
    # the 8-bit export of the same photo keeps the same EXIF
    export_photo(src, tmp_path / "out8.tif", load_image(src), dataclasses.replace(source, deep=None))
    with Image.open(out) as a, Image.open(tmp_path / "out8.tif") as b:
        assert {t: a.getexif().get(t) for t in BASE_TAGS} == {t: b.getexif().get(t) for t in BASE_TAGS}


# ------------------------------------------------------- a name too long, in words (same export path)

@pytest.mark.parametrize("unchanged", [False, True])
def test_a_name_too_long_for_the_file_system_is_an_export_error_in_words(tmp_path, unchanged):
    """A 300-character file name (or folder name) made "does it exist?" itself fail: a raw
    "[Errno 36] File name too long" from the export, as an unexpected error. The file, how long
    its name is and what the folder allows; nothing is written. ``unchanged``: the copy of an
    unedited photo into its own format, which checks the output in the same way."""
    from core.errors import ImageError
    src = tmp_path / "scan.png"
    Image.fromarray(_pattern()).save(src)
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    out = tmp_path / ("a" * 300 + ".png")
    with pytest.raises(ImageError) as info:
        export_photo(src, out, load_image(src), read_source(src), unchanged=unchanged)
    assert str(info.value) == f"{out}: cannot save image: the file name is too long (304 characters; this folder allows {limit})"
    out = tmp_path / ("b" * 300) / "edited.png"
    with pytest.raises(ImageError) as info:
        export_photo(src, out, load_image(src), read_source(src), unchanged=unchanged)
    assert str(info.value) == (f"{out}: cannot save image: a folder name in it is too long "
                               f"(300 characters; the file system allows {limit})")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.png"]
