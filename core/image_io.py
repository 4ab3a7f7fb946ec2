"""Reading and writing photos.

Every image that leaves this module is a C-contiguous ``uint8`` ``H x W x 3`` RGB array, upright
(EXIF orientation applied). Every failure a user can cause (missing file, not an image, truncated,
too large, unwritable folder, disk full) raises :class:`core.errors.ImageError` with a one-line
message that starts with the path.
"""

from __future__ import annotations

import copy
import errno
import io
import os
import re
import stat
import struct
import threading
import warnings
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from dataclasses import replace as _replaced
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import (Image, ImageCms, ImageFile, PngImagePlugin, TiffImagePlugin, TiffTags,
                 UnidentifiedImageError, features)

from core.atomic_write import atomic_file, copy_file_atomic
from core.errors import ImageError, os_reason

try:  # HEIC/HEIF, what phones (every iPhone since 2017) write by default; decoding only
    import pi_heif

    pi_heif.register_heif_opener()
    _HEIF = True
except ImportError:  # an install without it still reads every other format
    _HEIF = False

__all__ = ["load_image", "read_exif", "read_icc_profile", "read_metadata", "save_image", "save_unchanged", "image_format",
           "check_output_folder", "check_save_path", "keeps_depth", "Source", "read_source", "export_photo", "gray_rgb",
           "SAVE_FORMATS", "EXIF_FORMATS", "LOSSY_FORMATS", "DEFAULT_MAX_PIXELS", "IMAGE_SUFFIXES",
           "export_suffix", "unchanged_wording", "deep_bytes"]

#: The most pixels a photo may have: above every phone and most medium-format cameras (200 MP phones
#: write 16320x12240), and low enough that a header claiming billions of pixels is refused unread.
DEFAULT_MAX_PIXELS = 210_000_000
# Pillow's own hard refusal (at twice this) must not come before ours: our message says what to do.
Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, DEFAULT_MAX_PIXELS)

#: Output suffix -> Pillow format name.
SAVE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
# Formats that are read but not written: an export of a HEIC or AVIF photo is a JPEG (what a
# phone's own export gives), one of a GIF a PNG (lossless, keeps the transparency; a GIF's 256
# colours cannot hold an edited face).
_HEIF_SUFFIXES = (".heic", ".heif")
_READ_ONLY_SUFFIXES = (_HEIF_SUFFIXES if _HEIF else ()) + (
    (".avif",) if features.check("avif") else ()) + (".gif",)
_READ_ONLY_EXPORT = {".gif": ".png"}
#: The file suffixes treated as photos (opening a folder's next photo, batch inputs), in menu order.
IMAGE_SUFFIXES = tuple(SAVE_FORMATS) + _READ_ONLY_SUFFIXES
# Formats that keep an alpha channel (transparency); JPEG and BMP exports drop it.
_ALPHA_FORMATS = {"PNG", "WEBP", "TIFF"}
# Pillow modes without colour: such a photo is exported grey (the edit's luminance).
_GRAY_MODES = {"1", "L", "LA", "La", "I", "F"}
#: Formats whose Pillow writer can embed an EXIF block (and an ICC colour profile).
EXIF_FORMATS = {"JPEG", "PNG", "WEBP", "TIFF"}
#: Formats written with a quality setting: their re-encoding changes pixels (the others are lossless).
LOSSY_FORMATS = {"JPEG", "WEBP"}
# Real colour profiles are 0.5-600 KB; a bigger one is not worth an export that fails over it.
_MAX_ICC_BYTES = 4 << 20
_ORIENTATION_TAG = 0x0112
# EXIF pointers to sub-IFDs (Exif, GPS, Interoperability): libtiff cannot write them as tags.
_IFD_POINTER_TAGS = (0x8769, 0x8825, 0xA005)
# A TIFF's own layout tags (size, sample format, strips, tiles, colour type, its ICC profile tag):
# Pillow's getexif() of a TIFF is its first tag directory, and carried into an export they
# described the source's pixels, not the written ones (a CMYK or 16-bit layout over 8-bit RGB: a
# TIFF nothing could open; 9,000 strip offsets: EXIF too long for a JPEG). Dropped from any EXIF.
_TIFF_LAYOUT_TAGS = frozenset((
    254, 255, 256, 257, 258, 259, 262, 263, 264, 265, 266, 273, 277, 278, 279, 280, 281, 284,
    288, 289, 292, 293, 317, 320, 322, 323, 324, 325, 330, 332, 333, 334, 336, 338, 339, 340,
    341, 342, 347, *range(512, 522), 529, 530, 532, 34675))
# The largest EXIF block (with its "Exif\0\0" header) one JPEG APP1 marker holds (Pillow's limit).
_JPEG_MAX_EXIF = 65533
# Bulky, optional parts of EXIF dropped first when a block is too big for a JPEG: the camera
# maker's private notes (Exif sub-IFD), XMP, IPTC and Photoshop blocks.
_BULKY_EXIF = ((0x8769, 0x927C), (None, 700), (None, 0x83BB), (None, 34377))
# Pillow's format name of a file -> the format it is written as (an MPO is a JPEG with extra frames).
_SAME_FORMAT = {"MPO": "JPEG"}
# What an export that cannot write a 16-bit source's 16 bits says (Source.lost).
_DEPTH_NOTE = "more than 8 bits per channel, written with 8"
# Formats a 16-bit source (Source.deep) is exported to with its 16 bits.
_DEEP_FORMATS = {"PNG", "TIFF"}


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------

def _check_readable(p: Path) -> None:
    """Fail early with a precise reason before handing the file to a decoder."""
    try:
        st = p.stat()
    except OSError as exc:
        raise ImageError(f"{p}: cannot read image: {os_reason(exc)}") from None
    if p.is_dir():
        raise ImageError(f"{p}: cannot read image: is a folder, not an image file")
    if not stat.S_ISREG(st.st_mode):
        # a pipe would block the decoder and a device (/dev/zero) never ends
        raise ImageError(f"{p}: cannot read image: not a regular file (a pipe, socket or device)")
    if st.st_size == 0:
        raise ImageError(f"{p}: cannot read image: the file is empty")
    if not os.access(p, os.R_OK):
        raise ImageError(f"{p}: cannot read image: permission denied")


_TOO_BIG = "(a guard against decompression bombs): reduce the image's size first"


def _bomb_message(p: Path, exc: Exception, max_pixels: int | None) -> str:
    """Pillow refused the header (beyond twice its own limit): say how big and what the limit is."""
    m = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(m.group(1)):,} pixels" if m else "the image"
    limit = min(max_pixels or Image.MAX_IMAGE_PIXELS * 2, Image.MAX_IMAGE_PIXELS * 2)
    return f"{p}: refusing to decode: {size} exceeds the limit of {limit:,} {_TOO_BIG}"


def _cut_off(exc: OSError) -> bool:
    """Whether Pillow's error is its way, for one format or another, of saying the file is cut off
    or damaged (JPEG "Truncated File Read", PNG "broken data stream", WebP's refused decoder)."""
    return exc.errno is None and any(w in str(exc).lower() for w in (
        "truncated", "broken data stream", "could not create decoder"))


# The first bytes of the formats read here: a file that starts with one but that Pillow cannot
# identify is a damaged photo, not some other kind of file.
_SIGNATURES = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff",
               b"GIF87a", b"GIF89a")


def _known_signature(p: Path) -> bool:
    try:
        with open(p, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return head.startswith(_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _png_chunks(p: Path) -> tuple:
    """(the PNG ``p``'s chunks in order up to IEND, each (kind, offset of its data, its length),
    whether they run whole up to IEND), from their headers alone (no data read); ([...], False)
    where the file ends early or cannot be read."""
    chunks = []
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            at = 8
            while at + 12 <= size:
                f.seek(at)
                n, kind = struct.unpack(">I4s", f.read(8))
                if kind == b"IEND":
                    return chunks, at + 12 + n <= size
                chunks.append((kind, at + 8, n))
                at += 12 + n
    except (OSError, struct.error):
        pass
    return chunks, False


def _png_complete(p: Path) -> bool:
    """Whether the PNG ``p``'s chunks run whole up to IEND (headers only, no decoding): OpenCV's
    libpng prints "libpng error: ..." to stderr on a cut-off file before it gives up."""
    return _png_chunks(p)[1]


def _open(p: Path, max_pixels: int | None) -> Image.Image:
    """Open (header only) and refuse oversized images before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check only warns between its two limits; ``max_pixels`` is ours.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # a cut-off TIFF's "Corrupt EXIF data" warning: the error below says it in one line
            warnings.simplefilter("ignore", UserWarning)
            im = Image.open(p)
    except Image.DecompressionBombError as exc:
        raise ImageError(_bomb_message(p, exc, max_pixels)) from None
    except UnidentifiedImageError:
        if p.suffix.lower() in _HEIF_SUFFIXES and not _HEIF:
            raise ImageError(f"{p}: cannot read image: HEIC/HEIF photos need the pi-heif package "
                             "(pip install pi-heif)") from None
        if _known_signature(p):  # e.g. a TIFF cut off before its tag directory (stored at the end)
            raise ImageError(f"{p}: cannot read image: the file is truncated or corrupt") from None
        raise ImageError(f"{p}: cannot read image: not a recognised image format") from None
    except OSError as exc:
        why = "the file is truncated or corrupt" if _cut_off(exc) else os_reason(exc)
        raise ImageError(f"{p}: cannot read image: {why}") from None
    except (SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{p}: cannot read image: corrupt header ({exc})") from None
    w, h = im.size
    if w <= 0 or h <= 0:
        im.close()
        raise ImageError(f"{p}: cannot read image: invalid size {w}x{h}")
    if max_pixels is not None and w * h > max_pixels:
        im.close()
        raise ImageError(
            f"{p}: refusing to decode: {w}x{h} = {w * h:,} pixels exceeds the limit of "
            f"{max_pixels:,} {_TOO_BIG}"
        )
    return im


def _rawmode(im: Image.Image) -> str:
    """The decoder's raw mode of the first tile ('RGB;16B' for a 48-bit PNG), or ''."""
    try:
        args = im.tile[0].args if im.tile else None
    except (AttributeError, IndexError):
        return ""
    if isinstance(args, tuple):
        args = args[0] if args else ""
    return args if isinstance(args, str) else ""


def _is_16bit_color(im: Image.Image) -> bool:
    """True for 16-bit-per-channel colour/alpha images that Pillow would truncate to 8 bits."""
    return im.mode in ("RGB", "RGBA", "LA") and ";16" in _rawmode(im)


def _sixteen(im: Image.Image) -> bool:
    """Whether ``im`` is decoded by OpenCV at 16 bits (_decode_16bit): Pillow would truncate its
    colour, or Source.deep keeps its values (_deep_kind)."""
    return _is_16bit_color(im) or _deep_kind(im)


# Element-wise work on a whole photo goes a band of rows at a time: in one piece, its float32
# temporaries alone held 16-40 bytes a pixel (a 100 MP RGBA photo peaked at 6 GB in load_image).
_BAND_PIXELS = 1 << 16


def _band_rows(a: np.ndarray) -> int:
    """How many of ``a``'s rows (image rows, or pixels of a list) make a band: about as many
    values as _BAND_PIXELS RGB pixels."""
    return max(1, 3 * _BAND_PIXELS // max(1, int(np.prod(a.shape[1:]))))


def _over_white_f32(color: np.ndarray, alpha: np.ndarray, max_value: float) -> np.ndarray:
    a = alpha.astype(np.float32)[..., None] / max_value
    c = color.astype(np.float32) / max_value
    return np.clip(np.rint((c * a + (1.0 - a)) * 255.0), 0, 255).astype(np.uint8)


def _uncomposite_f32(arr: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The straight colour under ``alpha`` of ``arr`` composited over white: the white taken back
    out (approximate where alpha is low); ``arr`` itself where alpha is 0."""
    a = alpha.astype(np.float32)[..., None]
    straight = (arr.astype(np.float32) - (255.0 - a)) * 255.0 / np.maximum(a, 1.0)
    return np.where(a > 0, np.clip(np.rint(straight), 0, 255), arr).astype(np.uint8)


_TABLES: dict = {}


def _table(math) -> np.ndarray:
    """``math`` (_over_white_f32 at 255, or _uncomposite_f32) of every 8-bit (alpha, value) pair,
    flat at alpha * 256 + value: a lookup gives its very result, several times faster."""
    if math not in _TABLES:
        values, alphas = np.arange(256, dtype=np.uint8)[None, :, None], np.arange(256, dtype=np.uint8)[:, None]
        _TABLES[math] = (_over_white_f32(values, alphas, 255.0) if math is _over_white_f32
                         else _uncomposite_f32(values, alphas)).reshape(-1)
    return _TABLES[math]


def _by_table(math, values: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return np.take(_table(math), (alpha.astype(np.uint16) << 8)[..., None] | values)


def _over_white(color: np.ndarray, alpha: np.ndarray, max_value: float) -> np.ndarray:
    """Composite ``color`` (H,W,C) over white with straight ``alpha`` (H,W); returns 8-bit."""
    out = np.empty(color.shape, np.uint8)
    rows = _band_rows(color)
    eight = max_value == 255.0 and color.dtype == alpha.dtype == np.uint8
    for y in range(0, len(color), rows):
        out[y:y + rows] = (_by_table(_over_white_f32, color[y:y + rows], alpha[y:y + rows]) if eight else
                           _over_white_f32(color[y:y + rows], alpha[y:y + rows], max_value))
    return out


def _to_8bit(values: np.ndarray, max_value: float) -> np.ndarray:
    """Scale 0..max_value integers to 0..255 with rounding (65535 -> 255, not truncation)."""
    out = np.empty(values.shape, np.uint8)
    rows = _band_rows(values)
    for y in range(0, len(values), rows):
        out[y:y + rows] = np.rint(np.clip(values[y:y + rows].astype(np.float32), 0, max_value) * (255.0 / max_value))
    return out


def _gray3(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=2)


# EXIF orientation -> what ImageOps.exif_transpose does to the stored pixels, as array views
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def _orient_array(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to an array, as ImageOps.exif_transpose does."""
    op = _ORIENT.get(orientation)
    return op(arr) if op else arr


# EXIF orientation -> the Pillow transposition ImageOps.exif_transpose turns the image by
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}


def _upright_bands(im: Image.Image, orientation: int = 1):
    """Yield (y, band): the rows y, y+1, ... of ``im`` (RGB, RGBA or LA) as ImageOps.exif_transpose
    turns it, about _BAND_PIXELS pixels at a time (a read-only (rows, width, channels) array).
    A turned band is the band of stored rows (2-4) or columns (5-8) that it is, cropped and turned
    by Pillow: the whole image turned (exif_transpose) held 4 more bytes a pixel."""
    w, h = im.size
    sideways = orientation in (5, 6, 7, 8)
    height, width = (w, h) if sideways else (h, w)
    rows = max(1, _BAND_PIXELS // width)
    back = orientation in (3, 4, 7, 8)   # the upright top is the stored bottom (or right)
    for y in range(0, height, rows):
        n = min(rows, height - y)
        a, b = (height - y - n, height - y) if back else (y, y + n)
        box = (a, 0, b, h) if sideways else (0, a, w, b)
        if orientation in _TRANSPOSE:
            part = im.crop(box).transpose(_TRANSPOSE[orientation])
            yield y, _read_box(part, (0, 0) + part.size)
        else:
            yield y, _read_box(im, box)


def _read_box(im: Image.Image, box: tuple) -> np.ndarray:
    """The pixels of ``box`` (x0, y0, x1, y1) of an RGB, RGBA or LA image as a read-only (rows,
    columns, channels) uint8 array, from the encoder im.tobytes() uses: np.asarray(im) goes through
    tobytes(), which holds the pieces of the whole image and then their join (two more copies)."""
    x0, y0, x1, y1 = box
    size = (y1 - y0) * (x1 - x0) * len(im.getbands())
    try:
        encoder = Image._getencoder(im.mode, "raw", (im.mode,))
        encoder.setimage(im.im, box)
    except (AttributeError, TypeError):   # a Pillow without these internals: its public copy
        return np.asarray(im.crop(box), dtype=np.uint8).reshape(y1 - y0, x1 - x0, -1)
    pieces = []
    while True:   # the raw encoder writes whole rows: all of them, in a buffer the box's size
        _, status, data = encoder.encode(size)
        pieces.append(data)
        if status:
            break
    data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
    if status < 0 or len(data) != size:
        raise OSError(f"encoder error {status} while reading the pixels")
    return np.frombuffer(data, np.uint8).reshape(y1 - y0, x1 - x0, -1)


def _getexif(im: Image.Image) -> Image.Exif:
    """``im.getexif()``, without a decode of the pixels: Pillow's PNG getexif decodes the whole
    image first (0.4 s at 6 MP) where it has no EXIF before its pixels, to reach the chunks after
    them, which _png_late reads from the file instead."""
    if im.format == "PNG" and getattr(im, "filename", None) and _png_late(Path(im.filename), im).read:
        return Image.Image.getexif(im)
    return im.getexif()


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation (1..8) ``im``'s pixels are turned by, read as ImageOps.exif_transpose
    reads it: a value it would not turn by is 1."""
    try:
        value = _getexif(im).get(_ORIENTATION_TAG, 1)
        return int(value) if value in _ORIENT else 1
    except Exception:  # malformed EXIF: the pixels are still fine, treat as upright
        return 1


def _tiff_orientation_reset(data: bytes) -> Optional[bytes]:
    """``data`` (a TIFF file) with its first image's Orientation tag set to 1, or None when it has
    none to reset. OpenCV's TIFF reader applies that tag itself where it decodes 16-bit data, so
    the orientation was applied twice (a photo upside down); with the tag reset it returns the
    pixels as stored and the orientation is applied once, by the caller."""
    order = {b"II": "<", b"MM": ">"}.get(bytes(data[:2]))
    if order is None or len(data) < 16:
        return None
    version = struct.unpack_from(order + "H", data, 2)[0]
    if version == 42:      # classic TIFF: 2-byte entry count, 12-byte entries, value at +8
        ifd, count, size, value_at = struct.unpack_from(order + "I", data, 4)[0], "H", 12, 8
    elif version == 43:    # BigTIFF: 8-byte entry count, 20-byte entries, value at +12
        ifd, count, size, value_at = struct.unpack_from(order + "Q", data, 8)[0], "Q", 20, 12
    else:
        return None
    first = ifd + struct.calcsize(order + count)
    if first > len(data):
        return None
    for k in range(struct.unpack_from(order + count, data, ifd)[0]):
        entry = first + k * size
        if entry + size > len(data):
            return None
        tag, kind = struct.unpack_from(order + "HH", data, entry)
        if tag == _ORIENTATION_TAG:
            if kind != 3:       # not a SHORT: not a tag any reader would apply either
                return None
            out = bytearray(data)
            struct.pack_into(order + "H", out, entry + value_at, 1)
            return bytes(out)
    return None


def _cv2_decode_stored(p: Path, im: Image.Image) -> Optional[np.ndarray]:
    """OpenCV's decode of ``p`` at full depth (IMREAD_UNCHANGED), as stored: not yet oriented."""
    import cv2
    if im.format == "PNG" and not _png_complete(p):
        raise ImageError(f"{p}: cannot read image: the file is truncated or corrupt")
    data = np.fromfile(str(p), dtype=np.uint8)  # imdecode: works with non-ASCII paths too
    if im.format == "TIFF" and _orientation(im) != 1:
        reset = _tiff_orientation_reset(data.tobytes())
        if reset is not None:
            data = np.frombuffer(reset, np.uint8)
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


def _decode_16bit(p: Path, im: Image.Image) -> np.ndarray:
    """A 16-bit image's decode with OpenCV as stored (Pillow keeps only the high byte of 16-bit
    colour); ImageError where it fails."""
    import cv2

    try:
        arr = _cv2_decode_stored(p, im)
    except (OSError, cv2.error) as exc:
        raise ImageError(f"{p}: cannot read image: {exc}") from None
    if arr is None:
        raise ImageError(f"{p}: cannot read image: the file is truncated or corrupt")
    return arr


def _grey_key(im: Image.Image) -> Optional[int]:
    """A 16-bit grey PNG's transparent grey value (its tRNS key, 0..65535), or None."""
    key = im.info.get("transparency")
    return key if im.mode.startswith("I;16") and type(key) is int else None


def _key_alpha(arr: np.ndarray, im: Image.Image) -> np.ndarray:
    """OpenCV's decode ``arr`` of ``im`` with the alpha channel a 16-bit grey PNG's tRNS key
    gives it: 0 where the grey is the key, 65535 elsewhere (OpenCV gives a colour key an alpha
    channel, a grey one none; Pillow compared the key with the grey clamped to 8 bits). ``arr``
    itself for any other image."""
    key = _grey_key(im)
    if key is None or arr.ndim != 2 or arr.dtype != np.uint16:
        return arr
    return np.dstack((arr, np.where(arr == key, np.uint16(0), np.uint16(65535))))


def _rgb_of_16bit(arr: np.ndarray, im: Image.Image) -> np.ndarray:
    """load_image's RGB of ``arr``, the 16-bit image ``im`` as _decode_16bit gives it: upright,
    scaled to 8 bits, a transparency composited over white."""
    max_value = 65535.0 if arr.dtype == np.uint16 else 255.0
    # turned first (views), so that the 8-bit array is made upright and contiguous
    arr = _orient_array(_key_alpha(arr, im), _orientation(im))
    if arr.ndim == 2:
        return _gray3(_to_8bit(arr, max_value))
    if arr.shape[2] == 2:  # gray + alpha
        return _over_white(_gray3(arr[..., 0]), arr[..., 1], max_value)
    if arr.shape[2] == 3:
        return _to_8bit(arr[..., ::-1], max_value)
    return _over_white(arr[..., 2::-1], arr[..., 3], max_value)


def _cmyk_to_rgb(im: Image.Image) -> Image.Image:
    """Use the embedded ICC profile when there is one; the naive formula is far off for print CMYK."""
    icc = im.info.get("icc_profile")
    if icc:
        try:
            import io

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.createProfile("sRGB")
            return ImageCms.profileToProfile(im, src, dst, outputMode="RGB")
        except Exception:  # broken profile: fall back to Pillow's plain conversion
            pass
    return im.convert("RGB")


def _rgb_array(im: Image.Image, orientation: int = 1) -> np.ndarray:
    """An RGB Pillow image's pixels as a new uint8 (H, W, 3) array, turned by the EXIF
    ``orientation``, written into it a band at a time (see _upright_bands and _read_box)."""
    return _upright_array(im, orientation, lambda band: band)


def _upright_array(im: Image.Image, orientation: int, make) -> np.ndarray:
    """The uint8 (H, W, 3) array of ``make(band)`` over ``im``'s upright bands."""
    w, h = im.size
    out = np.empty((w, h, 3) if orientation in (5, 6, 7, 8) else (h, w, 3), np.uint8)
    for y, band in _upright_bands(im, orientation):
        out[y:y + len(band)] = make(band)
    return out


def _pil_to_rgb(im: Image.Image, orientation: int = 1) -> np.ndarray:
    """Convert any decoded Pillow image to uint8 RGB (alpha composited over white), turned by the
    EXIF ``orientation`` (on the converted pixels: the same as turning the image first)."""
    mode = im.mode
    if mode in ("1", "L", "RGB") and "transparency" in im.info:
        # a PNG's transparent grey or colour (tRNS key): over white, as the other transparencies
        # are (Source.alpha has it at 0, from the same conversion); it showed the key's colour
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode == "RGB":
        return _rgb_array(im, orientation)
    if mode in ("P", "PA"):
        if mode == "P" and "transparency" not in im.info:
            return _rgb_array(im.convert("RGB"), orientation)
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "RGBa", "LA", "La"):
        if mode in ("RGBa", "La"):  # premultiplied: un-premultiply first
            im = im.convert("RGBA" if mode == "RGBa" else "LA")
        return _upright_array(im, orientation, lambda band: _over_white(
            band[..., :3] if band.shape[2] == 4 else _gray3(band[..., 0]), band[..., -1], 255.0))
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        # 16-bit grey (Pillow opens 16-bit PNG/TIFF grey as I;16)
        return _gray3(_to_8bit(_orient_array(np.asarray(im), orientation), 65535.0))
    if mode == "I":
        # 32-bit integer grey (a TIFF): no conventional range, so the data's own: 0..255 values
        # read as 8-bit (scaled as 16-bit they came out almost black), 0..65535 as 16-bit
        arr = _orient_array(np.clip(np.asarray(im, dtype=np.float64), 0, None), orientation)
        top = float(arr.max(initial=0.0))
        return _gray3(_to_8bit(arr, 255.0 if top <= 255 else 65535.0 if top <= 65535 else top))
    if mode == "F":
        arr = _orient_array(np.nan_to_num(np.asarray(im, dtype=np.float32)), orientation)
        # Float images are either 0..1 or 0..255 by convention; pick by the data range.
        scale = 255.0 if arr.max(initial=0.0) <= 1.0 else 1.0
        return _gray3(np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8))
    if mode == "CMYK":
        return _rgb_array(_cmyk_to_rgb(im), orientation)
    if mode in ("1", "L"):
        return _gray3(_orient_array(np.asarray(im.convert("L"), dtype=np.uint8), orientation))
    return _rgb_array(im.convert("RGB"), orientation)


def load_image(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read a photo as an upright ``uint8 (H, W, 3)`` RGB array.

    Handles JPEG, PNG, WebP, BMP, TIFF (and other formats Pillow reads; the first frame of
    animations); grey, palette, alpha (composited over white), 16-bit and CMYK images are
    converted. Images above ``max_pixels`` are refused from their header, before decoding.
    Raises ImageError naming the file for every failure. A photo that is to be exported too:
    :func:`open_photo` (one decode for the pixels and the :class:`Source`).
    """
    p = Path(path)
    _check_readable(p)
    im = _open(p, max_pixels)
    try:
        return _decode_photo(p, im, max_pixels)[0]
    finally:
        im.close()


def _load(im: Image.Image) -> None:
    """Pillow's decode of ``im`` (im.load()). A TIFF that its EXIF orientation turns sideways
    (5-8) is read without Pillow's memory map of the file, which took the stored rows at the
    turned size: an uncompressed 8-bit grey, palette, RGBA or CMYK TIFF came out garbled, in its
    stored shape (Pillow maps the file only where the image has no load_seek of its own)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        if im.format == "TIFF" and im.tile and getattr(im, "fp", None) is not None \
                and _orientation(im) in (5, 6, 7, 8):
            im.load_seek = im.fp.seek
        im.load()


def _decode_photo(p: Path, im: Image.Image, max_pixels: int | None) -> tuple:
    """load_image's work on the opened ``im``: (its RGB array, a 16-bit image's OpenCV decode as
    stored, which read_source's work takes too, or None)."""
    stored = None
    try:
        if _sixteen(im):
            stored = _decode_16bit(p, im)
            rgb = _rgb_of_16bit(stored, im)
        else:
            _load(im)
            # turned as ImageOps.exif_transpose turns it, but band by band into the array: the
            # Pillow image turned held 4 more bytes a pixel (a 100 MP photo: 8 bytes a pixel
            # at once, 760 MB, where the copy into the array peaks at 7)
            rgb = _pil_to_rgb(im, _orientation(im))
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(_bomb_message(p, exc, max_pixels)) from None
    except OSError as exc:
        msg = str(exc)
        if _cut_off(exc):
            raise ImageError(f"{p}: cannot read image: the file is truncated or corrupt") from None
        raise ImageError(f"{p}: cannot read image: corrupt or unsupported data "
                         f"({msg or os_reason(exc)})") from None
    except (SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise ImageError(f"{p}: cannot read image: corrupt data ({exc})") from None
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageError(f"{p}: cannot read image: unsupported pixel layout {rgb.shape}")
    return np.ascontiguousarray(rgb, dtype=np.uint8), stored


def check_header(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
    """ImageError unless ``path``'s header is a readable image within ``max_pixels`` (what
    :func:`load_image` refuses before decoding), without decoding its pixels."""
    p = Path(path)
    _check_readable(p)
    _open(p, max_pixels).close()


def read_metadata(path: str | os.PathLike, exif: bool = True) -> tuple:
    """(EXIF, ICC profile) of ``path`` from one opening of its header, as :func:`read_exif` and
    :func:`read_icc_profile` return them (``exif=False``: None for the EXIF, unread)."""
    source = read_source(path, exif=exif, alpha=False, depth=False)
    # a grey profile goes into grey exports only: load_image's pixels are RGB
    return source.exif, (source.icc if source.icc and source.icc[16:20] == b"RGB " else None)


def read_exif(path: str | os.PathLike) -> bytes | None:
    """Raw EXIF block of ``path`` (``b"Exif\\0\\0..."``) ready to re-embed, or None if it has none.

    The orientation tag is reset to 1 because :func:`load_image` already returns upright pixels;
    EXIF that Pillow cannot parse is dropped (None) rather than blocking a save.
    """
    return read_metadata(path)[0]


def read_icc_profile(path: str | os.PathLike) -> bytes | None:
    """The ICC colour profile of ``path`` when the pixels :func:`load_image` returns are still in
    its colour space (an RGB profile on an RGB, RGBA or palette image), else None.

    A phone's Display P3 or a camera's Adobe RGB photo keeps its colours only if its export
    carries the profile: without one, viewers take the numbers as sRGB and the whole photo
    looks duller. CMYK and grey images are converted to RGB on loading, so their profiles no
    longer apply and are not returned.
    """
    return read_metadata(path, exif=False)[1]


@dataclass
class Source:
    """What an export of a photo keeps of its source besides the pixels load_image returns."""

    exif: Optional[bytes] = None
    icc: Optional[bytes] = None
    gray: bool = False                    # no colour: exported as grey (the edit's luminance)
    alpha: Optional[np.ndarray] = None    # upright uint8 (H, W) transparency; None when opaque
    lost: tuple = ()                      # what no export keeps (more than 8 bits, later pages/frames)
    # the straight (not over white) colour of the pixels where alpha < 255, (N, 3) in row order:
    # compositing over white and back is not exact (up to 105 levels off where alpha < 16)
    color: Optional[np.ndarray] = None
    # a 16-bit source's: those pixels as load_image composited them (from 16 bits, which the 8-bit
    # colour and alpha above do not reproduce); None where recomputing them is exact
    composite: Optional[np.ndarray] = None
    # a 16-bit PNG's or TIFF's own pixels, upright uint16 (H, W, C): C = 1 grey, 2 grey and
    # alpha, 3 RGB, 4 RGBA; a PNG or TIFF export writes them, plus the edit (see _deep_bands)
    deep: Optional[np.ndarray] = None
    xmp: Optional[bytes] = None
    iptc: Optional[bytes] = None          # IPTC-NAA records (b"" when present but unreadable)
    text: dict = field(default_factory=dict)   # a PNG's text chunks (Author, Copyright, …)
    dpi: Optional[tuple] = None           # resolution: without it a 300 dpi scan prints 4x larger
    lossless: bool = False                # a lossless WebP: a WebP export stays lossless

    def without_metadata(self) -> "Source":
        """This source less what can say who, where and when (EXIF, XMP, IPTC, PNG text); the
        colour profile, greyness and transparency stay (they say what the pixels mean)."""
        return replace(self, exif=None, xmp=None, iptc=None, text={})


def read_source(path: str | os.PathLike, exif: bool = True, alpha: bool = True, depth: bool = True) -> Source:
    """The :class:`Source` of ``path`` from one opening of its header (the EXIF as :func:`read_exif`
    returns it, or None with ``exif=False``, which also leaves out XMP, IPTC and text; the colour
    profile, an RGB one or a grey photo's grey one). The alpha plane costs a decode of the pixels:
    ``alpha=False`` leaves it None. A 16-bit PNG's or TIFF's pixels are kept (Source.deep, a decode
    and 2 bytes a value) unless ``depth=False`` or ``alpha=False``. With the photo's pixels as
    well: :func:`open_photo` (one decode for both)."""
    p = Path(path)
    _check_readable(p)
    im = _open(p, None)
    try:
        return _source_of(p, im, exif, alpha, depth)
    finally:
        im.close()


def open_photo(path: str | os.PathLike, exif: bool = True, alpha: bool = True, depth: bool = True,
               max_pixels: int | None = DEFAULT_MAX_PIXELS, source_required: bool = True) -> tuple:
    """(rgb, source): :func:`load_image`'s array and :func:`read_source`'s :class:`Source` of
    ``path`` (``exif``, ``alpha``, ``depth`` as read_source takes them), the very same, from one
    decode of its pixels: what opens a photo to edit and export (the window, `edit`, batch).
    Nothing of the decode is held after: the Source holds a 16-bit photo's own values only with
    ``depth`` (Source.deep). ``source_required=False``: a Source that cannot be read is None,
    the photo opens all the same. ImageError naming the file, as those two raise it."""
    p = Path(path)
    _check_readable(p)
    im = _open(p, max_pixels)
    try:
        header = (im.format, im.mode, im.size)
        rgb, stored = _decode_photo(p, im, max_pixels)
        try:
            # the metadata from an opening of its own, as read_source reads it (Pillow's decode of
            # a TIFF turns it and drops its Orientation tag; a PNG's chunks after the pixels are
            # read without a decode, _png_late), where read_source would not decode the image itself
            head = _open(p, None)
            try:
                same = (head.format, head.mode, head.size) == header   # not a file replaced meanwhile
                source = _source_of(p, head, exif, alpha, depth, stored if same else None, im if same else None)
            finally:
                head.close()
        except ImageError:
            if source_required:
                raise
            source = None
    finally:
        im.close()
    return rgb, source


def _source_of(p: Path, im: Image.Image, exif: bool, alpha: bool, depth: bool,
               stored: Optional[np.ndarray] = None, decoded: Optional[Image.Image] = None) -> Source:
    """read_source's work on the opened header ``im``. open_photo's decodes, which it takes
    instead of decoding again: ``stored``, a 16-bit image's OpenCV decode (_decode_16bit);
    ``decoded``, the image decoded by Pillow (the metadata is then read from it, as read_source
    reads it from the image it decoded for the alpha plane)."""
    try:
        mode = im.mode
        lost = []
        if mode in ("I", "F") or mode.startswith("I;16") or ";16" in _rawmode(im):
            lost.append(_DEPTH_NOTE)
        if getattr(im, "n_frames", 1) > 1 and im.format == "TIFF":
            lost.append("a multi-page TIFF: only its first page is written")
        elif getattr(im, "is_animated", False) and im.format != "MPO":
            lost.append("an animation: only its first frame is written")
        # a 16-bit grey PNG with alpha opens as RGBA (raw mode LA;16B): it is grey
        gray = mode in _GRAY_MODES or mode.startswith("I;16") or _rawmode(im).startswith("LA;16")
        deep_kind = _deep_kind(im)
        sixteen = _is_16bit_color(im) or deep_kind
        # one decode of a 16-bit file for its alpha plane and its kept pixels
        if not alpha:
            stored = None
        elif stored is None and depth and deep_kind:
            stored = _cv2_decode_stored(p, im)
        plane = color = composite = None
        if alpha and (mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in im.info):
            if decoded is not None and not sixteen:
                im = decoded
            plane, color, composite = _load_alpha(p, im, stored)
        deep = _deep_pixels(stored, im, gray) if stored is not None and depth and deep_kind else None
        if deep is not None and plane is not None and deep.shape[2] not in (2, 4):
            # a transparency the 16-bit decode has no channel for (a grey PNG's tRNS key): the
            # 8-bit export keeps it (with the note on the bits), the 16-bit one came out opaque
            deep = None
        stored = None
        return Source(_exif_block(im) if exif else None, _profile(im, gray), gray, plane, tuple(lost),
                      color=color, composite=composite, deep=deep, xmp=_xmp(im) if exif else None,
                      iptc=_iptc(im) if exif else None,
                      text=_png_text(p, im) if exif else {}, dpi=_dpi(im),
                      lossless=im.format == "WEBP" and _webp_lossless(p))
    except ImageError:
        raise
    except Exception as exc:   # e.g. a truncated alpha plane: one line naming the file, as load_image
        why = os_reason(exc) if isinstance(exc, OSError) else exc
        raise ImageError(f"{p}: cannot read image: corrupt data ({why})") from None


def keeps_depth(path: str | os.PathLike) -> bool:
    """Whether an export to ``path`` (by its suffix) writes a 16-bit source's 16 bits: where it
    does not, read_source(depth=False) spares their decode and memory."""
    return SAVE_FORMATS.get(Path(path).suffix.lower()) in _DEEP_FORMATS


def _deep_kind(im: Image.Image) -> bool:
    """Whether ``im`` is a 16-bit PNG or TIFF whose pixels Source.deep keeps: RGB, RGBA, grey
    and alpha, grey (load_image's 8 bits are those 16 scaled, which the export relies on)."""
    return im.format in ("PNG", "TIFF") and (_is_16bit_color(im) or im.mode.startswith("I;16"))


def deep_bytes(im: Image.Image) -> int:
    """The bytes Source.deep holds for the opened image ``im`` (from its header): 0 unless 16-bit."""
    if not _deep_kind(im):
        return 0
    w, h = im.size
    channels = 1 if im.mode.startswith("I;16") else 2 if _rawmode(im).startswith("LA") else len(im.getbands())
    return 2 * w * h * channels


def _deep_pixels(stored: np.ndarray, im: Image.Image, gray: bool) -> Optional[np.ndarray]:
    """Source.deep of OpenCV's decode ``stored`` of ``im`` (BGR order, as stored), upright;
    None where it is not what _deep_kind expects."""
    if stored.dtype != np.uint16 or stored.ndim not in (2, 3):
        return None
    if stored.ndim == 2:
        arr = stored[..., None]
    elif stored.shape[2] == 3:
        arr = stored[..., ::-1]
    elif stored.shape[2] == 4:   # OpenCV gives grey and alpha as BGRA
        arr = stored[..., [0, 3]] if gray else stored[..., [2, 1, 0, 3]]
    else:
        return None
    arr = np.ascontiguousarray(_orient_array(arr, _orientation(im)))
    w, h = im.size
    return arr if arr.shape[:2] in ((h, w), (w, h)) else None


def _load_alpha(p: Path, im: Image.Image, stored: np.ndarray | None = None) -> tuple:
    """(the upright 8-bit alpha plane, the straight colour where it is below 255 as Source.color,
    Source.composite) of an image with transparency; (None, None, None) when fully opaque.
    ``stored``: a 16-bit image's decode (_cv2_decode_stored), where the caller has it."""
    composite = None
    if _sixteen(im):
        arr = _cv2_decode_stored(p, im) if stored is None else stored
        arr = arr if arr is None else _key_alpha(arr, im)
        if arr is None or arr.ndim != 3 or arr.shape[2] not in (2, 4):
            return None, None, None
        top = 65535.0 if arr.dtype == np.uint16 else 255.0
        orientation = _orientation(im)
        a = _orient_array(_to_8bit(arr[..., -1], top), orientation)
        if a.min(initial=255) == 255:
            return None, None, None
        rgb16 = _gray3(arr[..., 0]) if arr.shape[2] == 2 else arr[..., 2::-1]
        rgb = _orient_array(_to_8bit(rgb16, top), orientation)
        composite = np.ascontiguousarray(_orient_array(_over_white(rgb16, arr[..., -1], top), orientation)[a < 255])
    else:
        _load(im)
        # read band by band, turned as ImageOps.exif_transpose turns it (see _upright_bands): the
        # whole image turned, converted and through tobytes() held 20 bytes a pixel
        orientation = _orientation(im)
        if im.mode not in ("RGBA", "LA"):
            im = im.convert("RGBA")
        w, h = im.size
        a = np.empty((w, h) if orientation in (5, 6, 7, 8) else (h, w), np.uint8)
        count = 0
        for y, band in _upright_bands(im, orientation):
            a[y:y + len(band)] = band[..., -1]
            count += int(np.count_nonzero(band[..., -1] < 255))
        if count == 0:
            return None, None, None
        # the colour where alpha < 255 in the upright rows' order, read again straight into its place
        color = np.empty((count, 3), np.uint8)
        at = 0
        for y, band in _upright_bands(im, orientation):
            see = band[..., -1] < 255
            n = int(np.count_nonzero(see))
            color[at:at + n] = band[..., :3][see] if band.shape[2] == 4 else band[..., 0][see][:, None]
            at += n
        return a, color, composite
    return np.ascontiguousarray(a), np.ascontiguousarray(rgb[a < 255]), composite


def _xmp(im) -> Optional[bytes]:
    xmp = im.info.get("xmp")
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    return xmp if isinstance(xmp, bytes) and xmp.strip(b"\0 \t\r\n") else None


def _iptc(im) -> Optional[bytes]:
    """A JPEG's (Photoshop APP13) or a TIFF's IPTC records; b"" where there are some in a form
    that cannot be written back, None where there are none."""
    try:
        data = (im.info.get("photoshop") or {}).get(0x0404)
        if data is None and im.format == "TIFF":
            data = im.tag_v2.get(33723)
            if data is None and 34377 in im.tag_v2:
                data = im.get_photoshop_blocks().get(0x0404, {}).get("data")
    except Exception:
        return None
    if data is None:
        return None
    # typed LONG, as Photoshop writes it, Pillow gives its first number only: b"", unreadable
    return bytes(data) if isinstance(data, (bytes, bytearray)) and data else b""


# Text chunks that repeat what is carried on its own (ImageMagick's raw EXIF/XMP profiles): the old
# copy would keep the old orientation and override the written EXIF in some viewers.
_PNG_TEXT_SKIP = {"XML:com.adobe.xmp", "Raw profile type exif", "Raw profile type APP1", "Raw profile type xmp"}


def _png_text(p: Path, im) -> dict:
    """A PNG's text chunks ({key: str or iTXt}): as Pillow's decode gives them (im.text) where
    some follow the pixels (read from the file, _png_late), else those of its header."""
    if im.format != "PNG":
        return {}
    text = {k: v for k, v in im.info.items() if isinstance(v, str)}
    try:
        late = _png_late(p, im)
        if late.text_after:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                text = dict(late.text if late.text is not None else im.text)
    except Exception:   # a damaged chunk after the pixels: keep what the header gave
        pass
    return {k: v for k, v in text.items() if k not in _PNG_TEXT_SKIP}


_PNG_PIXELS = (b"IDAT", b"fdAT")   # an image's data, an animation frame's
_PNG_TEXT = (b"tEXt", b"zTXt", b"iTXt")
_is_cid = getattr(PngImagePlugin, "is_cid", re.compile(rb"\w\w\w\w").match)


@dataclass
class _PngLate:
    """What follows a PNG's pixels, as _png_late read it."""

    text_after: bool = False          # a text chunk follows the pixels
    read: bool = False                # the chunks after the pixels are in im.info (or none is wanted)
    text: Optional[dict] = None       # with text_after and read: im.text as Pillow's decode gives it


def _png_late(p: Path, im) -> _PngLate:
    """Read the chunks after the undecoded PNG ``im``'s pixels (of the file ``p``) as Pillow's
    decode reads them (PngImageFile.load_end: EXIF, text, XMP, ...; into im.info), from their own
    bytes, without the decode: where an eXIf or text chunk follows the pixels (ImageMagick writes
    its date:create text there), Pillow's getexif and text decoded the whole image to reach them.
    Once per image. Not read (``read`` False: Pillow's decode reads them) where ``im`` is decoded
    already (its info is whole) or its chunks do not run whole to IEND (a damaged file)."""
    late = getattr(im, "_fader_png_late", None)
    if late is not None:
        return late
    chunks, whole = _png_chunks(p)
    first = next((i for i, c in enumerate(chunks) if c[0] in _PNG_PIXELS), len(chunks))
    after = [c for c in chunks[first:] if c[0] not in _PNG_PIXELS]
    late = _PngLate(text_after=any(c[0] in _PNG_TEXT for c in after))
    stream = getattr(im, "png", None)
    if not whole or not im.tile or not (hasattr(stream, "call") and hasattr(stream, "im_text")):
        pass   # (a Pillow whose reader is not as read here: its decode reads them, as before)
    elif not any(c[0] in _PNG_TEXT or c[0] == b"eXIf" for c in after):
        late.read = True      # nothing Pillow's getexif or text would decode the image for
    else:
        # a copy of Pillow's own chunk reader (the header's mode, palette, ...) on a file of its
        # own, sharing its info and text: what its decode adds to them, load_end's loop as it is
        stream = copy.copy(stream)
        with open(p, "rb") as f:
            stream.fp = f
            for kind, at, n in after:
                if not _is_cid(kind) and not ImageFile.LOAD_TRUNCATED_IMAGES:
                    break   # Pillow's reader stops at a chunk name that is not 4 letters or digits
                if kind == b"fcTL" and getattr(im, "is_animated", False):
                    break   # an animation's next frame: the decode of its first stops there
                f.seek(at)
                try:
                    stream.call(kind, at, n)
                except UnicodeDecodeError:
                    break
                except (EOFError, AttributeError):   # a chunk Pillow skips, or does not know
                    pass
        late.read, late.text = True, dict(stream.im_text)
    im._fader_png_late = late
    return late


def _dpi(im) -> Optional[tuple]:
    try:
        if im.format == "TIFF" and 282 not in im.tag_v2:
            return None    # Pillow says (1, 1) for a TIFF without any resolution: not a real one
        x, y = (float(v) for v in im.info.get("dpi") or ())
    except (TypeError, ValueError):
        return None
    if not (0 < x < 1e6 and 0 < y < 1e6):
        return None
    # a PNG stores dots per metre: 300 dpi reads back as 299.9994
    return tuple(round(v) if abs(v - round(v)) < 0.01 else v for v in (x, y))


def _webp_lossless(p: Path) -> bool:
    """Whether the WebP ``p``'s (first) image is lossless (a VP8L chunk; VP8 is lossy)."""
    try:
        with open(p, "rb") as f:
            head = f.read(12)
            if head[:4] != b"RIFF" or head[8:12] != b"WEBP":
                return False
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return False
                kind, n = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if kind in (b"VP8L", b"VP8 "):
                    return kind == b"VP8L"
                if kind == b"ANMF":    # an animation frame: 16 bytes of placement, then its image
                    frame = f.read(min(n, 24))
                    return frame[16:20] == b"VP8L"
                f.seek(n + (n & 1), 1)
    except (OSError, struct.error):
        return False


def gray_rgb(rgb: np.ndarray) -> np.ndarray:
    """The luminance of ``rgb`` in three equal channels, exactly as a grey export writes it (Pillow's
    ITU-R 601 "L"): what the window shows of an edited grey photo, so the preview is the export."""
    out = np.empty(rgb.shape[:2] + (3,), np.uint8)
    rows = _band_rows(rgb)
    for y in range(0, len(rgb), rows):
        out[y:y + rows] = _luma(rgb[y:y + rows])[..., None]
    return out


def _luma(rgb: np.ndarray) -> np.ndarray:
    """Pillow's "L" of a band of ``rgb`` (per pixel: a band's is the whole image's, without its
    4-byte-a-pixel Pillow copy)."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb, np.uint8), "RGB").convert("L"))


def export_photo(source_path, path, rgb: np.ndarray, source: Source, quality: int = 95,
                 unchanged: bool = False, replace: bool = True) -> tuple:
    """The one export of a whole photo (`edit`, `batch`, the window): ``rgb`` (load_image's pixels
    or an edit of them) written as :func:`save_image` does, grey when the source is, with the
    source's transparency where the format has an alpha channel; unchanged, the source file itself
    where ``path`` has its format (:func:`save_unchanged`). Returns (copied, notes): notes say, one
    short phrase each, what the output could not keep (none for a copy).

    Besides EXIF and the colour profile, an export keeps the source's XMP (JPEG, PNG, WebP, TIFF),
    IPTC (TIFF), PNG text chunks (PNG) and resolution (all but WebP); a lossless WebP stays
    lossless in WebP. ``replace=False``: a file that appeared at ``path`` since the caller
    checked is never replaced (ImageError)."""
    fmt = SAVE_FORMATS.get(Path(path).suffix.lower())
    if source.deep is not None and (fmt not in _DEEP_FORMATS or source.deep.shape[:2] != np.shape(rgb)[:2]):
        source = _replaced(source, deep=None)   # written with 8 bits, and noted
    keep = dict(quality=quality, exif=source.exif, icc_profile=source.icc, gray=source.gray,
                alpha=source.alpha, color=source.color, composite=source.composite, lossless=source.lossless and fmt == "WEBP",
                xmp=source.xmp, iptc=source.iptc, text=source.text, dpi=source.dpi, deep=source.deep, replace=replace)
    if unchanged and source_path is not None:
        if save_unchanged(source_path, path, rgb, **keep):
            return True, []
    else:
        save_image(path, rgb, **keep)
    return False, export_notes(fmt, source)


def format_name(fmt: str) -> str:
    """A Pillow format name as people write it ("WEBP": "WebP")."""
    return {"WEBP": "WebP"}.get(fmt, fmt)


def export_notes(fmt: str, source: Source) -> list:
    """What an export in ``fmt`` of ``source`` (one that is not a copy of its file) cannot keep,
    one short phrase each: what the format cannot hold, then what no export keeps."""
    name = format_name(fmt)
    out = [f"transparency dropped ({name} has none: transparent parts are white)"] \
        if source.alpha is not None and fmt not in _ALPHA_FORMATS else []
    cannot = f"a {name} export cannot keep it"
    exif_note = _fit_exif(fmt, source.exif)[1]
    if source.exif and fmt not in EXIF_FORMATS:
        exif_note = f"EXIF metadata dropped ({cannot})"
    elif source.exif and fmt == "TIFF":
        exif_note = _tiff_exif_note(source.exif)
    out += [exif_note] if exif_note else []
    if source.icc and not _icc_fits(fmt, source.icc, source.gray):
        out.append("grey colour profile dropped (WebP stores grey as colour)" if fmt == "WEBP"
                   else f"colour profile dropped ({cannot})")
    if source.xmp and not _xmp_fits(fmt, source.xmp):
        out.append(f"XMP metadata dropped ({cannot})" if fmt != "JPEG"
                   else f"XMP metadata dropped ({len(source.xmp) // 1024} KB, over JPEG's 64 KB limit)")
    if source.iptc == b"":   # e.g. a TIFF's IPTC tag typed LONG, as Photoshop writes it
        out.append("IPTC metadata dropped (it is stored in a form that cannot be read back)")
    elif source.iptc is not None and fmt != "TIFF":
        out.append(f"IPTC metadata dropped ({cannot})")
    if source.text and fmt != "PNG":
        keys = list(source.text)
        out.append(f"PNG text ({', '.join(keys[:3])}{', …' if len(keys) > 3 else ''}) dropped ({cannot})")
    if source.dpi and "dpi" not in _KEEPS.get(fmt, ()) and not _exif_has(source.exif, 0x011A):
        out.append(f"resolution ({source.dpi[0]:g} dpi) dropped ({cannot})")
    # a 16-bit source's PNG and TIFF exports keep its 16 bits (save_image's deep)
    kept = source.deep is not None and fmt in _DEEP_FORMATS
    return out + [x for x in source.lost if not (kept and x == _DEPTH_NOTE)]


def _exif_has(exif: bytes | None, tag: int) -> bool:
    try:
        e = Image.Exif()
        e.load(exif)
        return tag in e
    except Exception:
        return False


def _tiff_exif_note(exif: bytes) -> str | None:
    """The note for what _tiff_exif leaves out: the Exif and GPS sub-IFDs."""
    try:
        e = Image.Exif()
        e.load(exif)
        what = (["camera settings (exposure, lens, date taken)"] if e.get_ifd(0x8769) else []) + (
            ["GPS location"] if e.get_ifd(0x8825) else [])
    except Exception:
        return None
    return f"EXIF {' and '.join(what)} dropped (a TIFF export keeps only the base EXIF tags)" if what else None


def unchanged_wording(path, copied: bool, source: Source | None = None) -> str:
    """How an unedited photo was written to ``path``, for notes and reports: "copied unchanged"
    (byte for byte), "pixels unchanged, converted to PNG" (lossless) or "converted to JPEG
    (re-compressed)"."""
    fmt = SAVE_FORMATS.get(Path(path).suffix.lower(), "?")
    if copied:
        return "copied unchanged"
    if fmt in LOSSY_FORMATS and not (fmt == "WEBP" and source is not None and source.lossless):
        return f"converted to {fmt} (re-compressed)"
    return f"pixels unchanged, converted to {fmt}"


def _exif_block(im) -> bytes | None:
    try:
        exif = _getexif(im)
        if not exif:
            return None
        if _ORIENTATION_TAG in exif:
            exif[_ORIENTATION_TAG] = 1
        # a TIFF's XMP and IPTC tags travel as Source.xmp and .iptc, where each format keeps them
        own = (700, 33723) if im.format == "TIFF" else ()
        for tag in _TIFF_LAYOUT_TAGS.union(own).intersection(exif):
            del exif[tag]
        if not exif:
            return None
        data = exif.tobytes()
    except Exception:
        return None
    return data if len(data) > 6 else None


def _profile(im, gray: bool) -> bytes | None:
    """The ICC profile that still describes the exported pixels: an RGB one on a colour image, a
    grey one on a grey image (exported grey); None for CMYK, Lab or mismatched profiles."""
    try:
        icc = im.info.get("icc_profile")
        mode = im.mode
    except Exception:
        return None
    if not isinstance(icc, bytes) or not 128 <= len(icc) <= _MAX_ICC_BYTES:
        return None
    # ICC header: bytes 16..19 name the data colour space of the profile
    if icc[16:20] == b"RGB " and mode in ("RGB", "RGBA", "RGBa", "RGBX", "P", "PA"):
        return icc
    return icc if icc[16:20] == b"GRAY" and gray else None


# --------------------------------------------------------------------------------------------
# saving
# --------------------------------------------------------------------------------------------

def _tiff_exif(exif: bytes) -> bytes | None:
    """The base-IFD tags of an EXIF block, which libtiff can write into a TIFF (its sub-IFD
    pointers make it fail with "Error setting from dictionary")."""
    try:
        e = Image.Exif()
        e.load(exif)
        for tag in _IFD_POINTER_TAGS:
            e.pop(tag, None)
        data = e.tobytes()
    except Exception:
        return None
    return data if len(e) else None


def _tiff_exif_tags(exif: bytes) -> list:
    """(tag, value) of the base-IFD tags _tiff_exif keeps, as Pillow reads them from the block."""
    data = _tiff_exif(exif)
    if not data:
        return []
    try:
        e = Image.Exif()
        e.load(data)
        return list(e.items())
    except Exception:
        return []   # metadata never stops an export


def _fit_exif(fmt: str, exif: bytes | None) -> tuple:
    """(the EXIF to write in ``fmt``, a note on what was dropped or None). A JPEG holds at most
    64 KB of it: a bigger block loses its bulky optional parts, then, if still too big, goes
    whole; metadata never stops an export."""
    if not exif or fmt != "JPEG" or len(exif) <= _JPEG_MAX_EXIF:
        return exif, None
    try:
        e = Image.Exif()
        e.load(exif)
        for ifd, tag in _BULKY_EXIF:
            (e.get_ifd(ifd) if ifd else e).pop(tag, None)
        data = e.tobytes()
        if len(data) <= _JPEG_MAX_EXIF:
            return data, "EXIF maker notes dropped (over JPEG's 64 KB limit)"
    except Exception:
        pass
    return None, f"EXIF metadata dropped ({len(exif) // 1024} KB, over JPEG's 64 KB limit)"


# What each format's export keeps besides EXIF and the colour profile (what Pillow can write).
_KEEPS = {"JPEG": {"xmp", "dpi"}, "PNG": {"xmp", "dpi", "text"}, "WEBP": {"xmp"},
          "TIFF": {"xmp", "dpi", "iptc"}, "BMP": {"dpi"}}
# A JPEG's XMP segment holds at most this much (Pillow refuses more: the export failed).
_JPEG_MAX_XMP = 65533 - 29


def _xmp_fits(fmt: str, xmp: bytes) -> bool:
    return "xmp" in _KEEPS.get(fmt, ()) and not (fmt == "JPEG" and len(xmp) > _JPEG_MAX_XMP)


def _icc_fits(fmt: str, icc: bytes, gray: bool) -> bool:
    """Whether ``icc`` is written: not in BMP; a grey profile only on a grey image (WebP stores
    grey as RGB), an RGB one only on a colour image."""
    if fmt not in EXIF_FORMATS:
        return False
    if icc[16:20] == b"GRAY":
        return gray and fmt != "WEBP"
    return not gray or fmt == "WEBP"


def _save_options(fmt: str, quality: int, exif: bytes | None, icc_profile: bytes | None = None,
                  gray: bool = False, lossless: bool = False, xmp: bytes | None = None,
                  iptc: bytes | None = None, text: dict | None = None, dpi: tuple | None = None) -> dict:
    opts: dict = {}
    keeps = _KEEPS.get(fmt, set())
    if fmt == "JPEG":
        # Full-resolution chroma at high quality: 4:2:0 visibly smears coloured edits. No optimized
        # Huffman tables: they saved 2.5 % (median, 40 photos) but make Pillow encode the whole
        # image in one call that holds Python's lock, which froze the window 0.4 s per 50 MP.
        opts.update(quality=int(quality), subsampling=0 if quality >= 90 else 2)
    elif fmt == "WEBP" and lossless:
        # exact: the colour under fully transparent pixels is kept, as in PNG
        opts.update(lossless=True, exact=True, method=4)
    elif fmt == "WEBP":
        opts.update(quality=int(quality), method=4)
    elif fmt == "PNG":
        opts.update(compress_level=6)
        info = PngImagePlugin.PngInfo()
        for key, value in (text or {}).items():
            if isinstance(value, PngImagePlugin.iTXt):
                info.add_itxt(key, value, value.lang or "", value.tkey or "")
            else:
                info.add_text(key, value)
        if xmp:
            info.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8", "replace"))
        if info.chunks:
            opts["pnginfo"] = info
        xmp = None
    elif fmt == "TIFF":
        opts.update(compression="tiff_lzw")
        # Pillow writes a TIFF's ``exif`` only without a ``tiffinfo`` (given one, it dropped the
        # EXIF: a photo with XMP or IPTC lost its camera, date, ...), so the EXIF's base tags go
        # into the tiffinfo too, each typed as Pillow types it from ``exif``, before XMP and IPTC
        tags = TiffImagePlugin.ImageFileDirectory_v2()
        for tag, value in _tiff_exif_tags(exif) if exif else ():
            tags[tag] = value
        for tag, value in ((700, xmp), (33723, iptc)):
            if value:
                tags[tag] = value
                tags.tagtype[tag] = TiffTags.BYTE if tag == 700 else TiffTags.UNDEFINED
        if len(tags):
            opts["tiffinfo"] = tags
        xmp = exif = None
    exif = _fit_exif(fmt, exif)[0]
    if exif and fmt in EXIF_FORMATS:
        opts["exif"] = exif
    if icc_profile and _icc_fits(fmt, icc_profile, gray):
        opts["icc_profile"] = icc_profile
    if xmp and _xmp_fits(fmt, xmp):
        opts["xmp"] = xmp
    if dpi and "dpi" in keeps:
        opts["dpi"] = dpi
    return opts


# Pillow's libtiff coder encodes a whole TIFF in the first call of its encoder's encode(), which
# holds Python's lock throughout: during a File > Export the window froze 1.4-3 s per 50 MP
# (bench/gui_latency.py --exports tif). The same encoder driven through encode_to_file(), Pillow's
# loop for encoders writing to a file descriptor, runs with the lock released; it does so for
# save_image's TIFFs only (inside _tiff_unlocked), which hand libtiff the file's descriptor as
# Pillow does for any real file: the file is byte for byte the one Pillow writes.
_TIFF_UNLOCKED = threading.local()


class _UnlockedLibTiff:
    """Pillow's libtiff encoder writing to the file's descriptor itself (Pillow passes it one when
    the file object has fileno()), run through ``encode_to_file``, which releases Python's lock
    around the whole encode, where Pillow calls ``encode``, which holds it. libtiff checks each of
    its writes: a failed or short one fails the encode ("encoder error -2")."""

    def __init__(self, encoder, fd: int):
        self._encoder, self._fd = encoder, fd

    def setimage(self, *args):
        return self._encoder.setimage(*args)

    def cleanup(self):
        return self._encoder.cleanup()

    def encode(self, bufsize: int = 65536) -> tuple:
        # (bytes handed back, status, data): writing to a descriptor, libtiff hands back nothing
        return 0, self._encoder.encode_to_file(self._fd, bufsize), b""

    def __getattr__(self, name):
        return getattr(self._encoder, name)


def _libtiff_encoder(mode, *args):
    """Image._getencoder's "libtiff" (registered below): Pillow's own encoder, unlocked inside
    :func:`_tiff_unlocked` where Pillow gives it a descriptor (args: rawmode, fd, filename, tags,
    types); everywhere else exactly Pillow's."""
    encoder = Image.core.libtiff_encoder(mode, *args)
    fd = args[1] if len(args) > 1 else 0
    if getattr(_TIFF_UNLOCKED, "on", False) and isinstance(fd, int) and fd > 0:
        return _UnlockedLibTiff(encoder, fd)
    return encoder


if hasattr(Image.core, "libtiff_encoder") and "libtiff" not in Image.ENCODERS:
    Image.register_encoder("libtiff", _libtiff_encoder)


@contextmanager
def _tiff_unlocked(on: bool = True):
    """Within the block, this thread's libtiff saves to a file with a descriptor release Python's lock."""
    before = getattr(_TIFF_UNLOCKED, "on", False)
    _TIFF_UNLOCKED.on = on
    try:
        yield
    finally:
        _TIFF_UNLOCKED.on = before


# Pillow's WebP writer copies the whole photo into libwebp holding Python's lock (the window froze
# 130-200 ms per 50 MP during an export): core.webp_writer writes the same file with it released.
_WEBP_MAX_SIDE = 16383


def _webp_pixels(arr: np.ndarray, gray: bool, alpha: np.ndarray | None, color: np.ndarray | None = None,
                 composite: np.ndarray | None = None) -> np.ndarray:
    """What Pillow's WebP writer encodes of save_image's image: RGB, grey as three equal
    channels (WebP has no grey; gray_rgb's luminance), RGBA with a transparency (under it the
    colour _uncomposite gives). Made a band of rows at a time: in one piece, the grey conversion
    held Python's lock 80 ms per 20 MP."""
    if not gray and alpha is None:
        return np.ascontiguousarray(arr)
    h, w = arr.shape[:2]
    out = np.empty((h, w, 3 if alpha is None else 4), np.uint8)
    for y, band in _straight_bands(arr, alpha, color, composite):
        out[y:y + len(band), :, :3] = gray_rgb(band) if gray else band
        if alpha is not None:
            out[y:y + len(band), :, 3] = alpha[y:y + len(band)]
    return out


def _save_webp(p: Path, arr: np.ndarray, gray: bool, alpha: np.ndarray | None, color: np.ndarray | None,
               composite: np.ndarray | None, opts: dict, replace: bool) -> bool:
    """Write save_image's WebP through core.webp_writer; False where its libwebp is missing."""
    from core import webp_writer
    lib = webp_writer.libwebp()
    if lib is None:
        return False
    h, w = arr.shape[:2]
    if max(h, w) > _WEBP_MAX_SIDE:
        raise ValueError(f"a WebP image is at most {_WEBP_MAX_SIDE} pixels wide and high, this one is {w}x{h} "
                         "(use PNG, TIFF or JPEG)")
    with webp_writer.encoded(lib, _webp_pixels(arr, gray, alpha, color, composite), opts.get("lossless", False),
                             opts.get("quality", 80), opts.get("method", 4), opts.get("exact", False)) as encoded:
        parts = webp_writer.container(encoded, w, h, opts.get("icc_profile"), opts.get("exif"), opts.get("xmp"))
        with atomic_file(p, replace) as f:
            for part in parts:
                f.write(part)
    return True


def _save_bmp(p: Path, arr: np.ndarray, opts: dict, replace: bool) -> None:
    """Write the BMP Pillow writes of the RGB ``arr`` (BmpImagePlugin._save: its 54-byte header,
    then the rows bottom up as BGR, each padded to 4 bytes), a band of rows at a time: Pillow's
    writer needs its whole image, 4 bytes a pixel (380 MB at 100 MP), besides ``arr``."""
    h, w = arr.shape[:2]
    stride = (w * 3 + 3) & ~3
    ppm = [int(x * 39.3701 + 0.5) for x in opts.get("dpi", (96, 96))]
    size = 54 + stride * h
    if size > 2**32 - 1:
        raise ValueError("File size is too large for the BMP format")
    header = struct.pack("<2sIII", b"BM", size, 0, 54) + struct.pack(
        "<IIIHHIIIIII", 40, w, h, 1, 24, 0, stride * h, ppm[0], ppm[1], 0, 0)
    rows = _band_rows(arr)
    band = np.zeros((rows, stride), np.uint8)   # the padding stays zero
    pixels = band[:, :w * 3].reshape(rows, w, 3)  # a view: its last axis splits in place
    with atomic_file(p, replace) as f:
        f.write(header)
        for y1 in range(h, 0, -rows):
            y0 = max(0, y1 - rows)
            pixels[:y1 - y0] = arr[y0:y1][::-1, :, ::-1]
            f.write(band[:y1 - y0].data)


def _deep_bands(arr: np.ndarray, deep: np.ndarray):
    """Yield (y, band): the 16-bit pixels save_image writes for rows y, y+1, ... of ``deep``
    (Source.deep) edited as ``arr`` (the 8-bit pixels) is, a band at a time: the source's own
    values where ``arr`` is what load_image made of them, elsewhere those plus ``arr``'s change
    (x 257; under a transparency, the change of the straight colour that makes the change over
    white), clipped to 0..65535; the alpha is the source's. A grey source's change is that of
    the luminance its 8-bit export writes."""
    channels = deep.shape[2]
    color_n = 3 if channels >= 3 else 1
    has_alpha = channels in (2, 4)
    rows = _band_rows(deep)
    for y in range(0, len(deep), rows):
        d16 = deep[y:y + rows]
        color = d16[..., :color_n]
        alpha = d16[..., -1] if has_alpha else None
        # what load_image made of these pixels (its very functions: the same 8-bit values)
        made = _to_8bit(color, 65535.0) if alpha is None else _over_white(color, alpha, 65535.0)
        now = arr[y:y + rows] if color_n == 3 else _luma(arr[y:y + rows])[..., None]
        change = now.astype(np.float32) - made
        if alpha is not None:
            # over white, a change of the straight colour shows scaled by the alpha
            a = alpha.astype(np.float32)[..., None] / 65535.0
            change = np.where(a > 0, change / np.maximum(a, 1.0 / 255.0), change)
        # a pixel without change is its own value exactly (float32 holds every 16-bit integer)
        out = np.clip(np.rint(color.astype(np.float32) + change * 257.0), 0, 65535).astype(np.uint16)
        yield y, out if alpha is None else np.concatenate([out, alpha[..., None]], axis=2)


# Pillow's mode whose PNG and TIFF carry save_image's metadata for 1-4 channels, and the PNG
# colour type of 16-bit data with that many channels.
_DEEP_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
_PNG_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}
# A PNG's IDAT chunks are written once this much compressed data has come
_IDAT_BYTES = 1 << 20


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _pillow_chunks(fmt: str, channels: int, opts: dict) -> bytes:
    """A 1x1 image in ``fmt`` of ``channels`` channels as Pillow writes it with ``opts``: where
    the metadata (EXIF, ICC profile, text, XMP, IPTC, resolution) is encoded as for an 8-bit export."""
    buf = io.BytesIO()
    Image.new(_DEEP_MODES[channels], (1, 1)).save(buf, format=fmt, **opts)
    return buf.getvalue()


def _paeth(cur: np.ndarray, up: np.ndarray, bpp: int) -> np.ndarray:
    """PNG's Paeth filter of rows ``cur`` (uint8, one row of bytes each) under rows ``up``."""
    a = np.zeros(cur.shape, np.int16)
    a[:, bpp:] = cur[:, :-bpp]
    b = up.astype(np.int16)
    c = np.zeros(cur.shape, np.int16)
    c[:, bpp:] = up[:, :-bpp]
    pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
    pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    return (cur.astype(np.int16) - pred).astype(np.uint8)


def _save_png16(p: Path, bands, shape: tuple, opts: dict, replace: bool) -> None:
    """Write a 16-bit PNG of ``bands`` ((y, uint16 band) as _deep_bands yields them) of an
    image of ``shape`` (H, W, channels), a band at a time (Pillow writes no 16-bit colour): its
    metadata chunks are those Pillow writes with ``opts``, its rows Paeth-filtered and deflated."""
    h, w, channels = shape
    made = _pillow_chunks("PNG", channels, opts)
    before, after, at, seen = [], [], 8, False
    while at + 8 <= len(made):
        n, kind = struct.unpack(">I4s", made[at:at + 8])
        chunk = made[at:at + 12 + n]
        at += 12 + n
        if kind == b"IDAT":
            seen = True
        elif kind not in (b"IHDR", b"IEND"):
            (after if seen else before).append(chunk)
    ihdr = struct.pack(">IIBBBBB", w, h, 16, _PNG_COLOR_TYPES[channels], 0, 0, 0)
    level = opts.get("compress_level", 6)
    with atomic_file(p, replace) as f:
        f.write(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + b"".join(before))
        deflate = zlib.compressobj(level)
        pending, up = [], np.zeros((1, w * channels * 2), np.uint8)
        for _, band in bands:
            cur = np.ascontiguousarray(band, ">u2").view(np.uint8).reshape(len(band), -1)
            rows = np.empty((len(cur), cur.shape[1] + 1), np.uint8)
            rows[:, 0] = 4   # Paeth
            rows[:, 1:] = _paeth(cur, np.concatenate([up, cur[:-1]]), 2 * channels)
            up = cur[-1:]
            pending.append(deflate.compress(rows.data))
            if sum(map(len, pending)) >= _IDAT_BYTES:
                f.write(_png_chunk(b"IDAT", b"".join(pending)))
                pending = []
        pending.append(deflate.flush())
        f.write(_png_chunk(b"IDAT", b"".join(pending)) + b"".join(after) + _png_chunk(b"IEND", b""))


# The tags of save_image's TIFF that describe its pixels: set by _save_tiff16 for 16 bits
_TIFF_PIXEL_TAGS = _TIFF_LAYOUT_TAGS - {34675}


def _save_tiff16(p: Path, bands, shape: tuple, opts: dict, replace: bool) -> None:
    """Write a 16-bit TIFF of ``bands`` (as _save_png16) a strip per band, deflated with
    horizontal differencing (Pillow writes no 16-bit colour): the other tags (EXIF, ICC profile,
    XMP, IPTC, resolution) are those Pillow writes with ``opts``."""
    h, w, channels = shape
    # a strip per band, of the rows _deep_bands gives a band of this shape (grey with alpha too,
    # before it is widened below: sized for 4 channels, its strips were half its bands, and a
    # photo of more than one strip failed, "the TIFF's tag directory changed size")
    rows = _band_rows(np.empty((1, w, channels), np.uint8))
    if channels == 2:
        # grey with alpha: what Pillow opens of 16 bits is RGBA (nor does OpenCV read grey and
        # alpha in 16 bits), so it is written as such, in three equal channels
        bands, channels = ((y, band[..., [0, 0, 0, 1]]) for y, band in bands), 4
    with Image.open(io.BytesIO(_pillow_chunks("TIFF", channels, opts))) as made:
        tags = made.tag_v2
        ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=b"II")
        for tag in tags:
            if tag not in _TIFF_PIXEL_TAGS:
                ifd[tag] = tags[tag]
                ifd.tagtype[tag] = tags.tagtype[tag]
    strips = (h + rows - 1) // rows
    layout = {256: (w, TiffTags.LONG), 257: (h, TiffTags.LONG), 258: ((16,) * channels, TiffTags.SHORT),
              259: (8, TiffTags.SHORT),   # Adobe deflate
              262: (1 if channels <= 2 else 2, TiffTags.SHORT), 277: (channels, TiffTags.SHORT),
              278: (rows, TiffTags.LONG), 284: (1, TiffTags.SHORT), 317: (2, TiffTags.SHORT),
              339: ((1,) * channels, TiffTags.SHORT)}
    if channels in (2, 4):
        layout[338] = ((2,), TiffTags.SHORT)   # unassociated alpha, as Pillow writes RGBA
    for tag, (value, kind) in layout.items():
        ifd[tag] = value
        ifd.tagtype[tag] = kind

    def directory(offsets, counts) -> bytes:
        # strip offsets counted from the end of the directory (Pillow's tobytes adds it)
        for tag, value in ((273, offsets), (279, counts)):
            ifd[tag] = tuple(value)
            ifd.tagtype[tag] = TiffTags.LONG
        return ifd.tobytes(8)

    size = len(directory([0] * strips, [0] * strips))
    offsets, counts, at = [], [], 0
    with atomic_file(p, replace) as f:
        f.write(b"II*\0" + struct.pack("<I", 8) + bytes(size))
        for _, band in bands:
            # horizontal differencing (predictor 2) of the samples, modulo 2**16
            diff = np.ascontiguousarray(band, "<u2").reshape(len(band), -1)
            diff[:, channels:] -= band.reshape(len(band), -1)[:, :-channels].astype("<u2")
            data = zlib.compress(diff.data, opts.get("compress_level", 6))
            offsets.append(at)
            counts.append(len(data))
            f.write(data)
            at += len(data)
        if 8 + size + at > 2**32 - 1:
            raise ValueError("over 4 GB, too large for a TIFF (use PNG)")
        head = directory(offsets, counts)
        if len(head) != size:   # the directory's size depends on the number of strips only
            raise RuntimeError("the TIFF's tag directory changed size")
        f.seek(8)
        f.write(head)


def _pillow_image(arr: np.ndarray, gray: bool, alpha: np.ndarray | None, color: np.ndarray | None,
                  composite: np.ndarray | None) -> Image.Image:
    """The Pillow image save_image hands its writer: L (grey), LA, RGBA or RGB. The grey and the
    transparent ones are made a band at a time in an array that the image shares (Image.frombuffer
    keeps L and RGBA in the array's own memory): their Pillow copies of an RGB image, 4 bytes a
    pixel, and _uncomposite's whole straight image are not made. An RGB image is Pillow's copy:
    Pillow keeps RGB as 4 bytes a pixel and shares no 3-byte memory, and its encoders (JPEG, PNG,
    TIFF) read the whole image, which no band-by-band feeding can stand for."""
    h, w = arr.shape[:2]
    if gray:
        lum = np.empty((h, w), np.uint8)
        for y, band in _straight_bands(arr, alpha, color, composite):
            lum[y:y + len(band)] = _luma(band)
        image = Image.frombuffer("L", (w, h), lum, "raw", "L", 0, 1)
        if alpha is not None:
            a = Image.frombuffer("L", (w, h), np.ascontiguousarray(alpha, np.uint8), "raw", "L", 0, 1)
            image = Image.merge("LA", (image, a))
        return image
    if alpha is not None:
        rgba = np.empty((h, w, 4), np.uint8)
        for y, band in _straight_bands(arr, alpha, color, composite):
            rgba[y:y + len(band), :, :3] = band
            rgba[y:y + len(band), :, 3] = alpha[y:y + len(band)]
        return Image.frombuffer("RGBA", (w, h), rgba, "raw", "RGBA", 0, 1)
    return Image.fromarray(np.ascontiguousarray(arr), "RGB")


def check_output_folder(p: Path, what: str = "cannot save image") -> None:
    """ImageError naming `p` unless its folder exists and `p` is not a folder itself; a name too
    long for the file system (or a folder that cannot be looked into) is one too, in words."""
    p = Path(p)
    folder = p.parent if str(p.parent) else Path(".")
    try:
        if not folder.is_dir():
            if folder.exists() or any(q.exists() and not q.is_dir() for q in folder.parents):
                raise ImageError(f"{p}: {what}: {folder} is not a folder")
            raise ImageError(f"{p}: {what}: folder {folder} does not exist")
        if p.is_dir():
            raise ImageError(f"{p}: {what}: a folder with that name exists")
    except OSError as exc:   # Path.is_dir() and .exists() raise "[Errno 36] File name too long"
        raise ImageError(f"{p}: {what}: {_path_os_reason(p, exc)}") from None


def _path_limit(p: Path, name: str, default: int) -> int:
    """os.pathconf's ``name`` (PC_NAME_MAX, PC_PATH_MAX) of the nearest folder above ``p`` that
    answers; ``default`` where none does (Windows has no pathconf)."""
    for q in p.parents:
        try:
            return int(os.pathconf(q if str(q) else ".", name))
        except (OSError, ValueError, AttributeError):
            continue
    return default


def _too_long(text: str, limit: int, where: str = "this folder") -> str:
    """"300 characters; this folder allows 255" (bytes where the name is not all ASCII)."""
    size = len(os.fsencode(text))
    return f"{size} {'characters' if size == len(text) else 'bytes'}; {where} allows {limit}"


def _path_os_reason(p: Path, exc: OSError) -> str:
    """os_reason of an OSError met looking at ``p``, where a name too long says which and by how
    much: "the file name is too long (300 characters; this folder allows 255)"."""
    if exc.errno != errno.ENAMETOOLONG:
        return os_reason(exc)
    name_max = _path_limit(p, "PC_NAME_MAX", 255)
    if len(os.fsencode(p.name)) > name_max:
        return f"the file name is too long ({_too_long(p.name, name_max)})"
    for part in p.parent.parts:
        if len(os.fsencode(part)) > name_max:
            return f"a folder name in it is too long ({_too_long(part, name_max, 'the file system')})"
    return f"the path is too long ({_too_long(str(p.absolute()), _path_limit(p, 'PC_PATH_MAX', 4096), 'the system')})"


def check_save_path(path: str | os.PathLike) -> str:
    """The format :func:`save_image` writes to ``path`` (from its suffix); ImageError naming it where
    the suffix is not one of SAVE_FORMATS or its folder is missing, so that a command can refuse a
    bad output before any work."""
    p = Path(path)
    fmt = SAVE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        allowed = ", ".join(SAVE_FORMATS)
        raise ImageError(f"{p}: cannot save image: unsupported file type "
                         f"'{p.suffix or '(none)'}' (use one of {allowed})")
    check_output_folder(p)
    return fmt


def export_suffix(path: str | os.PathLike) -> str:
    """The suffix an export of the photo ``path`` keeps: its own where it can be written, else
    ".jpg" for HEIC and AVIF photos and ".png" for GIFs (read but not written)."""
    suffix = Path(path).suffix
    return suffix if suffix.lower() in SAVE_FORMATS else _READ_ONLY_EXPORT.get(suffix.lower(), ".jpg")


def image_format(path: str | os.PathLike) -> str | None:
    """The format of an image file as written by :func:`save_image` ("JPEG", "PNG", …), from its
    header; None when it cannot be read."""
    try:
        with Image.open(path) as im:
            fmt = im.format
    except Exception:
        return None
    return _SAME_FORMAT.get(fmt, fmt)


def save_image(path: str | os.PathLike, rgb: np.ndarray, quality: int = 95,
               exif: bytes | None = None, icc_profile: bytes | None = None, gray: bool = False,
               alpha: np.ndarray | None = None, color: np.ndarray | None = None,
               composite: np.ndarray | None = None, lossless: bool = False,
               xmp: bytes | None = None, iptc: bytes | None = None, text: dict | None = None,
               dpi: tuple | None = None, deep: np.ndarray | None = None, replace: bool = True) -> None:
    """Write ``rgb`` (uint8 H x W x 3) atomically; the format comes from the suffix.

    Suffixes: .png .jpg .jpeg .webp .bmp .tif .tiff. The image is written to a temporary file in
    the same folder, checked to hold every byte (a full disk is an error, never a truncated file),
    fsync'ed and renamed over ``path``, so ``path`` is either the old file or the complete new
    one. ``exif`` (from :func:`read_exif`) is embedded where the format allows (in TIFF, its base
    tags only), as is ``icc_profile`` (from :func:`read_icc_profile`; not in BMP). ``gray``
    writes the luminance only; ``alpha`` (H x W uint8, the transparency ``rgb`` was composited
    over white with) is written back where the format has an alpha channel, with ``color``
    (Source.color) where a pixel is still the source's (``composite``: as load_image made it, for a
    16-bit source). ``lossless``: a lossless WebP. ``xmp``,
    ``iptc``, ``text`` (PNG text chunks) and ``dpi`` are written where the format keeps them (see
    :func:`export_photo`). ``deep`` (Source.deep, a 16-bit source of ``rgb``'s size): a PNG or
    TIFF is written with 16 bits, the source's own values wherever ``rgb`` is still what
    load_image made of them, else those plus ``rgb``'s change (see _deep_bands); its alpha and
    greyness are the source's. ``replace=False``: a file at ``path`` by the time the image is
    complete is left as it is (ImageError). Raises ImageError naming ``path`` on failure; no
    temporary file is left behind.
    """
    p = Path(path)
    fmt = check_save_path(p)
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or 0 in arr.shape:
        raise ImageError(f"{p}: cannot save image: expected a uint8 H x W x 3 RGB array, "
                         f"got {arr.dtype} {arr.shape}")
    if not 1 <= int(quality) <= 100:
        raise ImageError(f"{p}: cannot save image: quality must be 1..100, got {quality}")

    if alpha is not None and (fmt not in _ALPHA_FORMATS or alpha.shape != arr.shape[:2]):
        alpha = None
    if deep is not None and (fmt not in _DEEP_FORMATS or deep.dtype != np.uint16 or deep.ndim != 3
                             or deep.shape[:2] != arr.shape[:2] or not 1 <= deep.shape[2] <= 4):
        deep = None
    if deep is not None:
        gray = deep.shape[2] <= 2
    opts = _save_options(fmt, int(quality), exif, icc_profile, gray=gray, lossless=lossless, xmp=xmp,
                         iptc=iptc, text=text, dpi=dpi)
    try:
        if deep is not None:
            (_save_png16 if fmt == "PNG" else _save_tiff16)(p, _deep_bands(arr, deep), deep.shape, opts, replace)
            return
        if fmt == "WEBP" and _save_webp(p, arr, gray, alpha, color, composite, opts, replace):
            return
        if fmt == "BMP" and not gray:
            _save_bmp(p, arr, opts, replace)
            return
    except OSError as exc:
        raise ImageError(f"{p}: cannot save image: {os_reason(exc)}") from None
    except (ValueError, RuntimeError) as exc:
        raise ImageError(f"{p}: cannot save image: {exc}") from None
    # grey: ITU-R 601 luminance (a grey pixel stays exactly itself); under a transparency the
    # straight colour (_uncomposite)
    image = _pillow_image(arr, gray, alpha, color, composite)
    unlocked = fmt == "TIFF"   # libtiff writes the file itself with Python's lock released
    try:
        try:
            with atomic_file(p, replace, descriptor=unlocked) as f, _tiff_unlocked(unlocked):
                image.save(f, format=fmt, **opts)
        except OSError as exc:
            if not (unlocked and exc.errno is None and str(exc).startswith("encoder error")):
                raise
            # libtiff names a failed write of its own only "encoder error -2": written again
            # through the checked write(), the failure says why (no space left on device, …)
            with atomic_file(p, replace) as f:
                image.save(f, format=fmt, **opts)
    except OSError as exc:
        raise ImageError(f"{p}: cannot save image: {os_reason(exc)}") from None
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:  # an encoder's refusal
        raise ImageError(f"{p}: cannot save image: {exc}") from None


def as_exported(pixels: np.ndarray, alpha: np.ndarray | None = None, gray: bool = False) -> np.ndarray:
    """Rendered pixels (over white, as load_image gives them) as their export looks: a grey photo's
    as its luminance; with ``alpha``, the straight colour the export writes under it (_uncomposite)
    composited over white again, so an edit shows only as far as the alpha lets it through."""
    if alpha is not None:
        pixels = _uncomposite(pixels, alpha, None)
    if gray:
        pixels = gray_rgb(pixels)
    return pixels if alpha is None else _over_white(pixels, alpha, 255.0)


def _uncomposite(arr: np.ndarray, alpha: np.ndarray, color: np.ndarray | None,
                 composite: np.ndarray | None = None) -> np.ndarray:
    """The straight colour to write under ``alpha`` for ``arr`` (composited over white, as
    load_image returns it): the source's own (``color``, Source.color) wherever the pixel is still
    what load_image made of it (``composite``, else recomputed from ``color``), else the white
    taken back out (approximate where alpha is low)."""
    out = np.empty(arr.shape, np.uint8)
    for y, band in _straight_bands(arr, alpha, color, composite):
        out[y:y + len(band)] = band
    return out


def _straight_bands(arr: np.ndarray, alpha: np.ndarray | None, color: np.ndarray | None,
                    composite: np.ndarray | None):
    """Yield (y, band): the colour save_image writes for ``arr``'s rows y, y+1, ..., a band at a
    time: ``arr``'s own, or under ``alpha`` _uncomposite's. Band by band, un-compositing holds a
    band's temporaries: done on the whole photo in float32, it held 16-40 bytes a pixel."""
    rows = _band_rows(arr)
    starts = range(0, len(arr), rows)
    if alpha is None:
        for y in starts:
            yield y, arr[y:y + rows]
        return
    # Source.color lists the pixels under 255 in row order: each band's are the next ones
    counts = [int(np.count_nonzero(alpha[y:y + rows] < 255)) for y in starts]
    if color is not None and len(color) != sum(counts):
        color = None
    if color is None or composite is None or len(composite) != len(color):
        composite = None
    at = 0
    for y, n in zip(starts, counts):
        yield y, _uncomposite_band(arr[y:y + rows], alpha[y:y + rows],
                                   None if color is None else color[at:at + n],
                                   None if composite is None else composite[at:at + n])
        at += n


def _uncomposite_band(arr: np.ndarray, alpha: np.ndarray, color: np.ndarray | None,
                      composite: np.ndarray | None) -> np.ndarray:
    """_uncomposite of a band; ``color`` and ``composite``: the band's own pixels of them."""
    out = (_by_table(_uncomposite_f32, arr, alpha) if arr.dtype == alpha.dtype == np.uint8
           else _uncomposite_f32(arr, alpha))
    if color is not None and len(color):
        see = alpha < 255
        made = composite if composite is not None else _over_white(color, alpha[see], 255.0)
        unedited = (made == arr[see]).all(axis=1)
        part = out[see]
        part[unedited] = color[unedited]
        out[see] = part
    return out


def save_unchanged(source: str | os.PathLike, path: str | os.PathLike, rgb: np.ndarray,
                   quality: int = 95, exif: bytes | None = None,
                   icc_profile: bytes | None = None, replace: bool = True, **pixels) -> bool:
    """Write a photo that was not edited: a byte-for-byte copy of ``source`` when ``path``'s
    suffix names the source's own format (JPEG to .jpg: no second compression), otherwise
    ``rgb`` (the source's pixels) through :func:`save_image` — bit-identical pixels in a lossless
    format. Atomic like save_image (``pixels``: its other options); returns True when the file was copied.
    """
    p = Path(path)
    fmt = SAVE_FORMATS.get(p.suffix.lower())
    if fmt is None or fmt != image_format(source):
        save_image(p, rgb, quality=quality, exif=exif, icc_profile=icc_profile, replace=replace, **pixels)
        return False
    check_output_folder(p)
    try:
        copy_file_atomic(source, p, replace=replace)
    except OSError as exc:
        where = exc.filename if exc.filename and Path(exc.filename) == Path(source) else None
        if where:
            raise ImageError(f"{source}: cannot read image: {os_reason(exc)}") from None
        raise ImageError(f"{p}: cannot save image: {os_reason(exc)}") from None
    return True
