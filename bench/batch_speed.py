"""Batch export throughput: the pipelined core.batch against a one-photo-at-a-time loop.

Both runs edit the same copies of real in-the-wild CelebA photos (../shared/data/celeba/img_celeba)
with the same engine, in the same process, after a shared warm-up:

- simple: for each photo load -> PhotoEdit.open (detect, align, encode, classify, reconstruct) ->
  set_values -> render (decode, paste back) -> save_image;
- pipelined: core.batch.run_batch (reader thread(s) for load/detect/align, faces of several photos
  through the model in one batch, a writer thread for paste-back and saving).

Prints one JSON line (images/s of both, ratio) on stdout; details on stderr.

    python bench/batch_speed.py [--limit 200] [--model M] [--device cpu] [--readers 1] [--batch-faces 8]

Without --model the embedded model is used if present, else a randomly initialised model with the
default model's architecture (64 px, 4 layers) at --random-size px, and the output says so: the
speed of a network does not depend on its weights.

The simple loop runs twice, with the engine's default intra-op threads (all cores) and with one
thread, and the ratio is taken against the faster of the two, so the pipeline is not credited
for a thread setting the simple loop could have used too.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PHOTOS = REPO.parent / "shared" / "data" / "celeba" / "img_celeba"


def random_model(size: int):
    import torch

    from core.attributes import Attribute
    from core.model_file import new_model
    from core.networks import ArchConfig
    torch.manual_seed(0)
    attrs = [Attribute("Smiling"), Attribute("Male"), Attribute("Young"), Attribute("Eyeglasses"),
             Attribute("Mouth_Slightly_Open")]
    # the architecture the default model is being trained with (64 px, 4 layers, 32..256 maps)
    cfg = ArchConfig(img_size=size, n_layers=4, init_fm=32, max_fm=256)
    model = new_model(cfg, attrs, cfg, meta={"name": f"random model, default-model architecture at {size} px"})
    for mod in model.autoencoder.modules():  # eval-mode statistics like a trained model
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_var.fill_(1.0)
    return model


def simple_loop(files, out_dir: Path, engine, values) -> tuple:
    """The straightforward loop a script would write, one photo at a time."""
    from core.errors import FaderError
    from core.image_io import read_exif, save_image
    from core.photo_edit import PhotoEdit
    ok = 0
    t = time.perf_counter()
    for f in files:
        try:
            doc = PhotoEdit.open(f, engine)
            doc.set_values(values)
            save_image(out_dir / f.name, doc.render(), exif=read_exif(f))
            ok += 1
        except FaderError:
            pass
    return ok, time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=200, help="number of photos (default 200)")
    ap.add_argument("--model", help="model file (default: the embedded model, else a random one)")
    ap.add_argument("--random-size", type=int, default=64, help="size of the random stand-in model (default 64)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--readers", type=int, help="reader threads of the pipelined run (default: core.batch's)")
    ap.add_argument("--batch-faces", type=int, default=8, help="faces per model batch in the pipelined run")
    ap.add_argument("--photos", type=Path, default=PHOTOS, help="folder of in-the-wild photos")
    args = ap.parse_args(argv)

    import torch

    from core.batch import BatchOptions, run_batch
    from core.engine import Engine
    from core.faces import detect_faces
    from core.image_io import load_image
    from core.model_file import default_model_path, load_model
    files = sorted(p for p in args.photos.glob("*.jpg"))[: args.limit]
    if not files:
        print(f"no photos in {args.photos}", file=sys.stderr)
        return 2
    if args.model:
        model, model_desc = load_model(args.model), str(args.model)
    elif default_model_path().exists():
        model, model_desc = load_model(default_model_path()), "embedded default model"
    else:
        model = random_model(args.random_size)
        model_desc = model.name + " (no embedded model yet)"
        print(f"note: no embedded model; using a {model.name}", file=sys.stderr)
    engine = Engine(model, device=args.device)
    a = engine.attributes[0]
    values = {a.name: a.range[1] if a.is_binary else [0.0] * (a.n - 1) + [1.0]}

    with tempfile.TemporaryDirectory(prefix="fader-bench-") as tmp:
        tmp = Path(tmp)
        src = tmp / "in"
        src.mkdir()
        for f in files:
            shutil.copy(f, src / f.name)
        copies = sorted(src.iterdir())
        # warm-up shared by both runs: detector weights, first-call allocations of both networks
        from core.photo_edit import PhotoEdit
        detect_faces(load_image(copies[0]))
        for f in copies[:2]:
            try:
                d = PhotoEdit.open(f, engine)
                d.set_values(values)
                d.render()
            except ValueError:
                pass
        default_threads = torch.get_num_threads()
        simple = {}
        for threads in sorted({default_threads, 1}, reverse=True):
            torch.set_num_threads(threads)
            out = tmp / f"simple{threads}"
            out.mkdir()
            simple[threads] = simple_loop(copies, out, engine, values)
            print(f"simple loop, {threads} thread(s): {len(files)} photos, {simple[threads][0]} edited "
                  f"in {simple[threads][1]:.1f} s", file=sys.stderr)
        torch.set_num_threads(default_threads)
        best = min(simple, key=lambda k: simple[k][1])
        ok_simple, t_simple = simple[best]
        t = time.perf_counter()
        rep = run_batch(src, tmp / "pipelined", engine, BatchOptions(values=values), readers=args.readers,
                        batch_faces=args.batch_faces)
        t_pipe = time.perf_counter() - t
        c = rep.counts()
        print(f"pipelined:   {len(files)} photos, {c['ok']} edited in {t_pipe:.1f} s", file=sys.stderr)
    result = {
        "bench": "batch_speed", "photos": len(files), "model": model_desc, "image_size": engine.image_size,
        "device": str(engine.device), "cpus": len(os.sched_getaffinity(0)), "torch_threads": torch.get_num_threads(),
        "readers": args.readers or "default", "batch_faces": args.batch_faces,
        "simple_images_per_s": round(len(files) / t_simple, 3), "simple_threads": best,
        "simple_images_per_s_by_threads": {str(k): round(len(files) / v[1], 3) for k, v in simple.items()},
        "pipelined_images_per_s": round(len(files) / t_pipe, 3),
        "ratio": round(t_simple / t_pipe, 3), "edited_simple": ok_simple, "edited_pipelined": c["ok"],
    }
    print(json.dumps(result))
    print(f"ratio (pipelined / best simple loop): {result['ratio']:.2f}x", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
