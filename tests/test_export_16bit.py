"""A 16-bit photo exported as PNG or TIFF keeps its 16 bits (every front end: `edit`, `batch`, the
window): far from the faces each value is the original's exactly, on an edited face the original
plus the edit, with no slider moved the whole photo is the original, a grey photo stays grey and a
transparency keeps its 16-bit alpha. JPEG (8 bits only) still says what it drops. Before, every
export wrote 8 bits and noted "more than 8 bits per channel, written with 8"."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.image_io import export_photo, load_image, read_source

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DEPTH_NOTE = "more than 8 bits per channel, written with 8"


def _deep(rgb8: np.ndarray, seed: int = 0) -> np.ndarray:
    """16-bit values whose 8-bit reading is ``rgb8`` but whose low bits are their own (noise of up
    to 120/65535): an export that went through 8 bits cannot give them back."""
    noise = np.random.default_rng(seed).integers(-120, 121, rgb8.shape)
    return np.clip(rgb8.astype(np.int64) * 257 + noise, 0, 65535).astype(np.uint16)


def _read16(path: Path) -> np.ndarray:
    """The file as stored, (H, W, C) in RGB(A) order (grey: C = 1)."""
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert arr is not None, path
    if arr.ndim == 2:
        return arr[..., None]
    return arr[..., ::-1] if arr.shape[2] == 3 else arr[..., [2, 1, 0, 3]]


def _far(shape, box) -> np.ndarray:
    """Pixels outside the face box grown by its size on every side (as test_photo_pipeline)."""
    x0, y0, x1, y1 = box
    m = max(x1 - x0, y1 - y0)
    far = np.ones(shape[:2], bool)
    far[max(0, int(y0 - m)):int(np.ceil(y1 + m)), max(0, int(x0 - m)):int(np.ceil(x1 + m))] = False
    assert far.sum() > 10_000
    return far


def _png16(path: Path, arr: np.ndarray) -> None:
    """A 16-bit PNG of ``arr`` (H, W, 2: grey and alpha; 4: RGBA), written by hand: OpenCV writes
    no grey with alpha."""
    h, w, c = arr.shape
    raw = b"".join(b"\0" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, {2: 4, 4: 6}[c], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def engine(tiny_model_path):
    from core.engine import Engine
    from core.model_file import load_model
    return Engine(load_model(tiny_model_path), device="cpu", threads=1)


@pytest.fixture(scope="module")
def deep_portrait(tmp_path_factory, portrait_path):
    """The portrait as a 16-bit PNG: (path, its RGB uint16 values)."""
    rgb16 = _deep(load_image(portrait_path))
    path = tmp_path_factory.mktemp("deep") / "deep.png"
    cv2.imwrite(str(path), rgb16[..., ::-1])
    return path, rgb16


def _edited(engine, src: Path):
    from core.photo_edit import PhotoEdit
    doc = PhotoEdit.open(src, engine)
    doc.set_value("Smiling", 2.0, face=0)
    return doc, doc.render()


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_edit_writes_16_bits_to_png_and_tiff_and_jpeg_still_says_it_drops_them(tmp_path, capsys, deep_portrait,
                                                                               tiny_model_path, engine, suffix):
    from fader_desktop.cli import main
    src, rgb16 = deep_portrait
    out = tmp_path / f"o{suffix}"
    rc = main(["edit", str(src), "-o", str(out), "--model", str(tiny_model_path), "--device", "cpu",
               "--set", "Smiling=2", "--face", "0"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert DEPTH_NOTE not in err, err
    got = _read16(out)
    assert got.dtype == np.uint16 and got.shape == rgb16.shape
    box = _edited(engine, src)[0].faces[0].box
    far = _far(rgb16.shape, box)
    np.testing.assert_array_equal(got[far], rgb16[far])   # far from the face: the original, exactly
    x0, y0, x1, y1 = (int(v) for v in box)
    assert (got[y0:y1, x0:x1] != rgb16[y0:y1, x0:x1]).any(axis=2).mean() > 0.3, "the face is edited"
    rc = main(["edit", str(src), "-o", str(tmp_path / "o.jpg"), "--model", str(tiny_model_path), "--device", "cpu",
               "--set", "Smiling=2", "--face", "0"])
    err = capsys.readouterr().err
    assert rc == 0 and DEPTH_NOTE in err, err


def test_the_edit_is_the_8bit_renders_change_on_the_16bit_original(tmp_path, deep_portrait, engine):
    """Inside the edit each value is the original's plus the 8-bit render's change, scaled to 16
    bits: reloaded, the export is exactly the 8-bit edit."""
    src, rgb16 = deep_portrait
    doc, rendered = _edited(engine, src)
    _copied, notes = export_photo(src, tmp_path / "o.png", rendered, read_source(src))
    assert notes == []
    got = _read16(tmp_path / "o.png").astype(np.int64)
    change = rendered.astype(np.int64) - doc.image
    want = np.clip(rgb16 + change * 257, 0, 65535)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(load_image(tmp_path / "o.png"), rendered)


@pytest.mark.parametrize("pair", [(".png", ".tif", True), (".tif", ".png", True), (".png", ".png", False)])
def test_an_unedited_16bit_photo_exports_its_own_values(tmp_path, deep_portrait, engine, pair):
    """No slider moved, another format (not a copy of the file): the original's 16 bits exactly;
    so too a slider moved and brought back (rendered, not copied)."""
    _, rgb16 = deep_portrait
    src = tmp_path / f"in{pair[0]}"
    cv2.imwrite(str(src), rgb16[..., ::-1])
    out = tmp_path / f"out{pair[1]}"
    pixels = load_image(src)
    if not pair[2]:
        doc, _ = _edited(engine, src)
        doc.reset()
        pixels = doc.render()
    copied, notes = export_photo(src, out, pixels, read_source(src), unchanged=pair[2])
    assert not copied and DEPTH_NOTE not in notes
    np.testing.assert_array_equal(_read16(out), rgb16)


def test_a_turned_16bit_tiff_exports_upright_with_its_16_bits(tmp_path):
    """An EXIF orientation is applied to the 16 bits as load_image applies it to the 8."""
    from test_image_io import _pattern, _tiff16
    upright = _deep(_pattern(24, 32), seed=5)
    src = tmp_path / "turned.tif"
    _tiff16(src, np.ascontiguousarray(np.rot90(upright, 1)), 6)
    export_photo(src, tmp_path / "up.png", load_image(src), read_source(src))
    np.testing.assert_array_equal(_read16(tmp_path / "up.png"), upright)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_a_grey_16bit_photo_stays_grey_with_16_bits(tmp_path, portrait_path, engine, suffix):
    gray16 = _deep(load_image(portrait_path)[..., 1], seed=1)
    src = tmp_path / "grey.png"
    cv2.imwrite(str(src), gray16)
    doc, rendered = _edited(engine, src)
    _copied, notes = export_photo(src, tmp_path / f"o{suffix}", rendered, read_source(src))
    assert DEPTH_NOTE not in notes
    got = cv2.imread(str(tmp_path / f"o{suffix}"), cv2.IMREAD_UNCHANGED)
    assert got.dtype == np.uint16 and got.shape == gray16.shape, (got.dtype, got.shape)
    far = _far(gray16.shape, doc.faces[0].box)
    np.testing.assert_array_equal(got[far], gray16[far])
    assert (got != gray16).any()


@pytest.mark.parametrize("channels", [2, 4])
def test_a_16bit_transparency_keeps_its_16bit_alpha(tmp_path, portrait_path, engine, channels):
    """RGBA and grey with alpha: the alpha as the original's 16 bits, the colour far from the face
    too; a JPEG still says it drops the 16 bits (and the transparency)."""
    rgb8 = load_image(portrait_path)
    h, w = rgb8.shape[:2]
    alpha = (np.linspace(20000, 65535, w)[None, :] * np.ones((h, 1))).astype(np.uint16)
    alpha[:, :40] = 0     # a transparent band at the left edge
    color = _deep(rgb8, seed=2) if channels == 4 else _deep(rgb8[..., 1], seed=2)[..., None]
    source16 = np.dstack([color, alpha])
    src = tmp_path / "clear.png"
    _png16(src, source16)
    doc, rendered = _edited(engine, src)
    _copied, notes = export_photo(src, tmp_path / "o.png", rendered, read_source(src))
    assert notes == []
    got = _read16(tmp_path / "o.png")
    if channels == 2:   # OpenCV reads grey and alpha as BGRA: three equal channels
        assert (got[..., 0] == got[..., 1]).all() and (got[..., 0] == got[..., 2]).all()
        got = got[..., [0, 3]]
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got[..., -1], alpha)
    far = _far(rgb8.shape, doc.faces[0].box)
    np.testing.assert_array_equal(got[far], source16[far])
    assert (got[..., :-1] != source16[..., :-1]).any()
    _copied, notes = export_photo(src, tmp_path / "o.jpg", rendered, read_source(src))
    assert DEPTH_NOTE in notes


def test_batch_writes_16_bits_to_png_and_notes_them_in_jpeg(tmp_path, deep_portrait, engine):
    import shutil

    from core.batch import BatchOptions, run_batch
    src, rgb16 = deep_portrait
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(src, folder / "deep.png")
    rep = run_batch(folder, tmp_path / "png", engine, BatchOptions(values={"Smiling": 2.0}, format="png"))
    (item,) = rep.items
    assert item.status == "ok" and item.changed == 1, item
    assert DEPTH_NOTE not in item.lost
    got = _read16(tmp_path / "png" / "deep.png")
    assert got.dtype == np.uint16
    doc = _edited(engine, src)[0]
    far = _far(rgb16.shape, doc.faces[0].box)
    np.testing.assert_array_equal(got[far], rgb16[far])
    assert (got != rgb16).any()
    rep = run_batch(folder, tmp_path / "jpg", engine, BatchOptions(values={"Smiling": 2.0}, format="jpg"))
    assert DEPTH_NOTE in rep.items[0].lost


try:   # the window's test fixtures (the shared window with the tiny model and the portrait open)
    from test_gui import TIMEOUT, editor, shared_window  # noqa: F401
except ImportError:   # no PySide6 or pytest-qt: the window's test is skipped
    TIMEOUT = None


@pytest.mark.skipif(TIMEOUT is None, reason="needs PySide6 and pytest-qt")
def test_the_window_exports_16_bits_to_png_and_its_dialog_notes_them_only_for_jpeg(editor, qtbot, tmp_path,
                                                                                   deep_portrait):
    w = editor
    src, rgb16 = deep_portrait
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photo(src)
    qtbot.waitUntil(lambda: not w._busy, timeout=TIMEOUT)
    row = w.panel.row("Smiling")
    row.spin.setValue(2.0 if row.spin.value() < 1 else -1.0)
    # what the Export dialog says before writing (main_window.export_losses)
    assert not any(DEPTH_NOTE in note for note in w.export_losses(".png")), w.export_losses(".png")
    assert any(DEPTH_NOTE in note for note in w.export_losses(".jpg")), w.export_losses(".jpg")
    with qtbot.waitSignal(w.exportFinished, timeout=TIMEOUT):
        w.export_to(tmp_path / "o.png")
    assert "not all" not in w.statusBar().currentMessage(), w.statusBar().currentMessage()
    got = _read16(tmp_path / "o.png")
    assert got.dtype == np.uint16 and got.shape == rgb16.shape
    box = w._photo.faces[0].box
    far = _far(rgb16.shape, box)
    np.testing.assert_array_equal(got[far], rgb16[far])
    x0, y0, x1, y1 = (int(v) for v in box)
    assert (got[y0:y1, x0:x1] != rgb16[y0:y1, x0:x1]).any(axis=2).mean() > 0.3
    w.undo_stack.setClean()


@pytest.mark.parametrize("channels", [2, 4])
def test_a_16bit_transparent_photo_of_many_strips_exports_to_tiff(tmp_path, channels):
    """Review: grey with alpha is written to TIFF as RGBA, and its strips were sized for 4 channels
    while its bands were of 2: any photo of more than one strip (300x400 already) failed with "the
    TIFF's tag directory changed size"."""
    h, w = 300, 400
    y, x = np.mgrid[0:h, 0:w]
    color = ((x * 163 + y * 97) % 65536).astype(np.uint16)
    alpha = ((y * 211) % 65536).astype(np.uint16)
    planes = [color, alpha] if channels == 2 else [color, color[::-1], color[:, ::-1], alpha]
    source16 = np.dstack(planes)
    src = tmp_path / "clear.png"
    _png16(src, source16)
    copied, notes = export_photo(src, tmp_path / "o.tif", load_image(src), read_source(src))
    assert not copied and notes == []
    got = _read16(tmp_path / "o.tif")
    if channels == 2:
        got = got[..., [0, 3]]
    np.testing.assert_array_equal(got, source16)


def test_a_16bit_grey_png_with_a_transparent_key_keeps_its_transparency(tmp_path):
    """Review: a grey 16-bit PNG whose transparency is a key colour (tRNS) came out opaque in 16
    bits, without a note (the 16-bit decode has no channel for it); it is exported as before, with
    its transparency, in 8 bits, and says so."""
    h, w = 40, 60
    grey = (np.arange(h * w).reshape(h, w) * 37 % 60000 + 300).astype(np.uint16)   # none is the key but those
    grey[:10, :10] = 14   # the transparent key
    raw = b"".join(b"\0" + grey[r].astype(">u2").tobytes() for r in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    src = tmp_path / "key.png"
    src.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0))
                    + chunk(b"tRNS", struct.pack(">H", 14)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    _copied, notes = export_photo(src, tmp_path / "o.png", load_image(src), read_source(src))
    from PIL import Image
    with Image.open(tmp_path / "o.png") as im:
        a = np.asarray(im.convert("RGBA"))[..., 3]
    assert (a[:10, :10] == 0).all() and (a[20:, 20:] == 255).all()
    assert DEPTH_NOTE in notes


def test_a_16bit_photo_batched_to_jpeg_is_not_held_in_16_bits(tmp_path, deep_portrait):
    """Review: batch (and edit) decoded and held every 16-bit photo's own values, 2 bytes a value,
    even for JPEG outputs that drop them: the read-ahead bound counted them too, so fewer photos
    were read ahead. Only a PNG or TIFF output holds them now."""
    from core.batch import Item, _decoded_bytes
    from core.image_io import keeps_depth
    path, rgb16 = deep_portrait
    h, w = rgb16.shape[:2]
    png = Item(path, path.name, tmp_path / "o.png")
    jpg = Item(path, path.name, tmp_path / "o.jpg")
    assert _decoded_bytes(png) == 3 * w * h + 6 * w * h
    assert _decoded_bytes(jpg) == 3 * w * h
    assert keeps_depth("x.TIF") and keeps_depth("x.png") and not keeps_depth("x.jpg") and not keeps_depth("x.webp")
