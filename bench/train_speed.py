"""Training throughput: our trainer's full iteration vs a straightforward fp32 implementation.

One iteration = one latent-discriminator step + one auto-encoder step (batch 32, 64 px, the
reference's default networks at 64 px: n_layers 4, init_fm 32, max_fm 512 unless overridden).
images/s counts the auto-encoder batch (32 images per iteration) for both.

The baseline is the reference's training step written plainly: NCHW tensors, Adam with its
default (per-tensor loop) implementation, clip_grad_norm_, the losses read with .item() every step
(the reference logs them and checks for NaN each step), and the batch assembled synchronously
(random indices, uint8 -> float, flip) in the training loop. Both run in the same process, in
alternating rounds, so a busy machine slows both alike; the median round is reported.

    python bench/train_speed.py [--rounds 4] [--iters 10] [--threads 2] [--init-fm 32 --max-fm 512]
Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as fader-train does (see training/cli.py)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from core.attributes import Attribute  # noqa: E402
from core.networks import ArchConfig, AutoEncoder, LatentDiscriminator  # noqa: E402
from training.batches import BatchStream  # noqa: E402
from training.trainer import TrainConfig, Trainer  # noqa: E402


class Straightforward:
    """The reference step, written the obvious way (see module docstring)."""

    def __init__(self, arch, attrs, images, labels, seed=0):
        torch.manual_seed(seed)
        self.ae, self.lat_dis = AutoEncoder(arch), LatentDiscriminator(arch)
        self.ae.split_code_planes = False  # the plain concatenation of the attribute planes
        self.opt_ae = torch.optim.Adam(self.ae.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_dis = torch.optim.Adam(self.lat_dis.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.attrs, self.images, self.labels = attrs, images, labels
        self.rng = np.random.default_rng(seed)
        self.step = 0
        self.costs = []

    def batch(self):
        idx = self.rng.integers(0, len(self.images), 32)
        x = torch.from_numpy(self.images[idx]).permute(0, 3, 1, 2).float() / 127.5 - 1
        if self.rng.random() < 0.5:
            x = x.flip(3)
        y = torch.from_numpy(self.labels[idx]).long()
        return x.contiguous(), y

    def loss(self, preds, y, flip):
        loss, k = 0, 0
        for j, a in enumerate(self.attrs):
            t = y[:, j]
            if flip:
                t = (t + torch.randint(1, a.n, t.shape)) % a.n
            loss = loss + F.cross_entropy(preds[:, k:k + a.n], t)
            k += a.n
        return loss

    def code(self, y):
        return torch.cat([F.one_hot(y[:, j], a.n).float() for j, a in enumerate(self.attrs)], 1)

    def iteration(self):
        x, y = self.batch()
        self.ae.eval()
        self.lat_dis.train()
        with torch.no_grad():
            z = self.ae.encode(x)[-1]
        loss = self.loss(self.lat_dis(z), y, False)
        self.costs.append(loss.item())
        self.opt_dis.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.lat_dis.parameters(), 5)
        self.opt_dis.step()

        x, y = self.batch()
        self.ae.train()
        self.lat_dis.eval()
        enc, dec = self.ae(x, self.code(y))
        rec = ((x - dec[-1]) ** 2).mean()
        self.costs.append(rec.item())
        lam = 1e-4 * min(self.step, 500000) / 500000
        loss = rec + lam * self.loss(self.lat_dis(enc[-1]), y, True)
        if loss.item() != loss.item():
            raise RuntimeError("NaN")
        self.opt_ae.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.ae.parameters(), 5)
        self.opt_ae.step()
        self.step += 1


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--iters", type=int, default=10, help="timed iterations per round")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores available)")
    p.add_argument("--img-size", type=int, default=64)
    p.add_argument("--n-layers", type=int, default=4)
    p.add_argument("--init-fm", type=int, default=32)
    p.add_argument("--max-fm", type=int, default=512)
    a = p.parse_args(argv)
    threads = a.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    attrs = [Attribute(n) for n in ("Smiling", "Male", "Young", "Eyeglasses", "Mouth_Slightly_Open")]
    arch = ArchConfig(img_size=a.img_size, init_fm=a.init_fm, max_fm=a.max_fm, n_layers=a.n_layers, n_attr=10)
    rng = np.random.default_rng(0)
    n = 4096
    images = rng.integers(0, 256, (n, a.img_size, a.img_size, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, (n, len(attrs)))

    base = Straightforward(arch, attrs, images, labels)
    cfg = TrainConfig(steps=10 ** 9, lambda_schedule=500000)
    ours = Trainer(arch, attrs, images, labels, np.arange(n), np.arange(8), cfg, "/tmp/fader-bench-run", "cpu",
                   progress=False)
    stream = BatchStream(images, labels, np.arange(n), 32, 0, 0, True)

    def time_base():
        t = time.perf_counter()
        for _ in range(a.iters):
            base.iteration()
        return time.perf_counter() - t

    def time_ours():
        t = time.perf_counter()
        for _ in range(a.iters):
            ours.train_iteration(stream)
        float(ours._acc.sum())  # the run's one host sync (the real loop does it every log_every steps)
        return time.perf_counter() - t

    for _ in range(2):  # warm-up: allocator, oneDNN primitive caches
        base.iteration()
        ours.train_iteration(stream)
    tb, to = [], []
    for r in range(a.rounds):
        # alternate the order so neither side always runs first after the other
        if r % 2 == 0:
            tb.append(time_base()); to.append(time_ours())
        else:
            to.append(time_ours()); tb.append(time_base())
    stream.close()
    ips_b = [32 * a.iters / t for t in tb]
    ips_o = [32 * a.iters / t for t in to]
    res = {
        "bench": "train_speed", "img_size": a.img_size, "batch": 32, "threads": threads,
        "arch": {"n_layers": a.n_layers, "init_fm": a.init_fm, "max_fm": a.max_fm},
        "baseline_img_s": round(statistics.median(ips_b), 1),
        "ours_img_s": round(statistics.median(ips_o), 1),
        "ratio": round(statistics.median(o / b for o, b in zip(ips_o, ips_b)), 3),
        "rounds_baseline": [round(x, 1) for x in ips_b], "rounds_ours": [round(x, 1) for x in ips_o],
        "loadavg_1min": os.getloadavg()[0], "torch": torch.__version__,
    }
    print(json.dumps(res))
    print(f"ours {res['ours_img_s']} img/s vs straightforward {res['baseline_img_s']} img/s: "
          f"ratio {res['ratio']}x (load average {res['loadavg_1min']:.1f})", file=sys.stderr)
    return res


if __name__ == "__main__":
    main()
