"""WebP files written by the libwebp that Pillow uses, with Python's lock released.

Pillow's WebP writer copies the whole photo into libwebp (an ARGB picture, 4 bytes a pixel)
holding Python's lock: the window froze 130-200 ms per 50 MP during an export (bench/gui_latency.py
--exports webp). core.image_io.save_image calls the same libwebp, the one Pillow's writer is linked
to, through ctypes, which releases the lock for each call: import and encode run with it released.
With the same settings and Pillow's chunk layout around the bitstream (:func:`container`), the file
is byte for byte the one Pillow writes. Where that library cannot be found (or has another version
than Pillow's), :func:`libwebp` is None and Pillow writes the WebP as before: so on Windows, whose
Pillow builds libwebp into its own module (no DLL to load), a WebP export still holds the lock.

The structures mirror libwebp's encode.h (ABI 2); each carries spare room at its end, and libwebp's
own Init functions refuse another major ABI.
"""
from __future__ import annotations

import ctypes
import re
import struct
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import features

_WEBP_ABI = 0x0209   # libwebp checks only the major byte (the layouts below are ABI 2's)
_WEBP_ERRORS = {1: "not enough memory", 2: "not enough memory", 5: "image too large for WebP",
                6: "the image is too complex for a lossy WebP at this size (partition 0 over 512 KB)",
                7: "the image is too complex for a lossy WebP at this size (a partition over 16 MB)",
                8: "the encoded image could not be held in memory", 9: "the WebP would be larger than 4 GB"}


class _WebPConfig(ctypes.Structure):
    """libwebp's WebPConfig (encode.h): 29 ints; only these fields are set here."""
    _fields_ = [("lossless", ctypes.c_int), ("quality", ctypes.c_float), ("method", ctypes.c_int),
                ("_a", ctypes.c_int * 11), ("alpha_quality", ctypes.c_int), ("_b", ctypes.c_int * 9),
                ("exact", ctypes.c_int), ("_c", ctypes.c_int * 4),
                ("_spare", ctypes.c_byte * 256)]   # room should a newer library's be bigger


class _WebPPicture(ctypes.Structure):
    """libwebp's WebPPicture (encode.h)."""
    _fields_ = [("use_argb", ctypes.c_int), ("colorspace", ctypes.c_int), ("width", ctypes.c_int),
                ("height", ctypes.c_int), ("_yuv", ctypes.c_void_p * 3), ("_strides", ctypes.c_int * 2),
                ("_a", ctypes.c_void_p), ("_a_stride", ctypes.c_int), ("_pad1", ctypes.c_uint32 * 2),
                ("_argb", ctypes.c_void_p), ("_argb_stride", ctypes.c_int), ("_pad2", ctypes.c_uint32 * 3),
                ("writer", ctypes.c_void_p), ("custom_ptr", ctypes.c_void_p),
                ("_extra_info_type", ctypes.c_int), ("_extra_info", ctypes.c_void_p),
                ("_stats", ctypes.c_void_p), ("error_code", ctypes.c_int),
                ("_progress_hook", ctypes.c_void_p), ("_user_data", ctypes.c_void_p),
                ("_pad3", ctypes.c_uint32 * 3), ("_pad45", ctypes.c_void_p * 2),
                ("_pad6", ctypes.c_uint32 * 8), ("_memory", ctypes.c_void_p * 4),
                ("_spare", ctypes.c_byte * 256)]


class _WebPMemoryWriter(ctypes.Structure):
    _fields_ = [("mem", ctypes.c_void_p), ("size", ctypes.c_size_t), ("max_size", ctypes.c_size_t),
                ("_pad", ctypes.c_uint32 * 2)]


_LIBWEBP: list = []   # [the library or None], once looked for
_LIBWEBP_NAME = re.compile(r"libwebp(-[0-9a-f]+)?(\.so|\.\d+\.dylib|\.dylib|-\d+\.dll|\.dll)")


def _libwebp_candidates():
    """Paths of the libwebp Pillow's WebP module uses, likeliest first: loaded in this process
    (Linux), bundled beside Pillow (its wheels), the system's."""
    from PIL import _webp   # loads Pillow's libwebp into the process
    try:
        with open("/proc/self/maps") as maps:
            yield from [parts[5].strip() for parts in (line.split(None, 5) for line in maps)
                        if len(parts) == 6 and _LIBWEBP_NAME.match(Path(parts[5].strip()).name)]
    except OSError:
        pass
    pil = Path(_webp.__file__).parent
    for folder in (pil.parent / "pillow.libs", pil / ".dylibs", pil.parent / "Pillow.libs"):
        if folder.is_dir():
            yield from sorted(str(f) for f in folder.iterdir() if _LIBWEBP_NAME.match(f.name))
    import ctypes.util
    # named through a variable: PyInstaller bundles what code names to find_library, and the build
    # host's libwebp is never the version Pillow links to in the bundle (0.45 MB never loaded)
    name = "webp"
    system = ctypes.util.find_library(name)
    if system:
        yield system


def libwebp():
    """The libwebp (ctypes) that writes exactly Pillow's WebP, or None."""
    if _LIBWEBP:
        return _LIBWEBP[0]
    lib = None
    try:
        want = features.version("webp")
        for path in _libwebp_candidates():
            try:
                cand = ctypes.CDLL(path)
                v = cand.WebPGetEncoderVersion()
                if f"{v >> 16}.{(v >> 8) & 255}.{v & 255}" != want:
                    continue
                for fn, args in (("WebPConfigInitInternal", [ctypes.c_void_p, ctypes.c_int, ctypes.c_float, ctypes.c_int]),
                                 ("WebPValidateConfig", [ctypes.c_void_p]),
                                 ("WebPPictureInitInternal", [ctypes.c_void_p, ctypes.c_int]),
                                 ("WebPPictureImportRGB", [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]),
                                 ("WebPPictureImportRGBA", [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]),
                                 ("WebPEncode", [ctypes.c_void_p, ctypes.c_void_p]),
                                 ("WebPPictureFree", [ctypes.c_void_p]),
                                 ("WebPMemoryWriterInit", [ctypes.c_void_p]),
                                 ("WebPMemoryWriterClear", [ctypes.c_void_p])):
                    getattr(cand, fn).argtypes = args
                cand.WebPPictureFree.restype = cand.WebPMemoryWriterInit.restype = None
                cand.WebPMemoryWriterClear.restype = None
                cand.WebPMemoryWrite   # noqa: B018  (the writer; an AttributeError if missing)
                if not cand.WebPPictureInitInternal(ctypes.byref(_WebPPicture()), _WEBP_ABI):
                    continue   # another ABI: these structures may not be its
                lib = cand
                break
            except (OSError, AttributeError):
                continue
    except Exception:   # no WebP in this Pillow, no ctypes: Pillow's own writer
        lib = None
    _LIBWEBP.append(lib)
    return lib


@contextmanager
def encoded(lib, pixels: np.ndarray, lossless: bool, quality: float, method: int, exact: bool):
    """libwebp's WebP file of ``pixels`` (uint8 H x W x 3 RGB or 4 RGBA, C-contiguous) with
    Pillow's settings (WebPEncode in its _webp.c), as a memoryview valid inside the block."""
    config, pic, out = _WebPConfig(), _WebPPicture(), _WebPMemoryWriter()
    if not lib.WebPConfigInitInternal(ctypes.byref(config), 0, 75.0, _WEBP_ABI) or \
            not lib.WebPPictureInitInternal(ctypes.byref(pic), _WEBP_ABI):
        raise RuntimeError("the WebP encoder could not be set up (libwebp version mismatch)")
    config.lossless, config.quality, config.method = int(lossless), float(quality), int(method)
    config.alpha_quality, config.exact = 100, int(exact)
    if not lib.WebPValidateConfig(ctypes.byref(config)):
        raise ValueError(f"invalid WebP settings (quality {quality}, method {method})")
    h, w, channels = pixels.shape
    # Pillow hands libwebp ARGB (use_argb); a lossy encode turns it into YUV, which importing
    # straight to YUV gives identically, without the 4-byte-a-pixel copy
    pic.use_argb, pic.width, pic.height = int(lossless), w, h
    lib.WebPMemoryWriterInit(ctypes.byref(out))
    pic.writer = ctypes.cast(lib.WebPMemoryWrite, ctypes.c_void_p).value
    pic.custom_ptr = ctypes.addressof(out)
    try:
        imported = (lib.WebPPictureImportRGBA if channels == 4 else lib.WebPPictureImportRGB)(
            ctypes.byref(pic), pixels.ctypes.data, w * channels)
        del pixels   # copied into the picture: a grey or transparent photo's own array can go
        if not imported or not lib.WebPEncode(ctypes.byref(config), ctypes.byref(pic)):
            code = pic.error_code if imported else 1
            raise ValueError(_WEBP_ERRORS.get(code, f"the WebP encoder failed (error {code})"))
        yield memoryview((ctypes.c_char * out.size).from_address(out.mem)).cast("B") if out.size else memoryview(b"")
    finally:
        lib.WebPPictureFree(ctypes.byref(pic))
        lib.WebPMemoryWriterClear(ctypes.byref(out))


def container(encoded: memoryview, width: int, height: int, icc: bytes | None = None,
                exif: bytes | None = None, xmp: bytes | None = None) -> list:
    """The WebP file libwebp's mux makes of ``encoded`` (a WebP file) and the metadata, as Pillow
    writes it, in pieces: RIFF header, VP8X (flags, canvas), ICCP, ALPH, VP8/VP8L, EXIF, XMP."""
    image, at = [], 12
    while at + 8 <= len(encoded):
        tag, n = bytes(encoded[at:at + 4]), int.from_bytes(encoded[at + 4:at + 8], "little")
        if tag in (b"ALPH", b"VP8 ", b"VP8L"):
            image.append((tag, encoded[at + 8:at + 8 + n]))
        at += 8 + n + (n & 1)
    if exif and bytes(exif[:6]) == b"Exif\0\0":
        exif = exif[6:]   # WebP's EXIF chunk holds the TIFF data alone (as Pillow writes it)
    chunks = [(b"ICCP", icc)] if icc else []
    chunks += image + [(tag, data) for tag, data in ((b"EXIF", exif), (b"XMP ", xmp)) if data]
    has_alph = any(tag == b"ALPH" for tag, _ in image)
    flags = (0x20 if icc else 0) | (0x10 if has_alph else 0) | (0x08 if exif else 0) | (0x04 if xmp else 0)
    if flags:
        if any(tag == b"VP8L" and len(data) > 4 and data[4] & 0x10 for tag, data in image):
            flags |= 0x10   # a lossless image's own alpha bit
        vp8x = struct.pack("<I", flags) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        chunks.insert(0, (b"VP8X", vp8x))
    parts = []
    for tag, data in chunks:
        parts += [tag + struct.pack("<I", len(data)), data] + ([b"\0"] if len(data) & 1 else [])
    size = 4 + sum(len(part) for part in parts)
    return [b"RIFF" + struct.pack("<I", size) + b"WEBP"] + parts
