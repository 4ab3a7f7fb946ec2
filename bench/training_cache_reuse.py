"""How long fader-train's preprocessing takes when the data changes or a start is stopped, and
how many cache folders it leaves: a first start, a start after one photo is added (the cache
folders these two leave are counted), and a start on an empty cache folder stopped (SIGINT) about
half way through its preprocessing (half the first start's preprocessing time after it began),
then started again. Each start is `fader-train ... --steps 1` with a tiny model.

    python bench/training_cache_reuse.py --data DIR --extra PHOTO [--align] [--old PKG] [--rounds N]

--old PKG: a folder holding another version's `training` package (e.g. from
`git archive HEAD training | tar -x -C PKG`), run in alternation with this checkout's (same core/).
Printed per version: the median over rounds of each start's wall time and of its cache's
preprocessing seconds (manifest.json), and the cache folders left with their size.

Each version works in a folder of its own under --work (`new/`, `old/`), which every round deletes
and makes again; where one is there before the run (an earlier run's, or anyone's), the run is
refused unless --overwrite is given.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_cli import add_overwrite, one_line_errors, parser  # noqa: E402
from core.errors import FaderError  # noqa: E402

TINY = ["--n-layers", "3", "--init-fm", "8", "--max-fm", "32", "--hid-dim", "16", "--threads", "1",
        "--batch-size", "8", "--classifier-steps", "2", "--img-size", "32", "--steps", "1", "--quiet"]


def _cmd(data: Path, out: Path, cache: Path, align: bool) -> list:
    return [sys.executable, "-m", "training.cli", "--data", str(data), "--out", str(out), "--cache-dir", str(cache),
            *TINY, *(["--align"] if align else [])]


def _env(pkg) -> dict:
    """One thread for OpenMP; `pkg`'s training package before this checkout's."""
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(str(x) for x in (pkg, REPO) if x))


def _newest_manifest(cache: Path) -> dict:
    found = sorted(cache.glob("*/manifest.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(found[-1].read_text()) if found else {}


def _done(cache: Path):
    """(images done, images) of the build in `cache`, where its rows record them; else None."""
    from training.cache import build_progress
    return build_progress(cache)


def _start(cmd, env, cwd) -> tuple:
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-3000:]}")
    return time.perf_counter() - t, r.stderr


def scenario(pkg, src: Path, extra: Path, align: bool, work: Path) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    data, cache = work / "data", work / "cache"
    shutil.copytree(src, data)
    first = sorted(p for p in data.iterdir() if p.is_dir())[-1]   # where the added photos go
    env = _env(pkg)
    res = {}
    res["first"], _ = _start(_cmd(data, work / "r1", cache, align), env, work)
    res["first_prep"] = _newest_manifest(cache).get("seconds")
    shutil.copy2(extra, first / Path(extra).name)
    res["plus_one"], err = _start(_cmd(data, work / "r2", cache, align), env, work)
    res["plus_one_prep"] = _newest_manifest(cache).get("seconds")
    res["plus_one_says"] = [x for x in err.splitlines() if "reused" in x]
    folders = [x for x in cache.iterdir() if x.is_dir()]
    res["folders"] = len(folders)
    res["mb"] = sum(f.stat().st_size for x in folders for f in x.rglob("*") if f.is_file()) / 2 ** 20
    # a stop half way through a whole preprocessing: in a cache folder of its own
    stop_cache = work / "cache_stop"
    stop_cache.mkdir()
    cmd = _cmd(data, work / "r3", stop_cache, align)
    # SIGINT as Ctrl-C sends it (a job started in the background of a script ignores it)
    p = subprocess.Popen(cmd, env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    while p.poll() is None and not any(x.name.endswith(".partial") for x in stop_cache.iterdir()):
        time.sleep(0.01)
    # half done: by the build's rows where it records them, else half the first start's time
    t_half = time.perf_counter() + 0.5 * float(res["first_prep"] or 0)
    while p.poll() is None and time.perf_counter() < t_half + 60:
        done = _done(stop_cache)
        if done is not None and done[0] >= done[1] / 2 or done is None and time.perf_counter() >= t_half:
            break
        time.sleep(0.01)
    p.send_signal(signal.SIGINT)
    stop_err = p.communicate()[1]
    res["stop_says"] = [x for x in stop_err.splitlines() if "preprocessing" in x or "interrupted" in x]
    res["restart"], err = _start(cmd, env, work)
    res["restart_prep"] = _newest_manifest(stop_cache).get("seconds")
    res["restart_says"] = [x for x in err.splitlines() if "preprocessing" in x and ("reused" in x or "stopped" in x)]
    return res


@one_line_errors("training_cache_reuse")
def main(argv=None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--extra", required=True, help="a photo to add (not in --data)")
    ap.add_argument("--align", action="store_true")
    ap.add_argument("--old", type=Path, default=None, help="folder with another version's training package")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("/tmp/fader_cache_bench"))
    add_overwrite(ap, help="delete and make again --work's new/ and old/ folders where they are there before the "
                            "run (without this, the run is refused)")
    a = ap.parse_args(argv)
    versions = [("new", None)] + ([("old", a.old)] if a.old else [])
    there = [a.work / v for v, _ in versions if (a.work / v).exists() or (a.work / v).is_symlink()]
    if there and not a.overwrite:   # each round deletes it: never a folder this run did not make
        raise FaderError(f"--work {a.work}: {there[0]} exists; choose another --work, or give --overwrite "
                         "to delete it and make it again")
    runs: dict = {v: [] for v, _ in versions}
    for k in range(a.rounds):
        for v, pkg in (versions if k % 2 == 0 else versions[::-1]):
            r = scenario(pkg, a.data, a.extra, a.align, a.work / v)
            runs[v].append(r)
            print(f"round {k + 1} {v}: " + json.dumps(r), flush=True)
    for v, rs in runs.items():
        med = {x: statistics.median(r[x] for r in rs) for x in
               ("first", "first_prep", "plus_one", "plus_one_prep", "restart", "restart_prep", "folders", "mb")}
        print(f"{v}: first start {med['first']:.1f} s (preprocessing {med['first_prep']:.1f} s); one photo added "
              f"{med['plus_one']:.1f} s ({med['plus_one_prep']:.1f} s); stopped half way and started again "
              f"{med['restart']:.1f} s ({med['restart_prep']:.1f} s); cache folders left {med['folders']:.0f}, "
              f"{med['mb']:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
