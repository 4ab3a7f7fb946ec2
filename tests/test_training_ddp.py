"""fader-train on torchrun: two CPU processes (gloo) train the model one process trains, rank 0
alone writes, a rank that dies ends the launch, and --resume under torchrun continues (tiny model, 32 px)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import celeba_rows
from core.model_file import load_model
from training.trainer import CHECKPOINT_NAME, load_checkpoint

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
CELEBA = SHARED / "celeba" / "img_align_celeba"


def _folder(root: Path, n_per: int = 40) -> Path:
    """A labeled folder Smiling/{no,yes} of real CelebA images (symlinks)."""
    if not (SHARED / "list_attr_celeba.txt").is_file() or not CELEBA.is_dir():
        pytest.skip("CelebA subset (../shared/data) not available")
    files = sorted(os.listdir(CELEBA))[:2000]
    names, table = celeba_rows(files)
    j = names.index("Smiling")
    counts = {"no": 0, "yes": 0}
    for f in files:
        v = "yes" if table[f][j] == "1" else "no"
        if counts[v] < n_per:
            (root / "Smiling" / v).mkdir(parents=True, exist_ok=True)
            os.symlink(CELEBA / f, root / "Smiling" / v / f)
            counts[v] += 1
    return root / "Smiling"


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


def _torchrun(n: int, args) -> list:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n),
            "-m", "training", *args]


def _children(pid: int) -> dict:
    """rank -> pid of the processes torchrun started (from /proc)."""
    out = {}
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid != pid:
                continue
            env = dict(x.split("=", 1) for x in (p / "environ").read_bytes().decode(errors="replace").split("\0") if "=" in x)
        except (OSError, IndexError, ValueError):
            continue
        if "RANK" in env:
            out[int(env["RANK"])] = int(p.name)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _assert_same_weights(a: dict, b: dict) -> None:
    """The networks of two runs agree within float tolerance.

    Float rounding differs between any two ways of summing (one process with 1 or with 2 threads
    differs as much as the runs compared here), and Adam, which divides by the gradient's scale,
    turns that into steps of up to lr for weights whose gradient is nearly zero. Skipped: the biases
    of convolutions followed by batch norm, whose true gradient is zero (the norm subtracts them),
    and the running statistics, which follow them. A run whose processes normalised their own
    half-batch, or drew their own dropout masks, is off by ~1e-3 at the 99th percentile of whole
    weight tensors after 10 steps; these runs by ~1e-4 after 20 (up to ~4e-4 with the image critic)."""
    for net in ("ae", "lat_dis", "critic"):
        sd = a[net]
        bn_fed = {k for k in sd if k.endswith(".0.bias") and k[:-len("0.bias")] + "1.running_mean" in sd}
        for k, v in sd.items():
            w = b[net][k]
            if not v.is_floating_point():   # num_batches_tracked: batch norm ran as often
                assert torch.equal(v, w), (net, k)
                continue
            if k in bn_fed or k.endswith(("running_mean", "running_var")):
                continue
            d = (v.float() - w.float()).abs().flatten()
            # 6e-4: with the image critic training too, correct runs reach ~4e-4 here (1e-4 without it)
            assert float(d.max()) < 2e-3 and float(d.quantile(0.99)) < 6e-4, (net, k, float(d.max()), float(d.quantile(0.99)))


def test_two_processes_train_what_one_trains_and_resume_after_a_rank_dies(tmp_path, capsys):
    from training import cli
    data = _folder(tmp_path / "d")
    # 12 steps, a rank killed after the checkpoint of step 4: the lambda ramp (10 steps) goes on
    # across the resume as before, with 8 steps fewer of each run (20 took 38 s at load 2)
    common = ["--data", str(data), "--img-size", "32", "--init-fm", "8", "--max-fm", "32", "--n-layers", "3",
              "--hid-dim", "32", "--classifier-steps", "5", "--eval-every", "4", "--ckpt-every", "4",
              "--lambda-schedule", "10", "--lambda-lat-dis", "0.01", "--batch-size", "8", "--threads", "1",
              "--quiet", "--cache-dir", str(tmp_path / "cache"), "--val-size", "8", "--steps", "12",
              "--dist-timeout", "20", "--n-critic", "1", "--critic-width", "8", "--lambda-critic-adv", "0.01",
              "--lambda-critic-attr", "0.1"]
    env = _env()

    # two processes, 4 each; rank 1 is killed -9 once a checkpoint past step 4 exists
    out = tmp_path / "run"
    launch = subprocess.Popen(_torchrun(2, common + ["--out", str(out)]), cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    killed_at, ranks, seen = None, {}, None
    try:
        deadline = time.time() + 240
        while time.time() < deadline and launch.poll() is None and killed_at is None:
            ranks = ranks if len(ranks) == 2 else _children(launch.pid)
            try:
                saved = (out / CHECKPOINT_NAME).stat().st_mtime_ns
            except OSError:
                saved = None
            # each checkpoint is read once: stopping rank 1 on every poll starved it on a loaded
            # machine until rank 0's collectives timed out
            if len(ranks) == 2 and saved is not None and saved != seen:
                seen = saved
                os.kill(ranks[1], signal.SIGSTOP)   # the run cannot move on while the checkpoint is read
                try:
                    step = load_checkpoint(out / CHECKPOINT_NAME)["step"]
                except Exception:
                    step = -1
                if step >= 4:
                    os.kill(ranks[1], signal.SIGKILL)
                    killed_at = time.time()
                else:
                    os.kill(ranks[1], signal.SIGCONT)
            time.sleep(0.02)
        if killed_at is None:
            pytest.fail(f"no checkpoint past step 4 was seen before the run ended: {launch.stderr.read()[-2000:]}")
        _, err = launch.communicate(timeout=60)
        ended_after = time.time() - killed_at
    finally:
        if launch.poll() is None:
            os.killpg(launch.pid, signal.SIGKILL)
            launch.wait()
        for pid in ranks.values():   # torchrun's processes run in sessions of their own
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    # the dying rank took the launch down in bounded time, and rank 0 with it
    assert launch.returncode != 0
    assert ended_after < 45, ended_after
    assert not _alive(ranks[0])
    ck = load_checkpoint(out / CHECKPOINT_NAME)   # intact: rank 0 did not save from inside a broken iteration
    assert 4 <= ck["step"] < 12

    # --resume under torchrun continues from the checkpoint's step
    resume = subprocess.Popen(_torchrun(2, common + ["--out", str(out), "--resume"]), cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        # meanwhile one process, global batch 8, the reference (in this process: no interpreter to
        # start; while torchrun and its processes start, about 3 s of the test's 19 s)
        threads = torch.get_num_threads()
        try:
            assert cli.main(common + ["--out", str(tmp_path / "ref")]) == 0, capsys.readouterr().err[-2000:]
        finally:
            torch.set_num_threads(threads)
        _, err = resume.communicate(timeout=300)
    finally:
        if resume.poll() is None:
            os.killpg(resume.pid, signal.SIGKILL)
            resume.wait()
    assert resume.returncode == 0, err[-3000:]
    assert f"resumed {out / CHECKPOINT_NAME} at step {ck['step']}" in err
    assert "data-parallel on 2 processes (gloo); global batch 8 = 2 x 4" in err
    a, b = load_checkpoint(tmp_path / "ref" / CHECKPOINT_NAME), load_checkpoint(out / CHECKPOINT_NAME)
    assert a["step"] == b["step"] == 12 and a["batches"] == b["batches"]
    _assert_same_weights(a, b)

    # rank 0 alone wrote: one log line per evaluation, one command line per launch; world_size recorded
    recs = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    ref_recs = [json.loads(x) for x in (tmp_path / "ref" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [4, 8, 12]
    assert {r["world_size"] for r in recs} == {2} and {r["world_size"] for r in ref_recs} == {1}
    # the global batch's training losses (each record: the 4 steps since the last evaluation,
    # which is also where a resume starts), as one process saw them
    for r, q in zip(recs, ref_recs):
        assert abs(r["train"]["rec"] / q["train"]["rec"] - 1) < 2e-4, (r["train"], q["train"])
        # (the latent discriminator's loss sits near its chance value, where the image critic's extra
        # steps let rounding differences reach ~1e-3 of it)
        assert abs(r["train"]["lat_dis"] / q["train"]["lat_dis"] - 1) < 3e-3, (r["train"], q["train"])
        assert abs(r["train"]["critic"] / q["train"]["critic"] - 1) < 3e-3, (r["train"], q["train"])
        assert abs(r["val"]["psnr"] - q["val"]["psnr"]) < 0.01
    assert len((out / "command.txt").read_text().splitlines()) == 2
    assert load_model(out / "model.fader").meta["training"]["world_size"] == 2
    assert load_model(tmp_path / "ref" / "model.fader").meta["training"]["world_size"] == 1
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (tmp_path / "ref").iterdir())


def test_a_second_run_cannot_use_a_folder_in_use(tmp_path, capsys):
    from training import cli
    from training.run_lock import RunLock
    data = _folder(tmp_path / "d", 6)
    out = tmp_path / "run"
    held = RunLock(out).acquire()   # what a running fader-train holds
    try:
        code = cli.main(["--data", str(data), "--img-size", "32", "--init-fm", "8", "--max-fm", "16", "--n-layers", "3",
                         "--hid-dim", "16", "--steps", "2", "--classifier-steps", "1", "--out", str(out), "--quiet",
                         "--threads", "1", "--cache-dir", str(tmp_path / "cache"), "--val-size", "2"])
    finally:
        held.release()
    err = capsys.readouterr().err
    assert code == 2
    assert f"fader-train: error: {out}: in use by another fader-train run (pid {os.getpid()} on " in err
    assert sorted(p.name for p in out.iterdir()) == [".fader-train.lock"]   # nothing of the run written
