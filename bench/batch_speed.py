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

The simple loop runs with the engine's default intra-op threads (all cores) and with one thread,
and the ratio is taken against the faster of the two, so the pipeline is not credited for a thread
setting the simple loop could have used too. The photos are split into --rounds chunks and every
method runs on each chunk in turn (order alternating), so a machine shared with other work slows
all methods alike; CPU time per photo (all threads of this process) is reported too.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
PHOTOS = REPO.parent / "shared" / "data" / "celeba" / "img_celeba"

from bench_cli import one_line_errors, parser  # noqa: E402
from core.errors import FaderError  # noqa: E402


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


def simple_loop(files, out_dir: Path, engine, values) -> int:
    """The straightforward loop a script would write, one photo at a time -> photos edited."""
    from core.image_io import read_exif, save_image
    from core.photo_edit import PhotoEdit
    ok = 0
    for f in files:
        try:
            doc = PhotoEdit.open(f, engine)
            doc.set_values(values)
            save_image(out_dir / f.name, doc.render(), exif=read_exif(f))
            ok += 1
        except FaderError:
            pass
    return ok


@one_line_errors("batch_speed")
def main(argv=None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--limit", type=int, default=200, help="number of photos (default 200)")
    ap.add_argument("--model", help="model file (default: the embedded model, else a random one)")
    ap.add_argument("--random-size", type=int, default=64, help="size of the random stand-in model (default 64)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--readers", type=int, help="reader threads of the pipelined run (default: core.batch's)")
    ap.add_argument("--batch-faces", type=int, default=8, help="faces per model batch in the pipelined run")
    ap.add_argument("--simple-threads", type=int, nargs="+",
                    help="intra-op threads to time the simple loop with (default: the engine's default and 1)")
    ap.add_argument("--rounds", type=int, default=4,
                    help="the photos are split into this many chunks, each timed with every method in "
                         "turn, so load from other processes hits all methods alike (default 4)")
    ap.add_argument("--photos", type=Path, default=PHOTOS, help="folder of in-the-wild photos")
    args = ap.parse_args(argv)

    import torch

    from core.batch import BatchOptions, run_batch
    from core.engine import Engine
    from core.faces import detect_faces
    from core.image_io import load_image
    from core.model_file import default_model_path, load_model
    from core.photo_edit import PhotoEdit
    files = sorted(p for p in args.photos.glob("*.jpg"))[: args.limit]
    if not files:
        raise FaderError(f"no photos in {args.photos}")
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
    default_threads = torch.get_num_threads()
    simple_threads = args.simple_threads or sorted({default_threads, 1}, reverse=True)
    methods = [f"simple{t}" for t in simple_threads] + ["pipelined"]
    wall = {m: 0.0 for m in methods}
    cpu = {m: 0.0 for m in methods}
    edited = {m: 0 for m in methods}

    with tempfile.TemporaryDirectory(prefix="fader-bench-") as tmp:
        tmp = Path(tmp)
        rounds = max(1, min(args.rounds, len(files)))
        chunks = [files[k::rounds] for k in range(rounds)]
        for k, chunk in enumerate(chunks):
            d = tmp / "in" / f"round{k}"
            d.mkdir(parents=True)
            for f in chunk:
                shutil.copy(f, d / f.name)
        # warm-up shared by all methods: detector weights, first-call allocations of both networks
        first = sorted((tmp / "in" / "round0").iterdir())
        detect_faces(load_image(first[0]))
        for f in first[:2]:
            try:
                doc = PhotoEdit.open(f, engine)
                doc.set_values(values)
                doc.render()
            except ValueError:
                pass
        for k in range(rounds):
            src = tmp / "in" / f"round{k}"
            order = methods if k % 2 == 0 else methods[::-1]
            for m in order:
                out = tmp / m / f"round{k}"
                out.mkdir(parents=True)
                t, c = time.perf_counter(), time.process_time()
                if m == "pipelined":
                    torch.set_num_threads(default_threads)
                    rep = run_batch(src, out, engine, BatchOptions(values=values), readers=args.readers,
                                    batch_faces=args.batch_faces)
                    n_ok = rep.counts()["ok"]
                else:
                    torch.set_num_threads(int(m[len("simple"):]))
                    n_ok = simple_loop(sorted(src.iterdir()), out, engine, values)
                wall[m] += time.perf_counter() - t
                cpu[m] += time.process_time() - c
                edited[m] += n_ok
            print(f"round {k + 1}/{rounds}: " + ", ".join(f"{m} {wall[m]:.1f} s" for m in methods), file=sys.stderr)
        torch.set_num_threads(default_threads)
    n = len(files)
    best = min((m for m in methods if m != "pipelined"), key=lambda m: wall[m])
    result = {
        "bench": "batch_speed", "photos": n, "model": model_desc, "image_size": engine.image_size,
        "device": str(engine.device), "cpus": len(os.sched_getaffinity(0)), "default_torch_threads": default_threads,
        "load_average": [round(x, 2) for x in os.getloadavg()], "rounds": rounds,
        "readers": args.readers or "default", "batch_faces": args.batch_faces,
        "images_per_s": {m: round(n / wall[m], 3) for m in methods},
        "cpu_ms_per_image": {m: round(cpu[m] / n * 1000, 1) for m in methods},
        "edited": edited, "best_simple": best,
        "simple_images_per_s": round(n / wall[best], 3), "pipelined_images_per_s": round(n / wall["pipelined"], 3),
        "ratio": round(wall[best] / wall["pipelined"], 3),
    }
    print(json.dumps(result))
    print(f"ratio (pipelined / best simple loop, {best}): {result['ratio']:.2f}x", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
