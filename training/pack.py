"""Packed training data: every training crop at the model's resolution in one small file.

A machine lent for minutes (a cloud GPU) should not spend them reading 8,000 JPEGs of 178x218 and
cropping them, nor need the dataset's folder layout. A pack holds the crops already made at the
training resolution as JPEG bytes, with their labels, CelebA splits and names, in a safetensors
container (tensors + JSON metadata: nothing in it can execute; the format: training/packfile.py).
`fader-train --data FILE.fpack` trains on it like on the original folders (same validation split, by
the same names).

    python -m training.pack --data ../shared/data/celeba/img_align_celeba \
        --data ../shared/data/celeba/img_align_celeba_from_wild --exclude ../shared/data/celeba/img_celeba \
        --attr Smiling,Male,Young,Eyeglasses,Mouth_Slightly_Open --img-size 128 -o faces128.fpack
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional

import numpy as np

from core.errors import FaderError

from .packfile import PACK_SUFFIX, write_pack


def main(argv: Optional[list] = None) -> int:
    """`python -m training.pack`: crop, JPEG-encode and pack the training and validation images."""
    p = argparse.ArgumentParser(prog="python -m training.pack", description=__doc__.split("\n")[0])
    p.add_argument("--data", action="append", required=True, help="data source, as for fader-train (repeatable)")
    p.add_argument("--exclude", action="append", default=None, help="folder or list of images to leave out")
    p.add_argument("--attr", default=None, help="attributes (default: all)")
    p.add_argument("--img-size", type=int, default=128, help="the faces' size in the pack, the model's (default 128)")
    p.add_argument("--quality", type=int, default=85, help="JPEG quality (85 keeps 7,800 128 px faces under 40 MB)")
    p.add_argument("--align", action="store_true", help="detect and align faces (unaligned photos)")
    p.add_argument("-o", "--out", required=True, help="pack file to write (.fpack)")
    a = p.parse_args(argv)
    from .cache import open_cache
    from .datasets import exclude_images, open_dataset
    try:
        if not str(a.out).endswith(PACK_SUFFIX):
            raise FaderError(f"-o: a pack file name ends in {PACK_SUFFIX}")
        if not 32 <= a.img_size <= 256 or not 30 <= a.quality <= 100:
            raise FaderError("--img-size must be 32..256 and --quality 30..100")
        ds = open_dataset(a.data, a.attr)
        if a.exclude:
            ds, _ = exclude_images(ds, a.exclude)
        keep = [i for i, it in enumerate(ds.items) if it.split in (0, 1)] if ds.kind == "celeba" else list(range(len(ds.items)))
        cache = open_cache([ds.items[i].path for i in keep], a.img_size, a.align, progress=True)
        ok = [k for k in range(len(keep)) if cache.valid[k]]
        items = [ds.items[keep[k]] for k in ok]
        from .datasets import split_key
        names = [split_key(ds, it.path) for it in items]
        if len(set(names)) != len(names):
            raise FaderError("two images share a name; a pack needs unique names")
        summary = write_pack(a.out, np.asarray(cache.images)[ok], names, ds.labels[[keep[k] for k in ok]],
                             [it.split for it in items], ds.attributes, f"packed from {ds.description}", a.quality)
    except FaderError as e:
        print(f"pack: error: {e}", file=sys.stderr)
        return 2
    print(f"pack: wrote {a.out}: {summary['images']} crops at {summary['size']} px, "
          f"{summary['bytes'] / 2**20:.1f} MiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
