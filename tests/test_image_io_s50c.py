"""A PNG's metadata after its pixels (session 50): an eXIf or text chunk after the pixel data
(ImageMagick writes its date:create and date:modify text there) is read from the file's chunks,
so that opening the photo decodes its pixels once, as for any other photo. Before, Pillow's EXIF
and text readers decoded the whole image to reach them: open_photo decoded such a PNG two or three
times (a 16-bit one: OpenCV once, Pillow twice), read_source without its alpha plane once (none is
needed). The photo and its Source are the same as where those chunks come before the pixels."""
from __future__ import annotations

import dataclasses
import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from core.image_io import export_photo, load_image, open_photo, read_metadata, read_source
from test_image_io_s50 import decodes  # noqa: F401 (a fixture)

XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="3"/></rdf:RDF></x:xmpmeta>')


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _exif(orientation: int | None) -> bytes:
    """An eXIf chunk's data: camera make, and the orientation where given."""
    e = Image.Exif()
    e[0x010F] = "Camera"
    if orientation:
        e[0x0112] = orientation
    return e.tobytes()[6:]   # without Pillow's "Exif\0\0"


def _text(kind: bytes, key: bytes, value: bytes) -> bytes:
    if kind == b"tEXt":
        return _chunk(kind, key + b"\0" + value)
    if kind == b"zTXt":
        return _chunk(kind, key + b"\0\0" + zlib.compress(value))
    return _chunk(kind, key + b"\0\0\0en\0" + key + b"\0" + value)   # iTXt, uncompressed


# what ImageMagick and others write: the EXIF, text of each kind, XMP in an iTXt
METADATA = {
    "exif": _chunk(b"eXIf", _exif(6)),
    "date": _text(b"tEXt", b"date:create", b"2024-05-01T10:00:00+00:00"),
    "modify": _text(b"zTXt", b"date:modify", b"2024-05-02T11:00:00+00:00"),
    "comment": _text(b"iTXt", b"Comment", "caf\u00e9 au lait".encode("utf-8")),
    "xmp": _text(b"iTXt", b"XML:com.adobe.xmp", XMP),
    "author": _text(b"tEXt", b"Author", b"Ann \xe9"),
}


def _pixels_png(kind: str) -> bytes:
    """A small PNG of ``kind`` (its pixels only): 8-bit by Pillow, 16-bit by OpenCV."""
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (23, 31, 4)).astype(np.uint8)
    a[:6, ..., 3] = 255
    deep = rng.integers(0, 65536, (23, 31, 4)).astype(np.uint16)
    deep[:6, ..., 3] = 65535
    if kind.endswith("16"):
        arr = {"rgb16": deep[..., :3], "rgba16": deep, "grey16": deep[..., 0]}[kind]
        return cv2.imencode(".png", arr)[1].tobytes()
    images = {"rgb": lambda: Image.fromarray(a[..., :3]), "rgba": lambda: Image.fromarray(a),
              "grey": lambda: Image.fromarray(a[..., 0]), "grey alpha": lambda: Image.fromarray(a[..., [0, 3]], "LA"),
              "palette": lambda: Image.fromarray(a[..., :3]).quantize(16),
              "palette key": lambda: Image.fromarray(a[..., :3]).quantize(16)}
    out = io.BytesIO()
    images[kind]().save(out, "PNG", **({"transparency": 3} if kind == "palette key" else {}))
    return out.getvalue()


def _png(path: Path, kind: str, before: list, after: list) -> Path:
    """The PNG of ``kind`` with the chunks ``before`` its pixel data and ``after`` it (METADATA's
    names, or a chunk's bytes)."""
    data = _pixels_png(kind)
    chunks, at = [], 8
    while at < len(data):
        n = struct.unpack(">I", data[at:at + 4])[0]
        chunks.append(data[at:at + 12 + n])
        at += 12 + n
    pixels = [i for i, c in enumerate(chunks) if c[4:8] == b"IDAT"]
    first, last = pixels[0], pixels[-1] + 1
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"".join(
        chunks[:first] + [METADATA.get(k, k) for k in before] + chunks[first:last]
        + [METADATA.get(k, k) for k in after] + chunks[last:]))
    return path


KINDS = ["rgb", "rgba", "grey", "grey alpha", "palette", "palette key", "rgb16", "rgba16", "grey16"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_png_with_exif_and_text_after_its_pixels_is_decoded_once(tmp_path, decodes, kind):
    """As ImageMagick writes it (its EXIF and dates after the pixels): opening the photo to edit
    (open_photo, as the window, `edit` and batch do) decodes it once, load_image once, and reading
    its metadata alone (read_metadata, read_source without the alpha plane) not at all; the photo
    is turned by that EXIF's orientation (6: a quarter turn) and its Source has its dates."""
    src = _png(tmp_path / "magick.png", kind, ["author"], ["exif", "date", "modify", "comment"])

    photo, source = open_photo(src)
    assert decodes["n"] == 1
    assert photo.shape == (31, 23, 3)   # stored 23 rows of 31: turned upright
    assert source.text["date:create"] == "2024-05-01T10:00:00+00:00"
    assert source.text["date:modify"] == "2024-05-02T11:00:00+00:00"
    assert source.text["Comment"] == "caf\u00e9 au lait" and source.text["Author"] == "Ann \u00e9"
    exif = Image.Exif()
    exif.load(source.exif)
    assert exif[0x010F] == "Camera" and exif[0x0112] == 1   # upright now: orientation 1

    decodes["n"] = 0
    np.testing.assert_array_equal(load_image(src), photo)
    assert decodes["n"] == 1
    decodes["n"] = 0
    exif_alone, _ = read_metadata(src)
    alone = read_source(src, alpha=False)
    assert decodes["n"] == 0
    assert exif_alone == source.exif and alone.exif == source.exif and alone.text == source.text


def _same_source(got, want) -> None:
    for f in dataclasses.fields(want):
        a, b = getattr(got, f.name), getattr(want, f.name)
        if isinstance(b, np.ndarray) or isinstance(a, np.ndarray):
            assert a is not None and b is not None and a.dtype == b.dtype, f.name
            np.testing.assert_array_equal(a, b, err_msg=f.name)
        elif f.name == "text":   # an iTXt's language and translated key too
            assert {k: (v, getattr(v, "lang", None), getattr(v, "tkey", None)) for k, v in a.items()} == \
                   {k: (v, getattr(v, "lang", None), getattr(v, "tkey", None)) for k, v in b.items()}
        else:
            assert a == b, f.name


PLACES = {   # (before the pixels, after them): each against all of them before
    "all after": ([], ["exif", "date", "modify", "comment", "xmp"]),
    "exif before, text after": (["exif", "author"], ["date", "modify", "comment"]),
    "text after only": (["author"], ["date"]),
    "exif after only": ([], ["exif"]),
    "xmp after, no exif": ([], ["xmp", "date"]),
}


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("kind", KINDS)
def test_metadata_after_the_pixels_reads_as_before_them(tmp_path, kind, place):
    """The photo (its pixels, turned by its EXIF or its XMP's orientation) and what an export keeps
    of it (EXIF, text, XMP, alpha plane, 16-bit values) are the same whether the metadata chunks
    come after the pixels or before them, through every way of opening it."""
    before, after = PLACES[place]
    late = _png(tmp_path / "late.png", kind, before, after)
    early = _png(tmp_path / "early.png", kind, before + after, [])
    for opened in (lambda p: open_photo(p), lambda p: open_photo(p, depth=False, alpha=False)):
        (photo, source), (want_photo, want) = opened(late), opened(early)
        np.testing.assert_array_equal(photo, want_photo)
        _same_source(source, want)
    np.testing.assert_array_equal(load_image(late), load_image(early))
    for args in ({}, {"alpha": False}, {"exif": False}):
        _same_source(read_source(late, **args), read_source(early, **args))
    assert read_metadata(late) == read_metadata(early)
    if "xmp" in after:
        assert open_photo(late)[1].xmp == XMP


@pytest.mark.parametrize("kind", ["rgb", "rgb16", "rgba16"])
def test_exif_before_the_pixels_and_xmp_after_them(tmp_path, kind):
    """A PNG with its EXIF (no orientation in it) before the pixels and its XMP after them: an
    export keeps the XMP, and the XMP's orientation (3: upside down) turns the photo, 8-bit or
    16-bit, as where the XMP comes first. Before, its XMP was read only where Pillow had decoded the
    image already: an opaque photo's export dropped it, and a 16-bit photo opened upside down."""
    plain_exif = _chunk(b"eXIf", _exif(None))
    late = _png(tmp_path / "late.png", kind, [plain_exif], ["xmp"])
    early = _png(tmp_path / "early.png", kind, [plain_exif, "xmp"], [])
    (photo, source), (want_photo, want) = open_photo(late), open_photo(early)
    assert source.xmp == XMP
    np.testing.assert_array_equal(photo, want_photo)
    _same_source(source, want)
    copied, notes = export_photo(late, tmp_path / "out.png", photo, source)
    with Image.open(tmp_path / "out.png") as out:
        assert out.info.get("xmp") == XMP
