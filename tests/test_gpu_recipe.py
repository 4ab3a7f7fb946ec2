"""Packed training data and the GPU recipe, run on the CPU at a tiny scale."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
CELEBA = SHARED / "celeba" / "img_align_celeba"


@pytest.fixture(scope="module")
def small_celeba(tmp_path_factory):
    """60 real CelebA training and 20 validation images with the official attribute and split files."""
    if not (SHARED / "list_attr_celeba.txt").is_file() or not CELEBA.is_dir():
        pytest.skip("CelebA subset (../shared/data) not available")
    root = tmp_path_factory.mktemp("celeba")
    part = dict(line.split() for line in (SHARED / "list_eval_partition.txt").read_text().splitlines() if line.strip())
    files = sorted(p.name for p in CELEBA.iterdir())
    pick = [f for f in files if part.get(f) == "0"][:60] + [f for f in files if part.get(f) == "1"][:20]
    (root / "img_align_celeba").mkdir()
    for f in pick:
        (root / "img_align_celeba" / f).symlink_to(CELEBA / f)
    for name in ("list_attr_celeba.txt", "list_eval_partition.txt"):
        (root / name).symlink_to(SHARED / name)
    return root


@pytest.fixture(scope="module")
def packed(small_celeba, tmp_path_factory):
    """fader-pack of small_celeba at 32 px, one pack per attribute list, made once for the module
    (1.4 s each; four tests packed the same two). Marked read-only: the tests only read it (a
    test that wrote into it would change the others' data)."""
    from training import pack
    made = {}

    def get(attrs: str) -> Path:
        if attrs not in made:
            out = tmp_path_factory.mktemp("pack") / "faces.fpack"
            assert pack.main(["--data", str(small_celeba / "img_align_celeba"), "--attr", attrs,
                              "--img-size", "32", "-o", str(out)]) == 0
            out.chmod(0o444)
            made[attrs] = out
        return made[attrs]
    return get


def test_pack_round_trip_and_training_data(small_celeba, packed):
    from training.datasets import open_dataset, split_dataset
    from training.packfile import Pack
    out = packed("Smiling,Male")
    p = Pack(out)
    assert len(p.names) == 80 and p.size == 32 and [a.name for a in p.attributes] == ["Smiling", "Male"]
    assert sorted(p.splits.tolist()) == [0] * 60 + [1] * 20
    crop = p.crop(p.names[0])
    assert crop.shape == (32, 32, 3) and crop.dtype == np.uint8 and crop.std() > 10
    # the pack trains like the folders it came from: same images per split, same labels
    ds_pack = open_dataset(out)
    ds_dir = open_dataset(small_celeba / "img_align_celeba", "Smiling,Male")
    assert ds_pack.kind == "packed" and len(ds_pack.items) == 80
    tr_p, va_p = split_dataset(ds_pack)
    tr_d, va_d = split_dataset(ds_dir)
    name = lambda ds, i: Path(ds.items[i].path.partition("#")[2] or ds.items[i].path).name  # noqa: E731
    assert sorted(name(ds_pack, i) for i in va_p) == sorted(name(ds_dir, i) for i in va_d)
    lab_p = {name(ds_pack, i): ds_pack.items[i].labels for i in range(80)}
    assert all(lab_p[name(ds_dir, i)] == ds_dir.items[i].labels for i in range(80))


def test_a_damaged_or_foreign_pack_is_a_one_line_error(tmp_path, capsys):
    from core.errors import FaderError
    from training import cli
    from training.packfile import Pack
    bad = tmp_path / "bad.fpack"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1}       junk")
    with pytest.raises(FaderError, match="not a readable fader-pack file"):
        Pack(bad)
    assert cli.main(["--data", str(bad), "--steps", "1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.fpack" in err[0]


def test_device_batches_equal_host_batches():
    from training.batches import BatchStream, DeviceBatchStream
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, (40, 2))
    idx = np.arange(5, 37)
    host = BatchStream(images, labels, idx, 6, 3, 4, True)
    dev = DeviceBatchStream(images, labels, idx, 6, 3, 4, True, "cpu")
    try:
        for _ in range(8):  # across an epoch boundary
            (xh, yh), (xd, yd) = host.next(), dev.next()
            assert torch.equal(xh, xd) and torch.equal(yh, yd)
    finally:
        host.close()
        dev.close()


def test_gpu_recipe_runs_on_the_cpu_at_a_tiny_scale(packed, tmp_path):
    """The one-command recipe, as scripts/gpu_session.sh runs it on a lent machine (the models and
    the log copied to $OUT, all that comes back from there), with its architecture shrunk after `--`
    so the suite stays fast."""
    import os
    import subprocess
    import sys
    from core.model_file import load_model
    from training import gpu_recipe
    p = packed(gpu_recipe.ATTRIBUTES)
    run = tmp_path / "run"
    tiny = ["--n-layers", "3", "--init-fm", "8", "--max-fm", "32", "--n-skip", "1", "--hid-dim", "16",
            "--batch-size", "8", "--steps", "6", "--eval-every", "3", "--classifier-steps", "4",
            "--classifier-max-fm", "32", "--threads", "1"]
    out = tmp_path / "out"
    env = dict(os.environ, PY=sys.executable, DEVICE="cpu", OUT=str(out), RUN=str(run),
               FADER_CACHE_DIR=str(tmp_path / "cache"))   # not the user's ~/.cache
    done = subprocess.run(["bash", str(REPO / "scripts" / "gpu_session.sh"), str(p), "2", "--", *tiny],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("model.fader", "model_last.fader", "log.jsonl", "preview_latest.png", "gpu_recipe.txt",
                 "model.discriminators.safetensors", "model_last.discriminators.safetensors"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "model_last.fader").read_bytes() == (run / "model_last.fader").read_bytes()
    m = load_model(run / "model.fader")
    assert m.image_size == 32 and [a.name for a in m.attributes] == gpu_recipe.ATTRIBUTES.split(",")
    assert all(v.dtype == torch.float32 for v in m.autoencoder.state_dict().values() if v.is_floating_point())
    meta = json.loads((run / "log.jsonl").read_text().splitlines()[-1])
    assert meta["step"] == 6
    cfg = torch.load(run / "checkpoint_last.pt", weights_only=True)["config"]
    assert cfg["data_on_device"] and cfg["n_critic"] == 1 and cfg["half_export"] and cfg["batch_size"] == 8
    assert cfg["max_minutes"] == 2 and cfg["lr_decay_minutes"] == pytest.approx(0.8)  # the last 40 % decays
    last = load_model(run / "model_last.fader")  # the end state, beside the selected one
    assert last.meta["training"]["steps"] == 6
    import safetensors
    for name in ("model.fader", "model_last.fader"):
        with safetensors.safe_open(str(run / name), "pt") as f:
            assert {f.get_slice(k).get_dtype() for k in f.keys()} <= {"F16", "I64"}


def test_gpu_lease_runs_three_trainings_and_brings_back_their_end_states(packed, tmp_path):
    """scripts/gpu_lease.sh, as a lent machine runs it (on the CPU here, at a tiny scale): the recipe
    from scratch and two continuations of a committed state run at once, each stops on its clock,
    and $OUT gets each end state with its discriminators, the recipe's selected model and one file
    of logs: 8 files, each a model that loads and continues where its run stopped."""
    import os
    import subprocess
    import sys
    import tarfile
    from core.model_file import load_model
    from training import cli, gpu_recipe
    p = packed(gpu_recipe.ATTRIBUTES)
    arch = ["--n-layers", "3", "--init-fm", "8", "--max-fm", "32", "--n-skip", "1", "--hid-dim", "16",
            "--critic-width", "4", "--classifier-max-fm", "32"]
    cache = tmp_path / "cache"   # not the user's ~/.cache
    start = tmp_path / "start"   # the committed state the continuations go on from
    assert cli.main(["--data", str(p), "--attr", gpu_recipe.ATTRIBUTES, "--out", str(start), "--steps", "3",
                     "--batch-size", "8", "--n-critic", "1", "--classifier-steps", "2", "--threads", "1",
                     "--quiet", "--cache-dir", str(cache), *arch]) == 0
    out, runs = tmp_path / "out", tmp_path / "runs"
    tiny = " ".join(arch + ["--batch-size", "8", "--classifier-steps", "2", "--val-size", "10", "--threads", "1"])
    # the script looks at its jobs every 0.2 s instead of every 15 (a job's end waited up to 15 s);
    # each job trains for 0.3 s of its clock (3 s, then 1.2 s before: each job's 7-9 s is mostly its
    # start; 19-23 steps at 1.2 s on a loaded 2-core machine, where the check below needs one: the
    # clock is read before each step, so every run takes at least one)
    minutes = 0.005
    env = dict(os.environ, PY=sys.executable, DEVICE="cpu", OUT=str(out), RUNS=str(runs), MINUTES=str(minutes),
               STOP_AFTER="300", REPLICA=str(start / "model.fader"), TINY=tiny, FADER_CACHE_DIR=str(cache),
               FADER_LEASE_POLL_S="0.2")
    done = subprocess.run(["bash", str(REPO / "scripts" / "gpu_lease.sh"), str(p)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    names = sorted(f.name for f in out.iterdir())
    assert names == sorted(["A_model.fader", "logs.tgz"] + [f"{r}_model_last{x}" for r in "ABC"
                                                            for x in (".fader", ".discriminators.safetensors")])
    start_step = load_model(start / "model.fader").meta["training"]["steps"]
    for r in "ABC":
        m = load_model(out / f"{r}_model_last.fader")
        assert m.image_size == 32 and m.classifier is None
        step = m.meta["training"]["steps"]
        assert step > (0 if r == "A" else start_step), (r, step)
        hp = m.meta["training"]["hyper_parameters"]
        assert hp["batch_size"] == 8 and hp["max_minutes"] == pytest.approx(minutes)
    with tarfile.open(out / "logs.tgz") as t:
        logs = set(t.getnames())
    assert {"./A.log", "./B.log", "./C.log", "./B/log.jsonl"} <= logs
    # the state that came back continues with its own discriminators
    more = tmp_path / "more"
    assert cli.main(["--continue", str(out / "B_model_last.fader"), "--data", str(p), "--out", str(more),
                     "--steps", str(load_model(out / "B_model_last.fader").meta["training"]["steps"] + 1),
                     "--classifier-steps", "2", "--val-size", "10", "--threads", "1", "--quiet",
                     "--cache-dir", str(cache)]) == 0


def test_a_pack_trains_at_its_own_resolution_unless_told_otherwise(packed, tmp_path):
    """`fader-train --data faces.fpack` without --img-size trained at 64 px whatever the pack held
    (a 32 px pack's crops were enlarged, a 128 px pack's shrunk); it now trains at the pack's size,
    and --img-size still chooses."""
    from core.model_file import load_model
    from training import cli
    p = packed("Smiling,Male")
    tiny = ["--data", str(p), "--steps", "1", "--batch-size", "4", "--init-fm", "4", "--max-fm", "8",
            "--hid-dim", "8", "--classifier-steps", "1", "--val-size", "4", "--threads", "1", "--quiet",
            "--cache-dir", str(tmp_path / "cache")]
    assert cli.main(tiny + ["--out", str(tmp_path / "own")]) == 0
    assert load_model(tmp_path / "own" / "model.fader").image_size == 32
    assert cli.main(tiny + ["--out", str(tmp_path / "told"), "--img-size", "64"]) == 0
    assert load_model(tmp_path / "told" / "model.fader").image_size == 64
