"""Memory of reading a photo: a 100 MP photo is a 286 MB array, and `batch` reads the next photo
while it writes the last, so every whole copy load_image holds at once counts."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from PIL import Image

from core.image_io import load_image


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
