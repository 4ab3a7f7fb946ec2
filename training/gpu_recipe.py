"""The GPU recipe: the default 128 px model trained on one CUDA GPU in under 9 minutes.

One command, from a pack of the training faces at 128 px (`python -m training.pack`, about 38 MB,
kept out of git):

    python -m training.gpu_recipe --pack faces128.fpack --out runs/gpu128            # on a CUDA machine

It runs `fader-train` with the default model's architecture and losses (latent discriminator,
image critic with realism and attribute heads, edit-colour penalty), sized for a large GPU: bf16
autocast, channels-last tensors, batch 256 with the learning rate scaled up (x2), the crops held on
the GPU (`--data-on-device`), and a wall-clock budget (`--minutes`, default 8: the run stops,
evaluates and exports the best model by then). The learning rate falls linearly to 0 over the
budget's last 40 % (`--lr-decay-minutes`): on the CPU every gain of the shipped model came at the
end of such a decay (docs/training.md). It writes, in float16 with a 128-px evaluation classifier of
width 256, RUN/model_last.fader (the end state of the decay: the candidate to judge with
bench/edit_judge.py) and RUN/model.fader (the state the run's own swap accuracy selected), and
checks that each is at most 16 MiB. Any fader-train
option after `--` overrides the recipe's (e.g. `-- --steps 20000`); `--device cpu` runs the same
recipe on a CPU (how the test suite checks it, at a tiny scale).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Optional

MAX_MODEL_BYTES = 16 * 2 ** 20

ATTRIBUTES = "Smiling,Male,Young,Eyeglasses,Mouth_Slightly_Open"
DECAY_SHARE = 0.4  # the share of the time budget over which the learning rate falls to 0


def recipe_args(pack: str, out: str, device: str, minutes: float, img_size: int = 128) -> list:
    """fader-train options of the recipe (the ones after `--` on the command line come later and win)."""
    return ["--data", pack, "--attr", ATTRIBUTES, "--out", out, "--device", device, "--img-size", str(img_size),
            # the default model's architecture
            "--n-layers", "5", "--init-fm", "16", "--max-fm", "256", "--n-skip", "2",
            # large batches on a large GPU; Adam's rate scaled by ~sqrt(batch ratio)
            "--batch-size", "256", "--lr", "4e-4", "--data-on-device",
            "--amp", "bf16" if device != "cpu" else "off",
            # losses (see the model card)
            "--lambda-lat-dis", "4e-4", "--lambda-schedule", "2000",
            "--n-critic", "1", "--critic-width", "16", "--lambda-critic-adv", "0.02", "--lambda-critic-attr", "0.03",
            "--lambda-edit-chroma", "0.5", "--lambda-edit-tv", "0.05", "--ema", "0.999",
            "--classifier-steps", "500", "--classifier-max-fm", "256",
            "--steps", "1000000", "--max-minutes", str(minutes), "--lr-decay-minutes", f"{DECAY_SHARE * minutes:g}",
            "--eval-every", "500", "--ckpt-every", "500",
            "--val-size", "500", "--half-export", "--quiet"]


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.gpu_recipe", description=__doc__.split("\n")[0],
                                epilog="fader-train options after -- override the recipe's")
    p.add_argument("--pack", required=True, help="training faces packed by python -m training.pack")
    p.add_argument("--out", required=True, help="run folder (model.fader, log.jsonl, checkpoint, previews)")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    p.add_argument("--minutes", type=float, default=8.0, help="training budget in minutes (default 8; the learning rate falls to 0 over its last 40 %%)")
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        k = argv.index("--")
        argv, extra = argv[:k], argv[k + 1:]
    a = p.parse_args(argv)
    from core.errors import FaderError
    from training import cli
    from training.packfile import open_pack
    t0 = time.time()
    try:
        size = open_pack(a.pack).size  # the model's resolution is the pack's
    except FaderError as e:
        print(f"gpu_recipe: error: {e}", file=sys.stderr)
        return 2
    code = cli.main(recipe_args(a.pack, a.out, a.device, a.minutes, size) + extra)
    if code != 0:
        return code
    # the end state of the decay, beside the run's own selection
    code = cli.main(["--out", a.out, "--export-last", "--half-export"])
    if code != 0:
        return code
    for name in ("model_last.fader", "model.fader"):
        model = Path(a.out) / name
        size = model.stat().st_size if model.is_file() else None
        if size is None:
            print(f"gpu_recipe: error: {model} was not written", file=sys.stderr)
            return 2
        print(f"gpu_recipe: {model}: {size / 2**20:.1f} MiB (limit {MAX_MODEL_BYTES / 2**20:.0f} MiB)", file=sys.stderr)
        if size > MAX_MODEL_BYTES:
            print(f"gpu_recipe: error: {model} is larger than {MAX_MODEL_BYTES / 2**20:.0f} MiB", file=sys.stderr)
            return 2
    print(f"gpu_recipe: {(time.time() - t0) / 60:.1f} min in all", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
