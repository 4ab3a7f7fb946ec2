"""Slider latency: what one slider change costs, against a straightforward implementation.

Prints one JSON line on stdout (details on stderr):

- decode_ms_p50     Engine.decode of one face from its cached latent (what a slider change runs; for
                    a model decoded with mirror images, the draft decode a dragged slider runs);
- full_decode_ms_p50 (mirror-decoding models only) the full decode: the face and its mirror image,
                    averaged (what a released slider and an export run);
- naive_ms_p50      the straightforward way: `model.autoencoder(x, y)` (encode + decode) in fp32 NCHW
                    under torch.no_grad, no batch-norm folding, per change (uint8 in, uint8 out);
- ratio             naive_ms_p50 / decode_ms_p50;
- encode_ms_p50     Engine.encode of one face (once per face, when a photo is opened);
- photo_edit_ms_p50 one slider change on a ~2-megapixel photo: PhotoEdit.set_value + render
                    (decode + paste back at full resolution; the draft decode, as while dragging;
                    photo_edit_full_ms_p50 with the full one) when core/photo_edit.py exists, else an
                    aligned-crop edit (decode + resize to the photo) -- `photo_edit_kind` says which;
- threads, device, and what model and photo were used.

    python bench/latency.py [--model M] [--json] [--repeats 50] [--device cpu] [--threads N]

Without --model the embedded model (core.model_file.default_model_path()) is used if present, else
a randomly initialised model of the architecture given by --size/--n-layers/--init-fm/--max-fm/
--deconv (said so in the output): speed does not depend on the weights' values.
Medians over --repeats timed runs after a warm-up; figures on a shared machine are noisy, so the
load average is reported too.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PHOTOS = REPO.parent / "shared" / "data" / "celeba" / "img_celeba"
TARGET_PIXELS = 2_000_000

from bench_cli import one_line_errors, parser  # noqa: E402
from core.errors import FaderError  # noqa: E402


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def random_model(args):
    import torch

    from core.attributes import Attribute
    from core.model_file import new_model
    from core.networks import ArchConfig
    torch.manual_seed(0)
    attrs = [Attribute("Smiling"), Attribute("Male"), Attribute("Young"), Attribute("Eyeglasses"),
             Attribute("Mouth_Slightly_Open")]
    cfg = ArchConfig(img_size=args.size, n_layers=args.n_layers, init_fm=args.init_fm, max_fm=args.max_fm,
                     deconv_method=args.deconv)
    clf = ArchConfig(img_size=args.size, n_layers=args.n_layers, init_fm=16, max_fm=128, hid_dim=128)
    model = new_model(cfg, attrs, clf, meta={"name": "random model"})
    g = torch.Generator().manual_seed(0)
    for m in model.autoencoder.modules():  # trained-model-like batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    model.autoencoder.eval()
    model.classifier.eval()
    desc = (f"random (no model file found; {cfg.img_size} px, n_layers {cfg.n_layers}, init_fm {cfg.init_fm}, "
            f"max_fm {cfg.max_fm}, {cfg.deconv_method})")
    return model, desc


def timed(fn, repeats: int, warmup: int) -> list:
    for _ in range(warmup):
        fn()
    out = []
    for i in range(repeats):
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def p50(xs):
    return round(statistics.median(xs), 3)


def p90(xs):
    s = sorted(xs)
    return round(s[min(len(s) - 1, int(round(0.9 * (len(s) - 1))))], 3)


def load_photo(limit: int = 40):
    """A real in-the-wild photo, upscaled to ~2 MP if smaller; returns (rgb, path)."""
    import cv2
    import numpy as np

    from core.image_io import load_image
    files = sorted(PHOTOS.glob("*.jpg"))[:limit] if PHOTOS.is_dir() else []
    for f in files:
        try:
            rgb = load_image(f)
        except Exception:  # noqa: BLE001 - skip unreadable files
            continue
        h, w = rgb.shape[:2]
        if h * w < TARGET_PIXELS:
            s = (TARGET_PIXELS / (h * w)) ** 0.5
            rgb = cv2.resize(rgb, (int(round(w * s)), int(round(h * s))), interpolation=cv2.INTER_CUBIC)
        yield np.ascontiguousarray(rgb), f


def photo_edit_bench(engine, model, args, attr_name, crop, draft=True):
    """(samples, kind, details) for one slider change on a ~2 MP photo."""
    import numpy as np
    try:
        from core.photo_edit import PhotoEdit
    except ImportError:
        PhotoEdit = None
    if PhotoEdit is not None:
        from core.errors import FaderError
        for rgb, path in load_photo():
            try:
                doc = PhotoEdit.open(rgb, engine)
            except FaderError as e:
                log(f"  {path.name}: {e}; trying the next photo")
                continue
            # both values differ from any face's own value (0 or 1), so every change decodes
            alphas = (2.0, -1.0)

            def change(i=0):
                doc.set_value(attr_name, alphas[i % 2], face=0)
                doc.render(draft=draft)
            samples = timed(change, args.repeats, args.warmup)
            h, w = rgb.shape[:2]
            kind = f"PhotoEdit.set_value + render (1 of {len(doc.faces)} face(s) edited)"
            return samples, kind, {"photo": str(path), "photo_size": [w, h], "faces": len(doc.faces)}
        log("  no photo with a usable face found; falling back to the aligned-crop edit")
    import cv2
    rgb, path = next(load_photo(), (np.zeros((1200, 1667, 3), np.uint8), None))
    h, w = rgb.shape[:2]
    latent = engine.encode(crop)
    alphas = (0.0, 1.0)

    def change(i=0):
        out = engine.decode(latent, {attr_name: alphas[i % 2]})[0]
        cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)
    samples = timed(change, args.repeats, args.warmup)
    kind = "aligned-crop edit (Engine.decode + resize to the photo size; no photo_edit module)"
    return samples, kind, {"photo": str(path) if path else None, "photo_size": [w, h], "faces": 1}


@one_line_errors("latency")
def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--model", help="model file (.fader); default: the embedded model, else a random model")
    p.add_argument("--json", action="store_true", help="print only the JSON line on stdout (the default output too)")
    p.add_argument("--repeats", type=int, default=50, help="timed rounds (default 50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed rounds first (default 5)")
    p.add_argument("--device", default="cpu", help="auto | cpu | cuda (default cpu)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all usable cores)")
    # random-model defaults (only without an embedded model): the earlier 64 px default's
    # architecture (scripts/train_default_model_64px.sh: 4 layers, 32..256 feature maps)
    p.add_argument("--size", type=int, default=64, help="random model: image size (default 64)")
    p.add_argument("--n-layers", type=int, default=4, help="random model: encoder layers (default 4)")
    p.add_argument("--init-fm", type=int, default=32, help="random model: first layer's feature maps (default 32)")
    p.add_argument("--max-fm", type=int, default=256, help="random model: most feature maps (default 256)")
    p.add_argument("--deconv", default="convtranspose", help="random model: decoder upsampling (default convtranspose)")
    p.add_argument("--skip-photo", action="store_true", help="do not run the photo-edit benchmark")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        raise FaderError("--repeats must be at least 1 and --warmup at least 0")

    import numpy as np
    import torch

    from core.attributes import attribute_code
    from core.engine import Engine, default_threads
    from core.model_file import default_model_path, load_model

    try:
        if args.model:
            model, desc = load_model(args.model), str(args.model)
        elif default_model_path().is_file():
            model, desc = load_model(default_model_path()), str(default_model_path())
        else:
            model, desc = random_model(args)
        engine = Engine(model, device=args.device, threads=args.threads)
    except FaderError as e:
        print(f"latency: error: {e}", file=sys.stderr)
        return 2
    threads = torch.get_num_threads()
    s = engine.image_size
    log(f"model: {desc}; {s} px; device {engine.device}; {threads} thread(s); repeats {args.repeats}")

    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, (1, s, s, 3), dtype=np.uint8)
    first = engine.attributes[0]
    alphas = (0.0, 1.0)
    values = [{first.name: a} for a in alphas]

    # engine: encode once, decode per change
    latent = engine.encode(crop)

    # naive: the plain fp32 NCHW network, full encode + decode per change
    ae = model.autoencoder.eval().to(engine.device)
    ys = [attribute_code(engine.attributes, [v], device=engine.device) for v in values]

    def naive(i=0):
        with torch.no_grad():
            x = torch.from_numpy(crop).to(engine.device).permute(0, 3, 1, 2).float() / 127.5 - 1
            _, dec = ae(x, ys[i % 2])
            return ((dec[-1] + 1) * 127.5).clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    # Interleaved (decode, naive, encode per round) so that all three see the same machine load.
    fns = {"decode": lambda i=0: engine.decode(latent, values[i % 2], draft=True),
           "naive": naive,
           "encode": lambda i=0: engine.encode(crop)}
    if latent.mirrored:
        fns["full_decode"] = lambda i=0: engine.decode(latent, values[i % 2])
    for _ in range(args.warmup):
        for fn in fns.values():
            fn()
    times = {k: [] for k in fns}
    for i in range(args.repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn(i)
            times[k].append((time.perf_counter() - t0) * 1000.0)
    decode, naive_ms, encode = times["decode"], times["naive"], times["encode"]
    log(f"decode  p50 {p50(decode):8.2f} ms   p90 {p90(decode):8.2f} ms")
    if "full_decode" in times:
        log(f"full decode (mirror images) p50 {p50(times['full_decode']):8.2f} ms")
    log(f"encode  p50 {p50(encode):8.2f} ms")
    log(f"naive   p50 {p50(naive_ms):8.2f} ms   (ratio {p50(naive_ms) / p50(decode):.2f}x)")
    # both paths compute the same image (the engine folds batch norm, so not bit-identical)
    diff = int(np.abs(engine.decode(latent, values[1], draft=True).astype(int) - naive(1).astype(int)).max())

    result = {
        "decode_ms_p50": p50(decode), "decode_ms_p90": p90(decode),
        "naive_ms_p50": p50(naive_ms), "ratio": round(p50(naive_ms) / p50(decode), 2),
        "encode_ms_p50": p50(encode),
    }
    if "full_decode" in times:
        result.update({"full_decode_ms_p50": p50(times["full_decode"]),
                       "full_decode_ms_p90": p90(times["full_decode"])})
    if not args.skip_photo:
        samples, kind, details = photo_edit_bench(engine, model, args, first.name, crop)
        result.update({"photo_edit_ms_p50": p50(samples), "photo_edit_ms_p90": p90(samples),
                       "photo_edit_kind": kind, **details})
        log(f"photo   p50 {p50(samples):8.2f} ms   ({kind}, {details['photo_size'][0]}x{details['photo_size'][1]})")
        if latent.mirrored:
            full, _kind, _details = photo_edit_bench(engine, model, args, first.name, crop, draft=False)
            result.update({"photo_edit_full_ms_p50": p50(full), "photo_edit_full_ms_p90": p90(full)})
            log(f"photo, full decode p50 {p50(full):8.2f} ms")
    result.update({
        "threads": threads, "device": str(engine.device), "default_threads": default_threads(),
        "model": desc, "image_size": s, "repeats": args.repeats, "engine_vs_naive_max_abs_diff": diff,
        "torch": torch.__version__, "loadavg_1min": round(os.getloadavg()[0], 2),
    })
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
