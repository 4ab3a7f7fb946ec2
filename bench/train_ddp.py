"""Data-parallel training on one machine: images/s of 1 process x T threads vs P processes x 1 thread.

Runs the real `fader-train` (64 px, the reference's default networks, global batch 32) alternately
as one process with --threads T and under torchrun as P processes with --threads 1 each (gloo), and
measures each run's training throughput from its log.jsonl: the time between the first and the last
evaluation (a tiny validation set, so the evaluations cost little), which leaves out start-up,
preprocessing and the evaluation classifier. Both configurations train the same model (the global
batch is the same), so images/s compare like with like.

    python bench/train_ddp.py [--rounds 2] [--steps 60] [--eval-every 10] [--procs 2] [--threads 2]
Data: a labeled folder of CelebA images from ../shared/data (symlinks), else random images.
Prints progress on stderr and one JSON line on stdout; `ratio` = P x 1 images/s / 1 x T images/s.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def make_data(root: Path, n_per: int) -> str:
    """A labeled folder Smiling/{no,yes}: CelebA images where present, else random noise images."""
    celeba = SHARED / "celeba" / "img_align_celeba"
    attrs = SHARED / "list_attr_celeba.txt"
    if celeba.is_dir() and attrs.is_file():
        sys.path.insert(0, str(REPO))
        from training.datasets import read_celeba_attributes
        names, table = read_celeba_attributes(attrs)
        j = names.index("Smiling")
        counts = {"no": 0, "yes": 0}
        for f in sorted(os.listdir(celeba)):
            if f not in table:
                continue
            v = "yes" if table[f][j] == "1" else "no"
            if counts[v] < n_per:
                (root / "Smiling" / v).mkdir(parents=True, exist_ok=True)
                os.symlink(celeba / f, root / "Smiling" / v / f)
                counts[v] += 1
            if min(counts.values()) >= n_per:
                break
        return "CelebA (img_align_celeba)"
    import cv2
    import numpy as np
    rng = np.random.default_rng(0)
    for v in ("no", "yes"):
        (root / "Smiling" / v).mkdir(parents=True, exist_ok=True)
        for i in range(n_per):
            cv2.imwrite(str(root / "Smiling" / v / f"{i}.png"), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    return "random images"


def run_once(kind: str, a, data: Path, work: Path, n: int) -> float:
    """One fader-train run; returns its training images/s (between its first and last evaluation)."""
    out = work / f"run_{kind}_{n}"
    common = ["--data", str(data), "--img-size", "64", "--steps", str(a.steps), "--eval-every", str(a.eval_every),
              "--ckpt-every", str(10 ** 9), "--classifier-steps", "1", "--val-size", "4", "--batch-size", "32",
              "--quiet", "--cache-dir", str(work / "cache"), "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    if kind == "1proc":
        env["OMP_NUM_THREADS"] = str(a.threads)
        cmd = [sys.executable, "-m", "training", *common, "--threads", str(a.threads)]
    else:
        env["OMP_NUM_THREADS"] = "1"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(a.procs),
               "-m", "training", *common, "--threads", "1"]
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"train_ddp: {kind} run failed:\n{r.stderr[-3000:]}")
    recs = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    steps = recs[-1]["step"] - recs[0]["step"]
    return steps * 32 / (recs[-1]["elapsed"] - recs[0]["elapsed"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds (one run of each kind per round)")
    ap.add_argument("--steps", type=int, default=60, help="training iterations per run")
    ap.add_argument("--eval-every", type=int, default=10, help="evaluation interval (the timing window's ticks)")
    ap.add_argument("--procs", type=int, default=2, help="processes of the data-parallel run (1 thread each)")
    ap.add_argument("--threads", type=int, default=2, help="threads of the one-process run")
    ap.add_argument("--images", type=int, default=256, help="training images per value folder")
    ap.add_argument("--json", action="store_true", help="only the JSON line on stdout (progress still on stderr)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="train_ddp_") as tmp:
        work = Path(tmp)
        source = make_data(work / "d", a.images)
        one, many = [], []
        for n in range(a.rounds):
            one.append(run_once("1proc", a, work / "d" / "Smiling", work, n))
            print(f"round {n + 1}: 1 process x {a.threads} threads: {one[-1]:.1f} img/s", file=sys.stderr)
            many.append(run_once("ddp", a, work / "d" / "Smiling", work, n))
            print(f"round {n + 1}: {a.procs} processes x 1 thread: {many[-1]:.1f} img/s", file=sys.stderr)
    m1, m2 = statistics.median(one), statistics.median(many)
    result = {"one_process_threads": a.threads, "processes": a.procs,
              "img_s_one_process": [round(x, 1) for x in one], "img_s_processes": [round(x, 1) for x in many],
              "median_one_process": round(m1, 1), "median_processes": round(m2, 1), "ratio": round(m2 / m1, 3),
              "steps": a.steps, "img_size": 64, "global_batch": 32, "data": source, "cpus": os.cpu_count(),
              "loadavg_1min": round(os.getloadavg()[0], 2), "when": time.strftime("%Y-%m-%d %H:%M")}
    if not a.json:
        print(f"{a.procs} x 1 / 1 x {a.threads}: {m2:.1f} / {m1:.1f} img/s = {m2 / m1:.2f}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
